// Errors of TOML data files (scenarios, port notes) in one form: "<file>:<line>: key '<key>':
// <what>", so that a mistake is found at its line whatever file it is in.
#pragma once

#include <fmt/format.h>
#include <toml++/toml.h>

#include <set>
#include <string>
#include <string_view>

#include "common/status.h"

namespace teiten {

struct TomlContext {
  const std::string& file;
  Status Err(const toml::node& n, std::string_view key, std::string_view what) const {
    return InvalidArgument(
        fmt::format("{}:{}: key '{}': {}", file, n.source().begin.line, key, what));
  }
  Status Missing(const toml::table& t, std::string_view key) const {
    return InvalidArgument(
        fmt::format("{}:{}: missing key '{}'", file, t.source().begin.line, key));
  }
};

// An error naming the first key of `t` not in `allowed`.
inline Status CheckKeys(const TomlContext& c, const toml::table& t,
                        const std::set<std::string_view>& allowed) {
  for (const auto& [k, v] : t) {
    if (!allowed.count(k.str())) return c.Err(v, k.str(), "unknown key");
  }
  return OkStatus();
}

}  // namespace teiten
