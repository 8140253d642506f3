// teiten report: a quarterly (TSUBAME) or monthly (TALOT2) report, Japanese or English.
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

}  // namespace

void AddReportCommands(Commands& cmds) {
  Common& c = cmds.common();
  auto ra = std::make_shared<ReportArgs>();
  auto* rep =
      cmds.app().add_subcommand("report", "a quarterly or monthly report, Japanese or English");
  rep->add_option("--config", c.config_path,
                  "config file (default $TEITEN_CONFIG or ./teiten.toml)");
  rep->add_option("--store", c.store_path, "store directory (overrides the config)");
  rep->add_option("--period", ra->period, "2018Q3 (quarterly), 2007-08 (monthly) or FROM..TO")
      ->required();
  rep->add_option("--lang", c.lang, "ja or en")->capture_default_str();
  rep->add_option("--format", ra->format, "html, md, pdf or json")->capture_default_str();
  rep->add_option("-o,--output", ra->out, "output file (default teiten-report-PERIOD-LANG.EXT)");
  rep->add_option("--sensor-group,--group", c.groups, "only sensors of this group (repeatable)");
  rep->add_option("--sensor", c.sensors, "only this sensor (repeatable)");
  rep->add_option("--layout", ra->layout, "quarterly or monthly (default: by the period)");
  rep->add_flag("--totals", ra->totals, "daily figures show totals, not per-sensor averages");
  // A report is Japanese unless --lang says otherwise, as the seeds are.
  cmds.OnParsed(rep, [&c, ra, rep] {
    Common cj = c;
    if (!rep->count("--lang")) cj.lang = "ja";
    return RunReport(cj, *ra);
  });
}

}  // namespace teiten
