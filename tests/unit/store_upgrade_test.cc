// Upgrades (issue 16, "no one loses a store on upgrade"): stores made by earlier teiten, kept
// under tests/data, open, answer as a fresh store of the same captures does, take new commits
// and merge old parts with new ones.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "analysis/dos.h"
#include "analysis/query.h"
#include "ingest/ingest.h"
#include "store/source_index.h"
#include "store/verify.h"
#include "store_test_support.h"
#include "test_support.h"

namespace teiten {
namespace {

using namespace store_testing;

// The two sensors the fixture stores were made with (their teiten.toml): every address, groups
// g1 and g2.
std::pair<SensorConfig, SensorConfig> FixtureSensors() {
  SensorConfig a{"a",
                 "a",
                 "g1",
                 "",
                 SensorMode::kDarknet,
                 {*Prefix::Parse("0.0.0.0/0"), *Prefix::Parse("::/0")}};
  SensorConfig b = a;
  b.id = b.name = "b";
  b.group = "g2";
  return {a, b};
}

std::string AnswersOver(const Store& s, const std::string& period) {
  std::string out;
  Period p = *ParsePeriod(period);
  for (Dimension d : {Dimension::kPort, Dimension::kCountry, Dimension::kSensor}) {
    auto t = Top(s, d, p, {}, 50);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (!t.ok()) return out;
    out += fmt::format("{} {} {}\n", DimensionName(d), t->total_packets, t->total_sources);
    for (const auto& r : t->rows) out += fmt::format(" {} {} {}\n", r.key, r.packets, r.sources);
  }
  for (const char* g : {"g1", "g2"}) {
    auto sel = ResolveSensors(s, {}, {g});
    auto t = Top(s, Dimension::kPort, p, *sel, 50);
    out += fmt::format("{} {} {}\n", g, t->total_packets, t->total_sources);
  }
  // A summary's sources per sensor-day: from the manifest's counts where it keeps them, else
  // from the sensor-days' parts.
  for (const char* g : {"", "g2"}) {
    auto sel = *g ? *ResolveSensors(s, {}, {g}) : SensorSelection{};
    auto sum = Summary(s, p, sel, 10);
    out += fmt::format("summary{} {} {} {} {:.6f} {:.6f}\n", g, sum->packets, sum->sources,
                       sum->sensor_days, sum->packets_per_sensor_day, sum->sources_per_sensor_day);
  }
  for (const auto& [d, per_sensor] : s.manifest().days) {
    auto day = Top(s, Dimension::kPort, *ParsePeriod(TimeZone::DayString(d)), {}, 5);
    out += fmt::format("{} {} {}\n", d, day->total_packets, day->total_sources);
  }
  return out;
}

TEST_F(StoreTest, AStoreWrittenBeforePartsOpensAnswersTheSameAndTakesNewCommits) {
  // A store made by teiten at commit 7626edf (tests/data/store-format2/README.md).
  fs::copy(testing::SourceDir() + "/tests/data/store-format2/store", Path("old"),
           fs::copy_options::recursive);
  const std::string pcaps = testing::SharedPcapDir();
  const auto [a, b] = FixtureSensors();
  auto fresh = Store::Open(Path("fresh"), {.create = true, .timezone = "Asia/Tokyo"});
  for (const auto& [sensor, file] :
       std::vector<std::pair<SensorConfig, std::string>>{{a, "telnet.pcap"},
                                                         {a, "sip.pcap"},
                                                         {b, "tcp_scan.pcapng"},
                                                         {b, "smbv1.pcap"},
                                                         {b, "nmap_80_all.pcap"}}) {
    ASSERT_TRUE(Ingester(fresh->get(), nullptr).IngestFile(sensor, pcaps + "/" + file).ok());
  }
  const std::string span = "1999-11-01..2023-01-31";
  auto old = Store::Open(Path("old"), {});
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ((*old)->manifest().inputs.size(), 5u);
  std::string want = AnswersOver(**fresh, span);
  EXPECT_EQ(AnswersOver(**old, span), want);
  // The old manifest keeps no sensor-day counts; the fresh one has them for every part.
  EXPECT_TRUE((*old)->manifest().part_counts.empty());
  for (const auto& [d, per_sensor] : (*fresh)->manifest().days) {
    for (const auto& [sensor, parts] : per_sensor) {
      for (const auto& rel : parts) EXPECT_TRUE((*fresh)->manifest().part_counts.count(rel)) << rel;
    }
  }
  // Its inputs are recognised again (by their file bytes, as that teiten identified them).
  auto again = Ingester(old->get(), nullptr).IngestFile(a, pcaps + "/telnet.pcap");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->already_ingested);
  // A new commit into it, then merging everything: the same answers as the fresh store's.
  for (Store* s : {old->get(), fresh->get()}) {
    ASSERT_TRUE(Ingester(s, nullptr).IngestFile(a, pcaps + "/tcp_0_1000_20190821.pcap").ok());
  }
  want = AnswersOver(**fresh, "1999-11-01..2023-01-31");
  EXPECT_EQ(AnswersOver(**old, span), want);
  MergeOptions all;
  all.all = true;
  ASSERT_TRUE((*old)->Merge(all).ok());
  EXPECT_EQ(AnswersOver(**old, span), want);
  old = Store::Open(Path("old"), {});
  EXPECT_EQ(AnswersOver(**old, span), want);
  // The maintenance merge gave every sensor-day part its counts, read back from the manifest.
  for (const auto& [d, per_sensor] : (*old)->manifest().days) {
    for (const auto& [sensor, parts] : per_sensor) {
      for (const auto& rel : parts) EXPECT_TRUE((*old)->manifest().part_counts.count(rel)) << rel;
    }
  }
  // Migrated by its first commit: a root naming a chapter per month, each on disk.
  EXPECT_EQ((*old)->manifest().format, 4);
  EXPECT_FALSE((*old)->manifest().chapters.empty());
  EXPECT_NE(Slurp(Path("old/MANIFEST")).find("\"format\": 4"), std::string::npos);
  for (const auto& [month, id] : (*old)->manifest().chapters) {
    EXPECT_TRUE(fs::exists(Path("old/" + ChapterFile(id)))) << month;
  }
}

// A series of a few ports over every day of `period` (keys looked up one by one: RollupFile::Find).
std::string SeriesOver(const Store& s, const std::string& period) {
  auto series = Series(s, Dimension::kPort,
                       {MakePortKey(6, 23), MakePortKey(6, 80), MakePortKey(17, 5060),
                        MakePortKey(6, 445), MakePortKey(17, 53)},
                       *ParsePeriod(period), Granularity::kDay, {});
  EXPECT_TRUE(series.ok()) << series.status().ToString();
  std::string out;
  if (!series.ok()) return out;
  for (const auto& pt : series->points) {
    uint64_t any = 0;
    for (uint64_t n : pt.packets) any += n;
    if (any) {
      out += fmt::format("{} {} {}\n", pt.label, fmt::join(pt.packets, " "),
                         fmt::join(pt.sources, " "));
    }
  }
  return out;
}

// `teiten dos` over a period: the backscatter read, and every flow that is an attack.
std::string DosOver(const Store& s, const std::string& period) {
  auto r = FindDosAttacks(s, *ParsePeriod(period), {});
  if (!r.ok()) return r.status().ToString();
  std::string out = fmt::format("backscatter={} unattributed={} victims={} flows={}\n",
                                r->backscatter, r->unattributed, r->victims, r->flows);
  for (const DosAttack& a : r->attacks) {
    out += fmt::format("{} {}..{} {} peak={}\n", a.victim.ToString(), a.start_us, a.end_us,
                       a.packets, a.peak_per_minute);
  }
  return out;
}

// `teiten ip` of the fixtures' sources (and one never seen), windows included: every field, the
// times in whole seconds as `teiten ip` shows them (index format 6 keeps no more; format 5 kept
// microseconds).
std::string HistoriesOver(const Store& s) {
  std::string out;
  for (const char* a : {"192.168.0.2", "192.168.1.2", "212.242.33.35", "172.16.156.130",
                        "10.87.1.10", "130.211.223.103", "172.31.15.102", "192.0.2.1"}) {
    auto h = SourceHistory(s, *IpAddr::Parse(a), true);
    EXPECT_TRUE(h.ok()) << a << ": " << h.status().ToString();
    if (!h.ok()) return out;
    out += fmt::format(
        "{} seen={} geo={}/{} {}..{} {} ports={} sensors={} days={} ttls={} "
        "windows={}\n",
        a, h->seen, h->geo.country, h->geo.asn, h->first_us / 1000000, h->last_us / 1000000,
        h->packets, h->ports, h->sensors, h->days, h->ttls, h->windows);
  }
  return out;
}

// The magics of the files under `dir`/`sub`.
std::string Magics(const std::string& dir, const char* sub = "rollup") {
  std::set<std::string> magics;
  for (const auto& e : fs::directory_iterator(dir + "/" + sub)) {
    std::ifstream in(e.path(), std::ios::binary);
    char m[8];
    in.read(m, 8);
    magics.insert(std::string(m, 8));
  }
  return fmt::format("{}", fmt::join(magics, " "));
}

// A store made by an earlier teiten (tests/data/`fixture`), whose rollups and source indexes
// have the magics `rollups` and `indexes`: it opens and answers as a fresh store of the same
// captures; a new commit adds parts of today's formats beside its own; a merge of every key
// unites old parts with new ones; nothing changes in any answer and the store verifies clean.
class UpgradeTest : public StoreTest {
 protected:
  void Check(const std::string& fixture, const std::string& rollups, const std::string& indexes);
};

void UpgradeTest::Check(const std::string& fixture, const std::string& rollups,
                        const std::string& indexes) {
  const std::string today_rollups = "TROLLU11", today_indexes = "TSIX0007";
  fs::copy(testing::SourceDir() + "/tests/data/" + fixture + "/store", Path("old"),
           fs::copy_options::recursive);
  EXPECT_EQ(Magics(Path("old")), rollups);
  const std::string pcaps = testing::SharedPcapDir();
  const auto [a, b] = FixtureSensors();
  auto fresh = Store::Open(Path("fresh"), {.create = true, .timezone = "Asia/Tokyo"});
  ASSERT_TRUE(fresh.ok());
  for (const auto& [sensor, file] :
       std::vector<std::pair<SensorConfig, std::string>>{{a, "telnet.pcap"},
                                                         {a, "sip.pcap"},
                                                         {b, "tcp_scan.pcapng"},
                                                         {b, "smbv1.pcap"},
                                                         {b, "nmap_80_all.pcap"},
                                                         {a, "tcp_0_1000_20190821.pcap"}}) {
    ASSERT_TRUE(Ingester(fresh->get(), nullptr).IngestFile(sensor, pcaps + "/" + file).ok());
  }
  EXPECT_EQ(Magics(Path("fresh")), today_rollups);
  const std::string span = "1999-11-01..2023-01-31", days = "2019-08-01..2019-08-31";
  auto old = Store::Open(Path("old"), {});
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  ASSERT_EQ((*old)->manifest().inputs.size(), 6u);
  std::string want = AnswersOver(**fresh, span) + SeriesOver(**fresh, days);
  EXPECT_NE(SeriesOver(**fresh, days), "");
  EXPECT_EQ(AnswersOver(**old, span) + SeriesOver(**old, days), want);
  // Its manifest is one document (format 3), read as it is: opening it wrote nothing.
  EXPECT_TRUE((*old)->manifest().chapters.empty());
  EXPECT_FALSE(fs::exists(Path("old/man")));
  EXPECT_EQ(Magics(Path("old"), "idx"), indexes);
  EXPECT_EQ(Magics(Path("fresh"), "idx"), today_indexes);
  EXPECT_EQ(HistoriesOver(**old), HistoriesOver(**fresh));
  EXPECT_NE(HistoriesOver(**fresh).find("172.31.15.102 seen=true"), std::string::npos);
  // Backscatter: the old segments hold it among the other rows and are read whole; the fresh
  // store keeps it apart and reads only that. The same backscatter and attacks either way.
  EXPECT_EQ(DosOver(**old, span), DosOver(**fresh, span));
  EXPECT_EQ(DosOver(**fresh, span).find("backscatter=0 "), std::string::npos);
  uint64_t rows = 0;
  for (const SegmentRecord& seg : (*old)->manifest().segments) {
    EXPECT_EQ(seg.rows_of, SegmentRows::kAll);
    rows += seg.rows;
  }
  EXPECT_EQ(BackscatterScanCost(**old, *ParsePeriod(span)), rows);
  EXPECT_LT(BackscatterScanCost(**fresh, *ParsePeriod(span)), rows / 2);
  // A capture of a day the old store holds: a new part beside the old one, then every key
  // merged — old parts and new ones into parts of today's format.
  for (Store* s : {old->get(), fresh->get()}) {
    ASSERT_TRUE(Ingester(s, nullptr).IngestFile(a, pcaps + "/udp_0_1000_20190821.pcap").ok());
  }
  // That commit wrote its manifest in chapters (format 4): one per month the store holds.
  EXPECT_EQ((*old)->manifest().chapters.size(), (*fresh)->manifest().chapters.size());
  EXPECT_NE(Slurp(Path("old/MANIFEST")).find("\"format\": 4"), std::string::npos);
  // (Magics lists them sorted.)
  auto both = [](const std::string& x, const std::string& y) {
    return x == y ? x : x < y ? x + " " + y : y + " " + x;
  };
  EXPECT_EQ(Magics(Path("old")), both(rollups, today_rollups));
  EXPECT_EQ(Magics(Path("old"), "idx"), both(indexes, today_indexes));
  want = AnswersOver(**fresh, span) + SeriesOver(**fresh, days);
  EXPECT_EQ(AnswersOver(**old, span) + SeriesOver(**old, days), want);
  // 172.31.15.102 is now in an old index and a new one: its history sums the two.
  EXPECT_EQ(HistoriesOver(**old), HistoriesOver(**fresh));
  MergeOptions all;
  all.all = true;
  auto merged = (*old)->Merge(all);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_GT(merged->merges, 0u);
  EXPECT_EQ(AnswersOver(**old, span) + SeriesOver(**old, days), want);
  old = Store::Open(Path("old"), {});
  EXPECT_EQ(AnswersOver(**old, span) + SeriesOver(**old, days), want);
  EXPECT_EQ(HistoriesOver(**old), HistoriesOver(**fresh));
  // An index of each format merged into one (as a spilled input's are): each address once, its
  // entries summed, written in today's format.
  std::vector<std::unique_ptr<SourceIndex>> files;
  for (const auto& e : fs::directory_iterator(Path("old/idx"))) {
    files.push_back(*SourceIndex::Open(e.path().string()));
  }
  ASSERT_EQ(files.size(), 7u);
  std::vector<const SourceIndex*> parts;
  std::set<std::string> addrs;
  for (const auto& f : files) {
    parts.push_back(f.get());
    ASSERT_TRUE(f->ForEachSource([&](const IpAddr& x) {
                   addrs.insert(x.ToString());
                   return OkStatus();
                 }).ok());
  }
  ASSERT_TRUE(SourceIndex::Merge(parts, Path("merged.tsix")).ok());
  auto m = SourceIndex::Open(Path("merged.tsix"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE((*m)->Verify().ok());
  EXPECT_EQ((*m)->sources(), addrs.size());
  for (const std::string& text : addrs) {
    SourceSummary want_sum, got_sum;
    for (const auto& f : files) ASSERT_TRUE(f->Lookup(*IpAddr::Parse(text), &want_sum).ok());
    ASSERT_TRUE(*(*m)->Lookup(*IpAddr::Parse(text), &got_sum)) << text;
    uint64_t packets = 0;
    for (const Visit& v : want_sum.visits) packets += v.packets;
    EXPECT_EQ(got_sum.packets, packets) << text;
    EXPECT_EQ(got_sum.visits.size(), want_sum.visits.size()) << text;
  }
  old->reset();
  auto v = VerifyStore(Path("old"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok()) << (v->faults.empty() ? "" : v->faults[0]);
}

TEST_F(UpgradeTest, AStoreOfRollupFormat5OpensAnswersTheSameAndMergesWithNewParts) {
  // Made at commit 0b008d0: key records in place (rollup format 5), index entries in place
  // (TSIX0004).
  Check("store-format5", "TROLLUP5", "TSIX0004");
}

TEST_F(UpgradeTest, AStoreOfRollupFormat6OpensAnswersTheSameAndMergesWithNewParts) {
  // Made at commit 3b4f95e: every source set as addresses (rollup format 6; today's keyed sets
  // are positions in their entry's total set).
  Check("store-format6", "TROLLUP6", "TSIX0005");
}

TEST_F(UpgradeTest, AStoreOfRollupFormat7OpensAnswersTheSameAndMergesWithNewParts) {
  // Made at commit 9f72e45: keyed sets as positions, as gaps only (rollup format 7; today's
  // may also be runs, SourceSetEncoding.SetsOfPositionsAsRunsReadBackAsTheirMembers).
  Check("store-format7", "TROLLUP7", "TSIX0005");
}

TEST_F(UpgradeTest, AStoreOfRollupFormat8OpensAnswersTheSameAndMergesWithNewParts) {
  // Made at commit 098dd17: every heavy-hitter list written (rollup format 8; today's leave out
  // the lists their records imply), source indexes of format 5 (times in microseconds; today's
  // keep whole seconds).
  Check("store-format8", "TROLLUP8", "TSIX0005");
}

TEST_F(UpgradeTest, AStoreOfRollupFormat9OpensAnswersTheSameAndMergesWithNewParts) {
  // Made at commit 9f46ce5: the port × country records as 16-byte structs (rollup format 9;
  // today's are varint columns with countries as ranks), source indexes of format 6 (today's 7
  // codes IPv4 address gaps and first times in bits).
  Check("store-format9", "TROLLUP9", "TSIX0006");
}

TEST_F(UpgradeTest, AStoreWrittenBeforeManifestChaptersOpensAnswersTheSameAndTakesNewCommits) {
  // Made at commit fb6253a, the last before the manifest's chapters: the manifest one document
  // (format 3), rollup format 10 (today's may hold small sets as Rice codes), source indexes of
  // format 6.
  Check("store-format10", "TROLLU10", "TSIX0006");
}

}  // namespace
}  // namespace teiten
