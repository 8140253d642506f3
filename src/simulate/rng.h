// Deterministic randomness for the trace generator: a fast PRNG, stateless hashes, a bijective
// 32-bit permutation and Walker's alias table. Nothing here uses <random>'s distributions, whose
// output differs between standard libraries; the same seed gives the same numbers everywhere.
#pragma once

#include <cstdint>
#include <vector>

namespace teiten::simulate {

// wyrand: one 64-bit word of state, passes BigCrush, a multiply and a few adds per number.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    state_ += 0xa0761d6478bd642fULL;
    __uint128_t t = static_cast<__uint128_t>(state_) * (state_ ^ 0xe7037ed1a0b428dbULL);
    return static_cast<uint64_t>(t >> 64) ^ static_cast<uint64_t>(t);
  }
  uint32_t Next32() { return static_cast<uint32_t>(Next() >> 32); }
  // Uniform in [0, n); n ≥ 1. Lemire's multiply-shift (bias ≤ n / 2^32, irrelevant here).
  uint32_t Below(uint32_t n) {
    return static_cast<uint32_t>((static_cast<uint64_t>(Next32()) * n) >> 32);
  }
  uint64_t Below64(uint64_t n) {
    return static_cast<uint64_t>((static_cast<__uint128_t>(Next()) * n) >> 64);
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// splitmix64 finaliser: a stateless hash for per-source and per-target derived values.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A keyed bijection on 32-bit integers: distinct inputs give distinct outputs, so a counter run
// through it gives never-repeating "random" addresses without remembering any of them.
inline uint32_t Permute32(uint32_t x, uint32_t key) {
  x ^= key;
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  x += key * 0x9e3779b9U;
  x ^= x >> 13;
  x *= 0xc2b2ae35U;
  x ^= x >> 16;
  return x;
}

// Walker/Vose alias table: draws index i with probability weight[i] / Σ weights in O(1) from one
// 64-bit random number.
class AliasTable {
 public:
  AliasTable() = default;
  // Weights ≥ 0 with a positive sum.
  explicit AliasTable(const std::vector<double>& weights);
  uint32_t Sample(uint64_t r) const {
    uint32_t i = static_cast<uint32_t>(((r >> 32) * size_) >> 32);
    return static_cast<uint32_t>(r) < threshold_[i] ? i : alias_[i];
  }
  uint32_t size() const { return static_cast<uint32_t>(size_); }

 private:
  uint64_t size_ = 0;
  std::vector<uint32_t> threshold_;  // keep i when the low 32 bits are below this
  std::vector<uint32_t> alias_;
};

}  // namespace teiten::simulate
