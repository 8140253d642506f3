#include "simulate/scenario.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/time_zone.h"
#include "common/toml_context.h"
#include "simulate/rng.h"

namespace teiten::simulate {
namespace {

constexpr int64_t kDayUs = 86'400'000'000LL;

// Messages name file, line and key (common/toml_context.h).
using Ctx = TomlContext;

Result<std::string> Str(const Ctx& c, const toml::table& t, std::string_view key, bool required,
                        std::string fallback = "") {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) return c.Missing(t, key);
    return fallback;
  }
  if (!n->is_string()) return c.Err(*n, key, "expected a string");
  return std::string(*n->value<std::string>());
}

Result<double> Num(const Ctx& c, const toml::table& t, std::string_view key, double fallback,
                   double lo, double hi, bool required = false) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) return c.Missing(t, key);
    return fallback;
  }
  if (!n->is_number()) return c.Err(*n, key, "expected a number");
  double v = *n->value<double>();
  if (!(v >= lo && v <= hi))
    return c.Err(*n, key, fmt::format("expected a number in [{}, {}]", lo, hi));
  return v;
}

Result<uint64_t> Int(const Ctx& c, const toml::table& t, std::string_view key, uint64_t fallback,
                     uint64_t hi, bool required = false) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) return c.Missing(t, key);
    return fallback;
  }
  if (!n->is_integer() || *n->value<int64_t>() < 0 ||
      static_cast<uint64_t>(*n->value<int64_t>()) > hi) {
    return c.Err(*n, key, fmt::format("expected an integer in [0, {}]", hi));
  }
  return static_cast<uint64_t>(*n->value<int64_t>());
}

// "YYYY-MM-DD", "YYYY-MM-DDTHH:MM", or a TOML date / date-time, all UTC.
Result<int64_t> Time(const Ctx& c, const toml::table& t, std::string_view key, bool required,
                     int64_t fallback = 0) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) return c.Missing(t, key);
    return fallback;
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  if (const auto* dv = n->as_date()) {
    y = dv->get().year, mo = dv->get().month, d = dv->get().day;
  } else if (const auto* dt = n->as_date_time()) {
    y = dt->get().date.year, mo = dt->get().date.month, d = dt->get().date.day;
    h = dt->get().time.hour, mi = dt->get().time.minute;
  } else if (n->is_string()) {
    std::string s = *n->value<std::string>();
    char tail = 0;
    bool ok = false;
    if (s.size() == 10) {
      ok = std::sscanf(s.c_str(), "%4d-%2d-%2d%c", &y, &mo, &d, &tail) == 3;
    } else if (s.size() == 16) {
      ok = std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d%c", &y, &mo, &d, &h, &mi, &tail) == 5;
    }
    if (!ok) return c.Err(*n, key, "expected YYYY-MM-DD or YYYY-MM-DDTHH:MM");
  } else {
    return c.Err(*n, key, "expected YYYY-MM-DD or YYYY-MM-DDTHH:MM");
  }
  if (y < 1970 || y > 2100 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59) {
    return c.Err(*n, key, "expected YYYY-MM-DD: no such date");
  }
  int64_t day = TimeZone::DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return day * kDayUs + (int64_t{h} * 60 + mi) * 60'000'000LL;
}

// `ports = [23, [2323, 0.1]]`: a port (weight 1) or [port, weight]; 0 means any port.
Result<std::vector<PortWeight>> Ports(const Ctx& c, const toml::table& t, std::string_view key) {
  std::vector<PortWeight> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  const toml::array* a = n->as_array();
  if (!a) return c.Err(*n, key, "expected an array of ports or [port, weight] pairs");
  for (const toml::node& e : *a) {
    PortWeight pw{0, 1};
    int64_t port = -1;
    if (e.is_integer()) {
      port = *e.value<int64_t>();
    } else if (const toml::array* pair = e.as_array();
               pair && pair->size() == 2 && (*pair)[0].is_integer() && (*pair)[1].is_number()) {
      port = *(*pair)[0].value<int64_t>();
      pw.weight = *(*pair)[1].value<double>();
    } else {
      return c.Err(e, key, "expected a port or a [port, weight] pair");
    }
    if (port < 0 || port > 65535) return c.Err(e, key, "port not in [0, 65535]");
    if (!(pw.weight >= 0)) return c.Err(e, key, "negative weight");
    pw.port = static_cast<uint16_t>(port);
    out.push_back(pw);
  }
  return out;
}

Result<std::vector<std::string>> Strings(const Ctx& c, const toml::table& t, std::string_view key) {
  std::vector<std::string> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  const toml::array* a = n->as_array();
  if (!a) return c.Err(*n, key, "expected an array of strings");
  for (const toml::node& e : *a) {
    if (!e.is_string()) return c.Err(e, key, "expected an array of strings");
    out.push_back(*e.value<std::string>());
  }
  return out;
}

bool IsCountry(const std::string& cc) {
  return cc.size() == 2 && cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z';
}

Result<std::map<std::string, double>> Countries(const Ctx& c, const toml::node& n,
                                                std::string_view key) {
  const toml::table* t = n.as_table();
  if (!t) return c.Err(n, key, "expected a table of country = weight");
  std::map<std::string, double> out;
  for (const auto& [k, v] : *t) {
    std::string cc(k.str());
    if (!IsCountry(cc)) return c.Err(v, cc, "expected a two-letter country code");
    if (!v.is_number() || !(*v.value<double>() >= 0)) return c.Err(v, cc, "expected a weight ≥ 0");
    out[cc] = *v.value<double>();
  }
  return out;
}

Result<Tool> ToolKey(const Ctx& c, const toml::table& t, std::string_view key, Tool fallback) {
  const toml::node* n = t.get(key);
  if (!n) return fallback;
  Tool tool;
  if (!n->is_string() || !ParseTool(*n->value<std::string>(), &tool)) {
    return c.Err(*n, key,
                 "expected a tool: mirai, zmap, masscan, nmap, windows, linux, sipvicious, netis, "
                 "ping, messenger, backscatter");
  }
  return tool;
}

Status ParseProfile(const Ctx& c, const toml::table& t, std::vector<ProfileSpec>* profiles) {
  RETURN_IF_ERROR(CheckKeys(c, t,
                            {"name", "tool", "packet_share", "source_share", "ports", "retransmit",
                             "variant_share", "countries", "family"}));
  ASSIGN_OR_RETURN(std::string name, Str(c, t, "name", true));
  ProfileSpec* p = nullptr;
  for (ProfileSpec& q : *profiles) {
    if (q.name == name) p = &q;
  }
  if (!p) {
    if (!t.get("tool")) return c.Missing(t, "tool");
    profiles->push_back({});
    p = &profiles->back();
    p->name = name;
  }
  ASSIGN_OR_RETURN(p->tool, ToolKey(c, t, "tool", p->tool));
  ASSIGN_OR_RETURN(p->packet_share, Num(c, t, "packet_share", p->packet_share, 0, 1e9));
  ASSIGN_OR_RETURN(p->source_share, Num(c, t, "source_share", p->source_share, 0, 1e9));
  ASSIGN_OR_RETURN(p->retransmit, Num(c, t, "retransmit", p->retransmit, 0, 1));
  ASSIGN_OR_RETURN(p->variant_share, Num(c, t, "variant_share", p->variant_share, 0, 1));
  ASSIGN_OR_RETURN(double family, Num(c, t, "family", p->family, 4, 6));
  if (family != 4 && family != 6) return c.Err(*t.get("family"), "family", "expected 4 or 6");
  p->family = static_cast<int>(family);
  if (t.get("ports")) {
    ASSIGN_OR_RETURN(p->ports, Ports(c, t, "ports"));
  }
  if (const toml::node* n = t.get("countries")) {
    ASSIGN_OR_RETURN(p->country_weights, Countries(c, *n, "countries"));
  }
  if (p->tool != Tool::kPing && p->ports.empty()) return c.Missing(t, "ports");
  return OkStatus();
}

Result<EventKind> KindKey(const Ctx& c, const toml::table& t) {
  ASSIGN_OR_RETURN(std::string k, Str(c, t, "kind", true));
  for (EventKind e :
       {EventKind::kSurge, EventKind::kGrowth, EventKind::kDominate, EventKind::kRegionRise,
        EventKind::kPortMove, EventKind::kSpike, EventKind::kSilence}) {
    if (k == EventKindName(e)) return e;
  }
  return c.Err(*t.get("kind"), "kind",
               "expected surge, growth, dominate, region-rise, port-move, spike or silence");
}

Status ParseEvent(const Ctx& c, const toml::table& t, const Scenario& sc, ScenarioEvent* e) {
  RETURN_IF_ERROR(
      CheckKeys(c, t,
                {"name", "kind", "start", "end", "magnitude", "regions", "ports", "tool", "sources",
                 "source", "from_profile", "shift", "share", "asns"}));
  e->line = static_cast<int>(t.source().begin.line);
  ASSIGN_OR_RETURN(e->name, Str(c, t, "name", true));
  ASSIGN_OR_RETURN(e->kind, KindKey(c, t));
  ASSIGN_OR_RETURN(e->start_us, Time(c, t, "start", true));
  ASSIGN_OR_RETURN(e->end_us, Time(c, t, "end", false, sc.start_us + sc.days * kDayUs));
  if (e->end_us <= e->start_us) {
    if (!t.get("end")) return c.Err(*t.get("start"), "start", "not before the period's end");
    return c.Err(*t.get("end"), "end", "not after 'start'");
  }
  ASSIGN_OR_RETURN(e->regions, Strings(c, t, "regions"));
  for (const std::string& r : e->regions) {
    if (!IsCountry(r)) return c.Err(*t.get("regions"), "regions", "expected two-letter codes");
  }
  ASSIGN_OR_RETURN(e->ports, Ports(c, t, "ports"));
  const bool silence = e->kind == EventKind::kSilence;
  if (silence) {
    if (const toml::node* n = t.get("share")) {
      if (!n->is_number() || !(*n->value<double>() > 0 && *n->value<double>() <= 1)) {
        return c.Err(*n, "share", "expected a number in (0, 1]");
      }
      e->share = *n->value<double>();
    }
    if (const toml::node* n = t.get("asns")) {
      const toml::array* a = n->as_array();
      if (!a) return c.Err(*n, "asns", "expected an array of AS numbers");
      for (const toml::node& x : *a) {
        if (!x.is_integer() || *x.value<int64_t>() < 1 || *x.value<int64_t>() > 4294967295LL) {
          return c.Err(x, "asns", "expected AS numbers in [1, 4294967295]");
        }
        e->asns.push_back(static_cast<uint32_t>(*x.value<int64_t>()));
      }
    }
    if (e->regions.empty() && e->asns.empty()) {
      return c.Err(t, "regions", "a silence needs 'regions' or 'asns'");
    }
    return OkStatus();
  }
  for (const char* key : {"share", "asns"}) {
    if (const toml::node* n = t.get(key)) return c.Err(*n, key, "only for a silence event");
  }
  ASSIGN_OR_RETURN(e->magnitude, Num(c, t, "magnitude", 0, 0, 1e12, true));
  Tool fallback = e->kind == EventKind::kDominate ? Tool::kZmap
                  : e->kind == EventKind::kSpike  ? Tool::kWindows
                                                  : Tool::kMirai;
  ASSIGN_OR_RETURN(e->tool, ToolKey(c, t, "tool", fallback));
  if (e->tool == Tool::kBackscatter || e->tool == Tool::kSpoofedFlood) {
    return c.Err(*t.get("tool"), "tool", "backscatter and spoofed-flood cannot be planted");
  }
  uint64_t default_sources = e->kind == EventKind::kGrowth       ? 500
                             : e->kind == EventKind::kRegionRise ? 300
                             : e->kind == EventKind::kPortMove   ? 200
                                                                 : 50;
  ASSIGN_OR_RETURN(e->sources, Int(c, t, "sources", default_sources, 1 << 24));
  if (e->sources == 0) return c.Err(*t.get("sources"), "sources", "expected at least 1");
  if (e->kind == EventKind::kDominate) e->sources = 1;
  if (const toml::node* n = t.get("source")) {
    auto ip = n->is_string() ? IpAddr::Parse(*n->value<std::string>()) : std::nullopt;
    if (!ip || !ip->is_v4()) return c.Err(*n, "source", "expected an IPv4 address");
    e->source_addr = ip->v4();
  }
  if (e->kind == EventKind::kRegionRise && e->ports.empty()) {
    e->ports = {{23, 0.4}, {445, 0.2}, {80, 0.15}, {8080, 0.15}, {22, 0.1}};
  }
  if (e->ports.empty() && e->tool != Tool::kPing) return c.Missing(t, "ports");
  if (e->regions.empty() && !(e->kind == EventKind::kDominate && e->source_addr)) {
    return c.Missing(t, "regions");
  }
  if (e->kind == EventKind::kPortMove) {
    ASSIGN_OR_RETURN(e->from_profile, Str(c, t, "from_profile", true));
    bool found = false;
    for (const ProfileSpec& p : sc.base.profiles) found |= p.name == e->from_profile;
    if (!found) return c.Err(*t.get("from_profile"), "from_profile", "no such profile");
    ASSIGN_OR_RETURN(e->shift, Num(c, t, "shift", 0.5, 0, 1));
  }
  return OkStatus();
}

// [[phase]]: a copy of the scenario's traffic with its own days and overrides.
Status ParsePhase(const Ctx& c, const toml::table& t, const Scenario& sc, ScenarioPhase* ph) {
  RETURN_IF_ERROR(CheckKeys(c, t,
                            {"name", "start", "days", "packets_per_sensor_day", "sources",
                             "spoofed_flood_share", "weekend_factor", "countries", "profile"}));
  ph->line = static_cast<int>(t.source().begin.line);
  ASSIGN_OR_RETURN(ph->name, Str(c, t, "name", true));
  ASSIGN_OR_RETURN(ph->start_us, Time(c, t, "start", true));
  if (ph->start_us % kDayUs != 0) {
    return c.Err(*t.get("start"), "start", "expected YYYY-MM-DD (a whole day)");
  }
  ASSIGN_OR_RETURN(uint64_t days, Int(c, t, "days", 1, 3660, true));
  if (days == 0) return c.Err(*t.get("days"), "days", "expected at least 1");
  ph->days = static_cast<int>(days);
  ASSIGN_OR_RETURN(ph->packets_per_sensor_day, Int(c, t, "packets_per_sensor_day",
                                                   sc.packets_per_sensor_day, uint64_t{1} << 36));
  ASSIGN_OR_RETURN(ph->sources, Int(c, t, "sources", sc.sources, uint64_t{1} << 30));
  ASSIGN_OR_RETURN(ph->weekend_factor, Num(c, t, "weekend_factor", sc.weekend_factor, 0, 10));
  ph->base = sc.base;
  ASSIGN_OR_RETURN(ph->base.spoofed_flood_share,
                   Num(c, t, "spoofed_flood_share", sc.base.spoofed_flood_share, 0, 1));
  if (const toml::node* n = t.get("countries")) {
    ASSIGN_OR_RETURN(ph->base.country_weights, Countries(c, *n, "countries"));
  }
  if (const toml::node* n = t.get("profile")) {
    const toml::array* a = n->as_array();
    if (!a) return c.Err(*n, "profile", "expected [[phase.profile]] tables");
    for (const toml::node& item : *a) {
      const toml::table* pt = item.as_table();
      if (!pt) return c.Err(item, "profile", "expected [[phase.profile]] tables");
      RETURN_IF_ERROR(ParseProfile(c, *pt, &ph->base.profiles));
    }
  }
  // Checked here rather than when generating, so that the message can name the line.
  const int64_t end = ph->start_us + ph->days * kDayUs;
  const int64_t period_end = sc.start_us + sc.days * kDayUs;
  if (ph->start_us < period_end && end > sc.start_us) {
    return c.Err(*t.get("start"), "start", "the phase overlaps the [period]");
  }
  for (const ScenarioPhase& q : sc.phases) {
    if (ph->start_us < q.start_us + q.days * kDayUs && end > q.start_us) {
      return c.Err(*t.get("start"), "start",
                   fmt::format("the phase overlaps phase '{}' (line {})", q.name, q.line));
    }
    if (q.name == ph->name) return c.Err(*t.get("name"), "name", "used by another phase");
  }
  return OkStatus();
}

}  // namespace

int64_t Scenario::FirstUs() const {
  int64_t first = start_us;
  for (const ScenarioPhase& p : phases) first = std::min(first, p.start_us);
  return first;
}

int64_t Scenario::EndUs() const {
  int64_t end = start_us + days * kDayUs;
  for (const ScenarioPhase& p : phases) end = std::max(end, p.start_us + p.days * kDayUs);
  return end;
}

const char* EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kSurge:
      return "surge";
    case EventKind::kGrowth:
      return "growth";
    case EventKind::kDominate:
      return "dominate";
    case EventKind::kRegionRise:
      return "region-rise";
    case EventKind::kPortMove:
      return "port-move";
    case EventKind::kSpike:
      return "spike";
    case EventKind::kSilence:
      return "silence";
  }
  return "?";
}

Result<Scenario> ParseScenario(const std::string& text, const std::string& file) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    return InvalidArgument(fmt::format("{}:{}: {}", file, e.source().begin.line, e.description()));
  }
  const Ctx c{file};
  Scenario sc;
  sc.path = file;
  sc.base = GeneratorSpec::Default2018();
  RETURN_IF_ERROR(CheckKeys(c, root,
                            {"name", "seed", "scale", "period", "traffic", "countries", "profile",
                             "phase", "sensor", "event"}));
  ASSIGN_OR_RETURN(sc.name,
                   Str(c, root, "name", false, std::filesystem::path(file).stem().string()));
  ASSIGN_OR_RETURN(sc.seed, Int(c, root, "seed", 1, uint64_t{1} << 62));
  ASSIGN_OR_RETURN(sc.scale, Num(c, root, "scale", 1, 1e-6, 1e6));

  const toml::table* period = root["period"].as_table();
  if (!period) return c.Missing(root, "period");
  RETURN_IF_ERROR(CheckKeys(c, *period, {"start", "days"}));
  ASSIGN_OR_RETURN(sc.start_us, Time(c, *period, "start", true));
  if (sc.start_us % kDayUs != 0) {
    return c.Err(*period->get("start"), "start", "expected YYYY-MM-DD (a whole day)");
  }
  ASSIGN_OR_RETURN(uint64_t days, Int(c, *period, "days", 1, 3660, true));
  if (days == 0) return c.Err(*period->get("days"), "days", "expected at least 1");
  sc.days = static_cast<int>(days);

  const toml::table* traffic = root["traffic"].as_table();
  if (!traffic) return c.Missing(root, "traffic");
  RETURN_IF_ERROR(CheckKeys(c, *traffic,
                            {"packets_per_sensor_day", "sources", "spoofed_flood_share",
                             "flood_episodes", "diurnal_amplitude", "diurnal_peak_hour_utc",
                             "activity_skew", "weekend_factor", "default_profiles"}));
  ASSIGN_OR_RETURN(sc.packets_per_sensor_day,
                   Int(c, *traffic, "packets_per_sensor_day", 0, uint64_t{1} << 36, true));
  ASSIGN_OR_RETURN(sc.sources, Int(c, *traffic, "sources", 0, uint64_t{1} << 30, true));
  GeneratorSpec& b = sc.base;
  ASSIGN_OR_RETURN(b.spoofed_flood_share, Num(c, *traffic, "spoofed_flood_share", 0.01, 0, 1));
  ASSIGN_OR_RETURN(uint64_t episodes, Int(c, *traffic, "flood_episodes", 2, 10000));
  b.flood_episodes = static_cast<int>(episodes);
  ASSIGN_OR_RETURN(b.diurnal_amplitude, Num(c, *traffic, "diurnal_amplitude", 0.25, 0, 0.99));
  ASSIGN_OR_RETURN(b.diurnal_peak_hour_utc, Num(c, *traffic, "diurnal_peak_hour_utc", 13, 0, 24));
  ASSIGN_OR_RETURN(b.activity_skew, Num(c, *traffic, "activity_skew", 4, 1, 64));
  ASSIGN_OR_RETURN(sc.weekend_factor, Num(c, *traffic, "weekend_factor", 1, 0, 10));
  if (const toml::node* n = traffic->get("default_profiles")) {
    if (!n->is_boolean()) return c.Err(*n, "default_profiles", "expected true or false");
    if (!*n->value<bool>()) b.profiles.clear();
  }
  if (const toml::node* n = root.get("countries")) {
    ASSIGN_OR_RETURN(b.country_weights, Countries(c, *n, "countries"));
  }
  if (const toml::node* n = root.get("profile")) {
    const toml::array* a = n->as_array();
    if (!a) return c.Err(*n, "profile", "expected [[profile]] tables");
    for (const toml::node& item : *a) {
      const toml::table* t = item.as_table();
      if (!t) return c.Err(item, "profile", "expected [[profile]] tables");
      RETURN_IF_ERROR(ParseProfile(c, *t, &b.profiles));
    }
  }
  if (b.profiles.empty()) return c.Missing(root, "profile");

  if (const toml::node* n = root.get("phase")) {
    const toml::array* a = n->as_array();
    if (!a) return c.Err(*n, "phase", "expected [[phase]] tables");
    for (const toml::node& item : *a) {
      const toml::table* t = item.as_table();
      if (!t) return c.Err(item, "phase", "expected [[phase]] tables");
      ScenarioPhase ph;
      RETURN_IF_ERROR(ParsePhase(c, *t, sc, &ph));
      sc.phases.push_back(std::move(ph));
    }
    std::sort(
        sc.phases.begin(), sc.phases.end(),
        [](const ScenarioPhase& a, const ScenarioPhase& b) { return a.start_us < b.start_us; });
  }

  const toml::array* sensors = root["sensor"].as_array();
  if (!sensors || sensors->empty()) return c.Missing(root, "sensor");
  std::set<std::string> ids;
  for (const toml::node& item : *sensors) {
    const toml::table* t = item.as_table();
    if (!t) return c.Err(item, "sensor", "expected [[sensor]] tables");
    RETURN_IF_ERROR(CheckKeys(c, *t, {"id", "group", "country", "prefixes"}));
    ScenarioSensor s;
    ASSIGN_OR_RETURN(s.id, Str(c, *t, "id", true));
    bool ok_id = !s.id.empty() && s.id.size() <= 64;
    for (char ch : s.id) {
      ok_id &= (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
    }
    if (!ok_id) return c.Err(*t->get("id"), "id", "expected [a-z0-9_-], at most 64 characters");
    if (!ids.insert(s.id).second) return c.Err(*t->get("id"), "id", "used by another sensor");
    ASSIGN_OR_RETURN(s.group, Str(c, *t, "group", false, "default"));
    ASSIGN_OR_RETURN(s.country, Str(c, *t, "country", false, "JP"));
    if (!IsCountry(s.country)) return c.Err(*t->get("country"), "country", "expected e.g. JP");
    ASSIGN_OR_RETURN(std::vector<std::string> prefixes, Strings(c, *t, "prefixes"));
    if (prefixes.empty()) return c.Missing(*t, "prefixes");
    bool v4 = false;
    for (const std::string& p : prefixes) {
      auto prefix = Prefix::Parse(p);
      if (!prefix) return c.Err(*t->get("prefixes"), "prefixes", "not a CIDR prefix: " + p);
      if (prefix->base.is_v4() && prefix->length < 8) {
        return c.Err(*t->get("prefixes"), "prefixes", "IPv4 prefix wider than /8: " + p);
      }
      v4 |= prefix->base.is_v4();
      s.prefixes.push_back(*prefix);
    }
    if (!v4) return c.Err(*t->get("prefixes"), "prefixes", "needs at least one IPv4 prefix");
    sc.sensors.push_back(std::move(s));
  }

  if (const toml::node* n = root.get("event")) {
    const toml::array* a = n->as_array();
    if (!a) return c.Err(*n, "event", "expected [[event]] tables");
    std::set<std::string> names;
    for (const toml::node& item : *a) {
      const toml::table* t = item.as_table();
      if (!t) return c.Err(item, "event", "expected [[event]] tables");
      ScenarioEvent e;
      RETURN_IF_ERROR(ParseEvent(c, *t, sc, &e));
      if (!names.insert(e.name).second) return c.Err(*t->get("name"), "name", "used twice");
      sc.events.push_back(std::move(e));
    }
  }
  return sc;
}

Result<Scenario> LoadScenario(const std::string& name_or_path) {
  std::vector<std::string> tried;
  auto read = [&](const std::string& path) -> Result<Scenario> {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in && !in.eof()) return IoError("reading " + path);
    return ParseScenario(ss.str(), path);
  };
  const bool is_path =
      name_or_path.find('/') != std::string::npos || name_or_path.ends_with(".toml");
  if (is_path) {
    if (!std::filesystem::is_regular_file(name_or_path)) {
      return NotFound("scenario file not found: " + name_or_path);
    }
    return read(name_or_path);
  }
  std::vector<std::filesystem::path> dirs;
  if (const char* env = std::getenv("TEITEN_SCENARIOS")) dirs.emplace_back(env);
  dirs.emplace_back("data/scenarios");
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
      dirs.push_back(p / "data/scenarios");
      dirs.push_back(p / "share/teiten/scenarios");
    }
  }
  for (const auto& d : dirs) {
    auto f = d / (name_or_path + ".toml");
    tried.push_back(f.string());
    if (std::filesystem::is_regular_file(f)) return read(f.string());
  }
  std::string msg = "no scenario named '" + name_or_path + "'; looked for";
  for (const std::string& t : tried) msg += " " + t;
  return NotFound(msg);
}

}  // namespace teiten::simulate
