// The store at a year's size (issue 16): many small commits, merging, spills, bounded memory
// over floods and thousands of days, old stores, cold merges and retention.
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "analysis/query.h"
#include "ingest/ingest.h"
#include "store/file_out.h"
#include "store/source_index.h"
#include "store/verify.h"
#include "store_test_support.h"
#include "test_support.h"

namespace teiten {
namespace {

// Writes an encoded rollup part to a file, for RollupFile::Open.
void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

using namespace store_testing;

// teiten serve moves its snapshot on this often (src/web/server.h kSnapshotRefreshSeconds).
constexpr unsigned web_refresh_seconds = 5;

// Files in seg/, rollup/, idx/ and man/ that the store's manifest does not name.
std::vector<std::string> Unnamed(const Store& store) {
  std::vector<std::string> named = ManifestFiles(store.manifest());
  std::set<std::string> live(named.begin(), named.end());
  std::vector<std::string> out;
  for (const char* sub : {"seg", "rollup", "idx", "man"}) {
    for (const auto& e : std::filesystem::directory_iterator(store.dir() + "/" + sub)) {
      std::string rel = std::string(sub) + "/" + e.path().filename().string();
      if (!live.count(rel)) out.push_back(rel);
    }
  }
  return out;
}

TEST_F(StoreTest, ACaptureSpreadOverThreeThousandDaysIngestsInBoundedMemory) {
  // Regression (issue 10): 3,000 packets on 3,000 days took 2.0 GB (a 512 KiB port index per day).
  std::vector<Pkt> pkts;
  constexpr int64_t kDay = 86400 * kS;
  for (uint32_t i = 0; i < 3000; ++i) {
    pkts.push_back({kAug12Jst - 1500 * kDay + int64_t{i} * kDay, 0x01020000u + i, kNet + 1, 6,
                    static_cast<uint16_t>(1 + i % 1000)});
  }
  WritePcap(Path("days.pcap"), pkts);
  Open();
  store_.reset();
  pid_t pid = fork();
  if (pid == 0) {
    auto s = Store::Open(Path("store"), {});
    Ingester ing(s->get(), nullptr);
    auto r = ing.IngestFile(Sensor(), Path("days.pcap"));
    _exit(r.ok() && r->kept == 3000 ? 0 : 1);
  }
  int st = 0;
  struct rusage ru {};
  wait4(pid, &st, 0, &ru);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_LT(ru.ru_maxrss, 300 * 1024) << "peak RSS in KiB";
  Open();
  EXPECT_EQ(store_->manifest().days.size(), 3000u);
  EXPECT_EQ(PortTotal(*store_, "2018-08-12"), 1u);
}

TEST_F(StoreTest, DaysExactly32768ApartDoNotCollideInTheIngestSort) {
  // Regression (issue 10): the sort key held 15 bits of day, so these 2,000 packets alternating
  // between two days 32,768 days apart became 2,000 segments.
  constexpr int64_t kDay = 86400 * kS;
  const int64_t early = kAug12Jst - 17000 * kDay;  // 1971
  std::vector<Pkt> pkts;
  for (uint32_t i = 0; i < 2000; ++i) {
    pkts.push_back({early + (i % 2) * 32768 * kDay + i, 0x01010101u + i % 3, kNet + 1, 6, 23});
  }
  WritePcap(Path("far.pcap"), pkts);
  Open();
  EXPECT_EQ(Ingest(Path("far.pcap")).kept, 2000u);
  EXPECT_EQ(store_->manifest().segments.size(), 2u);
  EXPECT_EQ(store_->manifest().days.size(), 2u);
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

TEST_F(StoreTest, ManySmallCommitsLeaveFewPartsAndTheSameAnswersAsOneLargeIngest) {
  constexpr int kFiles = 120;
  WriteSmallCaptures(dir_.path(), kFiles);
  // Reference: the same packets in one capture per sensor.
  testing::TempDir ref_dir;
  auto ref = Store::Open(ref_dir.path(), {.create = true, .timezone = "Asia/Tokyo"});
  Open();
  for (int f = 0; f < kFiles; ++f) {
    Ingest(Path(fmt::format("s{}.pcap", f)), f % 2 ? Sensor("osa1", "partner") : Sensor());
  }
  {
    std::vector<Pkt> even, odd;  // rebuilt from the files' contents, per sensor
    Ingester ing(ref->get(), nullptr);
    for (int f = 0; f < kFiles; ++f) {
      // One commit per sensor in the reference: ingest each file without merging would be the
      // same path; instead, re-ingest the same captures into a store merged to one part a key.
      ASSERT_TRUE(ing.IngestFile(f % 2 ? Sensor("osa1", "partner") : Sensor(),
                                 Path(fmt::format("s{}.pcap", f)))
                      .ok());
    }
    MergeOptions all;
    all.all = true;
    auto m = (*ref)->Merge(all);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
  }
  size_t parts = 0, keys = 0;
  store_->ForEachRollup([&](const std::string&) { ++parts; });
  for (const auto& [d, per_sensor] : store_->manifest().days) keys += per_sensor.size();
  keys += store_->manifest().periods.size();
  // 60 commits a sensor over 3 days: each key keeps fewer than min_parts parts per size tier
  // (all of these are in the lowest tier).
  EXPECT_LE(parts, keys * 3) << parts << " parts for " << keys << " keys";
  std::string want = FullAnswers(**ref);
  EXPECT_EQ(FullAnswers(*store_), want);
  size_t ref_parts = 0;
  (*ref)->ForEachRollup([&](const std::string&) { ++ref_parts; });
  EXPECT_EQ(ref_parts, keys);  // merged whole: one part a key
  // Merging everything changes no answer.
  MergeOptions all;
  all.all = true;
  auto m = store_->Merge(all);
  ASSERT_TRUE(m.ok());
  EXPECT_GT(m->merges, 0u);
  EXPECT_EQ(FullAnswers(*store_), want);
  Open();
  EXPECT_EQ(FullAnswers(*store_), want);
  // Every part the merges replaced is gone, though no writer walked the store.
  EXPECT_EQ(Unnamed(*store_), std::vector<std::string>{});
}

TEST_F(StoreTest, ACommitWritesItsCountsOnceAndItsDaysMonthAndQuarterNameThem) {
  // A commit of one sensor-day wrote its counts three times (the day, the month and the
  // quarter, each a file of the same sets), so commits cost three times what they added. Now
  // the keys name the one sensor-day part, and a day's merge stands in for its parts in the
  // keys above it.
  WriteSmallCaptures(dir_.path(), 12);  // s0, s3, s6, s9: 2018-08-12 (JST); s1: -13; s2: -14
  Open();
  Ingest(Path("s0.pcap"));
  const int32_t d = store_->manifest().days.begin()->first;
  std::set<std::string> files;
  store_->ForEachRollup([&](const std::string& p) { files.insert(p); });
  ASSERT_EQ(files.size(), 1u) << "one commit of one sensor-day: one rollup file";
  const std::string part = *files.begin();
  const Manifest* m = &store_->manifest();
  EXPECT_EQ(m->days.at(d).at(0), std::vector<std::string>{part});
  for (const char* label : {"2018-08-12", "2018-08", "2018-08/s0", "2018Q3", "2018Q3/s0"}) {
    EXPECT_EQ(m->periods.at(label), std::vector<std::string>{part}) << label;
  }
  // Three more commits of the day: its four parts are a tier due, merged into one, which the
  // pooled day, the months and the quarters name in their place.
  for (const char* f : {"s3.pcap", "s6.pcap", "s9.pcap"}) Ingest(Path(f));
  m = &store_->manifest();
  ASSERT_EQ(m->days.at(d).at(0).size(), 1u);
  const std::string merged = m->days.at(d).at(0)[0];
  EXPECT_NE(merged.find(".m0"), std::string::npos) << merged;
  for (const char* label : {"2018-08-12", "2018-08", "2018-08/s0", "2018Q3", "2018Q3/s0"}) {
    EXPECT_EQ(m->periods.at(label), std::vector<std::string>{merged}) << label;
  }
  {
    auto f = RollupFile::Open(store_->dir() + "/" + merged);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ((*f)->day(), d);
    EXPECT_EQ((*f)->end_day(), d + 1);
    EXPECT_GT((*f)->sensors()[0].slots.size, 0u);  // a day keeps its 5-minute counts
  }
  { auto t = store_->Begin(); }  // the replaced parts collected
  EXPECT_EQ(Unnamed(*store_), std::vector<std::string>{});
  // Two more days: the month's merge has the month's span and no 5-minute counts, and stands
  // in for its parts in the quarter.
  Ingest(Path("s1.pcap"));
  Ingest(Path("s2.pcap"));
  MergeOptions all;
  all.all = true;
  ASSERT_TRUE(store_->Merge(all).ok());
  m = &store_->manifest();
  ASSERT_EQ(m->periods.at("2018-08/s0").size(), 1u);
  const std::string month = m->periods.at("2018-08/s0")[0];
  EXPECT_EQ(m->periods.at("2018Q3/s0"), std::vector<std::string>{month});
  EXPECT_EQ(m->periods.at("2018Q3"), std::vector<std::string>{month});
  {
    auto f = RollupFile::Open(store_->dir() + "/" + month);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(TimeZone::DayString((*f)->day()), "2018-08-01");
    EXPECT_EQ(TimeZone::DayString((*f)->end_day()), "2018-09-01");
    EXPECT_EQ((*f)->sensors()[0].slots.size, 0u);
    EXPECT_EQ((*f)->sensors()[0].packets, 6u * 40);
  }
  // The same answers as the six captures' packets in one ingest, and a clean verify.
  testing::TempDir ref_dir;
  auto ref = Store::Open(ref_dir.path(), {.create = true, .timezone = "Asia/Tokyo"});
  ASSERT_TRUE(ref.ok());
  {
    Ingester ing(ref->get(), nullptr);
    for (const char* f : {"s0.pcap", "s3.pcap", "s6.pcap", "s9.pcap", "s1.pcap", "s2.pcap"}) {
      ASSERT_TRUE(ing.IngestFile(Sensor(), Path(f)).ok());
    }
  }
  EXPECT_EQ(FullAnswers(*store_), FullAnswers(**ref));
  auto v = VerifyStore(store_->dir());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->faults.empty()) << v->faults.front();
}

TEST_F(StoreTest, ACaptureOfManyDaysOfOneMonthWritesTheMonthsSumOnceForMonthAndQuarter) {
  // Past three days of a key a transaction writes the key's sum as one part; a quarter whose
  // days are all in one month names the month's part, and the pooled keys the sensor's.
  std::vector<Pkt> pkts;
  for (int i = 0; i < 600; ++i) {
    pkts.push_back({kAug12Jst + int64_t{i % 6} * 86400 * kS + i * kS,
                    0x06000000u + static_cast<uint32_t>(i % 53), kNet + 1, 6,
                    static_cast<uint16_t>(i % 2 ? 23 : 445)});
  }
  WritePcap(Path("six.pcap"), pkts);
  Open();
  Ingest(Path("six.pcap"));
  const Manifest& m = store_->manifest();
  ASSERT_EQ(m.days.size(), 6u);
  const auto& month = m.periods.at("2018-08/s0");
  ASSERT_EQ(month.size(), 1u);
  EXPECT_EQ(m.periods.at("2018Q3/s0"), month);
  EXPECT_EQ(m.periods.at("2018-08"), month);
  EXPECT_EQ(m.periods.at("2018Q3"), month);
  std::set<std::string> files;
  store_->ForEachRollup([&](const std::string& p) { files.insert(p); });
  EXPECT_EQ(files.size(), 7u) << "six sensor-day parts and one month";
  auto f = RollupFile::Open(store_->dir() + "/" + month[0]);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->sensors()[0].packets, 600u);
  EXPECT_EQ((*f)->sensors()[0].sources, 53u);
  auto v = VerifyStore(store_->dir());
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->faults.empty()) << v->faults.front();
}

TEST_F(StoreTest, PartsAMergeReplacedWaitForTheirReaderAndGoWithoutWalkingTheStore) {
  WriteSmallCaptures(dir_.path(), 12);
  Open();
  Ingest(Path("s0.pcap"));
  // A reader holding this snapshot: the parts it names must stay while it lives.
  auto reader = Store::Open(dir_.path() + "/store", {});
  ASSERT_TRUE(reader.ok());
  std::vector<std::string> held = ManifestFiles((*reader)->manifest());
  for (int f = 1; f < 12; ++f) Ingest(Path(fmt::format("s{}.pcap", f)));
  Open();
  // Merges replaced the first commit's parts (4 parts of a tier are merged into one)...
  std::vector<std::string> now = ManifestFiles(store_->manifest());
  std::set<std::string> now_set(now.begin(), now.end());
  size_t replaced = 0;
  for (const auto& f : held) {
    if (now_set.count(f)) continue;
    ++replaced;
    EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/store/" + f)) << f;  // still readable
  }
  ASSERT_GT(replaced, 0u);
  // ...and the manifest lists them for removal.
  std::set<std::string> garbage(store_->manifest().garbage.begin(),
                                store_->manifest().garbage.end());
  for (const auto& f : held) {
    if (!now_set.count(f)) {
      EXPECT_TRUE(garbage.count(f)) << f;
    }
  }
  ASSERT_TRUE(Top(**reader, Dimension::kPort, *ParsePeriod("2018-08"), {}, 10).ok());
  reader->reset();
  // The next commit finds no other reader and removes them: nothing unnamed is left.
  WritePcap(Path("late.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  Ingest(Path("late.pcap"), Sensor("osa1", "partner"));
  Open();
  EXPECT_EQ(Unnamed(*store_), std::vector<std::string>{});
  EXPECT_TRUE(store_->manifest().garbage.empty() ||
              std::none_of(store_->manifest().garbage.begin(), store_->manifest().garbage.end(),
                           [&](const std::string& f) {
                             return std::filesystem::exists(dir_.path() + "/store/" + f);
                           }));
}

// Files of `garbage` still on disk.
size_t GarbageOnDisk(const Store& store) {
  size_t n = 0;
  for (const auto& f : store.manifest().garbage) {
    n += std::filesystem::exists(store.dir() + "/" + f) ? 1 : 0;
  }
  return n;
}

TEST_F(StoreTest, AReaderThatMovesOnLetsGoOfWhatItsOlderSnapshotHeld) {
  // A long-lived reader (teiten serve) kept every replaced file on disk for as long as it ran,
  // when READERS was one lock on the whole file: the collector's disk filled. Now a reader holds
  // only its generation, and a reader killed with -9 holds nothing.
  WriteSmallCaptures(dir_.path(), 16);
  Open();
  Ingest(Path("s0.pcap"));
  // Another process holds the first snapshot, as `teiten serve` would.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto s = Store::Open(dir_.path() + "/store", {});
    char c = s.ok() ? 'y' : 'n';
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  std::vector<std::string> first = ManifestFiles(store_->manifest());
  for (int f = 1; f < 8; ++f) Ingest(Path(fmt::format("s{}.pcap", f)));
  Open();
  ASSERT_GT(store_->manifest().garbage.size(), 0u);
  // The process's snapshot is older than every replacement: all of it is kept.
  EXPECT_EQ(GarbageOnDisk(*store_), store_->manifest().garbage.size());
  for (const auto& f : first) EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/store/" + f));

  // A reader in this process moves on to the newest snapshot; the old one dies with kill -9.
  auto reader = Store::Open(dir_.path() + "/store", {});
  ASSERT_TRUE(reader.ok());
  const uint64_t held = (*reader)->manifest().generation;
  std::vector<std::string> its_files = ManifestFiles((*reader)->manifest());
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  for (int f = 8; f < 16; ++f) Ingest(Path(fmt::format("s{}.pcap", f)));
  Open();
  // What commits up to the reader's generation replaced is gone; what later commits replaced
  // is kept for the reader, which still answers from every file of its snapshot.
  size_t older = 0, newer = 0;
  const Manifest& m = store_->manifest();
  ASSERT_EQ(m.garbage.size(), m.garbage_since.size());
  for (size_t i = 0; i < m.garbage.size(); ++i) {
    (m.garbage_since[i] <= held ? older : newer) += 1;
  }
  EXPECT_EQ(older, 0u) << "entries that died by generation " << held << " are still listed";
  EXPECT_GT(newer, 0u);
  EXPECT_EQ(GarbageOnDisk(*store_), newer);
  for (const auto& f : its_files) EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/store/" + f));
  ASSERT_TRUE(Top(**reader, Dimension::kPort, *ParsePeriod("2018-08"), {}, 10).ok());
  reader->reset();
  WritePcap(Path("late.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  Ingest(Path("late.pcap"), Sensor("osa1", "partner"));
  Open();
  EXPECT_EQ(Unnamed(*store_), std::vector<std::string>{});
  EXPECT_EQ(GarbageOnDisk(*store_), 0u);
}

// Whether some process holds a lock on READERS (any snapshot, or one being opened).
bool SomeoneReads(const std::string& store_dir) {
  int fd = ::open((store_dir + "/READERS").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;  // to the end of every offset
  bool held = ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  ::close(fd);
  return held;
}

TEST_F(StoreTest, AnIdleDashboardKeepsOnlyWhatItsNewestSnapshotNames) {
  // `teiten serve` as a real process, left idle while commits replace parts: it moves its
  // snapshot on every few seconds, so replaced files do not pile up while it runs; killed with
  // -9, it holds nothing.
  WriteSmallCaptures(dir_.path(), 12);
  Open();
  Ingest(Path("s0.pcap"));
  const std::string store_dir = dir_.path() + "/store";
  // This process's Store holds a byte of READERS too, and a child shares its open file (and so
  // its locks) until exec: only the server may hold READERS while we wait for it.
  store_.reset();
  pid_t serve = ::fork();
  ASSERT_GE(serve, 0);
  if (serve == 0) {
    ::execl(TEITEN_BIN, TEITEN_BIN, "serve", "--store", store_dir.c_str(), "--listen",
            "127.0.0.1:0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 150 && !SomeoneReads(store_dir); ++i) ::usleep(100000);
  ASSERT_TRUE(SomeoneReads(store_dir)) << "teiten serve never opened the store";
  Open();
  // Stopped while the commits run, the server cannot move on however slow they are (under
  // ASan seven ingests outlast its refresh period); its locks stay held while it is stopped.
  ASSERT_EQ(::kill(serve, SIGSTOP), 0);
  for (int f = 1; f < 8; ++f) Ingest(Path(fmt::format("s{}.pcap", f)));
  Open();
  ASSERT_GT(GarbageOnDisk(*store_), 0u);  // the server's first snapshot keeps them for now
  ASSERT_EQ(::kill(serve, SIGCONT), 0);
  ::sleep(web_refresh_seconds + 2);  // the server moves on to the newest manifest
  const uint64_t before = store_->manifest().generation;
  Ingest(Path("s8.pcap"));
  Open();
  const Manifest& m = store_->manifest();
  for (size_t i = 0; i < m.garbage.size(); ++i) {
    EXPECT_GT(m.garbage_since[i], before) << m.garbage[i] << " is kept for an old snapshot";
  }
  ::kill(serve, SIGKILL);
  int status = 0;
  ::waitpid(serve, &status, 0);
  Ingest(Path("s9.pcap"));
  Open();
  EXPECT_EQ(GarbageOnDisk(*store_), 0u);
  EXPECT_EQ(Unnamed(*store_), std::vector<std::string>{});
}

TEST_F(StoreTest, AMergeKeyByKeyWritesTheBytesOfDecodingMergingAndEncoding) {
  // Merging decoded whole parts capped what one merge could hold (384 MiB), so at 100 M packets
  // a quarter's pooled key kept two parts for good and each query united their sets. The merge
  // key by key must write exactly what the decoding merge wrote, for every kind of key.
  WriteSmallCaptures(dir_.path(), 12);
  Open();
  for (int f = 0; f < 12; ++f) {
    Ingest(Path(fmt::format("s{}.pcap", f)), f % 3 ? Sensor("osa1", "partner") : Sensor());
  }
  auto check = [&](const std::vector<std::string>& rels, int entry, const std::string& what) {
    std::vector<std::unique_ptr<RollupFile>> files;
    std::vector<const RollupFile*> in;
    DayRollup merged;
    for (size_t i = 0; i < rels.size(); ++i) {
      auto f = RollupFile::Open(dir_.path() + "/store/" + rels[i]);
      ASSERT_TRUE(f.ok()) << f.status().ToString();
      auto one = (*f)->Decode();
      ASSERT_TRUE(one.ok());
      if (entry >= 0 && one->sensors.begin()->first != entry) {
        SensorDay all;
        for (const auto& [sensor, sd] : one->sensors) all.Merge(sd);
        one->sensors.clear();
        one->sensors[static_cast<uint16_t>(entry)] = std::move(all);
      }
      if (i == 0) {
        merged = std::move(*one);
      } else {
        merged.Merge(*one);
      }
      in.push_back(f->get());
      files.push_back(std::move(*f));
    }
    std::vector<uint8_t> want = merged.Encode();
    std::string out = dir_.path() + "/merged.troll";
    auto n = MergeRollupParts(in, entry, out);
    ASSERT_TRUE(n.ok()) << what << ": " << n.status().ToString();
    std::ifstream f(out, std::ios::binary);
    std::vector<uint8_t> got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(*n, got.size());
    EXPECT_EQ(got.size(), want.size()) << what;
    EXPECT_TRUE(got == want) << what << ": the bytes differ";
    auto reread = RollupFile::Open(out);
    ASSERT_TRUE(reread.ok());
    EXPECT_TRUE((*reread)->Verify().ok()) << what;
  };
  size_t keys = 0;
  for (const auto& [day, per_sensor] : store_->manifest().days) {
    for (const auto& [sensor, parts] : per_sensor) {
      if (parts.size() < 2) continue;
      check(parts, -1, TimeZone::DayString(day));
      ++keys;
    }
  }
  for (const auto& [label, parts] : store_->manifest().periods) {
    // Every key's parts together, whatever merges have left, and its parts in reverse order
    // (the order the heavy hitters are folded in matters to the bytes).
    std::vector<std::string> all = parts;
    size_t slash = label.find('/');
    int entry = slash == std::string::npos ? kAllSensors : std::stoi(label.substr(slash + 2));
    if (all.size() < 2) continue;
    check(all, entry, label);
    std::reverse(all.begin(), all.end());
    check(all, entry, label + " reversed");
    ++keys;
  }
  EXPECT_GT(keys, 3u);
}

TEST_F(StoreTest, AHeavyListOfEverySourceNamesTheSetsMembersOnceAndReadsBackItsCounts) {
  // 23/TCP: four sources, two IPv4 and two IPv6 (every source is in the summary: its list is
  // the set's members' counts, in the set's order). 445/TCP: 100 sources, summarised to at
  // most 64 (a list of addresses). Hand-checked counts, read back from the part and from a
  // merge of two copies of it.
  DayRollup d;
  d.day = 17744;
  SensorDay& sd = d.sensors[3];
  PortCell& telnet = sd.Port(MakePortKey(6, 23));
  const std::vector<std::pair<std::string, uint64_t>> four = {
      {"2.2.2.2", 2}, {"2001:db8::2", 3}, {"1.1.1.1", 5}, {"2001:db8::1", 3}};
  for (const auto& [a, n] : four) {
    telnet.sources.Add(*IpAddr::Parse(a));
    telnet.heavy.push_back({*IpAddr::Parse(a), n});
    telnet.packets += n;
  }
  std::sort(telnet.heavy.begin(), telnet.heavy.end());
  PortCell& smb = sd.Port(MakePortKey(6, 445));
  std::vector<HeavyEntry> add;
  for (uint32_t i = 1; i <= 100; ++i) {
    smb.sources.AddV4(0x0A000000u + i);
    add.push_back({IpAddr::V4(0x0A000000u + i), i});
    smb.packets += i;
  }
  FoldHeavy(&smb.heavy, &add, kHeavySlots);
  ASSERT_LT(smb.heavy.size(), 100u);
  const std::vector<HeavyEntry> smb_heavy = smb.heavy;
  std::vector<uint8_t> bytes = d.Encode();
  const std::string path = dir_.path() + "/heavy.troll";
  WriteBytes(path, bytes);
  auto heavy_of = [](const RollupFile& f, PortKey k, uint8_t* first_byte) {
    std::vector<HeavyEntry> out;
    const auto& v = f.sensors()[0];
    auto rec = f.Find(v, 0, k);
    EXPECT_TRUE(rec.ok() && *rec);
    if (!rec.ok() || !*rec) return out;
    std::ifstream in(f.path(), std::ios::binary);
    in.seekg(static_cast<std::streamoff>((*rec)->heavy_offset));
    char c = 0;
    in.read(&c, 1);
    *first_byte = static_cast<uint8_t>(c);
    EXPECT_TRUE(f.AppendHeavy(**rec, &out).ok());
    return out;
  };
  auto f = RollupFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  uint8_t first = 9;
  auto got = heavy_of(**f, MakePortKey(6, 23), &first);
  EXPECT_EQ(first, 0) << "every source: the set's addresses are not written again";
  std::vector<std::string> shown;
  for (const auto& [a, n] : got) shown.push_back(fmt::format("{} {}", a.ToString(), n));
  // Largest first, ties by address.
  EXPECT_EQ(fmt::format("{}", fmt::join(shown, ", ")),
            "1.1.1.1 5, 2001:db8::1 3, 2001:db8::2 3, 2.2.2.2 2");
  got = heavy_of(**f, MakePortKey(6, 445), &first);
  EXPECT_EQ(first, 4) << "a summary: its addresses listed";
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, smb_heavy);
  // Two copies merged: every count doubles, and 23/TCP's list still names the set's members.
  auto g = RollupFile::Open(path);
  ASSERT_TRUE(g.ok());
  const std::string merged = dir_.path() + "/merged.troll";
  ASSERT_TRUE(MergeRollupParts({f->get(), g->get()}, -1, merged).ok());
  auto m = RollupFile::Open(merged);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  got = heavy_of(**m, MakePortKey(6, 23), &first);
  EXPECT_EQ(first, 0);
  shown.clear();
  for (const auto& [a, n] : got) shown.push_back(fmt::format("{} {}", a.ToString(), n));
  EXPECT_EQ(fmt::format("{}", fmt::join(shown, ", ")),
            "1.1.1.1 10, 2001:db8::1 6, 2001:db8::2 6, 2.2.2.2 4");
  EXPECT_TRUE((*m)->Verify().ok());
  EXPECT_TRUE((*m)->Decode().ok());
}

TEST_F(StoreTest, AHeavyListItsRecordImpliesIsNotWrittenAndReadsBackExactly) {
  // Rollup format 9. 23/TCP: one source, 7 packets (its count is the record's packets). 80/TCP:
  // three sources of one packet each (as many packets as sources: every count is 1). 22/TCP: two
  // sources of 1 and 2 packets (a list of counts, written). Hand-checked lists, read back from
  // the part and from a merge of two copies of it, where 80/TCP's counts become 2 and its list
  // is written.
  DayRollup d;
  d.day = 17744;
  SensorDay& sd = d.sensors[3];
  auto put = [&](PortKey k, const std::vector<std::pair<std::string, uint64_t>>& counts) {
    PortCell& c = sd.Port(k);
    for (const auto& [a, n] : counts) {
      c.sources.Add(*IpAddr::Parse(a));
      c.heavy.push_back({*IpAddr::Parse(a), n});
      c.packets += n;
    }
    std::sort(c.heavy.begin(), c.heavy.end());
  };
  const PortKey telnet = MakePortKey(6, 23), http = MakePortKey(6, 80), ssh = MakePortKey(6, 22);
  put(telnet, {{"198.51.100.7", 7}});
  put(http, {{"198.51.100.9", 1}, {"2001:db8::5", 1}, {"192.0.2.1", 1}});
  put(ssh, {{"192.0.2.1", 1}, {"192.0.2.2", 2}});
  std::vector<uint8_t> bytes = d.Encode();
  const std::string path = dir_.path() + "/implied.troll";
  WriteBytes(path, bytes);
  // The list as text, and whether it was written (its record's offset past the set's).
  auto list = [](const RollupFile& f, PortKey k, bool* written) {
    const auto& v = f.sensors()[0];
    auto rec = f.Find(v, 0, k);
    EXPECT_TRUE(rec.ok() && *rec);
    if (!rec.ok() || !*rec) return std::string();
    *written = (*rec)->heavy_offset != (*rec)->set_offset;
    std::vector<HeavyEntry> out;
    EXPECT_TRUE(f.AppendHeavy(**rec, &out).ok());
    std::vector<std::string> shown;
    for (const auto& [a, n] : out) shown.push_back(fmt::format("{} {}", a.ToString(), n));
    return fmt::format("{}", fmt::join(shown, ", "));
  };
  auto f = RollupFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  bool written = true;
  EXPECT_EQ(list(**f, telnet, &written), "198.51.100.7 7");
  EXPECT_FALSE(written);
  EXPECT_EQ(list(**f, http, &written), "192.0.2.1 1, 198.51.100.9 1, 2001:db8::5 1");
  EXPECT_FALSE(written);
  EXPECT_EQ(list(**f, ssh, &written), "192.0.2.2 2, 192.0.2.1 1");
  EXPECT_TRUE(written);
  EXPECT_TRUE((*f)->Verify().ok());
  auto decoded = (*f)->Decode();
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->Encode(), bytes) << "decoded and encoded again: the same bytes";
  auto g = RollupFile::Open(path);
  ASSERT_TRUE(g.ok());
  const std::string merged = dir_.path() + "/merged.troll";
  ASSERT_TRUE(MergeRollupParts({f->get(), g->get()}, -1, merged).ok());
  auto m = RollupFile::Open(merged);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(list(**m, telnet, &written), "198.51.100.7 14");
  EXPECT_FALSE(written);
  EXPECT_EQ(list(**m, http, &written), "192.0.2.1 2, 198.51.100.9 2, 2001:db8::5 2");
  EXPECT_TRUE(written);
  EXPECT_EQ(list(**m, ssh, &written), "192.0.2.2 4, 192.0.2.1 2");
  EXPECT_TRUE(written);
  EXPECT_TRUE((*m)->Verify().ok());
}

TEST_F(StoreTest, OnePortsOrOneRegionsPairsAreReadFromTheirBlocksAlone) {
  // The port x country records of a quarter at 1 G packets are 1.8 M (28 MB): decoding them
  // whole for one port's regions made a region page 3.9 s. They are kept in blocks, by port and
  // by country; each lookup must give exactly the brute-force answer, and a damaged block fail
  // only the lookups that read it.
  DayRollup d;
  d.day = 17744;
  SensorDay& sd = d.sensors[kAllSensors];
  std::mt19937 rng(7);
  std::vector<RollupFile::PairRec> truth;
  const char* ccs[] = {"CN", "US", "RU", "NL", "JP", "BR", "DE", "IN", "KR", "VN"};
  for (uint16_t port = 1; port <= 3000; ++port) {
    PortKey k = MakePortKey(port % 7 ? 6 : 17, port);
    PortCell& c = sd.Port(k);
    for (const char* cc : ccs) {
      if (rng() % 3 == 0 && std::string(cc) != "CN") continue;  // CN everywhere: many blocks
      uint64_t n = 1 + rng() % 1000;
      c.countries[MakeCountryCode(cc)] = n;
      c.packets += n;
      truth.push_back({k, MakeCountryCode(cc), n});
    }
  }
  std::sort(truth.begin(), truth.end(),
            [](const auto& x, const auto& y) { return x.a != y.a ? x.a < y.a : x.b < y.b; });
  ASSERT_GT(truth.size(), 20'000u);  // ≥ 20 blocks in each order
  std::vector<uint8_t> bytes = d.Encode();
  std::string path = dir_.path() + "/pairs.troll";
  WriteBytes(path, bytes);
  auto check_all = [&](const RollupFile& f, int* failed_ports, int* failed_countries) {
    const RollupFile::SensorView& v = f.sensors()[0];
    for (PortKey k : {MakePortKey(6, 1), MakePortKey(6, 1500), MakePortKey(17, 2996),
                      MakePortKey(6, 3000), MakePortKey(6, 4000), MakePortKey(6, 0)}) {
      std::vector<RollupFile::PairRec> got;
      Status st = f.PairsOfPort(v, k, &got);
      if (!st.ok()) {
        ++*failed_ports;
        EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
        continue;
      }
      std::vector<RollupFile::PairRec> want;
      for (const auto& r : truth) {
        if (r.a == k) want.push_back(r);
      }
      ASSERT_EQ(got.size(), want.size()) << PortKeyToString(k);
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].b, want[i].b);
        EXPECT_EQ(got[i].packets, want[i].packets);
      }
    }
    for (const char* cc : {"CN", "US", "VN", "ZZ"}) {
      std::vector<RollupFile::PairRec> got;
      Status st = f.PairsOfCountry(v, MakeCountryCode(cc), &got);
      if (!st.ok()) {
        ++*failed_countries;
        EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
        EXPECT_NE(st.message().find("pairs.troll"), std::string::npos) << st.ToString();
        continue;
      }
      std::vector<RollupFile::PairRec> want;
      for (const auto& r : truth) {
        if (r.b == MakeCountryCode(cc)) want.push_back(r);
      }
      ASSERT_EQ(got.size(), want.size()) << cc;
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].a, want[i].a) << cc << " " << i;
        EXPECT_EQ(got[i].packets, want[i].packets);
      }
    }
  };
  uint64_t section = 0;
  {
    auto f = RollupFile::Open(path);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    auto whole = (*f)->PortCountry((*f)->sensors()[0]);
    ASSERT_TRUE(whole.ok());
    ASSERT_EQ(whole->size(), truth.size());
    for (size_t i = 0; i < truth.size(); ++i) {
      ASSERT_EQ((*whole)[i].a, truth[i].a);
      ASSERT_EQ((*whole)[i].b, truth[i].b);
      ASSERT_EQ((*whole)[i].packets, truth[i].packets);
    }
    int fp = 0, fc = 0;
    check_all(**f, &fp, &fc);
    EXPECT_EQ(fp + fc, 0);
    section = (*f)->sensors()[0].port_country_offset;
    auto decoded = (*f)->Decode();
    ASSERT_TRUE(decoded.ok());
    EXPECT_TRUE(decoded->Encode() == bytes) << "decoding and encoding again changes the bytes";
  }
  // A flipped byte in the last country-ordered blocks (VN's, after CN's, US's…): the lookups of
  // VN fail naming the file; every port's lookup reads only port-ordered blocks and answers.
  // (Format 10: the counts of blocks, then the section's countries, then the block index.)
  uint32_t counts[2], countries;
  std::memcpy(counts, bytes.data() + section, 8);
  std::memcpy(&countries, bytes.data() + section + 8, 4);
  ASSERT_EQ(countries, 10u);  // the ten of `ccs`
  const uint64_t index = section + 16 + 4ull * countries;
  uint64_t at = index + 16ull * (counts[0] + counts[1]);
  for (uint32_t i = 0; i + 1 < counts[0] + counts[1]; ++i) {
    uint32_t comp;
    std::memcpy(&comp, bytes.data() + index + 16ull * i + 12, 4);
    at += comp;
  }
  bytes[at + 5] ^= 0x40;  // inside the last block's frame
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  }
  auto f = RollupFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  int fp = 0, fc = 0;
  check_all(**f, &fp, &fc);
  EXPECT_EQ(fp, 0);
  EXPECT_GE(fc, 1);
  EXPECT_FALSE((*f)->Verify().ok());
  // The section's list of countries, which every block's ranks index, out of order under a
  // valid checksum (resealed, as a writer's bug would leave it): every lookup, by port or by
  // country, is an error naming the file, never another country's count.
  bytes[at + 5] ^= 0x40;  // the frame whole again
  uint32_t c0, c1;
  std::memcpy(&c0, bytes.data() + section + 16, 4);
  std::memcpy(&c1, bytes.data() + section + 20, 4);
  std::memcpy(bytes.data() + section + 16, &c1, 4);
  std::memcpy(bytes.data() + section + 20, &c0, 4);
  uint64_t chunks;
  std::memcpy(&chunks, bytes.data() + bytes.size() - 32, 8);
  const uint64_t body = bytes.size() - 40 - 8 * chunks;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(body));
  }
  {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    auto sealed = SealChunked(fd, body, "TROLLU11", path);
    ::close(fd);
    ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
    ASSERT_EQ(*sealed, bytes.size());
  }
  auto g = RollupFile::Open(path);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_TRUE((*g)->Verify().ok());  // the checksums are right: the structure is not
  fp = fc = 0;
  check_all(**g, &fp, &fc);
  EXPECT_EQ(fp, 6);  // every port asked
  EXPECT_EQ(fc, 4);  // every country asked
  auto whole = (*g)->PortCountry((*g)->sensors()[0]);
  ASSERT_FALSE(whole.ok());
  EXPECT_NE(whole.status().message().find("countries out of order"), std::string::npos)
      << whole.status().ToString();
}

TEST_F(StoreTest, CapturesIngestedOneByOneAreFoldedIntoFewInputsAndStayKnown) {
  // Issue 16: 20,000 small captures left 20,000 inputs, segments and index files (and a
  // manifest listing them all, rewritten at every commit).
  constexpr int kFiles = 40;
  WriteSmallCaptures(dir_.path(), kFiles);
  Open();
  for (int f = 0; f < kFiles; ++f) {
    Ingest(Path(fmt::format("s{}.pcap", f)), f % 2 ? Sensor("osa1", "partner") : Sensor());
  }
  const std::string want = FullAnswers(*store_);
  std::vector<std::string> histories;
  for (uint32_t a : {0x06000001u, 0x06000003u, 0x060003EAu}) {
    auto h = SourceHistory(*store_, IpAddr::V4(a));
    ASSERT_TRUE(h.ok());
    histories.push_back(fmt::format("{} {} {} {} {}", h->seen, h->packets, h->first_us, h->last_us,
                                    h->ports.size()));
  }
  std::string s3_hash;
  for (const auto& in : store_->manifest().inputs) {
    if (in.path == Path("s3.pcap")) s3_hash = in.hash;
  }
  ASSERT_EQ(store_->manifest().inputs.size(), size_t{kFiles});
  size_t segments_before = store_->manifest().segments.size();
  {
    // Captures younger than a day are not folded: each can still be forgotten alone.
    auto txn = store_->Begin();
    uint64_t folded = 0;
    ASSERT_TRUE((*txn)->FoldInputs(FoldOptions{}, &folded).ok());
    EXPECT_EQ(folded, 0u);
  }
  {
    auto txn = store_->Begin();
    uint64_t folded = 0;
    Status st = (*txn)->FoldInputs(FoldOptions{.capture_min_age_s = 0}, &folded);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(folded, size_t{kFiles});
  }
  // One input per sensor, one segment per sensor-day (3 days), one index file each.
  EXPECT_EQ(store_->manifest().inputs.size(), 2u);
  EXPECT_EQ(store_->manifest().segments.size(), 6u) << segments_before;
  uint64_t kept = 0;
  for (const auto& in : store_->manifest().inputs) {
    // The captures' identities are in a file beside the manifest, not in it.
    EXPECT_EQ(in.FoldedCaptures(), size_t{kFiles / 2});
    EXPECT_TRUE(in.folded.empty());
    EXPECT_NE(in.folded_file, 0u);
    EXPECT_EQ(in.Indexes().size(), 1u);
    kept += in.kept;
  }
  EXPECT_EQ(kept, uint64_t{kFiles} * 40);
  EXPECT_EQ(FullAnswers(*store_), want);
  Open();
  EXPECT_EQ(FullAnswers(*store_), want);
  for (size_t i = 0; i < histories.size(); ++i) {
    uint32_t a = std::array<uint32_t, 3>{0x06000001u, 0x06000003u, 0x060003EAu}[i];
    auto h = SourceHistory(*store_, IpAddr::V4(a));
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(fmt::format("{} {} {} {} {}", h->seen, h->packets, h->first_us, h->last_us,
                          h->ports.size()),
              histories[i]);
  }
  EXPECT_EQ(Unnamed(*store_), std::vector<std::string>{});
  // Each folded capture is still known: by its bytes, and by its content arriving another way.
  EXPECT_TRUE(Ingest(Path("s3.pcap"), Sensor("osa1", "partner")).already_ingested);
  testing::Run("gzip -c " + Path("s4.pcap") + " > " + Path("s4.pcap.gz"));
  EXPECT_TRUE(Ingest(Path("s4.pcap.gz")).already_ingested);
  EXPECT_EQ(FullAnswers(*store_), want);
  // It can no longer be forgotten alone, and the refusal names the input holding it.
  std::string group;
  for (const auto& in : store_->manifest().inputs) {
    if (*store_->InputHolds(in, s3_hash)) group = in.hash;
  }
  ASSERT_FALSE(group.empty());
  EXPECT_EQ(Slurp(Path("store/MANIFEST")).find(s3_hash), std::string::npos);
  EXPECT_NE(group, s3_hash);
  {
    auto txn = store_->Begin();
    Status st = (*txn)->Forget(s3_hash);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find(group), std::string::npos) << st.message();
  }
  store_.reset();
  auto v = VerifyStore(Path("store"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok()) << (v->faults.empty() ? "" : v->faults[0]);
  // The folded input as a whole can be forgotten: the other sensor's answers remain.
  Open();
  {
    auto txn = store_->Begin();
    Status st = (*txn)->Forget(group);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_EQ(store_->manifest().inputs.size(), 1u);
  EXPECT_EQ(PortTotal(*store_, "2018Q3"), uint64_t{kFiles / 2} * 40);
}

TEST_F(StoreTest, FoldingGoesTierByTierSoARowIsRewrittenOnlyAFewTimes) {
  // Inputs of one size tier are folded only once four are there: folding the same group again
  // with every newcomer would rewrite it at every fold.
  WriteSmallCaptures(dir_.path(), 6);
  Open();
  for (int f = 0; f < 6; f += 2) Ingest(Path(fmt::format("s{}.pcap", f)));
  auto fold = [&] {
    auto txn = store_->Begin();
    uint64_t folded = 0;
    EXPECT_TRUE((*txn)->FoldInputs(FoldOptions{.capture_min_age_s = 0}, &folded).ok());
    return folded;
  };
  EXPECT_EQ(fold(), 0u);  // three in the tier
  WritePcap(Path("late.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  Ingest(Path("late.pcap"));
  EXPECT_EQ(fold(), 4u);
  EXPECT_EQ(store_->manifest().inputs.size(), 1u);
  // Folded again with newcomers, a folded input passes its captures' identities on: the new
  // input's file names all of them, and each capture is still refused.
  for (int f = 1; f < 6; f += 2) Ingest(Path(fmt::format("s{}.pcap", f)));
  {
    auto txn = store_->Begin();
    uint64_t folded = 0;
    ASSERT_TRUE((*txn)->FoldInputs(FoldOptions{.capture_min_age_s = 0, .all = true}, &folded).ok());
    EXPECT_EQ(folded, 4u);
  }
  ASSERT_EQ(store_->manifest().inputs.size(), 1u);
  EXPECT_EQ(store_->manifest().inputs[0].FoldedCaptures(), 7u);
  for (const char* f : {"s0.pcap", "s3.pcap", "s4.pcap", "late.pcap"}) {
    EXPECT_TRUE(Ingest(Path(f)).already_ingested) << f;
  }
  { auto t = store_->Begin(); }  // the first fold's identities file, replaced, is gone
  size_t tids = 0;
  for (const auto& e : fs::directory_iterator(Path("store/idx"))) {
    tids += e.path().extension() == ".tids";
  }
  EXPECT_EQ(tids, 1u);
  auto v = VerifyStore(Path("store"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok()) << (v->faults.empty() ? "" : v->faults[0]);
}

TEST_F(StoreTest, MergesThatCascadeThroughTiersLeaveNoFileBehind) {
  // A merge round whose result lands in a tier that is then due is merged again in the same
  // transaction: that intermediate part was named by no manifest, and once each commit stopped
  // walking the store's directories it stayed on disk.
  Open();
  for (uint32_t f = 0; f < 64; ++f) {
    std::vector<Pkt> pkts;
    for (uint32_t i = 0; i < 2000; ++i) {
      uint32_t k = f * 2000 + i;
      pkts.push_back({kAug12Jst + int64_t{k} * 1000, 0x20000000u + k * 7919u, kNet + (k & 0xFF), 6,
                      static_cast<uint16_t>(1 + k % 500)});
    }
    WritePcap(Path(fmt::format("c{}.pcap", f)), pkts);
    Ingest(Path(fmt::format("c{}.pcap", f)));
  }
  Open();
  EXPECT_EQ(Unnamed(*store_), std::vector<std::string>{});
  EXPECT_EQ(PortTotal(*store_, "2018Q3"), 64u * 2000);
}

TEST_F(StoreTest, KillDuringAMergeLosesAndDoublesNothing) {
  constexpr int kFiles = 60;
  WriteSmallCaptures(dir_.path(), kFiles);
  Open();
  for (int f = 0; f < kFiles; ++f) {
    IngestOptions no_merge;
    no_merge.merge = false;
    Ingester ing(store_.get(), nullptr, no_merge);
    ASSERT_TRUE(ing.IngestFile(Sensor(), Path(fmt::format("s{}.pcap", f))).ok());
  }
  const std::string want = FullAnswers(*store_);
  store_.reset();
  for (int delay_us : {200, 2000, 8000, 20000, 50000}) {
    pid_t pid = fork();
    if (pid == 0) {
      auto s = Store::Open(Path("store"), {});
      MergeOptions all;
      all.all = true;
      auto r = (*s)->Merge(all);
      _exit(r.ok() ? 0 : 1);
    }
    usleep(delay_us);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    Open();
    EXPECT_EQ(FullAnswers(*store_), want) << "killed after " << delay_us << " us";
    store_.reset();
  }
  Open();
  MergeOptions all;
  all.all = true;
  ASSERT_TRUE(store_->Merge(all).ok());
  EXPECT_EQ(FullAnswers(*store_), want);
  // Nothing left over: every rollup file on disk is a part the manifest names.
  std::set<std::string> named_parts;  // a part may be named by a sensor's key and a pooled one
  store_->ForEachRollup([&](const std::string& p) { named_parts.insert(p); });
  size_t named = named_parts.size(), on_disk = 0;
  for (const auto& e : fs::directory_iterator(Path("store/rollup"))) on_disk += e.is_regular_file();
  EXPECT_EQ(on_disk, named);
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

TEST_F(StoreTest, AnIngestOverItsMemoryBudgetSpillsPartsAndGivesTheSameAnswers) {
  WriteSmallCaptures(dir_.path(), 60);
  testing::TempDir ref_dir;
  auto ref = Store::Open(ref_dir.path(), {.create = true, .timezone = "Asia/Tokyo"});
  ASSERT_TRUE(Ingester(ref->get(), nullptr).IngestFile(Sensor(), Path("all.pcap")).ok());
  Open();
  IngestOptions tight;
  tight.batch_rows = 300;   // 8 flushes
  tight.memory_budget = 1;  // a spill after each
  tight.merge = false;
  auto r = Ingester(store_.get(), nullptr, tight).IngestFile(Sensor(), Path("all.pcap"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kept, 2400u);
  ASSERT_EQ(store_->manifest().inputs.size(), 1u);
  EXPECT_GE(store_->manifest().inputs[0].Indexes().size(), 8u);  // an index file a spill
  EXPECT_GE(store_->manifest().periods.at("2018Q3").size(), 8u);
  EXPECT_EQ(FullAnswers(*store_), FullAnswers(**ref));
  Open();  // and as read back
  EXPECT_EQ(FullAnswers(*store_), FullAnswers(**ref));
  // Merged three parts at a time (a merge's fan-in is capped), in rounds: the same answers, and
  // each key down to one part.
  MergeOptions all;
  all.all = true;
  all.max_parts = 3;
  auto m = store_->Merge(all);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_GE(m->merges, 4u);
  EXPECT_EQ(store_->manifest().periods.at("2018Q3").size(), 1u);
  EXPECT_EQ(FullAnswers(*store_), FullAnswers(**ref));
  EXPECT_EQ(store_->manifest().inputs[0].Indexes().size(), 1u);
  // One sensor fed every key: each pooled key names its sensor's merged parts, not a copy.
  const Manifest& mf = store_->manifest();
  size_t pooled_keys = 0;
  for (const auto& [d, per_sensor] : mf.days) {
    EXPECT_EQ(mf.periods.at(Store::DayLabel(d)), per_sensor.at(0)) << Store::DayLabel(d);
    ++pooled_keys;
  }
  for (const auto& [label, parts] : mf.periods) {
    if (label.size() > 7) continue;  // a day, or a sensor's key: only pooled months and quarters
    EXPECT_EQ(parts, mf.periods.at(Store::SensorPeriodLabel(label, 0))) << label;
    ++pooled_keys;
  }
  EXPECT_GE(pooled_keys, 3u);
  { auto t = store_->Begin(); }  // the replaced parts collected
  std::set<std::string> named;
  store_->ForEachRollup([&](const std::string& p) { named.insert(p); });
  size_t on_disk = 0;
  for (const auto& e : fs::directory_iterator(Path("store/rollup"))) on_disk += e.is_regular_file();
  EXPECT_EQ(on_disk, named.size());
  auto v = VerifyStore(Path("store"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok()) << fmt::format("{}", fmt::join(v->faults, "\n"));
}

// Every source's whole history (the source indexes' summaries, and the TCP windows from the
// blocks their visits name), as text.
std::string Histories(const Store& s) {
  std::string out;
  std::set<uint32_t> sources;  // WriteSmallCaptures' (485), and one it never wrote
  for (uint32_t k = 0; k < 2400; ++k) sources.insert(0x06000000u + k % 97 + (k % 5) * 1000);
  sources.insert(0x06000000u + 500);
  for (uint32_t v4 : sources) {
    IpAddr a = IpAddr::V4(v4);
    auto h = SourceHistory(s, a, true);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (!h.ok()) return out;
    out += fmt::format("{} {} {} {} {} {} {}\n", a.ToString(), h->seen, h->packets, h->first_us,
                       h->last_us, h->geo.country, h->geo.asn);
    for (const auto& [x, n] : h->ports) out += fmt::format(" p{} {}", x, n);
    for (const auto& [x, n] : h->sensors) out += fmt::format(" s{} {}", x, n);
    for (const auto& [x, n] : h->days) out += fmt::format(" d{} {}", x, n);
    for (const auto& [x, n] : h->ttls) out += fmt::format(" t{} {}", x, n);
    for (const auto& [x, n] : h->windows) out += fmt::format(" w{} {}", x, n);
    out += "\n";
  }
  return out;
}

size_t IndexFilesOnDisk(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir + "/idx")) n += e.is_regular_file();
  return n;
}

TEST_F(StoreTest, ASpilledInputsIndexFilesAreMergedIntoOneThatAnswersAsAnUnspilledIngests) {
  WriteSmallCaptures(dir_.path(), 60);
  testing::TempDir ref_dir;
  auto ref = Store::Open(ref_dir.path(), {.create = true, .timezone = "Asia/Tokyo"});
  ASSERT_TRUE(Ingester(ref->get(), nullptr).IngestFile(Sensor(), Path("all.pcap")).ok());
  ASSERT_EQ((*ref)->manifest().inputs[0].Indexes().size(), 1u);
  const std::string want = Histories(**ref);
  Open();
  IngestOptions tight;
  tight.batch_rows = 300;
  tight.memory_budget = 1;  // a spill, and an index file, after each batch
  tight.merge = false;
  ASSERT_TRUE(Ingester(store_.get(), nullptr, tight).IngestFile(Sensor(), Path("all.pcap")).ok());
  // A second sensor's capture, unspilled: its one index file is left alone.
  ASSERT_TRUE(Ingester(store_.get(), nullptr, tight)
                  .IngestFile(Sensor("osa1", "domestic"), Path("s7.pcap"))
                  .ok());
  const size_t spilled = store_->manifest().inputs[0].Indexes().size();
  ASSERT_GE(spilled, 8u);
  ASSERT_EQ(store_->manifest().inputs[1].Indexes().size(), 1u);
  const std::string before = Histories(*store_);
  EXPECT_NE(before, want);  // osa1's packets are in it too
  {
    // The verifier holds indexes to their segments: a well-formed index file whose visits
    // double what the input's other files hold is a fault.
    fs::copy(Path("store"), Path("dup"), fs::copy_options::recursive);
    auto ids = store_->manifest().inputs[0].Indexes();
    std::vector<std::unique_ptr<SourceIndex>> rest;
    std::vector<const SourceIndex*> parts;
    for (size_t i = 1; i < ids.size(); ++i) {
      rest.push_back(*SourceIndex::Open(Path(fmt::format("dup/idx/{:08}.tsix", ids[i]))));
      parts.push_back(rest.back().get());
    }
    ASSERT_TRUE(SourceIndex::Merge(parts, Path(fmt::format("dup/idx/{:08}.tsix", ids[0]))).ok());
    auto v = VerifyStore(Path("dup"));
    ASSERT_TRUE(v.ok());
    ASSERT_FALSE(v->ok());
    EXPECT_NE(v->faults[0].find("its source index names"), std::string::npos) << v->faults[0];
    auto clean = VerifyStore(Path("store"));
    EXPECT_TRUE(clean.ok() && clean->ok());
  }
  // A merge due for no rollup key merges no index either: only the maintenance passes do.
  MergeOptions days;
  days.days = {store_->manifest().days.begin()->first};
  ASSERT_TRUE(store_->Merge(days).ok());
  EXPECT_EQ(store_->manifest().inputs[0].Indexes().size(), spilled);
  MergeOptions all;
  all.all = true;
  all.max_parts = 3;  // in rounds: the order of the spills kept through them
  auto r = store_->Merge(all);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->index_merges, 1u);
  EXPECT_EQ(r->indexes_merged, spilled);
  ASSERT_EQ(store_->manifest().inputs[0].Indexes().size(), 1u);
  EXPECT_EQ(store_->manifest().inputs[0].more_indexes.size(), 0u);
  EXPECT_EQ(Histories(*store_), before);
  Open();  // read back, and the replaced files gone once no reader holds them
  EXPECT_EQ(Histories(*store_), before);
  { auto t = store_->Begin(); }
  EXPECT_EQ(IndexFilesOnDisk(Path("store")), 2u);
  auto v = VerifyStore(Path("store"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok()) << fmt::format("{}", fmt::join(v->faults, "\n"));
  EXPECT_EQ(v->index_files, 2u);
  // Without osa1's input the merged index answers as the unspilled ingest's.
  auto forgot = store_->Begin();
  ASSERT_TRUE((*forgot)->Forget(store_->manifest().inputs[1].hash).ok());
  forgot->reset();
  Open();
  EXPECT_EQ(Histories(*store_), want);
}

// An ingest that spills hands each spill's parts and index file to a writer thread and adds the
// next rows meanwhile, and after its commit makes its index files one beside the rollup merges
// (a thread each): every answer is the unspilled ingest's, one index file is left, and no file
// the manifest does not name.
TEST_F(StoreTest, AnIngestWhoseSpillsAreWrittenBesideItAnswersAsOneThatNeverSpilled) {
  WriteSmallCaptures(dir_.path(), 60);
  testing::TempDir ref_dir;
  auto ref = Store::Open(ref_dir.path(), {.create = true, .timezone = "Asia/Tokyo"});
  ASSERT_TRUE(Ingester(ref->get(), nullptr).IngestFile(Sensor(), Path("all.pcap")).ok());
  ASSERT_EQ((*ref)->manifest().inputs[0].Indexes().size(), 1u);
  const std::string want_histories = Histories(**ref);
  const std::string want_answers = FullAnswers(**ref);
  Open();
  IngestOptions tight;
  tight.batch_rows = 200;
  tight.memory_budget = 1;  // a spill after each day of each batch
  auto sum = Ingester(store_.get(), nullptr, tight).IngestFile(Sensor(), Path("all.pcap"));
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(store_->manifest().inputs[0].Indexes().size(), 1u);
  EXPECT_EQ(Histories(*store_), want_histories);
  EXPECT_EQ(FullAnswers(*store_), want_answers);
  Open();
  EXPECT_EQ(FullAnswers(*store_), want_answers);
  { auto t = store_->Begin(); }  // what the merges replaced, collected
  EXPECT_EQ(IndexFilesOnDisk(Path("store")), 1u);
  EXPECT_TRUE(Unnamed(*store_).empty()) << fmt::format("{}", fmt::join(Unnamed(*store_), " "));
  auto v = VerifyStore(Path("store"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok()) << fmt::format("{}", fmt::join(v->faults, "\n"));
}

TEST_F(StoreTest, KillDuringAnIndexMergeLosesNothingAndLeavesNoFile) {
  WriteSmallCaptures(dir_.path(), 60);
  Open();
  IngestOptions tight;
  tight.batch_rows = 100;
  tight.memory_budget = 1;
  tight.merge = false;
  ASSERT_TRUE(Ingester(store_.get(), nullptr, tight).IngestFile(Sensor(), Path("all.pcap")).ok());
  const size_t spilled = store_->manifest().inputs[0].Indexes().size();
  ASSERT_GE(spilled, 20u);
  const std::string want = Histories(*store_);
  store_.reset();
  // How long the whole merge takes (on a copy): the kills land from its start to its end, in
  // the rollup parts' merge and in the index files'.
  fs::copy(Path("store"), Path("copy"), fs::copy_options::recursive);
  auto t0 = std::chrono::steady_clock::now();
  {
    auto s = Store::Open(Path("copy"), {});
    MergeOptions all;
    all.all = true;
    auto r = (*s)->Merge(all);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->index_merges, 1u);
  }
  const auto whole_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  for (int tenth : {1, 3, 5, 7, 8, 9}) {
    const auto delay_us = static_cast<useconds_t>(whole_us * tenth / 10);
    pid_t pid = fork();
    if (pid == 0) {
      auto s = Store::Open(Path("store"), {});
      MergeOptions all;
      all.all = true;
      _exit((*s)->Merge(all).ok() ? 0 : 1);
    }
    usleep(delay_us);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    Open();
    EXPECT_EQ(Histories(*store_), want) << "killed after " << delay_us << " us";
    store_.reset();
  }
  Open();
  MergeOptions all;
  all.all = true;
  ASSERT_TRUE(store_->Merge(all).ok());
  EXPECT_EQ(store_->manifest().inputs[0].Indexes().size(), 1u);
  EXPECT_EQ(Histories(*store_), want);
  { auto t = store_->Begin(); }
  EXPECT_EQ(IndexFilesOnDisk(Path("store")), 1u);
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

TEST_F(StoreTest, KeysNoCommitTouchedForTenMinutesAreMergedWhole) {
  WriteSmallCaptures(dir_.path(), 12);
  Open();
  for (int f = 0; f < 12; ++f) Ingest(Path(fmt::format("s{}.pcap", f)));
  const std::string want = FullAnswers(*store_);
  ASSERT_GT(store_->manifest().periods.at("2018Q3").size(), 1u);
  MergeOptions cold;
  cold.cold_after_s = 600;
  ASSERT_TRUE(store_->Merge(cold).ok());  // everything is fresh: nothing merged whole
  ASSERT_GT(store_->manifest().periods.at("2018Q3").size(), 1u);
  // Ten minutes later (the parts' times set back).
  for (const auto& e : fs::directory_iterator(Path("store/rollup"))) {
    struct utimbuf old {
      static_cast<time_t>(std::time(nullptr) - 700), static_cast<time_t>(std::time(nullptr) - 700)
    };
    ASSERT_EQ(utime(e.path().c_str(), &old), 0);
  }
  auto m = store_->Merge(cold);
  ASSERT_TRUE(m.ok());
  EXPECT_GT(m->merges, 0u);
  for (const auto& [label, parts] : store_->manifest().periods)
    EXPECT_EQ(parts.size(), 1u) << label;
  for (const auto& [d, per_sensor] : store_->manifest().days) {
    for (const auto& [s, parts] : per_sensor) EXPECT_EQ(parts.size(), 1u) << d;
  }
  EXPECT_EQ(FullAnswers(*store_), want);
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

TEST_F(StoreTest, RetentionDropsOldObservationsAndKeepsEveryCountRankAndSummary) {
  WriteSmallCaptures(dir_.path(), 9);  // 2018-08-12, -13 and -14
  Open();
  for (int f = 0; f < 9; ++f) Ingest(Path(fmt::format("s{}.pcap", f)));
  const std::string want = FullAnswers(*store_);
  size_t segments_before = store_->manifest().segments.size();
  uint64_t freed = 0;
  {
    auto txn = store_->Begin();
    ASSERT_TRUE((*txn)->Retain(ParsePeriod("2018-08-14")->first_day, &freed).ok());
  }
  EXPECT_GT(freed, 0u);
  EXPECT_EQ(store_->manifest().segments.size(), segments_before / 3);
  size_t seg_files = 0;
  for (const auto& e : fs::directory_iterator(Path("store/seg"))) seg_files += e.is_regular_file();
  EXPECT_EQ(seg_files, store_->manifest().segments.size());  // the dropped files are gone
  EXPECT_EQ(FullAnswers(*store_), want);
  auto h = SourceHistory(*store_, IpAddr::V4(0x06000001u), /*with_windows=*/true);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  // Rebuilding keeps what only the rollups still hold; verify checks the days that have rows.
  {
    auto txn = store_->Begin();
    ASSERT_TRUE((*txn)->RebuildRollups({}).ok());
  }
  EXPECT_EQ(FullAnswers(*store_), want);
  store_.reset();
  auto r = VerifyStore(Path("store"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok()) << (r->faults.empty() ? "" : r->faults[0]);
  EXPECT_EQ(r->days, 1u);
  Open();
  auto txn = store_->Begin();
  Status st = (*txn)->Forget(store_->manifest().inputs[0].hash);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

// After a commit into a store whose quarter is one large merged part, the quarter's distinct
// sources are the large part's stored count plus the new members it does not hold (the large
// set is looked up, not gathered): exactly the distinct sources of the packets, counted here.
TEST_F(StoreTest, ANewSmallPartBesideALargeMergedOneCountsTheUnionExactly) {
  std::mt19937 rng(11);
  std::vector<Pkt> big;
  std::map<uint16_t, std::set<uint32_t>> truth;  // port → sources
  std::set<uint32_t> all;
  std::vector<uint32_t> sources;
  for (int i = 0; i < 30000; ++i) {
    uint32_t src = 0x01000000u + (rng() % 0xDD000000u);
    sources.push_back(src);
    uint16_t port = i % 3 == 0 ? 445 : 23;
    big.push_back({kAug12Jst + int64_t{i % 5} * 86400 * kS + i, src, kNet + (i & 0xFF), 6, port});
    truth[port].insert(src);
    all.insert(src);
  }
  WritePcap(Path("big.pcap"), big);
  Open();
  Ingest(Path("big.pcap"));
  MergeOptions whole;
  whole.all = true;
  ASSERT_TRUE(store_->Merge(whole).ok());
  ASSERT_EQ(store_->manifest().periods.at("2018Q3").size(), 1u);
  // Three commits: sources seen before, new ones, the lowest and highest addresses.
  for (int c = 0; c < 3; ++c) {
    std::vector<Pkt> small;
    for (int i = 0; i < 60; ++i) {
      uint32_t src = i % 2 ? sources[rng() % sources.size()] : 0x01000000u + (rng() % 0xDD000000u);
      if (i == 58) src = 0x01000000u;
      if (i == 59) src = 0xDDFFFFFEu;
      uint16_t port = i % 3 == 0 ? 445 : 23;
      small.push_back({kAug12Jst + int64_t{20 + c} * 86400 * kS + i, src, kNet + 7, 6, port});
      truth[port].insert(src);
      all.insert(src);
    }
    WritePcap(Path(fmt::format("small{}.pcap", c)), small);
    Ingest(Path(fmt::format("small{}.pcap", c)));
  }
  ASSERT_GT(store_->manifest().periods.at("2018Q3").size(), 1u);
  auto check = [&](const char* when) {
    auto t = Top(*store_, Dimension::kPort, *ParsePeriod("2018Q3"), {}, 10);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->total_sources, all.size()) << when;
    ASSERT_EQ(t->rows.size(), 2u);
    for (const auto& row : t->rows) {
      EXPECT_EQ(row.sources, truth[static_cast<uint16_t>(row.key & 0xFFFF)].size())
          << when << " port key " << row.key;
    }
  };
  check("beside the merged part");
  ASSERT_TRUE(store_->Merge(whole).ok());
  ASSERT_EQ(store_->manifest().periods.at("2018Q3").size(), 1u);
  check("merged");
}

}  // namespace
}  // namespace teiten
