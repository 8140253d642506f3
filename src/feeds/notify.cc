#include "feeds/notify.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "common/files.h"
#include "common/text.h"
#include "common/toml_context.h"
#include "enrich/names.h"
#include "feeds/feed.h"

namespace teiten {

bool NotifyScope::Holds(const IpAddr& a, const GeoInfo& g) const {
  if (g.asn != 0 && std::find(asns.begin(), asns.end(), g.asn) != asns.end()) return true;
  if (g.country != 0 &&
      std::find(countries.begin(), countries.end(), g.country) != countries.end()) {
    return true;
  }
  for (const Prefix& p : prefixes) {
    if (p.Contains(a)) return true;
  }
  return false;
}

std::string NotifyScope::Describe() const {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  for (uint32_t a : asns) add(fmt::format("AS{}", a));
  for (CountryCode c : countries) add(CountryCodeString(c));
  for (const Prefix& p : prefixes) add(p.ToString());
  return out;
}

Result<Prefix> ParseStrictPrefix(std::string_view text) {
  std::optional<Prefix> p = Prefix::Parse(text);
  if (!p) {
    return InvalidArgument(
        fmt::format("'{}' is not an address or a prefix (192.0.2.0/24, 2001:db8::/32)", text));
  }
  std::optional<IpAddr> written = IpAddr::Parse(text.substr(0, text.find('/')));
  if (!written || !(*written == p->base)) {
    return InvalidArgument(
        fmt::format("'{}' has host bits set (the network is {})", text, p->ToString()));
  }
  return *p;
}

namespace {

bool GoodRecipientName(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
  }
  return true;
}

}  // namespace

Result<std::vector<Prefix>> ParsePrefixList(std::string_view text, const std::string& name) {
  std::vector<Prefix> out;
  int line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = TrimBlanks(line);
    if (line.empty()) continue;
    auto p = ParseStrictPrefix(line);
    if (!p.ok()) {
      return InvalidArgument(fmt::format("{}:{}: {}", name, line_no, p.status().message()));
    }
    out.push_back(*p);
  }
  return out;
}

Result<uint32_t> ParseAsn(std::string_view text) {
  std::string_view digits = text;
  if (digits.size() > 2 && (digits[0] == 'A' || digits[0] == 'a') &&
      (digits[1] == 'S' || digits[1] == 's')) {
    digits.remove_prefix(2);
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || v == 0 ||
      v > UINT32_MAX) {
    return InvalidArgument(fmt::format("'{}' is not an AS number (1 to 4294967295)", text));
  }
  return static_cast<uint32_t>(v);
}

Result<CountryCode> ParseCountry(std::string_view text) {
  if (text.size() == 2) {
    const char two[2] = {static_cast<char>(std::toupper(static_cast<unsigned char>(text[0]))),
                         static_cast<char>(std::toupper(static_cast<unsigned char>(text[1])))};
    const CountryCode c = MakeCountryCode(two);
    if (two[0] >= 'A' && two[0] <= 'Z' && two[1] >= 'A' && two[1] <= 'Z' &&
        CountryName(c, Lang::kEn) != CountryCodeString(c)) {
      return c;
    }
  }
  return InvalidArgument(fmt::format("'{}' is not a two-letter country code (JP, US, …)", text));
}

Result<std::vector<NotifyScope>> ParseRecipients(std::string_view text, const std::string& name) {
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    return InvalidArgument(fmt::format("{}:{}:{}: {}", name, e.source().begin.line,
                                       e.source().begin.column, e.description()));
  }
  const TomlContext ctx{name};
  RETURN_IF_ERROR(CheckKeys(ctx, root, {"recipient"}));
  const toml::array* list = root["recipient"].as_array();
  if (list == nullptr || list->empty()) {
    return InvalidArgument(fmt::format("{}: no [[recipient]] tables", name));
  }
  const std::filesystem::path base = std::filesystem::path(name).parent_path();
  std::vector<NotifyScope> out;
  std::set<std::string> names;
  for (const toml::node& node : *list) {
    const toml::table* t = node.as_table();
    if (t == nullptr) return ctx.Err(node, "recipient", "expected a table ([[recipient]])");
    RETURN_IF_ERROR(
        CheckKeys(ctx, *t, {"name", "email", "asn", "country", "prefixes", "prefix_file"}));
    NotifyScope s;
    const toml::node* n = t->get("name");
    if (n == nullptr) return ctx.Missing(*t, "name");
    if (!n->is_string() || !GoodRecipientName(n->as_string()->get())) {
      return ctx.Err(*n, "name",
                     "expected a name of letters, digits, '.', '_' and '-' (at most 64, starting "
                     "with a letter or digit)");
    }
    s.name = n->as_string()->get();
    if (!names.insert(s.name).second) return ctx.Err(*n, "name", "a second recipient of this name");
    if (const toml::node* e = t->get("email")) {
      if (!e->is_string()) return ctx.Err(*e, "email", "expected a string");
      s.email = e->as_string()->get();
      if (s.email.find_first_of("\r\n") != std::string::npos) {
        return ctx.Err(*e, "email", "a line break in an address");
      }
    }
    // Each list key holds an array of strings (asn also of integers).
    auto each = [&](std::string_view key, auto&& fn) -> Status {
      const toml::node* v = t->get(key);
      if (v == nullptr) return OkStatus();
      const toml::array* a = v->as_array();
      if (a == nullptr) return ctx.Err(*v, key, "expected an array");
      for (const toml::node& item : *a) {
        Status st = fn(item);
        if (!st.ok()) return ctx.Err(item, key, st.message());
      }
      return OkStatus();
    };
    RETURN_IF_ERROR(each("asn", [&](const toml::node& item) -> Status {
      std::string asn_text;
      if (const auto* i = item.as_integer()) {
        asn_text = std::to_string(i->get());
      } else if (const auto* str = item.as_string()) {
        asn_text = str->get();
      } else {
        return InvalidArgument("expected an AS number");
      }
      ASSIGN_OR_RETURN(uint32_t asn, ParseAsn(asn_text));
      s.asns.push_back(asn);
      return OkStatus();
    }));
    RETURN_IF_ERROR(each("country", [&](const toml::node& item) -> Status {
      const auto* str = item.as_string();
      if (str == nullptr) return InvalidArgument("expected a country code");
      ASSIGN_OR_RETURN(CountryCode c, ParseCountry(str->get()));
      s.countries.push_back(c);
      return OkStatus();
    }));
    RETURN_IF_ERROR(each("prefixes", [&](const toml::node& item) -> Status {
      const auto* str = item.as_string();
      if (str == nullptr) return InvalidArgument("expected a prefix");
      ASSIGN_OR_RETURN(Prefix p, ParseStrictPrefix(str->get()));
      s.prefixes.push_back(p);
      return OkStatus();
    }));
    if (const toml::node* f = t->get("prefix_file")) {
      if (!f->is_string()) return ctx.Err(*f, "prefix_file", "expected a file name");
      std::filesystem::path p = f->as_string()->get();
      if (p.is_relative()) p = base / p;
      auto text_or = ReadWholeFile(p.string());
      if (!text_or.ok()) return ctx.Err(*f, "prefix_file", text_or.status().message());
      ASSIGN_OR_RETURN(std::vector<Prefix> more, ParsePrefixList(*text_or, p.string()));
      s.prefixes.insert(s.prefixes.end(), more.begin(), more.end());
    }
    if (s.empty()) {
      return ctx.Err(*t, s.name,
                     "the recipient names no network (asn, country, prefixes or prefix_file)");
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<NotifyScope>> LoadRecipients(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseRecipients(text, path);
}

Result<std::vector<NotifyList>> BuildNotifyLists(const Store& store, const Period& period,
                                                 const SensorSelection& filter,
                                                 const std::vector<NotifyScope>& scopes,
                                                 const ResearchNetworks* research) {
  if (scopes.size() > 64) {
    return InvalidArgument(fmt::format("{} recipients in one pass: at most 64", scopes.size()));
  }
  // One record per source and set of scopes its packets fell in: a source's packets all share
  // one set unless its stored region changed within the period (a new geo database).
  struct Acc {
    SourceTags tags;
    int64_t first_us = INT64_MAX, last_us = INT64_MIN, geo_us = INT64_MIN;
    std::unordered_map<PortKey, uint64_t> ports;
    std::set<uint16_t> sensors;
    void Add(const Acc& o) {
      tags.src = o.tags.src;
      tags.AddCounts(o.tags);
      if (o.geo_us >= geo_us) {
        geo_us = o.geo_us;
        tags.geo = o.tags.geo;
      }
      first_us = std::min(first_us, o.first_us);
      last_us = std::max(last_us, o.last_us);
      for (const auto& [k, n] : o.ports) ports[k] += n;
      sensors.insert(o.sensors.begin(), o.sensors.end());
    }
  };
  struct Key {
    IpAddr src;
    uint64_t scopes;
    bool operator==(const Key& o) const { return src == o.src && scopes == o.scopes; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return IpAddrHash()(k.src) ^ (k.scopes * 0x9E3779B97F4A7C15ull);
    }
  };
  std::unordered_map<Key, Acc, KeyHash> by_source;
  // Rows come sorted by (source, time) within a segment, so a source's rows mostly follow one
  // another with one region: the scopes are matched once per run of them, not once per row.
  IpAddr last_src;
  GeoInfo last_geo;
  uint64_t last_held = 0;
  bool have_last = false;
  RETURN_IF_ERROR(ScanRows(store, period, filter, kTagColumns | col::kTs | col::kSensor,
                           [&](const DecodedBlock& blk) {
                             for (size_t i = 0; i < blk.batch.rows.size(); ++i) {
                               const Observation& o = blk.batch.rows[i];
                               const GeoInfo g = i < blk.geo.size() ? blk.geo[i] : GeoInfo{};
                               if (!have_last || !(o.src == last_src) || g.asn != last_geo.asn ||
                                   g.country != last_geo.country) {
                                 last_held = 0;
                                 for (size_t s = 0; s < scopes.size(); ++s) {
                                   if (scopes[s].Holds(o.src, g)) last_held |= uint64_t{1} << s;
                                 }
                                 last_src = o.src;
                                 last_geo = g;
                                 have_last = true;
                               }
                               if (last_held == 0)
                                 continue;  // a source outside every scope costs nothing
                               Acc& a = by_source[Key{o.src, last_held}];
                               // Rows are not in time order across blocks (query.h): keep the
                               // region of the latest.
                               const GeoInfo before = a.tags.geo;
                               CountEvidence(&a.tags, blk, i);
                               if (o.ts_us >= a.geo_us) {
                                 a.geo_us = o.ts_us;
                               } else {
                                 a.tags.geo = before;
                               }
                               a.first_us = std::min(a.first_us, o.ts_us);
                               a.last_us = std::max(a.last_us, o.ts_us);
                               a.ports[PortKeyOf(o)]++;
                               a.sensors.insert(o.sensor);
                             }
                           }));
  // Each scope's row of a source unites the records of the sets holding the scope.
  std::unordered_map<IpAddr, std::vector<std::pair<uint64_t, const Acc*>>, IpAddrHash> by_addr;
  for (const auto& [key, a] : by_source) by_addr[key.src].emplace_back(key.scopes, &a);
  const auto& records = store.manifest().sensors;
  std::vector<NotifyList> lists(scopes.size());
  for (size_t s = 0; s < scopes.size(); ++s) lists[s].scope = scopes[s];
  for (const auto& [addr, accs] : by_addr) {
    for (size_t s = 0; s < scopes.size(); ++s) {
      Acc a;
      for (const auto& [held, part] : accs) {
        if (held & (uint64_t{1} << s)) a.Add(*part);
      }
      if (a.tags.packets == 0) continue;
      Judge(&a.tags, research);
      NotifyRow row;
      row.src = addr;
      row.geo = a.tags.geo;
      row.first_us = a.first_us;
      row.last_us = a.last_us;
      row.packets = a.tags.packets;
      row.ports.insert(a.ports.begin(), a.ports.end());
      row.tags = a.tags.verdict;
      std::set<std::string> groups;
      for (uint16_t sensor : a.sensors) {
        const std::string& g = sensor < records.size() ? records[sensor].group : std::string();
        groups.insert(g.empty() ? "ungrouped" : g);
      }
      row.groups.assign(groups.begin(), groups.end());
      lists[s].packets += row.packets;
      lists[s].rows.push_back(std::move(row));
    }
  }
  for (NotifyList& l : lists) {
    std::sort(l.rows.begin(), l.rows.end(), [](const NotifyRow& x, const NotifyRow& y) {
      return x.packets != y.packets ? x.packets > y.packets : x.src < y.src;
    });
  }
  return lists;
}

namespace {

std::string UtcIso(int64_t us) {
  const std::time_t t = static_cast<std::time_t>(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

namespace {

// A row as both writers show it.
struct RowText {
  std::string first_seen, last_seen, ip, asn, as_name, country;
  uint64_t packets = 0;
  size_t distinct_ports = 0;
  std::vector<std::pair<std::string, uint64_t>> ports;  // the busiest max_ports
  std::vector<std::string> protocols, tags, groups;
};

RowText TextOf(const NotifyRow& r, const AsnNames* names, size_t max_ports) {
  RowText t;
  t.first_seen = UtcIso(r.first_us);
  t.last_seen = UtcIso(r.last_us);
  t.ip = r.src.ToString();
  if (r.geo.asn) {
    t.asn = std::to_string(r.geo.asn);
    t.as_name = AsnNameIn(names, r.geo.asn);
  }
  if (r.geo.country) t.country = CountryCodeString(r.geo.country);
  t.packets = r.packets;
  std::vector<std::pair<PortKey, uint64_t>> ports(r.ports.begin(), r.ports.end());
  std::stable_sort(ports.begin(), ports.end(),
                   [](const auto& x, const auto& y) { return x.second > y.second; });
  t.distinct_ports = ports.size();
  std::set<std::string> protocols;
  for (size_t i = 0; i < ports.size(); ++i) {
    const std::string key = Lower(PortKeyToString(ports[i].first));
    const size_t slash = key.find('/');
    // "23/tcp" names tcp; "0/icmp" icmp; "tcp/-" (no transport header) tcp.
    protocols.insert(slash == std::string::npos       ? key
                     : PortKeyHasPort(ports[i].first) ? key.substr(slash + 1)
                                                      : key.substr(0, slash));
    if (i < max_ports) t.ports.emplace_back(key, ports[i].second);
  }
  t.protocols.assign(protocols.begin(), protocols.end());
  for (size_t g = 0; g < kTagCount; ++g) {
    if (r.tags & (1u << g)) t.tags.emplace_back(TagName(static_cast<Tag>(g)));
  }
  t.groups = r.groups;
  return t;
}

std::string Joined(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& i : items) s += (s.empty() ? "" : ";") + i;
  return s;
}

}  // namespace

std::string WriteNotifyCsv(const NotifyList& list, const AsnNames* names, size_t max_ports) {
  std::string out(kNotifyCsvHeader);
  out += "\r\n";
  for (const NotifyRow& r : list.rows) {
    const RowText t = TextOf(r, names, max_ports);
    std::string ports;
    for (const auto& [k, n] : t.ports)
      ports += fmt::format("{}{}:{}", ports.empty() ? "" : ";", k, n);
    out += CsvRecord({
        t.first_seen,
        t.last_seen,
        t.ip,
        t.asn,
        t.as_name,
        t.country,
        std::to_string(t.packets),
        std::to_string(t.distinct_ports),
        ports,
        Joined(t.protocols),
        Joined(t.tags),
        Joined(t.groups),
    });
  }
  return out;
}

nlohmann::json NotifyJson(const NotifyList& list, const AsnNames* names,
                          const std::string& first_day, const std::string& last_day,
                          size_t max_ports) {
  nlohmann::json rows = nlohmann::json::array();
  for (const NotifyRow& r : list.rows) {
    const RowText t = TextOf(r, names, max_ports);
    nlohmann::json ports = nlohmann::json::array();
    for (const auto& [k, n] : t.ports) ports.push_back({{"port", k}, {"packets", n}});
    rows.push_back({{"first_seen", t.first_seen},
                    {"last_seen", t.last_seen},
                    {"ip", t.ip},
                    {"asn", r.geo.asn ? nlohmann::json(r.geo.asn) : nlohmann::json()},
                    {"as_name", t.as_name},
                    {"country", t.country},
                    {"packets", t.packets},
                    {"distinct_ports", t.distinct_ports},
                    {"ports", ports},
                    {"protocols", t.protocols},
                    {"tags", t.tags},
                    {"sensor_groups", t.groups}});
  }
  return {{"recipient", list.scope.name},
          {"networks", list.scope.Describe()},
          {"first_day", first_day},
          {"last_day", last_day},
          {"sources", list.rows.size()},
          {"packets", list.packets},
          {"rows", rows}};
}

std::string WriteNotifyJson(const NotifyList& list, const AsnNames* names,
                            const std::string& first_day, const std::string& last_day,
                            size_t max_ports) {
  // Invalid UTF-8 (a database's name) is replaced rather than thrown on.
  return NotifyJson(list, names, first_day, last_day, max_ports)
             .dump(1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

}  // namespace teiten
