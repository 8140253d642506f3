#!/usr/bin/env python3
"""Load on `teiten serve`: N clients (threads, one keep-alive connection each) asking the given
paths round-robin for S seconds; prints requests, errors and latency percentiles as JSON.

    tests/web/load.py http://127.0.0.1:8080 --clients 50 --seconds 60 /api/v1/top/ports?period=2018Q3 …
"""
import argparse
import http.client
import json
import threading
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.base)
    stop = time.monotonic() + a.seconds
    lat = {p: [] for p in a.paths}
    errors = []
    lock = threading.Lock()

    def client(i):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        k = i
        mine = {p: [] for p in a.paths}
        errs = []
        while time.monotonic() < stop:
            p = a.paths[k % len(a.paths)]
            k += 1
            t0 = time.perf_counter()
            try:
                conn.request("GET", p)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    errs.append(f"{r.status} {p}")
            except Exception as e:  # a dropped connection is an error, then reconnect
                errs.append(f"{type(e).__name__} {p}")
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                continue
            mine[p].append(time.perf_counter() - t0)
        with lock:
            for p, v in mine.items():
                lat[p].extend(v)
            errors.extend(errs)

    ts = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()

    def pct(v, q):
        v = sorted(v)
        return round(v[min(len(v) - 1, int(q * len(v)))] * 1000, 2) if v else None

    every = [x for v in lat.values() for x in v]
    out = {
        "clients": a.clients,
        "seconds": a.seconds,
        "requests": len(every),
        "errors": len(errors),
        "error_samples": errors[:5],
        "ms": {"p50": pct(every, 0.5), "p95": pct(every, 0.95), "p99": pct(every, 0.99)},
        "by_path": {p: {"n": len(v), "p50": pct(v, 0.5), "p95": pct(v, 0.95), "p99": pct(v, 0.99)}
                    for p, v in lat.items()},
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
