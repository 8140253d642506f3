// Issue 14: the report's sentences against the store's numbers (query.h), in both languages, for
// all sensors and for groups, read from `teiten report --format json` (which is itself checked:
// version, tables and findings against the queries). Scenarios: tests/unit/scenarios/dating.toml
// (boundary step, noise days, ports from zero; groups east and west of two sensors each) and the
// shipped small one (its 9600/TCP research scanner, for a group's sensor counts).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "analysis/dos.h"
#include "analysis/findings.h"
#include "analysis/query.h"
#include "analysis/tools.h"
#include "common/time_zone.h"
#include "report/compose.h"
#include "report/words.h"
#include "report_test_support.h"

namespace teiten::report {
namespace {

class ReportSentences : public ::testing::Test {
 protected:
  // A report as JSON, from the real CLI.
  static json Report(const testing::ScenarioStore& s, const std::string& period,
                     const std::string& extra, const testing::TempDir& dir) {
    std::string out = dir.path() + "/r.json";
    bool ok = false;
    std::string log =
        testing::Run(Quote(TeitenBin()) + " report --format json --period " + period + " " + extra +
                         " -o " + Quote(out) + " --config " + Quote(s.config_path) + " 2>&1",
                     &ok);
    EXPECT_TRUE(ok) << log;
    json j = json::parse(Slurp(out), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << Slurp(out).substr(0, 500);
    return j;
  }
  static testing::ScenarioStore Fixture(const std::string& name) {
    setenv("TEITEN_SOURCE_DIR", testing::SourceDir().c_str(), 0);
    auto s = testing::ScenarioStoreFor(name);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : testing::ScenarioStore{};
  }
  static std::string Dating() { return testing::SourceDir() + "/tests/unit/scenarios/dating.toml"; }
  static const json* FindingAbout(const json& j, const std::string& port) {
    for (const json& f : j["findings"]) {
      if (f["port"] == port) return &f;
    }
    return nullptr;
  }
  static std::string All(const json& paragraphs) {
    std::string s;
    for (const json& p : paragraphs) s += p.get<std::string>() + "\n";
    return s;
  }
  testing::TempDir dir_;
};

// The JSON report: versioned; its tables and findings are the queries' answers for the same
// selection.
TEST_F(ReportSentences, JsonEqualsTheQueries) {
  testing::ScenarioStore s = Fixture(Dating());
  ASSERT_FALSE(s.store_dir.empty());
  auto store = Store::Open(s.store_dir, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Period q = DaysPeriod(TimeZone::DaysFromCivil(2019, 3, 1), TimeZone::DaysFromCivil(2019, 4, 12));
  for (const std::string group : {"", "west"}) {
    SCOPED_TRACE("group '" + group + "'");
    SensorSelection sel;
    if (!group.empty()) {
      auto r = ResolveSensors(**store, {}, {group});
      ASSERT_TRUE(r.ok());
      sel = *r;
    }
    json j = Report(s, "2019-03-01..2019-04-11", group.empty() ? "" : "--group " + group, dir_);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["version"], 1);
    EXPECT_EQ(j["period"]["first_day"], "2019-03-01");
    EXPECT_EQ(j["period"]["last_day"], "2019-04-11");
    EXPECT_EQ(j["sensors"]["ids"].size(), group.empty() ? 4u : 2u);

    auto sum = Summary(**store, q, sel, 10);
    ASSERT_TRUE(sum.ok());
    EXPECT_EQ(j["summary"]["packets"], sum->packets);
    EXPECT_EQ(j["summary"]["sources"], sum->sources);
    for (auto [dim, key] : {std::pair{Dimension::kPort, "top_ports"},
                            std::pair{Dimension::kCountry, "top_countries"}}) {
      auto top = Top(**store, dim, q, sel, 10);
      ASSERT_TRUE(top.ok());
      const json& rows = j[key]["rows"];
      ASSERT_EQ(rows.size(), top->rows.size());
      for (size_t i = 0; i < rows.size(); ++i) {
        EXPECT_EQ(rows[i]["rank"], top->rows[i].rank);
        EXPECT_EQ(rows[i]["packets"], top->rows[i].packets);
        EXPECT_EQ(rows[i]["sources"], top->rows[i].sources);
        std::string k = dim == Dimension::kPort
                            ? PortKeyToString(static_cast<PortKey>(top->rows[i].key))
                            : CountryCodeString(static_cast<CountryCode>(top->rows[i].key));
        EXPECT_EQ(rows[i]["key"], k);
      }
    }
    auto fs = FindNotable(**store, q, sel);
    ASSERT_TRUE(fs.ok());
    ASSERT_EQ(j["findings"].size(), fs->size());
    for (size_t i = 0; i < fs->size(); ++i) {
      const Finding& f = (*fs)[i];
      const json& jf = j["findings"][i];
      EXPECT_EQ(jf["kind"], FindingKindName(f.kind));
      EXPECT_EQ(jf["first_day"], TimeZone::DayString(f.first_day));
      EXPECT_EQ(jf["facts"].size(), f.facts.size());
      if (f.has_port) {
        EXPECT_EQ(jf["port"], PortKeyToString(f.port));
      }
      for (const char* lang : {"ja", "en"}) {
        EXPECT_FALSE(jf["text"][lang]["overview"].get<std::string>().empty());
        EXPECT_FALSE(jf["text"][lang]["paragraphs"].empty());
      }
    }
    // The scanning tools section: the tags of the same selection, and its sentence's counts.
    auto tools = TopTools(**store, q, sel, std::nullopt, &ResearchNetworks::Shipped());
    ASSERT_TRUE(tools.ok()) << tools.status().ToString();
    EXPECT_EQ(j["tools"]["sources"], tools->sources);
    EXPECT_EQ(j["tools"]["packets"], tools->packets);
    ASSERT_EQ(j["tools"]["tags"].size(), tools->rows.size());
    uint64_t untagged = 0;
    for (size_t i = 0; i < tools->rows.size(); ++i) {
      const json& r = j["tools"]["tags"][i];
      EXPECT_EQ(r["tag"], TagName(tools->rows[i].tag));
      EXPECT_EQ(r["sources"], tools->rows[i].sources);
      EXPECT_EQ(r["packets"], tools->rows[i].packets);
      if (tools->rows[i].tag == Tag::kCount) untagged = tools->rows[i].sources;
    }
    ASSERT_LT(untagged, tools->sources);  // the scenario plants Mirai, ZMap, Masscan, …
    {
      EXPECT_NE(All(j["document"]["en"]["paragraphs"])
                    .find(fmt::format("Of the period's {} distinct sources, {} (",
                                      Num(tools->sources), Num(tools->sources - untagged))),
                std::string::npos);
      EXPECT_NE(All(j["document"]["ja"]["paragraphs"])
                    .find(fmt::format("期間中の送信元 {} 個のうち {} 個", Num(tools->sources),
                                      Num(tools->sources - untagged))),
                std::string::npos);
    }
    // The DoS section: the attacks FindDosAttacks infers for the same selection, and its counts
    // in both languages' sentences.
    auto dos = FindDosAttacks(**store, q, sel);
    ASSERT_TRUE(dos.ok()) << dos.status().ToString();
    EXPECT_EQ(j["dos"]["backscatter"], dos->backscatter);
    EXPECT_EQ(j["dos"]["victims"], dos->victims);
    ASSERT_EQ(j["dos"]["attacks"].size(), dos->attacks.size());
    for (size_t i = 0; i < dos->attacks.size(); ++i) {
      EXPECT_EQ(j["dos"]["attacks"][i]["victim"], dos->attacks[i].victim.ToString());
      EXPECT_EQ(j["dos"]["attacks"][i]["packets"], dos->attacks[i].packets);
    }
    if (group.empty()) ASSERT_GT(dos->attacks.size(), 0u);  // the scenario plants floods
    EXPECT_NE(All(j["document"]["en"]["paragraphs"])
                  .find(fmt::format("{} such answers (backscatter", Num(dos->backscatter))),
              std::string::npos);
    EXPECT_NE(All(j["document"]["en"]["paragraphs"])
                  .find(fmt::format("from {} victims; {} of their floods", Num(dos->victims),
                                    Num(dos->attacks.size()))),
              std::string::npos);
    EXPECT_NE(All(j["document"]["ja"]["paragraphs"])
                  .find(fmt::format("応答した被害者は {} 個でした。", Num(dos->victims))),
              std::string::npos);
    // Both languages' documents carry the same tables.
    EXPECT_EQ(j["document"]["ja"]["tables"].size(), j["document"]["en"]["tables"].size());
    EXPECT_GE(j["document"]["en"]["tables"].size(), 2u);
  }
}

// A port that appeared from nothing and entered the top 10 "appeared on" its first day in the
// entry's sentence too, never "rising since about" (issue 14 point 3). The dating scenario's
// 9530/TCP appears on 4/1 but stays below the top 10, so its finding is given the entry fact a
// larger share would have made.
TEST_F(ReportSentences, ATopTenEntryFromNothingAppeared) {
  testing::ScenarioStore s = Fixture(Dating());
  ASSERT_FALSE(s.store_dir.empty());
  auto store = Store::Open(s.store_dir, {});
  ASSERT_TRUE(store.ok());
  for (Lang lang : {Lang::kEn, Lang::kJa}) {
    ReportOptions o;
    o.period =
        DaysPeriod(TimeZone::DaysFromCivil(2019, 3, 1), TimeZone::DaysFromCivil(2019, 4, 12));
    o.lang = lang;
    auto data = GatherReport(**store, o);
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    size_t i = data->findings.size();
    int32_t first = kNoDay;
    for (size_t k = 0; k < data->findings.size(); ++k) {
      const Finding& f = data->findings[k].finding;
      if (!f.has_port || f.port != MakePortKey(6, 9530)) continue;
      for (const FindingFact& x : f.facts) {
        if (x.from_zero) i = k, first = x.first_day;
      }
    }
    ASSERT_LT(i, data->findings.size()) << "no from-zero finding for 9530/TCP";
    EXPECT_EQ(first, TimeZone::DaysFromCivil(2019, 4, 1));
    FindingFact entry;
    entry.kind = FindingKind::kTopEntry;
    entry.first_day = first;
    entry.rank = 7;
    entry.prev_rank = kRankNew;
    data->findings[i].finding.facts.push_back(entry);
    Composer c(*data);
    std::string text;
    for (const std::string& p : FindingParagraphs(c, i)) text += p + "\n";
    if (lang == Lang::kEn) {
      EXPECT_NE(text.find("which appeared on April 1, ranked 7th among the destination ports"),
                std::string::npos)
          << text;
      EXPECT_EQ(text.find("rising since about"), std::string::npos) << text;
    } else {
      EXPECT_NE(text.find(DayText(first, Lang::kJa) + "に現れ、宛先ポート番号のトップ 10 で 7 位"),
                std::string::npos)
          << text;
      EXPECT_EQ(text.find("頃から増加し、宛先ポート番号"), std::string::npos) << text;
    }
  }
}

// A port with no packets before (9530/TCP from 4/1 in the dating scenario) "appeared on" its
// first day, with the last week's numbers as the Series query gives them; never "rising from".
// The gradual 445/TCP rise is dated 3/20 despite the boundary step and noise days, with its last
// week's median of distinct sources. For each group and in both languages.
TEST_F(ReportSentences, AppearedAndRoseOnTheDayAndNumbersOfTheStore) {
  testing::ScenarioStore s = Fixture(Dating());
  ASSERT_FALSE(s.store_dir.empty());
  auto store = Store::Open(s.store_dir, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (const std::string group : {"", "east", "west"}) {
    SCOPED_TRACE("group '" + group + "'");
    SensorSelection sel;
    if (!group.empty()) sel = *ResolveSensors(**store, {}, {group});
    json j = Report(s, "2019-03-01..2019-04-11", group.empty() ? "" : "--group " + group, dir_);
    // The last 7 days' medians from the store.
    auto tail = [&](uint16_t port, bool sources) {
      Period last =
          DaysPeriod(TimeZone::DaysFromCivil(2019, 4, 5), TimeZone::DaysFromCivil(2019, 4, 12));
      auto r =
          Series(**store, Dimension::kPort, {MakePortKey(6, port)}, last, Granularity::kDay, sel);
      EXPECT_TRUE(r.ok());
      std::vector<double> v;
      for (const auto& pt : r->points) {
        v.push_back(static_cast<double>(sources ? pt.sources[0] : pt.packets[0]));
      }
      std::sort(v.begin(), v.end());
      return Num(static_cast<uint64_t>(v[v.size() / 2]));
    };

    const json* xm = FindingAbout(j, "9530/TCP");
    ASSERT_NE(xm, nullptr);
    EXPECT_EQ((*xm)["first_day"], "2019-04-01");
    EXPECT_TRUE((*xm)["facts"][0]["from_zero"].get<bool>());
    std::string en = All((*xm)["text"]["en"]["paragraphs"]);
    std::string ja = All((*xm)["text"]["ja"]["paragraphs"]);
    EXPECT_NE(en.find("appeared on April 1 (none had been seen before)"), std::string::npos) << en;
    EXPECT_NE(ja.find("4月1日に現れました"), std::string::npos) << ja;
    EXPECT_EQ(en.find("from 0"), std::string::npos) << en;
    EXPECT_EQ(en.find("rising"), std::string::npos) << en;
    EXPECT_EQ(ja.find("0 個から"), std::string::npos) << ja;
    EXPECT_NE(
        en.find(tail(9530, true) + " distinct sources and " + tail(9530, false) + " packets a day"),
        std::string::npos)
        << en;
    EXPECT_NE(ja.find("送信元数は " + tail(9530, true) + " 個、パケット数は " + tail(9530, false) +
                      " 件"),
              std::string::npos)
        << ja;
    EXPECT_NE((*xm)["text"]["en"]["overview"].get<std::string>().find("appeared on April 1"),
              std::string::npos);

    const json* smb = FindingAbout(j, "445/TCP");
    ASSERT_NE(smb, nullptr);
    EXPECT_EQ((*smb)["first_day"], "2019-03-20");
    en = All((*smb)["text"]["en"]["paragraphs"]);
    ja = All((*smb)["text"]["ja"]["paragraphs"]);
    EXPECT_NE(en.find("Since about March 20"), std::string::npos) << en;
    EXPECT_NE(ja.find("3月20日頃より"), std::string::npos) << ja;
    EXPECT_NE(en.find(" to " + tail(445, true) + " in the last week"), std::string::npos) << en;
    EXPECT_NE(ja.find("直近 1 週間の " + tail(445, true) + " 個"), std::string::npos) << ja;

    // Ports moving together: 8081/TCP had nothing before 3/25 and pins the start.
    const json* move = FindingAbout(j, "8080/TCP");
    ASSERT_NE(move, nullptr);
    EXPECT_EQ((*move)["kind"], "ports-together");
    EXPECT_EQ((*move)["first_day"], "2019-03-25");
    EXPECT_NE(All((*move)["text"]["en"]["paragraphs"]).find("Since about March 25"),
              std::string::npos);
    EXPECT_NE(All((*move)["text"]["ja"]["paragraphs"]).find("3月25日頃から"), std::string::npos);
  }
}

// A group report counts the group's sensors: the small scenario's research scanner on 9600/TCP
// is seen by both sensors, one in each group; the report on jp-east says 1 of its 1 sensor, and
// the sensor count is SourceHistory's restricted to the group.
TEST_F(ReportSentences, GroupReportCountsTheGroupsSensors) {
  testing::ScenarioStore s = Fixture("small");
  ASSERT_FALSE(s.store_dir.empty());
  auto store = Store::Open(s.store_dir, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (const std::string group : {"", "jp-east"}) {
    SCOPED_TRACE("group '" + group + "'");
    SensorSelection sel;
    if (!group.empty()) sel = *ResolveSensors(**store, {}, {group});
    json j = Report(s, "2018-08-10..2018-08-13", group.empty() ? "" : "--group " + group, dir_);
    const json* f = FindingAbout(j, "9600/TCP");
    ASSERT_NE(f, nullptr);
    ASSERT_FALSE((*f)["top_sources"].empty());
    const json& src = (*f)["top_sources"][0];
    auto h = SourceHistory(**store, IpAddr::Parse(src["address"].get<std::string>()).value());
    ASSERT_TRUE(h.ok());
    int in_sel = 0;
    for (const auto& [sensor, n] : h->sensors) in_sel += sel.sensors.empty() || sel.Allows(sensor);
    EXPECT_EQ(src["sensors_seen"], in_sel);
    EXPECT_EQ(src["sensors_seen_all"], h->sensors.size());
    EXPECT_LE(src["sensors_seen"].get<size_t>(), j["sensors"]["ids"].size());
    std::string en = All((*f)["text"]["en"]["paragraphs"]);
    std::string ja = All((*f)["text"]["ja"]["paragraphs"]);
    if (group.empty()) {
      EXPECT_EQ(in_sel, 2);
      EXPECT_NE(en.find("by 2 sensors"), std::string::npos) << en;
      EXPECT_NE(ja.find("2 台のセンサーで観測"), std::string::npos) << ja;
    } else {
      EXPECT_EQ(in_sel, 1);
      EXPECT_NE(en.find("seen by 1 of the 1 sensors of this report"), std::string::npos) << en;
      EXPECT_NE(ja.find("対象センサー 1 台のうち 1 台で、"), std::string::npos) << ja;
      // The days and other ports are the group's too: those of the source's rows at its sensors.
      auto hg =
          SourceHistory(**store, IpAddr::Parse(src["address"].get<std::string>()).value(), sel);
      ASSERT_TRUE(hg.ok());
      EXPECT_EQ(src["days_seen"], hg->days.size());
      EXPECT_EQ(src["total_packets"], hg->packets);
      EXPECT_LE(hg->packets, h->packets);
      EXPECT_EQ(en.find("whole network"), std::string::npos) << en;
      EXPECT_EQ(en.find("by 2 sensors"), std::string::npos) << en;
    }
  }
}

// The overview names the regions that entered the top 5 and those that left it (the dating
// scenario's February has Brazil and Korea in it, March the Netherlands and Ukraine), by the
// ranks Top gives for both periods; equal sensor counts are "unchanged"; both tables word the
// previous rank alike; a rise measured on sources is introduced as one, in both languages.
TEST_F(ReportSentences, OverviewNamesEntriesExitsAndTheMeasure) {
  testing::ScenarioStore s = Fixture(Dating());
  ASSERT_FALSE(s.store_dir.empty());
  auto store = Store::Open(s.store_dir, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Period q = DaysPeriod(TimeZone::DaysFromCivil(2019, 3, 1), TimeZone::DaysFromCivil(2019, 4, 12));
  auto now = Top(**store, Dimension::kCountry, q, {}, 5);
  ASSERT_TRUE(now.ok());
  auto before = Top(**store, Dimension::kCountry, now->previous, {}, 5);
  ASSERT_TRUE(before.ok());
  std::vector<std::pair<CountryCode, int>> exits;  // (region, its rank before)
  for (const RankRow& b : before->rows) {
    bool still = false;
    for (const RankRow& r : now->rows) still |= r.key == b.key;
    if (!still) exits.push_back({static_cast<CountryCode>(b.key), b.rank});
  }
  std::vector<CountryCode> entries;
  for (const RankRow& r : now->rows) {
    if (r.prev_rank < 0 || r.prev_rank > 5) entries.push_back(static_cast<CountryCode>(r.key));
  }
  ASSERT_EQ(exits.size(), 2u);  // Brazil and Korea, as planted
  ASSERT_EQ(entries.size(), 2u);

  json j = Report(s, "2019-03-01..2019-04-11", "", dir_);
  for (const char* lang : {"en", "ja"}) {
    SCOPED_TRACE(lang);
    Lang l = std::string(lang) == "ja" ? Lang::kJa : Lang::kEn;
    const json& doc = j["document"][lang];
    std::string text = All(doc["paragraphs"]);
    for (auto [cc, rank] : exits) {
      std::string name = CountryInText(cc, l);
      std::string want = l == Lang::kJa
                             ? fmt::format("{}位だった{}が上位 5 位から外れ", rank, name)
                             : fmt::format("{}, {} before, left the top 5", name, Ordinal(rank));
      EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
    }
    for (CountryCode cc : entries) {
      EXPECT_NE(text.find(CountryInText(cc, l)), std::string::npos) << CountryCodeString(cc);
    }
    // Every table's previous-rank column is worded alike, and equal counts are unchanged.
    std::set<std::string> prev_headers;
    for (const json& t : doc["tables"]) {
      std::string last = t["header"].back();
      if (last.find("順位") != std::string::npos || last.find("Rank in") != std::string::npos) {
        prev_headers.insert(last);
      }
      for (const json& row : t["rows"]) {
        if (row[0] == "Sensors with data" || row[0] == "センサー数") {
          ASSERT_EQ(row[1], row[2]);  // 4 sensors in both periods
          EXPECT_EQ(row[3], l == Lang::kJa ? "変化なし" : "unchanged");
        }
      }
    }
    EXPECT_EQ(prev_headers.size(), 1u) << json(prev_headers).dump();
    // 445/TCP's rise rests on distinct sources: the overview says sources, like its section.
    const json* smb = FindingAbout(j, "445/TCP");
    ASSERT_NE(smb, nullptr);
    ASSERT_FALSE((*smb)["facts"][0]["on_packets"].get<bool>());
    std::string o = (*smb)["text"][lang]["overview"];
    EXPECT_NE(o.find(l == Lang::kJa ? "送信元 IP アドレス数" : "distinct sources"),
              std::string::npos)
        << o;
  }
}

// 5900/TCP's rise in dating-near.toml is Turkey's (the planted tr-vnc region rise, nearly all on
// that port): the port's section says so and points at Turkey's own section, in both languages,
// for all sensors and for a group. The planted packets (ground truth) are checked to be most of
// the port's added packets a day (Series), so that the sentence is owed.
TEST_F(ReportSentences, ARiseFromARegionPointsToIt) {
  testing::ScenarioStore s =
      Fixture(testing::SourceDir() + "/tests/unit/scenarios/dating-near.toml");
  ASSERT_FALSE(s.store_dir.empty());
  auto store = Store::Open(s.store_dir, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  json truth = json::parse(Slurp(s.truth_path));
  double planted = 0;
  for (const json& e : truth["events"]) {
    if (e["name"] == "tr-vnc") planted = e["packets"].get<double>();
  }
  ASSERT_GT(planted, 0);
  auto port_days =
      Series(**store, Dimension::kPort, {MakePortKey(6, 5900)},
             DaysPeriod(TimeZone::DaysFromCivil(2019, 2, 22), TimeZone::DaysFromCivil(2019, 4, 12)),
             Granularity::kDay, {});
  ASSERT_TRUE(port_days.ok());
  double before = 0, during = 0;
  for (size_t i = 0; i < port_days->points.size(); ++i) {
    (i < 28 ? before : during) += static_cast<double>(port_days->points[i].packets[0]);
  }
  double added = during / 21 - before / 28;  // 3/22..4/11 against the 28 days before
  EXPECT_GE(planted / 21, 0.5 * added) << planted << " " << added;

  for (const std::string group : {"", "east"}) {
    SCOPED_TRACE("group '" + group + "'");
    json j = Report(s, "2019-03-01..2019-04-11", group.empty() ? "" : "--group " + group, dir_);
    const json* port = FindingAbout(j, "5900/TCP");
    ASSERT_NE(port, nullptr);
    size_t tr = 0;
    for (size_t i = 0; i < j["findings"].size(); ++i) {
      if (j["findings"][i]["country"] == "TR") tr = i + 1;
    }
    ASSERT_GT(tr, 0u) << "no finding of Turkey's own";
    std::string section = fmt::format("2.{}", tr);
    std::string en = All((*port)["text"]["en"]["paragraphs"]);
    std::string ja = All((*port)["text"]["ja"]["paragraphs"]);
    EXPECT_NE(en.find("came from " + CountryInText(MakeCountryCode("TR"), Lang::kEn) +
                      ", whose own rise is described in section " + section),
              std::string::npos)
        << en;
    EXPECT_NE(ja.find("トルコからのパケットによるもので、トルコの増加については「" + section),
              std::string::npos)
        << ja;
  }
}

}  // namespace
}  // namespace teiten::report
