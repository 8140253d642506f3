// Merging beside commits (issue 16, point 2): a merge works against a snapshot without the
// writer lock and publishes key by key into whatever the commits made of the manifest meanwhile;
// `teiten ingest` leaves its merge to a detached `teiten merge --background`, which a kill -9
// may stop at any moment.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <set>
#include <thread>

#include "analysis/query.h"
#include "ingest/ingest.h"
#include "store/verify.h"
#include "store_test_support.h"
#include "test_support.h"

namespace teiten {
namespace {

using namespace store_testing;

// Ingests s<from>..s<to - 1> one by one, each its own commit, with no merge after it.
std::vector<std::string> IngestUnmerged(Store* s, const std::string& dir, int from, int to) {
  std::vector<std::string> hashes;
  for (int f = from; f < to; ++f) {
    IngestOptions no_merge;
    no_merge.merge = false;
    auto r =
        Ingester(s, nullptr, no_merge).IngestFile(Sensor(), fmt::format("{}/s{}.pcap", dir, f));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    hashes.push_back(r.ok() ? r->hash : "");
  }
  return hashes;
}

// Files in seg/, rollup/, idx/ and man/ on disk that the manifest names neither as live nor as
// garbage.
std::vector<std::string> Stray(const Store& store) {
  std::vector<std::string> named = ManifestFiles(store.manifest());
  named.insert(named.end(), store.manifest().garbage.begin(), store.manifest().garbage.end());
  std::set<std::string> live(named.begin(), named.end());
  std::vector<std::string> out;
  for (const char* sub : {"seg", "rollup", "idx", "man"}) {
    for (const auto& e : fs::directory_iterator(store.dir() + "/" + sub)) {
      std::string rel = std::string(sub) + "/" + e.path().filename().string();
      if (!live.count(rel)) out.push_back(rel);
    }
  }
  return out;
}

// The answers of a store made by ingesting s<from>..s<to - 1> and merging it whole, quietly.
std::string Reference(const std::string& captures, int from, int to) {
  testing::TempDir ref_dir;
  auto ref = Store::Open(ref_dir.path(), {.create = true, .timezone = "Asia/Tokyo"});
  EXPECT_TRUE(ref.ok());
  IngestUnmerged(ref->get(), captures, from, to);
  MergeOptions all;
  all.all = true;
  EXPECT_TRUE((*ref)->Merge(all).ok());
  return FullAnswers(**ref);
}

TEST_F(StoreTest, CommitsWhileAMergeRunsKeepTheirPartsAndTheMergePublishesItsOwnBesideThem) {
  WriteSmallCaptures(dir_.path(), 40);
  const std::string want = Reference(dir_.path(), 0, 40);
  Open();
  IngestUnmerged(store_.get(), dir_.path(), 0, 30);
  const size_t parts_before = store_->manifest().days.begin()->second.begin()->second.size();
  ASSERT_GE(parts_before, 10u);
  // Ten commits land after the merge took its snapshot and wrote its parts, before it publishes:
  // through another Store, as another process would.
  MergeOptions all;
  all.all = true;
  uint64_t gen_before_commits = 0, gen_after_commits = 0;
  all.before_publish = [&] {
    auto other = Store::Open(Path("store"), {});
    ASSERT_TRUE(other.ok());
    gen_before_commits = (*other)->manifest().generation;
    IngestUnmerged(other->get(), dir_.path(), 30, 40);
    gen_after_commits = (*other)->manifest().generation;
  };
  auto r = store_->Merge(all);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(gen_after_commits, gen_before_commits + 10);  // the commits did not wait for it
  EXPECT_GT(r->merges, 0u);
  EXPECT_TRUE(r->newer);
  EXPECT_EQ(r->dropped, 0u);
  // Every day key names its merged part and the parts of the commits made meanwhile: s30..s39
  // over three days, 4, 3 and 3 of them.
  std::multiset<size_t> fresh;
  for (const auto& [day, per_sensor] : store_->manifest().days) {
    for (const auto& [sensor, parts] : per_sensor) {
      size_t merged = 0;
      for (const auto& p : parts) merged += IsMergeFile(p);
      EXPECT_EQ(merged, 1u) << fmt::format("day {} sensor {}: {}", day, sensor, parts.size());
      fresh.insert(parts.size() - merged);
    }
  }
  EXPECT_EQ(fresh, (std::multiset<size_t>{3, 3, 4}));
  EXPECT_EQ(FullAnswers(*store_), want);
  EXPECT_TRUE(Stray(*store_).empty()) << fmt::format("{}", fmt::join(Stray(*store_), " "));
  // And the next merge takes the new parts in.
  all.before_publish = nullptr;
  ASSERT_TRUE(store_->Merge(all).ok());
  EXPECT_EQ(FullAnswers(*store_), want);
  auto v = VerifyStore(Path("store"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->faults.empty()) << fmt::format("{}", fmt::join(v->faults, "\n"));
}

TEST_F(StoreTest, AMergeWhosePartsAForgetReplacedMeanwhileIsDroppedUnseen) {
  WriteSmallCaptures(dir_.path(), 12);
  const std::string want = Reference(dir_.path(), 1, 12);
  Open();
  const std::vector<std::string> hashes = IngestUnmerged(store_.get(), dir_.path(), 0, 12);
  MergeOptions all;
  all.all = true;
  all.before_publish = [&] {
    auto other = Store::Open(Path("store"), {});
    ASSERT_TRUE(other.ok());
    auto txn = (*other)->Begin();
    ASSERT_TRUE(txn.ok());
    Status st = (*txn)->Forget(hashes[0]);  // rebuilds the days s0 touched, and their periods
    ASSERT_TRUE(st.ok()) << st.ToString();
  };
  auto r = store_->Merge(all);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->dropped, 0u);
  EXPECT_EQ(FullAnswers(*store_), want);
  EXPECT_TRUE(Stray(*store_).empty()) << fmt::format("{}", fmt::join(Stray(*store_), " "));
  all.before_publish = nullptr;
  ASSERT_TRUE(store_->Merge(all).ok());
  EXPECT_EQ(FullAnswers(*store_), want);
}

TEST_F(StoreTest, ABackgroundMergeWaitsWhileAWriterHoldsTheStoreAndThenMerges) {
  WriteSmallCaptures(dir_.path(), 12);
  const std::string want = Reference(dir_.path(), 0, 12);
  Open();
  IngestUnmerged(store_.get(), dir_.path(), 0, 12);
  auto writer_store = Store::Open(Path("store"), {});
  ASSERT_TRUE(writer_store.ok());
  std::unique_ptr<Store::Transaction> writer;
  std::promise<void> writing;
  MergeOptions bg;
  bg.all = true;
  bg.yield_to_writers = true;
  // Once the merge has its snapshot, an ingest begins (the writer lock, held until it ends).
  bg.after_snapshot = [&] {
    auto w = (*writer_store)->Begin();
    EXPECT_TRUE(w.ok());
    if (w.ok()) writer = std::move(*w);
    writing.set_value();
  };
  Result<MergeStats> r = MergeStats{};
  std::thread merging([&] { r = store_->Merge(bg); });
  writing.get_future().wait();
  auto merged_files = [&] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(Path("store/rollup"))) {
      n += IsMergeFile("rollup/" + e.path().filename().string());
    }
    return n;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  // Still waiting: not a merged part written while the writer holds the store.
  EXPECT_EQ(merged_files(), 0u);
  writer.reset();
  merging.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->merges, 0u);
  EXPECT_GE(r->yielded_seconds, 0.2);
  EXPECT_EQ(FullAnswers(*store_), want);
}

TEST_F(StoreTest, AMergeSaysWhenTheKeysItLeftInSeveralPartsTurnCold) {
  WriteSmallCaptures(dir_.path(), 6);  // two parts for each of three days, six for the month
  Open();
  const int64_t before = static_cast<int64_t>(std::time(nullptr));
  IngestUnmerged(store_.get(), dir_.path(), 0, 6);
  const int64_t after = static_cast<int64_t>(std::time(nullptr));
  MergeOptions cold;
  cold.cold_after_s = 600;
  auto r = store_->Merge(cold);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // The month's and quarter's six parts are due (a size tier of 4 or more is merged); the days'
  // two each are not, and turn cold 600 s after their newest part was written.
  EXPECT_GT(r->merges, 0u);
  EXPECT_GE(r->next_cold_at, before + 600);
  EXPECT_LE(r->next_cold_at, after + 600);
  // Merged whole, a key has nothing left to turn cold.
  MergeOptions all;
  all.all = true;
  r = store_->Merge(all);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->next_cold_at, 0);
  r = store_->Merge(cold);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->merges, 0u);
  EXPECT_EQ(r->next_cold_at, 0);
}

// The command lines of the `teiten merge` processes whose last words are `--store DIR`: the
// background merges of the store at DIR and the merger waiting to merge it again.
std::vector<std::string> MergeProcesses(const std::string& dir) {
  std::vector<std::string> out;
  const std::string tail = " --store " + dir;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string pid = it->path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(it->path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
    if (cmd.find(" merge ") == std::string::npos || cmd.size() < tail.size() ||
        cmd.compare(cmd.size() - tail.size(), tail.size(), tail) != 0) {
      continue;
    }
    out.push_back(pid + ": " + cmd);
  }
  return out;
}

// The keys (a sensor's day, a period label) whose lists name more than one part, with how many.
std::map<std::string, size_t> KeysInSeveralParts(const Store& s) {
  std::map<std::string, size_t> out;
  for (const auto& [day, per_sensor] : s.manifest().days) {
    for (const auto& [sensor, parts] : per_sensor) {
      if (parts.size() > 1) out[fmt::format("{}/s{}", day, sensor)] = parts.size();
    }
  }
  for (const auto& [label, parts] : s.manifest().periods) {
    if (parts.size() > 1) out[label] = parts.size();
  }
  return out;
}

std::string Describe(const std::map<std::string, size_t>& parts) {
  std::string out;
  for (const auto& [key, n] : parts)
    out += fmt::format("{}{}: {}", out.empty() ? "" : ", ", key, n);
  return out;
}

// How many parts each key's list names.
std::map<std::string, size_t> PartsPerKey(const Store& s) {
  std::map<std::string, size_t> out;
  for (const auto& [day, per_sensor] : s.manifest().days) {
    for (const auto& [sensor, parts] : per_sensor) {
      out[fmt::format("{}/s{}", day, sensor)] = parts.size();
    }
  }
  for (const auto& [label, parts] : s.manifest().periods) out[label] = parts.size();
  return out;
}

// What a store's merge processes and keys did while nothing but looking at them, every 20 ms,
// until no merge process was left and every key was in one part (or `limit` passed: `failure`).
struct Settling {
  bool left_hot = false;  // keys in several parts with no background merge running
  size_t most_waiting = 0, most_merging = 0;
  double seconds = 0;
  std::string failure;
};
Settling WatchUntilSettled(const std::string& store_dir,
                           std::chrono::seconds limit = std::chrono::seconds(60)) {
  Settling seen;
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    std::vector<std::string> procs = MergeProcesses(store_dir);
    size_t waiting = 0, merging = 0;
    for (const auto& p : procs) {
      waiting += p.find(" merge --linger ") != std::string::npos;
      merging += p.find(" merge --background ") != std::string::npos;
    }
    seen.most_waiting = std::max(seen.most_waiting, waiting);
    seen.most_merging = std::max(seen.most_merging, merging);
    std::map<std::string, size_t> several;
    {
      auto s = Store::Open(store_dir, {});
      if (!s.ok()) {
        seen.failure = s.status().ToString();
        return seen;
      }
      several = KeysInSeveralParts(**s);
    }
    if (merging == 0 && !several.empty()) seen.left_hot = true;
    seen.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (procs.empty() && several.empty()) return seen;
    if (std::chrono::steady_clock::now() - t0 > limit) {
      seen.failure = fmt::format("after {} s, keys in several parts: {}; merge processes: {}",
                                 limit.count(), Describe(several), fmt::join(procs, " | "));
      return seen;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The CLI's ingest and its detached merge, as real processes.
class BackgroundMergeTest : public StoreTest {
 protected:
  void WriteConfig(const std::string& name, const std::string& store,
                   const std::string& more_store_keys = "") {
    std::ofstream(Path(name)) << fmt::format(
        "[store]\npath = \"{}\"\ntimezone = \"Asia/Tokyo\"\n{}[[sensor]]\nid = \"tyo1\"\n"
        "group = \"domestic\"\nprefixes = [\"203.0.113.0/24\"]\n",
        Path(store), more_store_keys);
  }
  std::string Teiten(const std::string& args, bool* ok = nullptr) {
    return testing::Run(fmt::format("{} {} 2>&1", TEITEN_BIN, args), ok);
  }
  // `files` small captures s0…, of which s0 is larger: 2018-08-12's first part is in a size
  // tier of its own, which no tier merge of the small parts takes in, so the keys holding it
  // (that day's, the month's, the quarter's) keep more than one part after every tier merge:
  // only a merge of cold keys makes them one.
  void WriteBurst(int files) {
    WriteSmallCaptures(dir_.path(), files);
    std::vector<Pkt> large;
    for (uint32_t i = 0; i < 40000; ++i) {
      large.push_back({kAug12Jst + int64_t{i} * 2000, 0x0A000000u + i * 37, kNet + (i & 0xFF), 6,
                       static_cast<uint16_t>(1 + i % 3000)});
    }
    WritePcap(Path("s0.pcap"), large);
  }
  // Ingests captures [from, to) with `--merge background` at t.toml's sensor, one process each.
  void IngestInBackground(int from, int to) {
    for (int f = from; f < to; ++f) {
      bool ok = false;
      std::string out = Teiten(fmt::format("ingest --merge background --config {} --sensor tyo1 {}",
                                           Path("t.toml"), Path(fmt::format("s{}.pcap", f))),
                               &ok);
      ASSERT_TRUE(ok) << out;
    }
  }
};

TEST_F(BackgroundMergeTest, IngestReturnsAndItsMergeFollowsToTheSameAnswersAsWaitingForIt) {
  WriteSmallCaptures(dir_.path(), 24);
  WriteConfig("bg.toml", "bg");
  WriteConfig("wait.toml", "wait");
  for (int f = 0; f < 24; ++f) {
    bool ok = false;
    std::string out = Teiten(fmt::format("ingest --merge background --config {} --sensor tyo1 {}",
                                         Path("bg.toml"), Path(fmt::format("s{}.pcap", f))),
                             &ok);
    ASSERT_TRUE(ok) << out;
    out = Teiten(fmt::format("ingest --merge wait --config {} --sensor tyo1 {}", Path("wait.toml"),
                             Path(fmt::format("s{}.pcap", f))),
                 &ok);
    ASSERT_TRUE(ok) << out;
  }
  // `teiten merge` waits for a running merge (the lock on MERGER), then finds nothing due
  // that the background merges left.
  bool ok = false;
  std::string out = Teiten(fmt::format("merge --config {}", Path("bg.toml")), &ok);
  ASSERT_TRUE(ok) << out;
  EXPECT_EQ(Slurp(Path("bg/merge.log")), "");  // the background merges said nothing: no error
  auto bg = Store::Open(Path("bg"), {});
  auto wait = Store::Open(Path("wait"), {});
  ASSERT_TRUE(bg.ok() && wait.ok());
  EXPECT_EQ(FullAnswers(**bg), FullAnswers(**wait));
  // As few parts as merging in the command leaves: 24 commits did not leave 24 parts a key.
  std::set<std::string> bg_parts, wait_parts;
  (*bg)->ForEachRollup([&](const std::string& p) { bg_parts.insert(p); });
  (*wait)->ForEachRollup([&](const std::string& p) { wait_parts.insert(p); });
  std::cerr << bg_parts.size() << " parts merged in the background, " << wait_parts.size()
            << " merged in the command\n";
  EXPECT_LE(bg_parts.size(), wait_parts.size() + 2);
  EXPECT_TRUE(Stray(**bg).empty()) << fmt::format("{}", fmt::join(Stray(**bg), " "));
}

TEST_F(BackgroundMergeTest, AMergeKilledAnywhereLosesNothingAndTheNextRemovesWhatItWrote) {
  constexpr int kFiles = 60;
  WriteSmallCaptures(dir_.path(), kFiles + 1);
  const std::string want = Reference(dir_.path(), 0, kFiles + 1);
  WriteConfig("t.toml", "store");
  {
    auto pristine = Store::Open(Path("pristine"), {.create = true, .timezone = "Asia/Tokyo"});
    ASSERT_TRUE(pristine.ok());
    IngestUnmerged(pristine->get(), dir_.path(), 0, kFiles);
  }
  // From the same 60 unmerged commits each time: `teiten merge --background` killed at a moment
  // of its pass (counted from when it marks MERGER: a tenth, a third, ... of an unkilled pass),
  // then a commit, then a merge of everything.
  int killed_merging = 0;
  size_t stray_after_kill = 0;
  int64_t pass_us = 0;
  for (int share : {-1, 0, 10, 30, 60, 90}) {
    const int64_t delay_us = share < 0 ? 0 : pass_us * share / 100;
    fs::remove_all(Path("store"));
    fs::copy(Path("pristine"), Path("store"), fs::copy_options::recursive);
    pid_t pid = fork();
    if (pid == 0) {
      execl(TEITEN_BIN, "teiten", "merge", "--background", "--store", Path("store").c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      std::ifstream marker(Path("store/MERGER"));
      char c = 0;
      if ((marker.get(c) && c == '1') || std::chrono::steady_clock::now() > until) break;
    }
    if (share < 0) {
      // The unkilled pass, timed: until the merger exits, or becomes the one waiting to merge
      // the keys it left hot (the copied parts are new) once they are cold, which is stopped.
      auto t0 = std::chrono::steady_clock::now();
      int st = 0;
      bool exited = false;
      while (!(exited = waitpid(pid, &st, WNOHANG) == pid)) {
        if (Slurp(fmt::format("/proc/{}/cmdline", pid)).find("--linger") != std::string::npos) {
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      pass_us = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
      if (exited) {
        ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
      } else {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
      }
      continue;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    {
      std::ifstream marker(Path("store/MERGER"));
      char c = 0;
      if (marker.get(c) && c == '1') ++killed_merging;  // killed within its pass
      auto s = Store::Open(Path("store"), {});
      ASSERT_TRUE(s.ok());
      stray_after_kill += Stray(**s).size();
    }
    bool ok = false;
    std::string out = Teiten(fmt::format("ingest --merge wait --config {} --sensor tyo1 {}",
                                         Path("t.toml"), Path(fmt::format("s{}.pcap", kFiles))),
                             &ok);
    ASSERT_TRUE(ok) << out;
    out = Teiten(fmt::format("merge --all --config {}", Path("t.toml")), &ok);
    ASSERT_TRUE(ok) << out;
    Open();
    EXPECT_EQ(FullAnswers(*store_), want) << "killed " << share << "% into its pass";
    EXPECT_TRUE(Stray(*store_).empty()) << fmt::format("{}", fmt::join(Stray(*store_), " "));
    store_.reset();
    out = Teiten(fmt::format("verify --config {}", Path("t.toml")), &ok);
    EXPECT_TRUE(ok) << out;
  }
  std::cerr << "a pass of " << pass_us << " us; " << killed_merging << " kills within it left "
            << stray_after_kill << " files behind\n";
  EXPECT_GE(killed_merging, 3);     // the kills fell within the pass, not after it
  EXPECT_GT(stray_after_kill, 0u);  // and some after it had written files: the next removed them
}

// Issue 16: a store that goes quiet after a burst of ingests converges to one part a key without
// another command. The background merger of the last ingests finds their keys hot (parts written
// less than merge_cold_after seconds ago), so it leaves them in several parts, waits (one process
// for the store, as `teiten merge --linger`) until they are cold, and merges them whole.
TEST_F(BackgroundMergeTest, AQuietStoreBecomesOnePartAKeyWithoutAnotherCommand) {
  constexpr int kFiles = 10;
  WriteBurst(kFiles);
  const std::string want = Reference(dir_.path(), 0, kFiles);
  WriteConfig("t.toml", "store", "merge_cold_after = 3\n");
  const std::string store_dir = Path("store");
  ASSERT_NO_FATAL_FAILURE(IngestInBackground(0, kFiles));
  {
    auto s = Store::Open(store_dir, {});
    ASSERT_TRUE(s.ok());
    uint64_t first = 0;
    struct stat st {};
    const auto& day = (*s)->manifest().days.begin()->second.begin()->second;
    ASSERT_EQ(::stat(fmt::format("{}/{}", store_dir, day.front()).c_str(), &st), 0);
    first = static_cast<uint64_t>(st.st_size);
    ASSERT_GE(first, uint64_t{64} << 10) << "s0's part is not in a tier above the small parts'";
  }
  // Then nothing but looking, every 20 ms: at the processes of the store, and at its keys.
  Settling seen = WatchUntilSettled(store_dir);
  ASSERT_TRUE(seen.failure.empty()) << seen.failure;
  std::cerr << "one part a key and no merger left " << seen.seconds << " s after the last ingest\n";
  EXPECT_TRUE(seen.left_hot) << "the background merges never left a key in several parts";
  EXPECT_EQ(seen.most_waiting, 1u) << "at some moment not exactly one merger waited";
  EXPECT_EQ(Slurp(Path("store/merge.log")), "");
  // What `teiten merge --all` leaves of the same store: nothing more to merge.
  fs::copy(store_dir, Path("copy"), fs::copy_options::recursive);
  bool ok = false;
  std::string out =
      Teiten(fmt::format("merge --all --config {} --store {}", Path("t.toml"), Path("copy")), &ok);
  ASSERT_TRUE(ok) << out;
  Open();
  auto copy = Store::Open(Path("copy"), {});
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(PartsPerKey(*store_), PartsPerKey(**copy));
  EXPECT_EQ(FullAnswers(*store_), want);
  EXPECT_TRUE(Stray(*store_).empty()) << fmt::format("{}", fmt::join(Stray(*store_), " "));
  store_.reset();
  out = Teiten(fmt::format("verify --config {}", Path("t.toml")), &ok);
  EXPECT_TRUE(ok) << out;
}

// A waiting merger killed with -9 while it waits: it held no store and nothing of it, so the
// store is whole and verifies, its hot keys simply stay in several parts; the lock on MERGEWAIT
// died with it, so the next ingest's merger becomes the one waiting, and the store converges to
// one part a key with the killed waiter's keys and the new ones alike.
TEST_F(BackgroundMergeTest, AWaitingMergerKilledLosesNothingAndTheNextIngestsMergerWaitsInstead) {
  constexpr int kFiles = 8;
  WriteBurst(kFiles + 1);
  WriteConfig("t.toml", "store", "merge_cold_after = 15\n");
  const std::string store_dir = Path("store");
  ASSERT_NO_FATAL_FAILURE(IngestInBackground(0, kFiles));
  // The merger of one of the last ingests becomes the waiter once its pass is done; the others
  // exit (on a loaded machine they may still be merging when it starts waiting): killed when it
  // is the only merge process of the store.
  pid_t waiter = 0;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20); waiter == 0;) {
    std::vector<std::string> procs = MergeProcesses(store_dir);
    if (procs.size() == 1 && procs[0].find(" merge --linger ") != std::string::npos) {
      waiter = std::stoi(procs[0]);
    }
    ASSERT_LT(std::chrono::steady_clock::now(), until)
        << "no merger waited alone: " << fmt::format("{}", fmt::join(procs, " | "));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(kill(waiter, SIGKILL), 0);
  for (int i = 0; i < 500 && fs::exists(fmt::format("/proc/{}/cmdline", waiter)) &&
                  !Slurp(fmt::format("/proc/{}/cmdline", waiter)).empty();
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // (its parent reaps it)
  }
  {
    auto s = Store::Open(store_dir, {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(FullAnswers(**s), Reference(dir_.path(), 0, kFiles));
    EXPECT_TRUE(Stray(**s).empty()) << fmt::format("{}", fmt::join(Stray(**s), " "));
    EXPECT_FALSE(KeysInSeveralParts(**s).empty()) << "the killed waiter had nothing to wait for";
  }
  bool ok = false;
  std::string out = Teiten(fmt::format("verify --config {}", Path("t.toml")), &ok);
  EXPECT_TRUE(ok) << out;
  // Nobody waits now (the lock went with the process), and no merge runs.
  EXPECT_TRUE(MergeProcesses(store_dir).empty())
      << fmt::format("{}", fmt::join(MergeProcesses(store_dir), " | "));
  int lock = ::open(Path("store/MERGEWAIT").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(lock, 0);
  EXPECT_EQ(flock(lock, LOCK_EX | LOCK_NB), 0) << "MERGEWAIT is still locked";
  ::close(lock);
  // One more capture: its merger takes the waiter's place and the store converges.
  ASSERT_NO_FATAL_FAILURE(IngestInBackground(kFiles, kFiles + 1));
  Settling seen = WatchUntilSettled(store_dir);
  ASSERT_TRUE(seen.failure.empty()) << seen.failure;
  std::cerr << "one part a key and no merger left " << seen.seconds
            << " s after the ingest that followed the kill\n";
  EXPECT_EQ(seen.most_waiting, 1u) << "at some moment not exactly one merger waited";
  EXPECT_EQ(Slurp(Path("store/merge.log")), "");
  Open();
  EXPECT_EQ(FullAnswers(*store_), Reference(dir_.path(), 0, kFiles + 1));
  EXPECT_TRUE(Stray(*store_).empty()) << fmt::format("{}", fmt::join(Stray(*store_), " "));
  store_.reset();
  out = Teiten(fmt::format("verify --config {}", Path("t.toml")), &ok);
  EXPECT_TRUE(ok) << out;
}

}  // namespace
}  // namespace teiten
