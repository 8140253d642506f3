// Bit-level codes shared by the store's files: bits written from each byte's lowest, a reader
// that names its file's part in every error, and a Rice code with an escape for rare large
// values. Used where a column is noise that zstd cannot shrink but whose range is known: the
// rollups' small position sets (rollup format 11) and the source index's address gaps and times
// (index format 7). Layouts in docs/STORE_FORMAT.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace teiten::bits {

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>* out) : out_(out) {}
  // The low `n` bits of v (n ≤ 56, v < 2^n).
  void Put(uint64_t v, int n) {
    acc_ |= v << bits_;
    bits_ += n;
    while (bits_ >= 8) {
      out_->push_back(static_cast<uint8_t>(acc_));
      acc_ >>= 8;
      bits_ -= 8;
    }
  }
  // Any width up to 64.
  void PutWide(uint64_t v, int n) {
    if (n <= 32) {
      Put(v, n);
    } else {
      Put(v & 0xffffffffu, 32);
      Put(v >> 32, n - 32);
    }
  }
  // Pads the last byte with zero bits.
  void Flush() {
    if (bits_ > 0) out_->push_back(static_cast<uint8_t>(acc_));
    acc_ = 0;
    bits_ = 0;
  }

 private:
  std::vector<uint8_t>* out_;
  uint64_t acc_ = 0;
  int bits_ = 0;
};

class Reader {
 public:
  // `what` names the bytes in errors ("source set", "source index x.tsix: IPv4 block 3").
  Reader(const uint8_t* p, size_t n, std::string what)
      : p_(p), end_(p + n), what_(std::move(what)) {}
  // Whether the code is over: what is left is padding (fewer than eight bits, all zero).
  Result<bool> AtEnd() {
    Refill();
    if (acc_ != 0) return false;
    if (p_ == end_ && bits_ < 8) return true;
    return Bad("padded with more than a byte");
  }
  // The zero bits before the next one bit, and that one bit consumed.
  Result<int> Unary(int max) {
    Refill();
    if (acc_ == 0) return Bad("cut short");
    const int z = __builtin_ctzll(acc_);
    if (z > max) return Bad("out of range");
    Consume(z + 1);
    return z;
  }
  Result<uint64_t> Bits(int n) {
    if (n == 0) return uint64_t{0};
    Refill();
    if (bits_ < n) return Bad("cut short");
    const uint64_t v = acc_ & ((uint64_t{1} << n) - 1);
    Consume(n);
    return v;
  }
  Result<uint64_t> Wide(int n) {
    if (n <= 32) return Bits(n);
    ASSIGN_OR_RETURN(uint64_t lo, Bits(32));
    ASSIGN_OR_RETURN(uint64_t hi, Bits(n - 32));
    return lo | hi << 32;
  }
  // DataLoss naming the bytes: "<what>: a bit code <how>".
  Status Bad(const char* how) const { return DataLoss(what_ + ": a bit code " + how); }

 private:
  void Refill() {
    while (bits_ <= 56 && p_ < end_) {
      acc_ |= uint64_t{*p_++} << bits_;
      bits_ += 8;
    }
  }
  void Consume(int n) {
    acc_ = n >= 64 ? 0 : acc_ >> n;
    bits_ -= n;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  std::string what_;
  uint64_t acc_ = 0;
  int bits_ = 0;
};

// A Rice code with parameter k (k ≤ 31): q = v >> k in unary — q zero bits, then a one — and v's k
// low bits; a q of 15 or more as 15 zero bits and a one, then q − 14 in Elias gamma (L zero bits, a
// one, the L bits below its top one), then the k low bits.
namespace rice {

constexpr int kMaxK = 31;
constexpr uint64_t kEscape = 15;

// Bits of value v's code with parameter k.
inline uint64_t CodeBits(uint64_t v, int k) {
  const uint64_t q = v >> k;
  if (q < kEscape) return q + 1 + static_cast<uint64_t>(k);
  const uint64_t x = q - (kEscape - 1);
  const int l = 63 - __builtin_clzll(x);
  return kEscape + 1 + 2 * static_cast<uint64_t>(l) + 1 + static_cast<uint64_t>(k);
}

inline void Put(Writer* w, uint64_t v, int k) {
  const uint64_t q = v >> k;
  if (q < kEscape) {
    w->Put(uint64_t{1} << q, static_cast<int>(q) + 1);
  } else {
    w->Put(uint64_t{1} << kEscape, kEscape + 1);
    const uint64_t x = q - (kEscape - 1);
    const int l = 63 - __builtin_clzll(x);
    w->Put(uint64_t{1} << l, l + 1);
    w->Put(x & ((uint64_t{1} << l) - 1), l);
  }
  w->Put(v & ((uint64_t{1} << k) - 1), k);
}

// A value of at most `max`; an error past it.
inline Result<uint64_t> Get(Reader* r, int k, uint64_t max) {
  ASSIGN_OR_RETURN(int q0, r->Unary(static_cast<int>(kEscape)));
  uint64_t q = static_cast<uint64_t>(q0);
  if (q == kEscape) {
    ASSIGN_OR_RETURN(int l, r->Unary(32));
    ASSIGN_OR_RETURN(uint64_t low, r->Bits(l));
    q = ((uint64_t{1} << l) | low) + (kEscape - 1);
  }
  if (q > (max >> k)) return r->Bad("out of range");
  ASSIGN_OR_RETURN(uint64_t low, r->Bits(k));
  const uint64_t v = (q << k) | low;
  if (v > max) return r->Bad("out of range");
  return v;
}

}  // namespace rice

}  // namespace teiten::bits
