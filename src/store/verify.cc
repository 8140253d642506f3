#include "store/verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <map>
#include <set>

#include "common/backscatter.h"
#include "store/store.h"

namespace teiten {
namespace {

namespace fs = std::filesystem;

// What the rollups of one key must say, made from rows.
struct Expected {
  SensorDay day;  // all its counters (sensor-day keys and pooled days)
};

std::string Counts(uint64_t packets, uint64_t sources) {
  return fmt::format("{} packets from {} sources", packets, sources);
}

// The key's parts decoded and united into one entry.
Result<SensorDay> Stored(const Store& store, const std::vector<std::string>& parts,
                         VerifyReport* report) {
  SensorDay all;
  for (const auto& rel : parts) {
    auto f = RollupFile::Open((fs::path(store.dir()) / rel).string());
    if (!f.ok()) return f.status();
    RETURN_IF_ERROR((*f)->Verify());
    ASSIGN_OR_RETURN(DayRollup r, (*f)->Decode());
    for (const auto& [sensor, sd] : r.sensors) all.Merge(sd);
  }
  (void)report;
  return all;
}

// Compares a key's stored counters with those made from the rows. `full`: also by country and
// ASN, and distinct sources by port (the sensors' day keys); else total and packets by port.
void Compare(const std::string& what, SensorDay& want, SensorDay& got, bool full,
             VerifyReport* report) {
  auto fault = [&](const std::string& s) {
    if (report->faults.size() < 1000) report->faults.push_back(what + ": " + s);
  };
  want.total.sources.Normalize();
  got.total.sources.Normalize();
  if (want.total.packets != got.total.packets ||
      want.total.sources.Count() != got.total.sources.Count()) {
    fault(fmt::format("{} in the rollup, {} in the segments",
                      Counts(got.total.packets, got.total.sources.Count()),
                      Counts(want.total.packets, want.total.sources.Count())));
    return;
  }
  std::map<PortKey, PortCell*> mine;
  for (PortCell& c : got.ports) mine[c.key] = &c;
  if (mine.size() != want.ports.size()) {
    fault(
        fmt::format("{} ports in the rollup, {} in the segments", mine.size(), want.ports.size()));
    return;
  }
  for (PortCell& c : want.ports) {
    auto it = mine.find(c.key);
    if (it == mine.end() || it->second->packets != c.packets) {
      fault(fmt::format("port {}: {} packets in the rollup, {} in the segments",
                        PortKeyToString(c.key), it == mine.end() ? 0 : it->second->packets,
                        c.packets));
      return;
    }
    if (full) {
      c.sources.Normalize();
      it->second->sources.Normalize();
      if (c.sources.Count() != it->second->sources.Count()) {
        fault(fmt::format("port {}: {} sources in the rollup, {} in the segments",
                          PortKeyToString(c.key), it->second->sources.Count(), c.sources.Count()));
        return;
      }
    }
  }
  if (!full) return;
  auto cells = [&](auto& w, auto& g, const char* name) {
    if (w.size() != g.size()) {
      fault(fmt::format("{} {}s in the rollup, {} in the segments", g.size(), name, w.size()));
      return false;
    }
    for (auto& [k, c] : w) {
      auto it = g.find(k);
      c.sources.Normalize();
      if (it == g.end() || it->second.packets != c.packets ||
          (it->second.sources.Normalize(), it->second.sources.Count() != c.sources.Count())) {
        fault(fmt::format("{} {}: differs from the segments ({})", name, k,
                          Counts(c.packets, c.sources.Count())));
        return false;
      }
    }
    return true;
  };
  if (cells(want.countries, got.countries, "country")) cells(want.asns, got.asns, "ASN");
}

}  // namespace

Result<VerifyReport> VerifyStore(const std::string& dir) {
  VerifyReport report;
  auto fault = [&](const std::string& s) {
    if (report.faults.size() < 1000) report.faults.push_back(s);
  };
  auto opened = Store::Open(dir, {});
  if (!opened.ok()) {
    if (opened.status().code() == StatusCode::kNotFound) return opened.status();
    fault(opened.status().message());  // the manifest or FORMAT is damaged: nothing else holds
    return report;
  }
  const Store& store = **opened;
  const Manifest& m = store.manifest();
  // Files named, and on disk.
  std::vector<std::string> files = ManifestFiles(m);
  std::set<std::string> named(files.begin(), files.end());
  std::set<std::string> replaced(m.garbage.begin(), m.garbage.end());
  for (const auto& rel : named) {
    std::error_code ec;
    if (!fs::exists(fs::path(dir) / rel, ec))
      fault(fmt::format("{}/{}: named by the manifest, missing", dir, rel));
  }
  for (const char* sub : {"seg", "rollup", "idx", "man"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path(dir) / sub, ec)) {
      std::string rel = std::string(sub) + "/" + e.path().filename().string();
      if (named.count(rel)) continue;
      report.warnings.push_back(
          replaced.count(rel)
              ? fmt::format("{}/{}: replaced by a commit while a reader held an older snapshot; "
                            "the next commit that finds no reader removes it",
                            dir, rel)
              : fmt::format("{}/{}: named by no manifest (left by a writer that died; the next "
                            "writer removes it)",
                            dir, rel));
    }
  }
  // Rollup parts and indexes, whole.
  std::set<std::string> parts;
  store.ForEachRollup([&](const std::string& f) { parts.insert(f); });
  for (const auto& rel : parts) {
    ++report.rollup_files;
    auto f = RollupFile::Open((fs::path(dir) / rel).string());
    Status st = f.ok() ? (*f)->Verify() : f.status();
    if (st.ok()) st = (*f)->Decode().status();
    if (!st.ok()) {
      fault(st.message());
      continue;
    }
    // The manifest's counts of a sensor-day part (what a summary reads instead of the part).
    auto c = m.part_counts.find(rel);
    if (c == m.part_counts.end()) continue;
    const auto& views = (*f)->sensors();
    if (views.size() != 1 || views[0].packets != c->second.packets ||
        views[0].sources != c->second.sources) {
      fault(fmt::format(
          "{}/{}: the manifest's day_counts say {} packets from {} sources, the part "
          "{}",
          dir, rel, c->second.packets, c->second.sources,
          views.size() == 1 ? fmt::format("{} from {}", views[0].packets, views[0].sources)
                            : fmt::format("has {} entries", views.size())));
    }
  }
  // Each input's index files, whole, and against its segments: the packets its visits name in
  // each segment are that segment's rows (a merged index that lost or doubled a visit fails).
  std::map<uint64_t, uint64_t> seg_rows;
  for (const auto& s : m.segments) seg_rows[s.id] = s.rows;
  for (const auto& in : m.inputs) {
    std::map<uint64_t, uint64_t> by_segment;
    bool whole = true;
    for (uint64_t id : in.Indexes()) {
      ++report.index_files;
      auto x = store.OpenIndex(id);
      Status st = x.ok() ? (*x)->Verify() : x.status();
      if (st.ok()) st = (*x)->PacketsBySegment(&by_segment);
      if (!st.ok()) {
        fault(st.message());
        whole = false;
      }
    }
    if (in.folded_file) {
      // The folded captures' identities: whole, every record readable, as many as the manifest
      // says (a lost identity would let that capture be counted again).
      auto f = IdentityFile::Open(
          (fs::path(dir) / fmt::format("idx/{:08}.tids", in.folded_file)).string());
      Status st = f.ok() ? (*f)->Verify() : f.status();
      if (st.ok()) {
        auto all = (*f)->All();
        if (!all.ok()) {
          st = all.status();
        } else if (all->size() != in.folded_count) {
          st = DataLoss(fmt::format("{}/idx/{:08}.tids: {} captures, the manifest says {}", dir,
                                    in.folded_file, all->size(), in.folded_count));
        }
      }
      if (!st.ok()) fault(st.message());
    }
    if (!whole || in.Indexes().empty()) continue;
    for (uint64_t seg : in.segments) {
      auto named = by_segment.find(seg);
      uint64_t got = named == by_segment.end() ? 0 : named->second;
      if (seg_rows.count(seg) && got != seg_rows[seg]) {
        fault(
            fmt::format("{}: input {} ({}): its source index names {} packets in segment {:08}, "
                        "which holds {} rows",
                        dir, in.hash, in.path, got, seg, seg_rows[seg]));
      }
    }
    std::set<uint64_t> own(in.segments.begin(), in.segments.end());
    for (const auto& [seg, n] : by_segment) {
      // Segments retention dropped are no longer the input's; others must be.
      if (!own.count(seg) && seg_rows.count(seg)) {
        fault(fmt::format("{}: input {} ({}): its source index names segment {:08}, not its own",
                          dir, in.hash, in.path, seg));
      }
    }
  }
  // Segments, every column of every block, and what the rollups must say, a day at a time.
  std::map<int32_t, std::vector<const SegmentRecord*>> by_day;
  for (const auto& s : m.segments) by_day[s.day].push_back(&s);
  for (const auto& [d, per_sensor] : m.days) by_day[d];
  // Months and quarters (pooled: kAllSensors, and each sensor's), filled as days go by.
  std::map<std::pair<std::string, uint16_t>, SensorDay> periods;
  // Compares and frees every month and quarter but those of `keep_month` / its quarter (days
  // come in order, so a period is whole once a later one begins): memory for one quarter.
  auto flush_periods = [&](const std::string& keep_month, const std::string& keep_quarter) {
    for (auto it = periods.begin(); it != periods.end();) {
      const std::string& p = it->first.first;
      if (p == keep_month || p == keep_quarter) {
        ++it;
        continue;
      }
      uint16_t sensor = it->first.second;
      if (m.segments_from != INT32_MIN) {
        // A period with days before retention's cut has rows only for some of them.
        int y = std::stoi(p.substr(0, 4));
        unsigned mo = p.size() == 6 ? (static_cast<unsigned>(p[5] - '0') - 1) * 3 + 1
                                    : static_cast<unsigned>(std::stoi(p.substr(5, 2)));
        if (TimeZone::DaysFromCivil(y, mo, 1) < m.segments_from) {
          it = periods.erase(it);
          continue;
        }
      }
      std::string label = sensor == kAllSensors ? p : Store::SensorPeriodLabel(p, sensor);
      auto named_parts = m.periods.find(label);
      if (named_parts != m.periods.end()) {  // else a store written before that key existed
        auto got = Stored(store, named_parts->second, &report);
        if (got.ok()) Compare(fmt::format("{}: {}", dir, label), it->second, *got, false, &report);
      }
      it = periods.erase(it);
    }
  };
  DecodedBlock blk;
  for (auto& [d, segs] : by_day) {
    if (d < m.segments_from) continue;  // retention dropped its rows: its rollups stand alone
    ++report.days;
    flush_periods(Store::MonthLabel(d), Store::QuarterLabel(d));
    std::map<uint16_t, SensorDay> want;
    bool readable = true;
    for (const SegmentRecord* s : segs) {
      ++report.segments;
      auto reader = store.OpenSegment(s->id);
      if (!reader.ok()) {
        fault(reader.status().message());
        readable = false;
        continue;
      }
      uint64_t rows = 0, misplaced = 0;
      for (size_t b = 0; b < (*reader)->blocks().size(); ++b) {
        ++report.blocks;
        Status st = (*reader)->ReadBlock(b, col::kAll, &blk);
        if (!st.ok()) {
          fault(st.message());
          readable = false;
          break;
        }
        const auto& r = blk.batch.rows;
        rows += r.size();
        // `teiten dos` reads only the segments that say they hold backscatter.
        if (s->rows_of != SegmentRows::kAll) {
          const bool want_backscatter = s->rows_of == SegmentRows::kBackscatter;
          for (const Observation& o : r) misplaced += IsBackscatter(o) != want_backscatter;
        }
        for (size_t i = 0; i < r.size();) {
          size_t e = i + 1;
          while (e < r.size() && r[e].src == r[i].src && r[e].sensor == r[i].sensor) ++e;
          SensorDay& sd = want[r[i].sensor];
          sd.AddRun(r[i].src, blk.geo[i], e - i);
          for (size_t k = i; k < e; ++k) {
            PortCell& c = sd.Port(PortKeyOf(r[k]));
            c.packets++;
            c.sources.Add(r[k].src);
          }
          i = e;
        }
      }
      report.rows += rows;
      if (misplaced > 0) {
        fault(fmt::format(
            "{}/seg/{:08}.tseg: {} rows that are {}backscatter, in a segment of "
            "rows that are {}",
            dir, s->id, misplaced, s->rows_of == SegmentRows::kBackscatter ? "not " : "",
            s->rows_of == SegmentRows::kBackscatter ? "backscatter" : "not backscatter"));
      }
      if (readable && rows != s->rows) {
        fault(fmt::format("{}/seg/{:08}.tseg: {} rows, the manifest says {}", dir, s->id, rows,
                          s->rows));
      }
    }
    if (!readable) continue;  // a damaged segment: its day's rollups cannot be checked
    const std::string day = TimeZone::DayString(d);
    SensorDay pooled_want;
    auto day_keys = m.days.find(d);
    for (auto& [sensor, sd] : want) {
      pooled_want.Merge(sd);
      for (const std::string& p : {Store::MonthLabel(d), Store::QuarterLabel(d)}) {
        periods[{p, sensor}].Merge(sd);
        periods[{p, kAllSensors}].Merge(sd);
      }
      const std::vector<std::string>* parts_of =
          day_keys == m.days.end() || !day_keys->second.count(sensor)
              ? nullptr
              : &day_keys->second.at(sensor);
      if (!parts_of) {
        fault(fmt::format("{}: day {} at sensor {}: rows in the segments, no rollup", dir, day,
                          sensor));
        continue;
      }
      auto got = Stored(store, *parts_of, &report);
      if (!got.ok()) continue;  // reported above, file by file
      Compare(fmt::format("{}: day {} at sensor {}", dir, day, sensor), sd, *got, true, &report);
    }
    if (day_keys != m.days.end()) {
      for (const auto& [sensor, parts_of] : day_keys->second) {
        if (!want.count(sensor)) {
          fault(fmt::format("{}: day {} at sensor {}: a rollup, no rows in the segments", dir, day,
                            sensor));
        }
      }
    }
    auto pooled = m.periods.find(Store::DayLabel(d));
    if (pooled != m.periods.end() && !want.empty()) {
      auto got = Stored(store, pooled->second, &report);
      if (got.ok()) {
        Compare(fmt::format("{}: day {}, every sensor", dir, day), pooled_want, *got, false,
                &report);
      }
    }
  }
  flush_periods("", "");
  return report;
}

}  // namespace teiten
