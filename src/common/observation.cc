#include "common/observation.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace teiten {

PortKey PortKeyOf(const Observation& o) {
  if (o.proto == 1 || o.proto == 58) return MakePortKey(o.proto, 0);
  if (o.flags & (obs_flag::kFragment | obs_flag::kNoTransport)) {
    return MakePortKey(o.proto, 0) | kNoPortBit;
  }
  if (o.proto == 6 || o.proto == 17 || o.proto == 132 || o.proto == 33) {
    return MakePortKey(o.proto, o.dport);
  }
  return MakePortKey(o.proto, 0) | kNoPortBit;  // protocols without ports rank by number only
}

const char* ProtoName(uint8_t proto) {
  switch (proto) {
    case 1:
      return "ICMP";
    case 2:
      return "IGMP";
    case 4:
      return "IPIP";
    case 6:
      return "TCP";
    case 17:
      return "UDP";
    case 33:
      return "DCCP";
    case 41:
      return "IPv6";
    case 47:
      return "GRE";
    case 50:
      return "ESP";
    case 51:
      return "AH";
    case 58:
      return "ICMPv6";
    case 103:
      return "PIM";
    case 132:
      return "SCTP";
    default:
      return nullptr;
  }
}

static std::string ProtoText(uint8_t proto) {
  const char* n = ProtoName(proto);
  return n ? n : "proto-" + std::to_string(proto);
}

std::string PortKeyToString(PortKey k) {
  uint8_t proto = PortKeyProto(k);
  if (!PortKeyHasPort(k)) return ProtoText(proto) + "/-";
  return std::to_string(PortKeyPort(k)) + "/" + ProtoText(proto);
}

bool ParsePortKey(std::string_view text, PortKey* out) {
  std::string t(text);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "icmp" || t == "0/icmp") {
    *out = MakePortKey(1, 0);
    return true;
  }
  if (t == "icmpv6" || t == "0/icmpv6") {
    *out = MakePortKey(58, 0);
    return true;
  }
  size_t slash = t.find('/');
  if (slash == std::string::npos) return false;
  std::string_view num(t.data(), slash), proto(t.data() + slash + 1, t.size() - slash - 1);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), port);
  if (ec != std::errc() || p != num.data() + num.size() || port > 65535) return false;
  uint8_t pn = 0;
  if (proto == "tcp")
    pn = 6;
  else if (proto == "udp")
    pn = 17;
  else if (proto == "sctp")
    pn = 132;
  else if (proto == "dccp")
    pn = 33;
  else
    return false;
  *out = MakePortKey(pn, static_cast<uint16_t>(port));
  return true;
}

}  // namespace teiten
