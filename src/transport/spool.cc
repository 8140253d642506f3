#include "transport/spool.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "common/files.h"

namespace teiten {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSuffix = ".batch";
constexpr const char* kStateFile = "state";

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return IoError(fmt::format("{}: open for fsync", dir));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError(fmt::format("{}: fsync", dir));
  return OkStatus();
}

// Writes `data` to dir/name through name.tmp: written, fsync'd, renamed, directory fsync'd.
Status WriteDurably(const std::string& dir, const std::string& name, std::string_view data) {
  RETURN_IF_ERROR(WriteFileAtomically(dir + "/" + name, data, 0600));
  return SyncDir(dir);
}

Result<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(fmt::format("{}: open", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError(fmt::format("{}: read", path));
  return ss.str();
}

bool ParseU64(std::string_view s, uint64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Result<std::unique_ptr<Spool>> Spool::Open(const Options& options) {
  if (!ValidSensorId(options.sensor_id)) {
    return InvalidArgument(fmt::format("spool: sensor id '{}' invalid", options.sensor_id));
  }
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return IoError(fmt::format("{}: create spool directory: {}", options.dir, ec.message()));
  std::unique_ptr<Spool> s(new Spool(options));
  RETURN_IF_ERROR(s->Recover());
  return s;
}

std::string Spool::PathOf(uint64_t id) const {
  return fmt::format("{}/{:020}{}", options_.dir, id, kSuffix);
}

Status Spool::Recover() {
  const std::string& dir = options_.dir;
  // The state: "stream S", "next_id N", then "lost REASON COUNT" lines.
  uint64_t state_next = 1, state_stream = 0;
  std::map<std::string, uint64_t> state_lost;
  std::string state_path = dir + "/" + kStateFile;
  if (fs::exists(state_path)) {
    ASSIGN_OR_RETURN(std::string text, ReadAll(state_path));
    std::istringstream in(text);
    std::string line;
    for (int line_no = 1; std::getline(in, line); ++line_no) {
      std::istringstream words(line);
      std::string key, a, b;
      words >> key >> a >> b;
      uint64_t n = 0;
      if (key == "next_id" && ParseU64(a, &n) && n > 0 && b.empty()) {
        state_next = n;
      } else if (key == "stream" && ParseU64(a, &n) && n > 0 && b.empty()) {
        state_stream = n;
      } else if (key == "lost" && ValidSensorId(a) && ParseU64(b, &n)) {
        state_lost[a] += n;
      } else {
        return DataLoss(fmt::format("{}:{}: not 'stream S', 'next_id N' or 'lost REASON N': '{}'",
                                    state_path, line_no, line));
      }
    }
  }
  bool removed = false;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.ends_with(".tmp")) {
      // A write cut short by a kill: never renamed, so never acknowledged to anyone.
      fs::remove(e.path());
      removed = true;
      continue;
    }
    if (!name.ends_with(kSuffix)) continue;
    uint64_t id = 0;
    if (!ParseU64(std::string_view(name).substr(0, name.size() - 6), &id)) continue;
    ASSIGN_OR_RETURN(std::string bytes, ReadAll(e.path().string()));
    auto decoded = DecodeBatch(bytes);
    if (!decoded.ok() || decoded->batch_id != id) {
      std::string why = decoded.ok() ? "holds another batch id" : decoded.status().ToString();
      fs::rename(e.path(), e.path().string() + ".corrupt");
      corrupt_.push_back(fmt::format("{}: {}", e.path().string(), why));
      removed = true;
      continue;
    }
    files_[id] = bytes.size();
    bytes_ += bytes.size();
  }
  if (removed) RETURN_IF_ERROR(SyncDir(dir));
  next_id_ = state_next;
  pending_lost_ = state_lost;
  bool new_stream = state_stream == 0;
  if (new_stream) {
    // A new spool (or one whose state was lost): a new stream, so that its ids, which may start
    // again from 1, are never taken for batches the collector already has. A batch still on
    // disk keeps the stream it was written with.
    std::random_device rd;
    while (state_stream == 0) state_stream = (uint64_t{rd()} << 32) | rd();
  }
  stream_ = state_stream;
  if (!files_.empty() && files_.rbegin()->first >= state_next) {
    // Killed after the batch with the state's next id was written but before the state was
    // updated: that batch already carries the pending losses.
    next_id_ = files_.rbegin()->first + 1;
    pending_lost_.clear();
    RETURN_IF_ERROR(WriteState());
  } else if (new_stream) {
    RETURN_IF_ERROR(WriteState());
  }
  return OkStatus();
}

Status Spool::WriteState() {
  std::string text = fmt::format("stream {}\nnext_id {}\n", stream_, next_id_);
  for (const auto& [reason, n] : pending_lost_) text += fmt::format("lost {} {}\n", reason, n);
  return WriteDurably(options_.dir, kStateFile, text);
}

Result<std::optional<uint64_t>> Spool::Append(WireBatch b) {
  b.sensor_id = options_.sensor_id;
  b.batch_id = next_id_;
  b.stream = stream_;
  for (const auto& [reason, n] : pending_lost_) b.lost[reason] += n;
  ASSIGN_OR_RETURN(std::string bytes, EncodeBatch(b));
  if (bytes_ + bytes.size() > options_.budget_bytes) {
    // drop_newest: what is already spooled is older and was promised first.
    pending_lost_ = b.lost;  // its own counts and the pending ones: all still unreported
    pending_lost_["spool_full"] += b.obs.rows.size();
    dropped_total_["spool_full"] += b.obs.rows.size();
    RETURN_IF_ERROR(WriteState());
    return std::optional<uint64_t>();
  }
  uint64_t id = next_id_;
  if (Status st = WriteDurably(options_.dir, fmt::format("{:020}{}", id, kSuffix), bytes);
      !st.ok()) {
    // The disk is full or failing: the batch is lost, and counted like a budget drop so that the
    // centre hears of it with the next batch that can be written. The state may not be writable
    // either; the counts are then kept in memory until it is.
    pending_lost_ = b.lost;
    pending_lost_["spool_write_failed"] += b.obs.rows.size();
    dropped_total_["spool_write_failed"] += b.obs.rows.size();
    (void)WriteState();
    return st;
  }
  files_[id] = bytes.size();
  bytes_ += bytes.size();
  next_id_ = id + 1;
  pending_lost_.clear();
  RETURN_IF_ERROR(WriteState());
  return std::optional<uint64_t>(id);
}

std::vector<uint64_t> Spool::Pending() const {
  std::vector<uint64_t> ids;
  for (const auto& [id, size] : files_) ids.push_back(id);
  return ids;
}

Result<std::string> Spool::Read(uint64_t id) const {
  if (!files_.count(id)) return NotFound(fmt::format("spool {}: no batch {}", options_.dir, id));
  return ReadAll(PathOf(id));
}

Status Spool::Ack(uint64_t id) {
  auto it = files_.find(id);
  if (it == files_.end()) return NotFound(fmt::format("spool {}: no batch {}", options_.dir, id));
  if (::unlink(PathOf(id).c_str()) != 0 && errno != ENOENT) {
    return IoError(fmt::format("{}: remove", PathOf(id)));
  }
  bytes_ -= it->second;
  files_.erase(it);
  return SyncDir(options_.dir);
}

}  // namespace teiten
