#include "capture/decoder.h"

#include <pcap/dlt.h>

#include <algorithm>
#include <cstring>

namespace teiten {
namespace {

inline uint16_t Be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

constexpr uint16_t kEthIpv4 = 0x0800, kEthIpv6 = 0x86DD, kEthVlan = 0x8100, kEthQinQ = 0x88A8,
                   kEthQinQOld = 0x9100;
// Stacked 802.1Q/802.1ad tags: each is 4 bytes of the frame, so the walk ends with the frame;
// the bound only stops a frame of nothing but tags (tshark decodes 5 and more; 4 was a guess).
constexpr int kMaxVlanTags = 64;
constexpr int kMaxIpv6ExtHeaders = 16;

// Link types pcap files use that libpcap maps to DLT_ values.
constexpr int kDltLinuxSll2 = 276;
constexpr int kDltIpv4 = 228;
constexpr int kDltIpv6 = 229;
constexpr int kLinktypeRaw = 101;

}  // namespace

const char* AnomalyName(Anomaly a) {
  switch (a) {
    case Anomaly::kNone:
      return "none";
    case Anomaly::kUnsupportedLinkType:
      return "unsupported_link_type";
    case Anomaly::kTruncatedLinkHeader:
      return "truncated_link_header";
    case Anomaly::kNotIp:
      return "not_ip";
    case Anomaly::kTruncatedIpHeader:
      return "truncated_ip_header";
    case Anomaly::kBadIpVersion:
      return "bad_ip_version";
    case Anomaly::kBadIpHeaderLength:
      return "bad_ip_header_length";
    case Anomaly::kBadIpTotalLength:
      return "bad_ip_total_length";
    case Anomaly::kDatagramCutShort:
      return "datagram_cut_short";
    case Anomaly::kBadIpv6ExtHeader:
      return "bad_ipv6_extension_header";
    case Anomaly::kFragment:
      return "ip_fragment";
    case Anomaly::kTruncatedTransport:
      return "truncated_transport_header";
    case Anomaly::kBadTcpDataOffset:
      return "bad_tcp_data_offset";
    case Anomaly::kIpTotalLengthZero:
      return "ip_total_length_zero";
    case Anomaly::kCount:
      break;
  }
  return "unknown";
}

bool AnomalyKeepsPacket(Anomaly a) {
  return a == Anomaly::kFragment || a == Anomaly::kTruncatedTransport ||
         a == Anomaly::kBadTcpDataOffset || a == Anomaly::kBadIpv6ExtHeader ||
         a == Anomaly::kDatagramCutShort || a == Anomaly::kIpTotalLengthZero;
}

bool Decoder::SupportsLinkType(int dlt) {
  switch (dlt) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case kDltLinuxSll2:
    case DLT_RAW:
    case kLinktypeRaw:
    case kDltIpv4:
    case kDltIpv6:
    case DLT_NULL:
    case DLT_LOOP:
      return true;
    default:
      return false;
  }
}

bool Decoder::Decode(int dlt, int64_t ts_us, const uint8_t* data, uint32_t caplen, uint32_t wirelen,
                     Observation* out, std::vector<uint8_t>* blob) {
  *out = Observation{};
  out->ts_us = ts_us;
  if (wirelen < caplen) wirelen = caplen;  // a lying record header: trust what we hold
  uint32_t off = 0;
  uint16_t ethertype = 0;
  bool by_version = false;  // link layer does not say; the IP version nibble does
  switch (dlt) {
    case DLT_EN10MB: {
      if (caplen < 14) {
        stats_.Count(Anomaly::kTruncatedLinkHeader);
        return false;
      }
      ethertype = Be16(data + 12);
      off = 14;
      for (int tags = 0; ethertype == kEthVlan || ethertype == kEthQinQ || ethertype == kEthQinQOld;
           ++tags) {
        if (tags == kMaxVlanTags || caplen < off + 4) {
          stats_.Count(Anomaly::kTruncatedLinkHeader);
          return false;
        }
        ethertype = Be16(data + off + 2);
        off += 4;
      }
      break;
    }
    case DLT_LINUX_SLL:
      if (caplen < 16) {
        stats_.Count(Anomaly::kTruncatedLinkHeader);
        return false;
      }
      ethertype = Be16(data + 14);
      off = 16;
      break;
    case kDltLinuxSll2:
      if (caplen < 20) {
        stats_.Count(Anomaly::kTruncatedLinkHeader);
        return false;
      }
      ethertype = Be16(data);
      off = 20;
      break;
    case DLT_RAW:
    case kLinktypeRaw:
    case kDltIpv4:
    case kDltIpv6:
      by_version = true;
      break;
    case DLT_NULL:
    case DLT_LOOP: {
      if (caplen < 4) {
        stats_.Count(Anomaly::kTruncatedLinkHeader);
        return false;
      }
      // DLT_NULL holds the family in the writer's byte order, DLT_LOOP in network order; the
      // values that matter are small, so whichever end is non-zero says which.
      uint32_t fam = Be32(data);
      if (dlt == DLT_NULL && (fam & 0xFFFF0000u) != 0) fam = __builtin_bswap32(fam);
      off = 4;
      if (fam == 2) {
        ethertype = kEthIpv4;
      } else if (fam == 10 || fam == 24 || fam == 28 || fam == 30) {
        ethertype = kEthIpv6;
      } else {
        stats_.Count(Anomaly::kNotIp);
        return false;
      }
      break;
    }
    default:
      stats_.Count(Anomaly::kUnsupportedLinkType);
      return false;
  }
  if (!by_version && ethertype != kEthIpv4 && ethertype != kEthIpv6) {
    stats_.Count(Anomaly::kNotIp);
    return false;
  }
  if (off > caplen) {
    stats_.Count(Anomaly::kTruncatedLinkHeader);
    return false;
  }
  const uint8_t* ip = data + off;
  uint32_t cap = caplen - off;
  uint32_t wire = wirelen - off;
  if (cap == 0) {
    stats_.Count(Anomaly::kTruncatedIpHeader);
    return false;
  }
  uint8_t version = ip[0] >> 4;
  if (!by_version &&
      ((ethertype == kEthIpv4 && version != 4) || (ethertype == kEthIpv6 && version != 6))) {
    stats_.Count(Anomaly::kBadIpVersion);
    return false;
  }
  if (cap < wire) out->flags |= obs_flag::kSnapTruncated;
  return DecodeIp(ip, cap, wire, out, blob);
}

bool Decoder::DecodeIp(const uint8_t* p, uint32_t cap, uint32_t wire, Observation* o,
                       std::vector<uint8_t>* blob) {
  switch (p[0] >> 4) {
    case 4:
      return DecodeIpv4(p, cap, wire, o, blob);
    case 6:
      return DecodeIpv6(p, cap, wire, o, blob);
    default:
      stats_.Count(Anomaly::kBadIpVersion);
      return false;
  }
}

bool Decoder::DecodeIpv4(const uint8_t* p, uint32_t cap, uint32_t wire, Observation* o,
                         std::vector<uint8_t>* blob) {
  if (cap < 20) {
    stats_.Count(Anomaly::kTruncatedIpHeader);
    return false;
  }
  uint32_t ihl = (p[0] & 0x0F) * 4u;
  if (ihl < 20) {
    stats_.Count(Anomaly::kBadIpHeaderLength);
    return false;
  }
  if (ihl > cap) {
    stats_.Count(Anomaly::kTruncatedIpHeader);
    return false;
  }
  uint32_t total = Be16(p + 2);
  if (total == 0) {
    stats_.Count(Anomaly::kIpTotalLengthZero);
    total = std::min<uint32_t>(wire, 0xFFFF);
  }
  if (total < ihl) {
    stats_.Count(Anomaly::kBadIpTotalLength);
    return false;
  }
  // Ethernet pads short frames, so the frame may be longer than the datagram. A frame shorter
  // than the datagram lost its tail on the way: the addresses are good, so keep what arrived.
  if (total > wire) {
    stats_.Count(Anomaly::kDatagramCutShort);
    total = wire;
    if (total < ihl) return false;
  }
  o->ip_len = static_cast<uint16_t>(total);
  o->ip_id = Be16(p + 4);
  uint16_t frag = Be16(p + 6);
  o->ttl = p[8];
  o->proto = p[9];
  o->src = IpAddr::V4(Be32(p + 12));
  o->dst = IpAddr::V4(Be32(p + 16));
  uint32_t frag_off = frag & 0x1FFF;
  bool more = (frag & 0x2000) != 0;
  o->blob = static_cast<uint32_t>(blob->size());
  if (frag_off != 0 || more) stats_.Count(Anomaly::kFragment);
  if (frag_off != 0) {
    o->flags |= obs_flag::kFragment;
    return true;
  }
  if (more) o->flags |= obs_flag::kFirstFragment;
  uint32_t len = total - ihl;
  DecodeTransport(p + ihl, std::min(cap, total) - ihl, len, o, blob);
  return true;
}

bool Decoder::DecodeIpv6(const uint8_t* p, uint32_t cap, uint32_t wire, Observation* o,
                         std::vector<uint8_t>* blob) {
  if (cap < 40) {
    stats_.Count(Anomaly::kTruncatedIpHeader);
    return false;
  }
  uint32_t payload = Be16(p + 4);
  // Jumbograms (payload length 0 with a hop-by-hop option) do not cross the Internet to a darknet.
  if (40 + payload > wire) {  // cut short on the way: keep what arrived, as for IPv4
    stats_.Count(Anomaly::kDatagramCutShort);
    payload = wire - 40;
  }
  o->ip_len = static_cast<uint16_t>(std::min<uint32_t>(40 + payload, 0xFFFF));
  o->ttl = p[7];
  o->src = IpAddr::V6(p + 8);
  o->dst = IpAddr::V6(p + 24);
  uint8_t next = p[6];
  uint32_t off = 40;
  uint32_t end = std::min(cap, 40 + payload);
  o->blob = static_cast<uint32_t>(blob->size());
  bool fragmented = false;
  for (int n = 0;; ++n) {
    bool ext = next == 0 || next == 43 || next == 60 || next == 44 || next == 51 || next == 135 ||
               next == 139 || next == 140;
    if (!ext) break;
    if (n == kMaxIpv6ExtHeaders || off + 8 > end) {
      stats_.Count(Anomaly::kBadIpv6ExtHeader);
      o->proto = next;
      o->flags |= obs_flag::kNoTransport;
      return true;  // addresses are known: keep it, without ports
    }
    const uint8_t* h = p + off;
    uint32_t hlen;
    if (next == 44) {
      uint16_t fo = Be16(h + 2);
      o->ip_id = static_cast<uint16_t>(Be32(h + 4));
      if (!fragmented) stats_.Count(Anomaly::kFragment);
      fragmented = true;
      if ((fo & 0xFFF8) != 0) {
        o->proto = h[0];
        o->flags |= obs_flag::kFragment;
        return true;
      }
      if (fo & 1) o->flags |= obs_flag::kFirstFragment;
      hlen = 8;
    } else if (next == 51) {
      hlen = (uint32_t{h[1]} + 2) * 4;
    } else {
      hlen = (uint32_t{h[1]} + 1) * 8;
    }
    next = h[0];
    off += hlen;
    if (off > end) {
      stats_.Count(Anomaly::kBadIpv6ExtHeader);
      o->proto = next;
      o->flags |= obs_flag::kNoTransport;
      return true;
    }
  }
  o->proto = next;
  if (next == 59) {  // no next header
    o->flags |= obs_flag::kNoTransport;
    return true;
  }
  DecodeTransport(p + off, end - off, 40 + payload - off, o, blob);
  return true;
}

// `cap` bytes of the transport header and payload are held; `len` were sent.
void Decoder::DecodeTransport(const uint8_t* p, uint32_t cap, uint32_t len, Observation* o,
                              std::vector<uint8_t>* blob) {
  uint32_t header = 0;
  switch (o->proto) {
    case 6: {
      if (cap < 20) {
        stats_.Count(Anomaly::kTruncatedTransport);
        o->flags |= obs_flag::kNoTransport;
        return;
      }
      o->sport = Be16(p);
      o->dport = Be16(p + 2);
      o->seq = Be32(p + 4);
      o->ack = Be32(p + 8);
      uint32_t doff = (p[12] >> 4) * 4u;
      o->tcp_flags = p[13];
      o->window = Be16(p + 14);
      if (doff < 20 || doff > len) {
        stats_.Count(Anomaly::kBadTcpDataOffset);
        o->flags |= obs_flag::kNoTransport;
        return;
      }
      uint32_t opts = std::min(doff, cap) - 20;
      opts = std::min<uint32_t>(opts, kMaxTcpOptions);
      blob->insert(blob->end(), p + 20, p + 20 + opts);
      o->opt_len = static_cast<uint8_t>(opts);
      header = doff;
      break;
    }
    case 17:
    case 132:
    case 33: {
      uint32_t need = o->proto == 17 ? 8 : (o->proto == 132 ? 12 : 16);
      if (cap < need) {
        stats_.Count(Anomaly::kTruncatedTransport);
        o->flags |= obs_flag::kNoTransport;
        return;
      }
      o->sport = Be16(p);
      o->dport = Be16(p + 2);
      header = need;
      if (o->proto == 17) {
        uint32_t ulen = Be16(p + 4);
        // A UDP length beyond the datagram is a lie we note by trusting the IP length instead.
        if (ulen >= 8 && ulen < len) len = ulen;
      }
      break;
    }
    case 1:
    case 58: {
      if (cap < 4) {
        stats_.Count(Anomaly::kTruncatedTransport);
        o->flags |= obs_flag::kNoTransport;
        return;
      }
      o->icmp_type = p[0];
      o->icmp_code = p[1];
      header = std::min<uint32_t>(8, cap);
      break;
    }
    default:
      return;  // counted by protocol number; no ports
  }
  if (len < header) len = header;
  o->payload_len = static_cast<uint16_t>(std::min<uint32_t>(len - header, 0xFFFF));
  uint32_t held = cap > header ? cap - header : 0;
  uint32_t keep = std::min<uint32_t>({held, o->payload_len, kPayloadPrefix});
  blob->insert(blob->end(), p + header, p + header + keep);
  o->payload_cap = static_cast<uint8_t>(keep);
}

}  // namespace teiten
