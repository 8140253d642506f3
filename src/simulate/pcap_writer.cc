#include "simulate/pcap_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace teiten::simulate {

namespace {
constexpr size_t kBlock = 4096;  // O_DIRECT alignment of buffer, offsets and lengths
}

Result<std::unique_ptr<PcapWriter>> PcapWriter::Create(const std::string& path, uint32_t linktype,
                                                       size_t buffer_bytes, bool direct) {
  std::unique_ptr<PcapWriter> w(new PcapWriter());
  w->path_ = path;
  struct stat st {};
  bool in_place = stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
  w->tmp_path_ = in_place ? path : path + ".partial";
  int flags = O_WRONLY | O_CLOEXEC | (in_place ? 0 : O_CREAT | O_TRUNC);
  if (direct && !in_place) {
    w->fd_ = open(w->tmp_path_.c_str(), flags | O_DIRECT, 0644);
    w->direct_ = w->fd_ >= 0;  // EINVAL where the file system has no O_DIRECT: plain writes
  }
  if (w->fd_ < 0) w->fd_ = open(w->tmp_path_.c_str(), flags, 0644);
  if (w->fd_ < 0) return IoError("cannot create " + w->tmp_path_);
  if (in_place) w->tmp_path_.clear();  // nothing to rename or remove
  w->cap_ = (std::max<size_t>(buffer_bytes, 1 << 17) + kBlock - 1) / kBlock * kBlock;
  w->buf_.reset(static_cast<uint8_t*>(std::aligned_alloc(kBlock, w->cap_)));
  if (!w->buf_) return IoError("no memory for the buffer of " + path);
  // Global header: magic, version 2.4, thiszone 0, sigfigs 0, snaplen, linktype.
  uint32_t header[6] = {0xa1b2c3d4U, 0x00040002U, 0, 0, 65535, linktype};
  std::memcpy(w->buf_.get(), header, sizeof header);
  w->used_ = sizeof header;
  return w;
}

PcapWriter::~PcapWriter() {
  if (fd_ >= 0) close(fd_);
  if (!finished_ && !tmp_path_.empty()) unlink(tmp_path_.c_str());
}

void PcapWriter::WriteAll(const uint8_t* p, size_t n) {
  size_t off = 0;
  while (off < n && write_errno_ == 0) {
    ssize_t k = write(fd_, p + off, n - off);
    if (k < 0) {
      if (errno == EINTR) continue;
      write_errno_ = errno;
      break;
    }
    off += static_cast<size_t>(k);
  }
}

void PcapWriter::Flush() {
  // O_DIRECT takes whole blocks: the tail stays at the front of the buffer for next time.
  const size_t n = direct_ ? used_ / kBlock * kBlock : used_;
  WriteAll(buf_.get(), n);
  bytes_written_ += n;
  if (n < used_) std::memmove(buf_.get(), buf_.get() + n, used_ - n);
  used_ -= n;  // after an error the rest is discarded; Finish() reports it
  if (write_errno_ != 0) used_ = 0;
}

Status PcapWriter::Finish() {
  Flush();
  if (direct_ && used_ > 0 && write_errno_ == 0) {
    // The last partial block, through the page cache.
    if (fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) & ~O_DIRECT) != 0) write_errno_ = errno;
    WriteAll(buf_.get(), used_);
    bytes_written_ += used_;
    used_ = 0;
  }
  int close_rc = close(fd_);
  fd_ = -1;
  if (write_errno_ == 0 && close_rc != 0) write_errno_ = errno;
  if (write_errno_ != 0) {
    std::string what = std::strerror(write_errno_);
    if (!tmp_path_.empty()) unlink(tmp_path_.c_str());
    finished_ = true;
    return Status(StatusCode::kIoError, "writing " + path_ + ": " + what);
  }
  if (!tmp_path_.empty() && std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    Status s = IoError("cannot rename " + tmp_path_ + " to " + path_);
    unlink(tmp_path_.c_str());
    finished_ = true;
    return s;
  }
  finished_ = true;
  return OkStatus();
}

}  // namespace teiten::simulate
