#include "analysis/outages.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "analysis/robust_stats.h"
#include "common/time_zone.h"

namespace teiten {

std::vector<OutageSpan> FindOutageSpans(const std::vector<double>& sources,
                                        const std::vector<bool>& ok, size_t from,
                                        const OutageRules& rules) {
  const size_t n = std::min(sources.size(), ok.size());
  std::vector<bool> out(n, false);
  std::vector<double> base_at(n, 0);
  for (size_t i = from; i < n; ++i) {
    if (!ok[i]) continue;
    std::vector<double> base;
    for (size_t j = i; j-- > 0 && base.size() < static_cast<size_t>(rules.lookback_days);) {
      if (ok[j] && !out[j]) base.push_back(sources[j]);
    }
    if (base.empty()) continue;
    const double m = stats::Median(base);
    base_at[i] = m;
    const double scale = std::max({1.4826 * stats::Mad(base), std::sqrt(m), 1.0});
    if (m >= rules.min_baseline && sources[i] <= rules.fraction * m &&
        sources[i] <= m - rules.sigmas * scale) {
      out[i] = true;
    }
  }
  std::vector<OutageSpan> spans;
  for (size_t i = from; i < n; ++i) {
    if (!out[i] || (i > from && out[i - 1])) continue;
    size_t j = i;
    // A day without data inside an outage does not end it.
    while (j + 1 < n && (out[j + 1] || (!ok[j + 1] && j + 2 < n && out[j + 2]))) ++j;
    spans.push_back({i, j, base_at[i]});
    i = j;
  }
  return spans;
}

Result<Dimension> ParseOutageDimension(std::string_view text) {
  if (text == "country") return Dimension::kCountry;
  if (text == "asn") return Dimension::kAsn;
  return InvalidArgument(fmt::format("'{}': expected country or asn", text));
}

Result<OutagesResult> FindOutages(const Store& store, Dimension dim, const Period& period,
                                  const SensorSelection& filter, const OutageRules& rules) {
  if (dim != Dimension::kCountry && dim != Dimension::kAsn) {
    return InvalidArgument("outages are of countries or ASNs");
  }
  OutagesResult res;
  res.period = period;
  res.dim = dim;
  res.rules = rules;
  // Baselines need lookback days before the first day that may be an outage day, and an outage
  // that began before the period is found with its true start: detection begins lookback days
  // before the period, on a baseline of the lookback days before that.
  const int32_t lookback = std::max(rules.lookback_days, 1);
  int32_t first = period.first_day - 2 * lookback;
  const auto& days = store.manifest().days;
  if (!days.empty()) first = std::max(first, std::min(days.begin()->first, period.first_day));
  res.window_first = first;
  const Period window = DaysPeriod(first, period.end_day);
  const size_t from = static_cast<size_t>(std::max(0, period.first_day - lookback - first));
  const size_t p0 = static_cast<size_t>(period.first_day - first);

  // Candidates: a key can be flagged only when the median of some of its daily sources reaches
  // min_baseline, so only when some day of the window has that many. The quarters that hold
  // the window count each key's distinct sources over a superset of that day: their part
  // rollups answer it stored, where a union over the window's days would unite the sets of
  // every day (seconds on a store of 1 G packets). No key that could be flagged is left out.
  std::set<uint64_t> keys;
  int y = 0;
  unsigned m = 0, d = 0;
  TimeZone::CivilFromDays(first, &y, &m, &d);
  for (Period q = QuarterPeriod(y, static_cast<int>((m - 1) / 3 + 1)); q.first_day < period.end_day;
       q = QuarterPeriod(q.index == 4 ? q.year + 1 : q.year, q.index % 4 + 1)) {
    ASSIGN_OR_RETURN(TopResult top, Top(store, dim, q, filter, SIZE_MAX, 1));
    for (const RankRow& r : top.rows) {
      if (r.key != 0 && static_cast<double>(r.sources) >= rules.min_baseline) keys.insert(r.key);
    }
  }
  if (keys.empty()) return res;
  ASSIGN_OR_RETURN(SeriesResult all,
                   Series(store, Dimension::kPort, {}, window, Granularity::kDay, filter));
  std::vector<bool> ok;
  for (const SeriesPoint& pt : all.points) ok.push_back(pt.packets[0] > 0);
  const std::vector<uint64_t> ks(keys.begin(), keys.end());
  ASSIGN_OR_RETURN(SeriesResult s, Series(store, dim, ks, window, Granularity::kDay, filter));
  size_t last_ok = ok.size();
  for (size_t i = ok.size(); i-- > 0;) {
    if (ok[i]) {
      last_ok = i;
      break;
    }
  }
  for (size_t k = 0; k < ks.size(); ++k) {
    std::vector<double> src(ok.size(), 0), pk(ok.size(), 0);
    for (size_t i = 0; i < s.points.size() && i < ok.size(); ++i) {
      src[i] = static_cast<double>(s.points[i].sources[k]);
      pk[i] = static_cast<double>(s.points[i].packets[k]);
    }
    // A baseline is a median of daily sources: one under min_baseline every day cannot reach it.
    if (src.empty() || *std::max_element(src.begin(), src.end()) < rules.min_baseline) continue;
    ++res.keys_checked;
    for (const OutageSpan& sp : FindOutageSpans(src, ok, from, rules)) {
      if (sp.last < p0) continue;  // over before the period began
      Outage o;
      o.key = ks[k];
      o.first_day = first + static_cast<int32_t>(sp.first);
      o.last_day = first + static_cast<int32_t>(sp.last);
      o.ongoing = sp.last == last_ok;
      o.baseline = sp.baseline;
      std::vector<double> before;
      for (size_t j = sp.first; j-- > 0 && before.size() < static_cast<size_t>(lookback);) {
        if (ok[j]) before.push_back(pk[j]);
      }
      o.packets_before = stats::Median(before);
      double n = 0, ssum = 0, psum = 0;
      o.lowest = INFINITY;
      for (size_t j = sp.first; j <= sp.last; ++j) {
        if (!ok[j]) continue;
        n += 1;
        ssum += src[j];
        psum += pk[j];
        o.lowest = std::min(o.lowest, src[j]);
      }
      o.sources = n > 0 ? ssum / n : 0;
      o.packets = n > 0 ? psum / n : 0;
      if (n == 0) o.lowest = 0;
      o.depth = o.baseline > 0 ? 1 - o.sources / o.baseline : 0;
      res.outages.push_back(o);
    }
  }
  std::sort(res.outages.begin(), res.outages.end(), [](const Outage& a, const Outage& b) {
    if (a.first_day != b.first_day) return a.first_day < b.first_day;
    if (a.depth != b.depth) return a.depth > b.depth;
    return a.key < b.key;
  });
  return res;
}

}  // namespace teiten
