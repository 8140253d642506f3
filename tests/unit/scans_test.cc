// Scans (analysis/scans.h) on hand-made traffic whose scans are known by construction: each
// expectation below is counted by hand from the packets the test writes.
#include "analysis/scans.h"

#include <gtest/gtest.h>

#include "row_test_support.h"

namespace teiten {
namespace {

using namespace row_testing;

constexpr uint32_t kA = 0x0A000001, kB = 0x0A000002, kC = 0x0A000003, kD = 0x0A000004,
                   kE = 0x0A000005, kF = 0x0A000006;
const std::vector<uint8_t> kMssOnly = {2, 4, 0x05, 0xb4};

std::vector<Raw> Traffic() {
  std::vector<Raw> v;
  int64_t t0 = kAug12Jst + 3600 * kS;
  // A: ZMap (IP ID 54321) on 23/tcp, 50 addresses at 1/s: one scan of 50. Then, 481 s after its
  // last probe, 9 more addresses: a new candidate below N = 10, so not a scan.
  for (uint32_t i = 0; i < 50; ++i) {
    v.push_back({.ts_us = t0 + i * kS, .src = kA, .dst = kNet + i, .dport = 23, .ip_id = 54321});
  }
  int64_t t1 = t0 + 49 * kS + 481 * kS;
  for (uint32_t i = 0; i < 9; ++i) {
    v.push_back(
        {.ts_us = t1 + i * kS, .src = kA, .dst = kNet + 100 + i, .dport = 23, .ip_id = 54321});
  }
  // B: Masscan (IP ID = dst ^ dport ^ seq) to exactly N = 10 addresses on 445/tcp: a scan.
  for (uint32_t i = 0; i < 10; ++i) {
    uint32_t dst = kNet + 200 + i, seq = 0x12345678u * (i + 1);
    v.push_back({.ts_us = t0 + i * kS,
                 .src = kB,
                 .dst = dst,
                 .dport = 445,
                 .seq = seq,
                 .ip_id = static_cast<uint16_t>((dst ^ 445u ^ seq) & 0xffff)});
  }
  // C: 30 SYN-ACKs to 30 addresses: backscatter, not probes.
  for (uint32_t i = 0; i < 30; ++i) {
    v.push_back({.ts_us = t0 + i * kS,
                 .src = kC,
                 .dst = kNet + i,
                 .sport = 80,
                 .dport = 40000,
                 .tcp_flags = 0x12});
  }
  // D: 20 probes to one address: one distinct address, not a scan.
  for (uint32_t i = 0; i < 20; ++i) {
    v.push_back({.ts_us = t0 + i * kS, .src = kD, .dst = kNet + 7, .dport = 80});
  }
  // E: Nmap-like (window 1024, MSS only) on 22/tcp, 6 + 6 addresses with a gap of exactly 480 s:
  // still one scan of 12. F: the same with 481 s: two candidates of 6, no scan.
  for (uint32_t src : {kE, kF}) {
    int64_t gap = src == kE ? 480 : 481;
    for (uint32_t i = 0; i < 12; ++i) {
      int64_t ts = t0 + i * kS + (i >= 6 ? (gap - 1) * kS : 0);
      v.push_back({.ts_us = ts,
                   .src = src,
                   .dst = kNet + 20 + i,
                   .dport = 22,
                   .window = 1024,
                   .options = kMssOnly});
    }
  }
  // A UDP scan from D on 53/udp over 16 addresses, 2 probes each (32 probes, 16 addresses).
  for (uint32_t i = 0; i < 32; ++i) {
    v.push_back({.ts_us = t0 + i * kS,
                 .src = kD,
                 .dst = kNet + 64 + i / 2,
                 .proto = 17,
                 .dport = 53,
                 .payload = {1, 2, 3, 4}});
  }
  return v;
}

class ScansTest : public RowStoreTest {};

TEST(ScanThresholdTest, ScalesDurumericsHundredPerSlash8WithAFloor) {
  EXPECT_EQ(ScanThreshold(uint64_t{1} << 24), 100u);  // their /8
  EXPECT_EQ(ScanThreshold(uint64_t{1} << 26), 400u);  // a /6
  EXPECT_EQ(ScanThreshold(uint64_t{1} << 16), 10u);   // a /16: 0.39 scaled, the floor holds
  EXPECT_EQ(ScanThreshold(256), 10u);                 // a /24
  EXPECT_EQ(ScanThreshold(4), 4u);                    // a /30: every address
  EXPECT_EQ(ScanThreshold(1), 2u);                    // one address: nothing can be a scan
}

TEST(ProbeToolTest, EachRuleOnItsOwnFields) {
  Observation o;
  o.proto = 6;
  o.dst = IpAddr::V4(kNet + 5);
  o.dport = 23;
  o.seq = 99;
  o.ip_id = 54321;
  EXPECT_EQ(GuessProbeTool(o, ""), ProbeTool::kZmap);
  o.seq = kNet + 5;
  EXPECT_EQ(GuessProbeTool(o, ""), ProbeTool::kMirai);
  o.seq = 0xDEADBEEF;
  o.ip_id = static_cast<uint16_t>(((kNet + 5) ^ 23u ^ 0xDEADBEEFu) & 0xffff);
  EXPECT_EQ(GuessProbeTool(o, ""), ProbeTool::kMasscan);
  o.ip_id = 7;
  o.window = 1024;
  EXPECT_EQ(GuessProbeTool(o, std::string_view("\x02\x04\x05\xb4", 4)), ProbeTool::kNmap);
  EXPECT_EQ(GuessProbeTool(o, std::string_view("\x02\x04\x05\xb4\x01\x01\x04\x02", 8)),
            ProbeTool::kUnknown);
}

TEST_F(ScansTest, FindsExactlyTheScansBuiltIn) {
  const Store& s = Build(Traffic());
  EXPECT_EQ(MonitoredAddresses(s, {}), 256u);
  auto r = FindScans(s, *ParsePeriod("2018-08-12"), {}, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->threshold, 10u);
  ASSERT_EQ(r->scans.size(), 4u);
  // By addresses, most first: A (50), D's UDP (16), E (12), B (10).
  const Scan& a = r->scans[0];
  EXPECT_EQ(a.src, IpAddr::V4(kA));
  EXPECT_EQ(a.port, MakePortKey(6, 23));
  EXPECT_EQ(a.packets, 50u);
  EXPECT_EQ(a.addresses, 50u);
  EXPECT_DOUBLE_EQ(a.coverage, 50.0 / 256);
  EXPECT_EQ(a.end_us - a.start_us, 49 * kS);
  EXPECT_DOUBLE_EQ(a.rate_pps, 50.0 / 49);
  EXPECT_EQ(a.tool, ProbeTool::kZmap);
  const Scan& udp = r->scans[1];
  EXPECT_EQ(udp.src, IpAddr::V4(kD));
  EXPECT_EQ(udp.port, MakePortKey(17, 53));
  EXPECT_EQ(udp.packets, 32u);
  EXPECT_EQ(udp.addresses, 16u);
  EXPECT_EQ(udp.tool, ProbeTool::kUnknown);
  const Scan& e = r->scans[2];
  EXPECT_EQ(e.src, IpAddr::V4(kE));
  EXPECT_EQ(e.addresses, 12u);
  EXPECT_EQ(e.end_us - e.start_us, (11 + 479) * kS);
  EXPECT_EQ(e.tool, ProbeTool::kNmap);
  const Scan& b = r->scans[3];
  EXPECT_EQ(b.src, IpAddr::V4(kB));
  EXPECT_EQ(b.port, MakePortKey(6, 445));
  EXPECT_EQ(b.addresses, 10u);
  EXPECT_EQ(b.tool, ProbeTool::kMasscan);
  // Per port: one scan each on 23, 53, 22 and 445.
  ASSERT_EQ(r->ports.size(), 4u);
  for (const PortScans& p : r->ports) {
    EXPECT_EQ(p.scans, 1u);
    EXPECT_EQ(p.scanners, 1u);
  }
  // Probes read: everything but C's 30 SYN-ACKs.
  EXPECT_EQ(r->probes, 50u + 9 + 10 + 20 + 24 + 32);
}

TEST_F(ScansTest, PortThresholdAndTimeoutOptions) {
  const Store& s = Build(Traffic());
  auto p = FindScans(s, *ParsePeriod("2018-08-12"), {}, {.port = MakePortKey(6, 22)});
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->scans.size(), 1u);
  EXPECT_EQ(p->probes, 24u);
  // A longer timeout joins F's halves; a threshold of 9 makes A's second burst a scan of its own.
  auto longer =
      FindScans(s, *ParsePeriod("2018-08-12"), {}, {.port = MakePortKey(6, 22), .timeout_s = 481});
  ASSERT_TRUE(longer.ok());
  EXPECT_EQ(longer->scans.size(), 2u);
  auto low = FindScans(s, *ParsePeriod("2018-08-12"), {},
                       {.port = MakePortKey(6, 23), .min_addresses = 9});
  ASSERT_TRUE(low.ok());
  ASSERT_EQ(low->scans.size(), 2u);
  EXPECT_EQ(low->scans[1].addresses, 9u);
  // Another day holds nothing.
  auto other = FindScans(s, *ParsePeriod("2018-08-13"), {}, {});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->scans.empty());
}

TEST_F(ScansTest, ScanRowsPassesEveryRowOnceAndHonoursTheSensorSelection) {
  const Store& s = Build(Traffic());
  uint64_t rows = 0;
  ASSERT_TRUE(ScanRows(s, *ParsePeriod("2018-08-12"), {}, col::kTs, [&](const DecodedBlock& b) {
                rows += b.batch.rows.size();
              }).ok());
  EXPECT_EQ(rows, Traffic().size());
  uint64_t none = 0;
  SensorSelection other{{7}};  // a sensor index the store does not hold
  ASSERT_TRUE(ScanRows(s, *ParsePeriod("2018-08-12"), other, col::kTs, [&](const DecodedBlock& b) {
                none += b.batch.rows.size();
              }).ok());
  EXPECT_EQ(none, 0u);
}

}  // namespace
}  // namespace teiten
