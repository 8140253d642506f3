#include "simulate/ground_truth.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

namespace teiten::simulate {

namespace {
constexpr std::array<std::string_view, kToolCount> kToolNames = {
    "mirai",      "zmap",  "masscan", "nmap",        "windows",       "linux",
    "sipvicious", "netis", "ping",    "backscatter", "spoofed-flood", "messenger"};

std::string Cc(const std::array<char, 2>& c) {
  return std::string(c.data(), 2);
}
}  // namespace

std::string_view ToolName(Tool tool) {
  return kToolNames[static_cast<int>(tool)];
}

bool ParseTool(std::string_view name, Tool* out) {
  for (int i = 0; i < kToolCount; ++i) {
    if (kToolNames[i] == name) {
      *out = static_cast<Tool>(i);
      return true;
    }
  }
  return false;
}

uint64_t GroundTruth::distinct_sources() const {
  uint64_t n = 0;
  for (const ToolTruth& t : tools) n += t.sources_seen;
  return n;
}

Status WriteGroundTruthJson(const GroundTruth& truth, const std::string& path, bool with_sources) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["seed"] = truth.seed;
  j["start_us"] = truth.start_us;
  j["end_us"] = truth.end_us;
  j["monitored"] = truth.monitored;
  j["packets"] = truth.packets;
  j["packets_ipv6"] = truth.packets_ipv6;
  j["distinct_sources"] = truth.distinct_sources();
  j["retransmissions"] = truth.retransmissions;
  j["retransmissions_dropped"] = truth.retransmissions_dropped;
  ordered_json tools = ordered_json::object();
  for (int i = 0; i < kToolCount; ++i) {
    const ToolTruth& t = truth.tools[i];
    tools[std::string(kToolNames[i])] = {{"packets", t.packets},
                                         {"sources_seen", t.sources_seen},
                                         {"sources_population", t.sources_population}};
  }
  j["tools"] = tools;
  // A plain (std::map-backed) object: ordered_json inserts in linear time, and backscatter and
  // broad scans reach tens of thousands of ports.
  nlohmann::json ports = nlohmann::json::object();
  for (const auto& [key, n] : truth.packets_by_port) ports[PortKeyToString(key)] = n;
  j["packets_by_port"] = std::move(ports);
  j["packets_by_country"] = truth.packets_by_country;
  j["packets_by_profile"] = truth.packets_by_profile;
  ordered_json episodes = ordered_json::array();
  for (const EpisodeTruth& e : truth.episodes) {
    episodes.push_back({{"tool", ToolName(e.tool)},
                        {"addr", e.addr.ToString()},
                        {"port", e.port},
                        {"start_us", e.start_us},
                        {"end_us", e.end_us},
                        {"packets", e.packets}});
  }
  j["episodes"] = episodes;
  ordered_json planted = ordered_json::array();
  for (const PlantedTruth& e : truth.planted) {
    planted.push_back({{"name", e.name}, {"packets", e.packets}, {"sources_seen", e.sources_seen}});
  }
  j["planted"] = planted;
  if (with_sources) j["sources_columns"] = {"addr", "tool", "profile", "country", "asn", "packets"};
  std::string tmp = path + ".partial";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return IoError("cannot create " + tmp);
    std::string head = j.dump(1);
    if (!with_sources) {
      out << head << '\n';
    } else {
      // The source rows are streamed, one compact array per line: a DOM of a million rows would
      // take hundreds of MB.
      head.pop_back();  // the closing brace
      while (!head.empty() && head.back() == '\n') head.pop_back();
      out << head << ",\n \"sources\": [";
      std::vector<std::string> profile_json;
      for (const std::string& name : truth.profiles)
        profile_json.push_back(nlohmann::json(name).dump());
      for (size_t i = 0; i < truth.sources.size(); ++i) {
        const SourceTruth& src = truth.sources[i];
        out << (i ? ",\n  [\"" : "\n  [\"") << src.addr.ToString() << "\",\"" << ToolName(src.tool)
            << "\"," << profile_json.at(src.profile) << ','
            << nlohmann::json(Cc(src.country)).dump() << ',' << src.asn << ',' << src.packets
            << ']';
      }
      out << "\n ]\n}\n";
    }
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return IoError("cannot write " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return IoError("cannot rename " + tmp + " to " + path);
  }
  return OkStatus();
}

}  // namespace teiten::simulate
