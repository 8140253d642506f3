#include "daemon/batcher.h"

namespace teiten {

Batcher::Batcher(const SensorConfig& sensor) : filter_(sensor) {
  batch_.sensor_id = sensor.id;
}

void Batcher::Drop(const std::string& reason, uint64_t n) {
  batch_.lost[reason] += n;
  dropped_total_[reason] += n;
}

void Batcher::CountLost(const std::string& reason, uint64_t n) {
  if (n) Drop(reason, n);
}

bool Batcher::AddFrame(int dlt, int64_t ts_us, const uint8_t* data, uint32_t caplen,
                       uint32_t wirelen) {
  ++frames_;
  Observation o;
  std::vector<uint8_t>& blob = batch_.obs.blob;
  size_t mark = blob.size();
  if (!decoder_.Decode(dlt, ts_us, data, caplen, wirelen, &o, &blob)) return false;
  FilterVerdict v = filter_.Check(o);
  if (v != FilterVerdict::kKeep) {
    blob.resize(mark);
    Drop(FilterVerdictName(v), 1);
    return false;
  }
  batch_.obs.rows.push_back(o);
  ++kept_;
  return true;
}

bool Batcher::AddObservation(Observation o, const ObservationBatch& from) {
  ++frames_;
  FilterVerdict v = filter_.Check(o);
  if (v != FilterVerdict::kKeep) {
    Drop(FilterVerdictName(v), 1);
    return false;
  }
  std::vector<uint8_t>& blob = batch_.obs.blob;
  size_t n = size_t{o.opt_len} + o.payload_cap;
  const uint8_t* p = from.blob.data() + o.blob;
  o.blob = static_cast<uint32_t>(blob.size());
  blob.insert(blob.end(), p, p + n);
  batch_.obs.rows.push_back(o);
  ++kept_;
  return true;
}

bool Batcher::has_losses() const {
  if (!batch_.lost.empty()) return true;
  const DecodeStats& ds = decoder_.stats();
  for (size_t i = 1; i < ds.by_reason.size(); ++i) {
    if (ds.by_reason[i] != reported_.by_reason[i] && !AnomalyKeepsPacket(static_cast<Anomaly>(i))) {
      return true;
    }
  }
  return false;
}

WireBatch Batcher::Take() {
  // Frames the decoder dropped since the last batch, by anomaly (kept packets' anomalies are in
  // their rows' flags, not losses).
  const DecodeStats& ds = decoder_.stats();
  for (size_t i = 1; i < ds.by_reason.size(); ++i) {
    auto a = static_cast<Anomaly>(i);
    uint64_t n = ds.by_reason[i] - reported_.by_reason[i];
    if (n && !AnomalyKeepsPacket(a)) Drop(AnomalyName(a), n);
  }
  reported_ = ds;
  WireBatch out = std::move(batch_);
  batch_ = WireBatch();
  batch_.sensor_id = out.sensor_id;
  out.first_ts_us = out.last_ts_us = 0;
  return out;
}

}  // namespace teiten
