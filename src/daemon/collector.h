// Collector: `teiten collect`, the centre of the sensor network (SPEC C1, C2, O7, §5).
//
// Sensors POST wire batches (transport/wire.h) to /v1/batches over TLS 1.3 with a client
// certificate; the certificate's common name is the sensor id. A batch is answered 200 only
// after it is committed to the store (Ingester::IngestBatches, the same path as `teiten
// ingest`), so a sensor deletes from its spool only what the store holds; a batch delivered
// again counts once. POST /v1/status carries a sensor's own health (spool backlog, capture
// counters) between batches. A plain-HTTP listener serves Prometheus /metrics.
//
// Refused, with a logged reason and never a crash: a certificate not signed by the CA, expired
// or revoked (CRL) — at the handshake; a certificate whose sensor the config does not name (403);
// a batch naming another sensor than its certificate (403); a body over max_batch_bytes (413);
// a sender over its rate (429, Retry-After); a batch that does not decode (400, the offset and
// field). A store that cannot commit (disk full) answers 503: the sensor keeps the batch and
// retries.
//
// Commits are serialised in one thread: batches that arrive while a commit runs wait and go
// into the next one together, one input per sensor — so ten sensors each sending every ten
// seconds cost about one commit a second, whatever the number of batches.
#pragma once

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "enrich/geo.h"
#include "sensor/config.h"
#include "store/store.h"

namespace teiten {

// What the collector last heard from each sensor, kept in STORE/sensors/<id>.json so that
// `teiten sensors` answers after a collector restart.
struct SensorStatusFile {
  std::string sensor;
  int64_t last_contact = 0;  // Unix seconds of the last batch or status
  int64_t last_batch = 0;    // Unix seconds of the last batch committed
  nlohmann::json reported;   // the sensor's own last status (spool backlog, capture counters)
};

class Collector {
 public:
  // `cfg.has_collect` must be set; `store` and `geo` outlive the collector.
  Collector(const Config& cfg, Store* store, const GeoDb* geo);
  ~Collector();

  // Loads the certificates, binds both listeners and starts serving; an error names the file or
  // address that failed.
  Status Start();
  // Stops accepting, commits what was received, answers its senders, and returns.
  void Stop();
  // The TLS port actually bound (for "listen = 127.0.0.1:0" in tests).
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace teiten
