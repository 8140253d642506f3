#include "transport/wire.h"

#include <fmt/format.h>
#include <xxhash.h>
#include <zstd.h>

#include <bit>
#include <cstring>
#include <memory>

namespace teiten {
namespace {

constexpr char kMagic[4] = {'T', 'T', 'W', 'B'};

bool ValidReason(std::string_view r) {
  return !r.empty() && r.size() <= kMaxLossReasonLength && ValidSensorId(r);
}

class Writer {
 public:
  template <typename T>
  void Put(T v) {
    // Little-endian on the wire whatever the host; x86 and arm64 hosts are, so this is a copy.
    static_assert(std::endian::native == std::endian::little);
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.append(b, sizeof(T));
  }
  void Bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string& str() { return out_; }

 private:
  std::string out_;
};

// Reads the body; every read is bounds-checked and a failure names the offset and the field.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  template <typename T>
  Status Get(T* v, const char* field, size_t index = SIZE_MAX) {
    if (b_.size() - pos_ < sizeof(T)) return Short(field, sizeof(T), index);
    std::memcpy(v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return OkStatus();
  }
  Status Bytes(size_t n, std::string_view* out, const char* field) {
    if (b_.size() - pos_ < n) return Short(field, n, SIZE_MAX);
    *out = b_.substr(pos_, n);
    pos_ += n;
    return OkStatus();
  }
  size_t pos() const { return pos_; }
  size_t left() const { return b_.size() - pos_; }
  Status Bad(size_t at, std::string_view field, std::string_view what) const {
    return DataLoss(fmt::format("batch body byte {} (field '{}'): {}", at, field, what));
  }

 private:
  Status Short(const char* field, size_t need, size_t index) const {
    std::string f = index == SIZE_MAX ? std::string(field) : fmt::format("{}[{}]", field, index);
    return Bad(pos_, f, fmt::format("needs {} bytes, {} left", need, b_.size() - pos_));
  }
  std::string_view b_;
  size_t pos_ = 0;
};

// The columns in wire order. Each entry writes or reads one field of every row.
template <typename F>
void ForEachColumn(F&& f) {
  f("src", &Observation::src);
  f("dst", &Observation::dst);
  f("seq", &Observation::seq);
  f("ack", &Observation::ack);
  f("blob", &Observation::blob);
  f("sport", &Observation::sport);
  f("dport", &Observation::dport);
  f("ip_len", &Observation::ip_len);
  f("ip_id", &Observation::ip_id);
  f("window", &Observation::window);
  f("payload_len", &Observation::payload_len);
  f("proto", &Observation::proto);
  f("ttl", &Observation::ttl);
  f("tcp_flags", &Observation::tcp_flags);
  f("icmp_type", &Observation::icmp_type);
  f("icmp_code", &Observation::icmp_code);
  f("opt_len", &Observation::opt_len);
  f("payload_cap", &Observation::payload_cap);
  f("flags", &Observation::flags);
}

uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
uint32_t Load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

bool ValidSensorId(std::string_view id) {
  if (id.empty() || id.size() > kMaxSensorIdLength) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::string> EncodeBatch(const WireBatch& b, int zstd_level) {
  if (!ValidSensorId(b.sensor_id)) {
    return InvalidArgument(
        fmt::format("sensor id '{}' is not 1..64 of [A-Za-z0-9._-]", b.sensor_id));
  }
  if (b.lost.size() > UINT16_MAX) return InvalidArgument("more than 65535 loss reasons");
  for (const auto& [reason, n] : b.lost) {
    if (!ValidReason(reason))
      return InvalidArgument(fmt::format("loss reason '{}' invalid", reason));
  }
  const auto& rows = b.obs.rows;
  if (rows.size() > UINT32_MAX || b.obs.blob.size() > UINT32_MAX) {
    return InvalidArgument("batch too large: more than 2^32-1 rows or blob bytes");
  }
  int64_t first = b.first_ts_us, last = b.last_ts_us;
  if (first == 0 && last == 0 && !rows.empty()) {
    first = last = rows[0].ts_us;
    for (const auto& o : rows) {
      first = std::min(first, o.ts_us);
      last = std::max(last, o.ts_us);
    }
  }
  if (first > last) return InvalidArgument("first_ts_us after last_ts_us");
  for (size_t i = 0; i < rows.size(); ++i) {
    const Observation& o = rows[i];
    if (o.ts_us < first || o.ts_us > last) {
      return InvalidArgument(fmt::format("row {}: timestamp outside the batch's range", i));
    }
    if (o.opt_len > kMaxTcpOptions || o.payload_cap > kPayloadPrefix ||
        uint64_t{o.blob} + o.opt_len + o.payload_cap > b.obs.blob.size()) {
      return InvalidArgument(fmt::format("row {}: option/payload bytes outside the arena", i));
    }
  }

  Writer w;
  w.Put<uint8_t>(static_cast<uint8_t>(b.sensor_id.size()));
  w.Bytes(b.sensor_id.data(), b.sensor_id.size());
  w.Put<uint64_t>(b.batch_id);
  w.Put<uint64_t>(b.stream);
  w.Put<int64_t>(first);
  w.Put<int64_t>(last);
  w.Put<uint16_t>(static_cast<uint16_t>(b.lost.size()));
  for (const auto& [reason, n] : b.lost) {
    w.Put<uint8_t>(static_cast<uint8_t>(reason.size()));
    w.Bytes(reason.data(), reason.size());
    w.Put<uint64_t>(n);
  }
  w.Put<uint32_t>(static_cast<uint32_t>(rows.size()));
  w.Put<uint32_t>(static_cast<uint32_t>(b.obs.blob.size()));
  int64_t prev = first;
  for (const auto& o : rows) {
    // Wrapping difference: rows need not be in time order, and the decoder undoes it exactly.
    w.Put<uint64_t>(static_cast<uint64_t>(o.ts_us) - static_cast<uint64_t>(prev));
    prev = o.ts_us;
  }
  ForEachColumn([&](const char*, auto member) {
    for (const auto& o : rows) w.Put(o.*member);
  });
  w.Bytes(b.obs.blob.data(), b.obs.blob.size());

  const std::string& body = w.str();
  std::string out(kWireHeaderSize + ZSTD_compressBound(body.size()), '\0');
  size_t c = ZSTD_compress(out.data() + kWireHeaderSize, out.size() - kWireHeaderSize, body.data(),
                           body.size(), zstd_level);
  if (ZSTD_isError(c)) return Internal(fmt::format("zstd: {}", ZSTD_getErrorName(c)));
  if (c > UINT32_MAX || body.size() > UINT32_MAX) return InvalidArgument("batch too large");
  out.resize(kWireHeaderSize + c);
  Writer h;
  h.Bytes(kMagic, 4);
  h.Put<uint16_t>(kWireVersion);
  h.Put<uint16_t>(0);
  h.Put<uint32_t>(static_cast<uint32_t>(c));
  h.Put<uint32_t>(static_cast<uint32_t>(body.size()));
  h.Put<uint64_t>(XXH3_64bits(out.data() + kWireHeaderSize, c));
  h.Put<uint64_t>(XXH3_64bits(h.str().data(), 24));
  std::memcpy(out.data(), h.str().data(), kWireHeaderSize);
  return out;
}

Result<WireBatch> DecodeBatch(std::string_view bytes, const WireLimits& limits) {
  auto bad_header = [](size_t at, std::string_view field, std::string_view what) {
    return DataLoss(fmt::format("batch frame byte {} (field '{}'): {}", at, field, what));
  };
  if (bytes.size() < kWireHeaderSize) {
    return bad_header(
        0, "header",
        fmt::format("{} bytes, a frame has at least {}", bytes.size(), kWireHeaderSize));
  }
  const char* p = bytes.data();
  if (std::memcmp(p, kMagic, 4) != 0) return bad_header(0, "magic", "not \"TTWB\"");
  if (XXH3_64bits(p, 24) != Load64(p + 24)) {
    return bad_header(24, "header_checksum", "does not match bytes 0..23");
  }
  uint16_t version, reserved;
  std::memcpy(&version, p + 4, 2);
  std::memcpy(&reserved, p + 6, 2);
  if (version != kWireVersion) {
    return bad_header(4, "version", fmt::format("{} (this build reads {})", version, kWireVersion));
  }
  if (reserved != 0) return bad_header(6, "reserved", "not 0");
  uint64_t clen = Load32(p + 8), dlen = Load32(p + 12);
  if (kWireHeaderSize + clen > limits.max_frame) {
    return bad_header(8, "compressed_length", fmt::format("{} over the limit", clen));
  }
  if (bytes.size() != kWireHeaderSize + clen) {
    return bad_header(8, "compressed_length",
                      fmt::format("{} but the frame holds {} bytes after the header", clen,
                                  bytes.size() - kWireHeaderSize));
  }
  if (dlen > limits.max_decompressed) {
    return bad_header(12, "decompressed_length", fmt::format("{} over the limit", dlen));
  }
  const char* z = p + kWireHeaderSize;
  if (XXH3_64bits(z, clen) != Load64(p + 16)) {
    return bad_header(16, "body_checksum", "does not match the compressed body");
  }
  // The zstd frame's own content size must agree before anything is allocated from it.
  unsigned long long zsize = ZSTD_getFrameContentSize(z, clen);
  if (zsize == ZSTD_CONTENTSIZE_ERROR || zsize == ZSTD_CONTENTSIZE_UNKNOWN || zsize != dlen) {
    return bad_header(kWireHeaderSize, "body", "not a zstd frame of the declared size");
  }
  std::string body(dlen, '\0');
  size_t got = ZSTD_decompress(body.data(), body.size(), z, clen);
  if (ZSTD_isError(got) || got != dlen) {
    return bad_header(kWireHeaderSize, "body",
                      ZSTD_isError(got) ? ZSTD_getErrorName(got) : "shorter than declared");
  }

  WireBatch b;
  Reader r(body);
  uint8_t id_len = 0;
  RETURN_IF_ERROR(r.Get(&id_len, "sensor_id_length"));
  size_t at = r.pos();
  std::string_view id;
  RETURN_IF_ERROR(r.Bytes(id_len, &id, "sensor_id"));
  if (!ValidSensorId(id)) return r.Bad(at, "sensor_id", "not 1..64 of [A-Za-z0-9._-]");
  b.sensor_id = std::string(id);
  RETURN_IF_ERROR(r.Get(&b.batch_id, "batch_id"));
  RETURN_IF_ERROR(r.Get(&b.stream, "stream"));
  at = r.pos();
  RETURN_IF_ERROR(r.Get(&b.first_ts_us, "first_ts_us"));
  RETURN_IF_ERROR(r.Get(&b.last_ts_us, "last_ts_us"));
  if (b.first_ts_us > b.last_ts_us) return r.Bad(at, "first_ts_us", "after last_ts_us");
  uint16_t n_lost = 0;
  RETURN_IF_ERROR(r.Get(&n_lost, "loss_count"));
  for (size_t i = 0; i < n_lost; ++i) {
    uint8_t len = 0;
    RETURN_IF_ERROR(r.Get(&len, "loss.reason_length", i));
    at = r.pos();
    std::string_view reason;
    RETURN_IF_ERROR(r.Bytes(len, &reason, "loss.reason"));
    if (!ValidReason(reason)) return r.Bad(at, fmt::format("loss[{}].reason", i), "invalid name");
    uint64_t n = 0;
    RETURN_IF_ERROR(r.Get(&n, "loss.count", i));
    if (!b.lost.emplace(std::string(reason), n).second) {
      return r.Bad(at, fmt::format("loss[{}].reason", i), "repeated");
    }
  }
  uint32_t n_rows = 0, blob_size = 0;
  at = r.pos();
  RETURN_IF_ERROR(r.Get(&n_rows, "row_count"));
  RETURN_IF_ERROR(r.Get(&blob_size, "blob_size"));
  // Each row occupies exactly this many body bytes; checking first bounds the allocation by dlen.
  size_t row_bytes = 8;
  ForEachColumn([&](const char*, auto member) { row_bytes += sizeof(Observation{}.*member); });
  if (r.left() != uint64_t{n_rows} * row_bytes + blob_size) {
    return r.Bad(at, "row_count",
                 fmt::format("{} rows of {} bytes + {} blob bytes != the {} bytes left", n_rows,
                             row_bytes, blob_size, r.left()));
  }
  auto& rows = b.obs.rows;
  rows.resize(n_rows);
  int64_t prev = b.first_ts_us;
  for (size_t i = 0; i < n_rows; ++i) {
    at = r.pos();
    uint64_t d = 0;
    RETURN_IF_ERROR(r.Get(&d, "ts_delta", i));
    rows[i].ts_us = static_cast<int64_t>(static_cast<uint64_t>(prev) + d);
    if (rows[i].ts_us < b.first_ts_us || rows[i].ts_us > b.last_ts_us) {
      return r.Bad(at, fmt::format("ts_delta[{}]", i),
                   "timestamp outside [first_ts_us, last_ts_us]");
    }
    prev = rows[i].ts_us;
  }
  Status st;
  std::map<std::string_view, size_t> column_at;  // where each column starts, for error offsets
  ForEachColumn([&](const char* name, auto member) {
    column_at[name] = r.pos();
    for (size_t i = 0; i < n_rows && st.ok(); ++i) st = r.Get(&(rows[i].*member), name, i);
  });
  RETURN_IF_ERROR(st);
  std::string_view blob;
  RETURN_IF_ERROR(r.Bytes(blob_size, &blob, "blob"));
  b.obs.blob.assign(blob.begin(), blob.end());
  for (size_t i = 0; i < n_rows; ++i) {
    const Observation& o = rows[i];
    if (o.opt_len > kMaxTcpOptions) {
      return r.Bad(column_at["opt_len"] + i, fmt::format("opt_len[{}]", i),
                   fmt::format("{} > {}", o.opt_len, kMaxTcpOptions));
    }
    if (o.payload_cap > kPayloadPrefix) {
      return r.Bad(column_at["payload_cap"] + i, fmt::format("payload_cap[{}]", i),
                   fmt::format("{} > {}", o.payload_cap, kPayloadPrefix));
    }
    if (uint64_t{o.blob} + o.opt_len + o.payload_cap > blob_size) {
      return r.Bad(column_at["blob"] + 4 * i, fmt::format("blob[{}]", i),
                   fmt::format("{}+{}+{} beyond the {}-byte arena", o.blob, o.opt_len,
                               o.payload_cap, blob_size));
    }
  }
  return b;
}

Result<std::vector<std::string_view>> SplitFrames(std::string_view bytes, size_t max_frames,
                                                  const WireLimits& limits) {
  std::vector<std::string_view> frames;
  size_t at = 0;
  while (at < bytes.size()) {
    if (frames.size() == max_frames) {
      return DataLoss(fmt::format("request byte {}: more than {} frames", at, max_frames));
    }
    if (bytes.size() - at < kWireHeaderSize) {
      return DataLoss(fmt::format("request byte {}: {} bytes, a frame has at least {}", at,
                                  bytes.size() - at, kWireHeaderSize));
    }
    uint32_t clen = 0;
    std::memcpy(&clen, bytes.data() + at + 8, 4);
    uint64_t len = kWireHeaderSize + uint64_t{clen};
    if (len > limits.max_frame) {
      return DataLoss(fmt::format("request byte {}: a frame of {} bytes, over the limit of {}", at,
                                  len, limits.max_frame));
    }
    if (len > bytes.size() - at) {
      return DataLoss(fmt::format("request byte {}: frame of {} bytes cut short at {}", at, len,
                                  bytes.size() - at));
    }
    frames.push_back(bytes.substr(at, len));
    at += len;
  }
  if (frames.empty()) return DataLoss("request: no frame");
  return frames;
}

}  // namespace teiten
