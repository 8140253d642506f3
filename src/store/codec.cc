#include "store/codec.h"

#include <zstd.h>

namespace teiten::codec {

void Shuffle(const uint8_t* in, size_t rows, size_t width, uint8_t* out) {
  for (size_t b = 0; b < width; ++b) {
    uint8_t* plane = out + b * rows;
    for (size_t r = 0; r < rows; ++r) plane[r] = in[r * width + b];
  }
}

void Unshuffle(const uint8_t* in, size_t rows, size_t width, uint8_t* out) {
  for (size_t b = 0; b < width; ++b) {
    const uint8_t* plane = in + b * rows;
    for (size_t r = 0; r < rows; ++r) out[r * width + b] = plane[r];
  }
}

std::vector<uint8_t> Compress(const uint8_t* p, size_t n, int level) {
  std::vector<uint8_t> out(ZSTD_compressBound(n));
  thread_local ZSTD_CCtx* ctx = ZSTD_createCCtx();
  size_t r = ZSTD_compressCCtx(ctx, out.data(), out.size(), p, n, level);
  if (ZSTD_isError(r)) r = 0;  // cannot happen with a bound-sized buffer
  out.resize(r);
  return out;
}

bool Decompress(const uint8_t* p, size_t n, size_t expected, std::vector<uint8_t>* out) {
  out->resize(expected);
  if (expected == 0) return n == 0 || ZSTD_getFrameContentSize(p, n) == 0;
  thread_local ZSTD_DCtx* ctx = ZSTD_createDCtx();
  size_t r = ZSTD_decompressDCtx(ctx, out->data(), expected, p, n);
  return !ZSTD_isError(r) && r == expected;
}

}  // namespace teiten::codec
