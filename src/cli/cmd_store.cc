// The commands that write or look after a store and run the sensor network: ingest, geo, merge,
// verify, rebuild, forget, retain, collect, sensor and sensors.
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "analysis/dos.h"
#include "analysis/os_guesses.h"
#include "analysis/payloads.h"
#include "analysis/query.h"
#include "analysis/scans.h"
#include "analysis/sensor_health.h"
#include "analysis/tools.h"
#include "cli/cli_common.h"
#include "cli/table.h"
#include "daemon/collector.h"
#include "daemon/sensor_daemon.h"
#include "enrich/names.h"
#include "ingest/ingest.h"
#include "report/report.h"
#include "sensor/config.h"
#include "simulate/simulate_command.h"
#include "store/durable.h"
#include "store/file_out.h"
#include "store/store.h"
#include "store/verify.h"
#include "web/access.h"
#include "web/server.h"

namespace teiten {
namespace {

class Progress {
 public:
  explicit Progress(std::string name) : name_(std::move(name)), tty_(isatty(2) != 0) {
    t0_ = std::chrono::steady_clock::now();
  }
  void Update(uint64_t packets, uint64_t bytes, uint64_t total_bytes) {
    if (!tty_) return;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    double rate = s > 0 ? static_cast<double>(packets) / s / 1e6 : 0;
    if (total_bytes > 0) {
      double frac = std::min(1.0, static_cast<double>(bytes) / static_cast<double>(total_bytes));
      int filled = static_cast<int>(frac * 30);
      fmt::print(stderr, "\r{} [{}{}] {:3.0f}% {} packets {:.1f} Mpps", name_,
                 std::string(static_cast<size_t>(filled), '#'),
                 std::string(static_cast<size_t>(30 - filled), ' '), frac * 100, Thousands(packets),
                 rate);
    } else {
      fmt::print(stderr, "\r{} {} packets {:.1f} Mpps", name_, Thousands(packets), rate);
    }
  }
  void Done() {
    if (tty_) fmt::print(stderr, "\r\033[K");
  }

 private:
  std::string name_;
  bool tty_;
  std::chrono::steady_clock::time_point t0_;
};

// The binary's own path, not /proc/self/exe, which ps and top would show as "exe".
std::string SelfExe() {
  std::error_code ec;
  std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  return ec || exe.empty() ? "/proc/self/exe" : exe;
}

// Starts `teiten merge --background` on the store, detached (a session of its own, its output
// appended to STORE/merge.log): the command that committed returns while its parts merge, as
// `git gc --auto` detaches. The merger runs niced, one at a time per store (see RunMerge). It
// reads the config this command read (`config_path` as $TEITEN_CONFIG; its --store names the
// store): the settings it merges by ([store] merge_cold_after) are that config's.
void SpawnBackgroundMerge(const std::string& store_dir, const std::string& config_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string dir = fs::absolute(store_dir, ec).string();
  const std::string log = (fs::path(dir) / "merge.log").string();
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (config_path.empty() || std::strncmp(*e, "TEITEN_CONFIG=", 14) != 0) env.push_back(*e);
  }
  if (!config_path.empty())
    env.push_back("TEITEN_CONFIG=" + fs::absolute(config_path, ec).string());
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // a caller's pipe must see its EOF
  posix_spawnattr_init(&at);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
  const std::string exe = SelfExe();
  std::string arg0 = "teiten", sub = "merge", bg = "--background", opt = "--store";
  std::string dir_arg = dir;
  char* argv[] = {arg0.data(), sub.data(), bg.data(), opt.data(), dir_arg.data(), nullptr};
  pid_t pid = 0;
  if (int e = posix_spawn(&pid, exe.c_str(), &fa, &at, argv, envp.data()); e != 0) {
    std::cerr << "teiten: starting the background merge: " << std::strerror(e)
              << " (run `teiten merge`)\n";
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
}

// How `teiten ingest` merges what its commits made due: "background" (the default) or "wait"
// (in the command, before it returns: scripts and tests that look at the files after it). The
// environment's TEITEN_MERGE sets the default.
std::string DefaultMergeMode() {
  const char* e = std::getenv("TEITEN_MERGE");
  return e && *e ? e : "background";
}

int RunIngest(const Common& c, const std::string& sensor_id, const std::vector<std::string>& files,
              const std::string& merge_mode) {
  if (merge_mode != "background" && merge_mode != "wait") {
    return Fail(InvalidArgument(fmt::format(
        "--merge {}: must be background or wait (TEITEN_MERGE sets the default)", merge_mode)));
  }
  const bool background = merge_mode == "background";
  auto cfg = LoadConfigFor(c);
  if (!cfg.ok()) return Fail(cfg.status());
  const SensorConfig* sensor = cfg->FindSensor(sensor_id);
  if (!sensor) {
    return Fail(NotFound(fmt::format("sensor '{}' is not defined in {}", sensor_id,
                                     cfg->path.empty() ? "the config" : cfg->path)));
  }
  auto store = Store::Open(cfg->store_path, {.create = true, .timezone = cfg->timezone});
  if (!store.ok()) return Fail(store.status());
  std::unique_ptr<GeoDb> geo;
  if (!cfg->country_db.empty() || !cfg->asn_db.empty()) {
    // The range-table walk (~0.5 s) pays off past a few hundred thousand packets; below that,
    // lookups through the trees are cheaper than building it (a collector's small batch, a
    // sensor-hour's file).
    uint64_t input_bytes = 0;
    for (const auto& f : files) {
      std::error_code ec;
      uint64_t n = std::filesystem::is_regular_file(f, ec) ? std::filesystem::file_size(f, ec) : 0;
      input_bytes += ec || n == 0 ? (uint64_t{1} << 40) : n;
    }
    auto g = OpenGeoFor(*cfg, input_bytes > (uint64_t{16} << 20));
    if (!g.ok()) return Fail(g.status());
    geo = std::move(*g);
  } else {
    std::cerr
        << "teiten: warning: no [geo] databases configured; countries and ASNs will be unknown\n";
  }
  int rc = 0;
  Table t({"file", "packets", "kept", "dropped", "anomalies", "seconds", "Mpps", "status"});
  uint64_t total_read = 0, total_kept = 0;
  for (const auto& f : files) {
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(f, ec);
    Progress prog(std::filesystem::path(f).filename().string());
    IngestOptions opts;
    opts.progress = [&](uint64_t p, uint64_t b) { prog.Update(p, b, size); };
    opts.merge = !background;
    Ingester ing(store->get(), geo.get(), opts);
    auto r = ing.IngestFile(*sensor, f);
    prog.Done();
    if (!r.ok()) {
      std::cerr << "teiten: " << r.status().ToString() << "\n";
      rc = 1;
      t.AddRow({Text(f), Text("-"), Text("-"), Text("-"), Text("-"), Text("-"), Text("-"),
                Text("error")});
      continue;
    }
    uint64_t dropped = 0, anomalies = 0;
    std::string detail;
    for (auto& [k, v] : r->dropped) {
      dropped += v;
      detail += fmt::format(" {}={}", k, v);
    }
    for (auto& [k, v] : r->anomalies) {
      anomalies += v;
      detail += fmt::format(" {}={}", k, v);
    }
    std::string status = r->already_ingested ? "already ingested (unchanged)" : "ok";
    if (!r->error.empty()) {
      status = "partial: " + r->error;
      std::cerr << "teiten: " << r->error << " (the packets before it were kept)\n";
      rc = 1;
    }
    if (!detail.empty() && !r->already_ingested) status += ";" + detail;
    total_read += r->packets_read;
    total_kept += r->kept;
    double mpps = r->seconds > 0 ? static_cast<double>(r->packets_read) / r->seconds / 1e6 : 0;
    t.AddRow({Text(f), Count(r->packets_read), Count(r->kept), Count(dropped), Count(anomalies),
              Fixed(r->seconds, 2), Fixed(mpps, 2), Text(status)});
  }
  // Keys no commit has touched for merge_cold_after seconds (ten minutes by default) are merged
  // whole (within a bounded budget per command), so a store fed by periodic ingests converges to
  // one part a key without anyone running `teiten merge`; after the last ingest, the background
  // merger comes back for the keys still hot (RunBackgroundMerge).
  // Captures older than a day are folded into few inputs, tier by tier, so that files and the
  // manifest grow with the data, not with the number of ingests.
  if (auto txn = (*store)->Begin(); txn.ok()) {
    uint64_t folded = 0;
    FoldOptions fo;
    fo.batch_min_age_s = -1;  // the collector's work
    if (Status st = (*txn)->FoldInputs(fo, &folded); !st.ok()) {
      std::cerr << "teiten: folding inputs: " << st.ToString() << "\n";
      rc = 1;
    }
  } else {
    std::cerr << "teiten: folding inputs: " << txn.status().ToString() << "\n";
    rc = 1;
  }
  if (background) {
    SpawnBackgroundMerge(cfg->store_path, cfg->path);
  } else {
    MergeOptions cold;
    cold.cold_after_s = cfg->merge_cold_after;
    if (auto m = (*store)->Merge(cold); !m.ok()) {
      std::cerr << "teiten: merging rollup parts: " << m.status().ToString() << "\n";
      rc = 1;
    }
  }
  auto fmt_ok = ParseFormat(c.format);
  t.Write(std::cout, fmt_ok.ok() ? *fmt_ok : OutputFormat::kTable);
  return rc;
}

// `teiten geo`: which databases enrich, their dates, and (for the simulator) the IPv4 ranges.
int RunGeo(const Common& c, const std::string& ranges_out, const std::string& lookup) {
  auto cfg = LoadConfigFor(c, false);
  if (!cfg.ok()) return Fail(cfg.status());
  const Config& conf = *cfg;
  if (conf.country_db.empty() && conf.asn_db.empty()) {
    return Fail(InvalidArgument("no [geo] databases in the config"));
  }
  if (!lookup.empty() && ranges_out.empty()) {
    // One address: one lookup in each database, not the walk.
    auto g = GeoLookup::Open(conf.country_db, conf.asn_db);
    if (!g.ok()) return Fail(g.status());
    auto a = IpAddr::Parse(lookup);
    if (!a) return Fail(InvalidArgument(fmt::format("'{}' is not an address", lookup)));
    GeoInfo info = (*g)->Lookup(*a).info;
    const AsnNames names = NameSourceNetworks(conf, {{*a, info.asn}});
    fmt::print("{} {} {} AS{} {}\n", a->ToString(), CountryCodeString(info.country),
               CountryName(info.country, ParseLang(c.lang)), info.asn, AsnNameIn(&names, info.asn));
    return 0;
  }
  auto geo = OpenGeoFor(conf, true);
  if (!geo.ok()) return Fail(geo.status());
  if (!ranges_out.empty()) {
    FILE* f = std::fopen(ranges_out.c_str(), "w");
    if (!f) return Fail(IoError(ranges_out));
    for (const auto& r : (*geo)->v4_ranges()) {
      if (r.info.country == 0) continue;
      fmt::print(f, "{},{},{},{}\n", IpAddr::V4(r.first).ToString(), IpAddr::V4(r.last).ToString(),
                 CountryCodeString(r.info.country), r.info.asn);
    }
    std::fclose(f);
    return 0;
  }
  Table t({"database", "type", "built", "description", "IPv4 ranges"});
  for (const GeoDbInfo* i : {&(*geo)->country_info(), &(*geo)->asn_info()}) {
    if (i->path.empty()) continue;
    t.AddRow({Text(i->path), Text(i->database_type), Text(i->BuildDate()), Text(i->description),
              Count((*geo)->v4_ranges().size())});
  }
  t.Write(std::cout, OutputFormat::kTable);
  return 0;
}

// The time that begins a line of STORE/merge.log (UTC).
std::string Stamp() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// A background merger runs niced by 10 (the next ingest and the queries go first), and only
// once: a merger that waited and merges again (RunLinger) already is.
void NiceBackground() {
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, 0);
  if (errno != 0 || now >= 10) return;
  if (nice(10 - now) == -1 && errno != 0) {
    // Not fatal: it merges at the ingest's priority.
  }
}

// Becomes `teiten merge ARGS` (the same process: its output, environment and priority): how a
// background merger turns into the one that waits, and back. Returns only when that failed.
int ExecMerge(const std::vector<std::string>& args) {
  std::vector<std::string> words = {"teiten", "merge"};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  const std::string exe = SelfExe();
  ::execv(exe.c_str(), argv.data());
  // A binary replaced since it started (a rebuild) is still there as /proc/self/exe.
  ::execv("/proc/self/exe", argv.data());
  std::cerr << Stamp() << " teiten merge: exec " << exe << ": " << std::strerror(errno)
            << " (keys may keep several parts until the next ingest or `teiten merge`)\n";
  return 1;
}

// How long a background merger that found another merge running waits before it looks again,
// at most: the running merge may be a `teiten merge`, which does not come back for what the
// commits beside it left.
constexpr int64_t kBusyRecheckSeconds = 60;

// The descriptor on which a background merger hands the wait lock it took to the `teiten merge
// --linger` it becomes (the lock belongs to the open file, which exec keeps).
constexpr int kWaitFd = 3;

// The lock on STORE/MERGEWAIT, taken without waiting: held by the one process per store that
// waits to merge again (RunLinger). -1 when another holds it, or the store is gone.
int TakeWaitLock(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / "FORMAT", ec)) return -1;  // not a store (any more)
  int fd = ::open((fs::path(dir) / "MERGEWAIT").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0 && FlockRetry(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// `teiten merge --background`, which `teiten ingest` starts detached: what is due and cold,
// again while commits keep arriving. A key its passes left in several parts because a commit
// wrote one of them lately turns cold later (MergeStats::next_cold_at), and on a store that has
// gone quiet no commit starts another merge: so it then becomes `teiten merge --linger UNTIL`
// (RunLinger), which waits for that moment without the store and runs this again, until nothing
// is left to turn cold. A merger finding another merge running merges nothing (the running one
// looks again after its pass when the store moved on meanwhile) and lingers for a while too.
int RunBackgroundMerge(const Common& c) {
  NiceBackground();
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) {
    std::cerr << Stamp() << " teiten merge: " << store.status().ToString() << "\n";
    return 1;
  }
  int64_t come_back = 0;
  bool busy = false;
  for (int pass = 0; pass < 1000; ++pass) {
    MergeOptions mo;
    mo.cold_after_s = cfg.merge_cold_after;
    mo.try_lock = true;
    mo.yield_to_writers = true;  // the next ingest's cores are its own
    mo.all_indexes = true;       // the spills of the ingests that started it
    auto r = (*store)->Merge(mo);
    if (!r.ok()) {
      std::cerr << Stamp() << " teiten merge: " << r.status().ToString() << "\n";
      return 1;
    }
    if (r->busy) {
      busy = true;
      come_back = std::time(nullptr) + std::min(cfg.merge_cold_after, kBusyRecheckSeconds);
      break;
    }
    come_back = r->next_cold_at;  // the last pass saw the newest manifest
    if (r->merges == 0 && r->index_merges == 0 && !r->newer) break;
  }
  // What its merges replaced while queries read it stays until no reader holds it (a report
  // running beside the merge, say: the demo's left 194 files). Looked at again for a minute, a
  // second apart (Begin removes what no reader holds any more); then left to the next writer.
  for (int i = 0; !busy && i < 60 && !(*store)->manifest().garbage.empty(); ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
    if (!(*store)->Begin().ok()) break;
  }
  std::error_code ec;
  const std::string dir = std::filesystem::absolute((*store)->dir(), ec).string();
  store->reset();  // a waiting merger holds no snapshot
  if (come_back == 0) return 0;
  // Only the merger that will wait becomes `--linger`: it takes the wait lock first (another
  // waiting comes back for these keys too, see RunLinger) and keeps it across exec.
  const int fd = TakeWaitLock(dir);
  if (fd < 0) return 0;
  if (fd != kWaitFd) {
    if (::dup2(fd, kWaitFd) < 0) return 1;  // (dup2's copy is not closed on exec)
    ::close(fd);
  } else if (::fcntl(fd, F_SETFD, 0) != 0) {
    return 1;
  }
  return ExecMerge({"--linger", std::to_string(come_back), "--store", dir});
}

// `teiten merge --linger UNTIL` (hidden; what a background merger becomes when it left keys hot):
// waits until the epoch second UNTIL, then merges as `teiten merge --background` again. While it
// waits it holds nothing of the store (a Store would pin its snapshot's files, which later
// commits replace, and MERGER stays free for the merges of new ingests), and it does not look
// like a merge running to the scripts that wait for one (pgrep "merge --background --store DIR").
// One process waits per store: the one holding the lock on STORE/MERGEWAIT. A merger that finds
// it held leaves instead of waiting: the waiter merges after its wait against whatever was
// committed until then, and comes back for what is still hot in turn. The waiter lets the lock
// go before it merges, so that a merger ending meanwhile waits in its place.
int RunLinger(const Common& c, int64_t until) {
  namespace fs = std::filesystem;
  NiceBackground();
  // Whatever goes wrong here, it leaves quietly: the store or its config may be gone (a test's,
  // or the demo's previous run), and a later ingest starts a merger again.
  auto cfg = LoadConfigFor(c);
  if (!cfg.ok()) return 0;
  const std::string dir = cfg->store_path;
  const std::string wait_path = (fs::path(dir) / "MERGEWAIT").string();
  std::error_code ec;
  {
    // The lock the background merger took, or (started by hand) its own.
    struct stat held {};
    struct stat named {};
    int fd = -1;
    if (::fstat(kWaitFd, &held) == 0 && ::stat(wait_path.c_str(), &named) == 0 &&
        held.st_dev == named.st_dev && held.st_ino == named.st_ino &&
        FlockRetry(kWaitFd, LOCK_EX | LOCK_NB) == 0) {
      fd = kWaitFd;
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    } else {
      fd = TakeWaitLock(dir);
    }
    OwnedFd wait_lock(fd);
    if (fd < 0 || ::fstat(fd, &held) != 0) return 0;  // another waits, or no store
    // Never longer than a key takes to turn cold (and a little), whatever UNTIL says or the
    // clock does meanwhile: then it merges and looks again.
    using namespace std::chrono;
    auto wait = system_clock::from_time_t(static_cast<std::time_t>(until)) - system_clock::now();
    wait = std::clamp<system_clock::duration>(wait, system_clock::duration::zero(),
                                              seconds(cfg->merge_cold_after + 5));
    const auto deadline = steady_clock::now() + wait;
    for (auto left = deadline - steady_clock::now(); left > steady_clock::duration::zero();
         left = deadline - steady_clock::now()) {
      std::this_thread::sleep_for(std::min<steady_clock::duration>(left, seconds(5)));
      // A store removed (or removed and made again at the same path) has nothing of its own to
      // come back for: its MERGEWAIT is no longer the file locked here.
      struct stat now {};
      if (::stat(wait_path.c_str(), &now) != 0 || now.st_ino != held.st_ino ||
          now.st_dev != held.st_dev || !fs::exists(fs::path(dir) / "FORMAT", ec)) {
        return 0;
      }
    }
  }  // the wait lock goes here, before the merge
  return ExecMerge({"--background", "--store", fs::absolute(dir, ec).string()});
}

int RunMerge(const Common& c, bool all, int64_t fold_captures_after, bool background,
             int64_t linger_until) {
  if (linger_until > 0) return RunLinger(c, linger_until);
  if (background) return RunBackgroundMerge(c);
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  auto count_files = [&] {
    std::set<std::string> files;  // a part may be named by a sensor's key and a pooled one
    (*store)->ForEachRollup([&](const std::string& f) { files.insert(f); });
    return files.size();
  };
  size_t before = count_files();
  size_t inputs_before = (*store)->manifest().inputs.size();
  uint64_t folded = 0;
  {
    // Small inputs folded into few: sensors' batches (one per collector commit) whatever their
    // age, captures once `fold_captures_after` seconds old (a day by default: until then each
    // can be forgotten alone); with --all whatever their size tiers.
    auto txn = (*store)->Begin();
    if (!txn.ok()) return Fail(txn.status());
    FoldOptions fo;
    fo.batch_min_age_s = 0;
    fo.capture_min_age_s = fold_captures_after;
    fo.all = all;
    if (Status st = (*txn)->FoldInputs(fo, &folded); !st.ok()) return Fail(st);
  }
  MergeOptions mo;
  mo.all = all;
  mo.cold_after_s = cfg.merge_cold_after;
  auto r = (*store)->Merge(mo);
  if (!r.ok()) return Fail(r.status());
  size_t after = count_files();
  Table t({"measure", "value"});
  t.AddRow({Text("rollup files before"), Count(before)});
  t.AddRow({Text("rollup files after"), Count(after)});
  t.AddRow({Text("merged parts written"), Count(r->merges)});
  t.AddRow({Text("source index files merged"), Count(r->indexes_merged)});
  t.AddRow({Text("merged source index files written"), Count(r->index_merges)});
  t.AddRow({Text("inputs before"), Count(inputs_before)});
  t.AddRow({Text("inputs after"), Count((*store)->manifest().inputs.size())});
  t.AddRow({Text("MB read"), Fixed(static_cast<double>(r->bytes_read) / 1e6, 1)});
  t.AddRow({Text("MB written"), Fixed(static_cast<double>(r->bytes_written) / 1e6, 1)});
  t.AddRow({Text("seconds"), Fixed(r->seconds, 2)});
  auto fmt_ok = ParseFormat(c.format);
  t.Write(std::cout, fmt_ok.ok() ? *fmt_ok : OutputFormat::kTable);
  return 0;
}

int RunVerify(const Common& c) {
  std::string dir = StorePathFor(c);
  if (dir.empty()) return Fail(InvalidArgument("no store: give --store or --config"));
  auto r = VerifyStore(dir);
  if (!r.ok()) return Fail(r.status());
  for (const auto& w : r->warnings) std::cerr << "teiten: warning: " << w << "\n";
  for (const auto& f : r->faults) std::cerr << "teiten: fault: " << f << "\n";
  Table t({"checked", "count"});
  t.AddRow({Text("days"), Count(r->days)});
  t.AddRow({Text("segments"), Count(r->segments)});
  t.AddRow({Text("blocks"), Count(r->blocks)});
  t.AddRow({Text("rows"), Count(r->rows)});
  t.AddRow({Text("rollup files"), Count(r->rollup_files)});
  t.AddRow({Text("index files"), Count(r->index_files)});
  t.AddRow({Text("faults"), Count(r->faults.size())});
  t.AddRow({Text("warnings"), Count(r->warnings.size())});
  auto fmt_ok = ParseFormat(c.format);
  t.Write(std::cout, fmt_ok.ok() ? *fmt_ok : OutputFormat::kTable);
  if (!r->ok()) {
    std::cerr << "teiten: " << dir << " has faults; `teiten rebuild` makes the rollups and "
              << "indexes again from the segments (a damaged segment's rows are lost)\n";
    return 1;
  }
  return 0;
}

int RunRebuild(const Common& c) {
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  auto t0 = std::chrono::steady_clock::now();
  {
    auto txn = (*store)->Begin();
    if (!txn.ok()) return Fail(txn.status());
    if (Status st = (*txn)->RebuildRollups({}); !st.ok()) return Fail(st);
  }
  {
    auto txn = (*store)->Begin();
    if (!txn.ok()) return Fail(txn.status());
    if (Status st = (*txn)->RebuildIndexes(); !st.ok()) return Fail(st);
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << fmt::format(
      "rebuilt the rollups and source indexes of {} from its segments in "
      "{:.1f} s\n",
      (*store)->dir(), s);
  return 0;
}

int RunForget(const Common& c, const std::string& which) {
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  std::vector<const InputRecord*> match;
  for (const auto& in : (*store)->manifest().inputs) {
    auto held = (*store)->InputHolds(in, which);
    if (!held.ok()) return Fail(held.status());
    if (*held || in.path == which) match.push_back(&in);
  }
  if (match.empty())
    return Fail(NotFound(fmt::format("no input '{}' in {}", which, (*store)->dir())));
  if (match.size() > 1) {
    return Fail(InvalidArgument(
        fmt::format("'{}' names {} inputs: give the identity (teiten forget --input HASH) of one",
                    which, match.size())));
  }
  InputRecord in = *match[0];
  auto txn = (*store)->Begin();
  if (!txn.ok()) return Fail(txn.status());
  // A capture folded into a larger input is named by its own identity: Forget says why it
  // cannot go alone.
  bool own = in.hash == which || in.path == which || in.file_hash == which;
  std::string hash = own ? in.hash : which;
  if (Status st = (*txn)->Forget(hash); !st.ok()) return Fail(st);
  std::cout << fmt::format("forgot {} ({}, sensor {}): {} packets\n", in.path, in.hash, in.sensor,
                           Thousands(in.kept));
  return 0;
}

int RunRetain(const Common& c, int keep_days, const std::string& before) {
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  int32_t cut;
  if (!before.empty()) {
    auto p = ParsePeriod(before);
    if (!p.ok() || p->days() != 1) {
      return Fail(
          InvalidArgument(fmt::format("--before '{}': expected a day, YYYY-MM-DD", before)));
    }
    cut = p->first_day;
  } else if (keep_days > 0) {
    int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    cut = (*store)->tz().LocalDay(now_us) - keep_days;
  } else {
    return Fail(InvalidArgument("give --keep-days N (N > 0) or --before YYYY-MM-DD"));
  }
  auto txn = (*store)->Begin();
  if (!txn.ok()) return Fail(txn.status());
  uint64_t freed = 0;
  if (Status st = (*txn)->Retain(cut, &freed); !st.ok()) return Fail(st);
  std::cout << fmt::format(
      "dropped the observations of days before {} ({} MB of segments); their rollups and source "
      "index summaries stay\n",
      TimeZone::DayString(cut), Fixed(static_cast<double>(freed) / 1e6, 1).text);
  return 0;
}

int RunCollect(const Common& c) {
  sigset_t stop_signals = BlockStopSignals();
  auto cfg = LoadConfigFor(c);
  if (!cfg.ok()) return Fail(cfg.status());
  if (!cfg->has_collect) {
    return Fail(InvalidArgument(fmt::format("{}: no [collect] section", cfg->path)));
  }
  auto store = Store::Open(cfg->store_path, {.create = true, .timezone = cfg->timezone});
  if (!store.ok()) return Fail(store.status());
  std::unique_ptr<GeoDb> geo;
  if (!cfg->country_db.empty() || !cfg->asn_db.empty()) {
    auto g = OpenGeoFor(*cfg, true);  // long-lived: the range table pays
    if (!g.ok()) return Fail(g.status());
    geo = std::move(*g);
  }
  Collector collector(*cfg, store->get(), geo.get());
  if (Status st = collector.Start(); !st.ok()) return Fail(st);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  collector.Stop();
  return 0;
}

int RunSensorDaemon(const Common& c) {
  sigset_t stop_signals = BlockStopSignals();
  auto cfg = LoadConfigFor(c, false);
  if (!cfg.ok()) return Fail(cfg.status());
  if (!cfg->has_daemon) {
    return Fail(InvalidArgument(fmt::format("{}: no [daemon] section", cfg->path)));
  }
  static std::atomic<bool> stop{false};
  std::thread waiter([stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    stop = true;
  });
  waiter.detach();
  SensorDaemon daemon(*cfg);
  Status st = daemon.Run(&stop);
  return st.ok() ? 0 : Fail(st);
}

std::string Ago(int64_t then, int64_t now) {
  if (then <= 0) return "never";
  int64_t d = std::max<int64_t>(0, now - then);
  if (d < 120) return fmt::format("{} s ago", d);
  if (d < 7200) return fmt::format("{} min ago", d / 60);
  if (d < 172800) return fmt::format("{} h ago", d / 3600);
  return fmt::format("{} days ago", d / 86400);
}

int RunSensors(const Common& c) {
  auto f = ParseFormat(c.format);
  if (!f.ok()) return Fail(f.status());
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  auto rows = SensorHealth(**store);
  if (!rows.ok()) return Fail(rows.status());
  // Sensors the config names that never delivered anything belong in the list most of all.
  for (const SensorConfig& s : cfg.sensors) {
    bool known = false;
    for (const SensorHealthRow& r : *rows) known |= r.id == s.id;
    if (!known) {
      SensorHealthRow r;
      r.id = s.id;
      r.name = s.name;
      r.group = s.group;
      r.country = s.country;
      r.mode = s.mode == SensorMode::kHost ? "host" : "darknet";
      rows->push_back(std::move(r));
    }
  }
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  Table t({"sensor", "group", "mode", "last contact", "last data", "inputs", "batches", "packets",
           "backlog", "lost"});
  for (const SensorHealthRow& r : *rows) {
    std::string lost;
    for (const auto& [reason, n] : r.lost) {
      if (!lost.empty()) lost += ", ";
      lost += fmt::format("{} {}", reason, Count(n).text);
    }
    std::string backlog = r.backlog_batches < 0
                              ? "-"
                              : fmt::format("{} batches, {} KB", r.backlog_batches,
                                            Count(r.backlog_bytes / 1000).text);
    t.AddRow({Text(r.id), Text(r.group), Text(r.mode), Text(Ago(r.last_contact, now)),
              Text(Ago(r.last_input, now)), Count(r.inputs), Count(r.batches), Count(r.packets),
              Text(backlog), Text(lost.empty() ? "none" : lost)});
  }
  t.Write(std::cout, *f);
  return 0;
}

}  // namespace

void AddIngestCommand(Commands& cmds) {
  Common& c = cmds.common();
  struct Args {
    std::string sensor_id;
    std::vector<std::string> files;
    std::string merge = DefaultMergeMode();
  };
  auto a = std::make_shared<Args>();
  auto* ingest = cmds.Add("ingest", "read captures into the store");
  ingest->add_option("--merge", a->merge,
                     "merge the parts the commits made due in the background (default: a "
                     "detached `teiten merge --background`, output in STORE/merge.log) or wait "
                     "for it (wait); TEITEN_MERGE sets the default");
  ingest->add_option("--sensor", a->sensor_id, "the sensor (from the config) that recorded them")
      ->required();
  ingest->add_option("files", a->files, "pcap/pcapng files, plain, .gz or .zst")->required();
  cmds.OnParsed(ingest, [&c, a] { return RunIngest(c, a->sensor_id, a->files, a->merge); });
}

void AddStoreCommands(Commands& cmds) {
  Common& c = cmds.common();
  struct Args {
    std::string ranges_out, lookup;
    bool merge_all = false;
    bool merge_background = false;
    int64_t linger_until = 0;
    int64_t fold_after = kFoldCapturesAfterSeconds;
    std::string forget_input;
    int keep_days = 0;
    std::string retain_before;
  };
  auto a = std::make_shared<Args>();
  auto* geo = cmds.Add("geo", "the geo databases: what they are, lookups, IPv4 ranges");
  geo->add_option("--lang", c.lang, "en or ja");
  geo->add_option("--ranges-csv", a->ranges_out, "write every IPv4 range as first,last,CC,ASN");
  geo->add_option("--lookup", a->lookup, "look up one address");
  cmds.OnParsed(geo, [&c, a] { return RunGeo(c, a->ranges_out, a->lookup); });

  auto* merge = cmds.Add(
      "merge",
      "merge rollup parts now (ingest starts a merge of what its commits made due by itself)");
  merge->add_flag("--all", a->merge_all,
                  "merge every key's parts as far as the size cap allows, and fold every small "
                  "input whatever its size");
  merge->add_option("--fold-captures-after", a->fold_after,
                    "fold captures ingested at least this many seconds ago (default a day; a "
                    "folded capture can no longer be forgotten alone; negative: never)");
  merge->add_flag("--background", a->merge_background,
                  "what `teiten ingest` starts after its commits: merge what is due, again while "
                  "commits arrive, quietly and niced, and once more when the keys they left turn "
                  "cold ([store] merge_cold_after); leave at once if another merge runs");
  // What a background merger becomes while it waits for the keys it left to turn cold.
  merge->add_option("--linger", a->linger_until)->group("");
  cmds.OnParsed(merge, [&c, a] {
    return RunMerge(c, a->merge_all, a->fold_after, a->merge_background, a->linger_until);
  });

  auto* verify = cmds.Add(
      "verify", "check a whole store: checksums, structure, orphans, rollups against segments");
  cmds.OnParsed(verify, [&c] { return RunVerify(c); });
  auto* rebuild =
      cmds.Add("rebuild", "make the rollups and source indexes again from the segments");
  cmds.OnParsed(rebuild, [&c] { return RunRebuild(c); });
  auto* forget = cmds.Add("forget", "remove one ingested input and all its counts");
  forget->add_option("--input", a->forget_input, "the input's identity (hash) or path")->required();
  cmds.OnParsed(forget, [&c, a] { return RunForget(c, a->forget_input); });

  auto* retain = cmds.Add(
      "retain", "drop observations older than N days; rollups and per-IP summaries stay (S3)");
  retain->add_option("--keep-days", a->keep_days, "keep the observations of the last N days");
  retain->add_option("--before", a->retain_before, "drop the observations of days before this one");
  cmds.OnParsed(retain, [&c, a] { return RunRetain(c, a->keep_days, a->retain_before); });

  auto* collect = cmds.Add(
      "collect", "the centre: take sensors' batches over TLS and commit them to the store");
  cmds.OnParsed(collect, [&c] { return RunCollect(c); });
  auto* sensor_cmd = cmds.Add(
      "sensor", "run at a sensor: capture, spool, and deliver to the collector ([daemon] config)");
  cmds.OnParsed(sensor_cmd, [&c] { return RunSensorDaemon(c); });
  auto* sensors_cmd =
      cmds.Add("sensors", "each sensor's last contact, delivered packets, backlog and losses");
  cmds.OnParsed(sensors_cmd, [&c] { return RunSensors(c); });
}

}  // namespace teiten
