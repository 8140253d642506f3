#include "analysis/mustan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace teiten {
namespace {

class PortChannelImpl : public Channel {
 public:
  std::string Name() const override { return "port"; }
  Result<std::vector<uint64_t>> Candidates(const Store& store, int32_t first_day, int32_t end_day,
                                           const SensorSelection& sel, size_t n) const override {
    std::set<uint64_t> keys;
    ASSIGN_OR_RETURN(auto whole,
                     TopKeys(store, Dimension::kPort, DaysPeriod(first_day, end_day), sel, n));
    keys.insert(whole.begin(), whole.end());
    int32_t late = std::max(first_day, end_day - 3);
    ASSIGN_OR_RETURN(auto recent,
                     TopKeys(store, Dimension::kPort, DaysPeriod(late, end_day), sel, n));
    keys.insert(recent.begin(), recent.end());
    return std::vector<uint64_t>(keys.begin(), keys.end());
  }
  Result<SeriesResult> Daily(const Store& store, const std::vector<uint64_t>& keys,
                             int32_t first_day, int32_t end_day,
                             const SensorSelection& sel) const override {
    return Series(store, Dimension::kPort, keys, DaysPeriod(first_day, end_day), Granularity::kDay,
                  sel);
  }
  std::string KeyName(uint64_t key) const override {
    return PortKeyToString(static_cast<PortKey>(key));
  }
  Result<uint64_t> ParseKey(const std::string& text) const override {
    PortKey k = 0;
    if (!ParsePortKey(text, &k))
      return InvalidArgument(fmt::format("not a port: '{}' (e.g. 445/tcp, 53/udp, icmp)", text));
    return uint64_t{k};
  }
};

// Candidates per window: enough that the top 5 and most risers are among them, few enough that
// one Series call over them stays cheap.
constexpr size_t kCandidates = 100;

double Mean(const std::vector<uint64_t>& v, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += static_cast<double>(v[i]);
  return to > from ? s / static_cast<double>(to - from) : 0;
}

// Judges one item from its 20 daily points (baseline then window).
MustanItem Judge(const Channel& ch, uint64_t key, const SeriesResult& s, size_t idx,
                 const MustanRules& rules) {
  MustanItem it;
  it.key = key;
  it.name = ch.KeyName(key);
  const size_t base = s.points.size() - kMustanDays;
  for (size_t d = 0; d < s.points.size(); ++d) {
    uint64_t p = s.points[d].packets[idx];
    if (d < base) {
      it.baseline_packets += p;
    } else {
      it.packets.push_back(p);
      it.sources.push_back(s.points[d].sources[idx]);
      it.total_packets += p;
    }
  }
  for (int d = 0; d < kMustanDays; ++d)
    (d < kMustanDays / 2 ? it.first_half : it.last_half) += static_cast<double>(it.packets[d]);
  const double f = it.first_half, l = it.last_half;
  it.z = (l + f) > 0 ? (l - f) / std::sqrt(l + f) : 0;
  if (it.z >= rules.z_threshold && l >= rules.ratio_threshold * f)
    it.trend = Trend::kUp;
  else if (it.z <= -rules.z_threshold && f >= rules.ratio_threshold * l)
    it.trend = Trend::kDown;
  it.early_sources = Mean(it.sources, 0, kMustanDays - 3);
  it.late_sources = Mean(it.sources, kMustanDays - 3, kMustanDays);
  it.watch = it.late_sources >= rules.watch_ratio * std::max(1.0, it.early_sources) &&
             it.late_sources - it.early_sources >= rules.watch_min_sources;
  it.is_new = it.baseline_packets == 0 && it.total_packets >= rules.new_min_packets;
  it.risk = it.trend == Trend::kUp || it.is_new;
  return it;
}

Result<SeriesResult> DailyChecked(const Store& store, const Channel& ch,
                                  const std::vector<uint64_t>& keys, int32_t last_day,
                                  const SensorSelection& sel) {
  const int32_t end = last_day + 1, first = end - 2 * kMustanDays;
  ASSIGN_OR_RETURN(auto s, ch.Daily(store, keys, first, end, sel));
  // The rules index days by position: a channel that skipped a day would shift every figure.
  if (s.points.size() != static_cast<size_t>(2 * kMustanDays))
    return Internal(fmt::format("MUSTAN: channel {} gave {} daily points for {} days", ch.Name(),
                                s.points.size(), 2 * kMustanDays));
  return s;
}

}  // namespace

const char* TrendArrow(Trend t) {
  switch (t) {
    case Trend::kUp:
      return "↑";
    case Trend::kDown:
      return "↓";
    case Trend::kFlat:
      break;
  }
  return "→";
}

const char* TrendName(Trend t) {
  switch (t) {
    case Trend::kUp:
      return "up";
    case Trend::kDown:
      return "down";
    case Trend::kFlat:
      break;
  }
  return "flat";
}

std::string MustanRules::TrendRule(const std::string& lang) const {
  if (lang == "ja")
    return fmt::format(
        "矢印: 10日間の前半5日(F)と後半5日(L)のパケット数を比べ、z = (L−F)/√(L+F) が {:g} 以上かつ "
        "L ≥ {:g}·F なら↑、z ≤ −{:g} かつ F ≥ {:g}·L なら↓、それ以外は→。",
        z_threshold, ratio_threshold, z_threshold, ratio_threshold);
  return fmt::format(
      "Arrow: packets of the first 5 days (F) vs the last 5 (L) of the 10; z = (L−F)/√(L+F). "
      "↑ when z ≥ {:g} and L ≥ {:g}·F; ↓ when z ≤ −{:g} and F ≥ {:g}·L; → otherwise.",
      z_threshold, ratio_threshold, z_threshold, ratio_threshold);
}

std::string MustanRules::WatchRule(const std::string& lang) const {
  if (lang == "ja")
    return fmt::format(
        "要注意: 直近3日の1日平均送信元数が、最初の7日の平均(1未満は1とする)の {:g} 倍以上で、"
        "かつ {:g} 以上増えた項目。",
        watch_ratio, watch_min_sources);
  return fmt::format(
      "Watch: the mean daily distinct sources of the last 3 days is at least {:g}× that of the "
      "first 7 (taken as 1 when lower) and at least {:g} higher.",
      watch_ratio, watch_min_sources);
}

std::string MustanRules::RiskRule(const std::string& lang) const {
  if (lang == "ja")
    return fmt::format(
        "リスク: 矢印が↑の項目、または直前の10日間に1パケットもなく、この10日間に{}パケット以上"
        "現れた項目。",
        new_min_packets);
  return fmt::format(
      "Risk: items whose arrow is ↑, or new: no packet in the 10 days before and at least {} in "
      "these 10.",
      new_min_packets);
}

std::optional<int32_t> LastDayWithData(const Store& store) {
  const auto& days = store.manifest().days;
  if (days.empty()) return std::nullopt;
  return days.rbegin()->first;
}

std::unique_ptr<Channel> PortChannel() {
  return std::make_unique<PortChannelImpl>();
}

Result<MustanView> BuildMustan(const Store& store, const Channel& channel, int32_t last_day,
                               const SensorSelection& sel, const MustanRules& rules) {
  MustanView v;
  v.channel = channel.Name();
  v.end_day = last_day + 1;
  v.first_day = v.end_day - kMustanDays;
  v.rules = rules;
  ASSIGN_OR_RETURN(auto keys, channel.Candidates(store, v.first_day, v.end_day, sel, kCandidates));
  if (keys.empty()) {
    ASSIGN_OR_RETURN(auto s, DailyChecked(store, channel, {}, last_day, sel));
    for (size_t d = kMustanDays; d < s.points.size(); ++d)
      v.day_labels.push_back(s.points[d].label);
    return v;
  }
  ASSIGN_OR_RETURN(auto s, DailyChecked(store, channel, keys, last_day, sel));
  for (size_t d = kMustanDays; d < s.points.size(); ++d) v.day_labels.push_back(s.points[d].label);
  std::vector<MustanItem> items;
  for (size_t i = 0; i < s.keys.size(); ++i)
    items.push_back(Judge(channel, s.keys[i], s, i, rules));
  std::vector<MustanItem> by_packets = items;
  std::sort(by_packets.begin(), by_packets.end(), [](const auto& a, const auto& b) {
    return a.total_packets != b.total_packets ? a.total_packets > b.total_packets : a.key < b.key;
  });
  for (const auto& it : by_packets) {
    if (it.total_packets == 0 || v.top.size() == kMustanTop) break;
    v.top.push_back(it);
  }
  for (const auto& it : items) {
    if (it.watch) v.watch.push_back(it);
    if (it.risk) v.risk.push_back(it);
  }
  std::sort(v.watch.begin(), v.watch.end(), [](const auto& a, const auto& b) {
    double ra = a.late_sources - a.early_sources, rb = b.late_sources - b.early_sources;
    return ra != rb ? ra > rb : a.key < b.key;
  });
  std::sort(v.risk.begin(), v.risk.end(), [](const auto& a, const auto& b) {
    if (a.is_new != b.is_new) return a.is_new;
    return a.z != b.z ? a.z > b.z : a.key < b.key;
  });
  return v;
}

Result<MustanItem> MustanItemView(const Store& store, const Channel& channel, uint64_t key,
                                  int32_t last_day, const SensorSelection& sel,
                                  const MustanRules& rules) {
  ASSIGN_OR_RETURN(auto s, DailyChecked(store, channel, {key}, last_day, sel));
  return Judge(channel, key, s, 0, rules);
}

}  // namespace teiten
