// SensorDaemon: `teiten sensor`, the long-running process at each sensor (SPEC C1, C2, C5, C6,
// O7, §5).
//
//   capture (libpcap on an interface; rotated pcap files in a watched directory)
//     → Batcher (decode, the sensor's filter)            counted: every frame, by reason
//     → Spool (fsync'd, disk budget)                     counted: what the budget dropped
//     → sender thread → collector over mTLS             deleted only when the collector answers
//                                                        200 (committed)
//
// Guarantees: a packet the kernel handed over is in the spool within batch_seconds, and leaves
// it only when the collector has committed it; kernel drops (pcap_stats), spool-full drops and
// refused batches are counted and travel to the centre in the next batch's loss map (and show in
// /metrics). SIGTERM ends the capture, spools what was gathered, gives the sender a few seconds
// to deliver, and exits 0; whatever is still spooled is sent by the next start. After opening the
// capture, the spool and the listeners, the process drops to `user` (no capabilities kept,
// no_new_privs set).
// Not guaranteed: delivery while the collector is unreachable (batches wait in the spool, up to
// its budget).
#pragma once

#include <atomic>
#include <memory>

#include "common/status.h"
#include "sensor/config.h"

namespace teiten {

class SensorDaemon {
 public:
  // `cfg.has_daemon` must be set.
  explicit SensorDaemon(const Config& cfg);
  ~SensorDaemon();
  // Opens inputs, spool and listeners, drops privileges, and runs until `*stop` is set.
  Status Run(const std::atomic<bool>* stop);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace teiten
