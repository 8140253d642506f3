// Internal to the generator: writing Ethernet/IPv4/IPv6/TCP/UDP/ICMP headers in place with their
// checksums. Checksums are sums of 16-bit words; the constant parts (TCP options, fixed
// payloads) are summed once when the template is made, so a packet adds only its variable fields.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace teiten::simulate::wire {

// Big-endian stores, one store each: stores per packet are what limits the packet loop, so
// headers are assembled in registers and written in 8-byte words.
inline void Put16(uint8_t* p, uint32_t v) {
  auto be = static_cast<uint16_t>(v);
  if constexpr (std::endian::native == std::endian::little) be = __builtin_bswap16(be);
  std::memcpy(p, &be, 2);
}
inline void Put32(uint8_t* p, uint32_t v) {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
inline void Put64(uint8_t* p, uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}
inline uint64_t Sum32(uint32_t v) {
  return (v >> 16) + (v & 0xffff);
}
// Sum of big-endian 16-bit words; an odd last byte is padded with zero. Adds 32-bit native words
// and swaps the folded result: the one's-complement sum is byte-order independent (RFC 1071).
inline uint64_t SumBytes(const uint8_t* p, size_t n) {
  uint64_t s = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t w;
    std::memcpy(&w, p + i, 4);
    s += w;
  }
  if (i + 2 <= n) {
    uint16_t w;
    std::memcpy(&w, p + i, 2);
    s += w;
    i += 2;
  }
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  if constexpr (std::endian::native == std::endian::little) {
    s = __builtin_bswap16(static_cast<uint16_t>(s));
  }
  if (i < n) s += uint32_t{p[i]} << 8;
  return s;
}
// One's-complement of the folded sum: the value to store in a checksum field.
inline uint16_t Fold(uint64_t s) {
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

inline constexpr size_t kEthLen = 14;
inline constexpr size_t kIp4Len = 20;
inline constexpr size_t kIp6Len = 40;
inline constexpr uint8_t kProtoIcmp = 1, kProtoTcp = 6, kProtoUdp = 17, kProtoIcmp6 = 58;

// Sensor and upstream router MACs from the documentation block 00-00-5E-00-53-00/24 (RFC 7042).
// Writes 16 bytes: the caller's IP header overwrites the last two.
inline void WriteEth(uint8_t* p, bool v6) {
  Put64(p, 0x00005e0053010000ULL);  // dst 00:00:5e:00:53:01, src 00:00 …
  Put64(p + 8, 0x5e0053fe00000000ULL | (v6 ? 0x86dd0000ULL : 0x08000000ULL));  // … 5e:00:53:fe
}

// IPv4 header without options, checksum included.
[[gnu::always_inline]] inline void WriteIp4(uint8_t* ip, uint8_t proto, uint32_t total_len,
                                            uint32_t id, uint32_t ttl, bool df, uint32_t src,
                                            uint32_t dst) {
  const uint32_t frag = df ? 0x4000 : 0;
  const uint32_t ttl_proto = (ttl << 8) | proto;
  const uint64_t s = 0x4500 + total_len + id + frag + ttl_proto + Sum32(src) + Sum32(dst);
  Put64(ip, (uint64_t{0x4500} << 48) | (uint64_t{total_len} << 32) | (id << 16) | frag);
  Put64(ip + 8, (uint64_t{ttl_proto} << 48) | (uint64_t{Fold(s)} << 32) | src);
  Put32(ip + 16, dst);
}
// The IPv4 pseudo-header's sum, less the transport length.
inline uint64_t Pseudo4(uint32_t src, uint32_t dst, uint8_t proto) {
  return Sum32(src) + Sum32(dst) + proto;
}

// IPv6 header; returns the pseudo-header's sum less the transport length.
inline uint64_t WriteIp6(uint8_t* ip, uint8_t next_header, uint32_t payload_len, uint32_t hops,
                         const uint8_t* src, const uint8_t* dst, uint32_t flow) {
  Put32(ip, 0x60000000U | (flow & 0xfffff));
  Put16(ip + 4, payload_len);
  ip[6] = next_header;
  ip[7] = static_cast<uint8_t>(hops);
  std::memcpy(ip + 8, src, 16);
  std::memcpy(ip + 24, dst, 16);
  return SumBytes(ip + 8, 32) + next_header;
}

// TCP option bytes with their precomputed sum. A timestamp option's TSval is patched per packet.
struct TcpOptions {
  uint8_t bytes[24] = {};  // our layouts are ≤ 20 bytes; copied as a fixed 24
  uint8_t len = 0;
  uint8_t tsval_at = 0;  // offset of TSval within the options; 0 = none
  uint64_t sum = 0;
};
template <size_t N>
constexpr TcpOptions MakeOptions(const uint8_t (&b)[N], uint8_t tsval_at = 0) {
  static_assert(N <= 20 && N % 4 == 0);
  TcpOptions o;
  for (size_t i = 0; i < N; ++i) o.bytes[i] = b[i];
  o.len = static_cast<uint8_t>(N);
  o.tsval_at = tsval_at;
  for (size_t i = 0; i + 1 < N; i += 2) o.sum += (uint32_t{b[i]} << 8) | b[i + 1];
  return o;
}
inline const TcpOptions kNoOptions{};

struct TcpFields {
  uint32_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint32_t flags = 0;
  uint32_t window = 0;
};

// TCP header with options (no payload); returns its length. `pseudo` from Pseudo4/WriteIp6.
[[gnu::always_inline]] inline size_t WriteTcp(uint8_t* tcp, const TcpFields& f, const TcpOptions& o,
                                              uint32_t tsval, uint64_t pseudo) {
  const uint32_t len = 20 + o.len;
  const uint32_t off_flags = ((len / 4) << 12) | f.flags;
  uint64_t s =
      pseudo + len + f.sport + f.dport + Sum32(f.seq) + Sum32(f.ack) + off_flags + f.window + o.sum;
  std::memcpy(tcp + 20, o.bytes, sizeof o.bytes);  // fixed size: cheaper than a variable copy
  if (o.tsval_at != 0) {
    Put32(tcp + 20 + o.tsval_at, tsval);
    s += Sum32(tsval);
  }
  Put64(tcp, (uint64_t{f.sport} << 48) | (uint64_t{f.dport} << 32) | f.seq);
  Put64(tcp + 8, (uint64_t{f.ack} << 32) | (off_flags << 16) | f.window);
  Put32(tcp + 16, uint32_t{Fold(s)} << 16);  // checksum, urgent pointer 0
  return len;
}

// UDP header followed by `payload` (already summed into `payload_sum`); returns UDP length.
inline size_t WriteUdp(uint8_t* udp, uint32_t sport, uint32_t dport, const uint8_t* payload,
                       size_t payload_len, uint64_t payload_sum, uint64_t pseudo) {
  const uint32_t len = static_cast<uint32_t>(8 + payload_len);
  Put16(udp, sport);
  Put16(udp + 2, dport);
  Put16(udp + 4, len);
  if (payload != udp + 8) std::memcpy(udp + 8, payload, payload_len);
  uint16_t c = Fold(pseudo + len + sport + dport + len + payload_sum);
  Put16(udp + 6, c == 0 ? 0xffff : c);  // 0 means "no checksum" in UDP
  return len;
}

}  // namespace teiten::simulate::wire
