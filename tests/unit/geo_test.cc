// GeoLookup (one descent per address) against GeoDb (the walked, flattened tables): the same
// country and ASN for every address, and the same network names where GeoLookup vouches for one.
// First on a small database written here, whose every case is known; then on the databases
// scripts/setup.sh installs, which is what `teiten ip` and ingest read.
#include "enrich/geo.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/ip.h"
#include "enrich/writer/mmdb_writer.h"
#include "test_support.h"

namespace teiten {
namespace {

namespace fs = std::filesystem;

IpAddr Addr(const char* text) {
  auto a = IpAddr::Parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddr{});
}

// Whether GeoLookup answers `a` as GeoDb does; describes the first difference in *why.
bool SameAnswer(const GeoDb& walked, const GeoLookup& one, const IpAddr& a, std::string* why) {
  GeoInfo want = walked.Lookup(a);
  GeoRecord got = one.Lookup(a);
  if (got.info.country != want.country || got.info.asn != want.asn) {
    *why = a.ToString() + ": GeoLookup " + CountryCodeString(got.info.country) + " AS" +
           std::to_string(got.info.asn) + ", GeoDb " + CountryCodeString(want.country) + " AS" +
           std::to_string(want.asn);
    return false;
  }
  std::optional<std::string> name = one.AsnNameVia(a, want.asn);
  if (name && *name != walked.AsnName(want.asn)) {
    *why = a.ToString() + ": GeoLookup names AS" + std::to_string(want.asn) + " '" + *name +
           "', GeoDb '" + walked.AsnName(want.asn) + "'";
    return false;
  }
  return true;
}

class SmallDatabases : public ::testing::Test {
 protected:
  void SetUp() override {
    MmdbWriter country(
        {.database_type = "test-country", .description = "test", .build_epoch = 1750000000});
    ASSERT_TRUE(country.InsertPrefix(*Prefix::Parse("1.0.0.0/8"), {{"country_code", "jp"}}).ok());
    ASSERT_TRUE(
        country.InsertPrefix(*Prefix::Parse("2001:db8::/32"), {{"country_code", "DE"}}).ok());
    ASSERT_TRUE(country.Write(country_path_).ok());

    MmdbWriter asn(
        {.database_type = "GeoLite2-ASN", .description = "test", .build_epoch = 1750000000});
    const MmdbRecord one = {{"autonomous_system_number", uint32_t{1}},
                            {"autonomous_system_organization", "One Networks"}};
    ASSERT_TRUE(asn.InsertPrefix(*Prefix::Parse("1.0.0.0/24"), one).ok());
    ASSERT_TRUE(asn.InsertPrefix(*Prefix::Parse("3.0.0.0/24"), one).ok());
    // An ASN without an organisation, and one that only IPv6 ranges carry.
    ASSERT_TRUE(
        asn.InsertPrefix(*Prefix::Parse("2.0.0.0/24"), {{"autonomous_system_number", uint32_t{2}}})
            .ok());
    ASSERT_TRUE(asn.InsertPrefix(*Prefix::Parse("2001:db8::/32"),
                                 {{"autonomous_system_number", uint32_t{3}},
                                  {"autonomous_system_organization", "Three Only-v6"}})
                    .ok());
    ASSERT_TRUE(asn.InsertPrefix(*Prefix::Parse("2001:db9::/32"), one).ok());
    ASSERT_TRUE(asn.Write(asn_path_).ok());

    auto walked = GeoDb::Open(country_path_, asn_path_);
    ASSERT_TRUE(walked.ok()) << walked.status().ToString();
    walked_ = std::move(*walked);
    auto one_lookup = GeoLookup::Open(country_path_, asn_path_);
    ASSERT_TRUE(one_lookup.ok()) << one_lookup.status().ToString();
    one_ = std::move(*one_lookup);
  }

  testing::TempDir dir_;
  std::string country_path_ = dir_.path() + "/country.mmdb";
  std::string asn_path_ = dir_.path() + "/asn.mmdb";
  std::unique_ptr<GeoDb> walked_;
  std::unique_ptr<GeoLookup> one_;
};

TEST_F(SmallDatabases, AnswersAsGeoDb) {
  for (const char* text :
       {"1.0.0.0", "1.0.0.77", "1.0.0.255", "1.0.1.0", "1.255.255.255", "2.0.0.9", "3.0.0.1",
        "4.0.0.1", "0.0.0.0", "255.255.255.255", "::ffff:1.0.0.5", "2001:db8::1",
        "2001:db9:ffff::1", "2001:dba::1", "::1"}) {
    std::string why;
    EXPECT_TRUE(SameAnswer(*walked_, *one_, Addr(text), &why)) << why;
  }
  GeoRecord r = one_->Lookup(Addr("1.0.0.77"));
  EXPECT_EQ(r.info.country, MakeCountryCode("JP"));  // upper-cased, as GeoDb does
  EXPECT_EQ(r.info.asn, 1u);
  EXPECT_EQ(r.asn_org, "One Networks");
  EXPECT_EQ(one_->Lookup(Addr("2001:db8::1")).asn_org, "Three Only-v6");
  EXPECT_EQ(one_->asn_info().database_type, "GeoLite2-ASN");
}

TEST_F(SmallDatabases, VouchesOnlyWhereOneLookupKnowsGeoDbsName) {
  // An IPv4 address of the ASN whose record has an organisation: GeoDb's name.
  EXPECT_EQ(one_->AsnNameVia(Addr("3.0.0.1"), 1), std::optional<std::string>("One Networks"));
  EXPECT_EQ(walked_->AsnName(1), "One Networks");
  // The address maps to another ASN now (a store enriched by an older database): cannot tell.
  EXPECT_EQ(one_->AsnNameVia(Addr("1.0.0.1"), 5), std::nullopt);
  // No organisation in this record; another record of AS2 might have one.
  EXPECT_EQ(one_->AsnNameVia(Addr("2.0.0.1"), 2), std::nullopt);
  // IPv6: GeoDb names no ASN that only IPv6 ranges carry, and one lookup cannot see that.
  EXPECT_EQ(walked_->AsnName(3), "");
  EXPECT_EQ(one_->AsnNameVia(Addr("2001:db8::1"), 3), std::nullopt);
  EXPECT_EQ(one_->AsnNameVia(Addr("2001:db9::1"), 1), std::nullopt);
  // ASN 0 has no name, without a lookup.
  EXPECT_EQ(one_->AsnNameVia(Addr("4.0.0.1"), 0), std::optional<std::string>(""));
}

TEST_F(SmallDatabases, WithoutAnAsnDatabaseNamesNothing) {
  auto none = GeoLookup::Open(country_path_, "");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ((*none)->AsnNameVia(Addr("1.0.0.1"), 1), std::optional<std::string>(""));
  EXPECT_EQ((*none)->Lookup(Addr("1.0.0.1")).info.asn, 0u);
  EXPECT_EQ((*none)->Lookup(Addr("1.0.0.1")).info.country, MakeCountryCode("JP"));
}

TEST(GeoLookupOpen, MissingFileFailsAsGeoDb) {
  const std::string missing = "/nonexistent/teiten-geo-test.mmdb";
  auto one = GeoLookup::Open("", missing);
  auto walked = GeoDb::Open("", missing);
  ASSERT_FALSE(one.ok());
  ASSERT_FALSE(walked.ok());
  EXPECT_EQ(one.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(one.status().ToString(), walked.status().ToString());
}

// The databases setup installs, opened once for the tests below (the walk takes ~0.5 s).
class RealDatabases : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string asn = testing::SourceDir() + "/var/geo/asn.mmdb";
    if (!fs::exists(testing::CountryDb()) || !fs::exists(asn)) return;
    auto walked = GeoDb::Open(testing::CountryDb(), asn);
    auto one = GeoLookup::Open(testing::CountryDb(), asn);
    if (!walked.ok() || !one.ok()) return;
    walked_ = walked->release();
    one_ = one->release();
  }
  static void TearDownTestSuite() {
    delete walked_;
    delete one_;
    walked_ = nullptr;
    one_ = nullptr;
  }
  void SetUp() override {
    if (!walked_) {
      GTEST_SKIP() << "no geo databases at " << testing::CountryDb() << " and "
                   << testing::SourceDir() << "/var/geo/asn.mmdb (run scripts/setup.sh)";
    }
  }
  // Checks every address; fails with the first few differences.
  static void ExpectSame(const std::vector<IpAddr>& addrs) {
    int bad = 0;
    for (const IpAddr& a : addrs) {
      std::string why;
      if (!SameAnswer(*walked_, *one_, a, &why) && ++bad <= 10) ADD_FAILURE() << why;
    }
    EXPECT_EQ(bad, 0) << "of " << addrs.size() << " addresses";
  }
  static GeoDb* walked_;
  static GeoLookup* one_;
};
GeoDb* RealDatabases::walked_ = nullptr;
GeoLookup* RealDatabases::one_ = nullptr;

TEST_F(RealDatabases, Ipv4AnswersAsGeoDb) {
  const auto& ranges = walked_->v4_ranges();
  ASSERT_GT(ranges.size(), 100000u);
  std::vector<IpAddr> addrs;
  // Ends, middles and neighbours of ranges across the whole space (ranges change country or ASN
  // at their ends, where a wrong table or descent would show first).
  for (size_t i = 0; i < ranges.size(); i += 23) {
    const GeoRange& r = ranges[i];
    for (uint64_t a :
         {uint64_t{r.first}, uint64_t{r.last}, uint64_t{r.first} + (r.last - r.first) / 2,
          uint64_t{r.first} - 1, uint64_t{r.last} + 1}) {
      if (a <= 0xFFFFFFFFull) addrs.push_back(IpAddr::V4(static_cast<uint32_t>(a)));
    }
  }
  std::mt19937 rng(20240611);
  for (int i = 0; i < 20000; ++i) addrs.push_back(IpAddr::V4(static_cast<uint32_t>(rng())));
  ExpectSame(addrs);
}

TEST_F(RealDatabases, Ipv6AnswersAsGeoDb) {
  std::vector<IpAddr> addrs;
  for (const char* text : {"2001:200::1", "2400:cb00::1", "2a03:2880::1", "2001:4860:4860::8888",
                           "2001:db8::1", "::1", "2404:6800:4004::200e", "240e::1"}) {
    addrs.push_back(Addr(text));
  }
  // Addresses of the database's own IPv6 ranges, from the CSV it was built from.
  std::ifstream csv(testing::SourceDir() + "/node_modules/@ip-location-db/asn/asn-ipv6.csv");
  std::string line;
  for (int n = 0; std::getline(csv, line); ++n) {
    if (n % 97 != 0) continue;
    auto comma = line.find(',');
    if (comma == std::string::npos) continue;
    auto first = IpAddr::Parse(line.substr(0, comma));
    auto second = line.find(',', comma + 1);
    auto last = IpAddr::Parse(line.substr(comma + 1, second - comma - 1));
    if (first) addrs.push_back(*first);
    if (last) addrs.push_back(*last);
  }
  std::mt19937_64 rng(20240611);
  for (int i = 0; i < 5000; ++i) {
    uint8_t b[16];
    uint64_t hi = (rng() & 0x0FFFFFFFFFFFFFFFull) | 0x2000000000000000ull;  // 2000::/4
    uint64_t lo = rng();
    for (int k = 0; k < 8; ++k) {
      b[k] = static_cast<uint8_t>(hi >> (56 - 8 * k));
      b[8 + k] = static_cast<uint8_t>(lo >> (56 - 8 * k));
    }
    addrs.push_back(IpAddr::V6(b));
  }
  ExpectSame(addrs);
  for (const IpAddr& a : addrs) {
    uint32_t asn = walked_->Lookup(a).asn;
    if (asn != 0) EXPECT_EQ(one_->AsnNameVia(a, asn), std::nullopt) << a.ToString();
  }
}

// The condition under which one lookup names a network (GeoLookup::AsnNameVia): each ASN has one
// organisation in the database. Checked here at every IPv4 range of the one setup builds: looking
// up the range's first address names its ASN as GeoDb does, and does vouch for a name wherever
// GeoDb has one (so `teiten ip` of an IPv4 source never needs the walk).
TEST_F(RealDatabases, NamesTheNetworkOfEveryIpv4RangeAsGeoDb) {
  size_t bad = 0, vouched = 0, named = 0;
  for (const GeoRange& r : walked_->v4_ranges()) {
    if (r.info.asn == 0) continue;
    const IpAddr a = IpAddr::V4(r.first);
    std::optional<std::string> name = one_->AsnNameVia(a, r.info.asn);
    const std::string& want = walked_->AsnName(r.info.asn);
    named += !want.empty();
    vouched += name.has_value();
    if ((name && *name != want) || (!name && !want.empty())) {
      if (++bad <= 10) {
        ADD_FAILURE() << a.ToString() << " AS" << r.info.asn << ": GeoLookup "
                      << (name ? "'" + *name + "'" : "cannot tell") << ", GeoDb '" << want << "'";
      }
    }
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(named, 100000u);
  EXPECT_EQ(vouched, named);
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

TEST_F(RealDatabases, GeoDbWithoutTheWalkAnswersAsWithIt) {
  const std::string asn = testing::SourceDir() + "/var/geo/asn.mmdb";
  auto direct = GeoDb::Open(testing::CountryDb(), asn, /*walk=*/false);
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  EXPECT_TRUE((*direct)->v4_ranges().empty());
  EXPECT_EQ((*direct)->country_info().BuildDate(), walked_->country_info().BuildDate());
  EXPECT_EQ((*direct)->asn_info().database_type, walked_->asn_info().database_type);
  std::mt19937 rng(20261204);
  int differ = 0;
  for (int i = 0; i < 50000; ++i) {
    IpAddr a = IpAddr::V4(static_cast<uint32_t>(rng()));
    GeoInfo x = (*direct)->Lookup(a), y = walked_->Lookup(a);
    differ += x.country != y.country || x.asn != y.asn;
  }
  EXPECT_EQ(differ, 0);
}

}  // namespace
}  // namespace teiten
