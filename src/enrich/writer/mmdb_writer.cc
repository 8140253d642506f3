#include "enrich/writer/mmdb_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string_view>
#include <utility>

namespace teiten {
namespace {

using U128 = unsigned __int128;

// How a child reference in the in-memory tree is read: below kDataTag it is a node index, kEmpty
// means "no data", anything else is kDataTag | index into records_.
constexpr uint32_t kDataTag = 0x80000000u;
constexpr uint32_t kEmpty = 0xFFFFFFFFu;
constexpr uint32_t kMaxRecords = 0x40000000u;
constexpr uint32_t kMaxNodes = 0x7FFF0000u;
// A range splits into at most 254 blocks of at most 128 new nodes each; refusing a range when this
// much room is not left keeps InsertRange all-or-nothing.
constexpr uint32_t kNodesPerRangeBound = 254 * 128;

bool IsNode(uint32_t ref) {
  return ref < kDataTag;
}

// MMDB data types (spec section "Output Data Section"). Types above 7 are "extended".
enum class MmdbType : uint8_t {
  kPointer = 1,
  kUtf8String = 2,
  kUint16 = 5,
  kUint32 = 6,
  kMap = 7,
  kUint64 = 9,
  kArray = 11,
};

// The largest payload size a control byte can announce: 65821 plus three extra size bytes.
constexpr uint64_t kMaxPayloadSize = 65821 + 0xFFFFFF;
constexpr std::string_view kMetadataMarker = "\xAB\xCD\xEFMaxMind.com";
constexpr size_t kDataSectionSeparator = 16;
constexpr size_t kMaxMetadataSize = size_t{128} * 1024;

U128 ToU128(const IpAddr& a) {
  return (U128{a.hi()} << 64) | a.lo();
}

U128 HostMask(int host_bits) {
  if (host_bits >= 128) return ~U128{0};
  return (U128{1} << host_bits) - 1;
}

int CountTrailingZeros(U128 v) {
  auto low = static_cast<uint64_t>(v);
  if (low != 0) return __builtin_ctzll(low);
  auto high = static_cast<uint64_t>(v >> 64);
  if (high != 0) return 64 + __builtin_ctzll(high);
  return 128;
}

int BitAt(U128 address, int depth) {
  return static_cast<int>((address >> (127 - depth)) & 1);
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMinForLength[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

// --- Data section encoding -------------------------------------------------------------------

void AppendBigEndian(std::string* out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

void AppendControl(std::string* out, MmdbType type, uint64_t size) {
  auto t = static_cast<uint8_t>(type);
  uint8_t first = t <= 7 ? static_cast<uint8_t>(t << 5) : 0;
  int extra_bytes = 0;
  uint64_t extra = 0;
  if (size < 29) {
    first |= static_cast<uint8_t>(size);
  } else if (size < 29 + 256) {
    first |= 29;
    extra_bytes = 1;
    extra = size - 29;
  } else if (size < 285 + 65536) {
    first |= 30;
    extra_bytes = 2;
    extra = size - 285;
  } else {
    first |= 31;
    extra_bytes = 3;
    extra = size - 65821;
  }
  out->push_back(static_cast<char>(first));
  // The extended type byte comes before any size bytes.
  if (t > 7) out->push_back(static_cast<char>(t - 7));
  AppendBigEndian(out, extra, extra_bytes);
}

void AppendUnsigned(std::string* out, MmdbType type, uint64_t value) {
  int bytes = 0;
  while (bytes < 8 && (value >> (8 * bytes)) != 0) ++bytes;
  AppendControl(out, type, bytes);
  AppendBigEndian(out, value, bytes);
}

size_t PointerSize(uint64_t offset) {
  if (offset < 2048) return 2;
  if (offset < 526336) return 3;
  if (offset < 134744064) return 4;
  return 5;
}

void AppendPointer(std::string* out, uint32_t offset) {
  auto ptr = static_cast<uint8_t>(static_cast<uint8_t>(MmdbType::kPointer) << 5);
  if (offset < 2048) {
    out->push_back(static_cast<char>(ptr | (offset >> 8)));
    AppendBigEndian(out, offset, 1);
  } else if (offset < 526336) {
    uint32_t v = offset - 2048;
    out->push_back(static_cast<char>(ptr | (1 << 3) | (v >> 16)));
    AppendBigEndian(out, v, 2);
  } else if (offset < 134744064) {
    uint32_t v = offset - 526336;
    out->push_back(static_cast<char>(ptr | (2 << 3) | (v >> 24)));
    AppendBigEndian(out, v, 3);
  } else {
    out->push_back(static_cast<char>(ptr | (3 << 3)));
    AppendBigEndian(out, offset, 4);
  }
}

// Strings already in the data section, so that a repeated key or value becomes a pointer. Null
// when encoding the plain form used to recognise identical records, and in the metadata (whose
// pointers would be relative to the metadata, not the data section).
using StringOffsets = std::unordered_map<std::string, uint32_t>;

void AppendString(std::string* out, const std::string& s, StringOffsets* seen) {
  if (seen != nullptr) {
    auto it = seen->find(s);
    // A pointer is only worth it when shorter than the string it replaces.
    if (it != seen->end() && PointerSize(it->second) < s.size() + 1) {
      AppendPointer(out, it->second);
      return;
    }
    if (it == seen->end() && s.size() >= 2) seen->emplace(s, static_cast<uint32_t>(out->size()));
  }
  AppendControl(out, MmdbType::kUtf8String, s.size());
  out->append(s);
}

void AppendRecord(std::string* out, const MmdbRecord& record, StringOffsets* seen) {
  AppendControl(out, MmdbType::kMap, record.size());
  for (const auto& [key, value] : record) {
    AppendString(out, key, seen);
    if (const auto* s = std::get_if<std::string>(&value)) {
      AppendString(out, *s, seen);
    } else {
      AppendUnsigned(out, MmdbType::kUint32, std::get<uint32_t>(value));
    }
  }
}

std::string EncodeMetadata(const MmdbMetadata& m, uint32_t node_count, uint16_t record_size) {
  std::string out(kMetadataMarker);
  AppendControl(&out, MmdbType::kMap, 9);
  AppendString(&out, "binary_format_major_version", nullptr);
  AppendUnsigned(&out, MmdbType::kUint16, 2);
  AppendString(&out, "binary_format_minor_version", nullptr);
  AppendUnsigned(&out, MmdbType::kUint16, 0);
  AppendString(&out, "build_epoch", nullptr);
  AppendUnsigned(&out, MmdbType::kUint64, m.build_epoch);
  AppendString(&out, "database_type", nullptr);
  AppendString(&out, m.database_type, nullptr);
  AppendString(&out, "description", nullptr);
  AppendControl(&out, MmdbType::kMap, 1);
  AppendString(&out, "en", nullptr);
  AppendString(&out, m.description, nullptr);
  AppendString(&out, "ip_version", nullptr);
  AppendUnsigned(&out, MmdbType::kUint16, 6);
  AppendString(&out, "languages", nullptr);
  AppendControl(&out, MmdbType::kArray, m.languages.size());
  for (const auto& lang : m.languages) AppendString(&out, lang, nullptr);
  AppendString(&out, "node_count", nullptr);
  AppendUnsigned(&out, MmdbType::kUint32, node_count);
  AppendString(&out, "record_size", nullptr);
  AppendUnsigned(&out, MmdbType::kUint16, record_size);
  return out;
}

Status CheckString(const std::string& s, std::string_view what) {
  if (s.size() > kMaxPayloadSize) {
    return InvalidArgument(std::string(what) + " is longer than an MMDB string can be");
  }
  if (!IsValidUtf8(s)) return InvalidArgument(std::string(what) + " is not valid UTF-8");
  return OkStatus();
}

// --- Output file -----------------------------------------------------------------------------

// Owns the temporary file until it is renamed into place or removed.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path)
      : path_(std::move(path)), temp_(path_ + ".tmp." + std::to_string(getpid())) {}
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(temp_.c_str());
  }

  Status Open() {
    errno = 0;
    fd_ = open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return IoError("cannot create " + temp_ + " to write " + path_);
    return OkStatus();
  }

  Status Append(std::string_view bytes) {
    while (!bytes.empty()) {
      errno = 0;
      ssize_t n = write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return IoError("cannot write " + temp_);
      bytes.remove_prefix(static_cast<size_t>(n));
      written_ += static_cast<uint64_t>(n);
    }
    return OkStatus();
  }

  Status Commit() {
    errno = 0;
    if (fsync(fd_) != 0) return IoError("cannot sync " + temp_);
    int fd = fd_;
    fd_ = -1;
    if (close(fd) != 0) return IoError("cannot close " + temp_);
    if (rename(temp_.c_str(), path_.c_str()) != 0) {
      return IoError("cannot rename " + temp_ + " to " + path_);
    }
    committed_ = true;
    // Make the rename itself durable; a failure here leaves a complete file, so it is not fatal.
    size_t slash = path_.rfind('/');
    std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash + 1);
    int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)fsync(dfd);
      close(dfd);
    }
    return OkStatus();
  }

  uint64_t written() const { return written_; }

 private:
  std::string path_;
  std::string temp_;
  int fd_ = -1;
  bool committed_ = false;
  uint64_t written_ = 0;
};

}  // namespace

MmdbWriter::MmdbWriter(MmdbMetadata metadata, uint16_t min_record_size)
    : metadata_(std::move(metadata)), min_record_size_(min_record_size) {
  nodes_.push_back({{kEmpty, kEmpty}});
  ipv4_root_ = NewNode(kEmpty, kEmpty);
  // Both ::/96 and ::ffff:0:0/96 lead to the one IPv4 subtree. These paths are never overwritten:
  // IPv6 ranges touching them are refused.
  InsertBlock(0, 96, false, ipv4_root_);
  InsertBlock(U128{0xFFFF} << 32, 96, false, ipv4_root_);
}

uint32_t MmdbWriter::NewNode(uint32_t left, uint32_t right) {
  nodes_.push_back({{left, right}});
  return static_cast<uint32_t>(nodes_.size() - 1);
}

void MmdbWriter::InsertBlock(U128 address, int length, bool v4, uint32_t leaf) {
  uint32_t node = v4 ? ipv4_root_ : 0;
  int depth = v4 ? 96 : 0;
  if (length == depth) {
    nodes_[node].child[0] = leaf;
    nodes_[node].child[1] = leaf;
    return;
  }
  for (; depth < length - 1; ++depth) {
    int bit = BitAt(address, depth);
    uint32_t next = nodes_[node].child[bit];
    if (!IsNode(next)) {
      // A wider block (or nothing) covered this one: split it so the rest keeps its data.
      next = NewNode(next, next);
      nodes_[node].child[bit] = next;
    }
    node = next;
  }
  // Whatever was below is dropped; its nodes stay in nodes_ unreachable and are not written.
  nodes_[node].child[BitAt(address, length - 1)] = leaf;
}

Result<uint32_t> MmdbWriter::Intern(const MmdbRecord& record) {
  std::string plain;
  AppendRecord(&plain, record, nullptr);
  auto it = record_ids_.find(plain);
  if (it != record_ids_.end()) return it->second;
  for (const auto& [key, value] : record) {
    RETURN_IF_ERROR(CheckString(key, "key '" + key + "'"));
    if (const auto* s = std::get_if<std::string>(&value)) {
      RETURN_IF_ERROR(CheckString(*s, "value of '" + key + "'"));
    }
  }
  if (records_.size() >= kMaxRecords) return InvalidArgument("too many distinct data records");
  auto id = static_cast<uint32_t>(records_.size());
  records_.push_back(record);
  record_ids_.emplace(std::move(plain), id);
  return id;
}

Status MmdbWriter::InsertRange(const IpAddr& first, const IpAddr& last, const MmdbRecord& record) {
  bool v4 = first.is_v4();
  if (v4 != last.is_v4()) {
    return InvalidArgument("range " + first.ToString() + " - " + last.ToString() +
                           " mixes IPv4 and IPv6");
  }
  U128 a = v4 ? first.v4() : ToU128(first);
  U128 b = v4 ? last.v4() : ToU128(last);
  if (a > b) {
    return InvalidArgument("range " + first.ToString() + " - " + last.ToString() +
                           " ends before it starts");
  }
  if (!v4) {
    // ::/96 holds the IPv4 tree and ::ffff:0:0/96 aliases it.
    constexpr U128 kIpv4Last = 0xFFFFFFFFu;
    constexpr U128 kMappedFirst = U128{0xFFFF} << 32;
    constexpr U128 kMappedLast = kMappedFirst | 0xFFFFFFFFu;
    if (a <= kIpv4Last || (a <= kMappedLast && b >= kMappedFirst)) {
      return InvalidArgument("range " + first.ToString() + " - " + last.ToString() +
                             " overlaps ::/96 or ::ffff:0:0/96, which hold the IPv4 networks");
    }
  }
  if (nodes_.size() > kMaxNodes - kNodesPerRangeBound) {
    return InvalidArgument("search tree too large for an MMDB file");
  }
  ASSIGN_OR_RETURN(uint32_t id, Intern(record));
  uint32_t leaf = kDataTag | id;
  int family_bits = v4 ? 32 : 128;
  while (true) {
    int host_bits = std::min(CountTrailingZeros(a), family_bits);
    while (host_bits > 0 && HostMask(host_bits) > b - a) --host_bits;
    InsertBlock(a, 128 - host_bits, v4, leaf);
    ++blocks_inserted_;
    U128 end = a | HostMask(host_bits);
    if (end >= b) break;
    a = end + 1;
  }
  return OkStatus();
}

Status MmdbWriter::InsertPrefix(const Prefix& prefix, const MmdbRecord& record) {
  bool v4 = prefix.base.is_v4();
  int family_bits = v4 ? 32 : 128;
  if (prefix.length < 0 || prefix.length > family_bits) {
    return InvalidArgument("prefix length " + std::to_string(prefix.length) + " out of range");
  }
  int host_bits = family_bits - prefix.length;
  U128 base = v4 ? prefix.base.v4() : ToU128(prefix.base);
  U128 first = base & ~HostMask(host_bits);
  U128 last = first | HostMask(host_bits);
  auto to_addr = [v4](U128 v) {
    if (v4) return IpAddr::V4(static_cast<uint32_t>(v));
    IpAddr a;
    for (int i = 15; i >= 0; --i, v >>= 8) a.bytes[i] = static_cast<uint8_t>(v & 0xFF);
    return a;
  };
  return InsertRange(to_addr(first), to_addr(last), record);
}

uint32_t MmdbWriter::Merge(uint32_t ref) {
  // The IPv4 subtree has two parents and is merged on its own, once.
  if (!IsNode(ref) || ref == ipv4_root_) return ref;
  Node& node = nodes_[ref];
  node.child[0] = Merge(node.child[0]);
  node.child[1] = Merge(node.child[1]);
  if (!IsNode(node.child[0]) && node.child[0] == node.child[1]) return node.child[0];
  return ref;
}

Result<MmdbWriteStats> MmdbWriter::Write(const std::string& path) {
  RETURN_IF_ERROR(CheckString(metadata_.database_type, "database_type"));
  RETURN_IF_ERROR(CheckString(metadata_.description, "description"));
  for (const auto& lang : metadata_.languages) RETURN_IF_ERROR(CheckString(lang, "language"));
  // The IPv4 root and the tree root stay nodes even when both their halves hold the same data:
  // the root must be a node, and the IPv4 root is shared by two paths.
  for (uint32_t keep : {ipv4_root_, uint32_t{0}}) {
    for (uint32_t& child : nodes_[keep].child) child = Merge(child);
  }

  // Number reachable nodes breadth-first, and lay out each data record on first sight.
  constexpr uint32_t kUnseen = 0xFFFFFFFFu;
  std::vector<uint32_t> new_index(nodes_.size(), kUnseen);
  std::vector<uint32_t> order;
  order.reserve(nodes_.size());
  std::vector<uint32_t> record_offset(records_.size(), kUnseen);
  std::string data;
  StringOffsets seen_strings;
  MmdbWriteStats stats;
  new_index[0] = 0;
  order.push_back(0);
  for (size_t i = 0; i < order.size(); ++i) {
    for (uint32_t child : nodes_[order[i]].child) {
      if (IsNode(child)) {
        if (new_index[child] == kUnseen) {
          new_index[child] = static_cast<uint32_t>(order.size());
          order.push_back(child);
        }
      } else if (child != kEmpty && record_offset[child & ~kDataTag] == kUnseen) {
        if (data.size() > 0xFFFFFFFFu) return InvalidArgument("data section too large");
        record_offset[child & ~kDataTag] = static_cast<uint32_t>(data.size());
        AppendRecord(&data, records_[child & ~kDataTag], &seen_strings);
        ++stats.data_records;
      }
    }
  }

  uint64_t node_count = order.size();
  uint64_t values_needed = node_count + kDataSectionSeparator + data.size();
  uint16_t record_size = 0;
  for (uint16_t bits : {24, 28, 32}) {
    if (bits >= min_record_size_ && values_needed <= (uint64_t{1} << bits)) {
      record_size = bits;
      break;
    }
  }
  if (record_size == 0) return InvalidArgument("database too large for 32-bit records");

  auto value_of = [&](uint32_t ref) -> uint32_t {
    if (IsNode(ref)) return new_index[ref];
    if (ref == kEmpty) return static_cast<uint32_t>(node_count);
    return static_cast<uint32_t>(node_count + kDataSectionSeparator +
                                 record_offset[ref & ~kDataTag]);
  };

  std::string metadata = EncodeMetadata(metadata_, static_cast<uint32_t>(node_count), record_size);
  if (metadata.size() > kMaxMetadataSize) {
    return InvalidArgument("metadata larger than the 128 KiB readers accept");
  }

  AtomicFile file(path);
  RETURN_IF_ERROR(file.Open());
  std::string buf;
  constexpr size_t kFlushAt = 1 << 20;
  buf.reserve(kFlushAt + 16);
  for (uint32_t old : order) {
    uint32_t left = value_of(nodes_[old].child[0]);
    uint32_t right = value_of(nodes_[old].child[1]);
    if (record_size == 28) {
      // Seven bytes: left's low 24 bits, a byte whose high nibble is left's top 4 bits and whose
      // low nibble is right's top 4 bits, then right's low 24 bits.
      AppendBigEndian(&buf, left & 0xFFFFFF, 3);
      buf.push_back(static_cast<char>(((left >> 20) & 0xF0) | ((right >> 24) & 0x0F)));
      AppendBigEndian(&buf, right & 0xFFFFFF, 3);
    } else {
      AppendBigEndian(&buf, left, record_size / 8);
      AppendBigEndian(&buf, right, record_size / 8);
    }
    if (buf.size() >= kFlushAt) {
      RETURN_IF_ERROR(file.Append(buf));
      buf.clear();
    }
  }
  buf.append(kDataSectionSeparator, '\0');
  RETURN_IF_ERROR(file.Append(buf));
  RETURN_IF_ERROR(file.Append(data));
  RETURN_IF_ERROR(file.Append(metadata));
  stats.file_bytes = file.written();
  RETURN_IF_ERROR(file.Commit());

  stats.node_count = static_cast<uint32_t>(node_count);
  stats.record_size = record_size;
  stats.data_bytes = data.size();
  return stats;
}

}  // namespace teiten
