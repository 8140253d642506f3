#include "simulate/simulate_command.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <set>
#include <string>

#include "analysis/period.h"
#include "simulate/scenario.h"
#include "simulate/source_ranges.h"

namespace teiten::simulate {

int RunSimulateCommand(int argc, char** argv) {
  CLI::App app{
      "generate a scenario's darknet traces (one pcap per sensor per day) and ground truth",
      argc > 0 ? argv[0] : "simulate"};
  std::string scenario_name, out_dir, ranges_csv, day_range;
  double scale = 0;
  uint64_t seed = 0;
  bool compress = false, with_sources = false;
  int hours_per_file = 24, days_per_file = 1, threads = 0;
  app.add_option("--scenario", scenario_name, "shipped scenario name or path to a .toml")
      ->required();
  app.add_option("--out", out_dir, "output directory")->required();
  auto* scale_opt = app.add_option("--scale", scale, "scale factor for packets and sources")
                        ->check(CLI::PositiveNumber);
  auto* seed_opt = app.add_option("--seed", seed, "replace the scenario's seed");
  app.add_flag("--compress", compress, "write .pcap.zst");
  app.add_flag("--with-sources", with_sources,
               "also write each trace's full ground truth with every source");
  app.add_option("--hours-per-file", hours_per_file, "24 (a file per day) or 1, 2, 3, 4, 6, 8, 12")
      ->check(CLI::IsMember({1, 2, 3, 4, 6, 8, 12, 24}));
  app.add_option("--days-per-file", days_per_file,
                 "N days per file (named by the first), for fewer, larger files")
      ->check(CLI::Range(1, 3660));
  app.add_option("--threads", threads,
                 "threads generating files (0: two per core, one when compressing)")
      ->check(CLI::Range(0, 256));
  app.add_option("--ranges-csv", ranges_csv, "source ranges first,last,CC,ASN");
  app.add_option("--days", day_range,
                 "only these UTC days, as --period: a day, FROM..TO, a month or a quarter; each "
                 "file as in the whole run");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "teiten simulate: %s\n", s.message().c_str());
    return 1;
  };
  auto sc = LoadScenario(scenario_name);
  if (!sc.ok()) return fail(sc.status());
  if (*scale_opt) sc->scale = scale;
  if (*seed_opt) sc->seed = seed;
  std::vector<SourceRange> ranges;
  if (ranges_csv.empty()) {
    ranges = FallbackSourceRanges();
  } else {
    auto r = ReadSourceRangesCsv(ranges_csv);
    if (!r.ok()) return fail(r.status());
    ranges = std::move(*r);
  }
  ScenarioOutput out{out_dir,
                     compress,
                     with_sources,
                     hours_per_file,
                     days_per_file,
                     threads,
                     /*keep_file_counts=*/false};
  if (!day_range.empty()) {
    auto days = ParsePeriod(day_range);
    if (!days.ok()) {
      return fail(InvalidArgument("--days: '" + day_range +
                                  "' is not a day, a range of days (2018-08-01..2018-08-15), a "
                                  "month (2018-08) or a quarter (2018Q3)"));
    }
    out.first_day = days->first_day;
    out.last_day = days->end_day - 1;
  }
  ScenarioTruth truth;
  Status s = RunScenario(*sc, ranges, out, &truth);
  if (!s.ok()) return fail(s);
  for (const auto& f : truth.files) {
    std::printf("%s  %s  %llu packets\n", f.sensor.c_str(), f.path.c_str(),
                static_cast<unsigned long long>(f.truth.packets));
  }
  for (const auto& e : truth.events) {
    std::printf("event %s (%s): %llu packets from %zu sources\n", e.spec->name.c_str(),
                EventKindName(e.spec->kind), static_cast<unsigned long long>(e.packets),
                e.sources.size());
  }
  std::set<std::string> paths;
  for (const auto& f : truth.files) paths.insert(f.path);
  std::printf("%s: %zu files (%zu traces), %llu packets, ground truth in %s/ground_truth.json\n",
              sc->name.c_str(), paths.size(), truth.files.size(),
              static_cast<unsigned long long>(truth.packets), out_dir.c_str());
  return 0;
}

}  // namespace teiten::simulate
