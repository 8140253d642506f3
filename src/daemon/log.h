// Structured logs of the daemons: one JSON object per line on standard error, for journald and
// log shippers (SPEC O7).
//
//   LogEvent("info", "batch_committed", {{"sensor", "tyo-1"}, {"rows", 1200}});
//   →
//   {"ts":"2026-12-04T06:10:00.123Z","level":"info","event":"batch_committed","sensor":"tyo-1","rows":1200}
//
// Strings that came from the network (a certificate subject, a decode error) are escaped by the
// JSON writer, so a hostile value cannot forge a log line. Thread-safe: a line is written whole.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace teiten {

void LogEvent(const std::string& level, const std::string& event, nlohmann::json fields = {});

}  // namespace teiten
