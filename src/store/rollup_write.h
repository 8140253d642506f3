// What writes a rollup part, shared by DayRollup::Encode (rollup.cc) and the streamed merge of
// parts (rollup_merge.cc): the layout's constants and the writers of its pieces. Internal to
// the store; docs/STORE_FORMAT.md ("Rollups") has the layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "store/rollup.h"
#include "store/source_set.h"

namespace teiten::rollup_write {

// Format 11 (written; rollup.cc lists the formats read).
inline constexpr char kMagic[8] = {'T', 'R', 'O', 'L', 'L', 'U', '1', '1'};
// magic, i32 first day, u32 sensors, i32 end day, u32 heavy-hitter slots
inline constexpr size_t kHeaderSize = 8 + 4 + 4 + 4 + 4;
// Per sensor: u16 sensor, u16 pad, u32 pad, u64 packets, u64 sources, u64 set, then
// 5 × (u64 offset, u64 count)
inline constexpr size_t kDirEntrySize = 8 + 8 + 8 + 8 + 5 * 16;

// A source set in the blob area: its byte length, then the set (as positions in `dict` when
// given and it holds every member, else as addresses).
void AppendSetWithLength(const SourceSet& set, std::vector<uint8_t>* out,
                         const MemberDict* dict = nullptr);
// Whether a port's heavy-hitter list is implied by its record (and so not written).
bool HeavyListImplied(const std::vector<HeavyEntry>& heavy, uint64_t packets, uint64_t sources);
void AppendHeavyList(const std::vector<HeavyEntry>& heavy, uint64_t sources,
                     std::vector<uint8_t>* out);
// The sections of one entry after its blobs; `sections` gets each (offset, count).
void AppendSections(const std::vector<RollupFile::KeyRec>* keyed,
                    const std::vector<RollupFile::PairRec>& pairs,
                    const std::vector<uint64_t>& slots, std::vector<uint8_t>* out, uint64_t base,
                    std::vector<std::pair<uint64_t, uint64_t>>* sections);
// A directory entry (kDirEntrySize bytes) at `to`.
void PutDirEntry(uint16_t sensor, uint64_t packets, uint64_t sources, uint64_t set_at,
                 const std::vector<std::pair<uint64_t, uint64_t>>& sections, uint8_t* to);

}  // namespace teiten::rollup_write
