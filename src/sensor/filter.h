// SensorFilter: decides which decoded packets a sensor counts (SPEC C2).
//
// A darknet sensor counts every packet to its monitored prefixes. A host sensor (TALOT2 style,
// an ordinary machine behind a firewall) counts only unsolicited inbound packets to its own
// addresses: TCP without ACK, UDP that is not a reply to the host's own traffic, and ICMP
// requests. It learns the host's own flows from the outbound packets in the same capture, in a
// bounded table (the oldest flows are forgotten first).
//
// Not thread-safe; one filter per ingest stream.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "common/observation.h"
#include "sensor/config.h"

namespace teiten {

enum class FilterVerdict : uint8_t {
  kKeep,
  kNotMonitored,  // destination outside the sensor's addresses
  kOutbound,      // sent by the host sensor itself
  kSolicited,     // a reply or ACK-bearing packet at a host sensor
  kCount,
};

const char* FilterVerdictName(FilterVerdict v);

class SensorFilter {
 public:
  explicit SensorFilter(const SensorConfig& sensor);
  FilterVerdict Check(const Observation& o);

 private:
  bool Monitored(const IpAddr& a) const;
  static uint64_t FlowKey(uint8_t proto, const IpAddr& local, uint16_t lport, const IpAddr& remote,
                          uint16_t rport);

  SensorMode mode_;
  std::vector<Prefix> prefixes_;
  // Host mode: recent outbound flows, as a ring of keys plus a set for lookup.
  std::unordered_set<uint64_t> flows_;
  std::vector<uint64_t> ring_;
  size_t ring_pos_ = 0;
};

}  // namespace teiten
