#!/usr/bin/env python3
"""A TCP relay that delays every chunk by a fixed time each way: a long, slow link between a
sensor and the collector (this kernel has no netem). Order is kept; nothing is dropped.
    relay.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS"""
import asyncio
import sys


async def pump(reader, writer, delay):
    q = asyncio.Queue()

    async def later():
        while True:
            due, data = await q.get()
            wait = due - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(later())
    try:
        while True:
            data = await reader.read(65536)
            q.put_nowait((asyncio.get_running_loop().time() + delay, data or None))
            if not data:
                break
    except (ConnectionError, OSError):
        q.put_nowait((0, None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def main():
    lh, lp, th, tp, ms = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    delay = ms / 1000.0

    async def handle(cr, cw):
        try:
            sr, sw = await asyncio.wait_for(asyncio.open_connection(th, tp), 10)
        except (OSError, asyncio.TimeoutError):
            cw.close()
            return
        await asyncio.gather(pump(cr, sw, delay), pump(sr, cw, delay), return_exceptions=True)

    server = await asyncio.start_server(handle, lh, lp)
    async with server:
        await server.serve_forever()


asyncio.run(main())
