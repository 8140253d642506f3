#include "store/source_set.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <roaring/roaring.hh>

#include "store/bits.h"

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

void SourceSet::Members(std::vector<uint32_t>* v4, std::vector<IpAddr>* v6) const {
  *v4 = Sorted();
  *v6 = v6_;
  if (!pending_v6_.empty()) {
    v6->insert(v6->end(), pending_v6_.begin(), pending_v6_.end());
    std::sort(v6->begin(), v6->end());
    v6->erase(std::unique(v6->begin(), v6->end()), v6->end());
  }
}

namespace {

// Ascending positions as runs of consecutive values (kind 5): counts them and their bytes as
// written (each run a varint gap from the previous run's end and a varint length − 1), and
// writes them to `out` when it is set.
struct RunCount {
  std::vector<uint8_t>* out = nullptr;
  uint64_t runs = 0, bytes = 0, end = 0, start = 0, len = 0;
  void Add(uint64_t x) {
    if (len > 0 && x == start + len) {
      ++len;
      return;
    }
    Close();
    start = x;
    len = 1;
  }
  void Close() {
    if (len == 0) return;
    ++runs;
    bytes += codec::VarintSize(start - end) + codec::VarintSize(len - 1);
    if (out) {
      codec::PutVarint(out, start - end);
      codec::PutVarint(out, len - 1);
    }
    end = start + len;
    len = 0;
  }
};

// Ascending positions as a Rice code (kinds 16 to 47, rollup format 11): the kind byte is 16 + k,
// then one code per position, bits in order from each byte's lowest, the last byte padded with
// zero bits. The first code holds the first position, each later one the gap to the position
// before less one (positions ascend strictly, so a gap is at least one). A value v is written as
// q = v >> k in unary — q zero bits, then a one — and v's k low bits; a q of 15 or more as 15
// zero bits and a one, then q − 14 in Elias gamma (L zero bits, a one, the L bits below its top
// one), then the k low bits. The set has no count: it ends where its blob does, and a code
// cannot begin in the padding (which holds no one bit).
namespace rice {

constexpr int kKindBase = 16;
constexpr int kMaxK = bits::rice::kMaxK;

// The values coded for ascending positions: the first, then each gap less one.
template <typename Fn>
void ForEachValue(const std::vector<uint64_t>& positions, Fn fn) {
  for (size_t i = 0; i < positions.size(); ++i) {
    fn(i == 0 ? positions[0] : positions[i] - positions[i - 1] - 1);
  }
}

// The bytes of the code with parameter k (the kind byte not included).
uint64_t Bytes(const std::vector<uint64_t>& positions, int k) {
  uint64_t n = 0;
  ForEachValue(positions, [&](uint64_t v) { n += bits::rice::CodeBits(v, k); });
  return (n + 7) / 8;
}

// The parameter that codes `positions` in the fewest bytes, and those bytes: near the logarithm
// of their mean gap (a Rice code's best parameter), the neighbours tried.
int BestK(const std::vector<uint64_t>& positions, uint64_t* bytes) {
  if (positions.empty()) {
    *bytes = 0;
    return 0;
  }
  // Only strictly ascending positions have a code (a gap less one below zero has none).
  for (size_t i = 1; i < positions.size(); ++i) {
    if (positions[i] <= positions[i - 1]) {
      *bytes = UINT64_MAX;
      return 0;
    }
  }
  if (positions.back() > UINT32_MAX) {
    *bytes = UINT64_MAX;
    return 0;
  }
  // Every k up to the width of the largest value (past it each code only grows): escapes make
  // the bytes as a function of k not convex, so a search from the mean gap can stop short. A
  // set here has fewer than kSkipFrom positions, and most a few.
  uint64_t largest = 0;
  ForEachValue(positions, [&](uint64_t v) { largest = std::max(largest, v); });
  const int top = largest == 0 ? 0 : std::min(kMaxK, 64 - __builtin_clzll(largest));
  int best = 0;
  *bytes = UINT64_MAX;
  for (int k = 0; k <= top; ++k) {
    const uint64_t b = Bytes(positions, k);
    if (b < *bytes) {
      *bytes = b;
      best = k;
    }
  }
  return best;
}

// Appends the kind byte and the code of `positions` with parameter k.
void Write(const std::vector<uint64_t>& positions, int k, std::vector<uint8_t>* out) {
  codec::PutU8(out, static_cast<uint8_t>(kKindBase + k));
  bits::Writer w(out);
  ForEachValue(positions, [&](uint64_t v) { bits::rice::Put(&w, v, k); });
  w.Flush();
}

// Decodes a code with parameter k into the varint gaps of kind 3 (the first from 0), which the
// readers of positions walk; `n`: the positions.
Status Decode(const uint8_t* b, size_t len, int k, std::vector<uint8_t>* gaps, uint64_t* n) {
  bits::Reader r(b, len, "source set");
  uint64_t pos = 0;
  *n = 0;
  for (;;) {
    ASSIGN_OR_RETURN(bool end, r.AtEnd());
    if (end) return OkStatus();
    ASSIGN_OR_RETURN(uint64_t v, bits::rice::Get(&r, k, UINT32_MAX));
    const uint64_t gap = *n == 0 ? v : v + 1;
    pos += gap;
    if (pos > UINT32_MAX) return DataLoss("source set: position out of range");
    codec::PutVarint(gaps, gap);
    ++*n;
  }
}

}  // namespace rice

}  // namespace

void SourceSet::AppendPositions(const std::vector<uint64_t>& positions, std::vector<uint8_t>* out) {
  const uint64_t n = positions.size();
  RunCount runs;
  uint64_t gap_bytes = 0, prev_pos = 0;
  for (uint64_t x : positions) {
    runs.Add(x);
    gap_bytes += codec::VarintSize(x - prev_pos);
    prev_pos = x;
  }
  runs.Close();
  // Bytes after the kind byte: a small set of gaps (kind 6) writes no count.
  const uint64_t as_gaps = n < kSkipFrom
                               ? gap_bytes
                               : codec::VarintSize(n) + codec::VarintSize(kSkipStride) +
                                     codec::VarintSize(gap_bytes) +
                                     8 * ((n + kSkipStride - 1) / kSkipStride) + gap_bytes;
  // A small set as a Rice code when that is smaller than its gaps and its runs.
  uint64_t rice_bytes = UINT64_MAX;
  const int rice_k = n > 0 && n < kSkipFrom ? rice::BestK(positions, &rice_bytes) : 0;
  const uint64_t as_runs = codec::VarintSize(n) + codec::VarintSize(runs.runs) + runs.bytes;
  if (rice_bytes < as_gaps && rice_bytes < as_runs) {
    rice::Write(positions, rice_k, out);
    return;
  }
  if (n > 0 && as_runs < as_gaps) {
    codec::PutU8(out, 5);
    codec::PutVarint(out, n);
    codec::PutVarint(out, runs.runs);
    RunCount write{out};
    for (uint64_t x : positions) write.Add(x);
    write.Close();
    return;
  }
  if (n < kSkipFrom) {
    codec::PutU8(out, 6);
    uint64_t prev = 0;
    for (uint64_t x : positions) {
      codec::PutVarint(out, x - prev);
      prev = x;
    }
    return;
  }
  std::vector<uint8_t> gaps, table;
  uint64_t prev = 0;
  for (size_t i = 0; i < n; ++i) {
    codec::PutVarint(&gaps, positions[i] - prev);
    prev = positions[i];
    if (i % kSkipStride == 0) {
      codec::PutFixed<uint32_t>(&table, static_cast<uint32_t>(positions[i]));
      codec::PutFixed<uint32_t>(&table, static_cast<uint32_t>(gaps.size()));
    }
  }
  codec::PutU8(out, 4);
  codec::PutVarint(out, n);
  codec::PutVarint(out, kSkipStride);
  codec::PutVarint(out, gaps.size());
  codec::PutBytes(out, table.data(), table.size());
  codec::PutBytes(out, gaps.data(), gaps.size());
}

namespace {

// The first index from `from` on whose value is not below `x` in ascending `d` (d.size() if
// none): a search that widens its steps from `from`, so a set's walk along its dictionary costs
// the logarithm of each gap, not of the dictionary.
template <typename T>
size_t GallopTo(const std::vector<T>& d, size_t from, const T& x) {
  const size_t n = d.size();
  if (from >= n || !(d[from] < x)) return from;
  size_t lo = from, step = 1;  // d[lo] < x
  while (lo + step < n && d[lo + step] < x) {
    lo += step;
    step <<= 1;
  }
  const size_t hi = std::min(n, lo + step);  // the answer is in (lo, hi]
  return static_cast<size_t>(std::lower_bound(d.begin() + static_cast<ptrdiff_t>(lo) + 1,
                                              d.begin() + static_cast<ptrdiff_t>(hi), x) -
                             d.begin());
}

}  // namespace

Status SourceSet::AppendPositionsTo(const std::vector<uint32_t>& dict4,
                                    const std::vector<IpAddr>& dict6,
                                    std::vector<uint8_t>* out) const {
  // A normalized set (as a rollup writes them) is read in place; otherwise its members sorted.
  std::vector<uint32_t> sorted4;
  std::vector<IpAddr> sorted6;
  const std::vector<uint32_t>* v4 = &v4_;
  const std::vector<IpAddr>* v6 = &v6_;
  if (!add_.empty() || !pending_v6_.empty()) {
    Members(&sorted4, &sorted6);
    v4 = &sorted4;
    v6 = &sorted6;
  }
  std::vector<uint64_t> positions;
  positions.reserve(v4->size() + v6->size());
  size_t at = 0;
  for (uint32_t a : *v4) {
    at = GallopTo(dict4, at, a);
    if (at == dict4.size() || dict4[at] != a) {
      return Internal("a set's member is not in its dictionary");
    }
    positions.push_back(at);
  }
  size_t at6 = 0;
  for (const IpAddr& a : *v6) {
    at6 = GallopTo(dict6, at6, a);
    if (at6 == dict6.size() || dict6[at6] != a) {
      return Internal("a set's member is not in its dictionary");
    }
    positions.push_back(dict4.size() + at6);
  }
  AppendPositions(positions, out);
  return OkStatus();
}

namespace {

// The IPv4 part of a serialized set, located: kinds 0 and 2 as a gap stream (and kind 2's skip
// table), kind 1 as a Roaring bitmap. `r` is left at the IPv6 list.
struct V4Part {
  uint8_t kind = 0;
  bool positions = false;  // kinds 3, 4 and 5: values are positions in a dictionary
  bool runs = false;       // kind 5: `gaps` holds `r` runs (gap, length − 1), not gaps
  uint64_t n = 0, r = 0;
  codec::Reader gaps{nullptr, 0};
  const uint8_t* table = nullptr;  // kind 2: k × { u32 address, u32 offset into the gaps }
  uint64_t stride = 0, k = 0;
  const uint8_t* bitmap = nullptr;  // kind 1
  uint32_t bitmap_bytes = 0;
  // Kinds 16 to 47: the Rice code decoded into the varint gaps `gaps` reads (shared, so that a
  // copy of the part reads the same bytes).
  std::shared_ptr<std::vector<uint8_t>> decoded;
};

Result<V4Part> ReadV4Part(codec::Reader* r) {
  V4Part p;
  p.kind = r->Fixed<uint8_t>();
  if (p.kind == 3 || p.kind == 4) {  // positions, laid out as kinds 0 and 2
    p.positions = true;
    p.kind = p.kind == 3 ? 0 : 2;
  }
  if (p.kind == 6) {
    // Positions as varint gaps (the first from 0), as kind 3 but without the count: the set
    // ends with the blob that holds it, so its count is the bytes that end a varint.
    p.positions = true;
    p.kind = 0;
    const uint8_t* b = r->data();
    const uint64_t len = r->remaining();
    if (len > 0 && (b[len - 1] & 0x80)) return DataLoss("source set cut short");
    for (uint64_t i = 0; i < len; ++i) p.n += b[i] < 0x80;
    p.gaps = *r;
    return p;
  }
  if (p.kind >= rice::kKindBase && p.kind <= rice::kKindBase + rice::kMaxK) {
    // Positions as a Rice code, to the end of the blob that holds the set (as kind 6).
    p.positions = true;
    p.decoded = std::make_shared<std::vector<uint8_t>>();
    RETURN_IF_ERROR(
        rice::Decode(r->data(), r->remaining(), p.kind - rice::kKindBase, p.decoded.get(), &p.n));
    p.kind = 0;
    p.gaps = codec::Reader(p.decoded->data(), p.decoded->size());
    return p;
  }
  if (p.kind == 5) {  // positions as runs
    p.positions = true;
    p.runs = true;
    p.n = r->Varint();
    p.r = r->Varint();
    // Each run takes two bytes at least and holds one member at least.
    if (r->failed() || p.r > r->remaining() / 2 || p.r > p.n || (p.n > 0 && p.r == 0) ||
        p.n > uint64_t{UINT32_MAX} + 1) {
      return DataLoss("source set: bad length");
    }
    p.gaps = *r;
    return p;
  }
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

// Reads the next run of a kind-5 set, which follows `seen` members and the previous run's `*end`
// (advanced past this one): its first position and length, checked to fit the set's count and
// 32 bits.
Status ReadRun(V4Part* p, uint64_t seen, uint64_t* end, uint64_t* start, uint64_t* len) {
  const uint64_t gap = p->gaps.Varint();
  *len = p->gaps.Varint() + 1;
  if (p->gaps.failed()) return DataLoss("source set cut short");
  if (gap > UINT32_MAX || *len > p->n - seen || *end + gap + *len - 1 > UINT32_MAX) {
    return DataLoss("source set: a run out of range");
  }
  *start = *end + gap;
  *end = *start + *len;
  return OkStatus();
}

// Calls fn(first position, length) for each run of a kind-5 set, checking that they hold its count.
template <typename Fn>
Status WalkRuns(V4Part* p, Fn fn) {
  uint64_t end = 0, seen = 0, start = 0, len = 0;
  for (uint64_t i = 0; i < p->r; ++i) {
    RETURN_IF_ERROR(ReadRun(p, seen, &end, &start, &len));
    RETURN_IF_ERROR(fn(start, len));
    seen += len;
  }
  if (seen != p->n) return DataLoss("source set: runs that do not hold its count");
  return OkStatus();
}

// Calls fn(position) for each member of a set of positions (kind 3, 4 or 5), in order.
template <typename Fn>
Status WalkPositionValues(V4Part* p, Fn fn) {
  if (!p->runs) return WalkGaps(&p->gaps, p->n, fn);
  return WalkRuns(p, [&](uint64_t start, uint64_t len) {
    for (uint64_t x = start; x < start + len; ++x) fn(static_cast<uint32_t>(x));
    return OkStatus();
  });
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

// A set of kind 0 or 2 read as a dictionary: its members by position. Positions asked in
// ascending order are decoded as one walk, which jumps through a kind-2 dictionary's skip table
// to a far position; a position before the last one asked starts the walk again.
class Dict {
 public:
  // `decoded`: the dictionary's members, decoded by the caller from these same bytes.
  Status Open(codec::Reader r, const MemberDict* decoded = nullptr) {
    ASSIGN_OR_RETURN(p_, ReadV4Part(&r));
    if (p_.positions || p_.kind == 1) {
      return DataLoss("source set: a dictionary that is not a list of addresses");
    }
    if (decoded && decoded->v4.size() != p_.n) {
      return Internal("source set: a decoded dictionary that is not its set's");
    }
    dec_ = decoded;
    gaps_ = p_.gaps;
    if (p_.kind == 2) {
      v6_ = r;  // kind 2: the IPv6 list follows the gaps
      v6_known_ = true;
    }
    Restart();
    return OkStatus();
  }
  uint64_t n4() const { return p_.n; }
  const MemberDict* decoded() const { return dec_; }
  // Its members, IPv4 and IPv6.
  Result<uint64_t> Size() {
    if (dec_) return dec_->v4.size() + dec_->v6.size();
    RETURN_IF_ERROR(FindV6());
    return p_.n + n6_;
  }
  // The IPv4 member at `pos` (< n4()).
  Result<uint32_t> V4(uint64_t pos) {
    if (pos >= p_.n) return DataLoss("source set: a position past its dictionary");
    if (dec_) return dec_->v4[pos];
    if (i_ > 0 && pos < i_ - 1) Restart();
    if (p_.kind == 2) {
      const uint64_t j = pos / p_.stride;
      if (j * p_.stride + 1 > i_) {  // a block ahead: start from its table entry
        uint32_t addr, off;
        std::memcpy(&addr, p_.table + j * 8, 4);
        std::memcpy(&off, p_.table + j * 8 + 4, 4);
        if (off > gaps_.remaining()) return DataLoss("source set: skip table offset out of range");
        g_ = codec::Reader(gaps_.data() + off, gaps_.remaining() - off);
        a_ = addr;
        i_ = j * p_.stride + 1;
      }
    }
    while (i_ <= pos) {
      a_ += g_.Varint();
      ++i_;
    }
    if (g_.failed()) return DataLoss("source set dictionary cut short");
    if (a_ > UINT32_MAX) return DataLoss("source set: address out of range");
    return static_cast<uint32_t>(a_);
  }
  // The IPv6 member `k` (the dictionary's position n4() + k).
  Result<IpAddr> V6(uint64_t k) {
    if (dec_) {
      if (k >= dec_->v6.size()) return DataLoss("source set: a position past its dictionary");
      return dec_->v6[k];
    }
    RETURN_IF_ERROR(FindV6());
    if (k >= n6_) return DataLoss("source set: a position past its dictionary");
    IpAddr a;
    std::memcpy(a.bytes.data(), v6_.data() + k * 16, 16);
    return a;
  }
  // Positions of the members of ascending `v4` and `v6` that the dictionary holds, ascending.
  Status Ranks(const std::vector<uint32_t>& v4, const std::vector<IpAddr>& v6,
               std::vector<uint32_t>* out) {
    if (dec_) {
      // Decoded: each asked address searched from where the one before it was found (they
      // ascend), galloping, so a few asked cost a few searches and many a walk at most.
      const std::vector<uint32_t>& d = dec_->v4;
      auto from = d.begin();
      for (uint32_t x : v4) {
        size_t step = 1;
        auto hi = from;
        while (hi != d.end() && *hi < x) {
          from = hi;
          hi = static_cast<size_t>(d.end() - hi) > step ? hi + static_cast<ptrdiff_t>(step)
                                                        : d.end();
          step *= 2;
        }
        from = std::lower_bound(from, hi, x);
        if (from == d.end()) break;
        if (*from == x) out->push_back(static_cast<uint32_t>(from - d.begin()));
      }
    } else if (p_.kind == 2 && v4.size() * p_.stride * 2 < p_.n) {
      uint64_t from = 0;
      for (uint32_t x : v4) {
        uint64_t lo = from, hi = (p_.n + p_.stride - 1) / p_.stride;
        while (lo < hi) {
          uint64_t mid = lo + (hi - lo) / 2;
          uint32_t addr;
          std::memcpy(&addr, p_.table + mid * 8, 4);
          if (addr <= x) {
            lo = mid + 1;
          } else {
            hi = mid;
          }
        }
        if (lo == 0) continue;
        from = lo - 1;
        for (uint64_t pos = from * p_.stride; pos < std::min(p_.n, lo * p_.stride); ++pos) {
          ASSIGN_OR_RETURN(uint32_t a, V4(pos));
          if (a >= x) {
            if (a == x) out->push_back(static_cast<uint32_t>(pos));
            break;
          }
        }
      }
    } else {
      size_t q = 0;
      for (uint64_t pos = 0; pos < p_.n && q < v4.size(); ++pos) {
        ASSIGN_OR_RETURN(uint32_t a, V4(pos));
        while (q < v4.size() && v4[q] < a) ++q;
        if (q < v4.size() && v4[q] == a) {
          out->push_back(static_cast<uint32_t>(pos));
          ++q;
        }
      }
    }
    if (v6.empty()) return OkStatus();
    if (dec_) {
      for (const IpAddr& x : v6) {
        auto it = std::lower_bound(dec_->v6.begin(), dec_->v6.end(), x);
        if (it == dec_->v6.end() || !(*it == x)) continue;
        const uint64_t pos = p_.n + static_cast<uint64_t>(it - dec_->v6.begin());
        if (pos > UINT32_MAX) return DataLoss("source set: dictionary too large");
        out->push_back(static_cast<uint32_t>(pos));
      }
      return OkStatus();
    }
    RETURN_IF_ERROR(FindV6());
    for (const IpAddr& x : v6) {
      uint64_t lo = 0, hi = n6_;
      while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (std::memcmp(v6_.data() + mid * 16, x.bytes.data(), 16) < 0) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      if (lo < n6_ && std::memcmp(v6_.data() + lo * 16, x.bytes.data(), 16) == 0) {
        if (p_.n + lo > UINT32_MAX) return DataLoss("source set: dictionary too large");
        out->push_back(static_cast<uint32_t>(p_.n + lo));
      }
    }
    return OkStatus();
  }

 private:
  void Restart() {
    g_ = gaps_;
    a_ = 0;
    i_ = 0;
  }
  // Locates the IPv6 list (after a kind-0 dictionary's gaps, which are walked to find it).
  Status FindV6() {
    if (!v6_known_) {
      codec::Reader t = gaps_;
      for (uint64_t i = 0; i < p_.n; ++i) t.Varint();
      if (t.failed()) return DataLoss("source set dictionary cut short");
      v6_ = t;
      v6_known_ = true;
    }
    if (!v6_listed_) {
      n6_ = v6_.Varint();
      if (v6_.failed() || n6_ > v6_.remaining() / 16) {
        return DataLoss("source set dictionary's IPv6 list cut short");
      }
      v6_listed_ = true;
    }
    return OkStatus();
  }
  V4Part p_;
  const MemberDict* dec_ = nullptr;
  codec::Reader gaps_{nullptr, 0}, g_{nullptr, 0}, v6_{nullptr, 0};
  bool v6_known_ = false, v6_listed_ = false;
  uint64_t n6_ = 0, i_ = 0, a_ = 0;
};

// Calls fn(member) for each member of a set of positions, IPv4 ones through `v4` and IPv6 ones
// through `v6`, checking that the positions ascend strictly.
template <typename F4, typename F6>
Status WalkPositions(V4Part* p, Dict* d, F4 v4, F6 v6) {
  Status st;
  uint64_t i = 0, prev = 0;
  if (p->runs) {
    // A run names many members in a few bytes: its count is bounded by the dictionary's.
    ASSIGN_OR_RETURN(uint64_t size, d->Size());
    if (p->n > size) return DataLoss("source set: more positions than its dictionary holds");
  }
  if (const MemberDict* m = d->decoded()) {
    const uint64_t n4 = m->v4.size(), n = n4 + m->v6.size();
    RETURN_IF_ERROR(WalkPositionValues(p, [&](uint32_t pos) {
      if (!st.ok()) return;
      if ((i++ > 0 && pos <= prev) || pos >= n) {
        st = DataLoss(pos >= n ? "source set: a position past its dictionary"
                               : "source set: positions out of order");
        return;
      }
      prev = pos;
      if (pos < n4) {
        v4(m->v4[pos]);
      } else {
        v6(m->v6[pos - n4]);
      }
    }));
    return st;
  }
  RETURN_IF_ERROR(WalkPositionValues(p, [&](uint32_t pos) {
    if (!st.ok()) return;
    if (i++ > 0 && pos <= prev) {
      st = DataLoss("source set: positions out of order");
      return;
    }
    prev = pos;
    if (pos < d->n4()) {
      auto a = d->V4(pos);
      if (a.ok()) {
        v4(*a);
      } else {
        st = a.status();
      }
    } else {
      auto a = d->V6(pos - d->n4());
      if (a.ok()) {
        v6(*a);
      } else {
        st = a.status();
      }
    }
  }));
  return st;
}

Status OpenDict(const codec::Reader* dict, Dict* d, const MemberDict* decoded = nullptr) {
  if (!dict) return DataLoss("source set: positions without a dictionary");
  return d->Open(*dict, decoded);
}

// How many of ascending `q` a kind 0 or 2 part (addresses or positions) holds; a kind-0 part's
// gaps are left read.
Result<uint64_t> CountValues(V4Part* p, const std::vector<uint32_t>& q, uint64_t limit = 0) {
  uint64_t hits = 0;
  if (p->runs) {
    if (p->n > limit) return DataLoss("source set: more positions than its dictionary holds");
    // Run by run: the asked values within each, without visiting the run's members.
    size_t i = 0;
    RETURN_IF_ERROR(WalkRuns(p, [&](uint64_t start, uint64_t len) {
      if (start + len > limit) return DataLoss("source set: a position past its dictionary");
      while (i < q.size() && q[i] < start) ++i;
      while (i < q.size() && q[i] < start + len) {
        ++hits;
        ++i;
      }
      return OkStatus();
    }));
    return hits;
  }
  if (p->kind == 2 && q.size() * p->stride * 2 < p->n) {
    // A few values: each found through the skip table, decoding at most a stride of gaps.
    auto entry = [&](uint64_t j, uint32_t* addr, uint32_t* off) {
      std::memcpy(addr, p->table + j * 8, 4);
      std::memcpy(off, p->table + j * 8 + 4, 4);
    };
    uint64_t from = 0;  // the values ascend, so each search starts where the last one ended
    for (uint32_t x : q) {
      uint64_t lo = from, hi = p->k;
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
      if (off > p->gaps.remaining()) {
        return DataLoss("source set: skip table offset out of range");
      }
      codec::Reader g(p->gaps.data() + off, p->gaps.remaining() - off);
      uint64_t a = addr;
      uint64_t last = std::min(p->n, (from + 1) * p->stride);
      for (uint64_t i = from * p->stride + 1; i < last && a < x; ++i) a += g.Varint();
      if (g.failed()) return DataLoss("source set cut short");
      hits += a == x ? 1 : 0;
    }
    return hits;
  }
  // Every gap is decoded, and the walk over `q` goes along. A member matched once cannot match
  // again, so a hostile repeat does not count twice.
  size_t i = 0;
  const size_t qn = q.size();
  RETURN_IF_ERROR(WalkGaps(&p->gaps, p->n, [&](uint32_t a) {
    while (i < qn && q[i] < a) ++i;
    if (i < qn && q[i] == a) {
      ++hits;
      ++i;
    }
  }));
  return hits;
}

}  // namespace

Status SourceSet::AppendMembers(codec::Reader* r, std::vector<uint32_t>* v4,
                                std::vector<IpAddr>* v6, const codec::Reader* dict,
                                const MemberDict* decoded) {
  ASSIGN_OR_RETURN(V4Part p, ReadV4Part(r));
  if (p.positions) {
    Dict d;
    RETURN_IF_ERROR(OpenDict(dict, &d, decoded));
    return WalkPositions(
        &p, &d, [&](uint32_t a) { v4->push_back(a); }, [&](const IpAddr& a) { v6->push_back(a); });
  }
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
                                      const std::vector<IpAddr>& v6, const codec::Reader* dict,
                                      const MemberDict* decoded) {
  ASSIGN_OR_RETURN(V4Part p, ReadV4Part(r));
  if (p.positions) {
    // The asked addresses as positions in the dictionary (those it holds), then counted as
    // values of the set.
    Dict d;
    RETURN_IF_ERROR(OpenDict(dict, &d, decoded));
    std::vector<uint32_t> q;
    RETURN_IF_ERROR(d.Ranks(v4, v6, &q));
    uint64_t size = 0;
    if (p.runs) {
      ASSIGN_OR_RETURN(size, d.Size());
    }
    return CountValues(&p, q, size);
  }
  uint64_t hits = 0;
  if (p.kind == 1) {
    try {
      Roaring bm = Roaring::readSafe(reinterpret_cast<const char*>(p.bitmap), p.bitmap_bytes);
      for (uint32_t x : v4) hits += bm.contains(x) ? 1 : 0;
    } catch (const std::exception& e) {
      return DataLoss(std::string("source set bitmap: ") + e.what());
    }
  } else {
    ASSIGN_OR_RETURN(hits, CountValues(&p, v4));
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

using codec::VarintSize;

// One input of a SetUnion: its IPv4 members in order, then its IPv6 list.
class SetCursor {
 public:
  Status Init(const SetInput& in) {
    codec::Reader r = in.set;
    ASSIGN_OR_RETURN(p_, ReadV4Part(&r));
    rest_ = r;
    if (p_.positions) {
      dict_ = std::make_unique<Dict>();
      RETURN_IF_ERROR(OpenDict(in.has_dict ? &in.dict : nullptr, dict_.get(), in.members));
      dec4_ = in.members ? &in.members->v4 : nullptr;
      if (p_.runs) {
        ASSIGN_OR_RETURN(uint64_t size, dict_->Size());
        if (p_.n > size) return DataLoss("source set: more positions than its dictionary holds");
      }
    }
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
  // The IPv6 members, once every IPv4 member is passed.
  Status AppendV6(std::vector<IpAddr>* v6) {
    if (p_.positions) {
      // The first IPv6 position (which ended the IPv4 walk), then the rest.
      while (v6_pos_ != UINT64_MAX) {
        ASSIGN_OR_RETURN(IpAddr a, dict_->V6(v6_pos_ - dict_->n4()));
        v6->push_back(a);
        RETURN_IF_ERROR(NextPosition());
      }
      return OkStatus();
    }
    codec::Reader r = p_.kind == 0 ? p_.gaps : rest_;
    return WalkV6(&r, [&](const IpAddr& a) { v6->push_back(a); });
  }

 private:
  // Sets v6_pos_ to the next position (UINT64_MAX after the last), checking that they ascend.
  Status NextPosition() {
    if (i_ >= p_.n) {
      if (p_.runs && (run_left_ > 0 || runs_read_ != p_.r)) {
        return DataLoss("source set: runs that do not hold its count");
      }
      v6_pos_ = UINT64_MAX;
      return OkStatus();
    }
    if (p_.runs) {
      if (run_left_ == 0) {
        if (runs_read_ == p_.r) return DataLoss("source set: runs that do not hold its count");
        RETURN_IF_ERROR(ReadRun(&p_, i_, &run_end_, &a_, &run_left_));
        ++runs_read_;
      } else {
        ++a_;
      }
      --run_left_;
      ++i_;
      v6_pos_ = a_;
      return OkStatus();
    }
    uint64_t gap = p_.gaps.Varint();
    if (p_.gaps.failed()) return DataLoss("source set cut short");
    if (i_ > 0 && gap == 0) return DataLoss("source set: positions out of order");
    a_ += gap;
    if (a_ > UINT32_MAX) return DataLoss("source set: position out of range");
    ++i_;
    v6_pos_ = a_;
    return OkStatus();
  }
  Status Advance() {
    if (p_.positions) {
      RETURN_IF_ERROR(NextPosition());
      if (v6_pos_ == UINT64_MAX || v6_pos_ >= dict_->n4()) {
        done_ = true;  // the IPv4 members are passed; v6_pos_ holds the first IPv6 one, if any
        return OkStatus();
      }
      if (dec4_) {
        head_ = (*dec4_)[v6_pos_];
      } else {
        ASSIGN_OR_RETURN(head_, dict_->V4(v6_pos_));
      }
      v6_pos_ = UINT64_MAX;
      return OkStatus();
    }
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
  std::unique_ptr<Dict> dict_;
  const std::vector<uint32_t>* dec4_ = nullptr;  // the dictionary's IPv4 members, if decoded
  std::vector<uint32_t> vals_;
  uint64_t i_ = 0, a_ = 0, v6_pos_ = UINT64_MAX;
  uint64_t run_left_ = 0, run_end_ = 0, runs_read_ = 0;  // kind 5
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

Status SetUnion::WalkValues(const std::function<void(uint64_t)>& fn,
                            std::vector<IpAddr>* v6) const {
  if (!to_) return Walk([&](uint32_t a) { fn(a); }, v6);
  size_t j = 0;
  Status missing;
  RETURN_IF_ERROR(Walk(
      [&](uint32_t a) {
        auto it = std::lower_bound(to_->v4.begin() + static_cast<ptrdiff_t>(j), to_->v4.end(), a);
        j = static_cast<size_t>(it - to_->v4.begin());
        if (it == to_->v4.end() || *it != a) {
          if (missing.ok()) missing = Internal("a set's member is not in its dictionary");
          return;
        }
        fn(j);
      },
      v6));
  return missing;
}

Result<SetUnion> SetUnion::Plan(std::vector<codec::Reader> sets,
                                std::function<void()> every_members) {
  std::vector<SetInput> in;
  for (const codec::Reader& r : sets) in.push_back({r, codec::Reader(nullptr, 0), false});
  return Plan(std::move(in), std::move(every_members), nullptr);
}

Result<SetUnion> SetUnion::Plan(std::vector<SetInput> sets, std::function<void()> every_members,
                                const MemberDict* to) {
  SetUnion u;
  u.sets_ = std::move(sets);
  u.every_members_ = std::move(every_members);
  u.to_ = to;
  uint64_t prev = 0;
  RunCount runs;
  auto value = [&](uint64_t a) {
    if (to) {
      runs.Add(a);
      if (u.n_ < SourceSet::kSkipFrom) u.small_.push_back(a);
    }
    u.gap_bytes_ += VarintSize(a - prev);
    prev = a;
    if (u.n_ % SourceSet::kSkipStride == 0) {
      codec::PutFixed<uint32_t>(&u.table_, static_cast<uint32_t>(a));
      codec::PutFixed<uint32_t>(&u.table_, static_cast<uint32_t>(u.gap_bytes_));
    }
    ++u.n_;
  };
  RETURN_IF_ERROR(u.WalkValues(value, &u.v6_));
  std::sort(u.v6_.begin(), u.v6_.end());
  u.v6_.erase(std::unique(u.v6_.begin(), u.v6_.end()), u.v6_.end());
  if (to) {
    // Positions: the IPv6 members' follow the IPv4 ones', and no IPv6 list is written.
    for (const IpAddr& a : u.v6_) {
      auto it = std::lower_bound(to->v6.begin(), to->v6.end(), a);
      if (it == to->v6.end() || *it != a) {
        return Internal("a set's member is not in its dictionary");
      }
      value(to->v4.size() + static_cast<uint64_t>(it - to->v6.begin()));
    }
    // A small set of positions (kind 6) writes no count.
    u.bytes_ = 1 + (u.n_ >= SourceSet::kSkipFrom ? VarintSize(u.n_) : 0) + u.gap_bytes_;
  } else {
    u.bytes_ = 1 + VarintSize(u.n_) + u.gap_bytes_ + VarintSize(u.v6_.size()) + 16 * u.v6_.size();
  }
  if (u.n_ >= SourceSet::kSkipFrom) {
    u.bytes_ += VarintSize(SourceSet::kSkipStride) + VarintSize(u.gap_bytes_) + u.table_.size();
  } else {
    u.table_.clear();
  }
  runs.Close();
  if (to && u.n_ > 0) {
    // Positions as runs (kind 5) when they take fewer bytes.
    const uint64_t as_runs = 1 + VarintSize(u.n_) + VarintSize(runs.runs) + runs.bytes;
    if (as_runs < u.bytes_) {
      u.runs_ = runs.runs;
      u.bytes_ = as_runs;
      u.table_.clear();
    }
  }
  if (to && u.n_ > 0 && u.n_ < SourceSet::kSkipFrom) {
    // A small set of positions as a Rice code when that is smaller still.
    uint64_t rice_bytes = 0;
    const int k = rice::BestK(u.small_, &rice_bytes);
    if (rice_bytes != UINT64_MAX && 1 + rice_bytes < u.bytes_) {
      u.rice_k_ = k;
      u.runs_ = 0;
      u.bytes_ = 1 + rice_bytes;
    }
  }
  if (u.rice_k_ < 0) u.small_ = {};
  return u;
}

Status SetUnion::Write(const std::function<Status(const uint8_t*, size_t)>& sink) const {
  if (rice_k_ >= 0) {
    std::vector<uint8_t> buf;
    rice::Write(small_, rice_k_, &buf);
    return sink(buf.data(), buf.size());
  }
  if (runs_ > 0) return WriteRuns(sink);
  std::vector<uint8_t> buf;
  const bool skip = n_ >= SourceSet::kSkipFrom;
  codec::PutU8(&buf, static_cast<uint8_t>(to_ ? (skip ? 4 : 6) : (skip ? 2 : 0)));
  if (skip || !to_) codec::PutVarint(&buf, n_);
  if (skip) {
    codec::PutVarint(&buf, SourceSet::kSkipStride);
    codec::PutVarint(&buf, gap_bytes_);
    codec::PutBytes(&buf, table_.data(), table_.size());
  }
  uint64_t prev = 0;
  Status st;
  auto value = [&](uint64_t a) {
    codec::PutVarint(&buf, a - prev);
    prev = a;
    if (buf.size() >= (size_t{1} << 16) && st.ok()) {
      st = sink(buf.data(), buf.size());
      buf.clear();
    }
  };
  RETURN_IF_ERROR(WalkValues(value, nullptr));
  RETURN_IF_ERROR(st);
  if (to_) {
    for (const IpAddr& a : v6_) {
      auto it = std::lower_bound(to_->v6.begin(), to_->v6.end(), a);
      value(to_->v4.size() + static_cast<uint64_t>(it - to_->v6.begin()));
    }
    RETURN_IF_ERROR(st);
    return sink(buf.data(), buf.size());
  }
  codec::PutVarint(&buf, v6_.size());
  for (const IpAddr& a : v6_) codec::PutBytes(&buf, a.bytes.data(), 16);
  return sink(buf.data(), buf.size());
}

Status SetUnion::WriteRuns(const std::function<Status(const uint8_t*, size_t)>& sink) const {
  std::vector<uint8_t> buf;
  codec::PutU8(&buf, 5);
  codec::PutVarint(&buf, n_);
  codec::PutVarint(&buf, runs_);
  RunCount runs{&buf};
  Status st;
  auto value = [&](uint64_t a) {
    runs.Add(a);
    if (buf.size() >= (size_t{1} << 16) && st.ok()) {
      st = sink(buf.data(), buf.size());
      buf.clear();
    }
  };
  RETURN_IF_ERROR(WalkValues(value, nullptr));
  for (const IpAddr& a : v6_) {
    auto it = std::lower_bound(to_->v6.begin(), to_->v6.end(), a);
    value(to_->v4.size() + static_cast<uint64_t>(it - to_->v6.begin()));
  }
  runs.Close();
  RETURN_IF_ERROR(st);
  return sink(buf.data(), buf.size());
}

Status SetUnion::Members(MemberDict* out) const {
  out->v4.clear();
  out->v4.reserve(n_);
  std::vector<IpAddr> v6;
  RETURN_IF_ERROR(Walk([&](uint32_t a) { out->v4.push_back(a); }, &v6));
  std::sort(v6.begin(), v6.end());
  v6.erase(std::unique(v6.begin(), v6.end()), v6.end());
  out->v6 = std::move(v6);
  return OkStatus();
}

Result<SourceSet> SourceSet::Read(codec::Reader* r, const codec::Reader* dict,
                                  const MemberDict* decoded) {
  SourceSet s;
  RETURN_IF_ERROR(AppendMembers(r, &s.v4_, &s.v6_, dict, decoded));
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
