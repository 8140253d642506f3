#include "store/source_index.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <queue>

#include "store/bits.h"
#include "store/chunk_sums.h"
#include "store/codec.h"
#include "store/durable.h"
#include "store/file_out.h"

namespace teiten {
namespace {

// Format 7 (written): entries in compressed column blocks, their times in whole seconds, and the
// IPv4 address gaps and first times as bit codes after each block's frame. Format 6 (read): the
// same with those two columns in the frame as varints. Format 5 (read): format 6 with times in
// microseconds. Format 4 (read): entries in place behind arrays of addresses and u64 offsets.
constexpr char kMagic7[8] = {'T', 'S', 'I', 'X', '0', '0', '0', '7'};
constexpr char kMagic6[8] = {'T', 'S', 'I', 'X', '0', '0', '0', '6'};
constexpr char kMagic5[8] = {'T', 'S', 'I', 'X', '0', '0', '0', '5'};
// The unit of a format-6 block's times, in microseconds.
constexpr int64_t kTimeUnit6 = 1'000'000;
constexpr int64_t kDaySeconds = 86'400;
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
// The whole seconds of a time in microseconds, rounded down (before 1970 too).
int64_t FloorSeconds(int64_t us) {
  return us / kTimeUnit6 - (us % kTimeUnit6 < 0);
}

int64_t Unzigzag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

}  // namespace

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

namespace {

// Format 5's blocks (docs/STORE_FORMAT.md): up to kBlockSources entries (256 before format 7),
// or kBlockRaw bytes of columns, compressed together; a record of 40 bytes per block says where
// it is and its first address. Format 7's blocks are four times as long: what each costs besides
// its entries (its record, header, column lengths, frame and frequent ports) was 0.47 bytes a
// source of a spoofed flood at 256, and a lookup decodes one block per index file.
constexpr uint32_t kBlockSources = 1024;
constexpr uint32_t kBlockSources6 = 256;
constexpr size_t kBlockRaw = 64 << 10;
constexpr uint64_t kMaxBlockRaw = uint64_t{1} << 28;  // what a reader will decompress
constexpr size_t kRecord = 40;  // 16-byte first address, u64 offset, u32 comp, u32 raw, u32 n, 0
constexpr size_t kTail = 40;    // u64 N4, N6, B4, B6, offset of the records
constexpr int kLevel = 3;
using A6 = std::array<uint8_t, 16>;

// The columns of a block, in this order after the block's count, base time and their lengths.
enum Column : size_t {
  kAddr,          // IPv4: varint gap from the previous address; IPv6: u8 shared prefix, the rest
  kVisitCount,    // varint V
  kCountry,       // u16
  kAsn,           // varint
  kPackets,       // varint
  kFirst,         // varint first µs − the block's base (its smallest first µs)
  kSpan,          // varint last µs − first µs
  kPortCount,     // varint P
  kPortGap,       // P × varint key gap (the first from 0)
  kPortPackets,   // P × varint
  kTtlCount,      // varint T
  kTtl,           // T × u8
  kTtlPackets,    // T × varint
  kVisitRef,      // V × varint block-table index gap (the first from 0)
  kVisitBlocks,   // V × varint blocks − 1
  kVisitSensor,   // V × varint
  kVisitPackets,  // V × varint
  kColumns
};

// The two address families as block keys: 16 bytes, IPv4 as its host-order u32 in the first 4.
template <bool V6>
struct Family {
  static bool Less(const A6& a, const A6& b) {
    if constexpr (V6) {
      return std::memcmp(a.data(), b.data(), 16) < 0;
    } else {
      return Load<uint32_t>(a.data()) < Load<uint32_t>(b.data());
    }
  }
  static void Put(std::vector<uint8_t>* o, const A6& prev, const A6& cur) {
    if constexpr (V6) {
      uint8_t s = 0;
      while (s < 15 && prev[s] == cur[s]) ++s;
      codec::PutU8(o, s);
      codec::PutBytes(o, cur.data() + s, 16 - s);
    } else {
      codec::PutVarint(o, Load<uint32_t>(cur.data()) - Load<uint32_t>(prev.data()));
    }
  }
  // The address after `prev`; false when the column is cut short or does not ascend.
  static bool Get(codec::Reader* r, const A6& prev, A6* cur) {
    if constexpr (V6) {
      uint8_t s = r->Fixed<uint8_t>();
      if (r->failed() || s > 15) return false;
      const uint8_t* rest = r->Bytes(16 - s);
      if (!rest) return false;
      std::memcpy(cur->data(), prev.data(), s);
      std::memcpy(cur->data() + s, rest, 16 - s);
    } else {
      uint64_t gap = r->Varint();
      uint32_t p = Load<uint32_t>(prev.data());
      if (r->failed() || gap == 0 || gap > UINT32_MAX - p) return false;
      *cur = {};
      uint32_t c = p + static_cast<uint32_t>(gap);
      std::memcpy(cur->data(), &c, 4);
    }
    return Less(prev, *cur);
  }
};

A6 KeyOf(uint32_t v4) {
  A6 k{};
  std::memcpy(k.data(), &v4, 4);
  return k;
}
A6 KeyOf(const IpAddr& a) {
  return a.is_v4() ? KeyOf(a.v4()) : a.bytes;
}

// Where a writer's bytes go (a buffer, or a file through FileOut), and how many have gone.
struct Sink {
  std::function<Status(const uint8_t*, size_t)> write;
  uint64_t at = 0;
  Status Put(const std::vector<uint8_t>& v) {
    at += v.size();
    return write(v.data(), v.size());
  }
};

// The local day an entry's times are kept against (format 7): its earliest visit's, whose
// segment holds its earliest row; 0 for an entry without visits (which no reader accepts).
template <typename DayOf>
int64_t EntryDay(const std::vector<IndexEntry::V>& visits, DayOf day_of) {
  if (visits.empty()) return 0;
  int64_t d = INT64_MAX;
  for (const IndexEntry::V& v : visits) d = std::min<int64_t>(d, day_of(v.ref));
  return d;
}

// Bits needed for values up to `v`.
int Width(uint64_t v) {
  return v == 0 ? 0 : 64 - __builtin_clzll(v);
}

// The Rice parameter that codes `values` in the fewest bits (0 for none), of those near the
// logarithm of their mean, where a Rice code's best lies (trying all 32 cost a tenth of a
// second of a flood's ingest).
template <typename T>
int BestRiceK(const std::vector<T>& values) {
  if (values.empty()) return 0;
  uint64_t sum = 0;
  for (T v : values) sum += v;
  const int around = Width(sum / values.size());
  int best = 0;
  uint64_t fewest = UINT64_MAX;
  for (int k = std::max(0, around - 3); k <= std::min(bits::rice::kMaxK, around + 1); ++k) {
    uint64_t n = 0;
    for (T v : values) n += bits::rice::CodeBits(v, k);
    if (n < fewest) {
      fewest = n;
      best = k;
    }
  }
  return best;
}

// Writes one family's entries, ascending, as blocks (format 7) to `sink`; keeps their records.
// `days`: the local day of each block-table entry.
template <bool V6>
class BlockWriter {
 public:
  BlockWriter(Sink* sink, const std::vector<int32_t>* days) : sink_(sink), days_(days) {}
  Status Add(const A6& key, const IndexEntry& e) {
    std::vector<uint8_t>* c = cols_.data();
    if (n_ == 0) {
      first_ = key;
    } else if constexpr (V6) {
      Family<V6>::Put(&c[kAddr], prev_, key);
    } else {
      gaps_.push_back(Load<uint32_t>(key.data()) - Load<uint32_t>(prev_.data()));
    }
    prev_ = key;
    codec::PutVarint(&c[kVisitCount], e.visits.size());
    codec::PutFixed<uint16_t>(&c[kCountry], e.country);
    codec::PutVarint(&c[kAsn], e.asn);
    codec::PutVarint(&c[kPackets], e.packets);
    // Whole seconds (format 6): what `teiten ip` shows. The first second against the entry's
    // day (format 7): a spoofed flood's one-packet source is at a random second of its 38 days,
    // 22 bits, but of its day only 17, and the day is its visit's, which the entry holds anyway.
    const int64_t first_s = FloorSeconds(e.first_us);
    const int64_t day = EntryDay(e.visits, [&](uint64_t r) { return (*days_)[r]; });
    firsts_.push_back(first_s - day * kDaySeconds);
    codec::PutVarint(&c[kSpan], static_cast<uint64_t>(FloorSeconds(e.last_us) - first_s));
    codec::PutVarint(&c[kPortCount], e.ports.size());
    // The first key is coded at Flush (a symbol of the block's frequent keys, or the key itself
    // in the column), the later ones as gaps here.
    const size_t rest_at = rest_.size();
    for (size_t j = 0; j < e.ports.size(); ++j) {
      if (j > 0) codec::PutVarint(&rest_, e.ports[j].first - e.ports[j - 1].first);
      codec::PutVarint(&c[kPortPackets], e.ports[j].second);
    }
    port_firsts_.push_back({e.ports.empty() ? kNoKey : e.ports.front().first, rest_at});
    codec::PutVarint(&c[kTtlCount], e.ttls.size());
    for (const auto& [t, n] : e.ttls) {
      codec::PutU8(&c[kTtl], t);
      codec::PutVarint(&c[kTtlPackets], n);
    }
    uint64_t prev_ref = 0;
    for (const IndexEntry::V& v : e.visits) {
      codec::PutVarint(&c[kVisitRef], v.ref - prev_ref);
      codec::PutVarint(&c[kVisitBlocks], v.blocks_m1);
      codec::PutVarint(&c[kVisitSensor], v.sensor);
      codec::PutVarint(&c[kVisitPackets], v.packets);
      prev_ref = v.ref;
    }
    ++n_;
    ++sources_;
    size_t raw = 0;
    for (const auto& col : cols_) raw += col.size();
    return n_ == kBlockSources || raw >= kBlockRaw ? Flush() : OkStatus();
  }
  Status Flush() {
    if (n_ == 0) return OkStatus();
    // Each entry's first port key: the keys that begin two entries or more are the block's
    // frequent keys, most frequent first; an entry's symbol is its key's rank + 1 there, or 0
    // when its key is not one (the key is then in the column).
    std::vector<PortKey> keys;
    for (const auto& [k, at] : port_firsts_) {
      if (k != kNoKey) keys.push_back(k);
    }
    std::sort(keys.begin(), keys.end());
    std::vector<std::pair<uint32_t, PortKey>> counted;  // (uses, key), for the ranks
    for (size_t i = 0; i < keys.size();) {
      size_t j = i;
      while (j < keys.size() && keys[j] == keys[i]) ++j;
      if (j - i >= 2) counted.push_back({static_cast<uint32_t>(j - i), keys[i]});
      i = j;
    }
    std::sort(counted.begin(), counted.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    // Each frequent key's symbol, by key (a block has up to 1,024 entries and 512 such keys).
    std::vector<std::pair<PortKey, uint64_t>> symbol_of;
    for (size_t r = 0; r < counted.size(); ++r) symbol_of.push_back({counted[r].second, r + 1});
    std::sort(symbol_of.begin(), symbol_of.end());
    symbols_.clear();
    std::vector<uint8_t>& gaps_col = cols_[kPortGap];
    for (size_t i = 0; i < port_firsts_.size(); ++i) {
      const auto [k, at] = port_firsts_[i];
      const size_t end = i + 1 < port_firsts_.size() ? port_firsts_[i + 1].second : rest_.size();
      if (k == kNoKey) continue;
      auto it =
          std::lower_bound(symbol_of.begin(), symbol_of.end(), std::make_pair(k, uint64_t{0}));
      const uint64_t sym = it != symbol_of.end() && it->first == k ? it->second : 0;
      symbols_.push_back(sym);
      if (sym == 0) codec::PutVarint(&gaps_col, k);
      gaps_col.insert(gaps_col.end(), rest_.begin() + static_cast<ptrdiff_t>(at),
                      rest_.begin() + static_cast<ptrdiff_t>(end));
    }
    // The bit codes: the IPv4 address gaps less one as a Rice code with the parameter that
    // takes fewest bits, then each first second less the block's smallest in w bits, then the
    // port symbols as a Rice code likewise.
    const int64_t base = *std::min_element(firsts_.begin(), firsts_.end());
    uint64_t widest = 0;
    for (int64_t f : firsts_) {
      widest = std::max(widest, static_cast<uint64_t>(f) - static_cast<uint64_t>(base));
    }
    const int w = Width(widest);
    for (uint32_t& g : gaps_) --g;
    const int k = BestRiceK(gaps_);
    const int ks = BestRiceK(symbols_);
    trailer_.assign(1, static_cast<uint8_t>(k));
    bits::Writer bw(&trailer_);
    for (uint32_t g : gaps_) bits::rice::Put(&bw, g, k);
    for (int64_t f : firsts_) {
      bw.PutWide(static_cast<uint64_t>(f) - static_cast<uint64_t>(base), w);
    }
    for (uint64_t sym : symbols_) bits::rice::Put(&bw, sym, ks);
    bw.Flush();
    raw_.clear();
    codec::PutVarint(&raw_, n_);
    codec::PutVarint(&raw_, Zigzag(base));
    codec::PutU8(&raw_, static_cast<uint8_t>(w));
    codec::PutU8(&raw_, static_cast<uint8_t>(ks));
    codec::PutVarint(&raw_, counted.size());
    for (const auto& [uses, key] : counted) codec::PutVarint(&raw_, key);
    for (const auto& col : cols_) codec::PutVarint(&raw_, col.size());
    for (auto& col : cols_) {
      raw_.insert(raw_.end(), col.begin(), col.end());
      col.clear();
    }
    std::vector<uint8_t> comp = codec::Compress(raw_.data(), raw_.size(), kLevel);
    size_t r = records_.size();
    records_.resize(r + kRecord);
    uint8_t* rec = records_.data() + r;
    std::memcpy(rec, first_.data(), 16);
    uint64_t off = sink_->at;
    std::memcpy(rec + 16, &off, 8);
    uint32_t fields[4] = {static_cast<uint32_t>(comp.size()), static_cast<uint32_t>(raw_.size()),
                          n_, static_cast<uint32_t>(trailer_.size())};
    std::memcpy(rec + 24, fields, 16);
    n_ = 0;
    firsts_.clear();
    gaps_.clear();
    port_firsts_.clear();
    rest_.clear();
    RETURN_IF_ERROR(sink_->Put(comp));
    return sink_->Put(trailer_);
  }
  uint64_t sources() const { return sources_; }
  uint64_t blocks() const { return records_.size() / kRecord; }
  const std::vector<uint8_t>& records() const { return records_; }

 private:
  Sink* sink_;
  const std::vector<int32_t>* days_;
  std::array<std::vector<uint8_t>, kColumns> cols_;
  static constexpr PortKey kNoKey = UINT32_MAX;  // an entry without ports (none is written)
  std::vector<int64_t> firsts_;
  std::vector<uint32_t> gaps_;                           // IPv4 address gaps
  std::vector<std::pair<PortKey, size_t>> port_firsts_;  // first key, its later gaps in rest_
  std::vector<uint8_t> rest_;
  std::vector<uint64_t> symbols_;
  std::vector<uint8_t> raw_, records_, trailer_;
  A6 first_{}, prev_{};
  uint32_t n_ = 0;
  uint64_t sources_ = 0;
};

// The end of a format 5 file's body: both families' records, then the tail.
Status FinishBlocks(Sink* sink, const BlockWriter<false>& w4, const BlockWriter<true>& w6) {
  std::vector<uint8_t> t;
  const uint64_t records_at = sink->at;
  RETURN_IF_ERROR(sink->Put(w4.records()));
  RETURN_IF_ERROR(sink->Put(w6.records()));
  codec::PutFixed<uint64_t>(&t, w4.sources());
  codec::PutFixed<uint64_t>(&t, w6.sources());
  codec::PutFixed<uint64_t>(&t, w4.blocks());
  codec::PutFixed<uint64_t>(&t, w6.blocks());
  codec::PutFixed<uint64_t>(&t, records_at);
  return sink->Put(t);
}

}  // namespace

Status SourceIndexBuilder::Write(const std::string& path) {
  std::sort(v4_.begin(), v4_.end());
  std::sort(v6_.begin(), v6_.end());
  std::vector<uint8_t> out(kMagic7, kMagic7 + 8);
  codec::PutFixed<uint32_t>(&out, static_cast<uint32_t>(refs_.size()));
  codec::PutFixed<uint32_t>(&out, 0);
  for (size_t i = 0; i < refs_.size(); ++i) {
    codec::PutFixed<uint64_t>(&out, refs_[i].segment);
    codec::PutFixed<uint32_t>(&out, refs_[i].block);
    codec::PutFixed<int32_t>(&out, ref_days_[i]);
  }
  Sink sink{[&out](const uint8_t* p, size_t n) {
              out.insert(out.end(), p, p + n);
              return OkStatus();
            },
            out.size()};
  // Per source: the sums of its visits, then the visits (see docs/STORE_FORMAT.md).
  std::map<PortKey, uint64_t> ports;
  IndexEntry e;
  auto sum_visits = [&](auto begin, auto end) {
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
  };
  BlockWriter<false> w4(&sink, &ref_days_);
  for (size_t i = 0; i < v4_.size();) {
    size_t j = i;
    while (j < v4_.size() && v4_[j].first == v4_[i].first) ++j;
    sum_visits(v4_.begin() + static_cast<ptrdiff_t>(i), v4_.begin() + static_cast<ptrdiff_t>(j));
    RETURN_IF_ERROR(w4.Add(KeyOf(v4_[i].first), e));
    i = j;
  }
  RETURN_IF_ERROR(w4.Flush());
  BlockWriter<true> w6(&sink, &ref_days_);
  for (size_t i = 0; i < v6_.size();) {
    size_t j = i;
    while (j < v6_.size() && v6_[j].first == v6_[i].first) ++j;
    sum_visits(v6_.begin() + static_cast<ptrdiff_t>(i), v6_.begin() + static_cast<ptrdiff_t>(j));
    RETURN_IF_ERROR(w6.Add(v6_[i].first.bytes, e));
    i = j;
  }
  RETURN_IF_ERROR(w6.Flush());
  RETURN_IF_ERROR(FinishBlocks(&sink, w4, w6));
  ChunkSums::Append(&out);
  codec::PutFixed<uint64_t>(&out, XXH64(out.data(), out.size(), 0));
  out.insert(out.end(), kMagic7, kMagic7 + 8);
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
  auto is = [&](const char* magic) {
    return std::memcmp(x->base_, magic, 8) == 0 &&
           std::memcmp(x->base_ + x->size_ - 8, magic, 8) == 0;
  };
  bool v3 = is(kMagic3);
  x->format_ = v3 ? 3 : is(kMagic7) ? 7 : is(kMagic6) ? 6 : is(kMagic5) ? 5 : 4;
  if (!v3 && x->format_ < 5 &&
      (std::memcmp(x->base_, kMagic, 8) != 0 ||
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
  if (x->format_ >= 5) {
    x->blocks_at_ = at;
    RETURN_IF_ERROR(x->OpenBlocks());
    return x;
  }
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

Status SourceIndex::Summarise(const IndexEntry& e, SourceSummary* out) const {
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

Status SourceIndex::OpenBlocks() {
  auto bad = [&](const std::string& what) {
    return DataLoss(fmt::format("source index {}: {}", path_, what));
  };
  const uint64_t body = sums_.body_size();
  if (body < blocks_at_ + kTail) return bad("tail cut short");
  const uint8_t* t = base_ + body - kTail;
  RETURN_IF_ERROR(Check(t, kTail));
  n4_ = Load<uint64_t>(t);
  n6_ = Load<uint64_t>(t + 8);
  b4_ = Load<uint64_t>(t + 16);
  b6_ = Load<uint64_t>(t + 24);
  records_at_ = Load<uint64_t>(t + 32);
  const uint64_t room = body - kTail;
  if (records_at_ < blocks_at_ || records_at_ > room || b4_ > (room - records_at_) / kRecord ||
      b6_ != (room - records_at_) / kRecord - b4_ || (room - records_at_) % kRecord != 0) {
    return bad(
        fmt::format("block records ({} and {} at {}) do not fit the file", b4_, b6_, records_at_));
  }
  // Each block holds 1 to kBlockSources sources (a block may hold fewer: one large entry).
  const uint64_t most = format_ >= 7 ? kBlockSources : kBlockSources6;
  auto fits = [&](uint64_t n, uint64_t b) { return n >= b && n / most <= b; };
  if (!fits(n4_, b4_) || !fits(n6_, b6_)) {
    return bad(fmt::format("{} IPv4 and {} IPv6 sources cannot fill {} and {} blocks", n4_, n6_,
                           b4_, b6_));
  }
  return OkStatus();
}

Status SourceIndex::DecodeBlock(bool v6, uint64_t b, std::vector<A6>* keys,
                                std::vector<IndexEntry>* entries, const A6* only) const {
  auto bad = [&](const std::string& what) {
    return DataLoss(
        fmt::format("source index {}: {} block {}: {}", path_, v6 ? "IPv6" : "IPv4", b, what));
  };
  if (b >= (v6 ? b6_ : b4_)) return bad("no such block");
  const uint8_t* rec = base_ + records_at_ + (v6 ? b4_ + b : b) * kRecord;
  RETURN_IF_ERROR(Check(rec, kRecord));
  A6 first;
  std::memcpy(first.data(), rec, 16);
  const uint64_t off = Load<uint64_t>(rec + 16);
  const uint32_t comp = Load<uint32_t>(rec + 24), raw = Load<uint32_t>(rec + 28),
                 n = Load<uint32_t>(rec + 32);
  // Format 7: the bit codes' bytes after the frame (before: 0).
  const uint32_t trailer = Load<uint32_t>(rec + 36);
  if (format_ < 7 && trailer != 0) return bad("its record's last field is not 0");
  if (off < blocks_at_ || off > records_at_ || uint64_t{comp} + trailer > records_at_ - off) {
    return bad(fmt::format("{} bytes at {} lie outside the blocks", uint64_t{comp} + trailer, off));
  }
  if (n == 0 || n > (format_ >= 7 ? kBlockSources : kBlockSources6) || raw > kMaxBlockRaw) {
    return bad(fmt::format("{} sources in {} bytes is not a block", n, raw));
  }
  RETURN_IF_ERROR(Check(base_ + off, uint64_t{comp} + trailer));
  // Format 7's bit codes: the IPv4 address gaps' Rice parameter (a byte), the gaps, the first
  // offsets, the port symbols. The addresses come first, before the frame is decompressed: a
  // lookup of an address the block does not hold stops there.
  if (format_ >= 7 && trailer == 0) return bad("no bit codes");
  const int k = format_ >= 7 ? base_[off + comp] : 0;
  if (k > bits::rice::kMaxK) return bad(fmt::format("address Rice parameter {}", k));
  bits::Reader br(base_ + off + comp + (format_ >= 7), trailer - (format_ >= 7),
                  fmt::format("source index {}: {} block {}", path_, v6 ? "IPv6" : "IPv4", b));
  const bool coded_addr = format_ >= 7 && !v6;
  keys->resize(n);
  if (!v6 && std::any_of(first.begin() + 4, first.end(), [](uint8_t x) { return x != 0; })) {
    return bad("its first IPv4 address is not one");
  }
  (*keys)[0] = first;
  if (coded_addr) {
    for (uint32_t i = 1; i < n; ++i) {
      const uint32_t prev = Load<uint32_t>((*keys)[i - 1].data());
      ASSIGN_OR_RETURN(uint64_t g, bits::rice::Get(&br, k, uint64_t{UINT32_MAX} - 1));
      if (g + 1 > uint64_t{UINT32_MAX} - prev) {
        return bad(fmt::format("address {} out of range", i));
      }
      (*keys)[i] = KeyOf(static_cast<uint32_t>(prev + g + 1));
    }
    if (only && !std::binary_search(keys->begin(), keys->end(), *only, Family<false>::Less)) {
      keys->clear();
      entries->clear();
      return OkStatus();
    }
  }
  if (ZSTD_getFrameContentSize(base_ + off, comp) != raw) {
    return bad("its frame's size differs from its record's");
  }
  std::vector<uint8_t> buf;
  if (!codec::Decompress(base_ + off, comp, raw, &buf)) return bad("does not decompress");
  codec::Reader head(buf.data(), buf.size());
  if (head.Varint() != n) return bad("its count differs from its record's");
  // In the block's unit of time; in format 7 the smallest first second less its entry's day.
  const int64_t base = Unzigzag(head.Varint());
  const int64_t unit = format_ >= 6 ? kTimeUnit6 : 1;
  const int w = format_ >= 7 ? head.Fixed<uint8_t>() : 0;
  const int ks = format_ >= 7 ? head.Fixed<uint8_t>() : 0;
  if (w > 64 || ks > bits::rice::kMaxK) return bad(fmt::format("bit widths {} and {}", w, ks));
  // Format 7: the block's frequent first port keys, most frequent first.
  std::vector<PortKey> frequent(format_ >= 7 ? head.Varint() : 0);
  if (frequent.size() > n) return bad("more frequent ports than sources");
  for (PortKey& key : frequent) {
    const uint64_t v = head.Varint();
    if (v > UINT32_MAX) return bad("a frequent port out of range");
    key = static_cast<PortKey>(v);
  }
  std::vector<codec::Reader> col;
  std::array<uint64_t, kColumns> len{};
  for (auto& l : len) l = head.Varint();
  if (head.failed()) return bad("header cut short");
  const uint8_t* p = head.data();
  uint64_t left = head.remaining();
  for (size_t c = 0; c < kColumns; ++c) {
    if (len[c] > left) return bad(fmt::format("column {} overruns the block", c));
    col.emplace_back(p, len[c]);
    p += len[c];
    left -= len[c];
  }
  if (left != 0) return bad("bytes after the columns");
  entries->resize(n);
  if (coded_addr && len[kAddr] != 0) return bad("IPv4 addresses both coded and in columns");
  if (format_ >= 7 && len[kFirst] != 0) return bad("first times both coded and in columns");
  for (uint32_t i = 1; i < n && !coded_addr; ++i) {
    if (!(v6 ? Family<true>::Get(&col[kAddr], (*keys)[i - 1], &(*keys)[i])
             : Family<false>::Get(&col[kAddr], (*keys)[i - 1], &(*keys)[i]))) {
      return bad(fmt::format("address {} cut short or out of order", i));
    }
  }
  std::vector<uint64_t> firsts(format_ >= 7 ? n : 0);
  for (uint64_t& f : firsts) {
    ASSIGN_OR_RETURN(f, br.Wide(w));
  }
  // A lookup keeps only the entry of the address it asks for; the others are read (the columns
  // run through every entry) into one scratch entry, which allocates nothing after the first.
  const size_t wanted =
      only ? static_cast<size_t>(std::lower_bound(keys->begin(), keys->end(), *only,
                                                  v6 ? Family<true>::Less : Family<false>::Less) -
                                 keys->begin())
           : 0;
  IndexEntry scratch;
  for (uint32_t i = 0; i < n; ++i) {
    IndexEntry& e = only && i != wanted ? scratch : (*entries)[i];
    const uint64_t nv = col[kVisitCount].Varint();
    e.country = col[kCountry].Fixed<uint16_t>();
    const uint64_t asn = col[kAsn].Varint();
    e.asn = static_cast<uint32_t>(asn);
    e.packets = col[kPackets].Varint();
    const uint64_t first_gap = format_ >= 7 ? firsts[i] : col[kFirst].Varint();
    const uint64_t span = col[kSpan].Varint();
    if (asn > UINT32_MAX) return bad(fmt::format("source {}: ASN out of range", i));
    const uint64_t np = col[kPortCount].Varint();
    // Each key takes a byte of the column at least, but format 7's first may be a symbol.
    if (np > col[kPortGap].remaining() + (format_ >= 7)) {
      return bad(fmt::format("source {}: bad port count", i));
    }
    e.ports.clear();
    uint64_t key = 0;
    for (uint64_t j = 0; j < np; ++j) {
      uint64_t gap = 0;
      if (j == 0 && format_ >= 7) {
        // Its symbol: 0, the key in the column; else the rank + 1 of a frequent key.
        ASSIGN_OR_RETURN(uint64_t sym, bits::rice::Get(&br, ks, frequent.size()));
        gap = sym == 0 ? col[kPortGap].Varint() : frequent[sym - 1];
      } else {
        gap = col[kPortGap].Varint();
      }
      if ((j > 0 && gap == 0) || gap > UINT32_MAX - key) {
        return bad(fmt::format("source {}: ports out of order", i));
      }
      key += gap;
      e.ports.push_back({static_cast<PortKey>(key), col[kPortPackets].Varint()});
    }
    const uint64_t nt = col[kTtlCount].Varint();
    if (nt > 256) return bad(fmt::format("source {}: bad TTL count", i));
    e.ttls.clear();
    for (uint64_t j = 0; j < nt; ++j) {
      uint8_t t = col[kTtl].Fixed<uint8_t>();
      e.ttls.push_back({t, col[kTtlPackets].Varint()});
    }
    if (nv > col[kVisitRef].remaining()) return bad(fmt::format("source {}: bad visit count", i));
    e.visits.clear();
    uint64_t ref = 0;
    for (uint64_t j = 0; j < nv; ++j) {
      IndexEntry::V x;
      ref += col[kVisitRef].Varint();
      x.ref = ref;
      x.blocks_m1 = col[kVisitBlocks].Varint();
      x.sensor = col[kVisitSensor].Varint();
      x.packets = col[kVisitPackets].Varint();
      if (ref >= nrefs_ || x.blocks_m1 >= nrefs_ - ref) {
        return bad(fmt::format("source {}: block reference out of range", i));
      }
      e.visits.push_back(x);
    }
    // Format 7: the first second against the entry's day (its earliest visit's).
    __int128 day = 0;
    if (format_ >= 7) {
      for (const IndexEntry::V& v : e.visits) RETURN_IF_ERROR(Check(refs_ + v.ref * 16, 16));
      day = EntryDay(e.visits, [&](uint64_t r) { return Load<int32_t>(refs_ + r * 16 + 12); });
    }
    const __int128 first_us = (day * kDaySeconds + base + first_gap) * unit;
    const __int128 last_us = first_us + static_cast<__int128>(span) * unit;
    if (first_us < INT64_MIN || first_us > INT64_MAX || last_us > INT64_MAX) {
      return bad(fmt::format("source {}: time out of range", i));
    }
    e.first_us = static_cast<int64_t>(first_us);
    e.last_us = static_cast<int64_t>(last_us);
  }
  if (format_ >= 7) {
    ASSIGN_OR_RETURN(bool end, br.AtEnd());
    if (!end) return bad("bits after its codes");
  }
  for (size_t c = 0; c < kColumns; ++c) {
    if (col[c].failed() || !col[c].done()) {
      return bad(fmt::format("column {} {}", c, col[c].failed() ? "cut short" : "too long"));
    }
  }
  return OkStatus();
}

// Walks one address family of an index in order, entry by entry, whatever its format; checks
// that the addresses ascend and that the family holds as many as the index says.
template <typename K>
class IndexCursor {
 public:
  static constexpr bool kV6 = std::is_same_v<K, A6>;
  explicit IndexCursor(const SourceIndex* x) : x_(x), n_(kV6 ? x->n6_ : x->n4_) {}
  // The next address (its block key) and entry; false after the last.
  Result<bool> Next(A6* key, IndexEntry* e) {
    if (x_->format_ >= 5) {
      while (j_ == keys_.size()) {
        if (b_ == (kV6 ? x_->b6_ : x_->b4_)) return End();
        RETURN_IF_ERROR(x_->DecodeBlock(kV6, b_++, &keys_, &entries_));
        j_ = 0;
      }
      *key = keys_[j_];
      *e = std::move(entries_[j_++]);
    } else {
      if (i_ == n_) return End();
      const size_t width = kV6 ? 16 : 4;
      const uint8_t* addr = (kV6 ? x_->addr6_ : x_->addr4_) + i_ * width;
      const uint8_t* off = (kV6 ? x_->off6_ : x_->off4_) + i_ * 8;
      RETURN_IF_ERROR(x_->Check(addr, width));
      *key = {};
      std::memcpy(key->data(), addr, width);
      RETURN_IF_ERROR(x_->Check(off, 16));
      RETURN_IF_ERROR(x_->DecodeEntry(Load<uint64_t>(off), Load<uint64_t>(off + 8), e));
    }
    if (i_ > 0 && !Family<kV6>::Less(prev_, *key)) {
      return DataLoss(fmt::format("source index {}: {} address {} out of order", x_->path_,
                                  kV6 ? "IPv6" : "IPv4", i_));
    }
    if (i_ == n_) return Miscount();
    prev_ = *key;
    ++i_;
    return true;
  }
  static IpAddr Ip(const A6& k) {
    return kV6 ? IpAddr::V6(k.data()) : IpAddr::V4(Load<uint32_t>(k.data()));
  }

 private:
  Result<bool> End() {
    if (i_ != n_) return Miscount();
    return false;
  }
  Status Miscount() const {
    return DataLoss(fmt::format("source index {}: its {} blocks hold other than its {} sources",
                                x_->path_, kV6 ? "IPv6" : "IPv4", n_));
  }
  const SourceIndex* x_;
  uint64_t n_, i_ = 0, b_ = 0;
  size_t j_ = 0;
  std::vector<A6> keys_;
  std::vector<IndexEntry> entries_;
  A6 prev_{};
};

Status SourceIndex::PacketsBySegment(std::map<uint64_t, uint64_t>* out) const {
  auto walk = [&](auto cursor) -> Status {
    A6 k;
    IndexEntry e;
    for (uint64_t i = 0;; ++i) {
      ASSIGN_OR_RETURN(bool more, cursor.Next(&k, &e));
      if (!more) return OkStatus();
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
  };
  RETURN_IF_ERROR(walk(IndexCursor<uint32_t>(this)));
  return walk(IndexCursor<A6>(this));
}

Status SourceIndex::ForEachSource(const std::function<Status(const IpAddr&)>& f) const {
  auto walk = [&](auto cursor) -> Status {
    A6 k;
    IndexEntry e;
    for (;;) {
      ASSIGN_OR_RETURN(bool more, cursor.Next(&k, &e));
      if (!more) return OkStatus();
      RETURN_IF_ERROR(f(cursor.Ip(k)));
    }
  };
  RETURN_IF_ERROR(walk(IndexCursor<uint32_t>(this)));
  return walk(IndexCursor<A6>(this));
}

Result<bool> SourceIndex::Lookup(const IpAddr& addr, SourceSummary* out) const {
  const bool v6 = !addr.is_v4();
  IndexEntry e;
  if (format_ >= 5) {
    // The last block whose first address is not above `addr`, then the address within it.
    const A6 want = KeyOf(addr);
    auto less = [&](const A6& a, const A6& b) {
      return v6 ? Family<true>::Less(a, b) : Family<false>::Less(a, b);
    };
    const uint64_t records = v6 ? b6_ : b4_;
    const uint8_t* rec = base_ + records_at_ + (v6 ? b4_ : 0) * kRecord;
    uint64_t lo = 0, hi = records;  // blocks [0, lo) start at or below `want`
    while (lo < hi) {
      uint64_t mid = lo + (hi - lo) / 2;
      RETURN_IF_ERROR(Check(rec + mid * kRecord, 16));
      A6 first;
      std::memcpy(first.data(), rec + mid * kRecord, 16);
      if (!less(want, first)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo == 0) return false;
    std::vector<A6> keys;
    std::vector<IndexEntry> entries;
    RETURN_IF_ERROR(DecodeBlock(v6, lo - 1, &keys, &entries, &want));
    auto it = std::lower_bound(keys.begin(), keys.end(), want, less);
    if (it == keys.end() || *it != want) return false;
    RETURN_IF_ERROR(Summarise(entries[static_cast<size_t>(it - keys.begin())], out));
    return true;
  }
  const size_t width = v6 ? 16 : 4;
  const uint8_t* addrs = v6 ? addr6_ : addr4_;
  const uint8_t* offs = v6 ? off6_ : off4_;
  const uint64_t n = v6 ? n6_ : n4_;
  auto cmp = [&](uint64_t i) -> int {  // the i-th address against `addr`
    const uint8_t* a = addrs + i * width;
    if (v6) return std::memcmp(a, addr.bytes.data(), 16);
    uint32_t x = Load<uint32_t>(a), want = addr.v4();
    return x < want ? -1 : x > want ? 1 : 0;
  };
  uint64_t lo = 0, hi = n;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    RETURN_IF_ERROR(Check(addrs + mid * width, width));
    if (cmp(mid) < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == n) return false;
  RETURN_IF_ERROR(Check(addrs + lo * width, width));
  if (cmp(lo) != 0) return false;
  RETURN_IF_ERROR(Check(offs + lo * 8, 16));
  RETURN_IF_ERROR(
      DecodeEntry(Load<uint64_t>(offs + lo * 8), Load<uint64_t>(offs + (lo + 1) * 8), &e));
  RETURN_IF_ERROR(Summarise(e, out));
  return true;
}

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
  ASSIGN_OR_RETURN(OwnedFd file, OwnedFd::Create(path));
  const int fd = file.get();
  FileOut out(fd, path);
  Sink sink{[&out](const uint8_t* p, size_t n) { return out.Append(p, n); }, 0};
  std::vector<uint8_t> b(kMagic7, kMagic7 + 8);
  codec::PutFixed<uint32_t>(&b, static_cast<uint32_t>(nrefs));
  codec::PutFixed<uint32_t>(&b, 0);
  RETURN_IF_ERROR(sink.Put(b));
  std::vector<int32_t> days;  // of the merged block table, for the entries' times
  days.reserve(nrefs);
  for (const SourceIndex* x : parts) {
    for (uint64_t at = 0; at < uint64_t{x->nrefs_} * 16; at += ChunkSums::kChunk) {
      uint64_t len = std::min<uint64_t>(ChunkSums::kChunk, uint64_t{x->nrefs_} * 16 - at);
      RETURN_IF_ERROR(x->Check(x->refs_ + at, len));
      b.assign(x->refs_ + at, x->refs_ + at + len);
      for (uint64_t e = 0; e < len; e += 16) days.push_back(Load<int32_t>(b.data() + e + 12));
      RETURN_IF_ERROR(sink.Put(b));
    }
  }
  // A k-way walk over each family: every distinct address once, its entries summed in part
  // order (the last part's enrichment is the latest). What it holds is a decoded block per part.
  std::map<PortKey, uint64_t> ports;
  std::map<uint8_t, uint64_t> ttls;
  IndexEntry sum;
  auto family = [&](auto cursor_type, auto& writer) -> Status {
    using Cursor = decltype(cursor_type);
    constexpr bool v6 = Cursor::kV6;
    std::vector<Cursor> cursors;
    std::vector<A6> keys(parts.size());
    std::vector<IndexEntry> entries(parts.size());
    std::vector<bool> live(parts.size());
    for (const SourceIndex* x : parts) cursors.emplace_back(x);
    auto later = [](const std::pair<A6, size_t>& x, const std::pair<A6, size_t>& y) {
      if (Family<v6>::Less(x.first, y.first)) return false;
      if (Family<v6>::Less(y.first, x.first)) return true;
      return x.second > y.second;  // equal addresses: the earlier part first
    };
    std::priority_queue<std::pair<A6, size_t>, std::vector<std::pair<A6, size_t>>, decltype(later)>
        heap(later);
    for (size_t p = 0; p < parts.size(); ++p) {
      ASSIGN_OR_RETURN(bool more, cursors[p].Next(&keys[p], &entries[p]));
      if (more) heap.push({keys[p], p});
    }
    for (uint64_t i = 0; !heap.empty(); ++i) {
      // Every 2^20 addresses the parts' pages are given back: what stays resident is the
      // pages being read, not every byte read.
      if ((i & ((uint64_t{1} << 20) - 1)) == 0) {
        for (const SourceIndex* x : parts) x->ReleasePages();
      }
      const A6 key = heap.top().first;
      ports.clear();
      ttls.clear();
      sum.visits.clear();
      sum.packets = 0;
      sum.first_us = INT64_MAX;
      sum.last_us = INT64_MIN;
      while (!heap.empty() && heap.top().first == key) {
        const size_t p = heap.top().second;
        heap.pop();
        const IndexEntry& one = entries[p];
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
        ASSIGN_OR_RETURN(bool more, cursors[p].Next(&keys[p], &entries[p]));
        if (more) heap.push({keys[p], p});
      }
      sum.ports.assign(ports.begin(), ports.end());
      sum.ttls.assign(ttls.begin(), ttls.end());
      RETURN_IF_ERROR(writer.Add(key, sum));
    }
    return writer.Flush();
  };
  BlockWriter<false> w4(&sink, &days);
  RETURN_IF_ERROR(family(IndexCursor<uint32_t>(parts[0]), w4));
  BlockWriter<true> w6(&sink, &days);
  RETURN_IF_ERROR(family(IndexCursor<A6>(parts[0]), w6));
  RETURN_IF_ERROR(FinishBlocks(&sink, w4, w6));
  RETURN_IF_ERROR(out.Flush());
  return SealChunked(fd, sink.at, kMagic7, path);
}

}  // namespace teiten
