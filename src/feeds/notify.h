// Notification lists (SPEC O6, issue 13 point 4): for each network owner, one CSV row per source
// of its networks that reached the telescope in a period, in the manner of Shadowserver's darknet
// report, so that a CSIRT can send each owner its own list.
//
// A row says when the source was first and last seen, its address, ASN (and the network's name
// when a database names it) and country, its packets, the ports and protocols it sent to, the
// tool tags its packets earned (tools.h: verdicts over all its packets of the period at the
// selected sensors) and the *groups* of the sensors that saw it — never a sensor's own address or
// id, which would tell the owner where the telescope is.
//
//   teiten notify --asn 64500 --period 2018-08-12            one list, on stdout
//   teiten notify --recipients r.toml --out-dir lists/ --since-last-run lists/state.json
//                                                            a daily run: a file per recipient
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/period.h"
#include "analysis/query.h"
#include "analysis/tools.h"
#include "common/ip.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "store/store.h"

namespace teiten {

// Whose sources a list holds: those whose stored ASN is one of `asns`, whose stored country is one
// of `countries`, or whose address lies in one of `prefixes` (any one suffices). What counts is
// each packet's region as stored with it: when a source's stored ASN or country changed within the
// period (a new geo database, a reassigned network), each owner's row of it counts the packets
// sent while the address was that owner's, and shows the region of the latest of them.
struct NotifyScope {
  std::string name;   // the recipient: [A-Za-z0-9][A-Za-z0-9._-]* (names its file); "" one-off
  std::string email;  // where its list goes (for the operator's mailer; teiten does not use it)
  std::vector<uint32_t> asns;
  std::vector<CountryCode> countries;
  std::vector<Prefix> prefixes;
  bool empty() const { return asns.empty() && countries.empty() && prefixes.empty(); }
  bool Holds(const IpAddr& a, const GeoInfo& g) const;
  // "AS64500, JP, 192.0.2.0/24" — for messages.
  std::string Describe() const;
};

// A prefix exactly as a network owner writes it: "192.0.2.0/24", "2001:db8::/32", or one address.
// A prefix with host bits set ("192.0.2.7/24") is refused — it is a typo more often than not, and
// widening it silently would send one owner's list to another.
Result<Prefix> ParseStrictPrefix(std::string_view text);
// A prefix list: one prefix per line; '#' starts a comment; blank lines are skipped. A bad line
// is an error naming `name` and the line.
Result<std::vector<Prefix>> ParsePrefixList(std::string_view text, const std::string& name);
// "64500", "AS64500" or "as64500"; 0 and anything above 4294967295 are refused.
Result<uint32_t> ParseAsn(std::string_view text);
// "JP" or "jp", a code the country table knows.
Result<CountryCode> ParseCountry(std::string_view text);

// The recipients of a daily run, from a TOML file:
//
//   [[recipient]]
//   name = "example-isp"            # required, unique; names the recipient's file
//   email = "abuse@example.net"     # optional
//   asn = [64500, 64501]            # any of asn, country, prefixes, prefix_file (one at least)
//   country = ["JP"]
//   prefixes = ["192.0.2.0/24"]
//   prefix_file = "example-isp.txt" # a prefix list; relative to the recipients file
//
// Hostile input: an unknown key, a wrong type or a bad value is an error naming the file and line.
Result<std::vector<NotifyScope>> ParseRecipients(std::string_view text, const std::string& name);
Result<std::vector<NotifyScope>> LoadRecipients(const std::string& path);

struct NotifyRow {
  IpAddr src;
  GeoInfo geo;  // as of its last packet
  int64_t first_us = 0, last_us = 0;
  uint64_t packets = 0;
  std::map<PortKey, uint64_t> ports;
  uint32_t tags = 0;                // verdict bits, 1 << Tag
  std::vector<std::string> groups;  // of the sensors that saw it, sorted; "ungrouped" for none
};
struct NotifyList {
  NotifyScope scope;
  uint64_t packets = 0;
  std::vector<NotifyRow> rows;  // most packets first, then by address
};

// Every scope's list over one scan of the period's rows at the selected sensors (at most 64
// scopes a pass). Guarantees: every stored packet of the period that a scope holds is counted in
// that scope's row of its source, exactly once; first/last are the first and last of those
// packets; tags are verdicts over them. Memory: one record per distinct source in any scope (plus
// its ports); the other sources cost nothing.
Result<std::vector<NotifyList>> BuildNotifyLists(const Store& store, const Period& period,
                                                 const SensorSelection& filter,
                                                 const std::vector<NotifyScope>& scopes,
                                                 const ResearchNetworks* research);

// The header line of the CSV.
inline constexpr std::string_view kNotifyCsvHeader =
    "first_seen,last_seen,ip,asn,as_name,country,packets,distinct_ports,ports,protocols,tags,"
    "sensor_groups";
// RFC 4180 CSV with the header line: times in UTC ISO 8601 ("2018-08-12T03:04:05Z"); `ports` the
// busiest `max_ports` as "23/tcp:1204;2323/tcp:88" (distinct_ports counts them all); protocols,
// tags and groups ';'-separated. `names` may be null (as_name left empty).
std::string WriteNotifyCsv(const NotifyList& list, const AsnNames* names, size_t max_ports = 20);
// The same as JSON (NotifyJson, and WriteNotifyJson its text): {"recipient", "networks",
// "first_day", "last_day", "sources", "packets", "rows": [{"first_seen", "last_seen", "ip", "asn",
// "as_name", "country", "packets", "distinct_ports", "ports": [{"port", "packets"}], "protocols",
// "tags", "sensor_groups"}]}.
nlohmann::json NotifyJson(const NotifyList& list, const AsnNames* names,
                          const std::string& first_day, const std::string& last_day,
                          size_t max_ports = 20);
std::string WriteNotifyJson(const NotifyList& list, const AsnNames* names,
                            const std::string& first_day, const std::string& last_day,
                            size_t max_ports = 20);

}  // namespace teiten
