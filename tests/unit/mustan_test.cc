// MUSTAN views (analysis/mustan.h) on the dating scenario (tests/unit/scenarios/dating.toml),
// whose planted events give known answers for the 10 days ending 2019-04-03: port 9530/tcp
// appears from nothing on 04-01 with 600 sources (new, rising, sources rising sharply), 8081/tcp
// had no packet before 03-25 (new), and 22/tcp carries only the steady background (flat).
#include "analysis/mustan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "analysis/period.h"
#include "analysis/query.h"
#include "scenario_fixture.h"
#include "test_support.h"

namespace teiten {
namespace {

class Mustan : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("TEITEN_SOURCE_DIR", testing::SourceDir().c_str(), 0);
    auto s = testing::ScenarioStoreFor(testing::SourceDir() + "/tests/unit/scenarios/dating.toml");
    if (!s.ok()) return;
    auto st = Store::Open(s->store_dir, {});
    if (st.ok()) store_ = st->release();
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
  }
  void SetUp() override {
    if (!store_) GTEST_SKIP() << "no scenario store (country database missing?)";
  }
  static int32_t Day(const char* d) { return ParsePeriod(d)->first_day; }
  static PortKey Port(const char* p) {
    PortKey k = 0;
    EXPECT_TRUE(ParsePortKey(p, &k)) << p;
    return k;
  }
  static const MustanItem* Find(const std::vector<MustanItem>& v, PortKey k) {
    auto it = std::find_if(v.begin(), v.end(), [&](const auto& i) { return i.key == k; });
    return it == v.end() ? nullptr : &*it;
  }
  static inline Store* store_ = nullptr;
};

TEST_F(Mustan, PlantedRiseIsWatchAndRiskWithUpArrow) {
  auto ch = PortChannel();
  auto v = BuildMustan(*store_, *ch, Day("2019-04-03"), {});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->day_labels.size(), 10u);
  EXPECT_EQ(v->day_labels.front(), "2019-03-25");
  EXPECT_EQ(v->day_labels.back(), "2019-04-03");
  const MustanItem* xm = Find(v->watch, Port("9530/tcp"));
  ASSERT_NE(xm, nullptr) << "9530/tcp not in watch";
  EXPECT_EQ(xm->trend, Trend::kUp);
  EXPECT_TRUE(xm->is_new);
  // Nothing before the planted start, packets from it on.
  for (int d = 0; d < 7; ++d) EXPECT_EQ(xm->packets[d], 0u) << v->day_labels[d];
  for (int d = 7; d < 10; ++d) EXPECT_GT(xm->sources[d], 20u) << v->day_labels[d];
  ASSERT_NE(Find(v->risk, Port("9530/tcp")), nullptr);
  // 8081 had nothing in the 10 days before 03-25: new, hence risk.
  const MustanItem* m = Find(v->risk, Port("8081/tcp"));
  ASSERT_NE(m, nullptr) << "8081/tcp not in risk";
  EXPECT_TRUE(m->is_new);
  // Before the planted appearance the same port is no item of either list.
  auto before = BuildMustan(*store_, *ch, Day("2019-03-31"), {});
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(Find(before->watch, Port("9530/tcp")), nullptr);
  EXPECT_EQ(Find(before->risk, Port("9530/tcp")), nullptr);
}

TEST_F(Mustan, SteadyPortIsFlatAndNotListed) {
  auto ch = PortChannel();
  auto it = MustanItemView(*store_, *ch, Port("22/tcp"), Day("2019-04-03"), {});
  ASSERT_TRUE(it.ok()) << it.status().ToString();
  EXPECT_GT(it->total_packets, 1000u);
  EXPECT_EQ(it->trend, Trend::kFlat) << "z=" << it->z;
  EXPECT_FALSE(it->watch);
  EXPECT_FALSE(it->is_new);
  EXPECT_STREQ(TrendArrow(it->trend), "→");
}

TEST_F(Mustan, TopCountsAreSeriesDailyCounts) {
  auto ch = PortChannel();
  auto v = BuildMustan(*store_, *ch, Day("2019-04-03"), {});
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->top.size(), 5u);
  std::vector<uint64_t> keys;
  for (const auto& i : v->top) keys.push_back(i.key);
  auto s = Series(*store_, Dimension::kPort, keys, DaysPeriod(v->first_day, v->end_day),
                  Granularity::kDay, {});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->points.size(), 10u);
  for (size_t i = 0; i < keys.size(); ++i) {
    size_t col = std::find(s->keys.begin(), s->keys.end(), keys[i]) - s->keys.begin();
    ASSERT_LT(col, s->keys.size());
    for (size_t d = 0; d < 10; ++d) {
      EXPECT_EQ(v->top[i].packets[d], s->points[d].packets[col]);
      EXPECT_EQ(v->top[i].sources[d], s->points[d].sources[col]);
    }
    if (i > 0) {
      EXPECT_GE(v->top[i - 1].total_packets, v->top[i].total_packets);
    }
  }
  // The arrow follows the stated rule from the counts themselves.
  for (const auto& i : v->top) {
    double f = 0, l = 0;
    for (int d = 0; d < 5; ++d) f += i.packets[d];
    for (int d = 5; d < 10; ++d) l += i.packets[d];
    double z = (l - f) / std::sqrt(l + f);
    Trend want = z >= 3 && l >= 1.5 * f    ? Trend::kUp
                 : z <= -3 && f >= 1.5 * l ? Trend::kDown
                                           : Trend::kFlat;
    EXPECT_EQ(i.trend, want) << i.name;
  }
}

TEST(MustanChannel, PortKeysRoundTripAndBadTextIsAnError) {
  auto ch = PortChannel();
  auto k = ch->ParseKey("445/tcp");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(ch->KeyName(*k), "445/TCP");
  EXPECT_FALSE(ch->ParseKey("<script>").ok());
}

}  // namespace
}  // namespace teiten
