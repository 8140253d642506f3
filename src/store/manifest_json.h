// The manifest as JSON text (docs/STORE_FORMAT.md): written directly, one line per input,
// segment, day and period, and read with simdjson. Every commit writes it and every reader
// parses it, so both cost what the text's size costs and no more: at a 1 G-packet store's
// ~1 MB, a few milliseconds each way instead of the ~60 ms a DOM library took.
#pragma once

#include <string>
#include <string_view>

#include "store/store.h"

namespace teiten {

// Each text ends in "\n}" (sealed with a checksum member by the store). Strings are escaped;
// bytes that are not UTF-8 become U+FFFD.
//
// Format 4 (what the store writes): the root, MANIFEST, holds what is not tied to a month —
// sensors, inputs, the quarter periods, garbage — and names one chapter file per month
// (Manifest::chapters); a month's chapter holds its segments, days, day counts and day and month
// periods. A commit writes the root and the chapters of the months it changed, not the whole.
std::string ManifestRootJson(const Manifest& m);
std::string ChapterJson(const Manifest& m, std::string_view month);
// Format 3: the whole manifest as one document (what stores before chapters hold).
std::string ManifestJson(const Manifest& m);
// Which chapter a period label belongs to: its month ("2018-08" for "2018-08-12", "2018-08" and
// "2018-08/s3"), or empty for a label the root keeps (quarters).
std::string_view ChapterOfLabel(std::string_view label);
std::string ChapterOfDay(int32_t day);  // "2018-08"
// The first day of the month holding `day`, and of the next month.
void MonthSpan(int32_t day, int32_t* first, int32_t* next);
// The same for a chapter's month label ("2018-08"); throws std::runtime_error on anything else.
void ChapterSpan(std::string_view month, int32_t* first, int32_t* next);

// Parses a manifest's JSON: a whole one (formats 2 and 3) or a root (format 4, whose chapters are
// then read with ChapterFromJson). Throws std::runtime_error naming what is missing or
// malformed: a manifest is data, and a damaged or hostile one is refused, never half-read.
// `padded`: at least 64 bytes past the text's end are readable (a string's capacity), so the
// parser reads it in place instead of copying it.
Manifest ManifestFromJson(std::string_view text, bool padded = false);
// Adds a chapter's members to `m`; throws if it is not the chapter of `month` or holds anything
// of another month.
void ChapterFromJson(std::string_view text, bool padded, std::string_view month, Manifest* m);

}  // namespace teiten
