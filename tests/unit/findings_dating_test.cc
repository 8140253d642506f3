// Issue 14: the start and end dates of findings on a scenario the detector was not tuned on
// (tests/unit/scenarios/dating.toml, dating-near.toml): a small step up at the boundary between its
// phase and the period, noise days just above the baseline before a gradual rise, ports moving
// together where one had no packets before, and a port appearing from nothing, for all sensors and
// for each group. Every planted event's dates are checked against ground_truth.json and printed as
// the table in docs/FINDINGS.md.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/findings.h"
#include "analysis/query.h"
#include "common/time_zone.h"
#include "scenario_fixture.h"
#include "test_support.h"

namespace teiten {
namespace {

constexpr int64_t kDayUs = 86400LL * 1000000;

struct Planted {
  std::string name, kind;
  int32_t start = 0, end = 0;  // UTC days, end exclusive
  std::vector<uint16_t> ports;
};

class Dating : public ::testing::Test {
 protected:
  // Loads a scenario of tests/unit/scenarios (its store built once per build tree).
  static void Load(const std::string& name) {
    TearDownTestSuite();
    setenv("TEITEN_SOURCE_DIR", testing::SourceDir().c_str(), 0);
    auto s =
        testing::ScenarioStoreFor(testing::SourceDir() + "/tests/unit/scenarios/" + name + ".toml");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    fixture_ = new testing::ScenarioStore(*s);
    auto st = Store::Open(s->store_dir, {});
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = st->release();
    truth_->clear();
    std::ifstream in(s->truth_path);
    nlohmann::json j = nlohmann::json::parse(in);
    for (const auto& e : j["events"]) {
      Planted p;
      p.name = e["name"];
      p.kind = e["kind"];
      p.start = static_cast<int32_t>(e["start_us"].get<int64_t>() / kDayUs);
      p.end = static_cast<int32_t>((e["end_us"].get<int64_t>() + kDayUs - 1) / kDayUs);
      for (const auto& pw : e["ports"]) p.ports.push_back(pw[0].get<uint16_t>());
      truth_->push_back(p);
    }
  }
  static void TearDownTestSuite() {
    delete store_;
    delete fixture_;
    store_ = nullptr;
    fixture_ = nullptr;
  }

  // Every planted event of the loaded scenario (the noise aside, which is meant to be no
  // finding), found and dated within ±1 day, by all sensors and by each group.
  static void ScoreAll(const std::string& scenario) {
    for (const std::string group : {"", "east", "west"}) {
      auto fs = Find(group.empty() ? std::vector<std::string>{} : std::vector<std::string>{group});
      std::string label = scenario + "/" + (group.empty() ? "all" : group);
      Print(label.c_str(), fs);
      for (const Planted& p : *truth_) {
        if (p.name == "smb-noise") continue;
        // The event's last port: 445, 53413, the move's new port with no traffic before, 9530.
        Score(label.c_str(), p, About(fs, p.ports.back()), 1);
      }
    }
  }

  static const Planted& Event(const std::string& name) {
    for (const Planted& p : *truth_) {
      if (p.name == name) return p;
    }
    ADD_FAILURE() << "no planted event " << name;
    static Planted none;
    return none;
  }

  static Period Q() {
    return DaysPeriod(TimeZone::DaysFromCivil(2019, 3, 1), TimeZone::DaysFromCivil(2019, 4, 12));
  }

  static std::vector<Finding> Find(const std::vector<std::string>& groups) {
    SensorSelection sel;
    if (!groups.empty()) {
      auto r = ResolveSensors(*store_, {}, groups);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) sel = *r;
    }
    auto fs = FindNotable(*store_, Q(), sel);
    EXPECT_TRUE(fs.ok()) << fs.status().ToString();
    return fs.ok() ? *fs : std::vector<Finding>{};
  }

  // The finding about `port` (as its subject or one of its related ports).
  static const Finding* About(const std::vector<Finding>& fs, uint16_t port) {
    for (const Finding& f : fs) {
      if (f.has_port && PortKeyPort(f.port) == port) return &f;
      for (PortKey k : f.related_ports) {
        if (PortKeyPort(k) == port) return &f;
      }
    }
    return nullptr;
  }

  static void Print(const char* label, const std::vector<Finding>& fs) {
    std::printf("%s: %zu findings\n", label, fs.size());
    for (const Finding& f : fs) {
      std::string subj = f.has_port ? PortKeyToString(f.port) : CountryCodeString(f.country);
      for (PortKey p : f.related_ports) subj += "+" + PortKeyToString(p);
      for (const FindingFact& ft : f.facts) {
        std::printf("  #%d %-24s %-16s %s..%s src %.0f→%.0f pk %.0f→%.0f\n", f.rank, subj.c_str(),
                    FindingKindName(ft.kind), TimeZone::DayString(ft.first_day).c_str(),
                    ft.last_day == kNoDay ? "…" : TimeZone::DayString(ft.last_day).c_str(),
                    ft.sources_before, ft.sources_after, ft.packets_before, ft.packets_after);
      }
    }
  }

  // The start error (days, found − planted) of `f`'s headline, and its end error when the event
  // ended inside the period (0 when both go on to the end; 99 when one ends and the other not).
  static void Score(const char* label, const Planted& p, const Finding* f, int max_err) {
    ASSERT_NE(f, nullptr) << label << ": " << p.name << " not found";
    int start_err = f->first_day - p.start;
    int end_err = 0;
    if (p.end < Q().end_day) {
      end_err = f->last_day == kNoDay ? 99 : f->last_day - (p.end - 1);
    } else if (f->last_day != kNoDay) {
      end_err = f->last_day - (Q().end_day - 1);
    }
    std::printf("SCORE %-17s %-12s %-10s planted %s..%s found %s (%s) start %+d end %+d\n", label,
                p.name.c_str(), p.kind.c_str(), TimeZone::DayString(p.start).c_str(),
                TimeZone::DayString(p.end - 1).c_str(), TimeZone::DayString(f->first_day).c_str(),
                FindingKindName(f->kind), start_err, end_err);
    EXPECT_LE(std::abs(start_err), max_err) << label << ": " << p.name;
    EXPECT_LE(std::abs(end_err), max_err) << label << ": " << p.name;
  }

  static testing::ScenarioStore* fixture_;
  static Store* store_;
  static std::vector<Planted>* truth_;
};

testing::ScenarioStore* Dating::fixture_ = nullptr;
Store* Dating::store_ = nullptr;
std::vector<Planted>* Dating::truth_ = new std::vector<Planted>;

TEST_F(Dating, StepNoiseAndPortsFromZero) {
  Load("dating");
  ScoreAll("dating");
}

// The rise 8 days after the boundary step, other ports, another seed.
TEST_F(Dating, CloseToTheBoundary) {
  Load("dating-near");
  ScoreAll("dating-near");
}

}  // namespace
}  // namespace teiten
