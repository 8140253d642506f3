#include "cli/cli_common.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "analysis/mustan.h"
#include "common/files.h"
#include "common/time_zone.h"
#include "enrich/geo.h"
#include "feeds/deliver.h"

namespace teiten {

CLI::App* Commands::Add(const std::string& name, const std::string& help, bool query) {
  CLI::App* sub = app_.add_subcommand(name, help);
  AddCommonOptions(sub, query);
  return sub;
}

void Commands::AddCommonOptions(CLI::App* sub, bool query) {
  Common& c = common_;
  sub->add_option("--config", c.config_path,
                  "config file (default $TEITEN_CONFIG or ./teiten.toml)");
  sub->add_option("--store", c.store_path, "store directory (overrides the config)");
  sub->add_option("--format", c.format, "table, csv or json")->capture_default_str();
  if (query) {
    sub->add_option("--lang", c.lang, "en or ja")->capture_default_str();
    sub->add_option("--sensor", c.sensors, "count only this sensor (repeatable)");
    sub->add_option("--group", c.groups, "count only sensors of this group (repeatable)");
  }
}

std::optional<int> Commands::RunParsed() const {
  for (const auto& [sub, run] : runs_) {
    if (sub->parsed()) return run();
  }
  return std::nullopt;
}

int Fail(const Status& s) {
  std::cerr << "teiten: " << s.ToString() << "\n";
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ? 2 : 1;
}

Result<Config> LoadConfigFor(const Common& c, bool need_store) {
  std::string path = c.config_path;
  if (path.empty()) {
    if (const char* e = std::getenv("TEITEN_CONFIG")) path = e;
  }
  if (path.empty() && std::filesystem::exists("teiten.toml")) path = "teiten.toml";
  Config cfg;
  if (!path.empty()) {
    ASSIGN_OR_RETURN(cfg, LoadConfig(path));
  }
  if (!c.store_path.empty()) cfg.store_path = c.store_path;
  if (need_store && cfg.store_path.empty()) {
    return InvalidArgument(
        "no store: give --store DIR, or a config (--config, $TEITEN_CONFIG or "
        "./teiten.toml) with [store] path");
  }
  return cfg;
}

Result<OutputFormat> ParseFormat(const std::string& f) {
  if (f == "table") return OutputFormat::kTable;
  if (f == "csv") return OutputFormat::kCsv;
  if (f == "json") return OutputFormat::kJson;
  return InvalidArgument(fmt::format("format '{}': expected table, csv or json", f));
}

Lang ParseLang(const std::string& l) {
  return l == "ja" ? Lang::kJa : Lang::kEn;
}

std::string RankText(int r, Lang lang, int cutoff) {
  switch (r) {
    case kRankOutOfTop:
      return lang == Lang::kJa ? fmt::format("トップ{}圏外", cutoff)
                               : fmt::format("out of top {}", cutoff);
    case kRankNew:
      return lang == Lang::kJa ? "新規" : "new";
    case kRankNoData:
      return lang == Lang::kJa ? "データなし" : "no data";
    default:
      return std::to_string(r);
  }
}

std::string KeyName(const Store& store, const AsnNames* names, Dimension d, uint64_t key,
                    Lang lang) {
  switch (d) {
    case Dimension::kPort:
      return ServiceNames::Default().Describe(static_cast<PortKey>(key));
    case Dimension::kCountry: {
      auto c = static_cast<CountryCode>(key);
      return c == 0 ? CountryName(0, lang) : CountryCodeString(c) + " " + CountryName(c, lang);
    }
    case Dimension::kAsn: {
      if (key == 0) return lang == Lang::kJa ? "不明" : "unknown";
      const std::string n = AsnNameIn(names, static_cast<uint32_t>(key));
      return n.empty() ? fmt::format("AS{}", key) : fmt::format("AS{} {}", key, n);
    }
    case Dimension::kSensor: {
      const auto& ss = store.manifest().sensors;
      return key < ss.size() ? ss[key].id : std::to_string(key);
    }
  }
  return "";
}

// Opening the ASN database with `walk` reads it whole (about half a second): for naming ASNs
// known only by number.
Result<std::unique_ptr<GeoDb>> OpenGeoFor(const Config& cfg, bool walk) {
  auto g = GeoDb::Open(cfg.country_db, cfg.asn_db, walk);
  if (!g.ok() && !cfg.geo_where.empty()) {
    return Status(g.status().code(), cfg.geo_where + ": [geo]: " + g.status().message());
  }
  return g;
}

std::unique_ptr<GeoDb> OpenGeoQuietly(const Config& cfg) {
  if (cfg.asn_db.empty() && cfg.country_db.empty()) return nullptr;
  auto g = GeoDb::Open("", cfg.asn_db);
  return g.ok() ? std::move(*g) : nullptr;
}

// The names OpenGeoQuietly's database gives the networks of these sources (an address and the
// ASN the store holds for it; ASN 0 is left out): one lookup of each address instead of the
// walk. When a lookup cannot vouch for its name (GeoLookup::AsnNameVia: an IPv6 source, or an ASN
// database that maps the address elsewhere now than when the store was enriched), the walk.
AsnNames NameSourceNetworks(const Config& cfg,
                            const std::vector<std::pair<IpAddr, uint32_t>>& sources) {
  AsnNames names;
  bool any = false;
  for (const auto& s : sources) any |= s.second != 0;
  if (!any || cfg.asn_db.empty()) return names;  // GeoDb::Open("", "") would name nothing
  auto lookup = GeoLookup::Open("", cfg.asn_db);
  if (!lookup.ok()) return names;  // as OpenGeoQuietly: no database, no names
  bool vouched = true;
  for (const auto& [addr, asn] : sources) {
    if (asn == 0) continue;
    std::optional<std::string> n = (*lookup)->AsnNameVia(addr, asn);
    if (!n) {
      vouched = false;
      break;
    }
    names[asn] = std::move(*n);
  }
  if (vouched) return names;
  names.clear();
  if (auto geo = OpenGeoQuietly(cfg)) {
    for (const auto& s : sources) {
      if (s.second != 0) names[s.second] = geo->AsnName(s.second);
    }
  }
  return names;
}

Result<std::unique_ptr<Store>> OpenStoreFor(const Common& c, Config* cfg_out) {
  ASSIGN_OR_RETURN(*cfg_out, LoadConfigFor(c));
  return Store::Open(cfg_out->store_path, {});
}

Result<QueryContext> PrepareQuery(const Common& c, const std::string& period_text) {
  QueryContext q;
  ASSIGN_OR_RETURN(q.period, ParsePeriod(period_text));
  ASSIGN_OR_RETURN(q.format, ParseFormat(c.format));
  ASSIGN_OR_RETURN(q.store, OpenStoreFor(c, &q.cfg));
  ASSIGN_OR_RETURN(q.sel, ResolveSensors(*q.store, c.sensors, c.groups));
  return q;
}

Result<RunContext> PrepareRun(const Common& c, const std::string& period_text,
                              const std::string& state_file) {
  if (period_text.empty() == state_file.empty()) {
    return InvalidArgument("give either --period or --since-last-run STATE_FILE");
  }
  RunContext r;
  if (state_file.empty()) {
    ASSIGN_OR_RETURN(r.q, PrepareQuery(c, period_text));
    return r;
  }
  ASSIGN_OR_RETURN(r.q.format, ParseFormat(c.format));
  ASSIGN_OR_RETURN(r.q.store, OpenStoreFor(c, &r.q.cfg));
  ASSIGN_OR_RETURN(r.q.sel, ResolveSensors(*r.q.store, c.sensors, c.groups));
  ASSIGN_OR_RETURN(std::optional<int32_t> done, ReadFeedState(state_file));
  std::optional<int32_t> last = LastDayWithData(*r.q.store);
  if (!last) return NotFound("the store holds no data yet");
  r.last_day = *last;
  const int32_t first = done ? *done + 1 : *last;
  if (first > *last) {
    r.nothing_new = true;
  } else {
    r.q.period = DaysPeriod(first, *last + 1);
  }
  return r;
}

std::string RunLabel(const Period& p) {
  return p.days() == 1 ? TimeZone::DayString(p.first_day)
                       : fmt::format("{}..{}", TimeZone::DayString(p.first_day),
                                     TimeZone::DayString(p.end_day - 1));
}

Status WriteOutput(const std::string& out, std::string_view body) {
  if (!out.empty() && out != "-") return WriteFileAtomically(out, body);
  std::fwrite(body.data(), 1, body.size(), stdout);
  if (std::fflush(stdout) != 0) return Internal("writing to stdout failed");
  return OkStatus();
}

void WarnIfRetained(const Store& store, const Period& period);
Result<std::optional<PortKey>> OptionalPort(const std::string& text);

Result<ResearchNetworks> LoadResearch(const std::string& path) {
  if (path.empty()) return ResearchNetworks::Shipped();
  return ResearchNetworks::Load(path);
}

std::string LocalTime(const Store& store, int64_t us) {
  int64_t local = us + store.tz().OffsetUs(us);
  int64_t sec = local / 1000000;
  int32_t day = static_cast<int32_t>(sec / 86400 - (sec % 86400 < 0));
  int64_t s = sec - int64_t{day} * 86400;
  return fmt::format("{} {:02}:{:02}:{:02}", TimeZone::DayString(day), s / 3600, s % 3600 / 60,
                     s % 60);
}

// The row analyses read observations, which retention (`teiten retain`) drops before a day while
// the rollups stay: a period reaching before it is answered from what is left, and said so.
void WarnIfRetained(const Store& store, const Period& period) {
  const int32_t from = store.manifest().segments_from;
  if (from != INT32_MIN && period.first_day < from) {
    std::cerr << "teiten: warning: observations before " << TimeZone::DayString(from)
              << " were dropped by retention; this answer covers only the days from then\n";
  }
}

Result<std::optional<PortKey>> OptionalPort(const std::string& text) {
  if (text.empty()) return std::optional<PortKey>{};
  PortKey k;
  if (!ParsePortKey(text, &k)) {
    return InvalidArgument(fmt::format("port '{}': expected e.g. 23/tcp", text));
  }
  return std::optional<PortKey>{k};
}

std::string StorePathFor(const Common& c) {
  if (!c.store_path.empty()) return c.store_path;
  auto cfg = LoadConfigFor(c);
  return cfg.ok() ? cfg->store_path : "";
}

// SIGTERM and SIGINT end the daemons cleanly: they are blocked in every thread and waited for
// by the main one, which then stops the work in order (nothing half-written, nothing lost).
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a peer that hangs up is an error return, not a death
  return set;
}

}  // namespace teiten
