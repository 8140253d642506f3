#include "store/segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "store/codec.h"

namespace teiten {
namespace {

constexpr char kMagic[8] = {'T', 'S', 'E', 'G', 'M', 'N', 'T', '1'};
constexpr uint32_t kColumns = 7;
enum ColumnId : uint32_t { kColRuns, kColTs, kColSensor, kColDst, kColPorts, kColHeader, kColBlob };
constexpr size_t kPortsWidth = 8;    // proto, sport(2), dport(2), icmp type, icmp code, flags
constexpr size_t kHeaderWidth = 18;  // ip_len(2) ttl ip_id(2) tcp_flags seq(4) ack(4) window(2) plen(2)
constexpr const char* kColumnNames[kColumns] = {"sources", "time",   "sensor", "destination",
                                                "ports",   "header", "payload"};

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

std::vector<uint8_t> Shuffled(const std::vector<uint8_t>& raw, size_t rows, size_t width) {
  std::vector<uint8_t> out(raw.size());
  codec::Shuffle(raw.data(), rows, width, out.data());
  return out;
}

// Encodes rows order[begin, end) of `b` as one block.
std::vector<uint8_t> EncodeBlock(const ObservationBatch& b, const std::vector<uint32_t>& order,
                                 const std::vector<GeoInfo>& geo, size_t begin, size_t end,
                                 int level, SegmentWriter::BlockInfo* info) {
  size_t n = end - begin;
  std::vector<uint8_t> cols[kColumns];
  // Sources as runs.
  std::vector<uint8_t> addrs, geos, lens;
  const Observation* first = &b.rows[order[begin]];
  info->src_min = first->src;
  info->src_max = b.rows[order[end - 1]].src;
  info->ts_min = INT64_MAX;
  info->ts_max = INT64_MIN;
  for (size_t i = begin; i < end; ++i) {
    info->ts_min = std::min(info->ts_min, b.rows[order[i]].ts_us);
    info->ts_max = std::max(info->ts_max, b.rows[order[i]].ts_us);
  }
  size_t nruns = 0;
  int64_t prev_ts = 0;
  for (size_t i = begin; i < end;) {
    const Observation& o = b.rows[order[i]];
    size_t j = i + 1;
    while (j < end && b.rows[order[j]].src == o.src) ++j;
    codec::PutBytes(&addrs, o.src.bytes.data(), 16);
    const GeoInfo& g = geo[order[i]];
    codec::PutFixed<uint16_t>(&geos, g.country);
    codec::PutFixed<uint32_t>(&geos, g.asn);
    codec::PutVarint(&lens, j - i);
    prev_ts = info->ts_min;
    for (size_t k = i; k < j; ++k) {
      int64_t ts = b.rows[order[k]].ts_us;
      codec::PutVarint(&cols[kColTs], static_cast<uint64_t>(ts - prev_ts));
      prev_ts = ts;
    }
    ++nruns;
    i = j;
  }
  codec::PutVarint(&cols[kColRuns], nruns);
  auto a = Shuffled(addrs, nruns, 16);
  auto g = Shuffled(geos, nruns, 6);
  cols[kColRuns].insert(cols[kColRuns].end(), a.begin(), a.end());
  cols[kColRuns].insert(cols[kColRuns].end(), g.begin(), g.end());
  cols[kColRuns].insert(cols[kColRuns].end(), lens.begin(), lens.end());

  std::vector<uint8_t> sensor, dst, ports, header;
  sensor.reserve(n * 2);
  dst.reserve(n * 16);
  ports.reserve(n * kPortsWidth);
  header.reserve(n * kHeaderWidth);
  std::vector<uint8_t>& blob = cols[kColBlob];
  std::vector<uint8_t> caps(2 * n);
  for (size_t i = begin; i < end; ++i) {
    const Observation& o = b.rows[order[i]];
    codec::PutFixed<uint16_t>(&sensor, o.sensor);
    codec::PutBytes(&dst, o.dst.bytes.data(), 16);
    codec::PutU8(&ports, o.proto);
    codec::PutFixed<uint16_t>(&ports, o.sport);
    codec::PutFixed<uint16_t>(&ports, o.dport);
    codec::PutU8(&ports, o.icmp_type);
    codec::PutU8(&ports, o.icmp_code);
    codec::PutU8(&ports, o.flags);
    codec::PutFixed<uint16_t>(&header, o.ip_len);
    codec::PutU8(&header, o.ttl);
    codec::PutFixed<uint16_t>(&header, o.ip_id);
    codec::PutU8(&header, o.tcp_flags);
    codec::PutFixed<uint32_t>(&header, o.seq);
    codec::PutFixed<uint32_t>(&header, o.ack);
    codec::PutFixed<uint16_t>(&header, o.window);
    codec::PutFixed<uint16_t>(&header, o.payload_len);
    caps[i - begin] = o.opt_len;
    caps[n + i - begin] = o.payload_cap;
  }
  cols[kColSensor] = Shuffled(sensor, n, 2);
  cols[kColDst] = Shuffled(dst, n, 16);
  cols[kColPorts] = Shuffled(ports, n, kPortsWidth);
  cols[kColHeader] = Shuffled(header, n, kHeaderWidth);
  blob = caps;
  for (size_t i = begin; i < end; ++i) {
    const Observation& o = b.rows[order[i]];
    codec::PutBytes(&blob, b.blob.data() + o.blob, size_t{o.opt_len} + o.payload_cap);
  }

  std::vector<uint8_t> out;
  codec::PutFixed<uint32_t>(&out, kColumns);
  std::vector<std::vector<uint8_t>> frames;
  for (auto& c : cols) frames.push_back(codec::Compress(c.data(), c.size(), level));
  for (size_t c = 0; c < kColumns; ++c) {
    codec::PutFixed<uint32_t>(&out, static_cast<uint32_t>(cols[c].size()));
    codec::PutFixed<uint32_t>(&out, static_cast<uint32_t>(frames[c].size()));
  }
  for (auto& f : frames) out.insert(out.end(), f.begin(), f.end());
  info->rows = static_cast<uint32_t>(n);
  info->size = static_cast<uint32_t>(out.size());
  info->checksum = XXH64(out.data(), out.size(), 0);
  return out;
}

}  // namespace

Status SegmentWriter::Write(const std::string& path, const ObservationBatch& batch,
                            const std::vector<uint32_t>& order, const std::vector<GeoInfo>& geo,
                            int level, uint64_t* bytes_written) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("create segment " + path);
  std::vector<uint8_t> head(kMagic, kMagic + 8);
  Status st = WriteAll(fd, head.data(), head.size(), path);
  uint64_t offset = head.size();
  std::vector<BlockInfo> blocks;
  for (size_t begin = 0; st.ok() && begin < order.size(); begin += kBlockRows) {
    size_t end = std::min(order.size(), begin + kBlockRows);
    BlockInfo info;
    auto bytes = EncodeBlock(batch, order, geo, begin, end, level, &info);
    info.offset = offset;
    st = WriteAll(fd, bytes.data(), bytes.size(), path);
    offset += bytes.size();
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
  if (std::memcmp(r->base_, kMagic, 8) != 0 || std::memcmp(r->base_ + r->size_ - 8, kMagic, 8) != 0) {
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
  if (n > (flen - 4) / 72) return DataLoss(fmt::format("segment {}: block count {} does not fit", path, n));
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
    if (b.offset < 8 || b.offset > foot_at || b.size > foot_at - b.offset || b.rows > kBlockRows) {
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
  const auto& info = blocks_[bi];
  auto bad = [&](const std::string& what) {
    return DataLoss(fmt::format("segment {}: block {}: {}", path_, bi, what));
  };
  const uint8_t* p = base_ + info.offset;
  if (XXH64(p, info.size, 0) != info.checksum) return bad("checksum mismatch");
  codec::Reader r(p, info.size);
  uint32_t ncols = r.Fixed<uint32_t>();
  if (ncols != kColumns) return bad(fmt::format("{} columns, expected {}", ncols, kColumns));
  uint32_t raw[kColumns], comp[kColumns];
  for (uint32_t c = 0; c < kColumns; ++c) {
    raw[c] = r.Fixed<uint32_t>();
    comp[c] = r.Fixed<uint32_t>();
  }
  const uint8_t* frames[kColumns];
  for (uint32_t c = 0; c < kColumns; ++c) frames[c] = r.Bytes(comp[c]);
  if (r.failed()) return bad("column directory cut short");
  size_t n = info.rows;
  if (columns & col::kTs) columns |= col::kSrc;
  auto& rows = out->batch.rows;
  rows.assign(n, Observation{});
  out->batch.blob.clear();
  out->geo.clear();
  std::vector<uint8_t> buf, tmp;
  auto load = [&](uint32_t c, size_t expect) -> Status {
    if (expect != SIZE_MAX && raw[c] != expect) {
      return bad(fmt::format("column {}: {} bytes, expected {}", kColumnNames[c], raw[c], expect));
    }
    if (raw[c] > 64u * kBlockRows * 200) return bad(fmt::format("column {} too large", kColumnNames[c]));
    if (!codec::Decompress(frames[c], comp[c], raw[c], &buf)) {
      return bad(fmt::format("column {}: corrupt compressed data", kColumnNames[c]));
    }
    return OkStatus();
  };
  if (columns & col::kSrc) {
    RETURN_IF_ERROR(load(kColRuns, SIZE_MAX));
    codec::Reader cr(buf.data(), buf.size());
    uint64_t nruns = cr.Varint();
    if (cr.failed() || nruns == 0 || nruns > n) return bad("source runs: bad run count");
    const uint8_t* a = cr.Bytes(nruns * 16);
    const uint8_t* g = cr.Bytes(nruns * 6);
    if (cr.failed()) return bad("source runs cut short");
    std::vector<uint8_t> addrs(nruns * 16), geos(nruns * 6);
    codec::Unshuffle(a, nruns, 16, addrs.data());
    codec::Unshuffle(g, nruns, 6, geos.data());
    out->geo.resize(n);
    size_t row = 0;
    std::vector<uint64_t> run_len(nruns);
    for (uint64_t k = 0; k < nruns; ++k) {
      uint64_t len = cr.Varint();
      if (cr.failed() || len == 0 || len > n - row) return bad("source runs: bad run length");
      IpAddr src = IpAddr::V6(addrs.data() + k * 16);
      GeoInfo gi;
      std::memcpy(&gi.country, geos.data() + k * 6, 2);
      std::memcpy(&gi.asn, geos.data() + k * 6 + 2, 4);
      for (uint64_t j = 0; j < len; ++j, ++row) {
        rows[row].src = src;
        out->geo[row] = gi;
      }
      run_len[k] = len;
    }
    if (row != n) return bad("source runs do not cover the block");
    if (columns & col::kTs) {
      RETURN_IF_ERROR(load(kColTs, SIZE_MAX));
      codec::Reader tr(buf.data(), buf.size());
      row = 0;
      for (uint64_t k = 0; k < nruns; ++k) {
        int64_t ts = info.ts_min;
        for (uint64_t j = 0; j < run_len[k]; ++j, ++row) {
          ts += static_cast<int64_t>(tr.Varint());
          rows[row].ts_us = ts;
        }
      }
      if (tr.failed()) return bad("time column cut short");
    }
  }
  if (columns & col::kSensor) {
    RETURN_IF_ERROR(load(kColSensor, n * 2));
    tmp.resize(n * 2);
    codec::Unshuffle(buf.data(), n, 2, tmp.data());
    for (size_t i = 0; i < n; ++i) std::memcpy(&rows[i].sensor, tmp.data() + i * 2, 2);
  }
  if (columns & col::kDst) {
    RETURN_IF_ERROR(load(kColDst, n * 16));
    tmp.resize(n * 16);
    codec::Unshuffle(buf.data(), n, 16, tmp.data());
    for (size_t i = 0; i < n; ++i) std::memcpy(rows[i].dst.bytes.data(), tmp.data() + i * 16, 16);
  }
  if (columns & col::kPorts) {
    RETURN_IF_ERROR(load(kColPorts, n * kPortsWidth));
    tmp.resize(n * kPortsWidth);
    codec::Unshuffle(buf.data(), n, kPortsWidth, tmp.data());
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* q = tmp.data() + i * kPortsWidth;
      Observation& o = rows[i];
      o.proto = q[0];
      std::memcpy(&o.sport, q + 1, 2);
      std::memcpy(&o.dport, q + 3, 2);
      o.icmp_type = q[5];
      o.icmp_code = q[6];
      o.flags = q[7];
    }
  }
  if (columns & col::kHeader) {
    RETURN_IF_ERROR(load(kColHeader, n * kHeaderWidth));
    tmp.resize(n * kHeaderWidth);
    codec::Unshuffle(buf.data(), n, kHeaderWidth, tmp.data());
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* q = tmp.data() + i * kHeaderWidth;
      Observation& o = rows[i];
      std::memcpy(&o.ip_len, q, 2);
      o.ttl = q[2];
      std::memcpy(&o.ip_id, q + 3, 2);
      o.tcp_flags = q[5];
      std::memcpy(&o.seq, q + 6, 4);
      std::memcpy(&o.ack, q + 10, 4);
      std::memcpy(&o.window, q + 14, 2);
      std::memcpy(&o.payload_len, q + 16, 2);
    }
  }
  if (columns & col::kBlob) {
    RETURN_IF_ERROR(load(kColBlob, SIZE_MAX));
    if (buf.size() < 2 * n) return bad("payload column cut short");
    size_t at = 2 * n;
    auto& blob = out->batch.blob;
    for (size_t i = 0; i < n; ++i) {
      Observation& o = rows[i];
      o.opt_len = buf[i];
      o.payload_cap = buf[n + i];
      size_t len = size_t{o.opt_len} + o.payload_cap;
      if (o.opt_len > kMaxTcpOptions || o.payload_cap > kPayloadPrefix || buf.size() - at < len) {
        return bad("payload column: bad lengths");
      }
      o.blob = static_cast<uint32_t>(blob.size());
      blob.insert(blob.end(), buf.data() + at, buf.data() + at + len);
      at += len;
    }
  }
  return OkStatus();
}

}  // namespace teiten
