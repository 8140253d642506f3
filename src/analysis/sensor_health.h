// SensorHealth: each sensor as the centre sees it — when it was last heard from, what it has
// delivered, what it says it has waiting, and what it lost (SPEC O7; `teiten sensors`, the
// dashboard's sensor page).
//
// Delivered and lost counts come from the store's input records (every capture ingested and
// every batch committed: exact, and the same after any restart); last contact and the backlog
// come from what the collector last heard (STORE/sensors/<id>.json), absent for a sensor that
// only ever had files ingested.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace teiten {

struct SensorHealthRow {
  std::string id, name, group, country, mode;
  uint64_t inputs = 0;       // captures ingested and batch groups committed
  uint64_t batches = 0;      // batches committed (of those inputs)
  uint64_t packets = 0;      // stored
  int64_t last_input = 0;    // Unix seconds the last input was committed; 0: never
  int64_t last_contact = 0;  // Unix seconds the collector last heard from it; 0: never
  int64_t backlog_batches = -1, backlog_bytes = -1;  // as it last reported; -1: unknown
  std::map<std::string, uint64_t> lost;  // kernel_dropped, spool_full, … (not filter drops)
};

// Reasons counted as losses (the rest of an input's dropped map is what the filter left out).
bool IsLossReason(const std::string& reason);

Result<std::vector<SensorHealthRow>> SensorHealth(const Store& store);

}  // namespace teiten
