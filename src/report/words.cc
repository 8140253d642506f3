#include "report/words.h"

#include <fmt/format.h>

#include <cmath>

#include "analysis/query.h"
#include "cli/table.h"
#include "common/time_zone.h"

namespace teiten::report {
namespace {

constexpr const char* kMonthsEn[] = {"January",   "February", "March",    "April",
                                     "May",       "June",     "July",     "August",
                                     "September", "October",  "November", "December"};

}  // namespace

std::string DayText(int32_t day, Lang lang) {
  CivilDate c = TimeZone::CivilOf(day);
  if (lang == Lang::kJa) return fmt::format("{}月{}日", c.m, c.d);
  return fmt::format("{} {}", kMonthsEn[c.m - 1], c.d);
}

std::string DayTextWithYear(int32_t day, Lang lang) {
  CivilDate c = TimeZone::CivilOf(day);
  if (lang == Lang::kJa) return fmt::format("{}年{}月{}日", c.y, c.m, c.d);
  return fmt::format("{} {}, {}", kMonthsEn[c.m - 1], c.d, c.y);
}

std::string MonthText(int year, int month, Lang lang) {
  if (lang == Lang::kJa) return fmt::format("{}年{}月", year, month);
  return fmt::format("{} {}", kMonthsEn[month - 1], year);
}

std::string MonthShort(int year, int month, Lang lang) {
  (void)year;
  if (lang == Lang::kJa) return fmt::format("{}月", month);
  return std::string(kMonthsEn[month - 1]).substr(0, 3);
}

std::string SpanText(const Period& p, Lang lang) {
  CivilDate a = TimeZone::CivilOf(p.first_day), b = TimeZone::CivilOf(p.end_day - 1);
  if (lang == Lang::kJa) {
    if (a.y == b.y) return fmt::format("{}年{}月{}日～{}月{}日", a.y, a.m, a.d, b.m, b.d);
    return fmt::format("{}年{}月{}日～{}年{}月{}日", a.y, a.m, a.d, b.y, b.m, b.d);
  }
  if (a.y == b.y) {
    return fmt::format("{} {} – {} {}, {}", kMonthsEn[a.m - 1], a.d, kMonthsEn[b.m - 1], b.d, a.y);
  }
  return fmt::format("{} {}, {} – {} {}, {}", kMonthsEn[a.m - 1], a.d, a.y, kMonthsEn[b.m - 1], b.d,
                     b.y);
}

std::string MonthRange(const Period& first, const Period& last, Lang lang) {
  CivilDate a = TimeZone::CivilOf(first.first_day), b = TimeZone::CivilOf(last.end_day - 1);
  if (lang == Lang::kJa) return fmt::format("{}年{}月～{}年{}月", a.y, a.m, b.y, b.m);
  return fmt::format("{} {} – {} {}", kMonthsEn[a.m - 1], a.y, kMonthsEn[b.m - 1], b.y);
}

std::string PeriodName(const Period& p, Lang lang) {
  CivilDate a = TimeZone::CivilOf(p.first_day), b = TimeZone::CivilOf(p.end_day - 1);
  switch (p.kind) {
    case Period::Kind::kMonth:
      return MonthText(p.year, p.index, lang);
    case Period::Kind::kQuarter:
      if (lang == Lang::kJa) return fmt::format("{} 年 {}～{} 月", a.y, a.m, b.m);
      return fmt::format("{}–{} {}", kMonthsEn[a.m - 1], kMonthsEn[b.m - 1], a.y);
    case Period::Kind::kDays:
      break;
  }
  return SpanText(p, lang);
}

std::string ThisPeriodWord(const Period& p, Lang lang) {
  bool ja = lang == Lang::kJa;
  switch (p.kind) {
    case Period::Kind::kQuarter:
      return ja ? "本四半期" : "this quarter";
    case Period::Kind::kMonth:
      return ja ? MonthText(p.year, p.index, lang) : MonthText(p.year, p.index, lang);
    case Period::Kind::kDays:
      break;
  }
  return ja ? "本期間" : "this period";
}

std::string PreviousPeriodWord(const Period& p, Lang lang) {
  bool ja = lang == Lang::kJa;
  switch (p.kind) {
    case Period::Kind::kQuarter:
      return ja ? "前四半期" : "the previous quarter";
    case Period::Kind::kMonth:
      return ja ? "前月" : "the previous month";
    case Period::Kind::kDays:
      break;
  }
  return ja ? "前期間" : "the previous period";
}

std::string Num(uint64_t v) {
  return Thousands(v);
}

std::string Dec(double v, int decimals) {
  if (!std::isfinite(v)) return "—";
  bool neg = v < 0;
  double a = std::fabs(v);
  double scale = std::pow(10.0, decimals);
  auto whole = static_cast<uint64_t>(std::floor(a));
  auto frac = static_cast<uint64_t>(std::llround((a - static_cast<double>(whole)) * scale));
  if (frac >= static_cast<uint64_t>(scale)) {
    ++whole;
    frac = 0;
  }
  std::string s = (neg ? "-" : "") + Thousands(whole);
  if (decimals > 0) s += fmt::format(".{:0{}}", frac, decimals);
  return s;
}

std::string Pct(double fraction) {
  return Dec(fraction * 100.0, 1) + "%";
}

std::string PortText(PortKey k) {
  if (PortKeyProto(k) == 1 || PortKeyProto(k) == 58) return PortKeyToString(k);
  return ServiceNames::Default().Describe(k);
}

std::string PortShort(PortKey k) {
  return PortKeyToString(k);
}

std::string CountryText(CountryCode c, Lang lang) {
  return CountryName(c, lang);
}

std::string Capitalized(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string CountryInText(CountryCode c, Lang lang) {
  std::string name = CountryName(c, lang);
  if (lang == Lang::kJa) return name;
  // Names that are plural, or a "Republic", "Kingdom" or "Islands" of something, take "the".
  static constexpr std::string_view kWithThe[] = {
      "United ", "Netherlands", "Philippines", "Republic", "Kingdom",    "Islands",
      "Bahamas", "Maldives",    "Gambia",      "Comoros",  "Seychelles", "Emirates"};
  if (name.starts_with("the ") || name.starts_with("The ")) return name;
  for (std::string_view w : kWithThe) {
    if (name.find(w) != std::string::npos) return "the " + name;
  }
  return name;
}

std::string PrevRankCell(int prev_rank, Lang lang) {
  bool ja = lang == Lang::kJa;
  if (prev_rank > 0) return std::to_string(prev_rank);
  if (prev_rank == kRankOutOfTop) return ja ? "トップ10圏外" : "out of top 10";
  if (prev_rank == kRankNew) return ja ? "新規" : "new";
  return "—";
}

namespace {
// Within ±2% a change is reported as none: day-to-day noise of a telescope is larger.
constexpr double kFlat = 0.02;
}  // namespace

std::string ChangeShort(double before, double after, Lang lang) {
  bool ja = lang == Lang::kJa;
  if (before <= 0) return ja ? "新たに観測" : "newly seen";
  // Equal is unchanged: "8 → 8 sensors" is not "almost" anything.
  if (after == before) return ja ? "変化なし" : "unchanged";
  double r = after / before - 1.0;
  if (std::fabs(r) < kFlat) return ja ? "ほぼ横ばい" : "almost unchanged";
  if (r > 0) {
    if (r >= 1.0)
      return ja ? fmt::format("{} 倍に増加", Dec(after / before, 1))
                : fmt::format("up {}-fold", Dec(after / before, 1));
    return ja ? fmt::format("{} 増加", Pct(r)) : fmt::format("up {}", Pct(r));
  }
  return ja ? fmt::format("{} 減少", Pct(-r)) : fmt::format("down {}", Pct(-r));
}

std::string ChangePhrase(double before, double after, Lang lang) {
  bool ja = lang == Lang::kJa;
  if (before <= 0) return ja ? "新たに観測されました" : "was newly seen";
  if (after == before) return ja ? "変わりませんでした" : "was unchanged";
  double r = after / before - 1.0;
  if (std::fabs(r) < kFlat) return ja ? "ほぼ横ばいでした" : "was almost unchanged";
  if (r > 0) {
    if (r >= 1.0)
      return ja ? fmt::format("{} 倍に増加しました", Dec(after / before, 1))
                : fmt::format("rose {}-fold", Dec(after / before, 1));
    return ja ? fmt::format("{} 増加しました", Pct(r)) : fmt::format("rose by {}", Pct(r));
  }
  return ja ? fmt::format("{} 減少しました", Pct(-r)) : fmt::format("fell by {}", Pct(-r));
}

std::string Ordinal(int n) {
  int t = n % 100;
  const char* suf = "th";
  if (t < 11 || t > 13) {
    if (n % 10 == 1) suf = "st";
    if (n % 10 == 2) suf = "nd";
    if (n % 10 == 3) suf = "rd";
  }
  return std::to_string(n) + suf;
}

std::string JoinList(const std::vector<std::string>& items, Lang lang) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      if (lang == Lang::kJa) {
        out += "、";
      } else {
        out += i + 1 == items.size() ? (items.size() > 2 ? ", and " : " and ") : ", ";
      }
    }
    out += items[i];
  }
  return out;
}

}  // namespace teiten::report
