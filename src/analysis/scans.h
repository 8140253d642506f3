// Scans (SPEC A9), as Durumeric, Bailey and Halderman define them ("An Internet-Wide View of
// Internet-Wide Scanning", USENIX Security 2014, §3): one source sending probes to at least N
// distinct monitored addresses on one port and protocol, a scan ending when the source falls
// silent on that port for longer than an inactivity timeout (theirs: N = 100 on a /8, 480 s).
//
// Probes are what a scanner sends first: TCP segments with SYN and neither ACK nor RST, UDP
// datagrams, ICMP/ICMPv6 echo requests. Backscatter (SYN-ACK, RST, ICMP replies and errors) is
// never a probe: it is dos.h's.
//
// Everything is read through ScanRows (query.h), so another backend answers the same.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "analysis/period.h"
#include "analysis/query.h"
#include "common/observation.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "store/store.h"

namespace teiten {

inline constexpr int64_t kScanTimeoutS = 480;        // Durumeric et al. 2014
inline constexpr uint64_t kScanAddressesPer8 = 100;  // their N, on 2^24 monitored addresses
inline constexpr uint64_t kScanMinAddresses = 10;    // the floor below which N never scales

// The monitored address count of the selected sensors: the sizes of their configured prefixes
// (a prefix two sensors share counted once; an IPv6 prefix counted as at most 2^32). 0 when no
// selected sensor names a prefix.
uint64_t MonitoredAddresses(const Store& store, const SensorSelection& filter);

// N for a telescope of `monitored` addresses: Durumeric's 100 per /8 scaled linearly —
// ceil(100 · monitored / 2^24) — but never below min(kScanMinAddresses, monitored), nor below 2.
// Linear scaling alone gives N = 1 below a /17, where one stray packet would be a "scan"; the
// floor keeps the paper's intent (many distinct targets, not a retransmission) on small
// telescopes: 10 of a /24's 256 addresses is 3.9 % of its space.
uint64_t ScanThreshold(uint64_t monitored);

// Which scanning tool made a probe, from the header fields the tools fix (their source code):
//   ZMap ≤ 4.0  IPv4 ID 54321 (zmap src/probe_modules/packet.c, make_ip_header)
//   Masscan     IPv4 ID = (dst ^ dport ^ seq) & 0xffff (masscan src/templ-pkt.c, tcp_create_packet)
//   Nmap -sS    TCP window 1024 and only an MSS option (nmap scan_engine_raw.cc probes)
//   Mirai       TCP seq = destination IPv4 (mirai bot/scanner.c)
// One packet matches a 16-bit rule by chance once in 65,536: a scan gets a tool only when more
// than half of its probes agree (see Scan::tool). Not a per-source verdict: that is issue 12's
// tool tags, kept in the store; this guess is per scan, for the scan table.
enum class ProbeTool : uint8_t { kUnknown, kZmap, kMasscan, kNmap, kMirai, kCount };
const char* ProbeToolName(ProbeTool t);  // "zmap", "masscan", "nmap", "mirai", "-"
ProbeTool GuessProbeTool(const Observation& o, std::string_view tcp_options);
// True for what this file counts as a probe (above).
bool IsProbe(const Observation& o);

struct ScanOptions {
  std::optional<PortKey> port;  // only this port; all when empty
  uint64_t min_addresses = 0;   // N; 0: ScanThreshold of the monitored count
  int64_t timeout_s = kScanTimeoutS;
};

struct Scan {
  IpAddr src;
  GeoInfo geo;
  PortKey port = 0;
  int64_t start_us = 0, end_us = 0;  // first and last probe
  uint64_t packets = 0;
  uint64_t addresses = 0;  // distinct monitored addresses probed
  double coverage = 0;     // addresses / the monitored count
  double rate_pps = 0;     // packets per second over [start, end] (packets / 1 s when 1 packet-s)
  ProbeTool tool = ProbeTool::kUnknown;  // the tool more than half of its probes match
};

struct PortScans {
  PortKey port = 0;
  uint64_t scans = 0;
  uint64_t scanners = 0;  // distinct sources with a scan
  uint64_t packets = 0;   // probes inside scans
  double mean_coverage = 0;
  double max_coverage = 0;
  std::map<ProbeTool, uint64_t> tools;  // scans by tool
};

struct ScanResult {
  uint64_t monitored = 0;  // the address count N was scaled from (see FindScans)
  uint64_t threshold = 0;  // N
  int64_t timeout_s = 0;
  uint64_t probes = 0;           // probes read (on the port, when one was given)
  std::vector<Scan> scans;       // by coverage, most first (then packets, source, start)
  std::vector<PortScans> ports;  // by scans, most first
};

// The scans of the period. The monitored count is MonitoredAddresses, or — when no sensor names
// a prefix — the distinct destinations seen in the period (said so by `monitored_from_data`).
Result<ScanResult> FindScans(const Store& store, const Period& period,
                             const SensorSelection& filter, const ScanOptions& opts,
                             bool* monitored_from_data = nullptr);

}  // namespace teiten
