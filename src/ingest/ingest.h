// Ingest: capture files → decode → sensor filter → enrich → store (SPEC C1, C2, E1, S4).
//
// Each file is one store transaction: it is committed whole or not at all, recorded with its
// content hash, and skipped when seen again. Packets that could not be decoded or were not for
// the sensor are counted by reason in the summary and recorded with the input; a read error (a
// truncated or corrupt capture) ends that file, keeps the packets before it, and is reported
// with the file and offset.
//
//   Ingester ing(store, geo);
//   ASSIGN_OR_RETURN(IngestSummary s, ing.IngestFile(sensor_cfg, "tyo1-2018-08-12.pcap.zst"));
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "capture/decoder.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "sensor/config.h"
#include "sensor/filter.h"
#include "store/store.h"
#include "transport/wire.h"

namespace teiten {

struct IngestSummary {
  std::string path;
  std::string hash;
  bool already_ingested = false;
  uint64_t packets_read = 0;
  uint64_t kept = 0;
  uint64_t bytes_read = 0;                    // of the (decompressed) capture
  std::map<std::string, uint64_t> dropped;    // reason → packets not kept
  std::map<std::string, uint64_t> anomalies;  // reason → kept packets with an anomaly
  std::string error;                          // read error that ended the file early, if any
  double seconds = 0;
};

struct IngestOptions {
  size_t batch_rows = size_t{1} << 18;  // observations buffered before a segment is written
  // After each commit, merge the rollup parts it made due (Store::Merge, tiered, limited to the
  // days it touched), so that many small ingests leave few parts. Off for callers that merge on
  // their own schedule.
  bool merge = true;
  // Rollups and source index held in memory before the transaction writes them out as parts
  // (Store::Transaction::set_memory_budget).
  size_t memory_budget = size_t{64} << 20;
  // Called now and then with (packets read, bytes read) for progress display.
  std::function<void(uint64_t, uint64_t)> progress;
};

class Ingester {
 public:
  Ingester(Store* store, const GeoDb* geo, IngestOptions opts = {})
      : store_(store), geo_(geo), opts_(std::move(opts)) {}

  // Ingests one capture for `sensor`. A capture that cannot be opened at all is an error; one
  // that breaks part-way is committed up to the break, with the error in the summary.
  // `path` "-" is standard input; it and other streams (FIFOs) are read once to their end (kept
  // in the store's tmp/ folder until committed), so `tcpdump -w - | teiten ingest -` works for a
  // capture that ends; a kill leaves the store as before the stream.
  Result<IngestSummary> IngestFile(const SensorConfig& sensor, const std::string& path);

  // Commits batches that `sensor` sent to the collector (SPEC C1, C2), as one input: the same
  // path as a capture (sorted, enriched once per source, one transaction, merged after), and the
  // sensor's filter applied again — a sensor is trusted to say what it saw, not to write outside
  // the prefixes the centre gave it (rows it should not have sent are counted under
  // "collector_<verdict>"). The batches' loss counts (what the sensor dropped, filtered or could
  // not spool) become the input's dropped counts. A batch whose (stream, id) the store already
  // holds, or that appears twice in `batches`, is not committed again: its index is returned in
  // `duplicates`. Every batch must carry `sensor.id` (InvalidArgument otherwise: the collector
  // checks the id against the sender's certificate before this). Nothing new: no commit, and a
  // summary with kept 0 and an empty hash.
  Result<IngestSummary> IngestBatches(const SensorConfig& sensor, std::vector<WireBatch>* batches,
                                      std::vector<size_t>* duplicates);

 private:
  // Ingests the capture file at `path`, recorded (and named in errors) as `name`.
  Result<IngestSummary> IngestCapture(const SensorConfig& sensor, const std::string& path,
                                      const std::string& name);
  Status Flush(Store::Transaction* txn, ObservationBatch* batch);
  // Records the geo databases used, commits `rec` (the lock is released), and merges the parts
  // the commit made due when opts_.merge.
  Status CommitInput(std::unique_ptr<Store::Transaction> txn, InputRecord rec);

  Store* store_;
  const GeoDb* geo_;
  IngestOptions opts_;
  std::vector<uint32_t> order_, scratch_;
  std::vector<uint64_t> keys_, keys_scratch_;
  std::vector<int32_t> day_, day_scratch_;
  ObservationBatch sorted_;
  std::vector<GeoInfo> geo_rows_;
};

// An error naming the sensor that already has `in` when it is not `sensor`'s; OK when it is.
Status SameSensor(const InputRecord& in, const SensorConfig& sensor, const std::string& path);

// Which (stream, batch id)s of `sensor_id` the inputs hold.
class BatchLedger {
 public:
  void Add(const InputRecord& in);
  bool Has(uint64_t stream, uint64_t id) const;
  void Insert(uint64_t stream, uint64_t id);

 private:
  std::map<uint64_t, std::map<uint64_t, uint64_t>> runs_;  // stream → first → last
};

// "type YYYY-MM-DD path" for recording which database enriched an input.
std::string DescribeGeoDb(const GeoDbInfo& info);

}  // namespace teiten
