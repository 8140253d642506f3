// Payload groups (analysis/payloads.h) on hand-made SIP traffic whose groups are known by
// construction, and printable strings against strings(1) itself.
#include "analysis/payloads.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <fstream>

#include "row_test_support.h"

namespace teiten {
namespace {

using namespace row_testing;

std::vector<uint8_t> Bytes(std::string_view s) {
  return {s.begin(), s.end()};
}
const std::string kOptions =
    "OPTIONS sip:100@203.0.113.5 SIP/2.0\r\nUser-Agent: friendly-scanner\r\n\r\n";

std::vector<Raw> Traffic() {
  std::vector<Raw> v;
  const int64_t t0 = kAug12Jst + 3600 * kS;
  auto udp = [&](int64_t ts, uint32_t src, uint32_t dst, uint16_t dport, std::string_view p) {
    v.push_back({.ts_us = ts,
                 .src = src,
                 .dst = dst,
                 .proto = 17,
                 .sport = 5070,
                 .dport = dport,
                 .payload = Bytes(p)});
  };
  // Three sources, five packets each, of one SIPVicious OPTIONS: one group of 15 from 3.
  for (uint32_t s = 0; s < 3; ++s) {
    for (uint32_t i = 0; i < 5; ++i)
      udp(t0 + (s * 5 + i) * kS, 0x0A000001 + s, kNet + i, 5060, kOptions);
  }
  // One source, two packets of a REGISTER: a group of 2.
  for (uint32_t i = 0; i < 2; ++i)
    udp(t0 + i * kS, 0x0A000010, kNet + 9, 5060, "REGISTER sip:x SIP/2.0\r\n");
  // Two 120-byte payloads equal in their first 96 bytes only: one group, both truncated.
  std::string longer(120, 'A');
  udp(t0, 0x0A000020, kNet, 5060, longer);
  longer[110] = 'B';
  udp(t0 + kS, 0x0A000020, kNet, 5060, longer);
  // No payload, and another port: counted, not grouped; not counted.
  udp(t0, 0x0A000030, kNet, 5060, "");
  udp(t0, 0x0A000030, kNet, 53, kOptions);
  return v;
}

class PayloadsTest : public RowStoreTest {};

TEST_F(PayloadsTest, GroupsIdenticalPayloads) {
  const Store& s = Build(Traffic());
  auto r = GroupPayloads(s, *ParsePeriod("2018-08-12"), {}, MakePortKey(17, 5060));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->packets, 15u + 2 + 2 + 1);
  EXPECT_EQ(r->with_payload, 19u);
  EXPECT_EQ(r->truncated, 2u);
  ASSERT_EQ(r->groups.size(), 3u);
  const PayloadGroup& sip = r->groups[0];
  EXPECT_EQ(sip.packets, 15u);
  EXPECT_EQ(sip.sources, 3u);
  EXPECT_EQ(sip.destinations, 5u);
  EXPECT_EQ(sip.length, kOptions.size());
  EXPECT_EQ(sip.prefix, kOptions);
  EXPECT_EQ(sip.digest, XXH3_64bits(kOptions.data(), kOptions.size()));
  EXPECT_EQ(sip.last_us - sip.first_us, 14 * kS);
  EXPECT_EQ(sip.strings, (std::vector<std::string>{"OPTIONS sip:100@203.0.113.5 SIP/2.0",
                                                   "User-Agent: friendly-scanner"}));
  const PayloadGroup& reg = r->groups[1];
  EXPECT_EQ(reg.packets, 2u);
  EXPECT_EQ(reg.sources, 1u);
  EXPECT_EQ(reg.strings, (std::vector<std::string>{"REGISTER sip:x SIP/2.0"}));
  const PayloadGroup& cut = r->groups[2];
  EXPECT_EQ(cut.packets, 2u);
  EXPECT_EQ(cut.length, 120u);
  EXPECT_EQ(cut.prefix, std::string(kPayloadPrefix, 'A'));
}

// strings(1) is the reference: the same runs, in the same order, from the same bytes.
TEST(PrintableStringsTest, AgreesWithStrings1) {
  using namespace std::string_literals;
  // A NUL, DEL, tabs, a lone 0xff and UTF-8 (é) among printable runs of 3, 4 and more bytes.
  std::string bytes =
      "\x01\x02GET / HTTP/1.1\r\nHost: a\r\n\x00"
      "abc\x7f\tTAB\tX\xffzz\xc3\xa9"
      "long enough"s;
  bytes.push_back('\0');
  bytes += "SSH-2.0-Go";
  testing::TempDir dir;
  const std::string path = dir.path() + "/b";
  std::ofstream(path, std::ios::binary) << bytes;
  bool ok = true;
  std::string want = testing::Run("strings -a -n 4 " + path, &ok);
  ASSERT_TRUE(ok);
  std::string got;
  for (const std::string& s : PrintableStrings(bytes)) got += s + "\n";
  EXPECT_EQ(got, want);
  EXPECT_TRUE(PrintableStrings("abc").empty());
  EXPECT_EQ(PrintableStrings("abcd").size(), 1u);
}

TEST(PayloadTemplateTest, MasksTokensHoldingDigits) {
  EXPECT_EQ(PayloadTemplate("OPTIONS sip:100@10.77.0.5 SIP/2.0\r\n"),
            "OPTIONS sip:#@#.#.#.# SIP/#.#\r\n");
  EXPECT_EQ(PayloadTemplate("branch=z9hG4bK-17458;tag=as4f3a"), "branch=#-#;tag=#");
  EXPECT_EQ(PayloadTemplate("User-Agent: friendly-scanner"), "User-Agent: friendly-scanner");
  EXPECT_EQ(PayloadTemplate(std::string_view("\x00\xff"
                                             "7a",
                                             4)),
            std::string("\x00\xff#", 3));
  EXPECT_EQ(PayloadTemplate(""), "");
}

// Five SIPVicious-like probes, each with its own target and Call-ID: five identical-payload
// groups, one template.
TEST_F(PayloadsTest, GroupsByTemplate) {
  std::vector<Raw> v;
  const char* ids[] = {"a84b4c76e6", "0f00ba11", "77", "c0ffee42", "1234abcd"};
  for (uint32_t i = 0; i < 5; ++i) {
    std::string p = "OPTIONS sip:100@203.0.113." + std::to_string(i + 1) +
                    " SIP/2.0\r\nCall-ID: " + ids[i] + "\r\nUser-Agent: friendly-scanner\r\n";
    v.push_back({.ts_us = kAug12Jst + i * kS,
                 .src = 0x0A000001 + i % 2,
                 .dst = kNet + i + 1,
                 .proto = 17,
                 .sport = 5070,
                 .dport = 5060,
                 .payload = Bytes(p)});
  }
  // Two probes longer than the 96 bytes kept, cut at different places of their second line
  // (their targets differ in length): one template of their first line.
  for (const char* target : {"10.1.1.1", "100.100.100.100"}) {
    std::string p = std::string("REGISTER sip:") + target + " SIP/2.0\r\nVia: SIP/2.0/UDP " +
                    target + ";branch=" + std::string(80, 'x') + "\r\n";
    v.push_back({.ts_us = kAug12Jst,
                 .src = 0x0A000009,
                 .dst = kNet + 9,
                 .proto = 17,
                 .sport = 5070,
                 .dport = 5060,
                 .payload = Bytes(p)});
  }
  const Store& s = Build(v);
  auto exact = GroupPayloads(s, *ParsePeriod("2018-08-12"), {}, MakePortKey(17, 5060));
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->groups.size(), 7u);
  auto t = GroupPayloads(s, *ParsePeriod("2018-08-12"), {}, MakePortKey(17, 5060),
                         PayloadGrouping::kTemplate);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->groups.size(), 2u);
  EXPECT_EQ(t->groups[1].packets, 2u);
  EXPECT_EQ(t->groups[1].templ, "REGISTER sip:#.#.#.# SIP/#.#\r\n");
  const PayloadGroup& g = t->groups[0];
  EXPECT_EQ(g.packets, 5u);
  EXPECT_EQ(g.variants, 5u);
  EXPECT_EQ(g.sources, 2u);
  EXPECT_EQ(g.destinations, 5u);
  EXPECT_EQ(g.strings, (std::vector<std::string>{"OPTIONS sip:#@#.#.#.# SIP/#.#", "Call-ID: #",
                                                 "User-Agent: friendly-scanner"}));
}

}  // namespace
}  // namespace teiten
