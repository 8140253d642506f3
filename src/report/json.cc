// `teiten report --format json` (issue 14): the report's data for machines (the API and alert
// feeds of issue 13). docs/REPORT_JSON.md describes every field; "version" changes only when a
// field changes meaning or goes away (new fields may be added within a version).
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/time_zone.h"
#include "report/compose.h"
#include "report/report.h"
#include "report/words.h"

namespace teiten::report {
namespace {

using nlohmann::json;

json Day(int32_t d) {
  return d == kNoDay ? json(nullptr) : json(TimeZone::DayString(d));
}

json PeriodJson(const Period& p) {
  return {{"label", p.Label()},
          {"first_day", TimeZone::DayString(p.first_day)},
          {"last_day", TimeZone::DayString(p.end_day - 1)},
          {"days", p.days()}};
}

// Previous ranks: a number, or what the query.h marker means.
json PrevRank(int r) {
  if (r > 0) return r;
  if (r == kRankOutOfTop) return "out-of-top";
  if (r == kRankNew) return "new";
  return "no-data";
}

json Key(Dimension dim, uint64_t key) {
  if (dim == Dimension::kPort) return PortKeyToString(static_cast<PortKey>(key));
  return CountryCodeString(static_cast<CountryCode>(key));
}

json Rows(Dimension dim, const std::vector<RankRow>& rows) {
  json out = json::array();
  for (const RankRow& r : rows) {
    out.push_back({{"rank", r.rank},
                   {"key", Key(dim, r.key)},
                   {"packets", r.packets},
                   {"sources", r.sources},
                   {"share", r.share},
                   {"previous_rank", PrevRank(r.prev_rank)}});
  }
  return out;
}

json Top(Dimension dim, const TopResult& t) {
  return {{"period", PeriodJson(t.period)},
          {"previous", PeriodJson(t.previous)},
          {"total_packets", t.total_packets},
          {"total_sources", t.total_sources},
          {"rows", Rows(dim, t.rows)}};
}

json Summary(const SummaryResult& s) {
  return {{"period", PeriodJson(s.period)},
          {"packets", s.packets},
          {"sources", s.sources},
          {"sensors", s.sensors},
          {"days", s.days},
          {"sensor_days", s.sensor_days},
          {"packets_per_sensor_day", s.packets_per_sensor_day},
          {"sources_per_sensor_day", s.sources_per_sensor_day},
          {"packets_per_source", s.packets_per_source}};
}

json Daily(const DailySet& d) {
  json days = json::array();
  for (int32_t x : d.days) days.push_back(TimeZone::DayString(x));
  json series = json::array();
  for (size_t i = 0; i < d.names.size(); ++i) {
    json one = {{"name", d.names[i]}};
    if (i < d.keys.size()) one["key"] = d.keys[i] == kOtherKey ? json("other") : json(d.keys[i]);
    if (i < d.packets.size()) one["packets"] = d.packets[i];
    if (i < d.sources.size()) one["sources"] = d.sources[i];
    series.push_back(std::move(one));
  }
  return {{"days", std::move(days)}, {"series", std::move(series)}};
}

json Fact(const FindingFact& x) {
  return {{"kind", FindingKindName(x.kind)},
          {"first_day", Day(x.first_day)},
          {"last_day", Day(x.last_day)},
          {"packets_before", x.packets_before},
          {"packets_after", x.packets_after},
          {"sources_before", x.sources_before},
          {"sources_after", x.sources_after},
          {"ratio", x.ratio},
          {"peak_day", Day(x.peak_day)},
          {"peak_packets", x.peak_packets},
          {"peak_sources", x.peak_sources},
          {"slope", x.slope},
          {"trend_z", x.trend_z},
          {"source_slope", x.source_slope},
          {"packet_slope", x.packet_slope},
          {"rank", x.rank},
          {"previous_rank", x.kind == FindingKind::kTopEntry || x.kind == FindingKind::kRegionEntry
                                ? PrevRank(x.prev_rank)
                                : json(nullptr)},
          {"score", x.score},
          {"level_shift", x.level_shift},
          {"on_packets", x.on_packets},
          {"from_zero", x.from_zero}};
}

json Source(const TimeZone& tz, const SourceEvidence& e) {
  json ports = json::array();
  for (const ProbedPort& p : e.other_ports) {
    ports.push_back({{"port", PortKeyToString(p.port)}, {"packets", p.packets}});
  }
  return {{"address", e.addr.ToString()},
          {"packets", e.packets},
          {"error", e.error},
          {"share", e.share},
          {"country", CountryCodeString(e.country)},
          {"asn", e.asn},
          {"first_seen_day", TimeZone::DayString(tz.LocalDay(e.first_seen_us))},
          {"last_seen_day", TimeZone::DayString(tz.LocalDay(e.last_seen_us))},
          {"total_packets", e.total_packets},
          {"days_seen", e.days_seen},
          {"sensors_seen", e.sensors_seen},
          {"sensors_seen_all", e.sensors_seen_all},
          {"other_ports", std::move(ports)},
          {"tags", e.tags}};
}

json FindingJson(const ReportData& d, size_t i, const Composer& ja, const Composer& en) {
  const Finding& f = d.findings[i].finding;
  json related = json::array();
  for (PortKey k : f.related_ports) related.push_back(PortKeyToString(k));
  json facts = json::array();
  for (const FindingFact& x : f.facts) facts.push_back(Fact(x));
  json regions = json::array();
  for (const RegionCount& r : f.top_regions) {
    regions.push_back(
        {{"country", CountryCodeString(r.country)}, {"packets", r.packets}, {"share", r.share}});
  }
  json sources = json::array();
  for (const SourceEvidence& e : f.top_sources) sources.push_back(Source(d.tz, e));
  auto text = [&](const Composer& c) {
    return json{{"overview", FindingOverviewSentence(c, i)},
                {"paragraphs", FindingParagraphs(c, i)}};
  };
  return {
      {"rank", f.rank},
      {"kind", FindingKindName(f.kind)},
      {"port", f.has_port ? json(PortKeyToString(f.port)) : json(nullptr)},
      {"related_ports", std::move(related)},
      {"country", f.has_port ? json(nullptr) : json(CountryCodeString(f.country))},
      {"first_day", Day(f.first_day)},
      {"last_day", Day(f.last_day)},
      {"packets_before", f.packets_before},
      {"packets_after", f.packets_after},
      {"sources_before", f.sources_before},
      {"sources_after", f.sources_after},
      {"ratio", f.ratio},
      {"score", f.score},
      {"facts", std::move(facts)},
      {"top_regions", std::move(regions)},
      {"top_sources", std::move(sources)},
      {"rise_region", f.rise_region != 0 ? json(CountryCodeString(f.rise_region)) : json(nullptr)},
      {"rise_region_share", f.rise_region_share},
      {"tags", f.tags},
      {"tools",
       [&] {
         json t = json::array();
         for (const FindingTool& x : f.tools) {
           t.push_back({{"tag", x.tag}, {"sources", x.sources}, {"source_share", x.source_share}});
         }
         return t;
       }()},
      {"tool_sources", f.tool_sources},
      {"tool_first_day",
       f.tool_sources ? json(TimeZone::DayString(f.tool_first_day)) : json(nullptr)},
      {"tool_last_day",
       f.tool_sources ? json(TimeZone::DayString(f.tool_last_day)) : json(nullptr)},
      {"payloads", f.payloads},
      {"os", f.os},
      {"figure", Daily(d.findings[i].by_region)},
      {"text", {{"ja", text(ja)}, {"en", text(en)}}}};
}

json Tables(const Document& doc) {
  json out = json::array();
  for (const Block& b : doc.blocks) {
    if (b.kind != Block::Kind::kTable) continue;
    out.push_back({{"label", b.table.label},
                   {"caption", b.table.caption},
                   {"header", b.table.header},
                   {"rows", b.table.rows},
                   {"note", b.table.note}});
  }
  return out;
}

json Paragraphs(const Document& doc) {
  json out = json::array();
  for (const Block& b : doc.blocks) {
    if (b.kind == Block::Kind::kParagraph || b.kind == Block::Kind::kStrong) out.push_back(b.text);
  }
  return out;
}

json ToolRows(const std::vector<ToolRow>& rows) {
  json out = json::array();
  for (const ToolRow& r : rows) {
    out.push_back({{"tag", TagName(r.tag)},
                   {"sources", r.sources},
                   {"source_share", r.source_share},
                   {"packets", r.packets},
                   {"packet_share", r.packet_share}});
  }
  return out;
}

json Tools(const ToolsResult& t) {
  json ports = json::object();
  for (const auto& [k, rows] : t.by_port) {
    ports[PortKeyToString(k)] = {{"sources", t.port_sources.count(k) ? t.port_sources.at(k) : 0},
                                 {"tags", ToolRows(rows)}};
  }
  return {{"sources", t.sources},
          {"packets", t.packets},
          {"tags", ToolRows(t.rows)},
          {"top_ports", std::move(ports)}};
}

json Dos(const DosResult& r) {
  json attacks = json::array();
  for (const DosAttack& a : r.attacks) {
    json ports = json::array();
    for (const auto& [k, n] : a.attacked_ports)
      ports.push_back({{"port", PortKeyToString(k)}, {"packets", n}});
    attacks.push_back(
        {{"victim", a.victim.ToString()},
         {"country", a.geo.country ? json(CountryCodeString(a.geo.country)) : json(nullptr)},
         {"start_us", a.start_us},
         {"end_us", a.end_us},
         {"packets", a.packets},
         {"peak_per_minute", a.peak_per_minute},
         {"spoofed", a.spoofed},
         {"attacker_ports", a.attacker_ports},
         {"attacked_ports", std::move(ports)}});
  }
  return {{"backscatter", r.backscatter},
          {"unattributed", r.unattributed},
          {"victims", r.victims},
          {"attacks", std::move(attacks)}};
}

}  // namespace

std::string ReportJson(const ReportData& data) {
  // Both languages' sentences, whatever --lang says (the data are the same; only the words
  // differ). Region and port names in DailySet labels stay in the gathered language.
  ReportData ja_data = data, en_data = data;
  ja_data.opts.lang = Lang::kJa;
  en_data.opts.lang = Lang::kEn;
  Composer ja(ja_data), en(en_data);
  for (size_t i = 0; i < data.findings.size(); ++i) {
    // The section numbers the composed documents give them (compose.cc: "2.N").
    ja.finding_sections.push_back(fmt::format("2.{}", i + 1));
    en.finding_sections.push_back(fmt::format("2.{}", i + 1));
  }
  Document ja_doc = ComposeReport(ja_data), en_doc = ComposeReport(en_data);

  json sensors = json::object();
  sensors["ids"] = data.sensor_ids;
  sensors["groups"] = data.groups;
  sensors["selection"] = data.opts.sensors_label;
  sensors["selected"] = !data.opts.sensors.sensors.empty();
  sensors["active_per_day"] = data.active_sensors;

  json findings = json::array();
  for (size_t i = 0; i < data.findings.size(); ++i)
    findings.push_back(FindingJson(data, i, ja, en));

  json months = json::array();
  for (const MonthStats& m : data.months) months.push_back(Summary(m.summary));

  json j = {
      {"version", 1},
      {"generator", "teiten"},
      {"period", PeriodJson(data.opts.period)},
      {"previous", data.has_previous ? PeriodJson(data.previous) : json(nullptr)},
      {"layout", data.opts.layout == Layout::kMonthly ? "monthly" : "quarterly"},
      {"lang", data.opts.lang == Lang::kJa ? "ja" : "en"},
      {"timezone", data.timezone},
      {"figures_are", data.opts.totals ? "totals" : "per-sensor averages"},
      {"sensors", std::move(sensors)},
      {"summary", Summary(data.summary)},
      {"previous_summary", data.has_previous ? Summary(data.prev_summary) : json(nullptr)},
      {"top_ports", Top(Dimension::kPort, data.ports)},
      {"top_countries", Top(Dimension::kCountry, data.countries)},
      {"series",
       {{"ports", Daily(data.port_days)},
        {"countries", Daily(data.country_days)},
        {"total", Daily(data.total_days)}}},
      {"months", std::move(months)},
      {"findings", std::move(findings)},
      {"tools", data.tools_skipped ? json(nullptr) : Tools(data.tools)},
      {"dos", data.dos_skipped ? json(nullptr) : Dos(data.dos)},
      {"document",
       {{"ja",
         {{"title", ja_doc.title}, {"tables", Tables(ja_doc)}, {"paragraphs", Paragraphs(ja_doc)}}},
        {"en",
         {{"title", en_doc.title},
          {"tables", Tables(en_doc)},
          {"paragraphs", Paragraphs(en_doc)}}}}},
      {"geo_databases", data.geo_dbs},
  };
  return j.dump(2) + "\n";
}

}  // namespace teiten::report
