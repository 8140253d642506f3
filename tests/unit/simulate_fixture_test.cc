// The shared scenario fixture: the store it builds holds exactly what the ground truth says was
// generated — every packet, every port, and every source's country as the geo data gives it —
// and a second call reuses the build.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "analysis/query.h"
#include "common/observation.h"
#include "common/time_zone.h"
#include "scenario_fixture.h"
#include "sensor/config.h"
#include "store/store.h"

namespace teiten {
namespace {

namespace fs = std::filesystem;

TEST(ScenarioFixture, SmallScenarioStoreHoldsTheGroundTruth) {
  auto s = testing::ScenarioStoreFor("small");
  if (!s.ok() && s.status().code() == StatusCode::kNotFound) GTEST_SKIP() << s.status().ToString();
  ASSERT_TRUE(s.ok()) << s.status().ToString();

  auto cfg = LoadConfig(s->config_path);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  ASSERT_EQ(cfg->sensors.size(), 2u);
  EXPECT_EQ(cfg->sensors[0].id, "s01");
  EXPECT_EQ(cfg->sensors[1].group, "jp-west");
  EXPECT_EQ(fs::canonical(cfg->store_path), fs::canonical(s->store_dir));

  std::ifstream tf(s->truth_path);
  nlohmann::json truth = nlohmann::json::parse(tf);
  std::map<std::string, uint64_t> want_ports, want_countries;
  uint64_t want_packets = 0;
  for (const auto& f : truth.at("files")) {
    want_packets += f.at("packets").get<uint64_t>();
    for (const auto& [k, v] : f.at("packets_by_port").items()) want_ports[k] += v.get<uint64_t>();
    for (const auto& [k, v] : f.at("packets_by_country").items()) {
      want_countries[k] += v.get<uint64_t>();
    }
  }
  EXPECT_EQ(want_packets, truth.at("packets").get<uint64_t>());
  ASSERT_GT(want_packets, 10000u);

  auto store = Store::Open(s->store_dir, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->manifest().sensors.size(), 2u);
  // The scenario's days, 2018-08-10 .. 08-13 (UTC, as the fixture's store).
  const int32_t first = TimeZone::DaysFromCivil(2018, 8, 10);
  EXPECT_EQ(truth.at("start"), "2018-08-10");
  Period all = DaysPeriod(first, first + truth.at("days").get<int32_t>());
  auto ports = Top(**store, Dimension::kPort, all, {}, 1000000);
  ASSERT_TRUE(ports.ok()) << ports.status().ToString();
  EXPECT_EQ(ports->total_packets, want_packets);
  std::map<std::string, uint64_t> got_ports;
  for (const auto& r : ports->rows)
    got_ports[PortKeyToString(static_cast<PortKey>(r.key))] = r.packets;
  EXPECT_EQ(got_ports, want_ports);
  auto countries = Top(**store, Dimension::kCountry, all, {}, 1000);
  ASSERT_TRUE(countries.ok()) << countries.status().ToString();
  std::map<std::string, uint64_t> got_countries;
  for (const auto& r : countries->rows) {
    got_countries[CountryCodeString(static_cast<CountryCode>(r.key))] = r.packets;
  }
  // The ground truth leaves spoofed sources without a country; the store looks them up like any
  // other, so they add to the countries (and "--" for unallocated space) by exactly their count.
  uint64_t spoofed = 0;
  for (const auto& f : truth.at("files")) {
    spoofed += f.at("packets_by_tool").value("spoofed-flood", uint64_t{0});
  }
  EXPECT_GT(spoofed, 0u);
  uint64_t extra = 0;
  for (const auto& [cc, n] : want_countries) {
    EXPECT_GE(got_countries[cc], n) << cc;
    EXPECT_LE(got_countries[cc], n + spoofed) << cc;
  }
  for (const auto& [cc, n] : got_countries) extra += n - want_countries[cc];
  EXPECT_EQ(extra, spoofed);

  // Cached: the second call finds the stamp and leaves the store as it was.
  auto manifest_time = fs::last_write_time(s->store_dir + "/MANIFEST");
  auto again = testing::ScenarioStoreFor("small", 0);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->store_dir, s->store_dir);
  EXPECT_EQ(fs::last_write_time(s->store_dir + "/MANIFEST"), manifest_time);
}

TEST(ScenarioFixture, UnknownScenarioIsAnError) {
  auto s = testing::ScenarioStoreFor("no-such-scenario");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("no-such-scenario"), std::string::npos);
}

}  // namespace
}  // namespace teiten
