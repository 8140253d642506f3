// A generated trace (the simulator's 2018 mix, a spoofed flood of 3 % of the packets) ingested
// at one darknet sensor of 203.0.113.0/24, with the generator's ground truth: for tests that
// check an analysis source by source against what was planted.
#pragma once

#include <memory>
#include <string>

#include "ingest/ingest.h"
#include "simulate/generator.h"
#include "simulate/ground_truth.h"
#include "simulate/source_ranges.h"
#include "store/store.h"
#include "test_support.h"

namespace teiten::testing {

struct GeneratedStore {
  TempDir dir;
  std::unique_ptr<Store> store;
  simulate::GroundTruth truth;
};

// `days` UTC days from `start_unix` (seconds), `packets` from `sources` population sources.
inline Status BuildGeneratedStore(uint64_t seed, int64_t start_unix, int days, uint64_t packets,
                                  uint64_t sources, GeneratedStore* out) {
  simulate::GeneratorSpec spec = simulate::GeneratorSpec::Default2018();
  spec.seed = seed;
  spec.start_us = start_unix * 1000000;
  spec.end_us = spec.start_us + int64_t{days} * 86400 * 1000000;
  spec.packets = packets;
  spec.sources = sources;
  spec.spoofed_flood_share = 0.03;
  spec.monitored = {*Prefix::Parse("203.0.113.0/24")};
  const std::string pcap = out->dir.path() + "/gen.pcap";
  RETURN_IF_ERROR(simulate::WriteTrace(spec, simulate::FallbackSourceRanges(), pcap, &out->truth));
  ASSIGN_OR_RETURN(out->store,
                   Store::Open(out->dir.path() + "/store", {.create = true, .timezone = "UTC"}));
  SensorConfig sensor{"s1", "", "g", "JP", SensorMode::kDarknet, spec.monitored};
  Ingester ing(out->store.get(), nullptr);
  auto r = ing.IngestFile(sensor, pcap);
  return r.ok() ? OkStatus() : r.status();
}

}  // namespace teiten::testing
