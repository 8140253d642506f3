// Ingester::IngestBatches: what the collector commits (ingest.h has the contract).
#include <fmt/format.h>

#include <chrono>

#include "ingest/ingest.h"

namespace teiten {

void BatchLedger::Add(const InputRecord& in) {
  for (const BatchRange& r : in.batches) {
    for (uint64_t id = r.first;; ++id) {
      Insert(r.stream, id);
      if (id == r.last) break;
    }
  }
}

bool BatchLedger::Has(uint64_t stream, uint64_t id) const {
  auto s = runs_.find(stream);
  if (s == runs_.end()) return false;
  auto it = s->second.upper_bound(id);
  if (it == s->second.begin()) return false;
  --it;
  return id <= it->second;
}

void BatchLedger::Insert(uint64_t stream, uint64_t id) {
  // Runs stay disjoint and maximal: a sensor's spool sends ids in order, so a stream is one or
  // two runs however many batches it has sent.
  auto& runs = runs_[stream];
  auto next = runs.upper_bound(id);
  if (next != runs.begin()) {
    auto prev = std::prev(next);
    if (id <= prev->second) return;
    if (prev->second + 1 == id) {
      prev->second = id;
      if (next != runs.end() && next->first == id + 1) {
        prev->second = next->second;
        runs.erase(next);
      }
      return;
    }
  }
  if (next != runs.end() && next->first == id + 1) {
    uint64_t last = next->second;
    runs.erase(next);
    runs[id] = last;
    return;
  }
  runs[id] = id;
}

Result<IngestSummary> Ingester::IngestBatches(const SensorConfig& sensor,
                                              std::vector<WireBatch>* batches,
                                              std::vector<size_t>* duplicates) {
  auto t0 = std::chrono::steady_clock::now();
  duplicates->clear();
  for (const WireBatch& b : *batches) {
    if (b.sensor_id != sensor.id) {
      return InvalidArgument(fmt::format("batch {} of sensor '{}' offered as sensor '{}'",
                                         b.batch_id, b.sensor_id, sensor.id));
    }
  }
  ASSIGN_OR_RETURN(auto txn, store_->Begin());
  txn->set_memory_budget(opts_.memory_budget);
  BatchLedger ledger;
  for (const InputRecord& in : txn->inputs()) {
    if (in.sensor == sensor.id) ledger.Add(in);
  }
  uint16_t sensor_index = txn->EnsureSensor(sensor);
  SensorFilter filter(sensor);
  IngestSummary sum;
  ObservationBatch all;
  std::vector<BatchRange> ranges;
  for (size_t i = 0; i < batches->size(); ++i) {
    WireBatch& b = (*batches)[i];
    if (ledger.Has(b.stream, b.batch_id)) {
      duplicates->push_back(i);
      continue;
    }
    ledger.Insert(b.stream, b.batch_id);
    if (!ranges.empty() && ranges.back().stream == b.stream &&
        ranges.back().last + 1 == b.batch_id) {
      ranges.back().last = b.batch_id;
    } else {
      ranges.push_back({b.stream, b.batch_id, b.batch_id});
    }
    for (const auto& [reason, n] : b.lost) {
      if (n) sum.dropped[reason] += n;
    }
    sum.packets_read += b.obs.rows.size();
    size_t base = all.blob.size();
    all.blob.insert(all.blob.end(), b.obs.blob.begin(), b.obs.blob.end());
    for (Observation o : b.obs.rows) {
      FilterVerdict v = filter.Check(o);
      if (v != FilterVerdict::kKeep) {
        sum.dropped[std::string("collector_") + FilterVerdictName(v)]++;
        continue;
      }
      o.blob += static_cast<uint32_t>(base);
      o.sensor = sensor_index;
      all.rows.push_back(o);
    }
    sum.bytes_read += b.obs.rows.size() * sizeof(Observation) + b.obs.blob.size();
  }
  if (ranges.empty()) return sum;  // every batch already committed
  RETURN_IF_ERROR(Flush(txn.get(), &all));
  sum.kept = txn->rows_added();
  const BatchRange& r0 = ranges.front();
  sum.hash = fmt::format("batch:{}:{:016x}:{}", sensor.id, r0.stream, r0.first);
  sum.path =
      ranges.size() == 1 && r0.first == r0.last
          ? fmt::format("batch {} of sensor {}", r0.first, sensor.id)
          : fmt::format("batches {}–{} of sensor {}", r0.first, ranges.back().last, sensor.id);
  InputRecord rec;
  rec.hash = sum.hash;
  rec.sensor = sensor.id;
  rec.path = sum.path;
  rec.packets_read = sum.packets_read;
  rec.kept = sum.kept;
  rec.dropped = sum.dropped;
  rec.batches = std::move(ranges);
  RETURN_IF_ERROR(CommitInput(std::move(txn), std::move(rec)));
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace teiten
