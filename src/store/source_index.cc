#include "store/source_index.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "store/codec.h"

namespace teiten {
namespace {

constexpr char kMagic[8] = {'T', 'S', 'I', 'X', '0', '0', '0', '1'};
constexpr size_t kFooterSize = 16;

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Per source: varint c, then c varint gaps between its ascending reference numbers.
void PutPostings(std::vector<uint32_t>* refs, std::vector<uint8_t>* out) {
  std::sort(refs->begin(), refs->end());
  refs->erase(std::unique(refs->begin(), refs->end()), refs->end());
  codec::PutVarint(out, refs->size());
  uint32_t prev = 0;
  for (uint32_t r : *refs) {
    codec::PutVarint(out, r - prev);
    prev = r;
  }
}

}  // namespace

uint32_t SourceIndexBuilder::AddBlock(uint64_t segment, uint32_t block) {
  refs_.push_back({segment, block});
  return static_cast<uint32_t>(refs_.size() - 1);
}

Status SourceIndexBuilder::Write(const std::string& path) {
  std::sort(v4_.begin(), v4_.end());
  std::sort(v6_.begin(), v6_.end());
  std::vector<uint8_t> out(kMagic, kMagic + 8);
  codec::PutFixed<uint32_t>(&out, static_cast<uint32_t>(refs_.size()));
  codec::PutFixed<uint32_t>(&out, 0);
  for (const BlockRef& r : refs_) {
    codec::PutFixed<uint64_t>(&out, r.segment);
    codec::PutFixed<uint32_t>(&out, r.block);
    codec::PutFixed<uint32_t>(&out, 0);
  }
  std::vector<uint8_t> postings;
  std::vector<uint32_t> refs;
  // IPv4: addresses, then offsets of each one's postings.
  std::vector<uint32_t> addrs;
  std::vector<uint64_t> offs;
  for (size_t i = 0; i < v4_.size();) {
    uint32_t a = static_cast<uint32_t>(v4_[i] >> 32);
    refs.clear();
    for (; i < v4_.size() && static_cast<uint32_t>(v4_[i] >> 32) == a; ++i) {
      refs.push_back(static_cast<uint32_t>(v4_[i]));
    }
    addrs.push_back(a);
    offs.push_back(postings.size());
    PutPostings(&refs, &postings);
  }
  offs.push_back(postings.size());
  codec::PutFixed<uint64_t>(&out, addrs.size());
  codec::PutBytes(&out, addrs.data(), addrs.size() * 4);
  out.resize((out.size() + 7) / 8 * 8, 0);
  codec::PutBytes(&out, offs.data(), offs.size() * 8);
  std::vector<IpAddr> addrs6;
  offs.clear();
  for (size_t i = 0; i < v6_.size();) {
    IpAddr a = v6_[i].first;
    refs.clear();
    for (; i < v6_.size() && v6_[i].first == a; ++i) refs.push_back(v6_[i].second);
    addrs6.push_back(a);
    offs.push_back(postings.size());
    PutPostings(&refs, &postings);
  }
  offs.push_back(postings.size());
  codec::PutFixed<uint64_t>(&out, addrs6.size());
  for (const IpAddr& a : addrs6) codec::PutBytes(&out, a.bytes.data(), 16);
  codec::PutBytes(&out, offs.data(), offs.size() * 8);
  codec::PutFixed<uint64_t>(&out, postings.size());
  out.insert(out.end(), postings.begin(), postings.end());
  codec::PutFixed<uint64_t>(&out, XXH64(out.data(), out.size(), 0));
  out.insert(out.end(), kMagic, kMagic + 8);
  v4_.clear();
  v4_.shrink_to_fit();
  v6_.clear();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("create source index " + path);
  const uint8_t* p = out.data();
  size_t left = out.size();
  while (left > 0) {
    ssize_t w = ::write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return IoError("write " + path);
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return IoError("fsync " + path);
  }
  ::close(fd);
  return OkStatus();
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
  if (std::memcmp(x->base_, kMagic, 8) != 0 ||
      std::memcmp(x->base_ + x->size_ - 8, kMagic, 8) != 0) {
    return bad("bad magic (not a source index, or cut short)");
  }
  // Walk the sections, checking each fits before the footer.
  const uint64_t end = x->size_ - kFooterSize;
  uint64_t at = 8;
  auto take = [&](uint64_t n) -> const uint8_t* {
    if (at > end || n > end - at) return nullptr;
    const uint8_t* p = x->base_ + at;
    at += n;
    return p;
  };
  const uint8_t* p = take(8);
  if (!p) return bad("header cut short");
  x->nrefs_ = Load<uint32_t>(p);
  if (!(x->refs_ = take(uint64_t{x->nrefs_} * 16))) return bad("block table cut short");
  if (!(p = take(8))) return bad("IPv4 count cut short");
  x->n4_ = Load<uint64_t>(p);
  if (x->n4_ > end / 12) return bad("IPv4 count too large");
  if (!(x->addr4_ = take(x->n4_ * 4))) return bad("IPv4 addresses cut short");
  at = (at + 7) / 8 * 8;
  if (!(x->off4_ = take((x->n4_ + 1) * 8))) return bad("IPv4 offsets cut short");
  if (!(p = take(8))) return bad("IPv6 count cut short");
  x->n6_ = Load<uint64_t>(p);
  if (x->n6_ > end / 24) return bad("IPv6 count too large");
  if (!(x->addr6_ = take(x->n6_ * 16))) return bad("IPv6 addresses cut short");
  if (!(x->off6_ = take((x->n6_ + 1) * 8))) return bad("IPv6 offsets cut short");
  if (!(p = take(8))) return bad("postings size cut short");
  x->postings_size_ = Load<uint64_t>(p);
  if (!(x->postings_ = take(x->postings_size_))) return bad("postings cut short");
  return x;
}

SourceIndex::~SourceIndex() {
  if (base_) munmap(const_cast<uint8_t*>(base_), size_);
}

Status SourceIndex::Postings(uint64_t begin, uint64_t end, std::vector<BlockRef>* out) const {
  if (begin > end || end > postings_size_) {
    return DataLoss(
        fmt::format("source index {}: postings {}..{} out of bounds", path_, begin, end));
  }
  codec::Reader r(postings_ + begin, end - begin);
  uint64_t c = r.Varint();
  if (c > end - begin) return DataLoss(fmt::format("source index {}: bad postings", path_));
  uint64_t ref = 0;
  for (uint64_t i = 0; i < c; ++i) {
    ref += r.Varint();
    if (r.failed() || ref >= nrefs_) {
      return DataLoss(fmt::format("source index {}: posting at {} out of range", path_, begin));
    }
    const uint8_t* e = refs_ + ref * 16;
    out->push_back({Load<uint64_t>(e), Load<uint32_t>(e + 8)});
  }
  return OkStatus();
}

Status SourceIndex::Lookup(const IpAddr& addr, std::vector<BlockRef>* out) const {
  if (addr.is_v4()) {
    uint32_t want = addr.v4();
    uint64_t lo = 0, hi = n4_;
    while (lo < hi) {
      uint64_t mid = lo + (hi - lo) / 2;
      if (Load<uint32_t>(addr4_ + mid * 4) < want) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo == n4_ || Load<uint32_t>(addr4_ + lo * 4) != want) return OkStatus();
    return Postings(Load<uint64_t>(off4_ + lo * 8), Load<uint64_t>(off4_ + (lo + 1) * 8), out);
  }
  uint64_t lo = 0, hi = n6_;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (std::memcmp(addr6_ + mid * 16, addr.bytes.data(), 16) < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == n6_ || std::memcmp(addr6_ + lo * 16, addr.bytes.data(), 16) != 0) return OkStatus();
  return Postings(Load<uint64_t>(off6_ + lo * 8), Load<uint64_t>(off6_ + (lo + 1) * 8), out);
}

}  // namespace teiten
