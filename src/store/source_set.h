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
      AddV4(a.v4());
    } else {
      pending_v6_.push_back(a);
    }
  }
  void AddV4(uint32_t a) {
    if (big_) {
      v4_.add(a);
      return;
    }
    for (uint32_t x : small_) {
      if (x == a) return;
    }
    if (small_.size() < kSmallMax) {
      small_.push_back(a);
    } else {
      Grow();
      v4_.add(a);
    }
  }
  void Merge(const SourceSet& o);
  uint64_t Count() const;
  // |s1 ∪ s2 ∪ …|: one many-way bitmap union instead of merging set by set (which, for the
  // sparse sets darknets see, moves the union's container array again for every set).
  static uint64_t UnionCount(const std::vector<SourceSet>& sets);
  bool Contains(const IpAddr& a) const;
  void Normalize();  // sorts and dedups IPv6, run-optimises the bitmap

  // Serialized form: u8 0, varint n, n ascending IPv4 as varint gaps (u8 1, u32 length and a
  // portable Roaring bitmap is also read). Then varint IPv6 count, 16 bytes each.
  void AppendTo(std::vector<uint8_t>* out) const;
  static Result<SourceSet> Read(codec::Reader* r);
  // Appends a serialized set's members without building a set (for counting unions).
  static Status AppendMembers(codec::Reader* r, std::vector<uint32_t>* v4, std::vector<IpAddr>* v6);

 private:
  // Most ports see one or two sources a day: a bitmap per port would cost a heap block and ~20
  // bytes on disk each, so sets start as a short list and become a bitmap past kSmallMax.
  static constexpr size_t kSmallMax = 16;
  void Grow();

  bool big_ = false;
  std::vector<uint32_t> small_;     // unsorted, unique, while !big_
  Roaring v4_;                      // when big_
  std::vector<IpAddr> v6_;          // sorted, unique
  std::vector<IpAddr> pending_v6_;  // added since the last Normalize()
};

// Distinct members of the gathered lists (which it reorders).
uint64_t CountDistinct(std::vector<uint32_t>* v4, std::vector<IpAddr>* v6);

}  // namespace teiten
