#include "sensor/filter.h"

namespace teiten {
namespace {
constexpr size_t kMaxTrackedFlows = 1 << 20;
}

const char* FilterVerdictName(FilterVerdict v) {
  switch (v) {
    case FilterVerdict::kKeep:
      return "kept";
    case FilterVerdict::kNotMonitored:
      return "not_monitored";
    case FilterVerdict::kOutbound:
      return "outbound";
    case FilterVerdict::kSolicited:
      return "solicited";
    case FilterVerdict::kCount:
      break;
  }
  return "unknown";
}

SensorFilter::SensorFilter(const SensorConfig& sensor)
    : mode_(sensor.mode), prefixes_(sensor.prefixes) {
  if (mode_ == SensorMode::kHost) ring_.assign(kMaxTrackedFlows, 0);
}

bool SensorFilter::Monitored(const IpAddr& a) const {
  for (const Prefix& p : prefixes_) {
    if (p.Contains(a)) return true;
  }
  return false;
}

uint64_t SensorFilter::FlowKey(uint8_t proto, const IpAddr& local, uint16_t lport,
                               const IpAddr& remote, uint16_t rport) {
  IpAddrHash h;
  uint64_t k = h(local) * 31 + h(remote);
  k = k * 1000003 + ((uint64_t{proto} << 32) | (uint64_t{lport} << 16) | rport);
  return k | 1;  // 0 marks an empty ring slot
}

FilterVerdict SensorFilter::Check(const Observation& o) {
  if (mode_ == SensorMode::kDarknet) {
    return Monitored(o.dst) ? FilterVerdict::kKeep : FilterVerdict::kNotMonitored;
  }
  if (Monitored(o.src)) {
    if (o.proto == 6 || o.proto == 17) {
      uint64_t key = FlowKey(o.proto, o.src, o.sport, o.dst, o.dport);
      if (flows_.insert(key).second) {
        if (ring_[ring_pos_] != 0) flows_.erase(ring_[ring_pos_]);
        ring_[ring_pos_] = key;
        ring_pos_ = (ring_pos_ + 1) % ring_.size();
      }
    }
    return FilterVerdict::kOutbound;
  }
  if (!Monitored(o.dst)) return FilterVerdict::kNotMonitored;
  switch (o.proto) {
    case 6:
      if (o.flags & (obs_flag::kNoTransport | obs_flag::kFragment)) return FilterVerdict::kKeep;
      return (o.tcp_flags & tcp_flag::kAck) ? FilterVerdict::kSolicited : FilterVerdict::kKeep;
    case 17:
      if (o.flags & (obs_flag::kNoTransport | obs_flag::kFragment)) return FilterVerdict::kKeep;
      return flows_.count(FlowKey(17, o.dst, o.dport, o.src, o.sport)) ? FilterVerdict::kSolicited
                                                                       : FilterVerdict::kKeep;
    case 1:  // echo, timestamp, information, address mask requests
      return (o.icmp_type == 8 || o.icmp_type == 13 || o.icmp_type == 15 || o.icmp_type == 17)
                 ? FilterVerdict::kKeep
                 : FilterVerdict::kSolicited;
    case 58:  // echo request, node information query
      return (o.icmp_type == 128 || o.icmp_type == 139) ? FilterVerdict::kKeep
                                                        : FilterVerdict::kSolicited;
    default:
      return FilterVerdict::kKeep;
  }
}

}  // namespace teiten
