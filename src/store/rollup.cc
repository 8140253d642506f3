#include "store/rollup.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "store/file_out.h"
#include "store/rollup_write.h"

namespace teiten {
namespace {

// Format 11 (written, rollup_write.h's kMagic): format 10's layout, whose small sets of positions
// may also be Rice codes (source set kinds 16 to 47). Format 10 (read): the port × country
// records as varint columns, countries as ranks in the section's list of them. Format 9 (read): the
// same records as 16-byte structs; heavy-hitter lists that their records imply are not written (as
// in 10). Format 8 (read): keyed sets as positions in their entry's total set, as gaps or as runs
// (source set kind 5), whichever is smaller. Format 7 (read): the same, as gaps only. Format 6
// (read): the same layout, every set as addresses.
constexpr char kMagic10[8] = {'T', 'R', 'O', 'L', 'L', 'U', '1', '0'};
constexpr char kMagic9[8] = {'T', 'R', 'O', 'L', 'L', 'U', 'P', '9'};
constexpr char kMagic8[8] = {'T', 'R', 'O', 'L', 'L', 'U', 'P', '8'};
constexpr char kMagic7[8] = {'T', 'R', 'O', 'L', 'L', 'U', 'P', '7'};
constexpr char kMagic6[8] = {'T', 'R', 'O', 'L', 'L', 'U', 'P', '6'};
// Format 5: the keyed sections' records in place, 40 bytes each, before the blobs.
constexpr char kMagic5[8] = {'T', 'R', 'O', 'L', 'L', 'U', 'P', '5'};
// Format 4: the port × country section one zstd frame, ordered by port only.
constexpr char kMagic4[8] = {'T', 'R', 'O', 'L', 'L', 'U', 'P', '4'};
// Format 3: no chunk checksums, sets without a length (verified whole when opened).
constexpr char kMagic3[8] = {'T', 'R', 'O', 'L', 'L', 'U', 'P', '3'};
constexpr char kOldMagic[8] = {'T', 'R', 'O', 'L', 'L', 'U', 'P', '2'};
constexpr int kSections = 5;  // ports, countries, ASNs, port × country (zstd), 5-minute slots
constexpr size_t kFooterSize = 8 + 8;  // xxh64 of everything before, magic
// Records per block of the port × country section (16 KiB raw): one port's or one country's
// records decode only the blocks that hold them.
constexpr uint32_t kPairBlock = 1024;
// Format 10's (its columns compress better in larger frames: 6 % fewer bytes).
constexpr uint32_t kPairBlock10 = 4096;
constexpr size_t kPairIndexEntry = 16;  // u32 first port, u32 first country, u32 n, u32 bytes
// Format 6: records per block of a keyed section; a lookup decodes one block (~6 KB of varints).
constexpr uint32_t kKeyBlock = 1024;
constexpr size_t kKeyIndexEntry = 16;  // u32 first key, u32 records, u32 compressed, u32 raw

}  // namespace

void FoldHeavy(std::vector<HeavyEntry>* into, std::vector<HeavyEntry>* add, size_t k) {
  if (add->empty()) return;
  auto by_addr = [](const HeavyEntry& a, const HeavyEntry& b) { return a.first < b.first; };
  if (!std::is_sorted(add->begin(), add->end(), by_addr)) {
    std::sort(add->begin(), add->end(), by_addr);
  }
  std::vector<HeavyEntry> merged;
  merged.reserve(into->size() + add->size());
  size_t i = 0, j = 0;
  while (i < into->size() || j < add->size()) {
    if (j == add->size() || (i < into->size() && (*into)[i].first < (*add)[j].first)) {
      merged.push_back((*into)[i++]);
    } else if (i == into->size() || (*add)[j].first < (*into)[i].first) {
      merged.push_back((*add)[j++]);
    } else {
      merged.push_back({(*into)[i].first, (*into)[i].second + (*add)[j].second});
      ++i;
      ++j;
    }
  }
  // Two lists can hold the same source twice only if `add` repeated one: sum those too.
  size_t w = 0;
  for (size_t r = 0; r < merged.size(); ++r) {
    if (w > 0 && merged[w - 1].first == merged[r].first) {
      merged[w - 1].second += merged[r].second;
    } else {
      merged[w++] = merged[r];
    }
  }
  merged.resize(w);
  if (merged.size() > k) {
    std::vector<uint64_t> counts(merged.size());
    for (size_t r = 0; r < merged.size(); ++r) counts[r] = merged[r].second;
    std::nth_element(counts.begin(), counts.begin() + static_cast<ptrdiff_t>(k), counts.end(),
                     std::greater<uint64_t>());
    uint64_t cut = counts[k];  // the (k+1)-th largest
    w = 0;
    for (size_t r = 0; r < merged.size(); ++r) {
      if (merged[r].second > cut) merged[w++] = {merged[r].first, merged[r].second - cut};
    }
    merged.resize(w);
  }
  into->swap(merged);
  add->clear();
}

PortCell& SensorDay::Port(PortKey k) {
  bool dense = (PortKeyProto(k) == 6 || PortKeyProto(k) == 17) && PortKeyHasPort(k);
  if (dense && !dense_.empty()) {
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
    // The direct index (512 KiB) pays only for a day with many ports: a capture spread over
    // thousands of days with a few packets each would otherwise hold one per day.
    if (ports.size() == kDenseFromPorts) {
      dense_.assign(2 * 65536, -1);
      for (const auto& [key, idx] : sparse_) {
        if ((PortKeyProto(key) == 6 || PortKeyProto(key) == 17) && PortKeyHasPort(key)) {
          dense_[(PortKeyProto(key) == 17 ? 65536u : 0u) + PortKeyPort(key)] =
              static_cast<int32_t>(idx);
        }
      }
    }
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
    std::vector<HeavyEntry> add = p.heavy;
    FoldHeavy(&mine.heavy, &add, kHeavySlots);
  }
  MergeMap(&countries, o.countries);
  MergeMap(&asns, o.asns);
  if (slots.size() < o.slots.size()) slots.resize(o.slots.size());
  for (size_t i = 0; i < o.slots.size(); ++i) slots[i] += o.slots[i];
}

void DayRollup::Merge(const DayRollup& o) {
  for (const auto& [s, d] : o.sensors) sensors[s].Merge(d);
}

namespace rollup_write {

// A source set in the blob area of a format-4 file: its byte length, then the set, so that a
// reader verifies exactly its chunks before parsing it.
void AppendSetWithLength(const SourceSet& set, std::vector<uint8_t>* out, const MemberDict* dict) {
  std::vector<uint8_t> bytes;
  // A keyed set as positions in its entry's total set; as addresses if a member were missing
  // from it (none is: the total counts every source the entry's records count).
  if (!dict || !set.AppendPositionsTo(dict->v4, dict->v6, &bytes).ok()) {
    bytes.clear();
    set.AppendTo(&bytes);
  }
  codec::PutVarint(out, bytes.size());
  out->insert(out->end(), bytes.begin(), bytes.end());
}

// A heavy-hitter list in the blob area. When it holds every source of its record (`sources`
// entries: a port with at most K sources, most ports of a day), its addresses are the record's
// set's: u8 0, then each member's count as a varint in the set's order (IPv4 ascending, then
// IPv6 ascending), so no address is written twice. Otherwise per entry u8 family (4 or 6), the
// address (4 or 16 bytes), varint count; largest count first, ties by address.
// True when a port record's heavy-hitter list says nothing its record does not (format 9): it
// holds every source of the record, and either the record has one source (its count is the
// record's packets) or as many packets as sources (every count is 1). Such a list is not
// written; a reader makes it from the record's set. In a day at one sensor most ports' lists are
// such (a scanner's one probe), 87 % of a sample of the 1 G store's sensor days' list bytes.
bool HeavyListImplied(const std::vector<HeavyEntry>& heavy, uint64_t packets, uint64_t sources) {
  if (heavy.empty() || heavy.size() != sources) return false;
  if (sources == 1) return heavy[0].second == packets;
  if (packets != sources) return false;
  return std::all_of(heavy.begin(), heavy.end(), [](const HeavyEntry& e) { return e.second == 1; });
}

void AppendHeavyList(const std::vector<HeavyEntry>& heavy, uint64_t sources,
                     std::vector<uint8_t>* out) {
  std::vector<HeavyEntry> h = heavy;
  if (h.size() == sources) {
    std::sort(h.begin(), h.end(), [](const HeavyEntry& a, const HeavyEntry& b) {
      return a.first.is_v4() != b.first.is_v4() ? a.first.is_v4() : a.first < b.first;
    });
    codec::PutU8(out, 0);
    for (const auto& e : h) codec::PutVarint(out, e.second);
    return;
  }
  std::sort(h.begin(), h.end(), [](const HeavyEntry& a, const HeavyEntry& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  for (const auto& [addr, n] : h) {
    if (addr.is_v4()) {
      codec::PutU8(out, 4);
      codec::PutFixed<uint32_t>(out, addr.v4());
    } else {
      codec::PutU8(out, 6);
      codec::PutBytes(out, addr.bytes.data(), 16);
    }
    codec::PutVarint(out, n);
  }
}

// The port × country section of formats 5 to 10: the records (sorted by port, then country)
// twice, in blocks of kPairBlock (format 10: kPairBlock10) — first ordered by port, then by
// country — each block its own zstd frame:
//   u32 port-ordered blocks P, u32 country-ordered blocks C,
//   (P + C) × { u32 first record's port, u32 its country, u32 records, u32 compressed bytes },
//   the frames in index order.
// Formats 5 to 9: a frame holds the block's records as 16-byte structs (u32 port, u32 country,
// u64 packets). Format 10 puts the section's distinct countries, ascending, between the counts
// and the index (u32 K, u32 0, K × u32 country), and a frame holds its records as three columns
// of n varints each (PairColumns) — the outer key's gap from the previous record's (the first's:
// 0), the inner key (its gap from the previous record's when the outer key is the same, else
// itself), the packets — where the port-ordered blocks' outer key is the port and the
// country-ordered blocks' the country, and a country is written as its rank in that list. The
// structs took 2.3 bytes a record in each order after zstd (a quarter of the 1 G store's
// rollups); the columns 1.0 and 0.8.
void PairColumns(const RollupFile::PairRec* recs, size_t n, bool by_country,
                 const std::vector<uint32_t>& countries, std::vector<uint8_t>* raw) {
  auto rank = [&](uint32_t c) {
    return static_cast<uint32_t>(std::lower_bound(countries.begin(), countries.end(), c) -
                                 countries.begin());
  };
  std::vector<uint8_t> inner, packets;
  uint32_t prev_outer = 0, prev_inner = 0;
  for (size_t k = 0; k < n; ++k) {
    const uint32_t outer = by_country ? rank(recs[k].b) : recs[k].a;
    const uint32_t in = by_country ? recs[k].a : rank(recs[k].b);
    const bool same = k > 0 && outer == prev_outer;
    codec::PutVarint(raw, k == 0 ? 0 : outer - prev_outer);
    codec::PutVarint(&inner, same ? in - prev_inner : in);
    codec::PutVarint(&packets, recs[k].packets);
    prev_outer = outer;
    prev_inner = in;
  }
  raw->insert(raw->end(), inner.begin(), inner.end());
  raw->insert(raw->end(), packets.begin(), packets.end());
}

void AppendPairSection(const std::vector<RollupFile::PairRec>& by_port, std::vector<uint8_t>* out) {
  std::vector<RollupFile::PairRec> by_country = by_port;
  std::stable_sort(by_country.begin(), by_country.end(),
                   [](const RollupFile::PairRec& x, const RollupFile::PairRec& y) {
                     return x.b != y.b ? x.b < y.b : x.a < y.a;
                   });
  std::vector<uint32_t> countries;
  for (const RollupFile::PairRec& r : by_country) {
    if (countries.empty() || countries.back() != r.b) countries.push_back(r.b);
  }
  const uint32_t blocks = static_cast<uint32_t>((by_port.size() + kPairBlock10 - 1) / kPairBlock10);
  codec::PutFixed<uint32_t>(out, blocks);
  codec::PutFixed<uint32_t>(out, blocks);
  codec::PutFixed<uint32_t>(out, static_cast<uint32_t>(countries.size()));
  codec::PutFixed<uint32_t>(out, 0);
  for (uint32_t c : countries) codec::PutFixed<uint32_t>(out, c);
  const size_t index_at = out->size();
  out->resize(index_at + 2 * blocks * kPairIndexEntry);
  size_t entry = index_at;
  const std::vector<RollupFile::PairRec>* orders[2] = {&by_port, &by_country};
  std::vector<uint8_t> raw;
  for (int order = 0; order < 2; ++order) {
    const std::vector<RollupFile::PairRec>& recs = *orders[order];
    for (size_t i = 0; i < recs.size(); i += kPairBlock10) {
      const size_t n = std::min<size_t>(kPairBlock10, recs.size() - i);
      raw.clear();
      PairColumns(recs.data() + i, n, order == 1, countries, &raw);
      std::vector<uint8_t> z = codec::Compress(raw.data(), raw.size(), 3);
      const uint32_t head[4] = {recs[i].a, recs[i].b, static_cast<uint32_t>(n),
                                static_cast<uint32_t>(z.size())};
      std::memcpy(out->data() + entry, head, sizeof head);
      entry += kPairIndexEntry;
      out->insert(out->end(), z.begin(), z.end());
    }
  }
}

const char* KeySectionName(int section) {
  static const char* const kNames[3] = {"port", "country", "ASN"};
  return section >= 0 && section < 3 ? kNames[section] : "keyed";
}

// A keyed section of format 6: its records (sorted by key) in blocks of kKeyBlock, each block a
// zstd frame of varints — per record the key's gap from the previous one in the block (the
// first's from the block's first key: 0), heavy-hitter entries, packets, distinct sources, the
// set offset's gap from the previous record's in the block (the first's from 0), and 0 or the
// heavy list's offset less the set's — behind an index:
//   u32 blocks B, u32 0, B × { u32 first key, u32 records, u32 compressed bytes, u32 raw bytes },
//   the frames in order.
// Keys ascend and the blobs are laid out in record order, so the gaps are small: a port record
// of 40 bytes in format 5 takes 2–4 here (ten sensors' ports of a day: 387 KB became ~20 KB).
// Format 10 writes the same six varints as six columns of the block's records, one after the
// other (zstd finds each field's repeats near each other: 19 % fewer bytes).
void AppendKeySection(const std::vector<RollupFile::KeyRec>& recs, std::vector<uint8_t>* out) {
  const uint32_t blocks = static_cast<uint32_t>((recs.size() + kKeyBlock - 1) / kKeyBlock);
  codec::PutFixed<uint32_t>(out, blocks);
  codec::PutFixed<uint32_t>(out, 0);
  size_t entry = out->size();
  out->resize(entry + blocks * kKeyIndexEntry);
  std::vector<uint8_t> raw;
  for (size_t i = 0; i < recs.size(); i += kKeyBlock) {
    const size_t n = std::min<size_t>(kKeyBlock, recs.size() - i);
    raw.clear();
    std::vector<uint8_t> columns[6];
    uint32_t prev_key = recs[i].key;
    uint64_t prev_set = 0;
    for (size_t k = i; k < i + n; ++k) {
      const RollupFile::KeyRec& r = recs[k];
      codec::PutVarint(&columns[0], r.key - prev_key);
      codec::PutVarint(&columns[1], r.heavy_count);
      codec::PutVarint(&columns[2], r.packets);
      codec::PutVarint(&columns[3], r.sources);
      codec::PutVarint(&columns[4], r.set_offset - prev_set);
      codec::PutVarint(&columns[5], r.heavy_count ? r.heavy_offset - r.set_offset : 0);
      prev_key = r.key;
      prev_set = r.set_offset;
    }
    for (const auto& c : columns) raw.insert(raw.end(), c.begin(), c.end());
    std::vector<uint8_t> z = codec::Compress(raw.data(), raw.size(), 3);
    const uint32_t head[4] = {recs[i].key, static_cast<uint32_t>(n),
                              static_cast<uint32_t>(z.size()), static_cast<uint32_t>(raw.size())};
    std::memcpy(out->data() + entry, head, sizeof head);
    entry += kKeyIndexEntry;
    out->insert(out->end(), z.begin(), z.end());
  }
}

// The sections of one entry after its blobs: keyed (ports, countries, ASNs), port × country,
// then the 5-minute slots 8-byte aligned (read in place). `sections` gets each (offset, count).
void AppendSections(const std::vector<RollupFile::KeyRec>* keyed,
                    const std::vector<RollupFile::PairRec>& pairs,
                    const std::vector<uint64_t>& slots, std::vector<uint8_t>* out, uint64_t base,
                    std::vector<std::pair<uint64_t, uint64_t>>* sections) {
  for (int s = 0; s < 3; ++s) {
    sections->push_back({base + out->size(), keyed[s].size()});
    AppendKeySection(keyed[s], out);
  }
  sections->push_back({base + out->size(), pairs.size()});
  AppendPairSection(pairs, out);
  while ((base + out->size()) % 8 != 0) out->push_back(0);
  sections->push_back({base + out->size(), slots.size()});
  for (uint64_t v : slots) codec::PutFixed<uint64_t>(out, v);
}

// A directory entry (kDirEntrySize bytes).
void PutDirEntry(uint16_t sensor, uint64_t packets, uint64_t sources, uint64_t set_at,
                 const std::vector<std::pair<uint64_t, uint64_t>>& sections, uint8_t* to) {
  std::vector<uint8_t> d;
  codec::PutFixed<uint16_t>(&d, sensor);
  codec::PutFixed<uint16_t>(&d, 0);
  codec::PutFixed<uint32_t>(&d, 0);
  codec::PutFixed<uint64_t>(&d, packets);
  codec::PutFixed<uint64_t>(&d, sources);
  codec::PutFixed<uint64_t>(&d, set_at);
  for (auto [off, n] : sections) {
    codec::PutFixed<uint64_t>(&d, off);
    codec::PutFixed<uint64_t>(&d, n);
  }
  std::memcpy(to, d.data(), d.size());
}

}  // namespace rollup_write

using namespace rollup_write;

std::vector<uint8_t> DayRollup::Encode() {
  // Layout (formats 7 to 9): header | directory | blobs (each entry's total set, then its other
  // source sets and heavy-hitter lists) | each entry's sections | chunk table | footer. The blobs
  // come first so that their offsets are known when the records naming them are compressed.
  std::vector<uint8_t> out(kMagic, kMagic + 8);
  codec::PutFixed<int32_t>(&out, day);
  codec::PutFixed<uint32_t>(&out, static_cast<uint32_t>(sensors.size()));
  codec::PutFixed<int32_t>(&out, end_day > day ? end_day : day + 1);
  codec::PutFixed<uint32_t>(&out, kHeavySlots);
  const size_t dir_at = out.size();
  out.resize(dir_at + kDirEntrySize * sensors.size());
  MemberDict dict;  // the entry's total set, which its keyed sets index (formats 7 to 9)
  auto rec_of = [&](uint32_t key, Cell& c, const std::vector<HeavyEntry>* heavy) {
    c.sources.Normalize();
    RollupFile::KeyRec r{};
    r.key = key;
    r.packets = c.packets;
    r.sources = c.sources.Count();
    r.set_offset = out.size();
    AppendSetWithLength(c.sources, &out, &dict);
    if (heavy && !heavy->empty()) {
      r.heavy_count = static_cast<uint32_t>(heavy->size());
      if (HeavyListImplied(*heavy, r.packets, r.sources)) {
        r.heavy_offset = r.set_offset;  // written as a gap of 0
      } else {
        r.heavy_offset = out.size();
        AppendHeavyList(*heavy, r.sources, &out);
      }
    }
    return r;
  };
  struct Entry {
    std::vector<RollupFile::KeyRec> keyed[3];
    std::vector<RollupFile::PairRec> pairs;
    uint64_t total_sources = 0, total_set = 0;
  };
  std::vector<Entry> entries(sensors.size());
  size_t si = 0;
  for (auto& [sensor, sd] : sensors) {
    Entry& e = entries[si++];
    // The total set first: every set of the entry after it, up to the next entry's total, is
    // positions in it.
    sd.total.sources.Normalize();
    e.total_sources = sd.total.sources.Count();
    e.total_set = out.size();
    AppendSetWithLength(sd.total.sources, &out);
    sd.total.sources.Members(&dict.v4, &dict.v6);
    std::vector<PortCell*> sorted;
    for (PortCell& c : sd.ports) sorted.push_back(&c);
    std::sort(sorted.begin(), sorted.end(),
              [](const PortCell* x, const PortCell* y) { return x->key < y->key; });
    for (PortCell* cp : sorted) {
      Cell cell;
      cell.packets = cp->packets;
      cell.sources = std::move(cp->sources);
      e.keyed[0].push_back(rec_of(cp->key, cell, &cp->heavy));
      cp->sources = std::move(cell.sources);
    }
    auto keyed = [&](auto& map, std::vector<RollupFile::KeyRec>* recs) {
      std::vector<uint32_t> keys;
      for (auto& kv : map) keys.push_back(kv.first);
      std::sort(keys.begin(), keys.end());
      for (uint32_t k : keys) {
        recs->push_back(rec_of(
            k, map[static_cast<typename std::decay_t<decltype(map)>::key_type>(k)], nullptr));
      }
    };
    keyed(sd.countries, &e.keyed[1]);
    keyed(sd.asns, &e.keyed[2]);
    std::vector<std::pair<CountryCode, uint64_t>> cs;
    for (const PortCell* cp : sorted) {
      cs.assign(cp->countries.begin(), cp->countries.end());
      std::sort(cs.begin(), cs.end());
      for (auto [cc, v] : cs) e.pairs.push_back({cp->key, cc, v});
    }
  }
  si = 0;
  for (auto& [sensor, sd] : sensors) {
    Entry& e = entries[si];
    std::vector<std::pair<uint64_t, uint64_t>> sections;
    std::vector<uint8_t> tail;
    AppendSections(e.keyed, e.pairs, sd.slots, &tail, out.size(), &sections);
    out.insert(out.end(), tail.begin(), tail.end());
    PutDirEntry(sensor, sd.total.packets, e.total_sources, e.total_set, sections,
                out.data() + dir_at + si * kDirEntrySize);
    ++si;
  }
  ChunkSums::Append(&out);
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
  if (std::memcmp(f->base_, kOldMagic, 8) == 0) {
    return DataLoss(fmt::format(
        "rollup {}: format 2 (teiten before heavy hitters and period rollups): ingest the "
        "captures again into a new store",
        path));
  }
  auto is = [&](const char* magic) {
    return std::memcmp(f->base_, magic, 8) == 0 &&
           std::memcmp(f->base_ + f->size_ - 8, magic, 8) == 0;
  };
  f->v3_ = is(kMagic3);
  f->columns_ = is(kMagic) || is(kMagic10);
  f->implied_heavy_ = f->columns_ || is(kMagic9);
  f->dicts_ = f->implied_heavy_ || is(kMagic8) || is(kMagic7);
  f->v6_ = f->dicts_ || is(kMagic6);
  f->pair_frame_ = f->v3_ || is(kMagic4);
  if (!f->pair_frame_ && !f->v6_ && !is(kMagic5)) {
    return DataLoss(fmt::format("rollup {}: bad magic (not a rollup, or cut short)", path));
  }
  f->body_end_ = f->size_ - kFooterSize;
  // Every number a query reads comes from this file: nothing is used before its bytes are
  // verified (a flipped bit in a counter would otherwise be read as a count, and merged into the
  // next part under a fresh checksum). Format 4 checks the chunks it reads: the header, the
  // directory and the counter sections now, each source set, heavy-hitter list and port × country
  // frame when it is read. Format 3 is checked whole.
  if (f->v3_) {
    RETURN_IF_ERROR(f->Verify());
  } else {
    RETURN_IF_ERROR(f->sums_.Open(f->base_, f->size_ - kFooterSize, path));
    f->body_end_ = f->sums_.body_size();
    RETURN_IF_ERROR(f->Check(0, std::min<uint64_t>(f->body_end_, kHeaderSize)));
  }
  codec::Reader r(f->base_ + 8, f->size_ - 8 - kFooterSize);
  f->day_ = r.Fixed<int32_t>();
  uint32_t n = r.Fixed<uint32_t>();
  f->end_day_ = r.Fixed<int32_t>();
  f->heavy_slots_ = r.Fixed<uint32_t>();
  if (f->end_day_ <= f->day_ || f->end_day_ - f->day_ > 400) {
    return DataLoss(fmt::format("rollup {}: day span {}..{} is not a day, month or quarter", path,
                                f->day_, f->end_day_));
  }
  uint64_t body_end = f->body_end_;
  if (n > 65536 || uint64_t{n} * kDirEntrySize > body_end - std::min(body_end, kHeaderSize)) {
    return DataLoss(fmt::format("rollup {}: sensor directory of {} entries does not fit", path, n));
  }
  RETURN_IF_ERROR(f->Check(kHeaderSize, uint64_t{n} * kDirEntrySize));
  for (uint32_t i = 0; i < n; ++i) {
    SensorView v;
    v.file = f.get();
    v.sensor = r.Fixed<uint16_t>();
    r.Fixed<uint16_t>();
    r.Fixed<uint32_t>();
    v.packets = r.Fixed<uint64_t>();
    v.sources = r.Fixed<uint64_t>();
    v.set_offset = r.Fixed<uint64_t>();
    uint64_t off[kSections], cnt[kSections];
    for (int s = 0; s < kSections; ++s) {
      off[s] = r.Fixed<uint64_t>();
      cnt[s] = r.Fixed<uint64_t>();
    }
    // The port × country section is compressed (and in format 6 the keyed ones): its count is
    // of records inside it, checked when its blocks are read.
    const size_t key_width = f->v6_ ? 0 : sizeof(KeyRec);
    const size_t widths[kSections] = {key_width, key_width, key_width, 0, sizeof(uint64_t)};
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
    const uint64_t key_bytes = key_width;
    f->section_bytes_.push_back({std::pair{off[0], cnt[0] * key_bytes},
                                 std::pair{off[1], cnt[1] * key_bytes},
                                 std::pair{off[2], cnt[2] * key_bytes},
                                 std::pair{off[4], cnt[4] * uint64_t{sizeof(uint64_t)}}});
    v.index = i;
    for (int s = 0; s < 3; ++s) {
      v.key_offset[s] = off[s];
      v.key_count[s] = cnt[s];
    }
    v.port_country_offset = off[3];
    v.port_country_count = cnt[3];
    v.slots = Span<uint64_t>{reinterpret_cast<const uint64_t*>(f->base_ + off[4]), cnt[4]};
    f->sensors_.push_back(v);
  }
  if (r.failed()) return DataLoss(fmt::format("rollup {}: directory cut short", path));
  if (f->dicts_) {
    // Each entry's sets follow its total set: the entries' total sets ascend.
    for (const SensorView& v : f->sensors_) {
      if (!f->dict_offsets_.empty() && v.set_offset <= f->dict_offsets_.back()) {
        return DataLoss(fmt::format("rollup {}: entries' total sets out of order", path));
      }
      f->dict_offsets_.push_back(v.set_offset);
    }
  }
  f->checked_.reset(new std::atomic<uint32_t>[n]);
  for (uint32_t i = 0; i < n; ++i) f->checked_[i].store(0, std::memory_order_relaxed);
  return f;
}

RollupFile::~RollupFile() {
  if (base_) munmap(const_cast<uint8_t*>(base_), size_);
}

void RollupFile::ReleasePages() const {
  if (base_) madvise(const_cast<uint8_t*>(base_), size_, MADV_DONTNEED);
}

Result<codec::Reader> RollupFile::SetBytes(uint64_t offset) const {
  if (offset >= body_end_) {
    return DataLoss(fmt::format("rollup {}: source set offset {} out of bounds", path_, offset));
  }
  if (v3_) return codec::Reader(base_ + offset, body_end_ - offset);
  RETURN_IF_ERROR(Check(offset, std::min<uint64_t>(10, body_end_ - offset)));
  codec::Reader head(base_ + offset, body_end_ - offset);
  uint64_t len = head.Varint();
  uint64_t start = offset + (body_end_ - offset - head.remaining());
  if (head.failed() || len > body_end_ - start) {
    return DataLoss(
        fmt::format("rollup {}: source set at {}: length {} out of bounds", path_, offset, len));
  }
  RETURN_IF_ERROR(Check(start, len));
  return codec::Reader(base_ + start, len);
}

Result<SetInput> RollupFile::SetAt(uint64_t offset, const DecodedDict* decoded) const {
  SetInput in;
  ASSIGN_OR_RETURN(in.set, SetBytes(offset));
  if (dicts_) {
    // The entry whose total set is the last at or before `offset`: its sets follow it.
    auto it = std::upper_bound(dict_offsets_.begin(), dict_offsets_.end(), offset);
    if (it != dict_offsets_.begin() && *(it - 1) != offset) {
      ASSIGN_OR_RETURN(in.dict, SetBytes(*(it - 1)));
      in.has_dict = true;
      if (decoded) decoded->Lend(&in);
    }
  }
  return in;
}

Result<DecodedDict> RollupFile::DecodeTotal(const SensorView& v) const {
  ASSIGN_OR_RETURN(codec::Reader r, SetBytes(v.set_offset));
  DecodedDict d;
  const uint8_t* at = r.data();  // (the read moves the reader on)
  Status st = SourceSet::AppendMembers(&r, &d.members.v4, &d.members.v6);
  if (!st.ok()) {
    return DataLoss(fmt::format("rollup {}: offset {}: {}", path_, v.set_offset, st.message()));
  }
  if (d.members.v4.size() + d.members.v6.size() != v.sources) {
    return DataLoss(fmt::format("rollup {}: sensor {}: a total set of {} members counted as {}",
                                path_, v.sensor, d.members.v4.size() + d.members.v6.size(),
                                v.sources));
  }
  d.at = at;
  return d;
}

Result<SourceSet> RollupFile::ReadSet(uint64_t offset) const {
  ASSIGN_OR_RETURN(SetInput in, SetAt(offset));
  auto s = SourceSet::Read(&in.set, in.has_dict ? &in.dict : nullptr);
  if (!s.ok()) {
    return DataLoss(fmt::format("rollup {}: offset {}: {}", path_, offset, s.status().message()));
  }
  return s;
}

Result<std::vector<RollupFile::PairRec>> RollupFile::PairFrame(const SensorView& v) const {
  if (v.port_country_offset > body_end_ || body_end_ - v.port_country_offset < 8) {
    return DataLoss(
        fmt::format("rollup {}: sensor {}: port x country section out of bounds", path_, v.sensor));
  }
  RETURN_IF_ERROR(Check(v.port_country_offset, 8));
  codec::Reader r(base_ + v.port_country_offset, body_end_ - v.port_country_offset);
  uint32_t raw = r.Fixed<uint32_t>();
  uint32_t comp = r.Fixed<uint32_t>();
  if (comp > r.remaining()) {
    return DataLoss(
        fmt::format("rollup {}: sensor {}: port x country section malformed", path_, v.sensor));
  }
  RETURN_IF_ERROR(Check(v.port_country_offset + 8, comp));
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

Result<std::shared_ptr<const RollupFile::PairIndex>> RollupFile::PairIndexOf(
    const SensorView& v) const {
  {
    std::lock_guard<std::mutex> l(pc_mu_);
    auto it = pc_index_.find(v.port_country_offset);
    if (it != pc_index_.end()) return it->second;
  }
  const uint64_t off = v.port_country_offset;
  auto bad = [&](const char* what) {
    return DataLoss(fmt::format("rollup {}: sensor {}: port x country section at {}: {}", path_,
                                v.sensor, off, what));
  };
  if (off > body_end_ || body_end_ - off < 8) return bad("out of bounds");
  RETURN_IF_ERROR(Check(off, 8));
  uint32_t counts[2];
  std::memcpy(counts, base_ + off, 8);
  auto idx = std::make_shared<PairIndex>();
  uint64_t index_at = off + 8;  // where the index entries begin
  if (columns_) {
    // Format 10: the section's countries, ascending, then the index.
    if (body_end_ - index_at < 8) return bad("out of bounds");
    RETURN_IF_ERROR(Check(index_at, 8));
    uint32_t k[2];
    std::memcpy(k, base_ + index_at, 8);
    if (k[0] > (body_end_ - index_at - 8) / 4 || k[0] > v.port_country_count || k[1] != 0) {
      return bad("a country list that does not fit");
    }
    RETURN_IF_ERROR(Check(index_at + 8, uint64_t{k[0]} * 4));
    idx->countries.resize(k[0]);
    if (k[0] != 0) {  // an empty vector's data() may be null, which memcpy must not see
      std::memcpy(idx->countries.data(), base_ + index_at + 8, uint64_t{k[0]} * 4);
    }
    for (size_t i = 1; i < idx->countries.size(); ++i) {
      if (idx->countries[i] <= idx->countries[i - 1]) return bad("countries out of order");
    }
    if (idx->countries.empty() != (v.port_country_count == 0)) {
      return bad("a country list that does not fit");
    }
    index_at += 8 + uint64_t{k[0]} * 4;
  }
  const uint64_t entries = uint64_t{counts[0]} + counts[1];
  if (entries > (body_end_ - index_at) / kPairIndexEntry) return bad("index does not fit");
  RETURN_IF_ERROR(Check(index_at, entries * kPairIndexEntry));
  uint64_t at = index_at + entries * kPairIndexEntry;
  const uint8_t* e = base_ + index_at;
  for (int order = 0; order < 2; ++order) {
    std::vector<PairBlock>& blocks = order == 0 ? idx->by_port : idx->by_country;
    uint64_t records = 0;
    for (uint32_t i = 0; i < counts[order]; ++i, e += kPairIndexEntry) {
      uint32_t head[4];
      std::memcpy(head, e, sizeof head);
      PairBlock b{head[0], head[1], head[2], head[3], at};
      if (b.count == 0 || b.count > (columns_ ? kPairBlock10 : kPairBlock)) {
        return bad("a block of a bad size");
      }
      if (b.comp > body_end_ - at) return bad("a block past the end of the file");
      // Blocks ordered by their first record: a lookup's binary search relies on it.
      if (!blocks.empty() && KeyOf(b, order == 1) < KeyOf(blocks.back(), order == 1)) {
        return bad("blocks out of order");
      }
      at += b.comp;
      records += b.count;
      blocks.push_back(b);
    }
    if (records != v.port_country_count) return bad("its blocks do not hold its records");
  }
  std::lock_guard<std::mutex> l(pc_mu_);
  pc_index_[off] = idx;
  return std::shared_ptr<const PairIndex>(idx);
}

Status RollupFile::DecodePairBlock(const SensorView& v, const PairIndex& idx, bool by_country,
                                   size_t i, std::vector<PairRec>* out) const {
  const std::vector<PairBlock>& blocks = by_country ? idx.by_country : idx.by_port;
  const PairBlock& b = blocks[i];
  auto bad = [&](const char* what) {
    return DataLoss(fmt::format("rollup {}: sensor {}: port x country block at {}: {}", path_,
                                v.sensor, b.at, what));
  };
  RETURN_IF_ERROR(Check(b.at, b.comp));
  std::vector<uint8_t> bytes;
  const size_t from = out->size();
  if (!columns_) {
    if (!codec::Decompress(base_ + b.at, b.comp, size_t{b.count} * sizeof(PairRec), &bytes)) {
      return bad("corrupt");
    }
    out->resize(from + b.count);
    std::memcpy(out->data() + from, bytes.data(), bytes.size());
  } else {
    // Three columns of `count` varints (PairColumns): at least a byte each, at most ten.
    const size_t raw = codec::FrameContentSize(base_ + b.at, b.comp);
    if (raw < size_t{b.count} * 3 || raw > size_t{b.count} * 30) return bad("corrupt");
    if (!codec::Decompress(base_ + b.at, b.comp, raw, &bytes)) return bad("corrupt");
    const std::vector<uint32_t>& countries = idx.countries;
    codec::Reader outer(bytes.data(), bytes.size());
    // The inner and packets columns begin where the one before them ends.
    codec::Reader skip = outer;
    for (uint32_t k = 0; k < b.count; ++k) skip.Varint();
    codec::Reader inner = skip;
    for (uint32_t k = 0; k < b.count; ++k) skip.Varint();
    codec::Reader packets = skip;
    if (skip.failed()) return bad("cut short");
    out->resize(from + b.count);
    PairRec* w = out->data() + from;
    uint64_t o = by_country ? UINT64_MAX : b.a, in = 0;
    if (by_country) {
      auto it = std::lower_bound(countries.begin(), countries.end(), b.b);
      if (it == countries.end() || *it != b.b) return bad("a country not in its section's list");
      o = static_cast<uint64_t>(it - countries.begin());
    }
    for (uint32_t k = 0; k < b.count; ++k) {
      const uint64_t d = outer.Varint();
      const uint64_t in_gap = inner.Varint();
      const uint64_t n = packets.Varint();
      if ((k == 0 && d != 0) || d > UINT32_MAX || in_gap > UINT32_MAX)
        return bad("records out of order");
      o += d;
      in = (k > 0 && d == 0) ? in + in_gap : in_gap;
      if (o > UINT32_MAX || in > UINT32_MAX) return bad("a key out of range");
      const uint64_t port = by_country ? in : o, rank = by_country ? o : in;
      if (rank >= countries.size()) return bad("a country not in its section's list");
      w[k] = PairRec{static_cast<uint32_t>(port), countries[rank], n};
    }
    if (outer.failed() || inner.failed() || packets.failed()) return bad("cut short");
    if (packets.remaining() != 0) return bad("bytes after its records");
  }
  // Each block sorted, starting at its index entry and ending before the next block's first.
  const PairRec* r = out->data() + from;
  if (r[0].a != b.a || r[0].b != b.b) return bad("its first record is not its index entry's");
  for (uint32_t k = 1; k < b.count; ++k) {
    if (KeyOf(r[k], by_country) < KeyOf(r[k - 1], by_country)) return bad("records out of order");
  }
  if (i + 1 < blocks.size() &&
      KeyOf(blocks[i + 1], by_country) < KeyOf(r[b.count - 1], by_country)) {
    return bad("its records run into the next block's");
  }
  return OkStatus();
}

Result<std::vector<RollupFile::PairRec>> RollupFile::PortCountry(const SensorView& v) const {
  if (pair_frame_) return PairFrame(v);
  ASSIGN_OR_RETURN(auto idx, PairIndexOf(v));
  std::vector<PairRec> recs;
  recs.reserve(v.port_country_count);
  for (size_t i = 0; i < idx->by_port.size(); ++i) {
    RETURN_IF_ERROR(DecodePairBlock(v, *idx, false, i, &recs));
  }
  return recs;
}

Status RollupFile::PairsOf(const SensorView& v, bool by_country, uint32_t key,
                           std::vector<PairRec>* out) const {
  if (pair_frame_) {
    // Formats 3 and 4: one frame ordered by port, decoded once while the file is open.
    std::shared_ptr<const std::vector<PairRec>> frame;
    {
      std::lock_guard<std::mutex> l(pc_mu_);
      auto it = pc_frames_.find(v.port_country_offset);
      if (it != pc_frames_.end()) frame = it->second;
    }
    if (!frame) {
      ASSIGN_OR_RETURN(std::vector<PairRec> recs, PairFrame(v));
      frame = std::make_shared<const std::vector<PairRec>>(std::move(recs));
      std::lock_guard<std::mutex> l(pc_mu_);
      pc_frames_[v.port_country_offset] = frame;
    }
    for (const PairRec& r : *frame) {
      if ((by_country ? r.b : r.a) == key) out->push_back(r);
    }
    return OkStatus();
  }
  ASSIGN_OR_RETURN(auto idx, PairIndexOf(v));
  const std::vector<PairBlock>& blocks = by_country ? idx->by_country : idx->by_port;
  auto first = [&](const PairBlock& b) { return by_country ? b.b : b.a; };
  // The first block starting at or after the key; the one before may end with the key's records.
  size_t i = static_cast<size_t>(
      std::lower_bound(blocks.begin(), blocks.end(), key,
                       [&](const PairBlock& b, uint32_t k) { return first(b) < k; }) -
      blocks.begin());
  if (i > 0) --i;
  std::vector<PairRec> recs;
  for (; i < blocks.size() && first(blocks[i]) <= key; ++i) {
    recs.clear();
    RETURN_IF_ERROR(DecodePairBlock(v, *idx, by_country, i, &recs));
    for (const PairRec& r : recs) {
      if ((by_country ? r.b : r.a) == key) out->push_back(r);
    }
  }
  return OkStatus();
}

Status RollupFile::AppendSetMembers(uint64_t offset, std::vector<uint32_t>* v4,
                                    std::vector<IpAddr>* v6, const DecodedDict* decoded) const {
  ASSIGN_OR_RETURN(SetInput in, SetAt(offset, decoded));
  Status st =
      SourceSet::AppendMembers(&in.set, v4, v6, in.has_dict ? &in.dict : nullptr, in.members);
  if (!st.ok())
    return DataLoss(fmt::format("rollup {}: offset {}: {}", path_, offset, st.message()));
  return OkStatus();
}

Result<uint64_t> RollupFile::CountSetHits(uint64_t offset, const std::vector<uint32_t>& v4,
                                          const std::vector<IpAddr>& v6,
                                          const DecodedDict* decoded) const {
  ASSIGN_OR_RETURN(SetInput in, SetAt(offset, decoded));
  auto hits = SourceSet::CountHits(&in.set, v4, v6, in.has_dict ? &in.dict : nullptr, in.members);
  if (!hits.ok()) {
    return DataLoss(
        fmt::format("rollup {}: offset {}: {}", path_, offset, hits.status().message()));
  }
  return hits;
}

Status RollupFile::AppendHeavy(const KeyRec& rec, std::vector<HeavyEntry>* out,
                               const DecodedDict* decoded) const {
  if (rec.heavy_count == 0) return OkStatus();
  // Not written (format 9): its record implies it (HeavyListImplied).
  const bool implied = implied_heavy_ && rec.heavy_offset == rec.set_offset;
  codec::Reader r(nullptr, 0);
  if (!implied) {
    if (rec.heavy_offset >= body_end_ || rec.heavy_count > kHeavySlots * 64) {
      return DataLoss(fmt::format("rollup {}: port {} heavy hitters at {} out of bounds", path_,
                                  rec.key, rec.heavy_offset));
    }
    // An entry is at most 27 bytes (family, 16 address bytes, a 10-byte varint).
    RETURN_IF_ERROR(Check(rec.heavy_offset, std::min<uint64_t>(body_end_ - rec.heavy_offset,
                                                               uint64_t{rec.heavy_count} * 27)));
    r = codec::Reader(base_ + rec.heavy_offset, body_end_ - rec.heavy_offset);
  }
  if (implied || base_[rec.heavy_offset] == 0) {
    // Every source of the record: the counts of its set's members, in the set's order — written,
    // or each the record's packets (one source) or 1 (as many packets as sources) when implied.
    if (!implied) r.Fixed<uint8_t>();
    std::vector<uint32_t> v4;
    std::vector<IpAddr> v6;
    RETURN_IF_ERROR(AppendSetMembers(rec.set_offset, &v4, &v6, decoded));
    if (v4.size() + v6.size() != rec.heavy_count) {
      return DataLoss(
          fmt::format("rollup {}: port {}: a heavy-hitter list of {} sources for a set of {}",
                      path_, rec.key, rec.heavy_count, v4.size() + v6.size()));
    }
    const size_t from = out->size();
    for (uint32_t i = 0; i < rec.heavy_count; ++i) {
      uint64_t n = implied ? (rec.heavy_count == 1 ? rec.packets : 1) : r.Varint();
      if (r.failed()) {
        return DataLoss(fmt::format("rollup {}: port {} heavy hitters cut short", path_, rec.key));
      }
      out->push_back({i < v4.size() ? IpAddr::V4(v4[i]) : v6[i - v4.size()], n});
    }
    // Largest first, ties by address, as a list of addresses is kept.
    std::sort(out->begin() + static_cast<ptrdiff_t>(from), out->end(),
              [](const HeavyEntry& a, const HeavyEntry& b) {
                return a.second != b.second ? a.second > b.second : a.first < b.first;
              });
    return OkStatus();
  }
  for (uint32_t i = 0; i < rec.heavy_count; ++i) {
    uint8_t fam = r.Fixed<uint8_t>();
    IpAddr a;
    if (fam == 4) {
      a = IpAddr::V4(r.Fixed<uint32_t>());
    } else if (fam == 6) {
      const uint8_t* b = r.Bytes(16);
      if (b) std::memcpy(a.bytes.data(), b, 16);
    } else {
      return DataLoss(
          fmt::format("rollup {}: port {} heavy hitter {}: bad family {}", path_, rec.key, i, fam));
    }
    uint64_t n = r.Varint();
    if (r.failed()) {
      return DataLoss(fmt::format("rollup {}: port {} heavy hitters cut short", path_, rec.key));
    }
    out->push_back({a, n});
  }
  return OkStatus();
}

Status RollupFile::Verify() const {
  uint64_t want;
  std::memcpy(&want, base_ + size_ - kFooterSize, 8);
  if (XXH64(base_, size_ - kFooterSize, 0) != want) {
    return DataLoss(fmt::format(
        "rollup {}: checksum mismatch (the file is damaged; `teiten verify` lists every damaged "
        "file, `teiten rebuild` makes the rollups again from the segments)",
        path_));
  }
  return OkStatus();
}

Status RollupFile::CheckSections(const SensorView& v, uint32_t mask) const {
  if (v3_ || v.file != this || v.index >= section_bytes_.size()) return OkStatus();
  uint32_t done = checked_[v.index].load(std::memory_order_acquire);
  if ((done & mask) == mask) return OkStatus();
  for (int s = 0; s < 4; ++s) {
    if (!(mask & (1u << s)) || (done & (1u << s))) continue;
    if (v6_ && s < 3) {
      RETURN_IF_ERROR(Keys(v, s).status());  // decoded (and verified) once, then kept
      continue;
    }
    const auto& [off, len] = section_bytes_[v.index][static_cast<size_t>(s)];
    RETURN_IF_ERROR(Check(off, len));
  }
  checked_[v.index].fetch_or(mask, std::memory_order_acq_rel);
  return OkStatus();
}

Result<RollupFile::Span<RollupFile::KeyRec>> RollupFile::Keys(const SensorView& v,
                                                              int section) const {
  if (section < 0 || section > 2 || v.file != this) {
    return Internal(fmt::format("rollup {}: keyed section {} of another file", path_, section));
  }
  if (!v6_) {
    RETURN_IF_ERROR(CheckSections(v, 1u << section));
    return Span<KeyRec>{reinterpret_cast<const KeyRec*>(base_ + v.key_offset[section]),
                        v.key_count[section]};
  }
  const uint64_t off = v.key_offset[section];
  {
    std::lock_guard<std::mutex> l(key_mu_);
    auto it = key_sections_.find(off);
    if (it != key_sections_.end()) return Span<KeyRec>{it->second->data(), it->second->size()};
  }
  ASSIGN_OR_RETURN(auto blocks, KeyBlocksOf(v, section));
  auto recs = std::make_shared<std::vector<KeyRec>>();
  recs->reserve(v.key_count[section]);
  for (size_t i = 0; i < blocks->size(); ++i) {
    RETURN_IF_ERROR(DecodeKeyBlock(v, section, *blocks, i, recs.get()));
  }
  std::lock_guard<std::mutex> l(key_mu_);
  auto& kept = key_sections_[off];
  if (!kept) kept = std::move(recs);
  return Span<KeyRec>{kept->data(), kept->size()};
}

Result<const RollupFile::KeyRec*> RollupFile::Find(const SensorView& v, int section,
                                                   uint32_t key) const {
  if (section < 0 || section > 2 || v.file != this) {
    return Internal(fmt::format("rollup {}: keyed section {} of another file", path_, section));
  }
  if (!v6_) {
    const KeyRec* data = reinterpret_cast<const KeyRec*>(base_ + v.key_offset[section]);
    size_t lo = 0, hi = v.key_count[section];
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      RETURN_IF_ERROR(CheckRecord(&data[mid]));
      if (data[mid].key < key) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo == v.key_count[section]) return nullptr;
    RETURN_IF_ERROR(CheckRecord(&data[lo]));
    return data[lo].key == key ? &data[lo] : nullptr;
  }
  const std::vector<KeyRec>* recs = nullptr;
  {
    std::lock_guard<std::mutex> l(key_mu_);
    auto it = key_sections_.find(v.key_offset[section]);
    if (it != key_sections_.end()) recs = it->second.get();
  }
  if (!recs) {
    ASSIGN_OR_RETURN(auto blocks, KeyBlocksOf(v, section));
    // The last block whose first key is at most `key`.
    auto it = std::upper_bound(blocks->begin(), blocks->end(), key,
                               [](uint32_t k, const KeyBlock& b) { return k < b.first; });
    if (it == blocks->begin()) return nullptr;
    const size_t i = static_cast<size_t>(it - blocks->begin()) - 1;
    const uint64_t at = (*blocks)[i].at;
    {
      std::lock_guard<std::mutex> l(key_mu_);
      auto b = key_blocks_.find(at);
      if (b != key_blocks_.end()) recs = b->second.get();
    }
    if (!recs) {
      auto one = std::make_shared<std::vector<KeyRec>>();
      RETURN_IF_ERROR(DecodeKeyBlock(v, section, *blocks, i, one.get()));
      std::lock_guard<std::mutex> l(key_mu_);
      auto& kept = key_blocks_[at];
      if (!kept) kept = std::move(one);
      recs = kept.get();
    }
  }
  auto it = std::lower_bound(recs->begin(), recs->end(), key,
                             [](const KeyRec& r, uint32_t k) { return r.key < k; });
  return it != recs->end() && it->key == key ? &*it : nullptr;
}

Result<std::shared_ptr<const std::vector<RollupFile::KeyBlock>>> RollupFile::KeyBlocksOf(
    const SensorView& v, int section) const {
  const uint64_t off = v.key_offset[section];
  {
    std::lock_guard<std::mutex> l(key_mu_);
    auto it = key_index_.find(off);
    if (it != key_index_.end()) return it->second;
  }
  auto bad = [&](const char* what) {
    return DataLoss(fmt::format("rollup {}: sensor {}: {} section at {}: {}", path_, v.sensor,
                                KeySectionName(section), off, what));
  };
  if (off > body_end_ || body_end_ - off < 8) return bad("out of bounds");
  RETURN_IF_ERROR(Check(off, 8));
  uint32_t n;
  std::memcpy(&n, base_ + off, 4);
  if (n > (body_end_ - off - 8) / kKeyIndexEntry) return bad("index does not fit");
  RETURN_IF_ERROR(Check(off + 8, uint64_t{n} * kKeyIndexEntry));
  auto blocks = std::make_shared<std::vector<KeyBlock>>();
  uint64_t at = off + 8 + uint64_t{n} * kKeyIndexEntry;
  uint64_t records = 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t head[4];
    std::memcpy(head, base_ + off + 8 + uint64_t{i} * kKeyIndexEntry, sizeof head);
    KeyBlock b{head[0], head[1], head[2], head[3], at};
    if (b.count == 0 || b.count > kKeyBlock) return bad("a block of a bad size");
    // Six varints a record, each at most 10 bytes.
    if (b.raw < b.count * 6u || b.raw > b.count * 60u) return bad("a block of a bad raw size");
    if (b.comp > body_end_ - at) return bad("a block past the end of the file");
    if (!blocks->empty() && b.first <= blocks->back().first) return bad("blocks out of order");
    at += b.comp;
    records += b.count;
    blocks->push_back(b);
  }
  if (records != v.key_count[section]) return bad("its blocks do not hold its records");
  std::lock_guard<std::mutex> l(key_mu_);
  key_index_[off] = blocks;
  return std::shared_ptr<const std::vector<KeyBlock>>(blocks);
}

Status RollupFile::DecodeKeyBlock(const SensorView& v, int section,
                                  const std::vector<KeyBlock>& blocks, size_t i,
                                  std::vector<KeyRec>* out) const {
  const KeyBlock& b = blocks[i];
  auto bad = [&](const char* what) {
    return DataLoss(fmt::format("rollup {}: sensor {}: {} block at {}: {}", path_, v.sensor,
                                KeySectionName(section), b.at, what));
  };
  RETURN_IF_ERROR(Check(b.at, b.comp));
  std::vector<uint8_t> raw;
  if (!codec::Decompress(base_ + b.at, b.comp, b.raw, &raw) || raw.size() != b.raw) {
    return bad("corrupt");
  }
  // Format 10: six columns of `count` varints, each beginning where the one before it ends;
  // before, the six fields record by record (every field read from one reader).
  codec::Reader r(raw.data(), raw.size());
  codec::Reader col[6] = {r, r, r, r, r, r};
  if (columns_) {
    for (int c = 1; c < 6; ++c) {
      col[c] = col[c - 1];
      for (uint32_t k = 0; k < b.count; ++k) col[c].Varint();
    }
    if (col[5].failed()) return bad("cut short");
  }
  codec::Reader* f[6];
  for (int c = 0; c < 6; ++c) f[c] = columns_ ? &col[c] : &r;
  uint64_t prev_key = b.first;
  uint64_t prev_set = 0;
  for (uint32_t k = 0; k < b.count; ++k) {
    const uint64_t gap = f[0]->Varint();
    KeyRec rec{};
    const uint64_t key = prev_key + gap;
    const uint64_t heavy = f[1]->Varint();
    rec.packets = f[2]->Varint();
    rec.sources = f[3]->Varint();
    const uint64_t set_gap = f[4]->Varint();
    const uint64_t heavy_gap = f[5]->Varint();
    if (f[0]->failed() || f[5]->failed() || r.failed()) return bad("cut short");
    if ((k == 0 && gap != 0) || (k > 0 && gap == 0) || key > UINT32_MAX) {
      return bad("keys out of order");
    }
    // A list of format 9 that its record implies (HeavyListImplied) has a gap of 0.
    const bool implied = implied_heavy_ && heavy > 0 && heavy_gap == 0;
    if (heavy > kHeavySlots * 64 || ((heavy == 0) != (heavy_gap == 0) && !implied) ||
        (implied && (heavy != rec.sources || (heavy > 1 && rec.packets != heavy)))) {
      return bad("a bad heavy-hitter list");
    }
    if (set_gap > body_end_ - prev_set || (k > 0 && set_gap == 0) ||
        heavy_gap > body_end_ - (prev_set + set_gap)) {
      return bad("an offset out of bounds");
    }
    rec.key = static_cast<uint32_t>(key);
    rec.heavy_count = static_cast<uint32_t>(heavy);
    rec.set_offset = prev_set + set_gap;
    rec.heavy_offset = heavy ? rec.set_offset + heavy_gap : 0;
    out->push_back(rec);
    prev_key = key;
    prev_set = rec.set_offset;
  }
  if ((columns_ ? col[5] : r).remaining() != 0) return bad("bytes after its records");
  if (i + 1 < blocks.size() && blocks[i + 1].first <= prev_key) {
    return bad("its records run into the next block's");
  }
  return OkStatus();
}

Status RollupFile::CheckRecord(const KeyRec* r) const {
  const auto* p = reinterpret_cast<const uint8_t*>(r);
  if (p < base_ || p + sizeof(KeyRec) > base_ + body_end_) {
    return Internal(fmt::format("rollup {}: a record outside the file", path_));
  }
  return Check(static_cast<uint64_t>(p - base_), sizeof(KeyRec));
}

Status RollupFile::Check(uint64_t offset, uint64_t length) const {
  if (v3_) return OkStatus();  // verified whole at Open
  return sums_.Check(offset, length);
}

Result<DayRollup> RollupFile::Decode() const {
  RETURN_IF_ERROR(Check(0, body_end_));
  DayRollup d;
  d.day = day_;
  d.end_day = end_day_;
  for (const SensorView& v : sensors_) {
    SensorDay& sd = d.sensors[v.sensor];
    sd.total.packets = v.packets;
    ASSIGN_OR_RETURN(sd.total.sources, ReadSet(v.set_offset));
    auto keyed = [&](int section, auto* map) -> Status {
      ASSIGN_OR_RETURN(Span<KeyRec> recs, Keys(v, section));
      for (const KeyRec& k : recs) {
        using K = typename std::remove_pointer_t<decltype(map)>::key_type;
        Cell& c = (*map)[static_cast<K>(k.key)];
        c.packets = k.packets;
        ASSIGN_OR_RETURN(c.sources, ReadSet(k.set_offset));
      }
      return OkStatus();
    };
    ASSIGN_OR_RETURN(Span<KeyRec> ports, Keys(v, 0));
    for (const KeyRec& k : ports) {
      PortCell& c = sd.Port(k.key);
      c.packets = k.packets;
      ASSIGN_OR_RETURN(c.sources, ReadSet(k.set_offset));
      c.heavy.clear();
      RETURN_IF_ERROR(AppendHeavy(k, &c.heavy));
      std::sort(c.heavy.begin(), c.heavy.end(),
                [](const HeavyEntry& a, const HeavyEntry& b) { return a.first < b.first; });
    }
    RETURN_IF_ERROR(keyed(1, &sd.countries));
    RETURN_IF_ERROR(keyed(2, &sd.asns));
    ASSIGN_OR_RETURN(std::vector<PairRec> pc, PortCountry(v));
    for (const PairRec& p : pc) sd.Port(p.a).countries[static_cast<CountryCode>(p.b)] = p.packets;
    sd.slots.assign(v.slots.begin(), v.slots.end());
  }
  return d;
}

}  // namespace teiten
