// Robust statistics shared by the detectors (findings, outages): the median and the median
// absolute deviation of a series.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace teiten::stats {

// The median (the mean of the two middle values for an even count); 0 for no values.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t h = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(h), v.end());
  const double hi = v[h];
  if (v.size() % 2) return hi;
  return (*std::max_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(h)) + hi) / 2;
}

// The median absolute deviation (unscaled: × 1.4826 estimates σ for normal data).
inline double Mad(const std::vector<double>& v) {
  const double m = Median(v);
  std::vector<double> d;
  d.reserve(v.size());
  for (double x : v) d.push_back(std::fabs(x - m));
  return Median(std::move(d));
}

}  // namespace teiten::stats
