#include "web/api.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <unordered_map>
#include <vector>

#include "analysis/findings.h"
#include "analysis/mustan.h"
#include "analysis/outages.h"
#include "analysis/period.h"
#include "analysis/query.h"
#include "analysis/sensor_health.h"
#include "enrich/names.h"
#include "feeds/notify.h"

namespace teiten::web {
namespace {

using nlohmann::json;

// A request's parameters, checked against what its endpoint takes.
class Args {
 public:
  Args(const Params& p) : p_(p) {}
  // The first parameter not in `allowed` (or not repeatable but repeated), or "" if none.
  std::string Unexpected(const std::set<std::string>& allowed,
                         const std::set<std::string>& repeatable) const {
    for (auto it = p_.begin(); it != p_.end(); it = p_.upper_bound(it->first)) {
      if (!allowed.count(it->first)) return it->first;
      if (p_.count(it->first) > 1 && !repeatable.count(it->first)) return it->first;
    }
    return "";
  }
  std::string Get(const std::string& k, const std::string& dflt = "") const {
    auto it = p_.find(k);
    return it == p_.end() ? dflt : it->second;
  }
  bool Has(const std::string& k) const { return p_.count(k) > 0; }
  std::vector<std::string> All(const std::string& k) const {
    std::vector<std::string> v;
    auto [a, b] = p_.equal_range(k);
    for (; a != b; ++a) v.push_back(a->second);
    return v;
  }

 private:
  const Params& p_;
};

// Thrown inside a handler to answer with an error; caught in HandleApi only.
struct Refusal {
  ApiReply reply;
};
[[noreturn]] void Refuse(int status, const std::string& param, const std::string& msg) {
  throw Refusal{ApiError(status, param, msg)};
}

template <typename T>
T OrRefuse(Result<T> r, const std::string& param) {
  if (!r.ok()) {
    // A failure to read the store is the server's, not the request's.
    bool theirs = r.status().code() == StatusCode::kInvalidArgument ||
                  r.status().code() == StatusCode::kNotFound;
    Refuse(theirs ? 400 : 500, theirs ? param : "", r.status().message());
  }
  return std::move(*r);
}

Lang LangOf(const Args& a) {
  std::string l = a.Get("lang", "en");
  if (l != "en" && l != "ja") Refuse(400, "lang", fmt::format("'{}': expected en or ja", l));
  return l == "ja" ? Lang::kJa : Lang::kEn;
}

Period PeriodOf(const Args& a) {
  if (!a.Has("period")) Refuse(400, "period", "required: e.g. 2018Q3, 2018-08 or 2018-08-12");
  return OrRefuse(ParsePeriod(a.Get("period")), "period");
}

size_t CountOf(const Args& a, size_t dflt) {
  if (!a.Has("n")) return dflt;
  std::string s = a.Get("n");
  size_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > kMaxRows) {
    Refuse(400, "n", fmt::format("'{}': expected a whole number from 1 to {}", s, kMaxRows));
  }
  return v;
}

SensorSelection SelectionOf(const Store& store, const Args& a) {
  SensorSelection sel = OrRefuse(ResolveSensors(store, a.All("sensor"), {}), "sensor");
  SensorSelection g = OrRefuse(ResolveSensors(store, {}, a.All("group")), "group");
  sel.sensors.insert(sel.sensors.end(), g.sensors.begin(), g.sensors.end());
  return sel;
}

PortKey PortOf(const std::string& param, const std::string& text) {
  PortKey k;
  if (!ParsePortKey(text, &k)) {
    Refuse(400, param, fmt::format("'{}': expected a port such as 23/tcp, 53/udp or icmp", text));
  }
  return k;
}

std::string RankText(int r) {
  switch (r) {
    case kRankOutOfTop:
      return "out";
    case kRankNew:
      return "new";
    case kRankNoData:
      return "no-data";
    default:
      return std::to_string(r);
  }
}

// A day, or null for kNoDay (a finding still going, a fact without that day).
json Day(int32_t d) {
  return d == kNoDay ? json(nullptr) : json(TimeZone::DayString(d));
}

// ISO 8601 in UTC, seconds.
std::string UtcTime(int64_t us) {
  int64_t sec = us / 1000000 - (us % 1000000 < 0);
  int32_t day = static_cast<int32_t>(sec / 86400 - (sec % 86400 < 0));
  int64_t s = sec - int64_t{day} * 86400;
  return fmt::format("{}T{:02}:{:02}:{:02}Z", TimeZone::DayString(day), s / 3600, s % 3600 / 60,
                     s % 60);
}

json PeriodJson(const Period& p) {
  return {{"label", p.Label()},
          {"first_day", TimeZone::DayString(p.first_day)},
          {"last_day", TimeZone::DayString(p.end_day - 1)},
          {"days", p.days()}};
}

json PortJson(PortKey k) {
  return {{"key", PortKeyToString(k)}, {"name", ServiceNames::Default().Describe(k)}};
}

json CountryJson(CountryCode c, Lang lang) {
  return {{"key", CountryCodeString(c)}, {"name", CountryName(c, lang)}};
}

json KeyJson(const Store& store, Dimension d, uint64_t key, Lang lang) {
  switch (d) {
    case Dimension::kPort:
      return PortJson(static_cast<PortKey>(key));
    case Dimension::kCountry:
      return CountryJson(static_cast<CountryCode>(key), lang);
    case Dimension::kAsn:
      return {{"key", key}, {"name", key == 0 ? "unknown" : fmt::format("AS{}", key)}};
    case Dimension::kSensor: {
      const auto& ss = store.manifest().sensors;
      std::string id = key < ss.size() ? ss[key].id : std::to_string(key);
      return {{"key", id}, {"name", id}};
    }
  }
  return {};
}

json RankRowJson(const Store& store, Dimension d, const RankRow& r, Lang lang) {
  json j = KeyJson(store, d, r.key, lang);
  j["rank"] = r.rank;
  j["packets"] = r.packets;
  j["sources"] = r.sources;
  j["share"] = r.share;
  return j;
}

json GetTop(const Store& store, const std::string& what, const Args& a) {
  if (auto u = a.Unexpected({"period", "n", "sensor", "group", "lang"}, {"sensor", "group"});
      !u.empty()) {
    Refuse(400, u, "not a parameter of /top (period, n, sensor, group, lang), or given twice");
  }
  Dimension dim;
  if (what == "ports") {
    dim = Dimension::kPort;
  } else if (what == "countries" || what == "regions") {
    dim = Dimension::kCountry;
  } else if (what == "asns") {
    dim = Dimension::kAsn;
  } else if (what == "sensors") {
    dim = Dimension::kSensor;
  } else {
    Refuse(404, "", fmt::format("/top/{}: expected ports, countries, asns or sensors", what));
  }
  Lang lang = LangOf(a);
  Period p = PeriodOf(a);
  size_t n = CountOf(a, 10);
  SensorSelection sel = SelectionOf(store, a);
  TopResult t = OrRefuse(Top(store, dim, p, sel, n), "");
  json rows = json::array();
  for (const RankRow& r : t.rows) {
    json j = RankRowJson(store, dim, r, lang);
    j["previous_rank"] = r.prev_rank > 0 ? json(r.prev_rank) : json(RankText(r.prev_rank));
    rows.push_back(std::move(j));
  }
  return {{"dimension", DimensionName(dim)},
          {"period", PeriodJson(t.period)},
          {"previous", PeriodJson(t.previous)},
          {"previous_cutoff", 10},
          {"total_packets", t.total_packets},
          {"total_sources", t.total_sources},
          {"rows", std::move(rows)}};
}

json GetSummary(const Store& store, const Args& a) {
  if (auto u = a.Unexpected({"period", "n", "sensor", "group", "lang"}, {"sensor", "group"});
      !u.empty()) {
    Refuse(400, u, "not a parameter of /summary (period, n, sensor, group, lang), or given twice");
  }
  Lang lang = LangOf(a);
  Period p = PeriodOf(a);
  size_t n = CountOf(a, 10);
  SensorSelection sel = SelectionOf(store, a);
  SummaryResult s = OrRefuse(Summary(store, p, sel, n), "");
  auto shares = [&](Dimension d, const std::vector<RankRow>& rows,
                    const std::vector<double>& src_share) {
    json out = json::array();
    for (size_t i = 0; i < rows.size(); ++i) {
      json j = RankRowJson(store, d, rows[i], lang);
      j["source_share"] = i < src_share.size() ? src_share[i] : 0.0;
      out.push_back(std::move(j));
    }
    return out;
  };
  return {{"period", PeriodJson(s.period)},
          {"packets", s.packets},
          {"sources", s.sources},
          {"sensors", s.sensors},
          {"days", s.days},
          {"sensor_days", s.sensor_days},
          {"packets_per_sensor_day", s.packets_per_sensor_day},
          {"sources_per_sensor_day", s.sources_per_sensor_day},
          {"packets_per_source", s.packets_per_source},
          {"ports", shares(Dimension::kPort, s.ports, s.port_source_share)},
          {"countries", shares(Dimension::kCountry, s.countries, s.country_source_share)}};
}

json GetSeries(const Store& store, const Args& a) {
  if (auto u = a.Unexpected({"period", "granularity", "port", "country", "sensor_series",
                             "by_country", "by_port", "n", "sensor", "group", "lang"},
                            {"port", "country", "sensor_series", "sensor", "group"});
      !u.empty()) {
    Refuse(400, u,
           "not a parameter of /series (period, granularity, port, country, sensor_series, "
           "by_country, by_port, n, sensor, group, lang), or given twice");
  }
  LangOf(a);
  Period p = PeriodOf(a);
  Granularity g = OrRefuse(ParseGranularity(a.Get("granularity", "day")), "granularity");
  SensorSelection sel = SelectionOf(store, a);
  SeriesResult res;
  bool packets_only = false;
  auto ports = a.All("port"), countries = a.All("country"), sensors = a.All("sensor_series");
  if (a.Has("by_country") && a.Has("by_port")) {
    Refuse(400, "by_port", "cannot be combined with by_country");
  }
  if (a.Has("by_port")) {
    if (!ports.empty() || !countries.empty() || !sensors.empty()) {
      Refuse(400, "by_port", "cannot be combined with port, country or sensor_series");
    }
    if (g != Granularity::kDay) Refuse(400, "granularity", "by_port series are daily");
    CountryCode cc = FindCountry(a.Get("by_port"));
    if (!cc) Refuse(400, "by_port", fmt::format("'{}' is not a known country", a.Get("by_port")));
    res = OrRefuse(CountryByPort(store, cc, p, sel, CountOf(a, 5)), "by_port");
    packets_only = true;
  } else if (a.Has("by_country")) {
    if (!ports.empty() || !countries.empty() || !sensors.empty()) {
      Refuse(400, "by_country", "cannot be combined with port, country or sensor_series");
    }
    if (g != Granularity::kDay) Refuse(400, "granularity", "by_country series are daily");
    PortKey k = PortOf("by_country", a.Get("by_country"));
    res = OrRefuse(PortByCountry(store, k, p, sel, CountOf(a, 5)), "by_country");
    packets_only = true;
  } else {
    int kinds = !ports.empty() + !countries.empty() + !sensors.empty();
    if (kinds > 1) {
      Refuse(400, !countries.empty() ? "country" : "sensor_series",
             "choose one of port, country, sensor_series");
    }
    Dimension dim = Dimension::kPort;
    std::vector<uint64_t> keys;
    std::vector<std::string> names;
    for (const auto& s : ports) {
      keys.push_back(PortOf("port", s));
      names.push_back(PortKeyToString(static_cast<PortKey>(keys.back())));
    }
    for (const auto& s : countries) {
      dim = Dimension::kCountry;
      CountryCode cc = FindCountry(s);
      if (!cc) Refuse(400, "country", fmt::format("'{}' is not a known country", s));
      keys.push_back(cc);
      names.push_back(CountryCodeString(cc));
    }
    for (const auto& s : sensors) {
      dim = Dimension::kSensor;
      int i = store.SensorIndex(s);
      if (i < 0) Refuse(400, "sensor_series", fmt::format("sensor '{}' is not in the store", s));
      keys.push_back(static_cast<uint64_t>(i));
      names.push_back(s);
    }
    if (keys.size() > 50) Refuse(400, "port", "at most 50 series");
    res = OrRefuse(Series(store, dim, keys, p, g, sel), "");
    res.names = keys.empty() ? std::vector<std::string>{"all"} : names;
  }
  json pts = json::array();
  for (const SeriesPoint& pt : res.points) {
    json j = {{"start", UtcTime(pt.start_us)}, {"label", pt.label}, {"packets", pt.packets}};
    if (!packets_only) j["sources"] = pt.sources;
    pts.push_back(std::move(j));
  }
  return {{"period", PeriodJson(p)},
          {"timezone", store.tz().name()},
          {"series", res.names},
          {"points", std::move(pts)}};
}

json GetIp(const Store& store, const std::string& addr_text, const Args& a) {
  if (auto u = a.Unexpected({"lang"}, {}); !u.empty()) {
    Refuse(400, u, "not a parameter of /ip (lang), or given twice");
  }
  Lang lang = LangOf(a);
  auto addr = IpAddr::Parse(addr_text);
  if (!addr) {
    Refuse(400, "address", fmt::format("'{}' is not an IPv4 or IPv6 address", addr_text));
  }
  IpHistory h = OrRefuse(SourceHistory(store, *addr), "address");
  json j = {{"address", addr->ToString()}, {"seen", h.seen}};
  if (!h.seen) return j;
  j["country"] = CountryJson(h.geo.country, lang);
  j["asn"] = h.geo.asn;
  j["first_seen"] = UtcTime(h.first_us);
  j["last_seen"] = UtcTime(h.last_us);
  j["packets"] = h.packets;
  std::vector<std::pair<uint64_t, PortKey>> by_count;
  for (const auto& [k, v] : h.ports) by_count.push_back({v, k});
  std::sort(by_count.begin(), by_count.end(), [](const auto& x, const auto& y) {
    return x.first != y.first ? x.first > y.first : x.second < y.second;
  });
  json ports = json::array();
  for (const auto& [v, k] : by_count) {
    json pj = PortJson(k);
    pj["packets"] = v;
    ports.push_back(std::move(pj));
  }
  j["ports"] = std::move(ports);
  json sensors = json::array();
  for (const auto& [k, v] : h.sensors) {
    const auto& ss = store.manifest().sensors;
    sensors.push_back({{"sensor", k < ss.size() ? ss[k].id : std::to_string(k)}, {"packets", v}});
  }
  j["sensors"] = std::move(sensors);
  json days = json::array();
  for (const auto& [d, v] : h.days) days.push_back({{"day", Day(d)}, {"packets", v}});
  j["days"] = std::move(days);
  json ttls = json::array();
  for (const auto& [t, v] : h.ttls) ttls.push_back({{"ttl", t}, {"packets", v}});
  j["ttls"] = std::move(ttls);
  return j;
}

json GetSources(const Store& store, const Args& a) {
  if (auto u = a.Unexpected({"period", "port", "n", "sensor", "group"}, {"sensor", "group"});
      !u.empty()) {
    Refuse(400, u, "not a parameter of /sources (period, port, n, sensor, group), or given twice");
  }
  Period p = PeriodOf(a);
  if (!a.Has("port")) Refuse(400, "port", "required: e.g. 23/tcp");
  PortKey k = PortOf("port", a.Get("port"));
  size_t n = CountOf(a, 10);
  SensorSelection sel = SelectionOf(store, a);
  auto rows = OrRefuse(TopSources(store, k, p, sel, n), "");
  json out = json::array();
  for (const SourceCount& s : rows) {
    out.push_back({{"address", s.addr.ToString()}, {"packets", s.packets}, {"error", s.error}});
  }
  return {{"period", PeriodJson(p)}, {"port", PortJson(k)}, {"sources", std::move(out)}};
}

// Notification lists (SPEC O6): never public — every row is a source address. The CSV form is
// answered as a JSON string, which the server's /api/v1/notify/csv route serves as text/csv.
json GetNotify(const Store& store, const Args& a, const Access& access, bool csv) {
  if (access.aggregate_only) Refuse(403, "", "notification lists are per-IP data: log in");
  const std::set<std::string> repeatable = {"asn", "country", "prefix", "sensor", "group"};
  if (auto u = a.Unexpected({"period", "asn", "country", "prefix", "sensor", "group"}, repeatable);
      !u.empty()) {
    Refuse(400, u,
           "not a parameter of /notify (period, asn, country, prefix, sensor, group), or given "
           "twice");
  }
  Period p = PeriodOf(a);
  NotifyScope scope;
  for (const std::string& t : a.All("asn")) scope.asns.push_back(OrRefuse(ParseAsn(t), "asn"));
  for (const std::string& t : a.All("country")) {
    scope.countries.push_back(OrRefuse(ParseCountry(t), "country"));
  }
  for (const std::string& t : a.All("prefix")) {
    scope.prefixes.push_back(OrRefuse(ParseStrictPrefix(t), "prefix"));
  }
  if (scope.empty()) Refuse(400, "asn", "name the networks: asn, country or prefix (repeatable)");
  SensorSelection sel = SelectionOf(store, a);
  auto lists = OrRefuse(BuildNotifyLists(store, p, sel, {scope}, &ResearchNetworks::Shipped()), "");
  if (csv) return WriteNotifyCsv(lists[0], nullptr);
  return NotifyJson(lists[0], nullptr, TimeZone::DayString(p.first_day),
                    TimeZone::DayString(p.end_day - 1));
}

json GetSensors(const Store& store, const Args& a) {
  if (auto u = a.Unexpected({}, {}); !u.empty()) {
    Refuse(400, u, "/sensors takes no parameters");
  }
  auto rows = OrRefuse(SensorHealth(store), "");
  json out = json::array();
  for (const SensorHealthRow& r : rows) {
    out.push_back({{"id", r.id},
                   {"name", r.name},
                   {"group", r.group},
                   {"country", r.country},
                   {"mode", r.mode},
                   {"inputs", r.inputs},
                   {"batches", r.batches},
                   {"packets", r.packets},
                   {"last_input", r.last_input},
                   {"last_contact", r.last_contact},
                   {"backlog_batches", r.backlog_batches},
                   {"backlog_bytes", r.backlog_bytes},
                   {"lost", r.lost}});
  }
  return {{"sensors", std::move(out)}};
}

json FactJson(const FindingFact& f) {
  return {{"kind", FindingKindName(f.kind)},
          {"first_day", Day(f.first_day)},
          {"last_day", Day(f.last_day)},
          {"packets_before", f.packets_before},
          {"packets_after", f.packets_after},
          {"sources_before", f.sources_before},
          {"sources_after", f.sources_after},
          {"ratio", f.ratio},
          {"peak_day", Day(f.peak_day)},
          {"peak_packets", f.peak_packets},
          {"peak_sources", f.peak_sources},
          {"slope", f.slope},
          {"trend_z", f.trend_z},
          // Ranks are facts of entries only.
          {"rank", f.rank > 0 ? json(f.rank) : json(nullptr)},
          {"previous_rank", f.rank <= 0       ? json(nullptr)
                            : f.prev_rank > 0 ? json(f.prev_rank)
                                              : json(RankText(f.prev_rank))},
          {"score", f.score},
          {"level_shift", f.level_shift},
          {"on_packets", f.on_packets}};
}

// Every finding with its sources; public answers drop the sources afterwards.
json FindingsJson(const std::vector<Finding>& fs) {
  json out = json::array();
  for (const Finding& f : fs) {
    json j = {{"rank", f.rank},
              {"kind", FindingKindName(f.kind)},
              {"first_day", Day(f.first_day)},
              {"last_day", Day(f.last_day)},
              {"packets_before", f.packets_before},
              {"packets_after", f.packets_after},
              {"sources_before", f.sources_before},
              {"sources_after", f.sources_after},
              {"ratio", f.ratio},
              {"score", f.score}};
    j["port"] = f.has_port ? PortJson(f.port) : json(nullptr);
    j["country"] = f.country ? json(CountryCodeString(f.country)) : json(nullptr);
    json facts = json::array();
    for (const FindingFact& ff : f.facts) facts.push_back(FactJson(ff));
    j["facts"] = std::move(facts);
    json related = json::array();
    for (PortKey k : f.related_ports) related.push_back(PortKeyToString(k));
    j["related_ports"] = std::move(related);
    json regions = json::array();
    for (const RegionCount& r : f.top_regions) {
      regions.push_back(
          {{"country", CountryCodeString(r.country)}, {"packets", r.packets}, {"share", r.share}});
    }
    j["top_regions"] = std::move(regions);
    json sources = json::array();
    for (const SourceEvidence& s : f.top_sources) {
      json other = json::array();
      for (const ProbedPort& pp : s.other_ports) {
        other.push_back({{"port", PortKeyToString(pp.port)}, {"packets", pp.packets}});
      }
      sources.push_back({{"address", s.addr.ToString()},
                         {"packets", s.packets},
                         {"error", s.error},
                         {"share", s.share},
                         {"country", CountryCodeString(s.country)},
                         {"asn", s.asn},
                         {"first_seen", UtcTime(s.first_seen_us)},
                         {"last_seen", UtcTime(s.last_seen_us)},
                         {"total_packets", s.total_packets},
                         {"days_seen", s.days_seen},
                         {"sensors_seen", s.sensors_seen},
                         {"other_ports", std::move(other)},
                         {"tags", s.tags}});
    }
    j["top_sources"] = std::move(sources);
    // Who sent to the port in the event's first days (Finding::tools; aggregates only).
    json tools = json::array();
    for (const FindingTool& t : f.tools) {
      tools.push_back({{"tag", t.tag}, {"sources", t.sources}, {"source_share", t.source_share}});
    }
    j["tools"] = std::move(tools);
    j["tool_sources"] = f.tool_sources;
    j["tags"] = f.tags;
    out.push_back(std::move(j));
  }
  return out;
}

json GetFindings(const Snapshot& snap, const Args& a, const Access& access) {
  if (auto u = a.Unexpected({"period", "sensor", "group", "port", "country"}, {"sensor", "group"});
      !u.empty()) {
    Refuse(400, u,
           "not a parameter of /findings (period, sensor, group, port, country), or given twice");
  }
  const Store& store = snap.store();
  Period p = PeriodOf(a);
  SensorSelection sel = SelectionOf(store, a);
  std::optional<PortKey> port;
  if (a.Has("port")) port = PortOf("port", a.Get("port"));
  CountryCode country = 0;
  if (a.Has("country")) {
    country = FindCountry(a.Get("country"));
    if (!country)
      Refuse(400, "country", fmt::format("'{}' is not a known country", a.Get("country")));
  }
  std::vector<uint16_t> key_sensors = sel.sensors;
  std::sort(key_sensors.begin(), key_sensors.end());
  std::string key = p.Label() + "|" + fmt::format("{}", fmt::join(key_sensors, ","));
  Snapshot::Value all = snap.Remember(
      "findings|" + key,
      [&]() -> Snapshot::Value {
        return std::make_shared<const json>(FindingsJson(OrRefuse(FindNotable(store, p, sel), "")));
      },
      p.end_day);
  json out = json::array();
  for (const json& f : *all) {
    if (port) {
      bool match = !f["port"].is_null() && f["port"]["key"] == PortKeyToString(*port);
      for (const auto& r : f["related_ports"]) match |= r == PortKeyToString(*port);
      if (!match) continue;
    }
    // A region's findings: those whose subject is the region.
    if (country && f["country"] != CountryCodeString(country)) continue;
    json c = f;
    if (access.aggregate_only) c.erase("top_sources");
    out.push_back(std::move(c));
  }
  return {{"period", PeriodJson(p)}, {"findings", std::move(out)}};
}

json MustanItemJson(const MustanItem& it) {
  return {{"key", it.name},
          {"packets", it.packets},
          {"sources", it.sources},
          {"total_packets", it.total_packets},
          {"baseline_packets", it.baseline_packets},
          {"trend", TrendName(it.trend)},
          {"arrow", TrendArrow(it.trend)},
          {"z", it.z},
          {"first_half_packets", it.first_half},
          {"last_half_packets", it.last_half},
          {"early_sources_mean", it.early_sources},
          {"late_sources_mean", it.late_sources},
          {"new", it.is_new},
          {"watch", it.watch},
          {"risk", it.risk}};
}

// Outages (analysis/outages.h; `teiten outages`): countries (by=country, the default) or ASNs
// whose distinct sources fell far below their own baseline, with the rule's parameters.
json GetOutages(const Store& store, const Args& a) {
  if (auto u = a.Unexpected({"period", "by", "sensor", "group", "lang"}, {"sensor", "group"});
      !u.empty()) {
    Refuse(400, u, "not a parameter of /outages (period, by, sensor, group, lang), or given twice");
  }
  const Period p = PeriodOf(a);
  const std::string by = a.Get("by", "country");
  const Dimension dim = OrRefuse(ParseOutageDimension(by), "by");
  const Lang lang = LangOf(a);
  OutagesResult r = OrRefuse(FindOutages(store, dim, p, SelectionOf(store, a)), "");
  json rows = json::array();
  for (const Outage& o : r.outages) {
    json j = KeyJson(store, dim, o.key, lang);
    j["first_day"] = TimeZone::DayString(o.first_day);
    j["last_day"] = TimeZone::DayString(o.last_day);
    j["days"] = o.last_day - o.first_day + 1;
    j["ongoing"] = o.ongoing;
    j["baseline_sources"] = o.baseline;
    j["sources"] = o.sources;
    j["lowest_sources"] = o.lowest;
    j["depth"] = o.depth;
    j["baseline_packets"] = o.packets_before;
    j["packets"] = o.packets;
    rows.push_back(std::move(j));
  }
  return {{"period", PeriodJson(p)},
          {"by", by},
          {"keys_checked", r.keys_checked},
          {"rules",
           {{"lookback_days", r.rules.lookback_days},
            {"fraction", r.rules.fraction},
            {"min_baseline", r.rules.min_baseline},
            {"sigmas", r.rules.sigmas}}},
          {"outages", std::move(rows)}};
}

// MUSTAN views (analysis/mustan.h) of ports for the 10 days ending on `end` (default: the store's
// last day), with the rules written out in the asked language; `port` adds one port's view.
json GetMustan(const Store& store, const Args& a) {
  if (auto u = a.Unexpected({"end", "port", "sensor", "group", "lang"}, {"sensor", "group"});
      !u.empty()) {
    Refuse(400, u, "not a parameter of /mustan (end, port, sensor, group, lang), or given twice");
  }
  std::string lang = LangOf(a) == Lang::kJa ? "ja" : "en";
  int32_t last_day = 0;
  if (a.Has("end")) {
    Period p = OrRefuse(ParsePeriod(a.Get("end")), "end");
    if (p.days() != 1)
      Refuse(400, "end", fmt::format("'{}': expected a day, YYYY-MM-DD", a.Get("end")));
    last_day = p.first_day;
  } else {
    auto d = LastDayWithData(store);
    if (!d) Refuse(404, "", "the store holds no day yet");
    last_day = *d;
  }
  SensorSelection sel = SelectionOf(store, a);
  auto ch = PortChannel();
  MustanView v = OrRefuse(BuildMustan(store, *ch, last_day, sel), "");
  auto list = [](const std::vector<MustanItem>& items) {
    json out = json::array();
    for (const auto& it : items) out.push_back(MustanItemJson(it));
    return out;
  };
  json j = {{"channel", v.channel},
            {"first_day", TimeZone::DayString(v.first_day)},
            {"last_day", TimeZone::DayString(v.end_day - 1)},
            {"days", v.day_labels},
            {"rules",
             {{"trend", v.rules.TrendRule(lang)},
              {"watch", v.rules.WatchRule(lang)},
              {"risk", v.rules.RiskRule(lang)},
              {"z_threshold", v.rules.z_threshold},
              {"ratio_threshold", v.rules.ratio_threshold},
              {"watch_ratio", v.rules.watch_ratio},
              {"watch_min_sources", v.rules.watch_min_sources},
              {"new_min_packets", v.rules.new_min_packets}}},
            {"top", list(v.top)},
            {"watch", list(v.watch)},
            {"risk", list(v.risk)}};
  if (a.Has("port")) {
    PortKey k = PortOf("port", a.Get("port"));
    j["search"] = MustanItemJson(OrRefuse(MustanItemView(store, *ch, k, last_day, sel), "port"));
  }
  return j;
}

json GetIndex(const Store& store) {
  int32_t first = INT32_MAX, last = INT32_MIN;
  for (const auto& [d, _] : store.manifest().days) {
    first = std::min(first, d);
    last = std::max(last, d);
  }
  json j = {{"api", "teiten/v1"},
            {"timezone", store.tz().name()},
            {"generation", store.manifest().generation},
            {"endpoints",
             {"/api/v1/top/{ports,countries,asns,sensors}", "/api/v1/series", "/api/v1/summary",
              "/api/v1/ip/{address}", "/api/v1/sources", "/api/v1/sensors", "/api/v1/findings",
              "/api/v1/mustan", "/api/v1/feeds/{csv,json,xml,stix,misp}", "/api/v1/notify",
              "/api/v1/notify/csv", "/api/v1/outages"}}};
  if (last != INT32_MIN) {
    j["first_day"] = TimeZone::DayString(first);
    j["last_day"] = TimeZone::DayString(last);
  } else {
    j["first_day"] = nullptr;
    j["last_day"] = nullptr;
  }
  return j;
}

}  // namespace

Snapshot::Snapshot(std::unique_ptr<Store> store) : store_(std::move(store)) {
  // What every answer rests on: the timezone that cuts days, the sensors (ids, names, groups,
  // prefixes: selections and labels), and how far retention has dropped observations.
  const Manifest& m = store_->manifest();
  std::string common = m.timezone + '\n' + std::to_string(m.segments_from) + '\n';
  for (const SensorRecord& r : m.sensors) {
    common += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\n", r.id, r.name, r.group, r.country, r.mode,
                          fmt::join(r.prefixes, ","));
  }
  common_digest_ = XXH3_64bits(common.data(), common.size());
  // A day's content: each input with observations on it (its identity, the databases that
  // enriched it, what it kept) with the segments holding them, and the sensors with rollups of
  // it. Rollup parts' names are left out: a merge renames them without changing what they say.
  std::unordered_map<uint64_t, int32_t> seg_day;
  seg_day.reserve(m.segments.size());
  for (const SegmentRecord& sr : m.segments) seg_day.emplace(sr.id, sr.day);
  std::map<int32_t, std::vector<std::string>> items;
  for (const InputRecord& in : m.inputs) {
    for (uint64_t seg : in.segments) {
      auto it = seg_day.find(seg);
      const int32_t day = it == seg_day.end() ? kWholeStore : it->second;
      items[day].push_back(fmt::format("i {} {} {} {} {} {}", in.hash, in.sensor, in.kept,
                                       in.country_db, in.asn_db, seg));
    }
  }
  for (const auto& [day, sensors] : m.days) {
    for (const auto& [sensor, parts] : sensors) {
      if (!parts.empty()) items[day].push_back(fmt::format("s {}", sensor));
    }
  }
  for (auto& [day, v] : items) {
    std::sort(v.begin(), v.end());
    const std::string all = fmt::format("{}", fmt::join(v, "\n"));
    day_digests_[day] = XXH3_64bits(all.data(), all.size());
  }
}

int32_t Snapshot::FirstDayChangedSince(const Snapshot& older) const {
  if (common_digest_ != older.common_digest_) return INT32_MIN;
  auto a = day_digests_.begin(), b = older.day_digests_.begin();
  while (a != day_digests_.end() || b != older.day_digests_.end()) {
    if (a == day_digests_.end()) return b->first;
    if (b == older.day_digests_.end()) return a->first;
    if (a->first != b->first) return std::min(a->first, b->first);
    if (a->second != b->second) return a->first;
    ++a;
    ++b;
  }
  return INT32_MAX;
}

size_t Snapshot::Inherit(const Snapshot& older) {
  const int32_t changed = FirstDayChangedSince(older);
  if (changed == INT32_MIN) return 0;
  std::scoped_lock l(mu_, older.mu_);
  size_t n = 0;
  for (const auto& [key, memo] : older.memo_) {
    if (memo.before == kWholeStore || memo.before > changed) continue;
    if (memo.value.wait_for(std::chrono::seconds(0)) != std::future_status::ready) continue;
    if (!memo.value.get() || memo_.count(key)) continue;
    memo_.emplace(key, memo);
    ++n;
  }
  inherited_ += n;
  return n;
}

Snapshot::Value Snapshot::Remember(const std::string& key, const std::function<Value()>& fn,
                                   int32_t before) const {
  std::shared_future<Value> fut;
  std::shared_ptr<std::promise<Value>> mine;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = memo_.find(key);
    if (it != memo_.end()) {
      fut = it->second.value;
    } else {
      if (memo_.size() >= kMaxRemembered) {
        for (auto m = memo_.begin(); m != memo_.end();) {
          bool done =
              m->second.value.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
          m = done ? memo_.erase(m) : std::next(m);
        }
      }
      mine = std::make_shared<std::promise<Value>>();
      fut = mine->get_future().share();
      memo_[key] = Memo{fut, before};
    }
  }
  if (!mine) {
    Value v = fut.get();
    return v ? v : fn();
  }
  Value v;
  try {
    v = fn();
  } catch (...) {
    // Waiters must not hang on a promise nobody keeps: they make their own.
    mine->set_value(nullptr);
    std::lock_guard<std::mutex> l(mu_);
    memo_.erase(key);
    throw;
  }
  mine->set_value(v);
  if (!v) {
    std::lock_guard<std::mutex> l(mu_);
    memo_.erase(key);
  }
  return v;
}

Result<std::shared_ptr<const Snapshot>> StoreSnapshots::Current() {
  std::unique_lock<std::mutex> l(mu_);
  struct stat st {};
  std::string manifest = dir_ + "/MANIFEST";
  if (::stat(manifest.c_str(), &st) != 0) {
    return NotFound(fmt::format("{}: no store here (no MANIFEST)", dir_));
  }
  int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  if (current_ && st.st_ino == ino_ && st.st_size == size_ && mtime_ns == mtime_ns_) {
    return current_;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(dir_, {}));
  auto fresh = std::make_shared<Snapshot>(std::move(store));
  if (current_) fresh->Inherit(*current_);
  current_ = std::move(fresh);
  // The identity as of before the open: a commit between the stat and the open is seen by the
  // next request (it stats a different MANIFEST), never missed.
  ino_ = st.st_ino;
  size_ = st.st_size;
  mtime_ns_ = mtime_ns;
  std::shared_ptr<const Snapshot> opened = current_;
  l.unlock();
  if (on_new_) on_new_(opened);
  return opened;
}

ApiReply ApiError(int status, const std::string& parameter, const std::string& message) {
  json e = {{"status", status}, {"message", message}};
  if (!parameter.empty()) e["parameter"] = parameter;
  return {status, {{"error", std::move(e)}}};
}

namespace {
ApiReply Dispatch(const Snapshot& snap, const std::string& path, const Params& params,
                  const Access& access);
}  // namespace

namespace {
// The day before which lie all the days an answer rests on (Snapshot::Remember), for the
// endpoints whose answer is a period's: its days, the previous period (ranks), the baselines
// before it (findings, outages). Outages choose their candidates from whole quarters, so theirs
// is the end of the quarter holding the period's last day. kWholeStore for everything else: the
// sensors' health, an address's history, MUSTAN's last ten days, the index.
int32_t RestsOnDaysBefore(const std::string& path, const Params& params) {
  const std::string prefix = "/api/v1/";
  if (path.rfind(prefix, 0) != 0 || params.count("period") != 1) return Snapshot::kWholeStore;
  const std::string rest = path.substr(prefix.size());
  const bool periodic = rest.rfind("top/", 0) == 0 || rest == "summary" || rest == "series" ||
                        rest == "sources" || rest == "findings" || rest == "outages";
  if (!periodic) return Snapshot::kWholeStore;
  Result<Period> p = ParsePeriod(params.find("period")->second);
  if (!p.ok()) return Snapshot::kWholeStore;
  if (rest != "outages") return p->end_day;
  Result<Period> q = ParsePeriod(Store::QuarterLabel(p->end_day - 1));
  return q.ok() ? std::max(q->end_day, p->end_day) : Snapshot::kWholeStore;
}
}  // namespace

ApiReply HandleApi(const Snapshot& snap, const std::string& path, const Params& params,
                   const Access& access) {
  if (params.size() > kMaxParams) {
    return ApiError(400, "", fmt::format("more than {} parameters", kMaxParams));
  }
  for (const auto& [k, v] : params) {
    if (k.size() > kMaxParamBytes || v.size() > kMaxParamBytes) {
      return ApiError(400, k.substr(0, 64), fmt::format("longer than {} bytes", kMaxParamBytes));
    }
  }
  // Every 200 is remembered for the snapshot's life; errors are cheap and answered afresh.
  std::string key = path + (access.aggregate_only ? "|public|" : "|all|");
  for (const auto& [k, v] : params) key += k + "=" + v + "&";
  ApiReply reply;
  bool made = false;
  Snapshot::Value body = snap.Remember(
      key,
      [&]() -> Snapshot::Value {
        reply = Dispatch(snap, path, params, access);
        made = true;
        return reply.status == 200 ? std::make_shared<const json>(reply.body) : nullptr;
      },
      RestsOnDaysBefore(path, params));
  if (made && reply.status != 200) return reply;
  return {200, *body};
}

namespace {

ApiReply Dispatch(const Snapshot& snap, const std::string& path, const Params& params,
                  const Access& access) {
  const Store& store = snap.store();
  Args a(params);
  const std::string prefix = "/api/v1/";
  if (path.rfind(prefix, 0) != 0) return ApiError(404, "", "not an API path");
  std::string rest = path.substr(prefix.size());
  try {
    ApiReply r;
    if (rest.empty()) {
      r.body = GetIndex(store);
    } else if (rest.rfind("top/", 0) == 0) {
      r.body = GetTop(store, rest.substr(4), a);
    } else if (rest == "summary") {
      r.body = GetSummary(store, a);
    } else if (rest == "series") {
      r.body = GetSeries(store, a);
    } else if (rest.rfind("ip/", 0) == 0) {
      if (access.aggregate_only) Refuse(403, "", "per-IP data is not public: log in");
      r.body = GetIp(store, rest.substr(3), a);
    } else if (rest == "sources") {
      if (access.aggregate_only) Refuse(403, "", "per-IP data is not public: log in");
      r.body = GetSources(store, a);
    } else if (rest == "sensors") {
      r.body = GetSensors(store, a);
    } else if (rest == "findings") {
      r.body = GetFindings(snap, a, access);
    } else if (rest == "mustan") {
      r.body = GetMustan(store, a);
    } else if (rest == "outages") {
      r.body = GetOutages(store, a);
    } else if (rest == "notify" || rest == "notify/csv") {
      r.body = GetNotify(store, a, access, rest == "notify/csv");
    } else {
      return ApiError(404, "", fmt::format("no endpoint {}", path));
    }
    return r;
  } catch (const Refusal& ref) {
    return ref.reply;
  }
}

}  // namespace
}  // namespace teiten::web
