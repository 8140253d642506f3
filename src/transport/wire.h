// The batch wire format: how a sensor's decoded observations travel to the collector and sit in
// the sensor's spool.
//
// A batch file/body is a 32-byte frame header followed by one zstd frame:
//
//   offset size field
//        0    4 magic "TTWB"
//        4    2 version (kWireVersion), little-endian like every integer here
//        6    2 reserved, must be 0
//        8    4 compressed length (bytes of the zstd frame that follows)
//       12    4 decompressed length
//       16    8 XXH3-64 of the zstd frame (checked before decompression)
//       24    8 XXH3-64 of bytes 0..23 (the header itself)
//
// The decompressed body holds, in order: sensor id (u8 length + bytes, 1..64 printable ASCII),
// batch id (u64), stream (u64), first/last timestamp (i64 µs), the loss counts (u16 n, then n × {u8
// reason length, reason bytes, u64 count}), row count (u32), blob arena size (u32), then the rows
// column by column (timestamps as deltas from the previous row, so that zstd sees small repeating
// numbers), then the blob arena. Observation::sensor is not sent: it is an index into one store's
// sensor table, which the collector assigns from the authenticated sensor id.
//
// Guarantees of DecodeBatch: it never reads outside `bytes`, never allocates more than
// `limits.max_decompressed` (+ the rows' in-memory size), and returns either a batch whose every
// row addresses bytes inside its blob arena with opt_len ≤ kMaxTcpOptions and payload_cap ≤
// kPayloadPrefix and ts in [first_ts_us, last_ts_us], or a DataLoss status naming the byte offset
// (in the frame for header fields, in the decompressed body otherwise) and the field. Not
// guaranteed: that the sensor id is the sender's (the collector checks it against the client
// certificate) or that the batch id is new (the store's input records decide that).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/observation.h"
#include "common/status.h"

namespace teiten {

inline constexpr uint16_t kWireVersion = 1;
inline constexpr size_t kWireHeaderSize = 32;
inline constexpr size_t kMaxSensorIdLength = 64;
inline constexpr size_t kMaxLossReasonLength = 64;

struct WireBatch {
  std::string sensor_id;
  uint64_t batch_id = 0;
  // Which run of batch ids this is: drawn at random when the sensor's spool is made, so that a
  // spool wiped and made again (ids from 1 again) is not taken for redelivery of the old one.
  // (sensor, stream, batch id) names a batch for ever.
  uint64_t stream = 0;
  int64_t first_ts_us = 0;  // of the rows; both 0 for a batch that only carries loss counts
  int64_t last_ts_us = 0;
  // What the sensor lost before this batch and has not reported yet, by reason
  // ("kernel_dropped", "spool_full", …). A reason may appear with a zero count.
  std::map<std::string, uint64_t> lost;
  ObservationBatch obs;
};

struct WireLimits {
  uint64_t max_frame = 64ull << 20;          // bytes of header + compressed frame
  uint64_t max_decompressed = 256ull << 20;  // bytes of the body after zstd
};

// True for ids that may name a sensor: 1..64 of [A-Za-z0-9._-].
bool ValidSensorId(std::string_view id);

// Encodes `b`. InvalidArgument when the batch cannot be represented (bad sensor id or reason,
// a row addressing bytes outside the arena, more than 2^32-1 rows/bytes); the rows' timestamps
// set first/last_ts_us when both are 0, and must lie inside them otherwise.
Result<std::string> EncodeBatch(const WireBatch& b, int zstd_level = 3);

// Decodes and validates one frame (see the guarantees above). `bytes` must be exactly one frame:
// trailing bytes are an error.
Result<WireBatch> DecodeBatch(std::string_view bytes, const WireLimits& limits = {});

// Splits a request body holding one or more frames back to back (a sensor sends its backlog in
// one request) by their headers' lengths, checking nothing else (DecodeBatch checks each).
// DataLoss naming the byte offset when a frame is cut short or there are more than max_frames.
Result<std::vector<std::string_view>> SplitFrames(std::string_view bytes, size_t max_frames,
                                                  const WireLimits& limits = {});

}  // namespace teiten
