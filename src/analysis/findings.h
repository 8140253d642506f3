// Notable phenomena (SPEC A6): what a report's "注目された現象 / Notable phenomena" section is
// about, found from the store's data with stated statistics (docs/FINDINGS.md gives every method,
// threshold and why).
//
//   ASSIGN_OR_RETURN(Period q, ParsePeriod("2018Q3"));
//   ASSIGN_OR_RETURN(std::vector<Finding> fs, FindNotable(store, q, SensorSelection{}));
//   for (const Finding& f : fs) { /* f.rank, f.kind, f.port, f.first_day, f.facts … */ }
//
// Kinds found:
//   kSpike           a port's daily packets far above its own robust baseline (median and MAD of
//                    the preceding days), one or more consecutive days;
//   kRise            a port's daily distinct sources rising steadily from a change point
//                    (hinge fit for the start, Mann–Kendall and Theil–Sen over the days after it);
//   kTopEntry        a port in the period's top 10 that was outside it (or unseen) before;
//   kDominantSource  one source sending most of a port's packets (during a spike, or over the
//                    period for a top port), with what else it probed (SourceHistory, A7);
//   kPortsTogether   several ports rising from the same start with shared sources (malware
//                    changing its ports);
//   kRegionEntry     a source region entering the top 5 (from the previous period's ranks, or
//                    within the period when the previous one holds no data);
//   kRegionSilent    a region's daily distinct sources collapsing against its own baseline (A11).
//
// One finding per subject: a port's spike, rise, top-10 entry and dominant source are facts of one
// finding, a region's entry and its rise facts of another. Findings are ranked by how much of the
// period's traffic they explain (docs/FINDINGS.md).
//
// Everything a report needs to write its sentences and draw its figure is in the Finding; nothing
// has to be queried again. Days are the store's local days (TimeZone::DayString to print).
// Thread safety: FindNotable only reads the store.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/period.h"
#include "analysis/query.h"
#include "common/ip.h"
#include "common/observation.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "store/store.h"

namespace teiten {

enum class FindingKind {
  kSpike,
  kRise,
  kTopEntry,
  kDominantSource,
  kPortsTogether,
  kRegionEntry,
  kRegionSilent,
};
// "spike", "rise", "top-entry", "dominant-source", "ports-together", "region-entry",
// "region-silent".
const char* FindingKindName(FindingKind k);

inline constexpr int32_t kNoDay = INT32_MIN;

// One piece of evidence behind a finding. Which fields mean something depends on `kind`:
//   spike: first/last day, before (baseline median) and after (mean over the spike days), peak;
//   rise: first day (the change point), before (medians of the days before it) and after
//         (medians of the last 7 days), packets and sources both; slope (Theil–Sen, a day),
//         trend_z (Mann–Kendall Z) and ratio of distinct sources, or of packets when
//         `on_packets` (a port's sources rising less than 1.5×, a region's rise) — a report
//         should then speak of packets; source_slope and packet_slope of each series;
//   spike with level_shift: "since" first day, a new level rather than a burst;
//   top-entry / region-entry: rank and prev_rank (query.h markers kRankOutOfTop, kRankNew,
//         kRankNoData; within-period entries give the rank over the days before the rise);
//   region-silent: first/last day, before/after distinct sources per day.
struct FindingFact {
  FindingKind kind = FindingKind::kSpike;
  int32_t first_day = kNoDay;
  int32_t last_day = kNoDay;  // inclusive; kNoDay when it was still going at the period's end
  double packets_before = 0;  // per day
  double packets_after = 0;   // per day
  double sources_before = 0;  // distinct sources per day
  double sources_after = 0;
  double ratio = 0;  // after / before of the series the fact rests on (before floored at 1)
  int32_t peak_day = kNoDay;
  uint64_t peak_packets = 0;
  uint64_t peak_sources = 0;
  double slope = 0;    // rise: Theil–Sen, more each day, of the series it was found on
  double trend_z = 0;  // rise: Mann–Kendall Z of that series
  // rise: both series' Theil–Sen slopes from the start (distinct sources, packets a day).
  double source_slope = 0, packet_slope = 0;
  int rank = 0;       // entries: rank in the period
  int prev_rank = 0;  // entries: rank before
  double score = 0;   // share of the period's packets (or sources) the fact explains
  // spike: the raised level held for at least a week and became the new baseline (a level
  // shift, "since first_day"); last_day is the last day above the old level's threshold.
  bool level_shift = false;
  // rise: found on packets per day (slope, trend_z and ratio are of packets), its sources
  // rising less than rise_ratio (a port) or not tested (a region's rise is of its packets).
  bool on_packets = false;
  // rise, spike with level_shift, ports-together: the port had no packets on most days before
  // first_day (the median of the baseline days is 0), so it appeared on first_day: there was no
  // baseline to rise from, and a report says "appeared on", not "rising from". first_day is then
  // the first day of the run of days with packets that lasts to the end (stray probes before it
  // aside). Ports together: one of the ports appeared, and the first of those pins the start.
  bool from_zero = false;
};

struct RegionCount {
  CountryCode country = 0;
  uint64_t packets = 0;
  double share = 0;  // of the finding's packets during the event
};

struct ProbedPort {
  PortKey port = 0;
  uint64_t packets = 0;
};

// A source IP behind a finding, with its history (A7).
struct SourceEvidence {
  IpAddr addr;
  uint64_t packets = 0;  // to the finding's port during the event
  uint64_t error = 0;    // the count may be short by this much (TopSources); 0 = exact
  double share = 0;      // of the port's packets during the event
  CountryCode country = 0;
  uint32_t asn = 0;
  // Over everything stored at the selected sensors (all when the selection is empty):
  int64_t first_seen_us = 0, last_seen_us = 0;
  uint64_t total_packets = 0;
  int days_seen = 0;
  int sensors_seen_all = 0;  // sensors of the whole network that saw it
  // The selected sensors (all when the selection is empty) that saw it: never more than the
  // selection holds, so a group report's "seen by N sensors" is of the group.
  int sensors_seen = 0;
  std::vector<ProbedPort> other_ports;  // most packets first, at most kMaxProbedPorts
  std::vector<std::string> tags;        // tool tags (E5) of a sample of its latest rows (TagSource)
};

// What the report should draw for the finding.
struct FigureHint {
  enum class Series {
    kPortByCountry,  // one port's daily packets by source region (003 Fig. 3, 004 Fig. 2.1.1)
    kPorts,          // several ports' daily packets (ports together)
    kCountry,        // one region's daily packets and sources
  };
  Series series = Series::kPortByCountry;
  std::vector<PortKey> ports;
  std::vector<CountryCode> countries;
  int32_t first_day = 0, end_day = 0;  // the chart's days (end exclusive): the period
  // The long-term series (001 Fig. 3/4): from the first stored day, by week or month.
  int32_t long_first_day = 0, long_end_day = 0;
  Granularity long_granularity = Granularity::kWeek;
};

// One tool's share of a port finding's sources during the event's first days (E5).
struct FindingTool {
  std::string tag;          // TagName: "mirai", "zmap", …
  uint64_t sources = 0;     // the port's sources in those days whose verdict carries it
  double source_share = 0;  // of all the port's sources in those days
};

struct Finding {
  int rank = 0;                            // 1 = most notable
  FindingKind kind = FindingKind::kSpike;  // the headline: the highest-scoring fact's kind
  bool has_port = false;
  PortKey port = 0;
  CountryCode country = 0;  // region findings (0 otherwise)
  // The headline fact's days and numbers, copied from it for convenience.
  int32_t first_day = kNoDay;
  int32_t last_day = kNoDay;  // inclusive; kNoDay while still going
  double packets_before = 0, packets_after = 0;
  double sources_before = 0, sources_after = 0;
  double ratio = 0;
  double score = 0;
  std::vector<FindingFact> facts;           // every fact, headline first
  std::vector<PortKey> related_ports;       // ports together: the others (the finding's port leads)
  std::vector<RegionCount> top_regions;     // during the event, most packets first
  std::vector<SourceEvidence> top_sources;  // dominant sources, most packets first
  // A port's rise that came mostly from one region that has a finding of its own (an entry into
  // the top 5 or a rise): that region, and its share of the port's added packets a day (the
  // event's mean over the mean of up to baseline_days days before it, ≥ 0.5); 0 otherwise.
  CountryCode rise_region = 0;
  double rise_region_share = 0;
  // Port findings: who sent the port's packets in the event's first days (at most
  // kFindingToolDays from its first day, tool_first_day..tool_last_day): the port's distinct
  // sources then (tool_sources) and each tool whose verdict (over those days' packets, the rules
  // of docs/FINGERPRINTS.md) at least 5 % of them carry, most first. Not computed (tool_sources
  // 0) when those days hold more than kFindingToolRows packets or the finding's budget is spent:
  // each is one scan of the days' rows.
  std::vector<FindingTool> tools;
  uint64_t tool_sources = 0;
  int32_t tool_first_day = kNoDay, tool_last_day = kNoDay;
  // The tools of `tools` that at least 20 % of the sources carry (for feeds). Over the same days
  // and budget: `payloads`, the printable strings of the payloads at least 20 % of the port's
  // payload-carrying packets share, with that share ("\"friendly-scanner\" (95%)"), and `os`,
  // the p0f guesses at least 20 % of its TCP SYN sources share ("Linux 2.2.x-3.x (62%)").
  std::vector<std::string> tags;
  std::vector<std::string> payloads;
  std::vector<std::string> os;
  FigureHint figure;

  bool Has(FindingKind k) const;
  const FindingFact* Fact(FindingKind k) const;  // the first fact of that kind, or nullptr
};

struct FindingOptions {
  // Days before the period read as baseline (when the store has them).
  int baseline_days = 28;
  // Spike: at least this many robust standard deviations (1.4826·MAD, floored at √median) above
  // the median of the preceding days, at least `spike_ratio` times it, and the excess at least
  // `min_excess_share` of that day's packets.
  double spike_sigmas = 6;
  double spike_ratio = 3;
  double min_excess_share = 0.005;
  // Rise: Mann–Kendall Z at least this over the days from the change point, the last week's
  // median at least `rise_ratio` times the baseline's, and the added sources at least
  // `min_source_share` of the day's distinct sources.
  double rise_z = 3.0;
  double rise_ratio = 1.5;
  double min_source_share = 0.01;
  int rise_min_days = 7;
  // Dominant source: its share of the port's packets.
  double dominant_share = 0.5;
  // Top-N entries: the port (region) must have gained at least this share ratio.
  double entry_share_ratio = 1.3;
  // Silence: distinct sources fall to at most this fraction of the baseline median, which must
  // be at least `silent_min_sources`.
  double silent_fraction = 0.2;
  double silent_min_sources = 10;
  // Candidates: the period's top ports, and each day's top ports.
  size_t period_top_ports = 30;
  size_t daily_top_ports = 10;
  size_t countries = 30;
  size_t max_findings = 20;
};

inline constexpr size_t kMaxProbedPorts = 10;
inline constexpr size_t kMaxTopSources = 5;
// A port finding's tools are judged on at most this many days from the event's first, and only
// when those days hold at most kFindingToolRows packets; one FindNotable call scans at most
// kFindingToolBudget rows for them in all (the rest of its findings go without).
inline constexpr int32_t kFindingToolDays = 3;
inline constexpr uint64_t kFindingToolRows = 5'000'000;
inline constexpr uint64_t kFindingToolBudget = 15'000'000;
inline constexpr size_t kMaxTopRegions = 5;

// Finds the notable phenomena of `period` for the selected sensors, ranked, duplicates merged.
// Reads up to `baseline_days` before the period when the store holds them. Fails only when the
// store cannot be read; an empty period gives no findings.
Result<std::vector<Finding>> FindNotable(const Store& store, const Period& period,
                                         const SensorSelection& filter,
                                         const FindingOptions& opts = {});

// Statistics the detector rests on, public for tests.
namespace findings_stats {
double Median(std::vector<double> v);
// Median absolute deviation (unscaled).
double Mad(const std::vector<double>& v);
// Mann–Kendall S and its Z (continuity-corrected, ties accounted for).
double MannKendallZ(const std::vector<double>& v);
// Theil–Sen slope: the median of pairwise slopes.
double TheilSenSlope(const std::vector<double>& v);
// The start of a rise: the index t0 minimising the squared error of the continuous hinge
// y = a + b·(t − t0)⁺ over t0 in [2, n − min_after]; 0 when n < min_after + 3. (No step term:
// with one, noise before a slow ramp pulls t0 to the lowest day before it; abrupt jumps are the
// spike test's, which ends them or turns them into a new baseline.)
size_t HingeChangePoint(const std::vector<double>& v, size_t min_after);
// A step in level: the index k (at least `min_before` values before it and `min_after` from it)
// where the difference of the
// two sides' medians, over its standard error (σ̂ = 1.4826·MAD of the residuals around each
// side's median, floored at √median), is largest, when that is at least kStepZ; else 0. Used
// before a rise's bend, to measure the rise against the latest level rather than a mix of two
// (a quarter boundary where every port got a few per cent busier).
inline constexpr double kStepZ = 4;
size_t StepChangePoint(const std::vector<double>& v, size_t min_before, size_t min_after);
}  // namespace findings_stats

}  // namespace teiten
