#include "daemon/sensor_daemon.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <grp.h>
#include <httplib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "analysis/sensor_health.h"
#include "capture/pcap_file.h"
#include "daemon/batcher.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "sensor/nflog.h"
#include "transport/spool.h"

namespace teiten {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// The BPF program: only packets to the monitored prefixes reach user space (a host sensor also
// needs its own outbound packets, to recognise replies to them).
std::string BpfFilter(const SensorConfig& s) {
  std::string f;
  for (const Prefix& p : s.prefixes) {
    if (!f.empty()) f += " or ";
    f += fmt::format("{} net {}", s.mode == SensorMode::kHost ? "" : "dst", p.ToString());
  }
  // VLAN-tagged frames carry the same packets one header further on.
  return fmt::format("({}) or (vlan and ({}))", f, f);
}

struct UrlParts {
  std::string host;
  int port = 443;
};

Result<UrlParts> ParseCollectorUrl(const std::string& url) {
  if (!url.starts_with("https://")) {
    return InvalidArgument(fmt::format("collector '{}': must be https://host:port", url));
  }
  std::string rest = url.substr(8);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  UrlParts u;
  std::string port;
  if (rest.starts_with("[")) {  // [2001:db8::1]:8443
    size_t close = rest.find(']');
    if (close == std::string::npos)
      return InvalidArgument(fmt::format("collector '{}': bad host", url));
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':')
        return InvalidArgument(fmt::format("collector '{}': bad host", url));
      port = rest.substr(close + 2);
    }
    rest = rest.substr(1, close - 1);
  } else if (size_t colon = rest.rfind(':'); colon != std::string::npos) {
    port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  if (!port.empty()) {
    u.port = -1;
    if (port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos) {
      u.port = std::stoi(port);
    }
  }
  if (rest.empty() || rest.find_first_of("/?#@") != std::string::npos || u.port <= 0 ||
      u.port > 65535) {
    return InvalidArgument(fmt::format("collector '{}': must be https://host:port", url));
  }
  u.host = rest;
  return u;
}

Status DropPrivileges(const std::string& user) {
  if (user.empty()) return OkStatus();
  struct passwd* pw = ::getpwnam(user.c_str());
  if (!pw) return InvalidArgument(fmt::format("[daemon] user '{}': no such user", user));
  if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0) {
    return IoError(fmt::format("[daemon] user '{}': cannot switch", user));
  }
  // Dropping from root to another uid clears the capability sets; no_new_privs keeps an exec
  // from gaining any back.
  if (::setuid(0) == 0) return Internal("[daemon] privileges could be regained after dropping");
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  return OkStatus();
}

}  // namespace

struct SensorDaemon::Impl {
  explicit Impl(const Config& c) : cfg(c) {}

  Config cfg;
  SensorConfig sensor;
  std::unique_ptr<Batcher> batcher;
  std::unique_ptr<Spool> spool;
  std::mutex spool_mu;  // the spool is shared by the capture (appends) and the sender (acks)
  std::condition_variable wake_sender;
  Metrics metrics;
  std::unique_ptr<httplib::Server> metrics_server;
  std::thread metrics_thread, sender;
  std::atomic<bool> sender_stop{false};
  Clock::time_point batch_started = Clock::now();
  // Live capture.
  pcap_t* pcap = nullptr;
  int dlt = 0;
  uint64_t kernel_dropped_seen = 0;
  // Raw retention (C6).
  pcap_dumper_t* dumper = nullptr;
  std::string dump_path;
  uint64_t dump_bytes = 0;
  uint64_t dump_seq = 0;
  Clock::time_point dump_opened{};
  // Watched directory: files done, by name → "size mtime".
  std::map<std::string, std::string> done_files;
  std::atomic<int64_t> last_ack{0};
  // The sensor's certificate, key and CA, read before privileges are dropped (the key is
  // readable by root only).
  X509* client_cert = nullptr;
  EVP_PKEY* client_key = nullptr;
  std::string ca_pem;

  // Netfilter LOG lines (C3), followed; where they were read up to is kept in the spool.
  std::unique_ptr<NetfilterLogReader> nflog;
  NflogCounts nflog_reported;
  std::string NflogPosPath() const { return cfg.daemon.spool + "/netfilter_log.pos"; }
  void ReadNflog();

  Status LoadCredentials();
  X509_STORE* CaStore() const;

  Status Open();
  Status AppendBatch();
  void MaybeFlush(bool force);
  void SendLoop();
  Status CaptureOnce();
  void WatchOnce();
  void Retain(const struct pcap_pkthdr* h, const u_char* bytes);
  void RotateRaw();
  void UpdateMetrics();
  std::string DoneListPath() const { return cfg.daemon.spool + "/watched.done"; }
  void SaveDoneList();
};

SensorDaemon::SensorDaemon(const Config& cfg) : impl_(std::make_unique<Impl>(cfg)) {}

SensorDaemon::~SensorDaemon() {
  Impl& m = *impl_;
  if (m.client_cert) X509_free(m.client_cert);
  if (m.client_key) EVP_PKEY_free(m.client_key);
  if (m.pcap) pcap_close(m.pcap);
  if (m.dumper) pcap_dump_close(m.dumper);
}

Status SensorDaemon::Impl::LoadCredentials() {
  const DaemonConfig& d = cfg.daemon;
  for (auto [what, path] : {std::pair{"cert", d.cert}, {"key", d.key}, {"ca", d.ca}}) {
    if (path.empty())
      return InvalidArgument(fmt::format("{}: [daemon] needs '{}'", cfg.path, what));
  }
  auto read = [](const std::string& path) -> Result<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return IoError(fmt::format("{}: cannot read", path));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  ASSIGN_OR_RETURN(std::string cert_pem, read(d.cert));
  ASSIGN_OR_RETURN(std::string key_pem, read(d.key));
  ASSIGN_OR_RETURN(ca_pem, read(d.ca));
  BIO* b = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  client_cert = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  if (!client_cert) return InvalidArgument(fmt::format("{}: not a PEM certificate", d.cert));
  b = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  client_key = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  if (!client_key) return InvalidArgument(fmt::format("{}: not a PEM private key", d.key));
  if (X509_check_private_key(client_cert, client_key) != 1) {
    return InvalidArgument(fmt::format("{} does not belong to {}", d.key, d.cert));
  }
  X509_STORE* st = CaStore();
  if (!st) return InvalidArgument(fmt::format("{}: no PEM certificate", d.ca));
  X509_STORE_free(st);
  // The certificate must name this sensor, or the collector will refuse every batch.
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(client_cert), NID_commonName, cn, sizeof cn);
  if (sensor.id != cn) {
    return InvalidArgument(
        fmt::format("{} names sensor '{}', but this is sensor '{}'", d.cert, cn, sensor.id));
  }
  return OkStatus();
}

X509_STORE* SensorDaemon::Impl::CaStore() const {
  BIO* b = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  X509_STORE* st = X509_STORE_new();
  int n = 0;
  while (X509* c = PEM_read_bio_X509(b, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(st, c);
    X509_free(c);
    ++n;
  }
  ERR_clear_error();
  BIO_free(b);
  if (n == 0) {
    X509_STORE_free(st);
    return nullptr;
  }
  return st;
}

Status SensorDaemon::Impl::Open() {
  const DaemonConfig& d = cfg.daemon;
  if (cfg.sensors.empty()) return InvalidArgument(fmt::format("{}: no [[sensor]]", cfg.path));
  if (d.sensor.empty()) {
    if (cfg.sensors.size() != 1) {
      return InvalidArgument(
          fmt::format("{}: [daemon] sensor = \"…\" must say which [[sensor]] this is", cfg.path));
    }
    sensor = cfg.sensors[0];
  } else {
    const SensorConfig* s = cfg.FindSensor(d.sensor);
    if (!s)
      return InvalidArgument(
          fmt::format("{}: [daemon] sensor '{}' not defined", cfg.path, d.sensor));
    sensor = *s;
  }
  if (d.interface.empty() && d.watch_dir.empty() && d.netfilter_log.empty()) {
    return InvalidArgument(fmt::format(
        "{}: [daemon] needs an input: interface, watch_dir and/or netfilter_log", cfg.path));
  }
  if (d.spool.empty()) return InvalidArgument(fmt::format("{}: [daemon] needs spool", cfg.path));
  if (d.collector.empty()) {
    return InvalidArgument(fmt::format("{}: [daemon] needs collector", cfg.path));
  }
  RETURN_IF_ERROR(ParseCollectorUrl(d.collector).status());
  RETURN_IF_ERROR(LoadCredentials());
  ASSIGN_OR_RETURN(spool, Spool::Open({d.spool, d.spool_budget_bytes, sensor.id}));
  for (const std::string& c : spool->corrupt()) {
    LogEvent("error", "spool_file_corrupt", {{"detail", c}});
  }
  batcher = std::make_unique<Batcher>(sensor);
  if (!d.interface.empty()) {
    char err[PCAP_ERRBUF_SIZE] = {};
    pcap = pcap_create(d.interface.c_str(), err);
    if (!pcap) return IoError(fmt::format("capture {}: {}", d.interface, err));
    pcap_set_snaplen(pcap, d.snaplen);
    pcap_set_promisc(pcap, 1);  // a darknet's addresses are not the interface's own
    pcap_set_timeout(pcap, 100);
    pcap_set_buffer_size(pcap,
                         static_cast<int>(std::min<uint64_t>(d.capture_buffer_bytes, INT32_MAX)));
    pcap_set_tstamp_precision(pcap, PCAP_TSTAMP_PRECISION_MICRO);
    int rc = pcap_activate(pcap);
    if (rc < 0) {
      return IoError(
          fmt::format("capture {}: {} (needs CAP_NET_RAW)", d.interface, pcap_geterr(pcap)));
    }
    if (rc > 0) {
      LogEvent("warn", "capture_warning",
               {{"interface", d.interface}, {"detail", pcap_geterr(pcap)}});
    }
    dlt = pcap_datalink(pcap);
    // Non-blocking, waited for with poll(): on Linux a blocking read may never time out while
    // no packet arrives, and then the batch already gathered would wait for the next packet.
    if (pcap_setnonblock(pcap, 1, err) != 0) {
      return IoError(fmt::format("capture {}: non-blocking: {}", d.interface, err));
    }
    std::string filter = BpfFilter(sensor);
    struct bpf_program prog;
    if (pcap_compile(pcap, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0 ||
        pcap_setfilter(pcap, &prog) != 0) {
      return IoError(
          fmt::format("capture {}: filter '{}': {}", d.interface, filter, pcap_geterr(pcap)));
    }
    pcap_freecode(&prog);
    LogEvent("info", "capture_opened",
             {{"interface", d.interface},
              {"filter", filter},
              {"link_type", dlt},
              {"buffer_bytes", d.capture_buffer_bytes}});
  }
  if (!d.netfilter_log.empty()) {
    NflogReaderOptions ro;
    ro.follow = true;
    std::ifstream pos(NflogPosPath());
    pos >> ro.resume_inode >> ro.resume_offset;
    NflogContext ctx;
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    ctx.year = tm.tm_year + 1900;  // classic syslog lines carry none
    ASSIGN_OR_RETURN(auto r, NetfilterLogReader::Open(d.netfilter_log, ctx, ro));
    nflog = std::make_unique<NetfilterLogReader>(std::move(r));
    LogEvent("info", "netfilter_log_opened",
             {{"path", d.netfilter_log}, {"resumed_at", nflog->position().offset}});
  }
  if (!d.raw_dir.empty()) {
    std::error_code ec;
    fs::create_directories(d.raw_dir, ec);
    if (ec) return IoError(fmt::format("raw_dir {}: {}", d.raw_dir, ec.message()));
  }
  if (!d.watch_dir.empty()) {
    std::ifstream in(DoneListPath());
    std::string name, sig;
    while (std::getline(in, name, '\t') && std::getline(in, sig)) done_files[name] = sig;
  }
  if (!d.metrics.empty()) {
    size_t colon = d.metrics.rfind(':');
    if (colon == std::string::npos) {
      return InvalidArgument(fmt::format("[daemon] metrics '{}': expected host:port", d.metrics));
    }
    metrics_server = std::make_unique<httplib::Server>();
    metrics_server->Get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
      UpdateMetrics();
      r.set_content(metrics.Text(), "text/plain; version=0.0.4");
    });
    int port = std::atoi(d.metrics.substr(colon + 1).c_str());
    if (!metrics_server->bind_to_port(d.metrics.substr(0, colon), port)) {
      return IoError(fmt::format("[daemon] metrics '{}': cannot bind", d.metrics));
    }
    metrics_thread = std::thread([this] { metrics_server->listen_after_bind(); });
  }
  // Everything that needs privilege is open: the spool and raw directories become the user's.
  if (!d.user.empty()) {
    struct passwd* pw = ::getpwnam(d.user.c_str());
    if (!pw) return InvalidArgument(fmt::format("[daemon] user '{}': no such user", d.user));
    for (const std::string& dir : {d.spool, d.raw_dir}) {
      if (dir.empty()) continue;
      std::error_code ec;
      for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
        if (::chown(e.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) break;
      }
      if (::chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        return IoError(fmt::format("chown {} to {}", dir, d.user));
      }
    }
  }
  RETURN_IF_ERROR(DropPrivileges(d.user));
  return OkStatus();
}

void SensorDaemon::Impl::UpdateMetrics() {
  {
    std::lock_guard<std::mutex> l(spool_mu);
    metrics.Set("teiten_sensor_spool_bytes", {}, static_cast<double>(spool->bytes()));
    metrics.Set("teiten_sensor_spool_batches", {}, static_cast<double>(spool->Pending().size()));
    for (const auto& [reason, n] : spool->dropped_total()) {
      metrics.Set("teiten_sensor_lost_total", {{"reason", reason}}, static_cast<double>(n));
    }
    metrics.Set("teiten_sensor_frames_total", {}, static_cast<double>(batcher->frames()));
    metrics.Set("teiten_sensor_kept_total", {}, static_cast<double>(batcher->kept()));
    for (const auto& [reason, n] : batcher->dropped_total()) {
      metrics.Set(
          IsLossReason(reason) ? "teiten_sensor_lost_total" : "teiten_sensor_filtered_total",
          {{"reason", reason}}, static_cast<double>(n));
    }
  }
  metrics.Set("teiten_sensor_last_ack_seconds", {}, static_cast<double>(last_ack.load()));
}

Status SensorDaemon::Impl::AppendBatch() {
  std::lock_guard<std::mutex> l(spool_mu);
  if (pcap) {
    struct pcap_stat st {};
    if (pcap_stats(pcap, &st) == 0) {
      uint64_t dropped = uint64_t{st.ps_drop} + st.ps_ifdrop;
      if (dropped > kernel_dropped_seen) {
        batcher->CountLost("kernel_dropped", dropped - kernel_dropped_seen);
        kernel_dropped_seen = dropped;
      }
    }
  }
  batch_started = Clock::now();
  // Losses the spool holds (a batch it could not write) travel in the next batch; with no
  // traffic to carry them, an empty batch does, so that the centre hears of them now.
  if (batcher->rows() == 0 && !batcher->has_losses() && spool->pending_lost().empty()) {
    return OkStatus();
  }
  WireBatch b = batcher->Take();
  uint64_t rows = b.obs.rows.size();
  ASSIGN_OR_RETURN(auto id, spool->Append(std::move(b)));
  if (nflog) {
    // Everything the reader yielded is in the spool now (or counted lost): a restart reads on
    // from here. A kill between the two reads some lines again (at least once, never not at all).
    NetfilterLogReader::Position p = nflog->position();
    std::string tmp = NflogPosPath() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << p.inode << " " << p.offset << "\n";
    }
    std::error_code ec;
    fs::rename(tmp, NflogPosPath(), ec);
  }
  metrics.Add("teiten_sensor_batches_spooled_total", {}, id ? 1 : 0);
  metrics.Add("teiten_sensor_rows_spooled_total", {}, id ? static_cast<double>(rows) : 0);
  if (!id) LogEvent("warn", "spool_full", {{"rows_lost", rows}, {"spool_bytes", spool->bytes()}});
  wake_sender.notify_all();
  return OkStatus();
}

void SensorDaemon::Impl::MaybeFlush(bool force) {
  double age = std::chrono::duration<double>(Clock::now() - batch_started).count();
  if (force || batcher->rows() >= cfg.daemon.batch_rows || age >= cfg.daemon.batch_seconds) {
    Status st = AppendBatch();
    if (!st.ok()) LogEvent("error", "spool_append_failed", {{"error", st.ToString()}});
  }
}

void SensorDaemon::Impl::RotateRaw() {
  if (dumper) pcap_dump_close(dumper);
  dumper = nullptr;
  const DaemonConfig& d = cfg.daemon;
  // Age and total size limits: the oldest files go first.
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(d.raw_dir, ec)) {
    if (e.path().extension() != ".pcap") continue;
    files.push_back({e.last_write_time(ec), e.path()});
    total += e.file_size(ec);
  }
  std::sort(files.begin(), files.end());
  auto now = fs::file_time_type::clock::now();
  for (const auto& [t, p] : files) {
    bool too_old = std::chrono::duration<double>(now - t).count() > d.raw_max_age_days * 86400;
    if (!too_old && total + d.raw_file_bytes <= d.raw_total_bytes) break;
    uint64_t sz = fs::file_size(p, ec);
    fs::remove(p, ec);
    total -= std::min(total, sz);
  }
  // Named by time (sorting as they were written) and a sequence number: two files opened in the
  // same second must not share a name, or the second would truncate the first.
  std::time_t now_s = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now_s, &tm);
  dump_path = fmt::format("{}/{}-{:%Y%m%dT%H%M%S}-{:06}.pcap", d.raw_dir, sensor.id, tm,
                          ++dump_seq % 1000000);
  dumper = pcap_dump_open(pcap, dump_path.c_str());
  if (!dumper)
    LogEvent("error", "raw_open_failed", {{"path", dump_path}, {"error", pcap_geterr(pcap)}});
  dump_bytes = 24;
  dump_opened = Clock::now();
}

void SensorDaemon::Impl::Retain(const struct pcap_pkthdr* h, const u_char* bytes) {
  const DaemonConfig& d = cfg.daemon;
  double age = std::chrono::duration<double>(Clock::now() - dump_opened).count();
  if (!dumper || dump_bytes + 16 + h->caplen > d.raw_file_bytes ||
      age > std::min(3600.0, d.raw_max_age_days * 86400)) {
    RotateRaw();
  }
  if (!dumper) return;
  pcap_dump(reinterpret_cast<u_char*>(dumper), h, bytes);
  dump_bytes += 16 + h->caplen;
}

void SensorDaemon::Impl::ReadNflog() {
  nflog->context().ts_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  ObservationBatch lines;
  for (;;) {
    lines.clear();
    auto n = nflog->Next(&lines, 4096);
    if (!n.ok()) {
      LogEvent("error", "netfilter_log_read_failed", {{"error", n.status().ToString()}});
      return;
    }
    {
      std::lock_guard<std::mutex> l(spool_mu);
      for (const Observation& o : lines.rows) batcher->AddObservation(o, lines);
      // Lines that could not be read are counted like packets the decoder could not.
      const NflogCounts& c = nflog->counts();
      for (size_t e = 0; e < static_cast<size_t>(NflogError::kCount); ++e) {
        uint64_t delta = c.errors[e] - nflog_reported.errors[e];
        if (delta)
          batcher->CountLost(
              std::string("netfilter_log_") + NflogErrorName(static_cast<NflogError>(e)), delta);
        nflog_reported.errors[e] = c.errors[e];
      }
    }
    if (batcher->rows() >= cfg.daemon.batch_rows) MaybeFlush(true);
    if (*n == 0) return;
  }
}

Status SensorDaemon::Impl::CaptureOnce() {
  struct Ctx {
    Impl* m;
  } ctx{this};
  struct pollfd pfd {
    pcap_get_selectable_fd(pcap), POLLIN, 0
  };
  if (pfd.fd >= 0 && ::poll(&pfd, 1, 100) == 0) return OkStatus();
  int n = pcap_dispatch(
      pcap, 4096,
      [](u_char* user, const struct pcap_pkthdr* h, const u_char* bytes) {
        Impl* m = reinterpret_cast<Ctx*>(user)->m;
        int64_t ts = int64_t{h->ts.tv_sec} * 1000000 + h->ts.tv_usec;
        {
          std::lock_guard<std::mutex> l(m->spool_mu);
          m->batcher->AddFrame(m->dlt, ts, bytes, h->caplen, h->len);
        }
        if (!m->cfg.daemon.raw_dir.empty()) m->Retain(h, bytes);
      },
      reinterpret_cast<u_char*>(&ctx));
  if (n < 0) return IoError(fmt::format("capture {}: {}", cfg.daemon.interface, pcap_geterr(pcap)));
  // Raw retention reaches the file at every read, so a kill loses at most the frames of one.
  if (dumper && n > 0) pcap_dump_flush(dumper);
  return OkStatus();
}

void SensorDaemon::Impl::SaveDoneList() {
  std::string tmp = DoneListPath() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [name, sig] : done_files) out << name << '\t' << sig << '\n';
  }
  std::error_code ec;
  fs::rename(tmp, DoneListPath(), ec);
}

void SensorDaemon::Impl::WatchOnce() {
  // A file is complete when it has not changed for 5 s (a rotating writer has moved on).
  std::error_code ec;
  std::vector<fs::path> ready;
  auto now = fs::file_time_type::clock::now();
  for (const auto& e : fs::directory_iterator(cfg.daemon.watch_dir, ec)) {
    if (!e.is_regular_file(ec)) continue;
    std::string name = e.path().filename().string();
    if (name.starts_with(".")) continue;
    auto mtime = e.last_write_time(ec);
    if (std::chrono::duration<double>(now - mtime).count() < 5) continue;
    std::string sig = fmt::format("{} {}", e.file_size(ec), mtime.time_since_epoch().count());
    auto it = done_files.find(name);
    if (it != done_files.end() && it->second == sig) continue;
    ready.push_back(e.path());
  }
  if (ec)
    LogEvent("warn", "watch_dir_unreadable",
             {{"dir", cfg.daemon.watch_dir}, {"error", ec.message()}});
  std::sort(ready.begin(), ready.end());
  for (const fs::path& p : ready) {
    auto file = PcapFile::Open(p.string());
    uint64_t kept_before = batcher->kept();
    std::string error;
    if (!file.ok()) {
      error = file.status().message();
    } else {
      PcapFile::Packet pkt;
      for (;;) {
        auto more = (*file)->Next(&pkt);
        if (!more.ok()) {
          error = more.status().message();
          break;
        }
        if (!*more) break;
        {
          std::lock_guard<std::mutex> l(spool_mu);
          batcher->AddFrame((*file)->datalink(), pkt.ts_us, pkt.data, pkt.caplen, pkt.wirelen);
        }
        if (batcher->rows() >= cfg.daemon.batch_rows) MaybeFlush(true);
      }
    }
    // The file's packets are spooled before it is marked done: a kill between the two sends
    // them twice, a kill before spooling sends them once — never not at all.
    MaybeFlush(true);
    auto mtime = fs::last_write_time(p, ec);
    done_files[p.filename().string()] =
        fmt::format("{} {}", fs::file_size(p, ec), mtime.time_since_epoch().count());
    SaveDoneList();
    LogEvent(error.empty() ? "info" : "warn", "watched_file_read",
             {{"file", p.string()}, {"kept", batcher->kept() - kept_before}, {"error", error}});
  }
}

void SensorDaemon::Impl::SendLoop() {
  auto url = *ParseCollectorUrl(cfg.daemon.collector);
  const DaemonConfig& d = cfg.daemon;
  auto make_client = [&] {
    auto c = std::make_unique<httplib::SSLClient>(url.host, url.port, client_cert, client_key);
    c->set_ca_cert_store(CaStore());  // the client's context owns it
    c->enable_server_certificate_verification(true);
    SSL_CTX_set_min_proto_version(c->ssl_context(), TLS1_3_VERSION);
    c->set_connection_timeout(10, 0);
    c->set_read_timeout(60, 0);
    c->set_write_timeout(60, 0);
    c->set_keep_alive(true);
    return c;
  };
  auto client = make_client();
  double backoff = 0.5;
  auto last_status = Clock::now() - std::chrono::hours(1);
  while (!sender_stop.load()) {
    std::vector<uint64_t> pending;
    {
      std::unique_lock<std::mutex> l(spool_mu);
      pending = spool->Pending();
      if (pending.empty()) {
        wake_sender.wait_for(l, std::chrono::milliseconds(500));
        pending = spool->Pending();
      }
    }
    bool failed = false;
    // The backlog goes oldest first, many batches to a request (the collector commits a
    // request's batches together), at most 256 batches or 8 MiB at a time.
    for (size_t next = 0; next < pending.size() && !sender_stop.load();) {
      std::string body;
      std::vector<uint64_t> ids;
      while (next < pending.size() && ids.size() < 256 && body.size() < (size_t{8} << 20)) {
        uint64_t id = pending[next];
        Result<std::string> bytes = [&] {
          std::lock_guard<std::mutex> l(spool_mu);
          return spool->Read(id);
        }();
        if (!bytes.ok()) {
          LogEvent("error", "spool_read_failed",
                   {{"batch", id}, {"error", bytes.status().ToString()}});
          break;
        }
        if (!ids.empty() && body.size() + bytes->size() > (size_t{8} << 20)) break;
        body += *bytes;
        ids.push_back(id);
        ++next;
      }
      if (ids.empty()) {
        failed = true;
        break;
      }
      auto res = client->Post("/v1/batches", body, "application/octet-stream");
      if (!res) {
        LogEvent("warn", "send_failed",
                 {{"batches", ids.size()},
                  {"first", ids.front()},
                  {"error", httplib::to_string(res.error())}});
        metrics.Add("teiten_sensor_send_failures_total", {{"reason", "network"}}, 1);
        failed = true;
        break;
      }
      if (res->status == 200) {
        std::lock_guard<std::mutex> l(spool_mu);
        for (uint64_t id : ids) {
          Status st = spool->Ack(id);
          if (!st.ok()) {
            LogEvent("error", "spool_ack_failed", {{"batch", id}, {"error", st.ToString()}});
          }
        }
        metrics.Add("teiten_sensor_batches_acked_total", {}, static_cast<double>(ids.size()));
        metrics.Add("teiten_sensor_bytes_sent_total", {}, static_cast<double>(body.size()));
        last_ack = static_cast<int64_t>(std::time(nullptr));
        backoff = 0.5;
        continue;
      }
      // 429 and 5xx: the collector will take them later. 4xx: it will never take them — a
      // configuration mistake (an unknown sensor, a wrong certificate) that a person must fix;
      // the batches stay spooled and are retried, slowly, never thrown away.
      LogEvent("warn", "send_refused",
               {{"batches", ids.size()},
                {"first", ids.front()},
                {"http", res->status},
                {"body", res->body.substr(0, 300)}});
      metrics.Add("teiten_sensor_send_failures_total", {{"reason", std::to_string(res->status)}},
                  1);
      if (res->status >= 400 && res->status < 500 && res->status != 429) {
        backoff = std::max(backoff, 30.0);
      }
      failed = true;
      break;
    }
    if (Clock::now() - last_status > std::chrono::duration<double>(d.batch_seconds) && !failed) {
      UpdateMetrics();
      nlohmann::json st;
      {
        std::lock_guard<std::mutex> l(spool_mu);
        st = {{"spool_bytes", spool->bytes()},
              {"spool_batches", spool->Pending().size()},
              {"frames", batcher->frames()},
              {"kept", batcher->kept()},
              {"kernel_dropped", kernel_dropped_seen}};
        for (const auto& [r, n] : spool->dropped_total()) st["lost_" + r] = n;
      }
      auto res = client->Post("/v1/status", st.dump(), "application/json");
      if (res && res->status == 200) last_status = Clock::now();
    }
    if (failed) {
      client = make_client();  // a fresh connection after a failure (the old one may be half-open)
      for (double waited = 0; waited < backoff && !sender_stop.load(); waited += 0.1) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      backoff = std::min(backoff * 2, 30.0);
    }
  }
}

Status SensorDaemon::Run(const std::atomic<bool>* stop) {
  Impl& m = *impl_;
  RETURN_IF_ERROR(m.Open());
  LogEvent("info", "sensor_started",
           {{"sensor", m.sensor.id},
            {"collector", m.cfg.daemon.collector},
            {"spool", m.cfg.daemon.spool},
            {"spooled_batches", m.spool->Pending().size()},
            {"uid", ::getuid()}});
  m.sender = std::thread([&m] { m.SendLoop(); });
  auto last_watch = Clock::now() - std::chrono::hours(1);
  Status result = OkStatus();
  while (!stop->load()) {
    if (m.pcap) {
      Status st = m.CaptureOnce();
      if (!st.ok()) {
        result = st;
        break;
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (m.nflog) m.ReadNflog();
    if (!m.cfg.daemon.watch_dir.empty() && Clock::now() - last_watch > std::chrono::seconds(2)) {
      m.WatchOnce();
      last_watch = Clock::now();
    }
    m.MaybeFlush(false);
  }
  // SIGTERM: what was captured goes to the spool; the sender has a few seconds to deliver it.
  if (m.pcap) {
    if (Status st = m.CaptureOnce(); !st.ok()) {
      LogEvent("error", "capture_failed", {{"error", st.ToString()}});
    }
  }
  if (m.nflog) m.ReadNflog();
  m.MaybeFlush(true);
  if (m.dumper) pcap_dump_flush(m.dumper);
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> l(m.spool_mu);
      if (m.spool->Pending().empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  m.sender_stop = true;
  m.wake_sender.notify_all();
  m.sender.join();
  if (m.metrics_server) m.metrics_server->stop();
  if (m.metrics_thread.joinable()) m.metrics_thread.join();
  size_t left;
  {
    std::lock_guard<std::mutex> l(m.spool_mu);
    left = m.spool->Pending().size();
  }
  LogEvent("info", "sensor_stopped",
           {{"spooled_batches", left}, {"error", result.ok() ? "" : result.ToString()}});
  return result;
}

}  // namespace teiten
