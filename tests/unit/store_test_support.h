// What the store tests share (store_test.cc, store_integrity_test.cc, store_scale_test.cc):
// hand-made captures, the fixture with a store in a temporary directory, and queries' answers as
// text for comparing two stores.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <xxhash.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "analysis/query.h"
#include "ingest/ingest.h"
#include "store/manifest_json.h"
#include "test_support.h"

namespace teiten::store_testing {

namespace fs = std::filesystem;

struct Pkt {
  int64_t ts_us;
  uint32_t src, dst;
  uint8_t proto;
  uint16_t dport;
};

inline std::vector<uint8_t> Frame(const Pkt& p) {
  std::vector<uint8_t> f(14 + 20 + 20, 0);
  f[12] = 0x08;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  ip[3] = 40;
  ip[8] = 64;
  ip[9] = p.proto;
  for (int i = 0; i < 4; ++i) {
    ip[12 + i] = static_cast<uint8_t>(p.src >> (24 - 8 * i));
    ip[16 + i] = static_cast<uint8_t>(p.dst >> (24 - 8 * i));
  }
  uint8_t* t = ip + 20;
  t[2] = static_cast<uint8_t>(p.dport >> 8);
  t[3] = static_cast<uint8_t>(p.dport);
  if (p.proto == 6) {
    t[12] = 0x50;
    t[13] = 0x02;
  } else {
    t[5] = 20;
  }
  return f;
}

inline void WritePcap(const std::string& path, const std::vector<Pkt>& pkts) {
  pcap_t* dead =
      pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_MICRO);
  pcap_dumper_t* d = pcap_dump_open(dead, path.c_str());
  for (const Pkt& p : pkts) {
    auto f = Frame(p);
    pcap_pkthdr h{};
    h.ts.tv_sec = p.ts_us / 1000000;
    h.ts.tv_usec = p.ts_us % 1000000;
    h.caplen = h.len = static_cast<uint32_t>(f.size());
    pcap_dump(reinterpret_cast<u_char*>(d), &h, f.data());
  }
  pcap_dump_close(d);
  pcap_close(dead);
}

constexpr int64_t kS = 1000000;
// 2018-08-12 00:00:00 JST = 2018-08-11T15:00:00Z
constexpr int64_t kAug12Jst = 1533999600LL * kS;
constexpr uint32_t kNet = 0xCB007100;  // 203.0.113.0/24

inline SensorConfig Sensor(const std::string& id = "tyo1", const std::string& group = "domestic") {
  return {id, id, group, "JP", SensorMode::kDarknet, {*Prefix::Parse("203.0.113.0/24")}};
}

class StoreTest : public ::testing::Test {
 protected:
  Store& Open() {
    auto s = Store::Open(dir_.path() + "/store", {.create = true, .timezone = "Asia/Tokyo"});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    return *store_;
  }
  IngestSummary Ingest(const std::string& file, const SensorConfig& s = Sensor()) {
    Ingester ing(store_.get(), nullptr);
    auto r = ing.IngestFile(s, file);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : IngestSummary{};
  }
  std::string Path(const std::string& name) { return dir_.path() + "/" + name; }
  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

// What a query answers, as text, for comparing a damaged store with the undamaged one.
inline Result<std::string> Answers(const Store& s, const IpAddr& src) {
  std::string out;
  for (Dimension d : {Dimension::kPort, Dimension::kCountry, Dimension::kSensor}) {
    ASSIGN_OR_RETURN(TopResult t, Top(s, d, *ParsePeriod("2018Q3"), {}, 50));
    out += fmt::format("{} {} {}\n", DimensionName(d), t.total_packets, t.total_sources);
    for (const auto& r : t.rows) {
      out += fmt::format("{} {} {} {}\n", r.key, r.packets, r.sources, r.prev_rank);
    }
  }
  ASSIGN_OR_RETURN(IpHistory h, SourceHistory(s, src));
  out += fmt::format("ip {} {} {} {}\n", h.seen, h.packets, h.first_us, h.last_us);
  for (const auto& [k, n] : h.ports) out += fmt::format("p {} {}\n", k, n);
  for (const auto& [k, n] : h.days) out += fmt::format("d {} {}\n", k, n);
  return out;
}

inline uint64_t PortTotal(const Store& s, const char* period) {
  auto top = Top(s, Dimension::kPort, *ParsePeriod(period), {}, 10);
  EXPECT_TRUE(top.ok()) << top.status().ToString();
  return top.ok() ? top->total_packets : 0;
}

// Every answer the queries give over a quarter, by day and by sensor, as text.
inline std::string FullAnswers(const Store& s) {
  std::string out = *Answers(s, IpAddr::V4(0x06000001u));
  auto q = *ParsePeriod("2018Q3");
  for (const char* p : {"2018Q3", "2018-08", "2018-08-12", "2018-08-10..2018-08-13"}) {
    for (Dimension d : {Dimension::kPort, Dimension::kCountry, Dimension::kSensor}) {
      auto t = Top(s, d, *ParsePeriod(p), {}, 20);
      EXPECT_TRUE(t.ok()) << t.status().ToString();
      out += fmt::format("{} {} {} {}\n", p, DimensionName(d), t->total_packets, t->total_sources);
      for (const auto& r : t->rows) out += fmt::format(" {} {} {}\n", r.key, r.packets, r.sources);
    }
  }
  auto series = Series(s, Dimension::kPort, {MakePortKey(6, 23), MakePortKey(6, 445)}, q,
                       Granularity::kDay, {});
  for (const auto& pt : series->points) {
    out += fmt::format("{} {} {} {} {}\n", pt.label, pt.packets[0], pt.sources[0], pt.packets[1],
                       pt.sources[1]);
  }
  auto sum = Summary(s, q, {}, 10);
  out += fmt::format("summary {} {} {} {:.6f} {:.6f}\n", sum->packets, sum->sources,
                     sum->sensor_days, sum->packets_per_sensor_day, sum->sources_per_sensor_day);
  auto by_tyo = ResolveSensors(s, {"tyo1"}, {});
  auto t = Top(s, Dimension::kPort, q, *by_tyo, 20);
  out += fmt::format("tyo1 {} {}\n", t->total_packets, t->total_sources);
  // Heavy hitters are a summary: merging parts may change the counts it keeps, never beyond the
  // error it states. Check that against a scan instead of comparing the text.
  auto heavy = TopSources(s, MakePortKey(6, 23), q, {}, 5);
  auto exact = TopSourcesExact(s, MakePortKey(6, 23), q, {}, 1000);
  EXPECT_TRUE(heavy.ok() && exact.ok());
  // After retention the scan sees only the days whose observations remain.
  if (s.manifest().segments_from != INT32_MIN) return out;
  for (const auto& h : *heavy) {
    auto it = std::find_if(exact->begin(), exact->end(),
                           [&](const SourceCount& e) { return e.addr == h.addr; });
    EXPECT_NE(it, exact->end());
    if (it == exact->end()) continue;
    EXPECT_GE(it->packets, h.packets);
    EXPECT_LE(it->packets, h.packets + h.error);
  }
  return out;
}

// `n` small captures over three days at two sensors; the same packets also in one capture.
inline void WriteSmallCaptures(const std::string& dir, int n) {
  std::vector<Pkt> all;
  for (int f = 0; f < n; ++f) {
    std::vector<Pkt> pkts;
    for (uint32_t i = 0; i < 40; ++i) {
      uint32_t k = static_cast<uint32_t>(f) * 40 + i;
      pkts.push_back({kAug12Jst + int64_t{f % 3} * 86400 * kS + k,
                      0x06000000u + k % 97 + (k % 5) * 1000, kNet + (k & 0xFF),
                      static_cast<uint8_t>(k % 6 ? 6 : 17),
                      static_cast<uint16_t>(k % 4 == 0   ? 445
                                            : k % 4 == 1 ? 23
                                                         : 1000 + k % 13)});
    }
    WritePcap(fmt::format("{}/s{}.pcap", dir, f), pkts);
    all.insert(all.end(), pkts.begin(), pkts.end());
  }
  WritePcap(dir + "/all.pcap", all);
}

inline std::string Slurp(const std::string& path) {
  return testing::Run("cat " + path);
}
inline void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A store's manifest as one document of format 3 (without its checksum member), as a teiten
// before chapters wrote it: for tests that make an older store's manifest by editing it.
inline std::string WholeManifest(const std::string& store_dir) {
  auto s = Store::Open(store_dir, {});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? ManifestJson((*s)->manifest()) : "";
}
// A sealed manifest or chapter (text ending in its checksum member) without that member, and a
// text sealed as the store seals it.
inline std::string Unsealed(const std::string& text) {
  return text.substr(0, text.rfind(",\n \"checksum\"")) + "\n}";
}
inline std::string Sealed(std::string body) {  // body ends "\n}"
  uint64_t sum = XXH64(body.data(), body.size(), 0);
  body.resize(body.size() - 2);
  return body + fmt::format(",\n \"checksum\": \"{:016x}\"\n}}", sum);
}

}  // namespace teiten::store_testing
