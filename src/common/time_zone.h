// TimeZone: the zone in which a store's days, months and quarters begin (the seeds use JST).
//
// Local days are numbered from 1970-01-01 local (day 0). The zone's UTC offsets are resolved
// once at load from the system tz database, so LocalDay() is a short search, thread-safe, and
// right across daylight-saving changes.
//
//   ASSIGN_OR_RETURN(TimeZone tz, TimeZone::Load("Asia/Tokyo"));
//   int32_t d = tz.LocalDay(ts_us);        // 2018-08-12 JST → 17755
//   int64_t t0 = tz.DayStartUs(d);         // 2018-08-11T15:00:00Z
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace teiten {

struct CivilDate {
  int y = 0;
  unsigned m = 0, d = 0;
};

class TimeZone {
 public:
  static Result<TimeZone> Load(const std::string& name);
  static TimeZone Utc();

  const std::string& name() const { return name_; }
  int32_t LocalDay(int64_t ts_us) const;
  int64_t DayStartUs(int32_t day) const;  // the UTC instant the local day begins
  int64_t OffsetUs(int64_t ts_us) const;  // local minus UTC at that instant

  // Civil date helpers (proleptic Gregorian) on day numbers.
  static int32_t DaysFromCivil(int y, unsigned m, unsigned d);
  static void CivilFromDays(int32_t z, int* y, unsigned* m, unsigned* d);
  static CivilDate CivilOf(int32_t day) {
    CivilDate c;
    CivilFromDays(day, &c.y, &c.m, &c.d);
    return c;
  }
  static std::string DayString(int32_t day);  // "2018-08-12"

 private:
  std::string name_;
  std::vector<int64_t> begins_us_;  // sorted transition instants; begins_us_[0] is -inf
  std::vector<int64_t> offsets_us_;
};

}  // namespace teiten
