// A shipped scenario, simulated and ingested into a store once per build tree, for tests that
// need a realistic quarter (findings, reports, the seeds' order).
//
//   ASSIGN_OR_RETURN(auto s, testing::ScenarioStoreFor("tsubame-2018q3"));
//   auto store = Store::Open(s.store_dir, {});          // read only; never write to it
//   auto cfg = LoadConfig(s.config_path);               // names the store, the geo DBs, the
//   sensors
//
// The store is built under <build>/scenario-cache/<name>-<scale>/ (store/, teiten.toml,
// ground_truth.json, STAMP) with an flock on <name>-<scale>.lock, so that test binaries running
// at once wait for one build and share it. It is rebuilt when the stamp changes: the scenario
// file's bytes, the scale, or the code that writes traces and stores (the simulate, capture,
// enrich, ingest and store libraries of this build). Sources are drawn from the IPv4 ranges of
// the geo databases the store is enriched with, so every source's country is the scenario's.
//
// The store's time zone is UTC (a scenario's days and periods are UTC days). The geo databases
// are the defaults: testing::CountryDb() and <source>/var/geo/asn.mmdb (scripts/setup.sh); without
// the country database the result is kNotFound, which tests turn into a skip.
#pragma once

#include <string>

#include "common/status.h"

namespace teiten::testing {

struct ScenarioStore {
  std::string store_dir;  // a teiten store holding the whole scenario, ingested
  std::string
      config_path;  // a teiten TOML config naming that store and the scenario's sensors/groups
  std::string truth_path;  // the scenario's ground_truth.json
};

// Simulates `scenario` (a shipped name, or a path to a .toml) at `scale` (0 = the scenario's own)
// and ingests every trace into a store, once per build tree (see above).
Result<ScenarioStore> ScenarioStoreFor(const std::string& scenario, double scale = 0);

}  // namespace teiten::testing
