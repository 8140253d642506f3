#include "analysis/period.h"

#include <fmt/format.h>

#include <cstdio>

#include "common/time_zone.h"

namespace teiten {

Period QuarterPeriod(int year, int quarter) {
  Period p;
  p.kind = Period::Kind::kQuarter;
  p.year = year;
  p.index = quarter;
  unsigned m = static_cast<unsigned>((quarter - 1) * 3 + 1);
  p.first_day = TimeZone::DaysFromCivil(year, m, 1);
  p.end_day = quarter == 4 ? TimeZone::DaysFromCivil(year + 1, 1, 1)
                           : TimeZone::DaysFromCivil(year, m + 3, 1);
  return p;
}

Period MonthPeriod(int year, int month) {
  Period p;
  p.kind = Period::Kind::kMonth;
  p.year = year;
  p.index = month;
  p.first_day = TimeZone::DaysFromCivil(year, static_cast<unsigned>(month), 1);
  p.end_day = month == 12 ? TimeZone::DaysFromCivil(year + 1, 1, 1)
                          : TimeZone::DaysFromCivil(year, static_cast<unsigned>(month + 1), 1);
  return p;
}

Period DaysPeriod(int32_t first_day, int32_t end_day) {
  Period p;
  p.kind = Period::Kind::kDays;
  p.first_day = first_day;
  p.end_day = end_day;
  return p;
}

Period Period::Previous() const {
  switch (kind) {
    case Kind::kQuarter:
      return index == 1 ? QuarterPeriod(year - 1, 4) : QuarterPeriod(year, index - 1);
    case Kind::kMonth:
      return index == 1 ? MonthPeriod(year - 1, 12) : MonthPeriod(year, index - 1);
    case Kind::kDays:
      break;
  }
  return DaysPeriod(first_day - days(), first_day);
}

std::string Period::Label() const {
  switch (kind) {
    case Kind::kQuarter:
      return fmt::format("{}Q{}", year, index);
    case Kind::kMonth:
      return fmt::format("{:04}-{:02}", year, index);
    case Kind::kDays:
      break;
  }
  if (days() == 1) return TimeZone::DayString(first_day);
  return TimeZone::DayString(first_day) + ".." + TimeZone::DayString(end_day - 1);
}

namespace {
bool ParseDate(const std::string& s, int32_t* day) {
  int y = 0, n = 0;
  unsigned m = 0, d = 0;
  if (std::sscanf(s.c_str(), "%4d-%2u-%2u%n", &y, &m, &d, &n) != 3 ||
      static_cast<size_t>(n) != s.size()) {
    return false;
  }
  if (m < 1 || m > 12 || d < 1 || d > 31 || y < 1970 || y > 2200) return false;
  *day = TimeZone::DaysFromCivil(y, m, d);
  int yy;
  unsigned mm, dd;
  TimeZone::CivilFromDays(*day, &yy, &mm, &dd);
  return mm == m && dd == d;  // rejects 2018-02-30
}
}  // namespace

Result<Period> ParsePeriod(const std::string& text) {
  int y = 0, q = 0, n = 0;
  auto bad = [&] {
    return InvalidArgument(fmt::format(
        "period '{}': expected a quarter (2018Q3), a month (2018-08), a day (2018-08-12) or a "
        "range of days (2018-08-01..2018-08-15)",
        text));
  };
  if (std::sscanf(text.c_str(), "%4dQ%1d%n", &y, &q, &n) == 2 &&
      static_cast<size_t>(n) == text.size()) {
    if (q < 1 || q > 4 || y < 1970) return bad();
    return QuarterPeriod(y, q);
  }
  unsigned m = 0;
  if (std::sscanf(text.c_str(), "%4d-%2u%n", &y, &m, &n) == 2 &&
      static_cast<size_t>(n) == text.size()) {
    if (m < 1 || m > 12 || y < 1970) return bad();
    return MonthPeriod(y, static_cast<int>(m));
  }
  size_t dots = text.find("..");
  int32_t a = 0, b = 0;
  if (dots != std::string::npos) {
    if (!ParseDate(text.substr(0, dots), &a) || !ParseDate(text.substr(dots + 2), &b) || b < a) {
      return bad();
    }
    return DaysPeriod(a, b + 1);
  }
  if (ParseDate(text, &a)) return DaysPeriod(a, a + 1);
  return bad();
}

}  // namespace teiten
