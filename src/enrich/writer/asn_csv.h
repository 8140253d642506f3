// ASN CSV -> MMDB: turns the ASN tables of the npm package @ip-location-db/asn into a MaxMind DB
// that reads exactly like MaxMind's GeoLite2-ASN, so the enrichment code has one reader for both.
//
// The CSV files (asn-ipv4.csv, asn-ipv6.csv) have no header and one inclusive range per line:
//
//   1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."
//   2001:200::,2001:200:1b9:ffff:ffff:ffff:ffff:ffff,2500,WIDE Project
//
// Fields may be double-quoted ("" is a quote inside a quoted field). The setup runs the
// conversion once through the `teiten-geo-build` tool:
//
//   Status s = BuildAsnMmdb("asn-ipv4.csv", "asn-ipv6.csv", "asn.mmdb",
//                           "ASN from @ip-location-db/asn 2.3.x", 1750000000);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/ip.h"
#include "common/status.h"
#include "enrich/writer/mmdb_writer.h"

namespace teiten {

// The database_type written. Readers such as the geoip2 libraries choose their ASN record layout
// by this exact name; the description says where the data really comes from.
inline constexpr char kAsnDatabaseType[] = "GeoLite2-ASN";
inline constexpr char kAsnNumberKey[] = "autonomous_system_number";
inline constexpr char kAsnOrganizationKey[] = "autonomous_system_organization";

struct AsnCsvRow {
  IpAddr first;
  IpAddr last;  // inclusive
  uint32_t asn = 0;
  std::string organization;  // may be empty
};

enum class IpFamily { kIpv4, kIpv6 };

// Parses one line (without its line terminator). The error message says what was wrong with the
// line but not where; AddAsnCsv prefixes file and line number. Checks the field count, quoting,
// that both ends are addresses of `family` with first <= last and that the ASN is a decimal number
// below 2^32. (The writer refuses an organisation that is not valid UTF-8, naming the field.)
Result<AsnCsvRow> ParseAsnCsvLine(std::string_view line, IpFamily family);

// Reads every line of the CSV file at `path` into `writer`: each range maps to a record holding
// autonomous_system_number and, when not empty, autonomous_system_organization. Blank lines and a
// first line starting "ip_range_start" (a header) are skipped. Overlapping ranges are allowed; the
// later line wins where they overlap. Stops at the first bad line with an error of the form
// "asn-ipv4.csv:12: field 3 (autonomous_system_number): 'x1' is not a number ...". Lines read
// before the error stay in `writer`. Returns the number of ranges inserted.
Result<uint64_t> AddAsnCsv(const std::string& path, IpFamily family, MmdbWriter* writer);

// Converts both files into one MMDB at `out_path` (written atomically, database_type
// kAsnDatabaseType, description {"en": description}). Either CSV path may be empty to leave that
// family out, not both. `stats`, when given, receives what MmdbWriter::Write reported.
Status BuildAsnMmdb(const std::string& ipv4_csv, const std::string& ipv6_csv,
                    const std::string& out_path, const std::string& description,
                    uint64_t build_epoch, MmdbWriteStats* stats = nullptr);

}  // namespace teiten
