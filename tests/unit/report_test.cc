// Reports (src/report): the words they use, the HTML they write, and whole reports on a simulated
// scenario checked against the CLI's own answers, a real HTML5 parser and headless Chromium.
#include "report/report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/period.h"
#include "common/time_zone.h"
#include "report/document.h"
#include "report/words.h"
#include "report_test_support.h"

namespace teiten::report {
namespace {

// ---- words -------------------------------------------------------------------------------

TEST(ReportWords, DatesAndSpans) {
  Period q = QuarterPeriod(2018, 3);
  EXPECT_EQ(SpanText(q, Lang::kJa), "2018年7月1日～9月30日");
  EXPECT_EQ(SpanText(q, Lang::kEn), "July 1 – September 30, 2018");
  EXPECT_EQ(PeriodName(q, Lang::kJa), "2018 年 7～9 月");
  EXPECT_EQ(PeriodName(q, Lang::kEn), "July–September 2018");
  EXPECT_EQ(PeriodName(MonthPeriod(2007, 8), Lang::kJa), "2007年8月");
  EXPECT_EQ(PeriodName(MonthPeriod(2007, 8), Lang::kEn), "August 2007");
  int32_t d = TimeZone::DaysFromCivil(2018, 8, 12);
  EXPECT_EQ(DayText(d, Lang::kJa), "8月12日");
  EXPECT_EQ(DayText(d, Lang::kEn), "August 12");
  EXPECT_EQ(DayTextWithYear(d, Lang::kEn), "August 12, 2018");
  Period span =
      DaysPeriod(TimeZone::DaysFromCivil(2015, 12, 20), TimeZone::DaysFromCivil(2016, 1, 3));
  EXPECT_EQ(SpanText(span, Lang::kJa), "2015年12月20日～2016年1月2日");
  EXPECT_EQ(MonthRange(MonthPeriod(2007, 3), MonthPeriod(2007, 8), Lang::kJa),
            "2007年3月～2007年8月");
}

TEST(ReportWords, NumbersAndChanges) {
  EXPECT_EQ(Num(263940), "263,940");
  EXPECT_EQ(Dec(1234.56, 1), "1,234.6");
  EXPECT_EQ(Dec(0.996, 2), "1.00");
  EXPECT_EQ(Pct(0.2449), "24.5%");
  EXPECT_EQ(ChangePhrase(100, 160, Lang::kEn), "rose by 60.0%");
  EXPECT_EQ(ChangePhrase(100, 160, Lang::kJa), "60.0% 増加しました");
  EXPECT_EQ(ChangePhrase(100, 40, Lang::kEn), "fell by 60.0%");
  EXPECT_EQ(ChangePhrase(100, 101, Lang::kJa), "ほぼ横ばいでした");
  EXPECT_EQ(ChangePhrase(100, 350, Lang::kEn), "rose 3.5-fold");
  EXPECT_EQ(ChangeShort(0, 5, Lang::kEn), "newly seen");
  EXPECT_EQ(Ordinal(1), "1st");
  EXPECT_EQ(Ordinal(2), "2nd");
  EXPECT_EQ(Ordinal(3), "3rd");
  EXPECT_EQ(Ordinal(11), "11th");
  EXPECT_EQ(Ordinal(22), "22nd");
  EXPECT_EQ(JoinList({"A", "B", "C"}, Lang::kEn), "A, B, and C");
  EXPECT_EQ(JoinList({"A", "B"}, Lang::kEn), "A and B");
  EXPECT_EQ(JoinList({"中国", "米国"}, Lang::kJa), "中国、米国");
  EXPECT_EQ(PrevRankCell(kRankOutOfTop, Lang::kJa), "トップ10圏外");
  EXPECT_EQ(PrevRankCell(kRankNew, Lang::kEn), "new");
  EXPECT_EQ(PrevRankCell(4, Lang::kEn), "4");
}

// ---- the document --------------------------------------------------------------------------

TEST(ReportWords, CountriesInRunningText) {
  auto cc = [](const char* s) { return MakeCountryCode(s); };
  EXPECT_EQ(CountryInText(cc("US"), Lang::kEn), "the United States");
  EXPECT_EQ(CountryInText(cc("NL"), Lang::kEn), "the Netherlands");
  EXPECT_EQ(CountryInText(cc("GB"), Lang::kEn), "the United Kingdom");
  EXPECT_EQ(CountryInText(cc("CN"), Lang::kEn), "China");
  EXPECT_EQ(CountryInText(cc("UA"), Lang::kEn), "Ukraine");
  EXPECT_EQ(CountryInText(cc("US"), Lang::kJa), "米国");
  EXPECT_EQ(CountryText(cc("US"), Lang::kEn), "United States");
  EXPECT_EQ(Capitalized(CountryInText(cc("NL"), Lang::kEn)), "The Netherlands");
  EXPECT_EQ(Capitalized("中国"), "中国");
}

TEST(ReportDocument, HostileTextIsEscapedAndTheHtmlParses) {
  Document d;
  d.lang = Lang::kEn;
  d.title = "Report <script>alert(1)</script>";
  d.subtitle = "[a & b]";
  d.Heading(1, "1. \"Quotes\" & <tags>", "h1");
  d.Paragraph("AS64500 <img src=x onerror=alert(1)> Evil & Co \x01");
  TableBlock t;
  t.label = "Table 1";
  t.caption = "</table><script>";
  t.header = {"a", "b"};
  t.numeric = {false, true};
  t.rows = {{"<b>x</b>", "1,234"}};
  t.id = "t1";
  d.AddTable(t);
  d.Links({{"javascript link", "javascript:alert(1)"}, {"IANA", "https://www.iana.org/"}});
  std::string html = RenderHtml(d);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("javascript:alert(1)\""), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("href=\"https://www.iana.org/\""), std::string::npos);
  if (!testing::HaveCommand("python3")) GTEST_SKIP() << "python3 missing";
  testing::TempDir dir;
  std::string path = dir.path() + "/doc.html";
  std::ofstream(path) << html;
  json j = CheckHtml(path);
  ASSERT_FALSE(j.contains("parse_error")) << j.dump();
  ASSERT_EQ(j["tables"]["t1"]["rows"][0][0], "<b>x</b>");  // shown as text, not markup
  EXPECT_EQ(j["headings"][1]["text"], "1. \"Quotes\" & <tags>");
}

TEST(ReportDocument, MarkdownEscapesAndWritesFigures) {
  Document d;
  d.lang = Lang::kJa;
  d.title = "レポート";
  d.Paragraph("a|b *c* <x>");
  FigureBlock f;
  f.label = "図 1";
  f.caption = "推移";
  f.id = "figure-1";
  f.svg = "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>";
  d.AddFigure(f);
  std::vector<std::pair<std::string, std::string>> files;
  std::string md = RenderMarkdown(d, "r", &files);
  EXPECT_NE(md.find("a\\|b \\*c\\* &lt;x&gt;"), std::string::npos) << md;
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].first, "r-figure-1.svg");
  EXPECT_NE(md.find("![図 1：推移](r-figure-1.svg)"), std::string::npos) << md;
}

// ---- whole reports on a simulated scenario ---------------------------------------------------

TEST_F(ScenarioReport, TablesEqualTheCliAnswers) {
  for (const char* lang : {"en", "ja"}) {
    std::string out = dir_.path() + "/r-" + lang + ".html";
    bool ok = false;
    std::string log =
        Cli("report --period " + SmallPeriod() + " --lang " + lang + " -o " + Quote(out), &ok);
    ASSERT_TRUE(ok) << log;
    json j = CheckHtml(out);
    ASSERT_FALSE(j.contains("parse_error")) << j.dump();
    EXPECT_EQ(j["lang"], lang);

    for (const char* what : {"ports", "countries"}) {
      std::string csv = Cli(std::string("top ") + what + " --period " + SmallPeriod() +
                                " --format csv --lang " + lang,
                            &ok);
      ASSERT_TRUE(ok) << csv;
      auto rows = Csv(csv);
      ASSERT_GE(rows.size(), 2u);
      const json& t = j["tables"][std::string("table-top10-") +
                                  (what == std::string("ports") ? "ports" : "regions")];
      ASSERT_TRUE(t.is_object()) << j["tables"].dump();
      ASSERT_EQ(t["rows"].size(), rows.size() - 1) << csv;
      for (size_t i = 1; i < rows.size(); ++i) {
        const json& r = t["rows"][i - 1];
        SCOPED_TRACE(csv);
        EXPECT_EQ(r[0], rows[i][0]);            // rank
        EXPECT_EQ(NoCommas(r[2]), rows[i][2]);  // packets
        EXPECT_EQ(NoCommas(r[4]), rows[i][3]);  // distinct sources
        if (what == std::string("ports")) {
          EXPECT_EQ(r[1], rows[i][1]);  // port (service)
        } else {
          // The CLI writes "CN China"; the report the name alone.
          EXPECT_NE(rows[i][1].find(r[1].get<std::string>()), std::string::npos);
        }
      }
      // Table 1 / Table 2: the first five, in the same order.
      const json& t5 = j["tables"][std::string("table-top5-") +
                                   (what == std::string("ports") ? "ports" : "regions")];
      ASSERT_TRUE(t5.is_object());
      for (size_t i = 0; i < t5["rows"].size(); ++i) {
        EXPECT_EQ(t5["rows"][i][1], t["rows"][i][1]);
      }
    }
    std::string csv = Cli("summary --period " + SmallPeriod() + " --format csv", &ok);
    ASSERT_TRUE(ok) << csv;
    std::map<std::string, std::string> summary;
    for (const auto& r : Csv(csv)) {
      if (r.size() >= 2) summary[r[0]] = r[1];
    }
    const json& avg = j["tables"]["table-averages"];
    ASSERT_TRUE(avg.is_object());
    // Rows: packets, sources, packets per source, sensors (rounded as the report prints them).
    auto near = [](const std::string& shown, const std::string& exact, double tol) {
      return std::fabs(std::stod(NoCommas(shown)) - std::stod(exact)) <= tol;
    };
    EXPECT_TRUE(near(avg["rows"][0][1], summary["packets_per_sensor_day"], 0.0501))
        << avg.dump() << csv;
    EXPECT_TRUE(near(avg["rows"][1][1], summary["sources_per_sensor_day"], 0.0501)) << csv;
    EXPECT_TRUE(near(avg["rows"][2][1], summary["packets_per_source"], 0.00501)) << csv;
    EXPECT_EQ(avg["rows"][3][1], summary["sensors"]);
  }
}

// The quarterly layout's skeleton, as the seeds order it (golden, English).
TEST_F(ScenarioReport, QuarterlyStructure) {
  std::string out = dir_.path() + "/q.html";
  bool ok = false;
  std::string log = Cli("report --period " + SmallPeriod() + " --lang en -o " + Quote(out), &ok);
  ASSERT_TRUE(ok) << log;
  json j = CheckHtml(out);
  ASSERT_FALSE(j.contains("parse_error")) << j.dump();
  std::vector<std::string> ids;
  for (const auto& h : j["headings"]) {
    if (!h["id"].is_null()) ids.push_back(h["id"]);
  }
  std::vector<std::string> want = {"overview",           "top10",     "stats", "findings",
                                   "port-notes-section", "references"};
  std::vector<std::string> got;
  for (const auto& id : ids) {
    if (std::find(want.begin(), want.end(), id) != want.end()) got.push_back(id);
  }
  EXPECT_EQ(got, want);
  // Figures 1 and 2 come first and are numbered in order; every figure draws something.
  ASSERT_GE(j["figures"].size(), 2u);
  EXPECT_EQ(j["figures"][0]["id"], "figure-top5-ports");
  EXPECT_EQ(j["figures"][1]["id"], "figure-top5-regions");
  int n = 0;
  for (const auto& f : j["figures"]) {
    ++n;
    EXPECT_EQ(f["caption"].get<std::string>().rfind("Figure " + std::to_string(n) + ":", 0), 0u)
        << f.dump();
    EXPECT_TRUE(f["svg"].get<bool>()) << f.dump();
    EXPECT_GT(f["marks"].get<int>(), 3) << f.dump();
  }
  // Tables numbered in order, Table 1 the ports and Table 2 the regions.
  EXPECT_EQ(j["tables"]["table-top5-ports"]["caption"].get<std::string>().rfind("Table 1:", 0), 0u);
  EXPECT_EQ(j["tables"]["table-top5-regions"]["caption"].get<std::string>().rfind("Table 2:", 0),
            0u);
  // Port explanations for the ports featured.
  ASSERT_TRUE(j["tables"]["port-notes"].is_object());
  EXPECT_GE(j["tables"]["port-notes"]["rows"].size(), 3u);
  // No template blanks.
  for (const auto& p : j["paragraphs"]) {
    std::string s = p;
    EXPECT_EQ(s.find("{}"), std::string::npos) << s;
    EXPECT_EQ(s.find("nan"), std::string::npos) << s;
  }
}

TEST_F(ScenarioReport, MonthlyLayoutInJapanese) {
  std::string out = dir_.path() + "/m.html";
  bool ok = false;
  std::string log = Cli("report --period 2018-08 --lang ja -o " + Quote(out), &ok);
  ASSERT_TRUE(ok) << log;
  json j = CheckHtml(out);
  ASSERT_FALSE(j.contains("parse_error")) << j.dump();
  ASSERT_FALSE(j["headings"].empty());
  EXPECT_EQ(j["headings"][0]["text"], "インターネット定点観測での観測状況について");
  EXPECT_EQ(j["headings"][1]["text"], "1. 一般のインターネット利用者の皆さんへ");
  bool strong = false;
  for (const auto& p : j["paragraphs"]) {
    std::string s = p;
    if (s.find("見知らぬ人（発信元）") != std::string::npos) strong = true;
  }
  EXPECT_TRUE(strong);
  for (const auto& f : j["figures"]) {
    EXPECT_EQ(f["caption"].get<std::string>().rfind("図 ", 0), 0u) << f.dump();
  }
}

TEST_F(ScenarioReport, MarkdownWritesItsFigures) {
  std::string out = dir_.path() + "/r.md";
  bool ok = false;
  std::string log =
      Cli("report --period " + SmallPeriod() + " --lang en --format md -o " + Quote(out), &ok);
  ASSERT_TRUE(ok) << log;
  std::string md = Slurp(out);
  EXPECT_NE(md.find("| Rank |"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_.path() + "/r-figure-top5-ports.svg"));
  if (testing::HaveCommand("xmllint")) {
    EXPECT_TRUE(testing::Run("xmllint --noout " + Quote(dir_.path() + "/r-figure-top5-ports.svg") +
                             " && echo ok") == "ok\n");
  }
}

TEST(ReportCli, PdfWithoutChromiumSaysHowToGetIt) {
  Document d;
  d.title = "x";
  setenv("TEITEN_CHROMIUM", "/nonexistent/chromium", 1);
  testing::TempDir dir;
  Status s = WriteReport(d, ReportFormat::kPdf, dir.path() + "/x.pdf");
  unsetenv("TEITEN_CHROMIUM");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("apt-get install chromium"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(dir.path() + "/x.pdf"));
}

}  // namespace
}  // namespace teiten::report
