#include "store/rollup.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>

namespace teiten {
namespace {

constexpr char kMagic[8] = {'T', 'R', 'O', 'L', 'L', 'U', 'P', '2'};
constexpr size_t kHeaderSize = 8 + 4 + 4;
// Per sensor: u16 sensor, u16 pad, u32 pad, u64 packets, u64 set, then 5 × (u64 offset, u64 count)
constexpr size_t kDirEntrySize = 8 + 8 + 8 + 5 * 16;
constexpr int kSections = 5;  // ports, countries, ASNs, port × country (zstd), 5-minute slots
constexpr size_t kFooterSize = 8 + 8;  // xxh64 of everything before, magic

}  // namespace

PortCell& SensorDay::Port(PortKey k) {
  bool dense = (PortKeyProto(k) == 6 || PortKeyProto(k) == 17) && PortKeyHasPort(k);
  if (dense) {
    if (dense_.empty()) dense_.assign(2 * 65536, -1);
    size_t slot = (PortKeyProto(k) == 17 ? 65536u : 0u) + PortKeyPort(k);
    int32_t& idx = dense_[slot];
    if (idx < 0) {
      idx = static_cast<int32_t>(ports.size());
      ports.emplace_back();
      ports.back().key = k;
    }
    return ports[static_cast<size_t>(idx)];
  }
  auto [it, fresh] = sparse_.emplace(k, static_cast<uint32_t>(ports.size()));
  if (fresh) {
    ports.emplace_back();
    ports.back().key = k;
  }
  return ports[it->second];
}

void SensorDay::AddRun(const IpAddr& src, const GeoInfo& geo, uint64_t n) {
  total.packets += n;
  total.sources.Add(src);
  Cell& c = countries[geo.country];
  c.packets += n;
  c.sources.Add(src);
  Cell& a = asns[geo.asn];
  a.packets += n;
  a.sources.Add(src);
}

namespace {
template <typename K>
void MergeMap(std::unordered_map<K, Cell>* into, const std::unordered_map<K, Cell>& from) {
  for (const auto& [k, v] : from) {
    Cell& c = (*into)[k];
    c.packets += v.packets;
    c.sources.Merge(v.sources);
  }
}
}  // namespace

void SensorDay::Merge(const SensorDay& o) {
  total.packets += o.total.packets;
  total.sources.Merge(o.total.sources);
  for (const PortCell& p : o.ports) {
    PortCell& mine = Port(p.key);
    mine.packets += p.packets;
    mine.sources.Merge(p.sources);
    for (const auto& [cc, n] : p.countries) mine.countries[cc] += n;
  }
  MergeMap(&countries, o.countries);
  MergeMap(&asns, o.asns);
  if (slots.size() < o.slots.size()) slots.resize(o.slots.size());
  for (size_t i = 0; i < o.slots.size(); ++i) slots[i] += o.slots[i];
}

void DayRollup::Merge(const DayRollup& o) {
  for (const auto& [s, d] : o.sensors) sensors[s].Merge(d);
}

std::vector<uint8_t> DayRollup::Encode() {
  // Layout: header | directory | sections (8-byte aligned records) | source sets | footer.
  std::vector<uint8_t> out(kMagic, kMagic + 8);
  codec::PutFixed<int32_t>(&out, day);
  codec::PutFixed<uint32_t>(&out, static_cast<uint32_t>(sensors.size()));
  size_t dir_at = out.size();
  out.resize(dir_at + kDirEntrySize * sensors.size());
  std::vector<uint8_t> sets;  // appended after the sections; offsets fixed up below
  struct Fix {
    size_t rec_at;
    uint64_t set_rel;
  };
  std::vector<Fix> fixes;
  size_t si = 0;
  for (auto& [sensor, sd] : sensors) {
    uint8_t* dir = nullptr;
    std::vector<std::pair<uint64_t, uint64_t>> sections;
    auto keyed = [&](auto& map) {
      std::vector<uint32_t> keys;
      for (auto& kv : map) keys.push_back(kv.first);
      std::sort(keys.begin(), keys.end());
      uint64_t at = out.size();
      for (uint32_t k : keys) {
        Cell& c = map[static_cast<typename std::decay_t<decltype(map)>::key_type>(k)];
        c.sources.Normalize();
        RollupFile::KeyRec r{k, 0, c.packets};
        fixes.push_back({out.size(), sets.size()});
        c.sources.AppendTo(&sets);
        codec::PutBytes(&out, &r, sizeof r);
      }
      sections.push_back({at, keys.size()});
    };
    std::vector<PortCell*> sorted;
    for (PortCell& c : sd.ports) sorted.push_back(&c);
    {
      std::sort(sorted.begin(), sorted.end(),
                [](const PortCell* x, const PortCell* y) { return x->key < y->key; });
      uint64_t at = out.size();
      for (PortCell* cp : sorted) {
        PortCell& c = *cp;
        c.sources.Normalize();
        RollupFile::KeyRec r{c.key, 0, c.packets};
        fixes.push_back({out.size(), sets.size()});
        c.sources.AppendTo(&sets);
        codec::PutBytes(&out, &r, sizeof r);
      }
      sections.push_back({at, sd.ports.size()});
    }
    keyed(sd.countries);
    keyed(sd.asns);
    {
      std::vector<uint8_t> raw;
      size_t n = 0;
      std::vector<std::pair<CountryCode, uint64_t>> cs;
      for (const PortCell* cp : sorted) {
        const PortCell& c = *cp;
        cs.assign(c.countries.begin(), c.countries.end());
        std::sort(cs.begin(), cs.end());
        for (auto [cc, v] : cs) {
          RollupFile::PairRec r{c.key, cc, v};
          codec::PutBytes(&raw, &r, sizeof r);
          ++n;
        }
      }
      std::vector<uint8_t> z = codec::Compress(raw.data(), raw.size(), 3);
      uint64_t at = out.size();
      codec::PutFixed<uint32_t>(&out, static_cast<uint32_t>(raw.size()));
      codec::PutFixed<uint32_t>(&out, static_cast<uint32_t>(z.size()));
      out.insert(out.end(), z.begin(), z.end());
      out.resize((out.size() + 7) / 8 * 8, 0);  // keep the sections that follow 8-byte aligned
      sections.push_back({at, n});
    }
    sections.push_back({out.size(), sd.slots.size()});
    for (uint64_t v : sd.slots) codec::PutFixed<uint64_t>(&out, v);
    sd.total.sources.Normalize();
    uint64_t total_set = sets.size();
    sd.total.sources.AppendTo(&sets);
    dir = out.data() + dir_at + si * kDirEntrySize;
    std::vector<uint8_t> d;
    codec::PutFixed<uint16_t>(&d, sensor);
    codec::PutFixed<uint16_t>(&d, 0);
    codec::PutFixed<uint32_t>(&d, 0);
    codec::PutFixed<uint64_t>(&d, sd.total.packets);
    codec::PutFixed<uint64_t>(&d, total_set);  // relative; fixed below
    for (auto [off, n] : sections) {
      codec::PutFixed<uint64_t>(&d, off);
      codec::PutFixed<uint64_t>(&d, n);
    }
    std::memcpy(dir, d.data(), d.size());
    ++si;
  }
  uint64_t sets_at = out.size();
  for (const Fix& f : fixes) {
    auto abs = static_cast<uint32_t>(sets_at + f.set_rel);
    std::memcpy(out.data() + f.rec_at + offsetof(RollupFile::KeyRec, set_offset), &abs, 4);
  }
  for (size_t i = 0; i < sensors.size(); ++i) {
    uint8_t* p = out.data() + dir_at + i * kDirEntrySize + 16;
    uint64_t rel;
    std::memcpy(&rel, p, 8);
    rel += sets_at;
    std::memcpy(p, &rel, 8);
  }
  out.insert(out.end(), sets.begin(), sets.end());
  codec::PutFixed<uint64_t>(&out, XXH64(out.data(), out.size(), 0));
  out.insert(out.end(), kMagic, kMagic + 8);
  return out;
}

Result<std::unique_ptr<RollupFile>> RollupFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("rollup " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return IoError("rollup " + path);
  }
  std::unique_ptr<RollupFile> f(new RollupFile());
  f->path_ = path;
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ < kHeaderSize + kFooterSize) {
    ::close(fd);
    return DataLoss(fmt::format("rollup {}: {} bytes is too short to be a rollup", path, f->size_));
  }
  void* m = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return IoError("rollup mmap " + path);
  f->base_ = static_cast<const uint8_t*>(m);
  if (std::memcmp(f->base_, kMagic, 8) != 0 ||
      std::memcmp(f->base_ + f->size_ - 8, kMagic, 8) != 0) {
    return DataLoss(fmt::format("rollup {}: bad magic (not a rollup, or cut short)", path));
  }
  codec::Reader r(f->base_ + 8, f->size_ - 8 - kFooterSize);
  f->day_ = r.Fixed<int32_t>();
  uint32_t n = r.Fixed<uint32_t>();
  if (n > 65536 || r.remaining() < uint64_t{n} * kDirEntrySize) {
    return DataLoss(fmt::format("rollup {}: sensor directory of {} entries does not fit", path, n));
  }
  uint64_t body_end = f->size_ - kFooterSize;
  for (uint32_t i = 0; i < n; ++i) {
    SensorView v;
    v.file = f.get();
    v.sensor = r.Fixed<uint16_t>();
    r.Fixed<uint16_t>();
    r.Fixed<uint32_t>();
    v.packets = r.Fixed<uint64_t>();
    v.set_offset = r.Fixed<uint64_t>();
    uint64_t off[kSections], cnt[kSections];
    for (int s = 0; s < kSections; ++s) {
      off[s] = r.Fixed<uint64_t>();
      cnt[s] = r.Fixed<uint64_t>();
    }
    // The port × country section is a compressed frame: its count is of records inside it.
    const size_t widths[kSections] = {sizeof(KeyRec), sizeof(KeyRec), sizeof(KeyRec), 0,
                                      sizeof(uint64_t)};
    for (int s = 0; s < kSections; ++s) {
      if (widths[s] == 0) {
        if (off[s] > body_end || body_end - off[s] < 8) {
          return DataLoss(
              fmt::format("rollup {}: sensor {} section {} out of bounds", path, v.sensor, s));
        }
        continue;
      }
      if (off[s] > body_end || cnt[s] > (body_end - off[s]) / widths[s] || off[s] % 8 != 0) {
        return DataLoss(
            fmt::format("rollup {}: sensor {} section {} out of bounds", path, v.sensor, s));
      }
    }
    auto span = [&](int s, auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      return Span<T>{reinterpret_cast<const T*>(f->base_ + off[s]), cnt[s]};
    };
    v.ports = span(0, static_cast<KeyRec*>(nullptr));
    v.countries = span(1, static_cast<KeyRec*>(nullptr));
    v.asns = span(2, static_cast<KeyRec*>(nullptr));
    v.port_country_offset = off[3];
    v.port_country_count = cnt[3];
    v.slots = span(4, static_cast<uint64_t*>(nullptr));
    f->sensors_.push_back(v);
  }
  if (r.failed()) return DataLoss(fmt::format("rollup {}: directory cut short", path));
  return f;
}

RollupFile::~RollupFile() {
  if (base_) munmap(const_cast<uint8_t*>(base_), size_);
}

Result<SourceSet> RollupFile::ReadSet(uint64_t offset) const {
  if (offset >= size_ - kFooterSize) {
    return DataLoss(fmt::format("rollup {}: source set offset {} out of bounds", path_, offset));
  }
  codec::Reader r(base_ + offset, size_ - kFooterSize - offset);
  auto s = SourceSet::Read(&r);
  if (!s.ok()) {
    return DataLoss(fmt::format("rollup {}: offset {}: {}", path_, offset, s.status().message()));
  }
  return s;
}

Result<std::vector<RollupFile::PairRec>> RollupFile::PortCountry(const SensorView& v) const {
  codec::Reader r(base_ + v.port_country_offset, size_ - kFooterSize - v.port_country_offset);
  uint32_t raw = r.Fixed<uint32_t>();
  uint32_t comp = r.Fixed<uint32_t>();
  const uint8_t* z = r.Bytes(comp);
  if (r.failed() || raw != v.port_country_count * sizeof(PairRec)) {
    return DataLoss(
        fmt::format("rollup {}: sensor {}: port x country section malformed", path_, v.sensor));
  }
  std::vector<uint8_t> bytes;
  if (!codec::Decompress(z, comp, raw, &bytes)) {
    return DataLoss(
        fmt::format("rollup {}: sensor {}: port x country section corrupt", path_, v.sensor));
  }
  std::vector<PairRec> recs(v.port_country_count);
  if (raw) std::memcpy(recs.data(), bytes.data(), raw);
  return recs;
}

Status RollupFile::AppendSetMembers(uint64_t offset, std::vector<uint32_t>* v4,
                                    std::vector<IpAddr>* v6) const {
  if (offset >= size_ - kFooterSize) {
    return DataLoss(fmt::format("rollup {}: source set offset {} out of bounds", path_, offset));
  }
  codec::Reader r(base_ + offset, size_ - kFooterSize - offset);
  Status st = SourceSet::AppendMembers(&r, v4, v6);
  if (!st.ok())
    return DataLoss(fmt::format("rollup {}: offset {}: {}", path_, offset, st.message()));
  return OkStatus();
}

Status RollupFile::Verify() const {
  uint64_t want;
  std::memcpy(&want, base_ + size_ - kFooterSize, 8);
  if (XXH64(base_, size_ - kFooterSize, 0) != want) {
    return DataLoss(fmt::format("rollup {}: checksum mismatch", path_));
  }
  return OkStatus();
}

Result<DayRollup> RollupFile::Decode() const {
  DayRollup d;
  d.day = day_;
  for (const SensorView& v : sensors_) {
    SensorDay& sd = d.sensors[v.sensor];
    sd.total.packets = v.packets;
    ASSIGN_OR_RETURN(sd.total.sources, ReadSet(v.set_offset));
    auto keyed = [&](Span<KeyRec> recs, auto* map) -> Status {
      for (const KeyRec& k : recs) {
        using K = typename std::remove_pointer_t<decltype(map)>::key_type;
        Cell& c = (*map)[static_cast<K>(k.key)];
        c.packets = k.packets;
        ASSIGN_OR_RETURN(c.sources, ReadSet(k.set_offset));
      }
      return OkStatus();
    };
    for (const KeyRec& k : v.ports) {
      PortCell& c = sd.Port(k.key);
      c.packets = k.packets;
      ASSIGN_OR_RETURN(c.sources, ReadSet(k.set_offset));
    }
    RETURN_IF_ERROR(keyed(v.countries, &sd.countries));
    RETURN_IF_ERROR(keyed(v.asns, &sd.asns));
    ASSIGN_OR_RETURN(std::vector<PairRec> pc, PortCountry(v));
    for (const PairRec& p : pc) sd.Port(p.a).countries[static_cast<CountryCode>(p.b)] = p.packets;
    sd.slots.assign(v.slots.begin(), v.slots.end());
  }
  return d;
}

}  // namespace teiten
