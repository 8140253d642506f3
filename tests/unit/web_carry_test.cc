// Answers a new snapshot takes over from the one before it (web/api.h, Snapshot::Inherit): only
// those whose days the commits between them left as they were, and each equal to what a
// snapshot made afresh answers. Hand-made captures with known counts (store_test_support.h).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store_test_support.h"
#include "web/api.h"

namespace teiten {
namespace {

using namespace store_testing;
using web::ApiReply;
using web::HandleApi;
using web::Params;
using web::Snapshot;

constexpr int64_t kDay = 86400 * kS;
// 2018-07-10 00:00 JST, and a local day of it.
constexpr int64_t kJul10Jst = kAug12Jst - 33 * kDay;
int32_t LocalDay(const char* ymd) {
  return ParsePeriod(ymd)->first_day;
}

// `n` packets from `sources` sources to 23/TCP and 445/TCP on the local day starting at `t0`.
std::vector<Pkt> Day(int64_t t0, uint32_t n, uint32_t sources, uint32_t first_source) {
  std::vector<Pkt> v;
  for (uint32_t i = 0; i < n; ++i) {
    v.push_back({t0 + 3600 * kS + i * 1000, 0x06000000u + first_source + i % sources,
                 kNet + (i & 0xFF), 6, static_cast<uint16_t>(i % 3 ? 23 : 445)});
  }
  return v;
}

class WebCarry : public StoreTest {
 protected:
  std::shared_ptr<Snapshot> Snap() {
    auto s = Store::Open(dir_.path() + "/store", {});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::make_shared<Snapshot>(std::move(*s));
  }
  void Commit(const std::string& name, const std::vector<Pkt>& pkts) {
    WritePcap(Path(name), pkts);
    Ingest(Path(name));
  }
  // The answers the dashboard asks for, as text, from `s`.
  static std::vector<std::string> Ask(const Snapshot& s) {
    std::vector<std::string> out;
    for (const auto& [path, params] : Requests()) {
      ApiReply r = HandleApi(s, path, params, {});
      EXPECT_EQ(r.status, 200) << path << " " << r.body.dump();
      out.push_back(path + " " + r.body.dump());
    }
    return out;
  }
  static std::vector<std::pair<std::string, Params>> Requests() {
    std::vector<std::pair<std::string, Params>> v;
    for (const char* p : {"2018-07", "2018-08", "2018Q3"}) {
      for (const char* path : {"/api/v1/summary", "/api/v1/top/ports", "/api/v1/top/countries",
                               "/api/v1/findings", "/api/v1/outages"}) {
        v.push_back({path, {{"period", p}}});
      }
      v.push_back({"/api/v1/sources", {{"period", p}, {"port", "23/tcp"}}});
      v.push_back({"/api/v1/series", {{"period", p}, {"port", "23/tcp"}}});
    }
    v.push_back({"/api/v1/sensors", {}});
    v.push_back({"/api/v1/ip/6.0.0.1", {}});
    v.push_back({"/api/v1/mustan", {}});
    return v;
  }
  static uint64_t Packets(const Snapshot& s, const char* period) {
    ApiReply r = HandleApi(s, "/api/v1/summary", {{"period", period}}, {});
    EXPECT_EQ(r.status, 200) << r.body.dump();
    return r.body["packets"].get<uint64_t>();
  }
};

// Per period asked: summary, two tops, findings (twice: the answer and the findings it filters),
// sources and series; outages rest on their whole quarter and are counted apart.
constexpr size_t kPerPeriod = 7;

TEST_F(WebCarry, AnswersOfDaysACommitDidNotTouchAreTakenOverAndEqualFreshOnes) {
  Open();
  Commit("a.pcap", [] {
    auto v = Day(kJul10Jst, 900, 30, 1);
    auto w = Day(kAug12Jst, 600, 20, 1);
    v.insert(v.end(), w.begin(), w.end());
    return v;
  }());
  auto s1 = Snap();
  auto first = Ask(*s1);
  EXPECT_EQ(Packets(*s1, "2018-07"), 900u);
  EXPECT_EQ(Packets(*s1, "2018-08"), 600u);

  // A commit to 2018-08-20: July's answers hold, August's and the quarter's do not.
  Commit("b.pcap", Day(kAug12Jst + 8 * kDay, 300, 10, 100));
  auto s2 = Snap();
  EXPECT_EQ(s2->FirstDayChangedSince(*s1), LocalDay("2018-08-20"));
  // July: summary, tops, series, sources and findings (with the findings behind them); not its
  // outages (they choose candidates over the quarter), nor anything of August or the quarter,
  // nor the sensors' health, an address's history or MUSTAN.
  EXPECT_EQ(s2->Inherit(*s1), kPerPeriod);
  auto fresh2 = Snap();
  EXPECT_EQ(Ask(*s2), Ask(*fresh2));
  EXPECT_EQ(Packets(*s2, "2018-07"), 900u);
  EXPECT_EQ(Packets(*s2, "2018-08"), 900u);
  EXPECT_EQ(Packets(*s2, "2018Q3"), 1800u);

  // A merge of every rollup part renames files but changes no day: everything a period rests
  // on is taken over, and stays right.
  MergeOptions all;
  all.all = true;
  ASSERT_TRUE(store_->Merge(all).ok());
  auto s3 = Snap();
  EXPECT_EQ(s3->FirstDayChangedSince(*s2), INT32_MAX);
  EXPECT_EQ(s3->Inherit(*s2), 3 * (kPerPeriod + 1));
  EXPECT_EQ(Ask(*s3), Ask(*Snap()));

  // A commit to a day July already holds: July's answers are made anew, with its packets.
  Commit("c.pcap", Day(kJul10Jst + 7200 * kS, 50, 5, 200));
  auto s4 = Snap();
  EXPECT_EQ(s4->FirstDayChangedSince(*s3), LocalDay("2018-07-10"));
  EXPECT_EQ(s4->Inherit(*s3), 0u);
  EXPECT_EQ(Packets(*s4, "2018-07"), 950u);
  EXPECT_EQ(Ask(*s4), Ask(*Snap()));

  // Forgetting b.pcap takes August's 300 packets back out: August's answers go, July's stay.
  std::string b_hash;
  for (const InputRecord& in : store_->manifest().inputs) {
    if (in.path.find("b.pcap") != std::string::npos) b_hash = in.hash;
  }
  ASSERT_FALSE(b_hash.empty());
  {
    auto txn = store_->Begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*txn)->Forget(b_hash).ok());
  }
  auto s5 = Snap();
  EXPECT_EQ(s5->FirstDayChangedSince(*s4), LocalDay("2018-08-20"));
  EXPECT_EQ(s5->Inherit(*s4), kPerPeriod);
  EXPECT_EQ(Packets(*s5, "2018-08"), 600u);
  EXPECT_EQ(Ask(*s5), Ask(*Snap()));
  EXPECT_NE(Ask(*s5), first);  // July gained c.pcap's packets
}

TEST_F(WebCarry, ANewSensorTakesNothingOver) {
  Open();
  Commit("a.pcap", Day(kJul10Jst, 900, 30, 1));
  auto s1 = Snap();
  Ask(*s1);
  // A second sensor's first commit, on a day after July: the sensors every answer names and
  // selects by have changed, so nothing is taken over.
  WritePcap(Path("o.pcap"), Day(kAug12Jst, 100, 10, 1));
  Ingest(Path("o.pcap"), Sensor("osa1", "partner"));
  auto s2 = Snap();
  EXPECT_EQ(s2->FirstDayChangedSince(*s1), INT32_MIN);
  EXPECT_EQ(s2->Inherit(*s1), 0u);
  EXPECT_EQ(Ask(*s2), Ask(*Snap()));
}

}  // namespace
}  // namespace teiten
