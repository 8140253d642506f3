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
//
// Opening GeoDb walks the databases (about half a second for the ASN database). A command that
// looks up a handful of addresses uses GeoLookup instead (below): the same answers, one descent
// of each tree per address, nothing read at open.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
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

class GeoLookup;

class GeoDb {
 public:
  // With `walk` (the default), IPv4 lookups search a range table built by walking the databases
  // at open (about half a second; then a lookup costs a few cache misses). Without it, each
  // lookup descends the trees (microseconds): for an ingest of a few thousand packets, where the
  // walk would be most of the time. v4_ranges() and AsnName() need the walk (empty without it).
  static Result<std::unique_ptr<GeoDb>> Open(const std::string& country_path,
                                             const std::string& asn_path, bool walk = true);
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
  std::unique_ptr<GeoLookup> direct_;  // lookups without the walk
};

// Organisation names of the few ASNs a command shows (GeoDb::AsnName's answers), by ASN.
using AsnNames = std::unordered_map<uint32_t, std::string>;
// The name `names` holds for `asn`, "" when none (or no map).
inline std::string AsnNameIn(const AsnNames* names, uint32_t asn) {
  if (names == nullptr) return "";
  auto it = names->find(asn);
  return it == names->end() ? "" : it->second;
}

// What one lookup of an address finds: GeoDb::Lookup's answer, and the organisation of the ASN
// database's record for the address ("" when it has none).
struct GeoRecord {
  GeoInfo info;
  std::string asn_org;
};

// GeoLookup: the databases GeoDb reads, without the walk. Open() maps the files and reads their
// metadata; each lookup descends the trees through libmaxminddb (microseconds). For commands that
// look up a few addresses (`teiten ip`, `teiten geo --lookup`, a report's dominant sources);
// ingest, which looks up millions, uses GeoDb. Safe from several threads once Open() returned.
//
//   ASSIGN_OR_RETURN(auto geo, GeoLookup::Open(cfg.country_db, cfg.asn_db));
//   GeoRecord r = geo->Lookup(addr);   // r.info == GeoDb's Lookup(addr); r.asn_org "Chinanet"
class GeoLookup {
 public:
  static Result<std::unique_ptr<GeoLookup>> Open(const std::string& country_path,
                                                 const std::string& asn_path);
  ~GeoLookup();
  GeoLookup(const GeoLookup&) = delete;
  GeoLookup& operator=(const GeoLookup&) = delete;

  GeoRecord Lookup(const IpAddr& a) const;
  // GeoDb::AsnName(asn), when looking up `a`, an address of that ASN, can tell it; nullopt when
  // it cannot and only GeoDb's walk knows. GeoDb names an ASN after its first IPv4 record with an
  // organisation, so one lookup answers for an IPv4 address whose record has this ASN and an
  // organisation, in a database that gives each ASN one organisation (ASN databases do: the name
  // is the ASN's; geo_test checks it of every IPv4 range of the one setup builds). Not for IPv6
  // addresses: GeoDb does not name ASNs that only IPv6 ranges carry, and one lookup cannot tell
  // whether an IPv4 range carries this one. "" without a lookup for ASN 0, or when there is no
  // ASN database or it has no IPv4 tree (GeoDb names nothing then).
  std::optional<std::string> AsnNameVia(const IpAddr& a, uint32_t asn) const;

  const GeoDbInfo& country_info() const { return country_info_; }
  const GeoDbInfo& asn_info() const { return asn_info_; }

 private:
  GeoLookup() = default;

  MMDB_s* country_ = nullptr;
  MMDB_s* asn_ = nullptr;
  // Whether GeoDb's walk finds an IPv4 tree in each (see V4Start in geo.cc); if not, GeoDb
  // answers nothing for IPv4 addresses from that database.
  bool country_v4_ = false;
  bool asn_v4_ = false;
  GeoDbInfo country_info_;
  GeoDbInfo asn_info_;
};

}  // namespace teiten
