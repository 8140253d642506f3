// Netfilter LOG lines against the packets they log.
//
// The reference is the kernel itself: NflogLive sends crafted frames into a network namespace
// whose nftables rule logs them (`log flags all`), captures the same frames with tcpdump, and
// checks that every line parses to the Observation teiten's Decoder makes from the captured
// packet. tests/data/nflog holds lines and the capture from such a run (see its README), so the
// same comparison runs without root; the hostile variants and the reader's follow/rotation
// behaviour are tested on files made here.
#include "sensor/nflog.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pcap/dlt.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "capture/decoder.h"
#include "capture/pcap_file.h"
#include "gtest/gtest.h"
#include "test_support.h"

namespace teiten {
namespace {

std::string DataDir() {
  return testing::SourceDir() + "/tests/data/nflog";
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

struct Decoded {
  Observation obs;
  std::vector<uint8_t> blob;
};

// Every packet of a capture, decoded, by source address (each test packet has its own).
std::map<IpAddr, Decoded> DecodeCapture(const std::string& path) {
  std::map<IpAddr, Decoded> out;
  auto f = PcapFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  if (!f.ok()) return out;
  Decoder d;
  PcapFile::Packet p;
  while (true) {
    auto more = (*f)->Next(&p);
    EXPECT_TRUE(more.ok());
    if (!more.ok() || !*more) break;
    Decoded x;
    if (!d.Decode((*f)->datalink(), 0, p.data, p.caplen, p.wirelen, &x.obs, &x.blob)) continue;
    out[x.obs.src] = std::move(x);
  }
  return out;
}

// How many packets a capture being written holds so far (a record cut short ends the count).
size_t DecodeCaptureQuiet(const std::string& path) {
  auto f = PcapFile::Open(path);
  if (!f.ok()) return 0;
  PcapFile::Packet p;
  size_t n = 0;
  while (true) {
    auto more = (*f)->Next(&p);
    if (!more.ok() || !*more) return n;
    ++n;
  }
}

// The fields a log line carries must equal the decoder's; the payload bytes are not in a line.
void ExpectSameAsDecoded(const Observation& log, const std::vector<uint8_t>& log_blob,
                         const Decoded& pkt, const std::string& line) {
  const Observation& p = pkt.obs;
  SCOPED_TRACE(line);
  EXPECT_EQ(log.src, p.src);
  EXPECT_EQ(log.dst, p.dst);
  EXPECT_EQ(log.proto, p.proto);
  EXPECT_EQ(log.ttl, p.ttl);
  EXPECT_EQ(log.ip_len, p.ip_len);
  EXPECT_EQ(log.ip_id, p.ip_id);
  EXPECT_EQ(log.sport, p.sport);
  EXPECT_EQ(log.dport, p.dport);
  EXPECT_EQ(log.seq, p.seq);
  EXPECT_EQ(log.ack, p.ack);
  EXPECT_EQ(log.window, p.window);
  EXPECT_EQ(log.tcp_flags, p.tcp_flags);
  EXPECT_EQ(log.icmp_type, p.icmp_type);
  EXPECT_EQ(log.icmp_code, p.icmp_code);
  EXPECT_EQ(log.payload_len, p.payload_len);
  EXPECT_EQ(log.flags, p.flags & ~obs_flag::kSnapTruncated);
  ASSERT_EQ(log.opt_len, p.opt_len);
  std::vector<uint8_t> log_opts(log_blob.begin() + log.blob,
                                log_blob.begin() + log.blob + log.opt_len);
  std::vector<uint8_t> pkt_opts(pkt.blob.begin() + p.blob, pkt.blob.begin() + p.blob + p.opt_len);
  EXPECT_EQ(log_opts, pkt_opts);
  EXPECT_EQ(log.payload_cap, 0);
}

// A rule that logs no options or sequence numbers (nft `log` without flags, iptables `-j LOG`
// without --log-tcp-*): the fields it does log must still be the decoder's; SEQ/ACK/OPT are
// absent and TCP payload_len unknown (left 0 with NflogContext::options_logged false).
void ExpectSameAsDecodedPlain(const Observation& log, const Decoded& pkt, const std::string& line) {
  const Observation& p = pkt.obs;
  SCOPED_TRACE(line);
  EXPECT_EQ(log.src, p.src);
  EXPECT_EQ(log.dst, p.dst);
  EXPECT_EQ(log.proto, p.proto);
  EXPECT_EQ(log.ttl, p.ttl);
  EXPECT_EQ(log.ip_len, p.ip_len);
  EXPECT_EQ(log.ip_id, p.ip_id);
  EXPECT_EQ(log.sport, p.sport);
  EXPECT_EQ(log.dport, p.dport);
  EXPECT_EQ(log.window, p.window);
  EXPECT_EQ(log.tcp_flags, p.tcp_flags);
  EXPECT_EQ(log.icmp_type, p.icmp_type);
  EXPECT_EQ(log.icmp_code, p.icmp_code);
  EXPECT_EQ(log.flags, p.flags & ~obs_flag::kSnapTruncated);
  EXPECT_EQ(log.seq, 0u);
  EXPECT_EQ(log.ack, 0u);
  EXPECT_EQ(log.opt_len, 0);
  EXPECT_EQ(log.payload_len, p.proto == 6 ? 0 : p.payload_len);
}

// Compares every LOG line of `lines` with its packet in `packets`; returns how many matched.
// `plain`: the lines come from a rule without flags.
size_t CompareLines(const std::vector<std::string>& lines, const std::map<IpAddr, Decoded>& packets,
                    NflogContext ctx, bool plain = false) {
  ctx.options_logged = !plain;
  size_t matched = 0;
  for (const std::string& line : lines) {
    std::vector<uint8_t> blob;
    auto r = ParseNetfilterLog(line, ctx, &blob);
    if (!r.ok()) {
      ADD_FAILURE() << line << "\n" << r.status().ToString();
      continue;
    }
    auto it = packets.find(r->src);
    if (it == packets.end()) continue;  // the kernel's own traffic (neighbour discovery)
    if (plain) {
      ExpectSameAsDecodedPlain(*r, it->second, line);
    } else {
      ExpectSameAsDecoded(*r, blob, it->second, line);
    }
    ++matched;
  }
  return matched;
}

// ---- frames the live test sends -------------------------------------------------------------

void Put16(std::vector<uint8_t>* v, uint16_t x) {
  v->push_back(static_cast<uint8_t>(x >> 8));
  v->push_back(static_cast<uint8_t>(x));
}
void Put32(std::vector<uint8_t>* v, uint32_t x) {
  Put16(v, static_cast<uint16_t>(x >> 16));
  Put16(v, static_cast<uint16_t>(x));
}
std::vector<uint8_t> Bytes(size_t n, uint8_t fill) {
  return std::vector<uint8_t>(n, fill);
}
std::vector<uint8_t> Cat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

constexpr uint8_t kNsMac[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x02};
constexpr uint8_t kHostMac[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};

std::vector<uint8_t> Ether(uint16_t type, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> f(kNsMac, kNsMac + 6);
  f.insert(f.end(), kHostMac, kHostMac + 6);
  Put16(&f, type);
  return Cat(f, payload);
}

// IPv4 with a right header checksum (the kernel drops the others before any hook).
std::vector<uint8_t> Ipv4(uint32_t src, uint32_t dst, uint8_t proto, uint8_t ttl, uint16_t id,
                          uint16_t frag, const std::vector<uint8_t>& opts,
                          const std::vector<uint8_t>& l4) {
  std::vector<uint8_t> h;
  size_t ihl = 20 + opts.size();
  h.push_back(static_cast<uint8_t>(0x40 | (ihl / 4)));
  h.push_back(0);
  Put16(&h, static_cast<uint16_t>(ihl + l4.size()));
  Put16(&h, id);
  Put16(&h, frag);
  h.push_back(ttl);
  h.push_back(proto);
  Put16(&h, 0);
  Put32(&h, src);
  Put32(&h, dst);
  h.insert(h.end(), opts.begin(), opts.end());
  uint32_t sum = 0;
  for (size_t i = 0; i < h.size(); i += 2) sum += (h[i] << 8) | h[i + 1];
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  h[10] = static_cast<uint8_t>(~sum >> 8);
  h[11] = static_cast<uint8_t>(~sum);
  return Ether(0x0800, Cat(h, l4));
}

std::vector<uint8_t> Ipv6(uint16_t src_low, uint8_t next, uint8_t hop,
                          const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> h = {0x60, 0, 0, 0};
  Put16(&h, static_cast<uint16_t>(payload.size()));
  h.push_back(next);
  h.push_back(hop);
  std::vector<uint8_t> src = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  Put16(&src, src_low);
  std::vector<uint8_t> dst = {0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  h = Cat(Cat(h, src), dst);
  return Ether(0x86DD, Cat(h, payload));
}

std::vector<uint8_t> Tcp(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
                         uint16_t window, const std::vector<uint8_t>& opts,
                         const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> t;
  Put16(&t, sport);
  Put16(&t, dport);
  Put32(&t, seq);
  Put32(&t, ack);
  t.push_back(static_cast<uint8_t>(((20 + opts.size()) / 4) << 4));
  t.push_back(flags);
  Put16(&t, window);
  Put32(&t, 0);  // checksum, urgent pointer: not checked before the hook
  return Cat(Cat(t, opts), payload);
}

std::vector<uint8_t> Udp(uint16_t sport, uint16_t dport, const std::vector<uint8_t>& payload,
                         int ulen = -1) {
  std::vector<uint8_t> u;
  Put16(&u, sport);
  Put16(&u, dport);
  Put16(&u, static_cast<uint16_t>(ulen >= 0 ? ulen : 8 + static_cast<int>(payload.size())));
  Put16(&u, 0);
  return Cat(u, payload);
}

std::vector<uint8_t> Icmp(uint8_t type, uint8_t code, const std::vector<uint8_t>& rest) {
  return Cat({type, code, 0, 0}, rest);
}

std::vector<uint8_t> Frag6(uint8_t next, uint16_t offset_bytes, bool more, uint32_t id) {
  std::vector<uint8_t> f = {next, 0};
  Put16(&f, static_cast<uint16_t>(offset_bytes | (more ? 1 : 0)));
  Put32(&f, id);
  return f;
}

// One of each kind the parser must map; each from its own source address.
std::vector<std::vector<uint8_t>> TestFrames() {
  const uint32_t dst = 0x0A4D0002;  // 10.77.0.2
  const std::vector<uint8_t> syn_opts = {2, 4, 5, 0xB4, 4, 2, 8, 10, 0, 0,
                                         0, 1, 0, 0,    0, 0, 1, 3,  3, 7};
  std::vector<std::vector<uint8_t>> f;
  f.push_back(Ipv4(0xC0000201, dst, 6, 241, 54321, 0, {},
                   Tcp(40000, 23, 0xDEADBEEF, 0, tcp_flag::kSyn, 1024, syn_opts, {})));
  f.push_back(Ipv4(0xC0000202, dst, 6, 51, 1, 0x4000, {},
                   Tcp(1, 65535, 7, 0x01020304, 0xFF, 65535, {}, Bytes(12, 'a'))));
  f.push_back(Ipv4(
      0xC0000203, dst, 6, 64, 3, 0, {1, 1, 1, 0},
      Tcp(443, 8443, 1, 2, tcp_flag::kAck | tcp_flag::kPsh, 501, {1, 1, 1, 1}, Bytes(5, 'b'))));
  f.push_back(Ipv4(0xC0000204, dst, 17, 128, 4, 0, {}, Udp(5353, 53, Bytes(20, 'c'))));
  f.push_back(Ipv4(0xC0000205, dst, 17, 128, 5, 0, {}, Udp(5060, 5060, Bytes(20, 'd'), 10)));
  f.push_back(Ipv4(0xC0000206, dst, 1, 255, 6, 0, {}, Icmp(8, 0, Bytes(20, 'e'))));
  f.push_back(Ipv4(0xC0000207, dst, 1, 255, 7, 0, {}, Icmp(13, 0, Bytes(16, 0))));
  f.push_back(Ipv4(0xC0000208, dst, 6, 40, 8, 0x2000, {},
                   Tcp(2222, 22, 9, 0, tcp_flag::kSyn, 8, {}, Bytes(8, 'f'))));
  f.push_back(Ipv4(0xC0000209, dst, 17, 40, 9, 0x0003, {}, Bytes(24, 'g')));
  f.push_back(Ipv4(0xC000020A, dst, 47, 30, 10, 0, {}, Bytes(8, 'h')));
  f.push_back(Ipv4(0xC000020B, dst, 6, 30, 11, 0, {}, Bytes(8, 'i')));  // TCP cut short
  f.push_back(Ipv6(1, 6, 57, Tcp(50000, 80, 123456789, 0, tcp_flag::kSyn, 28800, syn_opts, {})));
  f.push_back(Ipv6(2, 17, 64, Udp(40001, 123, Bytes(48, 'j'))));
  f.push_back(Ipv6(3, 58, 255, Icmp(128, 0, Bytes(12, 'k'))));
  f.push_back(
      Ipv6(4, 44, 60, Cat(Frag6(17, 0, true, 0xab03cfac), Udp(4000, 4001, Bytes(16, 'l'), 3000))));
  f.push_back(Ipv6(5, 44, 60, Cat(Frag6(17, 1448, false, 0x00c0ffee), Bytes(32, 'm'))));
  return f;
}

// An ICMP unreachable quoting the packet it answers: the quoted packet's fields are in the line
// too, between brackets, and must not be taken for the outer one's.
std::vector<uint8_t> IcmpErrorFrame() {
  auto quoted = Ipv4(0x0A4D0002, 0xC0000207, 17, 64, 99, 0, {}, Udp(53, 5353, {}));
  quoted.erase(quoted.begin(), quoted.begin() + 14);
  return Ipv4(0xC000020C, 0x0A4D0002, 1, 255, 12, 0, {}, Icmp(3, 3, Cat(Bytes(4, 0), quoted)));
}

// ---- deterministic: the lines saved from a live run ----------------------------------------

TEST(Nflog, SavedKernelLinesMatchTheirCapturedPackets) {
  auto packets = DecodeCapture(DataDir() + "/packets.pcap");
  auto lines = ReadLines(DataDir() + "/kernel.txt");
  ASSERT_FALSE(lines.empty());
  ASSERT_FALSE(packets.empty());
  NflogContext ctx;
  EXPECT_EQ(CompareLines(lines, packets, ctx), packets.size());
  auto plain = ReadLines(DataDir() + "/kernel-plain.txt");
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(CompareLines(plain, packets, ctx, /*plain=*/true), packets.size());
}

TEST(Nflog, HandCheckedFieldsOfOneSavedLine) {
  // The SYN with options from 192.0.2.1, checked by reading the line and the frame by hand.
  auto lines = ReadLines(DataDir() + "/kernel.txt");
  NflogContext ctx;
  ctx.ts_us = 42;
  for (const auto& line : lines) {
    if (line.find("SRC=192.0.2.1 ") == std::string::npos) continue;
    std::vector<uint8_t> blob = {9};  // options are appended after what is there
    auto r = ParseNetfilterLog(line, ctx, &blob);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->ts_us, 42);
    EXPECT_EQ(r->dst.ToString(), "10.77.0.2");
    EXPECT_EQ(r->proto, 6);
    EXPECT_EQ(r->ttl, 241);
    EXPECT_EQ(r->ip_id, 54321);
    EXPECT_EQ(r->ip_len, 60);
    EXPECT_EQ(r->sport, 40000);
    EXPECT_EQ(r->dport, 23);
    EXPECT_EQ(r->seq, 0xDEADBEEFu);
    EXPECT_EQ(r->window, 1024);
    EXPECT_EQ(r->tcp_flags, tcp_flag::kSyn);
    EXPECT_EQ(r->payload_len, 0);
    ASSERT_EQ(r->opt_len, 20);
    EXPECT_EQ(r->blob, 1u);
    EXPECT_EQ(blob[1], 2);
    EXPECT_EQ(blob[3], 5);
    EXPECT_EQ(blob[4], 0xB4);
    return;
  }
  FAIL() << "no line from 192.0.2.1 in kernel.txt";
}

// The same real messages behind the timestamp prefixes syslog daemons and journald give them.
TEST(Nflog, TimestampPrefixes) {
  auto lines = ReadLines(DataDir() + "/kernel.txt");
  ASSERT_FALSE(lines.empty());
  std::string msg = lines[0];
  std::vector<uint8_t> blob;
  NflogContext ctx;
  ctx.year = 2026;
  ctx.ts_us = 7;
  // Expected instants from `date -u -d '2026-12-04T05:41:07Z' +%s` = 1796362867.
  const int64_t t0 = 1796362867LL * 1000000;
  auto ts = [&](const std::string& line) {
    auto r = ParseNetfilterLog(line, ctx, &blob);
    EXPECT_TRUE(r.ok()) << line << ": " << r.status().ToString();
    return r.ok() ? r->ts_us : -1;
  };
  EXPECT_EQ(ts("[16180.072704] " + msg), 7);
  EXPECT_EQ(ts("6,1234,16180072704,-;" + msg), 7);
  EXPECT_EQ(ts("Dec  4 05:41:07 sensor1 kernel: [16180.072704] " + msg), t0);
  EXPECT_EQ(ts("Dec 14 05:41:07 sensor1 kernel: " + msg), t0 + 10LL * 86400 * 1000000);
  EXPECT_EQ(ts("2026-12-04T05:41:07.123456+00:00 sensor1 kernel: " + msg), t0 + 123456);
  EXPECT_EQ(ts("2026-12-04T14:41:07.5+09:00 sensor1 kernel: " + msg), t0 + 500000);
  EXPECT_EQ(ts("2026-12-04T05:41:07Z sensor1 kernel: " + msg), t0);
  std::string json =
      "{\"__REALTIME_TIMESTAMP\":\"1796362867123456\",\"_TRANSPORT\":\"kernel\","
      "\"MESSAGE\":\"" +
      msg + "\"}";
  EXPECT_EQ(ts(json), t0 + 123456);
  // Classic lines in the sensor's zone: JST is UTC+9 all year.
  auto jst = TimeZone::Load("Asia/Tokyo");
  ASSERT_TRUE(jst.ok());
  ctx.zone = &*jst;
  EXPECT_EQ(ts("Dec  4 14:41:07 sensor1 kernel: " + msg), t0);
  EXPECT_EQ(ts("2026-12-04T14:41:07 sensor1 kernel: " + msg), t0);
  // A classic line needs its year from the caller.
  ctx.year = 0;
  auto r = ParseNetfilterLog("Dec  4 05:41:07 sensor1 kernel: " + msg, ctx, &blob);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("year"), std::string::npos);
}

TEST(Nflog, JournalJsonMessageAsBytes) {
  auto lines = ReadLines(DataDir() + "/kernel.txt");
  ASSERT_FALSE(lines.empty());
  std::string bytes;
  for (unsigned char c : lines[0]) bytes += (bytes.empty() ? "" : ",") + std::to_string(c);
  std::string json = "{\"MESSAGE\":[" + bytes + "],\"__REALTIME_TIMESTAMP\":\"5\"}";
  std::vector<uint8_t> a, b;
  auto from_json = ParseNetfilterLog(json, {}, &a);
  auto plain = ParseNetfilterLog(lines[0], {}, &b);
  ASSERT_TRUE(from_json.ok()) << from_json.status().ToString();
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(from_json->ts_us, 5);
  EXPECT_EQ(from_json->src, plain->src);
  EXPECT_EQ(from_json->dport, plain->dport);
}

TEST(Nflog, OtherKernelLinesAreNotFound) {
  std::vector<uint8_t> blob;
  for (std::string line : {"", "[    1.221881] EXT4-fs (vda): mounted filesystem r/w",
                           "Dec  4 05:41:07 host kernel: usb 1-1: new high-speed USB device",
                           "{\"MESSAGE\":\"systemd: Started foo.\",\"__REALTIME_TIMESTAMP\":\"1\"}",
                           "SRC=1.2.3.4 but no destination", "{\"_PID\":\"1\"}"}) {
    auto r = ParseNetfilterLog(line, {}, &blob);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << line;
  }
  EXPECT_TRUE(blob.empty());
}

// Each hostile line is rejected as InvalidArgument whose message names the field and the byte.
TEST(Nflog, HostileLinesNameFieldAndByte) {
  const std::string base =
      "teiten: IN=eth0 OUT= SRC=192.0.2.1 DST=10.0.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 "
      "ID=5 PROTO=TCP SPT=1 DPT=23 SEQ=1 ACK=0 WINDOW=1024 RES=0x00 SYN URGP=0 OPT (020405B4) ";
  std::vector<uint8_t> blob;
  auto ok = ParseNetfilterLog(base, {}, &blob);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->payload_len, 60 - 20 - 24);
  struct Case {
    std::string from, to, field;
  };
  const Case cases[] = {
      {"SRC=192.0.2.1", "SRC=999.1.1.1", "SRC"},
      {"DST=10.0.0.1", "DST=2001:db8::1", "DST"},  // families differ
      {"TTL=64", "TTL=256", "TTL"},
      {"TTL=64", "TTL=", "TTL"},
      {"TTL=64", "TTL=-1", "TTL"},
      {"ID=5", "ID=99999999999999999999999999", "ID"},
      {"LEN=60", "LEN=65536", "LEN"},
      {"SPT=1", "SPT=65536", "SPT"},
      {"SEQ=1", "SEQ=4294967296", "SEQ"},
      {"WINDOW=1024", "WINDOW=1x", "WINDOW"},
      {"OPT (020405B4)", "OPT (020405B)", "OPT"},
      {"OPT (020405B4)", "OPT (0204ZZB4)", "OPT"},
      {"OPT (020405B4)", "OPT (" + std::string(82, '0') + ")", "OPT"},
      {"OPT (020405B4)", "OPT (020405B4", "OPT"},
      {"PROTO=TCP", "PROTO=BOGUS", "PROTO"},
      {"PROTO=TCP", "PROTO=256", "PROTO"},
      {"ID=5", "ID=5 ID=6", "ID"},
      {"TTL=64",
       std::string("TTL=6\0"
                   "4",
                   7),
       "TTL"},
  };
  for (const Case& c : cases) {
    std::string line = base;
    size_t at = line.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    line.replace(at, c.from.size(), c.to);
    blob.clear();
    auto r = ParseNetfilterLog(line, {}, &blob);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << line;
    EXPECT_NE(r.status().message().find("field " + c.field), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("byte "), std::string::npos) << r.status().message();
    EXPECT_TRUE(blob.empty()) << line;  // nothing is appended for a rejected line
  }
  // Missing fields and truncation: the line ends mid-way.
  for (size_t cut : {base.find("LEN="), base.find("TTL="), base.find("PROTO=")}) {
    auto r = ParseNetfilterLog(base.substr(0, cut), {}, &blob);
    ASSERT_FALSE(r.ok()) << base.substr(0, cut);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("has no"), std::string::npos) << r.status().message();
  }
  // Cut in the transport part: the addresses are good, the ports are unknown.
  auto cut = ParseNetfilterLog(base.substr(0, base.find("SPT=")), {}, &blob);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->flags, obs_flag::kNoTransport);
  // Every prefix of the line and its bytes flipped to NUL: never a crash, never a read past it
  // (ASan checks the latter: each prefix is in a heap block of exactly its size, with no NUL
  // after it as a std::string would have).
  for (size_t n = 0; n <= base.size(); ++n) {
    auto head = std::make_unique<char[]>(n + 1);
    std::memcpy(head.get() + 1, base.data(), n);
    (void)ParseNetfilterLog(std::string_view(head.get() + 1, n), {}, &blob).ok();
    std::string nul = base;
    if (n < nul.size()) nul[n] = '\0';
    (void)ParseNetfilterLog(nul, {}, &blob).ok();
  }
  // The same for every saved kernel line (IPv6 extension lists, quoted ICMP packets, fragments).
  for (const std::string& line : ReadLines(DataDir() + "/kernel.txt")) {
    for (size_t n = 0; n <= line.size(); ++n) {
      auto head = std::make_unique<char[]>(n + 1);
      std::memcpy(head.get() + 1, line.data(), n);
      (void)ParseNetfilterLog(std::string_view(head.get() + 1, n), {}, &blob).ok();
    }
  }
  // Broken journal JSON and timestamps.
  for (std::string line :
       {std::string("{\"MESSAGE\":\"") + base,
        std::string("{\"a\":") + std::string(10000, '[') + base,
        "{\"MESSAGE\":\"" + base + "\",\"__REALTIME_TIMESTAMP\":\"-1\"}",
        std::string("{\"MESSAGE\":[1,2,300],\"__REALTIME_TIMESTAMP\":\"1\"}"),
        "2026-13-04T05:41:07Z host kernel: " + base, "2026-12-04T05:41Z host kernel: " + base,
        "Feb 30 05:41:07 host kernel: " + base, "Dec  4 25:41:07 host kernel: " + base}) {
    NflogContext ctx;
    ctx.year = 2026;
    auto r = ParseNetfilterLog(line, ctx, &blob);
    EXPECT_FALSE(r.ok()) << line.substr(0, 80);
  }
}

// ---- the reader -------------------------------------------------------------------------------

void Append(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  out << text;
}

std::string LogLine(int n) {
  return "Dec  4 05:41:07 s kernel: teiten: IN=eth0 OUT= SRC=192.0.2." + std::to_string(n % 250) +
         " DST=10.0.0.1 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=" + std::to_string(n) +
         " PROTO=TCP SPT=1 DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0 \n";
}

size_t Drain(NetfilterLogReader* r, ObservationBatch* batch) {
  size_t total = 0;
  while (true) {
    auto n = r->Next(batch, 7);  // small batches: lines stay pending between calls
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok() || *n == 0) return total;
    total += *n;
  }
}

TEST(NflogReader, CountsLinesAndKeepsFirstErrors) {
  testing::TempDir dir;
  std::string path = dir.path() + "/kern.log";
  std::string text = LogLine(1) + "Dec  4 05:41:07 s kernel: usb 1-1: new device\n" + LogLine(2) +
                     "teiten: SRC=999.1.1.1 DST=10.0.0.1 LEN=40 TTL=1 PROTO=UDP\n" +
                     std::string(1 << 20, 'x') + "\n" + LogLine(3) + "{\"MESSAGE\":\n" +
                     LogLine(4).substr(0, LogLine(4).size() - 1);  // no final newline
  Append(path, text);
  NflogContext ctx;
  ctx.year = 2026;
  auto r = NetfilterLogReader::Open(path, ctx, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ObservationBatch batch;
  EXPECT_EQ(Drain(&*r, &batch), 4u);
  const NflogCounts& c = r->counts();
  EXPECT_EQ(c.lines, 8u);
  EXPECT_EQ(c.log_lines, 5u);
  EXPECT_EQ(c.kept, 4u);
  EXPECT_EQ(c.Errors(NflogError::kBadField), 1u);
  EXPECT_EQ(c.Errors(NflogError::kLineTooLong), 1u);
  EXPECT_EQ(c.Errors(NflogError::kBadJournal), 1u);
  ASSERT_EQ(c.first_errors.size(), 3u);
  EXPECT_EQ(c.first_errors[0].line_number, 4u);
  EXPECT_NE(c.first_errors[0].message.find(path + ":4: byte "), std::string::npos)
      << c.first_errors[0].message;
  EXPECT_NE(c.first_errors[0].message.find("field SRC"), std::string::npos);
  EXPECT_EQ(c.first_errors[1].line_number, 5u);
  EXPECT_EQ(c.first_errors[2].line_number, 7u);
  ASSERT_EQ(batch.rows.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(batch.rows[i].ip_id, i + 1);
}

TEST(NflogReader, FollowsAcrossRenameRotationAndTruncation) {
  testing::TempDir dir;
  std::string path = dir.path() + "/kern.log";
  Append(path, "");
  NflogReaderOptions opt;
  opt.follow = true;
  NflogContext ctx;
  ctx.year = 2026;
  auto r = NetfilterLogReader::Open(path, ctx, opt);
  ASSERT_TRUE(r.ok());
  ObservationBatch batch;
  int written = 0;
  auto write = [&](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += LogLine(++written);
    Append(path, s);
  };
  write(10);
  EXPECT_EQ(Drain(&*r, &batch), 10u);
  EXPECT_EQ(Drain(&*r, &batch), 0u);  // nothing new: not the end
  // Half a line, then the rest: read once, whole.
  std::string half = LogLine(++written);
  Append(path, half.substr(0, 30));
  EXPECT_EQ(Drain(&*r, &batch), 0u);
  Append(path, half.substr(30));
  write(5);
  EXPECT_EQ(Drain(&*r, &batch), 6u);
  // logrotate's rename: the writer still appends to the old file, then a new one appears.
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  {
    std::string s;
    for (int i = 0; i < 3; ++i) s += LogLine(++written);
    Append(path + ".1", s);
  }
  EXPECT_EQ(Drain(&*r, &batch), 3u);  // still the old file; no new one yet
  {
    std::string s;
    for (int i = 0; i < 2; ++i) s += LogLine(++written);
    Append(path + ".1", s);  // written after we last looked, before the new file
  }
  write(4);  // the new file at the path
  EXPECT_EQ(Drain(&*r, &batch), 6u);
  EXPECT_EQ(r->counts().rotations, 1u);
  // copytruncate: the file is cut to nothing and written again from its start.
  ASSERT_EQ(::truncate(path.c_str(), 0), 0);
  write(2);
  EXPECT_EQ(Drain(&*r, &batch), 2u);
  EXPECT_EQ(r->counts().rotations, 2u);
  // Every line once, in order.
  ASSERT_EQ(batch.rows.size(), static_cast<size_t>(written));
  for (int i = 0; i < written; ++i) EXPECT_EQ(batch.rows[i].ip_id, i + 1) << i;
  EXPECT_EQ(r->counts().lines, static_cast<uint64_t>(written));
}

// `journalctl -o export` (systemd's JOURNAL_EXPORT_FORMATS): FIELD=value lines, binary fields
// as the name, a 64-bit little-endian length, the bytes and a newline; entries end at a blank line.
std::string ExportEntry(int i, const std::string& message, bool binary, const std::string& ts) {
  std::string e = "__CURSOR=s=0123;i=" + std::to_string(i) + "\n__REALTIME_TIMESTAMP=" + ts +
                  "\n__MONOTONIC_TIMESTAMP=16180072704\n_TRANSPORT=kernel\n";
  auto binary_field = [&](const std::string& name, const std::string& bytes) {
    e += name + "\n";
    uint64_t n = bytes.size();
    for (int b = 0; b < 8; ++b) e += static_cast<char>((n >> (8 * b)) & 0xFF);
    e += bytes + "\n";
  };
  binary_field("_SOME_BINARY", "a\nSRC=1.2.3.4 DST=5.6.7.8\n\nz");  // newlines inside: not lines
  if (binary) {
    binary_field("MESSAGE", message);
  } else {
    e += "MESSAGE=" + message + "\n";
  }
  return e + "SYSLOG_IDENTIFIER=kernel\n";
}

TEST(NflogReader, JournalExportEntries) {
  auto lines = ReadLines(DataDir() + "/kernel.txt");
  auto packets = DecodeCapture(DataDir() + "/packets.pcap");
  ASSERT_GE(lines.size(), 3u);
  const int64_t t0 = 1796362867000000;
  std::string text;
  for (size_t i = 0; i < lines.size(); ++i) {
    text += ExportEntry(static_cast<int>(i), lines[i], i % 3 == 1, std::to_string(t0 + i)) + "\n";
  }
  text += ExportEntry(100, "usb 1-1: new high-speed USB device", false, "5") + "\n";
  text += ExportEntry(101, lines[0], false, "12x") + "\n";  // broken time: counted, not kept
  text += ExportEntry(102, lines[1], true, std::to_string(t0 + 102));  // no final blank line
  // Written a few bytes at a time while followed: binary fields and lines arrive in pieces.
  testing::TempDir dir;
  std::string path = dir.path() + "/journal.export";
  Append(path, "");
  NflogReaderOptions opt;
  opt.follow = true;
  auto r = NetfilterLogReader::Open(path, {}, opt);
  ASSERT_TRUE(r.ok());
  ObservationBatch batch;
  for (size_t at = 0; at < text.size(); at += 5) {
    Append(path, text.substr(at, 5));
    Drain(&*r, &batch);
  }
  // The last entry has no blank line yet: it is not finished while the file may grow.
  EXPECT_EQ(batch.rows.size(), lines.size());
  Append(path, "\n");
  Drain(&*r, &batch);
  ASSERT_EQ(batch.rows.size(), lines.size() + 1);
  const NflogCounts& c = r->counts();
  EXPECT_EQ(c.kept, lines.size() + 1);
  EXPECT_EQ(c.Errors(NflogError::kBadJournal), 1u);
  ASSERT_EQ(c.first_errors.size(), 1u);
  EXPECT_NE(c.first_errors[0].message.find("__REALTIME_TIMESTAMP '12x'"), std::string::npos)
      << c.first_errors[0].message;
  for (size_t i = 0; i < batch.rows.size(); ++i) {
    const Observation& o = batch.rows[i];
    size_t source = i < lines.size() ? i : 1;
    EXPECT_EQ(o.ts_us, t0 + static_cast<int64_t>(i < lines.size() ? i : 102)) << i;
    auto it = packets.find(o.src);
    if (it == packets.end()) continue;  // the host's own traffic in the saved capture
    ExpectSameAsDecoded(o, batch.blob, it->second, lines[source]);
  }
}

TEST(NflogReader, ReadsAPipe) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string text = LogLine(1) + LogLine(2);
  ASSERT_EQ(::write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fds[1]);
  auto r = NetfilterLogReader::FromFd(fds[0], "pipe", {.year = 2026}, {});
  ObservationBatch batch;
  EXPECT_EQ(Drain(&r, &batch), 2u);
  EXPECT_EQ(r.counts().lines, 2u);
}

// ---- live: the kernel logs the frames we send --------------------------------------------------

class Namespace {
 public:
  explicit Namespace(std::string name) : name_(std::move(name)) {}
  ~Namespace() {
    if (created_) std::system(("ip netns del " + name_ + " 2>/dev/null").c_str());
    if (!old_log_all_.empty()) {
      std::ofstream("/proc/sys/net/netfilter/nf_log_all_netns") << old_log_all_;
    }
  }
  bool Sh(const std::string& cmd) {
    bool ok = std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
    if (!ok) error_ = cmd;
    return ok;
  }
  bool Create(const std::string& host_if, const std::string& ns_if) {
    if (!Sh("ip netns add " + name_)) return false;
    created_ = true;
    std::ifstream("/proc/sys/net/netfilter/nf_log_all_netns") >> old_log_all_;
    return Sh("sysctl -qw net.netfilter.nf_log_all_netns=1") &&
           Sh("ip link add " + host_if + " type veth peer name " + ns_if) &&
           Sh("ip link set " + ns_if + " address 02:00:5e:10:00:02 netns " + name_) &&
           Sh("sysctl -qw net.ipv6.conf." + host_if + ".disable_ipv6=1") &&
           Sh("ip link set " + host_if + " address 02:00:5e:10:00:01 up") &&
           Sh("ip -n " + name_ + " addr add 10.77.0.2/24 dev " + ns_if) &&
           Sh("ip -n " + name_ + " link set " + ns_if + " up");
  }
  const std::string& error() const { return error_; }

 private:
  std::string name_, error_, old_log_all_;
  bool created_ = false;
};

TEST(NflogLive, KernelLinesMatchDecodedPackets) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespace, nftables, /dev/kmsg)";
  for (const char* tool : {"ip", "nft", "tcpdump"}) {
    if (!testing::HaveCommand(tool)) GTEST_SKIP() << "needs " << tool << " (scripts/setup.sh)";
  }
  std::string id = std::to_string(::getpid() % 100000);
  std::string ns = "tnflog" + id, host_if = "tnfh" + id, ns_if = "tnfn" + id;
  std::string prefix = "tnflog" + id + ": ", plain_prefix = "tnflog" + id + "p: ";
  Namespace net(ns);
  if (!net.Create(host_if, ns_if)) {
    GTEST_SKIP() << "cannot make a network namespace with a veth pair here: " << net.error();
  }
  // prerouting below the defragmenter (-400) so that fragments are logged as they came.
  ASSERT_TRUE(net.Sh("ip netns exec " + ns + " nft add table inet t")) << net.error();
  ASSERT_TRUE(net.Sh("ip netns exec " + ns +
                     " nft 'add chain inet t pre { type filter hook prerouting priority -450; }'"))
      << net.error();
  ASSERT_TRUE(net.Sh("ip netns exec " + ns + " nft 'add rule inet t pre iifname " + ns_if +
                     " log prefix \"" + prefix + "\" flags all'"))
      << net.error();
  ASSERT_TRUE(net.Sh("ip netns exec " + ns + " nft 'add rule inet t pre iifname " + ns_if +
                     " log prefix \"" + plain_prefix + "\"'"))
      << net.error();

  int kmsg = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (kmsg < 0) GTEST_SKIP() << "cannot read /dev/kmsg";
  ::lseek(kmsg, 0, SEEK_END);

  testing::TempDir dir;
  std::string pcap = dir.path() + "/packets.pcap", err = dir.path() + "/tcpdump.err";
  pid_t dump = ::fork();
  ASSERT_GE(dump, 0);
  if (dump == 0) {
    int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::execlp("ip", "ip", "netns", "exec", ns.c_str(), "tcpdump", "-n", "-U", "--immediate-mode",
             "-s", "0", "-i", ns_if.c_str(), "-w", pcap.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  bool listening = false;
  for (int i = 0; i < 100 && !listening; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream in(err);
    std::stringstream s;
    s << in.rdbuf();
    listening = s.str().find("listening on") != std::string::npos;
  }
  ASSERT_TRUE(listening) << "tcpdump did not start";

  int sock = ::socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  ASSERT_GE(sock, 0);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(::if_nametoindex(host_if.c_str()));
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, kNsMac, 6);
  auto frames = TestFrames();
  frames.push_back(IcmpErrorFrame());
  for (const auto& f : frames) {
    ASSERT_EQ(::sendto(sock, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(f.size()));
  }
  ::close(sock);

  // The kernel's records: "prio,seq,usec,flags;message\n" and continuation lines.
  std::vector<std::string> lines, plain_lines;
  for (int i = 0; i < 40 && (lines.size() < frames.size() || plain_lines.size() < frames.size());
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    char rec[8192];
    ssize_t n;
    while ((n = ::read(kmsg, rec, sizeof rec - 1)) > 0 || (n < 0 && errno == EPIPE)) {
      if (n <= 0) continue;  // EPIPE: records overwritten before we read them
      std::string_view r(rec, static_cast<size_t>(n));
      size_t semi = r.find(';');
      if (semi == std::string_view::npos) continue;
      std::string_view msg = r.substr(semi + 1);
      msg = msg.substr(0, msg.find('\n'));
      if (msg.starts_with(prefix)) lines.emplace_back(msg);
      if (msg.starts_with(plain_prefix)) plain_lines.emplace_back(msg);
    }
  }
  ::close(kmsg);
  // tcpdump writes each packet as it gets it (-U, --immediate-mode): wait for all of them.
  auto all = frames.size();
  for (int i = 0; i < 40 && DecodeCaptureQuiet(pcap) < all; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(dump, SIGINT);
  int status = 0;
  ::waitpid(dump, &status, 0);

  auto packets = DecodeCapture(pcap);
  // The capture also holds the host's own neighbour discovery; CompareLines matches by source.
  EXPECT_GE(packets.size(), frames.size()) << "tcpdump did not capture every frame";
  // Lines from other sources (the host's own neighbour discovery) are not compared.
  ASSERT_GE(lines.size(), frames.size()) << "the kernel did not log every frame";
  EXPECT_EQ(CompareLines(lines, packets, {}), frames.size());
  ASSERT_GE(plain_lines.size(), frames.size()) << "the kernel did not log every frame twice";
  EXPECT_EQ(CompareLines(plain_lines, packets, {}, /*plain=*/true), frames.size());

  if (const char* save = std::getenv("TEITEN_NFLOG_SAVE")) {  // how tests/data/nflog was made
    std::ofstream out(std::string(save) + "/kernel.txt");
    for (const auto& l : lines) out << l << "\n";
    std::ofstream plain_out(std::string(save) + "/kernel-plain.txt");
    for (const auto& l : plain_lines) plain_out << l << "\n";
    std::filesystem::copy_file(pcap, std::string(save) + "/packets.pcap",
                               std::filesystem::copy_options::overwrite_existing);
  }
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

// A sensor restarted reads on from where it stopped: no line twice, none missed; a file that was
// rotated meanwhile is read from its start.
TEST(NflogReader, ResumesAtItsPositionUnlessTheFileChanged) {
  testing::TempDir dir;
  std::string path = dir.path() + "/kern.log";
  std::string text;
  for (int i = 1; i <= 20; ++i) text += LogLine(i);
  Append(path, text);
  NflogContext ctx;
  ctx.year = 2026;
  NflogReaderOptions opt;
  opt.follow = true;
  auto first = NetfilterLogReader::Open(path, ctx, opt);
  ASSERT_TRUE(first.ok());
  ObservationBatch batch;
  ASSERT_EQ(*first->Next(&batch, 7), 7u);  // the rest of the file is read but held
  NetfilterLogReader::Position pos = first->position();
  EXPECT_GT(pos.offset, 0);
  opt.resume_inode = pos.inode;
  opt.resume_offset = pos.offset;
  auto second = NetfilterLogReader::Open(path, ctx, opt);
  ASSERT_TRUE(second.ok());
  ObservationBatch rest;
  EXPECT_EQ(Drain(&*second, &rest), 13u);
  ASSERT_EQ(rest.rows.size(), 13u);
  EXPECT_EQ(rest.rows.front().ip_id, 8);
  // Rotated away: the new file at the path is another inode, read whole.
  std::filesystem::rename(path, path + ".1");
  Append(path, LogLine(21) + LogLine(22));
  auto third = NetfilterLogReader::Open(path, ctx, opt);
  ASSERT_TRUE(third.ok());
  ObservationBatch after;
  EXPECT_EQ(Drain(&*third, &after), 2u);
}

}  // namespace
}  // namespace teiten
