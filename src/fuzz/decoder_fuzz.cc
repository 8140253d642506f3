// libFuzzer target for the packet decoder. The first byte picks the link type, the rest is the
// frame; the capture and wire lengths are varied too. Crashes found here become cases in
// tests/unit/decoder_test.cc.
//   cmake -S . -B build-fuzz -G Ninja -DTEITEN_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
//         -DCMAKE_C_COMPILER=clang && ninja -C build-fuzz teiten-decoder-fuzz
//   build-fuzz/src/fuzz/teiten-decoder-fuzz -max_total_time=60
#include <pcap/dlt.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "capture/decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static constexpr std::array<int, 8> kLinks = {DLT_EN10MB, DLT_RAW,  DLT_LINUX_SLL, 276,
                                                DLT_NULL,   DLT_LOOP, 228,           229};
  int dlt = kLinks[data[0] % kLinks.size()];
  uint32_t extra = data[1] % 4;
  // Copy so that reads past the frame land outside the heap block ASan watches.
  std::vector<uint8_t> frame(data + 2, data + size);
  teiten::Decoder d;
  teiten::Observation o;
  std::vector<uint8_t> blob;
  auto cap = static_cast<uint32_t>(frame.size());
  d.Decode(dlt, 0, frame.data(), cap, cap + extra, &o, &blob);
  if (blob.size() > teiten::kMaxTcpOptions + teiten::kPayloadPrefix) __builtin_trap();
  return 0;
}
