// The period queries over the rollups and the source indexes: top, series, summary and ip.
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
#include "analysis/outages.h"
#include "analysis/payloads.h"
#include "analysis/query.h"
#include "analysis/scans.h"
#include "analysis/sensor_health.h"
#include "analysis/tools.h"
#include "cli/cli_common.h"
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
                const std::string& port_text, const std::string& research_path,
                const std::string& country_text) {
  auto port = OptionalPort(port_text);
  if (!port.ok()) return Fail(port.status());
  std::optional<CountryCode> country;
  if (!country_text.empty()) {
    CountryCode cc = FindCountry(country_text);
    if (!cc) return Fail(InvalidArgument(fmt::format("country '{}' is not known", country_text)));
    country = cc;
  }
  auto research = LoadResearch(research_path);
  if (!research.ok()) return Fail(research.status());
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  WarnIfRetained(store, q->period);
  auto res = TopTools(store, q->period, q->sel, *port, &*research, {}, country);
  if (!res.ok()) return Fail(res.status());
  Lang lang = ParseLang(c.lang);
  bool ja = lang == Lang::kJa;
  if (q->format == OutputFormat::kTable) {
    fmt::print(
        "Period {}{} — {} sources, {} packets; a source is tagged when its packets agree "
        "(docs/FINGERPRINTS.md)\n",
        q->period.Label(),
        (*port ? " — " + KeyName(store, nullptr, Dimension::kPort, **port, lang) : "") +
            (country ? " — " + KeyName(store, nullptr, Dimension::kCountry, *country, lang) : ""),
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

// --tag's value: nullopt when not given; an error naming the tags when it is not one.
Result<std::optional<Tag>> TagOption(const std::string& text) {
  if (text.empty()) return std::optional<Tag>{};
  Tag t;
  if (!ParseTag(text, &t)) {
    return InvalidArgument(fmt::format(
        "--tag '{}': expected mirai, zmap, masscan, nmap, sipvicious, backscatter or research",
        text));
  }
  return std::optional<Tag>(t);
}

int RunTop(const Common& c, const std::string& what, const std::string& period_text, size_t n,
           const std::string& port_text, const std::string& research_path,
           const std::string& tag_text, const std::string& country_text) {
  if (what == "tools" || what == "tags") {
    if (!tag_text.empty()) return Fail(InvalidArgument("--tag goes with ports, countries, asns"));
    return RunTopTools(c, period_text, n, port_text, research_path, country_text);
  }
  if (!port_text.empty() || !country_text.empty()) {
    return Fail(InvalidArgument("--port and --country go with `teiten top tools`"));
  }
  if (!research_path.empty() && tag_text.empty()) {
    return Fail(InvalidArgument("--research goes with `teiten top tools` or --tag"));
  }
  auto tag_option = TagOption(tag_text);
  if (!tag_option.ok()) return Fail(tag_option.status());
  const std::optional<Tag> tag = *tag_option;
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
  std::optional<ResearchNetworks> research;
  if (tag) {
    auto r = LoadResearch(research_path);
    if (!r.ok()) return Fail(r.status());
    research = std::move(*r);
  }
  auto res = tag ? TopByTag(store, dim, q->period, q->sel, *tag, &*research, n)
                 : Top(store, dim, q->period, q->sel, n);
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
           tag  ? (ja ? "前期の順位(計算しない)" : "previous rank (not computed)")
           : ja ? fmt::format("前期({})の順位", res->previous.Label())
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
    if (tag) {
      fmt::print(
          "{}\n",
          ja ? fmt::format("タグ {} の送信元のみ(前期の順位は計算しない)", TagName(*tag))
             : fmt::format("Only sources tagged {} (previous ranks not computed)", TagName(*tag)));
    }
  }
  t.Write(std::cout, q->format);
  return 0;
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
  auto entries = LookupSource(**store, *addr);
  if (!entries.ok()) return Fail(entries.status());
  auto h = SourceHistory(**store, *entries);
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
  // Machine formats get every value whole; the table for people is a card whose long lists wrap
  // under their value column and whose days read as runs of consecutive days.
  std::vector<std::pair<std::string, TableCell>> rows;
  rows.push_back({"address", Text(addr->ToString())});
  rows.push_back({"country", Text(KeyName(s, nullptr, Dimension::kCountry, h->geo.country, lang))});
  rows.push_back({"asn", Text(KeyName(s, &names, Dimension::kAsn, h->geo.asn, lang))});
  rows.push_back({"first_seen", Text(LocalTime(s, h->first_us) + " " + s.tz().name())});
  rows.push_back({"last_seen", Text(LocalTime(s, h->last_us) + " " + s.tz().name())});
  rows.push_back({"packets", Count(h->packets)});
  rows.push_back({"days", Count(h->days.size())});
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
  const bool card = *f == OutputFormat::kTable;
  if (card) {
    // Runs of consecutive days: "2018-07-01 – 2018-09-30 ×40,611 (92 days, 357–535 a day)".
    for (auto it = h->days.begin(); it != h->days.end();) {
      auto run_end = it;
      uint64_t total = 0, lo = UINT64_MAX, hi = 0;
      int32_t expect = it->first;
      while (run_end != h->days.end() && run_end->first == expect) {
        total += run_end->second;
        lo = std::min(lo, run_end->second);
        hi = std::max(hi, run_end->second);
        ++run_end;
        ++expect;
      }
      const int32_t n = expect - it->first;
      std::string run =
          n == 1 ? fmt::format("{} ×{}", TimeZone::DayString(it->first), Thousands(total))
                 : fmt::format("{} – {} ×{} ({} days, {}–{} a day)", TimeZone::DayString(it->first),
                               TimeZone::DayString(expect - 1), Thousands(total), n, Thousands(lo),
                               Thousands(hi));
      days += (days.empty() ? "" : "; ") + run;
      it = run_end;
    }
  } else {
    for (auto& [k, v] : h->days) {
      days +=
          fmt::format("{}{} ×{}", days.empty() ? "" : ", ", TimeZone::DayString(k), Thousands(v));
    }
  }
  for (auto& [k, v] : h->ttls)
    ttls += fmt::format("{}{} ×{}", ttls.empty() ? "" : ", ", k, Thousands(v));
  rows.push_back({"ports", Text(ports)});
  rows.push_back({"sensors", Text(sensors)});
  rows.push_back({"days_seen", Text(days)});
  rows.push_back({"ttl", Text(ttls)});
  // Tool tags from the source's own rows (the blocks its index entries name).
  if (auto tags = TagSource(s, *entries, &ResearchNetworks::Shipped(), kIpTagBlocks, kIpTagRows);
      tags.ok()) {
    std::string verdict;
    for (size_t i = 0; i < kTagCount; ++i) {
      if (tags->Has(static_cast<Tag>(i))) {
        verdict += fmt::format("{}{}", verdict.empty() ? "" : ", ", TagName(static_cast<Tag>(i)));
      }
    }
    if (tags->research) verdict += fmt::format(" ({})", tags->research->organisation);
    rows.push_back({"tags", Text(verdict.empty() ? "-" : verdict)});
    std::string evidence = TagEvidence(*tags);
    if (tags->blocks_read < tags->blocks_named) {
      evidence += fmt::format(" (its rows in the latest {} of the {} stored blocks holding them)",
                              Thousands(tags->blocks_read), Thousands(tags->blocks_named));
    }
    rows.push_back({"tag_evidence", Text(evidence)});
  } else {
    std::cerr << "teiten: tags: " << tags.status().ToString() << "\n";
  }
  if (!card) {
    Table t({"field", "value"});
    for (auto& [k, v] : rows) t.AddRow({Text(k), std::move(v)});
    t.Write(std::cout, *f);
    return 0;
  }
  size_t label_w = 0;
  for (const auto& [k, v] : rows) label_w = std::max(label_w, k.size());
  const size_t width = 100 - label_w - 2;
  for (const auto& [k, v] : rows) {
    // Wrapped after ", " or "; " (not inside "15,066") so that no line of a value is wider
    // than `width` columns.
    std::vector<std::string> lines{""};
    size_t at = 0;
    while (at < v.text.size()) {
      size_t sep = at;
      while ((sep = v.text.find_first_of(",;", sep)) != std::string::npos &&
             (sep + 1 >= v.text.size() || v.text[sep + 1] != ' ')) {
        ++sep;
      }
      size_t end = sep == std::string::npos ? v.text.size() : sep + 1;
      std::string piece = v.text.substr(at, end - at);
      if (!lines.back().empty() && DisplayWidth(lines.back() + piece) > width) {
        lines.push_back("");
        if (!piece.empty() && piece[0] == ' ') piece.erase(0, 1);
      }
      lines.back() += piece;
      at = end;
    }
    for (size_t i = 0; i < lines.size(); ++i) {
      fmt::print("{:<{}}  {}\n", i == 0 ? k : "", label_w, lines[i]);
    }
  }
  return 0;
}

// `summary --tag T`: the totals and share tables over the sources tagged T only (two row scans,
// one per table). The per-sensor-day averages come from the rollups, which hold no tags, so they
// are left out rather than shown for all sources.
int RunTaggedSummary(const Common& c, const std::string& period_text, size_t n,
                     const std::string& tag_text, const std::string& research_path) {
  auto tag_option = TagOption(tag_text);
  if (!tag_option.ok()) return Fail(tag_option.status());
  const Tag tag = **tag_option;  // the caller runs this only with --tag given
  auto research = LoadResearch(research_path);
  if (!research.ok()) return Fail(research.status());
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  const OutputFormat f = q->format;
  auto ports = TopByTag(store, Dimension::kPort, q->period, q->sel, tag, &*research, n);
  if (!ports.ok()) return Fail(ports.status());
  auto countries = TopByTag(store, Dimension::kCountry, q->period, q->sel, tag, &*research, n);
  if (!countries.ok()) return Fail(countries.status());
  Lang lang = ParseLang(c.lang);
  bool ja = lang == Lang::kJa;
  Table totals({"measure", "value"});
  totals.AddRow({Text("period"), Text(q->period.Label())});
  totals.AddRow({Text("tag"), Text(TagName(tag))});
  totals.AddRow({Text("packets"), Count(ports->total_packets)});
  totals.AddRow({Text("sources"), Count(ports->total_sources)});
  totals.AddRow({Text("packets_per_source"),
                 Fixed(ports->total_sources ? static_cast<double>(ports->total_packets) /
                                                  static_cast<double>(ports->total_sources)
                                            : 0,
                       2)});
  totals.Write(std::cout, f);
  if (f != OutputFormat::kTable) return 0;
  for (const TopResult* r : {&*ports, &*countries}) {
    Dimension dim = r == &*ports ? Dimension::kPort : Dimension::kCountry;
    fmt::print("\n");
    Table t({ja ? "順位" : "rank",
             dim == Dimension::kPort ? (ja ? "宛先ポート番号" : "port")
                                     : (ja ? "送信元地域" : "region"),
             ja ? "パケット数" : "packets", ja ? "パケット割合" : "packet share",
             ja ? "送信元数" : "sources", ja ? "送信元割合" : "source share"});
    for (const RankRow& row : r->rows) {
      double ss = r->total_sources
                      ? static_cast<double>(row.sources) / static_cast<double>(r->total_sources)
                      : 0;
      t.AddRow({Count(static_cast<uint64_t>(row.rank)),
                Text(KeyName(store, nullptr, dim, row.key, lang)), Count(row.packets),
                Percent(row.share), Count(row.sources), Percent(ss)});
    }
    t.Write(std::cout, f);
  }
  return 0;
}

int RunSummary(const Common& c, const std::string& period_text, size_t n,
               const std::string& tag_text, const std::string& research_path) {
  if (!tag_text.empty()) return RunTaggedSummary(c, period_text, n, tag_text, research_path);
  if (!research_path.empty()) return Fail(InvalidArgument("--research goes with --tag"));
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
              size_t n, const std::string& tag_text) {
  auto g = ParseGranularity(gran);
  if (!g.ok()) return Fail(g.status());
  auto tag_option = TagOption(tag_text);
  if (!tag_option.ok()) return Fail(tag_option.status());
  const std::optional<Tag> tag = *tag_option;
  if (tag) {
    if (*g != Granularity::kDay) return Fail(InvalidArgument("--tag: series are daily"));
    if (!by_country.empty() || !sensor_series.empty()) {
      return Fail(InvalidArgument("--tag goes with --port, --country or all traffic"));
    }
  }
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
    if (tag) {
      auto research = LoadResearch("");
      if (!research.ok()) return Fail(research.status());
      res = SeriesByTag(store, dim, keys, q->period, q->sel, *tag, &*research);
    } else {
      res = Series(store, dim, keys, q->period, *g, q->sel);
    }
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

int RunOutages(const Common& c, const std::string& period_text, const std::string& by,
               const OutageRules& rules) {
  auto by_dim = ParseOutageDimension(by);
  if (!by_dim.ok()) return Fail(InvalidArgument("--by " + by_dim.status().message()));
  const Dimension dim = *by_dim;
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  auto res = FindOutages(store, dim, q->period, q->sel, rules);
  if (!res.ok()) return Fail(res.status());
  const Lang lang = ParseLang(c.lang);
  const bool ja = lang == Lang::kJa;
  AsnNames names;
  if (dim == Dimension::kAsn) {
    if (auto geo = OpenGeoQuietly(q->cfg)) {
      for (const Outage& o : res->outages) {
        names[static_cast<uint32_t>(o.key)] = geo->AsnName(static_cast<uint32_t>(o.key));
      }
    }
  }
  if (q->format == OutputFormat::kTable) {
    const char* what = dim == Dimension::kAsn ? (ja ? "AS" : "ASNs") : (ja ? "地域" : "regions");
    if (ja) {
      fmt::print(
          "期間 {} — {}{}件のうち{}件で停止の兆候（1日の送信元数が直前{}日の中央値の{:.0f}%以下、"
          "中央値が{:.0f}以上、{:.0f}σ以上の減少）\n",
          q->period.Label(), what, Thousands(res->keys_checked), Thousands(res->outages.size()),
          rules.lookback_days, rules.fraction * 100, rules.min_baseline, rules.sigmas);
    } else {
      fmt::print(
          "Period {} — {} outages among {} {} (distinct sources a day at most {:.0f}% of the "
          "median of the {} days before, a median of at least {:.0f}, a drop of at least {:.0f} "
          "σ)\n",
          q->period.Label(), Thousands(res->outages.size()), Thousands(res->keys_checked), what,
          rules.fraction * 100, rules.lookback_days, rules.min_baseline, rules.sigmas);
    }
  }
  Table t({ja ? "開始" : "start", ja ? "終了" : "end", ja ? "日数" : "days",
           dim == Dimension::kAsn ? "ASN" : (ja ? "地域" : "region"),
           ja ? "平常時の送信元数/日" : "sources/day before",
           ja ? "停止中の送信元数/日" : "sources/day during", ja ? "最少" : "lowest",
           ja ? "深さ" : "depth", ja ? "平常時のパケット数/日" : "packets/day before",
           ja ? "停止中のパケット数/日" : "packets/day during"});
  for (const Outage& o : res->outages) {
    std::string end = TimeZone::DayString(o.last_day);
    if (o.ongoing) end += ja ? "（継続中）" : " (ongoing)";
    t.AddRow({Text(TimeZone::DayString(o.first_day)), Text(end),
              Count(static_cast<uint64_t>(o.last_day - o.first_day + 1)),
              Text(KeyName(store, &names, dim, o.key, lang)), Fixed(o.baseline, 1),
              Fixed(o.sources, 1), Fixed(o.lowest, 0), Percent(o.depth), Fixed(o.packets_before, 0),
              Fixed(o.packets, 1)});
  }
  t.Write(std::cout, q->format);
  return 0;
}

}  // namespace

void AddQueryCommands(Commands& cmds) {
  Common& c = cmds.common();
  struct Args {
    std::string what, period, gran = "day", by_country, series_tag;
    size_t n = 10;
    std::string top_port, research_path, top_tag, top_country, summary_tag, summary_research;
    std::vector<std::string> ports, countries, sensor_series;
    std::string addr;
  };
  auto a = std::make_shared<Args>();
  auto* top = cmds.Add("top", "top ports, countries, ASNs or sensors for a period", true);
  top->add_option("what", a->what, "ports | countries | asns | sensors | tools")->required();
  top->add_option("--port", a->top_port, "tools: only this port's packets, e.g. 23/tcp");
  top->add_option("--country", a->top_country, "tools: only sources from this region, e.g. CN");
  top->add_option("--tag", a->top_tag,
                  "ports/countries/asns: only sources tagged so, e.g. mirai (see top tools)");
  top->add_option("--research", a->research_path,
                  "tools: research scanners' networks (default: data/research_scanners.txt)");
  top->add_option("--period", a->period, "2018Q3, 2018-08, 2018-08-12 or 2018-08-01..2018-08-15")
      ->required();
  top->add_option("-n,--limit", a->n, "rows")->capture_default_str();
  cmds.OnParsed(top, [&c, a] {
    return RunTop(c, a->what, a->period, a->n, a->top_port, a->research_path, a->top_tag,
                  a->top_country);
  });

  auto* series = cmds.Add("series", "time series of packets and distinct sources", true);
  series->add_option("--period", a->period, "period")->required();
  series->add_option("--granularity", a->gran, "5min, hour, day, week or month")
      ->capture_default_str();
  series->add_option("--port", a->ports, "a port, e.g. 445/tcp (repeatable)");
  series->add_option("--country", a->countries, "a country code or name (repeatable)");
  series->add_option("--sensor-series", a->sensor_series, "a sensor id (repeatable)");
  series->add_option("--by-country", a->by_country, "one port's daily packets by source country");
  series->add_option("--tag", a->series_tag,
                     "only sources tagged so over the period, e.g. mirai (daily; see top tools)");
  series->add_option("-n,--limit", a->n, "countries shown with --by-country")
      ->capture_default_str();
  cmds.OnParsed(series, [&c, a] {
    return RunSeries(c, a->period, a->gran, a->ports, a->countries, a->sensor_series, a->by_country,
                     a->n, a->series_tag);
  });

  auto* summary = cmds.Add("summary", "totals, per-sensor-per-day averages and shares", true);
  summary->add_option("--period", a->period, "period")->required();
  summary->add_option("-n,--limit", a->n, "rows of the share tables")->capture_default_str();
  summary->add_option("--tag", a->summary_tag, "only sources tagged so, e.g. mirai");
  summary->add_option("--research", a->summary_research,
                      "with --tag: research scanners' networks (default: shipped list)");
  cmds.OnParsed(summary, [&c, a] {
    return RunSummary(c, a->period, a->n, a->summary_tag, a->summary_research);
  });

  auto* ip = cmds.Add("ip", "everything one source did", true);
  ip->add_option("address", a->addr, "IPv4 or IPv6 address")->required();
  cmds.OnParsed(ip, [&c, a] { return RunIp(c, a->addr); });
  auto outage_by = std::make_shared<std::string>("country");
  auto rules = std::make_shared<OutageRules>();
  auto* outages =
      cmds.Add("outages",
               "countries or ASNs whose distinct sources fell far below their own baseline", true);
  outages
      ->add_option("--period", a->period, "2018Q3, 2018-08, 2018-08-12 or 2018-08-01..2018-08-15")
      ->required();
  outages->add_option("--by", *outage_by, "country or asn")->capture_default_str();
  outages->add_option("--lookback", rules->lookback_days, "days of the baseline (median)")
      ->capture_default_str()
      ->check(CLI::Range(1, 366));
  outages
      ->add_option("--fraction", rules->fraction,
                   "an outage day has at most this share of the baseline's sources")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  outages
      ->add_option("--min-sources", rules->min_baseline,
                   "smallest baseline (sources a day) a key must have to be judged")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1e9));
  outages->add_option("--sigmas", rules->sigmas, "smallest drop in robust standard deviations")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  cmds.OnParsed(outages,
                [&c, a, outage_by, rules] { return RunOutages(c, a->period, *outage_by, *rules); });
}

}  // namespace teiten
