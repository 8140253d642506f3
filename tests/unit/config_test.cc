#include "sensor/config.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "analysis/period.h"
#include "common/time_zone.h"
#include "sensor/filter.h"

namespace teiten {
namespace {

TEST(Config, ParsesSensorsAndResolvesPaths) {
  auto c = ParseConfig(R"(
[store]
path = "store"
timezone = "Asia/Tokyo"
[[sensor]]
id = "jp-tyo-1"
group = "domestic"
country = "jp"
prefixes = ["203.0.113.0/24", "2001:db8::/32"]
)",
                       "/etc/teiten/teiten.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->store_path, "/etc/teiten/store");
  ASSERT_EQ(c->sensors.size(), 1u);
  EXPECT_EQ(c->sensors[0].country, "JP");
  EXPECT_EQ(c->sensors[0].prefixes.size(), 2u);
}

TEST(Config, ErrorsNameTheLineAndTheKey) {
  auto c = ParseConfig("[[sensor]]\nid = \"a\"\nmode = \"honeypot\"\nprefixes = [\"10.0.0.0/8\"]\n",
                       "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "t.toml:3: key 'mode': 'honeypot' is neither darknet nor host");
  c = ParseConfig("[[sensor]]\nid = \"a\"\nprefixes = [\"10.0.0.0/33\"]\n", "t.toml");
  EXPECT_EQ(c.status().message(),
            "t.toml:3: sensor 'a': key 'prefixes': '10.0.0.0/33' is not a CIDR prefix");
  c = ParseConfig("[store]\npaht = \"x\"\n", "t.toml");
  EXPECT_EQ(c.status().message(), "t.toml:2: unknown key 'paht' in [store]");
  c = ParseConfig("[store\n", "t.toml");
  EXPECT_NE(c.status().message().find("t.toml:1:"), std::string::npos) << c.status().message();
}

TEST(Config, MergeColdAfterIsWholeSecondsAndDefaultsToTenMinutes) {
  auto c = ParseConfig("[store]\npath = \"s\"\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->merge_cold_after, 600);
  c = ParseConfig("[store]\npath = \"s\"\nmerge_cold_after = 2\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->merge_cold_after, 2);
  for (const char* bad : {"0", "-5", "1.5", "\"600\"", "604801"}) {
    c = ParseConfig(fmt::format("[store]\npath = \"s\"\nmerge_cold_after = {}\n", bad), "t.toml");
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().message(),
              "t.toml:3: key 'merge_cold_after': expected whole seconds from 1 to 604800")
        << bad;
  }
}

TEST(SensorFilter, HostModeKeepsOnlyUnsolicitedInbound) {
  SensorConfig s{"h", "h", "g", "JP", SensorMode::kHost, {*Prefix::Parse("192.0.2.10/32")}};
  SensorFilter f(s);
  auto obs = [](const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport,
                uint8_t flags) {
    Observation o;
    o.src = *IpAddr::Parse(src);
    o.dst = *IpAddr::Parse(dst);
    o.proto = proto;
    o.sport = sport;
    o.dport = dport;
    o.tcp_flags = flags;
    return o;
  };
  EXPECT_EQ(f.Check(obs("1.2.3.4", "192.0.2.10", 6, 5555, 445, tcp_flag::kSyn)),
            FilterVerdict::kKeep);
  EXPECT_EQ(f.Check(obs("1.2.3.4", "192.0.2.10", 6, 80, 5555, tcp_flag::kSyn | tcp_flag::kAck)),
            FilterVerdict::kSolicited);
  // The host asks a DNS server; the answer is not an attack, an unrelated UDP probe is.
  EXPECT_EQ(f.Check(obs("192.0.2.10", "9.9.9.9", 17, 40000, 53, 0)), FilterVerdict::kOutbound);
  EXPECT_EQ(f.Check(obs("9.9.9.9", "192.0.2.10", 17, 53, 40000, 0)), FilterVerdict::kSolicited);
  EXPECT_EQ(f.Check(obs("9.9.9.9", "192.0.2.10", 17, 53, 1026, 0)), FilterVerdict::kKeep);
  Observation echo_reply = obs("9.9.9.9", "192.0.2.10", 1, 0, 0, 0);
  echo_reply.icmp_type = 0;
  EXPECT_EQ(f.Check(echo_reply), FilterVerdict::kSolicited);
  echo_reply.icmp_type = 8;
  EXPECT_EQ(f.Check(echo_reply), FilterVerdict::kKeep);
  EXPECT_EQ(f.Check(obs("1.2.3.4", "192.0.2.11", 6, 1, 2, tcp_flag::kSyn)),
            FilterVerdict::kNotMonitored);
}

TEST(TimeZone, LocalDaysFollowTheZoneIncludingDaylightSaving) {
  auto jst = TimeZone::Load("Asia/Tokyo");
  ASSERT_TRUE(jst.ok());
  int64_t t = 1533999600LL * 1000000;  // 2018-08-11T15:00:00Z = 2018-08-12 00:00 JST
  EXPECT_EQ(TimeZone::DayString(jst->LocalDay(t)), "2018-08-12");
  EXPECT_EQ(TimeZone::DayString(jst->LocalDay(t - 1)), "2018-08-11");
  EXPECT_EQ(jst->DayStartUs(jst->LocalDay(t)), t);
  auto ny = TimeZone::Load("America/New_York");
  ASSERT_TRUE(ny.ok());
  // 2018-03-11 began at 05:00Z (EST); 2018-03-12 at 04:00Z (EDT).
  int32_t d = TimeZone::DaysFromCivil(2018, 3, 11);
  EXPECT_EQ(ny->DayStartUs(d), 1520744400LL * 1000000);
  EXPECT_EQ(ny->DayStartUs(d + 1), 1520827200LL * 1000000);
  EXPECT_FALSE(TimeZone::Load("Mars/Olympus").ok());
}

TEST(Period, ParsesTheSeedsPeriodsAndTheirPredecessors) {
  auto q = ParsePeriod("2018Q3");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->days(), 92);
  EXPECT_EQ(q->Previous().Label(), "2018Q2");
  EXPECT_EQ(ParsePeriod("2015Q1")->Previous().Label(), "2014Q4");
  EXPECT_EQ(ParsePeriod("2007-08")->days(), 31);
  EXPECT_EQ(ParsePeriod("2007-01")->Previous().Label(), "2006-12");
  auto r = ParsePeriod("2018-08-01..2018-08-15");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->days(), 15);
  EXPECT_EQ(r->Previous().Label(), "2018-07-17..2018-07-31");
  EXPECT_FALSE(ParsePeriod("2018Q5").ok());
  EXPECT_FALSE(ParsePeriod("2018-02-30").ok());
  EXPECT_FALSE(ParsePeriod("2018-08-15..2018-08-01").ok());
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

TEST(Config, APrefixWithHostBitsAndAPathLikeSensorIdAreRefused) {
  // Regression (issue 10): 198.124.152.15/16 was silently widened to 198.124.0.0/16, and a
  // sensor id ".." was accepted.
  auto c = ParseConfig("[[sensor]]\nid = \"a\"\nprefixes = [\"198.124.152.15/16\"]\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "t.toml:3: sensor 'a': key 'prefixes': '198.124.152.15/16' has host bits set (the "
            "network is 198.124.0.0/16)");
  EXPECT_TRUE(
      ParseConfig("[[sensor]]\nid = \"a\"\nprefixes = [\"198.51.100.7\", \"2001:db8::/32\"]\n",
                  "t.toml")
          .ok());
  for (const char* id : {"..", ".hidden", "-x", "a/b", ""}) {
    c = ParseConfig(fmt::format("[[sensor]]\nid = \"{}\"\nprefixes = [\"10.0.0.0/8\"]\n", id),
                    "t.toml");
    ASSERT_FALSE(c.ok()) << id;
    EXPECT_NE(c.status().message().find("key 'id'"), std::string::npos) << c.status().message();
  }
}

}  // namespace
}  // namespace teiten
