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

// One opened Store (a fixed snapshot of the manifest), with answers worth keeping for its life.
class Snapshot {
 public:
  explicit Snapshot(std::unique_ptr<Store> store) : store_(std::move(store)) {}
  const Store& store() const { return *store_; }
  // Findings take seconds on a big store; they are kept per (period, sensors) for this snapshot.
  std::shared_ptr<const nlohmann::json> CachedFindings(const std::string& key) const;
  void CacheFindings(const std::string& key, std::shared_ptr<const nlohmann::json> j) const;

 private:
  std::unique_ptr<Store> store_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::shared_ptr<const nlohmann::json>> findings_;
};

// Hands out the current snapshot of a store, opening it again when STORE/MANIFEST has been
// replaced (a commit renames a new one in) since the last open. A snapshot handed out stays
// valid (its files stay on disk, store.h) for as long as the caller holds it.
class StoreSnapshots {
 public:
  explicit StoreSnapshots(std::string dir) : dir_(std::move(dir)) {}
  Result<std::shared_ptr<const Snapshot>> Current();

 private:
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
