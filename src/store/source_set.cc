#include "store/source_set.h"

#include <algorithm>

namespace teiten {

void SourceSet::Grow() {
  big_ = true;
  v4_.addMany(small_.size(), small_.data());
  small_.clear();
  small_.shrink_to_fit();
}

void SourceSet::Normalize() {
  if (!pending_v6_.empty()) {
    v6_.insert(v6_.end(), pending_v6_.begin(), pending_v6_.end());
    pending_v6_.clear();
    std::sort(v6_.begin(), v6_.end());
    v6_.erase(std::unique(v6_.begin(), v6_.end()), v6_.end());
  }
  if (big_) v4_.runOptimize();
}

void SourceSet::Merge(const SourceSet& o) {
  if (o.big_) {
    if (!big_) Grow();
    v4_ |= o.v4_;
  } else {
    for (uint32_t a : o.small_) AddV4(a);
  }
  if (!o.v6_.empty() || !o.pending_v6_.empty()) {
    pending_v6_.insert(pending_v6_.end(), o.v6_.begin(), o.v6_.end());
    pending_v6_.insert(pending_v6_.end(), o.pending_v6_.begin(), o.pending_v6_.end());
    Normalize();
  }
}

uint64_t SourceSet::Count() const {
  uint64_t n = big_ ? v4_.cardinality() : small_.size();
  if (pending_v6_.empty()) return n + v6_.size();
  std::vector<IpAddr> all(v6_);
  all.insert(all.end(), pending_v6_.begin(), pending_v6_.end());
  std::sort(all.begin(), all.end());
  return n + static_cast<uint64_t>(std::unique(all.begin(), all.end()) - all.begin());
}

bool SourceSet::Contains(const IpAddr& a) const {
  if (a.is_v4()) {
    if (big_) return v4_.contains(a.v4());
    return std::find(small_.begin(), small_.end(), a.v4()) != small_.end();
  }
  return std::binary_search(v6_.begin(), v6_.end(), a) ||
         std::find(pending_v6_.begin(), pending_v6_.end(), a) != pending_v6_.end();
}

void SourceSet::AppendTo(std::vector<uint8_t>* out) const {
  if (big_) {
    codec::PutU8(out, 1);
    size_t n = v4_.getSizeInBytes(true);
    codec::PutFixed<uint32_t>(out, static_cast<uint32_t>(n));
    size_t at = out->size();
    out->resize(at + n);
    v4_.write(reinterpret_cast<char*>(out->data() + at), true);
  } else {
    codec::PutU8(out, 0);
    std::vector<uint32_t> sorted(small_);
    std::sort(sorted.begin(), sorted.end());
    codec::PutVarint(out, sorted.size());
    uint32_t prev = 0;
    for (uint32_t a : sorted) {
      codec::PutVarint(out, a - prev);
      prev = a;
    }
  }
  codec::PutVarint(out, v6_.size());
  for (const IpAddr& a : v6_) codec::PutBytes(out, a.bytes.data(), 16);
}

Result<SourceSet> SourceSet::Read(codec::Reader* r) {
  SourceSet s;
  uint8_t tag = r->Fixed<uint8_t>();
  if (tag == 1) {
    uint32_t n = r->Fixed<uint32_t>();
    const uint8_t* p = r->Bytes(n);
    if (r->failed()) return DataLoss("source set cut short");
    try {
      s.v4_ = Roaring::readSafe(reinterpret_cast<const char*>(p), n);
    } catch (const std::exception& e) {
      return DataLoss(std::string("source set bitmap: ") + e.what());
    }
    s.big_ = true;
  } else if (tag == 0) {
    uint64_t n = r->Varint();
    if (r->failed() || n > kSmallMax) return DataLoss("source set: bad short-list length");
    uint64_t a = 0;
    for (uint64_t i = 0; i < n; ++i) {
      a += r->Varint();
      if (a > UINT32_MAX) return DataLoss("source set: address out of range");
      s.small_.push_back(static_cast<uint32_t>(a));
    }
    if (r->failed()) return DataLoss("source set cut short");
  } else {
    return DataLoss("source set: unknown kind " + std::to_string(tag));
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
