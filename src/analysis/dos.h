// DoS attacks inferred from backscatter (SPEC A10), after Moore, Shannon, Brown, Voelker and
// Savage, "Inferring Internet Denial-of-Service Activity" (ACM TOCS 2006) and CAIDA's RSDoS
// feed: a victim flooded with packets whose source addresses are spoofed at random answers some
// of them into the telescope. Its answers are backscatter:
//   TCP SYN-ACK or RST                   — the victim is the packet's source;
//   ICMP echo/timestamp/info/mask reply (0, 14, 16, 18), ICMPv6 echo reply (129)
//                                        — the victim is the packet's source;
//   ICMP errors (3, 4, 5, 11, 12), ICMPv6 errors (1–4)
//                                        — sent by the victim or a router before it: the victim
//                                          is the destination inside the quoted header.
// An attack is one victim's backscatter with no gap longer than the flow timeout (Moore et al.:
// 5 minutes) that has at least 25 packets, lasts at least 60 s and holds at least 30 packets in
// some 60 s window.
//
// Everything is read through ScanBackscatterRows (query.h).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "analysis/period.h"
#include "analysis/query.h"
#include "common/backscatter.h"
#include "common/observation.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "store/store.h"

namespace teiten {

const char* BackscatterKindName(BackscatterKind k);  // "syn-ack", "rst", "icmp-reply", …

struct Backscatter {
  BackscatterKind kind = BackscatterKind::kNone;
  bool attributed = false;  // false: an ICMP error whose kept payload quotes too little
  IpAddr victim;
  // The victim's port the flood hit, and the spoofed source port the attacker used (for an ICMP
  // error, from the quoted transport header when it is TCP or UDP); has_ports says they are set.
  bool has_ports = false;
  uint16_t attacked_port = 0, attacker_port = 0;
  uint8_t port_proto = 0;  // 6 or 17: the ports' protocol (the quoted one for ICMP errors)
};
// Classifies one observation; `payload` is its kept payload prefix (for ICMP, after the 8-byte
// ICMP header: the quoted IP header first).
Backscatter ClassifyBackscatter(const Observation& o, std::string_view payload);

struct DosOptions {
  int64_t flow_timeout_s = 300;
  uint64_t min_packets = 25;
  int64_t min_duration_s = 60;
  uint64_t min_peak_per_minute = 30;
};

struct DosAttack {
  IpAddr victim;
  GeoInfo geo;  // the victim's, when some of its backscatter came from it (not only ICMP errors)
  int64_t start_us = 0, end_us = 0;
  uint64_t packets = 0;
  uint64_t peak_per_minute = 0;  // most packets in any 60 s window
  uint64_t spoofed = 0;          // distinct monitored addresses answered (spoofed sources)
  uint64_t attacker_ports = 0;   // distinct spoofed source ports
  std::vector<std::pair<PortKey, uint64_t>> attacked_ports;  // victim's ports, most first
  uint64_t by_kind[5] = {};                                  // packets by BackscatterKind
  uint8_t proto = 0;  // the protocol of most of its backscatter (6, 1 or 58)
};

struct DosResult {
  uint64_t backscatter = 0;        // backscatter packets read
  uint64_t unattributed = 0;       // of them, ICMP errors quoting too little to name a victim
  uint64_t victims = 0;            // distinct victims with any backscatter
  uint64_t flows = 0;              // victims' flows (split at the timeout), attacks or not
  std::vector<DosAttack> attacks;  // by packets, most first (then start, victim)
};

Result<DosResult> FindDosAttacks(const Store& store, const Period& period,
                                 const SensorSelection& filter, const DosOptions& opts = {});

}  // namespace teiten
