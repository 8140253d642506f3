#include "web/server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "analysis/period.h"
#include "common/files.h"
#include "common/time_zone.h"
#include "feeds/feed.h"
#include "web/access.h"
#include "web/api.h"
#include "web/pages.h"

namespace teiten::embedded {
extern const std::string_view kTeitenJs;
extern const std::string_view kTeitenCss;
}  // namespace teiten::embedded

namespace teiten::web {
namespace {

namespace fs = std::filesystem;

const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

int64_t Now() {
  return static_cast<int64_t>(std::time(nullptr));
}

Result<std::pair<std::string, int>> SplitListen(const std::string& s) {
  std::string host;
  std::string port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return InvalidArgument(fmt::format("--listen '{}': expected [ADDR]:PORT", s));
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos) {
      return InvalidArgument(fmt::format("--listen '{}': expected HOST:PORT", s));
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535 || host.empty()) {
    return InvalidArgument(fmt::format("--listen '{}': expected HOST:PORT, port 0-65535", s));
  }
  return std::pair<std::string, int>{host, static_cast<int>(p)};
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// The value of cookie `name` in the request, or "".
std::string CookieValue(const httplib::Request& req, const std::string& name) {
  std::string all = req.get_header_value("Cookie");
  size_t pos = 0;
  while (pos < all.size()) {
    size_t end = all.find(';', pos);
    if (end == std::string::npos) end = all.size();
    std::string item = all.substr(pos, end - pos);
    size_t b = item.find_first_not_of(' ');
    if (b != std::string::npos) item = item.substr(b);
    if (item.rfind(name + "=", 0) == 0) return item.substr(name.size() + 1);
    pos = end + 1;
  }
  return "";
}

Params ParamsOf(const httplib::Request& req) {
  return Params(req.params.begin(), req.params.end());
}

// A page to go back to after logging in: a path of this site only (never "//host" or a URL).
std::string SafeNext(const std::string& next) {
  if (next.empty() || next[0] != '/' || next.rfind("//", 0) == 0 ||
      next.find('\\') != std::string::npos || next.find_first_of("\r\n") != std::string::npos) {
    return "/";
  }
  return next;
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Dump(const nlohmann::json& j) {
  // Strings from the store are bytes; one that is not UTF-8 is shown with U+FFFD, not thrown.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

struct WebServer::Impl {
  ServeOptions opts;
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  int port = -1;
  StoreSnapshots snaps;
  // Moves the held snapshot to the newest manifest every few seconds even when no request comes,
  // so the files later commits replace are not kept on disk for an idle dashboard (the store
  // keeps what any open snapshot names: docs/STORE_FORMAT.md, Readers).
  std::thread refresher;
  std::mutex refresh_mu;
  std::condition_variable refresh_cv;
  bool stopping = false;
  // A snapshot just opened, whose default answers the refresher computes next (Warm).
  std::shared_ptr<const Snapshot> to_warm;
  std::optional<Users> users;
  Sessions sessions;
  std::string uplot_js, uplot_css;
  bool tls = false;
  std::string cookie_name = "teiten_session";

  explicit Impl(ServeOptions o) : opts(std::move(o)), snaps(opts.store_dir) {
    snaps.OnNewSnapshot([this](std::shared_ptr<const Snapshot> s) {
      std::lock_guard<std::mutex> l(refresh_mu);
      to_warm = std::move(s);
      refresh_cv.notify_all();
    });
  }

  // Computes, once per snapshot, the answers the overview and MUSTAN pages ask for by default
  // (the findings of the last day's quarter take seconds on a big store), so that a user who
  // comes after a commit finds them made, or waits only for what is left of them: each answer
  // is remembered by the snapshot under the key its page's request has (HandleApi).
  void Warm(const Snapshot& snap) {
    const Store& store = snap.store();
    if (store.manifest().days.empty()) return;
    const int32_t last = store.manifest().days.rbegin()->first;
    const std::string quarter = Store::QuarterLabel(last);
    const std::string days30 = DaysPeriod(last - 29, last + 1).Label();
    // The quarter before the last day's too: the last complete one, which an analyst (and the
    // overview's period list) opens next, while the last day's may hold only a few days.
    const Result<Period> q = ParsePeriod(quarter);
    const std::string before = q.ok() ? Store::QuarterLabel(q->first_day - 1) : quarter;
    std::vector<std::pair<std::string, Params>> asks = {
        {"/api/v1/findings", {{"period", quarter}}}, {"/api/v1/mustan", {{"lang", "en"}}},
        {"/api/v1/mustan", {{"lang", "ja"}}},        {"/api/v1/outages", {{"period", quarter}}},
        {"/api/v1/findings", {{"period", before}}},  {"/api/v1/outages", {{"period", before}}},
    };
    for (const std::string& period : {quarter, days30}) {
      for (const char* lang : {"", "ja"}) {
        for (const char* path : {"/api/v1/summary", "/api/v1/top/ports", "/api/v1/top/countries"}) {
          Params p = {{"period", period}};
          if (*lang) p.emplace("lang", lang);
          asks.push_back({path, p});
        }
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Access> modes = {Access{}};
    if (opts.public_mode) modes.push_back(Access{.aggregate_only = true});
    for (const Access& a : modes) {
      for (const auto& [path, params] : asks) {
        {
          std::lock_guard<std::mutex> l(refresh_mu);
          if (stopping) return;
        }
        try {
          (void)HandleApi(snap, path, params, a);
        } catch (...) {
          // A failure is the asking request's to answer; warming is only a head start.
        }
      }
    }
    std::fprintf(
        stderr,
        "teiten serve: generation %llu: %zu answers taken over; default answers made in %.0f ms\n",
        static_cast<unsigned long long>(store.manifest().generation), snap.inherited(),
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    WarmEarlier(snap, q.ok() ? q->first_day : last, modes);
  }

  // Then, quarter by quarter back from the one before `day`'s, at most kWarmEarlierQuarters,
  // the answers an overview of the quarter asks for (those Warm made are found made): from a
  // cold disk the first one waits seconds (docs/BENCHMARKS.md). Answers about a period outlive
  // the snapshot (Snapshot::Inherit) until a commit touches its days, so this is done once, not
  // per commit. It gives way as soon as a newer snapshot is there: that one takes over what was
  // made here and goes on.
  void WarmEarlier(const Snapshot& snap, int32_t day, const std::vector<Access>& modes) {
    const int32_t first = snap.store().manifest().days.begin()->first;
    auto checked = std::chrono::steady_clock::now();
    const auto t0 = checked;
    int quarters = 0;
    Result<Period> q = ParsePeriod(Store::QuarterLabel(day));
    while (q.ok() && q->first_day > first && quarters < kWarmEarlierQuarters) {
      q = ParsePeriod(Store::QuarterLabel(q->first_day - 1));
      if (!q.ok()) break;
      ++quarters;
      const std::string label = q->Label();
      for (const Access& a : modes) {
        for (const auto& [path, params] : std::vector<std::pair<std::string, Params>>{
                 {"/api/v1/summary", {{"period", label}}},
                 {"/api/v1/summary", {{"period", label}, {"lang", "ja"}}},
                 {"/api/v1/top/ports", {{"period", label}}},
                 {"/api/v1/top/ports", {{"period", label}, {"lang", "ja"}}},
                 {"/api/v1/top/countries", {{"period", label}}},
                 {"/api/v1/top/countries", {{"period", label}, {"lang", "ja"}}},
                 {"/api/v1/findings", {{"period", label}}},
                 {"/api/v1/outages", {{"period", label}}}}) {
          // A newer manifest is looked for as often as the idle refresher would.
          if (std::chrono::steady_clock::now() - checked >
              std::chrono::seconds(kSnapshotRefreshSeconds)) {
            (void)snaps.Current();
            checked = std::chrono::steady_clock::now();
          }
          {
            std::lock_guard<std::mutex> l(refresh_mu);
            if (stopping || to_warm) return;
          }
          try {
            (void)HandleApi(snap, path, params, a);
          } catch (...) {
          }
        }
      }
    }
    if (quarters > 0) {
      std::fprintf(
          stderr, "teiten serve: generation %llu: %d earlier quarters' answers made in %.0f ms\n",
          static_cast<unsigned long long>(snap.store().manifest().generation), quarters,
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }

  // The logged-in user (session cookie) or token label, if any.
  std::optional<std::string> Who(const httplib::Request& req) {
    if (!users) return std::nullopt;
    std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) == 0) {
      if (auto t = users->CheckToken(auth.substr(7))) return "token:" + *t;
      return std::nullopt;
    }
    std::string c = CookieValue(req, cookie_name);
    if (!c.empty()) return sessions.Find(c, Now());
    return std::nullopt;
  }

  // Whether the request may be answered, and how much of it; answers the refusal itself.
  std::optional<Access> Admit(const httplib::Request& req, httplib::Response& res,
                              std::optional<std::string>* user) {
    *user = Who(req);
    Access a;
    if (!users || *user) return a;  // no users file: loopback only (checked at start), all open
    if (opts.public_mode) {
      a.aggregate_only = true;
      return a;
    }
    if (req.path.rfind("/api/", 0) == 0) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content(
          Dump(ApiError(401, "", "log in, or give a token (Authorization: Bearer)").body),
          "application/json");
    } else {
      res.status = 303;
      std::string next = req.target.empty() ? req.path : req.target;
      res.set_header("Location", "/login?next=" + UrlEncode(SafeNext(next)));
    }
    return std::nullopt;
  }

  void Headers(httplib::Response& res) {
    res.set_header("Content-Security-Policy", kCsp);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("X-Frame-Options", "DENY");
    if (tls) res.set_header("Strict-Transport-Security", "max-age=31536000");
  }

  // A cross-site POST (login CSRF, logout forcing) is refused: browsers send Origin on POST.
  bool SameOrigin(const httplib::Request& req) {
    std::string origin = req.get_header_value("Origin");
    if (origin.empty()) return true;
    std::string host = req.get_header_value("Host");
    return origin == (tls ? "https://" : "http://") + host;
  }

  std::string SessionCookie(const std::string& value, int64_t max_age) {
    return fmt::format("{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}", cookie_name, value,
                       max_age, tls ? "; Secure" : "");
  }

  void Routes() {
    httplib::Server& s = *server;
    // Alert feeds (O5) as CSV, JSON or XML text, before the JSON API's catch-all route.
    s.Get(R"(/api/v1/feeds/([a-z]+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::optional<std::string> user;
      auto access = Admit(req, res, &user);
      if (!access) return;
      res.set_header("Cache-Control", "no-store");
      auto refuse = [&](int status, const std::string& param, const std::string& msg) {
        res.status = status;
        res.set_content(Dump(ApiError(status, param, msg).body), "application/json");
      };
      const std::string format = req.matches[1];
      if (format != "csv" && format != "json" && format != "xml" && format != "stix" &&
          format != "misp") {
        return refuse(404, "",
                      fmt::format("no feed format '{}': csv, json, xml, stix or misp", format));
      }
      Params params = ParamsOf(req);
      for (const auto& [k, v] : params) {
        if (k != "period" || params.count(k) > 1) {
          return refuse(400, k, "not a parameter of /feeds (period), or given twice");
        }
      }
      auto period = ParsePeriod(req.get_param_value("period"));
      if (!period.ok()) return refuse(400, "period", period.status().message());
      auto snap = snaps.Current();
      if (!snap.ok()) return refuse(503, "", snap.status().message());
      const bool aggregate = access->aggregate_only;
      const std::string key =
          fmt::format("feed|{}|{}|{}", format, period->Label(), aggregate ? "public" : "all");
      std::string error;
      Snapshot::Value v = (*snap)->Remember(key, [&]() -> Snapshot::Value {
        auto items = BuildFeedItems((*snap)->store(), *period, SensorSelection{});
        if (!items.ok()) {
          error = items.status().ToString();
          return nullptr;
        }
        // Public mode never gives addresses out, not even a finding's evidence.
        if (aggregate) {
          for (FeedItem& it : *items) it.sources.clear();
        }
        FeedMeta meta{TimeZone::DayString(period->first_day),
                      TimeZone::DayString(period->end_day - 1), UtcNow()};
        auto text = WriteFeed(format, *items, meta);
        if (!text.ok()) {
          error = text.status().ToString();
          return nullptr;
        }
        return std::make_shared<const nlohmann::json>(*text);
      });
      if (!v) return refuse(500, "", error.empty() ? "the feed could not be made" : error);
      res.set_content(v->get<std::string>(), FeedContentType(format));
    });
    s.Get(R"(/api/v1/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::optional<std::string> user;
      auto access = Admit(req, res, &user);
      if (!access) return;
      res.set_header("Cache-Control", "no-store");
      auto snap = snaps.Current();
      if (!snap.ok()) {
        res.status = 503;
        res.set_content(Dump(ApiError(503, "", snap.status().message()).body), "application/json");
        return;
      }
      ApiReply r = HandleApi(**snap, req.path, ParamsOf(req), *access);
      res.status = r.status;
      // Notification lists as CSV: the API answers them as one JSON string of the CSV text.
      if (r.status == 200 && req.path == "/api/v1/notify/csv" && r.body.is_string()) {
        res.set_content(r.body.get<std::string>(), "text/csv; charset=utf-8");
      } else {
        res.set_content(Dump(r.body), "application/json");
      }
    });
    s.Get("/api/v1", [](const httplib::Request&, httplib::Response& res) {
      res.status = 308;
      res.set_header("Location", "/api/v1/");
    });
    for (const char* page : {"/", "/port", "/region", "/ip", "/sensors", "/mustan", "/findings"}) {
      s.Get(page, [this](const httplib::Request& req, httplib::Response& res) {
        std::optional<std::string> user;
        auto access = Admit(req, res, &user);
        if (!access) return;
        auto snap = snaps.Current();
        if (!snap.ok()) {
          res.status = 503;
          res.set_content(
              "<!DOCTYPE html><title>503</title><p>" + Escape(snap.status().message()) + "</p>",
              "text/html; charset=utf-8");
          return;
        }
        PageRequest pr;
        pr.snap = snap->get();
        pr.path = req.path;
        pr.params = ParamsOf(req);
        pr.access = *access;
        if (user && user->rfind("token:", 0) != 0) pr.user = user;
        pr.show_logout = users.has_value();
        PageReply p = RenderPage(pr);
        res.status = p.status;
        res.set_header("Cache-Control", "no-store");
        res.set_content(p.html, "text/html; charset=utf-8");
      });
    }
    auto serve_static = [&s](const std::string& path, const std::string* body, const char* type) {
      s.Get(path, [body, type](const httplib::Request&, httplib::Response& res) {
        if (body->empty()) {
          res.status = 404;
          res.set_content("not installed (npm ci)", "text/plain");
          return;
        }
        res.set_header("Cache-Control", "max-age=3600");
        res.set_content(*body, type);
      });
    };
    static const std::string js(embedded::kTeitenJs), css(embedded::kTeitenCss);
    serve_static("/static/teiten.js", &js, "text/javascript; charset=utf-8");
    serve_static("/static/teiten.css", &css, "text/css; charset=utf-8");
    serve_static("/static/uplot.js", &uplot_js, "text/javascript; charset=utf-8");
    serve_static("/static/uplot.css", &uplot_css, "text/css; charset=utf-8");
    // No icon: an empty answer rather than a 404 in every browser's console.
    s.Get("/favicon.ico",
          [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    s.Get("/login", [this](const httplib::Request& req, httplib::Response& res) {
      PageReply p =
          RenderLogin(req.get_param_value("lang"), SafeNext(req.get_param_value("next")), "", 200);
      res.status = p.status;
      res.set_content(p.html, "text/html; charset=utf-8");
    });
    s.Post("/login", [this](const httplib::Request& req, httplib::Response& res) {
      if (!SameOrigin(req)) {
        res.status = 403;
        res.set_content("cross-site login refused", "text/plain");
        return;
      }
      std::string next = SafeNext(req.get_param_value("next"));
      if (!users) {
        res.status = 303;
        res.set_header("Location", next);
        return;
      }
      auto who = users->CheckPassword(req.get_param_value("user"), req.get_param_value("password"));
      if (!who) {
        PageReply p = RenderLogin("", next, "Wrong user or password.", 401);
        res.status = p.status;
        res.set_content(p.html, "text/html; charset=utf-8");
        return;
      }
      res.status = 303;
      res.set_header("Set-Cookie", SessionCookie(sessions.Create(*who, Now()), kSessionSeconds));
      res.set_header("Location", next);
    });
    s.Post("/logout", [this](const httplib::Request& req, httplib::Response& res) {
      if (!SameOrigin(req)) {
        res.status = 403;
        return;
      }
      std::string c = CookieValue(req, cookie_name);
      if (!c.empty()) sessions.Remove(c);
      res.status = 303;
      res.set_header("Set-Cookie", SessionCookie("", 0));
      res.set_header("Location", "/login");
    });
  }
};

WebServer::WebServer(ServeOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}

WebServer::~WebServer() {
  Stop();
}

int WebServer::port() const {
  return impl_->port;
}

Status WebServer::Start() {
  Impl& m = *impl_;
  const ServeOptions& o = m.opts;
  if (!InitCrypto()) return Internal("libsodium could not be initialised");
  ASSIGN_OR_RETURN(auto hp, SplitListen(o.listen));
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return InvalidArgument("--tls-cert and --tls-key go together");
  }
  if (!o.users_file.empty()) {
    ASSIGN_OR_RETURN(Users u, Users::Load(o.users_file));
    m.users = std::move(u);
  } else if (!o.public_mode && !IsLoopback(hp.first)) {
    return InvalidArgument(fmt::format(
        "--listen {}: without --users (logins) or --public (aggregates only), teiten serve "
        "listens on a loopback address only",
        o.listen));
  }
  // The store must be readable now: an error at start is clearer than one on every request.
  RETURN_IF_ERROR(m.snaps.Current().status());
  std::vector<std::string> roots;
  if (!o.node_modules.empty()) {
    roots.push_back(o.node_modules);
  } else {
    if (const char* e = std::getenv("TEITEN_NODE_MODULES")) roots.push_back(e);
    roots.push_back("node_modules");
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) roots.push_back((exe.parent_path().parent_path() / "node_modules").string());
  }
  for (const std::string& r : roots) {
    auto js = ReadWholeFile(r + "/uplot/dist/uPlot.iife.min.js");
    auto css = ReadWholeFile(r + "/uplot/dist/uPlot.min.css");
    if (js.ok() && css.ok()) {
      m.uplot_js = std::move(*js);
      m.uplot_css = std::move(*css);
      break;
    }
  }
  if (m.uplot_js.empty()) {
    if (!o.node_modules.empty()) {
      return NotFound(fmt::format("{}/uplot/dist/uPlot.iife.min.js: not there (npm ci installs it)",
                                  o.node_modules));
    }
    fmt::print(stderr, "teiten serve: warning: uPlot not found under {} (npm ci): no charts\n",
               fmt::join(roots, ", "));
  }
  if (!o.tls_cert.empty()) {
    auto ssl = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
    if (!ssl->is_valid()) {
      return InvalidArgument(fmt::format(
          "--tls-cert {} / --tls-key {}: not a usable certificate and key", o.tls_cert, o.tls_key));
    }
    m.server = std::move(ssl);
    m.tls = true;
    m.cookie_name = "__Host-teiten_session";
  } else {
    m.server = std::make_unique<httplib::Server>();
  }
  httplib::Server& s = *m.server;
  s.set_payload_max_length(kMaxBody);
  s.set_read_timeout(kTimeoutSeconds, 0);
  s.set_write_timeout(kTimeoutSeconds, 0);
  // Headers and body go out in separate writes: with Nagle's algorithm the body of a kept-alive
  // connection's next answer waits for the client's delayed ACK (40 ms on Linux).
  s.set_tcp_nodelay(true);
  s.set_keep_alive_timeout(2);
  // A kept-alive connection holds a worker between its requests: rotate them, so that clients
  // beyond kWorkers wait for a few requests, not for a busy client to leave.
  s.set_keep_alive_max_count(10);
  s.new_task_queue = [] { return new httplib::ThreadPool(kWorkers); };
  s.set_pre_routing_handler([&m](const httplib::Request&, httplib::Response& res) {
    m.Headers(res);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      res.set_content(
          Dump(ApiError(res.status, "", res.status == 404 ? "no such page or endpoint" : "refused")
                   .body),
          "application/json");
    }
  });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        fmt::print(stderr, "teiten serve: error: handler: {}\n", what);
        res.status = 500;
        res.set_content(Dump(ApiError(500, "", "internal error").body), "application/json");
      });
  m.Routes();
  if (hp.second == 0) {
    m.port = s.bind_to_any_port(hp.first);
  } else {
    m.port = s.bind_to_port(hp.first, hp.second) ? hp.second : -1;
  }
  if (m.port <= 0) return IoError(fmt::format("--listen {}: cannot bind", o.listen));
  m.thread = std::thread([&s] { s.listen_after_bind(); });
  m.refresher = std::thread([&m] {
    std::unique_lock<std::mutex> l(m.refresh_mu);
    while (!m.stopping) {
      if (m.to_warm) {
        std::shared_ptr<const Snapshot> snap = std::move(m.to_warm);
        m.to_warm.reset();
        l.unlock();
        m.Warm(*snap);
        snap.reset();  // held no longer than the warming: READERS moves on with the next open
        l.lock();
        continue;
      }
      if (m.refresh_cv.wait_for(l, std::chrono::seconds(kSnapshotRefreshSeconds),
                                [&m] { return m.stopping || m.to_warm != nullptr; })) {
        continue;
      }
      l.unlock();
      (void)m.snaps.Current();  // a failure is answered to the next request that meets it
      l.lock();
    }
  });
  return OkStatus();
}

void WebServer::Stop() {
  Impl& m = *impl_;
  if (m.server) m.server->stop();
  if (m.thread.joinable()) m.thread.join();
  {
    std::lock_guard<std::mutex> l(m.refresh_mu);
    m.stopping = true;
  }
  m.refresh_cv.notify_all();
  if (m.refresher.joinable()) m.refresher.join();
}

}  // namespace teiten::web
