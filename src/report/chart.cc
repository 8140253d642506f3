#include "report/chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/time_zone.h"

namespace teiten::chart {
namespace {

// Latin text also comes from Noto Sans CJK JP, so Japanese and English charts look alike.
constexpr const char* kFontFamily =
    "'Noto Sans CJK JP','Noto Sans JP','Hiragino Sans','Yu Gothic',Meiryo,'DejaVu Sans',"
    "sans-serif";

// Okabe & Ito (2008), in the order the charts hand them out. `dark`: white text reads on it.
struct Colour {
  const char* hex;
  bool dark;
};
constexpr Colour kPalette[] = {
    {"#0072B2", true},  {"#E69F00", false}, {"#009E73", true},  {"#D55E00", true},
    {"#CC79A7", false}, {"#56B4E9", false}, {"#F0E442", false}, {"#000000", true},
};
constexpr int kPaletteSize = 8;
// Lines skip the yellow, which is too pale as a thin stroke on white.
constexpr int kLineColours[] = {0, 1, 2, 3, 4, 5, 7};
constexpr int kLineColourCount = 7;
constexpr Colour kOther = {"#999999", false};
// Dash patterns and marker shapes: 6 of each, coprime with the 7 line colours.
constexpr const char* kDash[] = {"", "7 3", "2 2.5", "9 3 2 3", "4 2", "12 3 2 3 2 3"};
constexpr int kStyleCount = 6;
constexpr int kHatchCount = 7;  // hatch 0 is none

constexpr double kTickFont = 11;
constexpr double kLegendFont = 12;
constexpr double kLegendRow = 18;

const char* NoDataText(Lang lang) {
  return lang == Lang::kJa ? "データなし" : "No data";
}
const char* OtherText(Lang lang) {
  return lang == Lang::kJa ? "その他" : "Other";
}

// ---- Text: cleaning, escaping, measuring ----

// Decodes UTF-8; each invalid, overlong or surrogate sequence becomes U+FFFD.
std::u32string DecodeUtf8(std::string_view s, size_t max_chars) {
  std::u32string out;
  size_t i = 0;
  while (i < s.size() && out.size() < max_chars) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    char32_t cp = 0xFFFD;
    size_t len = 1;
    if (b0 < 0x80) {
      cp = b0;
    } else {
      int need = 0;
      char32_t min = 0;
      if ((b0 & 0xE0) == 0xC0) {
        need = 1, cp = b0 & 0x1F, min = 0x80;
      } else if ((b0 & 0xF0) == 0xE0) {
        need = 2, cp = b0 & 0x0F, min = 0x800;
      } else if ((b0 & 0xF8) == 0xF0) {
        need = 3, cp = b0 & 0x07, min = 0x10000;
      }
      bool ok = need > 0;
      for (int k = 1; ok && k <= need; ++k) {
        if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
          ok = false;
          len = k;  // resynchronise at the first byte that is not a continuation
        } else {
          cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
        }
      }
      if (ok) {
        len = need + 1;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
      } else {
        cp = 0xFFFD;
      }
    }
    i += len;
    out.push_back(cp);
  }
  return out;
}

// What may be shown: XML 1.0 characters without controls or invisible direction overrides (which
// could make a hostile name read as something else).
std::u32string Clean(std::string_view s, size_t max_chars) {
  // Decode a little more than asked so that truncation can say it truncated.
  const std::u32string in = DecodeUtf8(s, max_chars + 1);
  std::u32string out;
  for (char32_t c : in) {
    if (c == U'\t' || c == U'\n' || c == U'\r') {
      c = U' ';
    } else if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) {
      continue;
    } else if (c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) ||
               (c >= 0x2066 && c <= 0x2069)) {
      continue;
    } else if (c == 0xFFFE || c == 0xFFFF) {
      c = 0xFFFD;
    }
    out.push_back(c);
  }
  if (out.size() > max_chars && max_chars > 0) {
    out.resize(max_chars - 1);
    out.push_back(U'…');
  }
  return out;
}

void AppendUtf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string Escape(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) {
    switch (c) {
      case U'&':
        out += "&amp;";
        break;
      case U'<':
        out += "&lt;";
        break;
      case U'>':
        out += "&gt;";
        break;
      case U'"':
        out += "&quot;";
        break;
      case U'\'':
        out += "&#39;";
        break;
      default:
        AppendUtf8(out, c);
    }
  }
  return out;
}

bool IsWide(char32_t c) {
  return (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF) ||
         (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
         (c >= 0xFFE0 && c <= 0xFFE6) || c >= 0x1F300;
}

// An estimate of the rendered width, on the generous side so that laid-out text never overlaps:
// full width for CJK, about half for Latin (Noto Sans CJK's Latin is proportional).
double CharWidth(char32_t c) {
  if (IsWide(c)) return 1.0;
  if (c == U' ' || c == U'.' || c == U',' || c == U':' || c == U';' || c == U'\'' || c == U'|' ||
      c == U'!' || c == U'i' || c == U'l' || c == U'j' || c == U'I' || c == U'(' || c == U')' ||
      c == U'/' || c == U'[' || c == U']' || c == U'f' || c == U't' || c == U'r')
    return 0.34;
  if (c == U'M' || c == U'W' || c == U'm' || c == U'w' || c == U'@' || c == U'%') return 0.85;
  if (c >= U'A' && c <= U'Z') return 0.66;
  return 0.56;
}

double TextWidth(const std::u32string& s, double font_size) {
  double w = 0;
  for (char32_t c : s) w += CharWidth(c);
  return w * font_size;
}
double TextWidth(std::string_view utf8, double font_size) {
  return TextWidth(DecodeUtf8(utf8, 400), font_size);
}

// Cleaned, truncated to fit `max_width` at `font_size` (with "…"), escaped.
struct Fitted {
  std::string xml;
  double width = 0;
  bool truncated = false;
};
Fitted Fit(std::string_view raw, double max_width, double font_size, size_t max_chars = 120) {
  std::u32string s = Clean(raw, max_chars);
  Fitted f;
  double w = TextWidth(s, font_size);
  if (w > max_width) {
    const double ell = CharWidth(U'…') * font_size;
    double acc = 0;
    size_t keep = 0;
    while (keep < s.size() && acc + CharWidth(s[keep]) * font_size + ell <= max_width) {
      acc += CharWidth(s[keep]) * font_size;
      ++keep;
    }
    s.resize(keep);
    s.push_back(U'…');
    w = acc + ell;
    f.truncated = true;
  }
  f.xml = Escape(s);
  f.width = w;
  return f;
}

// A coordinate, always finite, one decimal, never "-0.0".
std::string N(double v) {
  if (!std::isfinite(v)) v = 0;
  std::string s = fmt::format("{:.1f}", v);
  if (s == "-0.0") s = "0.0";
  return s;
}

// Counts and averages: non-finite and negative values count as 0, and beyond 10^18 (no counter
// reaches it) values are clamped so that axis arithmetic cannot overflow.
double Sane(double v) {
  return std::isfinite(v) && v > 0 ? std::min(v, 1e18) : 0;
}

// ---- Numbers ----

int DecimalsFor(double step) {
  for (int d = 0; d <= 6; ++d) {
    const double scaled = step * std::pow(10.0, d);
    if (std::fabs(scaled - std::round(scaled)) < 1e-6 * std::max(1.0, scaled)) return d;
  }
  return 6;
}

// The axis unit for labels whose largest value is `top`: 1, or M/B/T (en), 万/億/兆 (ja).
struct Unit {
  double div = 1;
  const char* suffix = "";
};
Unit UnitFor(double top, Lang lang) {
  if (lang == Lang::kJa) {
    if (top >= 1e12) return {1e12, "兆"};
    if (top >= 1e9) return {1e8, "億"};
    if (top >= 1e6) return {1e4, "万"};
  } else {
    if (top >= 1e12) return {1e12, "T"};
    if (top >= 1e9) return {1e9, "B"};
    if (top >= 1e6) return {1e6, "M"};
  }
  return {};
}

std::string UnitLabel(double v, const Unit& u, int decimals) {
  if (v == 0) return "0";
  return FormatNumber(v / u.div, decimals) + u.suffix;
}

// A value in prose (<desc>): whole numbers as such, small averages with a few decimals.
std::string ValueText(double v) {
  if (v >= 100 || v == std::round(v)) return FormatNumber(v, 0);
  if (v >= 1) return FormatNumber(v, 1);
  return FormatNumber(v, 3);
}

// ---- Dates ----

std::string YearLabel(int y, Lang lang) {
  return lang == Lang::kJa ? fmt::format("{}年", y) : fmt::format("{}", y);
}
constexpr const char* kMonthsEn[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// ---- The SVG document ----

// Element ids in the body are written as "\x01" + suffix; Finish() replaces "\x01" with the
// chart's prefix. Cleaned caller text never contains U+0001, so only our ids are touched.
constexpr char kIdMark = '\x01';

std::string SanitizeId(std::string_view id) {
  std::string out;
  for (char c : id) {
    if (out.size() >= 40) break;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
        c == '-')
      out.push_back(c);
  }
  if (!out.empty() && !((out[0] >= 'A' && out[0] <= 'Z') || (out[0] >= 'a' && out[0] <= 'z')))
    out.insert(out.begin(), 'c');
  return out;
}

uint64_t Fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

std::string Finish(std::string_view id, double width, double height, std::string_view title,
                   const std::string& desc, const std::string& body) {
  const std::string title_xml = Escape(Clean(title, 300));
  std::string prefix = SanitizeId(id);
  if (prefix.empty()) {
    uint64_t h = Fnv1a(body);
    h = Fnv1a(title_xml, h);
    h = Fnv1a(desc, h);
    h = Fnv1a(fmt::format("{}x{}", N(width), N(height)), h);
    prefix = fmt::format("ch{:012x}", h & 0xFFFFFFFFFFFFull);
  }
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" "
      "height=\"{h}\" role=\"img\" aria-labelledby=\"{p}-title {p}-desc\" font-family=\"{f}\" "
      "font-size=\"{fs}\" style=\"max-width:100%;height:auto;background:#fff\">"
      "<title id=\"{p}-title\">{t}</title><desc id=\"{p}-desc\">{d}</desc>",
      fmt::arg("w", N(width)), fmt::arg("h", N(height)), fmt::arg("p", prefix),
      fmt::arg("f", kFontFamily), fmt::arg("fs", N(kTickFont)), fmt::arg("t", title_xml),
      fmt::arg("d", desc));
  out.reserve(out.size() + body.size() + 16);
  for (char c : body) {
    if (c == kIdMark)
      out += prefix;
    else
      out.push_back(c);
  }
  out += "</svg>";
  return out;
}

std::string NoData(std::string_view id, int width, int height, std::string_view title,
                   const std::string& description, Lang lang) {
  const double w = std::clamp(width, 120, 4000);
  const double h = std::clamp(height, 60, 4000);
  std::string body = fmt::format(
      "<rect class=\"frame\" x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"{}\" fill=\"#fff\" "
      "stroke=\"#bbb\"/><text class=\"nodata\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
      "font-size=\"16\" fill=\"#555\">{}</text>",
      N(w - 1), N(h - 1), N(w / 2), N(h / 2 + 6), NoDataText(lang));
  std::string desc = Escape(Clean(description, 400));
  if (!desc.empty()) desc += " ";
  desc += NoDataText(lang);
  return Finish(id, w, h, title, desc, body);
}

// Hatch patterns for fills (index 1..6), white strokes over the fill colour.
std::string HatchDefs() {
  std::string d = "<defs>";
  const char* common = "width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\"";
  const char* line =
      "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#fff\" stroke-width=\"1.4\" "
      "stroke-opacity=\"0.7\"/>";
  d += fmt::format("<pattern id=\"{}-h1\" {} patternTransform=\"rotate(45)\">{}</pattern>", kIdMark,
                   common, line);
  d += fmt::format(
      "<pattern id=\"{}-h2\" {}><circle cx=\"3\" cy=\"3\" r=\"1.2\" fill=\"#fff\" "
      "fill-opacity=\"0.75\"/></pattern>",
      kIdMark, common);
  d += fmt::format("<pattern id=\"{}-h3\" {} patternTransform=\"rotate(90)\">{}</pattern>", kIdMark,
                   common, line);
  d += fmt::format("<pattern id=\"{}-h4\" {} patternTransform=\"rotate(-45)\">{}</pattern>",
                   kIdMark, common, line);
  d += fmt::format(
      "<pattern id=\"{}-h5\" {} patternTransform=\"rotate(45)\">{}<line x1=\"0\" y1=\"3\" "
      "x2=\"6\" y2=\"3\" stroke=\"#fff\" stroke-width=\"1.4\" stroke-opacity=\"0.7\"/></pattern>",
      kIdMark, common, line);
  d += fmt::format("<pattern id=\"{}-h6\" {}>{}</pattern>", kIdMark, common, line);
  d += "</defs>";
  return d;
}

// How series `index` is drawn.
struct Style {
  Colour colour;
  const char* dash;
  int marker;  // 0..5
  int hatch;   // 0 none, 1..6
};
Style LineStyle(int index, bool other) {
  Style s{kPalette[kLineColours[index % kLineColourCount]], kDash[index % kStyleCount],
          index % kStyleCount, 0};
  if (other) s.colour = kOther, s.dash = "3 2";
  return s;
}
Style FillStyle(int index, bool other) {
  Style s{kPalette[index % kPaletteSize], "", 0, index % kHatchCount};
  if (other) s.colour = kOther, s.hatch = 0;
  return s;
}

std::string MarkerShape(int shape, double x, double y, const char* colour) {
  const double r = 3.2;
  switch (shape) {
    case 0:
      return fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"/>", N(x), N(y), N(r),
                         colour);
    case 1:
      return fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>",
                         N(x - r), N(y - r), N(2 * r), N(2 * r), colour);
    case 2:
      return fmt::format("<path d=\"M{} {}L{} {}L{} {}Z\" fill=\"{}\"/>", N(x), N(y - r - 0.6),
                         N(x + r + 0.4), N(y + r - 0.4), N(x - r - 0.4), N(y + r - 0.4), colour);
    case 3:
      return fmt::format("<path d=\"M{} {}L{} {}L{} {}L{} {}Z\" fill=\"{}\"/>", N(x),
                         N(y - r - 0.6), N(x + r + 0.6), N(y), N(x), N(y + r + 0.6), N(x - r - 0.6),
                         N(y), colour);
    case 4:
      return fmt::format(
          "<path d=\"M{} {}L{} {}M{} {}L{} {}\" stroke=\"{}\" stroke-width=\"1.8\" "
          "fill=\"none\"/>",
          N(x - r), N(y - r), N(x + r), N(y + r), N(x - r), N(y + r), N(x + r), N(y - r), colour);
    default:
      return fmt::format(
          "<path d=\"M{} {}L{} {}M{} {}L{} {}\" stroke=\"{}\" stroke-width=\"1.8\" "
          "fill=\"none\"/>",
          N(x - r - 0.5), N(y), N(x + r + 0.5), N(y), N(x), N(y - r - 0.5), N(x), N(y + r + 0.5),
          colour);
  }
}

// A filled shape with its hatch on top.
std::string FilledPath(const std::string& d, const Style& s, const char* extra = "") {
  std::string out = fmt::format("<path d=\"{}\" fill=\"{}\"{}/>", d, s.colour.hex, extra);
  if (s.hatch > 0)
    out += fmt::format("<path d=\"{}\" fill=\"url(#{}-h{})\"/>", d, kIdMark, s.hatch);
  return out;
}
std::string RectPath(double x, double y, double w, double h) {
  return fmt::format("M{} {}H{}V{}H{}Z", N(x), N(y), N(x + w), N(y + h), N(x));
}

// ---- Legend ----

enum class Swatch { kLine, kFill };
struct LegendItem {
  std::string name;
  Style style;
  Swatch swatch;
};

struct Legend {
  std::string svg;
  double height = 0;
};

// Items left to right, wrapping onto new rows; long names are shortened with "…" and keep their
// full text in a <title> (a tooltip on screen).
Legend LayoutLegend(const std::vector<LegendItem>& items, double x0, double x1, double y0) {
  Legend lg;
  if (items.empty()) return lg;
  const double swatch_w = 22, gap = 5, spacing = 16;
  const double max_text = std::max(60.0, std::min(300.0, (x1 - x0) - swatch_w - gap));
  double x = x0;
  int row = 0;
  lg.svg = "<g class=\"legend\">";
  for (const LegendItem& it : items) {
    Fitted f = Fit(it.name, max_text, kLegendFont);
    const double w = swatch_w + gap + f.width;
    if (x > x0 && x + w > x1) {
      x = x0;
      ++row;
    }
    const double cy = y0 + row * kLegendRow + kLegendRow / 2;
    lg.svg += "<g class=\"legend-item\">";
    if (f.truncated) lg.svg += "<title>" + Escape(Clean(it.name, 200)) + "</title>";
    if (it.swatch == Swatch::kLine) {
      lg.svg += fmt::format(
          "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"{}/>",
          N(x), N(cy), N(x + swatch_w), N(cy), it.style.colour.hex,
          *it.style.dash ? fmt::format(" stroke-dasharray=\"{}\"", it.style.dash) : "");
      lg.svg += MarkerShape(it.style.marker, x + swatch_w / 2, cy, it.style.colour.hex);
    } else {
      lg.svg += FilledPath(RectPath(x + 4, cy - 6, 14, 12), it.style);
    }
    lg.svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"{}\">{}</text>",
                          N(x + swatch_w + gap), N(cy + 4), N(kLegendFont), f.xml);
    lg.svg += "</g>";
    x += w + spacing;
  }
  lg.svg += "</g>";
  lg.height = (row + 1) * kLegendRow + 6;
  return lg;
}

// ---- Axes ----

struct YAxis {
  bool log = false;
  double top = 1;                 // linear: value at the top
  double lo_exp = 0, hi_exp = 1;  // log: decades at the bottom and top
  std::vector<double> ticks;
  std::vector<std::string> labels;

  // y of value v in a plot from y_top to y_bottom; log: values ≤ 0 return NaN (a gap).
  double Map(double v, double y_top, double y_bottom) const {
    if (log) {
      if (!(v > 0)) return NAN;
      const double f = (std::log10(v) - lo_exp) / (hi_exp - lo_exp);
      return y_bottom - std::clamp(f, -0.02, 1.02) * (y_bottom - y_top);
    }
    return y_bottom - (v / top) * (y_bottom - y_top);
  }
};

YAxis MakeLinear(double max, Lang lang) {
  LinearAxis a = NiceLinearAxis(max, lang);
  YAxis y;
  y.top = a.top;
  y.ticks = std::move(a.ticks);
  y.labels = std::move(a.labels);
  return y;
}

YAxis MakeLog(double min_positive, double max, Lang lang) {
  YAxis y;
  y.log = true;
  y.lo_exp = std::floor(std::log10(min_positive));
  y.hi_exp = std::ceil(std::log10(max));
  if (y.hi_exp <= y.lo_exp) y.hi_exp = y.lo_exp + 1;
  // At most about seven labels: every decade, or every second, third … decade.
  const int span = static_cast<int>(y.hi_exp - y.lo_exp);
  const int every = std::max(1, (span + 5) / 6);
  for (int e = static_cast<int>(y.lo_exp); e <= static_cast<int>(y.hi_exp); e += every) {
    const double v = std::pow(10.0, e);
    y.ticks.push_back(v);
    y.labels.push_back(UnitLabel(v, UnitFor(v, lang), e < 0 ? -e : 0));
  }
  return y;
}

struct XLabel {
  double x;
  std::string text;  // escaped
  std::string year;  // second line, escaped, or empty
};

enum class DateLevel { kDay, kWeek, kSemiMonth, kMonth, kQuarter, kHalfYear, kYear };

// Tick days for dates from `d0` to `d1` at `level` (years: every `year_step` years).
std::vector<int32_t> DateTicks(int32_t d0, int32_t d1, DateLevel level, int year_step) {
  std::vector<int32_t> out;
  if (level <= DateLevel::kSemiMonth) {
    for (int32_t d = d0; d <= d1; ++d) {
      const CivilDate c = TimeZone::CivilOf(d);
      bool take = level == DateLevel::kDay ||
                  (level == DateLevel::kWeek && ((d % 7) + 7 + 3) % 7 == 0) ||  // Mondays
                  (level == DateLevel::kSemiMonth && (c.d == 1 || c.d == 16));
      if (take) out.push_back(d);
    }
    return out;
  }
  const CivilDate c0 = TimeZone::CivilOf(d0);
  int y = c0.y;
  unsigned m = c0.m;
  if (level == DateLevel::kYear) {
    // Straight to the first January 1st in range on a multiple of the step.
    y = c0.m == 1 && c0.d == 1 ? c0.y : c0.y + 1;
    y += ((year_step - y % year_step) % year_step);
    m = 1;
  }
  for (;;) {
    const int32_t d = TimeZone::DaysFromCivil(y, m, 1);
    if (d > d1) break;
    bool take = false;
    switch (level) {
      case DateLevel::kMonth:
        take = true;
        break;
      case DateLevel::kQuarter:
        take = (m - 1) % 3 == 0;
        break;
      case DateLevel::kHalfYear:
        take = m == 1 || m == 7;
        break;
      default:
        take = true;
        break;
    }
    if (d >= d0 && take) out.push_back(d);
    if (level == DateLevel::kYear) {
      y += year_step;
    } else if (++m > 12) {
      m = 1;
      ++y;
    }
  }
  return out;
}

std::string TickText(int32_t day, DateLevel level, Lang lang) {
  if (level <= DateLevel::kSemiMonth) return DayLabel(day, lang);
  if (level <= DateLevel::kHalfYear) return MonthLabel(day, lang);
  return YearLabel(TimeZone::CivilOf(day).y, lang);
}

// Adds the year line under the first tick and under each tick whose year differs from the last.
void AddYears(std::vector<XLabel>& labels, const std::vector<int32_t>& days, Lang lang) {
  int last_year = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const int y = TimeZone::CivilOf(days[i]).y;
    if (i == 0 || y != last_year) labels[i].year = YearLabel(y, lang);
    last_year = y;
  }
}

// Labels for a continuous date axis from d0 to d1 mapped onto [x0, x1]: the finest calendar level
// whose labels do not crowd each other.
std::vector<XLabel> DateAxis(int32_t d0, int32_t d1, double x0, double x1, Lang lang) {
  auto xof = [&](int32_t d) {
    return d1 == d0 ? (x0 + x1) / 2 : x0 + (x1 - x0) * (double(d) - d0) / (double(d1) - d0);
  };
  const double span_days = static_cast<double>(d1) - d0;
  auto fits = [&](const std::vector<int32_t>& ticks, DateLevel level) {
    double prev_right = -1e9;
    for (int32_t d : ticks) {
      const double w = TextWidth(TickText(d, level, lang), kTickFont) + 10;
      const double x = xof(d);
      if (x - w / 2 < prev_right) return false;
      prev_right = x + w / 2;
    }
    return true;
  };
  std::vector<int32_t> chosen;
  DateLevel level = DateLevel::kYear;
  bool found = false;
  for (DateLevel l : {DateLevel::kDay, DateLevel::kWeek, DateLevel::kSemiMonth, DateLevel::kMonth,
                      DateLevel::kQuarter, DateLevel::kHalfYear}) {
    if (l <= DateLevel::kSemiMonth && span_days > 1500) continue;
    if (span_days > 400 * 31) break;
    std::vector<int32_t> t = DateTicks(d0, d1, l, 1);
    if (t.empty()) continue;  // a short range with no 1st of a month: try finer? already tried
    if (fits(t, l)) {
      chosen = std::move(t);
      level = l;
      found = true;
      break;
    }
  }
  if (!found) {
    const double years = span_days / 365.25;
    for (int step : {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10000, 100000, 1000000}) {
      if (years / step > 60) continue;
      std::vector<int32_t> t = DateTicks(d0, d1, DateLevel::kYear, step);
      if (fits(t, DateLevel::kYear)) {
        chosen = std::move(t);
        break;
      }
    }
  }
  std::vector<XLabel> out;
  for (int32_t d : chosen) out.push_back({xof(d), Escape(Clean(TickText(d, level, lang), 20)), ""});
  if (level != DateLevel::kYear) AddYears(out, chosen, lang);
  return out;
}

// Labels for evenly spaced categories (months or days) with centres at x0 + (i + 0.5) * band:
// every k-th category, k the smallest of 1, 2, 3, 4, 6, 12, … that leaves room.
std::vector<XLabel> CategoryAxis(const std::vector<int32_t>& days, bool monthly, double x0,
                                 double band, Lang lang) {
  std::vector<XLabel> out;
  if (days.empty()) return out;
  double widest = 0;
  for (int32_t d : days) {
    const std::string t = monthly ? MonthLabel(d, lang) : DayLabel(d, lang);
    widest = std::max(widest, TextWidth(t, kTickFont));
  }
  int every = 1;
  for (int k : {1, 2, 3, 4, 6, 12, 24, 60, 120, 600, 1200}) {
    every = k;
    if (band * k >= widest + 10) break;
  }
  std::vector<int32_t> shown;
  for (size_t i = 0; i < days.size(); i += every) {
    const int32_t d = days[i];
    out.push_back({x0 + (i + 0.5) * band,
                   Escape(Clean(monthly ? MonthLabel(d, lang) : DayLabel(d, lang), 20)), ""});
    shown.push_back(d);
  }
  AddYears(out, shown, lang);
  return out;
}

double MaxLabelWidth(const std::vector<std::string>& labels) {
  double w = 0;
  for (const std::string& l : labels) w = std::max(w, TextWidth(l, kTickFont));
  return w;
}

// Horizontal gridlines and tick labels; `right`: labels on the right of x1 instead of left of x0.
std::string DrawYAxis(const YAxis& axis, double x0, double x1, double y_top, double y_bottom,
                      bool right, bool grid) {
  std::string s = fmt::format("<g class=\"{}\">", right ? "y2-axis" : "y-axis");
  for (size_t i = 0; i < axis.ticks.size(); ++i) {
    const double y = axis.Map(axis.ticks[i], y_top, y_bottom);
    if (grid && axis.ticks[i] != (axis.log ? axis.ticks.front() : 0.0))
      s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#dddddd\"/>", N(x0),
                       N(y), N(x1), N(y));
    s += fmt::format(
        "<text class=\"tick-y\" x=\"{}\" y=\"{}\" text-anchor=\"{}\" fill=\"#333\">{}</text>",
        N(right ? x1 + 6 : x0 - 6), N(y + 4), right ? "start" : "end",
        Escape(Clean(axis.labels[i], 30)));
  }
  s += "</g>";
  return s;
}

std::string DrawXLabels(const std::vector<XLabel>& labels, double y_bottom, double width, bool grid,
                        double y_top) {
  std::string s = "<g class=\"x-axis\">";
  for (const XLabel& l : labels) {
    if (grid)
      s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#eeeeee\"/>", N(l.x),
                       N(y_top), N(l.x), N(y_bottom));
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>", N(l.x),
                     N(y_bottom), N(l.x), N(y_bottom + 4));
    // Keep labels at the chart's edges inside the viewBox.
    double half = TextWidth(DecodeUtf8(l.text, 40), kTickFont) / 2;
    const double x = std::clamp(l.x, half + 2, std::max(half + 2, width - half - 2));
    s += fmt::format(
        "<text class=\"tick-x\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
        N(x), N(y_bottom + 18), l.text);
    if (!l.year.empty()) {
      half = TextWidth(DecodeUtf8(l.year, 40), kTickFont) / 2;
      s += fmt::format(
          "<text class=\"tick-year\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
          "fill=\"#333\">{}</text>",
          N(std::clamp(l.x, half + 2, std::max(half + 2, width - half - 2))), N(y_bottom + 33),
          l.year);
    }
  }
  s += "</g>";
  return s;
}

// A rotated axis title, shortened to the plot's height.
std::string AxisTitle(std::string_view text, double x, double y_top, double y_bottom,
                      const char* colour = "#333") {
  if (text.empty()) return "";
  Fitted f = Fit(text, y_bottom - y_top, kTickFont);
  return fmt::format(
      "<text class=\"axis-title\" x=\"{x}\" y=\"{y}\" transform=\"rotate(-90 {x} {y})\" "
      "text-anchor=\"middle\" fill=\"{c}\">{t}</text>",
      fmt::arg("x", N(x)), fmt::arg("y", N((y_top + y_bottom) / 2)), fmt::arg("c", colour),
      fmt::arg("t", f.xml));
}

// Text with a white outline, readable over lines and areas.
std::string HaloText(double x, double y, const char* anchor, const std::string& xml,
                     double font_size, const char* extra = "") {
  return fmt::format(
      "<text x=\"{}\" y=\"{}\" text-anchor=\"{}\" font-size=\"{}\" stroke=\"#fff\" "
      "stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\" fill=\"#222\"{}>{}"
      "</text>",
      N(x), N(y), anchor, N(font_size), extra, xml);
}

// A number on a filled segment, on a plate of the plain fill colour so hatching does not cross it.
std::string SegmentText(double x, double y, const Style& s, const std::string& text) {
  const double w = TextWidth(text, 10) + 2;
  return fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"12\" rx=\"2\" fill=\"{}\"/>"
      "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\" fill=\"{}\">{}</text>",
      N(x - w / 2), N(y - 9.5), N(w), s.colour.hex, N(x), N(y), s.colour.dark ? "#fff" : "#000",
      text);
}

std::string DayIso(int32_t d) {
  return TimeZone::DayString(d);
}
std::string MonthIso(int32_t d) {
  const CivilDate c = TimeZone::CivilOf(d);
  return fmt::format("{:04}-{:02}", c.y, c.m);
}

// The path through (xs[i], ys[i]); NaN ys are gaps. Where several points share a half-pixel
// column (years of days on a 600 px axis) only the column's first, lowest, highest and last
// points are kept: the drawing is the same, the SVG a fraction of the size.
std::string LinePath(const std::vector<double>& xs, const std::vector<double>& ys) {
  std::string d;
  bool pen_down = false;
  const size_t n = xs.size();
  for (size_t i = 0; i < n;) {
    if (std::isnan(ys[i])) {
      pen_down = false;
      ++i;
      continue;
    }
    const double column = std::floor(xs[i] * 2);
    size_t last = i, low = i, high = i;
    while (last + 1 < n && !std::isnan(ys[last + 1]) && std::floor(xs[last + 1] * 2) == column) {
      ++last;
      if (ys[last] < ys[low]) low = last;
      if (ys[last] > ys[high]) high = last;
    }
    size_t keep[4] = {i, low, high, last};
    std::sort(keep, keep + 4);
    for (int k = 0; k < 4; ++k) {
      if (k > 0 && keep[k] == keep[k - 1]) continue;
      d += fmt::format("{}{} {}", pen_down ? "L" : "M", N(xs[keep[k]]), N(ys[keep[k]]));
      pen_down = true;
    }
    i = last + 1;
  }
  return d;
}

}  // namespace

// ---- Public helpers ----

std::string DayLabel(int32_t day, Lang lang) {
  const CivilDate c = TimeZone::CivilOf(day);
  return lang == Lang::kJa ? fmt::format("{}/{}", c.m, c.d)
                           : fmt::format("{} {}", kMonthsEn[c.m - 1], c.d);
}

std::string MonthLabel(int32_t day, Lang lang, bool with_year) {
  const CivilDate c = TimeZone::CivilOf(day);
  if (lang == Lang::kJa)
    return with_year ? fmt::format("{}年{}月", c.y, c.m) : fmt::format("{}月", c.m);
  return with_year ? fmt::format("{} {}", kMonthsEn[c.m - 1], c.y) : kMonthsEn[c.m - 1];
}

std::string FormatNumber(double v, int decimals) {
  if (!std::isfinite(v)) return "–";
  decimals = std::clamp(decimals, 0, 9);
  std::string digits = fmt::format("{:.{}f}", std::fabs(v), decimals);
  const size_t point = digits.find('.');
  std::string int_part = digits.substr(0, point);
  const std::string frac = point == std::string::npos ? "" : digits.substr(point);
  std::string grouped;
  for (size_t i = 0; i < int_part.size(); ++i) {
    if (i > 0 && (int_part.size() - i) % 3 == 0) grouped.push_back(',');
    grouped.push_back(int_part[i]);
  }
  const bool zero = digits.find_first_not_of("0.") == std::string::npos;
  return (v < 0 && !zero ? "-" : "") + grouped + frac;
}

LinearAxis NiceLinearAxis(double max, Lang lang) {
  max = Sane(max);
  if (max <= 0) max = 1;
  LinearAxis a;
  const double raw = max / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double n = raw / mag;
  const double nice = n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10;
  a.step = nice * mag;
  int count = static_cast<int>(std::ceil(max / a.step - 1e-9));
  if (count * a.step < max) ++count;
  count = std::max(count, 1);
  a.top = count * a.step;
  const Unit unit = UnitFor(a.top, lang);
  const int decimals = DecimalsFor(a.step / unit.div);
  for (int i = 0; i <= count; ++i) {
    const double v = i * a.step;
    a.ticks.push_back(v);
    a.labels.push_back(UnitLabel(v, unit, decimals));
  }
  return a;
}

std::string XmlText(std::string_view text, size_t max_chars) {
  return Escape(Clean(text, max_chars));
}

// ---- Lines ----

std::string Lines(const TimeChart& c) {
  const double W = std::clamp(c.width, 240, 4000);
  const double H = std::clamp(c.height, 140, 4000);
  const size_t n = c.days.size();
  // Points in date order, values sanitised.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return c.days[a] < c.days[b]; });
  std::vector<int32_t> days(n);
  for (size_t i = 0; i < n; ++i) days[i] = c.days[order[i]];
  // "other" series go last (top of a stack, last in the legend).
  std::vector<size_t> sidx(c.series.size());
  std::iota(sidx.begin(), sidx.end(), 0);
  std::stable_partition(sidx.begin(), sidx.end(), [&](size_t s) { return !c.series[s].other; });
  const size_t ns = std::min<size_t>(sidx.size(), 64);  // bound what hostile input can ask for
  std::vector<std::vector<double>> v(ns, std::vector<double>(n, 0));
  for (size_t s = 0; s < ns; ++s) {
    const auto& vals = c.series[sidx[s]].values;
    for (size_t i = 0; i < n; ++i) v[s][i] = order[i] < vals.size() ? Sane(vals[order[i]]) : 0;
  }
  const bool log = c.scale == Scale::kLog && !c.stacked;
  double max = 0, min_pos = INFINITY;
  std::vector<std::vector<double>> cum;  // stacked: cumulative tops
  if (c.stacked) {
    cum = v;
    for (size_t s = 1; s < ns; ++s)
      for (size_t i = 0; i < n; ++i) cum[s][i] += cum[s - 1][i];
    for (size_t i = 0; i < n && ns > 0; ++i) max = std::max(max, cum[ns - 1][i]);
  } else {
    for (const auto& row : v)
      for (double x : row) {
        max = std::max(max, x);
        if (x > 0) min_pos = std::min(min_pos, x);
      }
  }
  if (n == 0 || ns == 0 || !(max > 0) || !std::isfinite(max))
    return NoData(c.id, static_cast<int>(W), static_cast<int>(H), c.title, c.description, c.lang);

  const YAxis axis = log ? MakeLog(min_pos, max, c.lang) : MakeLinear(max, c.lang);
  const double ylab_w = MaxLabelWidth(axis.labels);
  const double x0 = 8 + (c.y_label.empty() ? 0 : 16) + ylab_w + 8;
  const double x1 = W - 16;
  const double y_top = 12;
  const double y_bottom = H - 42;
  const double plot_w = x1 - x0;

  std::vector<double> xs(n);
  std::vector<XLabel> xlabels;
  if (c.monthly) {
    const double band = plot_w / n;
    for (size_t i = 0; i < n; ++i) xs[i] = x0 + (i + 0.5) * band;
    xlabels = CategoryAxis(days, true, x0, band, c.lang);
  } else {
    const int32_t d0 = days.front(), d1 = days.back();
    for (size_t i = 0; i < n; ++i)
      xs[i] = d1 == d0 ? (x0 + x1) / 2 : x0 + plot_w * (double(days[i]) - d0) / (double(d1) - d0);
    xlabels = DateAxis(d0, d1, x0, x1, c.lang);
  }

  std::string body = HatchDefs();
  body += DrawXLabels(xlabels, y_bottom, W, true, y_top);
  body += DrawYAxis(axis, x0, x1, y_top, y_bottom, false, true);
  body += AxisTitle(c.y_label, 14, y_top, y_bottom);

  std::vector<LegendItem> legend;
  int colour_index = 0;
  std::vector<Style> styles(ns);
  for (size_t s = 0; s < ns; ++s) {
    const bool other = c.series[sidx[s]].other;
    styles[s] = c.stacked ? FillStyle(colour_index, other) : LineStyle(colour_index, other);
    if (!other) ++colour_index;
    legend.push_back(
        {c.series[sidx[s]].name, styles[s], c.stacked ? Swatch::kFill : Swatch::kLine});
  }

  if (c.stacked) {
    body += "<g class=\"areas\">";
    for (size_t s = 0; s < ns; ++s) {
      std::string d;
      for (size_t i = 0; i < n; ++i)
        d += fmt::format("{}{} {}", i == 0 ? "M" : "L", N(xs[i]),
                         N(axis.Map(cum[s][i], y_top, y_bottom)));
      if (n == 1) d += fmt::format("L{} {}", N(xs[0] + 1), N(axis.Map(cum[s][0], y_top, y_bottom)));
      const std::string top_line = d;
      for (size_t k = n; k-- > 0;) {
        const double below = s == 0 ? 0 : cum[s - 1][k];
        d +=
            fmt::format("L{} {}", N(xs[k] + (n == 1 ? 1 : 0)), N(axis.Map(below, y_top, y_bottom)));
        if (n == 1) d += fmt::format("L{} {}", N(xs[0]), N(axis.Map(below, y_top, y_bottom)));
      }
      d += "Z";
      body += fmt::format("<g class=\"series\" data-series=\"{}\">", s);
      body += FilledPath(d, styles[s]);
      body += fmt::format(
          "<path class=\"top\" d=\"{}\" fill=\"none\" stroke=\"#fff\" stroke-width=\"0.8\"/>",
          top_line);
      body += "</g>";
    }
    body += "</g>";
  } else {
    body += "<g class=\"lines\">";
    // Markers every `every` points, staggered between series so they do not pile up.
    const size_t every = n <= 16 ? 1 : (n + 11) / 12;
    // Drawn last-first so that the first (largest) series is on top.
    for (size_t s = ns; s-- > 0;) {
      const Style& st = styles[s];
      std::vector<double> ys(n);
      for (size_t i = 0; i < n; ++i) ys[i] = axis.Map(v[s][i], y_top, y_bottom);
      const std::string d = LinePath(xs, ys);
      body += fmt::format("<g class=\"series\" data-series=\"{}\">", s);
      body += fmt::format(
          "<path class=\"line\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" "
          "stroke-linejoin=\"round\"{}/>",
          d, st.colour.hex, *st.dash ? fmt::format(" stroke-dasharray=\"{}\"", st.dash) : "");
      const size_t offset = every > 1 ? (s * every / std::max<size_t>(ns, 1)) % every : 0;
      for (size_t i = offset; i < n; i += every) {
        const double y = axis.Map(v[s][i], y_top, y_bottom);
        if (!std::isnan(y)) body += MarkerShape(st.marker, xs[i], y, st.colour.hex);
      }
      body += "</g>";
    }
    body += "</g>";
  }
  body += fmt::format(
      "<line class=\"x-baseline\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>", N(x0),
      N(y_bottom), N(x1), N(y_bottom));

  // Dated marks, labels in rows so that neighbours do not overlap.
  if (!c.markers.empty() && !c.monthly) {
    body += "<g class=\"markers\">";
    std::vector<double> row_right;
    const int32_t d0 = days.front(), d1 = days.back();
    size_t count = 0;
    for (const Marker& m : c.markers) {
      if (m.day < d0 || m.day > d1 || ++count > 20) continue;
      const double x =
          d1 == d0 ? (x0 + x1) / 2 : x0 + plot_w * (double(m.day) - d0) / (double(d1) - d0);
      Fitted f = Fit(m.label, plot_w / 2, 10);
      const bool left = x + 3 + f.width > x1;
      const double lx0 = left ? x - 3 - f.width : x + 3;
      size_t row = 0;
      while (row < row_right.size() && row_right[row] > lx0 - 4) ++row;
      if (row == row_right.size()) row_right.push_back(0);
      row_right[row] = lx0 + f.width;
      body += fmt::format(
          "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555\" stroke-dasharray=\"3 "
          "3\"/>",
          N(x), N(y_top), N(x), N(y_bottom));
      body += HaloText(left ? x - 3 : x + 3, y_top + 10 + 12 * static_cast<double>(row),
                       left ? "end" : "start", f.xml, 10);
    }
    body += "</g>";
  }

  const Legend lg = LayoutLegend(legend, x0, W - 8, H + 2);
  body += lg.svg;

  // <desc>: what is plotted and each series' peak.
  std::string desc = Escape(Clean(c.description, 400));
  if (!desc.empty()) desc += " ";
  const std::string from = c.monthly ? MonthIso(days.front()) : DayIso(days.front());
  const std::string to = c.monthly ? MonthIso(days.back()) : DayIso(days.back());
  if (c.lang == Lang::kJa)
    desc += fmt::format("{}から{}までの{}推移、{}系列{}。", from, to, c.monthly ? "月別" : "日別",
                        ns, c.stacked ? "（積み上げ）" : "");
  else
    desc += fmt::format("{} series from {} to {}, {} series{}.", c.monthly ? "Monthly" : "Daily",
                        from, to, ns, c.stacked ? ", stacked" : "");
  for (size_t s = 0; s < std::min<size_t>(ns, 20); ++s) {
    const size_t at = std::max_element(v[s].begin(), v[s].end()) - v[s].begin();
    const std::string when = c.monthly ? MonthIso(days[at]) : DayIso(days[at]);
    const std::string name = Escape(Clean(c.series[sidx[s]].name, 80));
    desc += c.lang == Lang::kJa
                ? fmt::format(" {}：最大{}（{}）。", name, ValueText(v[s][at]), when)
                : fmt::format(" {}: peak {} on {}.", name, ValueText(v[s][at]), when);
  }
  return Finish(c.id, W, H + lg.height, c.title, desc, body);
}

// ---- Shares ----

std::string Shares(const ShareChart& c) {
  const double W = std::clamp(c.width, 240, 4000);
  const size_t rows = std::min<size_t>(c.shares.size(), c.donut ? 1 : 48);
  const size_t parts = std::min<size_t>(c.part_names.size(), 64);
  // Sanitised rows: parts, then the remainder.
  std::vector<std::vector<double>> sh(rows, std::vector<double>(parts + 1, 0));
  bool any = false, remainder_used = false;
  for (size_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (size_t p = 0; p < parts; ++p) {
      sh[r][p] = p < c.shares[r].size() ? Sane(c.shares[r][p]) : 0;
      sum += sh[r][p];
    }
    if (sum > 1) {
      for (size_t p = 0; p < parts; ++p) sh[r][p] /= sum;
      sum = 1;
    }
    if (sum > 0 && c.remainder_as_other && 1 - sum > 0.0005) {
      sh[r][parts] = 1 - sum;
      remainder_used = true;
    }
    any = any || sum > 0;
  }
  const int default_h = c.donut ? 260 : static_cast<int>(34 * rows + 40);
  if (!any)
    return NoData(c.id, static_cast<int>(W), c.height > 0 ? c.height : std::max(default_h, 120),
                  c.title, c.description, c.lang);

  std::vector<std::string> names;
  std::vector<Style> styles;
  int colour_index = 0;
  for (size_t p = 0; p <= parts; ++p) {
    const bool other = p == parts || static_cast<int>(p) == c.other_part;
    names.push_back(p == parts ? OtherText(c.lang) : c.part_names[p]);
    styles.push_back(FillStyle(colour_index, other));
    if (!other) ++colour_index;
  }
  const size_t shown_parts = parts + (remainder_used ? 1 : 0);
  auto pct = [](double f) { return FormatNumber(f * 100, 1) + "%"; };

  std::string body = HatchDefs();
  std::string desc = Escape(Clean(c.description, 400));
  if (!desc.empty()) desc += " ";
  double H = 0;

  if (c.donut) {
    H = c.height > 0 ? std::clamp(c.height, 120, 4000) : 260;
    // Legend rows on the right may need more height than the donut.
    H = std::max(H, 24 + kLegendRow * static_cast<double>(shown_parts));
    const double R = std::min(H, 300.0) / 2 - 14;
    const double r = R * 0.58;
    const double cx = 14 + R, cy = H / 2;
    body += "<g class=\"donut\">";
    double a = -M_PI / 2;
    for (size_t p = 0; p < shown_parts; ++p) {
      const double f = sh[0][p];
      if (f < 1e-5) continue;
      const double b = a + 2 * M_PI * std::min(f, 1.0);
      std::string d;
      if (f >= 0.99995) {
        // A full ring: two half arcs (one arc cannot start and end at the same point).
        d = fmt::format(
            "M{} {}A{} {} 0 1 1 {} {}A{} {} 0 1 1 {} {}ZM{} {}A{} {} 0 1 0 {} {}A{} {} 0 1 0 {} "
            "{}Z",
            N(cx), N(cy - R), N(R), N(R), N(cx), N(cy + R), N(R), N(R), N(cx), N(cy - R), N(cx),
            N(cy - r), N(r), N(r), N(cx), N(cy + r), N(r), N(r), N(cx), N(cy - r));
      } else {
        const int large = b - a > M_PI ? 1 : 0;
        d = fmt::format("M{} {}A{} {} 0 {} 1 {} {}L{} {}A{} {} 0 {} 0 {} {}Z",
                        N(cx + R * std::cos(a)), N(cy + R * std::sin(a)), N(R), N(R), large,
                        N(cx + R * std::cos(b)), N(cy + R * std::sin(b)), N(cx + r * std::cos(b)),
                        N(cy + r * std::sin(b)), N(r), N(r), large, N(cx + r * std::cos(a)),
                        N(cy + r * std::sin(a)));
      }
      body += fmt::format("<g class=\"segment\" data-part=\"{}\">", p);
      body += FilledPath(d, styles[p], " stroke=\"#fff\" stroke-width=\"1\"");
      if (f >= 0.04) {
        const double m = (a + b) / 2, rm = (R + r) / 2;
        body += SegmentText(cx + rm * std::cos(m), cy + rm * std::sin(m) + 3.5, styles[p], pct(f));
      }
      body += "</g>";
      a = b;
    }
    if (!c.center_text.empty()) {
      Fitted f = Fit(c.center_text, 2 * r - 8, 14);
      body += fmt::format(
          "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\" "
          "font-weight=\"bold\">{}</text>",
          N(cx), N(cy + 5), f.xml);
    }
    body += "</g>";
    // Legend: swatch, name, percentage right-aligned.
    const double lx = cx + R + 28;
    // Percentages in a column just right of the longest name (as far as the width allows).
    const double name_w = std::max(40.0, W - 10 - 52 - (lx + 20));
    double longest = 0;
    for (size_t p = 0; p < shown_parts; ++p)
      longest = std::max(longest, Fit(names[p], name_w, kLegendFont).width);
    const double pct_x = lx + 20 + longest + 12 + TextWidth("100.0%", kLegendFont);
    const double ly0 = cy - kLegendRow * shown_parts / 2.0;
    body += "<g class=\"legend\">";
    for (size_t p = 0; p < shown_parts; ++p) {
      const double y = ly0 + kLegendRow * p + kLegendRow / 2;
      Fitted f = Fit(names[p], name_w, kLegendFont);
      body += "<g class=\"legend-item\">";
      if (f.truncated) body += "<title>" + Escape(Clean(names[p], 200)) + "</title>";
      body += FilledPath(RectPath(lx, y - 6, 14, 12), styles[p]);
      body += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"{}\">{}</text>", N(lx + 20),
                          N(y + 4), N(kLegendFont), f.xml);
      body += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"end\">{}</text>",
                          N(pct_x), N(y + 4), N(kLegendFont), pct(sh[0][p]));
      body += "</g>";
    }
    body += "</g>";
  } else {
    double label_w = 0;
    for (size_t r = 0; r < rows && r < c.row_labels.size(); ++r)
      label_w = std::max(label_w, Fit(c.row_labels[r], 160, kTickFont).width);
    const double x0 = 10 + (label_w > 0 ? label_w + 10 : 0);
    const double x1 = W - 16;
    const double bw = x1 - x0;
    const double bar_h = 22, gap = 10, y_top = 8;
    body += "<g class=\"bars\">";
    for (size_t r = 0; r < rows; ++r) {
      const double y = y_top + r * (bar_h + gap);
      if (r < c.row_labels.size()) {
        Fitted f = Fit(c.row_labels[r], 160, kTickFont);
        body += fmt::format(
            "<text class=\"row-label\" x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#333\">{}"
            "</text>",
            N(x0 - 8), N(y + bar_h / 2 + 4), f.xml);
      }
      body += fmt::format("<g class=\"row\" data-row=\"{}\">", r);
      double acc = 0;
      for (size_t p = 0; p < shown_parts; ++p) {
        const double f = sh[r][p];
        if (f <= 0) continue;
        const double x = x0 + acc * bw, w = f * bw;
        body += FilledPath(RectPath(x, y, w, bar_h), styles[p],
                           " stroke=\"#fff\" stroke-width=\"0.6\"");
        const std::string t = pct(f);
        if (TextWidth(t, 10) + 6 <= w)
          body += SegmentText(x + w / 2, y + bar_h / 2 + 3.5, styles[p], t);
        acc += f;
      }
      if (acc <= 0)
        body += fmt::format(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#bbb\"/>"
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            N(x0), N(y), N(bw), N(bar_h), N(x0 + bw / 2), N(y + bar_h / 2 + 4), NoDataText(c.lang));
      body += "</g>";
    }
    body += "</g>";
    const double axis_y = y_top + rows * (bar_h + gap) - gap + 4;
    body += "<g class=\"x-axis\">";
    for (int k = 0; k <= 4; ++k) {
      const double x = x0 + bw * k / 4;
      body += fmt::format(
          "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/><text class=\"tick-x\" "
          "x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}%</text>",
          N(x), N(axis_y), N(x), N(axis_y + 4), N(x), N(axis_y + 16), k * 25);
    }
    body += "</g>";
    H = axis_y + 24;
    if (c.height > 0) H = std::max(H, static_cast<double>(std::min(c.height, 4000)));
    std::vector<LegendItem> items;
    for (size_t p = 0; p < shown_parts; ++p) items.push_back({names[p], styles[p], Swatch::kFill});
    const Legend lg = LayoutLegend(items, x0, W - 8, H);
    body += lg.svg;
    H += lg.height;
  }

  // <desc>: each row's parts with their percentages.
  for (size_t r = 0; r < std::min<size_t>(rows, 12); ++r) {
    if (r < c.row_labels.size()) desc += Escape(Clean(c.row_labels[r], 40)) + ": ";
    for (size_t p = 0; p < std::min<size_t>(shown_parts, 20); ++p) {
      if (p > 0) desc += c.lang == Lang::kJa ? "、" : ", ";
      desc += Escape(Clean(names[p], 60)) + " " + pct(sh[r][p]);
    }
    desc += c.lang == Lang::kJa ? "。" : ". ";
  }
  return Finish(c.id, W, H, c.title, desc, body);
}

// ---- Bars and line ----

std::string BarsAndLine(const BarsAndLineChart& c) {
  const double W = std::clamp(c.width, 240, 4000);
  const double H = std::clamp(c.height, 140, 4000);
  const size_t n = std::min<size_t>(c.days.size(), 2000);
  std::vector<double> bars(n), line(n);
  double bmax = 0, lmax = 0;
  for (size_t i = 0; i < n; ++i) {
    bars[i] = i < c.bars.values.size() ? Sane(c.bars.values[i]) : 0;
    line[i] = i < c.line.values.size() ? Sane(c.line.values[i]) : 0;
    bmax = std::max(bmax, bars[i]);
    lmax = std::max(lmax, line[i]);
  }
  if (n == 0 || (bmax <= 0 && lmax <= 0))
    return NoData(c.id, static_cast<int>(W), static_cast<int>(H), c.title, c.description, c.lang);

  const YAxis left = MakeLinear(bmax, c.lang);
  const YAxis right = MakeLinear(lmax, c.lang);
  const Style bar_style = FillStyle(0, false);
  Style line_style = LineStyle(3, false);  // vermillion, dash-dot
  line_style.dash = "";
  line_style.marker = 0;
  const double x0 = 8 + (c.y_label.empty() ? 0 : 16) + MaxLabelWidth(left.labels) + 8;
  const double x1 = W - (8 + (c.y2_label.empty() ? 0 : 16) + MaxLabelWidth(right.labels) + 8);
  const double y_top = 14, y_bottom = H - 42;
  const double band = (x1 - x0) / n;

  std::string body = HatchDefs();
  body += DrawYAxis(left, x0, x1, y_top, y_bottom, false, true);
  body += DrawYAxis(right, x0, x1, y_top, y_bottom, true, false);
  body += AxisTitle(c.y_label, 14, y_top, y_bottom);
  body += AxisTitle(c.y2_label, W - 10, y_top, y_bottom, line_style.colour.hex);
  body += DrawXLabels(CategoryAxis(std::vector<int32_t>(c.days.begin(), c.days.begin() + n),
                                   c.monthly, x0, band, c.lang),
                      y_bottom, W, false, y_top);
  const bool labels = c.value_labels && n <= 12;
  body += "<g class=\"bars\">";
  for (size_t i = 0; i < n; ++i) {
    const double y = left.Map(bars[i], y_top, y_bottom);
    const double bx = x0 + (i + 0.2) * band, bw = band * 0.6;
    if (bars[i] > 0) body += FilledPath(RectPath(bx, y, bw, y_bottom - y), bar_style);
    if (labels) {
      const std::string t = FormatNumber(bars[i], bars[i] >= 100 ? 0 : 1);
      // Inside the bar at its foot, away from the line, which lives on its own scale above.
      if (y_bottom - y >= 18 && TextWidth(t, 10) + 4 <= bw)
        body += SegmentText(bx + bw / 2, y_bottom - 6, bar_style, t);
      else
        body += HaloText(bx + bw / 2, y - 4, "middle", t, 10);
    }
  }
  body += "</g>";
  body += fmt::format(
      "<line class=\"x-baseline\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>", N(x0),
      N(y_bottom), N(x1), N(y_bottom));
  body += "<g class=\"series line\">";
  std::string d;
  for (size_t i = 0; i < n; ++i)
    d += fmt::format("{}{} {}", i == 0 ? "M" : "L", N(x0 + (i + 0.5) * band),
                     N(right.Map(line[i], y_top, y_bottom)));
  body += fmt::format(
      "<path class=\"line\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" "
      "stroke-linejoin=\"round\"/>",
      d, line_style.colour.hex);
  for (size_t i = 0; i < n; ++i) {
    const double x = x0 + (i + 0.5) * band, y = right.Map(line[i], y_top, y_bottom);
    body += MarkerShape(0, x, y, line_style.colour.hex);
    if (labels)
      body += HaloText(
          x + 6, y - 6, "start", FormatNumber(line[i], line[i] >= 100 ? 0 : 1), 10,
          fmt::format(" fill-opacity=\"1\" style=\"fill:{}\"", line_style.colour.hex).c_str());
  }
  body += "</g>";
  const Legend lg = LayoutLegend(
      {{c.bars.name, bar_style, Swatch::kFill}, {c.line.name, line_style, Swatch::kLine}}, x0,
      W - 8, H + 2);
  body += lg.svg;

  std::string desc = Escape(Clean(c.description, 400));
  if (!desc.empty()) desc += " ";
  for (size_t i = 0; i < std::min<size_t>(n, 24); ++i) {
    const std::string when = c.monthly ? MonthIso(c.days[i]) : DayIso(c.days[i]);
    desc += fmt::format("{}: {} {}, {} {}. ", when, Escape(Clean(c.bars.name, 60)),
                        ValueText(bars[i]), Escape(Clean(c.line.name, 60)), ValueText(line[i]));
  }
  return Finish(c.id, W, H + lg.height, c.title, desc, body);
}

}  // namespace teiten::chart
