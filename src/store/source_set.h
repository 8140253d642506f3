// SourceSet: an exact set of source addresses, mergeable, compact on disk.
//
// IPv4 sources live in a Roaring bitmap keyed by the address itself; IPv6 sources (rare at
// darknets) in a sorted vector. Distinct-source counts over any period are the size of the union
// of the sets of its days, exact by construction (SPEC S1).
#pragma once

#include <cstdint>
#include <roaring/roaring.hh>
#include <vector>

#include "common/ip.h"
#include "common/status.h"
#include "store/codec.h"

namespace teiten {

class SourceSet {
 public:
  void Add(const IpAddr& a) {
    if (a.is_v4()) {
      v4_.add(a.v4());
    } else {
      pending_v6_.push_back(a);
    }
  }
  void AddV4(uint32_t a) { v4_.add(a); }
  void Merge(const SourceSet& o);
  uint64_t Count() const;
  bool Contains(const IpAddr& a) const;
  void Normalize();  // sorts and dedups IPv6, run-optimises the bitmap

  // Serialized form: u32 v4 byte length, portable roaring bytes, varint v6 count, 16 bytes each.
  void AppendTo(std::vector<uint8_t>* out) const;
  static Result<SourceSet> Read(codec::Reader* r);
  const Roaring& v4() const { return v4_; }

 private:
  Roaring v4_;
  std::vector<IpAddr> v6_;          // sorted, unique
  std::vector<IpAddr> pending_v6_;  // added since the last Normalize()
};

}  // namespace teiten
