// Which packets are backscatter (SPEC A10): the answers of a host flooded with packets whose
// sources were spoofed, which reach a telescope because some spoofed sources lie in it. Moore,
// Shannon, Brown, Voelker and Savage, "Inferring Internet Denial-of-Service Activity" (ACM TOCS
// 2006). The kind follows from fields every stored row's class carries (protocol, observation
// flags, TCP flags, ICMP type), so the store can keep backscatter rows in segments of their own
// at ingest and `teiten dos` read only those; analysis/dos.h attributes each to its victim.
#pragma once

#include <cstdint>
#include <vector>

#include "common/observation.h"

namespace teiten {

enum class BackscatterKind : uint8_t { kNone, kSynAck, kRst, kIcmpReply, kIcmpError };

//   TCP SYN-ACK, TCP RST (with or without ACK)          kSynAck, kRst
//   ICMP echo/timestamp/information/mask reply (0, 14, 16, 18), ICMPv6 echo reply (129)
//                                                        kIcmpReply
//   ICMP errors 3, 4, 5, 11, 12; ICMPv6 errors 1–4       kIcmpError
// A non-first fragment, or a packet whose transport header is missing, is none.
inline BackscatterKind BackscatterKindOf(uint8_t proto, uint8_t flags, uint8_t tcp_flags,
                                         uint8_t icmp_type) {
  if (flags & (obs_flag::kFragment | obs_flag::kNoTransport)) return BackscatterKind::kNone;
  switch (proto) {
    case 6: {
      const uint8_t syn_ack = tcp_flag::kSyn | tcp_flag::kAck;
      if ((tcp_flags & syn_ack) == syn_ack && !(tcp_flags & tcp_flag::kRst)) {
        return BackscatterKind::kSynAck;
      }
      return (tcp_flags & tcp_flag::kRst) ? BackscatterKind::kRst : BackscatterKind::kNone;
    }
    case 1:
      switch (icmp_type) {
        case 0:
        case 14:
        case 16:
        case 18:
          return BackscatterKind::kIcmpReply;
        case 3:
        case 4:
        case 5:
        case 11:
        case 12:
          return BackscatterKind::kIcmpError;
        default:
          return BackscatterKind::kNone;
      }
    case 58:
      if (icmp_type == 129) return BackscatterKind::kIcmpReply;
      if (icmp_type >= 1 && icmp_type <= 4) return BackscatterKind::kIcmpError;
      return BackscatterKind::kNone;
    default:
      return BackscatterKind::kNone;
  }
}
inline BackscatterKind BackscatterKindOf(const Observation& o) {
  return BackscatterKindOf(o.proto, o.flags, o.tcp_flags, o.icmp_type);
}
inline bool IsBackscatter(const Observation& o) {
  return BackscatterKindOf(o) != BackscatterKind::kNone;
}
// Splits the row numbers [first, last) of `rows` into the backscatter rows' and the others',
// each in the order given (what a store writes to segments of their own).
template <typename It>
void SplitBackscatter(const std::vector<Observation>& rows, It first, It last,
                      std::vector<uint32_t>* backscatter, std::vector<uint32_t>* rest) {
  backscatter->clear();
  rest->clear();
  for (; first != last; ++first)
    (IsBackscatter(rows[*first]) ? backscatter : rest)->push_back(*first);
}

}  // namespace teiten
