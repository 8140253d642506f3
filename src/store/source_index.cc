#include "store/source_index.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <queue>

#include "store/chunk_sums.h"
#include "store/codec.h"
#include "store/durable.h"
#include "store/file_out.h"

namespace teiten {
namespace {

constexpr char kMagic[8] = {'T', 'S', 'I', 'X', '0', '0', '0', '4'};
// Format 3: the same sections without the chunk checksum table (verified whole when opened).
constexpr char kMagic3[8] = {'T', 'S', 'I', 'X', '0', '0', '0', '3'};
constexpr size_t kFooterSize = 16;

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t Zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t Unzigzag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

}  // namespace

void IndexEntry::AppendTo(std::vector<uint8_t>* out) const {
  codec::PutVarint(out, visits.size());
  codec::PutFixed<uint16_t>(out, country);
  codec::PutVarint(out, asn);
  codec::PutVarint(out, packets);
  codec::PutVarint(out, Zigzag(first_us));
  codec::PutVarint(out, static_cast<uint64_t>(last_us - first_us));
  codec::PutVarint(out, ports.size());
  PortKey prev_key = 0;
  for (const auto& [k, n] : ports) {
    codec::PutVarint(out, k - prev_key);
    codec::PutVarint(out, n);
    prev_key = k;
  }
  codec::PutVarint(out, ttls.size());
  for (const auto& [t, n] : ttls) {
    codec::PutU8(out, t);
    codec::PutVarint(out, n);
  }
  uint64_t prev_ref = 0;
  for (const V& x : visits) {
    codec::PutVarint(out, x.ref - prev_ref);
    codec::PutVarint(out, x.blocks_m1);
    codec::PutVarint(out, x.sensor);
    codec::PutVarint(out, x.packets);
    prev_ref = x.ref;
  }
}

uint32_t SourceIndexBuilder::AddBlock(uint64_t segment, uint32_t block, int32_t day) {
  refs_.push_back({segment, block});
  ref_days_.push_back(day);
  return static_cast<uint32_t>(refs_.size() - 1);
}

void SourceIndexBuilder::AddRun(const Observation* const* rows, size_t n, uint32_t ref,
                                uint32_t blocks, const GeoInfo& geo) {
  if (n == 0) return;
  int64_t first = rows[0]->ts_us, last = rows[0]->ts_us;
  uint64_t ttl[256] = {};
  scratch_ports_.clear();
  for (size_t i = 0; i < n; ++i) {
    first = std::min(first, rows[i]->ts_us);
    last = std::max(last, rows[i]->ts_us);
    ttl[rows[i]->ttl]++;
    scratch_ports_.push_back(PortKeyOf(*rows[i]));
  }
  std::sort(scratch_ports_.begin(), scratch_ports_.end());
  // In memory until Write: varint ref, blocks − 1, sensor, packets, first µs (zigzag), last −
  // first; u16 country, varint ASN; varint P, P × (varint port key, count); varint T,
  // T × (u8 TTL, varint count).
  std::vector<uint8_t>& v = scratch_visit_;
  v.clear();
  codec::PutVarint(&v, ref);
  codec::PutVarint(&v, blocks - 1);
  codec::PutVarint(&v, rows[0]->sensor);
  codec::PutVarint(&v, n);
  codec::PutVarint(&v, Zigzag(first));
  codec::PutVarint(&v, static_cast<uint64_t>(last - first));
  codec::PutFixed<uint16_t>(&v, geo.country);
  codec::PutVarint(&v, geo.asn);
  size_t distinct = 0;
  for (size_t i = 0; i < n; ++i) distinct += i == 0 || scratch_ports_[i] != scratch_ports_[i - 1];
  codec::PutVarint(&v, distinct);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scratch_ports_[j] == scratch_ports_[i]) ++j;
    codec::PutVarint(&v, scratch_ports_[i]);
    codec::PutVarint(&v, j - i);
    i = j;
  }
  size_t nttl = 0;
  for (uint64_t c : ttl) nttl += c > 0;
  codec::PutVarint(&v, nttl);
  for (int t = 0; t < 256; ++t) {
    if (!ttl[t]) continue;
    codec::PutU8(&v, static_cast<uint8_t>(t));
    codec::PutVarint(&v, ttl[t]);
  }
  const IpAddr& src = rows[0]->src;
  uint64_t off = arena_.size();
  codec::PutVarint(&arena_, v.size());
  arena_.insert(arena_.end(), v.begin(), v.end());
  if (src.is_v4()) {
    v4_.push_back({src.v4(), off});
  } else {
    v6_.push_back({src, off});
  }
}

Status SourceIndexBuilder::Write(const std::string& path) {
  std::sort(v4_.begin(), v4_.end());
  std::sort(v6_.begin(), v6_.end());
  std::vector<uint8_t> out(kMagic, kMagic + 8);
  codec::PutFixed<uint32_t>(&out, static_cast<uint32_t>(refs_.size()));
  codec::PutFixed<uint32_t>(&out, 0);
  for (size_t i = 0; i < refs_.size(); ++i) {
    codec::PutFixed<uint64_t>(&out, refs_[i].segment);
    codec::PutFixed<uint32_t>(&out, refs_[i].block);
    codec::PutFixed<int32_t>(&out, ref_days_[i]);
  }
  // Per source: the sums of its visits, then the visits (see docs/STORE_FORMAT.md).
  std::vector<uint8_t> postings;
  std::map<PortKey, uint64_t> ports;
  IndexEntry e;
  auto put_visits = [&](auto begin, auto end) {
    ports.clear();
    e.visits.clear();
    uint64_t ttl[256] = {};
    e.packets = 0;
    e.first_us = INT64_MAX;
    e.last_us = INT64_MIN;
    for (auto it = begin; it != end; ++it) {  // in the order added: the last has the latest geo
      codec::Reader r(arena_.data() + it->second, arena_.size() - it->second);
      r.Varint();  // length
      IndexEntry::V x;
      x.ref = r.Varint();
      x.blocks_m1 = r.Varint();
      x.sensor = r.Varint();
      x.packets = r.Varint();
      e.packets += x.packets;
      int64_t f = Unzigzag(r.Varint());
      int64_t l = f + static_cast<int64_t>(r.Varint());
      e.first_us = std::min(e.first_us, f);
      e.last_us = std::max(e.last_us, l);
      e.country = r.Fixed<uint16_t>();
      e.asn = static_cast<uint32_t>(r.Varint());
      uint64_t np = r.Varint();
      for (uint64_t k = 0; k < np; ++k) {
        auto key = static_cast<PortKey>(r.Varint());
        ports[key] += r.Varint();
      }
      uint64_t nt = r.Varint();
      for (uint64_t k = 0; k < nt; ++k) {
        uint8_t t = r.Fixed<uint8_t>();
        ttl[t] += r.Varint();
      }
      e.visits.push_back(x);
    }
    std::sort(e.visits.begin(), e.visits.end(),
              [](const IndexEntry::V& a, const IndexEntry::V& b) { return a.ref < b.ref; });
    e.ports.assign(ports.begin(), ports.end());
    e.ttls.clear();
    for (int t = 0; t < 256; ++t) {
      if (ttl[t]) e.ttls.push_back({static_cast<uint8_t>(t), ttl[t]});
    }
    e.AppendTo(&postings);
  };
  std::vector<uint32_t> addrs;
  std::vector<uint64_t> offs;
  for (size_t i = 0; i < v4_.size();) {
    size_t j = i;
    while (j < v4_.size() && v4_[j].first == v4_[i].first) ++j;
    addrs.push_back(v4_[i].first);
    offs.push_back(postings.size());
    put_visits(v4_.begin() + static_cast<ptrdiff_t>(i), v4_.begin() + static_cast<ptrdiff_t>(j));
    i = j;
  }
  offs.push_back(postings.size());
  codec::PutFixed<uint64_t>(&out, addrs.size());
  codec::PutBytes(&out, addrs.data(), addrs.size() * 4);
  out.resize((out.size() + 7) / 8 * 8, 0);
  codec::PutBytes(&out, offs.data(), offs.size() * 8);
  std::vector<IpAddr> addrs6;
  offs.clear();
  for (size_t i = 0; i < v6_.size();) {
    size_t j = i;
    while (j < v6_.size() && v6_[j].first == v6_[i].first) ++j;
    addrs6.push_back(v6_[i].first);
    offs.push_back(postings.size());
    put_visits(v6_.begin() + static_cast<ptrdiff_t>(i), v6_.begin() + static_cast<ptrdiff_t>(j));
    i = j;
  }
  offs.push_back(postings.size());
  codec::PutFixed<uint64_t>(&out, addrs6.size());
  for (const IpAddr& a : addrs6) codec::PutBytes(&out, a.bytes.data(), 16);
  codec::PutBytes(&out, offs.data(), offs.size() * 8);
  codec::PutFixed<uint64_t>(&out, postings.size());
  out.insert(out.end(), postings.begin(), postings.end());
  ChunkSums::Append(&out);
  codec::PutFixed<uint64_t>(&out, XXH64(out.data(), out.size(), 0));
  out.insert(out.end(), kMagic, kMagic + 8);
  std::vector<uint8_t>().swap(arena_);
  std::vector<std::pair<uint32_t, uint64_t>>().swap(v4_);
  std::vector<std::pair<IpAddr, uint64_t>>().swap(v6_);
  return WriteFileDurably(path, out.data(), out.size());
}

Result<std::unique_ptr<SourceIndex>> SourceIndex::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("source index " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return IoError("source index " + path);
  }
  std::unique_ptr<SourceIndex> x(new SourceIndex());
  x->path_ = path;
  x->size_ = static_cast<uint64_t>(st.st_size);
  if (x->size_ < 16 + kFooterSize) {
    ::close(fd);
    return DataLoss(fmt::format("source index {}: {} bytes is too short", path, x->size_));
  }
  void* m = mmap(nullptr, x->size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return IoError("source index mmap " + path);
  x->base_ = static_cast<const uint8_t*>(m);
  auto bad = [&](const char* what) {
    return DataLoss(fmt::format("source index {}: {}", path, what));
  };
  if (std::memcmp(x->base_, "TSIX0001", 8) == 0 || std::memcmp(x->base_, "TSIX0002", 8) == 0) {
    return bad("an index of block lists only (before visits): rebuild the store's indexes");
  }
  bool v3 = std::memcmp(x->base_, kMagic3, 8) == 0 &&
            std::memcmp(x->base_ + x->size_ - 8, kMagic3, 8) == 0;
  if (!v3 && (std::memcmp(x->base_, kMagic, 8) != 0 ||
              std::memcmp(x->base_ + x->size_ - 8, kMagic, 8) != 0)) {
    return bad("bad magic (not a source index, or cut short)");
  }
  uint64_t body_end = x->size_ - kFooterSize;
  if (v3) {
    // No chunk table: the whole file is verified before any of it is used.
    uint64_t want = Load<uint64_t>(x->base_ + x->size_ - kFooterSize);
    if (XXH64(x->base_, x->size_ - kFooterSize, 0) != want) {
      return bad(
          "checksum mismatch (the file is damaged; `teiten rebuild` makes the indexes again "
          "from the segments)");
    }
  } else {
    RETURN_IF_ERROR(x->sums_.Open(x->base_, body_end, path));
    body_end = x->sums_.body_size();
    x->chunked_ = true;
  }
  // Walk the sections, checking each fits before the footer. Counts are verified before they
  // are used; the sections they size are verified when read.
  const uint64_t end = body_end;
  uint64_t at = 8;
  Status damaged;
  auto take = [&](uint64_t n) -> const uint8_t* {
    if (at > end || n > end - at) return nullptr;
    const uint8_t* p = x->base_ + at;
    at += n;
    return p;
  };
  auto count = [&](uint64_t n) -> const uint8_t* {
    const uint8_t* p = take(n);
    if (p && damaged.ok()) damaged = x->Check(p, n);
    return damaged.ok() ? p : nullptr;
  };
  const uint8_t* p = count(8);
  RETURN_IF_ERROR(damaged);
  if (!p) return bad("header cut short");
  x->nrefs_ = Load<uint32_t>(p);
  if (!(x->refs_ = take(uint64_t{x->nrefs_} * 16))) return bad("block table cut short");
  if (!(p = count(8))) return damaged.ok() ? bad("IPv4 count cut short") : damaged;
  x->n4_ = Load<uint64_t>(p);
  if (x->n4_ > end / 12) return bad("IPv4 count too large");
  if (!(x->addr4_ = take(x->n4_ * 4))) return bad("IPv4 addresses cut short");
  at = (at + 7) / 8 * 8;
  if (!(x->off4_ = take((x->n4_ + 1) * 8))) return bad("IPv4 offsets cut short");
  if (!(p = count(8))) return damaged.ok() ? bad("IPv6 count cut short") : damaged;
  x->n6_ = Load<uint64_t>(p);
  if (x->n6_ > end / 24) return bad("IPv6 count too large");
  if (!(x->addr6_ = take(x->n6_ * 16))) return bad("IPv6 addresses cut short");
  if (!(x->off6_ = take((x->n6_ + 1) * 8))) return bad("IPv6 offsets cut short");
  if (!(p = count(8))) return damaged.ok() ? bad("postings size cut short") : damaged;
  x->postings_size_ = Load<uint64_t>(p);
  if (!(x->postings_ = take(x->postings_size_))) return bad("postings cut short");
  return x;
}

Status SourceIndex::Verify() const {
  uint64_t want = Load<uint64_t>(base_ + size_ - kFooterSize);
  if (XXH64(base_, size_ - kFooterSize, 0) != want) {
    return DataLoss(fmt::format("source index {}: checksum mismatch (the file is damaged)", path_));
  }
  if (chunked_) RETURN_IF_ERROR(sums_.Check(0, sums_.body_size()));
  return OkStatus();
}

Status SourceIndex::Check(const uint8_t* p, uint64_t n) const {
  if (!chunked_) return OkStatus();  // format 3: verified whole at Open
  return sums_.Check(static_cast<uint64_t>(p - base_), n);
}

SourceIndex::~SourceIndex() {
  if (base_) munmap(const_cast<uint8_t*>(base_), size_);
}

void SourceIndex::ReleasePages() const {
  if (base_) madvise(const_cast<uint8_t*>(base_), size_, MADV_DONTNEED);
}

Status SourceIndex::DecodeEntry(uint64_t begin, uint64_t end, IndexEntry* out) const {
  auto bad = [&](const char* what) {
    return DataLoss(fmt::format("source index {}: source at {}: {}", path_, begin, what));
  };
  if (begin > end || end > postings_size_) return bad("out of bounds");
  RETURN_IF_ERROR(Check(postings_ + begin, end - begin));
  codec::Reader r(postings_ + begin, end - begin);
  uint64_t c = r.Varint();
  if (r.failed() || c > end - begin) return bad("bad visit count");
  out->country = r.Fixed<uint16_t>();
  out->asn = static_cast<uint32_t>(r.Varint());
  out->packets = r.Varint();
  out->first_us = Unzigzag(r.Varint());
  out->last_us = out->first_us + static_cast<int64_t>(r.Varint());
  uint64_t np = r.Varint();
  if (np > end - begin) return bad("bad port count");
  out->ports.clear();
  PortKey key = 0;
  for (uint64_t k = 0; k < np; ++k) {
    key += static_cast<PortKey>(r.Varint());
    out->ports.push_back({key, r.Varint()});
  }
  uint64_t nt = r.Varint();
  if (nt > 256) return bad("bad TTL count");
  out->ttls.clear();
  for (uint64_t k = 0; k < nt; ++k) {
    uint8_t t = r.Fixed<uint8_t>();
    out->ttls.push_back({t, r.Varint()});
  }
  out->visits.clear();
  uint64_t ref = 0;
  for (uint64_t i = 0; i < c; ++i) {
    IndexEntry::V x;
    ref += r.Varint();
    x.ref = ref;
    x.blocks_m1 = r.Varint();
    x.sensor = r.Varint();
    x.packets = r.Varint();
    if (r.failed() || ref >= nrefs_ || x.blocks_m1 >= nrefs_ - ref) {
      return bad("block reference out of range");
    }
    out->visits.push_back(x);
  }
  if (r.failed()) return bad("cut short");
  return OkStatus();
}

Status SourceIndex::Postings(uint64_t begin, uint64_t end, SourceSummary* out) const {
  IndexEntry e;
  RETURN_IF_ERROR(DecodeEntry(begin, end, &e));
  out->geo.country = e.country;
  out->geo.asn = e.asn;
  out->packets = e.packets;
  out->first_us = e.first_us;
  out->last_us = e.last_us;
  out->ports.insert(out->ports.end(), e.ports.begin(), e.ports.end());
  out->ttls.insert(out->ttls.end(), e.ttls.begin(), e.ttls.end());
  for (const IndexEntry::V& v : e.visits) {
    const uint8_t* p = refs_ + v.ref * 16;
    RETURN_IF_ERROR(Check(p, 16));
    Visit x;
    x.first = {Load<uint64_t>(p), Load<uint32_t>(p + 8)};
    x.day = Load<int32_t>(p + 12);
    x.blocks = static_cast<uint32_t>(v.blocks_m1 + 1);
    x.sensor = static_cast<uint16_t>(v.sensor);
    x.packets = v.packets;
    out->visits.push_back(x);
  }
  return OkStatus();
}

Status SourceIndex::PacketsBySegment(std::map<uint64_t, uint64_t>* out) const {
  IndexEntry e;
  auto walk = [&](uint64_t n, const uint8_t* addr, size_t width, const uint8_t* off) -> Status {
    for (uint64_t i = 0; i < n; ++i) {
      RETURN_IF_ERROR(Check(addr + i * width, width));
      if (i > 0) {
        bool ascending = width == 4
                             ? Load<uint32_t>(addr + (i - 1) * 4) < Load<uint32_t>(addr + i * 4)
                             : std::memcmp(addr + (i - 1) * width, addr + i * width, width) < 0;
        if (!ascending) {
          return DataLoss(fmt::format("source index {}: address {} of {} out of order", path_, i,
                                      width == 4 ? "IPv4" : "IPv6"));
        }
      }
      RETURN_IF_ERROR(Check(off + i * 8, 16));
      RETURN_IF_ERROR(
          DecodeEntry(Load<uint64_t>(off + i * 8), Load<uint64_t>(off + (i + 1) * 8), &e));
      uint64_t sum = 0;
      for (const IndexEntry::V& v : e.visits) {
        RETURN_IF_ERROR(Check(refs_ + v.ref * 16, 16));
        (*out)[Load<uint64_t>(refs_ + v.ref * 16)] += v.packets;
        sum += v.packets;
      }
      if (sum != e.packets) {
        return DataLoss(fmt::format("source index {}: source {} holds {} packets, its visits {}",
                                    path_, i, e.packets, sum));
      }
    }
    return OkStatus();
  };
  RETURN_IF_ERROR(walk(n4_, addr4_, 4, off4_));
  return walk(n6_, addr6_, 16, off6_);
}

Result<bool> SourceIndex::Lookup(const IpAddr& addr, SourceSummary* out) const {
  if (addr.is_v4()) {
    uint32_t want = addr.v4();
    uint64_t lo = 0, hi = n4_;
    while (lo < hi) {
      uint64_t mid = lo + (hi - lo) / 2;
      RETURN_IF_ERROR(Check(addr4_ + mid * 4, 4));
      if (Load<uint32_t>(addr4_ + mid * 4) < want) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo == n4_) return false;
    RETURN_IF_ERROR(Check(addr4_ + lo * 4, 4));
    if (Load<uint32_t>(addr4_ + lo * 4) != want) return false;
    RETURN_IF_ERROR(Check(off4_ + lo * 8, 16));
    RETURN_IF_ERROR(
        Postings(Load<uint64_t>(off4_ + lo * 8), Load<uint64_t>(off4_ + (lo + 1) * 8), out));
    return true;
  }
  uint64_t lo = 0, hi = n6_;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    RETURN_IF_ERROR(Check(addr6_ + mid * 16, 16));
    if (std::memcmp(addr6_ + mid * 16, addr.bytes.data(), 16) < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == n6_) return false;
  RETURN_IF_ERROR(Check(addr6_ + lo * 16, 16));
  if (std::memcmp(addr6_ + lo * 16, addr.bytes.data(), 16) != 0) return false;
  RETURN_IF_ERROR(Check(off6_ + lo * 8, 16));
  RETURN_IF_ERROR(
      Postings(Load<uint64_t>(off6_ + lo * 8), Load<uint64_t>(off6_ + (lo + 1) * 8), out));
  return true;
}

namespace {

// A k-way walk over the ascending address arrays of several indexes: yields each distinct
// address once with the parts that hold it, in part order.
template <typename K>
class AddressMerge {
 public:
  using Key = K;
  // `at(part, i)`: the i-th address of `part`, verified; `n[part]`: how many.
  AddressMerge(std::vector<uint64_t> n, std::function<Result<Key>(size_t, uint64_t)> at)
      : n_(std::move(n)), at_(std::move(at)), pos_(n_.size(), 0) {}
  // The next address and the (part, position) pairs holding it; false at the end.
  Result<bool> Next(Key* key, std::vector<std::pair<size_t, uint64_t>>* holders) {
    if (!started_) {
      started_ = true;
      for (size_t p = 0; p < n_.size(); ++p) RETURN_IF_ERROR(Push(p));
    }
    holders->clear();
    if (heap_.empty()) return false;
    *key = heap_.top().first;
    while (!heap_.empty() && heap_.top().first == *key) {
      size_t p = heap_.top().second;
      heap_.pop();
      holders->push_back({p, pos_[p]++});
      RETURN_IF_ERROR(Push(p));
    }
    std::sort(holders->begin(), holders->end());  // part order: the last part's geo wins
    return true;
  }

 private:
  Status Push(size_t p) {
    if (pos_[p] >= n_[p]) return OkStatus();
    ASSIGN_OR_RETURN(Key k, at_(p, pos_[p]));
    heap_.push({k, p});
    return OkStatus();
  }
  std::vector<uint64_t> n_;
  std::function<Result<Key>(size_t, uint64_t)> at_;
  std::vector<uint64_t> pos_;
  bool started_ = false;
  std::priority_queue<std::pair<Key, size_t>, std::vector<std::pair<Key, size_t>>, std::greater<>>
      heap_;
};

}  // namespace

Result<uint64_t> SourceIndex::Merge(const std::vector<const SourceIndex*>& parts,
                                    const std::string& path) {
  if (parts.empty()) return InvalidArgument("SourceIndex::Merge: no parts");
  // The block tables one after another: part p's ref r becomes base[p] + r.
  std::vector<uint64_t> base;
  uint64_t nrefs = 0;
  for (const SourceIndex* x : parts) {
    base.push_back(nrefs);
    nrefs += x->nrefs_;
  }
  if (nrefs > UINT32_MAX) return InvalidArgument("SourceIndex::Merge: more than 2^32 blocks");
  using A6 = std::array<uint8_t, 16>;
  std::vector<uint64_t> n4, n6;
  for (const SourceIndex* x : parts) {
    n4.push_back(x->n4_);
    n6.push_back(x->n6_);
  }
  auto v4_at = [&](size_t p, uint64_t i) -> Result<uint32_t> {
    const SourceIndex* x = parts[p];
    RETURN_IF_ERROR(x->Check(x->addr4_ + i * 4, 4));
    return Load<uint32_t>(x->addr4_ + i * 4);
  };
  auto v6_at = [&](size_t p, uint64_t i) -> Result<A6> {
    const SourceIndex* x = parts[p];
    RETURN_IF_ERROR(x->Check(x->addr6_ + i * 16, 16));
    A6 a;
    std::memcpy(a.data(), x->addr6_ + i * 16, 16);
    return a;
  };
  // Both passes walk every part through: their pages are given back every 2^20 addresses, so
  // that what stays resident is the parts' current pages, not every byte read.
  auto release = [&](uint64_t i) {
    if ((i & ((uint64_t{1} << 20) - 1)) != 0) return;
    for (const SourceIndex* x : parts) x->ReleasePages();
  };
  // First pass: how many distinct addresses, so that the front's size is known.
  std::vector<std::pair<size_t, uint64_t>> holders;
  auto distinct = [&](auto walker) -> Result<uint64_t> {
    typename decltype(walker)::Key k;
    for (uint64_t m = 0;; ++m) {
      release(m);
      ASSIGN_OR_RETURN(bool more, walker.Next(&k, &holders));
      if (!more) return m;
    }
  };
  ASSIGN_OR_RETURN(const uint64_t m4, distinct(AddressMerge<uint32_t>(n4, v4_at)));
  ASSIGN_OR_RETURN(const uint64_t m6, distinct(AddressMerge<A6>(n6, v6_at)));
  const uint64_t refs_at = 16;
  const uint64_t n4_at = refs_at + nrefs * 16;
  const uint64_t addr4_at = n4_at + 8;
  const uint64_t off4_at = (addr4_at + m4 * 4 + 7) / 8 * 8;
  const uint64_t n6_at = off4_at + (m4 + 1) * 8;
  const uint64_t addr6_at = n6_at + 8;
  const uint64_t off6_at = addr6_at + m6 * 16;
  const uint64_t e_at = off6_at + (m6 + 1) * 8;
  const uint64_t postings_at = e_at + 8;

  ASSIGN_OR_RETURN(OwnedFd file, OwnedFd::Create(path));
  const int fd = file.get();
  std::vector<uint8_t> b(kMagic, kMagic + 8);
  codec::PutFixed<uint32_t>(&b, static_cast<uint32_t>(nrefs));
  codec::PutFixed<uint32_t>(&b, 0);
  FileOut front(fd, path);
  RETURN_IF_ERROR(front.Append(b));
  for (const SourceIndex* x : parts) {
    for (uint64_t at = 0; at < uint64_t{x->nrefs_} * 16; at += ChunkSums::kChunk) {
      uint64_t len = std::min<uint64_t>(ChunkSums::kChunk, uint64_t{x->nrefs_} * 16 - at);
      RETURN_IF_ERROR(x->Check(x->refs_ + at, len));
      RETURN_IF_ERROR(front.Append(x->refs_ + at, len));
    }
  }
  RETURN_IF_ERROR(front.Flush());
  FileOut addrs(fd, path), offs(fd, path), postings(fd, path);
  postings.Seek(postings_at);
  IndexEntry one, sum;
  std::map<PortKey, uint64_t> ports;
  std::map<uint8_t, uint64_t> ttls;
  std::vector<uint8_t> buf;
  // Writes the merged entry of the address the holders hold, and its offset.
  auto merged = [&](const std::vector<std::pair<size_t, uint64_t>>& hs, bool v6) -> Status {
    ports.clear();
    ttls.clear();
    sum.visits.clear();
    sum.packets = 0;
    sum.first_us = INT64_MAX;
    sum.last_us = INT64_MIN;
    for (auto [p, i] : hs) {
      const SourceIndex* x = parts[p];
      const uint8_t* off = v6 ? x->off6_ : x->off4_;
      RETURN_IF_ERROR(x->Check(off + i * 8, 16));
      RETURN_IF_ERROR(
          x->DecodeEntry(Load<uint64_t>(off + i * 8), Load<uint64_t>(off + (i + 1) * 8), &one));
      sum.country = one.country;  // the last part's: the latest enrichment
      sum.asn = one.asn;
      sum.packets += one.packets;
      sum.first_us = std::min(sum.first_us, one.first_us);
      sum.last_us = std::max(sum.last_us, one.last_us);
      for (const auto& [k, n] : one.ports) ports[k] += n;
      for (const auto& [t, n] : one.ttls) ttls[t] += n;
      for (IndexEntry::V v : one.visits) {
        v.ref += base[p];
        sum.visits.push_back(v);
      }
    }
    sum.ports.assign(ports.begin(), ports.end());
    sum.ttls.assign(ttls.begin(), ttls.end());
    buf.clear();
    codec::PutFixed<uint64_t>(&buf, postings.at() - postings_at);
    RETURN_IF_ERROR(offs.Append(buf));
    buf.clear();
    sum.AppendTo(&buf);
    return postings.Append(buf);
  };
  // One family's addresses, entry offsets (the last one the end) and entries, `m` of them.
  auto family = [&](auto walker, uint64_t addr_at, uint64_t off_at, uint64_t m, bool v6) -> Status {
    addrs.Seek(addr_at);
    offs.Seek(off_at);
    typename decltype(walker)::Key k;
    for (uint64_t i = 0;; ++i) {
      release(i);
      ASSIGN_OR_RETURN(bool more, walker.Next(&k, &holders));
      if (!more) break;
      if (i >= m) return Internal("SourceIndex::Merge: the parts changed while merged");
      RETURN_IF_ERROR(addrs.Append(reinterpret_cast<const uint8_t*>(&k), sizeof k));
      RETURN_IF_ERROR(merged(holders, v6));
    }
    buf.clear();
    codec::PutFixed<uint64_t>(&buf, postings.at() - postings_at);
    RETURN_IF_ERROR(offs.Append(buf));
    RETURN_IF_ERROR(addrs.Flush());
    return offs.Flush();
  };
  RETURN_IF_ERROR(family(AddressMerge<uint32_t>(n4, v4_at), addr4_at, off4_at, m4, false));
  RETURN_IF_ERROR(family(AddressMerge<A6>(n6, v6_at), addr6_at, off6_at, m6, true));
  const uint64_t body = postings.at();
  RETURN_IF_ERROR(postings.Flush());
  // The counts between the sections (and the padding after the IPv4 addresses, zeros).
  std::vector<uint8_t> v;
  codec::PutFixed<uint64_t>(&v, m4);
  RETURN_IF_ERROR(front.WriteAt(n4_at, v));
  v.assign(off4_at - (addr4_at + m4 * 4), 0);
  RETURN_IF_ERROR(front.WriteAt(addr4_at + m4 * 4, v));
  v.clear();
  codec::PutFixed<uint64_t>(&v, m6);
  RETURN_IF_ERROR(front.WriteAt(n6_at, v));
  v.clear();
  codec::PutFixed<uint64_t>(&v, body - postings_at);
  RETURN_IF_ERROR(front.WriteAt(e_at, v));
  return SealChunked(fd, body, kMagic, path);
}

}  // namespace teiten
