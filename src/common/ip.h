// IpAddr and Prefix: one 16-byte address type for IPv4 and IPv6.
//
// IPv4 addresses are held IPv4-mapped (::ffff:a.b.c.d) so that every table, index and store
// column has one shape. `IpAddr::V4(0x01020304)` is 1.2.3.4; `is_v4()` tells them apart.
//
//   auto a = IpAddr::Parse("2001:db8::1");
//   auto p = Prefix::Parse("192.0.2.0/24");
//   if (a && p && p->Contains(*a)) ...
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace teiten {

struct IpAddr {
  std::array<uint8_t, 16> bytes{};

  static IpAddr V4(uint32_t host_order) {
    IpAddr a;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    a.bytes[12] = static_cast<uint8_t>(host_order >> 24);
    a.bytes[13] = static_cast<uint8_t>(host_order >> 16);
    a.bytes[14] = static_cast<uint8_t>(host_order >> 8);
    a.bytes[15] = static_cast<uint8_t>(host_order);
    return a;
  }
  static IpAddr V6(const uint8_t* sixteen) {
    IpAddr a;
    std::memcpy(a.bytes.data(), sixteen, 16);
    return a;
  }
  // Accepts dotted IPv4 and any RFC 4291 IPv6 text form. nullopt on anything else.
  static std::optional<IpAddr> Parse(std::string_view text);

  bool is_v4() const {
    static constexpr std::array<uint8_t, 12> kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(bytes.data(), kMapped.data(), 12) == 0;
  }
  // Host-order IPv4 value; meaningful only when is_v4().
  uint32_t v4() const {
    return (uint32_t{bytes[12]} << 24) | (uint32_t{bytes[13]} << 16) | (uint32_t{bytes[14]} << 8) |
           bytes[15];
  }
  // The address as two big-endian halves: ordering by (hi, lo) is ordering by address.
  uint64_t hi() const { return __builtin_bswap64(Word(0)); }
  uint64_t lo() const { return __builtin_bswap64(Word(8)); }
  std::string ToString() const;

  // Hot in sorting and run detection: compare as two words, not byte by byte.
  bool operator==(const IpAddr& o) const { return Word(0) == o.Word(0) && Word(8) == o.Word(8); }
  std::strong_ordering operator<=>(const IpAddr& o) const {
    uint64_t a = hi(), b = o.hi();
    if (a != b) return a <=> b;
    return lo() <=> o.lo();
  }

 private:
  uint64_t Word(int at) const {
    uint64_t w;
    std::memcpy(&w, bytes.data() + at, 8);
    return w;
  }

 public:
};

struct IpAddrHash {
  size_t operator()(const IpAddr& a) const {
    uint64_t x = a.hi() * 0x9E3779B97F4A7C15ULL ^ a.lo();
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ULL;
    return static_cast<size_t>(x ^ (x >> 29));
  }
};

// A CIDR prefix. For IPv4, `length` counts IPv4 bits (0..32); internally it is stored mapped.
struct Prefix {
  IpAddr base;
  int length = 0;  // in the address's own family
  static std::optional<Prefix> Parse(std::string_view text);
  bool Contains(const IpAddr& a) const;
  std::string ToString() const;
};

}  // namespace teiten
