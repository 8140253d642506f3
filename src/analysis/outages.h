// Outages (SPEC A11, issue 12 point 5): a country's or an AS's distinct sources falling far below
// their own baseline, as IODA reads a darknet — when a region's networks go dark (a shutdown, a
// cable cut, a routing failure), its infected hosts stop scanning the telescope too.
//
// A day is an outage day of a key when, against the baseline of the days before it (the median of
// its daily distinct sources over up to `lookback_days` preceding days with data, outage days left
// out),
//   - the baseline is at least `min_baseline` sources a day (smaller keys are too noisy to tell),
//   - its sources are at most `fraction` of the baseline, and
//   - the drop is at least `sigmas` robust standard deviations of the baseline days
//     (max(1.4826 × MAD, √median, 1): Poisson noise at the least).
// Consecutive outage days are one outage; a day on which the store holds no data for the
// selection (the telescope itself was down) is neither an outage day nor in a baseline. The
// findings' "region went silent" fact (findings.h) is this detector on countries.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "analysis/period.h"
#include "analysis/query.h"
#include "common/status.h"
#include "store/store.h"

namespace teiten {

struct OutageRules {
  int lookback_days = 14;
  double fraction = 0.2;
  double min_baseline = 10;
  double sigmas = 3;
};

// One run of outage days of a daily series, by index.
struct OutageSpan {
  size_t first = 0, last = 0;  // inclusive
  double baseline = 0;         // the baseline on its first day (sources a day)
};
// The detector on one daily series of distinct sources: `ok[i]` says day i has data; only days
// from index `from` on may be outage days (the days before are baseline only).
std::vector<OutageSpan> FindOutageSpans(const std::vector<double>& sources,
                                        const std::vector<bool>& ok, size_t from,
                                        const OutageRules& rules);

struct Outage {
  uint64_t key = 0;  // CountryCode or ASN
  int32_t first_day = 0, last_day = 0;
  bool ongoing = false;       // still out on the period's last day with data
  double baseline = 0;        // sources a day before it (the median the rule compared against)
  double sources = 0;         // mean sources a day during it
  double lowest = 0;          // fewest sources on one of its days
  double depth = 0;           // 1 − sources / baseline: 1 is total silence
  double packets_before = 0;  // median packets a day over the baseline days
  double packets = 0;         // mean packets a day during it
};
struct OutagesResult {
  Period period;
  Dimension dim = Dimension::kCountry;
  OutageRules rules;
  int32_t window_first = 0;  // the first day read for baselines (lookback before the period)
  size_t keys_checked = 0;   // keys with a day of min_baseline sources (a baseline could reach it)
  std::vector<Outage> outages;  // by first day, then deepest first, then key
};

// "country" or "asn" (what --by and by= take); an error naming the value otherwise.
Result<Dimension> ParseOutageDimension(std::string_view text);

// Every outage of a country (Dimension::kCountry) or an AS (kAsn) that is under way on a day of
// the period, at the selected sensors, from the rollups' exact daily distinct sources (no
// observation is read). Keys checked: those with at least min_baseline distinct sources over the
// period or over the lookback days before it; the unknown key (0) is never one.
Result<OutagesResult> FindOutages(const Store& store, Dimension dim, const Period& period,
                                  const SensorSelection& filter, const OutageRules& rules = {});

}  // namespace teiten
