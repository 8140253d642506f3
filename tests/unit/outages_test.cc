// Outages (src/analysis/outages.h, `teiten outages`, SPEC A11): the detector on hand-made series,
// and on simulated quarters (tests/unit/scenarios/outages.toml: whole regions silent;
// outages_partial.toml: part of a region, or an AS) every planted outage of the simulator's ground
// truth found with its dates within a day, at most one false outage per quarter, and the
// findings' "region went silent" the same outages.
#include "analysis/outages.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
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

// A simulated quarter in a store, with the simulator's ground truth; one per scenario file.
template <typename Scenario>
class SimulatedQuarter : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto s = testing::ScenarioStoreFor(testing::SourceDir() + Scenario::kPath);
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
  inline static testing::ScenarioStore* scenario_ = nullptr;
  inline static std::string why_;
  std::unique_ptr<Store> store_;
  json truth_;
};

// A planted outage, as the simulator's ground truth lists it ("outages").
struct Planted {
  std::string name;
  Dimension dim = Dimension::kCountry;
  uint64_t key = 0;     // CountryCode or ASN
  int32_t first, last;  // days, inclusive
  double share = 1;     // of the key's sources silenced
};
std::vector<Planted> PlantedOutages(const json& truth) {
  std::vector<Planted> out;
  const auto day = [](int64_t us) {
    return static_cast<int32_t>(us / 86400000000 - (us % 86400000000 < 0));
  };
  for (const json& o : truth.at("outages")) {
    Planted p;
    p.name = o["event"].get<std::string>() + "/" + o["key"].get<std::string>();
    const std::string key = o["key"];
    if (o["dimension"] == "asn") {
      p.dim = Dimension::kAsn;
      p.key = std::stoull(key);
    } else {
      p.key = MakeCountryCode(key.c_str());
    }
    p.first = day(o["start_us"].get<int64_t>());
    p.last = day(o["end_us"].get<int64_t>() - 1);
    p.share = o["share"];
    out.push_back(p);
  }
  return out;
}

std::string KeyString(Dimension dim, uint64_t key) {
  return dim == Dimension::kAsn ? "AS" + std::to_string(key)
                                : CountryCodeString(static_cast<CountryCode>(key));
}

// What the rule should make of a planted outage of `share`: it reports a key whose sources fall
// to `fraction` (20 %) of its baseline or below. Silencing 90 % or more leaves half that at most:
// it must be found. Silencing half leaves 2.5 times that: it must not (the rule's designed blind
// spot: a key that loses half its sources is not called an outage). Scenarios plant nothing in
// between, where noise decides.
enum class Expect { kFound, kMissed };
Expect Expected(const Planted& p, const OutageRules& rules) {
  const double left = 1 - p.share;
  if (left <= rules.fraction / 2 + 1e-9) return Expect::kFound;
  EXPECT_GE(left, 2 * rules.fraction) << p.name << ": planted where noise decides";
  return Expect::kMissed;
}

// Checks the outages found by `dim` in 2019Q3 against the planted ones: every one that should be
// found is, with its first and last days within a day; none that should be missed is; at most
// one false outage. `explained`: outages of other keys that a planted one implies (an AS of a
// silenced country), not false. Returns a line of measurements.
std::string CheckQuarter(const Store& store, const std::vector<Planted>& all, Dimension dim,
                         const std::vector<Planted>& explained) {
  const Period q3 = *ParsePeriod("2019Q3");
  auto res = FindOutages(store, dim, q3, SensorSelection{});
  EXPECT_TRUE(res.ok()) << res.status().ToString();
  if (!res.ok()) return "";
  std::set<size_t> matched;
  size_t spurious = 0, date_error = 0, should_find = 0;
  for (const Outage& o : res->outages) {
    bool hit = false;
    for (size_t i = 0; i < all.size(); ++i) {
      const Planted& p = all[i];
      if (p.dim != dim || o.key != p.key) continue;
      const bool overlaps = o.first_day <= p.last + 1 && o.last_day >= p.first - 1;
      if (Expected(p, res->rules) == Expect::kMissed) {
        EXPECT_FALSE(overlaps) << p.name << " (share " << p.share << ") reported";
        continue;
      }
      if (std::abs(o.first_day - p.first) > 1 || std::abs(o.last_day - p.last) > 1) continue;
      hit = true;
      matched.insert(i);
      date_error = std::max<size_t>(
          date_error, std::max(std::abs(o.first_day - p.first), std::abs(o.last_day - p.last)));
      // What is left: the sources not silenced (sending a little more each, as the packets they
      // would have sent go to others) and spoofed floods' random sources, a few of which
      // geolocate there (as on a real telescope). A whole region goes nearly silent.
      const bool whole_region = p.dim == Dimension::kCountry && p.share >= 1;
      EXPECT_GE(o.depth, whole_region ? 0.9 : 1 - res->rules.fraction) << p.name;
      EXPECT_GE(o.baseline, 10) << p.name;
      EXPECT_EQ(o.ongoing, p.last == q3.end_day - 1) << p.name;
    }
    for (const Planted& p : explained) {
      hit |= Expected(p, res->rules) == Expect::kFound && o.first_day >= p.first - 1 &&
             o.last_day <= p.last + 1;
    }
    if (!hit) {
      ++spurious;
      ADD_FAILURE() << "not planted: " << KeyString(dim, o.key) << " "
                    << TimeZone::DayString(o.first_day) << ".." << TimeZone::DayString(o.last_day)
                    << " depth " << o.depth;
    }
  }
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].dim != dim || Expected(all[i], res->rules) != Expect::kFound) continue;
    ++should_find;
    EXPECT_TRUE(matched.count(i)) << all[i].name << " not found";
  }
  EXPECT_LE(spurious, 1u);
  EXPECT_GT(res->keys_checked, 15u);
  return fmt::format("by {}: {}/{} planted found, dates off by at most {} day(s), {} false",
                     dim == Dimension::kAsn ? "asn" : "country", matched.size(), should_find,
                     date_error, spurious);
}

std::vector<Planted> OfDimension(const std::vector<Planted>& all, Dimension dim) {
  std::vector<Planted> out;
  for (const Planted& p : all) {
    if (p.dim == dim) out.push_back(p);
  }
  return out;
}

struct TotalSilences {
  static constexpr const char* kPath = "/tests/unit/scenarios/outages.toml";
};
using OutageScenario = SimulatedQuarter<TotalSilences>;

TEST_F(OutageScenario, EveryPlantedSilenceFoundWithinADayAndAtMostOneFalse) {
  const std::vector<Planted> planted = PlantedOutages(truth_);
  ASSERT_EQ(planted.size(), 5u);
  std::cout << CheckQuarter(*store_, planted, Dimension::kCountry, {}) << "\n";
  // By AS: every AS of a silenced region with a baseline to judge goes out with it, on its days.
  std::cout << CheckQuarter(*store_, planted, Dimension::kAsn,
                            OfDimension(planted, Dimension::kCountry))
            << "\n";
  auto by_as = FindOutages(*store_, Dimension::kAsn, *ParsePeriod("2019Q3"), SensorSelection{});
  ASSERT_TRUE(by_as.ok());
  EXPECT_FALSE(by_as->outages.empty());
}

// Partial and AS outages (tests/unit/scenarios/outages_partial.toml): regions losing 90 % and
// 95 % of their sources found, one losing half not (the rule's designed blind spot), and ASes of
// large countries gone dark found by AS while their countries are not reported.
struct PartialSilences {
  static constexpr const char* kPath = "/tests/unit/scenarios/outages_partial.toml";
};
using PartialOutageScenario = SimulatedQuarter<PartialSilences>;

TEST_F(PartialOutageScenario, FoundByTheirDimensionWithinADayAndAtMostOneFalse) {
  const std::vector<Planted> planted = PlantedOutages(truth_);
  const std::vector<Planted> by_country = OfDimension(planted, Dimension::kCountry);
  const std::vector<Planted> by_as = OfDimension(planted, Dimension::kAsn);
  ASSERT_GE(by_country.size(), 4u);
  ASSERT_GE(by_as.size(), 2u);
  size_t partial = 0, blind = 0;
  for (const Planted& p : by_country) {
    partial += p.share < 1 && Expected(p, OutageRules{}) == Expect::kFound;
    blind += Expected(p, OutageRules{}) == Expect::kMissed;
  }
  EXPECT_GE(partial, 3u);
  EXPECT_GE(blind, 1u);
  // An AS going dark is no country outage (each is a small part of its country): a country
  // outage on an AS outage's days would be counted false here.
  std::cout << CheckQuarter(*store_, planted, Dimension::kCountry, {}) << "\n";
  std::cout << CheckQuarter(*store_, planted, Dimension::kAsn, by_country) << "\n";
  auto countries =
      FindOutages(*store_, Dimension::kCountry, *ParsePeriod("2019Q3"), SensorSelection{});
  ASSERT_TRUE(countries.ok());
  for (const Outage& o : countries->outages) {
    for (const Planted& p : by_as) {
      bool planted_there = false;
      for (const Planted& c : by_country) {
        planted_there |= c.key == o.key && o.first_day <= c.last + 1 && o.last_day >= c.first - 1;
      }
      EXPECT_TRUE(planted_there || o.last_day < p.first || o.first_day > p.last)
          << KeyString(Dimension::kCountry, o.key) << " reported on " << p.name << "'s days";
    }
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
