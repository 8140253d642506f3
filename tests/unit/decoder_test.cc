#include "capture/decoder.h"

#include <gtest/gtest.h>
#include <pcap/dlt.h>

#include <random>

namespace teiten {
namespace {

std::vector<uint8_t> Ipv4Tcp(uint32_t src, uint32_t dst, uint16_t dport, uint32_t seq,
                             std::vector<uint8_t> opts, uint16_t frag = 0) {
  std::vector<uint8_t> p(20 + 20 + opts.size());
  size_t total = p.size();
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>(total >> 8);
  p[3] = static_cast<uint8_t>(total);
  p[4] = 0xD4;  // IP ID 54321
  p[5] = 0x31;
  p[6] = static_cast<uint8_t>(frag >> 8);
  p[7] = static_cast<uint8_t>(frag);
  p[8] = 255;
  p[9] = 6;
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = static_cast<uint8_t>(src >> (24 - 8 * i));
    p[16 + i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
  }
  uint8_t* t = p.data() + 20;
  t[0] = 0x9c;
  t[1] = 0x40;
  t[2] = static_cast<uint8_t>(dport >> 8);
  t[3] = static_cast<uint8_t>(dport);
  for (int i = 0; i < 4; ++i) t[4 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
  t[12] = static_cast<uint8_t>(((20 + opts.size()) / 4) << 4);
  t[13] = 0x02;
  t[14] = 0x04;  // window 1024
  t[15] = 0x00;
  std::copy(opts.begin(), opts.end(), t + 20);
  return p;
}

std::vector<uint8_t> Ether(std::vector<uint8_t> ip, std::vector<uint16_t> vlans = {},
                           uint16_t type = 0x0800) {
  std::vector<uint8_t> f(12, 0);
  for (uint16_t v : vlans) {
    f.push_back(0x81);
    f.push_back(0x00);
    f.push_back(static_cast<uint8_t>(v >> 8));
    f.push_back(static_cast<uint8_t>(v));
  }
  f.push_back(static_cast<uint8_t>(type >> 8));
  f.push_back(static_cast<uint8_t>(type));
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

TEST(Decoder, EthernetQinQTcpKeepsHeaderFieldsAndOptions) {
  Decoder d;
  ObservationBatch b;
  Observation o;
  auto frame = Ether(Ipv4Tcp(0x01020304, 0xCB007107, 23, 0xCB007107, {2, 4, 5, 0xb4}), {10, 20});
  ASSERT_TRUE(d.Decode(DLT_EN10MB, 42, frame.data(), static_cast<uint32_t>(frame.size()),
                       static_cast<uint32_t>(frame.size()), &o, &b.blob));
  EXPECT_EQ(o.src.ToString(), "1.2.3.4");
  EXPECT_EQ(o.dst.ToString(), "203.0.113.7");
  EXPECT_EQ(o.proto, 6);
  EXPECT_EQ(o.dport, 23);
  EXPECT_EQ(o.sport, 40000);
  EXPECT_EQ(o.seq, 0xCB007107u);  // Mirai's rule: seq == destination
  EXPECT_EQ(o.ip_id, 54321);
  EXPECT_EQ(o.ttl, 255);
  EXPECT_EQ(o.window, 1024);
  EXPECT_EQ(o.tcp_flags, tcp_flag::kSyn);
  ASSERT_EQ(o.opt_len, 4);
  EXPECT_EQ(b.Options(o), std::string("\x02\x04\x05\xb4", 4));
  EXPECT_EQ(o.payload_len, 0);
}

TEST(Decoder, NonFirstFragmentIsKeptWithoutPorts) {
  Decoder d;
  std::vector<uint8_t> blob;
  Observation o;
  auto frame = Ether(Ipv4Tcp(0x01020304, 0x05060708, 80, 1, {}, 0x00B9));  // offset 185*8
  ASSERT_TRUE(d.Decode(DLT_EN10MB, 0, frame.data(), static_cast<uint32_t>(frame.size()),
                       static_cast<uint32_t>(frame.size()), &o, &blob));
  EXPECT_TRUE(o.flags & obs_flag::kFragment);
  EXPECT_EQ(PortKeyToString(PortKeyOf(o)), "TCP/-");
  EXPECT_EQ(d.stats().Get(Anomaly::kFragment), 1u);
}

TEST(Decoder, TruncationsAreCountedNotFatal) {
  Decoder d;
  std::vector<uint8_t> blob;
  Observation o;
  auto frame = Ether(Ipv4Tcp(1, 2, 3, 4, {}));
  // Cut inside the IPv4 header: dropped.
  EXPECT_FALSE(d.Decode(DLT_EN10MB, 0, frame.data(), 14 + 10, 14 + 10, &o, &blob));
  EXPECT_EQ(d.stats().Get(Anomaly::kTruncatedIpHeader), 1u);
  // Cut inside TCP by the snap length: kept without ports.
  EXPECT_TRUE(d.Decode(DLT_EN10MB, 0, frame.data(), 14 + 20 + 8,
                       static_cast<uint32_t>(frame.size()), &o, &blob));
  EXPECT_TRUE(o.flags & obs_flag::kNoTransport);
  EXPECT_EQ(d.stats().Get(Anomaly::kTruncatedTransport), 1u);
  // Not IP at all.
  auto arp = Ether({0, 1, 8, 0, 6, 4, 0, 1}, {}, 0x0806);
  EXPECT_FALSE(d.Decode(DLT_EN10MB, 0, arp.data(), static_cast<uint32_t>(arp.size()),
                        static_cast<uint32_t>(arp.size()), &o, &blob));
  EXPECT_EQ(d.stats().Get(Anomaly::kNotIp), 1u);
  // IHL of 4 words.
  auto bad = Ipv4Tcp(1, 2, 3, 4, {});
  bad[0] = 0x44;
  EXPECT_FALSE(d.Decode(DLT_RAW, 0, bad.data(), static_cast<uint32_t>(bad.size()),
                        static_cast<uint32_t>(bad.size()), &o, &blob));
  EXPECT_EQ(d.stats().Get(Anomaly::kBadIpHeaderLength), 1u);
}

TEST(Decoder, Ipv6ExtensionHeadersAndFragmentHeader) {
  std::vector<uint8_t> p(40 + 8 + 8 + 8);
  p[0] = 0x60;
  p[5] = static_cast<uint8_t>(p.size() - 40);
  p[6] = 0;  // hop-by-hop
  p[7] = 64;
  p[8] = 0x20;
  p[9] = 0x01;
  p[24] = 0x20;
  p[25] = 0x01;
  p[39] = 1;
  p[40] = 44;  // hop-by-hop → fragment
  p[48] = 17;  // fragment → UDP
  p[50] = 0;
  p[51] = 1;  // offset 0, M=1: first fragment
  p[55] = 7;  // id
  p[56 + 2] = 0x13;
  p[56 + 3] = 0xC4;  // dport 5060
  p[56 + 5] = 8;
  Decoder d;
  std::vector<uint8_t> blob;
  Observation o;
  ASSERT_TRUE(d.Decode(DLT_RAW, 0, p.data(), static_cast<uint32_t>(p.size()),
                       static_cast<uint32_t>(p.size()), &o, &blob));
  EXPECT_EQ(o.proto, 17);
  EXPECT_EQ(o.dport, 5060);
  EXPECT_EQ(o.ip_id, 7);
  EXPECT_TRUE(o.flags & obs_flag::kFirstFragment);
  EXPECT_EQ(o.ttl, 64);
  EXPECT_FALSE(o.src.is_v4());
}

TEST(Decoder, LinuxCookedAndLoopbackHeaders) {
  auto ip = Ipv4Tcp(0x0A000001, 0x0A000002, 445, 9, {});
  std::vector<uint8_t> sll(16, 0);
  sll[14] = 0x08;
  sll.insert(sll.end(), ip.begin(), ip.end());
  std::vector<uint8_t> sll2(20, 0);
  sll2[0] = 0x08;
  sll2.insert(sll2.end(), ip.begin(), ip.end());
  std::vector<uint8_t> null = {2, 0, 0, 0};  // AF_INET, little-endian writer
  null.insert(null.end(), ip.begin(), ip.end());
  std::vector<uint8_t> loop = {0, 0, 0, 2};  // AF_INET, network order
  loop.insert(loop.end(), ip.begin(), ip.end());
  Decoder d;
  std::vector<uint8_t> blob;
  for (auto [dlt, f] : std::vector<std::pair<int, std::vector<uint8_t>>>{
           {DLT_LINUX_SLL, sll}, {276, sll2}, {DLT_NULL, null}, {DLT_LOOP, loop}}) {
    Observation o;
    ASSERT_TRUE(d.Decode(dlt, 0, f.data(), static_cast<uint32_t>(f.size()),
                         static_cast<uint32_t>(f.size()), &o, &blob))
        << dlt;
    EXPECT_EQ(o.dport, 445) << dlt;
  }
}

// Random and mutated frames never crash the decoder and never read outside the frame (the test
// suite also runs under ASan/UBSan; the libFuzzer target explores further).
TEST(Decoder, SurvivesRandomAndMutatedInput) {
  std::mt19937 rng(7);
  Decoder d;
  std::vector<uint8_t> blob;
  auto base = Ether(Ipv4Tcp(1, 2, 3, 4, {2, 4, 5, 0xb4, 1, 3, 3, 8}));
  for (int i = 0; i < 200000; ++i) {
    std::vector<uint8_t> f = base;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) f[rng() % f.size()] = static_cast<uint8_t>(rng());
    f.resize(rng() % (f.size() + 1));
    Observation o;
    int dlt = std::array<int, 5>{DLT_EN10MB, DLT_RAW, DLT_LINUX_SLL, DLT_NULL, 276}[rng() % 5];
    auto cap = static_cast<uint32_t>(f.size());
    d.Decode(dlt, 0, f.data(), cap, cap + rng() % 3, &o, &blob);
    ASSERT_LE(o.opt_len, kMaxTcpOptions);
    ASSERT_LE(o.payload_cap, kPayloadPrefix);
    blob.clear();
  }
}

}  // namespace
}  // namespace teiten

#include <pcap/pcap.h>

#include "test_support.h"

namespace teiten {
namespace {

// Writes `frame` as the one packet of an Ethernet pcap at `path` (for tshark to decode).
void WriteOneFramePcap(const std::string& path, const std::vector<uint8_t>& frame) {
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
  pcap_dumper_t* w = pcap_dump_open(dead, path.c_str());
  pcap_pkthdr h{};
  h.caplen = h.len = static_cast<uint32_t>(frame.size());
  pcap_dump(reinterpret_cast<u_char*>(w), &h, frame.data());
  pcap_dump_close(w);
  pcap_close(dead);
}

TEST(Decoder, FiveAndMoreVlanTagsDecodeAsTsharkDecodesThem) {
  // Regression (issue 10): frames with 5+ VLAN tags were dropped where tshark decodes them.
  auto frame = Ether(Ipv4Tcp(0x01020304, 0xCB007107, 2323, 1, {}), {1, 2, 3, 4, 5, 6});
  Decoder d;
  ObservationBatch b;
  Observation o;
  ASSERT_TRUE(d.Decode(DLT_EN10MB, 42, frame.data(), static_cast<uint32_t>(frame.size()),
                       static_cast<uint32_t>(frame.size()), &o, &b.blob));
  EXPECT_EQ(o.dport, 2323);
  EXPECT_EQ(o.src.ToString(), "1.2.3.4");
  if (!testing::HaveCommand("tshark")) GTEST_SKIP() << "no tshark";
  testing::TempDir dir;
  std::string path = dir.path() + "/vlan6.pcap";
  WriteOneFramePcap(path, frame);
  std::string out =
      testing::Run("tshark -n -r " + path + " -T fields -e ip.src -e tcp.dstport 2>/dev/null");
  EXPECT_EQ(out, "1.2.3.4\t2323\n");
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

TEST(Decoder, IpTotalLengthZeroIsTakenFromTheFrameAsTsharkDoes) {
  // Regression (issue 10): IPv4 total length 0 (a capture taken before TCP segmentation
  // offload) was dropped where tshark decodes it.
  auto ip = Ipv4Tcp(0x05060708, 0xCB007109, 445, 7, {});
  ip.insert(ip.end(), 100, 'x');  // a payload, as an offloaded segment carries
  ip[2] = ip[3] = 0;
  auto frame = Ether(ip);
  Decoder d;
  ObservationBatch b;
  Observation o;
  ASSERT_TRUE(d.Decode(DLT_EN10MB, 42, frame.data(), static_cast<uint32_t>(frame.size()),
                       static_cast<uint32_t>(frame.size()), &o, &b.blob));
  EXPECT_EQ(o.dport, 445);
  EXPECT_EQ(o.ip_len, 140);
  EXPECT_EQ(o.payload_len, 100);
  EXPECT_EQ(d.stats().Get(Anomaly::kIpTotalLengthZero), 1u);
  if (!testing::HaveCommand("tshark")) GTEST_SKIP() << "no tshark";
  testing::TempDir dir;
  std::string path = dir.path() + "/tso.pcap";
  WriteOneFramePcap(path, frame);
  std::string out = testing::Run("tshark -n -r " + path +
                                 " -T fields -e ip.src -e tcp.dstport -e tcp.len 2>/dev/null");
  EXPECT_EQ(out, "5.6.7.8\t445\t100\n");
}

}  // namespace
}  // namespace teiten
