#include "store/segment.h"

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
#include <cmath>
#include <memory>

#include "store/codec.h"

namespace teiten {
namespace {

constexpr char kMagic[8] = {'T', 'S', 'E', 'G', 'M', 'N', 'T', '2'};

// A block is a fixed list of streams, each compressed on its own, so that a reader decodes only
// what the columns it asks for need. Every stream belongs to one column; the row classes are
// shared by destination, ports, header and payload.
enum StreamId : uint32_t {
  kRuns,
  kSrc4Head,
  kSrc4Tail,
  kSrc6,
  kGeo,
  kTsStart,
  kTsHead,
  kTsTail,
  kSensor,
  kKinds,
  kClassDict,
  kClass,
  kDstNets,
  kDstNet,
  kDstHost,
  kDst6,
  kSport,
  kSportDelta,
  kDportIndex,
  kDportValues,
  kTtl,
  kIpId,
  kIpIdDelta,
  kIpIdDelta16,
  kSeq,
  kAck,
  kWindowIndex,
  kWindowValues,
  kOptDict,
  kTsvalHead,
  kTsvalTail,
  kTsvalRaw,
  kTsecr,
  kPayRef,
  kPayload,
  kStreamCount
};

// How a stream is compressed. Most streams are skewed symbols (one per row or run) that gain
// nothing from zstd's slower match search, so they get its fastest level. Noise (tails of split
// integers, random sequence numbers, hosts) is stored as it is unless a sample shows it skewed.
// The class stream and the dictionaries, where long matches pay, get the caller's level.
enum class Packing : uint8_t { kFast, kNoise, kLevel };
constexpr int kFastLevel = 1;

struct StreamDesc {
  const char* column;  // named in errors, as the reader's columns are
  const char* name;
  Packing packing;
};
constexpr StreamDesc kStreams[kStreamCount] = {
    {"sources", "runs", Packing::kFast},
    {"sources", "ipv4 head", Packing::kFast},
    {"sources", "ipv4 tail", Packing::kNoise},
    {"sources", "ipv6", Packing::kLevel},
    {"sources", "geo", Packing::kFast},
    {"time", "run start", Packing::kFast},
    {"time", "delta head", Packing::kFast},
    {"time", "delta tail", Packing::kNoise},
    {"sensor", "sensor", Packing::kFast},
    {"classes", "kinds", Packing::kLevel},
    {"classes", "class dictionary", Packing::kLevel},
    {"classes", "class", Packing::kLevel},
    {"destination", "networks", Packing::kLevel},
    {"destination", "network", Packing::kFast},
    {"destination", "host", Packing::kNoise},
    {"destination", "ipv6", Packing::kLevel},
    {"ports", "sport", Packing::kNoise},
    {"ports", "sport delta", Packing::kFast},
    {"ports", "dport index", Packing::kFast},
    {"ports", "dport values", Packing::kNoise},
    {"header", "ttl", Packing::kFast},
    {"header", "ip_id", Packing::kNoise},
    {"header", "ip_id delta", Packing::kFast},
    {"header", "ip_id delta16", Packing::kFast},
    {"header", "seq", Packing::kNoise},
    {"header", "ack", Packing::kNoise},
    {"header", "window index", Packing::kFast},
    {"header", "window values", Packing::kNoise},
    {"payload", "option templates", Packing::kLevel},
    {"payload", "tsval head", Packing::kFast},
    {"payload", "tsval tail", Packing::kNoise},
    {"payload", "tsval", Packing::kNoise},
    {"payload", "tsecr", Packing::kNoise},
    {"payload", "payload ref", Packing::kFast},
    {"payload", "payload", Packing::kFast},
};

// Whether a sample of the bytes looks like noise: order-0 entropy above 7.2 bits per byte.
bool LooksLikeNoise(const uint8_t* p, size_t n) {
  constexpr size_t kSample = 4096;
  size_t step = n > kSample ? n / kSample : 1, m = 0;
  uint32_t count[256] = {};
  for (size_t i = 0; i < n; i += step, ++m) ++count[p[i]];
  double bits = 0;
  for (uint32_t c : count) {
    if (c) bits -= c * std::log2(static_cast<double>(c) / static_cast<double>(m));
  }
  return bits > 7.2 * static_cast<double>(m);
}

constexpr size_t kDirEntry = 12;  // u32 raw size, u32 stored size, u32 checksum
constexpr size_t kDirSize = 4 + kStreamCount * kDirEntry + 4;

// Per-row predictor choices. A row's class is its kind plus these.
namespace mode {
constexpr int kRef = 0;     // 3 bits: dst, ports and seq are those of the row k back (0: none)
constexpr int kSeq = 3;     // 2 bits: 0 stored, 1 previous row's, 2 the IPv4 dst (Mirai), 3 zero
constexpr int kAck = 5;     // 2 bits: 0 zero, 1 stored, 2 previous row's
constexpr int kIpId = 7;    // 3 bits: 0 stored, 1 previous + int8, 2 Masscan, 3 ZMap, 4 zero,
                            //         5 previous + int16
constexpr int kWin = 10;    // 2 bits: 0 value, 1 previous row's, 2 last row of the same kind's
constexpr int kTtl = 12;    // 1 bit: 0 stored, 1 previous row's
constexpr int kSport = 13;  // 2 bits: 0 stored, 1 previous row's, 2 previous + int8
constexpr int kDport = 15;  // 2 bits: 0 value, 1 previous row's, 2 last row of the same kind's
constexpr int kTsval = 17;  // 1 bit: 0 stored, 1 delta from the last timestamp option
constexpr int kTsecr = 18;  // 1 bit: 0 zero, 1 stored
constexpr uint32_t kMaxRef = 7;
inline uint32_t Get(uint32_t m, int shift, int bits) {
  return (m >> shift) & ((1u << bits) - 1);
}
}  // namespace mode

constexpr uint16_t kZmapIpId = 54321;

// The fields that make a row's kind: what one tool's packets share.
struct Kind {
  uint8_t proto, flags, tcp_flags, icmp_type, icmp_code, opt_len, payload_cap, dst_v4;
  uint16_t ip_len, payload_len, opt_template;
};
constexpr size_t kKindWidth = 14;

inline uint64_t Mix(uint64_t x) {
  x ^= x >> 31;
  x *= 0x9E3779B97F4A7C15ULL;
  x ^= x >> 29;
  return x;
}
inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}
inline uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline bool SameAddr(const IpAddr& a, const IpAddr& b) {
  return std::memcmp(a.bytes.data(), b.bytes.data(), 16) == 0;
}
inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
uint32_t Checksum(const uint8_t* p, size_t n) {
  return static_cast<uint32_t>(XXH3_64bits(p, n));
}

// Finds a TCP timestamp option (kind 8, length 10) lying wholly in the `len` option bytes.
int TimestampOffset(const uint8_t* o, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (o[i] == 0) break;
    if (o[i] == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= len || o[i + 1] < 2) break;
    if (o[i] == 8 && o[i + 1] == 10 && i + 10 <= len) return static_cast<int>(i);
    i += o[i + 1];
  }
  return -1;
}

// Open-addressing map from a 128-bit key to an id, for the per-block dictionaries.
class IdMap {
 public:
  void Clear() {
    size_ = 0;
    slots_.assign(256, Slot{});
  }
  // The id of (a, b); inserted with `new_id` if absent.
  uint32_t Find(uint64_t a, uint64_t b, uint32_t new_id, bool* inserted) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    size_t mask = slots_.size() - 1;
    for (size_t i = Mix(a * 31 + b) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.id == 0) {
        s = {a, b, new_id + 1};
        ++size_;
        *inserted = true;
        return new_id;
      }
      if (s.a == a && s.b == b) {
        *inserted = false;
        return s.id - 1;
      }
    }
  }

 private:
  struct Slot {
    uint64_t a = 0, b = 0;
    uint32_t id = 0;  // id + 1; 0 when empty
  };
  void Grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(old.size() * 2, Slot{});
    size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.id == 0) continue;
      size_t i = Mix(s.a * 31 + s.b) & mask;
      while (slots_[i].id != 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_ = std::vector<Slot>(256);
  uint32_t size_ = 0;
};

// A byte stream being built: Reserve() room for a block, then append without checks.
class Sink {
 public:
  void Clear() { n_ = 0; }
  void Reserve(size_t more) {
    if (buf_.size() < n_ + more + 8) buf_.resize(2 * (n_ + more + 8));
  }
  void U8(uint8_t v) { buf_[n_++] = v; }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      buf_[n_++] = static_cast<uint8_t>(v | 0x80);
      v >>= 7;
    }
    buf_[n_++] = static_cast<uint8_t>(v);
  }
  void Bytes(const void* p, size_t k) {
    std::memcpy(buf_.data() + n_, p, k);
    n_ += k;
  }
  uint8_t* Grow(size_t k) {
    Reserve(k);
    n_ += k;
    return buf_.data() + n_ - k;
  }
  const uint8_t* data() const { return buf_.data(); }
  uint8_t* data() { return buf_.data(); }
  size_t size() const { return n_; }
  // For hot loops: write through a local pointer from End(), then SetEnd() it. (Byte stores
  // through a member would make the compiler reload the size after every one.)
  uint8_t* End() { return buf_.data() + n_; }
  void SetEnd(const uint8_t* p) { n_ = static_cast<size_t>(p - buf_.data()); }

 private:
  std::vector<uint8_t> buf_;
  size_t n_ = 0;
};

inline void PutVarint(uint8_t*& p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
}

// Integers split into a head byte (the count k of tail bytes and the value's top four bits) and
// k tail bytes. Heads are skewed and compress well; tails are near noise and cost zstd nothing.
// The tail pointer must have 8 bytes of room.
inline void PutSplit(uint8_t*& head, uint8_t*& tail, uint64_t v) {
  int bits = v ? 64 - __builtin_clzll(v) : 0;
  int k = bits > 4 ? (bits - 4 + 7) / 8 : 0;
  *head++ = static_cast<uint8_t>(k << 4 | (k < 8 ? v >> (8 * k) : 0));
  std::memcpy(tail, &v, 8);
  tail += k;
}

// Values of one type, written out as byte planes (all first bytes, then all second bytes, …).
template <typename T>
class Planar {
 public:
  void Clear() { n_ = 0; }
  void Reserve(size_t n) {
    if (v_.size() < n_ + n) v_.resize(n_ + n);
  }
  size_t size() const { return n_; }
  const T* data() const { return v_.data(); }
  T* End() { return v_.data() + n_; }
  void SetEnd(const T* p) { n_ = static_cast<size_t>(p - v_.data()); }
  void WriteTo(Sink* out, size_t width = sizeof(T)) const {
    uint8_t* p = out->Grow(n_ * width);
    for (size_t b = 0; b < width; ++b) {
      uint8_t* plane = p + b * n_;
      for (size_t i = 0; i < n_; ++i) {
        plane[i] = static_cast<uint8_t>(static_cast<uint64_t>(v_[i]) >> (8 * b));
      }
    }
  }

 private:
  std::vector<T> v_;
  size_t n_ = 0;
};

// A per-block dictionary of a 16-bit field's frequent values: a row stores a one-byte index,
// or 0 and the value itself.
class Dict16 {
 public:
  // Chooses the dictionary from a sample of the block's values: up to 255 values seen at least
  // twice, most frequent first.
  template <typename Get>
  void Build(const std::vector<Observation>& rows, Get get) {
    size_t step = rows.size() / kSample + 1;
    sample_.clear();
    for (size_t i = 0; i < rows.size(); i += step) sample_.push_back(get(rows[i]));
    std::sort(sample_.begin(), sample_.end());
    counted_.clear();
    for (size_t i = 0; i < sample_.size();) {
      size_t j = i + 1;
      while (j < sample_.size() && sample_[j] == sample_[i]) ++j;
      if (j - i >= 2) counted_.push_back({static_cast<uint32_t>(j - i), sample_[i]});
      i = j;
    }
    std::sort(counted_.begin(), counted_.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    if (counted_.size() > 255) counted_.resize(255);
    std::fill(std::begin(table_), std::end(table_), kEmpty);
    for (size_t i = 0; i < counted_.size(); ++i) {
      uint16_t v = counted_[i].second;
      size_t h = Slot(v);
      while (table_[h] != kEmpty) h = (h + 1) & (kSlots - 1);
      table_[h] = uint32_t{v} << 8 | static_cast<uint32_t>(i + 1);
    }
    escapes_.Clear();
    escapes_.Reserve(rows.size());
  }
  // The value's index (1…255), or 0 when it is not in the dictionary.
  uint8_t Index(uint16_t v) const {
    for (size_t h = Slot(v);; h = (h + 1) & (kSlots - 1)) {
      uint32_t e = table_[h];
      if (e == kEmpty) return 0;
      if (e >> 8 == v) return static_cast<uint8_t>(e);
    }
  }
  Planar<uint16_t>& escapes() { return escapes_; }
  // Writes the dictionary and the escaped values.
  void Finish(Sink* values) {
    size_t k = counted_.size();
    values->Reserve(10);
    values->Varint(k);
    uint8_t* p = values->Grow(k * 2);
    for (size_t i = 0; i < k; ++i) {
      p[i] = static_cast<uint8_t>(counted_[i].second);
      p[k + i] = static_cast<uint8_t>(counted_[i].second >> 8);
    }
    escapes_.WriteTo(values);
  }

 private:
  static constexpr size_t kSample = 4096, kSlots = 1024;
  static constexpr uint32_t kEmpty = ~0u;
  static size_t Slot(uint16_t v) { return (uint32_t{v} * 0x9E3779B1u) >> 22; }
  std::vector<uint16_t> sample_;
  std::vector<std::pair<uint32_t, uint16_t>> counted_;
  uint32_t table_[kSlots];
  Planar<uint16_t> escapes_;
};

Status WriteAll(int fd, const uint8_t* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError("write " + path);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return OkStatus();
}

// Everything one block's encoding needs, kept from block to block to reuse the allocations.
class Encoder {
 public:
  Encoder() = default;
  ~Encoder() { ZSTD_freeCCtx(zstd_); }
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;
  // Encodes rows order[begin, end) of `b` as one block, held until the next Encode: block().
  void Encode(const ObservationBatch& b, const std::vector<uint32_t>& order,
              const std::vector<GeoInfo>& geo, size_t begin, size_t end, int level,
              SegmentWriter::BlockInfo* info);
  const Sink& block() const { return out_; }

 private:
  void EncodeSources(const std::vector<GeoInfo>& geo, const std::vector<uint32_t>& order,
                     size_t begin, int64_t ts_min, int64_t ts_max);
  void EncodeRows();
  void WriteDictionaries();
  uint16_t TemplateOf(const Observation& o, const uint8_t* opts, int* ts_at);
  void Compress(int level);

  std::vector<Observation> rows_;
  std::vector<const uint8_t*> blobs_;
  std::vector<uint8_t> arena_;
  Sink s_[kStreamCount];
  Planar<uint64_t> ts_start_;
  Planar<uint16_t> country_, class_of_, dst_net_, sport_, ipid_, ipid16_;
  Planar<uint32_t> asn_, seq_, ack_, tsval_raw_, tsecr_;
  std::vector<Kind> kinds_;
  std::vector<uint64_t> classes_;  // kind | modes << 16
  std::vector<uint32_t> class_count_, class_rank_;
  std::vector<uint32_t> nets_;
  std::vector<uint16_t> kind_window_, kind_dport_;
  std::vector<uint64_t> ref_hash_;
  std::vector<uint32_t> run_start_;
  std::vector<std::array<uint8_t, 16>> dst6_;
  std::vector<uint32_t> templates_;  // offset of each template's length byte in s_[kOptDict]
  uint32_t last_template_ = 0;
  std::vector<uint32_t> payloads_;  // offset of each distinct payload in s_[kPayload]
  IdMap kind_ids_, class_ids_, net_ids_, template_ids_, payload_ids_;
  Dict16 dport_dict_, window_dict_;
  // The encoded block. A Sink, not a vector: a vector grown by resize() would zero each stream's
  // compression bound before zstd writes it (a tenth of an ingest's samples went to that memset).
  Sink out_;
  ZSTD_CCtx* zstd_ = ZSTD_createCCtx();
};

void Encoder::EncodeSources(const std::vector<GeoInfo>& geo, const std::vector<uint32_t>& order,
                            size_t begin, int64_t ts_min, int64_t ts_max) {
  const size_t n = rows_.size();
  ts_start_.Clear();
  ts_start_.Reserve(n);
  country_.Clear();
  country_.Reserve(n);
  asn_.Clear();
  asn_.Reserve(n);
  for (uint32_t c : {kRuns, kSrc4Head, kSrc4Tail, kTsHead, kTsTail, kSensor}) s_[c].Reserve(n * 10);
  s_[kSrc6].Reserve(n * 16);
  uint8_t *runs = s_[kRuns].End(), *s4h = s_[kSrc4Head].End(), *s4t = s_[kSrc4Tail].End();
  uint8_t *tsh = s_[kTsHead].End(), *tst = s_[kTsTail].End(), *s6 = s_[kSrc6].End();
  uint64_t* start = ts_start_.End();
  uint16_t* country = country_.End();
  uint32_t* asn = asn_.End();
  const Observation* r = rows_.data();
  // Run starts first, so that each run's enrichment (one random read of `geo`) can be fetched
  // ahead.
  run_start_.clear();
  for (size_t i = 0; i < n; ++i) {
    if (i == 0 || !SameAddr(r[i].src, r[i - 1].src)) run_start_.push_back(static_cast<uint32_t>(i));
  }
  const size_t runs_n = run_start_.size();
  run_start_.push_back(static_cast<uint32_t>(n));
  uint32_t prev4 = 0;
  GeoInfo prev_geo{};
  for (size_t k = 0; k < runs_n; ++k) {
    if (k + 8 < runs_n) __builtin_prefetch(&geo[order[begin + run_start_[k + 8]]]);
    const size_t i = run_start_[k], j = run_start_[k + 1];
    const Observation& o = r[i];
    const GeoInfo& g = geo[order[begin + i]];
    bool v6 = !o.src.is_v4();
    bool same_geo = i > 0 && g.country == prev_geo.country && g.asn == prev_geo.asn;
    PutVarint(runs, ((j - i - 1) << 2) | (uint64_t{v6} << 1) | uint64_t{same_geo});
    if (v6) {
      std::memcpy(s6, o.src.bytes.data(), 16);
      s6 += 16;
    } else {
      uint32_t a = o.src.v4();
      PutSplit(s4h, s4t, ZigZag(int64_t{a} - int64_t{prev4}));
      prev4 = a;
    }
    if (!same_geo) {
      *country++ = g.country;
      *asn++ = g.asn;
    }
    prev_geo = g;
    *start++ = static_cast<uint64_t>(o.ts_us) - static_cast<uint64_t>(ts_min);
    for (size_t x = i + 1; x < j; ++x) {
      PutSplit(tsh, tst,
               ZigZag(static_cast<int64_t>(static_cast<uint64_t>(r[x].ts_us) -
                                           static_cast<uint64_t>(r[x - 1].ts_us))));
    }
  }
  s_[kRuns].SetEnd(runs);
  s_[kSrc4Head].SetEnd(s4h);
  s_[kSrc4Tail].SetEnd(s4t);
  s_[kTsHead].SetEnd(tsh);
  s_[kTsTail].SetEnd(tst);
  s_[kSrc6].SetEnd(s6);
  ts_start_.SetEnd(start);
  country_.SetEnd(country);
  asn_.SetEnd(asn);
  country_.WriteTo(&s_[kGeo]);
  asn_.WriteTo(&s_[kGeo]);
  uint64_t span = static_cast<uint64_t>(ts_max) - static_cast<uint64_t>(ts_min);
  uint8_t width = 0;
  while (width < 8 && (span >> (8 * width)) != 0) ++width;
  s_[kTsStart].Reserve(1);
  s_[kTsStart].U8(width);
  ts_start_.WriteTo(&s_[kTsStart], width);
  uint8_t* sensor = s_[kSensor].End();
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && r[j].sensor == r[i].sensor) ++j;
    PutVarint(sensor, r[i].sensor);
    PutVarint(sensor, j - i);
    i = j;
  }
  s_[kSensor].SetEnd(sensor);
}

// The id of the row's option template: its option bytes with the timestamp values zeroed.
uint16_t Encoder::TemplateOf(const Observation& o, const uint8_t* opts, int* ts_at) {
  uint8_t t[kMaxTcpOptions];
  std::memcpy(t, opts, kMaxTcpOptions);  // the arena has room past the end (see Encode)
  int at = TimestampOffset(t, o.opt_len);
  if (at >= 0) std::memset(t + at + 2, 0, 8);
  *ts_at = at;
  Sink& dict = s_[kOptDict];
  // Most rows repeat the previous row's template.
  if (last_template_ < templates_.size()) {
    uint32_t last = templates_[last_template_];
    if (dict.data()[last] == o.opt_len && std::memcmp(dict.data() + last + 1, t, o.opt_len) == 0) {
      return static_cast<uint16_t>(last_template_);
    }
  }
  bool inserted;
  uint32_t id = template_ids_.Find(XXH3_64bits(t, o.opt_len), o.opt_len,
                                   static_cast<uint32_t>(templates_.size()), &inserted);
  if (!inserted && std::memcmp(dict.data() + templates_[id] + 1, t, o.opt_len) != 0) {
    inserted = true;  // a hash collision: a second entry keeps it exact
    id = static_cast<uint32_t>(templates_.size());
  }
  if (inserted) {
    templates_.push_back(static_cast<uint32_t>(dict.size()));
    dict.Reserve(1 + kMaxTcpOptions);
    dict.U8(o.opt_len);
    dict.Bytes(t, o.opt_len);
  }
  last_template_ = id;
  return static_cast<uint16_t>(id);
}

void Encoder::EncodeRows() {
  const size_t n = rows_.size();
  kinds_.clear();
  classes_.clear();
  class_count_.clear();
  nets_.clear();
  kind_window_.clear();
  kind_dport_.clear();
  templates_.clear();
  last_template_ = 0;
  payloads_.clear();
  dst6_.clear();
  kind_ids_.Clear();
  class_ids_.Clear();
  net_ids_.Clear();
  template_ids_.Clear();
  payload_ids_.Clear();
  for (auto* p : {&class_of_, &dst_net_, &sport_, &ipid_, &ipid16_}) {
    p->Clear();
    p->Reserve(n);
  }
  for (auto* p : {&seq_, &ack_, &tsval_raw_, &tsecr_}) {
    p->Clear();
    p->Reserve(n);
  }
  for (uint32_t c : {kDstHost, kSportDelta, kDportIndex, kTtl, kIpIdDelta, kWindowIndex}) {
    s_[c].Reserve(n);
  }
  for (uint32_t c : {kTsvalHead, kTsvalTail, kPayRef}) s_[c].Reserve(n * 10);
  ref_hash_.resize(n);
  dport_dict_.Build(rows_, [](const Observation& o) { return o.dport; });
  window_dict_.Build(rows_, [](const Observation& o) { return o.window; });

  const Observation zero{};
  uint32_t last_tsval = 0;
  uint64_t last_ka = ~uint64_t{0}, last_kb = 0, last_class_key = ~uint64_t{0};
  uint32_t kind = 0, cls = 0, net = 0;
  uint64_t net_cache[64] = {};
  uint32_t recent_row[1024] = {};
  bool inserted;
  // Local write pointers for everything written per row (see Sink::End).
  uint8_t *host = s_[kDstHost].End(), *sport_d = s_[kSportDelta].End();
  uint8_t *dport_i = s_[kDportIndex].End(), *win_i = s_[kWindowIndex].End();
  uint8_t *ipid_d = s_[kIpIdDelta].End(), *ttl = s_[kTtl].End(), *pay_ref = s_[kPayRef].End();
  uint8_t *tsv_h = s_[kTsvalHead].End(), *tsv_t = s_[kTsvalTail].End();
  uint16_t *class_of = class_of_.End(), *dst_net = dst_net_.End(), *sport = sport_.End();
  uint16_t *ipid = ipid_.End(), *ipid16 = ipid16_.End();
  uint16_t *dport_e = dport_dict_.escapes().End(), *win_e = window_dict_.escapes().End();
  uint32_t *seq = seq_.End(), *ack = ack_.End(), *tsval_raw = tsval_raw_.End();
  uint32_t* tsecr = tsecr_.End();
  uint64_t* ref_hash = ref_hash_.data();
  uint16_t *kind_window = kind_window_.data(), *kind_dport = kind_dport_.data();
  uint32_t* class_count = class_count_.data();
  const Observation* r = rows_.data();
  for (size_t i = 0; i < n; ++i) {
    const Observation& o = r[i];
    const Observation& p = i > 0 ? r[i - 1] : zero;
    const uint8_t* blob = blobs_[i];
    int ts_at = -1;
    uint16_t tmpl = o.opt_len ? TemplateOf(o, blob, &ts_at) : 0;
    const bool dst_v4 = o.dst.is_v4();
    const uint32_t dst4 = o.dst.v4();
    uint64_t ka = uint64_t{o.proto} | uint64_t{o.flags} << 8 | uint64_t{o.tcp_flags} << 16 |
                  uint64_t{o.icmp_type} << 24 | uint64_t{o.icmp_code} << 32 |
                  uint64_t{o.opt_len} << 40 | uint64_t{o.payload_cap} << 48 |
                  uint64_t{dst_v4} << 56;
    uint64_t kb = uint64_t{o.ip_len} | uint64_t{o.payload_len} << 16 | uint64_t{tmpl} << 32;
    if (ka != last_ka || kb != last_kb) {
      kind = kind_ids_.Find(ka, kb, static_cast<uint32_t>(kinds_.size()), &inserted);
      if (inserted) {
        kinds_.push_back({o.proto, o.flags, o.tcp_flags, o.icmp_type, o.icmp_code, o.opt_len,
                          o.payload_cap, static_cast<uint8_t>(dst_v4), o.ip_len, o.payload_len,
                          tmpl});
        kind_window_.push_back(0);
        kind_dport_.push_back(0);
        kind_window = kind_window_.data();
        kind_dport = kind_dport_.data();
      }
      last_ka = ka;
      last_kb = kb;
    }
    // A retransmission repeats the destination, the ports and the sequence number of a row a
    // few rows back.
    uint64_t rh = Mix(Load64(o.dst.bytes.data() + 8) ^ Mix(Load64(o.dst.bytes.data()) + o.seq) ^
                      (uint64_t{o.sport} << 16 | o.dport));
    ref_hash[i] = rh;
    uint32_t ref = 0;
    uint32_t& recent = recent_row[rh & 1023];  // the last row whose key hashed here, plus one
    if (recent != 0 && i - (recent - 1) <= mode::kMaxRef && ref_hash[recent - 1] == rh) {
      const Observation& q = r[recent - 1];
      if (q.seq == o.seq && q.sport == o.sport && q.dport == o.dport && SameAddr(q.dst, o.dst)) {
        ref = static_cast<uint32_t>(i - (recent - 1));
      }
    }
    recent = static_cast<uint32_t>(i + 1);
    uint32_t m = ref << mode::kRef;
    if (ref == 0) {
      if (dst_v4) {
        // A telescope sees few networks: a small direct-mapped cache answers most lookups.
        uint32_t net24 = dst4 >> 8;
        uint64_t& slot = net_cache[net24 & 63];
        if (slot >> 32 == net24 + 1) {
          net = static_cast<uint32_t>(slot);
        } else {
          net = net_ids_.Find(net24, 0, static_cast<uint32_t>(nets_.size()), &inserted);
          if (inserted) nets_.push_back(net24);
          slot = uint64_t{net24 + 1} << 32 | net;
        }
        *dst_net++ = static_cast<uint16_t>(net);
        *host++ = static_cast<uint8_t>(dst4);
      } else {
        dst6_.push_back(o.dst.bytes);
      }
      uint32_t sm = 0;
      if (dst_v4 && o.seq == dst4) {
        sm = 2;
      } else if (o.seq == 0) {
        sm = 3;
      } else if (o.seq == p.seq) {
        sm = 1;
      } else {
        *seq++ = o.seq;
      }
      m |= sm << mode::kSeq;
      uint32_t spm = 0;
      auto sd = static_cast<int16_t>(o.sport - p.sport);
      if (sd == 0) {
        spm = 1;
      } else if (sd >= -128 && sd < 128) {
        spm = 2;
        *sport_d++ = static_cast<uint8_t>(sd);
      } else {
        *sport++ = o.sport;
      }
      m |= spm << mode::kSport;
      uint32_t dpm = 0;
      if (o.dport == p.dport) {
        dpm = 1;
      } else if (o.dport == kind_dport[kind]) {
        dpm = 2;
      } else {
        uint8_t x = dport_dict_.Index(o.dport);
        *dport_i++ = x;
        if (x == 0) *dport_e++ = o.dport;
      }
      m |= dpm << mode::kDport;
    }
    uint32_t am = 1;
    if (o.ack == 0) {
      am = 0;
    } else if (o.ack == p.ack) {
      am = 2;
    } else {
      *ack++ = o.ack;
    }
    m |= am << mode::kAck;
    uint32_t im = 0;
    auto idd = static_cast<int16_t>(o.ip_id - p.ip_id);
    if (dst_v4 && o.ip_id == ((dst4 ^ o.dport ^ o.seq) & 0xFFFF)) {
      im = 2;
    } else if (o.ip_id == kZmapIpId) {
      im = 3;
    } else if (o.ip_id == 0) {
      im = 4;
    } else if (idd >= -128 && idd < 128) {
      im = 1;
      *ipid_d++ = static_cast<uint8_t>(idd);
    } else if (idd >= -2048 && idd < 2048) {
      im = 5;
      *ipid16++ = static_cast<uint16_t>(ZigZag(idd));
    } else {
      *ipid++ = o.ip_id;
    }
    m |= im << mode::kIpId;
    uint32_t wm = 0;
    if (o.window == kind_window[kind]) {
      wm = 2;
    } else if (o.window == p.window) {
      wm = 1;
    } else {
      uint8_t x = window_dict_.Index(o.window);
      *win_i++ = x;
      if (x == 0) *win_e++ = o.window;
    }
    m |= wm << mode::kWin;
    if (o.ttl == p.ttl) {
      m |= 1u << mode::kTtl;
    } else {
      *ttl++ = o.ttl;
    }
    if (ts_at >= 0) {
      uint32_t tv = Be32(blob + ts_at + 2), te = Be32(blob + ts_at + 6);
      auto d = static_cast<int32_t>(tv - last_tsval);
      if (d > -(1 << 24) && d < (1 << 24)) {
        m |= 1u << mode::kTsval;
        PutSplit(tsv_h, tsv_t, ZigZag(d));
      } else {
        *tsval_raw++ = tv;
      }
      last_tsval = tv;
      if (te != 0) {
        m |= 1u << mode::kTsecr;
        *tsecr++ = te;
      }
    }
    if (o.payload_cap > 0) {
      const uint8_t* pl = blob + o.opt_len;
      Sink& pay = s_[kPayload];
      uint32_t id = payload_ids_.Find(XXH3_64bits(pl, o.payload_cap), o.payload_cap,
                                      static_cast<uint32_t>(payloads_.size()), &inserted);
      if (!inserted && std::memcmp(pay.data() + payloads_[id], pl, o.payload_cap) != 0) {
        inserted = true;  // a hash collision: a second entry keeps it exact
      }
      if (inserted) {
        payloads_.push_back(static_cast<uint32_t>(pay.size()));
        pay.Reserve(o.payload_cap);
        pay.Bytes(pl, o.payload_cap);
        PutVarint(pay_ref, 0);
      } else {
        PutVarint(pay_ref, id + 1);
      }
    }
    kind_window[kind] = o.window;
    kind_dport[kind] = o.dport;
    uint64_t class_key = kind | uint64_t{m} << 16;
    if (class_key != last_class_key) {
      cls = class_ids_.Find(class_key, 0, static_cast<uint32_t>(classes_.size()), &inserted);
      if (inserted) {
        classes_.push_back(class_key);
        class_count_.push_back(0);
        class_count = class_count_.data();
      }
      last_class_key = class_key;
    }
    ++class_count[cls];
    *class_of++ = static_cast<uint16_t>(cls);
  }
  s_[kDstHost].SetEnd(host);
  s_[kSportDelta].SetEnd(sport_d);
  s_[kDportIndex].SetEnd(dport_i);
  s_[kWindowIndex].SetEnd(win_i);
  s_[kIpIdDelta].SetEnd(ipid_d);
  s_[kTtl].SetEnd(ttl);
  s_[kPayRef].SetEnd(pay_ref);
  s_[kTsvalHead].SetEnd(tsv_h);
  s_[kTsvalTail].SetEnd(tsv_t);
  class_of_.SetEnd(class_of);
  dst_net_.SetEnd(dst_net);
  sport_.SetEnd(sport);
  ipid_.SetEnd(ipid);
  ipid16_.SetEnd(ipid16);
  dport_dict_.escapes().SetEnd(dport_e);
  window_dict_.escapes().SetEnd(win_e);
  seq_.SetEnd(seq);
  ack_.SetEnd(ack);
  tsval_raw_.SetEnd(tsval_raw);
  tsecr_.SetEnd(tsecr);
}

// Writes the dictionaries, then the per-row values kept as typed arrays.
void Encoder::WriteDictionaries() {
  const size_t n = rows_.size();
  Sink& kd = s_[kKinds];
  kd.Reserve(10);
  kd.Varint(kinds_.size());
  {
    size_t nk = kinds_.size();
    uint8_t* q = kd.Grow(nk * kKindWidth);
    for (size_t i = 0; i < nk; ++i) {
      const Kind& k = kinds_[i];
      const uint8_t rec[kKindWidth] = {k.proto,
                                       k.flags,
                                       k.tcp_flags,
                                       k.icmp_type,
                                       k.icmp_code,
                                       k.opt_len,
                                       k.payload_cap,
                                       k.dst_v4,
                                       static_cast<uint8_t>(k.ip_len),
                                       static_cast<uint8_t>(k.ip_len >> 8),
                                       static_cast<uint8_t>(k.payload_len),
                                       static_cast<uint8_t>(k.payload_len >> 8),
                                       static_cast<uint8_t>(k.opt_template),
                                       static_cast<uint8_t>(k.opt_template >> 8)};
      for (size_t b = 0; b < kKindWidth; ++b) q[b * nk + i] = rec[b];
    }
  }
  // Classes by falling frequency: a row stores its class's rank in one byte, 255 meaning the
  // rank is 255 plus a 16-bit value stored after the bytes.
  {
    size_t nc = classes_.size();
    std::vector<uint32_t> by_rank(nc);
    for (size_t i = 0; i < nc; ++i) by_rank[i] = static_cast<uint32_t>(i);
    std::sort(by_rank.begin(), by_rank.end(), [&](uint32_t a, uint32_t b) {
      return class_count_[a] != class_count_[b] ? class_count_[a] > class_count_[b] : a < b;
    });
    class_rank_.resize(nc);
    for (size_t k = 0; k < nc; ++k) class_rank_[by_rank[k]] = static_cast<uint32_t>(k);
    Sink& cd = s_[kClassDict];
    cd.Reserve(10);
    cd.Varint(nc);
    uint8_t* q = cd.Grow(nc * 5);
    for (size_t k = 0; k < nc; ++k) {
      for (size_t b = 0; b < 5; ++b) {
        q[b * nc + k] = static_cast<uint8_t>(classes_[by_rank[k]] >> (8 * b));
      }
    }
    Sink& cs = s_[kClass];
    cs.Reserve(n * 3);
    uint8_t* c = cs.End();
    const uint16_t* of = class_of_.data();
    size_t escapes = 0;
    for (size_t i = 0; i < n; ++i) {
      uint32_t rank = class_rank_[of[i]];
      *c++ = static_cast<uint8_t>(std::min<uint32_t>(rank, 255));
      escapes += rank >= 255;
    }
    uint8_t* e = c;
    c += 2 * escapes;
    size_t k = 0;
    for (size_t i = 0; i < n && k < escapes; ++i) {
      uint32_t rank = class_rank_[of[i]];
      if (rank < 255) continue;
      e[k] = static_cast<uint8_t>(rank - 255);
      e[escapes + k] = static_cast<uint8_t>((rank - 255) >> 8);
      ++k;
    }
    cs.SetEnd(c);
  }
  Sink& nd = s_[kDstNets];
  nd.Reserve(10);
  nd.Varint(nets_.size());
  {
    size_t nn = nets_.size();
    uint8_t* q = nd.Grow(nn * 3);
    for (size_t i = 0; i < nn; ++i) {
      for (size_t b = 0; b < 3; ++b) q[b * nn + i] = static_cast<uint8_t>(nets_[i] >> (8 * b));
    }
  }
  // Network indexes are bit-packed when few networks are seen (a telescope's few /24s).
  {
    size_t nn = nets_.size(), count = dst_net_.size();
    int bits = nn <= 1 ? 0 : nn <= 2 ? 1 : nn <= 4 ? 2 : nn <= 16 ? 4 : 8;
    if (nn > 256) {
      dst_net_.WriteTo(&s_[kDstNet], 2);
    } else if (bits > 0) {
      size_t bytes = (count * static_cast<size_t>(bits) + 7) / 8;
      uint8_t* q = s_[kDstNet].Grow(bytes);
      std::memset(q, 0, bytes);
      const uint16_t* idx = dst_net_.data();
      for (size_t i = 0; i < count; ++i) {
        q[i * bits / 8] |= static_cast<uint8_t>(idx[i] << (i * bits % 8));
      }
    }
  }
  {
    size_t n6 = dst6_.size();
    uint8_t* q = s_[kDst6].Grow(n6 * 16);
    for (size_t b = 0; b < 16; ++b) {
      for (size_t i = 0; i < n6; ++i) q[b * n6 + i] = dst6_[i][b];
    }
  }
  sport_.WriteTo(&s_[kSport]);
  dport_dict_.Finish(&s_[kDportValues]);
  window_dict_.Finish(&s_[kWindowValues]);
  ipid_.WriteTo(&s_[kIpId]);
  ipid16_.WriteTo(&s_[kIpIdDelta16]);
  seq_.WriteTo(&s_[kSeq]);
  ack_.WriteTo(&s_[kAck]);
  tsval_raw_.WriteTo(&s_[kTsvalRaw]);
  tsecr_.WriteTo(&s_[kTsecr]);
}

void Encoder::Compress(int level) {
  out_.Clear();
  out_.Grow(kDirSize);
  uint32_t count = kStreamCount;
  std::memcpy(out_.data(), &count, 4);
  for (uint32_t c = 0; c < kStreamCount; ++c) {
    const Sink& raw = s_[c];
    const size_t at = out_.size();
    size_t stored = 0;
    const Packing packing = kStreams[c].packing;
    if (raw.size() < 32 || (packing == Packing::kNoise && LooksLikeNoise(raw.data(), raw.size()))) {
      // An empty stream's data() may be null, which memcpy must not be given.
      if (raw.size() > 0) std::memcpy(out_.Grow(raw.size()), raw.data(), raw.size());
      stored = raw.size();
    } else {
      const size_t bound = ZSTD_compressBound(raw.size());
      uint8_t* dst = out_.Grow(bound);
      stored = ZSTD_compressCCtx(zstd_, dst, bound, raw.data(), raw.size(),
                                 packing == Packing::kLevel ? level : kFastLevel);
      if (ZSTD_isError(stored) || stored >= raw.size()) {  // incompressible: keep it as it is
        std::memcpy(dst, raw.data(), raw.size());
        stored = raw.size();
      }
      out_.SetEnd(dst + stored);
    }
    uint32_t entry[3] = {static_cast<uint32_t>(raw.size()), static_cast<uint32_t>(stored),
                         Checksum(out_.data() + at, stored)};
    std::memcpy(out_.data() + 4 + c * kDirEntry, entry, kDirEntry);
  }
  uint32_t dir_sum = Checksum(out_.data(), kDirSize - 4);
  std::memcpy(out_.data() + kDirSize - 4, &dir_sum, 4);
}

void Encoder::Encode(const ObservationBatch& b, const std::vector<uint32_t>& order,
                     const std::vector<GeoInfo>& geo, size_t begin, size_t end, int level,
                     SegmentWriter::BlockInfo* info) {
  const size_t n = end - begin;
  // Gather the block's rows: `order` jumps around the batch, and every pass below reads them.
  rows_.resize(n);
  blobs_.resize(n);
  if (arena_.size() < n * (kMaxTcpOptions + kPayloadPrefix) + kMaxTcpOptions) {
    arena_.resize(n * (kMaxTcpOptions + kPayloadPrefix) + kMaxTcpOptions);
  }
  // Rows and their variable bytes are fetched ahead: the row kAhead on, and the bytes of the row
  // kAhead / 2 on (whose row has arrived by then).
  const uint32_t* idx = order.data() + begin;
  constexpr size_t kAhead = 32, kBlobAhead = kAhead / 2;
  uint8_t* a = arena_.data();
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) {
      const auto* q = reinterpret_cast<const char*>(&b.rows[idx[i + kAhead]]);
      __builtin_prefetch(q);
      __builtin_prefetch(q + sizeof(Observation) - 1);
    }
    if (i + kBlobAhead < n && !b.blob.empty()) {
      __builtin_prefetch(b.blob.data() + b.rows[idx[i + kBlobAhead]].blob);
    }
    const Observation& o = b.rows[idx[i]];
    rows_[i] = o;
    size_t len = size_t{o.opt_len} + o.payload_cap;
    blobs_[i] = a;
    if (len > 0) std::memcpy(a, b.blob.data() + o.blob, len);
    a += len;
  }
  info->src_min = rows_.front().src;
  info->src_max = rows_.back().src;
  info->ts_min = INT64_MAX;
  info->ts_max = INT64_MIN;
  for (const Observation& o : rows_) {
    info->ts_min = std::min(info->ts_min, o.ts_us);
    info->ts_max = std::max(info->ts_max, o.ts_us);
  }
  for (Sink& s : s_) s.Clear();
  EncodeSources(geo, order, begin, info->ts_min, info->ts_max);
  EncodeRows();
  WriteDictionaries();
  Compress(level);
  info->rows = static_cast<uint32_t>(n);
  info->size = static_cast<uint32_t>(out_.size());
  info->checksum = XXH64(out_.data(), out_.size(), 0);
}

// Reads a stream with bounds checks; a read past the end sets failed() and returns zeros.
class Cursor {
 public:
  Cursor() = default;
  Cursor(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) {
        failed_ = true;
        return 0;
      }
      uint8_t b = *p_++;
      v |= uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80)) return v;
    }
    failed_ = true;
    return 0;
  }
  uint8_t U8() {
    if (p_ == end_) {
      failed_ = true;
      return 0;
    }
    return *p_++;
  }
  uint64_t Le(size_t width) {
    if (static_cast<size_t>(end_ - p_) < width) {
      failed_ = true;
      p_ = end_;
      return 0;
    }
    uint64_t v = 0;
    for (size_t b = 0; b < width; ++b) v |= uint64_t{p_[b]} << (8 * b);
    p_ += width;
    return v;
  }
  const uint8_t* Bytes(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) {
      failed_ = true;
      p_ = end_;
      return nullptr;
    }
    const uint8_t* r = p_;
    p_ += n;
    return r;
  }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool failed() const { return failed_; }
  bool done() const { return p_ == end_; }
  bool whole() const { return !failed_ && p_ == end_; }  // read exactly to the end

 private:
  const uint8_t* p_ = nullptr;
  const uint8_t* end_ = nullptr;
  bool failed_ = false;
};

// The inverse of PutSplit.
inline uint64_t GetSplit(Cursor* head, Cursor* tail) {
  uint8_t h = head->U8();
  size_t k = h >> 4;
  if (k > 8 || (k == 8 && (h & 15))) {
    head->Bytes(SIZE_MAX);  // marks the stream failed
    return 0;
  }
  uint64_t top = k < 8 ? uint64_t{h & 15u} << (8 * k) : 0;
  return top | tail->Le(k);
}

// Values stored as byte planes, read in order by Next().
class Planes {
 public:
  Planes() = default;
  Planes(const uint8_t* p, size_t bytes, size_t width)
      : p_(p), n_(width ? bytes / width : 0), width_(width), ok_(width && bytes % width == 0) {}
  uint64_t Next() {
    if (k_ >= n_) {
      ok_ = false;
      return 0;
    }
    return At(k_++);
  }
  uint64_t At(size_t i) const {
    uint64_t v = 0;
    for (size_t b = 0; b < width_; ++b) v |= uint64_t{p_[b * n_ + i]} << (8 * b);
    return v;
  }
  size_t size() const { return n_; }
  bool whole() const { return ok_ && k_ == n_; }  // read exactly to the end

 private:
  const uint8_t* p_ = nullptr;
  size_t n_ = 0, width_ = 0, k_ = 0;
  bool ok_ = true;
};

// Reads a Dict16 field: the index stream, and the dictionary and escaped values.
class Dict16Reader {
 public:
  bool Init(const uint8_t* index, size_t index_size, const uint8_t* values, size_t values_size) {
    index_ = Cursor(index, index_size);
    Cursor c(values, values_size);
    uint64_t k = c.Varint();
    if (c.failed() || k > 255 || c.remaining() < 2 * k) return false;
    dict_ = Planes(c.Bytes(2 * k), 2 * k, 2);
    size_t rest = c.remaining();
    escapes_ = Planes(c.Bytes(rest), rest, 2);
    return escapes_.size() * 2 == rest;
  }
  uint16_t Next() {
    uint8_t i = index_.U8();
    if (i == 0) return static_cast<uint16_t>(escapes_.Next());
    if (i > dict_.size()) {
      bad_ = true;
      return 0;
    }
    return static_cast<uint16_t>(dict_.At(i - 1));
  }
  bool whole() const { return !bad_ && index_.whole() && escapes_.whole(); }

 private:
  Cursor index_;
  Planes dict_, escapes_;
  bool bad_ = false;
};

// Decodes one block for SegmentReader::ReadBlock: verifies and decompresses each stream on first
// use, and fills the rows column by column. Each step reads the streams of one column, plus those
// of the columns its predictors refer to, which ReadBlock decodes first.
class BlockDecoder {
 public:
  BlockDecoder(const std::string& path, size_t block, const SegmentWriter::BlockInfo& info,
               const uint8_t* bytes, DecodedBlock* out)
      : path_(path),
        block_(block),
        info_(info),
        p_(bytes),
        n_(info.rows),
        out_(out),
        rows_(out->batch.rows) {
    rows_.assign(n_, Observation{});
    out_->batch.blob.clear();
    out_->geo.clear();
  }
  Status Directory();
  Status Sources();
  Status Times();
  Status Sensors();
  Status Classes();
  Status Destinations();
  Status Ports();
  Status Header();
  Status Payload();

 private:
  Status Bad(const std::string& what) const {
    return DataLoss(fmt::format("segment {}: block {}: {}", path_, block_, what));
  }
  Status BadStream(uint32_t c, const char* what) const {
    return Bad(fmt::format("column {} ({}): {}", kStreams[c].column, kStreams[c].name, what));
  }
  Status Load(std::initializer_list<uint32_t> ids);
  Cursor Cursor_(uint32_t c) const { return Cursor(data_[c], raw_[c]); }
  Planes Planes_(uint32_t c, size_t width) const { return Planes(data_[c], raw_[c], width); }
  uint32_t ModeOf(size_t i) const { return class_mode_[cls_[i]]; }
  const Kind& KindOf(size_t i) const { return kinds_[class_kind_[cls_[i]]]; }

  const std::string& path_;
  const size_t block_;
  const SegmentWriter::BlockInfo& info_;
  const uint8_t* const p_;
  const size_t n_;
  DecodedBlock* const out_;
  std::vector<Observation>& rows_;
  uint32_t raw_[kStreamCount] = {}, stored_[kStreamCount] = {}, sums_[kStreamCount] = {};
  const uint8_t* frames_[kStreamCount] = {};
  const uint8_t* data_[kStreamCount] = {};  // a stream's raw bytes, once loaded
  bool loaded_[kStreamCount] = {};
  std::vector<uint32_t> run_len_;
  std::vector<uint8_t> run_flags_;  // bit 0: same geo as the previous run; bit 1: IPv6
  std::vector<Kind> kinds_;
  std::vector<uint16_t> class_kind_, cls_;
  std::vector<uint32_t> class_mode_;
};

Status BlockDecoder::Directory() {
  if (info_.size < kDirSize) return Bad("column directory cut short");
  uint32_t nstreams, dir_sum;
  std::memcpy(&nstreams, p_, 4);
  std::memcpy(&dir_sum, p_ + kDirSize - 4, 4);
  if (Checksum(p_, kDirSize - 4) != dir_sum || nstreams != kStreamCount) {
    return Bad("column directory checksum mismatch");
  }
  uint64_t at = kDirSize;
  for (uint32_t c = 0; c < kStreamCount; ++c) {
    std::memcpy(&raw_[c], p_ + 4 + c * kDirEntry, 4);
    std::memcpy(&stored_[c], p_ + 8 + c * kDirEntry, 4);
    std::memcpy(&sums_[c], p_ + 12 + c * kDirEntry, 4);
    frames_[c] = p_ + at;
    at += stored_[c];
  }
  if (at != info_.size) return Bad("column directory does not match the block size");
  return OkStatus();
}

Status BlockDecoder::Load(std::initializer_list<uint32_t> ids) {
  // Per thread, freed when the thread ends (ingest flushes run on short-lived threads).
  struct DCtxDeleter {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
  };
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> zstd(ZSTD_createDCtx());
  thread_local std::vector<uint8_t> bufs[kStreamCount];
  for (uint32_t c : ids) {
    if (loaded_[c]) continue;
    if (Checksum(frames_[c], stored_[c]) != sums_[c]) return BadStream(c, "checksum mismatch");
    if (raw_[c] > 256u * kBlockRows) return BadStream(c, "too large");
    if (stored_[c] == raw_[c]) {
      data_[c] = frames_[c];
    } else {
      bufs[c].resize(raw_[c]);
      size_t r = ZSTD_decompressDCtx(zstd.get(), bufs[c].data(), raw_[c], frames_[c], stored_[c]);
      if (ZSTD_isError(r) || r != raw_[c]) return BadStream(c, "corrupt compressed data");
      data_[c] = bufs[c].data();
    }
    loaded_[c] = true;
  }
  return OkStatus();
}

// Source runs: address, enrichment and length.
Status BlockDecoder::Sources() {
  RETURN_IF_ERROR(Load({kRuns, kSrc4Head, kSrc4Tail, kSrc6, kGeo}));
  Cursor runs = Cursor_(kRuns);
  size_t row = 0, changed = 0;
  while (row < n_) {
    uint64_t v = runs.Varint();
    if (runs.failed() || (v >> 2) >= n_ - row) return BadStream(kRuns, "bad run length");
    run_len_.push_back(static_cast<uint32_t>((v >> 2) + 1));
    run_flags_.push_back(static_cast<uint8_t>(v & 3));
    if (!(v & 1)) ++changed;
    row += (v >> 2) + 1;
  }
  if (!runs.whole()) return BadStream(kRuns, "runs do not cover the block");
  if (raw_[kGeo] != changed * 6 || (run_flags_[0] & 1)) {
    return BadStream(kGeo, "size does not match the runs");
  }
  Cursor s4h = Cursor_(kSrc4Head), s4t = Cursor_(kSrc4Tail), s6 = Cursor_(kSrc6);
  Planes country(data_[kGeo], 2 * changed, 2), asn(data_[kGeo] + 2 * changed, 4 * changed, 4);
  out_->geo.resize(n_);
  row = 0;
  uint32_t prev4 = 0;
  GeoInfo gi;
  for (size_t k = 0; k < run_len_.size(); ++k) {
    IpAddr src;
    if (run_flags_[k] & 2) {
      const uint8_t* a = s6.Bytes(16);
      if (!a) return BadStream(kSrc6, "cut short");
      src = IpAddr::V6(a);
    } else {
      prev4 = static_cast<uint32_t>(prev4 + UnZigZag(GetSplit(&s4h, &s4t)));
      src = IpAddr::V4(prev4);
    }
    if (!(run_flags_[k] & 1)) {
      gi.country = static_cast<CountryCode>(country.Next());
      gi.asn = static_cast<uint32_t>(asn.Next());
    }
    for (uint32_t j = 0; j < run_len_[k]; ++j, ++row) {
      rows_[row].src = src;
      out_->geo[row] = gi;
    }
  }
  if (!s4h.whole()) return BadStream(kSrc4Head, "does not match the runs");
  if (!s4t.whole()) return BadStream(kSrc4Tail, "does not match the runs");
  if (!s6.whole()) return BadStream(kSrc6, "does not match the runs");
  return OkStatus();
}

// Times: each run's first from the block's ts_min, the others as deltas. Needs Sources().
Status BlockDecoder::Times() {
  RETURN_IF_ERROR(Load({kTsStart, kTsHead, kTsTail}));
  if (raw_[kTsStart] < 1) return BadStream(kTsStart, "cut short");
  size_t width = data_[kTsStart][0];
  if (width > 8 || raw_[kTsStart] != 1 + width * run_len_.size()) {
    return BadStream(kTsStart, "size does not match the runs");
  }
  Planes starts(data_[kTsStart] + 1, raw_[kTsStart] - 1, width);
  Cursor th = Cursor_(kTsHead), tt = Cursor_(kTsTail);
  size_t row = 0;
  for (size_t k = 0; k < run_len_.size(); ++k) {
    auto ts =
        static_cast<int64_t>(static_cast<uint64_t>(info_.ts_min) + (width ? starts.At(k) : 0));
    rows_[row++].ts_us = ts;
    for (uint32_t j = 1; j < run_len_[k]; ++j, ++row) {
      ts = static_cast<int64_t>(static_cast<uint64_t>(ts) +
                                static_cast<uint64_t>(UnZigZag(GetSplit(&th, &tt))));
      rows_[row].ts_us = ts;
    }
  }
  if (!th.whole()) return BadStream(kTsHead, "does not match the runs");
  if (!tt.whole()) return BadStream(kTsTail, "does not match the runs");
  return OkStatus();
}

Status BlockDecoder::Sensors() {
  RETURN_IF_ERROR(Load({kSensor}));
  Cursor c = Cursor_(kSensor);
  size_t row = 0;
  while (row < n_) {
    uint64_t v = c.Varint(), len = c.Varint();
    if (c.failed() || v > 0xFFFF || len == 0 || len > n_ - row) {
      return BadStream(kSensor, "bad run");
    }
    for (uint64_t j = 0; j < len; ++j) rows_[row++].sensor = static_cast<uint16_t>(v);
  }
  if (!c.whole()) return BadStream(kSensor, "runs do not cover the block");
  return OkStatus();
}

// Row classes: the kind's fields go straight into the rows; the modes drive the other columns.
Status BlockDecoder::Classes() {
  RETURN_IF_ERROR(Load({kKinds, kClassDict, kClass}));
  {
    Cursor c = Cursor_(kKinds);
    uint64_t nk = c.Varint();
    if (c.failed() || nk > n_ || c.remaining() != nk * kKindWidth) {
      return BadStream(kKinds, "bad size");
    }
    const uint8_t* q = c.Bytes(nk * kKindWidth);
    kinds_.resize(nk);
    for (size_t i = 0; i < nk; ++i) {
      auto f = [&](size_t b) { return q[b * nk + i]; };
      kinds_[i] = {f(0),
                   f(1),
                   f(2),
                   f(3),
                   f(4),
                   f(5),
                   f(6),
                   f(7),
                   static_cast<uint16_t>(f(8) | f(9) << 8),
                   static_cast<uint16_t>(f(10) | f(11) << 8),
                   static_cast<uint16_t>(f(12) | f(13) << 8)};
      if (kinds_[i].opt_len > kMaxTcpOptions || kinds_[i].payload_cap > kPayloadPrefix ||
          kinds_[i].dst_v4 > 1) {
        return BadStream(kKinds, "bad kind");
      }
    }
  }
  {
    Cursor c = Cursor_(kClassDict);
    uint64_t nc = c.Varint();
    if (c.failed() || nc > n_ || c.remaining() != nc * 5) return BadStream(kClassDict, "bad size");
    Planes cp(c.Bytes(nc * 5), nc * 5, 5);
    class_kind_.resize(nc);
    class_mode_.resize(nc);
    for (size_t i = 0; i < nc; ++i) {
      uint64_t v = cp.At(i);
      class_kind_[i] = static_cast<uint16_t>(v);
      class_mode_[i] = static_cast<uint32_t>(v >> 16);
      if (class_kind_[i] >= kinds_.size()) return BadStream(kClassDict, "bad kind");
    }
  }
  cls_.resize(n_);
  {
    if (raw_[kClass] < n_) return BadStream(kClass, "bad size");
    const uint8_t* ranks = data_[kClass];
    size_t escapes = 0;
    for (size_t i = 0; i < n_; ++i) escapes += ranks[i] == 255;
    if (raw_[kClass] != n_ + 2 * escapes) return BadStream(kClass, "bad size");
    Planes more(ranks + n_, 2 * escapes, 2);
    for (size_t i = 0; i < n_; ++i) {
      cls_[i] = static_cast<uint16_t>(ranks[i] < 255 ? ranks[i] : 255 + more.Next());
      if (cls_[i] >= class_kind_.size()) return BadStream(kClass, "bad class");
      if (mode::Get(class_mode_[cls_[i]], mode::kRef, 3) > i) {
        return BadStream(kClass, "reference before the block");
      }
      const Kind& k = kinds_[class_kind_[cls_[i]]];
      Observation& o = rows_[i];
      o.proto = k.proto;
      o.flags = k.flags;
      o.tcp_flags = k.tcp_flags;
      o.icmp_type = k.icmp_type;
      o.icmp_code = k.icmp_code;
      o.opt_len = k.opt_len;
      o.payload_cap = k.payload_cap;
      o.ip_len = k.ip_len;
      o.payload_len = k.payload_len;
    }
  }
  return OkStatus();
}

Status BlockDecoder::Destinations() {
  RETURN_IF_ERROR(Load({kDstNets, kDstNet, kDstHost, kDst6}));
  Cursor nc = Cursor_(kDstNets);
  uint64_t nn = nc.Varint();
  if (nc.failed() || nn > n_ || nc.remaining() != nn * 3) return BadStream(kDstNets, "bad size");
  Planes nets(nc.Bytes(nn * 3), nn * 3, 3);
  int bits = nn <= 1 ? 0 : nn <= 2 ? 1 : nn <= 4 ? 2 : nn <= 16 ? 4 : nn <= 256 ? 8 : 16;
  Planes wide = Planes_(kDstNet, 2);
  const uint8_t* packed = data_[kDstNet];
  size_t used = 0;  // network indexes read
  Cursor host = Cursor_(kDstHost);
  size_t n6 = raw_[kDst6] / 16, k6 = 0;
  if (raw_[kDst6] % 16) return BadStream(kDst6, "bad size");
  const uint8_t* d6 = data_[kDst6];
  for (size_t i = 0; i < n_; ++i) {
    uint32_t ref = mode::Get(ModeOf(i), mode::kRef, 3);
    if (ref) {
      rows_[i].dst = rows_[i - ref].dst;
    } else if (KindOf(i).dst_v4) {
      uint64_t net = 0;
      if (bits == 16) {
        net = wide.Next();
      } else if (bits > 0) {
        if ((used + 1) * bits > raw_[kDstNet] * 8) return BadStream(kDstNet, "cut short");
        net = (packed[used * bits / 8] >> (used * bits % 8)) & ((1u << bits) - 1);
      }
      ++used;
      if (net >= nn) return BadStream(kDstNet, "bad network");
      rows_[i].dst = IpAddr::V4(static_cast<uint32_t>(nets.At(net) << 8) | host.U8());
    } else {
      if (k6 >= n6) return BadStream(kDst6, "cut short");
      for (size_t b = 0; b < 16; ++b) rows_[i].dst.bytes[b] = d6[b * n6 + k6];
      ++k6;
    }
  }
  bool net_ok =
      bits == 16 ? wide.whole() : raw_[kDstNet] == (used * static_cast<size_t>(bits) + 7) / 8;
  if (!net_ok) return BadStream(kDstNet, "does not match the rows");
  if (!host.whole()) return BadStream(kDstHost, "does not match the rows");
  if (k6 != n6) return BadStream(kDst6, "does not match the rows");
  return OkStatus();
}

Status BlockDecoder::Ports() {
  RETURN_IF_ERROR(Load({kSport, kSportDelta, kDportIndex, kDportValues}));
  Planes sp = Planes_(kSport, 2);
  Cursor sd = Cursor_(kSportDelta);
  Dict16Reader dp;
  if (!dp.Init(data_[kDportIndex], raw_[kDportIndex], data_[kDportValues], raw_[kDportValues])) {
    return BadStream(kDportValues, "bad size");
  }
  std::vector<uint16_t> kind_dport(kinds_.size());
  uint16_t prev_s = 0, prev_d = 0;
  for (size_t i = 0; i < n_; ++i) {
    uint32_t m = ModeOf(i);
    uint32_t ref = mode::Get(m, mode::kRef, 3);
    Observation& o = rows_[i];
    uint16_t kind = class_kind_[cls_[i]];
    if (ref) {
      o.sport = rows_[i - ref].sport;
      o.dport = rows_[i - ref].dport;
    } else {
      switch (mode::Get(m, mode::kSport, 2)) {
        case 0:
          o.sport = static_cast<uint16_t>(sp.Next());
          break;
        case 1:
          o.sport = prev_s;
          break;
        case 2:
          o.sport = static_cast<uint16_t>(prev_s + static_cast<int8_t>(sd.U8()));
          break;
        default:
          return BadStream(kClassDict, "bad sport mode");
      }
      switch (mode::Get(m, mode::kDport, 2)) {
        case 0:
          o.dport = dp.Next();
          break;
        case 1:
          o.dport = prev_d;
          break;
        case 2:
          o.dport = kind_dport[kind];
          break;
        default:
          return BadStream(kClassDict, "bad dport mode");
      }
    }
    kind_dport[kind] = o.dport;
    prev_s = o.sport;
    prev_d = o.dport;
  }
  if (!sp.whole()) return BadStream(kSport, "does not match the rows");
  if (!sd.whole()) return BadStream(kSportDelta, "does not match the rows");
  if (!dp.whole()) return BadStream(kDportIndex, "does not match the rows");
  return OkStatus();
}

// Needs Destinations() and Ports(): Mirai's seq is the destination, Masscan's IP ID hashes both.
Status BlockDecoder::Header() {
  RETURN_IF_ERROR(
      Load({kTtl, kIpId, kIpIdDelta, kIpIdDelta16, kSeq, kAck, kWindowIndex, kWindowValues}));
  Cursor ttl = Cursor_(kTtl), idd = Cursor_(kIpIdDelta);
  Planes ip = Planes_(kIpId, 2), ip16 = Planes_(kIpIdDelta16, 2), sq = Planes_(kSeq, 4);
  Planes ak = Planes_(kAck, 4);
  Dict16Reader wn;
  if (!wn.Init(data_[kWindowIndex], raw_[kWindowIndex], data_[kWindowValues],
               raw_[kWindowValues])) {
    return BadStream(kWindowValues, "bad size");
  }
  std::vector<uint16_t> kind_window(kinds_.size());
  Observation prev{};
  for (size_t i = 0; i < n_; ++i) {
    uint32_t m = ModeOf(i);
    uint32_t ref = mode::Get(m, mode::kRef, 3);
    Observation& o = rows_[i];
    uint16_t kind = class_kind_[cls_[i]];
    if (ref) {
      o.seq = rows_[i - ref].seq;
    } else {
      switch (mode::Get(m, mode::kSeq, 2)) {
        case 0:
          o.seq = static_cast<uint32_t>(sq.Next());
          break;
        case 1:
          o.seq = prev.seq;
          break;
        case 2:
          o.seq = o.dst.v4();
          break;
        default:
          o.seq = 0;
          break;
      }
    }
    switch (mode::Get(m, mode::kAck, 2)) {
      case 0:
        o.ack = 0;
        break;
      case 1:
        o.ack = static_cast<uint32_t>(ak.Next());
        break;
      case 2:
        o.ack = prev.ack;
        break;
      default:
        return BadStream(kClassDict, "bad ack mode");
    }
    switch (mode::Get(m, mode::kIpId, 3)) {
      case 0:
        o.ip_id = static_cast<uint16_t>(ip.Next());
        break;
      case 1:
        o.ip_id = static_cast<uint16_t>(prev.ip_id + static_cast<int8_t>(idd.U8()));
        break;
      case 2:
        o.ip_id = static_cast<uint16_t>(o.dst.v4() ^ o.dport ^ o.seq);
        break;
      case 3:
        o.ip_id = kZmapIpId;
        break;
      case 4:
        o.ip_id = 0;
        break;
      case 5:
        o.ip_id = static_cast<uint16_t>(prev.ip_id + UnZigZag(ip16.Next()));
        break;
      default:
        return BadStream(kClassDict, "bad ip_id mode");
    }
    switch (mode::Get(m, mode::kWin, 2)) {
      case 0:
        o.window = wn.Next();
        break;
      case 1:
        o.window = prev.window;
        break;
      case 2:
        o.window = kind_window[kind];
        break;
      default:
        return BadStream(kClassDict, "bad window mode");
    }
    o.ttl = mode::Get(m, mode::kTtl, 1) ? prev.ttl : ttl.U8();
    kind_window[kind] = o.window;
    prev = o;
  }
  if (!ttl.whole()) return BadStream(kTtl, "does not match the rows");
  if (!idd.whole()) return BadStream(kIpIdDelta, "does not match the rows");
  if (!ip16.whole()) return BadStream(kIpIdDelta16, "does not match the rows");
  if (!ip.whole()) return BadStream(kIpId, "does not match the rows");
  if (!sq.whole()) return BadStream(kSeq, "does not match the rows");
  if (!ak.whole()) return BadStream(kAck, "does not match the rows");
  if (!wn.whole()) return BadStream(kWindowIndex, "does not match the rows");
  return OkStatus();
}

// TCP options from their templates and timestamp values, then the payload prefix.
Status BlockDecoder::Payload() {
  RETURN_IF_ERROR(Load({kOptDict, kTsvalHead, kTsvalTail, kTsvalRaw, kTsecr, kPayRef, kPayload}));
  // Option templates, and where each one's timestamp option lies.
  std::vector<const uint8_t*> templates;
  std::vector<uint8_t> template_len;
  std::vector<int> ts_at;
  Cursor od = Cursor_(kOptDict);
  while (!od.done()) {
    uint8_t len = od.U8();
    const uint8_t* t = od.Bytes(len);
    if (od.failed() || len > kMaxTcpOptions) return BadStream(kOptDict, "bad template");
    templates.push_back(t);
    template_len.push_back(len);
    ts_at.push_back(TimestampOffset(t, len));
  }
  Cursor th = Cursor_(kTsvalHead), tt = Cursor_(kTsvalTail), pr = Cursor_(kPayRef);
  Planes tr = Planes_(kTsvalRaw, 4), te = Planes_(kTsecr, 4);
  Cursor pay = Cursor_(kPayload);
  std::vector<std::pair<uint32_t, uint8_t>> payloads;  // each distinct payload in the blob
  auto& blob = out_->batch.blob;
  uint32_t last_tsval = 0;
  for (size_t i = 0; i < n_; ++i) {
    Observation& o = rows_[i];
    const Kind& k = KindOf(i);
    uint32_t m = ModeOf(i);
    o.blob = static_cast<uint32_t>(blob.size());
    if (k.opt_len > 0) {
      if (k.opt_template >= templates.size() || template_len[k.opt_template] != k.opt_len) {
        return BadStream(kKinds, "bad option template");
      }
      size_t opt_at = blob.size();
      const uint8_t* t = templates[k.opt_template];
      blob.insert(blob.end(), t, t + k.opt_len);
      int ts = ts_at[k.opt_template];
      if (ts >= 0) {
        uint32_t v = mode::Get(m, mode::kTsval, 1)
                         ? last_tsval + static_cast<uint32_t>(UnZigZag(GetSplit(&th, &tt)))
                         : static_cast<uint32_t>(tr.Next());
        last_tsval = v;
        PutBe32(blob.data() + opt_at + ts + 2, v);
        PutBe32(blob.data() + opt_at + ts + 6,
                mode::Get(m, mode::kTsecr, 1) ? static_cast<uint32_t>(te.Next()) : 0);
      }
    }
    if (k.payload_cap > 0) {
      uint64_t ref = pr.Varint();
      size_t pl_at = blob.size();
      if (ref == 0) {
        const uint8_t* q = pay.Bytes(k.payload_cap);
        if (!q) return BadStream(kPayload, "cut short");
        payloads.emplace_back(static_cast<uint32_t>(pl_at), k.payload_cap);
        blob.insert(blob.end(), q, q + k.payload_cap);
      } else {
        if (ref > payloads.size() || payloads[ref - 1].second != k.payload_cap) {
          return BadStream(kPayRef, "bad payload reference");
        }
        blob.resize(pl_at + k.payload_cap);
        std::memcpy(blob.data() + pl_at, blob.data() + payloads[ref - 1].first, k.payload_cap);
      }
    }
  }
  if (!th.whole()) return BadStream(kTsvalHead, "does not match the rows");
  if (!tt.whole()) return BadStream(kTsvalTail, "does not match the rows");
  if (!tr.whole()) return BadStream(kTsvalRaw, "does not match the rows");
  if (!te.whole()) return BadStream(kTsecr, "does not match the rows");
  if (!pr.whole()) return BadStream(kPayRef, "does not match the rows");
  if (!pay.whole()) return BadStream(kPayload, "does not match the rows");
  return OkStatus();
}

}  // namespace

struct SegmentScratch::Impl {
  Encoder enc;
};
SegmentScratch::SegmentScratch() : impl_(std::make_unique<Impl>()) {}
SegmentScratch::~SegmentScratch() = default;

Status SegmentWriter::Write(const std::string& path, const ObservationBatch& batch,
                            const std::vector<uint32_t>& order, const std::vector<GeoInfo>& geo,
                            int level, uint64_t* bytes_written, SegmentScratch* scratch) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("create segment " + path);
  Status st = WriteAll(fd, reinterpret_cast<const uint8_t*>(kMagic), 8, path);
  uint64_t offset = 8;
  std::vector<BlockInfo> blocks;
  thread_local Encoder own;
  Encoder& enc = scratch ? scratch->impl_->enc : own;
  for (size_t begin = 0; st.ok() && begin < order.size(); begin += kBlockRows) {
    size_t end = std::min(order.size(), begin + kBlockRows);
    BlockInfo info;
    enc.Encode(batch, order, geo, begin, end, level, &info);
    info.offset = offset;
    st = WriteAll(fd, enc.block().data(), enc.block().size(), path);
    offset += enc.block().size();
    blocks.push_back(info);
  }
  std::vector<uint8_t> foot;
  codec::PutFixed<uint32_t>(&foot, static_cast<uint32_t>(blocks.size()));
  for (const BlockInfo& b : blocks) {
    codec::PutFixed<uint64_t>(&foot, b.offset);
    codec::PutFixed<uint32_t>(&foot, b.size);
    codec::PutFixed<uint32_t>(&foot, b.rows);
    codec::PutBytes(&foot, b.src_min.bytes.data(), 16);
    codec::PutBytes(&foot, b.src_max.bytes.data(), 16);
    codec::PutFixed<int64_t>(&foot, b.ts_min);
    codec::PutFixed<int64_t>(&foot, b.ts_max);
    codec::PutFixed<uint64_t>(&foot, b.checksum);
  }
  uint64_t foot_at = offset;
  codec::PutFixed<uint64_t>(&foot, XXH64(foot.data(), foot.size(), 0));
  codec::PutFixed<uint64_t>(&foot, foot_at);
  foot.insert(foot.end(), kMagic, kMagic + 8);
  if (st.ok()) st = WriteAll(fd, foot.data(), foot.size(), path);
  if (st.ok() && ::fsync(fd) != 0) st = IoError("fsync " + path);
  ::close(fd);
  if (bytes_written) *bytes_written = offset + foot.size();
  return st;
}

Result<std::unique_ptr<SegmentReader>> SegmentReader::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("segment " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return IoError("segment " + path);
  }
  std::unique_ptr<SegmentReader> r(new SegmentReader());
  r->path_ = path;
  r->size_ = static_cast<uint64_t>(st.st_size);
  if (r->size_ < 8 + 4 + 24) {
    ::close(fd);
    return DataLoss(fmt::format("segment {}: too short ({} bytes)", path, r->size_));
  }
  void* m = mmap(nullptr, r->size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return IoError("segment mmap " + path);
  r->base_ = static_cast<const uint8_t*>(m);
  if (std::memcmp(r->base_, "TSEGMNT1", 8) == 0) {
    return DataLoss(fmt::format(
        "segment {}: written in segment format 1 by an older teiten; re-ingest its captures",
        path));
  }
  if (std::memcmp(r->base_, kMagic, 8) != 0 ||
      std::memcmp(r->base_ + r->size_ - 8, kMagic, 8) != 0) {
    return DataLoss(fmt::format("segment {}: bad magic (not a segment, or cut short)", path));
  }
  uint64_t foot_at, foot_sum;
  std::memcpy(&foot_at, r->base_ + r->size_ - 16, 8);
  std::memcpy(&foot_sum, r->base_ + r->size_ - 24, 8);
  if (foot_at < 8 || foot_at > r->size_ - 24) {
    return DataLoss(fmt::format("segment {}: footer offset {} out of bounds", path, foot_at));
  }
  const uint8_t* fp = r->base_ + foot_at;
  size_t flen = r->size_ - 24 - foot_at;
  if (XXH64(fp, flen, 0) != foot_sum) {
    return DataLoss(fmt::format("segment {}: footer checksum mismatch", path));
  }
  codec::Reader fr(fp, flen);
  uint32_t n = fr.Fixed<uint32_t>();
  if (n > (flen - 4) / 72) {
    return DataLoss(fmt::format("segment {}: block count {} does not fit", path, n));
  }
  for (uint32_t i = 0; i < n; ++i) {
    SegmentWriter::BlockInfo b;
    b.offset = fr.Fixed<uint64_t>();
    b.size = fr.Fixed<uint32_t>();
    b.rows = fr.Fixed<uint32_t>();
    const uint8_t* mn = fr.Bytes(16);
    const uint8_t* mx = fr.Bytes(16);
    if (mn) std::memcpy(b.src_min.bytes.data(), mn, 16);
    if (mx) std::memcpy(b.src_max.bytes.data(), mx, 16);
    b.ts_min = fr.Fixed<int64_t>();
    b.ts_max = fr.Fixed<int64_t>();
    b.checksum = fr.Fixed<uint64_t>();
    if (b.offset < 8 || b.offset > foot_at || b.size > foot_at - b.offset || b.rows > kBlockRows ||
        b.rows == 0 || b.ts_max < b.ts_min) {
      return DataLoss(fmt::format("segment {}: block {} index out of bounds", path, i));
    }
    r->blocks_.push_back(b);
  }
  if (fr.failed()) return DataLoss(fmt::format("segment {}: footer cut short", path));
  return r;
}

SegmentReader::~SegmentReader() {
  if (base_) munmap(const_cast<uint8_t*>(base_), size_);
}

uint64_t SegmentReader::rows() const {
  uint64_t n = 0;
  for (const auto& b : blocks_) n += b.rows;
  return n;
}

Status SegmentReader::ReadBlock(size_t bi, uint32_t columns, DecodedBlock* out) const {
  const SegmentWriter::BlockInfo& info = blocks_[bi];
  BlockDecoder d(path_, bi, info, base_ + info.offset, out);
  RETURN_IF_ERROR(d.Directory());
  if (columns & col::kTs) columns |= col::kSrc;
  if (columns & col::kSrc) RETURN_IF_ERROR(d.Sources());
  if (columns & col::kTs) RETURN_IF_ERROR(d.Times());
  if (columns & col::kSensor) RETURN_IF_ERROR(d.Sensors());
  if (!(columns & (col::kDst | col::kPorts | col::kHeader | col::kBlob))) return OkStatus();
  RETURN_IF_ERROR(d.Classes());
  if (columns & (col::kDst | col::kHeader)) RETURN_IF_ERROR(d.Destinations());
  if (columns & (col::kPorts | col::kHeader)) RETURN_IF_ERROR(d.Ports());
  if (columns & col::kHeader) RETURN_IF_ERROR(d.Header());
  if (columns & col::kBlob) RETURN_IF_ERROR(d.Payload());
  return OkStatus();
}
}  // namespace teiten
