#include "analysis/sensor_health.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace teiten {

bool IsLossReason(const std::string& reason) {
  return reason == "kernel_dropped" || reason == "spool_full" || reason == "spool_write_failed";
}

Result<std::vector<SensorHealthRow>> SensorHealth(const Store& store) {
  const Manifest& m = store.manifest();
  std::vector<SensorHealthRow> rows;
  std::map<std::string, size_t> at;
  for (const SensorRecord& s : m.sensors) {
    at[s.id] = rows.size();
    SensorHealthRow r;
    r.id = s.id;
    r.name = s.name;
    r.group = s.group;
    r.country = s.country;
    r.mode = s.mode;
    rows.push_back(std::move(r));
  }
  for (const InputRecord& in : m.inputs) {
    auto it = at.find(in.sensor);
    if (it == at.end()) continue;
    SensorHealthRow& r = rows[it->second];
    r.inputs++;
    for (const BatchRange& b : in.batches) r.batches += b.last - b.first + 1;
    r.packets += in.kept;
    r.last_input = std::max(r.last_input, in.ingested_at);
    for (const auto& [reason, n] : in.dropped) {
      if (IsLossReason(reason)) r.lost[reason] += n;
    }
  }
  for (SensorHealthRow& r : rows) {
    std::ifstream f(std::filesystem::path(store.dir()) / "sensors" / (r.id + ".json"));
    if (!f) continue;
    try {
      nlohmann::json j = nlohmann::json::parse(f);
      r.last_contact = j.value("last_contact", int64_t{0});
      const nlohmann::json& rep = j.value("reported", nlohmann::json::object());
      if (rep.contains("spool_batches")) r.backlog_batches = rep.at("spool_batches").get<int64_t>();
      if (rep.contains("spool_bytes")) r.backlog_bytes = rep.at("spool_bytes").get<int64_t>();
    } catch (const std::exception& e) {
      return DataLoss(fmt::format("{}/sensors/{}.json: {}", store.dir(), r.id, e.what()));
    }
  }
  return rows;
}

}  // namespace teiten
