// Reports (SPEC O2, §3): a quarter in the manner of JPCERT/CC TSUBAME (seeds 001, 003), a month
// in the manner of IPA TALOT2 (seed 004), or any span of days; Japanese or English; HTML,
// Markdown or PDF.
//
//   ReportOptions o{.period = *ParsePeriod("2018Q3"), .lang = Lang::kJa};
//   ASSIGN_OR_RETURN(ReportData data, GatherReport(store, o));   // every query, once
//   report::Document doc = ComposeReport(data);                  // sentences, tables, figures
//   RETURN_IF_ERROR(WriteReport(doc, ReportFormat::kHtml, "2018Q3-ja.html"));
//
// Everything the document says comes from ReportData, and ReportData only from the query API
// (Top, Series, Summary, PortByCountry, TopSources, SourceHistory, FindNotable), so a table in a
// report shows the same numbers as `teiten top`/`series`/`summary` for the same period.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/dos.h"
#include "analysis/findings.h"
#include "analysis/period.h"
#include "analysis/query.h"
#include "analysis/tools.h"
#include "common/status.h"
#include "common/time_zone.h"
#include "enrich/geo.h"
#include "enrich/names.h"
#include "report/document.h"
#include "store/store.h"

namespace teiten::report {

enum class Layout { kQuarterly, kMonthly };
enum class ReportFormat { kHtml, kMarkdown, kPdf, kJson };
Result<ReportFormat> ParseReportFormat(const std::string& s);

struct ReportOptions {
  Period period;
  Lang lang = Lang::kJa;
  SensorSelection sensors;    // empty: all sensors
  std::string sensors_label;  // how the selection is named in the text, e.g. "group jp"
  // Quarterly for quarters and spans of days, monthly for months (the seeds' practice); may be
  // forced either way.
  Layout layout = Layout::kQuarterly;
  bool layout_forced = false;
  // Figures of daily packets show the per-sensor average (as TSUBAME publishes) or totals.
  bool totals = false;
  const AsnNames* asn_names = nullptr;  // names ASNs of dominant sources when given
  // The most rows the report's row analyses read, about 2 M a second for the tools (every row of
  // the period) and 7 M for DoS (backscatter rows, held no longer than their flow): a longer
  // scan is skipped and its section says so (smaller in tests).
  uint64_t row_scan_max = 10'000'000;
  uint64_t backscatter_scan_max = 50'000'000;
};

// The key of an "other" series (everything outside the listed keys).
inline constexpr uint64_t kOtherKey = ~uint64_t{0};

// One daily series with what it is of.
struct DailySet {
  std::vector<int32_t> days;
  std::vector<std::string> names;              // per series
  std::vector<uint64_t> keys;                  // per series (PortKey / CountryCode)
  std::vector<std::vector<uint64_t>> packets;  // [series][day]
  std::vector<std::vector<uint64_t>> sources;  // [series][day]
};

// A finding with the daily data its figures need.
struct FindingFigure {
  Finding finding;
  DailySet by_region;  // the finding's port by source region over the period ("other" last)
  DailySet long_term;  // monthly, since the store's first data (the port, or the region)
  std::vector<std::string> months;  // labels of long_term points
};

struct MonthStats {
  Period month;
  SummaryResult summary;
};

struct ReportData {
  ReportOptions opts;
  Period previous;
  std::string timezone;
  TimeZone tz = TimeZone::Utc();
  std::vector<std::string> sensor_ids;  // the sensors counted (with data in the period)
  std::vector<std::string> groups;      // their groups
  int32_t store_first_day = 0;

  SummaryResult summary;       // the period: totals, averages, shares (top 10)
  SummaryResult prev_summary;  // the previous period
  bool has_previous = false;
  TopResult ports;      // top 10 with previous ranks
  TopResult countries;  // top 10 with previous ranks

  std::vector<int> active_sensors;  // per day of the period: sensors with any packet
  DailySet port_days;               // top-5 ports
  DailySet country_days;            // top-5 regions, and "other"
  DailySet total_days;              // all traffic, one series

  std::vector<FindingFigure> findings;
  // Tool tags of the period's sources (docs/FINGERPRINTS.md), with the top-5 ports' breakdown.
  ToolsResult tools;
  // Tags are computed from the stored rows (about 2 M rows a second): a period holding more than
  // opts.row_scan_max packets is not scanned for the report, and the section says so.
  bool tools_skipped = false;
  // DoS attacks inferred from the period's backscatter (SPEC A10, docs/FINGERPRINTS.md), read
  // from its backscatter rows alone (ScanBackscatterRows; the embedded store keeps them in
  // segments of their own): skipped only when that scan would read more than
  // opts.backscatter_scan_max rows — segments written before the store kept them apart hold them
  // among the others, and are read whole.
  DosResult dos;
  bool dos_skipped = false;
  uint64_t dos_scan_rows = 0;        // the rows its scan reads (BackscatterScanCost)
  std::vector<MonthStats> months;    // the six months ending with the period's last month
  std::vector<std::string> geo_dbs;  // which databases enriched the data ("type date path")
};

Result<ReportData> GatherReport(const Store& store, const ReportOptions& opts);
Document ComposeReport(const ReportData& data);

// Writes the document. HTML is one self-contained file; Markdown writes its figures as SVG files
// beside it; PDF renders the HTML with headless Chromium (an error saying how to install it when
// it is not found).
Status WriteReport(const Document& doc, ReportFormat format, const std::string& path);

// The report for machines (`--format json`, docs/REPORT_JSON.md): {"version": 1, …} with the
// summary, top tables and daily series as numbers, every finding with its facts and evidence and
// its sentences in both languages, and every table and paragraph of the document in both
// languages. The numbers are ReportData's, i.e. the query API's, unrounded.
std::string ReportJson(const ReportData& data);
Status WriteReportJson(const ReportData& data, const std::string& path);

// The Chromium binary used for PDF and screenshots: $TEITEN_CHROMIUM, else chromium or
// chromium-browser or google-chrome on PATH; "" when none.
std::string FindChromium();

}  // namespace teiten::report
