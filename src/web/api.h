// The JSON API of `teiten serve` (/api/v1/…): what the CLI answers (top, series, summary, ip,
// sensors) and the findings, as JSON, from the query interface only (analysis/query.h,
// findings.h, sensor_health.h). docs/API.md lists every endpoint with examples.
//
//   StoreSnapshots snaps("/var/lib/teiten/store");
//   ASSIGN_OR_RETURN(auto snap, snaps.Current());           // reopened when MANIFEST changed
//   ApiReply r = HandleApi(*snap, "/api/v1/top/ports", {{"period", "2018Q3"}}, access);
//   // r.status: 200, or 400 / 403 / 404 with r.body = {"error": {"parameter", "message", …}}
//
// Contract:
//  - Parameters are checked as the CLI checks its flags (the same parsers): a bad or unknown
//    parameter, or one given twice that may be given once, is a 400 whose body names it. Values
//    longer than kMaxParamBytes and requests with more than kMaxParams parameters are refused.
//  - Nothing is written: the handlers only read the snapshot they are given.
//  - Access::aggregate_only (public mode without a login) refuses every answer that carries a
//    source address (ip, sources) with 403, and findings are given without their sources.
//  - Thread safety: HandleApi may run on many threads over one Snapshot at once.
#pragma once

#include <sys/types.h>

#include <climits>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "store/store.h"

namespace teiten::web {

using Params = std::multimap<std::string, std::string>;

inline constexpr size_t kMaxParams = 32;
inline constexpr size_t kMaxParamBytes = 256;
inline constexpr size_t kMaxRows = 1000;  // n= above this is a 400

// One opened Store (a fixed snapshot of the manifest), with the answers already given from it:
// the snapshot never changes, so an answer stays right for its whole life. An answer that rests
// only on the days before some day (a period's answers: its own days, the previous period's,
// the baselines before it) also stays right in a later snapshot whose commits added nothing to
// those days, so a new snapshot takes such answers over from the one before it (Inherit)
// instead of computing them again; a collector committing every few seconds then costs the
// dashboard only the answers of the days it wrote.
class Snapshot {
 public:
  using Value = std::shared_ptr<const nlohmann::json>;
  // What an answer remembered with `before` = kWholeStore rests on: anything in the store.
  static constexpr int32_t kWholeStore = INT32_MIN;
  explicit Snapshot(std::unique_ptr<Store> store);
  const Store& store() const { return *store_; }
  // The value remembered under `key`, made by `fn` once however many threads ask at once (the
  // others wait for it). A nullptr from fn is not remembered (the waiters make their own). At
  // most kMaxRemembered values are kept; past that the finished ones are dropped. `before`: the
  // value rests only on the local days before this one, besides what every answer rests on
  // (the timezone, the sensors, retention); kWholeStore when that cannot be said.
  Value Remember(const std::string& key, const std::function<Value()>& fn,
                 int32_t before = kWholeStore) const;
  // Takes over the finished answers of `older` whose days hold in this snapshot exactly what
  // they held in `older`: the same inputs with the same segments, enriched with the same
  // databases, the same sensors' rollups, and the same timezone, sensors and retention. A merge
  // of rollup parts changes none of that, so answers outlive merges; a commit, a fold or a
  // forget changes the days it touched and every answer resting on them is made anew. Returns
  // how many answers were taken over.
  size_t Inherit(const Snapshot& older);
  size_t inherited() const { return inherited_; }  // answers Inherit took over
  // The first local day whose content differs between the two snapshots (INT32_MAX: none;
  // INT32_MIN: what every day rests on differs).
  int32_t FirstDayChangedSince(const Snapshot& older) const;

 private:
  struct Memo {
    std::shared_future<Value> value;
    int32_t before = kWholeStore;
  };
  static constexpr size_t kMaxRemembered = 1024;
  std::unique_ptr<Store> store_;
  // Digests of what the answers rest on (Inherit): the whole store's, and each local day's.
  uint64_t common_digest_ = 0;
  std::map<int32_t, uint64_t> day_digests_;
  size_t inherited_ = 0;
  mutable std::mutex mu_;
  mutable std::map<std::string, Memo> memo_;
};

// Hands out the current snapshot of a store, opening it again when STORE/MANIFEST has been
// replaced (a commit renames a new one in) since the last open. A snapshot handed out stays
// valid (its files stay on disk, store.h) for as long as the caller holds it.
class StoreSnapshots {
 public:
  explicit StoreSnapshots(std::string dir) : dir_(std::move(dir)) {}
  Result<std::shared_ptr<const Snapshot>> Current();
  // Called (outside the lock, on the thread that opened it) with each snapshot opened anew, so
  // the server can compute its expensive default answers before users ask (server.cc).
  void OnNewSnapshot(std::function<void(std::shared_ptr<const Snapshot>)> fn) {
    on_new_ = std::move(fn);
  }

 private:
  std::function<void(std::shared_ptr<const Snapshot>)> on_new_;
  std::string dir_;
  std::mutex mu_;
  std::shared_ptr<const Snapshot> current_;
  ino_t ino_ = 0;
  off_t size_ = -1;
  int64_t mtime_ns_ = 0;
};

struct Access {
  bool aggregate_only = false;  // no per-IP data may be answered
};

struct ApiReply {
  int status = 200;
  nlohmann::json body;
};

// Answers one GET of `path` (beginning with /api/v1/).
ApiReply HandleApi(const Snapshot& snap, const std::string& path, const Params& params,
                   const Access& access);

// The error body every endpoint uses: {"error": {"status", "parameter" (when one is at fault),
// "message"}}.
ApiReply ApiError(int status, const std::string& parameter, const std::string& message);

}  // namespace teiten::web
