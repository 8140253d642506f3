// What the row analysis tests share (scans_test.cc, dos_test.cc, payloads_test.cc): IPv4
// packets with every header field the analyses read set by hand, written to a capture and
// ingested into a store in a temporary directory, as a sensor would deliver them.
#pragma once

#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <memory>
#include <string>
#include <vector>

#include "analysis/query.h"
#include "ingest/ingest.h"
#include "test_support.h"

namespace teiten::row_testing {

constexpr int64_t kS = 1000000;
// 2018-08-12 00:00:00 JST = 2018-08-11T15:00:00Z
constexpr int64_t kAug12Jst = 1533999600LL * kS;
constexpr uint32_t kNet = 0xCB007100;  // 203.0.113.0/24, the sensor's darknet

struct Raw {
  int64_t ts_us = kAug12Jst;
  uint32_t src = 0, dst = kNet;
  uint8_t proto = 6;
  uint16_t sport = 40000, dport = 23;
  uint8_t tcp_flags = 0x02;
  uint32_t seq = 1, ack = 0;
  uint16_t ip_id = 1, window = 29200;
  uint8_t ttl = 64;
  uint8_t icmp_type = 0, icmp_code = 0;
  std::vector<uint8_t> options;  // TCP options, a multiple of 4 bytes
  std::vector<uint8_t> payload;  // after the TCP/UDP/ICMP header
};

// Writes into the frame by offset (not through a pointer into it: GCC's -Wnull-dereference cannot
// see that a sized vector's data is not null).
inline void Set16(std::vector<uint8_t>& f, size_t at, uint32_t v) {
  f.at(at) = static_cast<uint8_t>(v >> 8);
  f.at(at + 1) = static_cast<uint8_t>(v);
}
inline void Set32(std::vector<uint8_t>& f, size_t at, uint32_t v) {
  Set16(f, at, v >> 16);
  Set16(f, at + 2, v & 0xffff);
}

inline std::vector<uint8_t> Frame(const Raw& r) {
  const size_t th = r.proto == 6 ? 20 + r.options.size() : 8;
  const size_t ip_len = 20 + th + r.payload.size();
  const size_t ip = 14, t = ip + 20;
  std::vector<uint8_t> f(14 + ip_len, 0);
  f.at(12) = 0x08;
  f.at(ip) = 0x45;
  Set16(f, ip + 2, static_cast<uint32_t>(ip_len));
  Set16(f, ip + 4, r.ip_id);
  f.at(ip + 8) = r.ttl;
  f.at(ip + 9) = r.proto;
  Set32(f, ip + 12, r.src);
  Set32(f, ip + 16, r.dst);
  if (r.proto == 6) {
    Set16(f, t, r.sport);
    Set16(f, t + 2, r.dport);
    Set32(f, t + 4, r.seq);
    Set32(f, t + 8, r.ack);
    f.at(t + 12) = static_cast<uint8_t>((th / 4) << 4);
    f.at(t + 13) = r.tcp_flags;
    Set16(f, t + 14, r.window);
    std::copy(r.options.begin(), r.options.end(), f.begin() + static_cast<long>(t + 20));
  } else if (r.proto == 17) {
    Set16(f, t, r.sport);
    Set16(f, t + 2, r.dport);
    Set16(f, t + 4, static_cast<uint32_t>(8 + r.payload.size()));
  } else {
    f.at(t) = r.icmp_type;
    f.at(t + 1) = r.icmp_code;
  }
  std::copy(r.payload.begin(), r.payload.end(), f.begin() + static_cast<long>(t + th));
  return f;
}

inline void WritePcap(const std::string& path, const std::vector<Raw>& pkts) {
  pcap_t* dead =
      pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_MICRO);
  pcap_dumper_t* d = pcap_dump_open(dead, path.c_str());
  for (const Raw& p : pkts) {
    auto f = Frame(p);
    pcap_pkthdr h{};
    h.ts.tv_sec = p.ts_us / kS;
    h.ts.tv_usec = p.ts_us % kS;
    h.caplen = h.len = static_cast<uint32_t>(f.size());
    pcap_dump(reinterpret_cast<u_char*>(d), &h, f.data());
  }
  pcap_dump_close(d);
  pcap_close(dead);
}

// A store holding `pkts` as one sensor's capture of 203.0.113.0/24.
class RowStoreTest : public ::testing::Test {
 protected:
  const Store& Build(const std::vector<Raw>& pkts) {
    auto s = Store::Open(dir_.path() + "/store", {.create = true, .timezone = "Asia/Tokyo"});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    WritePcap(dir_.path() + "/in.pcap", pkts);
    SensorConfig sensor{
        "tyo1", "tyo1", "domestic", "JP", SensorMode::kDarknet, {*Prefix::Parse("203.0.113.0/24")}};
    Ingester ing(store_.get(), nullptr);
    auto r = ing.IngestFile(sensor, dir_.path() + "/in.pcap");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    // Read back as a query would: a fresh snapshot of the committed store.
    store_.reset();
    auto again = Store::Open(dir_.path() + "/store", {});
    EXPECT_TRUE(again.ok()) << again.status().ToString();
    store_ = std::move(*again);
    return *store_;
  }
  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

}  // namespace teiten::row_testing
