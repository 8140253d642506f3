// OS guesses for the sources of TCP SYNs (SPEC E6): each SYN matched against p0f's signatures
// (enrich/p0f.h), each source's guess the label most of its SYNs matched, and the shares of
// sources and packets per guess — for one port or for every port.
//
// A source whose SYNs match nothing is "unknown"; a tool's signature (p0f's "!" class, e.g.
// Nmap's SYN scan) is a guess like any other, marked `application`. Packets whose fingerprint
// cannot be read (options or header not kept whole) are counted, not guessed.
//
// Everything is read through ScanRows (query.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "analysis/period.h"
#include "analysis/query.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "enrich/p0f.h"
#include "store/store.h"

namespace teiten {

struct SourceOs {
  IpAddr src;
  GeoInfo geo;
  std::string os;            // P0fLabel::Display(), or "unknown"
  bool application = false;  // a tool's signature, not an operating system's
  bool fuzzy = false;        // the majority's match was fuzzy
  int distance = 0;          // hops, from the majority's match
  uint64_t syns = 0;         // SYNs with a readable fingerprint
  uint64_t agreeing = 0;     // of them, matching `os`
};

struct OsShare {
  std::string os;
  bool application = false;
  uint64_t sources = 0, packets = 0;
  double source_share = 0, packet_share = 0;  // of the sources and SYNs guessed
};

// One port's sources by their guess: each source counted once per port it sent SYNs to, with its
// own (whole-period) guess; packets are its SYNs to that port.
struct PortOs {
  PortKey port = 0;
  uint64_t sources = 0, packets = 0;
  std::vector<OsShare> shares;  // by sources, most first (then packets, name)
};

struct OsResult {
  uint64_t syns = 0;              // SYNs read (on the port, when one was given)
  uint64_t unreadable = 0;        // of them, without a readable fingerprint
  std::vector<SourceOs> sources;  // by SYNs, most first (then address)
  std::vector<OsShare> shares;    // by sources, most first (then packets, name)
  std::vector<PortOs> ports;      // by sources, most first (then packets, port)
};

Result<OsResult> GuessOs(const Store& store, const Period& period, const SensorSelection& filter,
                         const P0fDatabase& db, std::optional<PortKey> port);

}  // namespace teiten
