#include "capture/pcap_file.h"

#include <fmt/format.h>
#include <pcap/pcap.h>
#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace teiten {

// A byte stream over a plain, gzip or zstd file; counts the decompressed bytes it hands out and
// records the first error it meets, so that a corrupt stream is reported as such, not as a
// truncated capture.
struct ByteStream {
  Compression kind;
  FILE* raw = nullptr;
  gzFile gz = nullptr;
  ZSTD_DCtx* zctx = nullptr;
  std::vector<uint8_t> in;
  ZSTD_inBuffer zin{nullptr, 0, 0};
  bool raw_eof = false;
  uint64_t pos = 0;
  uint64_t consumed = 0;  // compressed bytes before `in`
  z_stream zs{};
  bool zs_open = false;
  size_t zin_size = 0;
  size_t produced(const char* buf) const {
    return static_cast<size_t>(reinterpret_cast<const char*>(zs.next_out) - buf);
  }
  uint64_t compressed_at() const { return consumed + (zin_size - zs.avail_in); }
  bool frame_open = false;
  size_t got_this_call = 0;
  std::string error, held_error;

  // Reads up to `size` decompressed bytes: > 0 read, 0 at a clean end, -1 with `error` set. An
  // error met after some bytes were decompressed in this call is held for the next call, so that
  // every good byte before damage or trailing garbage is delivered first.
  ssize_t Read(char* buf, size_t size) {
    if (!held_error.empty()) {
      error = held_error;
      return -1;
    }
    ssize_t n = ReadSome(buf, size);
    if (n < 0 && got_this_call > 0) {
      held_error = error;
      error.clear();
      n = static_cast<ssize_t>(got_this_call);
    }
    if (n > 0) pos += static_cast<uint64_t>(n);
    return n;
  }

  ssize_t ReadSome(char* buf, size_t size) {
    got_this_call = 0;
    if (kind == Compression::kNone) {
      size_t got = fread(buf, 1, size, raw);
      if (got == 0 && ferror(raw)) {
        error = std::string("read: ") + std::strerror(errno);
        return -1;
      }
      return static_cast<ssize_t>(got);
    }
    if (kind == Compression::kGzip) {
      // inflate() itself rather than gzread(): every byte it produces before a damaged block, a
      // bad CRC in a trailer or trailing garbage is delivered, and a stream cut short is told
      // from one that ended.
      zs.next_out = reinterpret_cast<Bytef*>(buf);
      zs.avail_out = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
      while (zs.avail_out > 0) {
        if (zs.avail_in == 0) {
          if (raw_eof) break;
          consumed += zin_size;
          size_t got = fread(in.data(), 1, in.size(), raw);
          if (got == 0) {
            if (ferror(raw)) {
              error = std::string("read: ") + std::strerror(errno);
              got_this_call = produced(buf);
              return -1;
            }
            raw_eof = true;
            break;
          }
          zs.next_in = in.data();
          zs.avail_in = static_cast<uInt>(got);
          zin_size = got;
        }
        int r = inflate(&zs, Z_NO_FLUSH);
        if (r == Z_STREAM_END) {
          frame_open = false;
          // Another gzip member may follow (as `cat a.gz b.gz` makes); anything else is garbage.
          if (zs.avail_in == 0 && !raw_eof) {
            consumed += zin_size;
            size_t got = fread(in.data(), 1, in.size(), raw);
            zs.next_in = in.data();
            zs.avail_in = static_cast<uInt>(got);
            zin_size = got;
            if (got == 0) raw_eof = true;
          }
          if (zs.avail_in == 0) break;
          if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
            inflateReset(&zs);
            frame_open = true;
            continue;
          }
          error = fmt::format("gzip: trailing garbage at compressed byte {}", compressed_at());
          got_this_call = produced(buf);
          return -1;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
          error =
              fmt::format("gzip: {} at compressed byte {} (after {} decompressed bytes)",
                          zs.msg ? zs.msg : "corrupt data", compressed_at(), pos + produced(buf));
          got_this_call = produced(buf);
          return -1;
        }
        frame_open = true;
        if (r == Z_BUF_ERROR && zs.avail_in > 0) break;  // no progress possible
      }
      got_this_call = produced(buf);
      if (raw_eof && zs.avail_in == 0 && frame_open && zs.avail_out > 0) {
        error =
            fmt::format("gzip: the compressed stream is cut short (after {} decompressed bytes)",
                        pos + got_this_call);
        return -1;
      }
      return static_cast<ssize_t>(got_this_call);
    }
    ZSTD_outBuffer out{buf, size, 0};
    while (out.pos < out.size) {
      if (zin.pos == zin.size) {
        if (raw_eof) break;
        consumed += zin.size;
        size_t got = fread(in.data(), 1, in.size(), raw);
        if (got == 0) {
          if (ferror(raw)) {
            error = std::string("read: ") + std::strerror(errno);
            got_this_call = out.pos;
            return -1;
          }
          raw_eof = true;
          break;
        }
        zin = {in.data(), got, 0};
      }
      size_t r = ZSTD_decompressStream(zctx, &out, &zin);
      if (ZSTD_isError(r)) {
        error = fmt::format("zstd: {} at compressed byte {} (after {} decompressed bytes)",
                            ZSTD_getErrorName(r), consumed + zin.pos, pos + out.pos);
        got_this_call = out.pos;
        return -1;
      }
      frame_open = r != 0;
    }
    got_this_call = out.pos;
    if (raw_eof && zin.pos == zin.size && frame_open && out.pos < out.size) {
      // The input ended inside a frame: a capture cut short, even where the bytes decoded so far
      // end on a packet boundary.
      error = fmt::format("zstd: the compressed stream is cut short (after {} decompressed bytes)",
                          pos + out.pos);
      return -1;
    }
    return static_cast<ssize_t>(out.pos);
  }
  ~ByteStream() {
    if (zs_open) inflateEnd(&zs);
    if (gz) gzclose(gz);
    if (zctx) ZSTD_freeDCtx(zctx);
    if (raw) fclose(raw);
  }
};

namespace {

ssize_t CookieRead(void* c, char* buf, size_t size) {
  return static_cast<ByteStream*>(c)->Read(buf, size);
}
int CookieSeek(void* c, off64_t* offset, int whence) {
  // Only "where am I" is supported; libpcap never seeks a capture it reads forward.
  if (whence == SEEK_CUR && *offset == 0) {
    *offset = static_cast<off64_t>(static_cast<ByteStream*>(c)->pos);
    return 0;
  }
  errno = ESPIPE;
  return -1;
}
int CookieClose(void* c) {
  delete static_cast<ByteStream*>(c);
  return 0;
}

}  // namespace

Result<Compression> DetectCompression(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) return IoError(path);
  uint8_t magic[4] = {};
  size_t n = fread(magic, 1, 4, f);
  fclose(f);
  if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) return Compression::kGzip;
  if (n == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

namespace {

ByteStream* OpenStream(const std::string& path, Compression kind) {
  auto* bs = new ByteStream();
  bs->kind = kind;
  if (kind == Compression::kGzip) {
    bs->raw = fopen(path.c_str(), "rb");
    if (bs->raw) setvbuf(bs->raw, nullptr, _IONBF, 0);
    bs->in.resize(size_t{1} << 18);
    // 15 + 16: a gzip wrapper (header and CRC-32 trailer) around deflate data.
    if (inflateInit2(&bs->zs, 15 + 16) != Z_OK) {
      delete bs;
      return nullptr;
    }
    bs->zs_open = true;
  } else {
    bs->raw = fopen(path.c_str(), "rb");
    if (bs->raw) setvbuf(bs->raw, nullptr, _IONBF, 0);  // we read in large blocks ourselves
    if (kind == Compression::kZstd) {
      bs->zctx = ZSTD_createDCtx();
      bs->in.resize(ZSTD_DStreamInSize() * 4);
    }
  }
  if (!bs->gz && !bs->raw) {
    delete bs;
    return nullptr;
  }
  return bs;
}

constexpr uint32_t kMagicMicro = 0xA1B2C3D4, kMagicNano = 0xA1B23C4D, kMagicNg = 0x0A0D0D0A;
constexpr uint32_t kMaxCaplen = 262144;  // libpcap's own bound on a record
constexpr size_t kBufSize = size_t{4} << 20;

uint32_t Load32(const uint8_t* p, bool swap) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}

}  // namespace

Result<std::unique_ptr<PcapFile>> PcapFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(Compression kind, DetectCompression(path));
  std::unique_ptr<PcapFile> f(new PcapFile());
  f->path_ = path;
  f->compression_ = kind;
  errno = 0;
  f->bytes_ = OpenStream(path, kind);
  if (!f->bytes_) return IoError(path);
  f->buf_.Allocate(kBufSize);
  if (!f->Fill(24)) {
    if (!f->read_error_.empty()) return DataLoss(fmt::format("{}: {}", path, f->read_error_));
    return InvalidArgument(
        fmt::format("{}: not a pcap or pcapng capture: only {} bytes", path, f->end_));
  }
  const uint8_t* h = f->buf_.data();
  uint32_t magic;
  std::memcpy(&magic, h, 4);
  if (magic == kMagicNg) {
    delete f->bytes_;
    f->bytes_ = nullptr;
    RETURN_IF_ERROR(f->OpenWithLibpcap());
    return f;
  }
  if (magic == kMagicMicro || magic == kMagicNano) {
    f->swapped_ = false;
  } else if (__builtin_bswap32(magic) == kMagicMicro || __builtin_bswap32(magic) == kMagicNano) {
    f->swapped_ = true;
  } else {
    return InvalidArgument(fmt::format("{}: not a pcap or pcapng capture (first bytes {:08x})",
                                       path, __builtin_bswap32(magic)));
  }
  f->nano_ = (f->swapped_ ? __builtin_bswap32(magic) : magic) == kMagicNano;
  uint32_t major = f->swapped_ ? __builtin_bswap16(static_cast<uint16_t>(h[4] | h[5] << 8))
                               : static_cast<uint16_t>(h[4] | h[5] << 8);
  if (major != 2) {
    return InvalidArgument(fmt::format("{}: pcap version {} is not 2", path, major));
  }
  f->dlt_ = static_cast<int>(Load32(h + 20, f->swapped_) & 0xFFFF);
  f->pos_ = 24;
  return f;
}

Status PcapFile::OpenWithLibpcap() {
  errno = 0;
  if (compression_ == Compression::kNone) {
    stream_ = fopen(path_.c_str(), "rb");
    if (!stream_) return IoError(path_);
  } else {
    ByteStream* bs = OpenStream(path_, compression_);
    if (!bs) return IoError(path_);
    cookie_io_functions_t io{CookieRead, nullptr, CookieSeek, CookieClose};
    stream_ = fopencookie(bs, "rb", io);
    if (!stream_) {
      delete bs;
      return IoError(path_);
    }
  }
  setvbuf(stream_, nullptr, _IOFBF, 1 << 20);
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_ = pcap_fopen_offline_with_tstamp_precision(stream_, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
  if (!pcap_) {
    fclose(stream_);
    stream_ = nullptr;
    return InvalidArgument(fmt::format("{}: not a readable pcapng capture: {}", path_, errbuf));
  }
  // libpcap owns the stream from here and closes it with pcap_close().
  dlt_ = pcap_datalink(pcap_);
  return OkStatus();
}

PcapFile::~PcapFile() {
  if (pcap_) pcap_close(pcap_);
  delete bytes_;
}

bool PcapFile::Fill(size_t need) {
  if (end_ - pos_ >= need) return true;
  if (pos_ > 0) {
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    buf_offset_ += pos_;
    end_ -= pos_;
    pos_ = 0;
  }
  while (end_ < need) {
    ssize_t n = bytes_->Read(reinterpret_cast<char*>(buf_.data() + end_), buf_.size() - end_);
    if (n < 0) {
      read_error_ = bytes_->error;
      return false;
    }
    if (n == 0) return false;
    end_ += static_cast<size_t>(n);
  }
  return true;
}

uint64_t PcapFile::offset() const {
  if (bytes_) return buf_offset_ + pos_;
  long pos = ftell(pcap_file(pcap_));
  return pos < 0 ? 0 : static_cast<uint64_t>(pos);
}

Result<bool> PcapFile::NextClassic(Packet* out) {
  uint64_t at = offset();
  auto fail = [&](const std::string& why) {
    return DataLoss(fmt::format("{}: offset {} (after packet {}): {}", path_, at, packets_, why));
  };
  if (!Fill(16)) {
    if (!read_error_.empty()) return fail(read_error_);
    if (end_ == pos_) return false;
    return fail(
        fmt::format("truncated capture: record header cut short ({} of 16 bytes)", end_ - pos_));
  }
  const uint8_t* h = buf_.data() + pos_;
  uint32_t sec = Load32(h, swapped_), frac = Load32(h + 4, swapped_);
  uint32_t caplen = Load32(h + 8, swapped_), len = Load32(h + 12, swapped_);
  if (caplen > kMaxCaplen) {
    return fail(
        fmt::format("corrupt record header: {} captured bytes (more than {})", caplen, kMaxCaplen));
  }
  if (!Fill(16 + size_t{caplen})) {
    if (!read_error_.empty()) return fail(read_error_);
    return fail(fmt::format("truncated capture: record needs {} bytes, only {} remain", caplen,
                            end_ - pos_ - 16));
  }
  h = buf_.data() + pos_;
  out->ts_us = int64_t{sec} * 1000000 + (nano_ ? frac / 1000 : frac);
  out->data = h + 16;
  out->caplen = caplen;
  out->wirelen = len;
  pos_ += 16 + size_t{caplen};
  ++packets_;
  return true;
}

Result<bool> PcapFile::Next(Packet* out) {
  if (bytes_) return NextClassic(out);
  uint64_t at = offset();
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  int r;
  // pcapng carries 64-bit timestamps in any resolution: one past year 9999 (or before 1970)
  // would overflow microseconds and land on a bogus day. Such packets are skipped and counted.
  constexpr int64_t kMaxSec = 253402300799;  // 9999-12-31T23:59:59Z
  while ((r = pcap_next_ex(pcap_, &hdr, &data)) == 1 &&
         (hdr->ts.tv_sec < 0 || hdr->ts.tv_sec > kMaxSec)) {
    ++packets_;
    ++bad_timestamps_;
  }
  if (r == 1) {
    out->ts_us = int64_t{hdr->ts.tv_sec} * 1000000 + hdr->ts.tv_usec;
    out->data = data;
    out->caplen = hdr->caplen;
    out->wirelen = hdr->len;
    ++packets_;
    return true;
  }
  if (r == PCAP_ERROR_BREAK) return false;  // end of file
  std::string why = pcap_geterr(pcap_);
  return DataLoss(fmt::format("{}: offset {} (after packet {}): {}", path_, at, packets_, why));
}

Result<std::string> HashFile(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) return IoError(path);
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) XXH3_128bits_update(st, buf.data(), n);
  bool bad = ferror(f) != 0;
  fclose(f);
  XXH128_hash_t h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  if (bad) return IoError(path);
  return fmt::format("{:016x}{:016x}", h.high64, h.low64);
}

}  // namespace teiten
