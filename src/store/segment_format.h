// The segment file's layout shared by its writer (segment_writer.cc) and its reader
// (segment.cc): the magic, the block's streams and how each is packed, the per-row predictor
// modes, a row's kind, and small helpers. docs/STORE_FORMAT.md, "Segments", describes the format.
// Internal to the store: include it only from those two files.
#pragma once

#include <xxhash.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/ip.h"

namespace teiten::segment_format {

constexpr char kMagic[8] = {'T', 'S', 'E', 'G', 'M', 'N', 'T', '2'};

// A block is a fixed list of streams, each compressed on its own, so that a reader decodes only
// what the columns it asks for need. Every stream belongs to one column; the row classes are
// shared by destination, ports, header and payload.
enum StreamId : uint32_t {
  kRuns,
  kSrc4Head,
  kSrc4Tail,
  kSrc6,
  kGeo,
  kTsStart,
  kTsHead,
  kTsTail,
  kSensor,
  kKinds,
  kClassDict,
  kClass,
  kDstNets,
  kDstNet,
  kDstHost,
  kDst6,
  kSport,
  kSportDelta,
  kDportIndex,
  kDportValues,
  kTtl,
  kIpId,
  kIpIdDelta,
  kIpIdDelta16,
  kSeq,
  kAck,
  kWindowIndex,
  kWindowValues,
  kOptDict,
  kTsvalHead,
  kTsvalTail,
  kTsvalRaw,
  kTsecr,
  kPayRef,
  kPayload,
  kStreamCount
};

// How a stream is compressed. Most streams are skewed symbols (one per row or run) that gain
// nothing from zstd's slower match search, so they get its fastest level. Noise (tails of split
// integers, random sequence numbers, hosts) is stored as it is unless a sample shows it skewed.
// The class stream and the dictionaries, where long matches pay, get the caller's level.
enum class Packing : uint8_t { kFast, kNoise, kLevel };
constexpr int kFastLevel = 1;

struct StreamDesc {
  const char* column;  // named in errors, as the reader's columns are
  const char* name;
  Packing packing;
};
constexpr StreamDesc kStreams[kStreamCount] = {
    {"sources", "runs", Packing::kFast},
    {"sources", "ipv4 head", Packing::kFast},
    {"sources", "ipv4 tail", Packing::kNoise},
    {"sources", "ipv6", Packing::kLevel},
    {"sources", "geo", Packing::kFast},
    {"time", "run start", Packing::kFast},
    {"time", "delta head", Packing::kFast},
    {"time", "delta tail", Packing::kNoise},
    {"sensor", "sensor", Packing::kFast},
    {"classes", "kinds", Packing::kLevel},
    {"classes", "class dictionary", Packing::kLevel},
    {"classes", "class", Packing::kLevel},
    {"destination", "networks", Packing::kLevel},
    {"destination", "network", Packing::kFast},
    {"destination", "host", Packing::kNoise},
    {"destination", "ipv6", Packing::kLevel},
    {"ports", "sport", Packing::kNoise},
    {"ports", "sport delta", Packing::kFast},
    {"ports", "dport index", Packing::kFast},
    {"ports", "dport values", Packing::kNoise},
    {"header", "ttl", Packing::kFast},
    {"header", "ip_id", Packing::kNoise},
    {"header", "ip_id delta", Packing::kFast},
    {"header", "ip_id delta16", Packing::kFast},
    {"header", "seq", Packing::kNoise},
    {"header", "ack", Packing::kNoise},
    {"header", "window index", Packing::kFast},
    {"header", "window values", Packing::kNoise},
    {"payload", "option templates", Packing::kLevel},
    {"payload", "tsval head", Packing::kFast},
    {"payload", "tsval tail", Packing::kNoise},
    {"payload", "tsval", Packing::kNoise},
    {"payload", "tsecr", Packing::kNoise},
    {"payload", "payload ref", Packing::kFast},
    {"payload", "payload", Packing::kFast},
};

// Whether a sample of the bytes looks like noise: order-0 entropy above 7.2 bits per byte.
inline bool LooksLikeNoise(const uint8_t* p, size_t n) {
  constexpr size_t kSample = 4096;
  size_t step = n > kSample ? n / kSample : 1, m = 0;
  uint32_t count[256] = {};
  for (size_t i = 0; i < n; i += step, ++m) ++count[p[i]];
  double bits = 0;
  for (uint32_t c : count) {
    if (c) bits -= c * std::log2(static_cast<double>(c) / static_cast<double>(m));
  }
  return bits > 7.2 * static_cast<double>(m);
}

constexpr size_t kDirEntry = 12;  // u32 raw size, u32 stored size, u32 checksum
constexpr size_t kDirSize = 4 + kStreamCount * kDirEntry + 4;

// Per-row predictor choices. A row's class is its kind plus these.
namespace mode {
constexpr int kRef = 0;     // 3 bits: dst, ports and seq are those of the row k back (0: none)
constexpr int kSeq = 3;     // 2 bits: 0 stored, 1 previous row's, 2 the IPv4 dst (Mirai), 3 zero
constexpr int kAck = 5;     // 2 bits: 0 zero, 1 stored, 2 previous row's
constexpr int kIpId = 7;    // 3 bits: 0 stored, 1 previous + int8, 2 Masscan, 3 ZMap, 4 zero,
                            //         5 previous + int16
constexpr int kWin = 10;    // 2 bits: 0 value, 1 previous row's, 2 last row of the same kind's
constexpr int kTtl = 12;    // 1 bit: 0 stored, 1 previous row's
constexpr int kSport = 13;  // 2 bits: 0 stored, 1 previous row's, 2 previous + int8
constexpr int kDport = 15;  // 2 bits: 0 value, 1 previous row's, 2 last row of the same kind's
constexpr int kTsval = 17;  // 1 bit: 0 stored, 1 delta from the last timestamp option
constexpr int kTsecr = 18;  // 1 bit: 0 zero, 1 stored
constexpr uint32_t kMaxRef = 7;
inline uint32_t Get(uint32_t m, int shift, int bits) {
  return (m >> shift) & ((1u << bits) - 1);
}
}  // namespace mode

constexpr uint16_t kZmapIpId = 54321;

// The fields that make a row's kind: what one tool's packets share.
struct Kind {
  uint8_t proto, flags, tcp_flags, icmp_type, icmp_code, opt_len, payload_cap, dst_v4;
  uint16_t ip_len, payload_len, opt_template;
};
constexpr size_t kKindWidth = 14;

inline uint64_t Mix(uint64_t x) {
  x ^= x >> 31;
  x *= 0x9E3779B97F4A7C15ULL;
  x ^= x >> 29;
  return x;
}
inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}
inline uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline bool SameAddr(const IpAddr& a, const IpAddr& b) {
  return std::memcmp(a.bytes.data(), b.bytes.data(), 16) == 0;
}
inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t Checksum(const uint8_t* p, size_t n) {
  return static_cast<uint32_t>(XXH3_64bits(p, n));
}

// Finds a TCP timestamp option (kind 8, length 10) lying wholly in the `len` option bytes.
inline int TimestampOffset(const uint8_t* o, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (o[i] == 0) break;
    if (o[i] == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= len || o[i + 1] < 2) break;
    if (o[i] == 8 && o[i + 1] == 10 && i + 10 <= len) return static_cast<int>(i);
    i += o[i + 1];
  }
  return -1;
}

}  // namespace teiten::segment_format
