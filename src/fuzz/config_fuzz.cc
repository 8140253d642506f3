// libFuzzer target for the sensor config TOML parser (ParseConfig): any text must give a Config
// or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sensor/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto c = teiten::ParseConfig(text, "/fuzz/teiten.toml");
  if (c.ok()) {
    for (const auto& sensor : c->sensors) {
      if (c->FindSensor(sensor.id) == nullptr) __builtin_trap();  // every sensor findable
    }
  }
  return 0;
}
