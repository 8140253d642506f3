// Config: the one TOML file that names teiten's sensors, its store and its geo databases.
//
//   [store]
//   path = "var/store"          # relative paths are relative to the config file
//   timezone = "Asia/Tokyo"     # period boundaries (days, months, quarters) are in this zone
//
//   [geo]
//   country_db = "…/geo-whois-asn-country.mmdb"   # or a GeoLite2-Country / GeoIP2 file
//   asn_db = "…/asn.mmdb"                         # or a GeoLite2-ASN file
//
//   [[sensor]]
//   id = "jp-tyo-1"            # [a-z0-9._-], unique
//   name = "Tokyo 1"
//   group = "domestic"         # e.g. domestic, a partner CSIRT
//   country = "JP"
//   mode = "darknet"           # darknet: every packet to `prefixes`; host: unsolicited inbound
//   only prefixes = ["203.0.113.0/24", "2001:db8:1::/48"]
//
// Errors name the file, the line and the key.
#pragma once

#include <string>
#include <vector>

#include "common/ip.h"
#include "common/status.h"

namespace teiten {

enum class SensorMode { kDarknet, kHost };

struct SensorConfig {
  std::string id;
  std::string name;
  std::string group;
  std::string country;  // ISO 3166 alpha-2, upper case
  SensorMode mode = SensorMode::kDarknet;
  std::vector<Prefix> prefixes;
};

struct Config {
  std::string path;  // where it was read from ("" for built-in defaults)
  std::string store_path;
  std::string timezone = "Asia/Tokyo";
  std::string country_db;
  std::string asn_db;
  std::vector<SensorConfig> sensors;

  const SensorConfig* FindSensor(const std::string& id) const;
};

Result<Config> LoadConfig(const std::string& path);
Result<Config> ParseConfig(const std::string& text, const std::string& path_for_errors);

}  // namespace teiten
