// `teiten serve` as a real process on a free loopback port, asked with curl: every API endpoint
// against the CLI's answer to the same query (and the scenario's ground truth where it states
// the figure), errors, access (logins, tokens, public mode, TLS), a store changing under the
// server, and escaping of attacker strings planted in the config.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "scenario_fixture.h"
#include "web_test_support.h"

namespace teiten::web_test {
namespace {

namespace fs = std::filesystem;

const char* kPeriod = "2018-08-10..2018-08-13";  // the small scenario's four days

std::string Bin() {
  return TEITEN_BIN;
}

std::string NodeModules() {
  return testing::SourceDir() + "/node_modules";
}

std::string Cli(const std::string& args, bool* ok) {
  return testing::Run(Quote(Bin()) + " " + args + " 2>&1", ok);
}

json CliJson(const std::string& args) {
  bool ok = false;
  std::string out = testing::Run(Quote(Bin()) + " " + args + " --format json", &ok);
  EXPECT_TRUE(ok) << args << ": " << out;
  return json::parse(out, nullptr, false);
}

class WebApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto s = testing::ScenarioStoreFor("small");
    if (!s.ok()) {
      why_ = s.status().ToString();
      return;
    }
    scenario_ = new testing::ScenarioStore(*s);
    truth_ = new json(json::parse(Slurp(s->truth_path)));
    serve_ = new ServeProcess(Bin(), {"--config", s->config_path, "--node-modules", NodeModules()});
  }
  static void TearDownTestSuite() {
    delete serve_;
    delete truth_;
    delete scenario_;
    serve_ = nullptr;
    truth_ = nullptr;
    scenario_ = nullptr;
  }
  void SetUp() override {
    if (!scenario_) GTEST_SKIP() << "scenario store unavailable: " << why_;
    ASSERT_TRUE(serve_->ok()) << serve_->log();
  }
  static HttpReply Api(const std::string& path_and_query) {
    return Curl(serve_->Url(path_and_query));
  }
  static json ApiJson(const std::string& path_and_query) {
    HttpReply r = Api(path_and_query);
    EXPECT_EQ(r.status, 200) << path_and_query << ": " << r.body;
    return r.Json();
  }
  static std::string Config() { return "--config " + Quote(scenario_->config_path); }
  // The ground truth's packets by key (port "23/TCP" or country "CN"), summed over its files.
  static std::map<std::string, uint64_t> TruthBy(const std::string& field) {
    std::map<std::string, uint64_t> m;
    for (const json& f : (*truth_)["files"]) {
      for (auto it = f[field].begin(); it != f[field].end(); ++it) {
        m[it.key()] += it.value().get<uint64_t>();
      }
    }
    return m;
  }

  inline static testing::ScenarioStore* scenario_ = nullptr;
  inline static json* truth_ = nullptr;
  inline static ServeProcess* serve_ = nullptr;
  inline static std::string why_;
};

TEST_F(WebApi, TopEqualsTheCliAndTheGroundTruth) {
  const std::map<std::string, std::string> column = {
      {"ports", "port"}, {"countries", "region"}, {"asns", "ASN"}, {"sensors", "sensor"}};
  for (const auto& [what, col] : column) {
    SCOPED_TRACE(what);
    json api = ApiJson(std::string("/api/v1/top/") + what + "?period=" + kPeriod + "&n=10");
    json cli = CliJson("top " + what + " --period " + kPeriod + " -n 10 " + Config());
    ASSERT_TRUE(api.is_object());
    ASSERT_TRUE(cli.is_array());
    ASSERT_EQ(api["rows"].size(), cli.size());
    ASSERT_GT(cli.size(), 0u);
    for (size_t i = 0; i < cli.size(); ++i) {
      const json& a = api["rows"][i];
      const json& c = cli[i];
      EXPECT_EQ(a["rank"], c["rank"]);
      EXPECT_EQ(a["packets"], c["packets"]);
      EXPECT_EQ(a["sources"], c["sources"]);
      std::string shown = c[col].is_string() ? c[col].get<std::string>() : c[col].dump();
      if (what == "ports") {
        EXPECT_EQ(a["name"], shown);
      }
      if (what == "countries") {
        EXPECT_EQ(shown.substr(0, 2), a["key"]);
      }
      if (what == "sensors") {
        EXPECT_EQ(a["key"], shown);
      }
      if (what == "asns" && a["key"] != 0) {
        EXPECT_EQ(shown.rfind("AS" + a["key"].dump(), 0), 0u) << shown;
      }
    }
    // No previous period in the store: every previous rank says so.
    for (const json& r : api["rows"]) EXPECT_EQ(r["previous_rank"], "no-data");
  }
  // By hand from the simulator's ground truth: the whole and each of the top five ports.
  json ports = ApiJson(std::string("/api/v1/top/ports?period=") + kPeriod + "&n=5");
  EXPECT_EQ(ports["total_packets"], (*truth_)["packets"]);
  auto by_port = TruthBy("packets_by_port");
  for (const json& r : ports["rows"]) {
    EXPECT_EQ(r["packets"].get<uint64_t>(), by_port[r["key"].get<std::string>()]) << r.dump();
  }
  EXPECT_EQ(ports["rows"][0]["key"], "23/TCP");
  // Regions: the simulator states each source's intended region; the geo database places a few
  // (spoofed floods, backscatter) elsewhere, so the order is checked, and counts within 2%.
  json regions = ApiJson(std::string("/api/v1/top/countries?period=") + kPeriod + "&n=3");
  auto by_country = TruthBy("packets_by_country");
  std::vector<std::pair<uint64_t, std::string>> truth_order;
  for (const auto& [cc, n] : by_country) truth_order.push_back({n, cc});
  std::sort(truth_order.rbegin(), truth_order.rend());
  for (size_t i = 0; i < 3; ++i) {
    const json& r = regions["rows"][i];
    EXPECT_EQ(r["key"], truth_order[i].second) << r.dump();
    EXPECT_NEAR(r["packets"].get<double>(), static_cast<double>(truth_order[i].first),
                0.02 * static_cast<double>(truth_order[i].first))
        << r.dump();
  }
}

TEST_F(WebApi, SummaryEqualsTheCli) {
  json api = ApiJson(std::string("/api/v1/summary?period=") + kPeriod);
  json cli = CliJson(std::string("summary --period ") + kPeriod + " " + Config());
  std::map<std::string, json> m;
  for (const json& r : cli) m[r["measure"]] = r["value"];
  EXPECT_EQ(api["packets"], m["packets"]);
  EXPECT_EQ(api["sources"], m["sources"]);
  EXPECT_EQ(api["sensors"], m["sensors"]);
  EXPECT_EQ(api["days"], m["days"]);
  EXPECT_NEAR(api["packets_per_sensor_day"].get<double>(),
              m["packets_per_sensor_day"].get<double>(), 0.05);
  EXPECT_NEAR(api["sources_per_sensor_day"].get<double>(),
              m["sources_per_sensor_day"].get<double>(), 0.05);
  // By hand: 2 sensors × 4 days, every one with data.
  EXPECT_EQ(api["sensor_days"], 8);
  EXPECT_NEAR(api["packets_per_sensor_day"].get<double>(), (*truth_)["packets"].get<double>() / 8,
              1e-6);
}

TEST_F(WebApi, SeriesEqualsTheCli) {
  json api = ApiJson(std::string("/api/v1/series?period=") + kPeriod + "&port=445/tcp");
  json cli = CliJson(std::string("series --period ") + kPeriod + " --port 445/tcp " + Config());
  ASSERT_EQ(api["points"].size(), 4u);
  ASSERT_EQ(cli.size(), 4u);
  uint64_t sum = 0;
  for (size_t i = 0; i < 4; ++i) {
    const json& p = api["points"][i];
    EXPECT_EQ(p["label"], cli[i]["time"]);
    EXPECT_EQ(p["packets"][0], cli[i]["445/TCP packets"]) << cli[i].dump();
    EXPECT_EQ(p["sources"][0], cli[i]["445/TCP sources"]) << cli[i].dump();
    sum += p["packets"][0].get<uint64_t>();
  }
  EXPECT_EQ(sum, TruthBy("packets_by_port")["445/TCP"]);
  // Every sensor's series adds up to the whole.
  json per_sensor = ApiJson(std::string("/api/v1/series?period=") + kPeriod +
                            "&sensor_series=s01&sensor_series=s02");
  json whole = ApiJson(std::string("/api/v1/series?period=") + kPeriod);
  ASSERT_EQ(per_sensor["series"], json({"s01", "s02"}));
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(per_sensor["points"][i]["packets"][0].get<uint64_t>() +
                  per_sensor["points"][i]["packets"][1].get<uint64_t>(),
              whole["points"][i]["packets"][0].get<uint64_t>());
  }
  // By region, as the CLI's --by-country.
  json bc = ApiJson(std::string("/api/v1/series?period=") + kPeriod + "&by_country=53413/udp&n=3");
  json bc_cli = CliJson(std::string("series --period ") + kPeriod +
                        " --by-country 53413/udp -n 3 " + Config());
  ASSERT_EQ(bc["points"].size(), bc_cli.size());
  for (size_t i = 0; i < bc_cli.size(); ++i) {
    for (size_t k = 0; k < bc["series"].size(); ++k) {
      EXPECT_EQ(bc["points"][i]["packets"][k], bc_cli[i][bc["series"][k].get<std::string>()]);
    }
  }
  // A region by port (the region page's chart): each day's parts add up to the region's own
  // series (read from the country rollups, not the port x country pairs), and the region's
  // share of 53413/udp is the port's CN part read the other way.
  json cn = ApiJson(std::string("/api/v1/series?period=") + kPeriod + "&country=CN");
  json bp = ApiJson(std::string("/api/v1/series?period=") + kPeriod + "&by_port=CN&n=3");
  ASSERT_EQ(bp["points"].size(), cn["points"].size());
  ASSERT_EQ(bp["series"].size(), 4u);
  EXPECT_EQ(bp["series"][3], "other");
  size_t udp =
      std::find(bp["series"].begin(), bp["series"].end(), "53413/UDP") - bp["series"].begin();
  size_t cn_in_bc =
      std::find(bc["series"].begin(), bc["series"].end(), "CN") - bc["series"].begin();
  ASSERT_LT(udp, 3u) << bp.dump();
  ASSERT_LT(cn_in_bc, 3u) << bc.dump();
  for (size_t i = 0; i < cn["points"].size(); ++i) {
    uint64_t sum = 0;
    for (const json& v : bp["points"][i]["packets"]) sum += v.get<uint64_t>();
    EXPECT_EQ(sum, cn["points"][i]["packets"][0].get<uint64_t>()) << i;
    EXPECT_EQ(bp["points"][i]["packets"][udp], bc["points"][i]["packets"][cn_in_bc]) << i;
  }
  EXPECT_EQ(Api("/api/v1/series?period=2018-08&by_port=XX").status, 400);
  EXPECT_EQ(Api("/api/v1/series?period=2018-08&by_port=CN&by_country=23/tcp").status, 400);
}

TEST_F(WebApi, SourcesAndIpEqualTheCliAndTheGroundTruth) {
  // 9600/TCP is one research scanner's (the scenario's "dominate" event).
  json src = ApiJson(std::string("/api/v1/sources?period=") + kPeriod + "&port=9600/tcp&n=3");
  ASSERT_GE(src["sources"].size(), 1u);
  std::string addr = src["sources"][0]["address"];
  std::set<std::string> planted;
  for (const json& e : (*truth_)["events"]) {
    if (e["name"] == "research-9600") {
      for (const json& s : e["sources"]) planted.insert(s[0].get<std::string>());
    }
  }
  EXPECT_TRUE(planted.count(addr)) << addr;
  json ip = ApiJson("/api/v1/ip/" + addr);
  json cli = CliJson("ip " + addr + " " + Config());
  std::map<std::string, json> m;
  for (const json& r : cli) m[r["field"]] = r["value"];
  EXPECT_EQ(ip["seen"], true);
  EXPECT_EQ(ip["packets"], m["packets"]);
  EXPECT_EQ(ip["days"].size(), m["days"].get<size_t>());
  EXPECT_EQ(ip["country"]["key"], "US");
  EXPECT_EQ(m["first_seen"].get<std::string>().substr(0, 19),
            ip["first_seen"].get<std::string>().substr(0, 10) + " " +
                ip["first_seen"].get<std::string>().substr(11, 8));
  EXPECT_GE(ip["packets"].get<uint64_t>(), src["sources"][0]["packets"].get<uint64_t>());
  // An address nobody saw.
  json unseen = ApiJson("/api/v1/ip/192.0.2.77");
  EXPECT_EQ(unseen["seen"], false);
}

TEST_F(WebApi, SensorsEqualTheCli) {
  json api = ApiJson("/api/v1/sensors");
  json cli = CliJson("sensors " + Config());
  ASSERT_EQ(api["sensors"].size(), cli.size());
  for (size_t i = 0; i < cli.size(); ++i) {
    EXPECT_EQ(api["sensors"][i]["id"], cli[i]["sensor"]);
    EXPECT_EQ(api["sensors"][i]["group"], cli[i]["group"]);
    EXPECT_EQ(api["sensors"][i]["packets"], cli[i]["packets"]);
    EXPECT_EQ(api["sensors"][i]["inputs"], cli[i]["inputs"]);
  }
}

TEST_F(WebApi, FindingsNameThePlantedEvents) {
  json f = ApiJson(std::string("/api/v1/findings?period=") + kPeriod);
  ASSERT_GT(f["findings"].size(), 0u);
  std::set<std::string> ports;
  for (const json& x : f["findings"]) {
    if (x["port"].is_object()) ports.insert(x["port"]["key"]);
    EXPECT_TRUE(x.contains("top_sources"));
  }
  // The six-hour spike on 5168/TCP and the Netis surge on 53413/UDP are there to be found.
  EXPECT_TRUE(ports.count("5168/TCP")) << f.dump();
  EXPECT_TRUE(ports.count("53413/UDP")) << f.dump();
  json one = ApiJson(std::string("/api/v1/findings?period=") + kPeriod + "&port=5168/tcp");
  ASSERT_GE(one["findings"].size(), 1u);
  for (const json& x : one["findings"]) {
    bool about = x["port"].is_object() && x["port"]["key"] == "5168/TCP";
    for (const json& r : x["related_ports"]) about |= r == "5168/TCP";
    EXPECT_TRUE(about) << x.dump();
  }
  EXPECT_EQ(one["findings"][0]["first_day"], "2018-08-12");
  // The planted Mirai port move is named by its tool wherever it lands (8080, 8081 or 81/TCP),
  // and a region's findings are only that region's (Brazil's planted outage).
  bool mirai = false;
  for (const json& x : f["findings"]) {
    for (const json& t : x["tools"]) mirai |= t["tag"] == "mirai" && t["source_share"] >= 0.5;
  }
  EXPECT_TRUE(mirai) << f.dump();
  json br = ApiJson(std::string("/api/v1/findings?period=") + kPeriod + "&country=BR");
  ASSERT_GE(br["findings"].size(), 1u);
  for (const json& x : br["findings"]) EXPECT_EQ(x["country"], "BR") << x.dump();
  EXPECT_EQ(Api(std::string("/api/v1/findings?period=") + kPeriod + "&country=XX").status, 400);
}

// The alert feeds over the API are `teiten feed`'s, byte for byte (the XML's generation time
// aside), with each format's content type; errors name the parameter.
TEST_F(WebApi, FeedsEqualTheCliAndRefuseBadPeriodsAndFormats) {
  for (const char* format : {"csv", "json", "xml"}) {
    SCOPED_TRACE(format);
    HttpReply r = Api(std::string("/api/v1/feeds/") + format + "?period=" + kPeriod);
    ASSERT_EQ(r.status, 200) << r.body;
    bool ok = false;
    std::string cli = testing::Run(std::string(TEITEN_BIN) + " feed --period " + kPeriod +
                                       " --format " + format + " " + Config(),
                                   &ok);
    ASSERT_TRUE(ok);
    auto strip = [](std::string s) {  // generated="…" differs by the second it was made
      size_t a = s.find("generated=\"");
      if (a != std::string::npos) s.erase(a, s.find('"', a + 11) - a + 1);
      return s;
    };
    EXPECT_EQ(strip(r.body), strip(cli));
    EXPECT_EQ(r.Header("Content-Type"), std::string(format) == "csv"    ? "text/csv; charset=utf-8"
                                        : std::string(format) == "json" ? "application/json"
                                                                        : "application/xml");
  }
  HttpReply stix = Api(std::string("/api/v1/feeds/stix?period=") + kPeriod);
  EXPECT_EQ(stix.status, 200);
  EXPECT_EQ(stix.Header("Content-Type"), "application/stix+json;version=2.1");
  EXPECT_EQ(stix.Json()["type"], "bundle");
  HttpReply misp = Api(std::string("/api/v1/feeds/misp?period=") + kPeriod);
  EXPECT_EQ(misp.status, 200);
  EXPECT_EQ(misp.Header("Content-Type"), "application/json");
  EXPECT_TRUE(misp.Json()["Event"].is_object());
  HttpReply bad = Api("/api/v1/feeds/xml?period=2018-13");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.Json()["error"]["parameter"], "period");
  EXPECT_EQ(Api("/api/v1/feeds/xml?period=2018-08&port=23/tcp").Json()["error"]["parameter"],
            "port");
  EXPECT_EQ(Api("/api/v1/feeds/pdf?period=2018-08").status, 404);
}

// Notification lists over the API are the CLI's (but for the networks' names, which the API does
// not look up), and both agree with the rollups' top countries.
TEST_F(WebApi, NotifyListsEqualTheCli) {
  json top = CliJson(std::string("top countries -n 1 --period ") + kPeriod + " " + Config());
  ASSERT_EQ(top.size(), 1u);
  const std::string cc = top[0]["region"].get<std::string>().substr(0, 2);
  json api = ApiJson(std::string("/api/v1/notify?period=") + kPeriod + "&country=" + cc);
  bool ok = false;
  json cli =
      json::parse(testing::Run(std::string(TEITEN_BIN) + " notify --format json --period " +
                                   kPeriod + " --country " + cc + " " + Config() + " 2>/dev/null",
                               &ok));
  ASSERT_TRUE(ok);
  EXPECT_EQ(api["sources"], top[0]["sources"]);
  EXPECT_EQ(api["packets"], top[0]["packets"]);
  ASSERT_EQ(api["rows"].size(), cli["rows"].size());
  for (json* j : {&api, &cli}) {
    for (json& r : (*j)["rows"]) r.erase("as_name");
  }
  EXPECT_EQ(api, cli);
  HttpReply csv = Api(std::string("/api/v1/notify/csv?period=") + kPeriod + "&country=" + cc +
                      "&country=" + cc);
  ASSERT_EQ(csv.status, 200) << csv.body;
  EXPECT_EQ(csv.Header("Content-Type"), "text/csv; charset=utf-8");
  EXPECT_EQ(std::count(csv.body.begin(), csv.body.end(), '\n'),
            static_cast<std::ptrdiff_t>(cli["rows"].size()) + 1);
  auto param = [](const HttpReply& r) { return r.Json()["error"]["parameter"]; };
  HttpReply none = Api(std::string("/api/v1/notify?period=") + kPeriod);
  EXPECT_EQ(none.status, 400);
  EXPECT_EQ(param(none), "asn");
  HttpReply host_bits =
      Api(std::string("/api/v1/notify/csv?period=") + kPeriod + "&prefix=10.1.2.3/8");
  EXPECT_EQ(host_bits.status, 400);
  EXPECT_EQ(param(host_bits), "prefix");
  EXPECT_EQ(param(Api(std::string("/api/v1/notify?period=") + kPeriod + "&asn=AS0")), "asn");
  EXPECT_EQ(param(Api("/api/v1/notify?country=JP")), "period");
  EXPECT_EQ(param(Api(std::string("/api/v1/notify?country=JP&port=23/tcp&period=") + kPeriod)),
            "port");
}

// Outages over the API are the CLI's, and the small scenario's planted one (Brazil silent on its
// last day, ground truth) is among them.
TEST_F(WebApi, OutagesEqualTheCliAndTheGroundTruth) {
  json api = ApiJson(std::string("/api/v1/outages?period=") + kPeriod);
  json cli = CliJson(std::string("outages --period ") + kPeriod + " " + Config());
  ASSERT_EQ(api["outages"].size(), cli.size());
  for (size_t i = 0; i < cli.size(); ++i) {
    EXPECT_EQ(api["outages"][i]["first_day"], cli[i]["start"]);
    EXPECT_EQ(api["outages"][i]["key"], cli[i]["region"].get<std::string>().substr(0, 2));
  }
  bool br = false;
  for (const json& e : (*truth_)["events"]) {
    if (e["kind"] != "silence") continue;
    for (const json& o : api["outages"]) {
      br |= o["key"] == e["regions"][0] && o["first_day"] == "2018-08-13" && o["ongoing"] == true;
    }
  }
  EXPECT_TRUE(br) << api.dump();
  // The region's page lists it, with the rule it rests on; another region's says there was none.
  HttpReply page = Api(std::string("/region?cc=BR&period=") + kPeriod);
  ASSERT_EQ(page.status, 200) << page.body.substr(0, 400);
  const size_t table = page.body.find("<table id=\"region-outages\">");
  ASSERT_NE(table, std::string::npos) << page.body;
  EXPECT_NE(page.body.find("<td>2018-08-13</td><td>2018-08-13 (ongoing)</td>", table),
            std::string::npos);
  EXPECT_NE(page.body.find("at most 20% of their median over the 14 days"), std::string::npos);
  HttpReply cn = Api(std::string("/region?cc=CN&period=") + kPeriod + "&lang=ja");
  ASSERT_EQ(cn.status, 200);
  EXPECT_NE(cn.body.find("期間中に停止はありません。"), std::string::npos);
  HttpReply bad = Api(std::string("/api/v1/outages?by=port&period=") + kPeriod);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.Json()["error"]["parameter"], "by");
  EXPECT_EQ(ApiJson(std::string("/api/v1/outages?by=asn&period=") + kPeriod)["by"], "asn");
}

// The MUSTAN view over the API equals `teiten mustan`'s, and its daily counts are the series
// endpoint's for the same port and days.
TEST_F(WebApi, MustanEqualsTheCliAndTheSeries) {
  json api = ApiJson("/api/v1/mustan?end=2018-08-13&port=445/tcp");
  json cli = CliJson("mustan --end 2018-08-13 " + Config());
  ASSERT_TRUE(cli.is_array());
  std::vector<json> cli_top;
  for (const json& r : cli) {
    if (r["list"] == "top 5") cli_top.push_back(r);
  }
  ASSERT_EQ(api["top"].size(), cli_top.size());
  ASSERT_FALSE(cli_top.empty());
  for (size_t i = 0; i < cli_top.size(); ++i) {
    EXPECT_EQ(api["top"][i]["key"], cli_top[i]["port"]);
    EXPECT_EQ(api["top"][i]["total_packets"], cli_top[i]["total"]);
    EXPECT_EQ(api["top"][i]["arrow"], cli_top[i]["trend"]);
  }
  EXPECT_EQ(api["days"].size(), 10u);
  EXPECT_EQ(api["last_day"], "2018-08-13");
  EXPECT_FALSE(api["rules"]["trend"].get<std::string>().empty());
  json series = ApiJson("/api/v1/series?period=2018-08-04..2018-08-13&port=445/tcp");
  uint64_t sum = 0;
  for (const json& pt : series["points"]) sum += pt["packets"][0].get<uint64_t>();
  EXPECT_EQ(api["search"]["total_packets"].get<uint64_t>(), sum) << series.dump();
  EXPECT_GT(sum, 0u);
}

// The /mustan page shows the API's top 5 with their arrows and the stated rules, in both
// languages, and a hostile search is a 400 page with the text escaped.
TEST_F(WebApi, MustanPageShowsTheApiViewInBothLanguages) {
  json api = ApiJson("/api/v1/mustan?end=2018-08-13");
  ASSERT_FALSE(api["top"].empty());
  HttpReply en = Api("/mustan?end=2018-08-13");
  ASSERT_EQ(en.status, 200) << en.body;
  for (const json& it : api["top"]) {
    EXPECT_NE(en.body.find(">" + it["key"].get<std::string>() + "</a>"), std::string::npos);
  }
  EXPECT_NE(en.body.find("id=\"mustan-rules\""), std::string::npos);
  EXPECT_NE(en.body.find("z ≥ 3"), std::string::npos);
  HttpReply ja = Api("/mustan?end=2018-08-13&lang=ja");
  ASSERT_EQ(ja.status, 200);
  EXPECT_NE(ja.body.find("要注意"), std::string::npos);
  EXPECT_NE(ja.body.find("矢印"), std::string::npos);
  HttpReply bad = Api("/mustan?port=%3Cscript%3Ealert(1)%3C/script%3E");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body.find("<script>alert"), std::string::npos);
  EXPECT_NE(bad.body.find("&lt;script&gt;alert"), std::string::npos);
}

// The /findings page has one row per finding the API gives for the period, in both languages.
TEST_F(WebApi, FindingsPageListsTheApiFindings) {
  json api = ApiJson(std::string("/api/v1/findings?period=") + kPeriod);
  for (const char* lang : {"en", "ja"}) {
    HttpReply page = Api(std::string("/findings?period=") + kPeriod + "&lang=" + lang);
    ASSERT_EQ(page.status, 200) << page.body;
    size_t rows = 0;
    for (size_t at = page.body.find("<tr><td>"); at != std::string::npos;
         at = page.body.find("<tr><td>", at + 1)) {
      ++rows;
    }
    EXPECT_EQ(rows, std::max<size_t>(api["findings"].size(), 1)) << lang;
  }
  EXPECT_EQ(Api("/findings?period=2018-13").status, 400);
}

TEST_F(WebApi, BadParametersAre400sNamingThem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/api/v1/top/ports?period=2018Q9", "period"},
      {"/api/v1/top/ports", "period"},
      {"/api/v1/top/ports?period=2018Q3&n=0", "n"},
      {"/api/v1/top/ports?period=2018Q3&n=ten", "n"},
      {"/api/v1/top/ports?period=2018Q3&n=100000", "n"},
      {"/api/v1/top/ports?period=2018Q3&color=red", "color"},
      {"/api/v1/top/ports?period=2018Q3&period=2018Q2", "period"},
      {"/api/v1/top/ports?period=2018Q3&sensor=nosuch", "sensor"},
      {"/api/v1/top/ports?period=2018Q3&group=nosuch", "group"},
      {"/api/v1/top/ports?period=2018Q3&lang=fr", "lang"},
      {"/api/v1/series?period=2018Q3&granularity=fortnight", "granularity"},
      {"/api/v1/series?period=2018Q3&port=99999/tcp", "port"},
      {"/api/v1/series?period=2018Q3&country=Atlantis", "country"},
      {"/api/v1/series?period=2018Q3&sensor_series=nosuch", "sensor_series"},
      {"/api/v1/sources?period=2018Q3", "port"},
      {"/api/v1/ip/not-an-address", "address"},
      {"/api/v1/findings?period=2018-13", "period"},
      {"/api/v1/mustan?end=2018-08", "end"},
      {"/api/v1/mustan?end=2018-08-13&port=telnet!", "port"},
      {"/api/v1/mustan?end=2018-08-13&n=3", "n"},
      {"/api/v1/summary?period=" + std::string(300, '1'), "period"},
  };
  for (const auto& [url, param] : cases) {
    HttpReply r = Api(url);
    EXPECT_EQ(r.status, 400) << url << ": " << r.body;
    json j = r.Json();
    ASSERT_TRUE(j.is_object()) << url << ": " << r.body;
    EXPECT_EQ(j["error"]["parameter"], param) << url << ": " << r.body;
    EXPECT_EQ(j["error"]["status"], 400);
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }
  EXPECT_EQ(Api("/api/v1/top/planets?period=2018Q3").status, 404);
  EXPECT_EQ(Api("/api/v1/nothing").status, 404);
  EXPECT_EQ(Curl(serve_->Url("/api/v1/summary"), "-X POST -d x=1").status, 404);  // read-only
}

TEST_F(WebApi, EveryAnswerCarriesTheSecurityHeaders) {
  for (const std::string& path :
       {std::string("/api/v1/top/ports?period=") + kPeriod, std::string("/?period=") + kPeriod,
        std::string("/nothing"), std::string("/static/teiten.js"),
        std::string("/api/v1/top/ports?period=bad")}) {
    HttpReply r = Api(path);
    SCOPED_TRACE(path);
    std::string csp = r.Header("Content-Security-Policy");
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << r.headers;
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos);
    EXPECT_EQ(r.Header("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(r.Header("X-Frame-Options"), "DENY");
  }
}

TEST_F(WebApi, PagesShowTheApiNumbersInBothLanguages) {
  HttpReply en = Api(std::string("/?period=") + kPeriod);
  ASSERT_EQ(en.status, 200) << en.body;
  json top = ApiJson(std::string("/api/v1/top/ports?period=") + kPeriod);
  // 9,029 packets to 23/TCP, as the API (and the ground truth) count them.
  EXPECT_NE(en.body.find("9,029"), std::string::npos);
  EXPECT_NE(en.body.find("23/TCP (telnet)"), std::string::npos);
  EXPECT_NE(en.body.find("lang=\"en\""), std::string::npos);
  EXPECT_EQ(en.body.find("<script>"), std::string::npos);  // no inline script
  EXPECT_EQ(en.body.find("style=\""), std::string::npos);  // no inline style
  HttpReply ja = Api(std::string("/?period=") + kPeriod + "&lang=ja");
  ASSERT_EQ(ja.status, 200);
  EXPECT_NE(ja.body.find("lang=\"ja\""), std::string::npos);
  EXPECT_NE(ja.body.find("概況"), std::string::npos);
  EXPECT_NE(ja.body.find("9,029"), std::string::npos);
  for (const std::string& p : {std::string("/port?port=445/tcp&period=") + kPeriod,
                               std::string("/sensors"), std::string("/ip?addr=192.0.2.77")}) {
    HttpReply r = Api(p);
    EXPECT_EQ(r.status, 200) << p << ": " << r.body.substr(0, 400);
  }
  HttpReply bad = Api("/?period=2018Q9");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("<code>period</code>"), std::string::npos);
  // Our script and uPlot come from the server itself.
  EXPECT_EQ(Api("/static/uplot.js").status, 200);
  EXPECT_EQ(Api("/static/teiten.js").Header("Content-Type").rfind("text/javascript", 0), 0u);
}

// ---- access -----------------------------------------------------------------------------------

class WebAccess : public WebApi {
 protected:
  void SetUp() override {
    WebApi::SetUp();
    if (IsSkipped()) return;
    users_ = dir_.path() + "/users";
    bool ok = false;
    std::string out = testing::Run("printf '%s\\n' " + Quote(kPassword) + " | " + Quote(Bin()) +
                                       " serve-user --users " + Quote(users_) + " alice 2>&1",
                                   &ok);
    ASSERT_TRUE(ok) << out;
    token_ = testing::Run(Quote(Bin()) + " serve-token --users " + Quote(users_) + " cron", &ok);
    ASSERT_TRUE(ok) << token_;
    while (!token_.empty() && token_.back() == '\n') token_.pop_back();
  }
  static constexpr const char* kPassword = "correct horse battery";
  testing::TempDir dir_;
  std::string users_, token_;
};

TEST_F(WebAccess, LoginsTokensAndSessions) {
  std::string file = Slurp(users_);
  EXPECT_NE(file.find("user alice $argon2id$"), std::string::npos) << file;
  EXPECT_EQ(file.find(kPassword), std::string::npos);
  EXPECT_EQ(file.find(token_), std::string::npos);
  ASSERT_EQ(token_.size(), 3u + 64u) << token_;

  ServeProcess s(Bin(), {"--config", scenario_->config_path, "--users", users_, "--node-modules",
                         NodeModules()});
  ASSERT_TRUE(s.ok()) << s.log();
  std::string api = s.Url(std::string("/api/v1/summary?period=") + kPeriod);
  HttpReply anon = Curl(api);
  EXPECT_EQ(anon.status, 401);
  EXPECT_EQ(anon.Json()["error"]["status"], 401);
  EXPECT_EQ(anon.Header("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(Curl(api, "-H " + Quote("Authorization: Bearer " + token_)).status, 200);
  EXPECT_EQ(Curl(api, "-H " + Quote("Authorization: Bearer tt_" + std::string(64, '0'))).status,
            401);
  HttpReply page = Curl(s.Url("/port?port=23/tcp"));
  EXPECT_EQ(page.status, 303);
  EXPECT_EQ(page.Header("Location"), "/login?next=%2Fport%3Fport%3D23%2Ftcp");
  EXPECT_EQ(Curl(s.Url("/login")).status, 200);

  auto login = [&](const std::string& user, const std::string& pw, const std::string& extra) {
    return Curl(s.Url("/login"), "--data-urlencode " + Quote("user=" + user) +
                                     " --data-urlencode " + Quote("password=" + pw) +
                                     " --data-urlencode 'next=/sensors' " + extra);
  };
  EXPECT_EQ(login("alice", "wrong password", "").status, 401);
  EXPECT_EQ(login("mallory", kPassword, "").status, 401);
  EXPECT_EQ(login("alice", kPassword, "-H 'Origin: http://evil.example'").status, 403);
  HttpReply in = login("alice", kPassword, "");
  ASSERT_EQ(in.status, 303) << in.body;
  EXPECT_EQ(in.Header("Location"), "/sensors");
  std::string cookie = in.Header("Set-Cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << cookie;  // plain HTTP
  std::string pair = cookie.substr(0, cookie.find(';'));
  HttpReply home = Curl(s.Url(std::string("/?period=") + kPeriod), "-b " + Quote(pair));
  EXPECT_EQ(home.status, 200);
  EXPECT_NE(home.body.find("alice"), std::string::npos);
  EXPECT_EQ(Curl(api, "-b " + Quote(pair)).status, 200);
  // An open redirect is not: next must be a path of this site.
  HttpReply away = login("alice", kPassword, "--data-urlencode 'next=//evil.example/'");
  EXPECT_EQ(away.Header("Location"), "/sensors");  // the first next= wins; then:
  HttpReply away2 =
      Curl(s.Url("/login"), "--data-urlencode " + Quote(std::string("user=alice")) +
                                " --data-urlencode " + Quote(std::string("password=") + kPassword) +
                                " --data-urlencode 'next=//evil.example/'");
  EXPECT_EQ(away2.Header("Location"), "/");
  // Logging out ends the session.
  EXPECT_EQ(Curl(s.Url("/logout"), "--data '' -b " + Quote(pair)).status, 303);
  EXPECT_EQ(Curl(s.Url("/"), "-b " + Quote(pair)).status, 303);
  // Bodies are bounded.
  std::string big = dir_.path() + "/big";
  std::ofstream(big) << "user=" << std::string(20000, 'a');
  EXPECT_EQ(Curl(s.Url("/login"), "--data-binary @" + Quote(big)).status, 413);
}

TEST_F(WebAccess, PublicModeServesAggregatesOnly) {
  ServeProcess s(Bin(), {"--config", scenario_->config_path, "--users", users_, "--public",
                         "--node-modules", NodeModules()});
  ASSERT_TRUE(s.ok()) << s.log();
  EXPECT_EQ(Curl(s.Url(std::string("/api/v1/top/ports?period=") + kPeriod)).status, 200);
  EXPECT_EQ(Curl(s.Url(std::string("/?period=") + kPeriod)).status, 200);
  EXPECT_EQ(Curl(s.Url("/api/v1/ip/192.0.2.1")).status, 403);
  EXPECT_EQ(Curl(s.Url(std::string("/api/v1/sources?port=23/tcp&period=") + kPeriod)).status, 403);
  EXPECT_EQ(Curl(s.Url("/ip?addr=192.0.2.1")).status, 403);
  const std::string notify = std::string("/api/v1/notify?country=JP&period=") + kPeriod;
  EXPECT_EQ(Curl(s.Url(notify)).status, 403);
  EXPECT_EQ(Curl(s.Url(std::string("/api/v1/notify/csv?country=JP&period=") + kPeriod)).status,
            403);
  HttpReply port = Curl(s.Url(std::string("/port?port=9600/tcp&period=") + kPeriod));
  EXPECT_EQ(port.status, 200);
  EXPECT_EQ(port.body.find("top-sources"), std::string::npos);
  HttpReply f = Curl(s.Url(std::string("/api/v1/findings?period=") + kPeriod));
  ASSERT_EQ(f.status, 200);
  const json fj = f.Json();  // (a range-for over a temporary's member would outlive it)
  ASSERT_TRUE(fj.is_object());
  for (const json& x : fj["findings"]) EXPECT_FALSE(x.contains("top_sources"));
  // A script with its token sees everything.
  std::string auth = "-H " + Quote("Authorization: Bearer " + token_);
  EXPECT_EQ(Curl(s.Url("/api/v1/ip/192.0.2.1"), auth).status, 200);
  EXPECT_EQ(Curl(s.Url(notify), auth).status, 200);
}

TEST_F(WebAccess, RefusesAnOpenServerBeyondLoopback) {
  ServeProcess s(Bin(), {"--config", scenario_->config_path, "--listen", "0.0.0.0:0"});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.exit_code(), 2);
  EXPECT_NE(s.log().find("loopback"), std::string::npos) << s.log();
  ServeProcess bad(Bin(), {"--config", scenario_->config_path, "--users", dir_.path() + "/none"});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.log().find(dir_.path() + "/none"), std::string::npos) << bad.log();
  std::ofstream(dir_.path() + "/broken") << "user alice $argon2id$x\nuser bob\n";
  ServeProcess broken(Bin(),
                      {"--config", scenario_->config_path, "--users", dir_.path() + "/broken"});
  EXPECT_FALSE(broken.ok());
  EXPECT_NE(broken.log().find(dir_.path() + "/broken:2:"), std::string::npos) << broken.log();
}

TEST_F(WebAccess, TlsMarksTheCookieSecure) {
  if (!testing::HaveCommand("openssl")) GTEST_SKIP() << "openssl missing";
  std::string key = dir_.path() + "/key.pem", cert = dir_.path() + "/cert.pem";
  bool ok = false;
  std::string out = testing::Run(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "
      "/CN=localhost -keyout " +
          Quote(key) + " -out " + Quote(cert) + " 2>&1",
      &ok);
  ASSERT_TRUE(ok) << out;
  ServeProcess s(Bin(), {"--config", scenario_->config_path, "--users", users_, "--tls-cert", cert,
                         "--tls-key", key});
  ASSERT_TRUE(s.ok()) << s.log();
  std::string base = "https://127.0.0.1:" + std::to_string(s.port());
  HttpReply in = Curl(base + "/login", "-k --data-urlencode 'user=alice' --data-urlencode " +
                                           Quote(std::string("password=") + kPassword));
  ASSERT_EQ(in.status, 303) << in.body;
  std::string cookie = in.Header("Set-Cookie");
  EXPECT_EQ(cookie.rfind("__Host-teiten_session=", 0), 0u) << cookie;
  EXPECT_NE(cookie.find("; Secure"), std::string::npos) << cookie;
  EXPECT_NE(in.Header("Strict-Transport-Security"), "");
  EXPECT_EQ(Curl("http://127.0.0.1:" + std::to_string(s.port()) + "/login").status, 0);
}

// ---- a store of our own: attacker strings in the config, commits while serving ----------------

class WebOwnStore : public ::testing::Test {
 protected:
  void SetUp() override {
    pcaps_ = testing::SharedPcapDir();
    if (!fs::exists(pcaps_ + "/tcp_0_1000_20190821.pcap")) GTEST_SKIP() << "no ../shared pcaps";
    config_ = dir_.path() + "/teiten.toml";
    std::ofstream(config_) << "[store]\npath = \"" << dir_.path()
                           << "/store\"\ntimezone = \"UTC\"\n[[sensor]]\nid = \"evil\"\n"
                           << "name = \"<img src=x onerror=alert(1)>\"\n"
                           << "group = \"\\\"><script>alert(2)</script>\"\n"
                           << "prefixes = [\"0.0.0.0/0\"]\n";
  }
  void Ingest(const std::string& file) {
    bool ok = false;
    std::string out = Cli(
        "ingest --config " + Quote(config_) + " --sensor evil " + Quote(pcaps_ + "/" + file), &ok);
    ASSERT_TRUE(ok) << out;
  }
  // Frames in a capture, by tshark.
  uint64_t Frames(const std::string& file) {
    bool ok = false;
    std::string out =
        testing::Run("tshark -n -r " + Quote(pcaps_ + "/" + file) + " 2>/dev/null | wc -l", &ok);
    return std::stoull(out);
  }
  testing::TempDir dir_;
  std::string pcaps_, config_;
};

TEST_F(WebOwnStore, SeesCommitsMadeWhileServing) {
  if (!testing::HaveCommand("tshark")) GTEST_SKIP() << "tshark missing";
  Ingest("tcp_0_1000_20190821.pcap");
  ServeProcess s(Bin(), {"--config", config_});
  ASSERT_TRUE(s.ok()) << s.log();
  std::string url = s.Url("/api/v1/summary?period=2019-08-21");
  HttpReply first = Curl(url);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.Json()["packets"], Frames("tcp_0_1000_20190821.pcap"));
  Ingest("udp_0_1000_20190821.pcap");
  HttpReply second = Curl(url);
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(second.Json()["packets"],
            Frames("tcp_0_1000_20190821.pcap") + Frames("udp_0_1000_20190821.pcap"));
}

TEST_F(WebOwnStore, AttackerStringsFromTheConfigAreEscaped) {
  Ingest("tcp_0_1000_20190821.pcap");
  ServeProcess s(Bin(), {"--config", config_});
  ASSERT_TRUE(s.ok()) << s.log();
  HttpReply api = Curl(s.Url("/api/v1/sensors"));
  ASSERT_EQ(api.status, 200);
  EXPECT_EQ(api.Json()["sensors"][0]["group"], "\"><script>alert(2)</script>");  // data, as is
  HttpReply page = Curl(s.Url("/sensors"));
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.body.find("<script>alert"), std::string::npos) << page.body;
  EXPECT_EQ(page.body.find("<img src=x"), std::string::npos);
  EXPECT_NE(page.body.find("&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"), std::string::npos)
      << page.body;
  // The overview names the sensor in a chart's API URL: encoded, then escaped.
  HttpReply home = Curl(s.Url("/?period=2019-08-21"));
  ASSERT_EQ(home.status, 200) << home.body;
  EXPECT_NE(home.body.find("sensor_series=evil"), std::string::npos);
}

}  // namespace
}  // namespace teiten::web_test
