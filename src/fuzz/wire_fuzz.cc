// libFuzzer target for what the collector takes from the network (transport/wire.h): a request
// body of any bytes, split into frames and each decoded, must give batches that keep every
// promise of DecodeBatch — rows inside the arena, option and payload bytes within their bounds,
// times inside the batch's range — and re-encode to the same rows; or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "transport/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  teiten::WireLimits limits;
  limits.max_frame = 1 << 20;
  limits.max_decompressed = 4 << 20;
  auto frames = teiten::SplitFrames(body, 64, limits);
  if (!frames.ok()) return 0;
  for (std::string_view f : *frames) {
    auto b = teiten::DecodeBatch(f, limits);
    if (!b.ok()) continue;
    for (const teiten::Observation& o : b->obs.rows) {
      if (o.opt_len > teiten::kMaxTcpOptions || o.payload_cap > teiten::kPayloadPrefix ||
          uint64_t{o.blob} + o.opt_len + o.payload_cap > b->obs.blob.size() ||
          o.ts_us < b->first_ts_us || o.ts_us > b->last_ts_us) {
        __builtin_trap();
      }
    }
    if (!teiten::ValidSensorId(b->sensor_id)) __builtin_trap();
    auto again = teiten::EncodeBatch(*b, 1);
    if (!again.ok()) __builtin_trap();  // whatever decodes must encode
    auto back = teiten::DecodeBatch(*again, limits);
    if (!back.ok() || back->obs.rows.size() != b->obs.rows.size() ||
        back->batch_id != b->batch_id || back->stream != b->stream || back->lost != b->lost) {
      __builtin_trap();
    }
  }
  return 0;
}
