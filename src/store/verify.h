// Verifying a whole store (`teiten verify`, SPEC S4 and §5).
//
// Checks everything a query or an ingest could read: the manifest (its checksum, every file it
// names present), every segment (every block, every stream of every column decoded and its
// checksum checked, rows as the manifest says), every rollup part and source index (whole-file
// checksums and structure, every part decoded), files no manifest names (a warning: a writer
// that died, or files a reader's snapshot still holds), and the rollups against the segments
// they were made from: each sensor's day (packets and distinct sources in total and by port,
// country and ASN), each pooled day, month and quarter and each sensor's month and quarter
// (packets and distinct sources in total, packets by port). A fault names the file and what is
// wrong; `teiten rebuild` makes the rollups and indexes again from the segments.
//
//   ASSIGN_OR_RETURN(VerifyReport r, VerifyStore("var/store"));
//   for (const auto& f : r.faults) std::cerr << f << "\n";
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace teiten {

struct VerifyReport {
  std::vector<std::string> faults;    // "file: what is wrong"
  std::vector<std::string> warnings;  // orphans
  uint64_t segments = 0, blocks = 0, rows = 0, rollup_files = 0, index_files = 0, days = 0;
  bool ok() const { return faults.empty(); }
};

// Verifies the store at `dir`. An error only when the store cannot be opened at all (no store
// there); every fault found in it is in the report.
Result<VerifyReport> VerifyStore(const std::string& dir);

}  // namespace teiten
