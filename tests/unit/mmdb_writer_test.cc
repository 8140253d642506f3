// MmdbWriter and the ASN CSV conversion, checked against an independent reader: every database
// written here is opened with libmaxminddb and looked up address by address.
#include "enrich/writer/mmdb_writer.h"

#include <gtest/gtest.h>
#include <maxminddb.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/status.h"
#include "enrich/writer/asn_csv.h"

namespace teiten {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "mmdb_writer_test.XXXXXX";
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What libmaxminddb found for one address.
struct Found {
  uint32_t offset = 0;  // data section offset: equal offsets mean one shared record
  uint16_t netmask = 0;
  std::optional<uint32_t> asn;
  std::optional<std::string> org;
  std::optional<std::string> name;
};

class Reader {
 public:
  explicit Reader(const std::string& path) {
    int rc = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &db_);
    EXPECT_EQ(rc, MMDB_SUCCESS) << MMDB_strerror(rc);
    open_ = rc == MMDB_SUCCESS;
  }
  ~Reader() {
    if (open_) MMDB_close(&db_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  bool open() const { return open_; }
  const MMDB_metadata_s& metadata() const { return db_.metadata; }

  std::optional<Found> Lookup(const std::string& address) {
    int gai_error = 0;
    int mmdb_error = 0;
    MMDB_lookup_result_s r = MMDB_lookup_string(&db_, address.c_str(), &gai_error, &mmdb_error);
    EXPECT_EQ(gai_error, 0) << address;
    EXPECT_EQ(mmdb_error, MMDB_SUCCESS) << address << ": " << MMDB_strerror(mmdb_error);
    if (!r.found_entry) return std::nullopt;
    Found f;
    f.offset = r.entry.offset;
    f.netmask = r.netmask;
    MMDB_entry_data_s data;
    if (MMDB_get_value(&r.entry, &data, kAsnNumberKey, nullptr) == MMDB_SUCCESS && data.has_data) {
      EXPECT_EQ(data.type, static_cast<uint32_t>(MMDB_DATA_TYPE_UINT32));
      if (data.type == MMDB_DATA_TYPE_UINT32) f.asn = data.uint32;
    }
    if (MMDB_get_value(&r.entry, &data, kAsnOrganizationKey, nullptr) == MMDB_SUCCESS &&
        data.has_data) {
      EXPECT_EQ(data.type, static_cast<uint32_t>(MMDB_DATA_TYPE_UTF8_STRING));
      if (data.type == MMDB_DATA_TYPE_UTF8_STRING) {
        f.org = std::string(data.utf8_string, data.data_size);
      }
    }
    if (MMDB_get_value(&r.entry, &data, "name", nullptr) == MMDB_SUCCESS && data.has_data) {
      EXPECT_EQ(data.type, static_cast<uint32_t>(MMDB_DATA_TYPE_UTF8_STRING));
      if (data.type == MMDB_DATA_TYPE_UTF8_STRING) {
        f.name = std::string(data.utf8_string, data.data_size);
      }
    }
    return f;
  }

  // Walks every node and decodes every data record it points to: a corrupt tree or data section
  // fails here even where no lookup happens to go.
  void CheckWholeFile() {
    for (uint32_t i = 0; i < db_.metadata.node_count; ++i) {
      MMDB_search_node_s node;
      ASSERT_EQ(MMDB_read_node(&db_, i, &node), MMDB_SUCCESS) << "node " << i;
      for (auto [type, entry] : {std::pair{node.left_record_type, node.left_record_entry},
                                 std::pair{node.right_record_type, node.right_record_entry}}) {
        ASSERT_NE(type, MMDB_RECORD_TYPE_INVALID) << "node " << i;
        if (type != MMDB_RECORD_TYPE_DATA) continue;
        MMDB_entry_data_list_s* list = nullptr;
        ASSERT_EQ(MMDB_get_entry_data_list(&entry, &list), MMDB_SUCCESS) << "node " << i;
        ASSERT_NE(list, nullptr);
        EXPECT_EQ(list->entry_data.type, static_cast<uint32_t>(MMDB_DATA_TYPE_MAP));
        MMDB_free_entry_data_list(list);
      }
    }
  }

 private:
  MMDB_s db_{};
  bool open_ = false;
};

IpAddr Addr(const char* text) {
  auto a = IpAddr::Parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(IpAddr{});
}

MmdbRecord Asn(uint32_t number, const std::string& org) {
  return {{kAsnNumberKey, number}, {kAsnOrganizationKey, org}};
}

MmdbMetadata TestMetadata() {
  return {.database_type = "teiten-Test",
          .description = "unit test database",
          .languages = {"en"},
          .build_epoch = 1700000000};
}

uint32_t AsnAt(Reader& r, const std::string& address) {
  auto f = r.Lookup(address);
  if (!f) return 0;
  return f->asn.value_or(0);
}

// The "name" or organisation found for an address, or "<none>" when nothing is found.
std::string NameAt(Reader& r, const std::string& address) {
  auto f = r.Lookup(address);
  return f && f->name ? *f->name : "<none>";
}
std::string OrgAt(Reader& r, const std::string& address) {
  auto f = r.Lookup(address);
  return f && f->org ? *f->org : "<none>";
}

TEST(MmdbWriter, Ipv4RangesFoundAtEdgesAndNotJustOutside) {
  TempDir dir;
  MmdbWriter w(TestMetadata());
  ASSERT_TRUE(
      w.InsertRange(Addr("1.0.0.0"), Addr("1.0.0.255"), Asn(13335, "Cloudflare, Inc.")).ok());
  // Not aligned on any prefix: split into several CIDR blocks.
  ASSERT_TRUE(w.InsertRange(Addr("10.0.0.5"), Addr("10.0.1.7"), Asn(64500, "Odd Range")).ok());
  ASSERT_TRUE(w.InsertRange(Addr("255.255.255.0"), Addr("255.255.255.255"), Asn(7, "Top")).ok());
  ASSERT_TRUE(w.InsertRange(Addr("0.0.0.0"), Addr("0.0.0.0"), Asn(8, "Bottom")).ok());
  auto stats = w.Write(dir.File("v4.mmdb"));
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();

  Reader r(dir.File("v4.mmdb"));
  ASSERT_TRUE(r.open());
  r.CheckWholeFile();
  auto inside = r.Lookup("1.0.0.1");
  ASSERT_TRUE(inside);
  EXPECT_EQ(inside->asn, 13335u);
  EXPECT_EQ(inside->org, "Cloudflare, Inc.");
  EXPECT_EQ(AsnAt(r, "1.0.0.0"), 13335u);
  EXPECT_EQ(AsnAt(r, "1.0.0.255"), 13335u);
  EXPECT_FALSE(r.Lookup("0.255.255.255"));
  EXPECT_FALSE(r.Lookup("1.0.1.0"));

  EXPECT_FALSE(r.Lookup("10.0.0.4"));
  EXPECT_EQ(AsnAt(r, "10.0.0.5"), 64500u);
  EXPECT_EQ(AsnAt(r, "10.0.0.128"), 64500u);
  EXPECT_EQ(AsnAt(r, "10.0.1.0"), 64500u);
  EXPECT_EQ(AsnAt(r, "10.0.1.7"), 64500u);
  EXPECT_FALSE(r.Lookup("10.0.1.8"));

  EXPECT_EQ(AsnAt(r, "255.255.255.255"), 7u);
  EXPECT_FALSE(r.Lookup("255.255.254.255"));
  EXPECT_EQ(AsnAt(r, "0.0.0.0"), 8u);
  EXPECT_FALSE(r.Lookup("0.0.0.1"));

  // IPv4-mapped IPv6 (how teiten's IpAddr holds IPv4) reaches the same records.
  EXPECT_EQ(AsnAt(r, "::ffff:10.0.0.5"), 64500u);
  EXPECT_FALSE(r.Lookup("::ffff:10.0.0.4"));
  auto mapped = r.Lookup("::ffff:1.0.0.9");
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->offset, inside->offset);
  // ... and so does the IPv4-compatible form ::a.b.c.d, which is where the data really lives.
  EXPECT_EQ(AsnAt(r, "::1.0.0.9"), 13335u);
}

TEST(MmdbWriter, Ipv6RangesFoundAtEdgesAndNotJustOutside) {
  TempDir dir;
  MmdbWriter w(TestMetadata());
  ASSERT_TRUE(
      w.InsertRange(Addr("2001:db8::"), Addr("2001:db8::ffff"), Asn(64496, "Doc Net")).ok());
  ASSERT_TRUE(
      w.InsertRange(Addr("2001:db8:1::7"), Addr("2001:db8:2::3"), Asn(64497, "Odd v6")).ok());
  ASSERT_TRUE(w.InsertRange(Addr("ffff:ffff::"), Addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                            Asn(64498, "Top v6"))
                  .ok());
  ASSERT_TRUE(w.InsertRange(Addr("1.2.3.0"), Addr("1.2.3.255"), Asn(1, "v4 beside v6")).ok());
  ASSERT_TRUE(w.Write(dir.File("v6.mmdb")).ok());

  Reader r(dir.File("v6.mmdb"));
  ASSERT_TRUE(r.open());
  r.CheckWholeFile();
  EXPECT_EQ(AsnAt(r, "2001:db8::"), 64496u);
  EXPECT_EQ(AsnAt(r, "2001:db8::1234"), 64496u);
  EXPECT_EQ(AsnAt(r, "2001:db8::ffff"), 64496u);
  EXPECT_FALSE(r.Lookup("2001:db8::1:0"));
  EXPECT_FALSE(r.Lookup("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));

  EXPECT_FALSE(r.Lookup("2001:db8:1::6"));
  EXPECT_EQ(AsnAt(r, "2001:db8:1::7"), 64497u);
  EXPECT_EQ(AsnAt(r, "2001:db8:1:8000::"), 64497u);
  EXPECT_EQ(AsnAt(r, "2001:db8:2::3"), 64497u);
  EXPECT_FALSE(r.Lookup("2001:db8:2::4"));

  EXPECT_EQ(AsnAt(r, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 64498u);
  EXPECT_EQ(AsnAt(r, "ffff:ffff::"), 64498u);
  EXPECT_FALSE(r.Lookup("ffff:fffe:ffff:ffff:ffff:ffff:ffff:ffff"));

  EXPECT_EQ(AsnAt(r, "1.2.3.4"), 1u);
  EXPECT_FALSE(r.Lookup("1.2.4.0"));
}

TEST(MmdbWriter, WholeAddressSpaces) {
  TempDir dir;
  MmdbWriter w(TestMetadata());
  ASSERT_TRUE(w.InsertRange(Addr("0.0.0.0"), Addr("255.255.255.255"), Asn(4, "All v4")).ok());
  ASSERT_TRUE(w.InsertRange(Addr("8000::"), Addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                            Asn(6, "Upper v6 half"))
                  .ok());
  ASSERT_TRUE(w.Write(dir.File("all.mmdb")).ok());
  Reader r(dir.File("all.mmdb"));
  ASSERT_TRUE(r.open());
  r.CheckWholeFile();
  EXPECT_EQ(AsnAt(r, "0.0.0.0"), 4u);
  EXPECT_EQ(AsnAt(r, "128.0.0.1"), 4u);
  EXPECT_EQ(AsnAt(r, "255.255.255.255"), 4u);
  EXPECT_EQ(AsnAt(r, "8000::"), 6u);
  EXPECT_FALSE(r.Lookup("7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(r.Lookup("2001:db8::1"));
}

TEST(MmdbWriter, LaterRangeWinsWhereRangesOverlap) {
  TempDir dir;
  MmdbWriter w(TestMetadata());
  ASSERT_TRUE(w.InsertRange(Addr("10.0.0.0"), Addr("10.255.255.255"), Asn(1, "wide")).ok());
  ASSERT_TRUE(w.InsertRange(Addr("10.1.0.0"), Addr("10.1.255.255"), Asn(2, "narrow")).ok());
  ASSERT_TRUE(w.InsertRange(Addr("20.1.0.0"), Addr("20.1.255.255"), Asn(3, "narrow first")).ok());
  ASSERT_TRUE(w.InsertRange(Addr("20.0.0.0"), Addr("20.255.255.255"), Asn(4, "wide last")).ok());
  // Straddling overlap, as in the real asn-ipv4.csv (214.95.0.0-215.0.255.255, then 215.0.0.0-).
  ASSERT_TRUE(w.InsertRange(Addr("30.0.0.0"), Addr("30.0.2.255"), Asn(5, "first")).ok());
  ASSERT_TRUE(w.InsertRange(Addr("30.0.2.0"), Addr("30.0.3.255"), Asn(6, "second")).ok());
  ASSERT_TRUE(w.Write(dir.File("overlap.mmdb")).ok());
  Reader r(dir.File("overlap.mmdb"));
  ASSERT_TRUE(r.open());
  r.CheckWholeFile();
  EXPECT_EQ(AsnAt(r, "10.0.255.255"), 1u);
  EXPECT_EQ(AsnAt(r, "10.1.0.0"), 2u);
  EXPECT_EQ(AsnAt(r, "10.1.255.255"), 2u);
  EXPECT_EQ(AsnAt(r, "10.2.0.0"), 1u);
  EXPECT_EQ(AsnAt(r, "20.1.2.3"), 4u);
  EXPECT_EQ(AsnAt(r, "30.0.1.255"), 5u);
  EXPECT_EQ(AsnAt(r, "30.0.2.0"), 6u);
  EXPECT_EQ(AsnAt(r, "30.0.3.255"), 6u);
}

TEST(MmdbWriter, IdenticalRecordsAreStoredOnce) {
  TempDir dir;
  MmdbWriter w(TestMetadata());
  for (uint32_t i = 0; i < 300; ++i) {
    // Built in different key orders: still the same record.
    MmdbRecord rec;
    if (i % 2 == 0) {
      rec.emplace(kAsnOrganizationKey, "Org " + std::to_string(i % 3));
      rec.emplace(kAsnNumberKey, i % 3);
    } else {
      rec.emplace(kAsnNumberKey, i % 3);
      rec.emplace(kAsnOrganizationKey, "Org " + std::to_string(i % 3));
    }
    IpAddr first = IpAddr::V4(0x0A000000u + i * 512);  // every other /24, never adjacent
    IpAddr last = IpAddr::V4(0x0A000000u + i * 512 + 255);
    ASSERT_TRUE(w.InsertRange(first, last, rec).ok());
  }
  EXPECT_EQ(w.distinct_records(), 3u);
  auto stats = w.Write(dir.File("dedup.mmdb"));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->data_records, 3u);
  EXPECT_LT(stats->data_bytes, 200u);

  Reader r(dir.File("dedup.mmdb"));
  ASSERT_TRUE(r.open());
  r.CheckWholeFile();
  auto a = r.Lookup("10.0.0.1");  // i = 0
  auto b = r.Lookup("10.0.6.1");  // i = 3
  auto c = r.Lookup("10.0.2.1");  // i = 1
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->offset, b->offset);
  EXPECT_NE(a->offset, c->offset);
  EXPECT_EQ(a->org, "Org 0");
  EXPECT_EQ(c->org, "Org 1");
  EXPECT_EQ(c->asn, 1u);
  EXPECT_FALSE(r.Lookup("10.0.1.1"));
}

TEST(MmdbWriter, AdjacentIdenticalNetworksAreMerged) {
  TempDir dir;
  MmdbWriter w(TestMetadata());
  ASSERT_TRUE(w.InsertRange(Addr("10.0.0.0"), Addr("10.0.0.127"), Asn(9, "x")).ok());
  ASSERT_TRUE(w.InsertRange(Addr("10.0.0.128"), Addr("10.0.0.255"), Asn(9, "x")).ok());
  ASSERT_TRUE(w.Write(dir.File("merge.mmdb")).ok());
  Reader r(dir.File("merge.mmdb"));
  ASSERT_TRUE(r.open());
  auto f = r.Lookup("10.0.0.1");
  ASSERT_TRUE(f);
  // libmaxminddb reports the netmask of an IPv4 lookup in an IPv6 tree in IPv6 bits.
  EXPECT_EQ(f->netmask, 96 + 24);
}

TEST(MmdbWriter, MetadataFields) {
  TempDir dir;
  MmdbMetadata md{.database_type = "GeoLite2-ASN",
                  .description = "ASN from ip-location-db (テスト)",
                  .languages = {"en", "ja"},
                  .build_epoch = 1781654400};
  MmdbWriter w(md);
  ASSERT_TRUE(w.InsertRange(Addr("1.0.0.0"), Addr("1.0.0.255"), Asn(1, "a")).ok());
  auto stats = w.Write(dir.File("meta.mmdb"));
  ASSERT_TRUE(stats.ok());
  Reader r(dir.File("meta.mmdb"));
  ASSERT_TRUE(r.open());
  const MMDB_metadata_s& m = r.metadata();
  EXPECT_STREQ(m.database_type, "GeoLite2-ASN");
  EXPECT_EQ(m.ip_version, 6);
  EXPECT_EQ(m.binary_format_major_version, 2);
  EXPECT_EQ(m.binary_format_minor_version, 0);
  EXPECT_EQ(m.build_epoch, 1781654400u);
  EXPECT_EQ(m.node_count, stats->node_count);
  EXPECT_EQ(m.record_size, stats->record_size);
  EXPECT_EQ(m.record_size, 24);
  ASSERT_EQ(m.languages.count, 2u);
  EXPECT_STREQ(m.languages.names[0], "en");
  EXPECT_STREQ(m.languages.names[1], "ja");
  ASSERT_EQ(m.description.count, 1u);
  EXPECT_STREQ(m.description.descriptions[0]->language, "en");
  EXPECT_STREQ(m.description.descriptions[0]->description, "ASN from ip-location-db (テスト)");
  EXPECT_EQ(fs::file_size(dir.File("meta.mmdb")), stats->file_bytes);
}

TEST(MmdbWriter, WiderRecordLayoutsReadBack) {
  for (uint16_t bits : {uint16_t{28}, uint16_t{32}}) {
    TempDir dir;
    MmdbWriter w(TestMetadata(), bits);
    ASSERT_TRUE(w.InsertRange(Addr("1.0.0.0"), Addr("1.0.0.255"), Asn(100, "one")).ok());
    ASSERT_TRUE(w.InsertRange(Addr("1.0.1.0"), Addr("1.0.1.255"), Asn(200, "two")).ok());
    ASSERT_TRUE(w.InsertRange(Addr("2001:db8::"), Addr("2001:db8::ff"), Asn(300, "three")).ok());
    auto stats = w.Write(dir.File("wide.mmdb"));
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->record_size, bits);
    Reader r(dir.File("wide.mmdb"));
    ASSERT_TRUE(r.open());
    EXPECT_EQ(r.metadata().record_size, bits);
    r.CheckWholeFile();
    EXPECT_EQ(AsnAt(r, "1.0.0.7"), 100u) << bits;
    EXPECT_EQ(AsnAt(r, "1.0.1.7"), 200u) << bits;
    EXPECT_EQ(AsnAt(r, "2001:db8::7"), 300u) << bits;
    EXPECT_FALSE(r.Lookup("1.0.2.0")) << bits;
    EXPECT_FALSE(r.Lookup("2001:db8::100")) << bits;
  }
}

// Records reach the data section in breadth-first order of the tree, so wider networks come
// first: that fixes the offsets below and thereby which pointer forms the writer must use.
TEST(MmdbWriter, LongStringsAndPointersDecode) {
  TempDir dir;
  MmdbWriter w(TestMetadata());
  std::string long_name(70000, 'x');  // the three-byte size form, at data offset ~0
  std::string mid_name(300, 'y');     // the two-byte size form, at offset ~70000
  ASSERT_TRUE(w.InsertPrefix(*Prefix::Parse("1.0.0.0/8"), {{"name", long_name}}).ok());
  ASSERT_TRUE(w.InsertPrefix(*Prefix::Parse("2.0.0.0/16"), {{"name", mid_name}}).ok());
  // Repeats become pointers: one below 2048, one between 2048 and 526336.
  ASSERT_TRUE(w.InsertPrefix(*Prefix::Parse("2.1.0.0/16"), {{"name", mid_name}, {"n", 1u}}).ok());
  ASSERT_TRUE(w.InsertPrefix(*Prefix::Parse("2.2.0.0/16"), {{"name", long_name}, {"n", 2u}}).ok());
  auto stats = w.Write(dir.File("long.mmdb"));
  ASSERT_TRUE(stats.ok());
  EXPECT_LT(stats->data_bytes, 71000u);
  Reader r(dir.File("long.mmdb"));
  ASSERT_TRUE(r.open());
  r.CheckWholeFile();
  EXPECT_EQ(NameAt(r, "1.2.3.4"), long_name);
  EXPECT_EQ(NameAt(r, "2.0.3.4"), mid_name);
  EXPECT_EQ(NameAt(r, "2.1.3.4"), mid_name);
  EXPECT_EQ(NameAt(r, "2.2.3.4"), long_name);
  EXPECT_FALSE(r.Lookup("2.3.0.0"));
}

// A data section past 2^24 bytes forces 28-bit records whose top nibbles are not zero, and
// pointers of the three-byte form. About 70 MB of memory, under a second.
TEST(MmdbWriter, LargeDataSectionUses28BitRecords) {
  TempDir dir;
  MmdbWriter w(TestMetadata());
  const std::string huge(16800000, 'z');  // NOLINT(bugprone-string-constructor): on purpose
  ASSERT_TRUE(w.InsertPrefix(*Prefix::Parse("1.0.0.0/8"), {{"name", huge}}).ok());
  // 2.0/16 is a left and 2.5/16 a right branch, each with an empty sibling, so that swapped
  // nibbles would show. The second "past 2^24" is a pointer of the three-byte form.
  ASSERT_TRUE(w.InsertPrefix(*Prefix::Parse("2.0.0.0/16"), {{"name", "past 2^24"}}).ok());
  ASSERT_TRUE(
      w.InsertPrefix(*Prefix::Parse("2.5.0.0/16"), {{"name", "past 2^24"}, {"n", 5u}}).ok());
  ASSERT_TRUE(w.InsertPrefix(*Prefix::Parse("2001:db8::/32"), {{"name", "v6 past 2^24"}}).ok());
  auto stats = w.Write(dir.File("big.mmdb"));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->record_size, 28);
  Reader r(dir.File("big.mmdb"));
  ASSERT_TRUE(r.open());
  EXPECT_EQ(r.metadata().record_size, 28);
  r.CheckWholeFile();
  EXPECT_EQ(NameAt(r, "1.2.3.4").size(), huge.size());
  EXPECT_EQ(NameAt(r, "2.0.0.1"), "past 2^24");
  EXPECT_EQ(NameAt(r, "2.5.0.1"), "past 2^24");
  EXPECT_EQ(NameAt(r, "2001:db8::1"), "v6 past 2^24");
  EXPECT_FALSE(r.Lookup("2.1.0.1"));
  EXPECT_FALSE(r.Lookup("2.4.0.1"));
  EXPECT_FALSE(r.Lookup("2001:db9::1"));
}

TEST(MmdbWriter, EmptyDatabaseOpensAndFindsNothing) {
  TempDir dir;
  MmdbWriter w(TestMetadata());
  ASSERT_TRUE(w.Write(dir.File("empty.mmdb")).ok());
  Reader r(dir.File("empty.mmdb"));
  ASSERT_TRUE(r.open());
  r.CheckWholeFile();
  EXPECT_FALSE(r.Lookup("1.2.3.4"));
  EXPECT_FALSE(r.Lookup("2001:db8::1"));
}

// Many random ranges against a plain interval table: the reference answer for any address is
// the last inserted range that holds it.
TEST(MmdbWriter, RandomRangesMatchIntervalTable) {
  TempDir dir;
  std::mt19937_64 rng(20260617);
  MmdbWriter w(TestMetadata());
  struct Range {
    unsigned __int128 first, last;
    bool v4;
    uint32_t asn;
  };
  std::vector<Range> ranges;
  auto to_addr = [](unsigned __int128 v, bool v4) {
    if (v4) return IpAddr::V4(static_cast<uint32_t>(v));
    IpAddr a;
    for (int i = 15; i >= 0; --i, v >>= 8) a.bytes[i] = static_cast<uint8_t>(v & 0xFF);
    return a;
  };
  for (int i = 0; i < 400; ++i) {
    bool v4 = i % 4 != 0;
    unsigned __int128 first, last;
    if (v4) {
      first = rng() & 0xFFFFFFFFu;
      last = std::min<uint64_t>(0xFFFFFFFFu, static_cast<uint64_t>(first) + (rng() % 100000));
    } else {
      // Inside 2000::/3 so that nothing touches ::/96.
      uint64_t hi = 0x2000000000000000ull | (rng() >> 3);
      first = (static_cast<unsigned __int128>(hi) << 64) | rng();
      last = first + (static_cast<unsigned __int128>(rng() % 1000000) << 64) + rng();
    }
    uint32_t asn = static_cast<uint32_t>(rng() % 50);  // many ranges share records
    ranges.push_back({first, last, v4, asn});
    ASSERT_TRUE(
        w.InsertRange(to_addr(first, v4), to_addr(last, v4), Asn(asn, "AS" + std::to_string(asn)))
            .ok());
  }
  ASSERT_TRUE(w.Write(dir.File("random.mmdb")).ok());
  Reader r(dir.File("random.mmdb"));
  ASSERT_TRUE(r.open());
  r.CheckWholeFile();

  auto expected = [&](unsigned __int128 v, bool v4) -> std::optional<uint32_t> {
    std::optional<uint32_t> hit;
    for (const Range& g : ranges) {
      if (g.v4 == v4 && g.first <= v && v <= g.last) hit = g.asn;
    }
    return hit;
  };
  int probes = 0;
  auto probe = [&](unsigned __int128 v, bool v4) {
    std::string text = to_addr(v, v4).ToString();
    auto f = r.Lookup(text);
    auto want = expected(v, v4);
    ++probes;
    ASSERT_EQ(f.has_value(), want.has_value()) << text;
    if (want) {
      EXPECT_EQ(f->asn, *want) << text;
      EXPECT_EQ(f->org, "AS" + std::to_string(*want)) << text;
    }
  };
  unsigned __int128 max = ~static_cast<unsigned __int128>(0);
  for (const Range& g : ranges) {
    unsigned __int128 top = g.v4 ? 0xFFFFFFFFu : max;
    probe(g.first, g.v4);
    probe(g.last, g.v4);
    probe(g.first + (g.last - g.first) / 2, g.v4);
    if (g.first > 0) probe(g.first - 1, g.v4);
    if (g.last < top) probe(g.last + 1, g.v4);
  }
  for (int i = 0; i < 2000; ++i) probe(rng() & 0xFFFFFFFFu, true);
  EXPECT_GT(probes, 3000);
}

TEST(MmdbWriter, RejectsBadRangesWithReasons) {
  MmdbWriter w(TestMetadata());
  Status mixed = w.InsertRange(Addr("1.2.3.4"), Addr("2001:db8::1"), Asn(1, "x"));
  EXPECT_EQ(mixed.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mixed.message().find("mixes IPv4 and IPv6"), std::string::npos) << mixed.message();

  Status backwards = w.InsertRange(Addr("1.2.3.5"), Addr("1.2.3.4"), Asn(1, "x"));
  EXPECT_EQ(backwards.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(backwards.message().find("ends before it starts"), std::string::npos);

  Status reserved = w.InsertRange(Addr("::"), Addr("::1"), Asn(1, "x"));
  EXPECT_EQ(reserved.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reserved.message().find("::/96"), std::string::npos) << reserved.message();
  Status covers = w.InsertRange(Addr("::"), Addr("ffff::"), Asn(1, "x"));
  EXPECT_EQ(covers.code(), StatusCode::kInvalidArgument);

  Status utf8 = w.InsertRange(Addr("1.2.3.4"), Addr("1.2.3.4"), Asn(1, "bad \xC3\x28 byte"));
  EXPECT_EQ(utf8.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(utf8.message().find("autonomous_system_organization"), std::string::npos);
  EXPECT_NE(utf8.message().find("UTF-8"), std::string::npos);
  EXPECT_EQ(w.distinct_records(), 0u);
  EXPECT_EQ(w.blocks_inserted(), 0u);

  Status bad_prefix = w.InsertPrefix(Prefix{Addr("1.2.3.0"), 33}, Asn(1, "x"));
  EXPECT_EQ(bad_prefix.code(), StatusCode::kInvalidArgument);
}

TEST(MmdbWriter, InsertPrefix) {
  TempDir dir;
  MmdbWriter w(TestMetadata());
  ASSERT_TRUE(w.InsertPrefix(*Prefix::Parse("192.0.2.77/24"), Asn(1, "v4")).ok());
  ASSERT_TRUE(w.InsertPrefix(*Prefix::Parse("2001:db8:80::/41"), Asn(2, "v6")).ok());
  ASSERT_TRUE(w.Write(dir.File("prefix.mmdb")).ok());
  Reader r(dir.File("prefix.mmdb"));
  ASSERT_TRUE(r.open());
  EXPECT_EQ(AsnAt(r, "192.0.2.0"), 1u);
  EXPECT_EQ(AsnAt(r, "192.0.2.255"), 1u);
  EXPECT_FALSE(r.Lookup("192.0.3.0"));
  EXPECT_EQ(AsnAt(r, "2001:db8:ff::1"), 2u);
  EXPECT_FALSE(r.Lookup("2001:db8:7f::1"));
}

TEST(MmdbWriter, WriteFailureLeavesNoFileBehind) {
  TempDir dir;
  MmdbWriter w(TestMetadata());
  ASSERT_TRUE(w.InsertRange(Addr("1.0.0.0"), Addr("1.0.0.255"), Asn(1, "a")).ok());
  auto missing = w.Write(dir.File("no/such/dir/x.mmdb"));
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_NE(missing.status().message().find("no/such/dir/x.mmdb"), std::string::npos);

  // Replacing an existing file leaves only the new file, no temporary.
  std::ofstream(dir.File("x.mmdb")) << "old";
  ASSERT_TRUE(w.Write(dir.File("x.mmdb")).ok());
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1);
  Reader r(dir.File("x.mmdb"));
  ASSERT_TRUE(r.open());
  EXPECT_EQ(AsnAt(r, "1.0.0.1"), 1u);
}

// --- ASN CSV ---------------------------------------------------------------------------------

TEST(AsnCsv, ParsesPlainAndQuotedFields) {
  auto plain = ParseAsnCsvLine("1.0.4.0,1.0.7.255,38803,Gtelecom Pty Ltd", IpFamily::kIpv4);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->first, Addr("1.0.4.0"));
  EXPECT_EQ(plain->last, Addr("1.0.7.255"));
  EXPECT_EQ(plain->asn, 38803u);
  EXPECT_EQ(plain->organization, "Gtelecom Pty Ltd");

  auto quoted = ParseAsnCsvLine(R"(1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc.")", IpFamily::kIpv4);
  ASSERT_TRUE(quoted.ok());
  EXPECT_EQ(quoted->organization, "Cloudflare, Inc.");

  auto escaped =
      ParseAsnCsvLine(R"(2001:db8::,2001:db8::ff,"64500","The ""Best"", Net")", IpFamily::kIpv6);
  ASSERT_TRUE(escaped.ok()) << escaped.status().ToString();
  EXPECT_EQ(escaped->asn, 64500u);
  EXPECT_EQ(escaped->organization, R"(The "Best", Net)");

  auto empty = ParseAsnCsvLine("1.2.3.0,1.2.3.255,4294967295,", IpFamily::kIpv4);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->asn, 4294967295u);
  EXPECT_EQ(empty->organization, "");

  auto empty_quoted = ParseAsnCsvLine(R"(1.2.3.0,1.2.3.255,0,"")", IpFamily::kIpv4);
  ASSERT_TRUE(empty_quoted.ok());
  EXPECT_EQ(empty_quoted->organization, "");
}

void ExpectBadLine(std::string_view line, IpFamily family, const std::string& why) {
  auto r = ParseAsnCsvLine(line, family);
  ASSERT_FALSE(r.ok()) << line;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << line;
  EXPECT_NE(r.status().message().find(why), std::string::npos)
      << line << " -> " << r.status().message();
}

TEST(AsnCsv, BadLinesSayWhatIsWrong) {
  ExpectBadLine("1.0.0.0,1.0.0.255,13335", IpFamily::kIpv4, "expected 4 fields");
  ExpectBadLine("1.0.0.0,1.0.0.255,13335,Cloudflare, Inc.", IpFamily::kIpv4, "expected 4 fields");
  ExpectBadLine("1.0.0.x,1.0.0.255,1,a", IpFamily::kIpv4, "field 1 (ip_range_start)");
  ExpectBadLine("1.0.0.0,,1,a", IpFamily::kIpv4, "field 2 (ip_range_end)");
  ExpectBadLine("2001:db8::,2001:db8::1,1,a", IpFamily::kIpv4, "is not an IPv4 address");
  ExpectBadLine("1.0.0.0,1.0.0.1,1,a", IpFamily::kIpv6, "is not an IPv6 address");
  ExpectBadLine("1.0.0.9,1.0.0.1,1,a", IpFamily::kIpv4, "ends before it starts");
  ExpectBadLine("1.0.0.0,1.0.0.1,AS13335,a", IpFamily::kIpv4, "field 3 (autonomous_system_number)");
  ExpectBadLine("1.0.0.0,1.0.0.1,4294967296,a", IpFamily::kIpv4, "from 0 to 4294967295");
  ExpectBadLine("1.0.0.0,1.0.0.1,,a", IpFamily::kIpv4, "autonomous_system_number");
  ExpectBadLine("1.0.0.0,1.0.0.1,-1,a", IpFamily::kIpv4, "autonomous_system_number");
  ExpectBadLine(R"(1.0.0.0,1.0.0.1,1,"Open)", IpFamily::kIpv4, "never closed");
  ExpectBadLine(R"(1.0.0.0,1.0.0.1,1,"Closed" junk)", IpFamily::kIpv4, "after the closing quote");
  ExpectBadLine(R"(1.0.0.0,1.0.0.1,1,Half "quoted")", IpFamily::kIpv4, "quote inside");
}

// Writes `lines` to a file, each ended by `eol`.
std::string WriteLines(const TempDir& dir, const std::string& name,
                       const std::vector<std::string>& lines, const char* eol = "\n") {
  std::string path = dir.File(name);
  std::ofstream out(path, std::ios::binary);
  for (const auto& l : lines) out << l << eol;
  return path;
}

TEST(AsnCsv, MalformedLineNamesFileAndLine) {
  TempDir dir;
  std::string path = WriteLines(
      dir, "asn-ipv4.csv",
      {"1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"", "1.0.4.0,1.0.7.255,38803,Gtelecom Pty Ltd",
       "", "1.0.16.0,1.0.16.255,2519,ARTERIA Networks Corporation",
       "1.0.64.0,1.0.127.255,18144x,\"Enecom,Inc.\"",
       "1.0.128.0,1.0.196.255,23969,TOT Public Company Limited"});
  MmdbWriter w(TestMetadata());
  auto r = AddAsnCsv(path, IpFamily::kIpv4, &w);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(path + ":5: field 3 (autonomous_system_number): '18144x'"),
            std::string::npos)
      << r.status().message();

  auto missing = AddAsnCsv(dir.File("nope.csv"), IpFamily::kIpv4, &w);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.csv"), std::string::npos);

  // Invalid UTF-8 is refused by the writer; the line number is still given.
  std::string bad_utf8 =
      WriteLines(dir, "utf8.csv", {"1.0.0.0,1.0.0.255,1,ok", "2.0.0.0,2.0.0.255,2,\xFF"});
  auto u = AddAsnCsv(bad_utf8, IpFamily::kIpv4, &w);
  EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(u.status().message().find("utf8.csv:2: "), std::string::npos) << u.status().message();

  // IPv6 rows inside ::/96 would collide with the IPv4 tree.
  std::string reserved = WriteLines(dir, "v6.csv", {"::1,::1,1,loopback"});
  auto v = AddAsnCsv(reserved, IpFamily::kIpv6, &w);
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("v6.csv:1: "), std::string::npos) << v.status().message();
}

TEST(AsnCsv, SkipsHeaderBlankLinesAndCarriageReturns) {
  TempDir dir;
  std::string path = WriteLines(
      dir, "crlf.csv",
      {"ip_range_start,ip_range_end,autonomous_system_number,autonomous_system_organization",
       "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"", "", "1.0.4.0,1.0.7.255,38803,Gtelecom"},
      "\r\n");
  MmdbWriter w(TestMetadata());
  auto r = AddAsnCsv(path, IpFamily::kIpv4, &w);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 2u);
  ASSERT_TRUE(w.Write(dir.File("crlf.mmdb")).ok());
  Reader reader(dir.File("crlf.mmdb"));
  ASSERT_TRUE(reader.open());
  EXPECT_EQ(OrgAt(reader, "1.0.7.0"), "Gtelecom");
  EXPECT_EQ(OrgAt(reader, "1.0.0.1"), "Cloudflare, Inc.");
}

// Generates a few hundred rows shaped like the real tables, converts them, and reads every row
// back at its edges, inside and just outside.
TEST(AsnCsv, BuildAsnMmdbRoundTrip) {
  TempDir dir;
  std::mt19937 rng(7);
  struct Row {
    std::string first, last, before, after, inside;
    uint32_t asn;
    std::string org;
  };
  std::vector<Row> rows;
  std::vector<std::string> v4_lines, v6_lines;
  auto org_for = [](uint32_t asn) -> std::string {
    switch (asn % 5) {
      case 0:
        return "";  // no organisation known
      case 1:
        return "Plain Org " + std::to_string(asn);
      case 2:
        return "Comma, Org " + std::to_string(asn) + ", Ltd.";
      case 3:
        return "Quote \"Q\" Org " + std::to_string(asn);
      default:
        return "日本語の組織 " + std::to_string(asn);
    }
  };
  auto csv_field = [](const std::string& s) {
    if (s.find_first_of(",\"") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) {
      if (c == '"') q += '"';
      q += c;
    }
    return q + "\"";
  };
  // IPv4: consecutive /24 blocks with gaps, 1.0.0.0 upwards.
  uint32_t next = 0x01000000u;
  for (int i = 0; i < 300; ++i) {
    uint32_t first = next + 256 * (1 + rng() % 3);  // gap of at least one /24
    uint32_t size = 1 + rng() % 2000;
    uint32_t last = first + size - 1;
    next = last + 1;
    uint32_t asn = 1 + rng() % 120;  // repeats: records shared
    Row r{IpAddr::V4(first).ToString(),
          IpAddr::V4(last).ToString(),
          IpAddr::V4(first - 1).ToString(),
          IpAddr::V4(last + 1).ToString(),
          IpAddr::V4(first + size / 2).ToString(),
          asn,
          org_for(asn)};
    v4_lines.push_back(r.first + "," + r.last + "," + std::to_string(asn) + "," + csv_field(r.org));
    rows.push_back(r);
  }
  // IPv6: /48-ish ranges in 2001:db8::/32 and 2a00::/12 with gaps.
  for (int i = 0; i < 100; ++i) {
    char first[64], last[64], before[64], after[64], inside[64];
    unsigned block = 2 * i + 1;
    std::snprintf(first, sizeof first, "2a00:%x::", block);
    std::snprintf(last, sizeof last, "2a00:%x:ffff:ffff:ffff:ffff:ffff:ffff", block);
    std::snprintf(before, sizeof before, "2a00:%x:ffff:ffff:ffff:ffff:ffff:ffff", block - 1);
    std::snprintf(after, sizeof after, "2a00:%x::", block + 1);
    std::snprintf(inside, sizeof inside, "2a00:%x:1234::5", block);
    uint32_t asn = 1000 + rng() % 60;
    Row r{first, last, before, after, inside, asn, org_for(asn)};
    v6_lines.push_back(r.first + "," + r.last + "," + std::to_string(asn) + "," + csv_field(r.org));
    rows.push_back(r);
  }
  std::string v4 = WriteLines(dir, "asn-ipv4.csv", v4_lines);
  std::string v6 = WriteLines(dir, "asn-ipv6.csv", v6_lines);
  MmdbWriteStats stats;
  Status s = BuildAsnMmdb(v4, v6, dir.File("asn.mmdb"), "test ASN", 1781654400, &stats);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_GT(stats.data_records, 0u);
  EXPECT_LE(stats.data_records, 180u);

  Reader r(dir.File("asn.mmdb"));
  ASSERT_TRUE(r.open());
  r.CheckWholeFile();
  EXPECT_STREQ(r.metadata().database_type, "GeoLite2-ASN");
  EXPECT_EQ(r.metadata().build_epoch, 1781654400u);
  for (const Row& row : rows) {
    for (const std::string& a : {row.first, row.last, row.inside}) {
      auto f = r.Lookup(a);
      ASSERT_TRUE(f) << a;
      EXPECT_EQ(f->asn, row.asn) << a;
      if (row.org.empty()) {
        EXPECT_FALSE(f->org) << a;
      } else {
        EXPECT_EQ(f->org, row.org) << a;
      }
    }
    EXPECT_FALSE(r.Lookup(row.before)) << row.before;
    EXPECT_FALSE(r.Lookup(row.after)) << row.after;
  }

  Status none = BuildAsnMmdb("", "", dir.File("none.mmdb"), "x", 0);
  EXPECT_EQ(none.code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir.File("none.mmdb")));
}

}  // namespace
}  // namespace teiten
