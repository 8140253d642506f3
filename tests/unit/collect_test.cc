// The collector's commit path (Ingester::IngestBatches) and the sensor's packet path (Batcher):
// real captures sent as wire batches, redelivered, and compared with the same captures ingested
// as files — the reference `teiten ingest` already proves against tshark.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "analysis/query.h"
#include "capture/pcap_file.h"
#include "daemon/batcher.h"
#include "daemon/collector.h"
#include "ingest/ingest.h"
#include "store/verify.h"
#include "test_support.h"
#include "transport/wire.h"

namespace teiten {
namespace {

SensorConfig Darknet(const std::string& id, const std::string& prefix) {
  SensorConfig s;
  s.id = id;
  s.prefixes.push_back(*Prefix::Parse(prefix));
  return s;
}

// The capture as a sensor would send it: batches of `rows` kept packets, each through the wire.
std::vector<WireBatch> AsBatches(const SensorConfig& sensor, const std::string& path, size_t rows,
                                 uint64_t stream, uint64_t first_id = 1) {
  auto file = PcapFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  Batcher b(sensor);
  std::vector<WireBatch> out;
  uint64_t id = first_id;
  auto take = [&] {
    WireBatch w = b.Take();
    w.batch_id = id++;
    w.stream = stream;
    auto bytes = EncodeBatch(w);
    EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
    auto back = DecodeBatch(*bytes);
    EXPECT_TRUE(back.ok()) << back.status().ToString();
    out.push_back(std::move(*back));
  };
  PcapFile::Packet pkt;
  while (*(*file)->Next(&pkt)) {
    b.AddFrame((*file)->datalink(), pkt.ts_us, pkt.data, pkt.caplen, pkt.wirelen);
    if (b.rows() >= rows) take();
  }
  if (b.rows() || b.has_losses()) take();
  return out;
}

std::string Describe(const TopResult& t) {
  std::string s = fmt::format("total {} pkts {} srcs;", t.total_packets, t.total_sources);
  for (const RankRow& r : t.rows) s += fmt::format(" {}:{}/{}", r.key, r.packets, r.sources);
  return s;
}

class CollectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::SharedPcapDir())) GTEST_SKIP() << "no ../shared";
  }
  std::unique_ptr<Store> Make(const std::string& name) {
    auto s = Store::Open(tmp_.path() + "/" + name, {.create = true, .timezone = "UTC"});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }
  testing::TempDir tmp_;
};

TEST_F(CollectTest, BatchesCountAsTheCaptureIngestedAsAFileAndRedeliveryCountsOnce) {
  // Two sensors: masscan's TCP scan of 10.0.0.0/8-ish targets and the SYN-ACK reflection.
  struct In {
    SensorConfig sensor;
    std::string file;
  };
  std::vector<In> ins = {
      {Darknet("scan", "0.0.0.0/0"), testing::SharedPcapDir() + "/tcp_0_1000_20190821.pcap"},
      {Darknet("refl", "10.10.10.0/24"),
       testing::SharedPcapDir() + "/amp.TCP.reflection.SYNACK.pcap"},
  };
  auto by_file = Make("file");
  auto by_batch = Make("batch");
  Ingester file_ing(by_file.get(), nullptr);
  Ingester batch_ing(by_batch.get(), nullptr);
  uint64_t kept_total = 0;
  for (const In& in : ins) {
    auto sum = file_ing.IngestFile(in.sensor, in.file);
    ASSERT_TRUE(sum.ok()) << sum.status().ToString();
    std::vector<WireBatch> batches = AsBatches(in.sensor, in.file, 300, 77);
    ASSERT_GT(batches.size(), 2u);
    // Deliver the first half, then everything again (a lost acknowledgement), then a batch twice
    // in one delivery: each batch counts once.
    std::vector<size_t> dups;
    std::vector<WireBatch> first(batches.begin(), batches.begin() + batches.size() / 2);
    auto a = batch_ing.IngestBatches(in.sensor, &first, &dups);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_TRUE(dups.empty());
    std::vector<WireBatch> again = batches;
    again.push_back(batches.back());
    auto b = batch_ing.IngestBatches(in.sensor, &again, &dups);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(dups.size(), batches.size() / 2 + 1);
    EXPECT_EQ(a->kept + b->kept, sum->kept) << in.file;
    kept_total += sum->kept;
    // The drops the sensor counted are the ones `teiten ingest` records.
    std::map<std::string, uint64_t> dropped = a->dropped;
    for (const auto& [k, n] : b->dropped) dropped[k] += n;
    EXPECT_EQ(dropped, sum->dropped) << in.file;
    std::vector<WireBatch> all_again = batches;
    auto c = batch_ing.IngestBatches(in.sensor, &all_again, &dups);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->kept, 0u);
    EXPECT_EQ(dups.size(), batches.size());
  }
  // The store reopened (a collector restarted) still knows what it has.
  by_batch.reset();
  auto reopened = Store::Open(tmp_.path() + "/batch", {});
  ASSERT_TRUE(reopened.ok());
  by_file.reset();
  auto file_store = Store::Open(tmp_.path() + "/file", {});
  ASSERT_TRUE(file_store.ok());
  uint64_t compared = 0;
  for (Dimension dim : {Dimension::kPort, Dimension::kCountry, Dimension::kSensor}) {
    for (const char* period : {"2019-08-21", "2019Q3", "2000-01-01..2030-12-31"}) {
      auto want = Top(**file_store, dim, *ParsePeriod(period), {}, 20);
      auto got = Top(**reopened, dim, *ParsePeriod(period), {}, 20);
      ASSERT_TRUE(want.ok() && got.ok());
      EXPECT_EQ(Describe(*got), Describe(*want)) << DimensionName(dim) << " " << period;
      compared += want->total_packets;
    }
  }
  EXPECT_GE(compared, 3 * kept_total);  // every packet was in the periods compared
  Ingester again(reopened->get(), nullptr);
  std::vector<WireBatch> batches = AsBatches(ins[0].sensor, ins[0].file, 300, 77);
  std::vector<size_t> dups;
  auto d = again.IngestBatches(ins[0].sensor, &batches, &dups);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->kept, 0u);
  EXPECT_EQ(dups.size(), batches.size());
  // A spool made anew sends ids from 1 in another stream: new batches, counted.
  std::vector<WireBatch> fresh =
      AsBatches(ins[0].sensor, testing::SharedPcapDir() + "/telnet.pcap", 300, 78);
  auto e = again.IngestBatches(ins[0].sensor, &fresh, &dups);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(dups.empty());
  EXPECT_GT(e->kept, 0u);
}

std::string History(const Store& store, const IpAddr& a) {
  auto h = SourceHistory(store, a, true);
  if (!h.ok()) return h.status().ToString();
  std::string s = fmt::format("{} {} {} {}:", h->packets, h->first_us, h->last_us, h->seen);
  for (const auto& [k, n] : h->ports) s += fmt::format(" p{}={}", k, n);
  for (const auto& [k, n] : h->days) s += fmt::format(" d{}={}", k, n);
  for (const auto& [k, n] : h->windows) s += fmt::format(" w{}={}", k, n);
  return s;
}

// A collector's many small inputs folded into one per sensor: every answer the same, the
// batches still known, the store sound, and far fewer files.
TEST_F(CollectTest, FoldingBatchInputsChangesNoAnswerAndKeepsRedeliveriesOut) {
  auto store = Make("fold");
  auto by_file = Make("file");
  Ingester ing(store.get(), nullptr), file_ing(by_file.get(), nullptr);
  struct In {
    SensorConfig sensor;
    std::string file;
  };
  std::vector<In> ins = {
      {Darknet("scan", "0.0.0.0/0"), testing::SharedPcapDir() + "/tcp_0_1000_20190821.pcap"},
      {Darknet("refl", "10.10.10.0/24"),
       testing::SharedPcapDir() + "/amp.TCP.reflection.SYNACK.pcap"},
  };
  std::vector<std::vector<WireBatch>> sent;
  for (const In& in : ins) {
    ASSERT_TRUE(file_ing.IngestFile(in.sensor, in.file).ok());
    sent.push_back(AsBatches(in.sensor, in.file, 400, 5));
    for (const WireBatch& b : sent.back()) {  // one commit per batch, as a quiet collector does
      std::vector<WireBatch> one = {b};
      std::vector<size_t> dups;
      ASSERT_TRUE(ing.IngestBatches(in.sensor, &one, &dups).ok());
    }
  }
  size_t inputs_before = store->manifest().inputs.size();
  size_t segments_before = store->manifest().segments.size();
  ASSERT_GT(inputs_before, 10u);
  Period all = *ParsePeriod("2000-01-01..2030-12-31");
  std::vector<IpAddr> probes;
  {
    auto top = TopSources(*store, MakePortKey(6, 80), all, {}, 3);
    ASSERT_TRUE(top.ok());
    for (const SourceCount& c : *top) probes.push_back(c.addr);
    auto refl = TopSources(*store, MakePortKey(6, 0), all, {}, 3);
    for (const SourceCount& c : *refl) probes.push_back(c.addr);
  }
  std::vector<std::string> before;
  for (const IpAddr& a : probes) before.push_back(History(*store, a));
  {
    auto txn = store->Begin();
    ASSERT_TRUE(txn.ok());
    uint64_t folded = 0;
    Status st = (*txn)->FoldInputs(
        FoldOptions{.batch_min_age_s = 0, .max_rows = 1 << 30, .all = true}, &folded);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(folded, inputs_before);
  }
  EXPECT_EQ(store->manifest().inputs.size(), 2u);
  EXPECT_LT(store->manifest().segments.size(), segments_before);
  EXPECT_LE(store->manifest().segments.size(), 4u);  // one per sensor-day
  for (size_t i = 0; i < probes.size(); ++i) {
    EXPECT_EQ(History(*store, probes[i]), before[i]) << probes[i].ToString();
  }
  for (Dimension dim : {Dimension::kPort, Dimension::kCountry, Dimension::kSensor}) {
    auto want = Top(*by_file, dim, all, {}, 20);
    auto got = Top(*store, dim, all, {}, 20);
    ASSERT_TRUE(want.ok() && got.ok());
    EXPECT_EQ(Describe(*got), Describe(*want)) << DimensionName(dim);
  }
  std::string dir = store->dir();
  store.reset();
  auto v = VerifyStore(dir);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok()) << (v->faults.empty() ? "" : v->faults.front());
  auto reopened = Store::Open(dir, {});
  ASSERT_TRUE(reopened.ok());
  Ingester again(reopened->get(), nullptr);
  for (size_t k = 0; k < ins.size(); ++k) {
    std::vector<WireBatch> resend = sent[k];
    std::vector<size_t> dups;
    auto r = again.IngestBatches(ins[k].sensor, &resend, &dups);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(dups.size(), sent[k].size());
    EXPECT_EQ(r->kept, 0u);
  }
  // The folded input can still be taken back out whole.
  auto txn = (*reopened)->Begin();
  ASSERT_TRUE(txn.ok());
  std::string scan_hash;
  for (const InputRecord& in : (*reopened)->manifest().inputs) {
    if (in.sensor == "scan") scan_hash = in.hash;
  }
  ASSERT_TRUE((*txn)->Forget(scan_hash).ok());
  txn->reset();
  auto top = Top(**reopened, Dimension::kSensor, all, {}, 20);
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->rows.size(), 1u);
}

TEST_F(CollectTest, ABatchOfferedAsAnotherSensorIsRefused) {
  auto store = Make("s");
  Ingester ing(store.get(), nullptr);
  SensorConfig a = Darknet("a", "0.0.0.0/0"), b = Darknet("b", "0.0.0.0/0");
  std::vector<WireBatch> batches = AsBatches(a, testing::SharedPcapDir() + "/telnet.pcap", 1000, 5);
  std::vector<size_t> dups;
  auto r = ing.IngestBatches(b, &batches, &dups);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sensor 'a' offered as sensor 'b'"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(store->manifest().inputs.empty());
}

TEST(BatchLedgerTest, RunsMergeAndAnswerMembership) {
  BatchLedger l;
  for (uint64_t id : {5, 7, 6, 1, 3, 2, 10}) l.Insert(9, id);
  for (uint64_t id = 0; id <= 11; ++id) {
    bool want = (id >= 1 && id <= 3) || (id >= 5 && id <= 7) || id == 10;
    EXPECT_EQ(l.Has(9, id), want) << id;
    EXPECT_FALSE(l.Has(8, id));
  }
  InputRecord in;
  in.batches = {{4, 1, 3}, {4, UINT64_MAX - 1, UINT64_MAX}};
  l.Add(in);
  EXPECT_TRUE(l.Has(4, 2));
  EXPECT_TRUE(l.Has(4, UINT64_MAX));
  EXPECT_FALSE(l.Has(4, 4));
}

}  // namespace
}  // namespace teiten

namespace teiten {
namespace {

// The collector in this process, on 127.0.0.1, with certificates from scripts/pki.sh.
class CollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = tmp_.path() + "/pki";
    bool ok = true;
    testing::Run(fmt::format("{0}/scripts/pki.sh init {1} && {0}/scripts/pki.sh collector {1} "
                             "127.0.0.1 && {0}/scripts/pki.sh sensor {1} s1 2>&1",
                             testing::SourceDir(), pki_),
                 &ok);
    if (!ok || !std::filesystem::exists(pki_ + "/s1.crt")) GTEST_SKIP() << "openssl unavailable";
    cfg_.path = tmp_.path() + "/centre.toml";
    cfg_.store_path = tmp_.path() + "/store";
    cfg_.timezone = "UTC";
    cfg_.has_collect = true;
    cfg_.collect.listen = "127.0.0.1:0";
    cfg_.collect.metrics = "";
    cfg_.collect.cert = pki_ + "/collector.crt";
    cfg_.collect.key = pki_ + "/collector.key";
    cfg_.collect.ca = pki_ + "/ca.crt";
    cfg_.collect.crl = pki_ + "/ca.crl";
    cfg_.sensors.push_back(Darknet("s1", "0.0.0.0/0"));
  }
  void Start() {
    auto s = Store::Open(cfg_.store_path, {.create = true, .timezone = "UTC"});
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    collector_ = std::make_unique<Collector>(cfg_, store_.get(), nullptr);
    Status st = collector_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::unique_ptr<httplib::SSLClient> Client() {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", collector_->port(), pki_ + "/s1.crt",
                                                  pki_ + "/s1.key");
    c->set_ca_cert_path((pki_ + "/ca.crt").c_str());
    c->enable_server_certificate_verification(true);
    return c;
  }
  testing::TempDir tmp_;
  std::string pki_;
  Config cfg_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Collector> collector_;
};

TEST_F(CollectorTest, RateLimitAndSizeLimitRefuseWithoutLosingAnything) {
  cfg_.collect.requests_per_second = 0.5;
  cfg_.collect.burst = 3;
  cfg_.collect.max_batch_bytes = 1 << 20;
  Start();
  if (HasFatalFailure()) return;
  std::vector<WireBatch> batches =
      AsBatches(cfg_.sensors[0], testing::SharedPcapDir() + "/tcp_0_1000_20190821.pcap", 100, 1);
  ASSERT_GE(batches.size(), 5u);
  auto client = Client();
  std::vector<int> codes;
  for (size_t i = 0; i < 5; ++i) {
    auto res = client->Post("/v1/batches", *EncodeBatch(batches[i]), "application/octet-stream");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    codes.push_back(res->status);
    if (res->status == 429) {
      EXPECT_FALSE(res->get_header_value("Retry-After").empty());
    }
  }
  // A burst of 3, then refused until the bucket refills (one every 2 s).
  EXPECT_EQ(codes, (std::vector<int>{200, 200, 200, 429, 429}));
  std::string big(2 << 20, 'x');
  auto res = client->Post("/v1/batches", big, "application/octet-stream");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  collector_->Stop();
  auto reopened = Store::Open(cfg_.store_path, {});
  ASSERT_TRUE(reopened.ok());
  uint64_t kept = 0;
  for (const InputRecord& in : (*reopened)->manifest().inputs) kept += in.kept;
  uint64_t want = 0;
  for (size_t i = 0; i < 3; ++i) want += batches[i].obs.rows.size();
  EXPECT_EQ(kept, want);
}

}  // namespace
}  // namespace teiten

#include "daemon/sensor_daemon.h"

namespace teiten {
namespace {

uint64_t StoredPackets(const std::string& dir) {
  auto s = Store::Open(dir, {});
  if (!s.ok()) return 0;
  uint64_t kept = 0;
  for (const InputRecord& in : (*s)->manifest().inputs) kept += in.kept;
  return kept;
}

std::string Line(int n) {
  return fmt::format(
      "2026-12-04T05:41:{:02}.000000+00:00 host kernel: teiten: IN=eth0 OUT= SRC=192.0.2.{} "
      "DST=10.0.0.1 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID={} PROTO=TCP SPT=1 DPT=2323 WINDOW=1024 "
      "RES=0x00 SYN URGP=0 \n",
      n % 60, n % 250, n);
}

// teiten sensor and teiten collect in this process: a watched directory and a firewall log,
// delivered and committed; a restart reads neither again.
TEST_F(CollectorTest, SensorDeliversWatchedFilesAndFirewallLogOnceAcrossRestarts) {
  Start();
  if (HasFatalFailure()) return;
  std::string watch = tmp_.path() + "/watch", log = tmp_.path() + "/kern.log";
  std::filesystem::create_directories(watch);
  std::filesystem::copy_file(testing::SharedPcapDir() + "/tcp_0_1000_20190821.pcap",
                             watch + "/a.pcap");
  std::filesystem::last_write_time(
      watch + "/a.pcap", std::filesystem::file_time_type::clock::now() - std::chrono::minutes(1));
  {
    std::ofstream out(log);
    out << "Dec  4 05:41:07 host kernel: usb 1-1: new device\n";  // not a LOG line: skipped
    for (int i = 1; i <= 20; ++i) out << Line(i);
  }
  Config sc;
  sc.path = tmp_.path() + "/sensor.toml";
  sc.sensors.push_back(Darknet("s1", "0.0.0.0/0"));
  sc.has_daemon = true;
  sc.daemon.watch_dir = watch;
  sc.daemon.netfilter_log = log;
  sc.daemon.spool = tmp_.path() + "/spool";
  sc.daemon.collector = fmt::format("https://127.0.0.1:{}", collector_->port());
  sc.daemon.cert = pki_ + "/s1.crt";
  sc.daemon.key = pki_ + "/s1.key";
  sc.daemon.ca = pki_ + "/ca.crt";
  sc.daemon.batch_seconds = 0.2;
  sc.daemon.metrics = "";
  auto run_until = [&](uint64_t want) {
    std::atomic<bool> stop{false};
    SensorDaemon daemon(sc);
    Status result;
    std::thread t([&] { result = daemon.Run(&stop); });
    for (int i = 0; i < 200 && StoredPackets(cfg_.store_path) < want; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // anything more would show now
    stop = true;
    t.join();
    EXPECT_TRUE(result.ok()) << result.ToString();
    return StoredPackets(cfg_.store_path);
  };
  EXPECT_EQ(run_until(1005 + 20), 1005u + 20u);
  {
    std::ofstream out(log, std::ios::app);
    for (int i = 21; i <= 25; ++i) out << Line(i);
  }
  EXPECT_EQ(run_until(1005 + 25), 1005u + 25u);
  // The log's observations are the packets the lines describe.
  auto store = Store::Open(cfg_.store_path, {});
  ASSERT_TRUE(store.ok());
  auto top = Top(**store, Dimension::kPort, *ParsePeriod("2026-12-04"), {}, 5);
  ASSERT_TRUE(top.ok());
  ASSERT_FALSE(top->rows.empty());
  EXPECT_EQ(top->rows[0].key, MakePortKey(6, 2323));
  EXPECT_EQ(top->rows[0].packets, 25u);
  EXPECT_EQ(top->rows[0].sources, 25u);
}

}  // namespace
}  // namespace teiten
