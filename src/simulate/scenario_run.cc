// RunScenario: a scenario cut into one generator run per sensor and day, events turned into
// planted streams with exact budgets, and the ground truth gathered into one JSON file.
#include <fmt/format.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/time_zone.h"
#include "simulate/pcap_writer.h"
#include "simulate/rng.h"
#include "simulate/scenario.h"

namespace teiten::simulate {
namespace {

constexpr int64_t kDayUs = 86'400'000'000LL;
constexpr int64_t kHourUs = 3'600'000'000LL;
// Traces bypass the page cache (unless compressed, when the pcap is read straight back): in
// blocks this large, each O_DIRECT write keeps the device busy.
constexpr size_t kDirectBuffer = size_t{1024} << 10;

// Compresses `from` into `to` (written as to.partial, then renamed) and removes `from`.
Status CompressFile(const std::string& from, const std::string& to) {
  std::FILE* in = std::fopen(from.c_str(), "rb");
  if (!in) return IoError("opening " + from);
  const std::string tmp = to + ".partial";
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (!out) {
    std::fclose(in);
    return IoError("creating " + tmp);
  }
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
  std::vector<char> ibuf(ZSTD_CStreamInSize()), obuf(ZSTD_CStreamOutSize());
  bool ok = true;
  for (;;) {
    size_t n = std::fread(ibuf.data(), 1, ibuf.size(), in);
    const bool last = n < ibuf.size();
    ZSTD_inBuffer input{ibuf.data(), n, 0};
    for (bool done = false; !done;) {
      ZSTD_outBuffer output{obuf.data(), obuf.size(), 0};
      size_t rem = ZSTD_compressStream2(cctx, &output, &input, last ? ZSTD_e_end : ZSTD_e_continue);
      if (ZSTD_isError(rem)) {
        ok = false;
        break;
      }
      if (std::fwrite(obuf.data(), 1, output.pos, out) != output.pos) ok = false;
      done = last ? rem == 0 : input.pos == input.size;
    }
    if (!ok || last) break;
  }
  ok &= !std::ferror(in);
  ZSTD_freeCCtx(cctx);
  std::fclose(in);
  ok &= std::fclose(out) == 0;
  if (!ok) {
    std::remove(tmp.c_str());
    return IoError("compressing " + from + " into " + to);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, to, ec);
  if (ec) return IoError("renaming " + tmp + ": " + ec.message());
  std::filesystem::remove(from, ec);
  return OkStatus();
}

// Per-kind shape over the event, x ∈ [0, 1]: rate and active share of sources.
void Shape(EventKind k, double* r0, double* r1, double* a0, double* a1) {
  *r0 = *r1 = *a0 = *a1 = 1;
  switch (k) {
    case EventKind::kGrowth:
      *r0 = 0.1, *a0 = 0.05;
      break;
    case EventKind::kRegionRise:
    case EventKind::kPortMove:
      *r0 = 0, *a0 = 0.2;
      break;
    default:
      break;
  }
}

// Distinct IPv4 sources drawn from a country's ranges, uniform over its address space.
Result<std::vector<uint32_t>> DrawSources(const std::vector<SourceRange>& ranges,
                                          const std::string& cc, uint64_t n, uint64_t seed,
                                          const std::set<uint32_t>& taken) {
  std::vector<const SourceRange*> rs;
  std::vector<uint64_t> cum;
  for (const SourceRange& r : ranges) {
    if (std::string(r.country.data(), 2) != cc) continue;
    rs.push_back(&r);
    cum.push_back((cum.empty() ? 0 : cum.back()) + (uint64_t{r.last} - r.first + 1));
  }
  if (rs.empty()) return InvalidArgument("regions: no source ranges for " + cc);
  if (n > cum.back() / 2) return InvalidArgument("sources: too many for the ranges of " + cc);
  Rng rng(Mix64(seed));
  std::set<uint32_t> seen;
  std::vector<uint32_t> out;
  while (out.size() < n) {
    uint64_t v = rng.Below64(cum.back());
    size_t k = std::upper_bound(cum.begin(), cum.end(), v) - cum.begin();
    auto a = static_cast<uint32_t>(rs[k]->first + (v - (k ? cum[k - 1] : 0)));
    if ((a & 0xff) == 0 || (a & 0xff) == 255) continue;  // no network or broadcast addresses
    if (!taken.count(a) && seen.insert(a).second) out.push_back(a);
  }
  return out;
}

std::string CountryOf(const std::vector<SourceRange>& ranges, uint32_t a) {
  for (const SourceRange& r : ranges) {
    if (r.first <= a && a <= r.last) return std::string(r.country.data(), 2);
  }
  return "ZZ";
}

// One planted stream per (event, region): its sources and share of the event.
struct Planting {
  size_t event = 0;
  std::string country;
  std::vector<uint32_t> sources;
  double share = 1;
};

// A file's entry in ground_truth.json, on one line. Its ports (tens of thousands at full scale)
// are written directly: through a JSON object they cost more than generating the packets.
std::string FileEntryJson(const ScenarioTruth::File& f, const ScenarioOutput& out) {
  const GroundTruth& g = f.truth;
  nlohmann::ordered_json j;
  j["sensor"] = f.sensor;
  j["day"] = f.day;
  if (out.hours_per_file != 24) {
    j["start_us"] = f.start_us;
    j["end_us"] = f.end_us;
  }
  j["path"] = std::filesystem::relative(f.path, out.dir).string();
  j["packets"] = g.packets;
  nlohmann::ordered_json tools = nlohmann::ordered_json::object();
  for (int i = 0; i < kToolCount; ++i) {
    if (g.tools[i].packets) tools[std::string(ToolName(static_cast<Tool>(i)))] = g.tools[i].packets;
  }
  j["packets_by_tool"] = tools;
  j["packets_by_country"] = g.packets_by_country;
  std::string line = j.dump();
  line.pop_back();  // the closing brace
  line += ",\"packets_by_port\":{";
  bool first = true;
  for (const auto& [key, n] : g.packets_by_port) {
    fmt::format_to(std::back_inserter(line), "{}\"{}\":{}", first ? "" : ",", PortKeyToString(key),
                   n);
    first = false;
  }
  line += "}}";
  return line;
}

// One output file: the windows (a whole UTC day, or hours of one) it holds, in time order,
// generated one after the other into the same pcap.
struct Window {
  int32_t day = 0;                       // UTC day number
  int hour = 0;                          // the window's first hour
  const ScenarioPhase* phase = nullptr;  // nullptr: the period's own traffic
};
struct FileTask {
  size_t sensor = 0;
  std::vector<Window> windows;
  std::string pcap;  // written here, then compressed to files[i].path when asked
  // Results, one per window.
  std::vector<ScenarioTruth::File> files;
  std::vector<std::vector<std::pair<size_t, std::string>>> planted_event;  // (event, region)
  std::string json;  // the files' entries of ground_truth.json, one line each
  bool done = false;
  Status status;
};

// Read-only state shared by the threads that generate files.
struct RunContext {
  const Scenario& sc;
  const SourceRangeIndex& index;
  const std::vector<Planting>& plantings;
  const ScenarioOutput& out;
  uint64_t population_seed = 0;
  int32_t period_first_day = 0;
  // Source populations by (phase, whether the sensor monitors IPv6): IPv6 profiles have sources
  // only where there is an IPv6 prefix to send to.
  std::map<std::pair<const ScenarioPhase*, bool>, SharedPopulation> populations;
};

bool HasV6(const ScenarioSensor& s) {
  return std::any_of(s.prefixes.begin(), s.prefixes.end(),
                     [](const Prefix& p) { return !p.base.is_v4(); });
}

// Runs work(i) for i in [0, n) on up to `threads` threads (the caller's among them), each taking
// the next index; once work returns false, no further index is started.
template <class Work>
void ParallelFor(size_t n, size_t threads, Work work) {
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  auto run = [&] {
    for (size_t i; !stop.load() && (i = next.fetch_add(1)) < n;) {
      if (!work(i)) stop = true;
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::min(n, threads); ++t) pool.emplace_back(run);
  run();
  for (std::thread& t : pool) t.join();
}

Status GenerateFile(const RunContext& ctx, FileTask* task) {
  const Scenario& sc = ctx.sc;
  const ScenarioOutput& out = ctx.out;
  const std::vector<Planting>& plantings = ctx.plantings;
  const double scale = sc.scale;
  const size_t si = task->sensor;
  const ScenarioSensor& sensor = sc.sensors[si];
  const int per_day = 24 / out.hours_per_file;
  const std::string sensor_dir = out.dir + "/" + sensor.id;
  ASSIGN_OR_RETURN(std::unique_ptr<PcapWriter> writer,
                   PcapWriter::Create(task->pcap, kLinkEthernet, kDirectBuffer,
                                      /*direct=*/!out.compress));
  for (const Window& win : task->windows) {
    const ScenarioPhase* phase = win.phase;
    const GeneratorSpec& base = phase ? phase->base : sc.base;
    const int hour = win.hour;
    // d counts days from the period's first (negative before it): the seed of a period day is
    // what it was before phases existed.
    const int64_t d = win.day - ctx.period_first_day;
    const int64_t day_start = win.day * kDayUs + hour * kHourUs;
    const int64_t day_end = day_start + out.hours_per_file * kHourUs;
    const int32_t day_number = win.day;
    const std::string day = TimeZone::DayString(day_number);
    const std::string label = per_day == 1 ? day : fmt::format("{}T{:02d}", day, hour);
    const int w = static_cast<int>(d * per_day + hour / out.hours_per_file);
    GeneratorSpec spec = base;
    spec.seed = per_day == 1
                    ? Mix64(sc.seed ^ (uint64_t{si + 1} << 32) ^ static_cast<uint64_t>(d + 1))
                    : Mix64(sc.seed ^ (uint64_t{si + 1} << 32) ^
                            (static_cast<uint64_t>(w + 1) << 12) ^ 0x686f7572ULL);
    spec.population_seed = ctx.population_seed;
    spec.start_us = day_start;
    spec.end_us = day_end;
    spec.monitored = sensor.prefixes;
    auto scaled = [&](double v) { return std::max<uint64_t>(1, std::llround(v * scale)); };
    spec.sources = scaled(static_cast<double>(phase ? phase->sources : sc.sources));
    const int dow = ((day_number % 7) + 11) % 7;  // 0 = Sunday (1970-01-01 was a Thursday)
    const double weekend = phase ? phase->weekend_factor : sc.weekend_factor;
    const double weekday = (dow == 0 || dow == 6) ? weekend : 1.0;
    // A part of a day gets its share of the diurnal cycle (hourly steps, as the generator).
    double part = 1;
    if (per_day > 1) {
      auto rate = [&](int h) {
        return 1 + base.diurnal_amplitude *
                       std::cos(6.283185307179586 * (h + 0.5 - base.diurnal_peak_hour_utc) / 24.0);
      };
      double all = 0, mine = 0;
      for (int h = 0; h < 24; ++h) {
        all += rate(h);
        if (h >= hour && h < hour + out.hours_per_file) mine += rate(h);
      }
      part = mine / all;
    }
    const uint64_t per_sensor_day =
        phase ? phase->packets_per_sensor_day : sc.packets_per_sensor_day;
    spec.packets = std::llround(static_cast<double>(per_sensor_day) * scale * weekday * part);

    std::vector<std::pair<size_t, std::string>> planted_event;  // (event, region) per planted
    for (size_t ei = 0; ei < sc.events.size(); ++ei) {
      const ScenarioEvent& e = sc.events[ei];
      const int64_t a = std::max(e.start_us, day_start), b = std::min(e.end_us, day_end);
      if (a >= b) continue;
      const double len = static_cast<double>(e.end_us - e.start_us);
      auto at = [&](int64_t t) { return static_cast<double>(t - e.start_us) / len; };
      if (e.kind == EventKind::kSilence) {
        for (const std::string& r : e.regions) {
          spec.silent.push_back({{r[0], r[1]}, a, b, e.share, 0});
        }
        for (uint32_t asn : e.asns) spec.silent.push_back({{}, a, b, e.share, asn});
        continue;
      }
      if (e.kind == EventKind::kPortMove) {
        const double x = (at(a) + at(b)) / 2;
        // The profile's own sources move too: `shift` of its port weight goes, by the
        // event's end, to the new ports (its population and packet share stay).
        double new_sum = 0;
        for (const PortWeight& pw : e.ports) new_sum += pw.weight;
        for (ProfileSpec& p : spec.profiles) {
          if (p.name != e.from_profile || new_sum <= 0) continue;
          double old_sum = 0;
          for (PortWeight& pw : p.ports) {
            old_sum += pw.weight;
            pw.weight *= 1 - e.shift * x;
          }
          for (const PortWeight& pw : e.ports) {
            p.ports.push_back({pw.port, old_sum * e.shift * x * pw.weight / new_sum});
          }
        }
      }
      double r0, r1, a0, a1;
      Shape(e.kind, &r0, &r1, &a0, &a1);
      for (const Planting& pl : plantings) {
        if (pl.event != ei) continue;
        // A silent country's event sources are silent too: trim the window around outages.
        // (Partial and AS outages silence population sources only.)
        int64_t pa = a, pb = b;
        for (const ScenarioEvent& q : sc.events) {
          if (q.kind != EventKind::kSilence || q.share < 1 ||
              std::find(q.regions.begin(), q.regions.end(), pl.country) == q.regions.end()) {
            continue;
          }
          if (q.start_us <= pa && q.end_us >= pb) {
            pb = pa;
          } else if (q.start_us <= pa && q.end_us > pa) {
            pa = q.end_us;
          } else if (q.start_us > pa && q.start_us < pb && q.end_us >= pb) {
            pb = q.start_us;
          }
        }
        if (pa >= pb) continue;
        const double ra = r0 + (r1 - r0) * at(pa), rb = r0 + (r1 - r0) * at(pb);
        const double total = e.magnitude * scale * static_cast<double>(pb - pa) /
                             static_cast<double>(kDayUs) * (ra + rb) / 2;
        PlantedSpec ps;
        ps.name = e.name + "/" + pl.country;
        ps.tool = e.tool;
        ps.ports = e.ports;
        ps.country = {pl.country[0], pl.country[1]};
        ps.sources = pl.sources;
        ps.start_us = pa;
        ps.end_us = pb;
        ps.packets = static_cast<uint64_t>(std::llround(total * pl.share));
        ps.rate_start = ra;
        ps.rate_end = rb;
        if (ps.rate_start + ps.rate_end <= 0) ps.rate_end = 1;
        ps.active_start = a0 + (a1 - a0) * at(pa);
        ps.active_end = a0 + (a1 - a0) * at(pb);
        spec.planted.push_back(std::move(ps));
        planted_event.push_back({ei, pl.country});
      }
    }

    ScenarioTruth::File f;
    f.sensor = sensor.id;
    f.day = day;
    f.start_us = day_start;
    f.end_us = day_end;
    f.path = out.compress ? task->pcap + ".zst" : task->pcap;
    const engine::Population* population = ctx.populations.at({win.phase, HasV6(sensor)}).get();
    Status s = WriteTraceTo(spec, ctx.index, writer.get(), &f.truth, out.with_sources, population);
    if (!s.ok()) {
      return Status(s.code(), fmt::format("sensor {} day {}: {}", sensor.id, day, s.message()));
    }
    if (out.with_sources) {
      RETURN_IF_ERROR(WriteGroundTruthJson(f.truth, sensor_dir + "/" + label + ".truth.json",
                                           /*with_sources=*/true));
    }
    f.truth.sources.clear();
    task->files.push_back(std::move(f));
    task->planted_event.push_back(std::move(planted_event));
  }
  RETURN_IF_ERROR(writer->Finish());
  if (out.compress) RETURN_IF_ERROR(CompressFile(task->pcap, task->pcap + ".zst"));
  for (ScenarioTruth::File& f : task->files) {
    task->json += (task->json.empty() ? "  " : ",\n  ") + FileEntryJson(f, out);
    if (!out.keep_file_counts) {
      f.truth.packets_by_port.clear();
      f.truth.packets_by_country.clear();
      f.truth.packets_by_profile.clear();
    }
  }
  return OkStatus();
}

}  // namespace

Status RunScenario(const Scenario& sc, const std::vector<SourceRange>& ranges,
                   const ScenarioOutput& out, ScenarioTruth* truth_out) {
  const double scale = sc.scale;
  auto scaled = [&](double v) { return std::max<uint64_t>(1, std::llround(v * scale)); };
  const int64_t sc_first = sc.FirstUs(), sc_end = sc.EndUs();
  // Event sources, drawn once for the whole scenario.
  ScenarioTruth truth;
  std::vector<Planting> plantings;
  std::set<uint32_t> taken;
  for (size_t ei = 0; ei < sc.events.size(); ++ei) {
    const ScenarioEvent& e = sc.events[ei];
    ScenarioTruth::Event te;
    te.spec = &e;
    const std::string where = fmt::format("{}:{}: event '{}': ", sc.path, e.line, e.name);
    if (e.start_us >= sc_end || e.end_us <= sc_first) {
      return InvalidArgument(where + "outside the scenario's period and phases");
    }
    if (e.kind == EventKind::kSilence) {
      for (uint32_t asn : e.asns) {
        bool known = false;
        for (const SourceRange& r : ranges) known |= r.asn == asn;
        if (!known) {
          return InvalidArgument(where + fmt::format("asns: AS{} is in no source range", asn));
        }
      }
      const int64_t start = std::max(e.start_us, sc_first), end = std::min(e.end_us, sc_end);
      for (const std::string& r : e.regions) {
        truth.outages.push_back({e.name, "country", r, start, end, e.share});
      }
      for (uint32_t asn : e.asns) {
        truth.outages.push_back({e.name, "asn", std::to_string(asn), start, end, e.share});
      }
    }
    if (e.kind != EventKind::kSilence) {
      if (e.kind == EventKind::kDominate && e.source_addr != 0) {
        plantings.push_back({ei, CountryOf(ranges, e.source_addr), {e.source_addr}, 1});
        if (!e.regions.empty()) plantings.back().country = e.regions[0];
      } else {
        const uint64_t n =
            e.kind == EventKind::kDominate ? 1 : scaled(static_cast<double>(e.sources));
        const uint64_t per = std::max<uint64_t>(1, n / e.regions.size());
        for (size_t ri = 0; ri < e.regions.size(); ++ri) {
          auto drawn = DrawSources(ranges, e.regions[ri], per,
                                   sc.seed ^ (ei + 1) * 0x9e3779b97f4a7c15ULL ^ ri, taken);
          if (!drawn.ok()) return InvalidArgument(where + drawn.status().message());
          plantings.push_back(
              {ei, e.regions[ri], *drawn, 1.0 / static_cast<double>(e.regions.size())});
        }
      }
      for (size_t k = plantings.size(); k-- > 0 && plantings[k].event == ei;) {
        for (uint32_t a : plantings[k].sources) {
          taken.insert(a);
          te.sources.push_back(a);
          te.source_countries.push_back(plantings[k].country);
        }
      }
    }
    truth.events.push_back(std::move(te));
  }

  if (out.hours_per_file < 1 || 24 % out.hours_per_file != 0) {
    return InvalidArgument("hours per file: " + std::to_string(out.hours_per_file) +
                           " does not divide 24");
  }
  if (out.days_per_file < 1 || (out.days_per_file > 1 && out.hours_per_file != 24)) {
    return InvalidArgument(
        fmt::format("days per file: {} (at least 1, and only with whole days)", out.days_per_file));
  }
  const int per_day = 24 / out.hours_per_file;
  std::error_code ec;
  std::filesystem::create_directories(out.dir, ec);
  if (ec) return IoError("creating " + out.dir + ": " + ec.message());
  const SourceRangeIndex index(ranges);
  RunContext ctx{sc,
                 index,
                 plantings,
                 out,
                 Mix64(sc.seed ^ 0x706f70756c6174ULL) | 1,
                 static_cast<int32_t>(sc.start_us / kDayUs),
                 {}};

  // Every generated day in order, with its phase.
  std::vector<Window> days;
  auto add_days = [&](int64_t start_us, int n, const ScenarioPhase* phase) {
    for (int d = 0; d < n; ++d)
      days.push_back({static_cast<int32_t>(start_us / kDayUs + d), 0, phase});
  };
  add_days(sc.start_us, sc.days, nullptr);
  for (const ScenarioPhase& p : sc.phases) add_days(p.start_us, p.days, &p);
  std::sort(days.begin(), days.end(),
            [](const Window& a, const Window& b) { return a.day < b.day; });
  std::erase_if(days,
                [&](const Window& w) { return w.day < out.first_day || w.day > out.last_day; });
  if (days.empty()) {
    return InvalidArgument(fmt::format("days: none of {}'s days lies in {} .. {}", sc.name,
                                       TimeZone::DayString(out.first_day),
                                       TimeZone::DayString(out.last_day)));
  }

  // One source population per phase, read by every sensor and day of it. Its addresses avoid
  // every sensor's prefixes: a source is never inside one of our own darknets.
  std::vector<Prefix> all_v4, all_v6;
  for (const ScenarioSensor& s : sc.sensors) {
    for (const Prefix& p : s.prefixes) (p.base.is_v4() ? all_v4 : all_v6).push_back(p);
  }
  struct PopulationJob {
    const ScenarioPhase* phase;
    bool v6;
    Result<SharedPopulation> pop = Internal("not built");
  };
  std::vector<PopulationJob> jobs;
  std::set<const ScenarioPhase*> phase_list;  // the phases of the days generated
  for (const Window& w : days) phase_list.insert(w.phase);
  for (const ScenarioPhase* phase : phase_list) {
    for (bool v6 : {false, true}) {
      if (std::any_of(sc.sensors.begin(), sc.sensors.end(),
                      [&](const ScenarioSensor& s) { return HasV6(s) == v6; })) {
        jobs.push_back({phase, v6});
      }
    }
  }
  auto build = [&](PopulationJob& job) {
    const ScenarioPhase* phase = job.phase;
    GeneratorSpec spec = phase ? phase->base : sc.base;
    spec.population_seed = ctx.population_seed;
    spec.sources = scaled(static_cast<double>(phase ? phase->sources : sc.sources));
    spec.start_us = phase ? phase->start_us : sc.start_us;
    spec.end_us = spec.start_us + kDayUs;
    spec.monitored = all_v4;
    if (job.v6) spec.monitored.insert(spec.monitored.end(), all_v6.begin(), all_v6.end());
    job.pop = BuildSharedPopulation(spec, index);
  };
  // A full-scale phase has 2 M sources to draw and sort: the phases' builds run in parallel.
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  ParallelFor(jobs.size(), out.threads > 0 ? static_cast<size_t>(out.threads) : cores,
              [&](size_t i) {
                build(jobs[i]);
                return true;
              });
  for (PopulationJob& job : jobs) {
    if (!job.pop.ok()) {
      return Status(
          job.pop.status().code(),
          fmt::format("{}{}: {}", sc.path, job.phase ? ": phase '" + job.phase->name + "'" : "",
                      job.pop.status().message()));
    }
    ctx.populations[{job.phase, job.v6}] = *std::move(job.pop);
  }

  // Files, sensor by sensor: a day, hours of one, or several days.
  std::vector<FileTask> tasks;
  for (size_t si = 0; si < sc.sensors.size(); ++si) {
    const std::string sensor_dir = out.dir + "/" + sc.sensors[si].id;
    std::filesystem::create_directories(sensor_dir, ec);
    if (ec) return IoError("creating " + sensor_dir + ": " + ec.message());
    for (size_t k = 0; k < days.size(); k += static_cast<size_t>(out.days_per_file)) {
      for (int h = 0; h < per_day; ++h) {
        FileTask t;
        t.sensor = si;
        const std::string day = TimeZone::DayString(days[k].day);
        const int hour = h * out.hours_per_file;
        t.pcap =
            sensor_dir + "/" + (per_day == 1 ? day : fmt::format("{}T{:02d}", day, hour)) + ".pcap";
        for (size_t j = k; j < std::min(days.size(), k + out.days_per_file); ++j) {
          t.windows.push_back({days[j].day, hour, days[j].phase});
        }
        tasks.push_back(std::move(t));
      }
    }
  }

  // Each file depends only on its own windows, so threads change nothing in the bytes. By
  // default two per core: an O_DIRECT write waits for the device, and another thread generates
  // meanwhile (a 20-day slice at scale 0.3 to disk: 12.0 s with 2 threads, 7.9-9.3 s with 4).
  const size_t threads = out.threads > 0 ? static_cast<size_t>(out.threads)
                         : out.compress  ? cores
                                         : 2 * cores;
  // The ground truth's file entries go to disk in file order as files finish, so that memory
  // does not grow with the number of files (a full-scale quarter has 1,830, each with
  // thousands of ports).
  const std::string files_part = out.dir + "/ground_truth.files.partial";
  std::ofstream files_out(files_part, std::ios::trunc);
  if (!files_out) return IoError("creating " + files_part);
  std::mutex files_mu;
  size_t files_written = 0;
  bool any_written = false;
  ParallelFor(tasks.size(), threads, [&](size_t i) {
    tasks[i].status = GenerateFile(ctx, &tasks[i]);
    std::lock_guard<std::mutex> lock(files_mu);
    tasks[i].done = true;
    for (; files_written < tasks.size() && tasks[files_written].done; ++files_written) {
      std::string& js = tasks[files_written].json;
      if (js.empty()) continue;
      files_out << (any_written ? ",\n" : "") << js;
      any_written = true;
      std::string().swap(js);
    }
    return tasks[i].status.ok();
  });
  files_out.close();
  for (FileTask& t : tasks) {
    if (!t.status.ok()) {
      std::filesystem::remove(files_part, ec);
      return t.status;
    }
  }
  if (!files_out) return IoError("writing " + files_part);
  for (FileTask& t : tasks) {
    for (size_t wi = 0; wi < t.files.size(); ++wi) {
      ScenarioTruth::File& f = t.files[wi];
      const std::string label =
          per_day == 1 ? f.day : fmt::format("{}T{:02d}", f.day, (f.start_us % kDayUs) / kHourUs);
      for (size_t k = 0; k < f.truth.planted.size(); ++k) {
        ScenarioTruth::Event& te = truth.events[t.planted_event[wi][k].first];
        te.packets += f.truth.planted[k].packets;
        te.packets_by_file[{f.sensor, label}] += f.truth.planted[k].packets;
      }
      truth.packets += f.truth.packets;
      truth.files.push_back(std::move(f));
    }
  }

  // The ground truth.
  nlohmann::ordered_json j;
  j["scenario"] = sc.name;
  j["file"] = sc.path;
  j["seed"] = sc.seed;
  j["scale"] = sc.scale;
  j["start"] = TimeZone::DayString(static_cast<int32_t>(sc.start_us / kDayUs));
  j["days"] = sc.days;
  nlohmann::ordered_json phases = nlohmann::ordered_json::array();
  for (const ScenarioPhase& p : sc.phases) {
    nlohmann::ordered_json pj;
    pj["name"] = p.name;
    pj["start"] = TimeZone::DayString(static_cast<int32_t>(p.start_us / kDayUs));
    pj["days"] = p.days;
    pj["packets_per_sensor_day"] = p.packets_per_sensor_day;
    pj["sources"] = p.sources;
    pj["country_weights"] = p.base.country_weights;
    phases.push_back(pj);
  }
  j["phases"] = phases;
  j["packets"] = truth.packets;
  nlohmann::ordered_json sensors = nlohmann::ordered_json::array();
  for (const ScenarioSensor& s : sc.sensors) {
    std::vector<std::string> prefixes;
    for (const Prefix& p : s.prefixes) prefixes.push_back(p.ToString());
    sensors.push_back(
        {{"id", s.id}, {"group", s.group}, {"country", s.country}, {"prefixes", prefixes}});
  }
  j["sensors"] = sensors;
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const ScenarioTruth::Event& te : truth.events) {
    const ScenarioEvent& e = *te.spec;
    nlohmann::ordered_json ej;
    ej["name"] = e.name;
    ej["kind"] = EventKindName(e.kind);
    ej["start_us"] = e.start_us;
    ej["end_us"] = e.end_us;
    ej["magnitude"] = e.magnitude;
    ej["regions"] = e.regions;
    // Only where they differ from a whole-region silence, so older scenarios' truth is unchanged.
    if (e.kind == EventKind::kSilence && (e.share < 1 || !e.asns.empty())) {
      ej["share"] = e.share;
      ej["asns"] = e.asns;
    }
    if (e.kind != EventKind::kSilence) {
      ej["tool"] = ToolName(e.tool);
      nlohmann::ordered_json ports = nlohmann::ordered_json::array();
      for (const PortWeight& p : e.ports) ports.push_back({p.port, p.weight});
      ej["ports"] = ports;
      if (e.kind == EventKind::kPortMove) {
        ej["from_profile"] = e.from_profile;
        ej["shift"] = e.shift;
      }
      ej["packets"] = te.packets;
      nlohmann::ordered_json by_file = nlohmann::ordered_json::array();
      for (const auto& [key, n] : te.packets_by_file) {
        nlohmann::ordered_json fj = {{"sensor", key.first}, {"day", key.second.substr(0, 10)}};
        if (key.second.size() > 10) fj["hour"] = std::stoi(key.second.substr(11));
        fj["packets"] = n;
        by_file.push_back(fj);
      }
      ej["packets_by_file"] = by_file;
      nlohmann::ordered_json srcs = nlohmann::ordered_json::array();
      for (size_t k = 0; k < te.sources.size(); ++k) {
        srcs.push_back({IpAddr::V4(te.sources[k]).ToString(), te.source_countries[k]});
      }
      ej["sources"] = srcs;
    }
    events.push_back(ej);
  }
  j["events"] = events;
  if (!truth.outages.empty()) {
    nlohmann::ordered_json outages = nlohmann::ordered_json::array();
    for (const ScenarioTruth::Outage& o : truth.outages) {
      outages.push_back({{"event", o.event},
                         {"dimension", o.dimension},
                         {"key", o.key},
                         {"start_us", o.start_us},
                         {"end_us", o.end_us},
                         {"share", o.share}});
    }
    j["outages"] = outages;
  }
  // The file entries follow, copied from files_part: the rest is dumped without its closing
  // brace, then `"files": [ … ]` is appended.
  std::string head = j.dump(1);
  head.resize(head.size() - 2);  // "\n}"
  const std::string path = out.dir + "/ground_truth.json";
  {
    std::ofstream o(path + ".partial", std::ios::trunc);
    o << head << ",\n \"files\": [\n";
    std::ifstream in(files_part, std::ios::binary);
    o << in.rdbuf();
    o << "\n ]\n}\n";
    if (!in || !o) return IoError("writing " + path);
  }
  std::filesystem::remove(files_part, ec);
  std::filesystem::rename(path + ".partial", path, ec);
  if (ec) return IoError("renaming " + path + ".partial: " + ec.message());
  if (truth_out) *truth_out = std::move(truth);
  return OkStatus();
}

}  // namespace teiten::simulate
