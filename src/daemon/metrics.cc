#include "daemon/metrics.h"

#include <fmt/format.h>

namespace teiten {
namespace {

std::string Render(const Metrics::Labels& labels) {
  if (labels.empty()) return "";
  std::string s = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) s += ",";
    s += labels[i].first + "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') {
        s += '\\';
        s += c;
      } else if (c == '\n') {
        s += "\\n";
      } else {
        s += c;
      }
    }
    s += "\"";
  }
  return s + "}";
}

}  // namespace

void Metrics::Add(const std::string& name, const Labels& labels, double v) {
  std::lock_guard<std::mutex> l(mu_);
  values_[name][Render(labels)] += v;
}

void Metrics::Set(const std::string& name, const Labels& labels, double v) {
  std::lock_guard<std::mutex> l(mu_);
  values_[name][Render(labels)] = v;
}

std::string Metrics::Text() const {
  std::lock_guard<std::mutex> l(mu_);
  std::string out;
  for (const auto& [name, series] : values_) {
    out += fmt::format("# TYPE {} {}\n", name, name.ends_with("_total") ? "counter" : "gauge");
    for (const auto& [labels, v] : series) out += fmt::format("{}{} {}\n", name, labels, v);
  }
  return out;
}

}  // namespace teiten
