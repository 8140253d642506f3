#include "store/codec.h"

#include <zstd.h>

#include <memory>

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

namespace {
// One compression and one decompression context per thread, freed when the thread ends
// (ingest flushes run on short-lived worker threads).
struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};
ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> ctx(ZSTD_createCCtx());
  return ctx.get();
}
ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}
}  // namespace

std::vector<uint8_t> Compress(const uint8_t* p, size_t n, int level) {
  std::vector<uint8_t> out(ZSTD_compressBound(n));
  size_t r = ZSTD_compressCCtx(ThreadCCtx(), out.data(), out.size(), p, n, level);
  if (ZSTD_isError(r)) r = 0;  // cannot happen with a bound-sized buffer
  out.resize(r);
  return out;
}

bool Decompress(const uint8_t* p, size_t n, size_t expected, std::vector<uint8_t>* out) {
  out->resize(expected);
  if (expected == 0) return n == 0 || ZSTD_getFrameContentSize(p, n) == 0;
  size_t r = ZSTD_decompressDCtx(ThreadDCtx(), out->data(), expected, p, n);
  return !ZSTD_isError(r) && r == expected;
}

size_t FrameContentSize(const uint8_t* p, size_t n) {
  const unsigned long long size = ZSTD_getFrameContentSize(p, n);
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > SIZE_MAX) {
    return SIZE_MAX;
  }
  return static_cast<size_t>(size);
}

}  // namespace teiten::codec
