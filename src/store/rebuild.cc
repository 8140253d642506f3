// Rebuilding rollups from the segments, and forgetting an input (Store::Transaction).
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "store/store.h"

namespace teiten {

Status Store::Transaction::RebuildRollups(std::set<int32_t> days) {
  if (days.empty()) {
    for (const auto& s : next_.segments) days.insert(s.day);
    for (const auto& [d, per_sensor] : next_.days) days.insert(d);
  }
  // Days whose observations retention dropped keep their rollups: nothing could make them again.
  days.erase(days.begin(), days.lower_bound(next_.segments_from));
  if (days.empty()) return Publish();
  // Every key these days feed is dropped and made again: the sensors' days and the pooled days
  // from the rows; months and quarters (pooled, and of every sensor) from the rows of these days
  // and the parts of their other days (PlanPeriods starts a key without parts from those).
  std::set<std::string> bases;
  for (int32_t d : days) {
    bases.insert(DayLabel(d));
    bases.insert(MonthLabel(d));
    bases.insert(QuarterLabel(d));
    next_.days.erase(d);
  }
  for (auto it = next_.periods.begin(); it != next_.periods.end();) {
    it = bases.count(it->first.substr(0, it->first.find('/'))) ? next_.periods.erase(it)
                                                               : std::next(it);
  }
  rollups_only_ = true;
  DecodedBlock blk;
  std::vector<uint32_t> order;
  std::vector<int32_t> day;
  constexpr uint32_t kColumns = col::kSrc | col::kTs | col::kSensor | col::kPorts;
  for (const auto& seg : next_.segments) {
    if (!days.count(seg.day)) continue;
    ASSIGN_OR_RETURN(auto reader, store_->OpenSegment(seg.id));
    for (size_t b = 0; b < reader->blocks().size(); ++b) {
      RETURN_IF_ERROR(reader->ReadBlock(b, kColumns, &blk));
      // A block's rows are sorted by (source, time), as Add expects of a day's rows.
      order.resize(blk.batch.rows.size());
      std::iota(order.begin(), order.end(), 0u);
      day.assign(blk.batch.rows.size(), seg.day);
      RETURN_IF_ERROR(Add(blk.batch, order, day, blk.geo));
    }
  }
  RETURN_IF_ERROR(WriteHeld(true));
  return Publish();
}

Status Store::Transaction::Forget(const std::string& hash) {
  auto it = std::find_if(next_.inputs.begin(), next_.inputs.end(),
                         [&](const InputRecord& in) { return in.hash == hash; });
  if (it == next_.inputs.end()) {
    for (const InputRecord& in : next_.inputs) {
      ASSIGN_OR_RETURN(bool held, store_->InputHolds(in, hash));
      if (!held) continue;
      return InvalidArgument(fmt::format(
          "capture {} was folded with {} others into input {} ({}, sensor {}): its rows are "
          "mixed with theirs, so it can be forgotten only with them (teiten forget --input {})",
          hash, in.FoldedCaptures() - 1, in.hash, in.path, in.sensor, in.hash));
    }
    return NotFound(fmt::format("no input {} in this store", hash));
  }
  for (const InputRecord& in : next_.inputs) {
    if (in.extends == hash) {
      return InvalidArgument(fmt::format("input {} ({}) holds the rest of {}: forget it first",
                                         in.hash, in.path, it->path));
    }
  }
  if (next_.segments_from != INT32_MIN) {
    // Its counts on days whose segments retention dropped could not be taken out of the rollups.
    std::set<uint64_t> kept(it->segments.begin(), it->segments.end());
    bool partial = it->ingested_at > 0 && it->kept > 0;
    uint64_t rows = 0;
    for (const auto& s : next_.segments) {
      if (kept.count(s.id)) rows += s.rows;
    }
    if (partial && rows < it->kept) {
      return InvalidArgument(fmt::format(
          "input {} ({}) has observations before {}, dropped by retention: its counts there "
          "cannot be taken out of the rollups",
          it->hash, it->path, TimeZone::DayString(next_.segments_from)));
    }
  }
  std::set<uint64_t> gone(it->segments.begin(), it->segments.end());
  std::set<int32_t> days;
  for (const auto& s : next_.segments) {
    if (gone.count(s.id)) days.insert(s.day);
  }
  next_.inputs.erase(it);
  next_.segments.erase(std::remove_if(next_.segments.begin(), next_.segments.end(),
                                      [&](const SegmentRecord& s) { return gone.count(s.id); }),
                       next_.segments.end());
  if (days.empty()) return Publish();  // an input that kept nothing
  return RebuildRollups(std::move(days));
}

Status Store::Transaction::Retain(int32_t before_day, uint64_t* freed) {
  *freed = 0;
  std::set<uint64_t> dropped;
  for (const auto& s : next_.segments) {
    if (s.day < before_day) {
      dropped.insert(s.id);
      *freed += s.bytes;
    }
  }
  next_.segments.erase(std::remove_if(next_.segments.begin(), next_.segments.end(),
                                      [&](const SegmentRecord& s) { return dropped.count(s.id); }),
                       next_.segments.end());
  for (auto& in : next_.inputs) {
    in.segments.erase(std::remove_if(in.segments.begin(), in.segments.end(),
                                     [&](uint64_t id) { return dropped.count(id); }),
                      in.segments.end());
  }
  if (before_day > next_.segments_from) next_.segments_from = before_day;
  return Publish();  // the files go when no reader holds them (CollectGarbage)
}

}  // namespace teiten
