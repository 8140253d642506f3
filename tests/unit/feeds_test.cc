// Feed items and their CSV (src/feeds/feed.h) against hand-checked expectations.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/time_zone.h"
#include "feeds/feed.h"
#include "test_support.h"

namespace teiten {
namespace {

TEST(FeedCsv, FieldsAreQuotedPerRfc4180) {
  EXPECT_EQ(CsvField("23/TCP"), "23/TCP");
  EXPECT_EQ(CsvField(""), "");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("line1\r\nline2"), "\"line1\r\nline2\"");
}

TEST(FeedCsv, FindingBecomesOneHandCheckedLine) {
  Finding f;
  f.rank = 1;
  f.kind = FindingKind::kSpike;
  f.has_port = true;
  f.port = MakePortKey(6, 23);
  f.first_day = TimeZone::DaysFromCivil(2018, 8, 12);
  f.last_day = kNoDay;
  f.packets_before = 100;
  f.packets_after = 2500;
  f.sources_before = 10;
  f.sources_after = 40;
  f.ratio = 25;
  f.score = 0.125;
  SourceEvidence s;
  s.addr = *IpAddr::Parse("192.0.2.7");
  f.top_sources.push_back(s);
  f.tags = {"mirai", "x,y"};
  Finding r;
  r.rank = 2;
  r.kind = FindingKind::kRegionSilent;
  r.country = MakeCountryCode("NL");
  r.first_day = TimeZone::DaysFromCivil(2018, 8, 1);
  r.last_day = TimeZone::DaysFromCivil(2018, 8, 3);

  std::vector<FeedItem> items = FeedItemsFromFindings({f, r});
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].key, "23/TCP");
  EXPECT_EQ(items[1].channel, "region");
  EXPECT_EQ(items[1].key, "NL");

  std::string csv = WriteFeedCsv(items);
  const std::string expected =
      "source,rank,kind,channel,key,first_day,last_day,packets_before,packets_after,"
      "sources_before,sources_after,ratio,score,sources,tags\r\n"
      "finding,1," +
      std::string(FindingKindName(FindingKind::kSpike)) +
      ",port,23/TCP,2018-08-12,,100,2500,10,40,25,0.125,192.0.2.7,\"mirai x,y\"\r\n"
      "finding,2," +
      std::string(FindingKindName(FindingKind::kRegionSilent)) +
      ",region,NL,2018-08-01,2018-08-03,0,0,0,0,0,0,,\r\n";
  EXPECT_EQ(csv, expected);

  // The JSON parses back to the same hand-checked values.
  nlohmann::json j = nlohmann::json::parse(WriteFeedJson(items));
  ASSERT_EQ(j["items"].size(), 2u);
  EXPECT_EQ(j["items"][0]["key"], "23/TCP");
  EXPECT_EQ(j["items"][0]["first_day"], "2018-08-12");
  EXPECT_TRUE(j["items"][0]["last_day"].is_null());
  EXPECT_EQ(j["items"][0]["packets_after"], 2500.0);
  EXPECT_EQ(j["items"][0]["sources"], nlohmann::json::array({"192.0.2.7"}));
  EXPECT_EQ(j["items"][0]["tags"][1], "x,y");
  EXPECT_EQ(j["items"][1]["key"], "NL");
  EXPECT_EQ(j["items"][1]["last_day"], "2018-08-03");
}

TEST(FeedCsv, MustanWatchAndRiskItemsBecomeHandCheckedLines) {
  MustanView v;
  v.channel = "port";
  for (int d = 1; d <= 10; ++d) v.day_labels.push_back(fmt::format("2019-04-{:02}", d));
  MustanItem rise;  // first 5 days 50 packets, last 5 days 400; sources 4 a day, then 30
  rise.name = "9530/TCP";
  rise.first_half = 50;
  rise.last_half = 400;
  rise.early_sources = 4;
  rise.late_sources = 30;
  rise.z = (400.0 - 50.0) / std::sqrt(450.0);
  rise.trend = Trend::kUp;
  rise.watch = rise.risk = true;
  MustanItem fresh = rise;  // nothing in the 10 days before
  fresh.name = "8081/TCP";
  fresh.first_half = 0;
  fresh.is_new = true;
  v.watch = {rise};
  v.risk = {fresh, rise};
  std::vector<FeedItem> items = FeedItemsFromMustan(v);
  ASSERT_EQ(items.size(), 3u);
  const std::string csv = WriteFeedCsv(items);
  const std::string z = "16.4992";  // 350 / √450, as the CSV writes it (6 digits)
  EXPECT_NE(csv.find("\r\nwatch,1,watch,port,9530/TCP,2019-04-01,2019-04-10,10,80,4,30,8," + z +
                     ",,trend-up\r\n"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find("\r\nrisk,1,risk,port,8081/TCP,2019-04-01,2019-04-10,0,80,4,30,0," + z +
                     ",,new trend-up\r\n"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find("\r\nrisk,2,risk,port,9530/TCP,"), std::string::npos) << csv;
}

// Attacker bytes in an item (a tag from a packet) are escaped or replaced, never markup and
// never an ill-formed document: parsed back by libxml2 (xmllint), the text is what was given,
// with U+FFFD where XML 1.0 cannot hold a byte.
TEST(FeedXml, AttackerStringsAreEscapedAndTheDocumentStaysWellFormed) {
  if (!testing::HaveCommand("xmllint")) GTEST_SKIP() << "xmllint (libxml2-utils) missing";
  FeedItem it;
  it.rank = 1;
  it.kind = "spike";
  it.channel = "port";
  it.key = "23/TCP";
  it.tags = {"<script>alert('x')</script> & \"q\"", std::string("ctl\x01\x1b end"),
             std::string("bad\xff\xfe utf8"), "日本語"};
  FeedMeta meta{"2018-08-01", "2018-08-31", "2026-12-04T00:00:00Z"};
  const std::string xml = WriteFeedXml({it}, meta);
  EXPECT_EQ(xml.find("<script>"), std::string::npos);
  testing::TempDir dir;
  const std::string path = dir.path() + "/f.xml";
  std::ofstream(path, std::ios::binary) << xml;
  bool ok = false;
  std::string lint = testing::Run("xmllint --noout " + path + " 2>&1", &ok);
  ASSERT_TRUE(ok) << lint << xml;  // well-formed
  // The tags' text as an XML parser gives it back (Python's, over expat).
  std::string tags = testing::Run(
      "python3 -c \"import sys, xml.etree.ElementTree as E; "
      "[sys.stdout.buffer.write(t.text.encode() + b'\\n') for t in "
      "E.parse(sys.argv[1]).getroot().iter('{urn:teiten:feed:1}tag')]\" " +
          path,
      &ok);
  ASSERT_TRUE(ok) << tags;
  EXPECT_NE(tags.find("<script>alert('x')</script> & \"q\""), std::string::npos) << tags;
  EXPECT_NE(tags.find("ctl\xEF\xBF\xBD\xEF\xBF\xBD end"), std::string::npos) << tags;
  EXPECT_NE(tags.find("bad\xEF\xBF\xBD\xEF\xBF\xBD utf8"), std::string::npos) << tags;
  EXPECT_NE(tags.find("日本語"), std::string::npos) << tags;
  const std::string xsd = testing::SourceDir() + "/data/feeds/teiten-feed.xsd";
  std::string out = testing::Run("xmllint --noout --schema " + xsd + " " + path + " 2>&1", &ok);
  EXPECT_TRUE(ok) << out;
}

}  // namespace
}  // namespace teiten
