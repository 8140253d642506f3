#include "capture/pcap_file.h"

#include <pcap/pcap.h>
#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace teiten {
namespace {

// A decompressing read-only stdio stream (glibc fopencookie). It counts the decompressed bytes it
// hands out so that ftell() gives libpcap's position, and records the first error it meets so
// that a corrupt stream is reported as such, not as a truncated capture.
struct Inflater {
  Compression kind;
  FILE* raw = nullptr;
  gzFile gz = nullptr;
  ZSTD_DCtx* zctx = nullptr;
  std::vector<uint8_t> in;
  ZSTD_inBuffer zin{nullptr, 0, 0};
  bool raw_eof = false;
  uint64_t pos = 0;
  std::string error;

  ssize_t Read(char* buf, size_t size) {
    if (kind == Compression::kGzip) {
      int n = gzread(gz, buf, static_cast<unsigned>(std::min<size_t>(size, 1u << 30)));
      if (n < 0) {
        int err = 0;
        const char* msg = gzerror(gz, &err);
        error = std::string("gzip: ") + (msg ? msg : "error");
        return -1;
      }
      pos += static_cast<uint64_t>(n);
      return n;
    }
    ZSTD_outBuffer out{buf, size, 0};
    while (out.pos < out.size) {
      if (zin.pos == zin.size) {
        if (raw_eof) break;
        size_t got = fread(in.data(), 1, in.size(), raw);
        if (got == 0) {
          if (ferror(raw)) {
            error = std::string("read: ") + std::strerror(errno);
            return -1;
          }
          raw_eof = true;
          break;
        }
        zin = {in.data(), got, 0};
      }
      size_t r = ZSTD_decompressStream(zctx, &out, &zin);
      if (ZSTD_isError(r)) {
        error = std::string("zstd: ") + ZSTD_getErrorName(r);
        return -1;
      }
    }
    pos += out.pos;
    return static_cast<ssize_t>(out.pos);
  }

  ~Inflater() {
    if (gz) gzclose(gz);
    if (zctx) ZSTD_freeDCtx(zctx);
    if (raw) fclose(raw);
  }
};

ssize_t CookieRead(void* c, char* buf, size_t size) {
  return static_cast<Inflater*>(c)->Read(buf, size);
}
int CookieSeek(void* c, off64_t* offset, int whence) {
  // Only "where am I" is supported; libpcap never seeks a capture it reads forward.
  if (whence == SEEK_CUR && *offset == 0) {
    *offset = static_cast<off64_t>(static_cast<Inflater*>(c)->pos);
    return 0;
  }
  errno = ESPIPE;
  return -1;
}
int CookieClose(void* c) {
  delete static_cast<Inflater*>(c);
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

Result<std::unique_ptr<PcapFile>> PcapFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(Compression kind, DetectCompression(path));
  std::unique_ptr<PcapFile> f(new PcapFile());
  f->path_ = path;
  f->compression_ = kind;
  errno = 0;
  if (kind == Compression::kNone) {
    f->stream_ = fopen(path.c_str(), "rb");
    if (!f->stream_) return IoError(path);
  } else {
    auto* inf = new Inflater();
    inf->kind = kind;
    if (kind == Compression::kGzip) {
      inf->gz = gzopen(path.c_str(), "rb");
      if (inf->gz) gzbuffer(inf->gz, 1 << 18);
    } else {
      inf->raw = fopen(path.c_str(), "rb");
      inf->zctx = ZSTD_createDCtx();
      inf->in.resize(ZSTD_DStreamInSize() * 4);
    }
    if ((kind == Compression::kGzip && !inf->gz) || (kind == Compression::kZstd && !inf->raw)) {
      delete inf;
      return IoError(path);
    }
    cookie_io_functions_t io{CookieRead, nullptr, CookieSeek, CookieClose};
    f->stream_ = fopencookie(inf, "rb", io);
    if (!f->stream_) {
      delete inf;
      return IoError(path);
    }
  }
  setvbuf(f->stream_, nullptr, _IOFBF, 1 << 20);
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  f->pcap_ = pcap_fopen_offline_with_tstamp_precision(f->stream_, PCAP_TSTAMP_PRECISION_MICRO,
                                                       errbuf);
  if (!f->pcap_) {
    fclose(f->stream_);
    f->stream_ = nullptr;
    return InvalidArgument(fmt::format("{}: not a readable pcap or pcapng capture: {}", path,
                                       errbuf));
  }
  // libpcap owns the stream from here and closes it with pcap_close().
  f->dlt_ = pcap_datalink(f->pcap_);
  return f;
}

PcapFile::~PcapFile() {
  if (pcap_) pcap_close(pcap_);
}

uint64_t PcapFile::offset() const {
  long pos = ftell(pcap_file(pcap_));
  return pos < 0 ? 0 : static_cast<uint64_t>(pos);
}

Result<bool> PcapFile::Next(Packet* out) {
  uint64_t at = offset();
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  int r = pcap_next_ex(pcap_, &hdr, &data);
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
