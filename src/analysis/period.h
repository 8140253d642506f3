// Period: the span of local days a query or report covers, and the one before it.
//
//   "2018Q3"                 a quarter      → previous: 2018Q2
//   "2018-08"                a month        → previous: 2018-07
//   "2018-08-12"             a day          → previous: 2018-08-11
//   "2018-08-01..2018-08-15" days, inclusive → previous: the 15 days before
//
// Days are local days of the store's time zone (TimeZone::LocalDay numbering).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace teiten {

struct Period {
  enum class Kind { kQuarter, kMonth, kDays };
  Kind kind = Kind::kDays;
  int32_t first_day = 0;  // inclusive
  int32_t end_day = 0;    // exclusive
  int year = 0;
  int index = 0;  // quarter 1-4 or month 1-12

  int32_t days() const { return end_day - first_day; }
  Period Previous() const;
  // "2018Q3", "2018-08", "2018-08-01..2018-08-15"
  std::string Label() const;
};

Result<Period> ParsePeriod(const std::string& text);
Period QuarterPeriod(int year, int quarter);
Period MonthPeriod(int year, int month);
Period DaysPeriod(int32_t first_day, int32_t end_day);

}  // namespace teiten
