// Segments: every field of every observation round-trips through SegmentWriter and
// SegmentReader under every column mask, and corruption is a DataLoss naming file, block and
// column.
#include "store/segment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "test_support.h"

namespace teiten {
namespace {

::testing::AssertionResult Mentions(const std::string& message, const std::string& part) {
  if (message.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << message << "' does not mention '" << part << "'";
}

// Observations shaped like a telescope's mix: scanners whose fields follow their tool's rules
// (Mirai's seq = dst, Masscan's IP ID, ZMap's 54321), stacks that retransmit, TCP options with
// timestamps, UDP and ICMP payloads, IPv6, fragments, cut-short captures and plain noise.
struct Generated {
  ObservationBatch batch;
  std::vector<GeoInfo> geo;
  std::vector<uint32_t> order;  // by (src, ts), as the ingest hands rows to the writer
};

Generated Generate(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto u32 = [&] { return static_cast<uint32_t>(rng()); };
  auto below = [&](uint32_t k) { return static_cast<uint32_t>(rng() % k); };
  Generated g;
  std::vector<IpAddr> sources;
  for (int i = 0; i < 400; ++i) {
    if (i % 10 == 9) {
      uint8_t b[16];
      for (auto& x : b) x = static_cast<uint8_t>(rng());
      b[0] = 0x20;
      sources.push_back(IpAddr::V6(b));
    } else {
      sources.push_back(IpAddr::V4(u32()));
    }
  }
  const int64_t t0 = 1530403200000000;
  while (g.batch.rows.size() < n) {
    const IpAddr src = sources[below(static_cast<uint32_t>(sources.size()))];
    const int tool = static_cast<int>(below(10));
    const int burst = 1 + static_cast<int>(below(6));
    int64_t ts = t0 + static_cast<int64_t>(rng() % 86400000000ULL);
    const uint16_t sport = static_cast<uint16_t>(u32());
    const uint8_t ttl = static_cast<uint8_t>(30 + below(200));
    uint16_t ip_id = static_cast<uint16_t>(u32());
    for (int k = 0; k < burst && g.batch.rows.size() < n; ++k) {
      Observation o;
      ts += below(4) == 0 ? static_cast<int64_t>(rng() % 5000000000ULL) : below(100000);
      o.ts_us = ts;
      o.src = src;
      o.sensor = static_cast<uint16_t>(below(7) == 0 ? below(3) : 0);
      if (src.is_v4()) {
        o.dst = IpAddr::V4((below(2) ? 0xCB007100u : 0xC6336400u) | below(256));
      } else {
        uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8};
        for (int x = 4; x < 16; ++x) b[x] = static_cast<uint8_t>(below(3) ? 0 : rng());
        o.dst = IpAddr::V6(b);
      }
      o.ttl = below(20) == 0 ? static_cast<uint8_t>(u32()) : ttl;
      o.proto = 6;
      std::vector<uint8_t> opts, payload;
      switch (tool) {
        case 0:  // Mirai
          o.seq = o.dst.v4();
          o.sport = sport;
          o.dport = below(10) ? 23 : 2323;
          o.window = static_cast<uint16_t>(u32());
          o.ip_id = static_cast<uint16_t>(u32());
          o.tcp_flags = 0x02;
          break;
        case 1:  // Masscan
          o.seq = u32();
          o.sport = sport;
          o.dport = static_cast<uint16_t>(below(3) ? 3389 : u32());
          o.ip_id = static_cast<uint16_t>(o.dst.v4() ^ o.dport ^ o.seq);
          o.window = 1024;
          o.tcp_flags = 0x02;
          if (below(2)) opts = {2, 4, 5, 0xb4};
          break;
        case 2:  // ZMap
          o.seq = u32();
          o.sport = static_cast<uint16_t>(32768 + below(28232));
          o.dport = 80;
          o.ip_id = 54321;
          o.window = 65535;
          o.tcp_flags = 0x02;
          break;
        case 3: {  // a Linux stack with timestamps, retransmitting
          o.seq = u32();
          o.sport = static_cast<uint16_t>(32768 + below(28232));
          o.dport = 22;
          o.window = 29200;
          o.tcp_flags = 0x02;
          o.ip_id = static_cast<uint16_t>(ip_id + below(300));
          uint32_t tsval = u32();
          opts = {2, 4, 5, 0xb4, 4, 2, 8, 10};
          for (int x = 0; x < 4; ++x) opts.push_back(static_cast<uint8_t>(tsval >> (24 - 8 * x)));
          uint32_t tsecr = below(4) ? 0 : u32();
          for (int x = 0; x < 4; ++x) opts.push_back(static_cast<uint8_t>(tsecr >> (24 - 8 * x)));
          opts.insert(opts.end(), {1, 3, 3, 7});
          break;
        }
        case 4:  // UDP with a payload
          o.proto = 17;
          o.sport = sport;
          o.dport = 5060;
          o.ip_id = ip_id++;
          payload.resize(below(kPayloadPrefix + 1));
          for (auto& x : payload) x = static_cast<uint8_t>(below(3) ? 'A' + below(4) : rng());
          o.payload_len = static_cast<uint16_t>(payload.size() + below(2) * below(1400));
          break;
        case 5:  // ICMP echo, Windows-style constant data or varying
          o.proto = src.is_v4() ? 1 : 58;
          o.icmp_type = 8;
          o.icmp_code = static_cast<uint8_t>(below(2));
          payload.assign(32, 'a');
          if (below(2)) payload[below(32)] = static_cast<uint8_t>(rng());
          o.payload_len = 32;
          o.ip_id = ip_id;
          break;
        case 6:  // a non-first fragment: no transport header
          o.proto = 17;
          o.flags = 1;
          o.ip_id = ip_id;
          break;
        case 7:  // backscatter: SYN-ACK with random seq and ack, or RST
          o.tcp_flags = below(2) ? 0x12 : 0x04;
          o.seq = u32();
          o.ack = below(2) ? u32() : 0;
          o.sport = 80;
          o.dport = static_cast<uint16_t>(u32());
          o.window = below(2) ? 8192 : 0;
          break;
        case 8:  // Nmap: one seq and ack per scan, climbing source ports, random TTL
          o.seq = 0x6e6d6170u + sport;
          o.ack = 0x1000u + sport;
          o.sport = static_cast<uint16_t>(sport + k);
          o.dport = static_cast<uint16_t>(below(4) ? 443 : u32());
          o.ip_id = static_cast<uint16_t>(u32());
          o.ttl = static_cast<uint8_t>(37 + below(23));
          o.window = 1024;
          o.tcp_flags = 0x02;
          opts = {2, 4, 5, 0xb4};
          break;
        default:  // noise: every field random, random option bytes, cut short
          o.proto = static_cast<uint8_t>(u32());
          o.flags = static_cast<uint8_t>(below(16));
          o.tcp_flags = static_cast<uint8_t>(u32());
          o.icmp_type = static_cast<uint8_t>(u32());
          o.icmp_code = static_cast<uint8_t>(u32());
          o.seq = u32();
          o.ack = u32();
          o.sport = static_cast<uint16_t>(u32());
          o.dport = static_cast<uint16_t>(u32());
          o.window = static_cast<uint16_t>(u32());
          o.ip_id = static_cast<uint16_t>(u32());
          o.payload_len = static_cast<uint16_t>(u32());
          opts.resize(below(kMaxTcpOptions + 1));
          for (auto& x : opts) x = static_cast<uint8_t>(rng());
          payload.resize(below(kPayloadPrefix + 1));
          for (auto& x : payload) x = static_cast<uint8_t>(rng());
          break;
      }
      if (tool != 9) o.flags |= below(30) == 0 ? 8 : 0;  // snap-truncated
      o.ip_len = static_cast<uint16_t>(20 + (o.proto == 6 ? 20 + opts.size() : 8) + o.payload_len);
      if (below(50) == 0) o.ip_len = static_cast<uint16_t>(u32());
      o.opt_len = static_cast<uint8_t>(opts.size());
      o.payload_cap = static_cast<uint8_t>(payload.size());
      o.blob = static_cast<uint32_t>(g.batch.blob.size());
      g.batch.blob.insert(g.batch.blob.end(), opts.begin(), opts.end());
      g.batch.blob.insert(g.batch.blob.end(), payload.begin(), payload.end());
      GeoInfo gi;
      gi.country =
          static_cast<CountryCode>(src.bytes[12] % 5 == 0 ? 0 : 0x4300 + src.bytes[13] % 26);
      gi.asn = src.bytes[14] % 7 == 0 ? 0 : 4000 + src.bytes[12];
      g.geo.push_back(gi);
      g.batch.rows.push_back(o);
      // A retransmission: the same probe again, later, with a new IP ID and timestamp.
      if ((tool == 3 || tool == 7) && below(2) && g.batch.rows.size() < n) {
        Observation r = o;
        r.ts_us += 3000000;
        r.ip_id = static_cast<uint16_t>(r.ip_id + 700);
        r.blob = static_cast<uint32_t>(g.batch.blob.size());
        g.batch.blob.insert(g.batch.blob.end(), opts.begin(), opts.end());
        g.batch.blob.insert(g.batch.blob.end(), payload.begin(), payload.end());
        if (tool == 3) g.batch.blob[r.blob + 11] ^= 0x55;  // tsval moved on
        g.batch.rows.push_back(r);
        g.geo.push_back(gi);
      }
    }
  }
  g.order.resize(g.batch.rows.size());
  for (uint32_t i = 0; i < g.order.size(); ++i) g.order[i] = i;
  std::stable_sort(g.order.begin(), g.order.end(), [&](uint32_t a, uint32_t b) {
    const Observation &x = g.batch.rows[a], &y = g.batch.rows[b];
    return x.src != y.src ? x.src < y.src : x.ts_us < y.ts_us;
  });
  return g;
}

// Compares the fields `columns` asks for; returns the first difference, or "".
std::string Diff(const Generated& g, uint32_t in, const DecodedBlock& d, size_t i,
                 uint32_t columns) {
  const Observation& a = g.batch.rows[in];
  const Observation& b = d.batch.rows[i];
  auto differs = [&](bool same, const char* what) { return same ? "" : std::string(what); };
  std::string e;
  if (columns & (col::kSrc | col::kTs)) {
    if (!e.size()) e = differs(a.src == b.src, "src");
    if (!e.size()) e = differs(g.geo[in].country == d.geo[i].country, "country");
    if (!e.size()) e = differs(g.geo[in].asn == d.geo[i].asn, "asn");
  }
  if ((columns & col::kTs) && !e.size()) e = differs(a.ts_us == b.ts_us, "ts");
  if ((columns & col::kSensor) && !e.size()) e = differs(a.sensor == b.sensor, "sensor");
  if ((columns & col::kDst) && !e.size()) e = differs(a.dst == b.dst, "dst");
  if ((columns & col::kPorts) && !e.size()) {
    e = differs(a.proto == b.proto && a.sport == b.sport && a.dport == b.dport &&
                    a.icmp_type == b.icmp_type && a.icmp_code == b.icmp_code && a.flags == b.flags,
                "ports");
  }
  if ((columns & col::kHeader) && !e.size()) {
    e = differs(a.ip_len == b.ip_len && a.ttl == b.ttl && a.ip_id == b.ip_id &&
                    a.tcp_flags == b.tcp_flags && a.seq == b.seq && a.ack == b.ack &&
                    a.window == b.window && a.payload_len == b.payload_len,
                "header");
  }
  if ((columns & col::kBlob) && !e.size()) {
    e = differs(a.opt_len == b.opt_len && a.payload_cap == b.payload_cap &&
                    g.batch.Options(a) == d.batch.Options(b) &&
                    g.batch.Payload(a) == d.batch.Payload(b),
                "options or payload");
  }
  return e;
}

class SegmentTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  testing::TempDir dir_;
};

// Decodes every block of `path` with `columns` and compares with what went in.
void ExpectRoundTrip(const std::string& path, const Generated& g, uint32_t columns) {
  auto r = SegmentReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->rows(), g.order.size());
  DecodedBlock d;
  size_t row = 0;
  for (size_t b = 0; b < (*r)->blocks().size(); ++b) {
    Status st = (*r)->ReadBlock(b, columns, &d);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(d.batch.rows.size(), (*r)->blocks()[b].rows);
    for (size_t i = 0; i < d.batch.rows.size(); ++i, ++row) {
      std::string e = Diff(g, g.order[row], d, i, columns);
      ASSERT_EQ(e, "") << "columns " << columns << ", block " << b << ", row " << i;
    }
  }
}

TEST_F(SegmentTest, EveryFieldRoundTripsUnderEveryColumnMask) {
  Generated g = Generate(5000, 1);
  ASSERT_TRUE(SegmentWriter::Write(Path("a.tseg"), g.batch, g.order, g.geo, 3, nullptr).ok());
  for (uint32_t columns = 1; columns <= col::kAll; ++columns) {
    ExpectRoundTrip(Path("a.tseg"), g, columns);
  }
}

TEST_F(SegmentTest, BlocksRoundTripAndAreIndexedInTheFooter) {
  Generated g = Generate(140000, 2);  // three blocks
  ASSERT_TRUE(SegmentWriter::Write(Path("b.tseg"), g.batch, g.order, g.geo, 3, nullptr).ok());
  ExpectRoundTrip(Path("b.tseg"), g, col::kAll);
  ExpectRoundTrip(Path("b.tseg"), g, col::kSrc | col::kTs | col::kSensor | col::kPorts);
  ExpectRoundTrip(Path("b.tseg"), g, col::kHeader);
  ExpectRoundTrip(Path("b.tseg"), g, col::kBlob);
  auto r = SegmentReader::Open(Path("b.tseg"));
  ASSERT_TRUE(r.ok());
  const auto& blocks = (*r)->blocks();
  ASSERT_EQ(blocks.size(), 3u);
  size_t row = 0;
  for (const auto& b : blocks) {
    EXPECT_EQ(b.src_min, g.batch.rows[g.order[row]].src);
    EXPECT_EQ(b.src_max, g.batch.rows[g.order[row + b.rows - 1]].src);
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = row; i < row + b.rows; ++i) {
      lo = std::min(lo, g.batch.rows[g.order[i]].ts_us);
      hi = std::max(hi, g.batch.rows[g.order[i]].ts_us);
    }
    EXPECT_EQ(b.ts_min, lo);
    EXPECT_EQ(b.ts_max, hi);
    row += b.rows;
  }
}

TEST_F(SegmentTest, ExtremeValuesRoundTrip) {
  Generated g;
  const int64_t times[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MAX - 1};
  for (int i = 0; i < 6; ++i) {
    Observation o;
    o.ts_us = times[i];
    o.src = i < 3 ? IpAddr::V4(0xFFFFFFFF) : IpAddr::V4(0);
    o.dst = i % 2 ? IpAddr::V4(0) : IpAddr::V6(IpAddr::V4(0x01020304).bytes.data());
    o.dst.bytes[0] = static_cast<uint8_t>(i);  // IPv6 destinations from IPv4 sources
    o.seq = o.ack = 0xFFFFFFFF;
    o.sport = o.dport = o.ip_len = o.window = o.payload_len = 0xFFFF;
    o.ip_id = static_cast<uint16_t>(i * 0x7FFF);
    o.sensor = 0xFFFF;
    o.proto = o.ttl = o.tcp_flags = o.icmp_type = o.icmp_code = o.flags = 0xFF;
    o.opt_len = kMaxTcpOptions;
    o.payload_cap = kPayloadPrefix;
    o.blob = static_cast<uint32_t>(g.batch.blob.size());
    for (int k = 0; k < kMaxTcpOptions + kPayloadPrefix; ++k) {
      g.batch.blob.push_back(static_cast<uint8_t>(k * 7 + i));
    }
    g.batch.rows.push_back(o);
    g.geo.push_back({0xFFFF, 0xFFFFFFFF});
    g.order.push_back(static_cast<uint32_t>(i));
  }
  ASSERT_TRUE(SegmentWriter::Write(Path("x.tseg"), g.batch, g.order, g.geo, 1, nullptr).ok());
  auto r = SegmentReader::Open(Path("x.tseg"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  DecodedBlock d;
  ASSERT_TRUE((*r)->ReadBlock(0, col::kAll, &d).ok());
  ASSERT_EQ(d.batch.rows.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(Diff(g, g.order[i], d, i, col::kAll), "") << i;
}

TEST_F(SegmentTest, RepetitiveScannersCostFewBytesPerRow) {
  // Mirai: per row only the IP ID, the window and the destination host are new; the rest is
  // predicted (seq = dst, the source port, TTL and port from the previous row).
  Generated g;
  for (uint32_t i = 0; i < 65536; ++i) {
    Observation o;
    o.ts_us = 1530403200000000 + i * 1000;
    o.src = IpAddr::V4(0x0A000000 + i / 8);
    o.dst = IpAddr::V4(0xCB007100 | ((i * 2654435761u) >> 24));
    o.proto = 6;
    o.seq = o.dst.v4();
    o.sport = static_cast<uint16_t>(40000 + i / 8);
    o.dport = 23;
    o.ttl = 50;
    o.tcp_flags = 2;
    o.ip_len = 40;
    o.ip_id = static_cast<uint16_t>((i * 40503u) >> 3);
    o.window = static_cast<uint16_t>((i * 9973u) >> 2);
    g.batch.rows.push_back(o);
    g.geo.push_back({});
    g.order.push_back(i);
  }
  uint64_t bytes = 0;
  ASSERT_TRUE(SegmentWriter::Write(Path("m.tseg"), g.batch, g.order, g.geo, 3, &bytes).ok());
  EXPECT_LT(static_cast<double>(bytes) / 65536, 7.0);
}

// The layout facts the corruption tests rely on (docs/STORE_FORMAT.md, "Segments").
constexpr size_t kStreams = 35;
constexpr size_t kDirBytes = 4 + kStreams * 12 + 4;
const char* const kStreamColumn[kStreams] = {
    "sources",     "sources",     "sources", "sources", "sources", "time",        "time",
    "time",        "sensor",      "classes", "classes", "classes", "destination", "destination",
    "destination", "destination", "ports",   "ports",   "ports",   "ports",       "header",
    "header",      "header",      "header",  "header",  "header",  "header",      "header",
    "payload",     "payload",     "payload", "payload", "payload", "payload",     "payload"};

std::vector<char> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}
void WriteFile(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST_F(SegmentTest, ACorruptByteInAnyColumnIsDataLossNamingFileBlockAndColumn) {
  Generated g = Generate(70000, 2);
  const std::string good = Path("good.tseg");
  ASSERT_TRUE(SegmentWriter::Write(good, g.batch, g.order, g.geo, 3, nullptr).ok());
  auto r = SegmentReader::Open(good);
  ASSERT_TRUE(r.ok());
  const auto blocks = (*r)->blocks();
  ASSERT_EQ(blocks.size(), 2u);
  const std::vector<char> bytes = ReadFile(good);
  // Block 0 holds IPv4 and IPv6 rows; its directory gives each stream's place.
  const size_t base = blocks[0].offset;
  uint32_t count;
  std::memcpy(&count, bytes.data() + base, 4);
  ASSERT_EQ(count, kStreams);
  size_t at = base + kDirBytes;
  int tested = 0;
  for (size_t s = 0; s < kStreams; ++s) {
    uint32_t stored;
    std::memcpy(&stored, bytes.data() + base + 4 + s * 12 + 4, 4);
    if (stored == 0) {
      continue;
    }
    std::vector<char> bad = bytes;
    bad[at + stored / 2] ^= 0x20;
    const std::string path = Path("bad" + std::to_string(s) + ".tseg");
    WriteFile(path, bad);
    auto br = SegmentReader::Open(path);
    ASSERT_TRUE(br.ok()) << br.status().ToString();
    DecodedBlock d;
    EXPECT_TRUE((*br)->ReadBlock(1, col::kAll, &d).ok()) << "stream " << s;
    Status st = (*br)->ReadBlock(0, col::kAll, &d);
    EXPECT_EQ(st.code(), StatusCode::kDataLoss) << "stream " << s;
    EXPECT_TRUE(Mentions(st.message(), path));
    EXPECT_TRUE(Mentions(st.message(), "block 0"));
    EXPECT_TRUE(Mentions(st.message(), std::string("column ") + kStreamColumn[s] + " ("))
        << "stream " << s;
    // Columns that do not need the corrupt stream still read.
    if (std::string(kStreamColumn[s]) == "payload") {
      EXPECT_TRUE((*br)->ReadBlock(0, col::kSrc | col::kTs | col::kPorts, &d).ok());
    }
    at += stored;
    ++tested;
  }
  EXPECT_EQ(tested, static_cast<int>(kStreams));
  // The column directory.
  std::vector<char> bad = bytes;
  bad[base + 4 + 5 * 12] ^= 1;
  WriteFile(Path("dir.tseg"), bad);
  auto br = SegmentReader::Open(Path("dir.tseg"));
  ASSERT_TRUE(br.ok());
  DecodedBlock d;
  Status st = (*br)->ReadBlock(0, col::kSensor, &d);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Mentions(st.message(), "block 0: column directory"));
}

TEST_F(SegmentTest, ACutShortOrDamagedFileIsDataLoss) {
  Generated g = Generate(3000, 3);
  const std::string good = Path("good.tseg");
  ASSERT_TRUE(SegmentWriter::Write(good, g.batch, g.order, g.geo, 3, nullptr).ok());
  const std::vector<char> bytes = ReadFile(good);
  for (size_t keep : {bytes.size() - 1, bytes.size() / 2, size_t{20}, size_t{0}}) {
    const std::string path = Path("cut" + std::to_string(keep) + ".tseg");
    WriteFile(path, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(keep)));
    auto r = SegmentReader::Open(path);
    ASSERT_FALSE(r.ok()) << keep;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_TRUE(Mentions(r.status().message(), path));
  }
  std::vector<char> bad = bytes;
  bad[bytes.size() - 40] ^= 1;  // inside the footer's block index
  WriteFile(Path("foot.tseg"), bad);
  auto r = SegmentReader::Open(Path("foot.tseg"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Mentions(r.status().message(), "footer checksum mismatch"));
  bad = bytes;
  bad[0] = 'X';
  WriteFile(Path("magic.tseg"), bad);
  r = SegmentReader::Open(Path("magic.tseg"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Mentions(r.status().message(), "bad magic"));
  // A segment of the previous format says so.
  bad = bytes;
  bad[7] = '1';
  bad[bytes.size() - 1] = '1';
  WriteFile(Path("v1.tseg"), bad);
  r = SegmentReader::Open(Path("v1.tseg"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Mentions(r.status().message(), "segment format 1"));
}

}  // namespace
}  // namespace teiten
