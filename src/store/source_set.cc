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
  // without an allocation per container. A large set (kind 2) also carries a table of every
  // kSkipStride-th member and where the gaps after it begin, so that a few addresses are looked
  // up in it without decoding the rest (a quarter's set against the members of today's commits).
  std::vector<uint32_t> copy;
  if (!add_.empty()) copy = Sorted();
  const std::vector<uint32_t>& sorted = add_.empty() ? v4_ : copy;
  if (sorted.size() < kSkipFrom) {
    codec::PutU8(out, 0);
    codec::PutVarint(out, sorted.size());
    uint32_t prev = 0;
    for (uint32_t a : sorted) {
      codec::PutVarint(out, a - prev);
      prev = a;
    }
  } else {
    std::vector<uint8_t> gaps, table;
    gaps.reserve(sorted.size() * 3);
    table.reserve((sorted.size() / kSkipStride + 1) * 8);
    uint32_t prev = 0;
    for (size_t i = 0; i < sorted.size(); ++i) {
      codec::PutVarint(&gaps, sorted[i] - prev);
      prev = sorted[i];
      if (i % kSkipStride == 0) {
        codec::PutFixed<uint32_t>(&table, sorted[i]);
        codec::PutFixed<uint32_t>(&table, static_cast<uint32_t>(gaps.size()));
      }
    }
    codec::PutU8(out, 2);
    codec::PutVarint(out, sorted.size());
    codec::PutVarint(out, kSkipStride);
    codec::PutVarint(out, gaps.size());
    codec::PutBytes(out, table.data(), table.size());
    codec::PutBytes(out, gaps.data(), gaps.size());
  }
  codec::PutVarint(out, v6_.size());
  for (const IpAddr& a : v6_) codec::PutBytes(out, a.bytes.data(), 16);
}

namespace {

// The IPv4 part of a serialized set, located: kinds 0 and 2 as a gap stream (and kind 2's skip
// table), kind 1 as a Roaring bitmap. `r` is left at the IPv6 list.
struct V4Part {
  uint8_t kind = 0;
  uint64_t n = 0;
  codec::Reader gaps{nullptr, 0};
  const uint8_t* table = nullptr;  // kind 2: k × { u32 address, u32 offset into the gaps }
  uint64_t stride = 0, k = 0;
  const uint8_t* bitmap = nullptr;  // kind 1
  uint32_t bitmap_bytes = 0;
};

Result<V4Part> ReadV4Part(codec::Reader* r) {
  V4Part p;
  p.kind = r->Fixed<uint8_t>();
  if (p.kind == 0) {
    p.n = r->Varint();
    if (r->failed() || p.n > r->remaining()) return DataLoss("source set: bad length");
    // The gaps run up to the IPv6 list, whose start is only known once they are decoded.
    p.gaps = *r;
  } else if (p.kind == 1) {
    p.bitmap_bytes = r->Fixed<uint32_t>();
    p.bitmap = r->Bytes(p.bitmap_bytes);
    if (r->failed()) return DataLoss("source set cut short");
  } else if (p.kind == 2) {
    p.n = r->Varint();
    p.stride = r->Varint();
    uint64_t gap_bytes = r->Varint();
    if (r->failed() || p.n > r->remaining() || p.stride == 0 || p.stride > (1u << 20) ||
        gap_bytes > r->remaining()) {
      return DataLoss("source set: bad length");
    }
    p.k = (p.n + p.stride - 1) / p.stride;
    if (p.k > r->remaining() / 8) return DataLoss("source set: skip table cut short");
    p.table = r->Bytes(p.k * 8);
    const uint8_t* g = r->Bytes(gap_bytes);
    if (r->failed()) return DataLoss("source set cut short");
    p.gaps = codec::Reader(g, gap_bytes);
  } else {
    return DataLoss("source set: unknown kind " + std::to_string(p.kind));
  }
  return p;
}

// A kind-1 part's members (a portable Roaring bitmap), appended to `out`.
Status AppendBitmap(const V4Part& p, std::vector<uint32_t>* out) {
  try {
    Roaring bm = Roaring::readSafe(reinterpret_cast<const char*>(p.bitmap), p.bitmap_bytes);
    size_t at = out->size();
    out->resize(at + bm.cardinality());
    bm.toUint32Array(out->data() + at);
  } catch (const std::exception& e) {
    return DataLoss(std::string("source set bitmap: ") + e.what());
  }
  return OkStatus();
}

// Calls fn(address) for each IPv4 member of a gap stream, in order; leaves `g` after the last.
template <typename Fn>
Status WalkGaps(codec::Reader* g, uint64_t n, Fn fn) {
  uint64_t a = 0;
  for (uint64_t i = 0; i < n; ++i) {
    a += g->Varint();
    if (a > UINT32_MAX) return DataLoss("source set: address out of range");
    fn(static_cast<uint32_t>(a));
  }
  if (g->failed()) return DataLoss("source set cut short");
  return OkStatus();
}

// Reads the IPv6 list that ends a set: fn(address) for each.
template <typename Fn>
Status WalkV6(codec::Reader* r, Fn fn) {
  uint64_t m = r->Varint();
  if (r->failed() || m > r->remaining() / 16) return DataLoss("source set IPv6 list cut short");
  for (uint64_t i = 0; i < m; ++i) {
    const uint8_t* b = r->Bytes(16);
    if (!b) return DataLoss("source set IPv6 list cut short");
    IpAddr a;
    std::memcpy(a.bytes.data(), b, 16);
    fn(a);
  }
  return OkStatus();
}

}  // namespace

Status SourceSet::AppendMembers(codec::Reader* r, std::vector<uint32_t>* v4,
                                std::vector<IpAddr>* v6) {
  ASSIGN_OR_RETURN(V4Part p, ReadV4Part(r));
  if (p.kind == 1) {
    RETURN_IF_ERROR(AppendBitmap(p, v4));
  } else {
    size_t at = v4->size();
    v4->resize(at + p.n);
    uint32_t* out = v4->data() + at;
    RETURN_IF_ERROR(WalkGaps(&p.gaps, p.n, [&](uint32_t a) { *out++ = a; }));
    if (p.kind == 0) *r = p.gaps;
  }
  return WalkV6(r, [&](const IpAddr& a) { v6->push_back(a); });
}

Result<uint64_t> SourceSet::CountHits(codec::Reader* r, const std::vector<uint32_t>& v4,
                                      const std::vector<IpAddr>& v6) {
  uint64_t hits = 0;
  ASSIGN_OR_RETURN(V4Part p, ReadV4Part(r));
  if (p.kind == 1) {
    try {
      Roaring bm = Roaring::readSafe(reinterpret_cast<const char*>(p.bitmap), p.bitmap_bytes);
      for (uint32_t x : v4) hits += bm.contains(x) ? 1 : 0;
    } catch (const std::exception& e) {
      return DataLoss(std::string("source set bitmap: ") + e.what());
    }
  } else if (p.kind == 2 && v4.size() * p.stride * 2 < p.n) {
    // A few addresses: each found through the skip table, decoding at most a stride of gaps.
    auto entry = [&](uint64_t j, uint32_t* addr, uint32_t* off) {
      std::memcpy(addr, p.table + j * 8, 4);
      std::memcpy(off, p.table + j * 8 + 4, 4);
    };
    uint64_t from = 0;  // the addresses ascend, so each search starts where the last one ended
    for (uint32_t x : v4) {
      uint64_t lo = from, hi = p.k;
      while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        uint32_t addr, off;
        entry(mid, &addr, &off);
        if (addr <= x) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      if (lo == 0) continue;  // below the smallest member
      from = lo - 1;
      uint32_t addr, off;
      entry(from, &addr, &off);
      if (addr == x) {
        ++hits;
        continue;
      }
      if (off > p.gaps.remaining()) return DataLoss("source set: skip table offset out of range");
      codec::Reader g(p.gaps.data() + off, p.gaps.remaining() - off);
      uint64_t a = addr;
      uint64_t last = std::min(p.n, (from + 1) * p.stride);
      for (uint64_t i = from * p.stride + 1; i < last && a < x; ++i) a += g.Varint();
      if (g.failed()) return DataLoss("source set cut short");
      hits += a == x ? 1 : 0;
    }
  } else {
    // Every gap is decoded, and the walk over `v4` goes along. A member matched once cannot match
    // again, so a hostile repeat does not count twice.
    size_t q = 0;
    const size_t qn = v4.size();
    RETURN_IF_ERROR(WalkGaps(&p.gaps, p.n, [&](uint32_t a) {
      while (q < qn && v4[q] < a) ++q;
      if (q < qn && v4[q] == a) {
        ++hits;
        ++q;
      }
    }));
    if (p.kind == 0) *r = p.gaps;
  }
  IpAddr prev;
  bool any = false;
  RETURN_IF_ERROR(WalkV6(r, [&](const IpAddr& a) {
    if (!(any && a == prev)) hits += std::binary_search(v6.begin(), v6.end(), a) ? 1 : 0;
    prev = a;
    any = true;
  }));
  return hits;
}

namespace {

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// One input of a SetUnion: its IPv4 members in order, then its IPv6 list.
class SetCursor {
 public:
  Status Init(codec::Reader r) {
    ASSIGN_OR_RETURN(p_, ReadV4Part(&r));
    rest_ = r;
    if (p_.kind == 1) {
      RETURN_IF_ERROR(AppendBitmap(p_, &vals_));
      p_.n = vals_.size();
    }
    return Advance();
  }
  bool done() const { return done_; }
  uint32_t head() const { return head_; }
  // Moves past every member ≤ `x` (repeats and members out of order included).
  Status Skip(uint32_t x) {
    while (!done_ && head_ <= x) RETURN_IF_ERROR(Advance());
    return OkStatus();
  }
  // The IPv6 list, once every IPv4 member is passed.
  Status AppendV6(std::vector<IpAddr>* v6) {
    codec::Reader r = p_.kind == 0 ? p_.gaps : rest_;
    return WalkV6(&r, [&](const IpAddr& a) { v6->push_back(a); });
  }

 private:
  Status Advance() {
    if (i_ >= p_.n) {
      done_ = true;
      return OkStatus();
    }
    if (p_.kind == 1) {
      head_ = vals_[i_++];
      return OkStatus();
    }
    a_ += p_.gaps.Varint();
    if (p_.gaps.failed()) return DataLoss("source set cut short");
    if (a_ > UINT32_MAX) return DataLoss("source set: address out of range");
    head_ = static_cast<uint32_t>(a_);
    ++i_;
    return OkStatus();
  }
  V4Part p_;
  codec::Reader rest_{nullptr, 0};
  std::vector<uint32_t> vals_;
  uint64_t i_ = 0, a_ = 0;
  uint32_t head_ = 0;
  bool done_ = false;
};

}  // namespace

Status SetUnion::Walk(const std::function<void(uint32_t)>& fn, std::vector<IpAddr>* v6) const {
  std::vector<SetCursor> cur(sets_.size());
  for (size_t i = 0; i < sets_.size(); ++i) RETURN_IF_ERROR(cur[i].Init(sets_[i]));
  uint64_t emitted = 0;
  auto emit = [&](uint32_t a) {
    fn(a);
    if ((++emitted & ((uint64_t{1} << 20) - 1)) == 0 && every_members_) every_members_();
  };
  if (cur.size() <= 4) {
    // A few inputs (a sensor-day's tier): the smallest head by a scan.
    while (true) {
      bool any = false;
      uint32_t low = 0;
      for (const SetCursor& c : cur) {
        if (!c.done() && (!any || c.head() < low)) {
          low = c.head();
          any = true;
        }
      }
      if (!any) break;
      emit(low);
      for (SetCursor& c : cur) RETURN_IF_ERROR(c.Skip(low));
    }
  } else {
    // Many (the spills of a flood's input, a hundred for a month): a heap of heads, so that a
    // member costs log k, not k.
    using Head = std::pair<uint32_t, uint32_t>;  // (head, cursor)
    std::vector<Head> heap;
    for (size_t i = 0; i < cur.size(); ++i) {
      if (!cur[i].done()) heap.push_back({cur[i].head(), static_cast<uint32_t>(i)});
    }
    std::make_heap(heap.begin(), heap.end(), std::greater<>());
    bool any = false;
    uint32_t last = 0;
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>());
      auto [low, i] = heap.back();
      heap.pop_back();
      // Every head left is ≥ low, and a cursor moves past what it emitted: a repeat of `last`
      // is another input's copy of the same member.
      if (!any || low != last) emit(low);
      any = true;
      last = low;
      RETURN_IF_ERROR(cur[i].Skip(low));
      if (!cur[i].done()) {
        heap.push_back({cur[i].head(), i});
        std::push_heap(heap.begin(), heap.end(), std::greater<>());
      }
    }
  }
  if (v6) {
    for (SetCursor& c : cur) RETURN_IF_ERROR(c.AppendV6(v6));
  }
  return OkStatus();
}

Result<SetUnion> SetUnion::Plan(std::vector<codec::Reader> sets,
                                std::function<void()> every_members) {
  SetUnion u;
  u.sets_ = std::move(sets);
  u.every_members_ = std::move(every_members);
  uint32_t prev = 0;
  RETURN_IF_ERROR(u.Walk(
      [&](uint32_t a) {
        u.gap_bytes_ += VarintSize(a - prev);
        prev = a;
        if (u.n_ % SourceSet::kSkipStride == 0) {
          codec::PutFixed<uint32_t>(&u.table_, a);
          codec::PutFixed<uint32_t>(&u.table_, static_cast<uint32_t>(u.gap_bytes_));
        }
        ++u.n_;
      },
      &u.v6_));
  std::sort(u.v6_.begin(), u.v6_.end());
  u.v6_.erase(std::unique(u.v6_.begin(), u.v6_.end()), u.v6_.end());
  u.bytes_ = 1 + VarintSize(u.n_) + u.gap_bytes_ + VarintSize(u.v6_.size()) + 16 * u.v6_.size();
  if (u.n_ >= SourceSet::kSkipFrom) {
    u.bytes_ += VarintSize(SourceSet::kSkipStride) + VarintSize(u.gap_bytes_) + u.table_.size();
  } else {
    u.table_.clear();
  }
  return u;
}

Status SetUnion::Write(const std::function<Status(const uint8_t*, size_t)>& sink) const {
  std::vector<uint8_t> buf;
  const bool skip = n_ >= SourceSet::kSkipFrom;
  codec::PutU8(&buf, skip ? 2 : 0);
  codec::PutVarint(&buf, n_);
  if (skip) {
    codec::PutVarint(&buf, SourceSet::kSkipStride);
    codec::PutVarint(&buf, gap_bytes_);
    codec::PutBytes(&buf, table_.data(), table_.size());
  }
  uint32_t prev = 0;
  Status st;
  RETURN_IF_ERROR(Walk(
      [&](uint32_t a) {
        codec::PutVarint(&buf, a - prev);
        prev = a;
        if (buf.size() >= (size_t{1} << 16) && st.ok()) {
          st = sink(buf.data(), buf.size());
          buf.clear();
        }
      },
      nullptr));
  RETURN_IF_ERROR(st);
  codec::PutVarint(&buf, v6_.size());
  for (const IpAddr& a : v6_) codec::PutBytes(&buf, a.bytes.data(), 16);
  return sink(buf.data(), buf.size());
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
