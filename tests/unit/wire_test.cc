// The batch wire format (src/transport/wire.h): real captures round-trip exactly, and damaged or
// hostile frames are refused with the offset and field named, never read out of bounds.
#include "transport/wire.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <xxhash.h>
#include <zstd.h>

#include <cstring>
#include <filesystem>

#include "capture/decoder.h"
#include "capture/pcap_file.h"
#include "test_support.h"

namespace teiten {
namespace {

ObservationBatch DecodeCapture(const std::string& path) {
  auto f = PcapFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  ObservationBatch b;
  Decoder d;
  PcapFile::Packet pkt;
  while (true) {
    auto more = (*f)->Next(&pkt);
    EXPECT_TRUE(more.ok());
    if (!more.ok() || !*more) break;
    Observation o;
    if (d.Decode((*f)->datalink(), pkt.ts_us, pkt.data, pkt.caplen, pkt.wirelen, &o, &b.blob)) {
      b.rows.push_back(o);
    }
  }
  return b;
}

void ExpectSameRows(const ObservationBatch& a, const ObservationBatch& b) {
  ASSERT_EQ(a.rows.size(), b.rows.size());
  EXPECT_EQ(a.blob, b.blob);
  for (size_t i = 0; i < a.rows.size(); ++i) {
    Observation x = a.rows[i], y = b.rows[i];
    x.sensor = y.sensor = 0;  // not sent (see wire.h)
    ASSERT_EQ(x.ts_us, y.ts_us) << i;
    ASSERT_TRUE(x.src == y.src && x.dst == y.dst) << i;
    ASSERT_EQ(std::tie(x.seq, x.ack, x.blob, x.sport, x.dport, x.ip_len, x.ip_id, x.window,
                       x.payload_len, x.proto, x.ttl, x.tcp_flags, x.icmp_type, x.icmp_code,
                       x.opt_len, x.payload_cap, x.flags),
              std::tie(y.seq, y.ack, y.blob, y.sport, y.dport, y.ip_len, y.ip_id, y.window,
                       y.payload_len, y.proto, y.ttl, y.tcp_flags, y.icmp_type, y.icmp_code,
                       y.opt_len, y.payload_cap, y.flags))
        << i;
  }
}

// The packet counts are tshark's (`tshark -r FILE | wc -l`; every packet of these is IP).
TEST(WireTest, RealCapturesRoundTripExactly) {
  struct Case {
    const char* file;
    size_t packets;
  };
  for (const Case& c : {Case{"tcp_0_1000_20190821.pcap", 1005}, Case{"sip.pcap", 112},
                        Case{"nmap_80_all.pcap", 0}, Case{"amp.dns.RRSIG.fragmented.pcap", 0}}) {
    std::string path = testing::SharedPcapDir() + "/" + c.file;
    WireBatch in;
    in.sensor_id = "tokyo-1";
    in.batch_id = 42;
    in.stream = 0x1234567890abcdefull;
    in.lost = {{"kernel_dropped", 7}, {"spool_full", 0}};
    in.obs = DecodeCapture(path);
    if (c.packets) {
      EXPECT_EQ(in.obs.rows.size(), c.packets) << c.file;
    }
    auto bytes = EncodeBatch(in);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    auto out = DecodeBatch(*bytes);
    ASSERT_TRUE(out.ok()) << c.file << ": " << out.status().ToString();
    EXPECT_EQ(out->sensor_id, "tokyo-1");
    EXPECT_EQ(out->batch_id, 42u);
    EXPECT_EQ(out->stream, 0x1234567890abcdefull);
    EXPECT_EQ(out->lost, in.lost);
    ExpectSameRows(in.obs, out->obs);
    uint64_t pcap_bytes = std::filesystem::file_size(path);
    double n = static_cast<double>(in.obs.rows.size());
    std::printf("%s: %zu rows, wire %zu bytes (%.1f B/packet), pcap %lu bytes (%.1f B/packet)\n",
                c.file, in.obs.rows.size(), bytes->size(), bytes->size() / n,
                static_cast<unsigned long>(pcap_bytes), pcap_bytes / n);
    EXPECT_LT(bytes->size(), pcap_bytes) << c.file;
  }
}

TEST(WireTest, EmptyBatchCarriesLossesOnly) {
  WireBatch in;
  in.sensor_id = "s";
  in.batch_id = UINT64_MAX;
  in.lost = {{"spool_full", 123456789012ull}};
  auto bytes = EncodeBatch(in);
  ASSERT_TRUE(bytes.ok());
  auto out = DecodeBatch(*bytes);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->batch_id, UINT64_MAX);
  EXPECT_EQ(out->lost, in.lost);
  EXPECT_TRUE(out->obs.rows.empty());
}

TEST(WireTest, EncodeRefusesWhatCannotBeRepresented) {
  WireBatch in;
  in.sensor_id = "bad id";
  EXPECT_FALSE(EncodeBatch(in).ok());
  in.sensor_id = std::string(65, 'a');
  EXPECT_FALSE(EncodeBatch(in).ok());
  in.sensor_id = "ok";
  in.obs.rows.resize(1);
  in.obs.rows[0].opt_len = 4;  // beyond the empty arena
  EXPECT_FALSE(EncodeBatch(in).ok());
}

std::string SmallFrame() {
  WireBatch in;
  in.sensor_id = "osaka-2";
  in.batch_id = 9;
  in.lost = {{"kernel_dropped", 3}};
  in.obs = DecodeCapture(testing::SharedPcapDir() + "/telnet.pcap");
  auto bytes = EncodeBatch(in);
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

TEST(WireTest, EveryTruncationAndEveryByteFlipIsRefused) {
  std::string good = SmallFrame();
  ASSERT_TRUE(DecodeBatch(good).ok());
  for (size_t n = 0; n < good.size(); ++n) {
    auto r = DecodeBatch(std::string_view(good).substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  }
  EXPECT_FALSE(DecodeBatch(good + "x").ok());
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x40;
    auto r = DecodeBatch(bad);
    ASSERT_FALSE(r.ok()) << "flip at " << i;
    EXPECT_NE(r.status().message().find("byte "), std::string::npos) << r.status().message();
  }
}

// Frames a hand-made body with correct checksums, as a hostile sender that knows the format would.
std::string Frame(const std::string& body) {
  std::string z(ZSTD_compressBound(body.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), body.data(), body.size(), 1));
  std::string h = "TTWB";
  auto put = [&](auto v) { h.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  put(uint16_t{1});
  put(uint16_t{0});
  put(static_cast<uint32_t>(z.size()));
  put(static_cast<uint32_t>(body.size()));
  put(static_cast<uint64_t>(XXH3_64bits(z.data(), z.size())));
  put(static_cast<uint64_t>(XXH3_64bits(h.data(), 24)));
  return h + z;
}

struct Body {
  std::string s;
  template <typename T>
  Body& Put(T v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof(v));
    return *this;
  }
  Body& Str(std::string_view v) {
    Put(static_cast<uint8_t>(v.size()));
    s.append(v);
    return *this;
  }
};

// A header for a batch "s1" #5 of stream 9 spanning [100, 200] µs with no losses: 37 bytes (1+2
// id, 8 batch id, 8 stream, 2×8 times, 2 loss count), so row_count is at 37, blob_size at 41, the
// ts deltas at 45, src at 53, dst 69, seq 85, ack 89, blob 93, the six u16 columns 97..108,
// proto…icmp_code 109..113 and opt_len at 114.
Body Head() {
  Body b;
  b.Str("s1")
      .Put(uint64_t{5})
      .Put(uint64_t{9})
      .Put(int64_t{100})
      .Put(int64_t{200})
      .Put(uint16_t{0});
  return b;
}

// One row with `ts_delta` and the given opt_len/payload_cap/blob, in a `blob_size` arena.
std::string OneRow(uint64_t ts_delta, uint8_t opt_len, uint8_t payload_cap, uint32_t blob,
                   uint32_t blob_size) {
  Body b = Head();
  b.Put(uint32_t{1}).Put(blob_size).Put(ts_delta);
  b.s.append(32, '\0');                             // src, dst
  b.Put(uint32_t{0}).Put(uint32_t{0}).Put(blob);    // seq, ack, blob
  for (int i = 0; i < 6; ++i) b.Put(uint16_t{0});   // sport … payload_len
  for (int i = 0; i < 5; ++i) b.Put(uint8_t{0});    // proto … icmp_code
  b.Put(opt_len).Put(payload_cap).Put(uint8_t{0});  // opt_len, payload_cap, flags
  b.s.append(blob_size, 'p');
  return b.s;
}

TEST(WireTest, HostileBodiesWithGoodChecksumsAreRefusedNamingFieldAndOffset) {
  ASSERT_TRUE(DecodeBatch(Frame(OneRow(50, 4, 8, 0, 12))).ok());
  struct Case {
    std::string body;
    std::string expect;  // in the message
  };
  std::vector<Case> cases = {
      {OneRow(50, 41, 0, 0, 41), "byte 114 (field 'opt_len[0]'): 41 > 40"},
      {OneRow(50, 0, 97, 0, 97), "field 'payload_cap[0]'): 97 > 96"},
      {OneRow(50, 4, 8, 1, 12), "byte 93 (field 'blob[0]'): 1+4+8 beyond the 12-byte arena"},
      {OneRow(101, 0, 0, 0, 0), "byte 45 (field 'ts_delta[0]')"},
      {OneRow(uint64_t(-1), 0, 0, 0, 0), "field 'ts_delta[0]'"},
      {OneRow(50, 0, 0, 0, 0) + "x", "field 'row_count'"},
      {Head().Put(uint32_t{0xffffffff}).Put(uint32_t{0}).s, "byte 37 (field 'row_count')"},
      {Body().Str("s 1").s, "byte 1 (field 'sensor_id')"},
      {Body().Str("").s, "field 'sensor_id'"},
      {Body().Put(uint8_t{200}).s, "field 'sensor_id'): needs 200 bytes, 0 left"},
      {Body().Str("s1").Put(uint64_t{1}).Put(uint64_t{9}).Put(int64_t{5}).Put(int64_t{4}).s,
       "'first_ts_us'): after"},
      {Body()
           .Str("s1")
           .Put(uint64_t{1})
           .Put(uint64_t{9})
           .Put(int64_t{0})
           .Put(int64_t{0})
           .Put(uint16_t{2})
           .Str("a")
           .Put(uint64_t{1})
           .Str("a")
           .Put(uint64_t{1})
           .s,
       "'loss[1].reason'): repeated"},
      {Body()
           .Str("s1")
           .Put(uint64_t{1})
           .Put(uint64_t{9})
           .Put(int64_t{0})
           .Put(int64_t{0})
           .Put(uint16_t{1})
           .Str("a b")
           .Put(uint64_t{1})
           .s,
       "'loss[0].reason'): invalid"},
      {Body().Str("s1").Put(uint64_t{1}).s, "field 'stream'): needs 8 bytes, 0 left"},
      {Body().Str("s1").Put(uint64_t{1}).Put(uint64_t{9}).s,
       "field 'first_ts_us'): needs 8 bytes, 0 left"},
  };
  for (const Case& c : cases) {
    auto r = DecodeBatch(Frame(c.body));
    ASSERT_FALSE(r.ok()) << c.expect;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << "want '" << c.expect << "' in: " << r.status().message();
  }
}

TEST(WireTest, LimitsAndHeaderFieldsAreChecked) {
  std::string good = SmallFrame();
  WireLimits small;
  small.max_frame = 64;
  auto r = DecodeBatch(good, small);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("byte 8 (field 'compressed_length')"), std::string::npos);
  small = WireLimits{};
  small.max_decompressed = 100;
  r = DecodeBatch(good, small);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("byte 12 (field 'decompressed_length')"), std::string::npos);
  // A future version with a correct header checksum is refused as such, not as corruption.
  std::string v2 = good;
  v2[4] = 2;
  uint64_t hc = XXH3_64bits(v2.data(), 24);
  std::memcpy(v2.data() + 24, &hc, 8);
  r = DecodeBatch(v2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'version'): 2 (this build reads 1)"), std::string::npos)
      << r.status().message();
  // A declared size that disagrees with the zstd frame's own is refused before allocating.
  std::string lie = Frame(OneRow(50, 0, 0, 0, 0));
  uint32_t big = 1000;
  std::memcpy(lie.data() + 12, &big, 4);
  hc = XXH3_64bits(lie.data(), 24);
  std::memcpy(lie.data() + 24, &hc, 8);
  r = DecodeBatch(lie);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("byte 32 (field 'body')"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

TEST(WireTest, ARequestOfSeveralFramesSplitsAtTheirLengthsAndCutsAreNamed) {
  std::string body;
  std::vector<size_t> sizes;
  for (uint64_t id = 1; id <= 3; ++id) {
    WireBatch b;
    b.sensor_id = "s1";
    b.batch_id = id;
    b.obs = DecodeCapture(testing::SharedPcapDir() + "/sip.pcap");
    auto f = EncodeBatch(b);
    ASSERT_TRUE(f.ok());
    sizes.push_back(f->size());
    body += *f;
  }
  auto frames = SplitFrames(body, 16);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ASSERT_EQ(frames->size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*frames)[i].size(), sizes[i]);
    auto b = DecodeBatch((*frames)[i]);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->batch_id, i + 1);
  }
  auto cut = SplitFrames(std::string_view(body).substr(0, body.size() - 1), 16);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find(fmt::format("request byte {}", sizes[0] + sizes[1])),
            std::string::npos)
      << cut.status().message();
  EXPECT_FALSE(SplitFrames(body, 2).ok());
  EXPECT_FALSE(SplitFrames("", 2).ok());
  EXPECT_FALSE(SplitFrames(body + "tail", 16).ok());
}

}  // namespace
}  // namespace teiten
