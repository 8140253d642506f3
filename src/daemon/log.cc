#include "daemon/log.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <mutex>

namespace teiten {

void LogEvent(const std::string& level, const std::string& event, nlohmann::json fields) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  nlohmann::json line = {
      {"ts", fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", tm, ms % 1000)},
      {"level", level},
      {"event", event},
  };
  if (fields.is_object()) line.update(fields);
  // Invalid UTF-8 from the network is replaced, never an exception.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  static std::mutex mu;
  std::lock_guard<std::mutex> l(mu);
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(2, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace teiten
