// Store: the embedded default backend — a directory on local disk, no server (SPEC S1, S4).
//
//   STORE/FORMAT            "teiten-store 1"
//   STORE/MANIFEST          JSON: sensors, ingested inputs, segments, the current rollup per day
//   STORE/LOCK              held (flock) by the one writer
//   STORE/seg/NNNNNNNN.tseg observations, columnar and compressed (segment.h)
//   STORE/rollup/YYYY-MM-DD.sSSSSS.GGGGGGGG.troll   day rollups per sensor (rollup.h)
//   STORE/rollup/YYYY-MM.all.GGGGGGGG.troll, YYYYQn.all.…  month and quarter rollups of every
//                           sensor together, source sets pre-unioned (period queries read one)
//   STORE/idx/NNNNNNNN.tsix which blocks hold each source, per transaction (source_index.h)
//
// Files are immutable once written. A commit writes its new segments and new versions of the
// rollups it touched, fsyncs them, then atomically replaces MANIFEST: the rename is the commit
// point. A kill before it leaves unreferenced files, removed by the next writer; a kill after it
// leaves the commit whole. Each input is committed with its content hash, so ingesting the same
// capture again is recognised and changes nothing. docs/STORE_FORMAT.md has the details.
//
// Readers take no lock and see the manifest as of Open().
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/observation.h"
#include "common/status.h"
#include "common/time_zone.h"
#include "enrich/geo.h"
#include "sensor/config.h"
#include "store/identities.h"
#include "store/rollup.h"
#include "store/segment.h"
#include "store/source_index.h"

namespace teiten {

// Checks the checksum member of a MANIFEST's text (see store.cc) and strips it; a manifest
// written before manifests had one passes unchanged. DataLoss naming `path` on a mismatch.
Status CheckManifestText(const std::string& path, std::string* text);

struct SensorRecord {
  std::string id, name, group, country, mode;
  std::vector<std::string> prefixes;
};

// A run of batch ids [first, last] of one stream of a sensor (transport/wire.h), committed.
struct BatchRange {
  uint64_t stream = 0, first = 0, last = 0;
};
struct InputRecord {
  // The input's identity: XXH3-128 of what it contains — its link type and every packet's time,
  // lengths and bytes as decoded — so the same capture plain, gzipped, zstd'd or piped counts
  // once. Inputs ingested before content identities carry the hash of their file's bytes here.
  std::string hash;
  std::string file_hash;  // XXH3-128 of the file's bytes (a quick "seen before"); "" for streams
  // When this input began with the packets of an earlier, partial input (a capture cut short,
  // then ingested whole): that input's hash and its packet count, not counted again.
  std::string extends;
  uint64_t prefix_packets = 0;
  std::string sensor;
  std::string path;
  int64_t ingested_at = 0;  // Unix seconds
  uint64_t packets_read = 0;
  uint64_t kept = 0;
  std::map<std::string, uint64_t> dropped;    // by reason (decoder anomaly or filter verdict)
  std::map<std::string, uint64_t> anomalies;  // kept packets with anomalies (fragments, …)
  std::string error;                          // a read error that ended the input early
  std::string country_db, asn_db;             // "type date path" of the databases used
  std::vector<uint64_t> segments;
  uint64_t index = 0;  // id of its source index file (idx/NNNNNNNN.tsix); 0 when none
  // Further index files of an input whose transaction spilled (held more than its memory
  // budget); a source's history is the sum over all of them.
  std::vector<uint64_t> more_indexes;
  // For batches a sensor sent to the collector: which ones this input committed. A batch whose
  // id is here is never committed again, however often it is redelivered.
  std::vector<BatchRange> batches;
  // For an input that folded captures ingested as files (Transaction::FoldInputs): the
  // identities of those captures (content and file-byte hashes), so that each is still known
  // and never counted twice. Their rows, counts and index are this input's.
  struct Folded {
    std::string hash, file_hash;
  };
  // Where the folded captures' identities are: idx/NNNNNNNN.tids (store/identities.h), and how
  // many captures it names. Manifests written before that file existed list them in `folded`
  // instead, read as they are until the input is folded again.
  uint64_t folded_file = 0;
  uint64_t folded_count = 0;
  std::vector<Folded> folded;
  size_t FoldedCaptures() const { return folded_file ? folded_count : folded.size(); }
  // Whether `h` is this input's identity or file hash, or one of the captures `folded` lists
  // (Store::InputHolds also looks in `folded_file`).
  bool Holds(const std::string& h) const;
  std::vector<uint64_t> Indexes() const {
    std::vector<uint64_t> v;
    if (index) v.push_back(index);
    v.insert(v.end(), more_indexes.begin(), more_indexes.end());
    return v;
  }
};

// How long a capture ingested as a file stays an input of its own before it may be folded with
// its sensor's other small captures (FoldOptions).
inline constexpr int64_t kFoldCapturesAfterSeconds = 86400;

// Which rows a segment holds. An ingest writes a batch's rows of a day that are backscatter
// (common/backscatter.h) to a segment of their own, so that `teiten dos` reads those segments
// only; segments written before, and those a fold rewrites, hold both (kAll).
enum class SegmentRows : uint8_t { kAll = 0, kBackscatter = 1, kNoBackscatter = 2 };

struct SegmentRecord {
  uint64_t id = 0;
  int32_t day = 0;
  uint64_t rows = 0;
  uint64_t bytes = 0;
  int64_t ts_min = 0, ts_max = 0;
  SegmentRows rows_of = SegmentRows::kAll;
  bool operator==(const SegmentRecord&) const = default;
};

struct Manifest {
  // 4: a root and a chapter per month; 3: one document sealed with a checksum member; 2: before
  // it. Every format is read; what is written is 4.
  int format = 4;
  std::string timezone;
  uint64_t generation = 0;
  uint64_t next_id = 1;
  std::vector<SensorRecord> sensors;  // index = sensor number in observations and rollups
  std::vector<InputRecord> inputs;
  std::vector<SegmentRecord> segments;
  // local day → sensor → the parts of that sensor's day rollup (relative paths). A commit adds
  // one part holding only what it added; parts are united by queries (counts add, source sets
  // unite) and merged in the background (Store::Merge), so a commit never rewrites what the store
  // already holds. Another sensor's parts are never touched.
  std::map<int32_t, std::map<uint16_t, std::vector<std::string>>> days;
  // A sensor-day part's packets and distinct sources (its one directory entry), by the part's
  // relative path: what a summary reads for each sensor-day without opening the day's files (920
  // of them in a quarter of ten sensors). A part is never rewritten, so an entry stays true while
  // `days` names its part; the JSON keeps entries only for those ("day_counts", beside "days"),
  // and a part without one is opened.
  struct PartCounts {
    uint64_t packets = 0;
    uint64_t sources = 0;
    bool operator==(const PartCounts&) const = default;
  };
  std::map<std::string, PartCounts> part_counts;
  // Period label → the parts of its rollup: "2018-08", "2018Q3" or "2018-08-12": every sensor
  // together over that month, quarter or day; "2018-08/s3", "2018Q3/s3": sensor 3 over that
  // month or quarter. Present exactly when some day of it holds data (in a store written since
  // these kinds exist; earlier stores gain them as ingests touch their days, and queries read
  // the day rollups where one is missing).
  std::map<std::string, std::vector<std::string>> periods;
  // Observations of local days before this one were dropped by retention (`teiten retain`):
  // their rollups and the source indexes' summaries stay, their segments are gone. INT32_MIN:
  // nothing dropped.
  int32_t segments_from = INT32_MIN;
  // Files (relative paths) that earlier commits replaced while a reader still held a snapshot
  // naming them: a later writer removes each once no reader holds a snapshot older than the
  // generation that stopped naming it (garbage_since, index for index; an entry a manifest
  // written before this field lists is taken to have died at that manifest's generation).
  // Written only when not empty.
  std::vector<std::string> garbage;
  std::vector<uint64_t> garbage_since;
  // Month ("2018-08") → id of the chapter file (man/NNNNNNNN.tman) holding that month's
  // segments, days, day counts and day and month periods, as the root MANIFEST names them.
  // Empty after reading a manifest of format 3 until the next commit writes its chapters. A
  // chapter is immutable: a commit that changes a month writes a new one and lists the old one
  // in `garbage`; the others are named again as they are.
  std::map<std::string, uint64_t> chapters;
};
// The chapter file of an id, relative to the store.
std::string ChapterFile(uint64_t id);
// Every file (relative path) a manifest names: segments, index files, rollup parts, chapters.
std::vector<std::string> ManifestFiles(const Manifest& m);
// Whether a relative path is one a merge writes before it publishes it (a merged rollup part,
// or a merged index file under its temporary name): named by no manifest while a merge runs.
bool IsMergeFile(const std::string& rel);

// Which inputs Transaction::FoldInputs folds.
struct FoldOptions {
  int64_t batch_min_age_s = 60;  // sensors' batches, once this old
  // Captures ingested one by one, once this old (negative: never). A capture can be forgotten
  // alone (`teiten forget`) until it is folded: a day to notice a mistaken ingest.
  int64_t capture_min_age_s = kFoldCapturesAfterSeconds;
  uint64_t max_rows = uint64_t{4} << 20;
  bool all = false;  // fold whatever the inputs' size tiers
};

// When rollup parts are merged (Store::Merge).
struct MergeOptions {
  // A key's parts are grouped in size tiers (below 64 KiB, then each ×4); a tier holding this
  // many parts is merged into one.
  size_t min_parts = 4;
  // No merge holds more than this decoded in memory (estimated from each part's size and
  // counter records before it is read); a key whose data exceeds it keeps several parts.
  uint64_t max_merge_memory = uint64_t{384} << 20;
  // No merge reads more parts than this at once (rollup parts and an input's index files alike):
  // a merge streams its parts through mapped pages, and the kernel maps a large folio of the
  // page cache (up to 2 MiB) wherever a part is touched, so what stays resident grows with the
  // parts merged together, not with their size. More parts are merged in rounds.
  size_t max_parts = 16;
  // Merge every key's parts into as few as max_merge_memory allows, due or not.
  bool all = false;
  // When not empty, only the keys of these local days: each sensor's day, the pooled day, and
  // the months and quarters holding them (what a commit of those days added parts to).
  std::vector<int32_t> days;
  // Also merge whole (as `all`) every key that is cold — none of its parts written in the last
  // `cold_after_s` seconds — until `cold_budget_bytes` of parts have been read. A query over a
  // key of one part reads its stored distinct counts; over several it unites their sets, which
  // costs time in the size of the sets. 0: no cold pass.
  int64_t cold_after_s = 0;
  uint64_t cold_budget_bytes = uint64_t{512} << 20;
  // Also make this input's index files one (an ingest's, after its commit: one per spill).
  std::string index_of;
  // Also make every input's index files one, whatever the cold budget: a background merge's
  // work for the ingests that returned before their spills' files were merged.
  bool all_indexes = false;
  // When another merge is running, return at once (MergeStats::busy) instead of waiting for it.
  bool try_lock = false;
  // Before each merge of parts (and of index files), wait while a transaction holds the writer
  // lock: a background merge then takes the cores between ingests and commits, not beside them
  // (two CPU-bound processes on this machine's two cores slowed an ingest by a third). It loses
  // nothing by waiting: no commit publishes while that lock is held, and it publishes under it.
  bool yield_to_writers = false;
  // Called once the snapshot is taken, and once the merged files are written, before the writer
  // lock is taken to publish them: whatever commits meanwhile (a test's, to make those moments
  // certain) is what merging and publishing meet.
  std::function<void()> after_snapshot, before_publish;
};
struct MergeStats {
  uint64_t merges = 0;          // merged parts written
  uint64_t parts_merged = 0;    // parts they replaced
  uint64_t index_merges = 0;    // merged source index files written (one per input)
  uint64_t indexes_merged = 0;  // index files they replaced
  uint64_t bytes_read = 0, bytes_written = 0;
  uint64_t replaced = 0;  // keys whose parts a merged part of another key stands in for
  // Keys whose merge was dropped because a commit or repair changed their parts meanwhile (the
  // parts it merged are no longer all named): their merged file is removed, unseen.
  uint64_t dropped = 0;
  // With try_lock: another merge held the store's merge lock; nothing was done.
  bool busy = false;
  double yielded_seconds = 0;  // waited for writers (yield_to_writers)
  // The store moved on while this merge ran or just after (commits published): what they made
  // due may not have been looked at. A background merger merges again.
  bool newer = false;
  // With cold_after_s (and not `all`): the earliest epoch second at which a key this merge left
  // in several parts, because none was due and one of them was written (by a commit or a merge)
  // in the last cold_after_s seconds, turns cold (its newest part's mtime + cold_after_s); 0 when
  // no key was left so. Nobody merges such a key unless a merge runs after that moment: `teiten
  // ingest`'s background merger waits for it (cmd_store.cc). Source index files need no such
  // moment: a pass merges every input's spills whatever their age (within its budget, or all of
  // them with all_indexes).
  int64_t next_cold_at = 0;
  double seconds = 0;
};

class Store {
 public:
  struct Options {
    bool create = false;
    std::string timezone = "Asia/Tokyo";  // for a new store; an existing one keeps its own
  };
  // Opens (or, with `create`, makes) the store at `dir` and reads its manifest: the snapshot this
  // Store answers from. The files of that snapshot stay on disk while the Store lives (it holds a
  // shared lock on the byte of STORE/READERS numbered by its manifest's generation; writers delete
  // a replaced file only when no reader holds a generation older than the one that replaced it),
  // so queries never see a file vanish under them. A long-lived reader should open the store
  // again from time to time (the web server does, every few seconds): the snapshot it holds keeps
  // what later commits replace on disk until it lets go. Two processes creating the same store at
  // once both succeed.
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, const Options& opts);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& dir() const { return dir_; }
  const Manifest& manifest() const { return manifest_; }
  const TimeZone& tz() const { return tz_; }
  int SensorIndex(const std::string& id) const;
  // The input whose identity is `hash`, or that folded the capture whose identity or file hash
  // it is (InputRecord::Holds).
  Result<const InputRecord*> FindInput(const std::string& hash) const;
  // Whether `h` is an identity of the input: its own, or a folded capture's (looked up in its
  // identities file, cached). An unreadable file is an error, never "no": a capture whose
  // identity cannot be checked is not counted again.
  Result<bool> InputHolds(const InputRecord& in, const std::string& h) const;
  Result<std::shared_ptr<const IdentityFile>> OpenIdentities(uint64_t id) const;

  // The rollups of a local day, every sensor's; nullptr when nothing was seen that day. Cached.
  struct DayRollups {
    std::vector<std::unique_ptr<RollupFile>> files;
    std::vector<RollupFile::SensorView> views;
    const std::vector<RollupFile::SensorView>& sensors() const { return views; }
  };
  Result<std::shared_ptr<const DayRollups>> Day(int32_t day) const;
  // The parts of a period label's rollup (see Manifest::periods); empty when the store holds
  // none. Cached. Each part's one sensor entry is kAllSensors, or the sensor of a "…/sN" label;
  // the period's counts are the parts' sums, its sources the union of their sets.
  using Parts = std::vector<std::shared_ptr<const RollupFile>>;
  Result<std::shared_ptr<const Parts>> PeriodParts(const std::string& label) const;
  static std::string MonthLabel(int32_t day);                                        // "2018-08"
  static std::string QuarterLabel(int32_t day);                                      // "2018Q3"
  static std::string DayLabel(int32_t day);                                          // "2018-08-12"
  static std::string SensorPeriodLabel(const std::string& period, uint16_t sensor);  // "2018Q3/s3"
  Result<std::unique_ptr<SegmentReader>> OpenSegment(uint64_t id) const;
  Result<std::unique_ptr<SourceIndex>> OpenIndex(uint64_t id) const;
  // Calls fn with the relative path of every rollup part the manifest names (day and period).
  template <typename Fn>
  void ForEachRollup(Fn fn) const {
    for (const auto& [d, per_sensor] : manifest_.days) {
      for (const auto& [sensor, parts] : per_sensor) {
        for (const auto& p : parts) fn(p);
      }
    }
    for (const auto& [label, parts] : manifest_.periods) {
      for (const auto& p : parts) fn(p);
    }
  }
  // Bytes on disk of segments and rollups.
  uint64_t StoredBytes() const;

  // Results a query computed from this Store's manifest, under a key the query makes
  // (analysis/query.cc): a query asked again while the manifest is the same — the web API in
  // another language, a summary and the top tables it is made of — is answered without reading
  // again. Dropped whenever the manifest changes (Begin, Commit), and all at once past
  // kMaxMemo entries. Type-erased: the store knows no query's types. nullptr: not kept.
  std::shared_ptr<const void> Memo(const std::string& key) const;
  void Memo(const std::string& key, std::shared_ptr<const void> value) const;
  static constexpr size_t kMaxMemo = 256;

  // Merges rollup parts that are due (see MergeOptions): the merged parts replace theirs in a
  // new manifest; readers of older snapshots keep the files they read (removed once no reader
  // holds them). One merge runs at a time (the lock on MERGER), beside commits: it reads and
  // writes against a snapshot without the writer lock, then takes the writer lock only to put
  // its parts in the place of theirs in the newest manifest, key by key — a key whose merged
  // parts are no longer all named there (a forget or a rebuild replaced them meanwhile) keeps
  // its own and the merged file goes unseen. A commit therefore waits for a merge only while
  // it publishes. Each merge is bounded by max_merge_memory. A kill at any moment leaves either
  // the old parts or the merged ones, never both, never neither; the next merge removes what a
  // killed one wrote. Counts and source sets are unchanged by merging; heavy-hitter summaries
  // stay within their stated bound. Moves this Store to the newest snapshot, as Begin does.
  Result<MergeStats> Merge(const MergeOptions& opts);

  class Transaction;
  // Takes the writer lock (waits for another writer), removes files a crashed writer left, and
  // starts a transaction against the current manifest.
  Result<std::unique_ptr<Transaction>> Begin();

 private:
  friend class Transaction;
  Store() = default;
  Status LoadManifest();
  Status WriteManifest(const Manifest& m);
  // Names in m->chapters a chapter for each month `m` holds: the one manifest_ names where that
  // month is the same in both, a new file (written and fsynced, its id from m->next_id) where not.
  Status WriteChapters(Manifest* m);
  // Deletes the files earlier commits replaced (Manifest::garbage) when no other reader holds a
  // snapshot; otherwise leaves them for a later writer. With `sweep`, also every file in seg/,
  // rollup/, idx/ and man/ that the manifest does not name (left by a writer that died): a walk of
  // the whole store, done only when the last writer did not finish (see Begin). Writer lock held.
  Status CollectGarbage(bool sweep);
  void RemoveUnreferenced(bool sweep);
  // Opens READERS and marks this Store as loading a manifest (the byte kOpeningByte).
  Status HoldSnapshot();
  // Holds the byte of `generation` instead of whatever this Store held before.
  Status HoldGeneration(uint64_t generation);
  // Whether another open READERS holds a lock on a byte in [from, to).
  bool ReadersHold(uint64_t from, uint64_t to) const;
  // Whether a merge holds MERGER (this process's own included): its files, named by no manifest
  // yet, are not a dead writer's.
  bool MergeRunning() const;
  // Removes the files a killed merge wrote (merged parts and index files no manifest names).
  // Writer lock held.
  void SweepMergeFiles();
  // inode, size and modification time of MANIFEST as last read or written by this Store.
  std::string ManifestIdentity() const;
  std::string manifest_id_;
  int readers_fd_ = -1;
  int64_t held_generation_ = -1;  // the byte of READERS this Store holds; -1: none

  std::string dir_;
  Manifest manifest_;
  TimeZone tz_ = TimeZone::Utc();
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<int32_t, std::shared_ptr<const DayRollups>> day_cache_;
  mutable std::unordered_map<std::string, std::shared_ptr<const Parts>> period_cache_;
  mutable std::unordered_map<std::string, std::shared_ptr<const void>> memo_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const IdentityFile>> identities_;
};

// One writer's unit of work: observations from one input, committed together or not at all.
class Store::Transaction {
 public:
  ~Transaction();  // without Commit(), removes what it wrote and releases the lock

  // The sensor's index, registering it (or updating its description) in this transaction.
  uint16_t EnsureSensor(const SensorConfig& s);
  Result<bool> HasInput(const std::string& hash) const;
  // The inputs as of this transaction (the manifest it started from, plus nothing yet).
  const std::vector<InputRecord>& inputs() const { return next_.inputs; }

  // Adds observations: `order` lists row indices sorted by (local day, src, ts); `day[i]` and
  // `geo[i]` are row i's local day and enrichment. Writes one segment per day and updates the
  // rollups held for commit.
  Status Add(const ObservationBatch& batch, const std::vector<uint32_t>& order,
             const std::vector<int32_t>& day, const std::vector<GeoInfo>& geo);

  // Makes everything added visible, recorded as `input` (its segments are filled in).
  Status Commit(InputRecord input);
  // Maintenance, instead of Add/Commit: rebuilds every input's source index from its segments
  // (for a store whose indexes predate the current index format) and commits.
  Status RebuildIndexes();
  // Store::Merge's work, in a detached transaction (no writer lock) against its snapshot:
  // merged parts written and entered in next_; `*changed` when next_ differs from the snapshot.
  Status MergeParts(const MergeOptions& opts, MergeStats* stats, bool* changed);
  // In a transaction holding the writer lock: puts what the detached `work`, begun from
  // `snap`, merged in the place of what it replaced, key by key and input by input, where
  // those are still named; takes over work's files; publishes if anything changed.
  Status ApplyMerge(const Manifest& snap, Transaction* work, MergeStats* stats);
  // Maintenance, instead of Add/Commit: makes the rollups of `days` (every day when empty) again
  // from the segments — the sensors' day parts, and the pooled days, months and quarters that hold
  // them (pooled and each sensor's; a month or quarter from its other days' parts and the rebuilt
  // days) — and commits. The segments are the truth: this repairs damaged or lost rollups.
  // Memory stays within the transaction's budget.
  Status RebuildRollups(std::set<int32_t> days);
  // Maintenance: removes the input whose identity is `hash` — its segments, its index files and
  // its counts from every rollup (the days it touched rebuilt from the other inputs' segments) —
  // and commits. NotFound when no such input; InvalidArgument when a later input extends it.
  Status Forget(const std::string& hash);
  // Maintenance (SPEC S3): drops the segments of local days before `before_day` — the
  // observations — and keeps every rollup and source index, so counts, rankings, daily series
  // and per-IP summaries of those days stay; sub-day series, TCP windows of `teiten ip` and
  // exact top sources no longer see them. Sets `*freed` to the segment bytes dropped.
  Status Retain(int32_t before_day, uint64_t* freed);
  // Maintenance (the collector's every minute, `teiten ingest`'s and `teiten merge`'s): folds
  // small inputs into few, so that the manifest, the segment files and the index files grow with
  // the data and not with the number of commits. Taken: inputs of one sensor with the same geo
  // databases, holding fewer than max_rows / 4 rows, that neither ended early nor extend another,
  // made from sensors' batches at least `batch_min_age_s` ago, or ingested from captures at
  // least `capture_min_age_s` ago (negative: not folded). Batch inputs and capture inputs are
  // folded apart; inputs of comparable size (a tier: below 4,096 rows, then each ×4) are folded
  // once a tier holds 4 of them (with `all`, whatever their size), in groups of up to `max_rows`
  // rows, so a row is rewritten once per tier it climbs. Each group becomes one input
  // (counts summed, batch runs united, the captures' identities kept in `folded`) whose segments
  // are merged to one per day and whose source index is made again from them. The rollups do not
  // change (the same rows). A folded capture can no longer be forgotten alone (its rows are
  // mixed with the others'): that is why captures wait `capture_min_age_s`. Commits if anything was
  // folded; `*folded` is the number of inputs replaced. Memory: one day of one group's rows.
  Status FoldInputs(const FoldOptions& opts, uint64_t* folded);
  uint64_t rows_added() const { return rows_added_; }
  // The local days this transaction added to.
  std::vector<int32_t> days_touched() const { return {touched_days_.begin(), touched_days_.end()}; }
  // Bytes of rollups and source index held in memory before they are written out as parts of
  // this transaction (still committed with it, or not at all): this bounds an ingest's memory
  // whatever its input — a flood of spoofed sources, a capture spread over years.
  void set_memory_budget(size_t bytes) { memory_budget_ = bytes; }
  // Bytes held by pending rollups (a rough figure, for memory accounting).
  size_t pending_days() const { return pending_.size(); }

 private:
  friend class Store;
  Transaction(Store* s, int lock_fd) : store_(s), lock_fd_(lock_fd), next_(s->manifest_) {}
  Store* store_;
  int lock_fd_;
  Manifest next_;
  // What a spill or a commit writes: the source index and the rollup parts held, named and
  // entered in next_ at once, encoded and written by a thread of their own (WriteWork) while Add
  // goes on with the next rows — the two cores encode and add at the same time.
  struct HeldWrite;
  struct PartCount {
    std::string rel;
    uint64_t packets = 0, sources = 0;
  };
  static Result<std::vector<PartCount>> WriteWork(HeldWrite* w);
  Status PlanPeriods(HeldWrite* w);
  Status Publish();  // the manifest of next_, as the commit point
  bool rollups_only_ = false;
  // Hands what is held to the writer thread (after the previous hand-off is written); with
  // `wait`, also waits for it to be written.
  Status WriteHeld(bool wait);
  Status JoinWrite();  // waits for the writer thread; its error, if any
  Status Spill();
  std::future<Result<std::vector<PartCount>>> writing_;
  std::string PartName(const std::string& stem) const;
  size_t pending_bytes_ = 0;
  // (day, sensor) → the period keys that name the sensor-day part WriteHeld writes for it.
  std::map<std::pair<int32_t, uint16_t>, std::vector<std::string>> day_names_;
  size_t memory_budget_ = size_t{64} << 20;
  int spills_ = 0;
  std::vector<uint64_t> indexes_;  // index files written, in order
  std::set<int32_t> touched_days_;
  std::map<int32_t, DayRollup> pending_;
  SourceIndexBuilder index_;
  std::vector<std::string> written_;  // files this transaction created
  // A detached merge's index files, written under temporary names (ids handed out by commits
  // meanwhile are not known to it) and given an id when ApplyMerge takes them: temporary id →
  // path.
  std::map<uint64_t, std::string> temp_indexes_;
  std::vector<SegmentRecord> new_segments_;
  SegmentScratch segment_scratch_;  // used by one Add's segment writer at a time
  uint64_t rows_added_ = 0;
  uint64_t run_id_ = 0;
  bool committed_ = false;
};

}  // namespace teiten
