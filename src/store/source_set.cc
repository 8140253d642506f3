#include "store/source_set.h"

#include <algorithm>

namespace teiten {

void SourceSet::Normalize() {
  if (!pending_v6_.empty()) {
    v6_.insert(v6_.end(), pending_v6_.begin(), pending_v6_.end());
    pending_v6_.clear();
    std::sort(v6_.begin(), v6_.end());
    v6_.erase(std::unique(v6_.begin(), v6_.end()), v6_.end());
  }
  v4_.runOptimize();
}

void SourceSet::Merge(const SourceSet& o) {
  v4_ |= o.v4_;
  if (!o.v6_.empty() || !o.pending_v6_.empty()) {
    pending_v6_.insert(pending_v6_.end(), o.v6_.begin(), o.v6_.end());
    pending_v6_.insert(pending_v6_.end(), o.pending_v6_.begin(), o.pending_v6_.end());
    Normalize();
  }
}

uint64_t SourceSet::Count() const {
  uint64_t n = v4_.cardinality();
  if (pending_v6_.empty()) return n + v6_.size();
  std::vector<IpAddr> all(v6_);
  all.insert(all.end(), pending_v6_.begin(), pending_v6_.end());
  std::sort(all.begin(), all.end());
  return n + static_cast<uint64_t>(std::unique(all.begin(), all.end()) - all.begin());
}

bool SourceSet::Contains(const IpAddr& a) const {
  if (a.is_v4()) return v4_.contains(a.v4());
  return std::binary_search(v6_.begin(), v6_.end(), a) ||
         std::find(pending_v6_.begin(), pending_v6_.end(), a) != pending_v6_.end();
}

void SourceSet::AppendTo(std::vector<uint8_t>* out) const {
  size_t n = v4_.getSizeInBytes(true);
  codec::PutFixed<uint32_t>(out, static_cast<uint32_t>(n));
  size_t at = out->size();
  out->resize(at + n);
  v4_.write(reinterpret_cast<char*>(out->data() + at), true);
  codec::PutVarint(out, v6_.size());
  for (const IpAddr& a : v6_) codec::PutBytes(out, a.bytes.data(), 16);
}

Result<SourceSet> SourceSet::Read(codec::Reader* r) {
  SourceSet s;
  uint32_t n = r->Fixed<uint32_t>();
  const uint8_t* p = r->Bytes(n);
  if (r->failed()) return DataLoss("source set cut short");
  try {
    s.v4_ = Roaring::readSafe(reinterpret_cast<const char*>(p), n);
  } catch (const std::exception& e) {
    return DataLoss(std::string("source set bitmap: ") + e.what());
  }
  uint64_t v6 = r->Varint();
  if (r->failed() || v6 > r->remaining() / 16) return DataLoss("source set IPv6 list cut short");
  s.v6_.resize(v6);
  for (auto& a : s.v6_) {
    const uint8_t* b = r->Bytes(16);
    if (!b) return DataLoss("source set IPv6 list cut short");
    std::memcpy(a.bytes.data(), b, 16);
  }
  return s;
}

}  // namespace teiten
