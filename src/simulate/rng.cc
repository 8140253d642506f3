#include "simulate/rng.h"

#include <cmath>

namespace teiten::simulate {

AliasTable::AliasTable(const std::vector<double>& weights)
    : size_(weights.size()), threshold_(weights.size()), alias_(weights.size()) {
  const size_t n = weights.size();
  double sum = 0;
  for (double w : weights) sum += w;
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * static_cast<double>(n) / sum;
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    uint32_t s = small.back(), l = large.back();
    small.pop_back();
    threshold_[s] = static_cast<uint32_t>(std::min(scaled[s] * 4294967296.0, 4294967295.0));
    alias_[s] = l;
    scaled[l] -= 1.0 - scaled[s];
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // What is left has probability 1 up to rounding: always keep it.
  for (uint32_t i : small) threshold_[i] = 0xffffffffU, alias_[i] = i;
  for (uint32_t i : large) threshold_[i] = 0xffffffffU, alias_[i] = i;
}

}  // namespace teiten::simulate
