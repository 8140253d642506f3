#include "common/ip.h"

#include <arpa/inet.h>

namespace teiten {

std::optional<IpAddr> IpAddr::Parse(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  std::string s(text);
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) return V4(ntohl(v4.s_addr));
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) return V6(v6.s6_addr);
  return std::nullopt;
}

std::string IpAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  }
  return buf;
}

std::optional<Prefix> Prefix::Parse(std::string_view text) {
  size_t slash = text.find('/');
  auto addr = IpAddr::Parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  int max_len = addr->is_v4() ? 32 : 128;
  int len = max_len;
  if (slash != std::string_view::npos) {
    std::string_view n = text.substr(slash + 1);
    if (n.empty() || n.size() > 3) return std::nullopt;
    len = 0;
    for (char c : n) {
      if (c < '0' || c > '9') return std::nullopt;
      len = len * 10 + (c - '0');
    }
    if (len > max_len) return std::nullopt;
  }
  Prefix p{*addr, len};
  // Clear host bits so that 192.0.2.7/24 means 192.0.2.0/24.
  int total = addr->is_v4() ? len + 96 : len;
  for (int bit = total; bit < 128; ++bit) {
    p.base.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return p;
}

bool Prefix::Contains(const IpAddr& a) const {
  if (a.is_v4() != base.is_v4()) return false;
  int total = base.is_v4() ? length + 96 : length;
  int full = total / 8;
  if (std::memcmp(a.bytes.data(), base.bytes.data(), full) != 0) return false;
  int rest = total % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff00u >> rest);
  return (a.bytes[full] & mask) == (base.bytes[full] & mask);
}

std::string Prefix::ToString() const {
  return base.ToString() + "/" + std::to_string(length);
}

}  // namespace teiten
