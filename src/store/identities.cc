#include "store/identities.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "store/codec.h"
#include "store/durable.h"

namespace teiten {
namespace {

constexpr char kMagic[8] = {'T', 'I', 'D', 'S', '0', '0', '0', '1'};
constexpr size_t kFooter = 16;  // u64 XXH64, magic

uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

Status WriteIdentities(const std::string& path, const CaptureIdentities& ids) {
  std::vector<std::pair<uint64_t, uint64_t>> keys;
  std::vector<uint8_t> records;
  std::vector<uint64_t> offsets;
  for (size_t i = 0; i < ids.size(); ++i) {
    offsets.push_back(records.size());
    for (const std::string* s : {&ids[i].first, &ids[i].second}) {
      codec::PutVarint(&records, s->size());
      records.insert(records.end(), s->begin(), s->end());
      if (!s->empty()) keys.push_back({XXH3_64bits(s->data(), s->size()), i});
    }
  }
  offsets.push_back(records.size());
  std::sort(keys.begin(), keys.end());
  std::vector<uint8_t> out(kMagic, kMagic + 8);
  codec::PutFixed<uint64_t>(&out, ids.size());
  codec::PutFixed<uint64_t>(&out, keys.size());
  codec::PutFixed<uint64_t>(&out, records.size());
  for (const auto& [h, i] : keys) {
    codec::PutFixed<uint64_t>(&out, h);
    codec::PutFixed<uint64_t>(&out, i);
  }
  for (uint64_t o : offsets) codec::PutFixed<uint64_t>(&out, o);
  out.insert(out.end(), records.begin(), records.end());
  ChunkSums::Append(&out);
  codec::PutFixed<uint64_t>(&out, XXH64(out.data(), out.size(), 0));
  out.insert(out.end(), kMagic, kMagic + 8);
  return WriteFileDurably(path, out.data(), out.size());
}

Result<std::unique_ptr<IdentityFile>> IdentityFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("capture identities " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return IoError("capture identities " + path);
  }
  std::unique_ptr<IdentityFile> x(new IdentityFile());
  x->path_ = path;
  x->size_ = static_cast<uint64_t>(st.st_size);
  auto bad = [&](const std::string& what) {
    return DataLoss(fmt::format("capture identities {}: {}", path, what));
  };
  if (x->size_ < 32 + kFooter) {
    ::close(fd);
    return bad(fmt::format("{} bytes is too short", x->size_));
  }
  void* m = mmap(nullptr, x->size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return IoError("capture identities mmap " + path);
  x->base_ = static_cast<const uint8_t*>(m);
  if (std::memcmp(x->base_, kMagic, 8) != 0 ||
      std::memcmp(x->base_ + x->size_ - 8, kMagic, 8) != 0) {
    return bad("bad magic (not a capture identities file, or cut short)");
  }
  RETURN_IF_ERROR(x->sums_.Open(x->base_, x->size_ - kFooter, path));
  const uint64_t body = x->sums_.body_size();
  RETURN_IF_ERROR(x->sums_.Check(8, 24));
  x->n_ = Load64(x->base_ + 8);
  x->keys_ = Load64(x->base_ + 16);
  x->records_size_ = Load64(x->base_ + 24);
  // Each count bounded by the body before any product is formed from it.
  if (x->n_ > body / 8 || x->keys_ > body / 16 || x->keys_ > 2 * x->n_ || x->records_size_ > body ||
      32 + x->keys_ * 16 + (x->n_ + 1) * 8 + x->records_size_ != body) {
    return bad("section sizes do not add up to the file");
  }
  x->key_at_ = x->base_ + 32;
  x->off_at_ = x->key_at_ + x->keys_ * 16;
  x->rec_at_ = x->off_at_ + (x->n_ + 1) * 8;
  return x;
}

IdentityFile::~IdentityFile() {
  if (base_) munmap(const_cast<uint8_t*>(base_), size_);
}

Status IdentityFile::Verify() const {
  if (XXH64(base_, size_ - kFooter, 0) != Load64(base_ + size_ - kFooter)) {
    return DataLoss(
        fmt::format("capture identities {}: checksum mismatch (the file is damaged)", path_));
  }
  return sums_.Check(0, sums_.body_size());
}

Status IdentityFile::Record(uint64_t i, std::string* hash, std::string* file_hash) const {
  auto bad = [&](const char* what) {
    return DataLoss(fmt::format("capture identities {}: capture {}: {}", path_, i, what));
  };
  if (i >= n_) return bad("out of range");
  RETURN_IF_ERROR(sums_.Check(static_cast<uint64_t>(off_at_ - base_) + i * 8, 16));
  uint64_t b = Load64(off_at_ + i * 8), e = Load64(off_at_ + (i + 1) * 8);
  if (b > e || e > records_size_) return bad("record out of bounds");
  RETURN_IF_ERROR(sums_.Check(static_cast<uint64_t>(rec_at_ - base_) + b, e - b));
  codec::Reader r(rec_at_ + b, e - b);
  for (std::string* s : {hash, file_hash}) {
    uint64_t len = r.Varint();
    const uint8_t* p = r.failed() || len > e - b ? nullptr : r.Bytes(len);
    if (!p) return bad("record cut short");
    s->assign(reinterpret_cast<const char*>(p), len);
  }
  if (r.failed()) return bad("record cut short");
  return OkStatus();
}

Result<bool> IdentityFile::Holds(const std::string& h) const {
  if (h.empty()) return false;
  const uint64_t want = XXH3_64bits(h.data(), h.size());
  uint64_t lo = 0, hi = keys_;
  const uint64_t keys_off = static_cast<uint64_t>(key_at_ - base_);
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    RETURN_IF_ERROR(sums_.Check(keys_off + mid * 16, 16));
    if (Load64(key_at_ + mid * 16) < want) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  std::string hash, file_hash;
  for (; lo < keys_; ++lo) {
    RETURN_IF_ERROR(sums_.Check(keys_off + lo * 16, 16));
    if (Load64(key_at_ + lo * 16) != want) break;
    RETURN_IF_ERROR(Record(Load64(key_at_ + lo * 16 + 8), &hash, &file_hash));
    if (hash == h || file_hash == h) return true;
  }
  return false;
}

Result<CaptureIdentities> IdentityFile::All() const {
  CaptureIdentities out;
  for (uint64_t i = 0; i < n_; ++i) {
    std::string hash, file_hash;
    RETURN_IF_ERROR(Record(i, &hash, &file_hash));
    out.push_back({std::move(hash), std::move(file_hash)});
  }
  return out;
}

}  // namespace teiten
