// Internal to the report writer: what the composer's parts share (compose.cc writes the layouts,
// compose_findings.cc the notable phenomena).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "report/chart.h"
#include "report/report.h"
#include "report/words.h"

namespace teiten::report {

// Numbers tables and figures in order of appearance and keeps the ports the report features
// (their explanations end the report).
class Composer {
 public:
  explicit Composer(const ReportData& d) : data(d), lang(d.opts.lang), ja(lang == Lang::kJa) {}

  const ReportData& data;
  const Lang lang;
  const bool ja;
  Document doc;
  std::set<PortKey> featured;

  std::string NextTableLabel() { return Label(ja ? "表" : "Table", ++tables_); }
  std::string NextFigureLabel() { return Label(ja ? "図" : "Figure", ++figures_); }
  // The label the next table/figure will get, for sentences written before it.
  std::string PeekTableLabel() const { return Label(ja ? "表" : "Table", tables_ + 1); }
  std::string PeekFigureLabel() const { return Label(ja ? "図" : "Figure", figures_ + 1); }
  // "[表 1]" / "Table 1" as running text refers to it.
  std::string Ref(const std::string& label) const { return ja ? "[" + label + "]" : label; }
  int figures() const { return figures_; }

  chart::Lang ChartLang() const { return ja ? chart::Lang::kJa : chart::Lang::kEn; }
  // A daily chart of `set` (packets, or sources), per-sensor average unless totals were asked.
  std::string DailyChart(const DailySet& set, bool sources, bool stacked, const std::string& id,
                         const std::vector<chart::Marker>& markers = {}) const;
  // The y-axis label of daily packet charts.
  std::string PacketsAxis() const;
  std::string SourcesAxis() const;

  // Section numbers of the notable phenomena, filled before the overview refers to them.
  std::vector<std::string> finding_sections;

 private:
  std::string Label(const char* word, int n) const {
    return std::string(word) + " " + std::to_string(n);
  }
  int tables_ = 0;
  int figures_ = 0;
};

// Queries the data of a finding's figures (its port by source region over the period; its
// long-term monthly series since the store's first data). Called by GatherReport.
Status FillFindingFigures(const Store& store, const ReportData& data, FindingFigure* f);

// The notable-phenomena section: headings, sentences, figures (compose_findings.cc).
void ComposeFindings(Composer* c, const std::string& section_number);
// The paragraphs of finding `i`'s section in c.lang: its facts' sentences (with where its packets
// came from), then one per source sending at least 10 % of them. Figures are not included.
std::vector<std::string> FindingParagraphs(const Composer& c, size_t i);
// One sentence per finding for the overview, pointing at its section ("" when none).
std::string FindingOverviewSentence(const Composer& c, size_t i);

}  // namespace teiten::report
