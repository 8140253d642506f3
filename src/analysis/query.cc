#include "analysis/query.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "common/backscatter.h"
#include "enrich/names.h"

namespace teiten {
namespace {

using Span = RollupFile::Span<RollupFile::KeyRec>;

// The records of a view's section of `d` (verified; empty for kSensor).
Result<Span> Section(const RollupFile::SensorView& v, Dimension d) {
  switch (d) {
    case Dimension::kPort:
      return v.file->Keys(v, 0);
    case Dimension::kCountry:
      return v.file->Keys(v, 1);
    case Dimension::kAsn:
      return v.file->Keys(v, 2);
    case Dimension::kSensor:
      break;
  }
  return Span{};
}

// The rollup views a span of days is counted from. Whole quarters and months come from the period
// rollups: when `pooled` (every sensor counts, and the query need not tell sensors apart) the one
// of every sensor together (sets pre-unioned, counts stored), else one per counted sensor; other
// days from the pooled day rollup when `pooled`, else from the day rollups of each sensor. Where
// a store lacks a period rollup that some day of it has data for (written before that kind
// existed), that span is read from the day rollups.
struct Cover {
  std::vector<RollupFile::SensorView> views;
  std::vector<std::shared_ptr<const void>> hold;  // keeps the files the views point into
  bool any = false;                               // some view has data
  // Total sets decoded for this query, by file and offset (DistinctSources): a merged quarter's
  // total set is the dictionary of every port's set in it, and a query counting the new
  // members of ten ports against it walked its 4.4 M gaps ten times (80 % of `top ports` on
  // the 1 G store with a fresh 10 M-packet ingest's parts beside it).
  mutable std::map<std::pair<const RollupFile*, uint64_t>, std::shared_ptr<const DecodedDict>>
      dicts;
};

// Dictionaries decoded for a query hold at most this many members together (4 bytes each).
constexpr uint64_t kDecodedDictMembers = uint64_t{64} << 20;

bool AllSensors(const Store& store, const SensorSelection& f) {
  if (f.sensors.empty()) return true;
  for (size_t i = 0; i < store.manifest().sensors.size(); ++i) {
    if (!f.Allows(static_cast<uint16_t>(i))) return false;
  }
  return true;
}

// The counter sections a query of `dim` reads from each view (RollupFile::CheckSections).
uint32_t SectionsOf(Dimension d) {
  switch (d) {
    case Dimension::kPort:
      return RollupFile::kPorts;
    case Dimension::kCountry:
      return RollupFile::kCountries;
    case Dimension::kAsn:
      return RollupFile::kAsns;
    case Dimension::kSensor:
      break;
  }
  return 0;
}

Result<Cover> CoverDays(const Store& store, int32_t first, int32_t end, const SensorSelection& f,
                        bool pooled, uint32_t sections) {
  Cover c;
  const Manifest& m = store.manifest();
  // Adds a period rollup's view; false when the store has no such file.
  auto add_period = [&](const std::string& label) -> Result<bool> {
    if (!m.periods.count(label)) return false;
    ASSIGN_OR_RETURN(auto parts, store.PeriodParts(label));
    if (parts->empty()) return false;
    for (const auto& file : *parts) {
      for (const auto& v : file->sensors()) {
        RETURN_IF_ERROR(file->CheckSections(v, sections));
        c.views.push_back(v);
        c.any = true;
      }
    }
    c.hold.push_back(parts);
    return true;
  };
  // Adds the day rollups of [d0, d1) of the sensors `want` allows.
  auto add_days = [&](int32_t d0, int32_t d1, auto want) -> Status {
    for (auto it = m.days.lower_bound(d0); it != m.days.end() && it->first < d1; ++it) {
      bool needed = false;
      for (const auto& [sensor, rel] : it->second) needed = needed || want(sensor);
      if (!needed) continue;
      ASSIGN_OR_RETURN(auto roll, store.Day(it->first));
      if (!roll) continue;
      for (const auto& v : roll->sensors()) {
        if (!want(v.sensor)) continue;
        RETURN_IF_ERROR(v.file->CheckSections(v, sections));
        c.views.push_back(v);
        c.any = true;
      }
      c.hold.push_back(roll);
    }
    return OkStatus();
  };
  auto allowed = [&](uint16_t s) { return f.Allows(s); };
  // A whole month or quarter [d0, d1) labelled `label`.
  auto add_whole = [&](const std::string& label, int32_t d0, int32_t d1) -> Status {
    if (pooled) {
      ASSIGN_OR_RETURN(bool found, add_period(label));
      bool data = m.days.lower_bound(d0) != m.days.end() && m.days.lower_bound(d0)->first < d1;
      if (!found && data) return add_days(d0, d1, allowed);
      return OkStatus();
    }
    std::vector<uint16_t> missing;
    for (size_t i = 0; i < m.sensors.size(); ++i) {
      auto s = static_cast<uint16_t>(i);
      if (!f.Allows(s)) continue;
      ASSIGN_OR_RETURN(bool found, add_period(Store::SensorPeriodLabel(label, s)));
      if (!found) missing.push_back(s);
    }
    if (missing.empty()) return OkStatus();
    return add_days(d0, d1, [&](uint16_t s) {
      return std::find(missing.begin(), missing.end(), s) != missing.end();
    });
  };
  for (int32_t d = first; d < end;) {
    int y;
    unsigned mo, dd;
    TimeZone::CivilFromDays(d, &y, &mo, &dd);
    if (dd == 1) {
      if ((mo - 1) % 3 == 0) {
        Period q = QuarterPeriod(y, static_cast<int>((mo - 1) / 3 + 1));
        if (q.end_day <= end) {
          RETURN_IF_ERROR(add_whole(q.Label(), d, q.end_day));
          d = q.end_day;
          continue;
        }
      }
      Period month = MonthPeriod(y, static_cast<int>(mo));
      if (month.end_day <= end) {
        RETURN_IF_ERROR(add_whole(month.Label(), d, month.end_day));
        d = month.end_day;
        continue;
      }
    }
    if (pooled) {
      ASSIGN_OR_RETURN(bool found, add_period(Store::DayLabel(d)));
      if (found) {
        ++d;
        continue;
      }
    }
    RETURN_IF_ERROR(add_days(d, d + 1, allowed));
    ++d;
  }
  return c;
}

Result<Cover> CoverPeriod(const Store& store, Dimension dim, const Period& p,
                          const SensorSelection& f) {
  return CoverDays(store, p.first_day, p.end_day, f,
                   dim != Dimension::kSensor && AllSensors(store, f), SectionsOf(dim));
}

// Sums packets per key over the views, as (key, packets) in no particular order. For kSensor the
// key is the sensor index. One view (a period rollup) is copied as it is; several are summed, TCP
// and UDP port keys (nearly all of them) in a dense array: a quarter of day rollups at ten
// sensors is tens of millions of (day, sensor, port) records.
Result<std::vector<std::pair<uint64_t, uint64_t>>> SumPackets(const Cover& c, Dimension dim,
                                                              uint64_t* total) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& v : c.views) *total += v.packets;
  if (dim == Dimension::kSensor) {
    std::map<uint64_t, uint64_t> m;
    for (const auto& v : c.views) m[v.sensor] += v.packets;
    return std::vector<std::pair<uint64_t, uint64_t>>(m.begin(), m.end());
  }
  if (c.views.size() == 1) {
    ASSIGN_OR_RETURN(Span one, Section(c.views[0], dim));
    for (const auto& r : one) out.push_back({r.key, r.packets});
    return out;
  }
  std::vector<uint64_t> dense;
  if (dim == Dimension::kPort) dense.assign(2 * 65536, 0);
  std::unordered_map<uint64_t, uint64_t> other;
  for (const auto& v : c.views) {
    ASSIGN_OR_RETURN(Span recs, Section(v, dim));
    for (const auto& r : recs) {
      uint8_t proto = PortKeyProto(r.key);
      if (!dense.empty() && PortKeyHasPort(r.key) && (proto == 6 || proto == 17)) {
        dense[(proto == 17 ? 65536u : 0u) + PortKeyPort(r.key)] += r.packets;
      } else {
        other[r.key] += r.packets;
      }
    }
  }
  out.assign(other.begin(), other.end());
  for (size_t i = 0; i < dense.size(); ++i) {
    if (dense[i])
      out.push_back(
          {MakePortKey(i >= 65536 ? 17 : 6, static_cast<uint16_t>(i & 0xFFFF)), dense[i]});
  }
  return out;
}

// By packets, then by key so that ties rank the same way every time.
bool RanksBefore(const std::pair<uint64_t, uint64_t>& a, const std::pair<uint64_t, uint64_t>& b) {
  return a.second != b.second ? a.second > b.second : a.first < b.first;
}

// The record of `key` in a view's section of `dim`, or nullptr. Only what the lookup reads is
// verified (RollupFile::Find), so a cover need not verify whole sections for lookups of a few
// keys: a daily series of 5 ports over a quarter reads a few records (format 5) or one block
// (format 6) a day instead of each day's whole port section.
Result<const RollupFile::KeyRec*> FindKey(const RollupFile::SensorView& v, Dimension dim,
                                          uint32_t key) {
  switch (dim) {
    case Dimension::kPort:
      return v.file->Find(v, 0, key);
    case Dimension::kCountry:
      return v.file->Find(v, 1, key);
    case Dimension::kAsn:
      return v.file->Find(v, 2, key);
    case Dimension::kSensor:
      break;
  }
  return nullptr;
}

// Packets of one key over the views.
Result<uint64_t> KeyPackets(const Cover& c, Dimension dim, uint64_t key) {
  uint64_t n = 0;
  for (const auto& v : c.views) {
    if (dim == Dimension::kSensor) {
      if (v.sensor == key) n += v.packets;
      continue;
    }
    ASSIGN_OR_RETURN(const RollupFile::KeyRec* r, FindKey(v, dim, static_cast<uint32_t>(key)));
    if (r) n += r->packets;
  }
  return n;
}

// Below this many members a set is gathered with the others (cheaper than a walk's setup).
constexpr uint64_t kWalkLargeFrom = 4096;

// Exact distinct sources of one key (or of everything, when `whole`) over the views: the stored
// count when one set holds them all, else the size of the union of the sets.
Result<uint64_t> DistinctSources(const Cover& c, Dimension dim, uint64_t key, bool whole) {
  struct Ref {
    const RollupFile* file;
    uint64_t offset, count;
    const RollupFile::SensorView* view;
  };
  std::vector<Ref> refs;
  for (const auto& v : c.views) {
    if (whole || dim == Dimension::kSensor) {
      if (dim == Dimension::kSensor && !whole && v.sensor != key) continue;
      refs.push_back({v.file, v.set_offset, v.sources, &v});
    } else {
      ASSIGN_OR_RETURN(const RollupFile::KeyRec* r, FindKey(v, dim, static_cast<uint32_t>(key)));
      if (r) refs.push_back({v.file, r->set_offset, r->sources, &v});
    }
  }
  if (refs.empty()) return uint64_t{0};
  if (refs.size() == 1) return refs[0].count;
  std::vector<uint32_t> v4;
  std::vector<IpAddr> v6;
  // One set much larger than the rest together (a merged quarter and the parts of today's
  // commits): its stored count, plus the others' members it does not hold. The large set is only
  // walked, never gathered: gathering a quarter's port set to unite it with a few hundred new
  // members cost 5× the query.
  size_t big = 0;
  uint64_t total = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    total += refs[i].count;
    if (refs[i].count > refs[big].count) big = i;
  }
  if (refs[big].count >= kWalkLargeFrom && refs[big].count >= 2 * (total - refs[big].count)) {
    // Each set's members are ascending: the runs merged pairwise, not sorted (sorting a fresh
    // 10 M-packet ingest's members of each port was a quarter of `top ports`).
    std::vector<size_t> starts;
    for (size_t i = 0; i < refs.size(); ++i) {
      if (i == big) continue;
      starts.push_back(v4.size());
      RETURN_IF_ERROR(refs[i].file->AppendSetMembers(refs[i].offset, &v4, &v6));
    }
    starts.push_back(v4.size());
    // (A set's reader yields its members ascending, or fails.)
    for (size_t width = 1; width + 1 < starts.size(); width *= 2) {
      for (size_t k = 0; k + width < starts.size() - 1; k += 2 * width) {
        const size_t end = starts[std::min(k + 2 * width, starts.size() - 1)];
        std::inplace_merge(v4.begin() + static_cast<ptrdiff_t>(starts[k]),
                           v4.begin() + static_cast<ptrdiff_t>(starts[k + width]),
                           v4.begin() + static_cast<ptrdiff_t>(end));
      }
    }
    v4.erase(std::unique(v4.begin(), v4.end()), v4.end());
    std::sort(v6.begin(), v6.end());
    v6.erase(std::unique(v6.begin(), v6.end()), v6.end());
    // Many asked members against a large set of positions: its dictionary (the entry's total
    // set) decoded once for the query, instead of walked once per key.
    const Ref& b = refs[big];
    const DecodedDict* decoded = nullptr;
    if (b.offset != b.view->set_offset && (v4.size() + v6.size()) * 256 >= b.view->sources) {
      auto& slot = c.dicts[{b.file, b.view->set_offset}];
      if (!slot) {
        uint64_t held = 0;
        for (const auto& [k, d] : c.dicts) {
          if (d) held += d->members.v4.size() + d->members.v6.size();
        }
        if (held + b.view->sources <= kDecodedDictMembers) {
          ASSIGN_OR_RETURN(DecodedDict d, b.file->DecodeTotal(*b.view));
          slot = std::make_shared<const DecodedDict>(std::move(d));
        }
      }
      decoded = slot.get();
    }
    ASSIGN_OR_RETURN(uint64_t hits, b.file->CountSetHits(b.offset, v4, v6, decoded));
    return b.count + v4.size() + v6.size() - hits;
  }
  std::vector<size_t> runs;  // each set's members are ascending: where each begins
  for (const Ref& r : refs) {
    runs.push_back(v4.size());
    RETURN_IF_ERROR(r.file->AppendSetMembers(r.offset, &v4, &v6));
  }
  return CountDistinctRuns(&v4, runs, &v6);
}

std::vector<std::pair<uint64_t, uint64_t>> Ranked(const std::unordered_map<uint64_t, uint64_t>& m) {
  std::vector<std::pair<uint64_t, uint64_t>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end(), RanksBefore);
  return v;
}

}  // namespace

const char* DimensionName(Dimension d) {
  switch (d) {
    case Dimension::kPort:
      return "port";
    case Dimension::kCountry:
      return "country";
    case Dimension::kAsn:
      return "asn";
    case Dimension::kSensor:
      return "sensor";
  }
  return "?";
}

bool SensorSelection::Allows(uint16_t s) const {
  return sensors.empty() || std::find(sensors.begin(), sensors.end(), s) != sensors.end();
}

Result<SensorSelection> ResolveSensors(const Store& store, const std::vector<std::string>& ids,
                                       const std::vector<std::string>& groups) {
  SensorSelection sel;
  const auto& ss = store.manifest().sensors;
  for (const auto& id : ids) {
    int i = store.SensorIndex(id);
    if (i < 0) return NotFound(fmt::format("sensor '{}' is not in the store", id));
    sel.sensors.push_back(static_cast<uint16_t>(i));
  }
  for (const auto& g : groups) {
    bool found = false;
    for (size_t i = 0; i < ss.size(); ++i) {
      if (ss[i].group == g) {
        sel.sensors.push_back(static_cast<uint16_t>(i));
        found = true;
      }
    }
    if (!found) return NotFound(fmt::format("no sensor of group '{}' is in the store", g));
  }
  return sel;
}

namespace {
Result<TopResult> TopUnremembered(const Store& store, Dimension dim, const Period& period,
                                  const SensorSelection& f, size_t n, int prev_cutoff);
}  // namespace

Result<TopResult> Top(const Store& store, Dimension dim, const Period& period,
                      const SensorSelection& f, size_t n, int prev_cutoff) {
  // Asked again while the store is the same (Store::Memo): a summary's top tables and the same
  // tables asked on their own, the API in two languages.
  std::vector<uint16_t> sensors = f.sensors;
  std::sort(sensors.begin(), sensors.end());
  const std::string key =
      fmt::format("top|{}|{}|{}|{}|{}|{}", static_cast<int>(dim), period.first_day, period.end_day,
                  fmt::join(sensors, ","), n, prev_cutoff);
  if (auto kept = store.Memo(key)) return *std::static_pointer_cast<const TopResult>(kept);
  ASSIGN_OR_RETURN(TopResult res, TopUnremembered(store, dim, period, f, n, prev_cutoff));
  store.Memo(key, std::make_shared<const TopResult>(res));
  return res;
}

namespace {
Result<TopResult> TopUnremembered(const Store& store, Dimension dim, const Period& period,
                                  const SensorSelection& f, size_t n, int prev_cutoff) {
  TopResult res;
  res.period = period;
  res.previous = period.Previous();
  uint64_t prev_total = 0;
  ASSIGN_OR_RETURN(Cover cc, CoverPeriod(store, dim, period, f));
  ASSIGN_OR_RETURN(Cover pc, CoverPeriod(store, dim, res.previous, f));
  bool prev_any = pc.any;
  ASSIGN_OR_RETURN(auto ranked, SumPackets(cc, dim, &res.total_packets));
  ASSIGN_OR_RETURN(auto prev, SumPackets(pc, dim, &prev_total));
  if (dim == Dimension::kSensor && AllSensors(store, f)) {
    // Every sensor's sources together: the pooled rollups hold them already united.
    ASSIGN_OR_RETURN(Cover all, CoverDays(store, period.first_day, period.end_day, f, true, 0));
    ASSIGN_OR_RETURN(res.total_sources, DistinctSources(all, dim, 0, true));
  } else {
    ASSIGN_OR_RETURN(res.total_sources, DistinctSources(cc, dim, 0, true));
  }
  // Only the first n are ranked in full; a previous rank is counted, not sorted for.
  size_t shown = std::min(n, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<ptrdiff_t>(shown), ranked.end(),
                    RanksBefore);
  std::unordered_map<uint64_t, int> prev_rank;
  if (shown <= 64) {
    for (size_t i = 0; i < shown; ++i) {
      auto it = std::find_if(prev.begin(), prev.end(),
                             [&](const auto& p) { return p.first == ranked[i].first; });
      if (it == prev.end()) continue;
      int rank = 1;
      for (const auto& p : prev) rank += RanksBefore(p, *it);
      prev_rank[it->first] = rank;
    }
  } else {
    // Every key ranked (outages, feeds): counting per row would be quadratic in the keys.
    std::sort(prev.begin(), prev.end(), RanksBefore);
    for (size_t i = 0; i < prev.size(); ++i) prev_rank[prev[i].first] = static_cast<int>(i + 1);
  }
  for (size_t i = 0; i < shown; ++i) {
    RankRow row;
    row.rank = static_cast<int>(i + 1);
    row.key = ranked[i].first;
    row.packets = ranked[i].second;
    row.share = res.total_packets ? static_cast<double>(row.packets) / res.total_packets : 0;
    ASSIGN_OR_RETURN(row.sources, DistinctSources(cc, dim, row.key, false));
    if (!prev_any) {
      row.prev_rank = kRankNoData;
    } else {
      auto it = prev_rank.find(row.key);
      row.prev_rank = it == prev_rank.end()      ? kRankNew
                      : it->second > prev_cutoff ? kRankOutOfTop
                                                 : it->second;
    }
    res.rows.push_back(row);
  }
  return res;
}
}  // namespace

Result<std::vector<uint64_t>> TopKeys(const Store& store, Dimension dim, const Period& period,
                                      const SensorSelection& f, size_t n) {
  ASSIGN_OR_RETURN(Cover c, CoverPeriod(store, dim, period, f));
  uint64_t total = 0;
  ASSIGN_OR_RETURN(auto ranked, SumPackets(c, dim, &total));
  const size_t shown = std::min(n, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<ptrdiff_t>(shown), ranked.end(),
                    RanksBefore);
  std::vector<uint64_t> keys;
  keys.reserve(shown);
  for (size_t i = 0; i < shown; ++i) keys.push_back(ranked[i].first);
  return keys;
}

Result<Granularity> ParseGranularity(const std::string& s) {
  if (s == "5min" || s == "5m") return Granularity::k5Min;
  if (s == "hour" || s == "1h") return Granularity::kHour;
  if (s == "day" || s == "1d") return Granularity::kDay;
  if (s == "week") return Granularity::kWeek;
  if (s == "month") return Granularity::kMonth;
  return InvalidArgument(
      fmt::format("granularity '{}': expected 5min, hour, day, week or month", s));
}

namespace {

// Bucket index of a local day for day/week/month granularity, and its first day.
int32_t BucketStartDay(int32_t day, Granularity g) {
  if (g == Granularity::kWeek) return day - ((day + 3) % 7 + 7) % 7;  // weeks begin on Monday
  if (g == Granularity::kMonth) {
    int y;
    unsigned m, d;
    TimeZone::CivilFromDays(day, &y, &m, &d);
    return TimeZone::DaysFromCivil(y, m, 1);
  }
  return day;
}

bool KeyMatches(Dimension dim, const Observation& o, const GeoInfo& g, uint64_t key) {
  switch (dim) {
    case Dimension::kPort:
      return PortKeyOf(o) == key;
    case Dimension::kCountry:
      return g.country == key;
    case Dimension::kAsn:
      return g.asn == key;
    case Dimension::kSensor:
      return o.sensor == key;
  }
  return false;
}

}  // namespace

Result<SeriesResult> Series(const Store& store, Dimension dim, const std::vector<uint64_t>& keys,
                            const Period& period, Granularity g, const SensorSelection& f) {
  SeriesResult res;
  res.keys = keys;
  const TimeZone& tz = store.tz();
  size_t nseries = keys.empty() ? 1 : keys.size();
  if (g == Granularity::kDay || g == Granularity::kWeek || g == Granularity::kMonth) {
    for (int32_t d = period.first_day; d < period.end_day;) {
      int32_t b0 = BucketStartDay(d, g);
      int32_t b1 = g == Granularity::kDay    ? b0 + 1
                   : g == Granularity::kWeek ? b0 + 7
                                             : [&] {
                                                 int y;
                                                 unsigned m, dd;
                                                 TimeZone::CivilFromDays(b0, &y, &m, &dd);
                                                 return m == 12
                                                            ? TimeZone::DaysFromCivil(y + 1, 1, 1)
                                                            : TimeZone::DaysFromCivil(y, m + 1, 1);
                                               }();
      int32_t lo = std::max(b0, period.first_day), hi = std::min(b1, period.end_day);
      SeriesPoint pt;
      pt.start_us = tz.DayStartUs(lo);
      pt.label = TimeZone::DayString(lo);
      pt.packets.assign(nseries, 0);
      pt.sources.assign(nseries, 0);
      // Keys are looked up record by record (FindKey): no section is read whole.
      ASSIGN_OR_RETURN(Cover c, CoverDays(store, lo, hi, f,
                                          dim != Dimension::kSensor && AllSensors(store, f), 0));
      for (size_t s = 0; s < nseries; ++s) {
        bool whole = keys.empty();
        if (whole) {
          for (const auto& v : c.views) pt.packets[s] += v.packets;
        } else {
          ASSIGN_OR_RETURN(pt.packets[s], KeyPackets(c, dim, keys[s]));
        }
        if (pt.packets[s] > 0) {
          ASSIGN_OR_RETURN(pt.sources[s], DistinctSources(c, dim, whole ? 0 : keys[s], whole));
        }
      }
      res.points.push_back(std::move(pt));
      d = hi;
    }
    return res;
  }
  // Sub-day buckets: scan the stored observations of the period's days.
  int64_t width_us = (g == Granularity::k5Min ? 5 : 60) * int64_t{60} * 1000000;
  int64_t t0 = tz.DayStartUs(period.first_day), t1 = tz.DayStartUs(period.end_day);
  size_t nb = static_cast<size_t>((t1 - t0 + width_us - 1) / width_us);
  if (nb > 2'000'000) return InvalidArgument("too many buckets: choose a coarser granularity");
  std::vector<std::vector<uint64_t>> pk(nb, std::vector<uint64_t>(nseries));
  std::vector<std::vector<std::set<IpAddr>>> src(nb, std::vector<std::set<IpAddr>>(nseries));
  DecodedBlock blk;
  for (const auto& seg : store.manifest().segments) {
    if (seg.day < period.first_day || seg.day >= period.end_day) continue;
    ASSIGN_OR_RETURN(auto reader, store.OpenSegment(seg.id));
    for (size_t b = 0; b < reader->blocks().size(); ++b) {
      RETURN_IF_ERROR(
          reader->ReadBlock(b, col::kSrc | col::kTs | col::kSensor | col::kPorts, &blk));
      for (size_t i = 0; i < blk.batch.rows.size(); ++i) {
        const Observation& o = blk.batch.rows[i];
        if (!f.Allows(o.sensor) || o.ts_us < t0 || o.ts_us >= t1) continue;
        size_t bucket = static_cast<size_t>((o.ts_us - t0) / width_us);
        for (size_t s = 0; s < nseries; ++s) {
          if (!keys.empty() && !KeyMatches(dim, o, blk.geo[i], keys[s])) continue;
          pk[bucket][s]++;
          src[bucket][s].insert(o.src);
        }
      }
    }
  }
  for (size_t b = 0; b < nb; ++b) {
    SeriesPoint pt;
    pt.start_us = t0 + static_cast<int64_t>(b) * width_us;
    int64_t local = pt.start_us + tz.OffsetUs(pt.start_us);
    int32_t day = static_cast<int32_t>(local / (86400LL * 1000000));
    int64_t sec = (local / 1000000) % 86400;
    pt.label = fmt::format("{} {:02}:{:02}", TimeZone::DayString(day), sec / 3600, sec % 3600 / 60);
    pt.packets = pk[b];
    for (size_t s = 0; s < nseries; ++s) pt.sources.push_back(src[b][s].size());
    res.points.push_back(std::move(pt));
  }
  return res;
}

namespace {

// The daily packets of one side of the port x country pairs, for a fixed key on the other side,
// broken down into the top `n` keys and "other": by country for a port (by_port = false), by port
// for a country (by_port = true).
Result<SeriesResult> PairBreakdown(const Store& store, uint32_t fixed, bool by_port,
                                   const Period& period, const SensorSelection& f, size_t n) {
  bool all = AllSensors(store, f);  // one pooled day rollup a day instead of one per sensor
  std::vector<RollupFile::PairRec> recs;
  // The fixed key's records in one view: only the blocks that hold them are decoded.
  auto read = [&](const RollupFile::SensorView& v) -> Status {
    recs.clear();
    return by_port ? v.file->PairsOfCountry(v, fixed, &recs) : v.file->PairsOfPort(v, fixed, &recs);
  };
  // Ranked over the period's cover (a quarter is one part): a region's records span every port.
  std::unordered_map<uint64_t, uint64_t> totals;
  {
    ASSIGN_OR_RETURN(Cover c, CoverDays(store, period.first_day, period.end_day, f, all, 0));
    for (const auto& v : c.views) {
      RETURN_IF_ERROR(read(v));
      for (const RollupFile::PairRec& r : recs) totals[by_port ? r.a : r.b] += r.packets;
    }
  }
  auto ranked = Ranked(totals);
  SeriesResult res;
  for (size_t i = 0; i < ranked.size() && i < n; ++i) {
    res.keys.push_back(ranked[i].first);
    res.names.push_back(by_port ? PortKeyToString(static_cast<PortKey>(ranked[i].first))
                                : CountryCodeString(static_cast<CountryCode>(ranked[i].first)));
  }
  res.names.push_back("other");
  for (int32_t d = period.first_day; d < period.end_day; ++d) {
    SeriesPoint pt;
    pt.start_us = store.tz().DayStartUs(d);
    pt.label = TimeZone::DayString(d);
    pt.packets.assign(res.keys.size() + 1, 0);
    uint64_t shown = 0, day_total = 0;
    ASSIGN_OR_RETURN(Cover c,
                     CoverDays(store, d, d + 1, f, all, by_port ? RollupFile::kCountries : 0));
    if (by_port) {
      // The shown ports' records of the day (a block each), and the region's day from its own
      // counters (every packet of it is in exactly one of its port records).
      ASSIGN_OR_RETURN(day_total, KeyPackets(c, Dimension::kCountry, fixed));
      for (size_t k = 0; k < res.keys.size() && day_total > 0; ++k) {
        for (const auto& v : c.views) {
          recs.clear();
          RETURN_IF_ERROR(v.file->PairsOfPort(v, static_cast<uint32_t>(res.keys[k]), &recs));
          for (const RollupFile::PairRec& r : recs) {
            if (r.b == fixed) pt.packets[k] += r.packets;
          }
        }
        shown += pt.packets[k];
      }
    } else {
      for (const auto& v : c.views) {
        RETURN_IF_ERROR(read(v));
        for (const RollupFile::PairRec& r : recs) {
          day_total += r.packets;
          auto it = std::find(res.keys.begin(), res.keys.end(), uint64_t{r.b});
          if (it == res.keys.end()) continue;
          pt.packets[static_cast<size_t>(it - res.keys.begin())] += r.packets;
          shown += r.packets;
        }
      }
    }
    if (shown > day_total) {
      return DataLoss(fmt::format("{}: the port x country records of {} exceed its packets",
                                  TimeZone::DayString(d), CountryCodeString(fixed)));
    }
    pt.packets.back() = day_total - shown;
    res.points.push_back(std::move(pt));
  }
  return res;
}

}  // namespace

Result<SeriesResult> PortByCountry(const Store& store, PortKey port, const Period& period,
                                   const SensorSelection& f, size_t n) {
  return PairBreakdown(store, port, false, period, f, n);
}

Result<SeriesResult> CountryByPort(const Store& store, CountryCode country, const Period& period,
                                   const SensorSelection& f, size_t n) {
  return PairBreakdown(store, country, true, period, f, n);
}

Result<SummaryResult> Summary(const Store& store, const Period& period, const SensorSelection& f,
                              size_t n) {
  SummaryResult s;
  s.period = period;
  s.days = period.days();
  std::set<uint16_t> sensors;
  double sources_sum = 0;
  std::vector<uint32_t> v4;
  std::vector<IpAddr> v6;
  const Manifest& m = store.manifest();
  for (int32_t d = period.first_day; d < period.end_day; ++d) {
    // A sensor-day in one part whose counts the manifest keeps is not opened (a quarter of ten
    // sensors is 920 files); the rest are read from their parts.
    auto day = m.days.find(d);
    if (day == m.days.end()) continue;
    bool all_known = true;
    for (const auto& [sensor, parts] : day->second) {
      if (!f.Allows(sensor)) continue;
      auto c = parts.size() == 1 ? m.part_counts.find(parts[0]) : m.part_counts.end();
      if (c == m.part_counts.end()) {
        all_known = false;
        break;
      }
    }
    if (all_known) {
      for (const auto& [sensor, parts] : day->second) {
        if (!f.Allows(sensor)) continue;
        const Manifest::PartCounts& c = m.part_counts.at(parts[0]);
        if (c.packets == 0) continue;
        sensors.insert(sensor);
        s.sensor_days++;
        s.packets += c.packets;
        sources_sum += static_cast<double>(c.sources);
      }
      continue;
    }
    ASSIGN_OR_RETURN(auto roll, store.Day(d));
    if (!roll) continue;
    // A sensor's day may be in several parts (commits not merged yet): its packets add, its
    // distinct sources are the union of the parts' sets.
    std::map<uint16_t, std::vector<const RollupFile::SensorView*>> by_sensor;
    for (const auto& v : roll->sensors()) {
      if (f.Allows(v.sensor) && v.packets > 0) by_sensor[v.sensor].push_back(&v);
    }
    for (const auto& [sensor, views] : by_sensor) {
      sensors.insert(sensor);
      s.sensor_days++;
      uint64_t sources = views[0]->sources;
      for (const auto* v : views) s.packets += v->packets;
      if (views.size() > 1) {
        v4.clear();
        v6.clear();
        for (const auto* v : views)
          RETURN_IF_ERROR(v->file->AppendSetMembers(v->set_offset, &v4, &v6));
        sources = CountDistinct(&v4, &v6);
      }
      sources_sum += static_cast<double>(sources);
    }
  }
  s.sensors = static_cast<int>(sensors.size());
  if (s.sensors > 0 && s.days > 0) {
    // TALOT2 divides by every sensor and every day of the period, quiet days included.
    double sd = static_cast<double>(s.sensors) * s.days;
    s.packets_per_sensor_day = static_cast<double>(s.packets) / sd;
    s.sources_per_sensor_day = sources_sum / sd;
    if (s.sources_per_sensor_day > 0) {
      s.packets_per_source = s.packets_per_sensor_day / s.sources_per_sensor_day;
    }
  }
  for (Dimension dim : {Dimension::kPort, Dimension::kCountry}) {
    ASSIGN_OR_RETURN(TopResult t, Top(store, dim, period, f, n));
    s.sources = t.total_sources;
    auto& rows = dim == Dimension::kPort ? s.ports : s.countries;
    auto& shares = dim == Dimension::kPort ? s.port_source_share : s.country_source_share;
    rows = t.rows;
    for (const auto& r : rows) {
      shares.push_back(t.total_sources ? static_cast<double>(r.sources) / t.total_sources : 0);
    }
  }
  return s;
}

Result<SourceEntries> LookupSource(const Store& store, const IpAddr& addr) {
  SourceEntries e;
  e.addr = addr;
  for (const auto& in : store.manifest().inputs) {
    if (in.index == 0) e.unindexed.insert(in.segments.begin(), in.segments.end());
    for (uint64_t index_id : in.Indexes()) {
      ASSIGN_OR_RETURN(auto idx, store.OpenIndex(index_id));
      SourceEntries::Entry en;
      ASSIGN_OR_RETURN(bool seen, idx->Lookup(addr, &en.sum));
      if (!seen) continue;
      en.index_id = index_id;
      e.entries.push_back(std::move(en));
    }
  }
  return e;
}

Result<IpHistory> SourceHistory(const Store& store, const IpAddr& addr) {
  return SourceHistory(store, addr, false);
}

Result<IpHistory> SourceHistory(const Store& store, const IpAddr& addr, bool with_windows) {
  ASSIGN_OR_RETURN(SourceEntries e, LookupSource(store, addr));
  return SourceHistory(store, e, with_windows);
}

Result<IpHistory> SourceHistory(const Store& store, const SourceEntries& e, bool with_windows) {
  const IpAddr& addr = e.addr;
  IpHistory h;
  h.addr = addr;
  DecodedBlock blk;
  const TimeZone& tz = store.tz();
  constexpr uint32_t kColumns = col::kSrc | col::kTs | col::kSensor | col::kPorts | col::kHeader;
  // Counts the rows of `addr` in a decoded block of an input without a source index.
  auto scan = [&]() {
    for (size_t i = 0; i < blk.batch.rows.size(); ++i) {
      const Observation& o = blk.batch.rows[i];
      if (!(o.src == addr)) continue;
      if (!h.seen || o.ts_us < h.first_us) h.first_us = o.ts_us;
      if (!h.seen || o.ts_us > h.last_us) h.last_us = o.ts_us;
      h.seen = true;
      h.geo = blk.geo[i];
      h.packets++;
      h.ports[PortKeyOf(o)]++;
      h.sensors[o.sensor]++;
      h.days[tz.LocalDay(o.ts_us)]++;
      h.ttls[o.ttl]++;
    }
  };
  // Inputs with a source index hold a summary of each visit (a source's packets in one
  // segment); the others (none in a store of this format) are scanned by the blocks' source
  // ranges.
  int64_t latest = INT64_MIN;
  for (const SourceEntries::Entry& en : e.entries) {
    const SourceSummary& sum = en.sum;
    if (!h.seen || sum.first_us < h.first_us) h.first_us = sum.first_us;
    if (!h.seen || sum.last_us > h.last_us) h.last_us = sum.last_us;
    h.seen = true;
    if (sum.last_us >= latest) {  // the enrichment of the latest capture
      latest = sum.last_us;
      h.geo = sum.geo;
    }
    h.packets += sum.packets;
    for (const auto& [k, n] : sum.ports) h.ports[k] += n;
    for (const auto& [t, n] : sum.ttls) h.ttls[t] += n;
    for (const Visit& v : sum.visits) {
      h.sensors[v.sensor] += v.packets;
      h.days[v.day] += v.packets;
    }
  }
  for (const auto& seg : store.manifest().segments) {
    if (!e.unindexed.count(seg.id)) continue;
    ASSIGN_OR_RETURN(auto reader, store.OpenSegment(seg.id));
    const auto& blocks = reader->blocks();
    for (size_t b = 0; b < blocks.size(); ++b) {
      if (addr < blocks[b].src_min || blocks[b].src_max < addr) continue;
      RETURN_IF_ERROR(reader->ReadBlock(b, kColumns, &blk));
      scan();
    }
  }
  // TCP windows are in no summary: the source's own blocks, indexed or not.
  if (with_windows) {
    RETURN_IF_ERROR(
        ScanSourceRows(store, e, col::kPorts | col::kHeader, [&](const DecodedBlock& b, size_t i) {
          const Observation& o = b.batch.rows[i];
          if (o.proto == 6) h.windows[o.window]++;
        }));
  }
  return h;
}

Result<IpHistory> SourceHistory(const Store& store, const IpAddr& addr,
                                const SensorSelection& sel) {
  ASSIGN_OR_RETURN(SourceEntries e, LookupSource(store, addr));
  return SourceHistory(store, e, sel);
}

Result<IpHistory> SourceHistory(const Store& store, const SourceEntries& e,
                                const SensorSelection& sel) {
  if (sel.sensors.empty()) return SourceHistory(store, e);
  IpHistory h;
  h.addr = e.addr;
  const TimeZone& tz = store.tz();
  RETURN_IF_ERROR(ScanSourceRows(store, e,
                                 col::kSrc | col::kTs | col::kSensor | col::kPorts | col::kHeader,
                                 [&](const DecodedBlock& blk, size_t i) {
                                   const Observation& o = blk.batch.rows[i];
                                   if (!sel.Allows(o.sensor)) return;
                                   if (!h.seen || o.ts_us < h.first_us) h.first_us = o.ts_us;
                                   if (!h.seen || o.ts_us > h.last_us) h.last_us = o.ts_us;
                                   h.seen = true;
                                   if (i < blk.geo.size()) h.geo = blk.geo[i];
                                   h.packets++;
                                   h.ports[PortKeyOf(o)]++;
                                   h.sensors[o.sensor]++;
                                   h.days[tz.LocalDay(o.ts_us)]++;
                                   h.ttls[o.ttl]++;
                                   if (o.proto == 6) h.windows[o.window]++;
                                 }));
  return h;
}

Status ScanSourceRows(const Store& store, const IpAddr& addr, uint32_t columns,
                      const std::function<void(const DecodedBlock&, size_t)>& fn) {
  return ScanSourceRows(store, addr, columns, fn, nullptr);
}

Status ScanSourceRows(const Store& store, const IpAddr& addr, uint32_t columns,
                      const std::function<void(const DecodedBlock&, size_t)>& fn,
                      SourceSample* sample) {
  ASSIGN_OR_RETURN(SourceEntries e, LookupSource(store, addr));
  return ScanSourceRows(store, e, columns, fn, sample);
}

Status ScanSourceRows(const Store& store, const SourceEntries& e, uint32_t columns,
                      const std::function<void(const DecodedBlock&, size_t)>& fn,
                      SourceSample* sample) {
  const IpAddr& addr = e.addr;
  columns |= col::kSrc;
  DecodedBlock blk;
  // (segment, block) pairs already read: a block is passed once even if two visits name it.
  std::set<std::pair<uint64_t, uint32_t>> done;
  auto read = [&](const SegmentReader& reader, uint64_t seg, uint32_t b) -> Status {
    if (!done.insert({seg, b}).second) return OkStatus();
    RETURN_IF_ERROR(reader.ReadBlock(b, columns, &blk));
    if (sample) sample->read++;
    for (size_t i = 0; i < blk.batch.rows.size(); ++i) {
      if (!(blk.batch.rows[i].src == addr)) continue;
      fn(blk, i);
      if (sample) sample->rows++;
    }
    return OkStatus();
  };
  // The blocks the index entries name, with their day: all of them, or the latest days' first.
  struct Ref {
    int32_t day;
    uint64_t segment;
    uint32_t block;
    uint64_t index_id;
  };
  std::vector<Ref> refs;
  for (const SourceEntries::Entry& en : e.entries) {
    for (const Visit& v : en.sum.visits) {
      if (v.day < store.manifest().segments_from) continue;  // dropped by retention
      for (uint32_t b = 0; b < v.blocks; ++b) {
        refs.push_back({v.day, v.first.segment, v.first.block + b, en.index_id});
      }
    }
  }
  std::set<std::pair<uint64_t, uint32_t>> distinct;
  for (const Ref& r : refs) distinct.insert({r.segment, r.block});
  if (sample) sample->named = distinct.size();
  if (sample && (distinct.size() > sample->max_blocks ||
                 (sample->max_rows != SIZE_MAX && distinct.size() > 1))) {
    std::stable_sort(refs.begin(), refs.end(),
                     [](const Ref& a, const Ref& b) { return a.day > b.day; });
  }
  std::unique_ptr<SegmentReader> reader;
  uint64_t open_id = 0;
  for (const Ref& r : refs) {
    if (sample && (sample->read >= sample->max_blocks || sample->rows >= sample->max_rows)) break;
    if (!reader || open_id != r.segment) {
      ASSIGN_OR_RETURN(reader, store.OpenSegment(r.segment));
      open_id = r.segment;
    }
    if (r.block >= reader->blocks().size()) {
      return DataLoss(fmt::format("source index {:08}: segment {:08} has no block {}", r.index_id,
                                  r.segment, r.block));
    }
    RETURN_IF_ERROR(read(*reader, r.segment, r.block));
  }
  for (const auto& seg : store.manifest().segments) {
    if (!e.unindexed.count(seg.id)) continue;
    ASSIGN_OR_RETURN(auto reader, store.OpenSegment(seg.id));
    const auto& blocks = reader->blocks();
    for (size_t b = 0; b < blocks.size(); ++b) {
      if (addr < blocks[b].src_min || blocks[b].src_max < addr) continue;
      if (sample) sample->named++;
      RETURN_IF_ERROR(read(*reader, seg.id, static_cast<uint32_t>(b)));
    }
  }
  return OkStatus();
}

namespace {

std::vector<SourceCount> FirstN(std::vector<SourceCount> all, size_t n) {
  auto by_packets = [](const SourceCount& x, const SourceCount& y) {
    return x.packets != y.packets ? x.packets > y.packets : x.addr < y.addr;
  };
  size_t k = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<ptrdiff_t>(k), all.end(), by_packets);
  all.resize(k);
  return all;
}

}  // namespace

Result<std::vector<SourceCount>> TopSources(const Store& store, PortKey port, const Period& period,
                                            const SensorSelection& f, size_t n) {
  // Sum the port's heavy-hitter summaries over the rollups that cover the period. Each summary
  // undercounts a source by at most (its packets − its counts) / (slots + 1), and leaves out
  // only sources with at most that many: the sum of those slacks bounds every count.
  ASSIGN_OR_RETURN(Cover c, CoverDays(store, period.first_day, period.end_day, f,
                                      AllSensors(store, f), 0));  // one key: FindKey verifies
  std::unordered_map<IpAddr, uint64_t, IpAddrHash> counts;
  uint64_t slack = 0;
  std::vector<HeavyEntry> entries;
  for (const auto& v : c.views) {
    ASSIGN_OR_RETURN(const RollupFile::KeyRec* r, FindKey(v, Dimension::kPort, port));
    if (!r) continue;
    entries.clear();
    RETURN_IF_ERROR(v.file->AppendHeavy(*r, &entries));
    uint64_t kept = 0;
    for (const auto& [a, k] : entries) {
      counts[a] += k;
      kept += k;
    }
    if (kept < r->packets) slack += (r->packets - kept) / (v.file->heavy_slots() + 1);
  }
  std::vector<SourceCount> all;
  all.reserve(counts.size());
  for (const auto& [a, k] : counts) all.push_back({a, k, slack});
  return FirstN(std::move(all), n);
}

Result<std::vector<SourceCount>> TopSourcesExact(const Store& store, PortKey port,
                                                 const Period& period, const SensorSelection& f,
                                                 size_t n) {
  // Segments are sorted by source: a source's rows in a block are one run, so counts are summed
  // per run and merged across blocks and segments by address.
  std::unordered_map<IpAddr, uint64_t, IpAddrHash> counts;
  DecodedBlock blk;
  for (const auto& seg : store.manifest().segments) {
    if (seg.day < period.first_day || seg.day >= period.end_day) continue;
    ASSIGN_OR_RETURN(auto reader, store.OpenSegment(seg.id));
    for (size_t b = 0; b < reader->blocks().size(); ++b) {
      RETURN_IF_ERROR(reader->ReadBlock(b, col::kSrc | col::kSensor | col::kPorts, &blk));
      for (const Observation& o : blk.batch.rows) {
        if (f.Allows(o.sensor) && PortKeyOf(o) == port) counts[o.src]++;
      }
    }
  }
  std::vector<SourceCount> all;
  all.reserve(counts.size());
  for (const auto& [a, c] : counts) all.push_back({a, c, 0});
  return FirstN(std::move(all), n);
}

namespace {
// The segments of the period's days; with `backscatter`, those that may hold backscatter, in
// order of their days.
std::vector<const SegmentRecord*> SegmentsOf(const Store& store, const Period& period,
                                             bool backscatter) {
  std::vector<const SegmentRecord*> segs;
  for (const auto& seg : store.manifest().segments) {
    if (seg.day < period.first_day || seg.day >= period.end_day) continue;
    if (backscatter && seg.rows_of == SegmentRows::kNoBackscatter) continue;
    segs.push_back(&seg);
  }
  if (backscatter) {
    std::stable_sort(segs.begin(), segs.end(), [](const SegmentRecord* a, const SegmentRecord* b) {
      return a->day < b->day;
    });
  }
  return segs;
}

// ScanRows, and with `backscatter` ScanBackscatterRows (day by day, `day_done` after each).
Status ScanRowsOf(const Store& store, const Period& period, const SensorSelection& f,
                  uint32_t columns, bool backscatter,
                  const std::function<void(const DecodedBlock&)>& fn,
                  const std::function<void(int32_t)>& day_done = nullptr) {
  DecodedBlock blk;
  // A row's kind of backscatter comes with the classes, which any of these columns decodes.
  if (backscatter && !(columns & (col::kDst | col::kPorts | col::kHeader | col::kBlob))) {
    columns |= col::kPorts;
  }
  const std::vector<const SegmentRecord*> segs = SegmentsOf(store, period, backscatter);
  for (size_t si = 0; si < segs.size(); ++si) {
    const SegmentRecord& seg = *segs[si];
    // Rows to keep one by one: of some sensors only, or backscatter among other rows.
    const bool sift = backscatter && seg.rows_of == SegmentRows::kAll;
    ASSIGN_OR_RETURN(auto reader, store.OpenSegment(seg.id));
    for (size_t b = 0; b < reader->blocks().size(); ++b) {
      RETURN_IF_ERROR(reader->ReadBlock(b, columns | col::kSensor, &blk));
      if (!f.sensors.empty() || sift) {
        // Compacted in place: callers see only the rows they asked for, geo kept parallel.
        const bool with_geo = blk.geo.size() == blk.batch.rows.size();
        size_t kept = 0;
        for (size_t i = 0; i < blk.batch.rows.size(); ++i) {
          const Observation& o = blk.batch.rows[i];
          if (!f.sensors.empty() && !f.Allows(o.sensor)) continue;
          if (sift && !IsBackscatter(o)) continue;
          blk.batch.rows[kept] = o;
          if (with_geo) blk.geo[kept] = blk.geo[i];
          ++kept;
        }
        blk.batch.rows.resize(kept);
        if (with_geo) blk.geo.resize(kept);
      }
      if (!blk.batch.rows.empty()) fn(blk);
    }
    if (day_done && (si + 1 == segs.size() || segs[si + 1]->day != seg.day)) day_done(seg.day);
  }
  return OkStatus();
}
}  // namespace

Status ScanRows(const Store& store, const Period& period, const SensorSelection& f,
                uint32_t columns, const std::function<void(const DecodedBlock&)>& fn) {
  return ScanRowsOf(store, period, f, columns, false, fn);
}

uint64_t BackscatterScanCost(const Store& store, const Period& period) {
  uint64_t rows = 0;
  for (const SegmentRecord* seg : SegmentsOf(store, period, true)) rows += seg->rows;
  return rows;
}

Status ScanBackscatterRows(const Store& store, const Period& period, const SensorSelection& f,
                           uint32_t columns, const std::function<void(const DecodedBlock&)>& fn,
                           const std::function<void(int32_t)>& day_done) {
  return ScanRowsOf(store, period, f, columns, true, fn, day_done);
}

}  // namespace teiten
