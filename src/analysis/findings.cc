#include "analysis/findings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "analysis/os_guesses.h"
#include "analysis/outages.h"
#include "analysis/payloads.h"
#include "analysis/robust_stats.h"
#include "analysis/tools.h"

namespace teiten {

const char* FindingKindName(FindingKind k) {
  switch (k) {
    case FindingKind::kSpike:
      return "spike";
    case FindingKind::kRise:
      return "rise";
    case FindingKind::kTopEntry:
      return "top-entry";
    case FindingKind::kDominantSource:
      return "dominant-source";
    case FindingKind::kPortsTogether:
      return "ports-together";
    case FindingKind::kRegionEntry:
      return "region-entry";
    case FindingKind::kRegionSilent:
      return "region-silent";
  }
  return "?";
}

bool Finding::Has(FindingKind k) const {
  return Fact(k) != nullptr;
}

const FindingFact* Finding::Fact(FindingKind k) const {
  for (const auto& f : facts) {
    if (f.kind == k) return &f;
  }
  return nullptr;
}

namespace findings_stats {

double Median(std::vector<double> v) {
  return stats::Median(std::move(v));
}

double Mad(const std::vector<double>& v) {
  return stats::Mad(v);
}

double MannKendallZ(const std::vector<double>& v) {
  const size_t n = v.size();
  if (n < 3) return 0;
  double s = 0;
  for (size_t i = 0; i + 1 < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) s += (v[j] > v[i]) - (v[j] < v[i]);
  }
  // Variance with the correction for tied groups.
  std::map<double, size_t> groups;
  for (double x : v) groups[x]++;
  double nn = static_cast<double>(n);
  double var = nn * (nn - 1) * (2 * nn + 5);
  for (const auto& [x, t] : groups) {
    double tt = static_cast<double>(t);
    var -= tt * (tt - 1) * (2 * tt + 5);
  }
  var /= 18;
  if (var <= 0) return 0;
  if (s > 0) return (s - 1) / std::sqrt(var);
  if (s < 0) return (s + 1) / std::sqrt(var);
  return 0;
}

double TheilSenSlope(const std::vector<double>& v) {
  std::vector<double> slopes;
  for (size_t i = 0; i + 1 < v.size(); ++i) {
    for (size_t j = i + 1; j < v.size(); ++j) {
      slopes.push_back((v[j] - v[i]) / static_cast<double>(j - i));
    }
  }
  return Median(std::move(slopes));
}

size_t HingeChangePoint(const std::vector<double>& v, size_t min_after) {
  const size_t n = v.size();
  if (n < min_after + 3) return 0;
  double best = INFINITY;
  size_t best_t = 0;
  // For each t0, least squares of y on [1, (t − t0)⁺]: a 2×2 normal system in closed form.
  for (size_t t0 = 2; t0 + min_after <= n; ++t0) {
    double sx = 0, sxx = 0, sy = 0, sxy = 0;
    for (size_t t = 0; t < n; ++t) {
      double x = t >= t0 ? static_cast<double>(t - t0) : 0.0;
      sx += x;
      sxx += x * x;
      sy += v[t];
      sxy += x * v[t];
    }
    double nn = static_cast<double>(n);
    double det = nn * sxx - sx * sx;
    if (std::fabs(det) < 1e-12) continue;
    double b = (nn * sxy - sx * sy) / det;
    double a = (sy - b * sx) / nn;
    double sse = 0;
    for (size_t t = 0; t < n; ++t) {
      double fit = a + (t >= t0 ? b * static_cast<double>(t - t0) : 0.0);
      sse += (v[t] - fit) * (v[t] - fit);
    }
    if (sse < best - 1e-9) {
      best = sse;
      best_t = t0;
    }
  }
  return best_t;
}

size_t StepChangePoint(const std::vector<double>& v, size_t min_before, size_t min_after) {
  const size_t n = v.size();
  if (min_before == 0 || min_after == 0 || n < min_before + min_after) return 0;
  double best = 0;
  size_t best_k = 0;
  for (size_t k = min_before; k + min_after <= n; ++k) {
    std::vector<double> a(v.begin(), v.begin() + static_cast<ptrdiff_t>(k));
    std::vector<double> b(v.begin() + static_cast<ptrdiff_t>(k), v.end());
    double ma = Median(a), mb = Median(b);
    // Spread of the residuals around each side's own median, floored at Poisson noise.
    std::vector<double> res;
    for (double x : a) res.push_back(x - ma);
    for (double x : b) res.push_back(x - mb);
    double sigma = std::max({1.4826 * Mad(res), std::sqrt(std::max(ma, mb)), 1.0});
    double z = std::fabs(mb - ma) / (sigma * std::sqrt(1.0 / static_cast<double>(a.size()) +
                                                       1.0 / static_cast<double>(b.size())));
    if (z > best) {
      best = z;
      best_k = k;
    }
  }
  return best >= kStepZ ? best_k : 0;
}

}  // namespace findings_stats

namespace {

using findings_stats::HingeChangePoint;
using findings_stats::Mad;
using findings_stats::MannKendallZ;
using findings_stats::Median;
using findings_stats::StepChangePoint;
using findings_stats::TheilSenSlope;

// The fewest days before and after a step in level before a rise's bend. After it, fewer: the
// bend may itself be a few days early when the step is close before the rise (a week).
constexpr size_t kStepMinDays = 7;
constexpr size_t kStepMinDaysAfter = 4;

// Days a spike's baseline looks back over.
constexpr int kSpikeLookback = 14;
// Days at the end of a rise its "after" level is the median of.
constexpr int kTailDays = 7;
// Ports whose rises begin within this many days of each other may be moving together.
constexpr int kTogetherDays = 3;
// A spike this many days long that stays up is a new level.
constexpr size_t kShiftDays = 7;
// Sources compared between ports moving together, and the overlap that makes them shared.
constexpr size_t kTogetherSources = 64;
constexpr double kTogetherOverlap = 0.2;
// The busiest sources of each port whose history (SourceHistory) is read for the ports they probed.
constexpr size_t kTogetherHistories = 16;
// ... and the share of them that must have probed the other port.
constexpr double kTogetherProbed = 0.5;
// Sources that probed more ports than this (sweeps, random-port scanners) are left out of it.
constexpr size_t kTogetherMaxPorts = 32;

// Daily packets and distinct sources of one key over the window; `ok` marks days with any data.
struct Daily {
  std::vector<double> pk, src;
};

struct Window {
  int32_t first = 0, end = 0;  // days read
  int32_t p0 = 0;              // index of the period's first day
  std::vector<bool> ok;        // the store holds data on that day (for the selection)
  std::vector<double> total_pk, total_src;
  size_t size() const { return ok.size(); }
};

struct Episode {
  size_t first = 0, last = 0;  // window indices, inclusive
  bool ongoing = false;        // still above baseline on the window's last day
  bool shift = false;          // held kShiftDays days and stayed: a new level
  bool abrupt = false;         // shift: its first day at least twice the day before it
};

// Spike episodes of `v` within the period: days far above the robust baseline of the preceding
// days (the median of up to kSpikeLookback days with data, flagged days left out). A run of
// kShiftDays flagged days is a level shift when the series stays above the old threshold to
// the window's end: the baseline restarts at the shift's first day (later spikes are measured
// against the new level). A run that falls back before the end is one long spike.
std::vector<Episode> SpikeEpisodes(const Window& w, const std::vector<double>& v,
                                   const std::vector<double>& total, double min_share, double ratio,
                                   const FindingOptions& o, std::vector<double>* base_out) {
  const size_t n = w.size();
  std::vector<bool> flagged(n, false);
  std::vector<double> thr(n, INFINITY);
  base_out->assign(n, 0);
  std::vector<Episode> eps;
  size_t regime = 0, run_first = 0, run_len = 0;
  for (size_t i = static_cast<size_t>(w.p0); i < n; ++i) {
    if (!w.ok[i]) continue;
    std::vector<double> base;
    for (size_t j = i; j-- > regime && base.size() < kSpikeLookback;) {
      if (w.ok[j] && !flagged[j]) base.push_back(v[j]);
    }
    if (base.empty()) {
      run_len = 0;
      continue;
    }
    double m = Median(base);
    double scale = std::max({1.4826 * Mad(base), std::sqrt(m), 1.0});
    (*base_out)[i] = m;
    thr[i] = std::max(m + o.spike_sigmas * scale, ratio * std::max(m, 1.0));
    if (v[i] < thr[i] || v[i] - m < min_share * total[i]) {
      run_len = 0;
      continue;
    }
    flagged[i] = true;
    if (run_len++ == 0) run_first = i;
    if (run_len < kShiftDays) continue;
    // A week above: does it stay above the old threshold to the end?
    Episode e;
    e.first = run_first;
    e.last = i;
    bool fell = false;
    for (size_t j = i + 1; j < n && !fell; ++j) {
      if (!w.ok[j]) continue;
      if (v[j] < thr[run_first]) {
        fell = true;
      } else {
        e.last = j;
      }
    }
    run_len = 0;
    if (fell) {
      // One long spike: its days stay out of later baselines.
      for (size_t j = run_first; j <= e.last; ++j) flagged[j] = w.ok[j];
      i = e.last;
      continue;
    }
    e.shift = true;
    e.ongoing = true;
    double prev = 0;
    for (size_t j = run_first; j-- > 0;) {
      if (w.ok[j]) {
        prev = v[j];
        break;
      }
    }
    e.abrupt = v[run_first] >= 2 * std::max(prev, 1.0);
    for (size_t j = run_first; j <= i; ++j) flagged[j] = false;
    regime = run_first;
    eps.push_back(e);
  }
  std::vector<Episode> spikes;
  for (size_t i = static_cast<size_t>(w.p0); i < n; ++i) {
    if (!flagged[i]) continue;
    if (!spikes.empty() && spikes.back().last + 1 == i) {
      spikes.back().last = i;
    } else if (!spikes.empty() && spikes.back().last + 2 == i && !w.ok[i - 1]) {
      spikes.back().last = i;  // a day without data does not split an episode
    } else {
      spikes.push_back({i, i, false, false, false});
    }
  }
  if (!spikes.empty() && spikes.back().last + 1 == n) spikes.back().ongoing = true;
  eps.insert(eps.end(), spikes.begin(), spikes.end());
  std::sort(eps.begin(), eps.end(),
            [](const Episode& a, const Episode& b) { return a.first < b.first; });
  return eps;
}

struct RiseResult {
  bool found = false;
  size_t t0 = 0;  // window index
  double before = 0, after = 0, slope = 0, z = 0;
  bool on_packets = false;  // the series was packets per day (else distinct sources)
};

// The squared error of the least-squares line through y[a..e).
double LineSse(const std::vector<double>& y, size_t a, size_t e) {
  const double n = static_cast<double>(e - a);
  if (e - a < 2) return 0;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t k = a; k < e; ++k) {
    double x = static_cast<double>(k - a);
    sx += x, sy += y[k], sxx += x * x, sxy += x * y[k];
  }
  double det = n * sxx - sx * sx;
  double b = det > 0 ? (n * sxy - sx * sy) / det : 0;
  double c = (sy - b * sx) / n;
  double sse = 0;
  for (size_t k = a; k < e; ++k) {
    double d = y[k] - (c + b * static_cast<double>(k - a));
    sse += d * d;
  }
  return sse;
}

// A steady rise of `v` (distinct sources, or packets, per day) beginning inside the period, fit
// over the window's days from index `from` on. `skip` marks days left out (spike days that
// ended).
RiseResult FindRise(const Window& w, const std::vector<double>& v, const std::vector<bool>& skip,
                    size_t from, const std::vector<double>& total, double min_share,
                    const FindingOptions& o) {
  RiseResult r;
  std::vector<double> y;
  std::vector<size_t> idx;
  for (size_t i = from; i < w.size(); ++i) {
    if (!w.ok[i] || skip[i]) continue;
    y.push_back(v[i]);
    idx.push_back(i);
  }
  size_t min_after = static_cast<size_t>(std::max(o.rise_min_days, 3));
  size_t t = HingeChangePoint(y, min_after);
  if (t == 0) return r;
  // A small step up before the bend (a phase or quarter boundary: every port a few per cent
  // busier) makes the flat part of the hinge a compromise between two levels, and the bend
  // slides back towards the step. The rise is measured against the latest level: refit from the
  // step on. Bounded to one refit, each one on fewer days.
  size_t regime = 0;
  if (size_t k =
          StepChangePoint(std::vector<double>(y.begin(), y.begin() + static_cast<ptrdiff_t>(t)),
                          kStepMinDays, kStepMinDaysAfter);
      k > 0) {
    std::vector<double> rest(y.begin() + static_cast<ptrdiff_t>(k), y.end());
    if (size_t t2 = HingeChangePoint(rest, min_after); t2 > 0) {
      regime = k;
      t = k + t2;
    }
  }
  // The hinge dates the bend of the best fit, which day-to-day noise in the flat part can pull a
  // few days early. The rise begins where the series last rose above the level of the days
  // before the bend (median + ½σ̂) and stayed above it: at least `min_after` days to the end
  // (by chance, for a flat series, 0.31^7 ≈ 3·10⁻⁴).
  {
    size_t b0 = std::max(regime, t > static_cast<size_t>(o.baseline_days)
                                     ? t - static_cast<size_t>(o.baseline_days)
                                     : 0);
    std::vector<double> pre(y.begin() + static_cast<ptrdiff_t>(b0),
                            y.begin() + static_cast<ptrdiff_t>(t));
    double m = Median(pre);
    const double sigma = std::max({1.4826 * Mad(pre), std::sqrt(m), 1.0});
    double level = m + 0.5 * sigma;
    size_t s = y.size();
    for (size_t k = y.size(); k-- > t && y[k] > level;) s = k;
    // Ordinary days sit above that margin one time in three, so a run of them just before the
    // real start would be taken in (2–3 days early), while the first days of a slow ramp are no
    // higher. Between the run's first day and its first day clearly above the old level (2σ̂),
    // the start is the day that best splits the days into the old level (m, fixed: it is the
    // level of the days before) and a straight line (least squares over two weeks from there):
    // noise days followed by a jump fit the old level, a ramp's first days fit the line.
    const double clear = m + 2 * sigma;
    size_t s1 = s;
    while (s1 + min_after < y.size() && y[s1] <= clear) ++s1;
    if (s1 > s) {
      const size_t e = std::min(y.size(), s1 + 14);
      double best = INFINITY;
      size_t best_s = s1;
      for (size_t c = s; c <= s1; ++c) {
        double cost = 0;
        for (size_t k = s; k < c; ++k) cost += (y[k] - m) * (y[k] - m);
        cost += LineSse(y, c, e);
        if (cost < best - 1e-9) best = cost, best_s = c;
      }
      s = best_s;
    }
    if (s + min_after > y.size()) return r;
    t = s;
  }
  if (idx[t] < static_cast<size_t>(w.p0)) return r;  // began before the period
  std::vector<double> after(y.begin() + static_cast<ptrdiff_t>(t), y.end());
  std::vector<double> before(y.begin() + static_cast<ptrdiff_t>(std::max(
                                             regime, t > static_cast<size_t>(o.baseline_days)
                                                         ? t - static_cast<size_t>(o.baseline_days)
                                                         : 0)),
                             y.begin() + static_cast<ptrdiff_t>(t));
  std::vector<double> tail(
      after.end() - static_cast<ptrdiff_t>(std::min<size_t>(kTailDays, after.size())), after.end());
  r.t0 = idx[t];
  r.before = Median(before);
  r.after = Median(tail);
  r.z = MannKendallZ(after);
  r.slope = TheilSenSlope(after);
  std::vector<double> tail_total;
  for (size_t k = y.size() - tail.size(); k < y.size(); ++k) tail_total.push_back(total[idx[k]]);
  double day_total = Median(tail_total);
  r.found = r.z >= o.rise_z && r.slope > 0 && r.after >= o.rise_ratio * std::max(r.before, 1.0) &&
            r.after - r.before >= min_share * day_total;
  return r;
}

// Too few days for the trend test (a window shorter than rise_min_days + 3 days with data): a
// rise is a lasting jump by the spike test at `rise_ratio` instead of `spike_ratio`, the excess
// at least 3× the usual share, not on days of about one packet per source (spoofed-looking).
RiseResult FindShortRise(const Window& w, const std::vector<double>& v,
                         const std::vector<double>* pk, const std::vector<double>& total,
                         double min_share, const FindingOptions& o) {
  RiseResult r;
  std::vector<double> base;
  for (const Episode& e : SpikeEpisodes(w, v, total, 3 * min_share, o.rise_ratio, o, &base)) {
    if (!e.ongoing) continue;
    bool sprayed = false;
    for (size_t j = e.first; pk && j < w.size(); ++j) sprayed |= w.ok[j] && (*pk)[j] < 1.5 * v[j];
    if (sprayed) continue;
    std::vector<double> ys;
    for (size_t j = e.first > 0 ? e.first - 1 : 0; j < w.size(); ++j) {
      if (w.ok[j]) ys.push_back(v[j]);
    }
    r = {true, e.first, base[e.first], ys.back(), TheilSenSlope(ys), MannKendallZ(ys)};
    break;
  }
  return r;
}

struct Detector {
  const Store& store;
  const Period& period;
  const SensorSelection& filter;
  const FindingOptions& o;
  Window w;
  double period_packets = 0;
  double period_sources_per_day = 0;

  int32_t Day(size_t i) const { return w.first + static_cast<int32_t>(i); }

  // Too few days with data for the trend test.
  bool ShortWindow() const {
    size_t days = 0;
    for (bool b : w.ok) days += b;
    return days < static_cast<size_t>(std::max(o.rise_min_days, 3)) + 3;
  }

  Status ReadWindow() {
    int32_t first = period.first_day - o.baseline_days;
    const auto& days = store.manifest().days;
    if (!days.empty()) first = std::max(first, std::min(days.begin()->first, period.first_day));
    w.first = first;
    w.end = period.end_day;
    w.p0 = period.first_day - first;
    ASSIGN_OR_RETURN(
        SeriesResult tot,
        Series(store, Dimension::kPort, {}, DaysPeriod(w.first, w.end), Granularity::kDay, filter));
    for (const auto& pt : tot.points) {
      w.ok.push_back(pt.packets[0] > 0);
      w.total_pk.push_back(static_cast<double>(pt.packets[0]));
      w.total_src.push_back(static_cast<double>(pt.sources[0]));
    }
    std::vector<double> srcs;
    for (size_t i = static_cast<size_t>(w.p0); i < w.size(); ++i) {
      period_packets += w.total_pk[i];
      if (w.ok[i]) srcs.push_back(w.total_src[i]);
    }
    period_sources_per_day = Median(srcs);
    return OkStatus();
  }

  Result<std::vector<uint64_t>> CandidatePorts() {
    std::set<uint64_t> keys;
    ASSIGN_OR_RETURN(TopResult top,
                     Top(store, Dimension::kPort, period, filter, o.period_top_ports));
    for (const auto& r : top.rows) keys.insert(r.key);
    for (int32_t d = period.first_day; d < period.end_day; ++d) {
      if (!w.ok[static_cast<size_t>(d - w.first)]) continue;
      ASSIGN_OR_RETURN(
          std::vector<uint64_t> t,
          TopKeys(store, Dimension::kPort, DaysPeriod(d, d + 1), filter, o.daily_top_ports));
      keys.insert(t.begin(), t.end());
    }
    return std::vector<uint64_t>(keys.begin(), keys.end());
  }

  Result<std::vector<Daily>> ReadDaily(Dimension dim, const std::vector<uint64_t>& keys) {
    std::vector<Daily> out(keys.size());
    if (keys.empty()) return out;
    ASSIGN_OR_RETURN(SeriesResult s, Series(store, dim, keys, DaysPeriod(w.first, w.end),
                                            Granularity::kDay, filter));
    for (auto& d : out) {
      d.pk.assign(w.size(), 0);
      d.src.assign(w.size(), 0);
    }
    for (size_t i = 0; i < s.points.size() && i < w.size(); ++i) {
      for (size_t k = 0; k < keys.size(); ++k) {
        out[k].pk[i] = static_cast<double>(s.points[i].packets[k]);
        out[k].src[i] = static_cast<double>(s.points[i].sources[k]);
      }
    }
    return out;
  }

  // Before/after numbers of a fact over window indices [a, b] against days before a.
  void Numbers(const Daily& d, size_t a, size_t b, FindingFact* f) {
    std::vector<double> bp, bs;
    for (size_t j = a; j-- > 0 && bp.size() < static_cast<size_t>(o.baseline_days);) {
      if (!w.ok[j]) continue;
      bp.push_back(d.pk[j]);
      bs.push_back(d.src[j]);
    }
    f->packets_before = Median(bp);
    f->sources_before = Median(bs);
    std::vector<double> ap, as;
    for (size_t j = a; j <= b; ++j) {
      if (!w.ok[j]) continue;
      ap.push_back(d.pk[j]);
      as.push_back(d.src[j]);
      if (d.pk[j] > static_cast<double>(f->peak_packets)) {
        f->peak_packets = static_cast<uint64_t>(d.pk[j]);
        f->peak_sources = static_cast<uint64_t>(d.src[j]);
        f->peak_day = Day(j);
      }
    }
    double sp = 0, ss = 0;
    for (double x : ap) sp += x;
    for (double x : as) ss += x;
    f->packets_after = ap.empty() ? 0 : sp / static_cast<double>(ap.size());
    f->sources_after = as.empty() ? 0 : ss / static_cast<double>(as.size());
  }

  // Excess packets over [a, b] above `base`, as a share of the period's packets.
  double ExcessShare(const Daily& d, size_t a, size_t b, double base) {
    double ex = 0;
    for (size_t j = a; j <= b; ++j) {
      if (w.ok[j]) ex += std::max(0.0, d.pk[j] - base);
    }
    return period_packets > 0 ? ex / period_packets : 0;
  }

  // The median of `v` over the last kTailDays days with data.
  double TailMedian(const std::vector<double>& v) const {
    std::vector<double> t;
    for (size_t j = w.size(); j-- > 0 && t.size() < static_cast<size_t>(kTailDays);) {
      if (w.ok[j]) t.push_back(v[j]);
    }
    return Median(std::move(t));
  }

  // The port had no packets on most days with data before window index `i` (a stray probe from
  // a random-port scanner now and then aside): the median of up to baseline_days days is 0.
  bool ZeroBefore(const std::vector<double>& pk, size_t i) const {
    std::vector<double> b;
    for (size_t j = i; j-- > 0 && b.size() < static_cast<size_t>(o.baseline_days);) {
      if (w.ok[j]) b.push_back(pk[j]);
    }
    return !b.empty() && Median(std::move(b)) == 0;
  }

  // A rise fact: before = medians of the days before its start, after = medians of the last
  // week; ratio, slope and Z of the series the rise was found on.
  FindingFact RiseFact(const Daily& d, const RiseResult& r) {
    FindingFact ft;
    ft.kind = FindingKind::kRise;
    ft.first_day = Day(r.t0);
    ft.last_day = kNoDay;
    Numbers(d, r.t0, w.size() - 1, &ft);
    ft.packets_after = TailMedian(d.pk);
    ft.sources_after = TailMedian(d.src);
    ft.on_packets = r.on_packets;
    (r.on_packets ? ft.packets_before : ft.sources_before) = r.before;
    (r.on_packets ? ft.packets_after : ft.sources_after) = r.after;
    ft.ratio = r.after / std::max(r.before, 1.0);
    ft.trend_z = r.z;
    // Both slopes over the days from the start, whichever series the rise was found on.
    std::vector<double> ys, yp;
    for (size_t j = r.t0; j < w.size(); ++j) {
      if (!w.ok[j]) continue;
      ys.push_back(d.src[j]);
      yp.push_back(d.pk[j]);
    }
    ft.slope = r.slope;
    ft.source_slope = ys.size() > 1 ? TheilSenSlope(ys) : (r.on_packets ? 0 : r.slope);
    ft.packet_slope = yp.size() > 1 ? TheilSenSlope(yp) : (r.on_packets ? r.slope : 0);
    ft.score = ExcessShare(d, r.t0, w.size() - 1, ft.packets_before);
    ft.from_zero = ZeroBefore(d.pk, r.t0);
    if (ft.from_zero) ft.packets_before = ft.sources_before = 0;
    return ft;
  }

  Status PortFindings(std::vector<Finding>* out) {
    ASSIGN_OR_RETURN(std::vector<uint64_t> ports, CandidatePorts());
    ASSIGN_OR_RETURN(std::vector<Daily> daily, ReadDaily(Dimension::kPort, ports));
    ASSIGN_OR_RETURN(TopResult top10, Top(store, Dimension::kPort, period, filter, 10, 100000));
    std::unordered_map<uint64_t, uint64_t> prev_packets;
    uint64_t prev_total = 0;
    if (!top10.rows.empty() && top10.rows[0].prev_rank != kRankNoData) {
      ASSIGN_OR_RETURN(TopResult prev, Top(store, Dimension::kPort, top10.previous, filter, 200));
      for (const auto& r : prev.rows) prev_packets[r.key] = r.packets;
      prev_total = prev.total_packets;
    }
    for (size_t k = 0; k < ports.size(); ++k) {
      const Daily& d = daily[k];
      Finding f;
      f.has_port = true;
      f.port = static_cast<PortKey>(ports[k]);
      std::vector<double> base;
      std::vector<Episode> eps =
          SpikeEpisodes(w, d.pk, w.total_pk, o.min_excess_share, o.spike_ratio, o, &base);
      std::vector<bool> skip(w.size(), false);
      // A rise is fit over the days since the latest abrupt level shift (a step is not a trend;
      // a ramp that crossed the spike threshold is not abrupt and stays in the fit).
      size_t from = 0;
      for (const Episode& e : eps) {
        // A port appearing from nothing is not a step onto a new level: its zeros before are
        // the baseline that dates its first day ("appeared on").
        if (e.shift && e.abrupt && !ZeroBefore(d.pk, e.first)) from = e.first;
        if (e.ongoing) continue;
        for (size_t j = e.first; j <= e.last; ++j) skip[j] = true;
      }
      // Distinct sources first (more sources is the spread of an activity); packets when the
      // sources rise less than the packets do (the same hosts scanning harder, or many new hosts
      // among a large steady population).
      RiseResult rise = FindRise(w, d.src, skip, from, w.total_src, o.min_source_share, o);
      if (!rise.found) {
        rise = FindRise(w, d.pk, skip, from, w.total_pk, o.min_excess_share, o);
        rise.on_packets = true;
      }
      if (!rise.found && ShortWindow()) {
        rise = FindShortRise(w, d.src, &d.pk, w.total_src, o.min_source_share, o);
      }
      for (const Episode& e : eps) {
        if (e.ongoing && rise.found && e.first + 3 >= rise.t0) continue;  // the rise says it
        FindingFact ft;
        ft.kind = FindingKind::kSpike;
        ft.first_day = Day(e.first);
        ft.last_day = e.ongoing ? kNoDay : Day(e.last);
        ft.level_shift = e.shift;
        Numbers(d, e.first, e.last, &ft);
        ft.packets_before = base[e.first];
        ft.from_zero = e.shift && ZeroBefore(d.pk, e.first);
        ft.ratio = ft.packets_after / std::max(ft.packets_before, 1.0);
        ft.score = ExcessShare(d, e.first, e.last, ft.packets_before);
        f.facts.push_back(ft);
      }
      if (rise.found) f.facts.push_back(RiseFact(d, rise));
      for (const auto& r : top10.rows) {
        if (r.key != ports[k] || r.prev_rank == kRankNoData || r.prev_rank <= 10) continue;
        double now = r.share;
        auto it = prev_packets.find(r.key);
        double before = it == prev_packets.end() || prev_total == 0
                            ? 0
                            : static_cast<double>(it->second) / static_cast<double>(prev_total);
        if (before > 0 && now < o.entry_share_ratio * before) continue;
        FindingFact ft;
        ft.kind = FindingKind::kTopEntry;
        ft.rank = r.rank;
        ft.prev_rank = r.prev_rank > 10 ? kRankOutOfTop : r.prev_rank;
        if (it == prev_packets.end()) ft.prev_rank = kRankNew;
        // It entered when its daily packets first rose: its earliest spike or rise, else the
        // period's first day.
        ft.first_day = period.first_day;
        if (!f.facts.empty()) {
          ft.first_day = f.facts.front().first_day;
          for (const auto& other : f.facts) ft.first_day = std::min(ft.first_day, other.first_day);
        }
        size_t a = static_cast<size_t>(ft.first_day - w.first);
        Numbers(d, a, w.size() - 1, &ft);
        ft.from_zero = ZeroBefore(d.pk, a);
        ft.ratio = before > 0 ? now / before : 0;
        ft.score = now - before;
        f.facts.push_back(ft);
      }
      // A level shift from the period's first day on a port that entered the top 10 is how it
      // entered: the entry says it (with the same start and numbers).
      if (f.Has(FindingKind::kTopEntry)) {
        std::erase_if(f.facts, [&](const FindingFact& x) {
          return x.kind == FindingKind::kSpike && x.level_shift && x.first_day == period.first_day;
        });
      }
      // A top-10 port mostly sent by one source over the period.
      bool in_top10 = false;
      for (const auto& r : top10.rows) in_top10 |= r.key == ports[k];
      if (f.facts.empty() && !in_top10) continue;
      f.score = 0;
      out->push_back(std::move(f));
      // Dominance is checked below, when the event's days are known.
      out->back().figure.series = FigureHint::Series::kPortByCountry;
      out->back().ratio = in_top10 ? 1 : 0;  // marks top-10 membership until ranked
      daily_of_[ports[k]] = d;
    }
    return OkStatus();
  }

  // The event's days of a port finding: its facts' span, or the whole period.
  std::pair<int32_t, int32_t> EventDays(const Finding& f) const {
    int32_t a = period.end_day, b = period.first_day - 1;
    for (const auto& ft : f.facts) {
      if (ft.kind == FindingKind::kTopEntry) continue;
      a = std::min(a, ft.first_day);
      b = std::max(b, ft.last_day == kNoDay ? period.end_day - 1 : ft.last_day);
    }
    if (a > b) return {period.first_day, period.end_day - 1};
    return {a, b};
  }

  Status SourceDetails(SourceEvidence* s, PortKey port) {
    ASSIGN_OR_RETURN(SourceEntries entries, LookupSource(store, s->addr));
    ASSIGN_OR_RETURN(IpHistory all, SourceHistory(store, entries));
    if (!all.seen) return OkStatus();
    // The history at the selected sensors: a group report's days, span and other ports are the
    // group's.
    IpHistory sel_history;
    if (!filter.sensors.empty()) {
      ASSIGN_OR_RETURN(sel_history, SourceHistory(store, entries, filter));
    }
    const IpHistory& h = filter.sensors.empty() ? all : sel_history;
    if (!h.seen) return OkStatus();
    s->country = h.geo.country;
    s->asn = h.geo.asn;
    s->first_seen_us = h.first_us;
    s->last_seen_us = h.last_us;
    s->total_packets = h.packets;
    s->days_seen = static_cast<int>(h.days.size());
    // The sensors are counted within the selection (a group report's "seen by N sensors" is of
    // the group's), and in the whole network.
    s->sensors_seen = 0;
    for (const auto& [sensor, n] : all.sensors) s->sensors_seen += filter.Allows(sensor);
    s->sensors_seen_all = static_cast<int>(all.sensors.size());
    std::vector<ProbedPort> ps;
    for (const auto& [p, n] : h.ports) {
      if (p != port) ps.push_back({p, n});
    }
    std::sort(ps.begin(), ps.end(), [](const ProbedPort& a, const ProbedPort& b) {
      return a.packets != b.packets ? a.packets > b.packets : a.port < b.port;
    });
    if (ps.size() > kMaxProbedPorts) ps.resize(kMaxProbedPorts);
    s->other_ports = std::move(ps);
    // Its tool tags (E5), judged on a bounded sample of its latest rows as `teiten ip` judges
    // them: a dominant source is one address, so this costs a few block reads.
    ASSIGN_OR_RETURN(SourceTags t, TagSource(store, entries, &ResearchNetworks::Shipped(),
                                             kIpTagBlocks, kIpTagRows));
    s->tags.clear();
    for (unsigned k = 0; k < static_cast<unsigned>(Tag::kCount); ++k) {
      if (t.Has(static_cast<Tag>(k))) s->tags.push_back(TagName(static_cast<Tag>(k)));
    }
    return OkStatus();
  }

  // The tools behind a port finding (E5): the verdicts of the port's sources over the event's
  // first days, when those days are small enough to scan (Finding::tools).
  Status PortTools(Finding* f, int32_t a, int32_t b) {
    const int32_t last = std::min(b, a + kFindingToolDays - 1);
    const Period days = DaysPeriod(a, last + 1);
    ASSIGN_OR_RETURN(SeriesResult all,
                     Series(store, Dimension::kPort, {}, days, Granularity::kDay, filter));
    uint64_t rows = 0;
    for (const SeriesPoint& pt : all.points) rows += pt.packets.empty() ? 0 : pt.packets[0];
    if (rows == 0 || rows > kFindingToolRows || rows > tool_budget_) return OkStatus();
    tool_budget_ -= rows;
    ASSIGN_OR_RETURN(ToolsResult t,
                     TopTools(store, days, filter, f->port, &ResearchNetworks::Shipped()));
    if (t.sources == 0) return OkStatus();
    f->tool_sources = t.sources;
    f->tool_first_day = a;
    f->tool_last_day = last;
    for (const ToolRow& r : t.rows) {
      if (r.tag == Tag::kCount || r.source_share < 0.05) continue;
      f->tools.push_back({TagName(r.tag), r.sources, r.source_share});
      if (r.source_share >= 0.2) f->tags.push_back(TagName(r.tag));
    }
    return PortPayloadsAndOs(f, days, rows);
  }

  // What the port's packets carried (E7) and what sent its SYNs (E6), over the same days and
  // budget as its tools, each one more scan of those days: the payloads at least 20 % of its
  // payload-carrying packets share (their printable strings, at most 3), and the OS guesses of
  // p0f's signatures (/etc/p0f/p0f.fp; skipped without it) at least 20 % of its SYN sources share.
  Status PortPayloadsAndOs(Finding* f, const Period& days, uint64_t rows) {
    if (rows > tool_budget_) return OkStatus();
    tool_budget_ -= rows;
    ASSIGN_OR_RETURN(PayloadResult pr, GroupPayloads(store, days, filter, f->port));
    for (const PayloadGroup& g : pr.groups) {
      if (pr.with_payload == 0 || g.packets * 5 < pr.with_payload) break;  // most packets first
      if (g.strings.empty()) continue;
      std::string text;
      for (const std::string& str : g.strings) {
        if (text.size() + str.size() > 60) break;
        text += (text.empty() ? "" : " ") + str;
      }
      if (text.empty()) text = g.strings[0].substr(0, 60);
      f->payloads.push_back(fmt::format(
          "\"{}\" ({:.0f}%)", text,
          100.0 * static_cast<double>(g.packets) / static_cast<double>(pr.with_payload)));
      if (f->payloads.size() == 3) break;
    }
    if (PortKeyProto(f->port) != 6 || rows > tool_budget_) return OkStatus();
    if (!p0f_tried_) {
      p0f_tried_ = true;
      auto db = P0fDatabase::Load("/etc/p0f/p0f.fp");
      if (db.ok()) p0f_ = std::make_shared<P0fDatabase>(std::move(*db));
    }
    if (!p0f_) return OkStatus();
    tool_budget_ -= rows;
    ASSIGN_OR_RETURN(OsResult os, GuessOs(store, days, filter, *p0f_, f->port));
    for (const OsShare& sh : os.shares) {
      if (sh.source_share < 0.2) break;  // most sources first
      if (sh.os == "unknown") continue;
      f->os.push_back(fmt::format("{} ({:.0f}%)", sh.os, 100 * sh.source_share));
    }
    return OkStatus();
  }

  // Regions and sources of each port finding during its event; dominant-source facts.
  Status PortEvidence(std::vector<Finding>* fs) {
    for (Finding& f : *fs) {
      if (!f.has_port) continue;
      bool in_top10 = f.ratio > 0;
      f.ratio = 0;
      auto [a, b] = EventDays(f);
      Period ev = DaysPeriod(a, b + 1);
      ASSIGN_OR_RETURN(SeriesResult pc, PortByCountry(store, f.port, ev, filter, kMaxTopRegions));
      uint64_t port_packets = 0;
      std::vector<uint64_t> by(pc.keys.size(), 0);
      for (const auto& pt : pc.points) {
        for (size_t i = 0; i < pt.packets.size(); ++i) {
          port_packets += pt.packets[i];
          if (i < by.size()) by[i] += pt.packets[i];
        }
      }
      for (size_t i = 0; i < pc.keys.size(); ++i) {
        f.top_regions.push_back({static_cast<CountryCode>(pc.keys[i]), by[i],
                                 port_packets ? static_cast<double>(by[i]) / port_packets : 0});
      }
      ASSIGN_OR_RETURN(std::vector<SourceCount> top,
                       TopSources(store, f.port, ev, filter, kMaxTopSources));
      for (const SourceCount& sc : top) {
        double share = port_packets ? static_cast<double>(sc.packets) / port_packets : 0;
        if (share < 0.1) break;
        SourceEvidence s;
        s.addr = sc.addr;
        s.packets = sc.packets;
        s.error = sc.error;
        s.share = share;
        RETURN_IF_ERROR(SourceDetails(&s, f.port));
        f.top_sources.push_back(std::move(s));
      }
      if (!f.top_sources.empty() && f.top_sources[0].share >= o.dominant_share) {
        const Daily& d = daily_of_[f.port];
        FindingFact ft;
        ft.kind = FindingKind::kDominantSource;
        // The days the source was active on within the event.
        ASSIGN_OR_RETURN(IpHistory h, SourceHistory(store, f.top_sources[0].addr, filter));
        int32_t sa = b + 1, sb = a - 1;
        for (const auto& [day, n] : h.days) {
          if (day < a || day > b) continue;
          sa = std::min(sa, day);
          sb = std::max(sb, day);
        }
        if (sa > sb) sa = a, sb = b;
        ft.first_day = sa;
        ft.last_day = sb == period.end_day - 1 ? kNoDay : sb;
        Numbers(d, static_cast<size_t>(sa - w.first), static_cast<size_t>(sb - w.first), &ft);
        ft.ratio = f.top_sources[0].share;
        ft.score =
            period_packets > 0 ? static_cast<double>(f.top_sources[0].packets) / period_packets : 0;
        f.facts.push_back(ft);
      } else if (f.facts.empty()) {
        f.top_sources.clear();
      }
      if (!f.facts.empty()) {
        // The days of its facts (a dominant source's own days when that is all it has).
        auto [ta, tb] = EventDays(f);
        RETURN_IF_ERROR(PortTools(&f, ta, tb));
      }
      (void)in_top10;
    }
    // Top-10 ports without any fact were candidates for dominance only.
    fs->erase(std::remove_if(fs->begin(), fs->end(),
                             [](const Finding& f) { return f.has_port && f.facts.empty(); }),
              fs->end());
    return OkStatus();
  }

  // Ports whose rises (or lasting shifts) start together and share sources.
  Status PortsTogether(std::vector<Finding>* fs) {
    struct Member {
      size_t i;
      int32_t start;
      bool from_zero;
      std::unordered_set<IpAddr, IpAddrHash> src;
      std::vector<std::set<PortKey>> probed;  // the busiest sources' ports, from their history
    };
    std::vector<Member> ms;
    for (size_t i = 0; i < fs->size(); ++i) {
      const Finding& f = (*fs)[i];
      if (!f.has_port) continue;
      for (const auto& ft : f.facts) {
        bool lasting = ft.kind == FindingKind::kRise ||
                       (ft.kind == FindingKind::kSpike && ft.last_day == kNoDay);
        if (!lasting) continue;
        Member m{i, ft.first_day, ft.from_zero, {}, {}};
        ASSIGN_OR_RETURN(std::vector<SourceCount> top,
                         TopSources(store, f.port, DaysPeriod(ft.first_day, period.end_day), filter,
                                    kTogetherSources));
        for (const auto& s : top) m.src.insert(s.addr);
        for (size_t k = 0; k < top.size() && k < kTogetherHistories; ++k) {
          ASSIGN_OR_RETURN(IpHistory h, SourceHistory(store, top[k].addr, filter));
          if (h.ports.size() > kTogetherMaxPorts) continue;  // a sweep says nothing of two ports
          std::set<PortKey> ps;
          for (const auto& [p, n] : h.ports) ps.insert(p);
          m.probed.push_back(std::move(ps));
        }
        ms.push_back(std::move(m));
        break;
      }
    }
    // Union–find over pairs starting within kTogetherDays with overlapping sources.
    std::vector<size_t> parent(ms.size());
    for (size_t i = 0; i < ms.size(); ++i) parent[i] = i;
    auto find = [&](size_t x) {
      while (parent[x] != x) x = parent[x] = parent[parent[x]];
      return x;
    };
    for (size_t i = 0; i < ms.size(); ++i) {
      for (size_t j = i + 1; j < ms.size(); ++j) {
        if (std::abs(ms[i].start - ms[j].start) > kTogetherDays) continue;
        size_t common = 0;
        for (const auto& a : ms[i].src) common += ms[j].src.count(a);
        size_t denom = std::min(ms[i].src.size(), ms[j].src.size());
        bool shared = denom > 0 && static_cast<double>(common) >= kTogetherOverlap * denom;
        // A port with a large steady population (8080/TCP) has its old heavy hitters at the top,
        // not the movers: the movers' busiest sources probing the other port shows it as well.
        auto probing = [&](const Member& a, const Member& b) {
          PortKey other = (*fs)[b.i].port;
          size_t n = 0;
          for (const auto& ps : a.probed) n += ps.count(other);
          return !a.probed.empty() &&
                 static_cast<double>(n) >= kTogetherProbed * static_cast<double>(a.probed.size());
        };
        if (!shared && !probing(ms[i], ms[j]) && !probing(ms[j], ms[i])) continue;
        parent[find(i)] = find(j);
      }
    }
    std::map<size_t, std::vector<size_t>> groups;
    for (size_t i = 0; i < ms.size(); ++i) groups[find(i)].push_back(i);
    std::vector<bool> absorbed(fs->size(), false);
    for (auto& [root, g] : groups) {
      if (g.size() < 2) continue;
      // The lead is the member explaining the most packets.
      auto score_of = [&](size_t m) {
        double s = 0;
        for (const auto& ft : (*fs)[ms[m].i].facts) s = std::max(s, ft.score);
        return s;
      };
      std::sort(g.begin(), g.end(), [&](size_t a, size_t b) { return score_of(a) > score_of(b); });
      Finding& lead = (*fs)[ms[g[0]].i];
      FindingFact ft;
      ft.kind = FindingKind::kPortsTogether;
      ft.first_day = ms[g[0]].start;
      ft.last_day = kNoDay;
      double score = 0;
      // The move began when its ports did; a port that had no packets before cannot have been
      // part of it earlier, so the first such port pins the start (the others' noisy baselines
      // may date them days early).
      bool pinned = false;
      for (size_t m : g) {
        if (!ms[m].from_zero) continue;
        ft.first_day = pinned ? std::min(ft.first_day, ms[m].start) : ms[m].start;
        pinned = ft.from_zero = true;
      }
      for (size_t m : g) {
        if (!pinned) ft.first_day = std::min(ft.first_day, ms[m].start);
        score += score_of(m);
        Finding& other = (*fs)[ms[m].i];
        if (m != g[0]) {
          lead.related_ports.push_back(other.port);
          // A member whose every fact is its part in the move is absorbed into the lead.
          bool only_move = true;
          for (const auto& x : other.facts) {
            only_move &= x.kind == FindingKind::kRise ||
                         (x.kind == FindingKind::kSpike && x.last_day == kNoDay);
          }
          if (only_move) absorbed[ms[m].i] = true;
        }
      }
      const Daily& d = daily_of_[lead.port];
      Numbers(d, static_cast<size_t>(ft.first_day - w.first), w.size() - 1, &ft);
      ft.score = score;
      ft.ratio = ft.packets_after / std::max(ft.packets_before, 1.0);
      lead.facts.push_back(ft);
    }
    std::vector<Finding> kept;
    for (size_t i = 0; i < fs->size(); ++i) {
      if (!absorbed[i]) kept.push_back(std::move((*fs)[i]));
    }
    *fs = std::move(kept);
    return OkStatus();
  }

  Status RegionFindings(std::vector<Finding>* out) {
    std::set<uint64_t> keys;
    ASSIGN_OR_RETURN(TopResult top,
                     Top(store, Dimension::kCountry, period, filter, o.countries, 100000));
    for (const auto& r : top.rows) keys.insert(r.key);
    if (w.p0 > 0) {
      ASSIGN_OR_RETURN(std::vector<uint64_t> before,
                       TopKeys(store, Dimension::kCountry, DaysPeriod(w.first, period.first_day),
                               filter, o.countries));
      keys.insert(before.begin(), before.end());
    }
    keys.erase(0);  // unknown region
    std::vector<uint64_t> cs(keys.begin(), keys.end());
    ASSIGN_OR_RETURN(std::vector<Daily> daily, ReadDaily(Dimension::kCountry, cs));
    const bool prev_data = !top.rows.empty() && top.rows[0].prev_rank != kRankNoData;

    for (size_t k = 0; k < cs.size(); ++k) {
      const Daily& d = daily[k];
      Finding f;
      f.country = static_cast<CountryCode>(cs[k]);
      f.figure.series = FigureHint::Series::kCountry;
      // Silence (A11): distinct sources against the region's own baseline (outages.h).
      OutageRules silence;
      silence.lookback_days = kSpikeLookback;
      silence.fraction = o.silent_fraction;
      silence.min_baseline = o.silent_min_sources;
      silence.sigmas = o.spike_sigmas * 0.5;
      for (const OutageSpan& sp :
           FindOutageSpans(d.src, w.ok, static_cast<size_t>(w.p0), silence)) {
        const size_t i = sp.first, j = sp.last;
        FindingFact ft;
        ft.kind = FindingKind::kRegionSilent;
        ft.first_day = Day(i);
        ft.last_day = j + 1 == w.size() ? kNoDay : Day(j);
        Numbers(d, i, j, &ft);
        ft.sources_before = sp.baseline;
        ft.ratio = ft.sources_after / std::max(ft.sources_before, 1.0);
        ft.score = period_sources_per_day > 0
                       ? (ft.sources_before - ft.sources_after) / period_sources_per_day *
                             static_cast<double>(j - i + 1) / period.days()
                       : 0;
        f.facts.push_back(ft);
      }
      // Entry into the top 5.
      int rank = 0, prev_rank = kRankNoData;
      double share = 0;
      for (const auto& r : top.rows) {
        if (r.key == cs[k]) rank = r.rank, prev_rank = r.prev_rank, share = r.share;
      }
      std::vector<bool> noskip(w.size(), false);
      RiseResult rise = FindRise(w, d.pk, noskip, 0, w.total_pk, o.min_excess_share, o);
      if (!rise.found && ShortWindow()) {
        rise = FindShortRise(w, d.pk, nullptr, w.total_pk, o.min_excess_share, o);
      }
      rise.on_packets = true;
      if (rank >= 1 && rank <= 5) {
        bool entered = false;
        int before_rank = prev_rank;
        if (prev_data) {
          entered = prev_rank == kRankNew || prev_rank == kRankOutOfTop || prev_rank > 5;
          if (entered && prev_rank > 0) {
            ASSIGN_OR_RETURN(TopResult pt, Top(store, Dimension::kCountry, top.previous, filter,
                                               static_cast<size_t>(prev_rank)));
            double prev_share = pt.rows.empty() ? 0 : pt.rows.back().share;
            if (prev_share > 0 && share < o.entry_share_ratio * prev_share) entered = false;
          }
        } else if (rise.found) {
          // No previous period: its rank over the days before its rise against the others'.
          before_rank = RankOver(daily, k, 0, rise.t0);
          size_t tail = std::min<size_t>(kTailDays, w.size() - rise.t0);
          int after_rank = RankOver(daily, k, w.size() - tail, w.size());
          entered = before_rank > 5 && after_rank <= 5;
        }
        if (entered) {
          FindingFact ft;
          ft.kind = FindingKind::kRegionEntry;
          ft.rank = rank;
          ft.prev_rank = before_rank;
          size_t a = rise.found ? rise.t0 : static_cast<size_t>(w.p0);
          ft.first_day = Day(a);
          ft.last_day = kNoDay;
          Numbers(d, a, w.size() - 1, &ft);
          ft.ratio = ft.packets_after / std::max(ft.packets_before, 1.0);
          ft.score = ExcessShare(d, a, w.size() - 1, ft.packets_before);
          f.facts.push_back(ft);
          if (rise.found) {
            FindingFact rf = RiseFact(d, rise);
            rf.score = ft.score;
            f.facts.push_back(rf);
          }
        }
      }
      if (f.facts.empty()) continue;
      out->push_back(std::move(f));
    }
    return OkStatus();
  }

  // A port's rise mostly from a region with its own finding: the region's share of the port's
  // added packets a day, per region from PortByCountry before and during the event.
  Status LinkRegions(std::vector<Finding>* fs) {
    std::set<CountryCode> regions;
    for (const Finding& f : *fs) {
      if (!f.has_port && (f.Has(FindingKind::kRegionEntry) || f.Has(FindingKind::kRise))) {
        regions.insert(f.country);
      }
    }
    if (regions.empty()) return OkStatus();
    for (Finding& f : *fs) {
      if (!f.has_port || f.top_regions.empty() || !regions.count(f.top_regions[0].country)) {
        continue;
      }
      bool rising = false;
      for (const auto& ft : f.facts) {
        rising |= ft.kind == FindingKind::kRise || ft.kind == FindingKind::kPortsTogether ||
                  ft.kind == FindingKind::kTopEntry ||
                  (ft.kind == FindingKind::kSpike && ft.level_shift);
      }
      if (!rising) continue;
      auto [a, b] = EventDays(f);
      int32_t b0 = std::max(w.first, a - o.baseline_days);
      if (b0 >= a) continue;
      auto sums = [&](const Period& p, CountryCode c) -> Result<std::pair<double, double>> {
        // (the region's packets, all packets) a day with data over p
        ASSIGN_OR_RETURN(SeriesResult s, PortByCountry(store, f.port, p, filter, o.countries));
        double mine = 0, all = 0, days = 0;
        for (size_t i = 0; i < s.points.size(); ++i) {
          size_t wi = static_cast<size_t>(p.first_day + static_cast<int32_t>(i) - w.first);
          if (wi < w.size() && !w.ok[wi]) continue;
          days += 1;
          for (size_t k = 0; k < s.points[i].packets.size(); ++k) {
            double x = static_cast<double>(s.points[i].packets[k]);
            all += x;
            if (k < s.keys.size() && s.keys[k] == c) mine += x;
          }
        }
        if (days == 0) return std::pair{0.0, 0.0};
        return std::pair{mine / days, all / days};
      };
      CountryCode c = f.top_regions[0].country;
      ASSIGN_OR_RETURN(auto before, sums(DaysPeriod(b0, a), c));
      ASSIGN_OR_RETURN(auto during, sums(DaysPeriod(a, b + 1), c));
      double added = during.second - before.second;
      if (added <= 0) continue;
      double share = (during.first - before.first) / added;
      if (share >= 0.5) {
        f.rise_region = c;
        f.rise_region_share = std::min(share, 1.0);
      }
    }
    return OkStatus();
  }

  // A region's rank by packets among the candidate regions over window indices [a, b).
  int RankOver(const std::vector<Daily>& daily, size_t k, size_t a, size_t b) {
    auto sum = [&](size_t i) {
      double s = 0;
      for (size_t j = a; j < b; ++j) s += daily[i].pk[j];
      return s;
    };
    double mine = sum(k);
    int rank = 1;
    for (size_t i = 0; i < daily.size(); ++i) {
      if (i != k && sum(i) > mine) ++rank;
    }
    return rank;
  }

  void Finish(std::vector<Finding>* fs) {
    for (Finding& f : *fs) {
      std::stable_sort(
          f.facts.begin(), f.facts.end(),
          [](const FindingFact& a, const FindingFact& b) { return a.score > b.score; });
      // Ports together leads when present: it names the phenomenon the others are part of.
      for (size_t i = 0; i < f.facts.size(); ++i) {
        if (f.facts[i].kind == FindingKind::kPortsTogether ||
            f.facts[i].kind == FindingKind::kRegionEntry) {
          std::rotate(f.facts.begin(), f.facts.begin() + static_cast<ptrdiff_t>(i),
                      f.facts.begin() + static_cast<ptrdiff_t>(i + 1));
          break;
        }
      }
      const FindingFact& h = f.facts.front();
      f.kind = h.kind;
      f.first_day = h.first_day;
      f.last_day = h.last_day;
      f.packets_before = h.packets_before;
      f.packets_after = h.packets_after;
      f.sources_before = h.sources_before;
      f.sources_after = h.sources_after;
      f.ratio = h.ratio;
      f.score = 0;
      for (const auto& ft : f.facts) f.score = std::max(f.score, ft.score);
      if (f.kind == FindingKind::kPortsTogether) f.score = h.score;
      FigureHint& g = f.figure;
      g.first_day = period.first_day;
      g.end_day = period.end_day;
      const auto& days = store.manifest().days;
      g.long_first_day = days.empty() ? period.first_day : days.begin()->first;
      g.long_end_day = period.end_day;
      g.long_granularity =
          g.long_end_day - g.long_first_day > 400 ? Granularity::kMonth : Granularity::kWeek;
      if (f.has_port) {
        g.ports.push_back(f.port);
        for (PortKey p : f.related_ports) g.ports.push_back(p);
        g.series = f.related_ports.empty() ? FigureHint::Series::kPortByCountry
                                           : FigureHint::Series::kPorts;
        for (const auto& r : f.top_regions) g.countries.push_back(r.country);
      } else {
        g.series = FigureHint::Series::kCountry;
        g.countries.push_back(f.country);
      }
    }
    std::stable_sort(fs->begin(), fs->end(),
                     [](const Finding& a, const Finding& b) { return a.score > b.score; });
    if (fs->size() > o.max_findings) fs->resize(o.max_findings);
    for (size_t i = 0; i < fs->size(); ++i) (*fs)[i].rank = static_cast<int>(i + 1);
  }

  std::unordered_map<PortKey, Daily> daily_of_;
  uint64_t tool_budget_ = kFindingToolBudget;  // rows PortTools may still scan
  bool p0f_tried_ = false;
  std::shared_ptr<const P0fDatabase> p0f_;  // p0f's signatures, once read (null without)
};

}  // namespace

Result<std::vector<Finding>> FindNotable(const Store& store, const Period& period,
                                         const SensorSelection& filter,
                                         const FindingOptions& opts) {
  if (period.end_day <= period.first_day) {
    return InvalidArgument(fmt::format("findings: empty period {}", period.Label()));
  }
  Detector det{store, period, filter, opts, {}, 0, 0, {}};
  RETURN_IF_ERROR(det.ReadWindow());
  std::vector<Finding> out;
  if (det.period_packets == 0) return out;
  RETURN_IF_ERROR(det.PortFindings(&out));
  RETURN_IF_ERROR(det.PortEvidence(&out));
  RETURN_IF_ERROR(det.PortsTogether(&out));
  RETURN_IF_ERROR(det.RegionFindings(&out));
  RETURN_IF_ERROR(det.LinkRegions(&out));
  det.Finish(&out);
  return out;
}

}  // namespace teiten
