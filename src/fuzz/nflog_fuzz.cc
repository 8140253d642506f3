// libFuzzer target for netfilter LOG lines (sensor/nflog.h): a log file of any bytes, read by
// NetfilterLogReader (which parses every line with ParseNetfilterLog), must give observations
// and counted errors, never a crash or a read past a line.
#include <cstddef>
#include <cstdint>

#include "fuzz_io.h"
#include "sensor/nflog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  teiten::fuzz::MemFile file(data, size);
  teiten::NflogContext ctx;
  ctx.year = 2026;
  teiten::NflogReaderOptions options;
  options.max_line = 512;  // small, so that the too-long path is reached too
  auto reader = teiten::NetfilterLogReader::Open(file.path(), ctx, options);
  if (!reader.ok()) return 0;
  teiten::ObservationBatch batch;
  while (true) {
    auto n = reader->Next(&batch, 3);
    if (!n.ok() || *n == 0) break;
  }
  const auto& c = reader->counts();
  if (c.kept != batch.rows.size() || c.log_lines < c.kept || c.lines < c.log_lines) {
    __builtin_trap();
  }
  for (const auto& o : batch.rows) {
    if (o.blob + o.opt_len > batch.blob.size() || o.payload_cap != 0) __builtin_trap();
  }
  return 0;
}
