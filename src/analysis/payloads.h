// Payloads (SPEC E7): one port's packets grouped by identical payload, with a digest, the
// payload's printable strings, packets and distinct sources — what a SIPVicious sweep, a Mirai
// loader or a worm's exploit looks like at a glance (`teiten payloads --port 5060/udp`).
//
// Identical payloads answer "which exact payload"; tools that write a target, a counter or a
// random tag into each probe (SIPVicious's branch and Call-ID, an HTTP exploit's host) make every
// probe its own group. Grouping by template answers "which family": each token holding a digit —
// a maximal run of ASCII letters and digits with at least one digit — is masked as '#' before
// comparing ("OPTIONS sip:100@10.77.0.5 SIP/2.0" and "…sip:100@10.77.0.9…" are one template,
// "OPTIONS sip:#@#.#.#.# SIP/#.#"); words without digits, punctuation and other bytes stay. A
// payload longer than the prefix kept is compared up to its last complete line (the cut falls
// at a different place in each probe whose earlier fields differ in length).
//
// The store keeps a bounded prefix of each payload (kPayloadPrefix bytes, common/observation.h)
// and its length as sent. Two payloads are "identical" here when their kept prefixes are equal
// byte for byte and their lengths as sent are equal: payloads that differ only beyond the prefix
// share a group. The digest is XXH3-64 of the kept prefix. Packets without payload are counted,
// not grouped.
//
// Everything is read through ScanRows (query.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/period.h"
#include "analysis/query.h"
#include "common/observation.h"
#include "common/status.h"
#include "store/store.h"

namespace teiten {

// Runs of at least `min_len` printable ASCII characters (0x20–0x7e and tab), as strings(1) -n
// finds them; each run is cut at a byte outside that set.
std::vector<std::string> PrintableStrings(std::string_view bytes, size_t min_len = 4);

// `bytes` with each token holding a digit masked as '#' (above).
std::string PayloadTemplate(std::string_view bytes);

enum class PayloadGrouping { kIdentical, kTemplate };

struct PayloadGroup {
  uint64_t digest = 0;    // XXH3-64 of `prefix` (kIdentical) or of `templ` (kTemplate)
  std::string prefix;     // the kept bytes (kTemplate: of the group's first packet read)
  std::string templ;      // PayloadTemplate(prefix)
  uint16_t length = 0;    // the payload's length as sent (kTemplate: the longest)
  uint64_t variants = 1;  // distinct identical payloads inside (kTemplate)
  uint64_t packets = 0;
  uint64_t sources = 0;       // distinct
  uint64_t destinations = 0;  // distinct monitored addresses reached
  int64_t first_us = 0, last_us = 0;
  std::vector<std::string> strings;  // PrintableStrings of prefix (kTemplate: of templ)
};

struct PayloadResult {
  uint64_t packets = 0;              // on the port
  uint64_t with_payload = 0;         // of them, carrying a payload
  uint64_t truncated = 0;            // of those, longer than the prefix kept (grouped by prefix)
  std::vector<PayloadGroup> groups;  // by packets, most first (then sources, digest)
};

Result<PayloadResult> GroupPayloads(const Store& store, const Period& period,
                                    const SensorSelection& filter, PortKey port,
                                    PayloadGrouping grouping = PayloadGrouping::kIdentical);

}  // namespace teiten
