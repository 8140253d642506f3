// The manifest as JSON text (docs/STORE_FORMAT.md): written directly, one line per input,
// segment, day and period, and read with simdjson. Every commit writes it and every reader
// parses it, so both cost what the text's size costs and no more: at a 1 G-packet store's
// ~1 MB, a few milliseconds each way instead of the ~60 ms a DOM library took.
#pragma once

#include <string>
#include <string_view>

#include "store/store.h"

namespace teiten {

// JSON of `m` ending in "\n}" (sealed with a checksum member by the store). Strings are escaped;
// bytes that are not UTF-8 become U+FFFD.
std::string ManifestJson(const Manifest& m);
// Parses a manifest's JSON. Throws std::runtime_error naming what is missing or malformed: a
// manifest is data, and a damaged or hostile one is refused, never half-read.
// `padded`: at least 64 bytes past the text's end are readable (a string's capacity), so the
// parser reads it in place instead of copying it.
Manifest ManifestFromJson(std::string_view text, bool padded = false);

}  // namespace teiten
