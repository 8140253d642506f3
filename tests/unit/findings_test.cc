// Notable phenomena (SPEC A6) against the planted events of the shipped scenarios (issue 4), and
// the statistics they rest on against hand-computed values.
//
// Built twice (findings_tests.cmake): findings_test has the statistics and the small scenario;
// findings_scenario_test (TEITEN_FINDINGS_QUARTERS, label slow: building a TSUBAME quarter's
// fixture store takes a minute or more) has the TSUBAME quarters and the TALOT2 month.
#include "analysis/findings.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/time_zone.h"
#include "scenario_fixture.h"
#include "test_support.h"

namespace teiten {
namespace {

using namespace findings_stats;

#ifndef TEITEN_FINDINGS_QUARTERS
TEST(FindingsStats, MedianAndMad) {
  EXPECT_DOUBLE_EQ(Median({5, 1, 3}), 3);
  EXPECT_DOUBLE_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(Median({}), 0);
  // Median 4; |x − 4| = 3 1 1 0 96 → median 1.
  EXPECT_DOUBLE_EQ(Mad({1, 5, 3, 4, 100}), 1);
}

TEST(FindingsStats, MannKendall) {
  // 1 2 3 4 5: S = 10, Var = 5·4·15/18 = 50/3, Z = 9/√(50/3) = 2.2045.
  EXPECT_NEAR(MannKendallZ({1, 2, 3, 4, 5}), 9 / std::sqrt(50.0 / 3), 1e-9);
  EXPECT_NEAR(MannKendallZ({5, 4, 3, 2, 1}), -9 / std::sqrt(50.0 / 3), 1e-9);
  // 1 1 2: S = 2 (pairs (1,2),(1,2); the tie counts 0); Var = (3·2·11 − 2·1·9)/18 = 48/18.
  EXPECT_NEAR(MannKendallZ({1, 1, 2}), 1 / std::sqrt(48.0 / 18), 1e-9);
  EXPECT_DOUBLE_EQ(MannKendallZ({2, 2, 2, 2}), 0);
}

TEST(FindingsStats, TheilSen) {
  // Slopes of (0,0) (1,1) (2,2) (3,30): 1 1 10 1 14.5 28 → sorted 1 1 1 10 14.5 28 → 5.5.
  EXPECT_DOUBLE_EQ(TheilSenSlope({0, 1, 2, 30}), 5.5);
  EXPECT_DOUBLE_EQ(TheilSenSlope({7, 7, 7}), 0);
}

TEST(FindingsStats, HingeFindsTheStartOfARamp) {
  std::vector<double> v(40, 10);
  for (size_t t = 25; t < v.size(); ++t) v[t] = 10 + 3.0 * static_cast<double>(t - 25);
  EXPECT_EQ(HingeChangePoint(v, 7), 25u);
  // A dip two days before the ramp does not move its start (checked with an independent
  // least-squares fit over every t0: the best SSE, 34.8, is at 25).
  v[23] = 4;
  EXPECT_EQ(HingeChangePoint(v, 7), 25u);
  // Flat then a gentle ramp of 1 a day from index 30 (10 days), min_after 7.
  std::vector<double> g(40, 100);
  for (size_t t = 30; t < g.size(); ++t) g[t] = 100 + static_cast<double>(t - 30);
  EXPECT_EQ(HingeChangePoint(g, 7), 30u);
  // t0 must leave min_after days: a ramp in the last 5 days is out of reach.
  std::vector<double> late(20, 1);
  for (size_t t = 15; t < late.size(); ++t) late[t] = 1 + 10.0 * static_cast<double>(t - 15);
  EXPECT_LE(HingeChangePoint(late, 7), 13u);
  EXPECT_EQ(HingeChangePoint({1, 2, 3}, 7), 0u);
}

TEST(FindingsStats, StepChangePointFindsAQuarterBoundary) {
  // 14 days alternating 100/104 (median 102, residuals ±2) then 14 alternating 110/114 (median
  // 112): |112 − 102| / (σ̂·√(2/14)), σ̂ = max(1.4826·2, √112 = 10.6) → 10 / 4.0 = 2.5: under
  // kStepZ, Poisson noise at this level hides an 8 % step.
  std::vector<double> v;
  for (int i = 0; i < 28; ++i) v.push_back((i < 14 ? 100 : 110) + (i % 2 ? 4 : 0));
  EXPECT_EQ(StepChangePoint(v, 7, 7), 0u);
  // The same 8 % step at 100× the counts: σ̂ = 1.4826·200 = 296.5 (now above √11200 ≈ 106),
  // z = 1000 / (296.5·0.378) = 8.9 → found at index 14 (the first day of the new level).
  for (double& x : v) x *= 100;
  EXPECT_EQ(StepChangePoint(v, 7, 7), 14u);
  // Four days after the step are enough when allowed (the 100× series cut to 18 values: z =
  // 1000 / (296.5·√(1/14 + 1/4)) = 6.0).
  std::vector<double> short_after(v.begin(), v.begin() + 18);
  // (13 or 14: the value at 13, 10400, is as close to the new level's median as the old one's.)
  size_t k = StepChangePoint(short_after, 7, 4);
  EXPECT_TRUE(k == 13 || k == 14) << k;
  EXPECT_EQ(StepChangePoint(short_after, 7, 7), 0u);
  // A flat series and one too short for 7 days before and 4 after.
  EXPECT_EQ(StepChangePoint(std::vector<double>(28, 500), 7, 4), 0u);
  EXPECT_EQ(StepChangePoint({1, 1, 1, 9, 9, 9}, 7, 4), 0u);
}

#endif  // TEITEN_FINDINGS_QUARTERS

// ---- Scenarios ----------------------------------------------------------------------------

struct Planted {
  std::string name, kind;
  int32_t start_day = 0, end_day = 0;  // UTC days (the fixture's store is UTC)
  std::vector<uint16_t> ports;
  std::vector<std::string> regions;
  std::vector<std::string> sources;
};

std::vector<Planted> ReadTruth(const std::string& path) {
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in);
  std::vector<Planted> out;
  for (const auto& e : j["events"]) {
    Planted p;
    p.name = e["name"];
    p.kind = e["kind"];
    int64_t day_us = 86400LL * 1000000;
    int64_t s = e["start_us"], en = e["end_us"];
    p.start_day = static_cast<int32_t>(s / day_us);
    p.end_day = static_cast<int32_t>((en + day_us - 1) / day_us);
    if (e.contains("ports")) {
      for (const auto& pw : e["ports"]) p.ports.push_back(pw[0].get<uint16_t>());
    }
    for (const auto& r : e["regions"]) p.regions.push_back(r);
    if (p.kind == "dominate" && e.contains("sources")) {
      for (const auto& sv : e["sources"]) p.sources.push_back(sv[0]);
    }
    out.push_back(p);
  }
  return out;
}

// What counts as finding an event, and how far its start may be off (days). Abrupt events are
// dated to the day; gradual ones start faint (a growth at 5 % of its sources), so their change
// point may come a few days late.
struct Rule {
  std::vector<FindingKind> kinds;
  int early, late;
};
Rule RuleFor(const std::string& kind) {
  using K = FindingKind;
  if (kind == "surge") return {{K::kSpike, K::kRise, K::kTopEntry}, 1, 1};
  if (kind == "spike") return {{K::kSpike}, 1, 1};
  if (kind == "growth") return {{K::kRise, K::kSpike, K::kTopEntry, K::kPortsTogether}, 2, 6};
  if (kind == "dominate") return {{K::kDominantSource}, 1, 1};
  if (kind == "region-rise") return {{K::kRegionEntry}, 2, 6};
  if (kind == "port-move") return {{K::kPortsTogether}, 2, 6};
  if (kind == "silence") return {{K::kRegionSilent}, 1, 1};
  return {{}, 0, 0};
}

bool PortIn(const Finding& f, const std::vector<uint16_t>& ports) {
  auto in = [&](PortKey k) {
    return std::find(ports.begin(), ports.end(), PortKeyPort(k)) != ports.end();
  };
  if (f.has_port && in(f.port)) return true;
  for (PortKey p : f.related_ports) {
    if (in(p)) return true;
  }
  return false;
}

bool RegionIs(const Finding& f, const std::vector<std::string>& regions) {
  if (!f.country) return false;
  std::string cc = CountryCodeString(f.country);
  return std::find(regions.begin(), regions.end(), cc) != regions.end();
}

// Does `f` have a fact that finds `p`?
bool Finds(const Finding& f, const Planted& p, const Period& period) {
  Rule r = RuleFor(p.kind);
  bool region_kind = p.kind == "region-rise" || p.kind == "silence";
  if (region_kind ? !RegionIs(f, p.regions) : !PortIn(f, p.ports)) return false;
  for (const FindingFact& ft : f.facts) {
    if (std::find(r.kinds.begin(), r.kinds.end(), ft.kind) == r.kinds.end()) continue;
    if (ft.first_day < p.start_day - r.early || ft.first_day > p.start_day + r.late) continue;
    // An abrupt event's spike, dominance or silence also ends when it did (±1 day), or is still
    // going when the event lasts to the period's end.
    bool abrupt =
        p.kind == "surge" || p.kind == "spike" || p.kind == "dominate" || p.kind == "silence";
    bool bounded = ft.kind == FindingKind::kSpike || ft.kind == FindingKind::kDominantSource ||
                   ft.kind == FindingKind::kRegionSilent;
    if (abrupt && bounded) {
      if (p.end_day < period.end_day) {
        if (ft.last_day == kNoDay || std::abs(ft.last_day - (p.end_day - 1)) > 1) continue;
      } else if (ft.last_day != kNoDay && ft.last_day < period.end_day - 2) {
        continue;
      }
    }
    if (p.kind == "dominate") {
      if (f.top_sources.empty()) continue;
      std::string a = f.top_sources[0].addr.ToString();
      if (!p.sources.empty() && a != p.sources[0]) continue;
    }
    if (p.kind == "port-move") {
      // At least two of the new ports.
      int n = 0;
      auto in = [&](PortKey k) {
        return std::find(p.ports.begin(), p.ports.end(), PortKeyPort(k)) != p.ports.end();
      };
      n += f.has_port && in(f.port);
      for (PortKey k : f.related_ports) n += in(k);
      if (n < 2) continue;
    }
    return true;
  }
  return false;
}

// A finding is explained by a planted event when it finds it, or when it is about the event's
// ports or regions and one of its facts begins within the event's days (with the rule's
// tolerance): a port finding may hold a fact that is no planted event (53413/UDP entering the
// top 10 from the quarter's first day, as the scenario's previous-period phase makes it) beside
// the facts that find one; it is one finding, not a false one.
bool Explained(const Finding& f, const Planted& p, const Period& period) {
  if (Finds(f, p, period)) return true;
  if (!PortIn(f, p.ports) && !RegionIs(f, p.regions)) return false;
  Rule r = RuleFor(p.kind);
  for (const FindingFact& ft : f.facts) {
    if (ft.first_day >= p.start_day - r.early && ft.first_day < p.end_day + 1) return true;
  }
  return false;
}

std::string DayStr(int32_t d) {
  return d == kNoDay ? "…" : TimeZone::DayString(d);
}

void Print(const std::string& scenario, const std::vector<Finding>& fs) {
  std::printf("%s: %zu findings\n", scenario.c_str(), fs.size());
  for (const Finding& f : fs) {
    std::string subj = f.has_port ? PortKeyToString(f.port) : CountryCodeString(f.country);
    for (PortKey p : f.related_ports) subj += "+" + PortKeyToString(p);
    std::printf("  #%d %-16s %-28s %s..%s score %.4f pk %.0f→%.0f src %.0f→%.0f\n", f.rank,
                FindingKindName(f.kind), subj.c_str(), DayStr(f.first_day).c_str(),
                DayStr(f.last_day).c_str(), f.score, f.packets_before, f.packets_after,
                f.sources_before, f.sources_after);
    for (const FindingFact& ft : f.facts) {
      std::printf("      %-16s %s..%s ratio %.2f z %.1f slope %.2f rank %d prev %d\n",
                  FindingKindName(ft.kind), DayStr(ft.first_day).c_str(),
                  DayStr(ft.last_day).c_str(), ft.ratio, ft.trend_z, ft.slope, ft.rank,
                  ft.prev_rank);
    }
    for (const auto& s : f.top_sources) {
      std::printf("      source %s %.0f%% other ports %zu\n", s.addr.ToString().c_str(),
                  100 * s.share, s.other_ports.size());
    }
  }
}

struct Score {
  size_t events = 0, found = 0, findings = 0, false_findings = 0;
};

Score Evaluate(const std::string& scenario, const Period& period) {
  Score sc;
  // The fixture library finds the geo database under $TEITEN_SOURCE_DIR (it is not compiled with
  // the source directory this test is).
  setenv("TEITEN_SOURCE_DIR", testing::SourceDir().c_str(), 0);
  auto s = testing::ScenarioStoreFor(scenario);
  if (!s.ok() && s.status().code() == StatusCode::kNotFound) {
    ADD_FAILURE() << "no fixture: " << s.status().ToString();
    return sc;
  }
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return sc;
  auto store = Store::Open(s->store_dir, {});
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return sc;
  auto fs = FindNotable(**store, period, SensorSelection{});
  EXPECT_TRUE(fs.ok()) << fs.status().ToString();
  if (!fs.ok()) return sc;
  Print(scenario, *fs);
  std::vector<Planted> truth = ReadTruth(s->truth_path);
  for (const Planted& p : truth) {
    if (p.start_day >= period.end_day || p.end_day <= period.first_day) continue;
    sc.events++;
    bool found = false;
    for (const Finding& f : *fs) found |= Finds(f, p, period);
    if (found) {
      sc.found++;
    } else {
      ADD_FAILURE() << scenario << ": planted event '" << p.name << "' (" << p.kind << " from "
                    << TimeZone::DayString(p.start_day) << ") not found";
    }
  }
  for (const Finding& f : *fs) {
    sc.findings++;
    bool ok = false;
    for (const Planted& p : truth) ok |= Explained(f, p, period);
    if (!ok) sc.false_findings++;
  }
  std::printf("%s: recall %zu/%zu, precision %zu/%zu\n", scenario.c_str(), sc.found, sc.events,
              sc.findings - sc.false_findings, sc.findings);
  return sc;
}

#ifndef TEITEN_FINDINGS_QUARTERS
TEST(FindingsScenario, Small) {
  Period p = DaysPeriod(TimeZone::DaysFromCivil(2018, 8, 10), TimeZone::DaysFromCivil(2018, 8, 14));
  Score s = Evaluate("small", p);
  EXPECT_LE(s.false_findings, 1u);
}

// What the report reads from a finding, against the small scenario's ground truth.
TEST(FindingsScenario, SmallEvidence) {
  setenv("TEITEN_SOURCE_DIR", testing::SourceDir().c_str(), 0);
  auto s = testing::ScenarioStoreFor("small");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto store = Store::Open(s->store_dir, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Period period =
      DaysPeriod(TimeZone::DaysFromCivil(2018, 8, 10), TimeZone::DaysFromCivil(2018, 8, 14));
  auto fs = FindNotable(**store, period, SensorSelection{});
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  std::ifstream in(s->truth_path);
  nlohmann::json truth = nlohmann::json::parse(in);
  auto planted = [&](const std::string& name) {
    for (const auto& e : truth["events"]) {
      if (e["name"] == name) return e;
    }
    ADD_FAILURE() << "no event " << name;
    return nlohmann::json{};
  };
  auto port_finding = [&](uint16_t port, uint8_t proto) -> const Finding* {
    for (const Finding& f : *fs) {
      if (f.has_port && f.port == MakePortKey(proto, port)) return &f;
    }
    return nullptr;
  };
  constexpr uint8_t kTcp = 6, kUdp = 17;

  // What the planted tools' packets carry (E7) and their SYNs' fingerprints (E6): the Netis
  // router backdoor's probe holds its well-known password "netcore" (every packet of the surge
  // carries it), and the "windows" tool's SYNs are Windows' (p0f's signatures, when installed).
  {
    const Finding* netis_f = port_finding(53413, kUdp);
    ASSERT_NE(netis_f, nullptr);
    ASSERT_FALSE(netis_f->payloads.empty());
    EXPECT_NE(netis_f->payloads[0].find("netcore"), std::string::npos) << netis_f->payloads[0];
    EXPECT_TRUE(netis_f->os.empty());  // UDP: no SYN to guess from
    const Finding* patch_f = port_finding(5168, kTcp);
    ASSERT_NE(patch_f, nullptr);
    EXPECT_TRUE(patch_f->payloads.empty());  // SYN probes carry none
    if (std::filesystem::exists("/etc/p0f/p0f.fp")) {
      ASSERT_FALSE(patch_f->os.empty());
      EXPECT_EQ(patch_f->os[0].rfind("Windows", 0), 0u) << patch_f->os[0];
    }
  }

  // Ranks in order of score; the figure spans the period.
  for (size_t i = 0; i < fs->size(); ++i) {
    const Finding& f = (*fs)[i];
    EXPECT_EQ(f.rank, static_cast<int>(i + 1));
    if (i > 0) {
      EXPECT_LE(f.score, (*fs)[i - 1].score);
    }
    EXPECT_EQ(f.figure.first_day, period.first_day);
    EXPECT_EQ(f.figure.end_day, period.end_day);
    EXPECT_EQ(f.figure.long_end_day, period.end_day);
    if (!f.has_port) {
      EXPECT_TRUE(f.payloads.empty() && f.os.empty());
    }
    for (const std::string& tag : f.tags) {  // the tools of at least 20 % of the sources
      EXPECT_TRUE(std::any_of(f.tools.begin(), f.tools.end(), [&](const FindingTool& t) {
        return t.tag == tag && t.source_share >= 0.2;
      })) << tag;
    }
    ASSERT_FALSE(f.facts.empty());
    EXPECT_EQ(f.facts.front().kind, f.kind);
    if (f.has_port) {
      ASSERT_FALSE(f.figure.ports.empty());
      EXPECT_EQ(f.figure.ports[0], f.port);
      EXPECT_EQ(f.figure.series, f.related_ports.empty() ? FigureHint::Series::kPortByCountry
                                                         : FigureHint::Series::kPorts);
    } else {
      EXPECT_EQ(f.figure.series, FigureHint::Series::kCountry);
      ASSERT_EQ(f.figure.countries.size(), 1u);
      EXPECT_EQ(f.figure.countries[0], f.country);
    }
  }

  // The 5168/TCP patch spike: six hours of 8/12, the only traffic to that port, so the day's
  // packets and sources are the planted ones exactly.
  const Finding* p5168 = port_finding(5168, kTcp);
  ASSERT_NE(p5168, nullptr);
  const FindingFact* sp = p5168->Fact(FindingKind::kSpike);
  ASSERT_NE(sp, nullptr);
  EXPECT_EQ(sp->first_day, TimeZone::DaysFromCivil(2018, 8, 12));
  EXPECT_EQ(sp->last_day, TimeZone::DaysFromCivil(2018, 8, 12));
  nlohmann::json patch = planted("patch-5168");
  EXPECT_EQ(sp->peak_packets, patch["packets"].get<uint64_t>());
  EXPECT_EQ(sp->peak_sources, patch["sources"].size());
  EXPECT_DOUBLE_EQ(sp->packets_after, patch["packets"].get<double>());

  // The netis surge: two days from China over a small baseline.
  const Finding* netis = port_finding(53413, kUdp);
  ASSERT_NE(netis, nullptr);
  const FindingFact* ns = netis->Fact(FindingKind::kSpike);
  ASSERT_NE(ns, nullptr);
  double surge = planted("netis-surge")["packets"].get<double>();
  EXPECT_GE(2 * ns->packets_after, surge);
  EXPECT_LE(2 * ns->packets_after, surge + 2 * 3 * std::max(ns->packets_before, 1.0));
  ASSERT_FALSE(netis->top_regions.empty());
  EXPECT_EQ(CountryCodeString(netis->top_regions[0].country), "CN");
  EXPECT_GE(netis->top_regions[0].share, 0.8);

  // The research scanner: the planted address, all of 9600/TCP's packets, its history.
  const Finding* p9600 = port_finding(9600, kTcp);
  ASSERT_NE(p9600, nullptr);
  ASSERT_FALSE(p9600->top_sources.empty());
  const SourceEvidence& src = p9600->top_sources[0];
  nlohmann::json research = planted("research-9600");
  EXPECT_EQ(src.addr.ToString(), research["sources"][0][0].get<std::string>());
  EXPECT_EQ(src.packets, research["packets"].get<uint64_t>());
  EXPECT_EQ(src.error, 0u);
  EXPECT_DOUBLE_EQ(src.share, 1.0);
  EXPECT_EQ(CountryCodeString(src.country), "US");
  EXPECT_EQ(src.days_seen, 4);
  EXPECT_EQ(src.total_packets, src.packets);
  EXPECT_TRUE(src.other_ports.empty());  // the planted scanner probed nothing else
  // Its tool, as the scenario planted it (ground truth "tool": "zmap"): named in the evidence.
  EXPECT_EQ(src.tags, std::vector<std::string>{research["tool"].get<std::string>()});

  // Who sent to 8080/TCP in its rise's first days: mostly the planted Mirai port-move (ground
  // truth "tool": "mirai"; the port has other senders too); its sources counted as the rollups
  // count the port's distinct sources.
  nlohmann::json move = planted("mirai-move");
  ASSERT_EQ(move["tool"], "mirai");
  const Finding* p8080 = port_finding(8080, kTcp);
  ASSERT_NE(p8080, nullptr);
  ASSERT_FALSE(p8080->tools.empty());
  EXPECT_EQ(p8080->tools[0].tag, "mirai");
  EXPECT_GE(p8080->tools[0].source_share, 0.5);
  EXPECT_EQ(p8080->tags, std::vector<std::string>{"mirai"});
  ASSERT_GT(p8080->tool_sources, 0u);
  auto days = DaysPeriod(p8080->tool_first_day, p8080->tool_last_day + 1);
  auto top = Top(**store, Dimension::kPort, days, {}, 1000);
  ASSERT_TRUE(top.ok());
  uint64_t port_sources = 0;
  for (const RankRow& r : top->rows) {
    if (r.key == MakePortKey(kTcp, 8080)) port_sources = r.sources;
  }
  EXPECT_EQ(p8080->tool_sources, port_sources);
  EXPECT_LE(p8080->tool_last_day - p8080->tool_first_day + 1, kFindingToolDays);

  // Brazil's outage: from 8/13 to the period's end, sources collapsing.
  const Finding* br = nullptr;
  for (const Finding& f : *fs) {
    if (!f.has_port && CountryCodeString(f.country) == "BR") br = &f;
  }
  ASSERT_NE(br, nullptr);
  const FindingFact* quiet = br->Fact(FindingKind::kRegionSilent);
  ASSERT_NE(quiet, nullptr);
  EXPECT_EQ(quiet->first_day, TimeZone::DaysFromCivil(2018, 8, 13));
  EXPECT_EQ(quiet->last_day, kNoDay);
  EXPECT_LE(quiet->sources_after, 0.2 * quiet->sources_before);
}

#else

TEST(FindingsScenario, Tsubame2018Q3) {
  Score s = Evaluate("tsubame-2018q3", QuarterPeriod(2018, 3));
  EXPECT_LE(s.false_findings, 1u);
}

TEST(FindingsScenario, Tsubame2015Q4) {
  Score s = Evaluate("tsubame-2015q4", QuarterPeriod(2015, 4));
  EXPECT_LE(s.false_findings, 1u);
}

TEST(FindingsScenario, Talot2007Aug) {
  Score s = Evaluate("talot2-2007-08", MonthPeriod(2007, 8));
  EXPECT_LE(s.false_findings, 1u);
}

#endif  // TEITEN_FINDINGS_QUARTERS

}  // namespace
}  // namespace teiten
