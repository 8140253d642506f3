// Batcher: the sensor's packet path — decode, filter, and gather what is kept into wire batches
// (SPEC C1, C2). Live capture, a watched directory and the tests feed it frames; it hands back
// batches ready for the spool.
//
//   Batcher b(sensor_cfg);
//   b.AddFrame(dlt, ts_us, data, caplen, wirelen);
//   if (b.rows() >= limit) spool.Append(b.Take());
//
// What is not kept is never silent: every frame that was not decoded or not for this sensor is
// counted by the same reason names `teiten ingest` records ("not_monitored", "unsupported_link",
// …), and those counts travel in the next batch's loss map, so the centre's input records say
// what each sensor left out, as an ingest's do. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "capture/decoder.h"
#include "sensor/config.h"
#include "sensor/filter.h"
#include "transport/wire.h"

namespace teiten {

class Batcher {
 public:
  explicit Batcher(const SensorConfig& sensor);

  // One captured frame of link type `dlt`. Returns true when it was kept.
  bool AddFrame(int dlt, int64_t ts_us, const uint8_t* data, uint32_t caplen, uint32_t wirelen);
  // An observation made elsewhere (a netfilter log line): filtered, then kept like a frame's.
  bool AddObservation(Observation o, const ObservationBatch& from);
  // Counts `n` packets lost for `reason` (e.g. "kernel_dropped"): they travel with the next batch.
  void CountLost(const std::string& reason, uint64_t n);

  size_t rows() const { return batch_.obs.rows.size(); }
  bool has_losses() const;
  // The batch gathered so far (rows and the counts since the last Take), and a fresh start.
  WireBatch Take();

  // Totals since construction, by reason, for metrics.
  uint64_t frames() const { return frames_; }
  uint64_t kept() const { return kept_; }
  const std::map<std::string, uint64_t>& dropped_total() const { return dropped_total_; }

 private:
  void Drop(const std::string& reason, uint64_t n);

  SensorFilter filter_;
  Decoder decoder_;
  DecodeStats reported_;  // decoder counts already moved into a batch
  WireBatch batch_;
  uint64_t frames_ = 0, kept_ = 0;
  std::map<std::string, uint64_t> dropped_total_;
};

}  // namespace teiten
