#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_set>

#include "common/backscatter.h"
#include "store/durable.h"
#include "store/file_out.h"
#include "store/manifest_json.h"

namespace teiten {
namespace {

namespace fs = std::filesystem;
constexpr const char* kFormatLine = "teiten-store 2\n";
constexpr int kZstdLevel = 3;

// The manifest is JSON (readable by any tool) whose last member is the XXH64 of the text without
// that member: `..."periods": {...},\n "checksum": "0123456789abcdef"\n}`. A flipped byte in a
// count, a file name or a day is then an error, not a number. Manifests written before the
// checksum (no such member) are read as they are and sealed by the next commit.
constexpr std::string_view kChecksumKey = ",\n \"checksum\": \"";

std::string SealManifestText(std::string text) {
  // ManifestJson ends with "\n}".
  uint64_t sum = XXH64(text.data(), text.size(), 0);
  text.resize(text.size() - 2);
  text += fmt::format("{}{:016x}\"\n}}", kChecksumKey, sum);
  return text;
}

}  // namespace

Status CheckManifestText(const std::string& path, std::string* text) {
  size_t at = text->rfind(kChecksumKey);
  if (at == std::string::npos) {
    // Written before manifests had checksums (format 2), or a sealed one whose checksum member
    // a flipped bit disguised: one flip cannot both remove the member and turn format 3 into 2.
    if (text->find("\"format\": 3") != std::string::npos ||
        text->find("\"format\": 4") != std::string::npos ||
        text->find("checksum") != std::string::npos) {
      return DataLoss(fmt::format("{}: the checksum member is damaged or missing", path));
    }
    return OkStatus();
  }
  size_t hex = at + kChecksumKey.size();
  if (text->size() < hex + 16 + 3 || text->compare(hex + 16, std::string::npos, "\"\n}") != 0) {
    return DataLoss(fmt::format("{}: the checksum member is damaged", path));
  }
  uint64_t want = 0;
  for (size_t i = hex; i < hex + 16; ++i) {
    char c = (*text)[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return DataLoss(fmt::format("{}: the checksum member is damaged", path));
    want = want << 4 | static_cast<uint64_t>(v);
  }
  text->resize(at);
  *text += "\n}";
  if (XXH64(text->data(), text->size(), 0) != want) {
    return DataLoss(fmt::format(
        "{}: checksum mismatch (the manifest is damaged; nothing in the store can be trusted "
        "until it is restored)",
        path));
  }
  return OkStatus();
}

namespace {

Status CheckFormatLine(const std::string& dir) {
  std::ifstream f(fs::path(dir) / "FORMAT");
  std::string line;
  std::getline(f, line);
  if (line == "teiten-store 1") {
    return DataLoss(fmt::format(
        "{}: a format 1 store (teiten before period rollups and the source index): ingest its "
        "captures again into a new store",
        dir));
  }
  if (line + "\n" != kFormatLine) {
    return DataLoss(fmt::format("{}/FORMAT: '{}' is not a format this teiten reads", dir, line));
  }
  return OkStatus();
}

}  // namespace

Store::~Store() {
  if (readers_fd_ >= 0) ::close(readers_fd_);
}

namespace {

// READERS is never written: its bytes are lock ranges. Each Store holds a shared open-file-
// description lock (fcntl F_OFD_SETLK, released when the file is closed or the process dies) on
// the byte numbered by the generation of the manifest it answers from, and on kOpeningByte while it
// loads a manifest. A writer removes a file that generation g stopped naming only when no other
// open READERS holds a byte below g or kOpeningByte (Store::CollectGarbage). Unlike one lock on
// the whole file, a reader that moves on to newer snapshots — the web server reopens the store
// every few seconds — does not keep every later replaced file on disk.
constexpr uint64_t kOpeningByte = uint64_t{1} << 62;

int OfdLock(int fd, short type, uint64_t start, uint64_t len) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(start);
  fl.l_len = static_cast<off_t>(len);
  int r;
  do {
    r = ::fcntl(fd, F_OFD_SETLK, &fl);
  } while (r != 0 && errno == EINTR);
  return r;
}

}  // namespace

Status Store::HoldSnapshot() {
  std::string path = (fs::path(dir_) / "READERS").string();
  readers_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (readers_fd_ < 0) readers_fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (readers_fd_ < 0) {
    // A read-only copy of a store without READERS: nobody can be writing to it.
    if (errno == EROFS || errno == ENOENT || errno == EACCES) return OkStatus();
    return IoError(fmt::format("{}: {}", path, std::strerror(errno)));
  }
  if (OfdLock(readers_fd_, F_RDLCK, kOpeningByte, 1) != 0) {
    return IoError(fmt::format("lock {}: {}", path, std::strerror(errno)));
  }
  return OkStatus();
}

Status Store::HoldGeneration(uint64_t generation) {
  if (readers_fd_ < 0) return OkStatus();
  if (held_generation_ == static_cast<int64_t>(generation)) return OkStatus();
  // The new byte first: at no moment does this Store hold neither.
  if (OfdLock(readers_fd_, F_RDLCK, generation, 1) != 0) {
    return IoError(fmt::format("lock {}/READERS: {}", dir_, std::strerror(errno)));
  }
  if (held_generation_ >= 0) {
    OfdLock(readers_fd_, F_UNLCK, static_cast<uint64_t>(held_generation_), 1);
  }
  OfdLock(readers_fd_, F_UNLCK, kOpeningByte, 1);
  held_generation_ = static_cast<int64_t>(generation);
  return OkStatus();
}

bool Store::ReadersHold(uint64_t from, uint64_t to) const {
  if (readers_fd_ < 0 || to <= from) return false;
  struct flock fl {};
  fl.l_type = F_WRLCK;  // conflicts with any shared lock another open READERS holds
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(from);
  fl.l_len = static_cast<off_t>(to - from);
  if (::fcntl(readers_fd_, F_OFD_GETLK, &fl) != 0) return true;  // unsure: keep the files
  return fl.l_type != F_UNLCK;
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, const Options& opts) {
  std::unique_ptr<Store> s(new Store());
  s->dir_ = dir;
  std::error_code ec;
  bool exists = fs::exists(fs::path(dir) / "FORMAT", ec);
  if (!exists) {
    if (!opts.create) {
      return NotFound(
          fmt::format("{}: no teiten store here (run `teiten ingest` to create one)", dir));
    }
    // Creation happens under the writer lock, and FORMAT is written last: two processes that
    // both find no store make it once, and the second one opens what the first made.
    fs::create_directories(fs::path(dir), ec);
    if (ec) return IoError(fmt::format("create store {}: {}", dir, ec.message()));
    std::string lock = (fs::path(dir) / "LOCK").string();
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return IoError(fmt::format("lock {}: {}", lock, std::strerror(errno)));
    if (FlockRetry(fd, LOCK_EX) != 0) {
      ::close(fd);
      return IoError(fmt::format("flock {}: {}", lock, std::strerror(errno)));
    }
    Status st = [&]() -> Status {
      if (fs::exists(fs::path(dir) / "FORMAT", ec)) return OkStatus();  // made meanwhile
      for (const char* sub : {"seg", "rollup", "idx", "man"})
        fs::create_directories(fs::path(dir) / sub, ec);
      if (ec) return IoError(fmt::format("create store {}: {}", dir, ec.message()));
      ASSIGN_OR_RETURN(s->tz_, TimeZone::Load(opts.timezone));
      s->manifest_.timezone = opts.timezone;
      RETURN_IF_ERROR(s->WriteManifest(s->manifest_));
      std::string fmt_path = (fs::path(dir) / "FORMAT").string();
      RETURN_IF_ERROR(WriteFileDurably(fmt_path, kFormatLine, std::strlen(kFormatLine)));
      return SyncDir(dir);
    }();
    ::close(fd);
    RETURN_IF_ERROR(st);
  }
  RETURN_IF_ERROR(CheckFormatLine(dir));
  RETURN_IF_ERROR(s->HoldSnapshot());
  RETURN_IF_ERROR(s->LoadManifest());
  RETURN_IF_ERROR(s->HoldGeneration(s->manifest_.generation));
  ASSIGN_OR_RETURN(s->tz_, TimeZone::Load(s->manifest_.timezone));
  return s;
}

std::string Store::ManifestIdentity() const {
  struct stat st {};
  std::string path = (fs::path(dir_) / "MANIFEST").string();
  if (::stat(path.c_str(), &st) != 0) return "";
  return fmt::format("{} {} {}.{}", st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

namespace {

// Reads a file whole into a string with room for the JSON parser's padding past its end, so the
// parser reads it in place: every command reads the manifest, and each copy was fresh pages.
constexpr size_t kPadding = 64;
Status ReadPadded(const std::string& path, std::string* text) {
  OwnedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) {
    return IoError(fmt::format("{}: {}", path, std::strerror(errno)));
  }
  text->clear();
  text->reserve(static_cast<size_t>(st.st_size) + kPadding);
  text->resize(static_cast<size_t>(st.st_size));
  for (size_t got = 0; got < text->size();) {
    ssize_t n = ::pread(fd.get(), text->data() + got, text->size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(fmt::format("{}: {}", path, std::strerror(errno)));
    if (n == 0) {
      text->resize(got);  // shorter than it was a moment ago: the checksum says whether it is whole
      break;
    }
    got += static_cast<size_t>(n);
  }
  return OkStatus();
}

// A manifest's segments by month (pointers into it), for comparing two manifests' months.
using SegmentsOfMonth = std::map<std::string, std::vector<const SegmentRecord*>>;
SegmentsOfMonth SegmentsByMonth(const Manifest& m) {
  SegmentsOfMonth v;
  int32_t lo = 1, hi = 0;  // the month of `at`, [lo, hi)
  std::vector<const SegmentRecord*>* at = nullptr;
  for (const SegmentRecord& s : m.segments) {
    if (at == nullptr || s.day < lo || s.day >= hi) {
      MonthSpan(s.day, &lo, &hi);
      at = &v[ChapterOfDay(s.day)];
    }
    at->push_back(&s);
  }
  return v;
}

}  // namespace

std::string ChapterFile(uint64_t id) {
  return fmt::format("man/{:08}.tman", id);
}

Status Store::LoadManifest() {
  manifest_id_ = ManifestIdentity();
  std::string path = (fs::path(dir_) / "MANIFEST").string();
  std::string text;
  RETURN_IF_ERROR(ReadPadded(path, &text));
  RETURN_IF_ERROR(CheckManifestText(path, &text));
  try {
    manifest_ = ManifestFromJson(text, text.capacity() >= text.size() + kPadding);
  } catch (const std::exception& e) {
    return DataLoss(fmt::format("{}: {}", path, e.what()));
  }
  // Its chapters: immutable files, kept for this snapshot by the generation it holds.
  for (const auto& [month, id] : manifest_.chapters) {
    std::string cpath = (fs::path(dir_) / ChapterFile(id)).string();
    RETURN_IF_ERROR(ReadPadded(cpath, &text));
    RETURN_IF_ERROR(CheckManifestText(cpath, &text));
    try {
      ChapterFromJson(text, text.capacity() >= text.size() + kPadding, month, &manifest_);
    } catch (const std::exception& e) {
      return DataLoss(fmt::format("{}: {}", cpath, e.what()));
    }
  }
  if (!manifest_.chapters.empty()) {
    // Chapters are read month by month; a manifest lists its segments in the order of their ids.
    std::sort(manifest_.segments.begin(), manifest_.segments.end(),
              [](const SegmentRecord& a, const SegmentRecord& b) { return a.id < b.id; });
  }
  return OkStatus();
}

Status Store::WriteChapters(Manifest* m) {
  const Manifest& base = manifest_;
  const SegmentsOfMonth now = SegmentsByMonth(*m), was = SegmentsByMonth(base);
  std::set<std::string> months;
  for (const auto& [month, segs] : now) months.insert(month);
  for (const auto& [day, per_sensor] : m->days) months.insert(ChapterOfDay(day));
  for (const auto& [label, parts] : m->periods) {
    std::string_view c = ChapterOfLabel(label);
    if (!c.empty()) months.insert(std::string(c));
  }
  const Manifest& cm = *m;
  auto same = [&](const std::string& month) {
    if (!base.chapters.count(month)) return false;
    const auto a = now.find(month), b = was.find(month);
    const bool ha = a != now.end(), hb = b != was.end();
    if (ha != hb) return false;
    if (ha && !std::equal(a->second.begin(), a->second.end(), b->second.begin(), b->second.end(),
                          [](const SegmentRecord* x, const SegmentRecord* y) { return *x == *y; }))
      return false;
    int32_t lo, hi;
    ChapterSpan(month, &lo, &hi);
    auto d0 = cm.days.lower_bound(lo), d1 = cm.days.lower_bound(hi);
    auto e0 = base.days.lower_bound(lo), e1 = base.days.lower_bound(hi);
    if (!std::equal(d0, d1, e0, e1)) return false;
    // The counts of the parts its days name (what its day_counts say).
    for (auto it = d0; it != d1; ++it) {
      for (const auto& [sensor, parts] : it->second) {
        for (const std::string& p : parts) {
          auto x = cm.part_counts.find(p), z = base.part_counts.find(p);
          const bool hx = x != cm.part_counts.end(), hz = z != base.part_counts.end();
          if (hx != hz || (hx && !(x->second == z->second))) return false;
        }
      }
    }
    auto p0 = cm.periods.lower_bound(month), q0 = base.periods.lower_bound(month);
    auto in = [&](const auto& it, const auto& end) {
      return it != end && it->first.compare(0, month.size(), month) == 0;
    };
    for (; in(p0, cm.periods.end()) || in(q0, base.periods.end()); ++p0, ++q0) {
      if (!in(p0, cm.periods.end()) || !in(q0, base.periods.end()) || *p0 != *q0) return false;
    }
    return true;
  };
  std::map<std::string, uint64_t> chapters;
  bool wrote = false;
  for (const std::string& month : months) {
    if (same(month)) {
      chapters[month] = base.chapters.at(month);
      continue;
    }
    if (!wrote) {
      std::error_code ec;
      fs::create_directories(fs::path(dir_) / "man", ec);  // a store from before chapters
      if (ec) return IoError(fmt::format("create {}/man: {}", dir_, ec.message()));
      wrote = true;
    }
    const uint64_t id = m->next_id++;
    std::string text = SealManifestText(ChapterJson(*m, month));
    RETURN_IF_ERROR(
        WriteFileDurably((fs::path(dir_) / ChapterFile(id)).string(), text.data(), text.size()));
    chapters[month] = id;
  }
  m->chapters = std::move(chapters);
  if (wrote) RETURN_IF_ERROR(SyncDir((fs::path(dir_) / "man").string()));
  return OkStatus();
}

Status Store::WriteManifest(const Manifest& m) {
  std::string path = (fs::path(dir_) / "MANIFEST").string();
  std::string tmp = path + ".tmp";
  std::string text = SealManifestText(ManifestRootJson(m));
  RETURN_IF_ERROR(WriteFileDurably(tmp, text.data(), text.size()));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return IoError("rename " + tmp);
  RETURN_IF_ERROR(SyncDir(dir_));
  manifest_id_ = ManifestIdentity();
  return OkStatus();
}

int Store::SensorIndex(const std::string& id) const {
  for (size_t i = 0; i < manifest_.sensors.size(); ++i) {
    if (manifest_.sensors[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

bool InputRecord::Holds(const std::string& h) const {
  if (h.empty()) return false;
  if (hash == h || file_hash == h) return true;
  for (const Folded& f : folded) {
    if (f.hash == h || f.file_hash == h) return true;
  }
  return false;
}

Result<std::shared_ptr<const IdentityFile>> Store::OpenIdentities(uint64_t id) const {
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    auto it = identities_.find(id);
    if (it != identities_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(
      auto f, IdentityFile::Open((fs::path(dir_) / fmt::format("idx/{:08}.tids", id)).string()));
  std::shared_ptr<const IdentityFile> shared(std::move(f));
  std::lock_guard<std::mutex> l(cache_mu_);
  identities_[id] = shared;
  return shared;
}

Result<bool> Store::InputHolds(const InputRecord& in, const std::string& h) const {
  if (in.Holds(h)) return true;
  if (!in.folded_file || h.empty()) return false;
  ASSIGN_OR_RETURN(auto f, OpenIdentities(in.folded_file));
  return f->Holds(h);
}

Result<const InputRecord*> Store::FindInput(const std::string& hash) const {
  for (const auto& i : manifest_.inputs) {
    ASSIGN_OR_RETURN(bool held, InputHolds(i, hash));
    if (held) return &i;
  }
  return nullptr;
}

std::shared_ptr<const void> Store::Memo(const std::string& key) const {
  std::lock_guard<std::mutex> l(cache_mu_);
  auto it = memo_.find(key);
  return it == memo_.end() ? nullptr : it->second;
}

void Store::Memo(const std::string& key, std::shared_ptr<const void> value) const {
  std::lock_guard<std::mutex> l(cache_mu_);
  if (memo_.size() >= kMaxMemo) memo_.clear();
  memo_[key] = std::move(value);
}

Result<std::shared_ptr<const Store::DayRollups>> Store::Day(int32_t day) const {
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    auto it = day_cache_.find(day);
    if (it != day_cache_.end()) return it->second;
  }
  std::shared_ptr<DayRollups> d;
  auto it = manifest_.days.find(day);
  if (it != manifest_.days.end()) {
    d = std::make_shared<DayRollups>();
    for (const auto& [sensor, parts] : it->second) {
      for (const auto& rel : parts) {
        ASSIGN_OR_RETURN(auto f, RollupFile::Open((fs::path(dir_) / rel).string()));
        d->views.insert(d->views.end(), f->sensors().begin(), f->sensors().end());
        d->files.push_back(std::move(f));
      }
    }
  }
  std::lock_guard<std::mutex> l(cache_mu_);
  day_cache_[day] = d;
  return std::shared_ptr<const DayRollups>(d);
}

std::string Store::MonthLabel(int32_t day) {
  int y;
  unsigned m, d;
  TimeZone::CivilFromDays(day, &y, &m, &d);
  return fmt::format("{:04}-{:02}", y, m);
}

std::string Store::QuarterLabel(int32_t day) {
  int y;
  unsigned m, d;
  TimeZone::CivilFromDays(day, &y, &m, &d);
  return fmt::format("{}Q{}", y, (m - 1) / 3 + 1);
}

std::string Store::DayLabel(int32_t day) {
  return TimeZone::DayString(day);
}

std::string Store::SensorPeriodLabel(const std::string& period, uint16_t sensor) {
  return fmt::format("{}/s{}", period, sensor);
}

Result<std::shared_ptr<const Store::Parts>> Store::PeriodParts(const std::string& label) const {
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    auto it = period_cache_.find(label);
    if (it != period_cache_.end()) return it->second;
  }
  auto parts = std::make_shared<Parts>();
  auto it = manifest_.periods.find(label);
  if (it != manifest_.periods.end()) {
    for (const auto& rel : it->second) {
      ASSIGN_OR_RETURN(auto opened, RollupFile::Open((fs::path(dir_) / rel).string()));
      parts->push_back(std::move(opened));
    }
  }
  std::lock_guard<std::mutex> l(cache_mu_);
  period_cache_[label] = parts;
  return std::shared_ptr<const Parts>(parts);
}

Result<std::unique_ptr<SourceIndex>> Store::OpenIndex(uint64_t id) const {
  return SourceIndex::Open((fs::path(dir_) / fmt::format("idx/{:08}.tsix", id)).string());
}

Result<std::unique_ptr<SegmentReader>> Store::OpenSegment(uint64_t id) const {
  return SegmentReader::Open((fs::path(dir_) / fmt::format("seg/{:08}.tseg", id)).string());
}

uint64_t Store::StoredBytes() const {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& s : manifest_.segments) n += s.bytes;
  // A file several keys name (a sensor-day part its month and quarter name too) counts once.
  std::unordered_set<std::string> rollups;
  ForEachRollup([&](const std::string& f) {
    if (rollups.insert(f).second) n += fs::file_size(fs::path(dir_) / f, ec);
  });
  for (const auto& i : manifest_.inputs) {
    for (uint64_t id : i.Indexes()) {
      n += fs::file_size(fs::path(dir_) / fmt::format("idx/{:08}.tsix", id), ec);
    }
    if (i.folded_file) {
      n += fs::file_size(fs::path(dir_) / fmt::format("idx/{:08}.tids", i.folded_file), ec);
    }
  }
  return n;
}

std::vector<std::string> ManifestFiles(const Manifest& m) {
  std::vector<std::string> files;
  for (const auto& s : m.segments) files.push_back(fmt::format("seg/{:08}.tseg", s.id));
  for (const auto& i : m.inputs) {
    for (uint64_t id : i.Indexes()) files.push_back(fmt::format("idx/{:08}.tsix", id));
    if (i.folded_file) files.push_back(fmt::format("idx/{:08}.tids", i.folded_file));
  }
  for (const auto& [d, per_sensor] : m.days) {
    for (const auto& [sensor, parts] : per_sensor)
      files.insert(files.end(), parts.begin(), parts.end());
  }
  for (const auto& [label, parts] : m.periods)
    files.insert(files.end(), parts.begin(), parts.end());
  for (const auto& [month, id] : m.chapters) files.push_back(ChapterFile(id));
  return files;
}

Status Store::CollectGarbage(bool sweep) {
  if (!sweep && manifest_.garbage.empty()) return OkStatus();
  if (readers_fd_ >= 0) {
    // A teiten from before the byte locks held all of READERS shared while it read (flock): such
    // a reader keeps everything. So does a Store loading a manifest, whose generation is not
    // known yet.
    if (FlockRetry(readers_fd_, LOCK_EX | LOCK_NB) != 0) return OkStatus();
    FlockRetry(readers_fd_, LOCK_UN);
    if (ReadersHold(kOpeningByte, kOpeningByte + 1)) return OkStatus();
  }
  RemoveUnreferenced(sweep);
  return OkStatus();
}

void Store::RemoveUnreferenced(bool sweep) {
  std::error_code ec;
  // A file that generation g stopped naming goes once no reader holds an older snapshot; the
  // others stay listed, so a later writer removes them without walking the store.
  std::vector<std::string> kept;
  std::vector<uint64_t> kept_since;
  std::map<uint64_t, bool> held;  // died-at generation → some reader holds an older one
  for (size_t i = 0; i < manifest_.garbage.size(); ++i) {
    uint64_t since =
        i < manifest_.garbage_since.size() ? manifest_.garbage_since[i] : manifest_.generation;
    auto [it, fresh] = held.try_emplace(since, false);
    if (fresh) it->second = ReadersHold(0, since);
    if (it->second) {
      kept.push_back(manifest_.garbage[i]);
      kept_since.push_back(since);
    } else {
      fs::remove(fs::path(dir_) / manifest_.garbage[i], ec);
    }
  }
  manifest_.garbage = std::move(kept);
  manifest_.garbage_since = std::move(kept_since);
  // Files no manifest names, left by a writer that died: they may belong to any older snapshot.
  if (!sweep || ReadersHold(0, manifest_.generation)) return;
  std::vector<std::string> named = ManifestFiles(manifest_);
  named.insert(named.end(), manifest_.garbage.begin(), manifest_.garbage.end());
  std::unordered_set<std::string> live(named.begin(), named.end());
  // A running merge's files are named by no manifest until it publishes them.
  const bool merging = MergeRunning();
  for (const char* sub : {"seg", "rollup", "idx", "man"}) {
    for (const auto& e : fs::directory_iterator(fs::path(dir_) / sub, ec)) {
      std::string rel = std::string(sub) + "/" + e.path().filename().string();
      if (live.count(rel)) continue;
      if (merging && IsMergeFile(rel)) continue;
      fs::remove(e.path(), ec);
    }
  }
  fs::remove(fs::path(dir_) / "MANIFEST.tmp", ec);
}

bool IsMergeFile(const std::string& rel) {
  // rollup/<key>.<generation>.m<serial>.troll, idx/merging.<generation>.<serial>.tsix
  if (rel.rfind("idx/merging.", 0) == 0) return true;
  if (rel.rfind("rollup/", 0) != 0 || rel.size() < 20) return false;
  const size_t m = rel.size() - 13;  // ".m" + 5 digits + ".troll"
  if (rel.compare(m, 2, ".m") != 0 || rel.compare(rel.size() - 6, 6, ".troll") != 0) return false;
  for (size_t i = m + 2; i < m + 7; ++i) {
    if (rel[i] < '0' || rel[i] > '9') return false;
  }
  return true;
}

bool Store::MergeRunning() const {
  OwnedFd fd(::open((fs::path(dir_) / "MERGER").c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) return false;  // no merge ever ran here
  if (FlockRetry(fd.get(), LOCK_EX | LOCK_NB) != 0) return errno == EWOULDBLOCK;
  FlockRetry(fd.get(), LOCK_UN);
  return false;
}

void Store::SweepMergeFiles() {
  std::vector<std::string> named = ManifestFiles(manifest_);
  named.insert(named.end(), manifest_.garbage.begin(), manifest_.garbage.end());
  std::unordered_set<std::string> live(named.begin(), named.end());
  std::error_code ec;
  for (const char* sub : {"rollup", "idx"}) {
    for (const auto& e : fs::directory_iterator(fs::path(dir_) / sub, ec)) {
      std::string rel = std::string(sub) + "/" + e.path().filename().string();
      if (IsMergeFile(rel) && !live.count(rel)) fs::remove(e.path(), ec);
    }
  }
}

Result<std::unique_ptr<Store::Transaction>> Store::Begin() {
  std::string lock = (fs::path(dir_) / "LOCK").string();
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(fmt::format("lock {}: {}", lock, std::strerror(errno)));
  if (FlockRetry(fd, LOCK_EX) != 0) {
    ::close(fd);
    return IoError(fmt::format("flock {}: {}", lock, std::strerror(errno)));
  }
  // Another writer may have committed since we opened: start from what is on disk now (read
  // again only if the file is another one: a manifest is replaced, never rewritten in place).
  std::string id = ManifestIdentity();
  Status st = !id.empty() && id == manifest_id_ ? OkStatus() : LoadManifest();
  if (st.ok()) st = HoldGeneration(manifest_.generation);
  // LOCK holds one byte: '1' while a transaction runs, '0' once it ended (committed or undone).
  // Anything else — a writer killed mid-transaction, or a store from before this marker — means
  // files no manifest names may be lying around: the whole store is swept once. Otherwise only
  // the files the last commits replaced are removed, so a commit does not walk the store.
  char mark = 0;
  bool sweep = ::pread(fd, &mark, 1, 0) != 1 || mark != '0';
  if (st.ok()) st = CollectGarbage(sweep);
  if (st.ok() && (::pwrite(fd, "1", 1, 0) != 1 || ::fdatasync(fd) != 0)) {
    st = IoError(fmt::format("write {}: {}", lock, std::strerror(errno)));
  }
  if (!st.ok()) {
    ::close(fd);
    return st;
  }
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    day_cache_.clear();
    period_cache_.clear();
    memo_.clear();
  }
  return std::unique_ptr<Transaction>(new Transaction(this, fd));
}

Store::Transaction::~Transaction() {
  if (writing_.valid()) writing_.wait();  // the writer thread may still be writing a file
  if (!committed_) {
    std::error_code ec;
    for (const auto& f : written_) fs::remove(f, ec);
  }
  if (lock_fd_ < 0) return;  // a detached merge's: it held no lock
  // Ended cleanly: the next writer need not sweep (not synced: if this is lost, it sweeps).
  if (::pwrite(lock_fd_, "0", 1, 0) != 1) {
    // Nothing to undo: the next writer sweeps the store, which is only slower.
  }
  ::close(lock_fd_);  // releases the flock
}

uint16_t Store::Transaction::EnsureSensor(const SensorConfig& s) {
  SensorRecord rec{
      s.id, s.name, s.group, s.country, s.mode == SensorMode::kHost ? "host" : "darknet", {}};
  for (const auto& p : s.prefixes) rec.prefixes.push_back(p.ToString());
  for (size_t i = 0; i < next_.sensors.size(); ++i) {
    if (next_.sensors[i].id == s.id) {
      next_.sensors[i] = rec;
      return static_cast<uint16_t>(i);
    }
  }
  next_.sensors.push_back(rec);
  return static_cast<uint16_t>(next_.sensors.size() - 1);
}

Result<bool> Store::Transaction::HasInput(const std::string& hash) const {
  for (const auto& i : next_.inputs) {
    ASSIGN_OR_RETURN(bool held, store_->InputHolds(i, hash));
    if (held) return true;
  }
  return false;
}

Status Store::Transaction::Add(const ObservationBatch& batch, const std::vector<uint32_t>& order,
                               const std::vector<int32_t>& day, const std::vector<GeoInfo>& geo) {
  const TimeZone& tz = store_->tz_;
  // The batch's rows of each local day (`order` is sorted by day, then source), each a segment —
  // two when some are backscatter: those in one of their own (SegmentRows), each in (source,
  // time) order still.
  std::vector<std::vector<uint32_t>> parts;
  std::vector<SegmentRecord> recs;
  std::vector<uint32_t> backscatter, rest;
  auto add_part = [&](int32_t d, std::vector<uint32_t> rows, SegmentRows rows_of) {
    SegmentRecord rec;
    rec.id = rollups_only_ ? 0 : next_.next_id++;  // rebuilt rollups: no segment, no index
    rec.day = d;
    rec.rows = rows.size();
    rec.ts_min = INT64_MAX;
    rec.ts_max = INT64_MIN;
    rec.rows_of = rollups_only_ ? SegmentRows::kAll : rows_of;
    recs.push_back(rec);
    parts.push_back(std::move(rows));
  };
  for (size_t begin = 0; begin < order.size();) {
    const int32_t d = day[order[begin]];
    size_t end = begin;
    while (end < order.size() && day[order[end]] == d) ++end;
    SplitBackscatter(batch.rows, order.begin() + static_cast<ptrdiff_t>(begin),
                     order.begin() + static_cast<ptrdiff_t>(end), &backscatter, &rest);
    if (!backscatter.empty()) add_part(d, std::move(backscatter), SegmentRows::kBackscatter);
    if (!rest.empty()) add_part(d, std::move(rest), SegmentRows::kNoBackscatter);
    begin = end;
  }
  // The segments are encoded and written on a thread of their own while this one counts the
  // same rows into the rollups and the source index: each reads the batch, neither changes it,
  // and each writes its own fields of the records (the writer `bytes`, this thread the times).
  // Joined before returning (the batch is the caller's), on every path: a future of std::async
  // waits for its task when destroyed, and it is destroyed before `parts` and `recs`.
  std::future<Status> segments;
  if (!rollups_only_) {
    std::vector<std::string> paths;
    for (const SegmentRecord& rec : recs) {
      paths.push_back((fs::path(store_->dir_) / fmt::format("seg/{:08}.tseg", rec.id)).string());
      written_.push_back(paths.back());
    }
    segments = std::async(std::launch::async, [&, paths = std::move(paths)] {
      for (size_t i = 0; i < parts.size(); ++i) {
        RETURN_IF_ERROR(SegmentWriter::Write(paths[i], batch, parts[i], geo, kZstdLevel,
                                             &recs[i].bytes, &segment_scratch_));
      }
      return OkStatus();
    });
  }
  for (size_t pi = 0; pi < parts.size(); ++pi) {
    const std::vector<uint32_t>& part = parts[pi];
    SegmentRecord& rec = recs[pi];
    const int32_t d = rec.day;
    const uint64_t id = rec.id;
    DayRollup& roll = pending_[d];
    roll.day = d;
    int64_t day_start = tz.DayStartUs(d);
    // Rows of one source are adjacent (sorted by source within the day): count per-source facts
    // once per run, and per-row facts through dense arrays.
    constexpr int64_t kSlotUs = int64_t{kSlotMinutes} * 60 * 1000000;
    uint32_t first_ref = 0;
    for (size_t b = 0; !rollups_only_ && b * kBlockRows < part.size(); ++b) {
      uint32_t ref = index_.AddBlock(id, static_cast<uint32_t>(b), d);
      if (b == 0) first_ref = ref;
    }
    std::vector<PortCell*> touched;
    std::vector<PortCell*> heavy_dirty;
    std::vector<const Observation*> run_rows;
    for (size_t r = 0; r < part.size();) {
      const Observation& head = batch.rows[part[r]];
      size_t e = r + 1;
      while (e < part.size() && batch.rows[part[e]].src == head.src &&
             batch.rows[part[e]].sensor == head.sensor) {
        ++e;
      }
      SensorDay& sd = roll.sensors[head.sensor];
      const GeoInfo& g = geo[part[r]];
      size_t cells_before = sd.ports.size();
      sd.AddRun(head.src, g, e - r);
      if (!rollups_only_) {
        run_rows.clear();
        for (size_t k = r; k < e; ++k) run_rows.push_back(&batch.rows[part[k]]);
        index_.AddRun(run_rows.data(), run_rows.size(),
                      first_ref + static_cast<uint32_t>(r / kBlockRows),
                      static_cast<uint32_t>((e - 1) / kBlockRows - r / kBlockRows + 1), g);
      }
      ++run_id_;
      touched.clear();
      PortKey last_key = UINT32_MAX;
      PortCell* cell = nullptr;
      for (size_t k = r; k < e; ++k) {
        const Observation& o = batch.rows[part[k]];
        rec.ts_min = std::min(rec.ts_min, o.ts_us);
        rec.ts_max = std::max(rec.ts_max, o.ts_us);
        PortKey key = PortKeyOf(o);
        if (key != last_key) {
          cell = &sd.Port(key);
          last_key = key;
          if (cell->last_run != run_id_) {
            cell->last_run = run_id_;
            cell->run_packets = 0;
            cell->sources.Add(o.src);
            touched.push_back(cell);
          }
        }
        cell->packets++;
        cell->run_packets++;
        int64_t since = o.ts_us - day_start;
        int slot = std::clamp(static_cast<int>(since / kSlotUs), 0, kMaxSlotsPerDay - 1);
        if (sd.slots.size() <= static_cast<size_t>(slot))
          sd.slots.resize(static_cast<size_t>(slot) + 1);
        sd.slots[static_cast<size_t>(slot)]++;
      }
      // Rough bytes held: a set member in the total, country, ASN and each port touched (with
      // vector slack), and each new port cell with its maps.
      // Rough, from what a spoofed flood allocates: a set member with vector slack ~10 bytes; a new
      // cell, with its country map, summary vectors and first set allocations, ~640; a day's direct
      // port index 512 KiB once it has 256 ports.
      pending_bytes_ += (touched.size() + 3) * 10 + (sd.ports.size() - cells_before) * 640;
      if (cells_before < 256 && sd.ports.size() >= 256) pending_bytes_ += 512 << 10;
      for (PortCell* c : touched) {
        c->countries[g.country] += c->run_packets;
        if (c->heavy_pending.empty()) heavy_dirty.push_back(c);
        c->heavy_pending.push_back({head.src, c->run_packets});
      }
      r = e;
    }
    // A source is one run in this part (rows are sorted by source): the pending counts are
    // exact; fold them into each port's summary.
    for (PortCell* c : heavy_dirty) FoldHeavy(&c->heavy, &c->heavy_pending, kHeavySlots);
    rows_added_ += part.size();
    touched_days_.insert(d);
    // Checked after each day of the batch: a batch spread over many days (a flood) would
    // otherwise hold all of them past the budget.
    if (pending_bytes_ + index_.bytes() > memory_budget_) RETURN_IF_ERROR(Spill());
  }
  if (!rollups_only_) {
    RETURN_IF_ERROR(segments.get());
    new_segments_.insert(new_segments_.end(), recs.begin(), recs.end());
  }
  return OkStatus();
}

Status Store::Transaction::RebuildIndexes() {
  constexpr uint32_t kColumns = col::kSrc | col::kTs | col::kSensor | col::kPorts | col::kHeader;
  DecodedBlock blk;
  std::vector<const Observation*> rows;
  std::map<uint64_t, int32_t> seg_day;
  for (const auto& s : next_.segments) seg_day[s.id] = s.day;
  for (auto& in : next_.inputs) {
    SourceIndexBuilder b;
    for (uint64_t id : in.segments) {
      ASSIGN_OR_RETURN(auto reader, store_->OpenSegment(id));
      for (size_t k = 0; k < reader->blocks().size(); ++k) {
        uint32_t ref = b.AddBlock(id, static_cast<uint32_t>(k), seg_day[id]);
        RETURN_IF_ERROR(reader->ReadBlock(k, kColumns, &blk));
        // A run cut by a block boundary becomes two visits: the sums are the same.
        const auto& r = blk.batch.rows;
        for (size_t i = 0; i < r.size();) {
          size_t e = i + 1;
          while (e < r.size() && r[e].src == r[i].src && r[e].sensor == r[i].sensor) ++e;
          rows.clear();
          for (size_t x = i; x < e; ++x) rows.push_back(&r[x]);
          b.AddRun(rows.data(), rows.size(), ref, 1, blk.geo[i]);
          i = e;
        }
      }
    }
    in.more_indexes.clear();
    if (b.empty()) {
      in.index = 0;
      continue;
    }
    uint64_t id = next_.next_id++;
    std::string path = (fs::path(store_->dir_) / fmt::format("idx/{:08}.tsix", id)).string();
    written_.push_back(path);
    RETURN_IF_ERROR(b.Write(path));
    in.index = id;
  }
  return Publish();
}

struct Store::Transaction::HeldWrite {
  SourceIndexBuilder index;
  std::string index_path;  // empty: no index to write
  std::map<int32_t, DayRollup> days;
  // A period key's part: the sum of this write's (day, sensor) pairs `fed` and, for a key that
  // must start from its span's committed days, of the parts at `base`.
  struct Period {
    std::string path;
    int32_t first = 0, end = 0;
    uint16_t sensor = kAllSensors;
    std::vector<std::pair<int32_t, uint16_t>> fed;
    std::vector<std::string> base;
  };
  std::vector<Period> periods;
  struct DayPart {
    int32_t day = 0;
    uint16_t sensor = 0;
    std::string rel, path;
  };
  std::vector<DayPart> parts;
};

Status Store::Transaction::PlanPeriods(HeldWrite* w) {
  // Every period key this transaction adds to: each month and quarter of every sensor together
  // ("2018Q3") and of each sensor it added to ("2018Q3/s3"), and each day of every sensor
  // together ("2018-08-12"). A key names the sensor-day parts WriteHeld writes for the days
  // of its span (a pooled key every sensor's, a sensor's key its own): the counts are written
  // once, not again as a month and a quarter, and a commit writes what it adds, once. Counts add
  // and sets unite, so a key's parts equal a rollup built from its days; merges (Store::Merge)
  // later make them one part, and a day's merge stands for it in its month's and quarter's lists.
  struct Span {
    int32_t first, end;
    uint16_t sensor;  // kAllSensors: every sensor together
  };
  std::map<std::string, Span> spans;
  for (const auto& [d, roll] : w->days) {
    int y;
    unsigned m, dd;
    TimeZone::CivilFromDays(d, &y, &m, &dd);
    unsigned q0 = (m - 1) / 3 * 3 + 1;
    auto next = [](int yy, unsigned mm) {
      return mm > 12 ? TimeZone::DaysFromCivil(yy + 1, mm - 12, 1)
                     : TimeZone::DaysFromCivil(yy, mm, 1);
    };
    Span month{TimeZone::DaysFromCivil(y, m, 1), next(y, m + 1), kAllSensors};
    Span quarter{TimeZone::DaysFromCivil(y, q0, 1), next(y, q0 + 3), kAllSensors};
    spans[MonthLabel(d)] = month;
    spans[QuarterLabel(d)] = quarter;
    spans[DayLabel(d)] = {d, d + 1, kAllSensors};
    for (const auto& [sensor, sd] : roll.sensors) {
      month.sensor = quarter.sensor = sensor;
      spans[SensorPeriodLabel(MonthLabel(d), sensor)] = month;
      spans[SensorPeriodLabel(QuarterLabel(d), sensor)] = quarter;
    }
  }
  // A committed day of [first, end) at `sensor` (kAllSensors: any), in the manifest this
  // transaction started from: a period key without parts must then start from them.
  auto has_days = [&](int32_t first, int32_t end, uint16_t sensor) {
    for (auto d = next_.days.lower_bound(first); d != next_.days.end() && d->first < end; ++d) {
      if (sensor == kAllSensors || d->second.count(sensor)) return true;
    }
    return false;
  };
  // What this transaction adds to a key: its (day, sensor) pairs, by day.
  using Fed = std::vector<std::pair<int32_t, uint16_t>>;
  auto fed_to = [&](const Span& span) {
    Fed fed;
    for (auto d = w->days.lower_bound(span.first); d != w->days.end() && d->first < span.end; ++d) {
      for (const auto& [sensor, sd] : d->second.sensors) {
        if (span.sensor == kAllSensors || span.sensor == sensor) fed.push_back({d->first, sensor});
      }
    }
    return fed;
  };
  // Each sensor's keys first, then the pooled ones, so that a pooled key fed by one sensor shares
  // that sensor's part (whose entry is the sensor's) rather than the other way round.
  std::vector<std::pair<const std::string*, const Span*>> order;
  for (const auto& [label, span] : spans) {
    if (span.sensor != kAllSensors) order.push_back({&label, &span});
  }
  for (const auto& [label, span] : spans) {
    if (span.sensor == kAllSensors) order.push_back({&label, &span});
  }
  // Parts of sums written so far, by what they sum: keys without a base that this transaction fed
  // the same (day, sensor) pairs hold the same counts — a pooled key one sensor fed and that
  // sensor's, a quarter whose days are all of one month and that month — and share one file.
  std::map<Fed, std::string> summed;
  for (const auto& [label_p, span_p] : order) {
    const std::string& label = *label_p;
    const Span& span = *span_p;
    const bool base_free =
        next_.periods.count(label) || !has_days(span.first, span.end, span.sensor);
    const Fed fed = fed_to(span);
    // Up to kNameDays days, the key names their parts. A transaction of more days of a key (a
    // month's capture, or a flood spread over weeks) writes their sum as one part instead: the
    // in-memory sum costs less than a merge of that many parts later, and a query over the key
    // unites fewer parts meanwhile.
    constexpr size_t kNameDays = 3;
    size_t days = 0;
    for (size_t i = 0; i < fed.size(); ++i) days += i == 0 || fed[i].first != fed[i - 1].first;
    if (base_free && days <= kNameDays) {
      for (const auto& day_sensor : fed) day_names_[day_sensor].push_back(label);
      continue;
    }
    if (base_free) {
      auto same = summed.find(fed);
      if (same != summed.end()) {
        next_.periods[label].push_back(same->second);
        continue;
      }
    }
    // The sum of this transaction's days of the key, in one part (made by WriteWork). A key
    // without parts in a store written before this kind of period rollup, whose committed days
    // of its span hold data (or whose rollups are being rebuilt around them), starts from those
    // days, so that its parts stay whole.
    HeldWrite::Period period;
    period.first = span.first;
    period.end = span.end;
    period.sensor = span.sensor;
    period.fed = fed;
    for (auto d = next_.days.lower_bound(span.first);
         !base_free && d != next_.days.end() && d->first < span.end; ++d) {
      for (const auto& [sensor, parts] : d->second) {
        if (span.sensor != kAllSensors && sensor != span.sensor) continue;
        for (const auto& rel : parts) {
          period.base.push_back((fs::path(store_->dir_) / rel).string());
        }
      }
    }
    std::string file =
        span.sensor == kAllSensors
            ? fmt::format("{}.all", label)
            : fmt::format("{}.s{:05}", label.substr(0, label.find('/')), span.sensor);
    std::string rel = PartName(file);
    period.path = (fs::path(store_->dir_) / rel).string();
    written_.push_back(period.path);
    w->periods.push_back(std::move(period));
    next_.periods[label].push_back(rel);
    if (base_free) summed[fed] = rel;
  }
  return OkStatus();
}

std::string Store::Transaction::PartName(const std::string& stem) const {
  // Parts written by one transaction's spills are told apart by their spill number.
  return spills_ == 0
             ? fmt::format("rollup/{}.{:08}.troll", stem, next_.generation + 1)
             : fmt::format("rollup/{}.{:08}.p{:04}.troll", stem, next_.generation + 1, spills_);
}

Result<std::vector<Store::Transaction::PartCount>> Store::Transaction::WriteWork(HeldWrite* w) {
  if (!w->index_path.empty()) RETURN_IF_ERROR(w->index.Write(w->index_path));
  w->index = SourceIndexBuilder();
  for (HeldWrite::Period& p : w->periods) {
    DayRollup period;
    period.day = p.first;
    period.end_day = p.end;
    SensorDay& into = period.sensors[p.sensor];
    for (const std::string& path : p.base) {
      ASSIGN_OR_RETURN(auto f, RollupFile::Open(path));
      ASSIGN_OR_RETURN(DayRollup one, f->Decode());
      for (const auto& [s, sd] : one.sensors) into.Merge(sd);
    }
    for (const auto& [d, sensor] : p.fed) into.Merge(w->days.at(d).sensors.at(sensor));
    into.slots.clear();  // 5-minute counts stay with the days
    std::vector<uint8_t> bytes = period.Encode();
    RETURN_IF_ERROR(WriteFileDurably(p.path, bytes.data(), bytes.size()));
  }
  std::vector<PartCount> counts;
  for (const HeldWrite::DayPart& part : w->parts) {
    DayRollup one;
    one.day = part.day;
    one.sensors[part.sensor] = std::move(w->days.at(part.day).sensors.at(part.sensor));
    std::vector<uint8_t> bytes = one.Encode();
    const SensorDay& written = one.sensors.begin()->second;
    counts.push_back({part.rel, written.total.packets, written.total.sources.Count()});
    RETURN_IF_ERROR(WriteFileDurably(part.path, bytes.data(), bytes.size()));
  }
  return counts;
}

Status Store::Transaction::JoinWrite() {
  if (!writing_.valid()) return OkStatus();
  auto counts = writing_.get();
  if (!counts.ok()) return counts.status();
  for (const PartCount& c : *counts) next_.part_counts[c.rel] = {c.packets, c.sources};
  return OkStatus();
}

Status Store::Transaction::WriteHeld(bool wait) {
  // One hand-off at a time: what is held now waits for the previous one to be written (memory
  // stays within twice the budget).
  RETURN_IF_ERROR(JoinWrite());
  auto w = std::make_shared<HeldWrite>();
  if (!index_.empty()) {
    uint64_t id = next_.next_id++;
    w->index_path = (fs::path(store_->dir_) / fmt::format("idx/{:08}.tsix", id)).string();
    written_.push_back(w->index_path);
    indexes_.push_back(id);
    w->index = std::move(index_);
    index_ = SourceIndexBuilder();
  }
  w->days = std::move(pending_);
  pending_.clear();
  RETURN_IF_ERROR(PlanPeriods(w.get()));
  for (auto& [d, roll] : w->days) {
    for (auto& [sensor, sd] : roll.sensors) {
      HeldWrite::DayPart part;
      part.day = d;
      part.sensor = sensor;
      part.rel = PartName(fmt::format("{}.s{:05}", TimeZone::DayString(d), sensor));
      part.path = (fs::path(store_->dir_) / part.rel).string();
      written_.push_back(part.path);
      next_.days[d][sensor].push_back(part.rel);
      auto named = day_names_.find({d, sensor});
      if (named != day_names_.end()) {
        for (const std::string& label : named->second) next_.periods[label].push_back(part.rel);
      }
      w->parts.push_back(std::move(part));
    }
  }
  day_names_.clear();
  pending_bytes_ = 0;
  if (w->index_path.empty() && w->periods.empty() && w->parts.empty()) return OkStatus();
  writing_ = std::async(std::launch::async, [w] { return WriteWork(w.get()); });
  return wait ? JoinWrite() : OkStatus();
}

Status Store::Transaction::Spill() {
  // What is held for the commit goes to disk as parts and an index file, named by no manifest
  // until the commit (a kill leaves them to the next writer's clean-up).
  RETURN_IF_ERROR(WriteHeld(false));
  ++spills_;
  return OkStatus();
}

Status Store::Transaction::Commit(InputRecord input) {
  RETURN_IF_ERROR(WriteHeld(true));
  if (!indexes_.empty()) {
    input.index = indexes_.front();
    input.more_indexes.assign(indexes_.begin() + 1, indexes_.end());
  }
  for (const auto& s : new_segments_) input.segments.push_back(s.id);
  next_.segments.insert(next_.segments.end(), new_segments_.begin(), new_segments_.end());
  if (input.ingested_at == 0) input.ingested_at = static_cast<int64_t>(std::time(nullptr));
  next_.inputs.push_back(std::move(input));
  return Publish();
}

Status Store::Transaction::Publish() {
  RETURN_IF_ERROR(JoinWrite());
  next_.generation++;
  // The months this transaction changed get new chapters (the others are named as they are);
  // written before the garbage is listed, which counts the chapters they replace.
  RETURN_IF_ERROR(store_->WriteChapters(&next_));
  {
    // What this commit stops naming goes when no reader holds an older snapshot; until then the
    // manifest lists it, so that a later writer removes it without walking the store.
    std::vector<std::string> now = ManifestFiles(next_);
    std::unordered_set<std::string> kept(now.begin(), now.end());
    std::unordered_set<std::string> listed(next_.garbage.begin(), next_.garbage.end());
    next_.garbage_since.resize(next_.garbage.size(), next_.generation);
    for (auto& f : ManifestFiles(store_->manifest_)) {
      if (!kept.count(f) && listed.insert(f).second) {
        next_.garbage.push_back(std::move(f));
        next_.garbage_since.push_back(next_.generation);
      }
    }
    // Files this transaction wrote and replaced itself (a merge whose result was merged again
    // in a later round, a fold's intermediate): no manifest ever named them.
    const std::string prefix = (fs::path(store_->dir_) / "").string();
    for (const std::string& path : written_) {
      if (path.rfind(prefix, 0) != 0) continue;
      std::string rel = path.substr(prefix.size());
      if (!kept.count(rel) && listed.insert(rel).second) {
        next_.garbage.push_back(std::move(rel));
        next_.garbage_since.push_back(next_.generation);
      }
    }
  }
  RETURN_IF_ERROR(SyncDir((fs::path(store_->dir_) / "seg").string()));
  RETURN_IF_ERROR(SyncDir((fs::path(store_->dir_) / "rollup").string()));
  RETURN_IF_ERROR(SyncDir((fs::path(store_->dir_) / "idx").string()));
  RETURN_IF_ERROR(store_->WriteManifest(next_));  // the commit point
  committed_ = true;
  // The store's snapshot is now this manifest; the transaction is done with it (a copy of a
  // 1 G-packet store's manifest is tens of thousands of strings).
  store_->manifest_ = std::move(next_);
  next_ = Manifest{};
  RETURN_IF_ERROR(store_->HoldGeneration(store_->manifest_.generation));
  {
    std::lock_guard<std::mutex> l(store_->cache_mu_);
    store_->day_cache_.clear();
    store_->period_cache_.clear();
    store_->memo_.clear();
  }
  pending_.clear();
  return store_->CollectGarbage(false);
}

}  // namespace teiten
