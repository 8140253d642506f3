// Outages (src/analysis/outages.h, `teiten outages`, SPEC A11): the detector on hand-made series,
// and on a simulated quarter (tests/unit/scenarios/outages.toml) every planted silence found with
// its dates within a day, at most one false outage, and the findings' "region went silent" the
// same outages.
#include "analysis/outages.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "analysis/findings.h"
#include "common/time_zone.h"
#include "enrich/geo.h"
#include "scenario_fixture.h"
#include "test_support.h"

namespace teiten {
namespace {

using nlohmann::json;

TEST(OutageSpans, HandCheckedSeries) {
  // 20 days near 100 sources, then three days of 5, back to 100, then one day of 30 (a dip, not
  // an outage: above 20 % of the baseline).
  std::vector<double> v = {100, 96,  104, 99,  101, 98,  103, 100, 97, 102, 100, 99,  101, 98,
                           100, 103, 97,  100, 99,  101, 5,   4,   6,  100, 99,  101, 30,  100};
  std::vector<bool> ok(v.size(), true);
  auto spans = FindOutageSpans(v, ok, 14, OutageRules{});
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].first, 20u);
  EXPECT_EQ(spans[0].last, 22u);
  EXPECT_EQ(spans[0].baseline, 100);
  // Outage days stay out of later baselines: a fourth day of 5 after the three is still one.
  v[23] = 5;
  spans = FindOutageSpans(v, ok, 14, OutageRules{});
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].last, 23u);
  // A day without data (the telescope down) inside it neither ends it nor counts as one.
  ok[21] = false;
  v[21] = 0;
  spans = FindOutageSpans(v, ok, 14, OutageRules{});
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].first, 20u);
  EXPECT_EQ(spans[0].last, 23u);
  // A day without data alone is no outage.
  std::vector<double> w(28, 100);
  std::vector<bool> wok(28, true);
  wok[20] = false;
  w[20] = 0;
  EXPECT_TRUE(FindOutageSpans(w, wok, 14, OutageRules{}).empty());
  // A key too small to judge: 8 sources a day going to 0 is below min_baseline (10).
  std::vector<double> small(28, 8);
  small[22] = 0;
  EXPECT_TRUE(FindOutageSpans(small, ok, 14, OutageRules{}).empty());
  OutageRules lower;
  lower.min_baseline = 5;
  lower.sigmas = 2;
  EXPECT_EQ(FindOutageSpans(small, std::vector<bool>(28, true), 14, lower).size(), 1u);
}

class OutageScenario : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto s = testing::ScenarioStoreFor(testing::SourceDir() + "/tests/unit/scenarios/outages.toml");
    if (!s.ok()) {
      why_ = s.status().ToString();
      return;
    }
    scenario_ = new testing::ScenarioStore(*s);
  }
  static void TearDownTestSuite() {
    delete scenario_;
    scenario_ = nullptr;
  }
  void SetUp() override {
    if (!scenario_) GTEST_SKIP() << "scenario store unavailable: " << why_;
    auto st = Store::Open(scenario_->store_dir, {});
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = std::move(*st);
    truth_ = json::parse(testing::Slurp(scenario_->truth_path));
  }
  struct Planted {
    std::string name;
    CountryCode region;
    int32_t first, last;  // days, inclusive
  };
  std::vector<Planted> Silences() {
    std::vector<Planted> out;
    for (const json& e : truth_["events"]) {
      if (e["kind"] != "silence") continue;
      const auto day = [](int64_t us) {
        return static_cast<int32_t>(us / 86400000000 - (us % 86400000000 < 0));
      };
      out.push_back({e["name"], MakeCountryCode(e["regions"][0].get<std::string>().c_str()),
                     day(e["start_us"].get<int64_t>()), day(e["end_us"].get<int64_t>() - 1)});
    }
    return out;
  }
  inline static testing::ScenarioStore* scenario_ = nullptr;
  inline static std::string why_;
  std::unique_ptr<Store> store_;
  json truth_;
};

TEST_F(OutageScenario, EveryPlantedSilenceFoundWithinADayAndAtMostOneFalse) {
  const std::vector<Planted> planted = Silences();
  ASSERT_EQ(planted.size(), 5u);
  const Period q3 = *ParsePeriod("2019Q3");
  auto res = FindOutages(*store_, Dimension::kCountry, q3, SensorSelection{});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  std::set<size_t> matched;
  size_t spurious = 0;
  for (const Outage& o : res->outages) {
    bool hit = false;
    for (size_t i = 0; i < planted.size(); ++i) {
      const Planted& p = planted[i];
      if (o.key != p.region || std::abs(o.first_day - p.first) > 1 ||
          std::abs(o.last_day - p.last) > 1) {
        continue;
      }
      hit = true;
      matched.insert(i);
      // The simulator sends nothing from the region but spoofed floods' random sources, a few of
      // which geolocate there (as on a real telescope): nearly total silence.
      EXPECT_GE(o.depth, 0.9) << p.name;
      EXPECT_GE(o.baseline, 10) << p.name;
      EXPECT_EQ(o.ongoing, p.last == q3.end_day - 1) << p.name;
    }
    if (!hit) {
      ++spurious;
      ADD_FAILURE() << "not planted: " << CountryCodeString(static_cast<CountryCode>(o.key)) << " "
                    << TimeZone::DayString(o.first_day) << ".." << TimeZone::DayString(o.last_day)
                    << " depth " << o.depth;
    }
  }
  for (size_t i = 0; i < planted.size(); ++i) {
    EXPECT_TRUE(matched.count(i)) << planted[i].name << " not found";
  }
  EXPECT_LE(spurious, 1u);
  EXPECT_GT(res->keys_checked, 15u);

  // By AS: every AS of a silenced region with a baseline to judge goes out with it, on its days.
  auto by_as = FindOutages(*store_, Dimension::kAsn, q3, SensorSelection{});
  ASSERT_TRUE(by_as.ok()) << by_as.status().ToString();
  EXPECT_FALSE(by_as->outages.empty());
  for (const Outage& o : by_as->outages) {
    bool within = false;
    for (const Planted& p : planted) {
      within |= o.first_day >= p.first - 1 && o.last_day <= p.last + 1;
    }
    EXPECT_TRUE(within) << "AS" << o.key << " " << TimeZone::DayString(o.first_day);
  }
}

// The findings' "region went silent" facts are the same detector: the same regions and days.
TEST_F(OutageScenario, FindingsSayTheSameRegionsWentSilent) {
  const Period q3 = *ParsePeriod("2019Q3");
  auto fs = FindNotable(*store_, q3, SensorSelection{}, FindingOptions{});
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  std::set<std::pair<CountryCode, int32_t>> silent;
  for (const Finding& f : *fs) {
    for (const FindingFact& ft : f.facts) {
      if (ft.kind == FindingKind::kRegionSilent) silent.insert({f.country, ft.first_day});
    }
  }
  auto res = FindOutages(*store_, Dimension::kCountry, q3, SensorSelection{});
  ASSERT_TRUE(res.ok());
  std::set<std::pair<CountryCode, int32_t>> outages;
  for (const Outage& o : res->outages)
    outages.insert({static_cast<CountryCode>(o.key), o.first_day});
  // The findings may list fewer (they rank and cap what a report shows), never others.
  for (const auto& s : silent) EXPECT_TRUE(outages.count(s)) << CountryCodeString(s.first);
  EXPECT_GE(silent.size(), 4u);
}

// The CLI prints what the library finds.
TEST_F(OutageScenario, CliListsThem) {
  bool ok = false;
  std::string out =
      testing::Run(std::string(TEITEN_BIN) + " outages --period 2019Q3 --format json --config " +
                       testing::ShellQuote(scenario_->config_path),
                   &ok);
  ASSERT_TRUE(ok) << out;
  json j = json::parse(out);
  auto res = FindOutages(*store_, Dimension::kCountry, *ParsePeriod("2019Q3"), SensorSelection{});
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(j.size(), res->outages.size());
  for (size_t i = 0; i < j.size(); ++i) {
    EXPECT_EQ(j[i]["start"], TimeZone::DayString(res->outages[i].first_day));
    EXPECT_EQ(j[i]["region"].get<std::string>().substr(0, 2),
              CountryCodeString(static_cast<CountryCode>(res->outages[i].key)));
  }
  std::string bad =
      testing::Run(std::string(TEITEN_BIN) + " outages --period 2019Q3 --by port --config " +
                       testing::ShellQuote(scenario_->config_path) + " 2>&1",
                   &ok);
  EXPECT_FALSE(ok);
  EXPECT_NE(bad.find("--by 'port'"), std::string::npos) << bad;
}

}  // namespace
}  // namespace teiten
