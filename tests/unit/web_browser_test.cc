// The dashboard in headless Chromium (Debian's, driven by puppeteer-core from npm through
// tests/web/browser_check.mjs): every page renders with data from the simulated store with no
// console error and no failed request, every chart is drawn with points, the language switch
// keeps the period, the IP page opens from a port's top source, and attacker strings planted in
// the config show as text — no dialog, no injected element.
#include <gtest/gtest.h>

#include <filesystem>

#include "scenario_fixture.h"
#include "web_test_support.h"

namespace teiten::web_test {
namespace {

namespace fs = std::filesystem;

TEST(WebBrowser, PagesRenderChartsAndEscape) {
  const std::string src = testing::SourceDir();
  if (!fs::exists("/usr/bin/chromium")) GTEST_SKIP() << "Debian chromium missing";
  if (!testing::HaveCommand("node")) GTEST_SKIP() << "node missing";
  if (!fs::exists(src + "/node_modules/puppeteer-core")) {
    GTEST_SKIP() << "puppeteer-core missing (npm ci)";
  }
  auto scenario = testing::ScenarioStoreFor("small");
  if (!scenario.ok()) GTEST_SKIP() << scenario.status().ToString();
  const std::string pcap = testing::SharedPcapDir() + "/tcp_0_1000_20190821.pcap";
  if (!fs::exists(pcap)) GTEST_SKIP() << "no ../shared pcaps";

  // A store whose config carries attacker strings.
  testing::TempDir dir;
  const std::string evil_cfg = dir.path() + "/evil.toml";
  std::ofstream(evil_cfg) << "[store]\npath = \"" << dir.path()
                          << "/store\"\ntimezone = \"UTC\"\n[[sensor]]\nid = \"evil\"\n"
                          << "name = \"<img src=x onerror=alert(1)>\"\n"
                          << "group = \"\\\"><script>alert(2)</script>\"\n"
                          << "prefixes = [\"0.0.0.0/0\"]\n";
  bool ok = false;
  std::string out = testing::Run(std::string(TEITEN_BIN) + " ingest --config " + Quote(evil_cfg) +
                                     " --sensor evil " + Quote(pcap) + " 2>&1",
                                 &ok);
  ASSERT_TRUE(ok) << out;

  const std::string nm = src + "/node_modules";
  ServeProcess s(TEITEN_BIN, {"--config", scenario->config_path, "--node-modules", nm});
  ServeProcess evil(TEITEN_BIN, {"--config", evil_cfg, "--node-modules", nm});
  ASSERT_TRUE(s.ok()) << s.log();
  ASSERT_TRUE(evil.ok()) << evil.log();
  const std::string shots = dir.path();
  std::string report = testing::Run("cd " + Quote(src) + " && node tests/web/browser_check.mjs " +
                                        Quote(s.Url("")) + " 2018-08-10..2018-08-13 445/tcp " +
                                        Quote(evil.Url("")) + " " + Quote(shots) + " 2>&1",
                                    &ok);
  ASSERT_TRUE(ok) << report;
  json r = json::parse(report, nullptr, false);
  ASSERT_TRUE(r.is_object()) << report;
  ASSERT_EQ(r["pages"].size(), 10u) << report;
  for (const json& p : r["pages"]) {
    SCOPED_TRACE(p["url"].get<std::string>());
    EXPECT_EQ(p["status"], 200);
    EXPECT_TRUE(p["console_errors"].empty()) << p.dump();
    EXPECT_TRUE(p["failed"].empty()) << p.dump();
    EXPECT_TRUE(p["dialogs"].empty()) << p.dump();
    for (const json& c : p["charts"]) {
      EXPECT_EQ(c["state"], "drawn") << c.dump();
      EXPECT_GT(c["points"].get<int>(), 0) << c.dump();
      EXPECT_TRUE(c["canvas"].get<bool>()) << c.dump();
    }
    // Drawn well within a second on this small store (docs/BENCHMARKS.md: the big one).
    EXPECT_LT(p["ms"].get<int>(), 5000);
  }
  const json& overview = r["pages"][0];
  ASSERT_EQ(overview["charts"].size(), 2u);
  EXPECT_EQ(overview["charts"][0]["series"], 2);  // one line per sensor
  EXPECT_EQ(overview["charts"][1]["series"], 5);  // the top 5 ports
  EXPECT_EQ(overview["lang"], "en");
  EXPECT_EQ(overview["switched"]["lang"], "ja");
  EXPECT_NE(overview["switched"]["url"].get<std::string>().find("period=2018-08-10..2018-08-13"),
            std::string::npos);
  EXPECT_EQ(r["pages"][1]["lang"], "ja");
  EXPECT_EQ(r["pages"][2]["charts"].size(), 3u);  // port: packets, sources, by region
  const json& ip = r["pages"][4];
  ASSERT_NE(ip["url"].get<std::string>().find("/ip?addr="), std::string::npos);
  EXPECT_NE(ip["facts"].get<std::string>().find("UTC"), std::string::npos);
  for (size_t i = 5; i < 7; ++i) {
    const json& e = r["pages"][i]["evil"];
    EXPECT_EQ(e["scripts"], 0);
    EXPECT_EQ(e["imgs"], 0);
  }
  const std::string text = r["pages"][5]["evil"]["text"];
  EXPECT_NE(text.find("\"><script>alert(2)</script>"), std::string::npos) << text;
  EXPECT_NE(text.find("<img src=x onerror=alert(1)>"), std::string::npos) << text;
  // The region page followed from the overview's top regions: its three charts (checked drawn
  // above), its ports table, and the region named in its heading.
  const json& region = r["pages"][7];
  ASSERT_NE(region["url"].get<std::string>().find("/region?cc="), std::string::npos);
  EXPECT_EQ(region["charts"].size(), 3u);
  EXPECT_GT(region["rows"].get<int>(), 0);
  EXPECT_NE(region["heading"].get<std::string>().find("("), std::string::npos);
  EXPECT_EQ(r["pages"][8]["lang"], "ja");  // MUSTAN
  EXPECT_GT(r["pages"][8]["rows"].get<int>(), 0);
  EXPECT_GT(r["pages"][9]["rows"].get<int>(), 0);  // the findings of the period
  EXPECT_TRUE(fs::exists(shots + "/overview-en.png"));
  EXPECT_TRUE(fs::exists(shots + "/overview-ja.png"));
}

}  // namespace
}  // namespace teiten::web_test
