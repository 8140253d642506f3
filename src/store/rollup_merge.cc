// MergeRollupParts (rollup.h): several parts of one key merged into one, streamed — records key
// by key, large sets as a SetUnion — so that a quarter's merge holds neither its parts decoded
// nor the merged part in memory.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "store/file_out.h"
#include "store/rollup.h"
#include "store/rollup_write.h"

namespace teiten {

using namespace rollup_write;

namespace {

// The ordered union of the keys of one section over several parts: for each key, the record
// of each part that holds it.
template <typename Fn>
Status ForEachKey(const std::vector<RollupFile::Span<RollupFile::KeyRec>>& spans, Fn fn) {
  std::vector<size_t> pos(spans.size(), 0);
  std::vector<const RollupFile::KeyRec*> recs(spans.size());
  while (true) {
    bool any = false;
    uint32_t key = 0;
    for (size_t i = 0; i < spans.size(); ++i) {
      if (pos[i] < spans[i].size && (!any || spans[i].data[pos[i]].key < key)) {
        key = spans[i].data[pos[i]].key;
        any = true;
      }
    }
    if (!any) return OkStatus();
    for (size_t i = 0; i < spans.size(); ++i) {
      bool has = pos[i] < spans[i].size && spans[i].data[pos[i]].key == key;
      recs[i] = has ? &spans[i].data[pos[i]++] : nullptr;
    }
    RETURN_IF_ERROR(fn(key, recs));
  }
}

}  // namespace

// Sets whose parts' bytes together reach this are united as a stream (SetUnion) in a merge.
constexpr uint64_t kStreamSetsFrom = uint64_t{4} << 20;
// A merged part's keyed sets are positions in its total set while that holds at most this many
// sources (held in memory while the part is written, 4 bytes each); beyond, addresses. A flood
// of 50 M spoofed sources in a month keeps its month's and quarter's sets as addresses.
constexpr uint64_t kDictMembers = uint64_t{32} << 20;
// The parts' total sets are decoded once for reading their keyed sets of positions while they
// hold this many sources together (4 bytes each); a part beyond walks its total's gaps per set.
constexpr uint64_t kDecodedDictMembers = uint64_t{16} << 20;
// A merge gives back its parts' pages after reading about this many of their bytes.
constexpr uint64_t kReleaseEvery = uint64_t{64} << 20;

Result<uint64_t> MergeRollupParts(const std::vector<const RollupFile*>& parts, int entry,
                                  const std::string& path, const MergedSpan& span) {
  if (parts.size() < 2) return InvalidArgument("MergeRollupParts: fewer than two parts");
  std::vector<const RollupFile::SensorView*> views;
  for (const RollupFile* f : parts) {
    if (f->sensors().size() != 1) {
      return InvalidArgument("MergeRollupParts: a part of several entries");
    }
    const RollupFile::SensorView& v = f->sensors()[0];
    RETURN_IF_ERROR(f->CheckSections(
        v, RollupFile::kPorts | RollupFile::kCountries | RollupFile::kAsns | RollupFile::kSlots));
    views.push_back(&v);
  }
  int own = -1;  // the parts' common entry
  for (const auto* v : views) {
    if (own >= 0 && v->sensor != own && entry < 0) {
      return InvalidArgument("MergeRollupParts: parts of different sensors");
    }
    own = v->sensor;
  }
  const auto sensor = static_cast<uint16_t>(entry >= 0 ? entry : own);
  using Spans = std::vector<RollupFile::Span<RollupFile::KeyRec>>;
  Spans ports, countries, asns;
  for (size_t i = 0; i < parts.size(); ++i) {
    ASSIGN_OR_RETURN(auto p, parts[i]->Keys(*views[i], 0));
    ASSIGN_OR_RETURN(auto c, parts[i]->Keys(*views[i], 1));
    ASSIGN_OR_RETURN(auto a, parts[i]->Keys(*views[i], 2));
    ports.push_back(p);
    countries.push_back(c);
    asns.push_back(a);
  }
  // The port × country records: every part's summed (ports × regions: a few million at most).
  std::vector<RollupFile::PairRec> pair_recs;
  for (size_t i = 0; i < parts.size(); ++i) {
    ASSIGN_OR_RETURN(auto pc, parts[i]->PortCountry(*views[i]));
    pair_recs.insert(pair_recs.end(), pc.begin(), pc.end());
  }
  std::stable_sort(pair_recs.begin(), pair_recs.end(),
                   [](const RollupFile::PairRec& x, const RollupFile::PairRec& y) {
                     return x.a != y.a ? x.a < y.a : x.b < y.b;
                   });
  size_t kept = 0;
  for (size_t i = 0; i < pair_recs.size(); ++i) {
    if (kept > 0 && pair_recs[kept - 1].a == pair_recs[i].a &&
        pair_recs[kept - 1].b == pair_recs[i].b) {
      pair_recs[kept - 1].packets += pair_recs[i].packets;
    } else {
      pair_recs[kept++] = pair_recs[i];
    }
  }
  pair_recs.resize(kept);
  std::vector<uint64_t> slots;
  for (const auto* v : views) {
    if (!span.slots) break;
    if (slots.size() < v->slots.size) slots.resize(v->slots.size);
    for (size_t i = 0; i < v->slots.size; ++i) slots[i] += v->slots.data[i];
  }
  // The front — header and directory — has a known size, so the sets are written after it as
  // they are made, then the sections (the records, held until then: 40 bytes a key), then the
  // front.
  const uint64_t sets_at = kHeaderSize + kDirEntrySize;
  std::vector<uint8_t> front(kMagic, kMagic + 8);
  const bool own_span = span.day != INT32_MIN;
  codec::PutFixed<int32_t>(&front, own_span ? span.day : parts[0]->day());
  codec::PutFixed<uint32_t>(&front, 1);
  codec::PutFixed<int32_t>(&front, own_span ? span.end_day : parts[0]->end_day());
  codec::PutFixed<uint32_t>(&front, kHeavySlots);
  front.resize(sets_at);
  std::vector<RollupFile::KeyRec> keyed_out[3];

  ASSIGN_OR_RETURN(OwnedFd file, OwnedFd::Create(path));
  const int fd = file.get();
  FileOut out(fd, path);
  out.Seek(sets_at);
  std::vector<uint8_t> blob;
  // Each part's total set decoded, within kDecodedDictMembers: every keyed set of a format-7
  // part is positions in it, and reading them one by one through its gaps would decode it again
  // for every port, country and ASN (an eighth of an ingest's time).
  std::vector<DecodedDict> part_dicts(parts.size());
  {
    uint64_t budget = kDecodedDictMembers;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (views[i]->sources > budget) continue;
      ASSIGN_OR_RETURN(part_dicts[i], parts[i]->DecodeTotal(*views[i]));
      budget -= views[i]->sources;
    }
  }
  // Bytes of the parts' sets read since their pages were last given back: the walk over a
  // month of a flood reads every part through, and would otherwise keep all of them resident.
  uint64_t read_since_release = 0;
  uint64_t keys_since_release = 0;
  // The union of the parts' sets at `offsets` (0: none in that part), streamed into the file:
  // where it begins and its distinct members. Nothing holds its members, so a quarter's total
  // set of any size is merged in the memory of one chunk.
  // `dict`: write the union as positions in it (the merged entry's total set); `members`: also
  // gather the union's members there (the total set's, when within kDictMembers).
  auto put_union = [&](const std::vector<uint64_t>& offsets, const MemberDict* dict,
                       MemberDict* members) -> Result<std::pair<uint64_t, uint64_t>> {
    std::vector<SetInput> inputs;
    std::vector<size_t> input_part;
    uint64_t in_bytes = 0;
    for (size_t i = 0; i < offsets.size(); ++i) {
      if (offsets[i] == 0) continue;
      ASSIGN_OR_RETURN(SetInput in, parts[i]->SetAt(offsets[i], &part_dicts[i]));
      in_bytes += in.set.remaining();
      inputs.push_back(in);
      input_part.push_back(i);
    }
    read_since_release += in_bytes;
    if (in_bytes < kStreamSetsFrom) {
      // Small sets (nearly all of a day's) unite faster in memory than in two streamed walks;
      // the bytes are the same.
      SourceSet u;
      for (size_t k = 0; k < inputs.size(); ++k) {
        SetInput& in = inputs[k];
        auto one = SourceSet::Read(&in.set, in.has_dict ? &in.dict : nullptr, in.members);
        if (!one.ok()) {
          return DataLoss(fmt::format("rollup {}: offset {}: {}", parts[input_part[k]]->path(),
                                      offsets[input_part[k]], one.status().message()));
        }
        u.Merge(*one);
      }
      u.Normalize();
      blob.clear();
      AppendSetWithLength(u, &blob, dict);
      const uint64_t at = out.at();
      RETURN_IF_ERROR(out.Append(blob.data(), blob.size()));
      if (members && u.Count() <= kDictMembers) u.Members(&members->v4, &members->v6);
      return std::pair{at, u.Count()};
    }
    auto release = [&] {
      for (const RollupFile* f : parts) f->ReleasePages();
    };
    auto u = SetUnion::Plan(std::move(inputs), release, dict);
    if (!u.ok()) return DataLoss(fmt::format("merging into {}: {}", path, u.status().message()));
    blob.clear();
    codec::PutVarint(&blob, u->bytes());
    const uint64_t at = out.at();
    RETURN_IF_ERROR(out.Append(blob.data(), blob.size()));
    Status st = u->Write([&](const uint8_t* p, size_t n) { return out.Append(p, n); });
    if (!st.ok()) return DataLoss(fmt::format("merging into {}: {}", path, st.message()));
    if (out.at() - at != blob.size() + u->bytes()) {
      return Internal(fmt::format("merging into {}: a set's bytes differ from its plan", path));
    }
    if (members && u->count() <= kDictMembers) {
      st = u->Members(members);
      if (!st.ok()) return DataLoss(fmt::format("merging into {}: {}", path, st.message()));
    }
    return std::pair{at, u->count()};
  };
  // The total set first (the other sets follow it and, while it is within kDictMembers, are
  // positions in it), its members held for that.
  uint64_t total_packets = 0;
  std::vector<uint64_t> total_sets;
  for (size_t i = 0; i < parts.size(); ++i) {
    total_sets.push_back(views[i]->set_offset);
    total_packets += views[i]->packets;
  }
  MemberDict total_members;
  ASSIGN_OR_RETURN(auto total_placed, put_union(total_sets, nullptr, &total_members));
  const uint64_t total_at = total_placed.first;
  const uint64_t total_sources = total_placed.second;
  const MemberDict* dict = total_sources <= kDictMembers ? &total_members : nullptr;
  std::vector<HeavyEntry> heavy, add;
  auto keyed = [&](const Spans& spans, bool with_heavy,
                   std::vector<RollupFile::KeyRec>* recs_out) -> Status {
    return ForEachKey(
        spans, [&](uint32_t key, const std::vector<const RollupFile::KeyRec*>& recs) -> Status {
          // Keys' records and heavy lists are read too (not counted: a heavy list is a few
          // hundred bytes in a flood's part), so pages are also given back every 1,024 keys.
          if (read_since_release >= kReleaseEvery || (++keys_since_release & 1023) == 0) {
            for (const RollupFile* f : parts) f->ReleasePages();
            read_since_release = 0;
          }
          RollupFile::KeyRec r{};
          r.key = key;
          heavy.clear();
          for (size_t i = 0; i < recs.size(); ++i) {
            if (!recs[i]) continue;
            r.packets += recs[i]->packets;
            if (with_heavy) {
              // As SensorDay::Merge: each part's summary folded in turn into what came before.
              add.clear();
              RETURN_IF_ERROR(parts[i]->AppendHeavy(*recs[i], &add, &part_dicts[i]));
              FoldHeavy(&heavy, &add, kHeavySlots);
            }
          }
          std::vector<uint64_t> offsets(recs.size(), 0);
          for (size_t i = 0; i < recs.size(); ++i) {
            if (recs[i]) offsets[i] = recs[i]->set_offset;
          }
          ASSIGN_OR_RETURN(auto placed, put_union(offsets, dict, nullptr));
          r.set_offset = placed.first;
          r.sources = placed.second;
          if (!heavy.empty()) {
            r.heavy_count = static_cast<uint32_t>(heavy.size());
            if (HeavyListImplied(heavy, r.packets, r.sources)) {
              r.heavy_offset = r.set_offset;  // written as a gap of 0
            } else {
              r.heavy_offset = out.at();
              blob.clear();
              AppendHeavyList(heavy, r.sources, &blob);
              RETURN_IF_ERROR(out.Append(blob.data(), blob.size()));
            }
          }
          recs_out->push_back(r);
          return OkStatus();
        });
  };
  RETURN_IF_ERROR(keyed(ports, true, &keyed_out[0]));
  RETURN_IF_ERROR(keyed(countries, false, &keyed_out[1]));
  RETURN_IF_ERROR(keyed(asns, false, &keyed_out[2]));
  // The sections after the blobs, then the directory entry into the front.
  std::vector<std::pair<uint64_t, uint64_t>> sections;
  std::vector<uint8_t> tail;
  AppendSections(keyed_out, pair_recs, slots, &tail, out.at(), &sections);
  RETURN_IF_ERROR(out.Append(tail.data(), tail.size()));
  const uint64_t body = out.at();
  RETURN_IF_ERROR(out.Flush());
  PutDirEntry(sensor, total_packets, total_sources, total_at, sections, front.data() + kHeaderSize);
  RETURN_IF_ERROR(out.WriteAt(0, front));
  // The chunk table and the footer over what is on disk, read back a chunk at a time.
  return SealChunked(fd, body, kMagic, path);
}

}  // namespace teiten
