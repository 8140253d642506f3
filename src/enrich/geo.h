// GeoDb: source country and ASN for IPv4 and IPv6 from MaxMind-format databases (SPEC E1).
//
// Reads any .mmdb whose records carry a country as `country_code` (ip-location-db) or
// `country.iso_code` / `registered_country.iso_code` (GeoLite2/GeoIP2 Country and City), and
// ASNs as `autonomous_system_number` / `autonomous_system_organization` (GeoLite2-ASN and the
// ASN database teiten's setup builds). Either file may be absent: lookups then answer unknown.
//
// IPv4 is what darknets see most, so at open the IPv4 part of both trees is flattened into one
// sorted table of ranges with a /16 index: a lookup is two array reads and a short binary search,
// and never dominates ingest. IPv6 goes through libmaxminddb.
//
//   ASSIGN_OR_RETURN(auto geo, GeoDb::Open(cfg.country_db, cfg.asn_db));
//   GeoInfo g = geo->Lookup(addr);   // g.country == CountryCode("CN"), g.asn == 4134
//
// Lookup() is safe from several threads once Open() returned.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/ip.h"
#include "common/status.h"

struct MMDB_s;

namespace teiten {

// Two upper-case ASCII letters packed as ('C' << 8) | 'N'; 0 when unknown.
using CountryCode = uint16_t;
inline CountryCode MakeCountryCode(const char* two) {
  return static_cast<CountryCode>((static_cast<uint8_t>(two[0]) << 8) |
                                  static_cast<uint8_t>(two[1]));
}
std::string CountryCodeString(CountryCode c);  // "CN", or "--" when unknown

struct GeoInfo {
  CountryCode country = 0;
  uint32_t asn = 0;  // 0 when unknown
};

// What a database is, recorded with the data it enriched.
struct GeoDbInfo {
  std::string path;
  std::string database_type;
  std::string description;
  uint64_t build_epoch = 0;
  std::string BuildDate() const;  // YYYY-MM-DD (UTC)
};

// One IPv4 range with constant country and ASN, inclusive.
struct GeoRange {
  uint32_t first = 0;
  uint32_t last = 0;
  GeoInfo info;
};

class GeoDb {
 public:
  static Result<std::unique_ptr<GeoDb>> Open(const std::string& country_path,
                                             const std::string& asn_path);
  ~GeoDb();
  GeoDb(const GeoDb&) = delete;
  GeoDb& operator=(const GeoDb&) = delete;

  GeoInfo Lookup(const IpAddr& a) const;
  GeoInfo LookupV4(uint32_t a) const;
  // The organisation name of an ASN seen in the ASN database, "" if none.
  const std::string& AsnName(uint32_t asn) const;

  const GeoDbInfo& country_info() const { return country_info_; }
  const GeoDbInfo& asn_info() const { return asn_info_; }
  // Every IPv4 range with a known country (and ASN where known), sorted.
  const std::vector<GeoRange>& v4_ranges() const { return ranges_; }

 private:
  GeoDb() = default;
  GeoInfo LookupV6(const IpAddr& a) const;

  MMDB_s* country_ = nullptr;
  MMDB_s* asn_ = nullptr;
  GeoDbInfo country_info_;
  GeoDbInfo asn_info_;
  std::vector<GeoRange> ranges_;   // sorted, non-overlapping, known country or ASN
  std::vector<uint32_t> starts_;   // ranges_[i].first, for cache-friendly search
  std::vector<uint32_t> slash16_;  // first range index whose last >= (i << 16)
  std::unordered_map<uint32_t, std::string> asn_names_;
};

}  // namespace teiten
