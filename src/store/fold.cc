// Store::Transaction::FoldInputs (store.h has the contract): many small inputs of a sensor —
// its batches, or its captures ingested one by one — become one, so that the manifest, the segment
// files and the index files grow with the data, not with the number of commits.
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>

#include "common/backscatter.h"
#include "store/store.h"

namespace teiten {
namespace fs = std::filesystem;

namespace {

constexpr int kZstdLevel = 3;

// Runs of (stream, id) made as few as possible.
std::vector<BatchRange> UniteRuns(std::vector<BatchRange> runs) {
  std::sort(runs.begin(), runs.end(), [](const BatchRange& a, const BatchRange& b) {
    return a.stream != b.stream ? a.stream < b.stream : a.first < b.first;
  });
  std::vector<BatchRange> out;
  for (const BatchRange& r : runs) {
    if (!out.empty() && out.back().stream == r.stream && r.first <= out.back().last + 1 &&
        out.back().last != UINT64_MAX) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

// Size tier of an input's rows: 0 below 4,096, then one per factor of 4.
int FoldTier(uint64_t rows) {
  int t = 0;
  for (uint64_t r = rows >> 12; r > 0; r >>= 2) ++t;
  return t;
}
constexpr size_t kFoldMinInputs = 4;

}  // namespace

Status Store::Transaction::FoldInputs(const FoldOptions& opts, uint64_t* folded) {
  *folded = 0;
  const uint64_t max_rows = opts.max_rows;
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::map<uint64_t, SegmentRecord> seg;  // copies: next_.segments changes below
  for (const SegmentRecord& s : next_.segments) seg[s.id] = s;
  // Candidates per sensor (and kind, and geo databases) and size tier, in manifest order.
  std::map<std::pair<std::string, int>, std::vector<std::pair<size_t, uint64_t>>> tiers;
  for (size_t i = 0; i < next_.inputs.size(); ++i) {
    const InputRecord& in = next_.inputs[i];
    const bool batch = !in.batches.empty();
    // A capture that ended early stays alone: its identity is the checkpoint at which its
    // completion is recognised. One that completes another keeps its `extends`.
    if (!in.extends.empty() || (!batch && !in.error.empty())) continue;
    const int64_t min_age = batch ? opts.batch_min_age_s : opts.capture_min_age_s;
    if (min_age < 0 || now - in.ingested_at < min_age) continue;
    uint64_t rows = 0;
    for (uint64_t id : in.segments) rows += seg.count(id) ? seg[id].rows : 0;
    // Inputs already a quarter of the bound stay as they are.
    if (rows >= max_rows / 4) continue;
    std::string key =
        (batch ? "batches\n" : "captures\n") + in.sensor + "\n" + in.country_db + "\n" + in.asn_db;
    tiers[{key, opts.all ? 0 : FoldTier(rows)}].push_back({i, rows});
  }
  // A tier is folded once it holds kFoldMinInputs inputs (or always, with `all`), in groups of
  // up to max_rows rows: a group lands a tier or more higher, so each row is rewritten about
  // once per tier it climbs (log4 of max_rows over a commit's rows), not at every fold.
  std::vector<std::vector<size_t>> groups;
  for (const auto& [key_tier, members] : tiers) {
    if (!opts.all && members.size() < kFoldMinInputs) continue;
    uint64_t rows_in_last = 0;
    groups.emplace_back();
    for (const auto& [i, rows] : members) {
      if (!groups.back().empty() && rows_in_last + rows > max_rows) {
        groups.emplace_back();
        rows_in_last = 0;
      }
      groups.back().push_back(i);
      rows_in_last += rows;
    }
  }
  std::set<size_t> replaced;
  std::vector<std::pair<size_t, InputRecord>> made;  // at the first input's position
  std::set<uint64_t> gone_segments;
  std::vector<SegmentRecord> fresh;
  DecodedBlock blk;
  for (const std::vector<size_t>& g : groups) {
    {
      if (g.size() < 2) continue;
      InputRecord out;
      const InputRecord& first = next_.inputs[g.front()];
      const bool batch = !first.batches.empty();
      // A batch input's hash names its first batch, unique for ever; a group of captures gets
      // its own (each capture's identity is kept in `folded`, and must not name the group).
      out.hash = batch || first.hash.rfind("fold:", 0) == 0 ? first.hash : "fold:" + first.hash;
      out.sensor = first.sensor;
      out.country_db = first.country_db;
      out.asn_db = first.asn_db;
      std::map<int32_t, std::vector<uint64_t>> by_day;
      std::vector<BatchRange> runs;
      CaptureIdentities ids;  // of the captures folded, in order
      for (size_t i : g) {
        const InputRecord& in = next_.inputs[i];
        out.ingested_at = std::max(out.ingested_at, in.ingested_at);
        out.packets_read += in.packets_read;
        out.kept += in.kept;
        for (const auto& [r, n] : in.dropped) out.dropped[r] += n;
        for (const auto& [r, n] : in.anomalies) out.anomalies[r] += n;
        if (out.error.empty()) out.error = in.error;
        runs.insert(runs.end(), in.batches.begin(), in.batches.end());
        if (!batch) {
          if (in.folded_file) {
            ASSIGN_OR_RETURN(auto f, store_->OpenIdentities(in.folded_file));
            ASSIGN_OR_RETURN(CaptureIdentities all, f->All());
            ids.insert(ids.end(), all.begin(), all.end());
          }
          for (const auto& x : in.folded) ids.push_back({x.hash, x.file_hash});
          if (!in.folded_file && in.folded.empty()) ids.push_back({in.hash, in.file_hash});
        }
        for (uint64_t id : in.segments) {
          if (seg.count(id)) by_day[seg[id].day].push_back(id);
        }
      }
      out.batches = UniteRuns(std::move(runs));
      uint64_t nbatches = 0;
      for (const BatchRange& r : out.batches) nbatches += r.last - r.first + 1;
      out.path = batch ? fmt::format("{} batches of sensor {} ({} commits folded)", nbatches,
                                     out.sensor, g.size())
                       : fmt::format("{} captures of sensor {} folded", ids.size(), out.sensor);
      if (!batch) {
        // The captures' identities in a file of their own, not in the manifest every commit
        // parses and writes (store/identities.h).
        out.folded_file = next_.next_id++;
        out.folded_count = ids.size();
        std::string path =
            (fs::path(store_->dir_) / fmt::format("idx/{:08}.tids", out.folded_file)).string();
        written_.push_back(path);
        RETURN_IF_ERROR(WriteIdentities(path, ids));
      }
      // One segment per day: every row of the day's segments, sorted by (source, time) again.
      SourceIndexBuilder index;
      for (const auto& [day, ids] : by_day) {
        ObservationBatch rows;
        std::vector<GeoInfo> geo;
        for (uint64_t id : ids) {
          ASSIGN_OR_RETURN(auto reader, store_->OpenSegment(id));
          for (size_t k = 0; k < reader->blocks().size(); ++k) {
            RETURN_IF_ERROR(reader->ReadBlock(k, col::kAll, &blk));
            size_t base = rows.blob.size();
            rows.blob.insert(rows.blob.end(), blk.batch.blob.begin(), blk.batch.blob.end());
            for (Observation o : blk.batch.rows) {
              o.blob += static_cast<uint32_t>(base);
              rows.rows.push_back(o);
            }
            geo.insert(geo.end(), blk.geo.begin(), blk.geo.end());
          }
          gone_segments.insert(id);
        }
        std::vector<uint32_t> order(rows.rows.size());
        std::iota(order.begin(), order.end(), 0u);
        std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
          const Observation& x = rows.rows[a];
          const Observation& y = rows.rows[b];
          if (!(x.src == y.src)) return x.src < y.src;
          return x.ts_us < y.ts_us;
        });
        // Backscatter in a segment of its own, as an ingest writes it (SegmentRows).
        std::vector<uint32_t> backscatter, rest;
        SplitBackscatter(rows.rows, order.begin(), order.end(), &backscatter, &rest);
        for (const auto& [part, rows_of] : {std::pair{&backscatter, SegmentRows::kBackscatter},
                                            std::pair{&rest, SegmentRows::kNoBackscatter}}) {
          if (part->empty()) continue;
          SegmentRecord rec;
          rec.id = next_.next_id++;
          rec.day = day;
          rec.rows = part->size();
          rec.rows_of = rows_of;
          rec.ts_min = INT64_MAX;
          rec.ts_max = INT64_MIN;
          for (uint32_t i : *part) {
            rec.ts_min = std::min(rec.ts_min, rows.rows[i].ts_us);
            rec.ts_max = std::max(rec.ts_max, rows.rows[i].ts_us);
          }
          std::string path =
              (fs::path(store_->dir_) / fmt::format("seg/{:08}.tseg", rec.id)).string();
          written_.push_back(path);
          RETURN_IF_ERROR(SegmentWriter::Write(path, rows, *part, geo, kZstdLevel, &rec.bytes));
          // The index of the new segment, block by block as the writer cut it.
          std::vector<const Observation*> run;
          for (size_t b = 0; b * kBlockRows < part->size(); ++b) {
            uint32_t ref = index.AddBlock(rec.id, static_cast<uint32_t>(b), day);
            size_t end = std::min(part->size(), (b + 1) * kBlockRows);
            for (size_t i = b * kBlockRows; i < end;) {
              size_t e = i + 1;
              while (e < end && rows.rows[(*part)[e]].src == rows.rows[(*part)[i]].src) ++e;
              run.clear();
              for (size_t x = i; x < e; ++x) run.push_back(&rows.rows[(*part)[x]]);
              index.AddRun(run.data(), run.size(), ref, 1, geo[(*part)[i]]);
              i = e;
            }
          }
          out.segments.push_back(rec.id);
          fresh.push_back(rec);
        }
      }
      if (!index.empty()) {
        out.index = next_.next_id++;
        std::string path =
            (fs::path(store_->dir_) / fmt::format("idx/{:08}.tsix", out.index)).string();
        written_.push_back(path);
        RETURN_IF_ERROR(index.Write(path));
      }
      replaced.insert(g.begin(), g.end());
      made.emplace_back(g.front(), std::move(out));
      *folded += g.size();
    }
  }
  if (made.empty()) return OkStatus();
  std::map<size_t, InputRecord> at;
  for (auto& [pos, rec] : made) at.emplace(pos, std::move(rec));
  std::vector<InputRecord> inputs;
  for (size_t i = 0; i < next_.inputs.size(); ++i) {
    if (at.count(i)) inputs.push_back(std::move(at[i]));
    if (!replaced.count(i)) inputs.push_back(std::move(next_.inputs[i]));
  }
  next_.inputs = std::move(inputs);
  next_.segments.erase(
      std::remove_if(next_.segments.begin(), next_.segments.end(),
                     [&](const SegmentRecord& s) { return gone_segments.count(s.id) > 0; }),
      next_.segments.end());
  next_.segments.insert(next_.segments.end(), fresh.begin(), fresh.end());
  return Publish();
}

}  // namespace teiten
