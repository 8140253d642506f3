// teiten: the one binary. Subcommands: ingest, top, series, summary, ip, scans, dos, payloads, os,
// report, geo, simulate, serve, ….
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "analysis/dos.h"
#include "analysis/os_guesses.h"
#include "analysis/payloads.h"
#include "analysis/query.h"
#include "analysis/scans.h"
#include "analysis/sensor_health.h"
#include "analysis/tools.h"
#include "cli/table.h"
#include "daemon/collector.h"
#include "daemon/sensor_daemon.h"
#include "enrich/names.h"
#include "ingest/ingest.h"
#include "report/report.h"
#include "sensor/config.h"
#include "simulate/simulate_command.h"
#include "store/store.h"
#include "store/verify.h"
#include "web/access.h"
#include "web/server.h"

namespace teiten {
namespace {

struct Common {
  std::string config_path;
  std::string store_path;
  std::string format = "table";
  std::string lang = "en";
  std::vector<std::string> sensors;
  std::vector<std::string> groups;
};

int Fail(const Status& s) {
  std::cerr << "teiten: " << s.ToString() << "\n";
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ? 2 : 1;
}

Result<Config> LoadConfigFor(const Common& c, bool need_store = true) {
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

// Optional geo database for naming ASNs in output. Opening it walks the whole ASN database
// (about half a second): for naming ASNs known only by number.
// The config's geo databases; an error names the config's [geo] table as well as the file.
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

class Progress {
 public:
  explicit Progress(std::string name) : name_(std::move(name)), tty_(isatty(2) != 0) {
    t0_ = std::chrono::steady_clock::now();
  }
  void Update(uint64_t packets, uint64_t bytes, uint64_t total_bytes) {
    if (!tty_) return;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    double rate = s > 0 ? static_cast<double>(packets) / s / 1e6 : 0;
    if (total_bytes > 0) {
      double frac = std::min(1.0, static_cast<double>(bytes) / static_cast<double>(total_bytes));
      int filled = static_cast<int>(frac * 30);
      fmt::print(stderr, "\r{} [{}{}] {:3.0f}% {} packets {:.1f} Mpps", name_,
                 std::string(static_cast<size_t>(filled), '#'),
                 std::string(static_cast<size_t>(30 - filled), ' '), frac * 100, Thousands(packets),
                 rate);
    } else {
      fmt::print(stderr, "\r{} {} packets {:.1f} Mpps", name_, Thousands(packets), rate);
    }
  }
  void Done() {
    if (tty_) fmt::print(stderr, "\r\033[K");
  }

 private:
  std::string name_;
  bool tty_;
  std::chrono::steady_clock::time_point t0_;
};

int RunIngest(const Common& c, const std::string& sensor_id,
              const std::vector<std::string>& files) {
  auto cfg = LoadConfigFor(c);
  if (!cfg.ok()) return Fail(cfg.status());
  const SensorConfig* sensor = cfg->FindSensor(sensor_id);
  if (!sensor) {
    return Fail(NotFound(fmt::format("sensor '{}' is not defined in {}", sensor_id,
                                     cfg->path.empty() ? "the config" : cfg->path)));
  }
  auto store = Store::Open(cfg->store_path, {.create = true, .timezone = cfg->timezone});
  if (!store.ok()) return Fail(store.status());
  std::unique_ptr<GeoDb> geo;
  if (!cfg->country_db.empty() || !cfg->asn_db.empty()) {
    // The range-table walk (~0.5 s) pays off past a few hundred thousand packets; below that,
    // lookups through the trees are cheaper than building it (a collector's small batch, a
    // sensor-hour's file).
    uint64_t input_bytes = 0;
    for (const auto& f : files) {
      std::error_code ec;
      uint64_t n = std::filesystem::is_regular_file(f, ec) ? std::filesystem::file_size(f, ec) : 0;
      input_bytes += ec || n == 0 ? (uint64_t{1} << 40) : n;
    }
    auto g = OpenGeoFor(*cfg, input_bytes > (uint64_t{16} << 20));
    if (!g.ok()) return Fail(g.status());
    geo = std::move(*g);
  } else {
    std::cerr
        << "teiten: warning: no [geo] databases configured; countries and ASNs will be unknown\n";
  }
  int rc = 0;
  Table t({"file", "packets", "kept", "dropped", "anomalies", "seconds", "Mpps", "status"});
  uint64_t total_read = 0, total_kept = 0;
  for (const auto& f : files) {
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(f, ec);
    Progress prog(std::filesystem::path(f).filename().string());
    IngestOptions opts;
    opts.progress = [&](uint64_t p, uint64_t b) { prog.Update(p, b, size); };
    Ingester ing(store->get(), geo.get(), opts);
    auto r = ing.IngestFile(*sensor, f);
    prog.Done();
    if (!r.ok()) {
      std::cerr << "teiten: " << r.status().ToString() << "\n";
      rc = 1;
      t.AddRow({Text(f), Text("-"), Text("-"), Text("-"), Text("-"), Text("-"), Text("-"),
                Text("error")});
      continue;
    }
    uint64_t dropped = 0, anomalies = 0;
    std::string detail;
    for (auto& [k, v] : r->dropped) {
      dropped += v;
      detail += fmt::format(" {}={}", k, v);
    }
    for (auto& [k, v] : r->anomalies) {
      anomalies += v;
      detail += fmt::format(" {}={}", k, v);
    }
    std::string status = r->already_ingested ? "already ingested (unchanged)" : "ok";
    if (!r->error.empty()) {
      status = "partial: " + r->error;
      std::cerr << "teiten: " << r->error << " (the packets before it were kept)\n";
      rc = 1;
    }
    if (!detail.empty() && !r->already_ingested) status += ";" + detail;
    total_read += r->packets_read;
    total_kept += r->kept;
    double mpps = r->seconds > 0 ? static_cast<double>(r->packets_read) / r->seconds / 1e6 : 0;
    t.AddRow({Text(f), Count(r->packets_read), Count(r->kept), Count(dropped), Count(anomalies),
              Fixed(r->seconds, 2), Fixed(mpps, 2), Text(status)});
  }
  // Keys no commit has touched for ten minutes are merged whole (within a bounded budget per
  // command), so a store fed by periodic ingests converges to one part a key without anyone
  // running `teiten merge`.
  // Captures older than a day are folded into few inputs, tier by tier, so that files and the
  // manifest grow with the data, not with the number of ingests.
  if (auto txn = (*store)->Begin(); txn.ok()) {
    uint64_t folded = 0;
    FoldOptions fo;
    fo.batch_min_age_s = -1;  // the collector's work
    if (Status st = (*txn)->FoldInputs(fo, &folded); !st.ok()) {
      std::cerr << "teiten: folding inputs: " << st.ToString() << "\n";
      rc = 1;
    }
  } else {
    std::cerr << "teiten: folding inputs: " << txn.status().ToString() << "\n";
    rc = 1;
  }
  MergeOptions cold;
  cold.cold_after_s = 600;
  if (auto m = (*store)->Merge(cold); !m.ok()) {
    std::cerr << "teiten: merging rollup parts: " << m.status().ToString() << "\n";
    rc = 1;
  }
  auto fmt_ok = ParseFormat(c.format);
  t.Write(std::cout, fmt_ok.ok() ? *fmt_ok : OutputFormat::kTable);
  return rc;
}

Result<std::unique_ptr<Store>> OpenStoreFor(const Common& c, Config* cfg_out) {
  ASSIGN_OR_RETURN(*cfg_out, LoadConfigFor(c));
  return Store::Open(cfg_out->store_path, {});
}

// What every period query needs: the period, the output format, the store and the sensors.
struct QueryContext {
  Period period;
  OutputFormat format = OutputFormat::kTable;
  Config cfg;
  std::unique_ptr<Store> store;
  SensorSelection sel;
};

Result<QueryContext> PrepareQuery(const Common& c, const std::string& period_text) {
  QueryContext q;
  ASSIGN_OR_RETURN(q.period, ParsePeriod(period_text));
  ASSIGN_OR_RETURN(q.format, ParseFormat(c.format));
  ASSIGN_OR_RETURN(q.store, OpenStoreFor(c, &q.cfg));
  ASSIGN_OR_RETURN(q.sel, ResolveSensors(*q.store, c.sensors, c.groups));
  return q;
}

void WarnIfRetained(const Store& store, const Period& period);
Result<std::optional<PortKey>> OptionalPort(const std::string& text);

// The research-scanner list: a file the user names, or the one shipped in the binary.
Result<ResearchNetworks> LoadResearch(const std::string& path) {
  if (path.empty()) return ResearchNetworks::Shipped();
  return ResearchNetworks::Load(path);
}

std::string TagEvidence(const SourceTags& t) {
  std::string out;
  for (size_t i = 0; i < kTagCount; ++i) {
    if (t.evidence[i] == 0 || static_cast<Tag>(i) == Tag::kResearch) continue;
    out += fmt::format("{}{} {} of {}{}", out.empty() ? "" : ", ", TagName(static_cast<Tag>(i)),
                       Thousands(t.evidence[i]),
                       Thousands(TagRules()[i].of_probes ? t.probes : t.packets),
                       TagRules()[i].of_probes ? " SYN probes" : " packets");
  }
  return out;
}

int RunTopTools(const Common& c, const std::string& period_text, size_t n,
                const std::string& port_text, const std::string& research_path) {
  auto port = OptionalPort(port_text);
  if (!port.ok()) return Fail(port.status());
  auto research = LoadResearch(research_path);
  if (!research.ok()) return Fail(research.status());
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  WarnIfRetained(store, q->period);
  auto res = TopTools(store, q->period, q->sel, *port, &*research);
  if (!res.ok()) return Fail(res.status());
  Lang lang = ParseLang(c.lang);
  bool ja = lang == Lang::kJa;
  if (q->format == OutputFormat::kTable) {
    fmt::print(
        "Period {}{} — {} sources, {} packets; a source is tagged when its packets agree "
        "(docs/FINGERPRINTS.md)\n",
        q->period.Label(),
        *port ? " — " + KeyName(store, nullptr, Dimension::kPort, **port, lang) : "",
        Thousands(res->sources), Thousands(res->packets));
  }
  Table t({ja ? "タグ" : "tag", ja ? "送信元数" : "sources", ja ? "送信元割合" : "source share",
           ja ? "パケット数" : "packets", ja ? "パケット割合" : "packet share",
           ja ? "主な宛先ポート" : "busiest ports"});
  for (size_t i = 0; i < res->rows.size() && i < n + 1; ++i) {
    const ToolRow& r = res->rows[i];
    std::vector<std::pair<uint64_t, PortKey>> by;
    for (const auto& [k, v] : r.ports) by.push_back({v, k});
    std::sort(by.rbegin(), by.rend());
    std::string ports;
    for (const auto& [v, k] : by) {
      ports += fmt::format("{}{}", ports.empty() ? "" : ", ",
                           KeyName(store, nullptr, Dimension::kPort, k, lang));
    }
    t.AddRow({Text(TagName(r.tag)), Count(r.sources), Percent(r.source_share), Count(r.packets),
              Percent(r.packet_share), Text(ports)});
  }
  t.Write(std::cout, q->format);
  return 0;
}

int RunTop(const Common& c, const std::string& what, const std::string& period_text, size_t n,
           const std::string& port_text, const std::string& research_path) {
  if (what == "tools" || what == "tags") {
    return RunTopTools(c, period_text, n, port_text, research_path);
  }
  if (!port_text.empty() || !research_path.empty()) {
    return Fail(InvalidArgument("--port and --research go with `teiten top tools`"));
  }
  Dimension dim;
  if (what == "ports")
    dim = Dimension::kPort;
  else if (what == "countries" || what == "regions")
    dim = Dimension::kCountry;
  else if (what == "asns")
    dim = Dimension::kAsn;
  else if (what == "sensors")
    dim = Dimension::kSensor;
  else
    return Fail(InvalidArgument(
        fmt::format("top '{}': expected ports, countries, asns, sensors or tools", what)));
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  auto res = Top(store, dim, q->period, q->sel, n);
  if (!res.ok()) return Fail(res.status());
  Lang lang = ParseLang(c.lang);
  // Rows name ASNs by number only: the walk.
  AsnNames names;
  if (dim == Dimension::kAsn) {
    if (auto geo = OpenGeoQuietly(q->cfg)) {
      for (const auto& r : res->rows) {
        auto asn = static_cast<uint32_t>(r.key);
        names[asn] = geo->AsnName(asn);
      }
    }
  }
  bool ja = lang == Lang::kJa;
  std::string dim_title = dim == Dimension::kPort      ? (ja ? "宛先ポート番号" : "port")
                          : dim == Dimension::kCountry ? (ja ? "送信元地域" : "region")
                          : dim == Dimension::kAsn     ? "ASN"
                                                       : (ja ? "センサー" : "sensor");
  Table t({ja ? "順位" : "rank", dim_title, ja ? "パケット数" : "packets",
           ja ? "送信元数" : "sources", ja ? "割合" : "share",
           ja ? fmt::format("前期({})の順位", res->previous.Label())
              : fmt::format("previous rank ({})", res->previous.Label())});
  for (const auto& r : res->rows) {
    t.AddRow({Count(static_cast<uint64_t>(r.rank)), Text(KeyName(store, &names, dim, r.key, lang)),
              Count(r.packets), Count(r.sources), Percent(r.share),
              Text(RankText(r.prev_rank, lang, 10))});
  }
  if (q->format == OutputFormat::kTable) {
    if (ja) {
      fmt::print("期間 {} — 合計 {} パケット、送信元 {} 件\n", res->period.Label(),
                 Thousands(res->total_packets), Thousands(res->total_sources));
    } else {
      fmt::print("Period {} — total: {} packets from {} sources\n", res->period.Label(),
                 Thousands(res->total_packets), Thousands(res->total_sources));
    }
  }
  t.Write(std::cout, q->format);
  return 0;
}

std::string LocalTime(const Store& store, int64_t us) {
  int64_t local = us + store.tz().OffsetUs(us);
  int64_t sec = local / 1000000;
  int32_t day = static_cast<int32_t>(sec / 86400 - (sec % 86400 < 0));
  int64_t s = sec - int64_t{day} * 86400;
  return fmt::format("{} {:02}:{:02}:{:02}", TimeZone::DayString(day), s / 3600, s % 3600 / 60,
                     s % 60);
}

int RunIp(const Common& c, const std::string& addr_text) {
  auto addr = IpAddr::Parse(addr_text);
  if (!addr)
    return Fail(InvalidArgument(fmt::format("'{}' is not an IPv4 or IPv6 address", addr_text)));
  auto f = ParseFormat(c.format);
  if (!f.ok()) return Fail(f.status());
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  auto h = SourceHistory(**store, *addr);
  if (!h.ok()) return Fail(h.status());
  Lang lang = ParseLang(c.lang);
  if (!h->seen) {
    if (*f == OutputFormat::kJson) {
      fmt::print("{{\"address\": \"{}\", \"seen\": false}}\n", addr->ToString());
    } else {
      fmt::print("{}: not seen by any sensor in this store\n", addr->ToString());
    }
    return 0;
  }
  const AsnNames names = NameSourceNetworks(cfg, {{*addr, h->geo.asn}});
  const Store& s = **store;
  Table t({"field", "value"});
  t.AddRow({Text("address"), Text(addr->ToString())});
  t.AddRow({Text("country"), Text(KeyName(s, nullptr, Dimension::kCountry, h->geo.country, lang))});
  t.AddRow({Text("asn"), Text(KeyName(s, &names, Dimension::kAsn, h->geo.asn, lang))});
  t.AddRow({Text("first_seen"), Text(LocalTime(s, h->first_us) + " " + s.tz().name())});
  t.AddRow({Text("last_seen"), Text(LocalTime(s, h->last_us) + " " + s.tz().name())});
  t.AddRow({Text("packets"), Count(h->packets)});
  t.AddRow({Text("days"), Count(h->days.size())});
  std::string ports, sensors, days, ttls;
  std::vector<std::pair<uint64_t, PortKey>> by_count;
  for (auto& [k, v] : h->ports) by_count.push_back({v, k});
  std::sort(by_count.rbegin(), by_count.rend());
  for (auto& [v, k] : by_count) {
    ports += fmt::format("{}{} ×{}", ports.empty() ? "" : ", ", ServiceNames::Default().Describe(k),
                         Thousands(v));
  }
  for (auto& [k, v] : h->sensors) {
    sensors += fmt::format("{}{} ×{}", sensors.empty() ? "" : ", ",
                           KeyName(s, nullptr, Dimension::kSensor, k, lang), Thousands(v));
  }
  for (auto& [k, v] : h->days) {
    days += fmt::format("{}{} ×{}", days.empty() ? "" : ", ", TimeZone::DayString(k), Thousands(v));
  }
  for (auto& [k, v] : h->ttls)
    ttls += fmt::format("{}{} ×{}", ttls.empty() ? "" : ", ", k, Thousands(v));
  t.AddRow({Text("ports"), Text(ports)});
  t.AddRow({Text("sensors"), Text(sensors)});
  t.AddRow({Text("days_seen"), Text(days)});
  t.AddRow({Text("ttl"), Text(ttls)});
  // Tool tags from the source's own rows (the blocks its index entries name).
  if (auto tags = TagSource(s, *addr, &ResearchNetworks::Shipped()); tags.ok()) {
    std::string verdict;
    for (size_t i = 0; i < kTagCount; ++i) {
      if (tags->Has(static_cast<Tag>(i))) {
        verdict += fmt::format("{}{}", verdict.empty() ? "" : ", ", TagName(static_cast<Tag>(i)));
      }
    }
    if (tags->research) verdict += fmt::format(" ({})", tags->research->organisation);
    t.AddRow({Text("tags"), Text(verdict.empty() ? "-" : verdict)});
    t.AddRow({Text("tag_evidence"), Text(TagEvidence(*tags))});
  } else {
    std::cerr << "teiten: tags: " << tags.status().ToString() << "\n";
  }
  t.Write(std::cout, *f);
  return 0;
}

int RunSummary(const Common& c, const std::string& period_text, size_t n) {
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  const OutputFormat f = q->format;
  auto s = Summary(store, q->period, q->sel, n);
  if (!s.ok()) return Fail(s.status());
  Lang lang = ParseLang(c.lang);
  bool ja = lang == Lang::kJa;
  Table totals({"measure", "value"});
  totals.AddRow({Text("period"), Text(s->period.Label())});
  totals.AddRow({Text("sensors"), Count(static_cast<uint64_t>(s->sensors))});
  totals.AddRow({Text("days"), Count(static_cast<uint64_t>(s->days))});
  totals.AddRow({Text("packets"), Count(s->packets)});
  totals.AddRow({Text("sources"), Count(s->sources)});
  totals.AddRow({Text("packets_per_sensor_day"), Fixed(s->packets_per_sensor_day, 1)});
  totals.AddRow({Text("sources_per_sensor_day"), Fixed(s->sources_per_sensor_day, 1)});
  totals.AddRow({Text("packets_per_source"), Fixed(s->packets_per_source, 2)});
  totals.Write(std::cout, f);
  if (f != OutputFormat::kTable) return 0;
  for (Dimension dim : {Dimension::kPort, Dimension::kCountry}) {
    const auto& rows = dim == Dimension::kPort ? s->ports : s->countries;
    const auto& ss = dim == Dimension::kPort ? s->port_source_share : s->country_source_share;
    fmt::print("\n");
    Table t({ja ? "順位" : "rank",
             dim == Dimension::kPort ? (ja ? "宛先ポート番号" : "port")
                                     : (ja ? "送信元地域" : "region"),
             ja ? "パケット数" : "packets", ja ? "パケット割合" : "packet share",
             ja ? "送信元数" : "sources", ja ? "送信元割合" : "source share"});
    for (size_t i = 0; i < rows.size(); ++i) {
      t.AddRow({Count(static_cast<uint64_t>(rows[i].rank)),
                Text(KeyName(store, nullptr, dim, rows[i].key, lang)), Count(rows[i].packets),
                Percent(rows[i].share), Count(rows[i].sources), Percent(ss[i])});
    }
    t.Write(std::cout, f);
  }
  return 0;
}

int RunSeries(const Common& c, const std::string& period_text, const std::string& gran,
              const std::vector<std::string>& ports, const std::vector<std::string>& countries,
              const std::vector<std::string>& sensor_series, const std::string& by_country,
              size_t n) {
  auto g = ParseGranularity(gran);
  if (!g.ok()) return Fail(g.status());
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  Lang lang = ParseLang(c.lang);
  Result<SeriesResult> res = Internal("unset");
  bool packets_only = false;
  if (!by_country.empty()) {
    PortKey k;
    if (!ParsePortKey(by_country, &k))
      return Fail(InvalidArgument(fmt::format("port '{}': expected e.g. 445/tcp", by_country)));
    res = PortByCountry(store, k, q->period, q->sel, n);
    packets_only = true;
  } else {
    Dimension dim = Dimension::kPort;
    std::vector<uint64_t> keys;
    std::vector<std::string> names;
    int kinds = !ports.empty() + !countries.empty() + !sensor_series.empty();
    if (kinds > 1) return Fail(InvalidArgument("choose one of --port, --country, --sensor-series"));
    for (const auto& p : ports) {
      PortKey k;
      if (!ParsePortKey(p, &k))
        return Fail(InvalidArgument(fmt::format("port '{}': expected e.g. 23/tcp", p)));
      keys.push_back(k);
      names.push_back(PortKeyToString(k));
    }
    for (const auto& cn : countries) {
      dim = Dimension::kCountry;
      CountryCode cc = FindCountry(cn);
      if (!cc) return Fail(InvalidArgument(fmt::format("country '{}' is not known", cn)));
      keys.push_back(cc);
      names.push_back(CountryCodeString(cc));
    }
    for (const auto& sid : sensor_series) {
      dim = Dimension::kSensor;
      int i = store.SensorIndex(sid);
      if (i < 0) return Fail(NotFound(fmt::format("sensor '{}' is not in the store", sid)));
      keys.push_back(static_cast<uint64_t>(i));
      names.push_back(sid);
    }
    res = Series(store, dim, keys, q->period, *g, q->sel);
    if (res.ok()) res->names = keys.empty() ? std::vector<std::string>{"all"} : names;
  }
  if (!res.ok()) return Fail(res.status());
  std::vector<std::string> header = {lang == Lang::kJa ? "時刻" : "time"};
  for (const auto& nm : res->names) {
    header.push_back(nm + (packets_only ? "" : " packets"));
    if (!packets_only) header.push_back(nm + " sources");
  }
  Table t(header);
  for (const auto& pt : res->points) {
    std::vector<TableCell> row = {Text(pt.label)};
    for (size_t i = 0; i < pt.packets.size(); ++i) {
      row.push_back(Count(pt.packets[i]));
      if (!packets_only) row.push_back(Count(pt.sources[i]));
    }
    t.AddRow(row);
  }
  t.Write(std::cout, q->format);
  return 0;
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

// Optional "--port P": empty text means every port.
Result<std::optional<PortKey>> OptionalPort(const std::string& text) {
  if (text.empty()) return std::optional<PortKey>{};
  PortKey k;
  if (!ParsePortKey(text, &k)) {
    return InvalidArgument(fmt::format("port '{}': expected e.g. 23/tcp", text));
  }
  return std::optional<PortKey>{k};
}

int RunScans(const Common& c, const std::string& period_text, const std::string& port_text,
             size_t n, uint64_t min_addresses, int64_t timeout_s) {
  auto port = OptionalPort(port_text);
  if (!port.ok()) return Fail(port.status());
  if (timeout_s <= 0) return Fail(InvalidArgument("--timeout: expected seconds > 0"));
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  WarnIfRetained(store, q->period);
  bool from_data = false;
  auto res = FindScans(store, q->period, q->sel,
                       {.port = *port, .min_addresses = min_addresses, .timeout_s = timeout_s},
                       &from_data);
  if (!res.ok()) return Fail(res.status());
  Lang lang = ParseLang(c.lang);
  if (q->format == OutputFormat::kTable) {
    fmt::print(
        "Period {} — scans: one source probing ≥ {} distinct of {} monitored addresses{} on one "
        "port, gaps ≤ {} s\n",
        q->period.Label(), Thousands(res->threshold), Thousands(res->monitored),
        from_data ? " (seen; no sensor names its prefix)" : "", res->timeout_s);
  }
  if (!*port) {
    Table t({"port", "scans", "scanners", "probes", "mean coverage", "max coverage", "tools"});
    for (size_t i = 0; i < res->ports.size() && i < n; ++i) {
      const PortScans& p = res->ports[i];
      std::string tools;
      for (const auto& [tool, k] : p.tools) {
        tools += fmt::format("{}{} ×{}", tools.empty() ? "" : ", ", ProbeToolName(tool), k);
      }
      t.AddRow({Text(KeyName(store, nullptr, Dimension::kPort, p.port, lang)), Count(p.scans),
                Count(p.scanners), Count(p.packets), Percent(p.mean_coverage),
                Percent(p.max_coverage), Text(tools)});
    }
    t.Write(std::cout, q->format);
    return 0;
  }
  if (q->format == OutputFormat::kTable) {
    uint64_t scanners = res->ports.empty() ? 0 : res->ports[0].scanners;
    fmt::print("{}: {} scans by {} sources, {} of {} probes inside scans\n",
               KeyName(store, nullptr, Dimension::kPort, **port, lang),
               Thousands(res->scans.size()), Thousands(scanners),
               Thousands(res->ports.empty() ? 0 : res->ports[0].packets), Thousands(res->probes));
  }
  Table t({"rank", "source", "region", "start", "seconds", "probes", "addresses", "coverage",
           "rate (pps)", "tool"});
  for (size_t i = 0; i < res->scans.size() && i < n; ++i) {
    const Scan& s = res->scans[i];
    t.AddRow({Count(i + 1), Text(s.src.ToString()), Text(CountryCodeString(s.geo.country)),
              Text(LocalTime(store, s.start_us)),
              Fixed(static_cast<double>(s.end_us - s.start_us) / 1e6, 1), Count(s.packets),
              Count(s.addresses), Percent(s.coverage), Fixed(s.rate_pps, 2),
              Text(ProbeToolName(s.tool))});
  }
  t.Write(std::cout, q->format);
  return 0;
}

int RunDos(const Common& c, const std::string& period_text, size_t n) {
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  WarnIfRetained(store, q->period);
  auto res = FindDosAttacks(store, q->period, q->sel);
  if (!res.ok()) return Fail(res.status());
  if (q->format == OutputFormat::kTable) {
    std::set<IpAddr> victims;
    for (const DosAttack& a : res->attacks) victims.insert(a.victim);
    fmt::print(
        "Period {} — backscatter: {} packets from {} victims ({} ICMP errors quote too little to "
        "name one); {} attacks on {} victims (≥ 25 packets, ≥ 60 s, ≥ 30 in a minute)\n",
        q->period.Label(), Thousands(res->backscatter), Thousands(res->victims),
        Thousands(res->unattributed), Thousands(res->attacks.size()), Thousands(victims.size()));
  }
  Table t({"rank", "victim", "region", "start", "end", "minutes", "packets", "peak/min",
           "attacked ports", "attacker ports", "spoofed addrs", "backscatter"});
  for (size_t i = 0; i < res->attacks.size() && i < n; ++i) {
    const DosAttack& a = res->attacks[i];
    std::string ports;
    for (size_t k = 0; k < a.attacked_ports.size() && k < 3; ++k) {
      ports += fmt::format("{}{}", k ? ", " : "", PortKeyToString(a.attacked_ports[k].first));
    }
    if (a.attacked_ports.size() > 3) ports += fmt::format(" +{}", a.attacked_ports.size() - 3);
    std::string kinds;
    for (size_t k = 1; k < std::size(a.by_kind); ++k) {
      if (!a.by_kind[k]) continue;
      kinds += fmt::format("{}{} ×{}", kinds.empty() ? "" : ", ",
                           BackscatterKindName(static_cast<BackscatterKind>(k)),
                           Thousands(a.by_kind[k]));
    }
    t.AddRow({Count(i + 1), Text(a.victim.ToString()), Text(CountryCodeString(a.geo.country)),
              Text(LocalTime(store, a.start_us)), Text(LocalTime(store, a.end_us)),
              Fixed(static_cast<double>(a.end_us - a.start_us) / 60e6, 1), Count(a.packets),
              Count(a.peak_per_minute), Text(ports.empty() ? "-" : ports), Count(a.attacker_ports),
              Count(a.spoofed), Text(kinds)});
  }
  t.Write(std::cout, q->format);
  return 0;
}

int RunPayloads(const Common& c, const std::string& period_text, const std::string& port_text,
                bool templates, size_t n) {
  PortKey port;
  if (!ParsePortKey(port_text, &port)) {
    return Fail(InvalidArgument(fmt::format("port '{}': expected e.g. 5060/udp", port_text)));
  }
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  WarnIfRetained(store, q->period);
  auto res = GroupPayloads(store, q->period, q->sel, port,
                           templates ? PayloadGrouping::kTemplate : PayloadGrouping::kIdentical);
  if (!res.ok()) return Fail(res.status());
  Lang lang = ParseLang(c.lang);
  if (q->format == OutputFormat::kTable) {
    fmt::print(
        "Period {} — {}: {} packets, {} with a payload in {} {} ({} longer than the {} bytes "
        "kept: grouped by what was kept)\n",
        q->period.Label(), KeyName(store, nullptr, Dimension::kPort, port, lang),
        Thousands(res->packets), Thousands(res->with_payload), Thousands(res->groups.size()),
        templates ? (res->groups.size() == 1 ? "template" : "templates")
                  : (res->groups.size() == 1 ? "group of identical payloads"
                                             : "groups of identical payloads"),
        Thousands(res->truncated), kPayloadPrefix);
  }
  Table t({"rank", "digest", "bytes", "variants", "packets", "sources", "addresses", "first",
           "last", "strings"});
  for (size_t i = 0; i < res->groups.size() && i < n; ++i) {
    const PayloadGroup& g = res->groups[i];
    std::string strings = fmt::format("{}", fmt::join(g.strings, " | "));
    if (q->format == OutputFormat::kTable && strings.size() > 100) {
      strings = strings.substr(0, 97) + "...";
    }
    t.AddRow({Count(i + 1), Text(fmt::format("{:016x}", g.digest)), Count(g.length),
              Count(g.variants), Count(g.packets), Count(g.sources), Count(g.destinations),
              Text(LocalTime(store, g.first_us)), Text(LocalTime(store, g.last_us)),
              Text(strings)});
  }
  t.Write(std::cout, q->format);
  return 0;
}

int RunOs(const Common& c, const std::string& period_text, const std::string& port_text,
          const std::string& p0f_path, size_t n) {
  auto port = OptionalPort(port_text);
  if (!port.ok()) return Fail(port.status());
  auto db = P0fDatabase::Load(p0f_path);
  if (!db.ok()) return Fail(db.status());
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  WarnIfRetained(store, q->period);
  auto res = GuessOs(store, q->period, q->sel, *db, *port);
  if (!res.ok()) return Fail(res.status());
  Lang lang = ParseLang(c.lang);
  const bool table = q->format == OutputFormat::kTable;
  if (table) {
    fmt::print(
        "Period {} — {}: {} SYNs from {} sources ({} without a readable fingerprint); p0f "
        "signatures from {} ({} SYN signatures)\n",
        q->period.Label(),
        *port ? KeyName(store, nullptr, Dimension::kPort, **port, lang) : "every port",
        Thousands(res->syns), Thousands(res->sources.size()), Thousands(res->unreadable), p0f_path,
        Thousands(db->syn_signatures().size()));
    Table t({"os", "kind", "sources", "source share", "SYNs", "SYN share"});
    for (const OsShare& s : res->shares) {
      t.AddRow({Text(s.os), Text(s.application ? "tool" : (s.os == "unknown" ? "-" : "os")),
                Count(s.sources), Percent(s.source_share), Count(s.packets),
                Percent(s.packet_share)});
    }
    t.Write(std::cout, q->format);
    fmt::print("\n");
    if (!*port) {
      // Every port: each port's sources by guess, the three largest shares.
      Table pt({"port", "sources", "SYNs", "guesses (share of the port's sources)"});
      for (size_t i = 0; i < res->ports.size() && i < n; ++i) {
        const PortOs& p = res->ports[i];
        std::string guesses;
        for (size_t k = 0; k < p.shares.size() && k < 3; ++k) {
          guesses += fmt::format("{}{} {}", k ? ", " : "", p.shares[k].os,
                                 Percent(p.shares[k].source_share).text);
        }
        pt.AddRow({Text(KeyName(store, nullptr, Dimension::kPort, p.port, lang)), Count(p.sources),
                   Count(p.packets), Text(guesses)});
      }
      pt.Write(std::cout, q->format);
      fmt::print("\n");
    }
  }
  Table t({"rank", "source", "region", "os", "match", "hops", "SYNs", "agreeing"});
  for (size_t i = 0; i < res->sources.size() && i < n; ++i) {
    const SourceOs& s = res->sources[i];
    t.AddRow({Count(i + 1), Text(s.src.ToString()), Text(CountryCodeString(s.geo.country)),
              Text(s.os), Text(s.os == "unknown" ? "-" : (s.fuzzy ? "fuzzy" : "exact")),
              Count(static_cast<uint64_t>(s.distance)), Count(s.syns), Count(s.agreeing)});
  }
  t.Write(std::cout, q->format);
  return 0;
}

struct ReportArgs {
  std::string period;
  std::string format = "html";
  std::string layout;
  std::string out;
  bool totals = false;
};

// `teiten report`: a quarterly (TSUBAME) or monthly (TALOT2) report, Japanese or English.
int RunReport(const Common& c, const ReportArgs& a) {
  auto fmt_r = report::ParseReportFormat(a.format);
  if (!fmt_r.ok()) return Fail(fmt_r.status());
  if (c.lang != "ja" && c.lang != "en") {
    return Fail(InvalidArgument(fmt::format("language '{}': expected ja or en", c.lang)));
  }
  report::ReportOptions o;
  auto period = ParsePeriod(a.period);
  if (!period.ok()) return Fail(period.status());
  o.period = *period;
  o.lang = ParseLang(c.lang);
  o.totals = a.totals;
  if (!a.layout.empty()) {
    if (a.layout != "quarterly" && a.layout != "monthly") {
      return Fail(
          InvalidArgument(fmt::format("layout '{}': expected quarterly or monthly", a.layout)));
    }
    o.layout = a.layout == "monthly" ? report::Layout::kMonthly : report::Layout::kQuarterly;
    o.layout_forced = true;
  }
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  auto sel = ResolveSensors(**store, c.sensors, c.groups);
  if (!sel.ok()) return Fail(sel.status());
  o.sensors = *sel;
  bool ja = o.lang == Lang::kJa;
  if (!c.groups.empty()) {
    o.sensors_label = (ja ? "グループ: " : "group ") + fmt::format("{}", fmt::join(c.groups, ", "));
  } else if (!c.sensors.empty()) {
    o.sensors_label = fmt::format("{}", fmt::join(c.sensors, ", "));
  }
  std::string out = a.out;
  if (out.empty()) {
    const char* ext = *fmt_r == report::ReportFormat::kHtml   ? "html"
                      : *fmt_r == report::ReportFormat::kPdf  ? "pdf"
                      : *fmt_r == report::ReportFormat::kJson ? "json"
                                                              : "md";
    out = fmt::format("teiten-report-{}-{}.{}", o.period.Label(), c.lang, ext);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto data = report::GatherReport(**store, o);
  if (!data.ok()) return Fail(data.status());
  // The networks of the dominant sources, by one lookup of each source's address.
  std::vector<std::pair<IpAddr, uint32_t>> sources;
  for (const auto& ff : data->findings) {
    for (const auto& e : ff.finding.top_sources) sources.emplace_back(e.addr, e.asn);
  }
  const AsnNames names = NameSourceNetworks(cfg, sources);
  data->opts.asn_names = &names;
  Status st = *fmt_r == report::ReportFormat::kJson
                  ? report::WriteReportJson(*data, out)
                  : report::WriteReport(report::ComposeReport(*data), *fmt_r, out);
  if (!st.ok()) return Fail(st);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("{}: {} report for {} ({} sensors, {} packets, {} findings) in {:.2f} s\n", out,
             data->opts.layout == report::Layout::kMonthly ? "monthly" : "quarterly",
             o.period.Label(), data->sensor_ids.size(), Thousands(data->summary.packets),
             data->findings.size(), secs);
  return 0;
}

// `teiten geo`: which databases enrich, their dates, and (for the simulator) the IPv4 ranges.
int RunGeo(const Common& c, const std::string& ranges_out, const std::string& lookup) {
  auto cfg = LoadConfigFor(c, false);
  if (!cfg.ok()) return Fail(cfg.status());
  const Config& conf = *cfg;
  if (conf.country_db.empty() && conf.asn_db.empty()) {
    return Fail(InvalidArgument("no [geo] databases in the config"));
  }
  if (!lookup.empty() && ranges_out.empty()) {
    // One address: one lookup in each database, not the walk.
    auto g = GeoLookup::Open(conf.country_db, conf.asn_db);
    if (!g.ok()) return Fail(g.status());
    auto a = IpAddr::Parse(lookup);
    if (!a) return Fail(InvalidArgument(fmt::format("'{}' is not an address", lookup)));
    GeoInfo info = (*g)->Lookup(*a).info;
    const AsnNames names = NameSourceNetworks(conf, {{*a, info.asn}});
    fmt::print("{} {} {} AS{} {}\n", a->ToString(), CountryCodeString(info.country),
               CountryName(info.country, ParseLang(c.lang)), info.asn, AsnNameIn(&names, info.asn));
    return 0;
  }
  auto geo = OpenGeoFor(conf, true);
  if (!geo.ok()) return Fail(geo.status());
  if (!ranges_out.empty()) {
    FILE* f = std::fopen(ranges_out.c_str(), "w");
    if (!f) return Fail(IoError(ranges_out));
    for (const auto& r : (*geo)->v4_ranges()) {
      if (r.info.country == 0) continue;
      fmt::print(f, "{},{},{},{}\n", IpAddr::V4(r.first).ToString(), IpAddr::V4(r.last).ToString(),
                 CountryCodeString(r.info.country), r.info.asn);
    }
    std::fclose(f);
    return 0;
  }
  Table t({"database", "type", "built", "description", "IPv4 ranges"});
  for (const GeoDbInfo* i : {&(*geo)->country_info(), &(*geo)->asn_info()}) {
    if (i->path.empty()) continue;
    t.AddRow({Text(i->path), Text(i->database_type), Text(i->BuildDate()), Text(i->description),
              Count((*geo)->v4_ranges().size())});
  }
  t.Write(std::cout, OutputFormat::kTable);
  return 0;
}

int RunMerge(const Common& c, bool all, int64_t fold_captures_after) {
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  auto count_files = [&] {
    std::set<std::string> files;  // a part may be named by a sensor's key and a pooled one
    (*store)->ForEachRollup([&](const std::string& f) { files.insert(f); });
    return files.size();
  };
  size_t before = count_files();
  size_t inputs_before = (*store)->manifest().inputs.size();
  uint64_t folded = 0;
  {
    // Small inputs folded into few: sensors' batches (one per collector commit) whatever their
    // age, captures once `fold_captures_after` seconds old (a day by default: until then each
    // can be forgotten alone); with --all whatever their size tiers.
    auto txn = (*store)->Begin();
    if (!txn.ok()) return Fail(txn.status());
    FoldOptions fo;
    fo.batch_min_age_s = 0;
    fo.capture_min_age_s = fold_captures_after;
    fo.all = all;
    if (Status st = (*txn)->FoldInputs(fo, &folded); !st.ok()) return Fail(st);
  }
  MergeOptions mo;
  mo.all = all;
  mo.cold_after_s = 600;
  auto r = (*store)->Merge(mo);
  if (!r.ok()) return Fail(r.status());
  size_t after = count_files();
  Table t({"measure", "value"});
  t.AddRow({Text("rollup files before"), Count(before)});
  t.AddRow({Text("rollup files after"), Count(after)});
  t.AddRow({Text("merged parts written"), Count(r->merges)});
  t.AddRow({Text("inputs before"), Count(inputs_before)});
  t.AddRow({Text("inputs after"), Count((*store)->manifest().inputs.size())});
  t.AddRow({Text("MB read"), Fixed(static_cast<double>(r->bytes_read) / 1e6, 1)});
  t.AddRow({Text("MB written"), Fixed(static_cast<double>(r->bytes_written) / 1e6, 1)});
  t.AddRow({Text("seconds"), Fixed(r->seconds, 2)});
  auto fmt_ok = ParseFormat(c.format);
  t.Write(std::cout, fmt_ok.ok() ? *fmt_ok : OutputFormat::kTable);
  return 0;
}

std::string StorePathFor(const Common& c) {
  if (!c.store_path.empty()) return c.store_path;
  auto cfg = LoadConfigFor(c);
  return cfg.ok() ? cfg->store_path : "";
}

int RunVerify(const Common& c) {
  std::string dir = StorePathFor(c);
  if (dir.empty()) return Fail(InvalidArgument("no store: give --store or --config"));
  auto r = VerifyStore(dir);
  if (!r.ok()) return Fail(r.status());
  for (const auto& w : r->warnings) std::cerr << "teiten: warning: " << w << "\n";
  for (const auto& f : r->faults) std::cerr << "teiten: fault: " << f << "\n";
  Table t({"checked", "count"});
  t.AddRow({Text("days"), Count(r->days)});
  t.AddRow({Text("segments"), Count(r->segments)});
  t.AddRow({Text("blocks"), Count(r->blocks)});
  t.AddRow({Text("rows"), Count(r->rows)});
  t.AddRow({Text("rollup files"), Count(r->rollup_files)});
  t.AddRow({Text("index files"), Count(r->index_files)});
  t.AddRow({Text("faults"), Count(r->faults.size())});
  t.AddRow({Text("warnings"), Count(r->warnings.size())});
  auto fmt_ok = ParseFormat(c.format);
  t.Write(std::cout, fmt_ok.ok() ? *fmt_ok : OutputFormat::kTable);
  if (!r->ok()) {
    std::cerr << "teiten: " << dir << " has faults; `teiten rebuild` makes the rollups and "
              << "indexes again from the segments (a damaged segment's rows are lost)\n";
    return 1;
  }
  return 0;
}

int RunRebuild(const Common& c) {
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  auto t0 = std::chrono::steady_clock::now();
  {
    auto txn = (*store)->Begin();
    if (!txn.ok()) return Fail(txn.status());
    if (Status st = (*txn)->RebuildRollups({}); !st.ok()) return Fail(st);
  }
  {
    auto txn = (*store)->Begin();
    if (!txn.ok()) return Fail(txn.status());
    if (Status st = (*txn)->RebuildIndexes(); !st.ok()) return Fail(st);
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << fmt::format(
      "rebuilt the rollups and source indexes of {} from its segments in "
      "{:.1f} s\n",
      (*store)->dir(), s);
  return 0;
}

int RunForget(const Common& c, const std::string& which) {
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  std::vector<const InputRecord*> match;
  for (const auto& in : (*store)->manifest().inputs) {
    if (in.Holds(which) || in.path == which) match.push_back(&in);
  }
  if (match.empty())
    return Fail(NotFound(fmt::format("no input '{}' in {}", which, (*store)->dir())));
  if (match.size() > 1) {
    return Fail(InvalidArgument(
        fmt::format("'{}' names {} inputs: give the identity (teiten forget --input HASH) of one",
                    which, match.size())));
  }
  InputRecord in = *match[0];
  auto txn = (*store)->Begin();
  if (!txn.ok()) return Fail(txn.status());
  // A capture folded into a larger input is named by its own identity: Forget says why it
  // cannot go alone.
  bool own = in.hash == which || in.path == which || in.file_hash == which;
  std::string hash = own ? in.hash : which;
  if (Status st = (*txn)->Forget(hash); !st.ok()) return Fail(st);
  std::cout << fmt::format("forgot {} ({}, sensor {}): {} packets\n", in.path, in.hash, in.sensor,
                           Thousands(in.kept));
  return 0;
}

int RunRetain(const Common& c, int keep_days, const std::string& before) {
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  int32_t cut;
  if (!before.empty()) {
    auto p = ParsePeriod(before);
    if (!p.ok() || p->days() != 1) {
      return Fail(
          InvalidArgument(fmt::format("--before '{}': expected a day, YYYY-MM-DD", before)));
    }
    cut = p->first_day;
  } else if (keep_days > 0) {
    int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    cut = (*store)->tz().LocalDay(now_us) - keep_days;
  } else {
    return Fail(InvalidArgument("give --keep-days N (N > 0) or --before YYYY-MM-DD"));
  }
  auto txn = (*store)->Begin();
  if (!txn.ok()) return Fail(txn.status());
  uint64_t freed = 0;
  if (Status st = (*txn)->Retain(cut, &freed); !st.ok()) return Fail(st);
  std::cout << fmt::format(
      "dropped the observations of days before {} ({} MB of segments); their rollups and source "
      "index summaries stay\n",
      TimeZone::DayString(cut), Fixed(static_cast<double>(freed) / 1e6, 1).text);
  return 0;
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

int RunCollect(const Common& c) {
  sigset_t stop_signals = BlockStopSignals();
  auto cfg = LoadConfigFor(c);
  if (!cfg.ok()) return Fail(cfg.status());
  if (!cfg->has_collect) {
    return Fail(InvalidArgument(fmt::format("{}: no [collect] section", cfg->path)));
  }
  auto store = Store::Open(cfg->store_path, {.create = true, .timezone = cfg->timezone});
  if (!store.ok()) return Fail(store.status());
  std::unique_ptr<GeoDb> geo;
  if (!cfg->country_db.empty() || !cfg->asn_db.empty()) {
    auto g = OpenGeoFor(*cfg, true);  // long-lived: the range table pays
    if (!g.ok()) return Fail(g.status());
    geo = std::move(*g);
  }
  Collector collector(*cfg, store->get(), geo.get());
  if (Status st = collector.Start(); !st.ok()) return Fail(st);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  collector.Stop();
  return 0;
}

int RunSensorDaemon(const Common& c) {
  sigset_t stop_signals = BlockStopSignals();
  auto cfg = LoadConfigFor(c, false);
  if (!cfg.ok()) return Fail(cfg.status());
  if (!cfg->has_daemon) {
    return Fail(InvalidArgument(fmt::format("{}: no [daemon] section", cfg->path)));
  }
  static std::atomic<bool> stop{false};
  std::thread waiter([stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    stop = true;
  });
  waiter.detach();
  SensorDaemon daemon(*cfg);
  Status st = daemon.Run(&stop);
  return st.ok() ? 0 : Fail(st);
}

std::string Ago(int64_t then, int64_t now) {
  if (then <= 0) return "never";
  int64_t d = std::max<int64_t>(0, now - then);
  if (d < 120) return fmt::format("{} s ago", d);
  if (d < 7200) return fmt::format("{} min ago", d / 60);
  if (d < 172800) return fmt::format("{} h ago", d / 3600);
  return fmt::format("{} days ago", d / 86400);
}

int RunSensors(const Common& c) {
  auto f = ParseFormat(c.format);
  if (!f.ok()) return Fail(f.status());
  Config cfg;
  auto store = OpenStoreFor(c, &cfg);
  if (!store.ok()) return Fail(store.status());
  auto rows = SensorHealth(**store);
  if (!rows.ok()) return Fail(rows.status());
  // Sensors the config names that never delivered anything belong in the list most of all.
  for (const SensorConfig& s : cfg.sensors) {
    bool known = false;
    for (const SensorHealthRow& r : *rows) known |= r.id == s.id;
    if (!known) {
      SensorHealthRow r;
      r.id = s.id;
      r.name = s.name;
      r.group = s.group;
      r.country = s.country;
      r.mode = s.mode == SensorMode::kHost ? "host" : "darknet";
      rows->push_back(std::move(r));
    }
  }
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  Table t({"sensor", "group", "mode", "last contact", "last data", "inputs", "batches", "packets",
           "backlog", "lost"});
  for (const SensorHealthRow& r : *rows) {
    std::string lost;
    for (const auto& [reason, n] : r.lost) {
      if (!lost.empty()) lost += ", ";
      lost += fmt::format("{} {}", reason, Count(n).text);
    }
    std::string backlog = r.backlog_batches < 0
                              ? "-"
                              : fmt::format("{} batches, {} KB", r.backlog_batches,
                                            Count(r.backlog_bytes / 1000).text);
    t.AddRow({Text(r.id), Text(r.group), Text(r.mode), Text(Ago(r.last_contact, now)),
              Text(Ago(r.last_input, now)), Count(r.inputs), Count(r.batches), Count(r.packets),
              Text(backlog), Text(lost.empty() ? "none" : lost)});
  }
  t.Write(std::cout, *f);
  return 0;
}

// `teiten serve`: the dashboard and JSON API until SIGTERM or SIGINT (src/web/server.h).
int RunServe(const Common& c, web::ServeOptions o) {
  sigset_t stop_signals = BlockStopSignals();
  o.store_dir = StorePathFor(c);
  if (o.store_dir.empty()) return Fail(InvalidArgument("no store: give --store or --config"));
  web::WebServer server(o);
  if (Status st = server.Start(); !st.ok()) return Fail(st);
  std::cerr << fmt::format("teiten serve: {} on {}://{}:{}/ ({}{})\n", o.store_dir,
                           o.tls_cert.empty() ? "http" : "https",
                           o.listen.substr(0, o.listen.rfind(':')), server.port(),
                           o.users_file.empty() ? "no logins" : "logins from " + o.users_file,
                           o.public_mode ? ", public aggregates" : "");
  int sig = 0;
  sigwait(&stop_signals, &sig);
  server.Stop();
  return 0;
}

// `teiten serve-user NAME`: adds or changes a user's password, read from standard input (its
// first line), never from the command line where other users could see it.
int RunServeUser(const std::string& users_file, const std::string& name) {
  if (!web::InitCrypto()) return Fail(Internal("libsodium could not be initialised"));
  if (isatty(0)) std::cerr << "password for " << name << ": " << std::flush;
  std::string password;
  std::getline(std::cin, password);
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (Status st = web::SetUserPassword(users_file, name, password); !st.ok()) return Fail(st);
  std::cerr << fmt::format("{}: user {} set\n", users_file, name);
  return 0;
}

// `teiten serve-token LABEL`: a new API token, printed once.
int RunServeToken(const std::string& users_file, const std::string& label) {
  if (!web::InitCrypto()) return Fail(Internal("libsodium could not be initialised"));
  auto t = web::AddToken(users_file, label);
  if (!t.ok()) return Fail(t.status());
  std::cout << *t << "\n";
  std::cerr << fmt::format("{}: token {} added; it is shown only now\n", users_file, label);
  return 0;
}

}  // namespace
}  // namespace teiten

int main(int argc, char** argv) {
  using namespace teiten;
  // `teiten simulate` parses its own flags (src/simulate/simulate_command.h).
  if (argc > 1 && std::string_view(argv[1]) == "simulate") {
    return simulate::RunSimulateCommand(argc - 1, argv + 1);
  }
  CLI::App app{"teiten — Internet fixed-point observation (darknet sensor network)"};
  app.require_subcommand(1);
  Common c;
  auto common = [&](CLI::App* sub, bool query) {
    sub->add_option("--config", c.config_path,
                    "config file (default $TEITEN_CONFIG or ./teiten.toml)");
    sub->add_option("--store", c.store_path, "store directory (overrides the config)");
    sub->add_option("--format", c.format, "table, csv or json")->capture_default_str();
    if (query) {
      sub->add_option("--lang", c.lang, "en or ja")->capture_default_str();
      sub->add_option("--sensor", c.sensors, "count only this sensor (repeatable)");
      sub->add_option("--group", c.groups, "count only sensors of this group (repeatable)");
    }
  };
  std::string sensor_id;
  std::vector<std::string> files;
  auto* ingest = app.add_subcommand("ingest", "read captures into the store");
  common(ingest, false);
  ingest->add_option("--sensor", sensor_id, "the sensor (from the config) that recorded them")
      ->required();
  ingest->add_option("files", files, "pcap/pcapng files, plain, .gz or .zst")->required();

  std::string what, period = "", gran = "day", by_country;
  size_t n = 10;
  auto* top = app.add_subcommand("top", "top ports, countries, ASNs or sensors for a period");
  common(top, true);
  top->add_option("what", what, "ports | countries | asns | sensors | tools")->required();
  std::string top_port, research_path;
  top->add_option("--port", top_port, "tools: only this port's packets, e.g. 23/tcp");
  top->add_option("--research", research_path,
                  "tools: research scanners' networks (default: data/research_scanners.txt)");
  top->add_option("--period", period, "2018Q3, 2018-08, 2018-08-12 or 2018-08-01..2018-08-15")
      ->required();
  top->add_option("-n,--limit", n, "rows")->capture_default_str();

  std::vector<std::string> ports, countries, sensor_series;
  auto* series = app.add_subcommand("series", "time series of packets and distinct sources");
  common(series, true);
  series->add_option("--period", period, "period")->required();
  series->add_option("--granularity", gran, "5min, hour, day, week or month")
      ->capture_default_str();
  series->add_option("--port", ports, "a port, e.g. 445/tcp (repeatable)");
  series->add_option("--country", countries, "a country code or name (repeatable)");
  series->add_option("--sensor-series", sensor_series, "a sensor id (repeatable)");
  series->add_option("--by-country", by_country, "one port's daily packets by source country");
  series->add_option("-n,--limit", n, "countries shown with --by-country")->capture_default_str();

  auto* summary = app.add_subcommand("summary", "totals, per-sensor-per-day averages and shares");
  common(summary, true);
  summary->add_option("--period", period, "period")->required();
  summary->add_option("-n,--limit", n, "rows of the share tables")->capture_default_str();

  std::string addr;
  auto* ip = app.add_subcommand("ip", "everything one source did");
  common(ip, true);
  ip->add_option("address", addr, "IPv4 or IPv6 address")->required();

  std::string port_text;
  uint64_t min_addresses = 0;
  int64_t scan_timeout = kScanTimeoutS;
  auto* scans =
      app.add_subcommand("scans", "scans (Durumeric et al. 2014): per port, or one port's");
  common(scans, true);
  scans->add_option("--period", period, "period")->required();
  scans->add_option("--port", port_text, "one port, e.g. 23/tcp (default: every port)");
  scans->add_option("--min-addresses", min_addresses, "N (default: scaled to the sensors' space)");
  scans->add_option("--timeout", scan_timeout, "inactivity timeout, s")->capture_default_str();
  scans->add_option("-n,--limit", n, "rows")->capture_default_str();

  auto* dos =
      app.add_subcommand("dos", "DoS attacks inferred from backscatter (Moore et al. 2006)");
  common(dos, true);
  dos->add_option("--period", period, "period")->required();
  dos->add_option("-n,--limit", n, "rows")->capture_default_str();

  auto* payloads = app.add_subcommand("payloads", "one port's identical payloads, grouped");
  common(payloads, true);
  payloads->add_option("--period", period, "period")->required();
  payloads->add_option("--port", port_text, "the port, e.g. 5060/udp")->required();
  bool templates = false;
  payloads->add_flag("--templates", templates,
                     "group by template (tokens with digits masked), not identical payload");
  payloads->add_option("-n,--limit", n, "rows")->capture_default_str();

  std::string p0f_path = "/etc/p0f/p0f.fp";
  auto* os = app.add_subcommand("os", "OS guesses for SYN sources from p0f's signatures");
  common(os, true);
  os->add_option("--period", period, "period")->required();
  os->add_option("--port", port_text, "one port, e.g. 23/tcp (default: every port)");
  os->add_option("--p0f", p0f_path, "p0f v3 signature file")->capture_default_str();
  os->add_option("-n,--limit", n, "sources listed")->capture_default_str();

  ReportArgs ra;
  auto* rep = app.add_subcommand("report", "a quarterly or monthly report, Japanese or English");
  rep->add_option("--config", c.config_path,
                  "config file (default $TEITEN_CONFIG or ./teiten.toml)");
  rep->add_option("--store", c.store_path, "store directory (overrides the config)");
  rep->add_option("--period", ra.period, "2018Q3 (quarterly), 2007-08 (monthly) or FROM..TO")
      ->required();
  rep->add_option("--lang", c.lang, "ja or en")->capture_default_str();
  rep->add_option("--format", ra.format, "html, md, pdf or json")->capture_default_str();
  rep->add_option("-o,--output", ra.out, "output file (default teiten-report-PERIOD-LANG.EXT)");
  rep->add_option("--sensor-group,--group", c.groups, "only sensors of this group (repeatable)");
  rep->add_option("--sensor", c.sensors, "only this sensor (repeatable)");
  rep->add_option("--layout", ra.layout, "quarterly or monthly (default: by the period)");
  rep->add_flag("--totals", ra.totals, "daily figures show totals, not per-sensor averages");

  std::string ranges_out, lookup;
  auto* geo = app.add_subcommand("geo", "the geo databases: what they are, lookups, IPv4 ranges");
  common(geo, false);
  geo->add_option("--lang", c.lang, "en or ja");
  geo->add_option("--ranges-csv", ranges_out, "write every IPv4 range as first,last,CC,ASN");
  geo->add_option("--lookup", lookup, "look up one address");

  bool merge_all = false;
  auto* merge = app.add_subcommand(
      "merge", "merge rollup parts now (ingest merges what each commit makes due by itself)");
  common(merge, false);
  merge->add_flag("--all", merge_all,
                  "merge every key's parts as far as the size cap allows, and fold every small "
                  "input whatever its size");
  int64_t fold_after = kFoldCapturesAfterSeconds;
  merge->add_option("--fold-captures-after", fold_after,
                    "fold captures ingested at least this many seconds ago (default a day; a "
                    "folded capture can no longer be forgotten alone; negative: never)");

  auto* verify = app.add_subcommand(
      "verify", "check a whole store: checksums, structure, orphans, rollups against segments");
  common(verify, false);
  auto* rebuild =
      app.add_subcommand("rebuild", "make the rollups and source indexes again from the segments");
  common(rebuild, false);
  std::string forget_input;
  auto* forget = app.add_subcommand("forget", "remove one ingested input and all its counts");
  common(forget, false);
  forget->add_option("--input", forget_input, "the input's identity (hash) or path")->required();

  int keep_days = 0;
  std::string retain_before;
  auto* retain = app.add_subcommand(
      "retain", "drop observations older than N days; rollups and per-IP summaries stay (S3)");
  common(retain, false);
  retain->add_option("--keep-days", keep_days, "keep the observations of the last N days");
  retain->add_option("--before", retain_before, "drop the observations of days before this one");

  // Listed for --help only: main() hands `simulate` to its own parser before this point.
  auto* collect = app.add_subcommand(
      "collect", "the centre: take sensors' batches over TLS and commit them to the store");
  common(collect, false);
  auto* sensor_cmd = app.add_subcommand(
      "sensor", "run at a sensor: capture, spool, and deliver to the collector ([daemon] config)");
  common(sensor_cmd, false);
  auto* sensors_cmd = app.add_subcommand(
      "sensors", "each sensor's last contact, delivered packets, backlog and losses");
  common(sensors_cmd, false);
  web::ServeOptions serve_opts;
  auto* serve = app.add_subcommand("serve", "the web dashboard and JSON API (read-only)");
  common(serve, false);
  serve->add_option("--listen", serve_opts.listen, "HOST:PORT (port 0: any free one)")
      ->capture_default_str();
  serve->add_option("--tls-cert", serve_opts.tls_cert, "PEM certificate (HTTPS)");
  serve->add_option("--tls-key", serve_opts.tls_key, "PEM private key (HTTPS)");
  serve->add_option("--users", serve_opts.users_file, "users file: logins and API tokens");
  serve->add_flag("--public", serve_opts.public_mode,
                  "serve aggregate pages and API without a login (never per-IP data)");
  serve->add_option("--node-modules", serve_opts.node_modules,
                    "where npm ci installed uplot (default ./node_modules)");
  std::string users_file, serve_name;
  auto* serve_user = app.add_subcommand(
      "serve-user", "add a user of teiten serve, or change a password (read from stdin)");
  serve_user->add_option("--users", users_file, "users file")->required();
  serve_user->add_option("name", serve_name, "user name")->required();
  auto* serve_token =
      app.add_subcommand("serve-token", "add an API token for scripts (printed once)");
  serve_token->add_option("--users", users_file, "users file")->required();
  serve_token->add_option("label", serve_name, "what the token is for")->required();
  app.add_subcommand("simulate",
                     "simulate a scenario's darknet traces and ground truth (see simulate --help)")
      ->allow_extras();

  // An unknown command is named (CLI11 alone says only that a subcommand is required).
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      known = known || sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::cerr << "teiten: '" << argv[1] << "' is not a teiten command; the commands are " << names
                << " (teiten COMMAND --help says more)\n";
      return 2;
    }
  }
  CLI11_PARSE(app, argc, argv);
  if (geo->parsed()) return RunGeo(c, ranges_out, lookup);
  if (serve->parsed()) return RunServe(c, serve_opts);
  if (serve_user->parsed()) return RunServeUser(users_file, serve_name);
  if (serve_token->parsed()) return RunServeToken(users_file, serve_name);
  if (merge->parsed()) return RunMerge(c, merge_all, fold_after);
  if (collect->parsed()) return RunCollect(c);
  if (sensor_cmd->parsed()) return RunSensorDaemon(c);
  if (sensors_cmd->parsed()) return RunSensors(c);
  if (verify->parsed()) return RunVerify(c);
  if (rebuild->parsed()) return RunRebuild(c);
  if (forget->parsed()) return RunForget(c, forget_input);
  if (retain->parsed()) return RunRetain(c, keep_days, retain_before);
  if (ingest->parsed()) return RunIngest(c, sensor_id, files);
  if (top->parsed()) return RunTop(c, what, period, n, top_port, research_path);
  if (series->parsed())
    return RunSeries(c, period, gran, ports, countries, sensor_series, by_country, n);
  if (summary->parsed()) return RunSummary(c, period, n);
  if (ip->parsed()) return RunIp(c, addr);
  if (os->parsed()) return RunOs(c, period, port_text, p0f_path, n);
  if (payloads->parsed()) return RunPayloads(c, period, port_text, templates, n);
  if (dos->parsed()) return RunDos(c, period, n);
  if (scans->parsed()) return RunScans(c, period, port_text, n, min_addresses, scan_timeout);
  if (rep->parsed()) {
    if (!rep->count("--lang")) c.lang = "ja";
    return RunReport(c, ra);
  }
  return 0;
}
