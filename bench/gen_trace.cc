// teiten-gen-trace: writes a synthetic darknet trace for benchmarks and tests.
//
//   teiten-gen-trace --packets 10000000 --sources 200000 --out /dev/shm/10m.pcap
//   teiten-gen-trace --packets 100000000 --sources 1000000 --spoofed-share 0.5
//       --out /tmp/100m.pcap --truth /tmp/100m.json
//
// Prints one line of CSV-friendly key=value facts: packets, seconds, packets/s, MB/s, peak RSS.
// Until the geo database is wired in, sources come from --ranges-csv (first,last,CC,ASN) or from
// a built-in fallback, which the output names.
#include <sys/resource.h>
#include <sys/stat.h>

// GCC 12 reports a false "potential null pointer dereference" inside CLI11's string splitting
// (inlined std::vector<std::string> growth); nothing in this file dereferences null.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "simulate/generator.h"
#include "simulate/source_ranges.h"

namespace {

using teiten::Prefix;
namespace sim = teiten::simulate;

// "YYYY-MM-DD" → microseconds since the epoch (UTC midnight).
bool ParseDate(const std::string& text, int64_t* out) {
  int y = 0, m = 0, d = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3) return false;
  if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) return false;
  // Days from civil (H. Hinnant).
  y -= m <= 2;
  const int era = y / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = int64_t{era} * 146097 + doe - 719468;
  *out = days * 86400 * 1000000;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Write a synthetic darknet trace (pcap) for benchmarks and tests"};
  uint64_t packets = 1000000, sources = 100000, seed = 1;
  double spoofed_share = 0;
  std::string out, start = "2018-07-01",
                   monitored = "203.0.113.0/24,198.51.100.0/24,192.0.2.0/24,2001:db8:7e17::/64";
  std::string truth_path, ranges_csv;
  double days = 1;
  bool truth_sources = false;
  app.add_option("--packets", packets, "packets to write (exact)");
  app.add_option("--sources", sources, "distinct non-spoofed sources in the population");
  app.add_option("--spoofed-share", spoofed_share, "share of spoofed SYN flood packets")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", seed, "random seed: same seed and flags, same bytes");
  app.add_option("--out", out, "pcap file to write")->required();
  app.add_option("--start", start, "first day, YYYY-MM-DD (UTC)");
  app.add_option("--days", days, "length of the period in days (fractions allowed)")
      ->check(CLI::PositiveNumber);
  app.add_option("--monitored", monitored, "comma-separated darknet prefixes");
  app.add_option("--truth", truth_path, "write the ground truth as JSON here");
  app.add_flag("--truth-sources", truth_sources, "include every source in the ground truth JSON");
  app.add_option("--ranges-csv", ranges_csv, "source ranges: lines first,last,CC,ASN");
  CLI11_PARSE(app, argc, argv);

  sim::GeneratorSpec spec = sim::GeneratorSpec::Default2018();
  spec.seed = seed;
  spec.packets = packets;
  spec.sources = sources;
  spec.spoofed_flood_share = spoofed_share;
  if (!ParseDate(start, &spec.start_us)) {
    std::fprintf(stderr, "--start: '%s' is not YYYY-MM-DD\n", start.c_str());
    return 2;
  }
  spec.end_us = spec.start_us + static_cast<int64_t>(days * 86400.0 * 1e6);
  for (size_t pos = 0; pos <= monitored.size();) {
    size_t comma = monitored.find(',', pos);
    if (comma == std::string::npos) comma = monitored.size();
    std::string item = monitored.substr(pos, comma - pos);
    auto p = Prefix::Parse(item);
    if (!p) {
      std::fprintf(stderr, "--monitored: '%s' is not a prefix\n", item.c_str());
      return 2;
    }
    spec.monitored.push_back(*p);
    pos = comma + 1;
  }

  std::vector<sim::SourceRange> ranges;
  const char* ranges_from = "built-in fallback (no geo database)";
  if (!ranges_csv.empty()) {
    auto r = sim::ReadSourceRangesCsv(ranges_csv);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
    ranges = std::move(*r);
    ranges_from = ranges_csv.c_str();
  } else {
    ranges = sim::FallbackSourceRanges();
  }

  sim::GroundTruth truth;
  auto t0 = std::chrono::steady_clock::now();
  teiten::Status s = sim::WriteTrace(spec, ranges, out, truth_path.empty() ? nullptr : &truth);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  if (!truth_path.empty()) {
    teiten::Status ts = sim::WriteGroundTruthJson(truth, truth_path, truth_sources);
    if (!ts.ok()) {
      std::fprintf(stderr, "%s\n", ts.ToString().c_str());
      return 1;
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  struct stat st {};
  double mb = stat(out.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? st.st_size / 1e6 : 0;
  std::printf(
      "packets=%llu seconds=%.3f packets_per_s=%.0f mb=%.1f mb_per_s=%.0f peak_rss_mb=%.1f "
      "ranges=\"%s\" out=%s\n",
      static_cast<unsigned long long>(packets), secs, static_cast<double>(packets) / secs, mb,
      mb / secs, static_cast<double>(ru.ru_maxrss) / 1024.0, ranges_from, out.c_str());
  return 0;
}
