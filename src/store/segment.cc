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
#include "store/segment_format.h"

namespace teiten {
namespace {

using namespace segment_format;

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
