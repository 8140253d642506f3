// Config: the one TOML file that names teiten's sensors, its store and its geo databases.
//
//   [store]
//   path = "var/store"          # relative paths are relative to the config file
//   timezone = "Asia/Tokyo"     # period boundaries (days, months, quarters) are in this zone
//   merge_cold_after = 600      # seconds after its last commit a key is merged whole
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
//   [collect]                  # `teiten collect`, the centre (docs/DEPLOY.md)
//   listen = "0.0.0.0:8443"    # TLS 1.3; every sensor presents a client certificate
//   cert = "pki/collector.crt"  key = "pki/collector.key"  ca = "pki/ca.crt"  crl = "pki/ca.crl"
//   metrics = "127.0.0.1:9811" # Prometheus /metrics, plain HTTP ("" for none)
//
//   [daemon]                   # `teiten sensor`, at a sensor: its file has one [[sensor]]
//   interface = "eth1"         # live capture, and/or:
//   watch_dir = "/var/spool/pcap"   netfilter_log = "/var/log/kern.log"
//   spool = "/var/spool/teiten"     collector = "https://centre.example:8443"
//   cert = …  key = …  ca = …       user = "teiten"     metrics = "127.0.0.1:9810"
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

// `teiten collect`: where it listens, its certificate, and what it takes from each sensor.
struct CollectConfig {
  std::string listen = "0.0.0.0:8443";
  std::string cert, key, ca, crl;  // PEM files; crl optional
  std::string metrics = "127.0.0.1:9811";
  uint64_t max_batch_bytes = uint64_t{64} << 20;  // one request body
  double requests_per_second = 20;                // per sensor, sustained
  double burst = 200;                             // per sensor, requests
  double commit_wait_seconds = 30;                // a sender waits this long for its commit
};

// `teiten sensor`: what it captures, where it spools, where it sends.
struct DaemonConfig {
  std::string sensor;  // the [[sensor]] this host is; "" when the file has exactly one
  std::string interface;
  uint64_t capture_buffer_bytes = uint64_t{64} << 20;  // kernel ring for bursts
  int snaplen = 256;  // headers, options and the payload prefix teiten keeps
  std::string watch_dir;
  std::string netfilter_log;
  std::string spool;
  uint64_t spool_budget_bytes = uint64_t{1} << 30;
  std::string collector;  // https://host:port
  std::string cert, key, ca;
  double batch_seconds = 10;
  uint64_t batch_rows = 65536;
  std::string raw_dir;  // C6: raw capture kept here when set
  uint64_t raw_file_bytes = uint64_t{64} << 20, raw_total_bytes = uint64_t{1} << 30;
  double raw_max_age_days = 7;
  std::string user;  // drop to this user after opening the capture
  std::string metrics = "127.0.0.1:9810";
};

struct Config {
  std::string path;  // where it was read from ("" for built-in defaults)
  std::string store_path;
  std::string timezone = "Asia/Tokyo";
  // A rollup key none of whose parts was written for this many seconds is "cold": merges merge
  // it whole (MergeOptions::cold_after_s), and `teiten ingest`'s background merger comes back
  // for the keys its commits left hot once they are.
  int64_t merge_cold_after = 600;
  std::string country_db;
  std::string asn_db;
  std::string geo_where;  // "file:line" of the [geo] table, for errors about its databases
  std::vector<SensorConfig> sensors;
  bool has_collect = false, has_daemon = false;
  CollectConfig collect;
  DaemonConfig daemon;

  const SensorConfig* FindSensor(const std::string& id) const;
};

Result<Config> LoadConfig(const std::string& path);
Result<Config> ParseConfig(const std::string& text, const std::string& path_for_errors);

}  // namespace teiten
