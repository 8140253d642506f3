// Where the generator's source addresses come from until the geo database supplies them.
//
//   ASSIGN_OR_RETURN(std::vector<SourceRange> ranges, ReadSourceRangesCsv("ranges.csv"));
//   // or, with no database at hand:
//   std::vector<SourceRange> ranges = FallbackSourceRanges();
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "simulate/generator.h"

namespace teiten::simulate {

// Reads lines "first,last,CC,ASN" (first and last as dotted IPv4, CC two letters, ASN a number;
// blank lines and lines starting with '#' are skipped). Errors name the file and line.
Result<std::vector<SourceRange>> ReadSourceRangesCsv(const std::string& path);

// A built-in stand-in: a few dozen ranges for each of ~27 countries, cut from blocks those
// countries' large networks really hold (registry allocations as of the late 2010s, rounded to
// CIDR; not authoritative). Good enough for benchmarks and tests; a real geo database is better.
// Sorted and non-overlapping.
std::vector<SourceRange> FallbackSourceRanges();

}  // namespace teiten::simulate
