// Packet decoder: link layer → IPv4/IPv6 → TCP/UDP/ICMP/ICMPv6 into an Observation.
//
// Every byte it reads comes from the network and is treated as hostile: lengths are checked
// against what was captured before anything is read, and malformed packets become a counted
// `Anomaly`, never an exception or a crash (the fuzz target in src/fuzz drives this).
//
//   Decoder d;
//   Observation o;
//   if (d.Decode(DLT_EN10MB, ts_us, data, caplen, wirelen, &o, &batch.blob))
//   batch.rows.push_back(o); d.stats().Count(Anomaly::kNotIp);
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/observation.h"

namespace teiten {

// Why a packet was not decoded whole. Packets with kFragment or kTruncatedTransport are still
// kept (source, destination and protocol are known); the others are dropped and counted.
enum class Anomaly : uint8_t {
  kNone,
  kUnsupportedLinkType,
  kTruncatedLinkHeader,
  kNotIp,  // ARP, LLDP, … : not darknet traffic teiten counts
  kTruncatedIpHeader,
  kBadIpVersion,
  kBadIpHeaderLength,   // IPv4 IHL < 5 or beyond the packet
  kBadIpTotalLength,    // IPv4 total length below the header length
  kDatagramCutShort,    // the frame ends before the IP datagram does (kept, what arrived)
  kBadIpv6ExtHeader,    // an extension header chain that is cut short or too long
  kFragment,            // an IP fragment (kept; non-first fragments have no ports)
  kTruncatedTransport,  // transport header cut short (kept without ports)
  kBadTcpDataOffset,    // TCP data offset < 5 or beyond the segment (kept without ports)
  kIpTotalLengthZero,   // IPv4 total length 0, as captures taken before TCP segmentation
                        // offload show it: the frame's length is used (kept, as tshark does)
  kCount,
};

const char* AnomalyName(Anomaly a);  // "truncated_ip_header", … (stable, used in summaries)
// True for anomalies the decoder notes on a packet it still keeps (a fragment, a transport header
// cut short, …); false for those that make it drop the packet.
bool AnomalyKeepsPacket(Anomaly a);

struct DecodeStats {
  std::array<uint64_t, static_cast<size_t>(Anomaly::kCount)> by_reason{};
  void Count(Anomaly a) { ++by_reason[static_cast<size_t>(a)]; }
  uint64_t Get(Anomaly a) const { return by_reason[static_cast<size_t>(a)]; }
  void Add(const DecodeStats& o) {
    for (size_t i = 0; i < by_reason.size(); ++i) by_reason[i] += o.by_reason[i];
  }
};

class Decoder {
 public:
  // Decodes one captured frame of link type `dlt` (a pcap DLT_ value). Returns true when `out`
  // holds an observation to keep; false when the packet was dropped. Anomalies are counted in
  // stats() either way. Option and payload bytes are appended to `blob`; on false nothing is.
  bool Decode(int dlt, int64_t ts_us, const uint8_t* data, uint32_t caplen, uint32_t wirelen,
              Observation* out, std::vector<uint8_t>* blob);

  // True if this decoder understands frames of link type `dlt`.
  static bool SupportsLinkType(int dlt);

  const DecodeStats& stats() const { return stats_; }
  DecodeStats& stats() { return stats_; }

 private:
  bool DecodeIp(const uint8_t* p, uint32_t cap, uint32_t wire, Observation* o,
                std::vector<uint8_t>* blob);
  bool DecodeIpv4(const uint8_t* p, uint32_t cap, uint32_t wire, Observation* o,
                  std::vector<uint8_t>* blob);
  bool DecodeIpv6(const uint8_t* p, uint32_t cap, uint32_t wire, Observation* o,
                  std::vector<uint8_t>* blob);
  void DecodeTransport(const uint8_t* p, uint32_t cap, uint32_t len, Observation* o,
                       std::vector<uint8_t>* blob);

  DecodeStats stats_;
};

}  // namespace teiten
