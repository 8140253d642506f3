#include "enrich/geo.h"

#include <fmt/format.h>
#include <maxminddb.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <unordered_map>

namespace teiten {
namespace {

struct DataValue {
  CountryCode country = 0;
  uint32_t asn = 0;
  std::string org;
};

bool GetString(MMDB_entry_s* e, std::string* out, const char* const* path) {
  MMDB_entry_data_s d;
  if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data) return false;
  if (d.type != MMDB_DATA_TYPE_UTF8_STRING) return false;
  out->assign(d.utf8_string, d.data_size);
  return true;
}

DataValue ReadEntry(MMDB_entry_s entry) {
  DataValue v;
  std::string cc;
  static const char* const kPaths[][3] = {{"country_code", nullptr, nullptr},
                                          {"country", "iso_code", nullptr},
                                          {"registered_country", "iso_code", nullptr}};
  for (const auto& p : kPaths) {
    if (GetString(&entry, &cc, p) && cc.size() == 2) {
      char up[2] = {static_cast<char>(std::toupper(static_cast<unsigned char>(cc[0]))),
                    static_cast<char>(std::toupper(static_cast<unsigned char>(cc[1])))};
      v.country = MakeCountryCode(up);
      break;
    }
  }
  MMDB_entry_data_s d;
  static const char* const kAsn[] = {"autonomous_system_number", nullptr};
  if (MMDB_aget_value(&entry, &d, kAsn) == MMDB_SUCCESS && d.has_data) {
    if (d.type == MMDB_DATA_TYPE_UINT32)
      v.asn = d.uint32;
    else if (d.type == MMDB_DATA_TYPE_UINT16)
      v.asn = d.uint16;
    else if (d.type == MMDB_DATA_TYPE_UINT64)
      v.asn = static_cast<uint32_t>(d.uint64);
  }
  static const char* const kOrg[] = {"autonomous_system_organization", nullptr};
  GetString(&entry, &v.org, kOrg);
  return v;
}

Result<MMDB_s*> OpenMmdb(const std::string& path, GeoDbInfo* info) {
  auto* db = new MMDB_s();
  errno = 0;
  int rc = MMDB_open(path.c_str(), MMDB_MODE_MMAP, db);
  if (rc != MMDB_SUCCESS) {
    int err = errno;
    delete db;
    // The system's reason says what to fix (no such file, permission denied, a directory).
    std::string why = MMDB_strerror(rc);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      why += fmt::format(" ({})", std::strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
      why += " (it is a directory)";  // mmap says "No such device", which would mislead
    } else if ((rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR) && err != 0) {
      why += fmt::format(" ({})", std::strerror(err));
    }
    return InvalidArgument(fmt::format("geo database {}: {}", path, why));
  }
  info->path = path;
  info->database_type = db->metadata.database_type ? db->metadata.database_type : "";
  info->build_epoch = db->metadata.build_epoch;
  for (size_t i = 0; i < db->metadata.description.count; ++i) {
    auto* d = db->metadata.description.descriptions[i];
    if (d && d->description && (!d->language || std::strcmp(d->language, "en") == 0)) {
      info->description = d->description;
      break;
    }
  }
  return db;
}

void CloseMmdb(MMDB_s* db) {
  if (db == nullptr) return;
  MMDB_close(db);
  delete db;
}

// The node where the IPv4 tree of `db` begins: the root of an IPv4 database, ::/96 of an IPv6
// one. False when an IPv6 database has no search node there (then it holds no IPv4 ranges).
bool V4Start(MMDB_s* db, uint32_t* node) {
  *node = 0;
  if (db->metadata.ip_version != 6) return true;
  for (int i = 0; i < 96; ++i) {
    MMDB_search_node_s n;
    if (MMDB_read_node(db, *node, &n) != MMDB_SUCCESS) return false;
    if (n.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE) return false;
    *node = static_cast<uint32_t>(n.left_record);
  }
  return true;
}

// The record of `a` in `db`, decoded; an empty value when there is none. IPv4 addresses descend
// from the IPv4 tree's start (V4Start), as libmaxminddb does for AF_INET.
DataValue FindRecord(MMDB_s* db, const IpAddr& a) {
  int err = 0;
  MMDB_lookup_result_s r;
  if (a.is_v4()) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    std::memcpy(&sa.sin_addr, a.bytes.data() + 12, 4);  // already in network order
    r = MMDB_lookup_sockaddr(db, reinterpret_cast<sockaddr*>(&sa), &err);
  } else {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    std::memcpy(&sa.sin6_addr, a.bytes.data(), 16);
    r = MMDB_lookup_sockaddr(db, reinterpret_cast<sockaddr*>(&sa), &err);
  }
  if (err != MMDB_SUCCESS || !r.found_entry) return {};
  return ReadEntry(r.entry);
}

// Walks the IPv4 part of a tree in address order, collecting each data record's range and the
// index of its decoded value (records are shared by many ranges and decoded once).
struct WalkedRange {
  uint32_t first, last;
  uint32_t value;
};

class V4Walker {
 public:
  explicit V4Walker(MMDB_s* db) : db_(db) {}
  std::vector<WalkedRange> Walk() {
    uint32_t node = 0;
    if (!V4Start(db_, &node)) return {};
    Recurse(node, 0, 0);
    return std::move(out_);
  }
  const std::vector<DataValue>& values() const { return values_; }

 private:
  void Recurse(uint32_t node, int depth, uint32_t prefix) {
    MMDB_search_node_s n;
    if (depth >= 32 || MMDB_read_node(db_, node, &n) != MMDB_SUCCESS) return;
    Record(n.left_record_type, n.left_record, n.left_record_entry, depth + 1, prefix);
    Record(n.right_record_type, n.right_record, n.right_record_entry, depth + 1,
           prefix | (1u << (31 - depth)));
  }
  void Record(uint8_t type, uint64_t rec, MMDB_entry_s entry, int depth, uint32_t prefix) {
    if (type == MMDB_RECORD_TYPE_SEARCH_NODE) {
      Recurse(static_cast<uint32_t>(rec), depth, prefix);
    } else if (type == MMDB_RECORD_TYPE_DATA) {
      auto [it, fresh] = index_.emplace(entry.offset, static_cast<uint32_t>(values_.size()));
      if (fresh) values_.push_back(ReadEntry(entry));
      uint32_t last = depth >= 32 ? prefix : prefix | ((1u << (32 - depth)) - 1);
      out_.push_back({prefix, last, it->second});
    }
  }
  MMDB_s* db_;
  std::unordered_map<uint32_t, uint32_t> index_;  // data offset → values_ index
  std::vector<DataValue> values_;
  std::vector<WalkedRange> out_;
};

}  // namespace

std::string CountryCodeString(CountryCode c) {
  if (c == 0) return "--";
  return {static_cast<char>(c >> 8), static_cast<char>(c & 0xFF)};
}

std::string GeoDbInfo::BuildDate() const {
  if (build_epoch == 0) return "unknown";
  time_t t = static_cast<time_t>(build_epoch);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

Result<std::unique_ptr<GeoDb>> GeoDb::Open(const std::string& country_path,
                                           const std::string& asn_path, bool walk) {
  std::unique_ptr<GeoDb> g(new GeoDb());
  if (!walk) {
    ASSIGN_OR_RETURN(g->direct_, GeoLookup::Open(country_path, asn_path));
    g->country_info_ = g->direct_->country_info();
    g->asn_info_ = g->direct_->asn_info();
    return g;
  }
  std::vector<WalkedRange> cranges, aranges;
  std::vector<DataValue> cvalues, avalues;
  if (!country_path.empty()) {
    ASSIGN_OR_RETURN(g->country_, OpenMmdb(country_path, &g->country_info_));
    V4Walker w(g->country_);
    cranges = w.Walk();
    cvalues = w.values();
  }
  if (!asn_path.empty()) {
    ASSIGN_OR_RETURN(g->asn_, OpenMmdb(asn_path, &g->asn_info_));
    V4Walker w(g->asn_);
    aranges = w.Walk();
    avalues = w.values();
    for (const DataValue& v : avalues) {
      if (v.asn && !v.org.empty()) g->asn_names_.emplace(v.asn, v.org);
    }
  }
  // Both lists are sorted and non-overlapping (a tree walk in address order): sweep them
  // together into ranges of constant (country, asn).
  size_t ci = 0, ai = 0;
  uint64_t at = 0;
  auto emit = [&](uint32_t a, uint32_t b, GeoInfo info) {
    if (info.country == 0 && info.asn == 0) return;
    if (!g->ranges_.empty() && g->ranges_.back().last + 1 == a &&
        g->ranges_.back().info.country == info.country && g->ranges_.back().info.asn == info.asn) {
      g->ranges_.back().last = b;
    } else {
      g->ranges_.push_back({a, b, info});
    }
  };
  while (at <= 0xFFFFFFFFull && (ci < cranges.size() || ai < aranges.size())) {
    while (ci < cranges.size() && cranges[ci].last < at) ++ci;
    while (ai < aranges.size() && aranges[ai].last < at) ++ai;
    if (ci == cranges.size() && ai == aranges.size()) break;
    // The next boundary: where the current range of either list ends or the next one begins.
    uint64_t next = 0x100000000ull;
    GeoInfo info;
    if (ci < cranges.size()) {
      if (cranges[ci].first <= at) {
        info.country = cvalues[cranges[ci].value].country;
        next = std::min<uint64_t>(next, uint64_t{cranges[ci].last} + 1);
      } else {
        next = std::min<uint64_t>(next, cranges[ci].first);
      }
    }
    if (ai < aranges.size()) {
      if (aranges[ai].first <= at) {
        info.asn = avalues[aranges[ai].value].asn;
        next = std::min<uint64_t>(next, uint64_t{aranges[ai].last} + 1);
      } else {
        next = std::min<uint64_t>(next, aranges[ai].first);
      }
    }
    emit(static_cast<uint32_t>(at), static_cast<uint32_t>(next - 1), info);
    at = next;
  }
  g->starts_.reserve(g->ranges_.size());
  for (const auto& r : g->ranges_) g->starts_.push_back(r.first);
  g->slash16_.assign(65537, static_cast<uint32_t>(g->ranges_.size()));
  size_t j = 0;
  for (uint32_t i = 0; i < 65536; ++i) {
    while (j < g->ranges_.size() && g->ranges_[j].last < (i << 16)) ++j;
    g->slash16_[i] = static_cast<uint32_t>(j);
  }
  return g;
}

GeoDb::~GeoDb() {
  CloseMmdb(country_);
  CloseMmdb(asn_);
}

GeoInfo GeoDb::LookupV4(uint32_t a) const {
  if (direct_) return direct_->Lookup(IpAddr::V4(a)).info;
  uint32_t top = a >> 16;
  uint32_t lo = slash16_[top];
  uint32_t hi = top == 65535 ? static_cast<uint32_t>(ranges_.size()) : slash16_[top + 1] + 1;
  hi = std::min<uint32_t>(hi, static_cast<uint32_t>(ranges_.size()));
  // The answer, if any, is the last range in [lo, hi) starting at or before a.
  auto it = std::upper_bound(starts_.begin() + lo, starts_.begin() + hi, a);
  if (it == starts_.begin() + lo) return {};
  const GeoRange& r = ranges_[static_cast<size_t>(it - starts_.begin()) - 1];
  return a <= r.last ? r.info : GeoInfo{};
}

GeoInfo GeoDb::LookupV6(const IpAddr& addr) const {
  GeoInfo info;
  if (country_) info.country = FindRecord(country_, addr).country;
  if (asn_) info.asn = FindRecord(asn_, addr).asn;
  return info;
}

GeoInfo GeoDb::Lookup(const IpAddr& a) const {
  if (direct_) return direct_->Lookup(a).info;
  return a.is_v4() ? LookupV4(a.v4()) : LookupV6(a);
}

const std::string& GeoDb::AsnName(uint32_t asn) const {
  static const std::string kEmpty;
  auto it = asn_names_.find(asn);
  return it == asn_names_.end() ? kEmpty : it->second;
}

Result<std::unique_ptr<GeoLookup>> GeoLookup::Open(const std::string& country_path,
                                                   const std::string& asn_path) {
  std::unique_ptr<GeoLookup> g(new GeoLookup());
  uint32_t node;
  if (!country_path.empty()) {
    ASSIGN_OR_RETURN(g->country_, OpenMmdb(country_path, &g->country_info_));
    g->country_v4_ = V4Start(g->country_, &node);
  }
  if (!asn_path.empty()) {
    ASSIGN_OR_RETURN(g->asn_, OpenMmdb(asn_path, &g->asn_info_));
    g->asn_v4_ = V4Start(g->asn_, &node);
  }
  return g;
}

GeoLookup::~GeoLookup() {
  CloseMmdb(country_);
  CloseMmdb(asn_);
}

GeoRecord GeoLookup::Lookup(const IpAddr& a) const {
  GeoRecord r;
  if (country_ && (country_v4_ || !a.is_v4())) r.info.country = FindRecord(country_, a).country;
  if (asn_ && (asn_v4_ || !a.is_v4())) {
    DataValue v = FindRecord(asn_, a);
    r.info.asn = v.asn;
    r.asn_org = std::move(v.org);
  }
  return r;
}

std::optional<std::string> GeoLookup::AsnNameVia(const IpAddr& a, uint32_t asn) const {
  // GeoDb learns names from the IPv4 tree of the ASN database: none for ASN 0, none without
  // that tree.
  if (asn == 0 || !asn_ || !asn_v4_) return std::string();
  if (!a.is_v4()) return std::nullopt;
  DataValue v = FindRecord(asn_, a);
  if (v.asn != asn || v.org.empty()) return std::nullopt;
  return std::move(v.org);
}

}  // namespace teiten
