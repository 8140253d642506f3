// Scenarios: a whole telescope for a whole period, described in TOML, generated as one pcap per
// sensor per day plus a ground-truth JSON (issue 3).
//
//   ASSIGN_OR_RETURN(Scenario sc, LoadScenario("tsubame-2018q3"));   // or a path to a .toml
//   sc.scale = 0.01;                                                  // a test-sized quarter
//   ScenarioOutput out{"/tmp/q3", /*compress=*/true};
//   RETURN_IF_ERROR(RunScenario(sc, FallbackSourceRanges(), out, nullptr));
//
// A scenario file (docs/SIMULATE.md has every key):
//
//   name = "small"
//   seed = 7
//   [period]   start = "2018-08-10"   days = 4
//   [traffic]  packets_per_sensor_day = 3000   sources = 600
//   [countries]  CN = 0.3  US = 0.1 …            # replaces the default country weights
//   [[profile]]  name = "mirai-telnet"  packet_share = 0.3 …   # overrides or adds a behaviour
//   [[sensor]]   id = "s01"  group = "jp"  country = "JP"  prefixes = ["203.0.113.0/26"]
//   [[phase]]    name = "2018q2"  start = "2018-04-01"  days = 91  [phase.countries] US = 0.14 …
//   [[event]]    name = "netis-surge"  kind = "surge"  start = "2018-08-11"  end = "2018-08-13"
//                magnitude = 500  regions = ["CN"]  ports = [53413]  tool = "netis"
//
// Event kinds and what is planted (magnitude = packets per sensor per day at full strength):
//   surge        constant rate from `sources` sources in `regions` to `ports`;
//   growth       rate and distinct sources rising linearly (10% → 100%, 5% → 100% of sources);
//   dominate     one source (`source`, or one drawn from the region) at a constant rate;
//   region-rise  a region's sources rising from nothing over the event on the scenario's
//                common ports (or `ports`);
//   port-move    malware changing ports: the profile `from_profile` moves `shift` (0–1) of its
//                port weight to the new `ports` by the event's end (its own sources move), and
//                new sources rise on the new ports (the planted, exactly counted part);
//   spike        as surge, meant for hours (a vendor-patch spike);
//   silence      the `regions` and the ASes `asns` send nothing (an outage), or only `share`
//                of their sources (a fixed subset) is silent; no packets of its own.
// All times are UTC; start is inclusive, end exclusive; "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM".
//
// Determinism: the same scenario, scale, seed and ranges give the same bytes. Every sensor and day
// shares one source population (the scenario seed), so the same sources recur across sensors and
// days as they do on a real telescope; each trace has its own seed for everything else.
#pragma once

#include <climits>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/status.h"
#include "simulate/generator.h"

namespace teiten::simulate {

struct ScenarioSensor {
  std::string id;
  std::string group;
  std::string country;  // where the sensor stands (ISO 3166 alpha-2); informational
  std::vector<Prefix> prefixes;
};

enum class EventKind { kSurge, kGrowth, kDominate, kRegionRise, kPortMove, kSpike, kSilence };
// "surge", "growth", "dominate", "region-rise", "port-move", "spike", "silence".
const char* EventKindName(EventKind kind);

struct ScenarioEvent {
  std::string name;
  EventKind kind = EventKind::kSurge;
  int64_t start_us = 0, end_us = 0;
  double magnitude = 0;  // packets per sensor per day at full strength, before scale
  std::vector<std::string> regions;
  std::vector<PortWeight> ports;
  Tool tool = Tool::kMirai;
  uint64_t sources = 0;      // distinct sources, before scale (dominate: 1)
  uint32_t source_addr = 0;  // dominate: a fixed IPv4 address (0: drawn from the region)
  std::string from_profile;  // port-move
  double shift = 0;          // port-move
  // silence: the fraction of the sources that go silent (1: all), and ASes silenced besides
  // (or instead of) `regions`.
  double share = 1;
  std::vector<uint32_t> asns;
  int line = 0;  // where it is in the file, for messages
};

// A stretch of days before (or after) the reported period with traffic of its own: the quarter
// before a TSUBAME quarter, so that reports get previous ranks; the months before a TALOT2 month,
// for its six-month statistics. A phase starts as a copy of the scenario's traffic, countries and
// profiles, and its file overrides what differs.
struct ScenarioPhase {
  std::string name;
  int64_t start_us = 0;  // a UTC midnight
  int days = 0;
  uint64_t packets_per_sensor_day = 0;  // before scale
  uint64_t sources = 0;                 // before scale
  double weekend_factor = 1;
  GeneratorSpec base;  // country weights, profiles, flood share, diurnal cycle
  int line = 0;
};

struct Scenario {
  std::string name;
  std::string path;  // the file it came from
  uint64_t seed = 1;
  double scale = 1;
  int64_t start_us = 0;
  int days = 1;
  uint64_t packets_per_sensor_day = 0;  // before scale
  uint64_t sources = 0;                 // before scale
  double weekend_factor = 1;            // packets on Saturday and Sunday (UTC) × this
  GeneratorSpec base;                   // country weights, profiles, flood share, diurnal cycle
  std::vector<ScenarioSensor> sensors;
  std::vector<ScenarioEvent> events;
  // Sorted by start; they overlap neither the period nor each other. Days in none of them and
  // outside the period are not generated.
  std::vector<ScenarioPhase> phases;

  // The generated span: the period and every phase, [FirstUs(), EndUs()).
  int64_t FirstUs() const;
  int64_t EndUs() const;
};

// Parses scenario TOML. `file` names the text in messages, which read
// "<file>:<line>: key '<key>': <what is wrong>".
Result<Scenario> ParseScenario(const std::string& text, const std::string& file);
// Reads a scenario from a path (anything containing '/' or ending in .toml), or by name from the
// shipped scenarios: $TEITEN_SCENARIOS, then data/scenarios relative to the working directory and
// to the executable's parents. kNotFound lists the names tried.
Result<Scenario> LoadScenario(const std::string& name_or_path);

struct ScenarioOutput {
  std::string dir;        // created if missing; traces go to <dir>/<sensor>/<YYYY-MM-DD>.pcap
  bool compress = false;  // .pcap.zst (zstd level 3) instead of .pcap
  // Also <dir>/<sensor>/<YYYY-MM-DD>.truth.json: the trace's GroundTruth with every source
  // (WriteGroundTruthJson with sources), i.e. each tool population's addresses and packets.
  bool with_sources = false;
  // 24: one file per sensor per day. A divisor of 24 (1, 2, 3, 4, 6, 8, 12): files of that many
  // hours, named <YYYY-MM-DD>T<HH>.pcap, each with its share of the day's diurnal cycle.
  int hours_per_file = 24;
  // 1: one file per sensor per day. N > 1 (whole days only): a file holds N generated days one
  // after the other, named by its first day; the ground truth still lists each day (its entries
  // share the path). Fewer, larger files ingest faster.
  int days_per_file = 1;
  // Threads generating files (0: two per core, or one when compressing). Each file depends only
  // on its own spec, so the bytes are the same for any count.
  int threads = 0;
  // Keep each file's counts by port, country and profile in ScenarioTruth::File::truth. They are
  // in ground_truth.json either way; a long run at full scale turns this off to bound memory
  // (tens of thousands of ports per file, thousands of files).
  bool keep_file_counts = true;
  // Only the scenario's days (phases included) in [first_day, last_day], UTC day numbers. A
  // day's traces are byte for byte those of the whole run (with days_per_file > 1, files group
  // from the first day chosen): for a slice of a full-scale quarter, or to remake one day.
  int32_t first_day = INT32_MIN, last_day = INT32_MAX;
};

// What was written, also saved as <dir>/ground_truth.json.
struct ScenarioTruth {
  struct File {
    std::string sensor, day, path;
    int64_t start_us = 0, end_us = 0;  // the file's window
    GroundTruth truth;                 // without the per-source list
  };
  struct Event {
    const ScenarioEvent* spec = nullptr;
    uint64_t packets = 0;
    std::vector<uint32_t> sources;              // IPv4, host order, with their country
    std::vector<std::string> source_countries;  // parallel to sources
    std::map<std::pair<std::string, std::string>, uint64_t>
        packets_by_file;  // (sensor, file label)
  };
  // A planted outage, one per region and AS of each silence event: what `teiten outages`
  // should find (dimension "country" or "asn").
  struct Outage {
    std::string event, dimension, key;
    int64_t start_us = 0, end_us = 0;
    double share = 1;
  };
  std::vector<File> files;
  std::vector<Event> events;
  std::vector<Outage> outages;
  uint64_t packets = 0;
};

// Generates every sensor's day traces and the ground truth. Fails with kInvalidArgument on an
// unusable scenario (the message names the event or field) and kIoError when writing fails;
// files already written stay.
Status RunScenario(const Scenario& scenario, const std::vector<SourceRange>& ranges,
                   const ScenarioOutput& out, ScenarioTruth* truth);

}  // namespace teiten::simulate
