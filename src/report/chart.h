// Charts for reports: each function returns one self-contained `<svg>` element as a string, to be
// inlined into an HTML page (no JavaScript, no external fonts, files or network).
//
//   chart::TimeChart c;
//   c.title = "Figure 1: daily packets per sensor, top-5 ports";
//   c.days = {17713, 17714, ...};                  // local days since 1970-01-01
//   c.series = {{"23/TCP", {...}}, {"445/TCP", {...}}};
//   c.y_label = "packets per sensor";
//   html += chart::Lines(c);
//
// What every chart guarantees:
//  - Well-formed XML. Every caller-supplied string (series names, labels, titles — which may come
//    from network data) is cleaned (invalid UTF-8 and characters XML forbids become U+FFFD,
//    control and bidirectional-override characters are dropped), bounded in length, and escaped.
//  - role="img" with <title> and a generated <desc> (what is plotted, each series' peak).
//  - Sized by viewBox (width/height are the intrinsic size in CSS px; the SVG scales to its box
//    with max-width:100%, so it prints at A4 width).
//  - Text in a font stack that starts with "Noto Sans CJK JP" (Debian fonts-noto-cjk).
//  - The Okabe–Ito colour-blind-safe palette, "other" in grey; lines also differ by dash pattern
//    and point markers, areas and bars by hatching, so series stay apart in greyscale print.
//  - Deterministic: the same input gives the same bytes. Element ids (patterns) are prefixed with
//    `id` when given, else with a hash of the chart's content, so several charts can share a page.
//  - Empty input, all-zero or non-finite values give a framed "No data" / "データなし" chart; no
//    NaN or division by zero reaches the output. Negative and non-finite values count as 0.
//
// Numbers: axis labels use thousands separators (1,234,567). When the top of a linear axis
// reaches 1,000,000 the axis switches to one unit for all its labels, with one number of decimals:
// M / B / T in English (0, 0.5M, 1.0M), 万 / 億 / 兆 in Japanese (0, 50万, 100万). Log axes
// abbreviate each label the same way (1, 10, …, 100,000, 1M). Values beyond 10^18 are clamped.
// Shares print with one decimal ("12.3%").
//
// Bounds (input may be hostile): at most 64 series or parts, 48 share rows, 20 markers and 2,000
// bar categories are drawn; legend names are shortened with "…" to fit (the full name, up to 200
// characters, stays in a <title> tooltip); width and height are clamped to [240, 4000] and
// [140, 4000].
//
// Thread-safe: the functions are pure and may run concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace teiten::chart {

enum class Lang { kEn, kJa };
enum class Scale { kLinear, kLog };

// One series: a value per x point (missing trailing values count as 0, extra ones are ignored).
struct Series {
  std::string name;
  std::vector<double> values;
  bool other = false;  // the "other" remainder: grey, moved last (top of a stack, end of legend)
};

// A dated vertical mark with a label (an advisory, the start of an event).
struct Marker {
  int32_t day = 0;
  std::string label;
};

// A time series chart over days or months.
struct TimeChart {
  std::string id;           // optional element-id prefix ([A-Za-z0-9_-], other characters dropped)
  std::string title;        // <title>; the report's caption is separate
  std::string description;  // prepended to the generated <desc>
  // X points: local days since 1970-01-01, ascending (unsorted input is sorted, with its values).
  // With `monthly`, each is the first day of a month and points are spaced evenly.
  std::vector<int32_t> days;
  bool monthly = false;
  std::vector<Series> series;    // in legend order; with `stacked`, the first is at the bottom
  bool stacked = false;          // stacked areas (linear scale only)
  Scale scale = Scale::kLinear;  // kLog: decade ticks, values ≤ 0 leave gaps; ignored if stacked
  std::string y_label;  // e.g. "packets per sensor" / "パケット数（センサー平均）"
  std::vector<Marker> markers;  // daily charts only; marks outside the days are left out
  Lang lang = Lang::kEn;
  int width = 720;   // the SVG grows below `height` by the legend's rows
  int height = 300;  // plot, axes and tick labels
};
std::string Lines(const TimeChart& chart);

// Shares: rows (a period, or each of six months) of parts, each row's parts summing to at most 1
// (a larger sum is scaled down to 1). Drawn as 100 % stacked horizontal bars with percentages, or
// with `donut`, the first row as a donut with a legend of names and percentages.
struct ShareChart {
  std::string id;
  std::string title;
  std::string description;
  std::vector<std::string> row_labels;      // e.g. "2007-03" or MonthLabel(...); may be empty
  std::vector<std::string> part_names;      // colours follow part order, the same in every row
  std::vector<std::vector<double>> shares;  // [row][part], fractions of 1
  int other_part = -1;             // index of a part that is itself "other" (drawn grey), or -1
  bool remainder_as_other = true;  // 1 − sum shown as a grey "Other"/"その他" segment
  bool donut = false;
  std::string center_text;  // donut only: e.g. the total, "263,940"
  Lang lang = Lang::kEn;
  int width = 720;
  int height = 0;  // 0: derived from the rows (bars) or 260 (donut); the legend adds rows
};
std::string Shares(const ShareChart& chart);

// Bars per category with a line on a second (right) axis — TALOT2 Figure 1.1: accesses per sensor
// per day as bars, sources per sensor per day as a line, one category per month. Both axes start
// at 0 with their own round ticks; bars blue, the line vermillion with round markers (the right
// axis title is in the line's colour). Values print inside the bars' feet and beside the points.
struct BarsAndLineChart {
  std::string id;
  std::string title;
  std::string description;
  std::vector<int32_t> days;  // one per category; months (first days) when `monthly`, else days
  bool monthly = true;
  Series bars;
  Series line;
  std::string y_label;       // left axis (bars)
  std::string y2_label;      // right axis (line)
  bool value_labels = true;  // print each value when there are at most 12 categories
  Lang lang = Lang::kEn;
  int width = 720;
  int height = 300;  // the legend's row is added below
};
std::string BarsAndLine(const BarsAndLineChart& chart);

// Helpers the report shares with the charts, so text and figures agree.

// "Jul 1" / "7/1".
std::string DayLabel(int32_t day, Lang lang);
// "Aug" / "8月"; with_year: "Aug 2007" / "2007年8月".
std::string MonthLabel(int32_t day, Lang lang, bool with_year = false);
// 1234567 → "1,234,567"; `decimals` (0…9) digits after the point, rounded to nearest (an exact
// tie to even: 0.5 → "0", 1.5 → "2"); never "-0"; NaN and infinities → "–".
std::string FormatNumber(double v, int decimals = 0);

// The axis a linear scale from 0 draws for data whose largest value is `max`: about five
// intervals of a round step (1, 2, 2.5 or 5 × 10^k), the top the first step multiple ≥ max.
// A max that is not positive and finite gives the axis for 1; one beyond 10^18 that for 10^18.
struct LinearAxis {
  double step = 0;
  double top = 0;
  std::vector<double> ticks;        // 0, step, …, top
  std::vector<std::string> labels;  // formatted as the module comment says
};
LinearAxis NiceLinearAxis(double max, Lang lang);

// Replaces what XML cannot carry, drops controls and bidi overrides, truncates to at most
// `max_chars` code points (adding "…"), and escapes & < > " '. Exposed for the report's own text.
std::string XmlText(std::string_view text, size_t max_chars = 200);

}  // namespace teiten::chart
