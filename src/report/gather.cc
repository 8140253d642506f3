// GatherReport: every query a report needs, made once, so that composing never touches the store.
#include <algorithm>
#include <set>

#include "common/time_zone.h"
#include "report/compose.h"
#include "report/report.h"

namespace teiten::report {
namespace {

constexpr size_t kTopN = 10;
constexpr size_t kFigureN = 5;

DailySet ToDaily(const SeriesResult& s, const std::vector<std::string>& names) {
  DailySet d;
  d.names = names;
  d.keys = s.keys;
  size_t n = names.size();
  d.packets.assign(n, {});
  d.sources.assign(n, {});
  for (const auto& pt : s.points) {
    d.days.push_back(0);  // numbered by NumberDays
    for (size_t i = 0; i < n && i < pt.packets.size(); ++i) {
      d.packets[i].push_back(pt.packets[i]);
      d.sources[i].push_back(i < pt.sources.size() ? pt.sources[i] : 0);
    }
  }
  return d;
}

// Series results carry local day labels; the day numbers are consecutive from the period start.
void NumberDays(const Period& p, DailySet* d) {
  for (size_t i = 0; i < d->days.size(); ++i) d->days[i] = p.first_day + static_cast<int32_t>(i);
}

Result<DailySet> DailyFor(const Store& store, Dimension dim, const std::vector<uint64_t>& keys,
                          const std::vector<std::string>& names, const Period& p,
                          const SensorSelection& sel) {
  ASSIGN_OR_RETURN(SeriesResult s, Series(store, dim, keys, p, Granularity::kDay, sel));
  DailySet d = ToDaily(s, names);
  NumberDays(p, &d);
  return d;
}

std::string KeyLabel(Dimension dim, uint64_t key, Lang lang) {
  if (dim == Dimension::kPort) return PortKeyToString(static_cast<PortKey>(key));
  return CountryName(static_cast<CountryCode>(key), lang);
}

}  // namespace

Result<ReportFormat> ParseReportFormat(const std::string& s) {
  if (s == "html") return ReportFormat::kHtml;
  if (s == "md" || s == "markdown") return ReportFormat::kMarkdown;
  if (s == "pdf") return ReportFormat::kPdf;
  if (s == "json") return ReportFormat::kJson;
  return InvalidArgument("format '" + s + "': expected html, md, pdf or json");
}

Result<ReportData> GatherReport(const Store& store, const ReportOptions& opts) {
  ReportData r;
  r.opts = opts;
  if (!opts.layout_forced) {
    r.opts.layout =
        opts.period.kind == Period::Kind::kMonth ? Layout::kMonthly : Layout::kQuarterly;
  }
  const Period& p = opts.period;
  const SensorSelection& sel = opts.sensors;
  Lang lang = opts.lang;
  r.previous = p.Previous();
  r.timezone = store.tz().name();
  r.tz = store.tz();
  const Manifest& m = store.manifest();
  r.store_first_day = m.days.empty() ? p.first_day : m.days.begin()->first;

  // Which sensors counted, and their groups.
  ASSIGN_OR_RETURN(TopResult sensors, Top(store, Dimension::kSensor, p, sel, 1000));
  std::set<std::string> groups;
  std::vector<uint64_t> sensor_keys;
  for (const auto& row : sensors.rows) {
    if (row.key < m.sensors.size()) {
      r.sensor_ids.push_back(m.sensors[row.key].id);
      if (!m.sensors[row.key].group.empty()) groups.insert(m.sensors[row.key].group);
    }
    sensor_keys.push_back(row.key);
  }
  std::sort(r.sensor_ids.begin(), r.sensor_ids.end());
  r.groups.assign(groups.begin(), groups.end());
  if (sensors.rows.empty()) {
    return NotFound("the store holds no packets for " + p.Label() +
                    (sel.sensors.empty() ? "" : " from the selected sensors"));
  }

  ASSIGN_OR_RETURN(r.summary, Summary(store, p, sel, kTopN));
  ASSIGN_OR_RETURN(r.ports, Top(store, Dimension::kPort, p, sel, kTopN));
  ASSIGN_OR_RETURN(r.countries, Top(store, Dimension::kCountry, p, sel, kTopN));
  auto prev = Summary(store, r.previous, sel, kTopN);
  r.has_previous = prev.ok() && prev->packets > 0;
  if (r.has_previous) r.prev_summary = std::move(*prev);

  // Sensors with data per day: the divisor of per-sensor averages.
  {
    ASSIGN_OR_RETURN(SeriesResult s,
                     Series(store, Dimension::kSensor, sensor_keys, p, Granularity::kDay, sel));
    for (const auto& pt : s.points) {
      int active = 0;
      for (uint64_t v : pt.packets) active += v > 0;
      r.active_sensors.push_back(active);
    }
  }

  std::vector<uint64_t> keys;
  std::vector<std::string> names;
  for (size_t i = 0; i < r.ports.rows.size() && i < kFigureN; ++i) {
    keys.push_back(r.ports.rows[i].key);
    names.push_back(KeyLabel(Dimension::kPort, r.ports.rows[i].key, lang));
  }
  ASSIGN_OR_RETURN(r.port_days, DailyFor(store, Dimension::kPort, keys, names, p, sel));
  keys.clear();
  names.clear();
  for (size_t i = 0; i < r.countries.rows.size() && i < kFigureN; ++i) {
    keys.push_back(r.countries.rows[i].key);
    names.push_back(KeyLabel(Dimension::kCountry, r.countries.rows[i].key, lang));
  }
  ASSIGN_OR_RETURN(r.country_days, DailyFor(store, Dimension::kCountry, keys, names, p, sel));
  ASSIGN_OR_RETURN(r.total_days, DailyFor(store, Dimension::kPort, {},
                                          {lang == Lang::kJa ? "全体" : "all"}, p, sel));

  // The six months ending with the period's last month (TALOT2 §1 and §3).
  {
    int y;
    unsigned mo, d;
    TimeZone::CivilFromDays(p.end_day - 1, &y, &mo, &d);
    std::vector<Period> months;
    Period cur = MonthPeriod(y, static_cast<int>(mo));
    for (int i = 0; i < 6; ++i) {
      months.push_back(cur);
      cur = cur.Previous();
    }
    std::reverse(months.begin(), months.end());
    for (const Period& mp : months) {
      if (mp.end_day <= r.store_first_day) continue;
      ASSIGN_OR_RETURN(SummaryResult s, Summary(store, mp, sel, 50));
      if (s.packets == 0) continue;
      r.months.push_back({mp, std::move(s)});
    }
  }

  // Who sent the traffic: tool tags over the period's rows, with the top-5 ports' breakdown.
  if (r.summary.packets > opts.row_scan_max) {
    r.tools_skipped = true;
  } else {
    std::vector<PortKey> top5;
    for (size_t i = 0; i < r.ports.rows.size() && i < kFigureN; ++i) {
      top5.push_back(static_cast<PortKey>(r.ports.rows[i].key));
    }
    ASSIGN_OR_RETURN(r.tools,
                     TopTools(store, p, sel, std::nullopt, &ResearchNetworks::Shipped(), top5));
  }
  // DoS attacks from the backscatter rows alone, on a store that keeps them apart at any size.
  r.dos_scan_rows = BackscatterScanCost(store, p);
  if (r.dos_scan_rows > opts.backscatter_scan_max) {
    r.dos_skipped = true;
  } else {
    ASSIGN_OR_RETURN(r.dos, FindDosAttacks(store, p, sel));
  }

  // Notable phenomena, each with the data of its figures.
  ASSIGN_OR_RETURN(std::vector<Finding> found, FindNotable(store, p, sel));
  for (Finding& f : found) {
    FindingFigure ff;
    ff.finding = std::move(f);
    RETURN_IF_ERROR(FillFindingFigures(store, r, &ff));
    r.findings.push_back(std::move(ff));
  }

  // "type date path" as the manifest records it; a reader needs the database and its date, and
  // the file's name rather than where it lay on the ingesting machine.
  auto shown = [](const std::string& db) {
    size_t slash = db.rfind('/');
    size_t space = db.rfind(' ', slash == std::string::npos ? std::string::npos : slash);
    if (slash == std::string::npos || space == std::string::npos) return db;
    return db.substr(0, space + 1) + db.substr(slash + 1);
  };
  std::set<std::string> dbs;
  for (const auto& in : m.inputs) {
    if (!in.country_db.empty()) dbs.insert(shown(in.country_db));
    if (!in.asn_db.empty()) dbs.insert(shown(in.asn_db));
  }
  r.geo_dbs.assign(dbs.begin(), dbs.end());
  return r;
}

}  // namespace teiten::report
