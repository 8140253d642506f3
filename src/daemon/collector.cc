#include "daemon/collector.h"

#include <fmt/format.h>
#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "daemon/log.h"
#include "daemon/metrics.h"
#include "ingest/ingest.h"
#include "transport/wire.h"

namespace teiten {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
// A sensor's backlog goes in requests of at most this many batches.
constexpr size_t kMaxFramesPerRequest = 1024;

int64_t NowUnix() {
  return static_cast<int64_t>(std::time(nullptr));
}

// "host:port" → (host, port); port 0 asks the system for one.
Result<std::pair<std::string, int>> SplitHostPort(const std::string& s, const std::string& what) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgument(fmt::format("{} '{}': expected host:port", what, s));
  }
  std::string host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = -1;
  try {
    port = std::stoi(s.substr(colon + 1));
  } catch (...) {
  }
  if (port < 0 || port > 65535) return InvalidArgument(fmt::format("{} '{}': bad port", what, s));
  return std::pair{host, port};
}

std::string OpensslError() {
  unsigned long e = ERR_get_error();
  if (!e) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// The common name of a verified peer certificate: the sensor id.
std::string PeerSensor(const SSL* ssl) {
  if (!ssl) return "";
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return "";
  char cn[256] = {};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  return n > 0 && static_cast<size_t>(n) < sizeof cn ? std::string(cn, static_cast<size_t>(n)) : "";
}

int VerifyCallback(int ok, X509_STORE_CTX* ctx) {
  if (!ok) {
    // A refused certificate is worth a line: a misconfigured or hostile sensor.
    X509* cert = X509_STORE_CTX_get_current_cert(ctx);
    char subject[256] = "(none)";
    if (cert) X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
    int err = X509_STORE_CTX_get_error(ctx);
    LogEvent("warn", "certificate_refused",
             {{"subject", subject}, {"reason", X509_verify_cert_error_string(err)}});
  }
  return ok;
}

struct Bucket {
  double tokens = 0;
  Clock::time_point at{};
};

}  // namespace

struct Collector::Impl {
  struct Outcome {
    int http = 200;
    std::string body;
    bool duplicate = false;
  };
  struct Pending {
    std::string sensor;
    WireBatch batch;
    size_t bytes = 0;
    std::promise<Outcome> done;
  };

  Impl(const Config& c, Store* s, const GeoDb* g) : cfg(c), store(s), geo(g) {}

  Config cfg;
  Store* store;
  const GeoDb* geo;
  std::unique_ptr<httplib::SSLServer> tls;
  std::unique_ptr<httplib::Server> plain;
  std::thread tls_thread, plain_thread, committer, merger;
  // Commits since the merger last looked (under mu): it wakes on them.
  uint64_t commits_unmerged = 0;
  int bound_port = 0;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Pending>> queue;
  size_t queued_bytes = 0;
  bool stopping = false;
  std::map<std::string, Bucket> buckets;
  std::map<std::string, SensorStatusFile> status;
  std::set<std::string> dirty;
  Metrics metrics;

  Status LoadStatus();
  void WriteStatus(const SensorStatusFile& s);
  void Handle(const httplib::Request& req, httplib::Response& res);
  void HandleStatus(const httplib::Request& req, httplib::Response& res);
  void CommitLoop();
  void MergeLoop();
  bool Admit(const std::string& sensor, double* retry_after);
  void Refuse(httplib::Response& res, int code, const std::string& sensor, const std::string& why,
              const std::string& peer);
};

Collector::Collector(const Config& cfg, Store* store, const GeoDb* geo)
    : impl_(std::make_unique<Impl>(cfg, store, geo)) {}

Collector::~Collector() {
  Stop();
}

int Collector::port() const {
  return impl_->bound_port;
}

Status Collector::Impl::LoadStatus() {
  fs::path dir = fs::path(store->dir()) / "sensors";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError(fmt::format("{}: {}", dir.string(), ec.message()));
  for (const SensorConfig& s : cfg.sensors) {
    SensorStatusFile st;
    st.sensor = s.id;
    std::ifstream in(dir / (s.id + ".json"));
    if (in) {
      try {
        nlohmann::json j = nlohmann::json::parse(in);
        st.last_contact = j.value("last_contact", int64_t{0});
        st.last_batch = j.value("last_batch", int64_t{0});
        if (j.contains("reported")) st.reported = j.at("reported");
      } catch (const std::exception& e) {
        LogEvent("warn", "sensor_status_unreadable", {{"sensor", s.id}, {"error", e.what()}});
      }
    }
    status[s.id] = st;
  }
  return OkStatus();
}

void Collector::Impl::WriteStatus(const SensorStatusFile& s) {
  nlohmann::json j = {{"sensor", s.sensor},
                      {"last_contact", s.last_contact},
                      {"last_batch", s.last_batch},
                      {"reported", s.reported}};
  fs::path dir = fs::path(store->dir()) / "sensors";
  fs::path tmp = dir / (s.sensor + ".json.tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(1) << "\n";
    if (!out) {
      LogEvent("error", "sensor_status_write_failed", {{"sensor", s.sensor}});
      return;
    }
  }
  std::error_code ec;
  fs::rename(tmp, dir / (s.sensor + ".json"), ec);
}

bool Collector::Impl::Admit(const std::string& sensor, double* retry_after) {
  // Token bucket per sensor: `burst` batches at once, `requests_per_second` sustained.
  auto now = Clock::now();
  Bucket& b = buckets[sensor];
  if (b.at == Clock::time_point{}) b.tokens = cfg.collect.burst;
  double dt = std::chrono::duration<double>(now - b.at).count();
  b.at = now;
  b.tokens = std::min(cfg.collect.burst, b.tokens + dt * cfg.collect.requests_per_second);
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return true;
  }
  *retry_after = (1 - b.tokens) / cfg.collect.requests_per_second;
  return false;
}

void Collector::Impl::Refuse(httplib::Response& res, int code, const std::string& sensor,
                             const std::string& why, const std::string& peer) {
  res.status = code;
  res.set_content(
      nlohmann::json{{"error", why}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
      "application/json");
  LogEvent("warn", "batch_refused",
           {{"sensor", sensor}, {"peer", peer}, {"http", code}, {"reason", why}});
  metrics.Add("teiten_collector_refused_total",
              {{"sensor", sensor}, {"http", std::to_string(code)}}, 1);
}

void Collector::Impl::Handle(const httplib::Request& req, httplib::Response& res) {
  std::string peer = req.remote_addr;
  std::string sensor = PeerSensor(req.ssl);
  const SensorConfig* sc = cfg.FindSensor(sensor);
  if (!sc) {
    return Refuse(res, 403, sensor,
                  sensor.empty()
                      ? "no client certificate name"
                      : fmt::format("sensor '{}' is not in the collector's config", sensor),
                  peer);
  }
  {
    std::lock_guard<std::mutex> l(mu);
    double retry = 0;
    if (!Admit(sensor, &retry)) {
      res.set_header("Retry-After", std::to_string(static_cast<int>(retry) + 1));
      res.status = 429;
      metrics.Add("teiten_collector_refused_total", {{"sensor", sensor}, {"http", "429"}}, 1);
      return;
    }
  }
  WireLimits limits;
  limits.max_frame = cfg.collect.max_batch_bytes;
  limits.max_decompressed = std::max<uint64_t>(cfg.collect.max_batch_bytes * 4, 64 << 20);
  // A request carries one batch or a backlog of them back to back; each is checked whole
  // before any is queued, so a request is taken or refused as one.
  auto frames = SplitFrames(req.body, kMaxFramesPerRequest, limits);
  if (!frames.ok()) return Refuse(res, 400, sensor, frames.status().message(), peer);
  std::vector<std::unique_ptr<Pending>> ps;
  std::vector<std::future<Outcome>> done;
  for (size_t f = 0; f < frames->size(); ++f) {
    auto batch = DecodeBatch((*frames)[f], limits);
    if (!batch.ok()) {
      return Refuse(res, 400, sensor, fmt::format("frame {}: {}", f, batch.status().message()),
                    peer);
    }
    if (batch->sensor_id != sensor) {
      return Refuse(res, 403, sensor,
                    fmt::format("batch names sensor '{}' but the certificate is '{}'",
                                batch->sensor_id, sensor),
                    peer);
    }
    auto p = std::make_unique<Pending>();
    p->sensor = sensor;
    p->bytes = (*frames)[f].size();
    p->batch = std::move(*batch);
    done.push_back(p->done.get_future());
    ps.push_back(std::move(p));
  }
  {
    std::lock_guard<std::mutex> l(mu);
    if (stopping) {
      res.status = 503;
      return;
    }
    if (queued_bytes > (size_t{1} << 30)) {
      res.status = 503;
      res.set_header("Retry-After", "5");
      return;
    }
    status[sensor].last_contact = NowUnix();
    for (auto& p : ps) {
      queued_bytes += p->bytes;
      queue.push_back(std::move(p));
    }
  }
  cv.notify_all();
  auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(cfg.collect.commit_wait_seconds));
  size_t duplicates = 0;
  for (auto& d : done) {
    if (d.wait_until(deadline) != std::future_status::ready) {
      // Still queued: the sender retries, and finds it committed (a duplicate) or commits it.
      res.status = 503;
      res.set_header("Retry-After", "5");
      return;
    }
    Outcome o = d.get();
    if (o.http != 200) {
      res.status = o.http;
      res.set_content(o.body, "application/json");
      return;
    }
    duplicates += o.duplicate;
  }
  res.set_content(nlohmann::json{{"committed", true},
                                 {"batches", done.size()},
                                 {"duplicate", duplicates == done.size()},
                                 {"duplicates", duplicates}}
                      .dump(),
                  "application/json");
}

void Collector::Impl::HandleStatus(const httplib::Request& req, httplib::Response& res) {
  std::string sensor = PeerSensor(req.ssl);
  if (!cfg.FindSensor(sensor)) return Refuse(res, 403, sensor, "unknown sensor", req.remote_addr);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(req.body);
  } catch (const std::exception& e) {
    return Refuse(res, 400, sensor, std::string("status is not JSON: ") + e.what(),
                  req.remote_addr);
  }
  if (!j.is_object() || j.dump().size() > 16384) {
    return Refuse(res, 400, sensor, "status must be a JSON object under 16 KiB", req.remote_addr);
  }
  // Keep only numbers: what a sensor reports is shown to analysts and exported as metrics.
  nlohmann::json kept = nlohmann::json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_number() && ValidSensorId(it.key())) kept[it.key()] = it.value();
  }
  {
    std::lock_guard<std::mutex> l(mu);
    SensorStatusFile& st = status[sensor];
    st.last_contact = NowUnix();
    st.reported = kept;
    dirty.insert(sensor);
  }
  cv.notify_all();
  res.set_content("{\"ok\":true}", "application/json");
}

// Merges what the commits made due, on a thread and a Store of its own, beside the commits
// (Store::Merge takes the writer lock only to publish): a sensor's batch is answered when it is
// committed, not after its parts are merged. Every minute also the keys no commit touched for
// [store] merge_cold_after seconds (ten minutes by default), whole, so that a store fed only by
// sensors converges to one part a key without anyone running `teiten merge`.
void Collector::Impl::MergeLoop() {
  auto own = Store::Open(store->dir(), {});
  if (!own.ok()) {
    LogEvent("error", "merge_failed", {{"error", own.status().ToString()}});
    return;
  }
  auto last_cold = Clock::now();
  for (;;) {
    bool cold = false;
    {
      std::unique_lock<std::mutex> l(mu);
      cv.wait_for(l, std::chrono::seconds(5), [&] { return stopping || commits_unmerged > 0; });
      if (stopping) break;
      cold = Clock::now() - last_cold > std::chrono::seconds(60);
      if (commits_unmerged == 0 && !cold) continue;
      commits_unmerged = 0;
    }
    MergeOptions mo;
    mo.yield_to_writers = true;  // a commit waiting on its batch goes first
    if (cold) {
      last_cold = Clock::now();
      mo.cold_after_s = cfg.merge_cold_after;
      mo.cold_budget_bytes = uint64_t{64} << 20;
    }
    auto merged = (*own)->Merge(mo);
    if (!merged.ok()) {
      LogEvent("error", "merge_failed", {{"error", merged.status().ToString()}});
      continue;
    }
    if (merged->newer) {
      std::lock_guard<std::mutex> l(mu);
      ++commits_unmerged;  // look again: commits came in while it merged
    }
    if (merged->merges > 0 || merged->index_merges > 0) {
      LogEvent("info", "parts_merged",
               {{"merges", merged->merges},
                {"parts", merged->parts_merged},
                {"index_merges", merged->index_merges},
                {"dropped", merged->dropped},
                {"yielded_seconds", merged->yielded_seconds},
                {"seconds", merged->seconds}});
      metrics.Add("teiten_collector_parts_merged_total", {},
                  static_cast<double>(merged->parts_merged));
      metrics.Add("teiten_collector_merge_seconds_sum", {}, merged->seconds);
      metrics.Add("teiten_collector_merge_seconds_count", {}, 1);
    }
  }
}

void Collector::Impl::CommitLoop() {
  IngestOptions io;
  io.merge = false;  // MergeLoop's work
  Ingester ingester(store, geo, io);
  auto last_fold = Clock::now();
  for (;;) {
    std::vector<std::unique_ptr<Pending>> take;
    std::set<std::string> to_write;
    {
      std::unique_lock<std::mutex> l(mu);
      cv.wait_for(l, std::chrono::seconds(5),
                  [&] { return stopping || !queue.empty() || !dirty.empty(); });
      while (!queue.empty()) {
        queued_bytes -= queue.front()->bytes;
        take.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      if (take.empty() && stopping) break;
    }
    std::map<std::string, std::vector<Pending*>> by_sensor;
    for (auto& p : take) by_sensor[p->sensor].push_back(p.get());
    for (auto& [sensor, ps] : by_sensor) {
      std::vector<WireBatch> batches;
      for (Pending* p : ps) batches.push_back(std::move(p->batch));
      std::vector<size_t> dups;
      auto t0 = Clock::now();
      auto sum = ingester.IngestBatches(*cfg.FindSensor(sensor), &batches, &dups);
      double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      if (!sum.ok()) {
        LogEvent("error", "commit_failed",
                 {{"sensor", sensor}, {"batches", ps.size()}, {"error", sum.status().ToString()}});
        metrics.Add("teiten_collector_commit_failures_total", {{"sensor", sensor}}, 1);
        for (Pending* p : ps) {
          p->done.set_value({503, nlohmann::json{{"error", sum.status().message()}}.dump()});
        }
        continue;
      }
      std::set<size_t> dup(dups.begin(), dups.end());
      uint64_t rows = 0;
      std::map<std::string, uint64_t> lost;
      for (size_t i = 0; i < batches.size(); ++i) {
        if (dup.count(i)) continue;
        rows += batches[i].obs.rows.size();
        for (const auto& [r, n] : batches[i].lost) lost[r] += n;
      }
      LogEvent("info", "batches_committed",
               {{"sensor", sensor},
                {"batches", batches.size() - dup.size()},
                {"duplicates", dup.size()},
                {"rows", rows},
                {"kept", sum->kept},
                {"seconds", secs}});
      metrics.Add("teiten_collector_batches_total", {{"sensor", sensor}, {"result", "committed"}},
                  static_cast<double>(batches.size() - dup.size()));
      metrics.Add("teiten_collector_batches_total", {{"sensor", sensor}, {"result", "duplicate"}},
                  static_cast<double>(dup.size()));
      metrics.Add("teiten_collector_rows_total", {{"sensor", sensor}}, static_cast<double>(rows));
      metrics.Add("teiten_collector_packets_stored_total", {{"sensor", sensor}},
                  static_cast<double>(sum->kept));
      for (const auto& [r, n] : lost) {
        metrics.Add("teiten_collector_sensor_lost_total", {{"sensor", sensor}, {"reason", r}},
                    static_cast<double>(n));
      }
      metrics.Add("teiten_collector_commit_seconds_sum", {}, secs);
      metrics.Add("teiten_collector_commit_seconds_count", {}, 1);
      {
        std::lock_guard<std::mutex> l(mu);
        SensorStatusFile& st = status[sensor];
        st.last_batch = st.last_contact = NowUnix();
        dirty.insert(sensor);
        ++commits_unmerged;
      }
      cv.notify_all();
      for (size_t i = 0; i < ps.size(); ++i) {
        ps[i]->done.set_value({200, "", dup.count(i) > 0});
      }
    }
    if (take.empty() && Clock::now() - last_fold > std::chrono::seconds(60)) {
      // A quiet moment: fold the last minutes' commits into few inputs, so that the manifest,
      // segments and index files grow with the data, not with the number of commits.
      last_fold = Clock::now();
      auto t0 = Clock::now();
      uint64_t folded = 0;
      auto txn = store->Begin();
      Status st = txn.ok()
                      ? (*txn)->FoldInputs(
                            FoldOptions{.batch_min_age_s = 60, .capture_min_age_s = -1}, &folded)
                      : txn.status();
      if (!st.ok()) {
        LogEvent("error", "fold_failed", {{"error", st.ToString()}});
      } else if (folded > 0) {
        LogEvent("info", "inputs_folded",
                 {{"inputs", folded},
                  {"seconds", std::chrono::duration<double>(Clock::now() - t0).count()}});
        metrics.Add("teiten_collector_inputs_folded_total", {}, static_cast<double>(folded));
      }
    }
    {
      std::lock_guard<std::mutex> l(mu);
      for (const std::string& s : dirty) to_write.insert(s);
      dirty.clear();
    }
    for (const std::string& s : to_write) {
      SensorStatusFile copy;
      {
        std::lock_guard<std::mutex> l(mu);
        copy = status[s];
      }
      WriteStatus(copy);
    }
  }
}

Status Collector::Start() {
  Impl& m = *impl_;
  const CollectConfig& cc = m.cfg.collect;
  for (auto [what, path] : {std::pair{"cert", cc.cert}, {"key", cc.key}, {"ca", cc.ca}}) {
    if (path.empty()) {
      return InvalidArgument(fmt::format("{}: [collect] needs '{}'", m.cfg.path, what));
    }
  }
  RETURN_IF_ERROR(m.LoadStatus());
  std::string ctx_error;
  m.tls = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
    // TLS 1.3 only; the client must present a certificate our CA signed (and not revoked).
    SSL_CTX_set_min_proto_version(&ctx, TLS1_3_VERSION);
    if (SSL_CTX_use_certificate_chain_file(&ctx, cc.cert.c_str()) != 1) {
      ctx_error = fmt::format("certificate {}: {}", cc.cert, OpensslError());
      return false;
    }
    if (SSL_CTX_use_PrivateKey_file(&ctx, cc.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(&ctx) != 1) {
      ctx_error = fmt::format("key {}: {}", cc.key, OpensslError());
      return false;
    }
    if (SSL_CTX_load_verify_locations(&ctx, cc.ca.c_str(), nullptr) != 1) {
      ctx_error = fmt::format("ca {}: {}", cc.ca, OpensslError());
      return false;
    }
    SSL_CTX_set_client_CA_list(&ctx, SSL_load_client_CA_file(cc.ca.c_str()));
    if (!cc.crl.empty()) {
      X509_STORE* st = SSL_CTX_get_cert_store(&ctx);
      if (X509_STORE_load_file(st, cc.crl.c_str()) != 1) {
        ctx_error = fmt::format("crl {}: {}", cc.crl, OpensslError());
        return false;
      }
      X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
    }
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, VerifyCallback);
    return true;
  });
  if (!m.tls->is_valid()) {
    return InvalidArgument(fmt::format("{}: [collect]: {}", m.cfg.path,
                                       ctx_error.empty() ? "TLS setup failed" : ctx_error));
  }
  m.tls->set_payload_max_length(cc.max_batch_bytes);
  m.tls->set_read_timeout(30, 0);
  m.tls->set_write_timeout(30, 0);
  // One request per connection, and workers enough for the requests waiting on a commit: with
  // keep-alive, each connected sensor would hold a worker and the 9th of 8 would never be served.
  m.tls->set_keep_alive_max_count(1);
  m.tls->new_task_queue = [] { return new httplib::ThreadPool(64); };
  m.tls->Post("/v1/batches",
              [&m](const httplib::Request& q, httplib::Response& r) { m.Handle(q, r); });
  m.tls->Post("/v1/status",
              [&m](const httplib::Request& q, httplib::Response& r) { m.HandleStatus(q, r); });
  m.tls->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        LogEvent("error", "handler_exception", {{"error", what}});
        res.status = 500;
      });
  ASSIGN_OR_RETURN(auto hp, SplitHostPort(cc.listen, "listen"));
  if (hp.second == 0) {
    m.bound_port = m.tls->bind_to_any_port(hp.first);
  } else if (m.tls->bind_to_port(hp.first, hp.second)) {
    m.bound_port = hp.second;
  } else {
    m.bound_port = -1;
  }
  if (m.bound_port <= 0) {
    return IoError(fmt::format("{}: [collect] listen '{}': cannot bind", m.cfg.path, cc.listen));
  }
  if (!cc.metrics.empty()) {
    ASSIGN_OR_RETURN(auto mp, SplitHostPort(cc.metrics, "metrics"));
    m.plain = std::make_unique<httplib::Server>();
    m.plain->Get("/metrics", [&m](const httplib::Request&, httplib::Response& r) {
      {
        std::lock_guard<std::mutex> l(m.mu);
        m.metrics.Set("teiten_collector_queue_batches", {}, static_cast<double>(m.queue.size()));
        m.metrics.Set("teiten_collector_queue_bytes", {}, static_cast<double>(m.queued_bytes));
        for (const auto& [id, st] : m.status) {
          m.metrics.Set("teiten_collector_sensor_last_contact_seconds", {{"sensor", id}},
                        static_cast<double>(st.last_contact));
          m.metrics.Set("teiten_collector_sensor_last_batch_seconds", {{"sensor", id}},
                        static_cast<double>(st.last_batch));
          if (st.reported.is_object()) {
            for (auto it = st.reported.begin(); it != st.reported.end(); ++it) {
              m.metrics.Set("teiten_collector_sensor_reported",
                            {{"sensor", id}, {"what", it.key()}}, it.value().get<double>());
            }
          }
        }
      }
      r.set_content(m.metrics.Text(), "text/plain; version=0.0.4");
    });
    bool ok = mp.second == 0 ? m.plain->bind_to_any_port(mp.first) > 0
                             : m.plain->bind_to_port(mp.first, mp.second);
    if (!ok) {
      return IoError(
          fmt::format("{}: [collect] metrics '{}': cannot bind", m.cfg.path, cc.metrics));
    }
    m.plain_thread = std::thread([&m] { m.plain->listen_after_bind(); });
  }
  m.committer = std::thread([&m] { m.CommitLoop(); });
  m.merger = std::thread([&m] { m.MergeLoop(); });
  m.tls_thread = std::thread([&m] { m.tls->listen_after_bind(); });
  LogEvent("info", "collector_started",
           {{"listen", cc.listen},
            {"port", m.bound_port},
            {"store", m.store->dir()},
            {"sensors", m.cfg.sensors.size()}});
  return OkStatus();
}

void Collector::Stop() {
  Impl& m = *impl_;
  if (!m.tls_thread.joinable() && !m.committer.joinable()) return;
  // Stop taking new batches; those queued are committed and answered before the loop ends.
  if (m.tls) m.tls->stop();
  {
    std::lock_guard<std::mutex> l(m.mu);
    m.stopping = true;
  }
  m.cv.notify_all();
  if (m.committer.joinable()) m.committer.join();
  if (m.merger.joinable()) m.merger.join();  // after its merge in hand, if any
  if (m.tls_thread.joinable()) m.tls_thread.join();
  if (m.plain) m.plain->stop();
  if (m.plain_thread.joinable()) m.plain_thread.join();
  LogEvent("info", "collector_stopped");
}

}  // namespace teiten
