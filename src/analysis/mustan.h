// MUSTAN views (SPEC A8, issue 13): per channel, the top 5 items over the last 10 days with each
// day's count and a trend arrow, the "watch" (要注意) items whose distinct sources rise sharply,
// the "risk" items rising or newly seen, and one item's view (search).
//
// Channels. A Channel names a kind of item (destination ports now) and answers three questions
// through the query interface (analysis/query.h), never the store files: which items are worth
// looking at in a span (Candidates), each item's daily packets and distinct sources (Daily), and
// how an item's key is written and read (KeyName / ParseKey). The views below only see those, so
// web URLs, SSH accounts and mail subjects plug in later as further Channel implementations
// (keys there would be ids into a per-channel string table the store keeps for them), with no
// change to the rules or to the pages, CLI and feeds that show MustanView.
//
// Rules (all stated in MustanRules, and copied into every result so pages and feeds can print
// them). The window is the 10 days ending on (and including) `end_day`; the baseline is the 10
// days before it.
//   Trend arrow: F = packets of the window's first 5 days, L = of its last 5. Under a Poisson
//     model of the two halves, z = (L − F) / sqrt(L + F). ↑ when z ≥ z_threshold and
//     L ≥ ratio_threshold · F; ↓ when z ≤ −z_threshold and F ≥ ratio_threshold · L; → otherwise.
//     Packets are over-dispersed (one scanner sends bursts), which is why the ratio must hold too.
//   Watch: mean daily distinct sources over the window's last 3 days ≥ watch_ratio × the mean
//     over its first 7 days (a mean below 1 counts as 1), and at least watch_min_sources more.
//   Risk: the arrow is ↑, or the item is new: no packet in the baseline and at least
//     new_min_packets in the window (single stray probes of unused ports are not news).
// Guaranteed: counts are exactly Series()'s daily counts for the same sensors. Not guaranteed:
// an item outside the channel's candidates (see Channel::Candidates) is in no list, though
// search (MustanItemView) answers for any key.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "analysis/query.h"
#include "common/status.h"
#include "store/store.h"

namespace teiten {

inline constexpr int kMustanDays = 10;
inline constexpr size_t kMustanTop = 5;

enum class Trend { kUp, kFlat, kDown };
const char* TrendArrow(Trend t);  // "↑", "→", "↓"
const char* TrendName(Trend t);   // "up", "flat", "down"

struct MustanRules {
  double z_threshold = 3.0;        // Poisson z of last-5 vs first-5 days' packets
  double ratio_threshold = 1.5;    // and the ratio that must hold with it
  double watch_ratio = 2.0;        // last-3 vs first-7 days' mean distinct sources
  double watch_min_sources = 10;   // and the least absolute rise of that mean
  uint64_t new_min_packets = 100;  // a new item needs this many packets in the window (noise)
  // One sentence per rule, in English or Japanese ("en" / "ja"), with the thresholds filled in.
  std::string TrendRule(const std::string& lang) const;
  std::string WatchRule(const std::string& lang) const;
  std::string RiskRule(const std::string& lang) const;
};

// A kind of item. Implementations must be thread-compatible (const methods only).
class Channel {
 public:
  virtual ~Channel() = default;
  virtual std::string Name() const = 0;  // "port"
  // Items worth ranking in the days [first_day, end_day): at least every item among the top
  // `n` by packets, and every item among the top `n` by packets of the last 3 days (so that a
  // newcomer is not lost behind the long-established ones).
  virtual Result<std::vector<uint64_t>> Candidates(const Store& store, int32_t first_day,
                                                   int32_t end_day, const SensorSelection& sel,
                                                   size_t n) const = 0;
  // Daily packets and distinct sources of each key over [first_day, end_day), one SeriesResult
  // point per day (every day present, zero where nothing was seen).
  virtual Result<SeriesResult> Daily(const Store& store, const std::vector<uint64_t>& keys,
                                     int32_t first_day, int32_t end_day,
                                     const SensorSelection& sel) const = 0;
  virtual std::string KeyName(uint64_t key) const = 0;
  virtual Result<uint64_t> ParseKey(const std::string& text) const = 0;
};

// Destination ports ("445/tcp", "icmp"): keys are PortKey.
std::unique_ptr<Channel> PortChannel();

struct MustanItem {
  uint64_t key = 0;
  std::string name;               // Channel::KeyName
  std::vector<uint64_t> packets;  // kMustanDays daily counts, oldest first
  std::vector<uint64_t> sources;  // daily distinct sources
  uint64_t total_packets = 0;     // of the window
  uint64_t baseline_packets = 0;  // of the 10 days before
  Trend trend = Trend::kFlat;
  double z = 0;                                // the trend statistic
  double first_half = 0, last_half = 0;        // F and L
  double early_sources = 0, late_sources = 0;  // first-7 and last-3 days' mean sources
  bool is_new = false;
  bool watch = false;
  bool risk = false;
};

struct MustanView {
  std::string channel;
  int32_t first_day = 0, end_day = 0;   // the window [first_day, end_day), local days
  std::vector<std::string> day_labels;  // kMustanDays, "2019-04-03"
  MustanRules rules;
  std::vector<MustanItem> top;    // top 5 by the window's packets
  std::vector<MustanItem> watch;  // by the rise of mean sources, largest first
  std::vector<MustanItem> risk;   // new first, then by z
};

// The last local day the store holds rollups for (the default end of a window); nullopt when the
// store is empty.
std::optional<int32_t> LastDayWithData(const Store& store);

// The views for the 10 days ending on local day `last_day` (inclusive).
Result<MustanView> BuildMustan(const Store& store, const Channel& channel, int32_t last_day,
                               const SensorSelection& sel, const MustanRules& rules = {});

// One item's view (search), whatever its rank, judged by the same window and rules.
Result<MustanItem> MustanItemView(const Store& store, const Channel& channel, uint64_t key,
                                  int32_t last_day, const SensorSelection& sel,
                                  const MustanRules& rules = {});

}  // namespace teiten
