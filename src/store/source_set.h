// SourceSet: an exact set of source addresses, mergeable, compact on disk.
//
// IPv4 sources live in a sorted vector of addresses; IPv6 sources (rare at darknets) in a sorted
// vector too. Distinct-source counts over any period are the size of the union
// of the sets of its days, exact by construction (SPEC S1).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/ip.h"
#include "common/status.h"
#include "store/codec.h"

namespace teiten {

struct MemberDict;

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
    if (!add_.empty() && add_.back() == a) return;  // a run of one source
    add_.push_back(a);
    if (add_.size() >= std::max<size_t>(kMinBatch, v4_.size())) Flush();
  }
  void Merge(const SourceSet& o);
  uint64_t Count() const;
  // |s1 ∪ s2 ∪ …|: gathers every member and counts distinct values once.
  static uint64_t UnionCount(const std::vector<SourceSet>& sets);
  bool Contains(const IpAddr& a) const;
  void Normalize();  // sorts in what was added since, and sorts and dedups IPv6

  // Serialized form: u8 0, varint n, n ascending IPv4 as varint gaps; from kSkipFrom members
  // u8 2, varint n, varint stride, varint gap bytes, ceil(n / stride) × { u32 address of member
  // i·stride, u32 offset in the gaps after its gap }, then the gaps (u8 1, u32 length and a
  // portable Roaring bitmap is also read). Then varint IPv6 count, 16 bytes each.
  //
  // Kinds 3 and 4 (rollup formats 7 to 10) hold a set as ascending positions in another set, its
  // dictionary (in a rollup, the total set of the entry it belongs to, itself of kind 0 or 2):
  // u8 3, varint n, the positions as varint gaps (the first from 0); from kSkipFrom members u8 4
  // and kind 2's layout over positions. No IPv6 list follows: a position below the dictionary's
  // IPv4 count is that IPv4 member, a position p from there on the IPv6 member p − that count.
  // A set of positions costs the bits that tell its members apart among the dictionary's, not
  // among all addresses: half the bytes of a port's or a region's set of a day.
  //
  // Kind 5 (rollup formats 8 to 10) holds a set of positions as runs of consecutive positions,
  // written instead of kind 3 or 4 when it takes fewer bytes: u8 5, varint n, varint r (runs), then
  // r × { varint gap from the previous run's end (the first from 0), varint length − 1 }. A
  // region's sources lie in its address blocks, so a country's or an AS's positions in the day's
  // sources are runs; a set holding every source of its entry is one run.
  //
  // Kind 6 (rollup formats 9 and 10) is kind 3 without its count, written instead of it: u8 6, then
  // the positions as varint gaps (the first from 0) to the end of the set's bytes, whose length the
  // rollup writes before each set; its count is the bytes that end a varint. Most sets of a
  // sensor's day are a few members, for which the count was a byte in four.
  //
  // Kinds 16 to 47 (rollup format 11) hold a set of fewer than kSkipFrom positions as a Rice
  // code with parameter k = kind − 16, written instead of kind 5 or 6 when it is smaller: the
  // first position, then each gap less one, each as k low bits below a unary high part (an
  // escape and Elias gamma from 15 on), to the end of the set's bytes. Where a port's sources
  // spread evenly over its entry's, their gaps are near geometric, which a Rice code fits within
  // a few percent: a fifth fewer bytes than varints, whose 7-bit steps waste most of a byte.
  static constexpr uint64_t kSkipFrom = 2048;
  static constexpr uint64_t kSkipStride = 128;
  void AppendTo(std::vector<uint8_t>* out) const;
  // Appends the set as positions in the dictionary `dict4`, `dict6` (sorted, unique, holding
  // every member: Internal error otherwise).
  Status AppendPositionsTo(const std::vector<uint32_t>& dict4, const std::vector<IpAddr>& dict6,
                           std::vector<uint8_t>* out) const;
  // Appends ascending positions as a set of kind 6 (below kSkipFrom members) or 4, or 5 when
  // that is smaller.
  static void AppendPositions(const std::vector<uint64_t>& positions, std::vector<uint8_t>* out);
  // Every member, ascending (IPv4, then IPv6).
  void Members(std::vector<uint32_t>* v4, std::vector<IpAddr>* v6) const;
  // Readers of serialized sets. `dict`: the bytes of the set that a set of positions indexes
  // (nullptr when there is none: a set of positions is then DataLoss).
  // `decoded`: the dictionary's members, when the caller holds them decoded.
  static Result<SourceSet> Read(codec::Reader* r, const codec::Reader* dict = nullptr,
                                const MemberDict* decoded = nullptr);
  // Appends a serialized set's members without building a set (for counting unions).
  static Status AppendMembers(codec::Reader* r, std::vector<uint32_t>* v4, std::vector<IpAddr>* v6,
                              const codec::Reader* dict = nullptr,
                              const MemberDict* decoded = nullptr);
  // How many of `v4` and `v6` (each ascending and unique) a serialized set holds, read as it is
  // decoded: a small set tested against a large one without gathering the large one's members.
  // `decoded`: the dictionary's members, when the caller holds them decoded (a query counting
  // many sets of positions in one large total set decodes it once instead of walking its gaps
  // once per set).
  static Result<uint64_t> CountHits(codec::Reader* r, const std::vector<uint32_t>& v4,
                                    const std::vector<IpAddr>& v6,
                                    const codec::Reader* dict = nullptr,
                                    const MemberDict* decoded = nullptr);

 private:
  // IPv4 members as a sorted vector: the sources darknets see are sparse over 2^32 (a few per
  // 65,536 addresses), where a Roaring bitmap spends a heap container on each handful and a union
  // inserts containers one by one; sorted vectors are 4 bytes a member and unite in one linear
  // merge. Additions collect unsorted in add_ and are sorted in by batches (amortised).
  static constexpr size_t kMinBatch = 64;
  void Flush();
  std::vector<uint32_t> Sorted() const;  // every IPv4 member, ascending

  std::vector<uint32_t> v4_;        // sorted, unique
  std::vector<uint32_t> add_;       // added since the last Flush(), unsorted
  std::vector<IpAddr> v6_;          // sorted, unique
  std::vector<IpAddr> pending_v6_;  // added since the last Normalize()
};

// The union of serialized sets, streamed: a merge of rollup parts writes it without holding its
// members (a flood's quarter of 50 M sources was 200 MB of members, twice over while united, and
// as much again serialized). Plan walks the inputs once to count the union and size its bytes;
// Write walks them again and emits exactly the bytes SourceSet::AppendTo writes for the union.
// Inputs are sets as written (ascending): a member out of order or repeated is not counted again.
// The sorted members of a dictionary, held to write sets as positions in it, or decoded once
// to read many sets of positions in it.
struct MemberDict {
  std::vector<uint32_t> v4;
  std::vector<IpAddr> v6;
};

// A serialized set and, for a set of positions, the bytes of its dictionary and, optionally,
// that dictionary's members decoded (a merge reads every keyed set of an entry: walking the
// dictionary's gaps again for each would decode it once per port, country and ASN).
struct SetInput {
  codec::Reader set{nullptr, 0};
  codec::Reader dict{nullptr, 0};
  bool has_dict = false;
  const MemberDict* members = nullptr;  // `dict` decoded; it must be exactly that set
};

// A dictionary's members, decoded from the set whose bytes begin at `at` (a reader of a file
// holds it to read many sets of positions in that set).
struct DecodedDict {
  const uint8_t* at = nullptr;
  MemberDict members;
  // Points `in` at these members if its dictionary is this one.
  void Lend(SetInput* in) const {
    if (at && in->has_dict && in->dict.data() == at) in->members = &members;
  }
};

class SetUnion {
 public:
  // `sets`: serialized sets (each as AppendTo or AppendPositionsTo writes one, with its
  // dictionary), kept for Write. `every_members`: called after each 2^20 members of a walk (a
  // merge gives back the pages of the mapped parts it has read, which the walks would otherwise
  // keep resident). `to`: write the union as positions in this dictionary (kept; it must hold
  // every member) instead of as addresses.
  static Result<SetUnion> Plan(std::vector<SetInput> sets,
                               std::function<void()> every_members = nullptr,
                               const MemberDict* to = nullptr);
  static Result<SetUnion> Plan(std::vector<codec::Reader> sets,
                               std::function<void()> every_members = nullptr);
  uint64_t count() const { return to_ ? n_ : n_ + v6_.size(); }
  uint64_t bytes() const { return bytes_; }  // of the serialized union
  Status Write(const std::function<Status(const uint8_t*, size_t)>& sink) const;
  // The union's members, walked again (to hold a merged total set as a dictionary).
  Status Members(MemberDict* out) const;

 private:
  // Calls fn(member) for each IPv4 member of the union, ascending; the IPv6 members into `v6`.
  Status Walk(const std::function<void(uint32_t)>& fn, std::vector<IpAddr>* v6) const;
  // The value written for each member (an address, or its position in `to_`), ascending, and
  // the IPv6 members; Internal error when a member is not in `to_`.
  Status WalkValues(const std::function<void(uint64_t)>& fn, std::vector<IpAddr>* v6) const;
  std::vector<SetInput> sets_;
  std::function<void()> every_members_;
  const MemberDict* to_ = nullptr;
  uint64_t n_ = 0, gap_bytes_ = 0, bytes_ = 0;
  Status WriteRuns(const std::function<Status(const uint8_t*, size_t)>& sink) const;
  uint64_t runs_ = 0;  // written as kind 5, in this many runs (0: as gaps)
  // A small union of positions: its positions, kept to write it as a Rice code (kind 16 + k)
  // when rice_k_ ≥ 0.
  std::vector<uint64_t> small_;
  int rice_k_ = -1;
  std::vector<uint8_t> table_;  // kind 2's (or 4's) skip table
  std::vector<IpAddr> v6_;      // sorted, unique
};

// Distinct members of the gathered lists (which it reorders).
uint64_t CountDistinct(std::vector<uint32_t>* v4, std::vector<IpAddr>* v6);
// The same when `v4` is made of sorted runs of unique members (sets appended one after another,
// run i starting at run_starts[i]): counted by walking the runs together, without sorting.
uint64_t CountDistinctRuns(std::vector<uint32_t>* v4, const std::vector<size_t>& run_starts,
                           std::vector<IpAddr>* v6);

}  // namespace teiten
