// Merging rollup parts (Store::Merge): see store.h and docs/STORE_FORMAT.md.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "store/durable.h"
#include "store/file_out.h"
#include "store/store.h"

namespace teiten {
namespace {

namespace fs = std::filesystem;

// The ids a detached merge gives its index files until they are published
// (Transaction::temp_indexes_): far above any id a store hands out.
constexpr uint64_t kTempIndexId = uint64_t{1} << 60;

// With yield_to_writers, waits while a transaction holds the store's writer lock; the seconds
// waited are added to `*waited`.
void YieldToWriters(const std::string& dir, const MergeOptions& o, double* waited) {
  if (!o.yield_to_writers) return;
  OwnedFd fd(::open((fs::path(dir) / "LOCK").c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) return;
  auto t0 = std::chrono::steady_clock::now();
  while (FlockRetry(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) break;
    ::usleep(20000);
  }
  FlockRetry(fd.get(), LOCK_UN);
  *waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Size tier of a part: 0 below 64 KiB, then one tier per factor of 4. Parts of one tier are of
// comparable size, so merging a tier's parts rewrites each byte once per tier it climbs: about
// log4(size / 64 KiB) times over its life, whatever the number of commits.
int Tier(uint64_t bytes) {
  int t = 0;
  for (uint64_t b = bytes >> 16; b > 0; b >>= 2) ++t;
  return t;
}

// The parts of one key (a sensor's day, or a period label) to merge together: indexes into its
// list. Empty when nothing is due.
// `sizes` are the parts' bytes on disk (for tiers), `mem` what each holds decoded (for the cap).
std::vector<size_t> Choose(const std::vector<uint64_t>& sizes, const std::vector<uint64_t>& mem,
                           const MergeOptions& o) {
  std::vector<size_t> pick;
  if (sizes.size() < 2) return pick;
  std::vector<size_t> order(sizes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sizes[a] < sizes[b]; });
  if (o.all) {
    // As few parts as the size cap allows: the smallest first.
    uint64_t sum = 0;
    for (size_t i : order) {
      if (!pick.empty() && sum + mem[i] > o.max_merge_memory) break;
      if (pick.size() >= o.max_parts) break;
      pick.push_back(i);
      sum += mem[i];
    }
    if (pick.size() < 2) pick.clear();
    return pick;
  }
  // The lowest tier holding min_parts parts, merged whole if the result stays under the cap.
  std::map<int, std::vector<size_t>> tiers;
  for (size_t i : order) tiers[Tier(sizes[i])].push_back(i);
  for (auto& [tier, members] : tiers) {
    if (members.size() < o.min_parts) continue;
    uint64_t sum = 0;
    for (size_t i : members) {
      if (!pick.empty() && sum + mem[i] > o.max_merge_memory) break;
      if (pick.size() >= o.max_parts) break;
      pick.push_back(i);
      sum += mem[i];
    }
    if (pick.size() >= 2) return pick;
    pick.clear();
  }
  return pick;
}

// Whether some size tier holds `min_parts` parts (a merge may be due).
bool TierDue(const std::vector<uint64_t>& sizes, size_t min_parts) {
  std::map<int, size_t> count;
  for (uint64_t b : sizes) {
    if (++count[Tier(b)] >= min_parts) return true;
  }
  return false;
}

// The days of a key's label: "2018-07-01", "2018-07" or "2018Q3", each maybe with "/sN".
MergedSpan LabelSpan(const std::string& label) {
  MergedSpan span;
  span.slots = false;  // a pooled day, a month or a quarter: 5-minute counts stay with the days
  const std::string base = label.substr(0, label.find('/'));
  const int y = std::stoi(base.substr(0, 4));
  auto month_start = [&](unsigned m) {
    return m > 12 ? TimeZone::DaysFromCivil(y + 1, m - 12, 1) : TimeZone::DaysFromCivil(y, m, 1);
  };
  if (base.size() == 6 && base[4] == 'Q') {
    unsigned m0 = (static_cast<unsigned>(base[5] - '0') - 1) * 3 + 1;
    span.day = month_start(m0);
    span.end_day = month_start(m0 + 3);
  } else if (base.size() == 7) {
    unsigned m = static_cast<unsigned>(std::stoi(base.substr(5, 2)));
    span.day = month_start(m);
    span.end_day = month_start(m + 1);
  } else {
    span.day = TimeZone::DaysFromCivil(y, static_cast<unsigned>(std::stoi(base.substr(5, 2))),
                                       static_cast<unsigned>(std::stoi(base.substr(8, 2))));
    span.end_day = span.day + 1;
  }
  return span;
}

// A merge's result stands for the parts it replaced in every other key that names all of them
// (a month and a quarter name the sensor-day parts of their days): sets unite and counts add,
// so the key's answers are the same, and its own merge later reads one part, not the days again.
struct Replacement {
  std::vector<std::string> old;  // sorted
  std::string merged;
  int entry;  // the merged part's one entry (a sensor, or kAllSensors)
};

// Applies the replacements to `parts` (of a key holding `sensor`'s counts, or kAllSensors for a
// pooled key, which may name any sensor's parts): true when it changed.
bool Replace(const std::vector<Replacement>& subs, uint16_t sensor,
             std::vector<std::string>* parts) {
  bool changed = false;
  for (const Replacement& r : subs) {
    if (sensor != kAllSensors && r.entry != sensor) continue;
    if (r.old.size() > parts->size()) continue;
    std::vector<size_t> at;
    for (const std::string& o : r.old) {
      auto it = std::find(parts->begin(), parts->end(), o);
      if (it == parts->end()) break;
      at.push_back(static_cast<size_t>(it - parts->begin()));
    }
    if (at.size() != r.old.size()) continue;
    std::sort(at.begin(), at.end());
    (*parts)[at[0]] = r.merged;
    for (size_t k = at.size(); k-- > 1;)
      parts->erase(parts->begin() + static_cast<ptrdiff_t>(at[k]));
    changed = true;
  }
  return changed;
}

}  // namespace

Result<MergeStats> Store::Merge(const MergeOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  MergeStats stats;
  // One merge at a time: the lock on MERGER, whose byte is '1' while a merge runs and '0' once
  // it ended (anything else: a merge was killed, and its files are lying around).
  const std::string lock = (fs::path(dir_) / "MERGER").string();
  std::string seen;  // the manifest as this merge last saw it
  {
    OwnedFd fd(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (fd.get() < 0) return IoError(fmt::format("{}: {}", lock, std::strerror(errno)));
    if (FlockRetry(fd.get(), opts.try_lock ? LOCK_EX | LOCK_NB : LOCK_EX) != 0) {
      if (opts.try_lock && errno == EWOULDBLOCK) {
        stats.busy = true;
        return stats;
      }
      return IoError(fmt::format("flock {}: {}", lock, std::strerror(errno)));
    }
    char mark = 0;
    const bool killed = ::pread(fd.get(), &mark, 1, 0) != 1 || mark != '0';
    if (::pwrite(fd.get(), "1", 1, 0) != 1 || ::fdatasync(fd.get()) != 0) {
      return IoError(fmt::format("write {}: {}", lock, std::strerror(errno)));
    }
    // The snapshot merged against: the newest manifest, its generation held by this Store so
    // that no writer removes the parts being read. The writer lock only for that moment (and to
    // remove what a killed merge left).
    Manifest snap;
    {
      ASSIGN_OR_RETURN(auto txn, Begin());
      if (killed) SweepMergeFiles();
      snap = manifest_;
    }
    if (opts.after_snapshot) opts.after_snapshot();
    std::unique_ptr<Transaction> work(new Transaction(this, -1));
    bool changed = false;
    RETURN_IF_ERROR(work->MergeParts(opts, &stats, &changed));
    if (opts.before_publish) opts.before_publish();
    if (changed) {
      ASSIGN_OR_RETURN(auto txn, Begin());
      stats.newer = manifest_.generation != snap.generation;
      RETURN_IF_ERROR(txn->ApplyMerge(snap, work.get(), &stats));
    }
    seen = manifest_id_;
    work.reset();  // what it wrote and ApplyMerge did not take is removed
    if (::pwrite(fd.get(), "0", 1, 0) != 1) {
      // Not fatal: the next merge sweeps the store's merge files once, which is only slower.
    }
  }  // releases the lock
  // A commit published after the look above (its merge, started meanwhile, found the lock taken
  // and left): the caller looks again.
  stats.newer = stats.newer || ManifestIdentity() != seen;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

namespace {

// Puts `merged` (a detached merge's list of a key) in the place of `snap` (the key's list in
// the snapshot it merged) in `cur` (the key's list now): the parts it replaced must all still be
// named. False (and `cur` untouched) when they are not.
bool ApplyList(const std::vector<std::string>& snap, const std::vector<std::string>& merged,
               std::vector<std::string>* cur) {
  std::set<std::string> was(snap.begin(), snap.end()), is(merged.begin(), merged.end());
  std::set<std::string> gone;
  for (const auto& p : snap) {
    if (!is.count(p)) gone.insert(p);
  }
  std::vector<std::string> added;
  for (const auto& p : merged) {
    if (!was.count(p)) added.push_back(p);
  }
  size_t present = 0;
  for (const auto& p : *cur) present += gone.count(p);
  if (present != gone.size()) return false;
  std::vector<std::string> out;
  bool placed = gone.empty();
  for (const auto& p : *cur) {
    if (!gone.count(p)) {
      out.push_back(p);
    } else if (!placed) {
      out.insert(out.end(), added.begin(), added.end());
      placed = true;
    }
  }
  if (!placed) out.insert(out.end(), added.begin(), added.end());
  *cur = std::move(out);
  return true;
}

}  // namespace

Status Store::Transaction::ApplyMerge(const Manifest& snap, Transaction* work, MergeStats* stats) {
  const std::string& dir = store_->dir_;
  bool changed = false;
  for (const auto& [day, per_sensor] : work->next_.days) {
    auto sd = snap.days.find(day);
    if (sd == snap.days.end()) continue;
    for (const auto& [sensor, parts] : per_sensor) {
      auto sp = sd->second.find(sensor);
      if (sp == sd->second.end() || sp->second == parts) continue;
      auto cd = next_.days.find(day);
      std::vector<std::string>* cur = nullptr;
      if (cd != next_.days.end()) {
        auto cp = cd->second.find(sensor);
        if (cp != cd->second.end()) cur = &cp->second;
      }
      if (cur && ApplyList(sp->second, parts, cur)) {
        changed = true;
      } else {
        stats->dropped++;
      }
    }
  }
  for (const auto& [label, parts] : work->next_.periods) {
    auto sp = snap.periods.find(label);
    if (sp == snap.periods.end() || sp->second == parts) continue;
    auto cp = next_.periods.find(label);
    if (cp != next_.periods.end() && ApplyList(sp->second, parts, &cp->second)) {
      changed = true;
    } else {
      stats->dropped++;
    }
  }
  for (const auto& [rel, counts] : work->next_.part_counts) {
    if (next_.part_counts.emplace(rel, counts).second) changed = true;
  }
  // An input's merged index: taken when the input still has the files it was merged from (a
  // fold replaces the input and makes its index again). Its file gets the next id now.
  std::map<std::string, const InputRecord*> was;
  for (const InputRecord& in : snap.inputs) was[in.hash] = &in;
  std::map<std::string, const InputRecord*> merged;
  for (const InputRecord& in : work->next_.inputs) {
    auto w = was.find(in.hash);
    if (w != was.end() &&
        (w->second->index != in.index || w->second->more_indexes != in.more_indexes)) {
      merged[in.hash] = &in;
    }
  }
  for (InputRecord& in : next_.inputs) {
    auto m = merged.find(in.hash);
    if (m == merged.end()) continue;
    const InputRecord& old = *was.at(in.hash);
    auto temp = work->temp_indexes_.find(m->second->index);
    if (in.index != old.index || in.more_indexes != old.more_indexes ||
        temp == work->temp_indexes_.end()) {
      stats->dropped++;
      continue;
    }
    const uint64_t id = next_.next_id++;
    const std::string path = (fs::path(dir) / fmt::format("idx/{:08}.tsix", id)).string();
    if (::rename(temp->second.c_str(), path.c_str()) != 0) {
      return IoError(fmt::format("rename {} to {}: {}", temp->second, path, std::strerror(errno)));
    }
    written_.push_back(path);
    work->written_.erase(std::remove(work->written_.begin(), work->written_.end(), temp->second),
                         work->written_.end());
    work->temp_indexes_.erase(temp);
    in.index = id;
    in.more_indexes.clear();
    changed = true;
  }
  // Every other file the merge wrote is this transaction's: kept where named, removed if not.
  written_.insert(written_.end(), work->written_.begin(), work->written_.end());
  work->written_.clear();
  if (!changed) return OkStatus();  // the destructor removes what was written
  return Publish();
}

Status Store::Transaction::MergeParts(const MergeOptions& opts, MergeStats* stats, bool* changed) {
  *changed = false;
  const std::string& dir = store_->dir_;
  uint64_t gen = next_.generation + 1;
  int serial = 0;
  uint64_t cold_read = 0;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  // Merges the chosen parts of one list in place; `name` is the merged file's stem. `entry` is
  // the one sensor entry the merged part holds (kAllSensors for a pooled key, whose parts may be
  // one sensor's parts shared with that sensor's key), or -1 to keep each part's entries.
  // Replacements made by this pass, by the label of the key they may stand in (a day's merge
  // in its pooled day, month and quarter; a month's in its quarter).
  std::map<std::string, std::vector<Replacement>> subs;
  auto merge_list = [&](std::vector<std::string>* parts, const std::string& name, int entry,
                        const MergedSpan& span,
                        const std::vector<std::string>& stands_in) -> Status {
    for (int round = 0; round < 64; ++round) {
      // One stat per part gives its size (for tiers) and age (for the cold pass); nothing is
      // opened unless a merge is due, so looking at a settled key costs a few syscalls.
      std::vector<uint64_t> sizes;
      int64_t newest = 0;
      for (const auto& rel : *parts) {
        struct stat st {};
        if (::stat((fs::path(dir) / rel).c_str(), &st) != 0) {
          return IoError(fmt::format("{}/{}: {}", dir, rel, std::strerror(errno)));
        }
        sizes.push_back(static_cast<uint64_t>(st.st_size));
        newest = std::max<int64_t>(newest, st.st_mtime);
      }
      MergeOptions key_opts = opts;
      const bool hot = newest > now - opts.cold_after_s;
      if (opts.cold_after_s > 0 && !opts.all && parts->size() > 1 &&
          cold_read < opts.cold_budget_bytes) {
        key_opts.all = !hot;
      }
      // A key left in several parts while one of them is fresh (a commit's, or a merge's that
      // another key's merge stood in for) turns cold later: the caller learns when, so that a
      // merge can come back for it (MergeStats::next_cold_at).
      auto leave = [&] {
        if (opts.cold_after_s > 0 && !opts.all && parts->size() > 1 && hot) {
          const int64_t at = newest + opts.cold_after_s;
          if (stats->next_cold_at == 0 || at < stats->next_cold_at) stats->next_cold_at = at;
        }
        return OkStatus();
      };
      if (!key_opts.all && !TierDue(sizes, key_opts.min_parts)) return leave();
      // What merging a part holds in memory. Parts of one entry are merged key by key
      // (MergeRollupParts): only their port × country and key records are held whole (~64 and
      // ~80 bytes each), whatever the size of their sets. Others are decoded: their set
      // members (a few bytes each on disk, ~4 times that in memory) and counter records (a port
      // cell with its maps and summaries ~600 bytes).
      std::vector<uint64_t> mem;
      for (size_t i = 0; i < parts->size(); ++i) {
        uint64_t records = 0, pairs = 0, keys = 0;
        bool one_entry = false;
        auto f = RollupFile::Open((fs::path(dir) / (*parts)[i]).string());
        if (f.ok()) {
          one_entry = (*f)->sensors().size() == 1;
          for (const auto& v : (*f)->sensors()) {
            const uint64_t k = v.key_count[0] + v.key_count[1] + v.key_count[2];
            keys += k;
            records += k + v.port_country_count;
            pairs += v.port_country_count;
          }
        }
        // A streamed merge also holds each part's key records decoded (format 6, 40 bytes each)
        // and the merged part's.
        mem.push_back(one_entry ? pairs * 64 + keys * 80 : sizes[i] * 4 + records * 600);
      }
      std::vector<size_t> pick = Choose(sizes, mem, key_opts);
      if (key_opts.all && !opts.all) {
        for (size_t i : pick) cold_read += sizes[i];
      }
      if (pick.empty()) return leave();
      YieldToWriters(dir, opts, &stats->yielded_seconds);
      std::vector<std::unique_ptr<RollupFile>> files;
      bool by_key = true;  // every part one entry, of one sensor unless `entry` relabels them
      for (size_t i : pick) {
        ASSIGN_OR_RETURN(auto f, RollupFile::Open((fs::path(dir) / (*parts)[i]).string()));
        by_key = by_key && f->sensors().size() == 1 &&
                 (entry >= 0 || files.empty() ||
                  f->sensors()[0].sensor == files.front()->sensors()[0].sensor);
        files.push_back(std::move(f));
        stats->bytes_read += sizes[i];
      }
      std::string rel = fmt::format("rollup/{}.{:08}.m{:05}.troll", name, gen, ++serial);
      std::string path = (fs::path(dir) / rel).string();
      written_.push_back(path);
      if (by_key) {
        std::vector<const RollupFile*> in;
        for (const auto& f : files) in.push_back(f.get());
        ASSIGN_OR_RETURN(uint64_t n, MergeRollupParts(in, entry, path, span));
        stats->bytes_written += n;
      } else {
        DayRollup merged;
        bool first = true;
        for (const auto& f : files) {
          ASSIGN_OR_RETURN(DayRollup one, f->Decode());
          if (entry >= 0 && (one.sensors.size() != 1 || one.sensors.begin()->first != entry)) {
            SensorDay all;
            for (const auto& [sensor, sd] : one.sensors) all.Merge(sd);
            one.sensors.clear();
            one.sensors[static_cast<uint16_t>(entry)] = std::move(all);
          }
          if (first) {
            merged = std::move(one);
            first = false;
          } else {
            merged.Merge(one);
          }
        }
        if (span.day != INT32_MIN) {
          merged.day = span.day;
          merged.end_day = span.end_day;
        }
        if (!span.slots) {
          for (auto& [sensor, sd] : merged.sensors) sd.slots.clear();
        }
        std::vector<uint8_t> bytes = merged.Encode();
        RETURN_IF_ERROR(WriteFileDurably(path, bytes.data(), bytes.size()));
        stats->bytes_written += bytes.size();
      }
      // A sensor-day's merged part (entry -1: the parts' own) keeps its counts in the manifest;
      // a period's is not read by a summary.
      if (entry < 0) {
        auto merged = RollupFile::Open(path);
        if (merged.ok() && (*merged)->sensors().size() == 1) {
          const auto& v = (*merged)->sensors()[0];
          next_.part_counts[rel] = {v.packets, v.sources};
        }
      }
      stats->merges++;
      stats->parts_merged += pick.size();
      {
        Replacement r;
        for (size_t i : pick) r.old.push_back((*parts)[i]);
        std::sort(r.old.begin(), r.old.end());
        r.merged = rel;
        r.entry = entry >= 0 ? entry : files.front()->sensors()[0].sensor;
        for (const std::string& label : stands_in) subs[label].push_back(r);
      }
      // The merged part takes the place of the first one it replaces.
      std::sort(pick.begin(), pick.end());
      (*parts)[pick[0]] = rel;
      for (size_t k = pick.size(); k-- > 1;) {
        parts->erase(parts->begin() + static_cast<ptrdiff_t>(pick[k]));
      }
    }
    return OkStatus();
  };
  // An input whose ingest spilled has an index file per spill, and `teiten ip` opens each: its
  // files become one (streamed, SourceIndex::Merge) in the maintenance passes — with `all`
  // every input's, otherwise inputs' until cold_budget_bytes of index files have been read —
  // and, after an ingest's commit, that input's (`index_of`). This runs on a thread of its own
  // beside the rollup merges below (the other core): it alone touches the inputs and next_id,
  // and its files and figures join the transaction's when it is done.
  struct IndexWork {
    std::vector<std::string> written;
    uint64_t merges = 0, files = 0, read = 0, wrote = 0;
    double yielded = 0;
  } iw;
  auto merge_indexes = [this, &opts, &iw, &dir, gen]() -> Status {
    uint64_t index_read = 0;
    for (InputRecord& in : next_.inputs) {
      if (in.more_indexes.empty() || in.index == 0) continue;
      const bool due = opts.all || opts.all_indexes || in.hash == opts.index_of;
      if (!due && opts.cold_after_s <= 0) continue;
      if (!due && opts.cold_after_s > 0 && index_read >= opts.cold_budget_bytes) continue;
      // In rounds of at most max_parts files, each run of consecutive files into one, so
      // that the order of the spills (which a source's visits and enrichment follow) is kept.
      std::vector<uint64_t> ids = in.Indexes();
      uint64_t files_merged = ids.size();
      while (ids.size() > 1) {
        YieldToWriters(dir, opts, &iw.yielded);
        std::vector<uint64_t> next;
        const size_t fan = std::max<size_t>(2, opts.max_parts);
        for (size_t at = 0; at < ids.size(); at += fan) {
          if (ids.size() - at == 1) {
            next.push_back(ids[at]);
            continue;
          }
          std::vector<std::unique_ptr<SourceIndex>> files;
          std::vector<const SourceIndex*> parts;
          for (size_t k = at; k < std::min(ids.size(), at + fan); ++k) {
            // An earlier round's file is still under its temporary name.
            auto temp = temp_indexes_.find(ids[k]);
            ASSIGN_OR_RETURN(auto x, temp == temp_indexes_.end() ? store_->OpenIndex(ids[k])
                                                                 : SourceIndex::Open(temp->second));
            index_read += x->size();
            iw.read += x->size();
            parts.push_back(x.get());
            files.push_back(std::move(x));
          }
          // Named for now by the snapshot's generation and a serial, with a temporary id
          // above any real one: ApplyMerge gives the file the next id when it takes it.
          const uint64_t id = kTempIndexId + temp_indexes_.size();
          std::string path = (fs::path(dir) / fmt::format("idx/merging.{:08}.{:05}.tsix", gen,
                                                          temp_indexes_.size()))
                                 .string();
          temp_indexes_[id] = path;
          iw.written.push_back(path);
          ASSIGN_OR_RETURN(uint64_t n, SourceIndex::Merge(parts, path));
          iw.wrote += n;
          next.push_back(id);
        }
        ids = std::move(next);
      }
      iw.merges++;
      iw.files += files_merged;
      in.index = ids.front();
      in.more_indexes.clear();
    }
    return OkStatus();
  };
  std::future<Status> indexing;
  if (opts.all || opts.all_indexes || opts.cold_after_s > 0 || !opts.index_of.empty()) {
    indexing = std::async(std::launch::async, merge_indexes);
  }
  // However this pass ends, the thread is done before the transaction is, and what it wrote is
  // the transaction's (removed unless committed).
  struct JoinIndexing {
    std::future<Status>* f;
    std::vector<std::string>* written;
    IndexWork* iw;
    ~JoinIndexing() {
      if (f->valid()) f->wait();
      written->insert(written->end(), iw->written.begin(), iw->written.end());
      iw->written.clear();
    }
  } join_indexing{&indexing, &written_, &iw};
  std::set<int32_t> only_days(opts.days.begin(), opts.days.end());
  std::set<std::string> only_labels;
  for (int32_t d : opts.days) {
    for (const std::string& l :
         {Store::DayLabel(d), Store::MonthLabel(d), Store::QuarterLabel(d)}) {
      only_labels.insert(l);
    }
  }
  const bool cold_pass = opts.cold_after_s > 0;
  for (auto& [day, per_sensor] : next_.days) {
    if (!only_days.empty() && !only_days.count(day) && !cold_pass) continue;
    // The pooled day, month and quarter name a commit's sensor-day parts: a day's merge
    // stands in for them there.
    const std::string month = Store::MonthLabel(day), quarter = Store::QuarterLabel(day);
    MergedSpan own;
    own.day = day;
    own.end_day = day + 1;
    for (auto& [sensor, parts] : per_sensor) {
      if (parts.size() < 2) continue;
      RETURN_IF_ERROR(
          merge_list(&parts, fmt::format("{}.s{:05}", TimeZone::DayString(day), sensor), -1, own,
                     {Store::DayLabel(day), month, quarter, Store::SensorPeriodLabel(month, sensor),
                      Store::SensorPeriodLabel(quarter, sensor)}));
    }
  }
  // Puts the merges made so far in the place of the parts they replaced in a key's list.
  auto replace_in = [&](const std::string& label, std::vector<std::string>* parts) {
    auto sub = subs.find(label);
    if (sub == subs.end()) return;
    size_t slash = label.find('/');
    const uint16_t holds = slash == std::string::npos
                               ? kAllSensors
                               : static_cast<uint16_t>(std::stoul(label.substr(slash + 2)));
    if (Replace(sub->second, holds, parts)) ++stats->replaced;
    subs.erase(sub);
  };
  for (auto& [label, parts] : next_.periods) {
    size_t slash = label.find('/');
    replace_in(label, &parts);
    if (parts.size() < 2) continue;
    if (!only_labels.empty() && !only_labels.count(label.substr(0, slash)) && !cold_pass) continue;
    std::string name =
        slash == std::string::npos
            ? label + ".all"
            : fmt::format("{}.s{:05}", label.substr(0, slash), std::stoul(label.substr(slash + 2)));
    int entry = slash == std::string::npos ? kAllSensors
                                           : static_cast<int>(std::stoul(label.substr(slash + 2)));
    // A pooled month or quarter whose parts are exactly one sensor's (a store of one sensor, or
    // a period only one sensor fed) is merged as that sensor's key, and the sensor's key then
    // names the same merged parts: one file, not two of the same counts (a single-sensor flood
    // kept 275 MB twice over for each month and quarter). Its later turn finds nothing due.
    std::vector<std::string>* twin = nullptr;
    if (slash == std::string::npos) {
      const std::string prefix = label + "/";
      for (auto it = next_.periods.lower_bound(prefix);
           it != next_.periods.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
        replace_in(it->first, &it->second);
        if (it->second == parts) {
          twin = &it->second;
          entry = static_cast<int>(std::stoul(it->first.substr(prefix.size() + 1)));
          name = fmt::format("{}.s{:05}", label, entry);
          break;
        }
      }
    }
    // A month's merge stands in for its parts in the quarter (pooled, and the sensor's).
    std::vector<std::string> stands_in;
    const std::string base = label.substr(0, slash);
    if (base.size() == 7) {
      const std::string quarter = Store::QuarterLabel(LabelSpan(base).day);
      stands_in.push_back(quarter);
      if (entry != kAllSensors) {
        stands_in.push_back(Store::SensorPeriodLabel(quarter, static_cast<uint16_t>(entry)));
      }
    }
    RETURN_IF_ERROR(merge_list(&parts, name, entry, LabelSpan(label), stands_in));
    if (twin) *twin = parts;
  }
  if (indexing.valid()) RETURN_IF_ERROR(indexing.get());
  // Its files are the transaction's before the commit: a round's file that a later round merged
  // again is garbage of this commit.
  written_.insert(written_.end(), iw.written.begin(), iw.written.end());
  iw.written.clear();
  stats->index_merges += iw.merges;
  stats->indexes_merged += iw.files;
  stats->bytes_read += iw.read;
  stats->bytes_written += iw.wrote;
  stats->yielded_seconds += iw.yielded;
  // Sensor-day parts written before the manifest kept their counts get them in the maintenance
  // passes (one open each), so that a summary reads none of them.
  bool counted = false;
  if (opts.all || opts.cold_after_s > 0) {
    for (const auto& [day, per_sensor] : next_.days) {
      for (const auto& [sensor, parts] : per_sensor) {
        for (const auto& rel : parts) {
          if (next_.part_counts.count(rel)) continue;
          ASSIGN_OR_RETURN(auto f, RollupFile::Open((fs::path(dir) / rel).string()));
          if (f->sensors().size() != 1) continue;
          next_.part_counts[rel] = {f->sensors()[0].packets, f->sensors()[0].sources};
          counted = true;
        }
      }
    }
  }
  *changed = stats->merges > 0 || stats->index_merges > 0 || stats->replaced > 0 || counted;
  return OkStatus();
}

}  // namespace teiten
