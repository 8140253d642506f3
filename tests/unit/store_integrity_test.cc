// The store under hostile input (issue 10): a flipped byte is an error, never a wrong number;
// the same packets count once however they arrive; streams, broken and compressed captures;
// verify, rebuild and forget.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "analysis/query.h"
#include "ingest/ingest.h"
#include "store/manifest_json.h"
#include "store/verify.h"
#include "store_test_support.h"
#include "test_support.h"

namespace teiten {
namespace {

using namespace store_testing;

TEST_F(StoreTest, AFlippedByteInARollupIndexOrManifestIsAnErrorNeverAWrongNumber) {
  // Regression (issue 10): one flipped byte in a rollup printed 280,375,465,082,882 packets.
  std::vector<Pkt> pkts;
  for (uint32_t i = 0; i < 300; ++i) {
    pkts.push_back({kAug12Jst + int64_t{i % 3} * 86400 * kS + i, 0x01010100u + i % 17,
                    kNet + (i & 0x3F), static_cast<uint8_t>(i % 5 ? 6 : 17),
                    static_cast<uint16_t>(i % 7 * 1000 + 23)});
  }
  WritePcap(Path("a.pcap"), pkts);
  Open();
  Ingest(Path("a.pcap"));
  const IpAddr src = IpAddr::V4(0x01010101u);
  std::string store_period_file_ = store_->manifest().periods.at("2018Q3").at(0);
  auto want = Answers(*store_, src);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  store_.reset();
  std::vector<std::string> files = {"MANIFEST"};
  for (const char* sub : {"rollup", "idx", "man"}) {
    for (const auto& e : fs::directory_iterator(Path("store/") + sub)) {
      files.push_back(std::string(sub) + "/" + e.path().filename().string());
    }
  }
  // The files these queries read: every flip in them must be an error.
  std::set<std::string> read = {"MANIFEST", store_period_file_};
  for (const std::string& rel : files) {
    if (rel.rfind("idx/", 0) == 0 || rel.rfind("man/", 0) == 0) read.insert(rel);
  }
  for (const std::string& rel : files) {
    int flips = 0, errors = 0;
    std::string path = Path("store/" + rel);
    std::string bytes = testing::Run("cat " + path);
    ASSERT_FALSE(bytes.empty()) << rel;
    size_t stride = std::max<size_t>(1, bytes.size() / 400);
    for (size_t at = 0; at < bytes.size(); at += stride) {
      std::string bad = bytes;
      bad[at] = static_cast<char>(bad[at] ^ 0x10);
      std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
      ++flips;
      auto s = Store::Open(Path("store"), {});
      Result<std::string> got = s.ok() ? Answers(**s, src) : Result<std::string>(s.status());
      if (!got.ok()) {
        ++errors;
        EXPECT_EQ(got.status().code(), StatusCode::kDataLoss)
            << rel << " @" << at << ": " << got.status().ToString();
        EXPECT_NE(got.status().message().find(rel.substr(rel.find('/') + 1)), std::string::npos)
            << got.status().message();
      } else {
        EXPECT_EQ(*got, *want) << rel << " @" << at;
        // A file's whole-file checksum and its chunk table's checksum are for `teiten verify`;
        // queries check the chunks they read.
        bool verify_only = rel != "MANIFEST" && at >= bytes.size() - 24 && at < bytes.size() - 8;
        if (verify_only) ++errors;
        if (read.count(rel) && !verify_only) {
          ADD_FAILURE() << rel << " @" << at << " read without an error";
        }
      }
    }
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    if (read.count(rel)) {
      EXPECT_EQ(errors, flips) << rel;
    }
  }
  Open();
  EXPECT_EQ(*Answers(*store_, src), *want);
}

TEST_F(StoreTest, QueriesDuringCommitsNeverFailAndSeeWholeCommits) {
  // Regression (issue 10): a query while an ingest committed failed ~1% of the time
  // ("rollup …: No such file"), the rollups it had been given deleted under it.
  constexpr int kFiles = 25;
  for (int f = 0; f < kFiles; ++f) {
    std::vector<Pkt> pkts;
    for (uint32_t i = 0; i < 200; ++i) {
      pkts.push_back({kAug12Jst + int64_t{f} * 3600 * kS + i, 0x02000000u + f * 1000 + i % 50,
                      kNet + (i & 0xFF), 6, static_cast<uint16_t>(23 + i % 3)});
    }
    WritePcap(Path(fmt::format("f{}.pcap", f)), pkts);
  }
  Open();
  Ingest(Path("f0.pcap"));
  store_.reset();
  pid_t pid = fork();
  if (pid == 0) {
    auto s = Store::Open(Path("store"), {});
    if (!s.ok()) _exit(2);
    for (int f = 1; f < kFiles; ++f) {
      Ingester ing(s->get(), nullptr);
      if (!ing.IngestFile(Sensor(), Path(fmt::format("f{}.pcap", f))).ok()) _exit(1);
    }
    _exit(0);
  }
  uint64_t last = 0;
  int queries = 0, st = 0;
  while (waitpid(pid, &st, WNOHANG) == 0 || queries < 5) {
    auto s = Store::Open(Path("store"), {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    for (int k = 0; k < 3; ++k) {  // the same snapshot, queried while commits go on
      auto top = Top(**s, Dimension::kPort, *ParsePeriod("2018-08"), {}, 10);
      ASSERT_TRUE(top.ok()) << top.status().ToString();
      auto series =
          Series(**s, Dimension::kPort, {}, *ParsePeriod("2018-08"), Granularity::kDay, {});
      ASSERT_TRUE(series.ok()) << series.status().ToString();
      // Whole commits only: a multiple of one file's packets, never fewer than seen before.
      EXPECT_EQ(top->total_packets % 200, 0u);
      EXPECT_GE(top->total_packets, last);
      last = top->total_packets;
    }
    ++queries;
  }
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  Open();
  auto top = Top(*store_, Dimension::kPort, *ParsePeriod("2018-08"), {}, 10);
  EXPECT_EQ(top->total_packets, 200u * kFiles);
  EXPECT_EQ(top->total_sources, 50u * kFiles);
  // Once no reader holds an old snapshot, the next commit leaves only files the manifest names.
  WritePcap(Path("last.pcap"), {{kAug12Jst, 0x03030303, kNet + 1, 6, 23}});
  Ingest(Path("last.pcap"));
  std::set<std::string> named_parts;  // a part may be named by a sensor's key and a pooled one
  store_->ForEachRollup([&](const std::string& p) { named_parts.insert(p); });
  size_t named = named_parts.size(), on_disk = 0;
  for (const auto& e : fs::directory_iterator(Path("store/rollup"))) on_disk += e.is_regular_file();
  EXPECT_EQ(on_disk, named);
}

TEST_F(StoreTest, TwoFirstIngestsIntoAStoreThatDoesNotExistYetBothSucceed) {
  // Regression (issue 10): one of them failed on `rename …/MANIFEST.tmp`.
  WritePcap(Path("a.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  WritePcap(Path("b.pcap"), {{kAug12Jst, 0x02020202, kNet + 2, 6, 445}});
  for (int round = 0; round < 8; ++round) {
    std::string dir = Path(fmt::format("race{}", round));
    std::vector<pid_t> kids;
    for (const char* file : {"a.pcap", "b.pcap"}) {
      pid_t pid = fork();
      if (pid == 0) {
        auto s = Store::Open(dir, {.create = true, .timezone = "Asia/Tokyo"});
        if (!s.ok()) _exit(2);
        Ingester ing(s->get(), nullptr);
        _exit(ing.IngestFile(Sensor(), Path(file)).ok() ? 0 : 1);
      }
      kids.push_back(pid);
    }
    for (pid_t k : kids) {
      int st = 0;
      waitpid(k, &st, 0);
      EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "round " << round << ": " << st;
    }
    auto s = Store::Open(dir, {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    auto top = Top(**s, Dimension::kPort, *ParsePeriod("2018-08-12"), {}, 10);
    ASSERT_TRUE(top.ok());
    EXPECT_EQ(top->total_packets, 2u);
    EXPECT_EQ(top->rows.size(), 2u);
  }
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

TEST_F(StoreTest, TheSameCapturePlainGzippedOrZstdCountsOnce) {
  // Regression (issue 10): dedup was by file bytes, so the same packets compressed counted twice.
  std::vector<Pkt> pkts;
  for (int i = 0; i < 500; ++i)
    pkts.push_back({kAug12Jst + i, 0x01010101u + static_cast<uint32_t>(i % 7), kNet + 1, 6, 23});
  WritePcap(Path("c.pcap"), pkts);
  bool ok = false;
  testing::Run("gzip -c " + Path("c.pcap") + " > " + Path("c.pcap.gz"), &ok);
  ASSERT_TRUE(ok);
  testing::Run("zstd -q -c " + Path("c.pcap") + " > " + Path("c.pcap.zst"), &ok);
  ASSERT_TRUE(ok);
  testing::Run("cp " + Path("c.pcap") + " " + Path("renamed.pcap"), &ok);
  Open();
  IngestSummary first = Ingest(Path("c.pcap.zst"));
  EXPECT_EQ(first.kept, 500u);
  EXPECT_FALSE(first.already_ingested);
  for (const char* again : {"c.pcap", "c.pcap.gz", "c.pcap.zst", "renamed.pcap"}) {
    IngestSummary s = Ingest(Path(again));
    EXPECT_TRUE(s.already_ingested) << again;
    EXPECT_EQ(s.hash, first.hash) << again;
  }
  EXPECT_EQ(store_->manifest().inputs.size(), 1u);
  EXPECT_EQ(PortTotal(*store_, "2018-08-12"), 500u);
  // For another sensor, the same packets are refused with the sensor that has them.
  Ingester ing(store_.get(), nullptr);
  auto r = ing.IngestFile(Sensor("osa1"), Path("c.pcap.gz"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(r.status().message().find("already ingested for sensor 'tyo1'"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(PortTotal(*store_, "2018-08-12"), 500u);
}

TEST_F(StoreTest, AFileIngestedBeforeIsKnownByItsBytesWhileItIsReadAndAddsNothing) {
  // The file's bytes are hashed beside the reading (not in a pass of their own before it): a
  // file ingested before is recognised at a batch boundary or at its end, its transaction
  // dropped whole, under whatever batch size; for another sensor it is the same error as before.
  std::vector<Pkt> pkts;
  for (int i = 0; i < 5000; ++i) {
    pkts.push_back({kAug12Jst + i * kS, 0x01010101u + static_cast<uint32_t>(i % 301), kNet + 1, 6,
                    static_cast<uint16_t>(23 + i % 3)});
  }
  WritePcap(Path("big.pcap"), pkts);
  Open();
  IngestSummary first = Ingest(Path("big.pcap"));
  ASSERT_EQ(first.kept, 5000u);
  const uint64_t generation = store_->manifest().generation;
  std::set<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(store_->dir())) {
    if (e.is_regular_file()) files.insert(e.path().string());
  }
  for (size_t batch : {size_t{7}, size_t{256}, size_t{1} << 18}) {
    IngestOptions o;
    o.batch_rows = batch;
    Ingester ing(store_.get(), nullptr, o);
    auto again = ing.IngestFile(Sensor(), Path("big.pcap"));
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_TRUE(again->already_ingested) << batch;
    EXPECT_EQ(again->kept, 0u) << batch;
    EXPECT_EQ(again->hash, first.hash) << batch;
    auto other = ing.IngestFile(Sensor("osa1"), Path("big.pcap"));
    ASSERT_FALSE(other.ok()) << batch;
    EXPECT_NE(other.status().message().find("already ingested for sensor 'tyo1'"),
              std::string::npos)
        << other.status().ToString();
  }
  Open();
  EXPECT_EQ(store_->manifest().generation, generation);  // no commit
  EXPECT_EQ(store_->manifest().inputs.size(), 1u);
  EXPECT_EQ(PortTotal(*store_, "2018-08-12"), 5000u);
  std::set<std::string> after;
  for (const auto& e : std::filesystem::recursive_directory_iterator(store_->dir())) {
    if (e.is_regular_file()) after.insert(e.path().string());
  }
  EXPECT_EQ(after, files);  // the dropped transactions' segments are gone
}

TEST_F(StoreTest, APartialCaptureThenTheCompleteOneCountsEveryPacketOnce) {
  // Regression (issue 10): a capture cut short, then the whole one, counted the first part twice.
  std::vector<Pkt> pkts;
  for (uint32_t i = 0; i < 1005; ++i)
    pkts.push_back({kAug12Jst + i * 1000, 0x05000000u + i % 40, kNet + (i & 0xFF), 6,
                    static_cast<uint16_t>(20 + i % 9)});
  WritePcap(Path("whole.pcap"), pkts);
  // Cut inside packet 601 (24-byte file header, 16 + 54 bytes a record).
  testing::Run("head -c " + std::to_string(24 + 600 * 70 + 30) + " " + Path("whole.pcap") + " > " +
               Path("part.pcap"));
  Open();
  IngestSummary part = Ingest(Path("part.pcap"));
  EXPECT_EQ(part.kept, 600u);
  EXPECT_NE(part.error, "");
  IngestSummary whole = Ingest(Path("whole.pcap"));
  EXPECT_FALSE(whole.already_ingested);
  EXPECT_EQ(whole.kept, 405u);  // only what the partial capture did not have
  EXPECT_EQ(PortTotal(*store_, "2018-08-12"), 1005u);
  ASSERT_EQ(store_->manifest().inputs.size(), 2u);
  EXPECT_EQ(store_->manifest().inputs[1].extends, part.hash);
  EXPECT_EQ(store_->manifest().inputs[1].prefix_packets, 600u);
  // Exactly the packets of one ingest of the whole capture, in every count.
  testing::TempDir other;
  auto ref = Store::Open(other.path(), {.create = true, .timezone = "Asia/Tokyo"});
  Ingester ing(ref->get(), nullptr);
  ASSERT_TRUE(ing.IngestFile(Sensor(), Path("whole.pcap")).ok());
  EXPECT_EQ(*Answers(*store_, IpAddr::V4(0x05000001u)), *Answers(**ref, IpAddr::V4(0x05000001u)));
  EXPECT_TRUE(Ingest(Path("whole.pcap")).already_ingested);
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

TEST_F(StoreTest, AStreamFromAFifoIsIngestedOnceAndAKillMidStreamChangesNothing) {
  // Regression (issue 10): a FIFO or /dev/stdin hung or was refused (the identity hash read the
  // input before ingesting it).
  std::vector<Pkt> pkts;
  for (uint32_t i = 0; i < 3000; ++i)
    pkts.push_back({kAug12Jst + i * 1000, 0x07000000u + i % 70, kNet + (i & 0xFF), 6,
                    static_cast<uint16_t>(22 + i % 3)});
  WritePcap(Path("s.pcap"), pkts);
  testing::Run("gzip -c " + Path("s.pcap") + " > " + Path("s.pcap.gz"));
  Open();
  ASSERT_EQ(mkfifo(Path("fifo").c_str(), 0600), 0);
  // A writer that sends half the capture and stalls; the reading ingest is killed meanwhile.
  pid_t writer = fork();
  if (writer == 0) {
    std::string bytes = testing::Run("cat " + Path("s.pcap"));
    FILE* f = fopen(Path("fifo").c_str(), "w");
    fwrite(bytes.data(), 1, bytes.size() / 2, f);
    fflush(f);
    sleep(30);
    _exit(0);
  }
  pid_t reader = fork();
  if (reader == 0) {
    auto s = Store::Open(Path("store"), {});
    auto r = Ingester(s->get(), nullptr).IngestFile(Sensor(), Path("fifo"));
    _exit(r.ok() ? 0 : 1);
  }
  usleep(300000);
  kill(reader, SIGKILL);
  kill(writer, SIGKILL);
  waitpid(reader, nullptr, 0);
  waitpid(writer, nullptr, 0);
  Open();
  EXPECT_TRUE(store_->manifest().inputs.empty());
  // The whole capture through the FIFO, gzipped: counted once, and the plain file is the same
  // input.
  writer = fork();
  if (writer == 0) {
    testing::Run("cat " + Path("s.pcap.gz") + " > " + Path("fifo"));
    _exit(0);
  }
  IngestSummary s = Ingest(Path("fifo"));
  waitpid(writer, nullptr, 0);
  EXPECT_EQ(s.kept, 3000u);
  EXPECT_EQ(s.error, "");
  ASSERT_EQ(store_->manifest().inputs.size(), 1u);
  EXPECT_EQ(store_->manifest().inputs[0].path, Path("fifo"));
  EXPECT_EQ(store_->manifest().inputs[0].file_hash, "");
  EXPECT_TRUE(Ingest(Path("s.pcap")).already_ingested);
  EXPECT_EQ(PortTotal(*store_, "2018-08-12"), 3000u);
  // The killed reader's copy was removed by the next ingest; this one removed its own.
  EXPECT_TRUE(fs::is_empty(Path("store/tmp")));
}

TEST_F(StoreTest, TeitenIngestReadsStandardInput) {
  std::vector<Pkt> pkts;
  for (uint32_t i = 0; i < 500; ++i)
    pkts.push_back({kAug12Jst + i, 0x08000000u + i % 9, kNet + 1, 17, 53});
  WritePcap(Path("in.pcap"), pkts);
  std::ofstream(Path("t.toml")) << "[store]\npath = \"" << Path("cli-store")
                                << "\"\n[[sensor]]\nid = \"s1\"\nprefixes = [\"203.0.113.0/24\"]\n";
  const std::string teiten = TEITEN_BIN;
  bool ok = false;
  std::string out = testing::Run("zstd -q -c " + Path("in.pcap") + " | " + teiten +
                                     " ingest --config " + Path("t.toml") + " --sensor s1 - 2>&1",
                                 &ok);
  EXPECT_TRUE(ok) << out;
  EXPECT_NE(testing::Run("cat " + Path("cli-store/MANIFEST")).find("\"path\": \"stdin\""),
            std::string::npos);
  out = testing::Run(teiten + " ingest --config " + Path("t.toml") + " --sensor s1 " +
                     Path("in.pcap") + " 2>&1");
  EXPECT_NE(out.find("already ingested"), std::string::npos) << out;
  out = testing::Run(teiten + " top ports --format csv --config " + Path("t.toml") +
                     " --period 2018-08-12");
  EXPECT_NE(out.find("53/UDP (domain),500"), std::string::npos) << out;
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

TEST_F(StoreTest, AFlippedByteInARecordALookupReadsIsAnErrorNotACount) {
  // Series and TopSources look keys up one at a time (RollupFile::Find decodes only the block of
  // port records that may hold the key, verifying its chunks) instead of verifying whole
  // sections: the records of the key asked for are still checked. 4,000 ports: the port records
  // are four blocks, after the sets (4,001 sources, two a port), and the one looked up is in a
  // block past the header's chunks.
  std::vector<Pkt> pkts;
  for (uint32_t i = 0; i < 8000; ++i) {
    pkts.push_back({kAug12Jst + i * kS, 0x02000000u + i % 4001, kNet + (i & 0xFF), 6,
                    static_cast<uint16_t>(20 + i % 4000)});
  }
  WritePcap(Path("a.pcap"), pkts);
  Open();
  Ingest(Path("a.pcap"));
  const PortKey port3900 = MakePortKey(6, 3900);
  ASSERT_TRUE(Series(*store_, Dimension::kPort, {port3900}, *ParsePeriod("2018-08-12"),
                     Granularity::kDay, {})
                  .ok());
  std::set<std::string> parts;
  store_->ForEachRollup([&](const std::string& p) { parts.insert(p); });
  store_.reset();
  for (const std::string& rel : parts) {
    std::string path = Path("store/" + rel);
    uint64_t at = 0;
    {
      auto f = RollupFile::Open(path);
      ASSERT_TRUE(f.ok()) << f.status().ToString();
      const auto& v = (*f)->sensors()[0];
      auto rec = (*f)->Find(v, 0, port3900);
      ASSERT_TRUE(rec.ok() && *rec) << rel;
      EXPECT_EQ((*rec)->packets, 2u);
      // The ports section (formats 6 to 9): u32 blocks, u32 0, 16 bytes per block (u32 first
      // key, u32 records, u32 compressed bytes, u32 raw bytes), then the frames; the middle byte of
      // the frame of the last block starting at or before the key.
      std::ifstream in(path, std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
      ASSERT_EQ(std::string(bytes.data(), 8), "TROLLU11");
      uint64_t section_at = 0;
      std::memcpy(&section_at, bytes.data() + 24 + 32, 8);
      uint32_t blocks = 0;
      std::memcpy(&blocks, bytes.data() + section_at, 4);
      ASSERT_EQ(blocks, 4u) << rel;
      uint64_t frame = section_at + 8 + 16 * blocks;
      for (uint32_t b = 0; b < blocks; ++b) {
        uint32_t head[4];
        std::memcpy(head, bytes.data() + section_at + 8 + 16 * b, sizeof head);
        if (head[0] <= port3900) at = frame + head[2] / 2;
        frame += head[2];
      }
    }
    ASSERT_GT(at, 16384u) << rel;  // past the chunk of the header and directory
    std::fstream io(path, std::ios::binary | std::ios::in | std::ios::out);
    io.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    io.read(&c, 1);
    c ^= 0x40;
    io.seekp(static_cast<std::streamoff>(at));
    io.write(&c, 1);
  }
  auto s = Store::Open(Path("store"), {});
  ASSERT_TRUE(s.ok());
  auto series =
      Series(**s, Dimension::kPort, {port3900}, *ParsePeriod("2018-08-12"), Granularity::kDay, {});
  ASSERT_FALSE(series.ok()) << "a damaged count was read as " << series->points[0].packets[0];
  EXPECT_NE(series.status().message().find(".troll"), std::string::npos)
      << series.status().ToString();
  auto top = TopSources(**s, port3900, *ParsePeriod("2018-08-12"), {}, 5);
  EXPECT_FALSE(top.ok());
}

TEST_F(StoreTest, VerifyFindsEveryFlippedByteAQueryWouldReadAndRollupsThatDisagreeWithSegments) {
  WriteSmallCaptures(dir_.path(), 6);
  Open();
  for (int f = 0; f < 6; ++f)
    Ingest(Path(fmt::format("s{}.pcap", f)), f % 2 ? Sensor("osa1") : Sensor());
  store_.reset();
  auto clean = VerifyStore(Path("store"));
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok()) << (clean->faults.empty() ? "" : clean->faults[0]);
  EXPECT_GT(clean->rows, 0u);
  // Every file, a dense stride of bytes: each flip is a fault (the whole-file checksums are
  // verify's own), and none leaves verify silent.
  std::vector<std::string> files;
  for (const char* sub : {"seg", "rollup", "idx", "man"}) {
    for (const auto& e : fs::directory_iterator(Path("store/") + sub)) {
      files.push_back(std::string(sub) + "/" + e.path().filename().string());
    }
  }
  files.push_back("MANIFEST");
  int flips = 0;
  for (const std::string& rel : files) {
    std::string path = Path("store/" + rel);
    std::string bytes = testing::Run("cat " + path);
    for (size_t at = 0; at < bytes.size(); at += std::max<size_t>(1, bytes.size() / 60)) {
      std::string bad = bytes;
      bad[at] = static_cast<char>(bad[at] ^ 0x04);
      std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
      ++flips;
      auto r = VerifyStore(Path("store"));
      ASSERT_TRUE(r.ok());
      EXPECT_FALSE(r->ok()) << rel << " @" << at << " of " << bytes.size();
    }
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  EXPECT_GT(flips, 500);
  // A rollup part with a valid checksum but another day's numbers: only the comparison with the
  // segments can tell.
  Open();
  const auto& days = store_->manifest().days;
  ASSERT_GE(days.size(), 2u);
  std::string a = Path("store/" + days.begin()->second.at(0).at(0));
  std::string b = Path("store/" + std::next(days.begin())->second.at(0).at(0));
  store_.reset();
  fs::copy_file(b, a, fs::copy_options::overwrite_existing);
  auto r = VerifyStore(Path("store"));
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->ok());
  EXPECT_NE(r->faults[0].find("in the segments"), std::string::npos) << r->faults[0];
}

TEST_F(StoreTest, RebuildMakesDamagedOrLostRollupsAgainFromTheSegments) {
  WriteSmallCaptures(dir_.path(), 8);
  Open();
  for (int f = 0; f < 8; ++f)
    Ingest(Path(fmt::format("s{}.pcap", f)), f % 2 ? Sensor("osa1") : Sensor());
  const std::string want = FullAnswers(*store_);
  std::string victim = Path("store/" + store_->manifest().periods.at("2018Q3").at(0));
  store_.reset();
  fs::resize_file(victim, 100);                                                          // damaged
  for (const auto& e : fs::directory_iterator(Path("store/idx"))) fs::remove(e.path());  // lost
  Open();
  EXPECT_FALSE(Top(*store_, Dimension::kPort, *ParsePeriod("2018Q3"), {}, 10).ok());
  {
    auto txn = store_->Begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*txn)->RebuildRollups({}).ok());
  }
  {
    auto txn = store_->Begin();
    ASSERT_TRUE((*txn)->RebuildIndexes().ok());
  }
  EXPECT_EQ(FullAnswers(*store_), want);
  store_.reset();
  auto r = VerifyStore(Path("store"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok()) << (r->faults.empty() ? "" : r->faults[0]);
}

TEST_F(StoreTest, ForgetRemovesAnInputsEveryCountAndItCanBeIngestedAgain) {
  // Regression (issue 10): there was no way to take a mistaken ingest back out.
  WriteSmallCaptures(dir_.path(), 6);
  testing::TempDir ref_dir;
  auto ref = Store::Open(ref_dir.path(), {.create = true, .timezone = "Asia/Tokyo"});
  Open();
  for (int f = 0; f < 6; ++f) {
    SensorConfig s = f % 2 ? Sensor("osa1") : Sensor();
    Ingest(Path(fmt::format("s{}.pcap", f)), s);
    if (f != 3) {
      ASSERT_TRUE(
          Ingester(ref->get(), nullptr).IngestFile(s, Path(fmt::format("s{}.pcap", f))).ok());
    }
  }
  const std::string all = FullAnswers(*store_);
  std::string hash;
  for (const auto& in : store_->manifest().inputs) {
    if (in.path == Path("s3.pcap")) hash = in.hash;
  }
  ASSERT_FALSE(hash.empty());
  {
    auto txn = store_->Begin();
    ASSERT_TRUE((*txn)->Forget(hash).ok());
  }
  EXPECT_EQ(store_->manifest().inputs.size(), 5u);
  EXPECT_EQ(FullAnswers(*store_), FullAnswers(**ref));
  Open();
  EXPECT_EQ(FullAnswers(*store_), FullAnswers(**ref));
  store_.reset();
  auto r = VerifyStore(Path("store"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok()) << (r->faults.empty() ? "" : r->faults[0]);
  Open();
  EXPECT_FALSE(Ingest(Path("s3.pcap"), Sensor("osa1")).already_ingested);
  EXPECT_EQ(FullAnswers(*store_), all);
  {
    auto txn = store_->Begin();
    Status st = (*txn)->Forget("0123");
    EXPECT_EQ(st.code(), StatusCode::kNotFound);
  }
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

TEST_F(StoreTest, ACompressedCaptureCutShortIsAnErrorWhereverItIsCut) {
  // Regression (issue 10): a .zst or .gz cut where its decoded bytes ended on a packet boundary
  // was accepted as complete ("ok", 600 of 1,005 packets).
  std::vector<Pkt> pkts;
  for (uint32_t i = 0; i < 1005; ++i)
    pkts.push_back({kAug12Jst + i * 1000, 0x09000000u + i % 50, kNet + (i & 0xFF), 6, 23});
  WritePcap(Path("c.pcap"), pkts);
  testing::Run("zstd -q -c " + Path("c.pcap") + " > " + Path("c.pcap.zst"));
  testing::Run("gzip -c " + Path("c.pcap") + " > " + Path("c.pcap.gz"));
  for (const char* ext : {"zst", "gz"}) {
    std::string whole = Slurp(Path(std::string("c.pcap.") + ext));
    ASSERT_GT(whole.size(), 100u);
    for (size_t cut = 20; cut < whole.size(); cut += std::max<size_t>(1, whole.size() / 40)) {
      std::string name = fmt::format("cut{}.pcap.{}", cut, ext);
      Spit(Path(name), whole.substr(0, cut));
      testing::TempDir other;
      auto s = Store::Open(other.path(), {.create = true, .timezone = "Asia/Tokyo"});
      auto r = Ingester(s->get(), nullptr).IngestFile(Sensor(), Path(name));
      if (!r.ok()) continue;  // too short to be a capture at all: refused, nothing stored
      EXPECT_NE(r->error, "") << name << ": " << r->kept << " packets kept as if complete";
      EXPECT_LT(r->kept, 1005u) << name;
      EXPECT_NE(r->error.find("cut short"), std::string::npos) << name << ": " << r->error;
    }
  }
}

TEST_F(StoreTest, TrailingGarbageAfterACompressedStreamKeepsEveryGoodPacket) {
  // Regression (issue 10): extra bytes after a zstd frame or a bad gzip trailer discarded up to
  // 4 MiB of good packets, and a small file kept none; the error named no offset.
  std::vector<Pkt> pkts;
  for (uint32_t i = 0; i < 2000; ++i)
    pkts.push_back({kAug12Jst + i * 1000, 0x0A000000u + i % 77, kNet + (i & 0xFF), 6, 445});
  WritePcap(Path("g.pcap"), pkts);
  testing::Run("zstd -q -c " + Path("g.pcap") + " > " + Path("g.pcap.zst"));
  testing::Run("gzip -c " + Path("g.pcap") + " > " + Path("g.pcap.gz"));
  Spit(Path("tail.pcap.zst"), Slurp(Path("g.pcap.zst")) + std::string(100, '\x5a'));
  std::string gz = Slurp(Path("g.pcap.gz"));
  gz[gz.size() - 8] = static_cast<char>(gz[gz.size() - 8] ^ 0xFF);  // the CRC-32 of the trailer
  Spit(Path("crc.pcap.gz"), gz);
  Spit(Path("tail.pcap.gz"), Slurp(Path("g.pcap.gz")) + std::string(100, '\x5a'));
  for (const char* name : {"tail.pcap.zst", "crc.pcap.gz", "tail.pcap.gz"}) {
    testing::TempDir other;
    auto s = Store::Open(other.path(), {.create = true, .timezone = "Asia/Tokyo"});
    auto r = Ingester(s->get(), nullptr).IngestFile(Sensor(), Path(name));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_NE(r->error, "") << name;
    EXPECT_NE(r->error.find("after"), std::string::npos) << r->error;  // says where
    EXPECT_EQ(r->kept, 2000u) << name << ": " << r->error;
  }
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

TEST_F(StoreTest, AManifestNamingAFileOutsideTheStoreIsRefused) {
  // Found by the manifest fuzz target's author: part names were opened as given.
  WritePcap(Path("a.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  Open();
  Ingest(Path("a.pcap"));
  store_.reset();
  nlohmann::json j = nlohmann::json::parse(WholeManifest(Path("store")));
  j["periods"]["2018Q3"] = "rollup/../../../../etc/passwd";
  j["format"] = 2;
  Spit(Path("store/MANIFEST"), j.dump(1));
  auto s = Store::Open(Path("store"), {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(s.status().message().find("is not the name of a rollup part"), std::string::npos)
      << s.status().message();
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

void Le32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}

// A pcapng of Ethernet frames with the given 64-bit microsecond timestamps.
std::string Pcapng(const std::vector<std::pair<uint64_t, std::vector<uint8_t>>>& pkts) {
  std::string s;
  Le32(&s, 0x0A0D0D0A);  // section header
  Le32(&s, 28);
  Le32(&s, 0x1A2B3C4D);
  Le32(&s, 1);  // version 1.0
  Le32(&s, 0xFFFFFFFF);
  Le32(&s, 0xFFFFFFFF);  // section length unknown
  Le32(&s, 28);
  Le32(&s, 1);  // interface description: Ethernet, microseconds
  Le32(&s, 20);
  Le32(&s, 1);
  Le32(&s, 65535);
  Le32(&s, 20);
  for (const auto& [ts, frame] : pkts) {
    uint32_t padded = (static_cast<uint32_t>(frame.size()) + 3) / 4 * 4;
    Le32(&s, 6);  // enhanced packet
    Le32(&s, 32 + padded);
    Le32(&s, 0);
    Le32(&s, static_cast<uint32_t>(ts >> 32));
    Le32(&s, static_cast<uint32_t>(ts));
    Le32(&s, static_cast<uint32_t>(frame.size()));
    Le32(&s, static_cast<uint32_t>(frame.size()));
    s.append(frame.begin(), frame.end());
    s.append(padded - frame.size(), '\0');
    Le32(&s, 32 + padded);
  }
  return s;
}

TEST_F(StoreTest, APcapngTimestampPastYear9999IsCountedAndSkippedNotOverflowed) {
  // Regression (issue 10): timestamps near 2^63/2^64 overflowed (UBSan) and landed on bogus days.
  auto frame = Frame({0, 0x01010101, kNet + 1, 6, 23});
  Spit(Path("ts.pcapng"), Pcapng({{static_cast<uint64_t>(kAug12Jst), frame},
                                  {~uint64_t{0}, frame},
                                  {uint64_t{1} << 63, frame},
                                  {static_cast<uint64_t>(kAug12Jst) + 1, frame}}));
  Open();
  IngestSummary s = Ingest(Path("ts.pcapng"));
  EXPECT_EQ(s.packets_read, 4u);
  EXPECT_EQ(s.kept, 2u);
  EXPECT_EQ(s.dropped["bad_timestamp"], 2u);
  ASSERT_EQ(store_->manifest().days.size(), 1u);
  EXPECT_EQ(store_->manifest().days.begin()->first, ParsePeriod("2018-08-12")->first_day);
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

Manifest EveryField() {
  Manifest m;
  m.timezone = "Asia/Tokyo";
  m.generation = 41;
  m.next_id = 1234567890123ull;
  m.sensors.push_back({"tyo1", "Tokyo \"1\"", "domestic", "JP", "darknet", {"203.0.113.0/24"}});
  m.sensors.push_back({"osa\\2", "大阪", "g", "JP", "honeypot", {}});
  InputRecord in;
  in.hash = "0123456789abcdef0123456789abcdef";
  in.file_hash = "fedcba9876543210fedcba9876543210";
  in.sensor = "tyo1";
  // Hostile bytes from the network or a shell: quotes, controls, invalid UTF-8.
  in.path = std::string("/cap/\"x\"\n\t\x01\xff\xc3(\xe2\x82\xac.pcap");
  in.ingested_at = -5;
  in.packets_read = UINT64_MAX;
  in.kept = 7;
  in.dropped = {{"bad checksum", 3}, {"ipv6 \"ext\"", 1}};
  in.anomalies = {{"fragment", 2}};
  in.error = "cut short at packet 9 (offset 1,024)";
  in.country_db = "country 2018-08-01 /x.mmdb";
  in.segments = {1, 2, 3};
  in.index = 4;
  in.more_indexes = {5, 6};
  in.batches = {{1, 2, 3}, {7, 8, 9}};
  in.folded = {{"a", "b"}, {"c", ""}};
  in.extends = "prefix";
  in.prefix_packets = 99;
  m.inputs.push_back(in);
  InputRecord plain;
  plain.hash = "h2";
  plain.sensor = "osa\\2";
  m.inputs.push_back(plain);
  m.segments.push_back({1, TimeZone::DaysFromCivil(2018, 8, 12), 10, 2048, -1, INT64_MAX});
  m.days[TimeZone::DaysFromCivil(2018, 8, 12)][0] = {"rollup/2018-08-12.s00000.00000001.troll"};
  m.days[TimeZone::DaysFromCivil(2018, 8, 12)][65535] = {"rollup/a.troll", "rollup/b.troll"};
  m.periods["2018Q3"] = {"rollup/2018Q3.all.00000001.troll"};
  m.periods["2018-08/s1"] = {"rollup/x.troll", "rollup/y.troll"};
  // Counts of both parts of one sensor-day and one part of another; an entry of a part no day
  // names (a merged one) is not written.
  m.part_counts["rollup/a.troll"] = {UINT64_MAX, 3};
  m.part_counts["rollup/b.troll"] = {0, 0};
  m.part_counts["rollup/gone.troll"] = {5, 5};
  m.segments_from = TimeZone::DaysFromCivil(2018, 7, 1);
  m.garbage = {"seg/00000009.tseg"};
  m.garbage_since = {40};
  return m;
}

TEST(ManifestJson, EveryFieldReadsBackAndAnyJsonParserReadsTheSameValues) {
  const Manifest m = EveryField();
  const std::string text = ManifestJson(m);
  ASSERT_EQ(text.substr(text.size() - 2), "\n}");
  // Read back: the same manifest (compared as written again), the bad bytes as U+FFFD.
  Manifest back = ManifestFromJson(text);
  EXPECT_EQ(ManifestJson(back), text);
  EXPECT_EQ(back.inputs[0].path, "/cap/\"x\"\n\t\x01\xEF\xBF\xBD\xEF\xBF\xBD(\xE2\x82\xAC.pcap");
  EXPECT_EQ(back.inputs[0].packets_read, UINT64_MAX);
  EXPECT_EQ(back.inputs[0].ingested_at, -5);
  EXPECT_EQ(back.segments[0].ts_max, INT64_MAX);
  EXPECT_EQ(back.days.begin()->second.at(65535).size(), 2u);
  EXPECT_EQ(back.inputs[1].more_indexes.size(), 0u);
  EXPECT_EQ(back.part_counts.size(), 2u);
  EXPECT_EQ(back.part_counts.at("rollup/a.troll").packets, UINT64_MAX);
  EXPECT_EQ(back.part_counts.at("rollup/a.troll").sources, 3u);
  // An independent parser (nlohmann) reads the text as JSON with the same values.
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["inputs"][0]["path"].get<std::string>(), back.inputs[0].path);
  EXPECT_EQ(j["sensors"][1]["name"].get<std::string>(), "大阪");
  EXPECT_EQ(j["sensors"][1]["id"].get<std::string>(), "osa\\2");
  EXPECT_EQ(j["inputs"][0]["dropped"]["ipv6 \"ext\""].get<uint64_t>(), 1u);
  EXPECT_EQ(j["inputs"][0]["batches"][1][2].get<uint64_t>(), 9u);
  EXPECT_EQ(j["segments"][0]["day"].get<std::string>(), "2018-08-12");
  EXPECT_EQ(j["days"]["2018-08-12"]["0"].get<std::string>(),
            "rollup/2018-08-12.s00000.00000001.troll");
  EXPECT_EQ(j["periods"]["2018-08/s1"][1].get<std::string>(), "rollup/y.troll");
  EXPECT_EQ(j["day_counts"]["2018-08-12"]["65535"],
            nlohmann::json::parse(fmt::format("[{}, 3, 0, 0]", UINT64_MAX)));
  EXPECT_FALSE(j["day_counts"]["2018-08-12"].contains("0"));  // its part has no counts
  EXPECT_EQ(j["segments_from"].get<std::string>(), "2018-07-01");
  EXPECT_EQ(j["garbage_since"][0].get<uint64_t>(), 40u);
  // What nlohmann writes of the same values (the writer before this one) reads the same.
  EXPECT_EQ(ManifestJson(ManifestFromJson(j.dump(1))), text);
  // An empty manifest too.
  Manifest empty;
  empty.timezone = "UTC";
  EXPECT_EQ(ManifestJson(ManifestFromJson(ManifestJson(empty))), ManifestJson(empty));
}

TEST(ManifestJson, DamagedOrHostileManifestsAreRefusedNamingWhat) {
  const std::string text = ManifestJson(EveryField());
  auto refused = [](const std::string& t) -> std::string {
    try {
      ManifestFromJson(t);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  EXPECT_NE(refused(text.substr(0, text.size() / 2)).find("not JSON"), std::string::npos);
  EXPECT_NE(refused(replace("\"kept\": 7", "\"kept\": -7")).find("kept"), std::string::npos);
  EXPECT_NE(refused(replace("\"rows\": 10", "\"rowz\": 10")).find("'rows'"), std::string::npos);
  EXPECT_NE(refused(replace("\"rollup/a.troll\"", "\"../../etc/passwd\"")).find("rollup part"),
            std::string::npos);
  EXPECT_NE(refused(replace("\"day\": \"2018-08-12\"", "\"day\": \"2018-13-12\"")).find("bad day"),
            std::string::npos);
  EXPECT_NE(refused(replace("\"65535\":", "\"65536\":")).find("out of range"), std::string::npos);
  EXPECT_NE(refused(replace("\"format\": 3", "\"format\": 5")).find("newer"), std::string::npos);
  EXPECT_EQ(refused(text), "");
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

// The manifest's counts of each sensor-day part (what a summary reads instead of opening the
// part) are held to the part by verify: a manifest whose counts lie, sealed with a valid
// checksum (as a bug in a writer would leave it), is a fault naming the part; the summary reads
// the counts, so this is the only place such a lie could be caught.
TEST_F(StoreTest, VerifyHoldsTheManifestsSensorDayCountsToTheirParts) {
  WriteSmallCaptures(dir_.path(), 4);
  Open();
  for (int f = 0; f < 4; ++f) Ingest(Path(fmt::format("s{}.pcap", f)));
  ASSERT_FALSE(store_->manifest().part_counts.empty());
  store_.reset();
  auto clean = VerifyStore(Path("store"));
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok()) << (clean->faults.empty() ? "" : clean->faults[0]);
  // One more source than the part holds, in the first day's counts (in its month's chapter);
  // sealed as the store seals.
  auto root = nlohmann::json::parse(Unsealed(Slurp(Path("store/MANIFEST"))));
  ASSERT_FALSE(root["chapters"].empty());
  const std::string chapter =
      Path("store/" + ChapterFile(root["chapters"].begin().value().get<uint64_t>()));
  auto j = nlohmann::json::parse(Unsealed(Slurp(chapter)));
  auto& first = j["day_counts"].begin().value().begin().value();
  ASSERT_TRUE(first.is_array() && first.size() >= 2);
  first[1] = first[1].get<uint64_t>() + 1;
  Spit(chapter, Sealed(j.dump(1)));  // dump ends "\n}", as the store's own text does
  auto lied = VerifyStore(Path("store"));
  ASSERT_TRUE(lied.ok());
  ASSERT_FALSE(lied->ok());
  EXPECT_NE(lied->faults[0].find("day_counts"), std::string::npos) << lied->faults[0];
  EXPECT_NE(lied->faults[0].find("rollup/"), std::string::npos) << lied->faults[0];
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

using namespace store_testing;

// The manifest in chapters (format 4): the root and one chapter per month read back as the whole
// manifest they were written from; what a chapter may not hold is refused, naming it.
TEST(ManifestJson, TheRootAndItsChaptersReadBackAsTheWholeManifest) {
  Manifest m = EveryField();
  const int32_t jul31 = TimeZone::DaysFromCivil(2018, 7, 31);
  m.segments.push_back({2, jul31, 5, 100, 7, 8});
  m.days[jul31][3] = {"rollup/2018-07-31.s00003.00000002.troll"};
  m.part_counts["rollup/2018-07-31.s00003.00000002.troll"] = {5, 1};
  m.periods["2018-07"] = {"rollup/2018-07.all.00000002.troll"};
  m.periods["2018-07-31"] = {"rollup/2018-07-31.all.00000002.troll"};
  m.chapters = {{"2018-07", 11}, {"2018-08", 12}};
  const std::string root = ManifestRootJson(m);
  // The root holds no month's members; the quarter's period stays in it.
  auto j = nlohmann::json::parse(root);
  EXPECT_EQ(j["format"].get<int>(), 4);
  EXPECT_FALSE(j.contains("segments") || j.contains("days") || j.contains("day_counts"));
  EXPECT_EQ(j["periods"].size(), 1u);
  EXPECT_TRUE(j["periods"].contains("2018Q3"));
  EXPECT_EQ(j["chapters"]["2018-08"].get<uint64_t>(), 12u);
  Manifest back = ManifestFromJson(root);
  EXPECT_EQ(back.chapters, m.chapters);
  for (const char* month : {"2018-07", "2018-08"}) {
    const std::string c = ChapterJson(m, month);
    auto cj = nlohmann::json::parse(c);
    for (const auto& s : cj["segments"]) {
      EXPECT_EQ(s["day"].get<std::string>().substr(0, 7), month);
    }
    ChapterFromJson(c, false, month, &back);
  }
  std::sort(back.segments.begin(), back.segments.end(),
            [](const SegmentRecord& a, const SegmentRecord& b) { return a.id < b.id; });
  EXPECT_EQ(ManifestJson(back), ManifestJson(m));
  // Refused: a chapter read for another month, one holding another month's segment, day or
  // period, a root holding a month's period, a chapter given as the manifest.
  auto refused = [](auto fn) -> std::string {
    try {
      fn();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  const std::string aug = ChapterJson(m, "2018-08");
  auto edit = [](std::string t, const std::string& from, const std::string& to) {
    size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? t : t.replace(at, from.size(), to);
  };
  Manifest scratch;
  EXPECT_NE(refused([&] { ChapterFromJson(aug, false, "2018-07", &scratch); }).find("2018-07"),
            std::string::npos);
  std::string moved = edit(aug, "\"day\": \"2018-08-12\"", "\"day\": \"2018-09-12\"");
  EXPECT_NE(refused([&] {
              ChapterFromJson(moved, false, "2018-08", &scratch);
            }).find("2018-09-12 is not in the chapter's month 2018-08"),
            std::string::npos);
  std::string day = edit(aug, "\"2018-08-12\": {", "\"2018-10-12\": {");
  EXPECT_NE(refused([&] { ChapterFromJson(day, false, "2018-08", &scratch); }).find("2018-10-12"),
            std::string::npos);
  std::string period = edit(aug, "\"2018-08/s1\"", "\"2018Q3/s1\"");
  EXPECT_NE(refused([&] { ChapterFromJson(period, false, "2018-08", &scratch); }).find("2018Q3/s1"),
            std::string::npos);
  std::string rooted = edit(root, "\"2018Q3\"", "\"2018-08\"");
  EXPECT_NE(refused([&] { ManifestFromJson(rooted); }).find("belongs in the chapter of 2018-08"),
            std::string::npos);
  EXPECT_NE(refused([&] { ManifestFromJson(aug); }).find("a chapter"), std::string::npos);
}

// A store spanning two months: a commit into one of them writes that month's chapter and the
// root, and names the other month's chapter as it was; the replaced chapter goes as garbage.
TEST_F(StoreTest, ACommitWritesTheChaptersOfTheMonthsItChangedAndNamesTheOthersAsTheyWere) {
  constexpr int64_t kDay = 86400 * kS;
  std::vector<Pkt> jul, aug1, aug2;
  for (uint32_t i = 0; i < 50; ++i)
    jul.push_back({kAug12Jst - 20 * kDay + i, 0x01010100 + i, kNet, 6, 23});
  for (uint32_t i = 0; i < 40; ++i)
    aug1.push_back({kAug12Jst + i, 0x02020200 + i, kNet + 1, 6, 445});
  for (uint32_t i = 0; i < 30; ++i)
    aug2.push_back({kAug12Jst + kDay + i, 0x01010100 + i, kNet, 17, 53});
  WritePcap(Path("jul.pcap"), jul);
  WritePcap(Path("aug1.pcap"), aug1);
  WritePcap(Path("aug2.pcap"), aug2);
  Open();
  Ingest(Path("jul.pcap"));
  Ingest(Path("aug1.pcap"));
  const std::map<std::string, uint64_t> before = store_->manifest().chapters;
  ASSERT_EQ(before.size(), 2u);
  ASSERT_TRUE(before.count("2018-07") && before.count("2018-08"));
  for (const auto& [month, id] : before) EXPECT_TRUE(fs::exists(Path("store/" + ChapterFile(id))));
  Ingest(Path("aug2.pcap"));
  const auto& after = store_->manifest().chapters;
  EXPECT_EQ(after.at("2018-07"), before.at("2018-07"));  // untouched: named as it was
  EXPECT_NE(after.at("2018-08"), before.at("2018-08"));
  // No reader holds the old August chapter: removed with the commit's other garbage.
  EXPECT_FALSE(fs::exists(Path("store/" + ChapterFile(before.at("2018-08")))));
  EXPECT_TRUE(fs::exists(Path("store/" + ChapterFile(after.at("2018-08")))));
  // The root names no segment or day; the answers are those of one capture holding all three.
  const std::string root = Slurp(Path("store/MANIFEST"));
  EXPECT_EQ(root.find("\"segments\": [{"), std::string::npos);
  EXPECT_EQ(root.find("\"days\""), std::string::npos);
  std::vector<Pkt> all = jul;
  all.insert(all.end(), aug1.begin(), aug1.end());
  all.insert(all.end(), aug2.begin(), aug2.end());
  WritePcap(Path("all.pcap"), all);
  auto ref = Store::Open(Path("ref"), {.create = true, .timezone = "Asia/Tokyo"});
  ASSERT_TRUE(ref.ok());
  ASSERT_TRUE(Ingester(ref->get(), nullptr).IngestFile(Sensor(), Path("all.pcap")).ok());
  auto reopened = Store::Open(Path("store"), {});
  ASSERT_TRUE(reopened.ok());
  for (const char* p : {"2018-07", "2018-08", "2018Q3"}) {
    EXPECT_EQ(PortTotal(**reopened, p), PortTotal(**ref, p)) << p;
  }
  EXPECT_EQ(PortTotal(**reopened, "2018Q3"), 120u);
  EXPECT_EQ(*Answers(**reopened, IpAddr::V4(0x01010101u)),
            *Answers(**ref, IpAddr::V4(0x01010101u)));
  EXPECT_EQ((*reopened)->manifest().segments.size(), 3u);
  auto v = VerifyStore(Path("store"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok()) << (v->faults.empty() ? "" : v->faults[0]);
  EXPECT_TRUE(v->warnings.empty()) << v->warnings[0];
}

// A chapter damaged or missing is an error naming it, from opening the store and from verify;
// never a store with a month missing.
TEST_F(StoreTest, ADamagedOrMissingChapterIsAnErrorNamingIt) {
  WritePcap(Path("a.pcap"), {{kAug12Jst, 0x01010101, kNet + 1, 6, 23}});
  Open();
  Ingest(Path("a.pcap"));
  const uint64_t id = store_->manifest().chapters.at("2018-08");
  store_.reset();
  const std::string chapter = Path("store/" + ChapterFile(id));
  const std::string good = Slurp(chapter);
  std::string bad = good;
  bad[bad.find("\"rows\": 1") + 9] = '7';  // one packet becomes 17
  Spit(chapter, bad);
  auto s = Store::Open(Path("store"), {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(s.status().message().find(ChapterFile(id)), std::string::npos) << s.status().message();
  auto v = VerifyStore(Path("store"));
  ASSERT_TRUE(v.ok());
  ASSERT_FALSE(v->ok());
  EXPECT_NE(v->faults[0].find(ChapterFile(id)), std::string::npos) << v->faults[0];
  fs::remove(chapter);
  s = Store::Open(Path("store"), {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find(ChapterFile(id)), std::string::npos) << s.status().message();
  Spit(chapter, good);
  EXPECT_TRUE(Store::Open(Path("store"), {}).ok());
}

}  // namespace
}  // namespace teiten
