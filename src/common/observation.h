// Observation: one packet a sensor saw, as teiten keeps it.
//
// This is the unit every part of teiten shares: the decoder fills it, the sensor filter keeps or
// drops it, enrichment looks up its source, the store writes it column by column, and the
// fingerprinting code (tool tags, OS guesses, payload grouping) reads the header fields it keeps.
// Variable-length bytes (TCP options, a bounded prefix of the payload) live in the batch's blob
// arena, addressed by `blob`; an Observation is plain data and cheap to sort.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip.h"

namespace teiten {

// Payload bytes kept per packet. Enough for a SIP request line and User-Agent, an HTTP request
// line, a DNS question or a tool banner; bounded so that a flood cannot grow the store unboundedly.
inline constexpr int kPayloadPrefix = 96;
inline constexpr int kMaxTcpOptions = 40;

// Bits of Observation::flags.
namespace obs_flag {
inline constexpr uint8_t kFragment = 1;       // a non-first IP fragment: no transport header
inline constexpr uint8_t kFirstFragment = 2;  // more fragments follow (IPv4 MF or IPv6 M)
inline constexpr uint8_t kNoTransport = 4;    // transport header absent or cut short: ports unknown
inline constexpr uint8_t kSnapTruncated = 8;  // the capture kept fewer bytes than were sent
}  // namespace obs_flag

struct Observation {
  int64_t ts_us = 0;  // microseconds since the Unix epoch, UTC
  IpAddr src;
  IpAddr dst;
  uint32_t seq = 0;     // TCP sequence number
  uint32_t ack = 0;     // TCP acknowledgement number
  uint32_t blob = 0;    // offset in the batch's blob arena: opt_len option bytes, then payload_cap
  uint16_t sensor = 0;  // index in the store's sensor table
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint16_t ip_len = 0;  // IPv4 total length / IPv6 payload length + 40
  uint16_t ip_id = 0;   // IPv4 identification; IPv6: low 16 bits of a fragment header's id
  uint16_t window = 0;
  uint16_t payload_len = 0;  // transport payload length as sent (not as captured)
  uint8_t proto = 0;         // IP protocol number (after IPv6 extension headers)
  uint8_t ttl = 0;           // TTL or hop limit
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0;  // ICMP and ICMPv6
  uint8_t icmp_code = 0;
  uint8_t opt_len = 0;      // TCP option bytes kept (the whole option area, ≤ 40)
  uint8_t payload_cap = 0;  // payload bytes kept (≤ kPayloadPrefix)
  uint8_t flags = 0;        // obs_flag bits
};

// TCP flag bits as on the wire.
namespace tcp_flag {
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10,
                         kUrg = 0x20, kEce = 0x40, kCwr = 0x80;
}

// A batch of observations with the arena their variable bytes live in.
struct ObservationBatch {
  std::vector<Observation> rows;
  std::vector<uint8_t> blob;

  std::string_view Options(const Observation& o) const {
    return {reinterpret_cast<const char*>(blob.data()) + o.blob, o.opt_len};
  }
  std::string_view Payload(const Observation& o) const {
    return {reinterpret_cast<const char*>(blob.data()) + o.blob + o.opt_len, o.payload_cap};
  }
  void clear() {
    rows.clear();
    blob.clear();
  }
};

// The key that ranks "destination ports": protocol and port in one integer.
// ICMP and ICMPv6 rank as one key each, shown "0/ICMP" as the TSUBAME reports do; packets whose
// transport header is missing (non-first fragments, cut-short headers) rank as "proto/-".
using PortKey = uint32_t;
inline constexpr PortKey kNoPortBit = 1u << 24;
inline PortKey MakePortKey(uint8_t proto, uint16_t port) {
  return (uint32_t{proto} << 16) | port;
}
PortKey PortKeyOf(const Observation& o);
inline uint8_t PortKeyProto(PortKey k) {
  return static_cast<uint8_t>(k >> 16);
}
inline uint16_t PortKeyPort(PortKey k) {
  return static_cast<uint16_t>(k);
}
inline bool PortKeyHasPort(PortKey k) {
  return (k & kNoPortBit) == 0;
}
// "23/TCP", "0/ICMP", "47/GRE"-style protocol names; "TCP/-" for keys without a port.
std::string PortKeyToString(PortKey k);
// Parses "23/tcp", "53413/UDP", "icmp", "0/ICMP". Returns false on anything else.
bool ParsePortKey(std::string_view text, PortKey* out);
const char* ProtoName(uint8_t proto);  // "TCP", "UDP", "ICMP", "ICMPv6", … or nullptr

}  // namespace teiten
