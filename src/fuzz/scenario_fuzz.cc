// libFuzzer target for the simulation scenario TOML parser (ParseScenario): any text must give a
// Scenario or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "simulate/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto s = teiten::simulate::ParseScenario(text, "/fuzz/scenario.toml");
  // A parsed scenario's span is what the generator sizes its work by: it must be ordered.
  if (s.ok() && s->EndUs() < s->FirstUs()) __builtin_trap();
  return 0;
}
