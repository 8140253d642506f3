// Report charts (report/chart.h): axes and labels against hand-worked values, geometry read back
// from the SVG, escaping of hostile names, and every chart parsed by a real XML parser (xmllint).
#include "report/chart.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <regex>

#include "test_support.h"

namespace teiten::chart {
namespace {

using teiten::testing::HaveCommand;
using teiten::testing::Run;
using teiten::testing::TempDir;

constexpr int32_t kJul1 = 17713;  // 2018-07-01, a Sunday
constexpr int32_t kSep30 = 17804;

// ---- Reading the SVG back ----

// Text of every <text class="cls" …>…</text>, in document order, with its x and y.
struct Label {
  double x, y;
  std::string text;
};
std::vector<Label> Texts(const std::string& svg, const std::string& cls) {
  std::vector<Label> out;
  const std::regex re("<text class=\"" + cls +
                      "\" x=\"([-0-9.]+)\" y=\"([-0-9.]+)\"[^>]*>([^<]*)</text>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator();
       ++it)
    out.push_back({std::stod((*it)[1]), std::stod((*it)[2]), (*it)[3]});
  return out;
}
std::vector<std::string> TextsOnly(const std::string& svg, const std::string& cls) {
  std::vector<std::string> out;
  for (const Label& l : Texts(svg, cls)) out.push_back(l.text);
  return out;
}

// The points of an "M x y L x y …" path.
std::vector<std::pair<double, double>> Points(const std::string& d) {
  std::vector<std::pair<double, double>> out;
  const std::regex re("[ML]([-0-9.]+) ([-0-9.]+)");
  for (auto it = std::sregex_iterator(d.begin(), d.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back({std::stod((*it)[1]), std::stod((*it)[2])});
  return out;
}

// The d of the first path with `cls` inside series group `s`.
std::string SeriesPath(const std::string& svg, int s, const std::string& cls) {
  const std::string group = "<g class=\"series\" data-series=\"" + std::to_string(s) + "\">";
  const size_t at = svg.find(group);
  if (at == std::string::npos) return "";
  const std::string key = "<path class=\"" + cls + "\" d=\"";
  const size_t p = svg.find(key, at);
  if (p == std::string::npos) return "";
  return svg.substr(p + key.size(), svg.find('"', p + key.size()) - p - key.size());
}

// y of each y-axis tick, keyed by its label (the label's baseline sits 4 px below the tick).
std::map<std::string, double> YTicks(const std::string& svg) {
  std::map<std::string, double> out;
  const size_t a = svg.find("<g class=\"y-axis\">"), b = svg.find("</g>", a);
  for (const Label& l : Texts(svg.substr(a, b - a), "tick-y")) out[l.text] = l.y - 4;
  return out;
}

void ExpectWellFormed(const std::string& svg, const std::string& what) {
  if (!HaveCommand("xmllint")) GTEST_SKIP() << "xmllint not installed (Debian libxml2-utils)";
  TempDir dir;
  const std::string file = dir.path() + "/chart.svg";
  std::ofstream(file) << svg;
  bool ok = false;
  const std::string out = Run("xmllint --noout " + file + " 2>&1", &ok);
  EXPECT_TRUE(ok && out.empty()) << what << ": xmllint says:\n" << out;
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u) << what;
}

std::vector<int32_t> Quarter() {
  std::vector<int32_t> d;
  for (int32_t x = kJul1; x <= kSep30; ++x) d.push_back(x);
  return d;
}

// ---- Numbers, dates, text ----

TEST(ChartNumbers, ThousandsSeparatorsAndRounding) {
  EXPECT_EQ(FormatNumber(0), "0");
  EXPECT_EQ(FormatNumber(999), "999");
  EXPECT_EQ(FormatNumber(1234567), "1,234,567");
  EXPECT_EQ(FormatNumber(123456), "123,456");
  EXPECT_EQ(FormatNumber(999.6), "1,000");
  EXPECT_EQ(FormatNumber(-1234.5, 1), "-1,234.5");
  EXPECT_EQ(FormatNumber(-0.001, 1), "0.0");
  EXPECT_EQ(FormatNumber(3.14159, 2), "3.14");
  EXPECT_EQ(FormatNumber(0.5), "0");
  EXPECT_EQ(FormatNumber(1.5), "2");
  EXPECT_EQ(FormatNumber(1234.5678, 2), "1,234.57");
  EXPECT_EQ(FormatNumber(NAN), "–");
  EXPECT_EQ(FormatNumber(INFINITY), "–");
}

TEST(ChartNumbers, NiceAxisForZeroTo1234) {
  const LinearAxis a = NiceLinearAxis(1234, Lang::kEn);
  EXPECT_EQ(a.step, 250);
  EXPECT_EQ(a.top, 1250);
  EXPECT_EQ(a.labels, (std::vector<std::string>{"0", "250", "500", "750", "1,000", "1,250"}));
}

TEST(ChartNumbers, NiceAxisSteps) {
  EXPECT_EQ(NiceLinearAxis(1000, Lang::kEn).top, 1000);  // max on a tick: no extra step
  EXPECT_EQ(NiceLinearAxis(1000, Lang::kEn).step, 200);
  EXPECT_EQ(NiceLinearAxis(7, Lang::kEn).labels,
            (std::vector<std::string>{"0", "2", "4", "6", "8"}));
  EXPECT_EQ(NiceLinearAxis(0.037, Lang::kEn).labels,
            (std::vector<std::string>{"0", "0.01", "0.02", "0.03", "0.04"}));
  EXPECT_EQ(NiceLinearAxis(851.3, Lang::kEn).labels,
            (std::vector<std::string>{"0", "200", "400", "600", "800", "1,000"}));
  // Nothing to scale: a unit axis, never NaN.
  for (double bad : {0.0, -5.0, double{NAN}, double{INFINITY}}) {
    const LinearAxis a = NiceLinearAxis(bad, Lang::kEn);
    EXPECT_EQ(a.top, 1);
    EXPECT_EQ(a.labels.back(), "1.0");  // one number of decimals per axis
  }
}

TEST(ChartNumbers, MillionsAbbreviatedPerLanguage) {
  EXPECT_EQ(NiceLinearAxis(2'345'678, Lang::kEn).labels,
            (std::vector<std::string>{"0", "0.5M", "1.0M", "1.5M", "2.0M", "2.5M"}));
  EXPECT_EQ(NiceLinearAxis(2'345'678, Lang::kJa).labels,
            (std::vector<std::string>{"0", "50万", "100万", "150万", "200万", "250万"}));
  EXPECT_EQ(NiceLinearAxis(4.2e9, Lang::kEn).labels,
            (std::vector<std::string>{"0", "1B", "2B", "3B", "4B", "5B"}));
  EXPECT_EQ(NiceLinearAxis(4.2e9, Lang::kJa).labels,
            (std::vector<std::string>{"0", "10億", "20億", "30億", "40億", "50億"}));
  EXPECT_EQ(NiceLinearAxis(3.2e12, Lang::kEn).labels.back(), "4T");
  EXPECT_EQ(NiceLinearAxis(3.2e12, Lang::kJa).labels.back(), "4兆");
  EXPECT_EQ(NiceLinearAxis(1e308, Lang::kEn).labels.back(), "1,000,000T");  // clamped at 10^18
  // Below a million: full digits with separators; a top of exactly a million switches.
  EXPECT_EQ(NiceLinearAxis(654'321, Lang::kJa).labels.back(), "800,000");
  EXPECT_EQ(NiceLinearAxis(987'654, Lang::kJa).labels.back(), "100万");
}

TEST(ChartDates, LocalisedDayAndMonthLabels) {
  EXPECT_EQ(DayLabel(17755, Lang::kEn), "Aug 12");  // 2018-08-12
  EXPECT_EQ(DayLabel(17755, Lang::kJa), "8/12");
  EXPECT_EQ(DayLabel(kJul1, Lang::kJa), "7/1");
  EXPECT_EQ(MonthLabel(17755, Lang::kEn), "Aug");
  EXPECT_EQ(MonthLabel(17755, Lang::kJa), "8月");
  EXPECT_EQ(MonthLabel(17755, Lang::kEn, true), "Aug 2018");
  EXPECT_EQ(MonthLabel(17755, Lang::kJa, true), "2018年8月");
  EXPECT_EQ(DayLabel(-1, Lang::kEn), "Dec 31");  // 1969-12-31
}

TEST(ChartText, HostileTextIsEscapedCleanedAndBounded) {
  EXPECT_EQ(XmlText("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
  EXPECT_EQ(XmlText("a\xff"
                    "b"),
            "a\xEF\xBF\xBD"
            "b");                                                // invalid byte → U+FFFD
  EXPECT_EQ(XmlText("\xC0\xAF"), "\xEF\xBF\xBD");                // overlong '/'
  EXPECT_EQ(XmlText("\xED\xA0\x80"), "\xEF\xBF\xBD");            // a surrogate
  EXPECT_EQ(XmlText("a\x01\x1b[31mb\tc"), "a[31mb c");           // controls dropped, tab → space
  EXPECT_EQ(XmlText("evil\xE2\x80\xAEgnp.exe"), "evilgnp.exe");  // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(XmlText("abcdefgh", 5), "abcd…");
  EXPECT_EQ(XmlText("中国", 5), "中国");
  EXPECT_EQ(XmlText("\xEF\xBF\xBE"), "\xEF\xBF\xBD");  // U+FFFE is not an XML character
}

// ---- Lines ----

TEST(ChartLines, MaxMapsToTopTickAndPointsScaleLinearly) {
  TimeChart c;
  c.days = {kJul1, kJul1 + 1, kJul1 + 2, kJul1 + 3, kJul1 + 4};
  c.series = {{"23/TCP", {0, 250, 1000, 500, 750}}};
  const std::string svg = Lines(c);
  const auto ticks = YTicks(svg);
  ASSERT_EQ(ticks.size(), 6u);  // 0, 200, …, 1,000
  ASSERT_TRUE(ticks.count("0") && ticks.count("1,000") && ticks.count("200"));
  const double y0 = ticks.at("0"), y1000 = ticks.at("1,000");
  EXPECT_NEAR(ticks.at("200"), y0 + (y1000 - y0) * 0.2, 0.06);
  const auto pts = Points(SeriesPath(svg, 0, "line"));
  ASSERT_EQ(pts.size(), 5u);
  EXPECT_NEAR(pts[2].second, y1000, 0.06);  // the max on the top tick
  EXPECT_NEAR(pts[0].second, y0, 0.06);
  EXPECT_NEAR(pts[3].second, (y0 + y1000) / 2, 0.06);
  EXPECT_NEAR(pts[1].second, y0 + (y1000 - y0) / 4, 0.06);
  // Consecutive days evenly spaced from the left end of the axis to its right end.
  const std::regex base("class=\"x-baseline\" x1=\"([-0-9.]+)\" y1=\"[-0-9.]+\" x2=\"([-0-9.]+)\"");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, base));
  const double x0 = std::stod(m[1]), x1 = std::stod(m[2]);
  EXPECT_EQ(x1, 720 - 16);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(pts[i].first, x0 + (x1 - x0) * i / 4, 0.06);
  ExpectWellFormed(svg, "lines");
}

// Ten years of days on a 600 px axis: at most four points per half-pixel column are kept, and
// the one spike still reaches the top tick.
TEST(ChartLines, LongSeriesAreThinnedPerPixelColumnKeepingPeaks) {
  TimeChart c;
  std::vector<double> vals;
  for (int i = 0; i < 3653; ++i) {
    c.days.push_back(16436 + i);  // 2015-01-01 …
    vals.push_back(i == 1777 ? 1000 : 100 + (i % 7) * 10);
  }
  c.series = {{"9600/TCP", vals}};
  const std::string svg = Lines(c);
  const auto pts = Points(SeriesPath(svg, 0, "line"));
  const std::regex base("class=\"x-baseline\" x1=\"([-0-9.]+)\" y1=\"[-0-9.]+\" x2=\"([-0-9.]+)\"");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, base));
  const double plot_w = std::stod(m[2]) - std::stod(m[1]);
  EXPECT_LE(pts.size(), static_cast<size_t>(4 * 2 * (plot_w + 1)));
  EXPECT_GT(pts.size(), static_cast<size_t>(2 * plot_w));  // every column still has its extremes
  const double top = YTicks(svg).at("1,000");
  EXPECT_EQ(std::count_if(pts.begin(), pts.end(),
                          [&](const auto& p) { return std::fabs(p.second - top) < 0.06; }),
            1);
  for (size_t i = 1; i < pts.size(); ++i) EXPECT_GE(pts[i].first, pts[i - 1].first);
  EXPECT_LT(svg.size(), 60'000u);
}

TEST(ChartLines, UnsortedDaysAreSortedWithTheirValues) {
  TimeChart c;
  c.days = {kJul1 + 2, kJul1, kJul1 + 1};
  c.series = {{"s", {1000, 0, 500}}};
  const auto pts = Points(SeriesPath(Lines(c), 0, "line"));
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_LT(pts[0].first, pts[1].first);
  EXPECT_GT(pts[0].second, pts[1].second);  // 0 below 500 below 1000 (y grows downwards)
  EXPECT_GT(pts[1].second, pts[2].second);
}

TEST(ChartLines, QuarterGetsWeeklyMondayTicksOrHalfMonthsWhenNarrow) {
  TimeChart c;
  c.days = Quarter();
  c.series = {{"s", std::vector<double>(c.days.size(), 5)}};
  std::string svg = Lines(c);
  // Q3 2018's Mondays (2 July 2018 was a Monday), the year once under the first.
  EXPECT_EQ(
      TextsOnly(svg, "tick-x"),
      (std::vector<std::string>{"Jul 2", "Jul 9", "Jul 16", "Jul 23", "Jul 30", "Aug 6", "Aug 13",
                                "Aug 20", "Aug 27", "Sep 3", "Sep 10", "Sep 17", "Sep 24"}));
  EXPECT_EQ(TextsOnly(svg, "tick-year"), (std::vector<std::string>{"2018"}));
  c.lang = Lang::kJa;
  EXPECT_EQ(TextsOnly(Lines(c), "tick-x").front(), "7/2");
  c.lang = Lang::kEn;
  c.width = 400;
  svg = Lines(c);
  EXPECT_EQ(TextsOnly(svg, "tick-x"),
            (std::vector<std::string>{"Jul 1", "Jul 16", "Aug 1", "Aug 16", "Sep 1", "Sep 16"}));
}

TEST(ChartLines, YearsGetQuarterOrYearTicks) {
  TimeChart c;
  for (int32_t d = 16709; d <= kSep30; ++d) c.days.push_back(d);  // 2015-10-01 … 2018-09-30
  c.series = {{"9600/TCP", std::vector<double>(c.days.size(), 3)}};
  c.lang = Lang::kJa;
  const std::string svg = Lines(c);
  EXPECT_EQ(TextsOnly(svg, "tick-x"),
            (std::vector<std::string>{"10月", "1月", "4月", "7月", "10月", "1月", "4月", "7月",
                                      "10月", "1月", "4月", "7月"}));
  EXPECT_EQ(TextsOnly(svg, "tick-year"),
            (std::vector<std::string>{"2015年", "2016年", "2017年", "2018年"}));
  // Twenty years: one label per year or fewer, no year line.
  c.days.clear();
  for (int32_t d = 10957; d <= 10957 + 7305; ++d) c.days.push_back(d);  // 2000-01-01 …
  c.series[0].values.assign(c.days.size(), 1);
  c.lang = Lang::kEn;
  const auto labels = TextsOnly(Lines(c), "tick-x");
  ASSERT_GE(labels.size(), 4u);
  EXPECT_EQ(labels.front(), "2000");
  EXPECT_LE(labels.size(), 21u);
  EXPECT_TRUE(TextsOnly(Lines(c), "tick-year").empty());
}

TEST(ChartLines, ExtremeDateRangesStayBoundedAndWellFormed) {
  TimeChart c;
  c.days = {-1'000'000'000, 0, 1'000'000'000};  // ±2.7 million years
  c.series = {{"s", {1, 2, 3}}};
  const std::string svg = Lines(c);
  const auto labels = TextsOnly(svg, "tick-x");
  EXPECT_GE(labels.size(), 2u);
  EXPECT_LE(labels.size(), 20u);
  ExpectWellFormed(svg, "extreme range");
}

TEST(ChartLines, MonthlyCategories) {
  TimeChart c;
  c.monthly = true;
  c.days = {13573, 13604, 13634, 13665, 13695, 13726};  // 2007-03 … 2007-08
  c.series = {{"accesses", {1012, 968, 930, 902, 880, 851}}};
  const std::string svg = Lines(c);
  EXPECT_EQ(TextsOnly(svg, "tick-x"),
            (std::vector<std::string>{"Mar", "Apr", "May", "Jun", "Jul", "Aug"}));
  EXPECT_EQ(TextsOnly(svg, "tick-year"), (std::vector<std::string>{"2007"}));
}

TEST(ChartLines, LogScaleTicksAreDecadesWithGapsForZero) {
  TimeChart c;
  c.scale = Scale::kLog;
  c.days = {kJul1, kJul1 + 1, kJul1 + 2, kJul1 + 3};
  c.series = {{"s", {1, 0, 1000, 999'999}}};
  const std::string svg = Lines(c);
  EXPECT_EQ(TextsOnly(svg, "tick-y"),
            (std::vector<std::string>{"1", "10", "100", "1,000", "10,000", "100,000", "1M"}));
  const std::string d = SeriesPath(svg, 0, "line");
  EXPECT_EQ(std::count(d.begin(), d.end(), 'M'), 2) << d;  // the zero breaks the line
  const auto ticks = YTicks(svg);
  const auto pts = Points(d);
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_NEAR(pts[0].second, ticks.at("1"), 0.06);
  EXPECT_NEAR(pts[1].second, ticks.at("1,000"), 0.06);
}

TEST(ChartLines, StackedAreasSumAndOtherGoesOnTopInGrey) {
  TimeChart c;
  c.stacked = true;
  c.days = {kJul1, kJul1 + 1, kJul1 + 2};
  c.series = {{"other", {10, 10, 10}, true}, {"CN", {100, 300, 200}}, {"VN", {50, 20, 0}}};
  const std::string svg = Lines(c);
  const auto ticks = YTicks(svg);
  ASSERT_TRUE(ticks.count("0") && ticks.count("400"));  // total max 330 → 0, 100, …, 400
  const double y0 = ticks.at("0"), k = (ticks.at("400") - y0) / 400;
  // Drawn order: CN, VN, other; each top is the running sum.
  const double sums[3][3] = {{100, 300, 200}, {150, 320, 200}, {160, 330, 210}};
  for (int s = 0; s < 3; ++s) {
    const auto pts = Points(SeriesPath(svg, s, "top"));
    ASSERT_EQ(pts.size(), 3u) << s;
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(pts[i].second, y0 + k * sums[s][i], 0.06) << s;
  }
  const size_t other = svg.find("<g class=\"series\" data-series=\"2\">");
  ASSERT_NE(other, std::string::npos);
  EXPECT_EQ(svg.compare(svg.find("fill=\"", other) + 6, 7, "#999999"), 0);
  ExpectWellFormed(svg, "stacked");
}

TEST(ChartLines, EmptyZeroAndNonFiniteGiveNoData) {
  TimeChart empty;
  std::vector<TimeChart> cases(4);
  cases[1].days = Quarter();
  cases[2].days = Quarter();
  cases[2].series = {{"zeros", std::vector<double>(92, 0)}};
  cases[3].days = {kJul1, kJul1 + 1};
  cases[3].series = {{"bad", {NAN, -INFINITY}}, {"neg", {-5, INFINITY}}};
  for (TimeChart& c : cases) {
    for (Lang lang : {Lang::kEn, Lang::kJa}) {
      c.lang = lang;
      const std::string svg = Lines(c);
      EXPECT_NE(svg.find(lang == Lang::kJa ? "データなし" : "No data"), std::string::npos);
      EXPECT_EQ(svg.find("nan"), std::string::npos);
      EXPECT_EQ(svg.find("inf"), std::string::npos);
      ExpectWellFormed(svg, "no data");
    }
  }
  // One usable series beside a broken one: drawn, and still no NaN anywhere.
  TimeChart c;
  c.days = {kJul1, kJul1 + 1};
  c.series = {{"ok", {3, 4}}, {"bad", {NAN, INFINITY}}};
  const std::string svg = Lines(c);
  EXPECT_EQ(svg.find("No data"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  // A single day.
  c.days = {kJul1};
  c.series = {{"one", {7}}};
  ExpectWellFormed(Lines(c), "one day");
}

const char* const kHostile[] = {
    "<script>alert(1)</script>", "a & b \"q\" 'q'",        "]]> --> <!--",    "中国 (China) 日本",
    "bad\xff\xfe utf8 \xC0\xAF", "ctl\x01\x02\x1b[0m\x7f", "rlo\xE2\x80\xAE", "&amp; &#0; &#x1;"};

TEST(ChartEscaping, HostileNamesEverywhereStayWellFormed) {
  TimeChart t;
  t.title = kHostile[0];
  t.description = kHostile[1];
  t.y_label = kHostile[2];
  t.days = Quarter();
  for (const char* h : kHostile) t.series.push_back({h, std::vector<double>(92, 10)});
  t.markers = {{kJul1 + 10, kHostile[0]}, {kJul1 + 11, kHostile[4]}};
  t.id = "<id\">";
  ShareChart s;
  s.title = kHostile[5];
  for (const char* h : kHostile) s.part_names.push_back(h);
  s.row_labels = {kHostile[0], kHostile[3]};
  s.shares = {std::vector<double>(8, 0.1), std::vector<double>(8, 0.05)};
  s.center_text = kHostile[2];
  BarsAndLineChart b;
  b.title = kHostile[6];
  b.days = {13573, 13604};
  b.bars = {kHostile[0], {1, 2}};
  b.line = {kHostile[1], {3, 4}};
  b.y_label = kHostile[3];
  b.y2_label = kHostile[4];
  std::vector<std::pair<std::string, std::string>> svgs;
  for (Lang lang : {Lang::kEn, Lang::kJa}) {
    t.lang = s.lang = b.lang = lang;
    svgs.push_back({"lines", Lines(t)});
    t.stacked = true;
    svgs.push_back({"stacked", Lines(t)});
    t.stacked = false;
    s.donut = false;
    svgs.push_back({"share bars", Shares(s)});
    s.donut = true;
    svgs.push_back({"donut", Shares(s)});
    svgs.push_back({"bars and line", BarsAndLine(b)});
  }
  for (const auto& [what, svg] : svgs) {
    EXPECT_EQ(svg.find("<script"), std::string::npos) << what;
    EXPECT_EQ(svg.find("<!--"), std::string::npos) << what;
    EXPECT_EQ(svg.find('\x01'), std::string::npos) << what;
    EXPECT_EQ(svg.find("\xE2\x80\xAE"), std::string::npos) << what;
    EXPECT_NE(svg.find("&lt;script&gt;"), std::string::npos) << what;
    ExpectWellFormed(svg, what);
  }
  EXPECT_NE(svgs[0].second.find("id=\"id-title\""), std::string::npos);  // the id, cleaned
  EXPECT_NE(svgs[0].second.find("中国 (China) 日本"), std::string::npos);
}

// Random bytes for every string, random values (NaN, ±inf, negatives, huge), random dates: every
// chart stays well-formed XML and free of NaN. A fixed seed keeps failures reproducible.
TEST(ChartEscaping, RandomHostileInputsStayWellFormed) {
  std::mt19937_64 rng(20181001);
  auto bytes = [&](size_t max) {
    std::string s(rng() % (max + 1), '\0');
    for (char& ch : s) ch = static_cast<char>(rng() % 256);
    return s;
  };
  auto value = [&]() {
    switch (rng() % 8) {
      case 0:
        return double{NAN};
      case 1:
        return double{INFINITY};
      case 2:
        return -1.0 * (rng() % 1000);
      case 3:
        return 1e15 * (rng() % 7);
      case 4:
        return 0.0;
      default:
        return static_cast<double>(rng() % 100000) / 7;
    }
  };
  for (int round = 0; round < 12; ++round) {
    const Lang lang = round % 2 ? Lang::kJa : Lang::kEn;
    TimeChart t;
    t.lang = lang;
    t.title = bytes(40);
    t.y_label = bytes(40);
    t.id = bytes(10);
    t.stacked = round % 3 == 0;
    t.scale = round % 4 == 1 ? Scale::kLog : Scale::kLinear;
    t.monthly = round % 5 == 2;
    const int32_t start = static_cast<int32_t>(rng() % 40000);
    const size_t n = rng() % 120;
    for (size_t i = 0; i < n; ++i) t.days.push_back(start + static_cast<int32_t>(rng() % 400));
    for (size_t s = 0, ns = rng() % 10; s < ns; ++s) {
      Series ser{bytes(80), {}, rng() % 4 == 0};
      for (size_t i = 0, nv = rng() % 130; i < nv; ++i) ser.values.push_back(value());
      t.series.push_back(std::move(ser));
    }
    for (size_t m = 0, nm = rng() % 4; m < nm; ++m)
      t.markers.push_back({start + static_cast<int32_t>(rng() % 400), bytes(30)});
    const std::string lines = Lines(t);
    EXPECT_EQ(lines.find("nan"), std::string::npos) << round;
    ExpectWellFormed(lines, "random lines " + std::to_string(round));

    ShareChart sc;
    sc.lang = lang;
    sc.donut = round % 2 == 0;
    sc.center_text = bytes(20);
    sc.other_part = static_cast<int>(rng() % 5) - 1;
    for (size_t p = 0, np = rng() % 9; p < np; ++p) sc.part_names.push_back(bytes(50));
    for (size_t r = 0, nr = rng() % 7; r < nr; ++r) {
      sc.row_labels.push_back(bytes(20));
      std::vector<double> row;
      for (size_t p = 0, np = rng() % 10; p < np; ++p) row.push_back(value() / 1e5);
      sc.shares.push_back(std::move(row));
    }
    const std::string shares = Shares(sc);
    EXPECT_EQ(shares.find("nan"), std::string::npos) << round;
    ExpectWellFormed(shares, "random shares " + std::to_string(round));

    BarsAndLineChart b;
    b.lang = lang;
    b.monthly = round % 2 == 1;
    for (size_t i = 0, nb = rng() % 15; i < nb; ++i) {
      b.days.push_back(start + static_cast<int32_t>(31 * i));
      b.bars.values.push_back(value());
      if (rng() % 3) b.line.values.push_back(value());
    }
    b.bars.name = bytes(30);
    b.line.name = bytes(30);
    b.y_label = bytes(30);
    b.y2_label = bytes(30);
    const std::string bl = BarsAndLine(b);
    EXPECT_EQ(bl.find("nan"), std::string::npos) << round;
    ExpectWellFormed(bl, "random bars and line " + std::to_string(round));
  }
}

TEST(ChartEscaping, LongNamesAreShortenedWithTheFullNameAsTooltip) {
  TimeChart c;
  c.days = {kJul1, kJul1 + 1};
  const std::string long_name = "445/TCP " + std::string(400, 'x');
  c.series = {{long_name, {1, 2}}};
  const std::string svg = Lines(c);
  EXPECT_NE(svg.find("…</text>"), std::string::npos);
  // The tooltip keeps up to 200 characters, not all 408.
  EXPECT_NE(svg.find("<title>445/TCP " + std::string(190, 'x')), std::string::npos);
  EXPECT_EQ(svg.find(std::string(300, 'x')), std::string::npos);
}

TEST(ChartSvg, AccessibleScalableDeterministic) {
  TimeChart c;
  c.title = "Figure 1";
  c.days = {kJul1, kJul1 + 1};
  c.series = {{"23/TCP", {1, 2}}};
  const std::string a = Lines(c);
  EXPECT_EQ(a, Lines(c));
  EXPECT_NE(a.find("role=\"img\""), std::string::npos);
  EXPECT_NE(a.find("viewBox=\"0 0 720.0 "), std::string::npos);
  EXPECT_NE(a.find("Noto Sans CJK JP"), std::string::npos);
  EXPECT_NE(a.find(">Figure 1</title>"), std::string::npos);
  EXPECT_NE(a.find("23/TCP: peak 2 on 2018-07-02."), std::string::npos);
  // Different charts get different id prefixes unless the caller names them.
  c.series[0].values = {2, 1};
  const std::string b = Lines(c);
  const std::regex id("aria-labelledby=\"([^ ]+)-title");
  std::smatch ma, mb;
  ASSERT_TRUE(std::regex_search(a, ma, id));
  ASSERT_TRUE(std::regex_search(b, mb, id));
  EXPECT_NE(ma[1], mb[1]);
  c.id = "fig1";
  EXPECT_NE(Lines(c).find("aria-labelledby=\"fig1-title fig1-desc\""), std::string::npos);
  EXPECT_NE(Lines(c).find("id=\"fig1-h1\""), std::string::npos);
}

// ---- Shares ----

TEST(ChartShares, SegmentsAreProportionalAndTheRemainderIsOther) {
  ShareChart c;
  c.row_labels = {"2018Q3"};
  c.part_names = {"23/TCP", "445/TCP"};
  c.shares = {{0.5, 0.25}};
  const std::string svg = Shares(c);
  for (const char* p : {"50.0%", "25.0%"}) EXPECT_NE(svg.find(p), std::string::npos) << p;
  EXPECT_NE(svg.find(">Other</text>"), std::string::npos);
  // Segment widths: rectangles "M x y H x2 …" inside the row.
  const size_t row = svg.find("<g class=\"row\" data-row=\"0\">");
  const std::regex seg("<path d=\"M([-0-9.]+) [-0-9.]+H([-0-9.]+)V[^\"]*\" fill=\"(#[0-9A-F]+)\"");
  std::vector<std::pair<double, std::string>> widths;
  const std::string rest = svg.substr(row, svg.find("</g>", row) - row);
  for (auto it = std::sregex_iterator(rest.begin(), rest.end(), seg); it != std::sregex_iterator();
       ++it)
    widths.push_back({std::stod((*it)[2]) - std::stod((*it)[1]), (*it)[3]});
  ASSERT_EQ(widths.size(), 3u);
  EXPECT_NEAR(widths[0].first, 2 * widths[1].first, 0.15);
  EXPECT_NEAR(widths[2].first, widths[1].first, 0.15);
  EXPECT_EQ(widths[0].second, "#0072B2");
  EXPECT_EQ(widths[2].second, "#999999");
  ExpectWellFormed(svg, "shares");
}

TEST(ChartShares, OverfullRowsAreScaledAndSixMonthsShareColours) {
  ShareChart c;
  c.part_names = {"a", "b"};
  c.shares = {{0.6, 0.6}};
  std::string svg = Shares(c);
  EXPECT_NE(svg.find(">50.0%<"), std::string::npos);
  EXPECT_EQ(svg.find(">Other<"), std::string::npos);
  c.lang = Lang::kJa;
  c.shares = {{0.1, 0.2}};
  svg = Shares(c);
  EXPECT_NE(svg.find(">その他</text>"), std::string::npos);
  // Six rows, one label each, same part order.
  c.row_labels.clear();
  c.shares.clear();
  for (int32_t m : {13573, 13604, 13634, 13665, 13695, 13726}) {
    c.row_labels.push_back(MonthLabel(m, Lang::kJa, true));
    c.shares.push_back({0.3, 0.2});
  }
  svg = Shares(c);
  EXPECT_EQ(TextsOnly(svg, "row-label"),
            (std::vector<std::string>{"2007年3月", "2007年4月", "2007年5月", "2007年6月",
                                      "2007年7月", "2007年8月"}));
  ExpectWellFormed(svg, "six months");
}

TEST(ChartShares, DonutIncludingAFullRingAndNoData) {
  ShareChart c;
  c.donut = true;
  c.part_names = {"JP"};
  c.shares = {{1.0}};
  std::string svg = Shares(c);
  EXPECT_NE(svg.find("100.0%"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  ExpectWellFormed(svg, "full ring");
  c.part_names = {"JP", "CN", "US"};
  c.shares = {{0.6, 0.3, 0.0}};
  svg = Shares(c);
  ExpectWellFormed(svg, "donut");
  EXPECT_NE(svg.find("60.0%"), std::string::npos);
  EXPECT_NE(svg.find("10.0%"), std::string::npos);  // the remainder
  c.shares = {{0, 0, 0}};
  EXPECT_NE(Shares(c).find("No data"), std::string::npos);
  c.shares.clear();
  EXPECT_NE(Shares(c).find("No data"), std::string::npos);
  c.donut = false;
  EXPECT_NE(Shares(c).find("No data"), std::string::npos);
}

// ---- Bars and line ----

TEST(ChartBarsAndLine, BarsOnTheLeftAxisLineOnTheRight) {
  BarsAndLineChart c;
  c.days = {13573, 13604, 13634};
  c.bars = {"accesses", {1000, 500, 250}};
  c.line = {"sources", {400, 300, 200}};
  const std::string svg = BarsAndLine(c);
  const auto left = YTicks(svg);
  ASSERT_TRUE(left.count("1,000"));
  // The first bar reaches the top tick; the second half-way.
  const std::regex bar("<path d=\"M([-0-9.]+) ([-0-9.]+)H[-0-9.]+V([-0-9.]+)H");
  std::vector<std::pair<double, double>> bars;
  const size_t at = svg.find("<g class=\"bars\">");
  const std::string rest = svg.substr(at, svg.find("</g>", at) - at);
  for (auto it = std::sregex_iterator(rest.begin(), rest.end(), bar); it != std::sregex_iterator();
       ++it)
    bars.push_back({std::stod((*it)[2]), std::stod((*it)[3])});
  ASSERT_EQ(bars.size(), 3u);
  EXPECT_NEAR(bars[0].first, left.at("1,000"), 0.06);
  EXPECT_NEAR(bars[1].first, (left.at("0") + left.at("1,000")) / 2, 0.06);
  EXPECT_NEAR(bars[0].second, left.at("0"), 0.06);
  // Right axis for 400: 0, 100, …, 400 and the line's first point on "400".
  const size_t r = svg.find("<g class=\"y2-axis\">");
  std::map<std::string, double> right;
  for (const Label& l : Texts(svg.substr(r, svg.find("</g>", r) - r), "tick-y"))
    right[l.text] = l.y - 4;
  EXPECT_EQ(right.size(), 5u);
  const std::string d = svg.substr(svg.find("<path class=\"line\" d=\"") + 22);
  EXPECT_NEAR(Points(d.substr(0, d.find('"')))[0].second, right.at("400"), 0.06);
  EXPECT_EQ(TextsOnly(svg, "tick-x"), (std::vector<std::string>{"Mar", "Apr", "May"}));
  ExpectWellFormed(svg, "bars and line");
  c.bars.values = {0, 0, 0};
  c.line.values = {};
  EXPECT_NE(BarsAndLine(c).find("No data"), std::string::npos);
}

}  // namespace
}  // namespace teiten::chart
