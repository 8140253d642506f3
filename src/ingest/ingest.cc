#include "ingest/ingest.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>

#include "capture/pcap_file.h"

namespace teiten {
namespace {

std::string HexDigest(XXH128_hash_t h) {
  return fmt::format("{:016x}{:016x}", h.high64, h.low64);
}

}  // namespace

std::string DescribeGeoDb(const GeoDbInfo& info) {
  if (info.path.empty()) return "";
  return fmt::format("{} {} {}", info.database_type, info.BuildDate(), info.path);
}

namespace {

// A stream (standard input, a FIFO, a socket) is read once, to its end, into a file of the
// store's tmp/ folder, which is then ingested like a capture file and removed: the capture
// readers detect compression and pcapng by reading ahead, which a pipe cannot give back. The
// stream's identity is still what it contains. Files left by an ingest that was killed are
// removed by the next one (their process is gone).
class StreamSpool {
 public:
  ~StreamSpool() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  Result<std::string> Fill(const std::string& store_dir, const std::string& source) {
    std::string dir = store_dir + "/tmp";
    ::mkdir(dir.c_str(), 0755);
    if (DIR* d = ::opendir(dir.c_str())) {
      while (dirent* e = ::readdir(d)) {
        int pid = 0;
        if (std::sscanf(e->d_name, "stream-%d-", &pid) == 1 && pid != ::getpid() &&
            ::kill(pid, 0) != 0 && errno == ESRCH) {
          ::unlink((dir + "/" + e->d_name).c_str());
        }
      }
      ::closedir(d);
    }
    static int serial = 0;
    path_ = fmt::format("{}/stream-{}-{}.cap", dir, ::getpid(), ++serial);
    int in = source == "-" ? ::dup(0) : ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return IoError(fmt::format("{}: {}", source, std::strerror(errno)));
    int out = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
      ::close(in);
      return IoError(fmt::format("{}: {}", path_, std::strerror(errno)));
    }
    std::vector<char> buf(size_t{1} << 20);
    Status st;
    while (true) {
      ssize_t n = ::read(in, buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        st = IoError(fmt::format("{}: read: {}", source, std::strerror(errno)));
        break;
      }
      for (ssize_t done = 0; done < n;) {
        ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          st = IoError(fmt::format("{}: write: {}", path_, std::strerror(errno)));
          break;
        }
        done += w;
      }
      if (!st.ok()) break;
    }
    ::close(in);
    ::close(out);
    RETURN_IF_ERROR(st);
    return path_;
  }

 private:
  std::string path_;
};

}  // namespace

Result<IngestSummary> Ingester::IngestFile(const SensorConfig& sensor, const std::string& path) {
  struct stat st {};
  if (path == "-" || (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))) {
    StreamSpool spool;
    ASSIGN_OR_RETURN(std::string copy, spool.Fill(store_->dir(), path));
    ASSIGN_OR_RETURN(IngestSummary sum, IngestCapture(sensor, copy, path == "-" ? "stdin" : path));
    return sum;
  }
  return IngestCapture(sensor, path, path);
}

Result<IngestSummary> Ingester::IngestCapture(const SensorConfig& sensor, const std::string& path,
                                              const std::string& name) {
  auto t0 = std::chrono::steady_clock::now();
  IngestSummary sum;
  sum.path = name;
  // A regular file whose bytes were ingested before is skipped without decoding it (stores
  // written before content identities know inputs only this way). Streams are read once: their
  // identity is only known at their end.
  // The file's bytes are hashed on a thread of their own while the packets are read (reading
  // the file twice in a row cost as long as libpcap takes to read it); the answer is looked at
  // after each batch, so a file ingested before stops a batch or two in, its transaction dropped.
  std::string file_hash;
  std::future<Result<std::string>> hashing;
  if (name == path) hashing = std::async(std::launch::async, [path] { return HashFile(path); });
  // Whether the file's bytes are an input's already: the input, once the hash is known.
  auto held_before = [&](bool wait) -> Result<const InputRecord*> {
    if (!hashing.valid()) return nullptr;
    if (!wait && hashing.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      return nullptr;
    }
    ASSIGN_OR_RETURN(file_hash, hashing.get());
    for (const InputRecord& in : store_->manifest().inputs) {
      ASSIGN_OR_RETURN(bool held, store_->InputHolds(in, file_hash));
      if (held) return &in;
    }
    return nullptr;
  };
  auto skip = [&](const InputRecord& in) -> Result<IngestSummary> {
    RETURN_IF_ERROR(SameSensor(in, sensor, name));
    sum.hash = in.hash;
    sum.already_ingested = true;
    sum.kept = 0;
    return sum;
  };
  // Waits for the hash (its thread reads the file) on every way out.
  struct JoinHash {
    std::future<Result<std::string>>* f;
    ~JoinHash() {
      if (f->valid()) f->wait();
    }
  } join_hash{&hashing};
  // Errors name the input as the user gave it, not a stream's copy.
  auto named = [&](std::string text) {
    for (size_t at; name != path && (at = text.find(path)) != std::string::npos;) {
      text.replace(at, path.size(), name);
    }
    return text;
  };
  auto opened = PcapFile::Open(path);
  if (!opened.ok()) return Status(opened.status().code(), named(opened.status().message()));
  std::unique_ptr<PcapFile> file = std::move(*opened);
  if (!Decoder::SupportsLinkType(file->datalink())) {
    return InvalidArgument(
        fmt::format("{}: link type {} is not one teiten decodes (Ethernet, "
                    "Linux SLL/SLL2, raw IP, loopback)",
                    name, file->datalink()));
  }
  ASSIGN_OR_RETURN(auto txn, store_->Begin());
  txn->set_memory_budget(opts_.memory_budget);
  uint16_t sensor_index = txn->EnsureSensor(sensor);
  // The identity is hashed while reading. An earlier input of this sensor that ended part-way
  // (a capture cut short) may be this capture's beginning: its packet count is a checkpoint at
  // which the running hash is compared with its identity.
  XXH3_state_t* content = XXH3_createState();
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> content_owner(content, XXH3_freeState);
  XXH3_128bits_reset(content);
  {
    int32_t dlt32 = file->datalink();
    XXH3_128bits_update(content, &dlt32, sizeof dlt32);
  }
  // Packet count → identity, copied: the manifest they come from is reloaded if we start over.
  std::multimap<uint64_t, std::string> checkpoints;
  for (const InputRecord& in : store_->manifest().inputs) {
    if (in.sensor == sensor.id && !in.error.empty() && in.packets_read > 0) {
      checkpoints.emplace(in.packets_read, in.hash);
    }
  }
  std::string extends;
  uint64_t prefix_packets = 0;
  SensorFilter filter(sensor);
  Decoder decoder;
  std::array<uint64_t, static_cast<size_t>(FilterVerdict::kCount)> verdicts{};
  // Two cores: this thread reads, decodes and filters into one batch while a worker sorts,
  // enriches and stores the previous one.
  ObservationBatch batches[2];
  int cur = 0;
  batches[0].rows.reserve(opts_.batch_rows);
  batches[1].rows.reserve(opts_.batch_rows);
  std::future<Status> pending;
  const InputRecord* seen_before = nullptr;
  auto hand_off = [&]() -> Status {
    if (pending.valid()) RETURN_IF_ERROR(pending.get());
    if (!seen_before) {
      ASSIGN_OR_RETURN(seen_before, held_before(false));
    }
    if (seen_before) return OkStatus();  // nothing more is stored: the file is known
    ObservationBatch* full = &batches[cur];
    pending =
        std::async(std::launch::async, [this, t = txn.get(), full] { return Flush(t, full); });
    cur ^= 1;
    return OkStatus();
  };
  int dlt = file->datalink();
  PcapFile::Packet pkt;
  while (true) {
    auto more = file->Next(&pkt);
    if (!more.ok()) {
      sum.error = named(more.status().message());
      break;
    }
    if (!*more) break;
    sum.bytes_read += pkt.caplen + 16;
    {
      struct {
        int64_t ts_us;
        uint32_t caplen, wirelen;
      } head{pkt.ts_us, pkt.caplen, pkt.wirelen};
      XXH3_128bits_update(content, &head, sizeof head);
      XXH3_128bits_update(content, pkt.data, pkt.caplen);
    }
    if (!checkpoints.empty() && checkpoints.begin()->first <= file->packets_read()) {
      uint64_t k = file->packets_read();
      std::string so_far = HexDigest(XXH3_128bits_digest(content));
      std::string prefix;
      for (auto [it, end] = checkpoints.equal_range(k); it != end; ++it) {
        if (it->second == so_far) prefix = it->second;
      }
      while (!checkpoints.empty() && checkpoints.begin()->first <= k) {
        checkpoints.erase(checkpoints.begin());
      }
      if (!prefix.empty()) {
        // Everything read so far is that input's, already counted: start over from here.
        if (pending.valid()) RETURN_IF_ERROR(pending.get());
        txn.reset();
        ASSIGN_OR_RETURN(txn, store_->Begin());
        txn->set_memory_budget(opts_.memory_budget);
        sensor_index = txn->EnsureSensor(sensor);
        batches[0].clear();
        batches[1].clear();
        decoder = Decoder();
        verdicts.fill(0);
        extends = prefix;
        prefix_packets = k;
        continue;
      }
    }
    ObservationBatch& batch = batches[cur];
    Observation o;
    size_t blob_mark = batch.blob.size();
    if (!decoder.Decode(dlt, pkt.ts_us, pkt.data, pkt.caplen, pkt.wirelen, &o, &batch.blob)) {
      continue;
    }
    FilterVerdict v = filter.Check(o);
    verdicts[static_cast<size_t>(v)]++;
    if (v != FilterVerdict::kKeep) {
      batch.blob.resize(blob_mark);
      continue;
    }
    o.sensor = sensor_index;
    batch.rows.push_back(o);
    if (batch.rows.size() >= opts_.batch_rows) {
      RETURN_IF_ERROR(hand_off());
      if (seen_before) return skip(*seen_before);
    }
    if (opts_.progress && (file->packets_read() & 0xFFFF) == 0) {
      opts_.progress(file->packets_read(), sum.bytes_read);
    }
  }
  if (!seen_before) {
    ASSIGN_OR_RETURN(seen_before, held_before(true));
  }
  if (seen_before) {
    if (pending.valid()) RETURN_IF_ERROR(pending.get());
    return skip(*seen_before);
  }
  RETURN_IF_ERROR(hand_off());
  RETURN_IF_ERROR(pending.get());
  sum.packets_read = file->packets_read();
  sum.kept = txn->rows_added();
  const DecodeStats& ds = decoder.stats();
  for (size_t i = 1; i < ds.by_reason.size(); ++i) {
    auto a = static_cast<Anomaly>(i);
    if (ds.by_reason[i] == 0) continue;
    (AnomalyKeepsPacket(a) ? sum.anomalies : sum.dropped)[AnomalyName(a)] += ds.by_reason[i];
  }
  if (file->bad_timestamps()) sum.dropped["bad_timestamp"] += file->bad_timestamps();
  for (size_t i = 1; i < verdicts.size(); ++i) {
    if (verdicts[i]) sum.dropped[FilterVerdictName(static_cast<FilterVerdict>(i))] += verdicts[i];
  }
  sum.hash = HexDigest(XXH3_128bits_digest(content));
  for (const InputRecord& in : txn->inputs()) {
    ASSIGN_OR_RETURN(bool held, store_->InputHolds(in, sum.hash));
    if (!held) continue;
    // The same packets, arrived another way (compressed differently, piped, renamed): the
    // transaction is dropped whole.
    RETURN_IF_ERROR(SameSensor(in, sensor, name));
    sum.already_ingested = true;
    sum.kept = 0;
    return sum;
  }
  InputRecord rec;
  rec.hash = sum.hash;
  rec.file_hash = file_hash;
  rec.extends = extends;
  rec.prefix_packets = prefix_packets;
  rec.sensor = sensor.id;
  rec.path = name;
  rec.packets_read = sum.packets_read;
  rec.kept = sum.kept;
  rec.dropped = sum.dropped;
  rec.anomalies = sum.anomalies;
  rec.error = sum.error;
  RETURN_IF_ERROR(CommitInput(std::move(txn), std::move(rec)));
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

Status Ingester::CommitInput(std::unique_ptr<Store::Transaction> txn, InputRecord rec) {
  if (geo_) {
    rec.country_db = DescribeGeoDb(geo_->country_info());
    rec.asn_db = DescribeGeoDb(geo_->asn_info());
  }
  std::vector<int32_t> touched = txn->days_touched();
  const std::string hash = rec.hash;
  RETURN_IF_ERROR(txn->Commit(std::move(rec)));
  txn.reset();  // releases the writer lock
  if (opts_.merge && !touched.empty()) {
    MergeOptions mo;
    mo.days = std::move(touched);
    mo.index_of = hash;
    RETURN_IF_ERROR(store_->Merge(mo).status());
  }
  return OkStatus();
}

Status SameSensor(const InputRecord& in, const SensorConfig& sensor, const std::string& path) {
  if (in.sensor == sensor.id) return OkStatus();
  return Status(
      StatusCode::kAlreadyExists,
      fmt::format(
          "{}: these packets were already ingested for sensor '{}' (as {}); a capture belongs to "
          "one sensor (`teiten forget --input {}` first, if that was the mistake)",
          path, in.sensor, in.path, in.hash));
}

Status Ingester::Flush(Store::Transaction* txn, ObservationBatch* batch) {
  size_t n = batch->rows.size();
  if (n == 0) return OkStatus();
  const TimeZone& tz = store_->tz();
  day_.resize(n);
  keys_.resize(n);
  // Sort key: (day, family, IPv4 address); IPv6 rows are ordered by address afterwards. A stable
  // LSD radix sort keeps capture (time) order among a source's packets.
  int32_t base_day = INT32_MAX;
  for (size_t i = 0; i < n; ++i) {
    day_[i] = tz.LocalDay(batch->rows[i].ts_us);
    base_day = std::min(base_day, day_[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    const IpAddr& s = batch->rows[i].src;
    // 31 bits of day: any two days a capture can hold sort apart (a 15-bit field once made
    // days 32,768 apart collide, and every row its own segment).
    uint64_t rel = static_cast<uint64_t>(static_cast<int64_t>(day_[i]) - base_day) & 0x7FFFFFFF;
    keys_[i] = (rel << 33) | (s.is_v4() ? s.v4() : (uint64_t{1} << 32));
  }
  order_.resize(n);
  scratch_.resize(n);
  keys_scratch_.resize(n);
  for (size_t i = 0; i < n; ++i) order_[i] = static_cast<uint32_t>(i);
  uint64_t max_key = *std::max_element(keys_.begin(), keys_.end());
  for (int shift = 0; shift < 64 && (max_key >> shift) != 0; shift += 11) {
    size_t count[2049] = {};
    for (size_t i = 0; i < n; ++i) count[((keys_[i] >> shift) & 2047) + 1]++;
    for (size_t b = 1; b < 2049; ++b) count[b] += count[b - 1];
    for (size_t i = 0; i < n; ++i) {
      size_t dst = count[(keys_[i] >> shift) & 2047]++;
      scratch_[dst] = order_[i];
      keys_scratch_[dst] = keys_[i];
    }
    order_.swap(scratch_);
    keys_.swap(keys_scratch_);
  }
  // keys_ now follows order_; order IPv6 runs (same day, family bit set) by address.
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && keys_[j] == keys_[i]) ++j;
    if (keys_[i] & (uint64_t{1} << 32)) {
      std::stable_sort(
          order_.begin() + static_cast<ptrdiff_t>(i), order_.begin() + static_cast<ptrdiff_t>(j),
          [&](uint32_t a, uint32_t b) { return batch->rows[a].src < batch->rows[b].src; });
    }
    i = j;
  }
  // Gather the rows into sorted order once, so that everything after reads memory in sequence
  // (random reads of 80-byte rows would otherwise cost a cache miss per row per pass).
  sorted_.rows.resize(n);
  std::vector<int32_t>& sorted_day = day_scratch_;
  sorted_day.resize(n);
  constexpr size_t kAhead = 16;
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) __builtin_prefetch(&batch->rows[order_[i + kAhead]]);
    sorted_.rows[i] = batch->rows[order_[i]];
    sorted_day[i] = day_[order_[i]];
  }
  sorted_.blob.swap(batch->blob);
  // Enrich once per distinct source (rows of a source are adjacent now).
  geo_rows_.resize(n);
  GeoInfo g;
  for (size_t i = 0; i < n; ++i) {
    const IpAddr& s = sorted_.rows[i].src;
    if (i == 0 || !(sorted_.rows[i - 1].src == s)) g = geo_ ? geo_->Lookup(s) : GeoInfo{};
    geo_rows_[i] = g;
    order_[i] = static_cast<uint32_t>(i);
  }
  RETURN_IF_ERROR(txn->Add(sorted_, order_, sorted_day, geo_rows_));
  batch->clear();
  sorted_.clear();
  return OkStatus();
}

}  // namespace teiten
