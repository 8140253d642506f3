#include "common/time_zone.h"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <limits>

namespace teiten {

int32_t TimeZone::DaysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int>(doe) - 719468;
}

void TimeZone::CivilFromDays(int32_t z, int* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int>(yoe) + era * 400 + (*m <= 2);
}

std::string TimeZone::DayString(int32_t day) {
  int y;
  unsigned m, d;
  CivilFromDays(day, &y, &m, &d);
  return fmt::format("{:04}-{:02}-{:02}", y, m, d);
}

TimeZone TimeZone::Utc() {
  TimeZone tz;
  tz.name_ = "UTC";
  tz.begins_us_ = {std::numeric_limits<int64_t>::min()};
  tz.offsets_us_ = {0};
  return tz;
}

Result<TimeZone> TimeZone::Load(const std::string& name) {
  if (name == "UTC" || name == "Etc/UTC") return Utc();
  TimeZone tz;
  tz.name_ = name;
  try {
    const date::time_zone* z = date::locate_zone(name);
    using namespace std::chrono;
    auto t = sys_seconds{seconds{0}} - days{366 * 30};  // 1940: before any capture
    auto end = sys_seconds{seconds{0}} + days{366 * 130};
    tz.begins_us_.push_back(std::numeric_limits<int64_t>::min());
    bool first = true;
    while (t < end) {
      date::sys_info info = z->get_info(t);
      int64_t off = duration_cast<microseconds>(info.offset).count();
      if (first) {
        tz.offsets_us_.push_back(off);
        first = false;
      } else if (off != tz.offsets_us_.back()) {
        tz.begins_us_.push_back(duration_cast<microseconds>(info.begin.time_since_epoch()).count());
        tz.offsets_us_.push_back(off);
      }
      if (info.end <= t) break;
      t = info.end;
    }
  } catch (const std::exception& e) {
    return InvalidArgument(fmt::format("time zone '{}': {}", name, e.what()));
  }
  return tz;
}

int64_t TimeZone::OffsetUs(int64_t ts_us) const {
  auto it = std::upper_bound(begins_us_.begin(), begins_us_.end(), ts_us);
  return offsets_us_[static_cast<size_t>(it - begins_us_.begin()) - 1];
}

int32_t TimeZone::LocalDay(int64_t ts_us) const {
  int64_t local = ts_us + OffsetUs(ts_us);
  constexpr int64_t kDay = 86400LL * 1000000;
  return static_cast<int32_t>(local >= 0 ? local / kDay : (local - kDay + 1) / kDay);
}

int64_t TimeZone::DayStartUs(int32_t day) const {
  constexpr int64_t kDay = 86400LL * 1000000;
  int64_t local = int64_t{day} * kDay;
  // The offset in force at local midnight: try the offset found at the naive instant, then
  // re-check once (enough for real zones, whose changes are hours apart).
  int64_t guess = local - OffsetUs(local);
  return local - OffsetUs(guess);
}

}  // namespace teiten
