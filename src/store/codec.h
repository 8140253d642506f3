// Byte-level encoding shared by the store's files: little-endian scalars, LEB128 varints, a
// bounds-checked reader that reports where a corrupt file went wrong, and byte-plane shuffling
// (all first bytes of a fixed-width column, then all second bytes, …) which lets zstd see the
// slowly-varying high bytes of ports, lengths and addresses as the long runs they are.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace teiten::codec {

inline void PutU8(std::vector<uint8_t>* o, uint8_t v) {
  o->push_back(v);
}
template <typename T>
inline void PutFixed(std::vector<uint8_t>* o, T v) {
  size_t n = o->size();
  o->resize(n + sizeof(T));
  std::memcpy(o->data() + n, &v, sizeof(T));
}
inline void PutVarint(std::vector<uint8_t>* o, uint64_t v) {
  while (v >= 0x80) {
    o->push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  o->push_back(static_cast<uint8_t>(v));
}
// Bytes PutVarint writes for `v`.
inline size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
inline void PutBytes(std::vector<uint8_t>* o, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  o->insert(o->end(), b, b + n);
}

// Reads from a byte range; any read past the end sets failed() and returns zeros, so a parser
// can read a whole record and check once.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), end_(p + n), begin_(p) {}
  explicit Reader(std::string_view s)
      : Reader(reinterpret_cast<const uint8_t*>(s.data()), s.size()) {}
  template <typename T>
  T Fixed() {
    T v{};
    if (static_cast<size_t>(end_ - p_) < sizeof(T)) {
      failed_ = true;
      p_ = end_;
      return v;
    }
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) {
        failed_ = true;
        return 0;
      }
      uint8_t b = *p_++;
      v |= uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80)) return v;
    }
    failed_ = true;
    return 0;
  }
  const uint8_t* Bytes(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) {
      failed_ = true;
      p_ = end_;
      return nullptr;
    }
    const uint8_t* r = p_;
    p_ += n;
    return r;
  }
  bool failed() const { return failed_; }
  bool done() const { return p_ == end_; }
  size_t offset() const { return static_cast<size_t>(p_ - begin_); }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  const uint8_t* data() const { return p_; }  // where the next read begins

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const uint8_t* begin_;
  bool failed_ = false;
};

// Transposes `rows` values of `width` bytes into byte planes (and back).
void Shuffle(const uint8_t* in, size_t rows, size_t width, uint8_t* out);
void Unshuffle(const uint8_t* in, size_t rows, size_t width, uint8_t* out);

// zstd helpers. Decompress fails cleanly (false) on corrupt input or a size mismatch.
std::vector<uint8_t> Compress(const uint8_t* p, size_t n, int level);
bool Decompress(const uint8_t* p, size_t n, size_t expected, std::vector<uint8_t>* out);
// The content size a zstd frame declares (its header, as Compress writes it); SIZE_MAX when the
// frame is corrupt or does not declare one.
size_t FrameContentSize(const uint8_t* p, size_t n);

}  // namespace teiten::codec
