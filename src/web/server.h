// `teiten serve`: the dashboard and the JSON API over HTTP(S) (SPEC O3, O4), read-only.
//
//   ServeOptions o{.store_dir = "/var/lib/teiten/store", .listen = "127.0.0.1:8080"};
//   WebServer server(o);
//   RETURN_IF_ERROR(server.Start());   // binds, then serves on its own threads
//   …
//   server.Stop();
//
// Access (web/access.h): with a users file, every page and API answer needs a login session
// (cookie: HttpOnly, SameSite=Strict, Secure under TLS) or an API token (Authorization: Bearer);
// pages redirect to /login, the API answers 401. With `public_mode`, requests without either get
// the aggregate pages and API only (no per-IP answer: 403). Without a users file and without
// public mode, the server only starts on a loopback address (an analyst's own machine).
//
// Every answer carries a strict Content-Security-Policy (scripts, styles and data from this
// origin only; no inline script or style; no framing), X-Content-Type-Options: nosniff and
// Referrer-Policy: no-referrer. Requests are bounded: bodies (only the login form has one) at
// kMaxBody bytes, URIs and headers by cpp-httplib's 8 KiB, reading and writing by timeouts, and
// at most kWorkers requests are answered at once.
//
// The store is read through StoreSnapshots: a commit made while serving is seen by the next
// request. uPlot is served from `node_modules` (npm ci), the page's own script and style from
// the binary.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace teiten::web {

inline constexpr size_t kMaxBody = 4096;
inline constexpr int kWorkers = 64;
inline constexpr int kTimeoutSeconds = 10;
inline constexpr int kSnapshotRefreshSeconds = 5;  // see WebServer::Impl::refresher
// How many quarters before the last complete one the server answers ahead (WarmEarlier).
inline constexpr int kWarmEarlierQuarters = 8;

struct ServeOptions {
  std::string store_dir;
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free one
  std::string tls_cert, tls_key;          // both or neither (PEM files)
  std::string users_file;
  bool public_mode = false;
  std::string node_modules;  // where uplot/dist is; "" tries ./node_modules, then the source tree
};

class WebServer {
 public:
  explicit WebServer(ServeOptions opts);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // Checks the options, reads the users file and the static files, binds, and starts serving.
  Status Start();
  int port() const;  // the bound port, after Start
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace teiten::web
