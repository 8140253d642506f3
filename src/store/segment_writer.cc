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
#include "store/segment.h"
#include "store/segment_format.h"

namespace teiten {
namespace {

using namespace segment_format;

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

}  // namespace teiten
