// Metrics: counters and gauges exposed in the Prometheus text format (SPEC O7).
//
//   m.Add("teiten_sensor_captured_total", {}, 1);
//   m.Set("teiten_sensor_spool_bytes", {}, bytes);
//   m.Text()  →  "# TYPE teiten_sensor_captured_total counter\nteiten_sensor_captured_total 1\n…"
//
// A name ending in _total is a counter, anything else a gauge. Label values are escaped as the
// format requires (a sensor id or loss reason cannot break a line). Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace teiten {

class Metrics {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  void Add(const std::string& name, const Labels& labels, double v);
  void Set(const std::string& name, const Labels& labels, double v);
  std::string Text() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, double>> values_;  // name → rendered labels → value
};

}  // namespace teiten
