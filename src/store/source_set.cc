#include "store/source_set.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <roaring/roaring.hh>

namespace teiten {

namespace {

// Sorts and dedups `add` and unites it with the sorted unique `into`.
void UniteSorted(std::vector<uint32_t>* into, std::vector<uint32_t>* add) {
  std::sort(add->begin(), add->end());
  add->erase(std::unique(add->begin(), add->end()), add->end());
  if (into->empty()) {
    into->swap(*add);
    add->clear();
    return;
  }
  std::vector<uint32_t> out;
  out.reserve(into->size() + add->size());
  std::set_union(into->begin(), into->end(), add->begin(), add->end(), std::back_inserter(out));
  into->swap(out);
  add->clear();
}

}  // namespace

void SourceSet::Flush() {
  if (!add_.empty()) UniteSorted(&v4_, &add_);
}

std::vector<uint32_t> SourceSet::Sorted() const {
  if (add_.empty()) return v4_;
  std::vector<uint32_t> out = v4_, add = add_;
  UniteSorted(&out, &add);
  return out;
}

void SourceSet::Normalize() {
  Flush();
  add_.shrink_to_fit();
  if (!pending_v6_.empty()) {
    v6_.insert(v6_.end(), pending_v6_.begin(), pending_v6_.end());
    pending_v6_.clear();
    std::sort(v6_.begin(), v6_.end());
    v6_.erase(std::unique(v6_.begin(), v6_.end()), v6_.end());
  }
}

void SourceSet::Merge(const SourceSet& o) {
  if (o.v4_.size() + o.add_.size() <= kMinBatch) {
    for (uint32_t a : o.v4_) AddV4(a);
    for (uint32_t a : o.add_) AddV4(a);
  } else {
    add_.insert(add_.end(), o.add_.begin(), o.add_.end());
    Flush();
    std::vector<uint32_t> out;
    out.reserve(v4_.size() + o.v4_.size());
    std::set_union(v4_.begin(), v4_.end(), o.v4_.begin(), o.v4_.end(), std::back_inserter(out));
    v4_.swap(out);
  }
  if (!o.v6_.empty() || !o.pending_v6_.empty()) {
    pending_v6_.insert(pending_v6_.end(), o.v6_.begin(), o.v6_.end());
    pending_v6_.insert(pending_v6_.end(), o.pending_v6_.begin(), o.pending_v6_.end());
    Normalize();
  }
}

uint64_t SourceSet::Count() const {
  uint64_t n = add_.empty() ? v4_.size() : Sorted().size();
  if (pending_v6_.empty()) return n + v6_.size();
  std::vector<IpAddr> all(v6_);
  all.insert(all.end(), pending_v6_.begin(), pending_v6_.end());
  std::sort(all.begin(), all.end());
  return n + static_cast<uint64_t>(std::unique(all.begin(), all.end()) - all.begin());
}

uint64_t SourceSet::UnionCount(const std::vector<SourceSet>& sets) {
  // Gather every member, radix-sort, count distinct: linear in the members.
  std::vector<uint32_t> v4;
  std::vector<IpAddr> v6;
  for (const SourceSet& s : sets) {
    v4.insert(v4.end(), s.v4_.begin(), s.v4_.end());
    v4.insert(v4.end(), s.add_.begin(), s.add_.end());
    v6.insert(v6.end(), s.v6_.begin(), s.v6_.end());
    v6.insert(v6.end(), s.pending_v6_.begin(), s.pending_v6_.end());
  }
  return CountDistinct(&v4, &v6);
}

bool SourceSet::Contains(const IpAddr& a) const {
  if (a.is_v4()) {
    return std::binary_search(v4_.begin(), v4_.end(), a.v4()) ||
           std::find(add_.begin(), add_.end(), a.v4()) != add_.end();
  }
  return std::binary_search(v6_.begin(), v6_.end(), a) ||
         std::find(pending_v6_.begin(), pending_v6_.end(), a) != pending_v6_.end();
}

void SourceSet::AppendTo(std::vector<uint8_t>* out) const {
  // Ascending addresses as varint gaps: for the sparse sets darknets see (a few thousand to a few
  // million sources out of 2^32) this is about half a portable Roaring bitmap, and it reads back
  // without an allocation per container.
  codec::PutU8(out, 0);
  std::vector<uint32_t> copy;
  if (!add_.empty()) copy = Sorted();
  const std::vector<uint32_t>& sorted = add_.empty() ? v4_ : copy;
  codec::PutVarint(out, sorted.size());
  uint32_t prev = 0;
  for (uint32_t a : sorted) {
    codec::PutVarint(out, a - prev);
    prev = a;
  }
  codec::PutVarint(out, v6_.size());
  for (const IpAddr& a : v6_) codec::PutBytes(out, a.bytes.data(), 16);
}

Status SourceSet::AppendMembers(codec::Reader* r, std::vector<uint32_t>* v4,
                                std::vector<IpAddr>* v6) {
  uint8_t tag = r->Fixed<uint8_t>();
  if (tag == 0) {
    uint64_t n = r->Varint();
    if (r->failed() || n > r->remaining()) return DataLoss("source set: bad length");
    uint64_t a = 0;
    size_t at = v4->size();
    v4->resize(at + n);
    for (uint64_t i = 0; i < n; ++i) {
      a += r->Varint();
      if (a > UINT32_MAX) return DataLoss("source set: address out of range");
      (*v4)[at + i] = static_cast<uint32_t>(a);
    }
    if (r->failed()) return DataLoss("source set cut short");
  } else if (tag == 1) {
    uint32_t n = r->Fixed<uint32_t>();
    const uint8_t* p = r->Bytes(n);
    if (r->failed()) return DataLoss("source set cut short");
    try {
      Roaring bm = Roaring::readSafe(reinterpret_cast<const char*>(p), n);
      size_t at = v4->size();
      v4->resize(at + bm.cardinality());
      bm.toUint32Array(v4->data() + at);
    } catch (const std::exception& e) {
      return DataLoss(std::string("source set bitmap: ") + e.what());
    }
  } else {
    return DataLoss("source set: unknown kind " + std::to_string(tag));
  }
  uint64_t m = r->Varint();
  if (r->failed() || m > r->remaining() / 16) return DataLoss("source set IPv6 list cut short");
  for (uint64_t i = 0; i < m; ++i) {
    const uint8_t* b = r->Bytes(16);
    if (!b) return DataLoss("source set IPv6 list cut short");
    IpAddr a;
    std::memcpy(a.bytes.data(), b, 16);
    v6->push_back(a);
  }
  return OkStatus();
}

Result<SourceSet> SourceSet::Read(codec::Reader* r) {
  SourceSet s;
  RETURN_IF_ERROR(AppendMembers(r, &s.v4_, &s.v6_));
  // Ascending by construction; a hostile file's repeats (zero gaps) are dropped.
  if (!std::is_sorted(s.v4_.begin(), s.v4_.end())) std::sort(s.v4_.begin(), s.v4_.end());
  s.v4_.erase(std::unique(s.v4_.begin(), s.v4_.end()), s.v4_.end());
  std::sort(s.v6_.begin(), s.v6_.end());
  s.v6_.erase(std::unique(s.v6_.begin(), s.v6_.end()), s.v6_.end());
  return s;
}

uint64_t CountDistinct(std::vector<uint32_t>* v4, std::vector<IpAddr>* v6) {
  // Small unions (a port's sources on one day) sort in place: the radix sort's two 512 KiB
  // count tables cost more to clear than the sort, and a report asks for thousands of these.
  if (v4->size() < (size_t{1} << 15)) {
    std::sort(v4->begin(), v4->end());
    std::sort(v6->begin(), v6->end());
    return static_cast<uint64_t>(std::unique(v4->begin(), v4->end()) - v4->begin()) +
           static_cast<uint64_t>(std::unique(v6->begin(), v6->end()) - v6->begin());
  }
  std::vector<uint32_t> tmp(v4->size());
  for (int shift = 0; shift < 32; shift += 16) {
    std::vector<size_t> count(65537, 0);
    for (uint32_t x : *v4) count[((x >> shift) & 0xFFFF) + 1]++;
    for (size_t i = 1; i < count.size(); ++i) count[i] += count[i - 1];
    for (uint32_t x : *v4) tmp[count[(x >> shift) & 0xFFFF]++] = x;
    v4->swap(tmp);
  }
  uint64_t n = 0;
  for (size_t i = 0; i < v4->size(); ++i) n += (i == 0 || (*v4)[i] != (*v4)[i - 1]) ? 1 : 0;
  std::sort(v6->begin(), v6->end());
  return n + static_cast<uint64_t>(std::unique(v6->begin(), v6->end()) - v6->begin());
}

uint64_t CountDistinctRuns(std::vector<uint32_t>* v4, const std::vector<size_t>& run_starts,
                           std::vector<IpAddr>* v6) {
  const size_t k = run_starts.size();
  if (k > 16) return CountDistinct(v4, v6);
  // Each run is a set's members, ascending and unique: walk the runs' heads together and count
  // each value once. No sort, no count tables: linear in the members, k compares each.
  std::vector<size_t> at(run_starts), end(k);
  for (size_t i = 0; i < k; ++i) end[i] = i + 1 < k ? run_starts[i + 1] : v4->size();
  const uint32_t* m = v4->data();
  uint64_t n = 0;
  while (true) {
    bool any = false;
    uint32_t low = 0;
    for (size_t i = 0; i < k; ++i) {
      if (at[i] < end[i] && (!any || m[at[i]] < low)) {
        low = m[at[i]];
        any = true;
      }
    }
    if (!any) break;
    ++n;
    for (size_t i = 0; i < k; ++i) {
      if (at[i] < end[i] && m[at[i]] == low) ++at[i];
    }
  }
  std::sort(v6->begin(), v6->end());
  return n + static_cast<uint64_t>(std::unique(v6->begin(), v6->end()) - v6->begin());
}

}  // namespace teiten
