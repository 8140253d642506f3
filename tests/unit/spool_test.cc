// The sensor's spool (src/transport/spool.h): durable batches, ids that never repeat, a budget
// whose drops are counted and reported once, and recovery after a real process is killed -9.
#include "transport/spool.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "test_support.h"

namespace teiten {
namespace {

WireBatch Rows(size_t n) {
  WireBatch b;
  for (size_t i = 0; i < n; ++i) {
    Observation o;
    o.ts_us = 1'700'000'000'000'000 + static_cast<int64_t>(i);
    o.src = IpAddr::V4(0x0a000000 + static_cast<uint32_t>(i));
    o.dport = static_cast<uint16_t>(i);
    b.obs.rows.push_back(o);
  }
  return b;
}

TEST(SpoolTest, AppendReadAckAndIdsContinueAfterReopen) {
  testing::TempDir tmp;
  std::string dir = tmp.path() + "/spool";
  uint64_t stream = 0;
  {
    auto s = Spool::Open({dir, 1 << 20, "s1"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    stream = (*s)->stream();
    EXPECT_NE(stream, 0u);
    for (uint64_t want = 1; want <= 3; ++want) {
      auto id = (*s)->Append(Rows(10));
      ASSERT_TRUE(id.ok() && id->has_value());
      EXPECT_EQ(**id, want);
    }
    auto bytes = (*s)->Read(2);
    ASSERT_TRUE(bytes.ok());
    auto b = DecodeBatch(*bytes);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->sensor_id, "s1");
    EXPECT_EQ(b->batch_id, 2u);
    EXPECT_EQ(b->stream, stream);
    EXPECT_EQ(b->obs.rows.size(), 10u);
    ASSERT_TRUE((*s)->Ack(1).ok());
    ASSERT_TRUE((*s)->Ack(3).ok());
    EXPECT_FALSE(std::filesystem::exists(dir + "/00000000000000000001.batch"));
  }
  auto s = Spool::Open({dir, 1 << 20, "s1"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Pending(), std::vector<uint64_t>{2});
  ASSERT_TRUE((*s)->Ack(2).ok());
  auto id = (*s)->Append(Rows(1));
  ASSERT_TRUE(id.ok() && id->has_value());
  EXPECT_EQ(**id, 4u);  // not 1 again although the spool was empty
  EXPECT_EQ((*s)->stream(), stream);
  // A spool wiped and made again starts from id 1 in a new stream.
  s->reset();
  std::filesystem::remove_all(dir);
  auto fresh = Spool::Open({dir, 1 << 20, "s1"});
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE((*fresh)->stream(), stream);
  EXPECT_EQ((*fresh)->next_id(), 1u);
}

TEST(SpoolTest, BudgetDropsNewestCountsRowsAndReportsThemOnce) {
  testing::TempDir tmp;
  std::string dir = tmp.path() + "/spool";
  auto probe = EncodeBatch([] {
    WireBatch b = Rows(100);
    b.sensor_id = "s1";
    return b;
  }());
  ASSERT_TRUE(probe.ok());
  // Room for one batch of 100 rows and not two.
  auto s = Spool::Open({dir, probe->size() + probe->size() / 2, "s1"});
  ASSERT_TRUE(s.ok());
  WireBatch first = Rows(100);
  first.lost["kernel_dropped"] = 5;
  ASSERT_TRUE((*s)->Append(first)->has_value());
  auto dropped = (*s)->Append(Rows(100));
  ASSERT_TRUE(dropped.ok());
  EXPECT_FALSE(dropped->has_value());
  WireBatch dropped_too = Rows(100);
  dropped_too.lost["kernel_dropped"] = 2;
  EXPECT_FALSE((*s)->Append(dropped_too)->has_value());
  EXPECT_EQ((*s)->pending_lost().at("spool_full"), 200u);
  EXPECT_EQ((*s)->pending_lost().at("kernel_dropped"), 2u);
  ASSERT_TRUE((*s)->Ack(1).ok());
  s = Spool::Open({dir, probe->size() + probe->size() / 2, "s1"});  // the counts are durable
  ASSERT_TRUE(s.ok());
  auto id = (*s)->Append(Rows(3));
  ASSERT_TRUE(id.ok() && id->has_value());
  EXPECT_EQ(**id, 2u);  // a dropped batch does not use up an id
  auto b = DecodeBatch(*(*s)->Read(2));
  ASSERT_TRUE(b.ok());
  std::map<std::string, uint64_t> want = {{"kernel_dropped", 2}, {"spool_full", 200}};
  EXPECT_EQ(b->lost, want);
  EXPECT_TRUE((*s)->pending_lost().empty());
  ASSERT_TRUE((*s)->Ack(2).ok());
  ASSERT_TRUE((*s)->Append(Rows(1)).ok());
  EXPECT_TRUE(DecodeBatch(*(*s)->Read(3))->lost.empty());  // reported once, not again
}

TEST(SpoolTest, PartialAndCorruptFilesAreSetAsideAtOpen) {
  testing::TempDir tmp;
  std::string dir = tmp.path() + "/spool";
  {
    auto s = Spool::Open({dir, 1 << 20, "s1"});
    ASSERT_TRUE((*s)->Append(Rows(5))->has_value());
    ASSERT_TRUE((*s)->Append(Rows(5))->has_value());
  }
  std::string second = dir + "/00000000000000000002.batch";
  std::filesystem::resize_file(second, std::filesystem::file_size(second) - 1);
  { std::ofstream(dir + "/00000000000000000003.batch.tmp") << "half"; }
  auto s = Spool::Open({dir, 1 << 20, "s1"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Pending(), std::vector<uint64_t>{1});
  EXPECT_FALSE(std::filesystem::exists(dir + "/00000000000000000003.batch.tmp"));
  ASSERT_EQ((*s)->corrupt().size(), 1u);
  EXPECT_NE((*s)->corrupt()[0].find("00000000000000000002.batch"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(second + ".corrupt"));
  EXPECT_EQ(**(*s)->Append(Rows(1)), 3u);
}

// A child process appends batches as fast as it can and is killed -9 at a different moment each
// round; every restart must find only whole batches, with ids strictly increasing and never
// reused, and the losses it was carrying counted exactly once. The child reports each append on a
// pipe and the parent kills it after a few (then a little later), so every round kills a spool
// at work however slow the build (the sanitizer build is many times slower).
TEST(SpoolTest, SurvivesKillNineAtAnyMoment) {
  testing::TempDir tmp;
  std::string dir = tmp.path() + "/spool";
  // Budget for a few batches: the child keeps dropping, so losses are in flight at every kill.
  auto probe = EncodeBatch([] {
    WireBatch b = Rows(50);
    b.sensor_id = "s1";
    return b;
  }());
  uint64_t budget = probe->size() * 4;
  uint64_t floor = 0;  // every id spooled before this round
  for (int round = 0; round < 12; ++round) {
    int progress[2];
    ASSERT_EQ(::pipe(progress), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(progress[0]);
      auto s = Spool::Open({dir, budget, "s1"});
      if (!s.ok()) ::_exit(3);
      for (;;) {
        if (!(*s)->Append(Rows(50)).ok()) ::_exit(4);
        // Acks make room now and then, so writes and drops interleave.
        auto ids = (*s)->Pending();
        if (ids.size() >= 3 && !(*s)->Ack(ids.front()).ok()) ::_exit(5);
        char one = 1;
        if (::write(progress[1], &one, 1) != 1) ::_exit(6);
      }
    }
    ::close(progress[1]);
    for (int seen = 0; seen < 1 + round % 5;) {
      char c;
      ssize_t n = ::read(progress[0], &c, 1);
      ASSERT_EQ(n, 1) << "the child stopped before appending";
      ++seen;
    }
    ::usleep(static_cast<useconds_t>(137 * round));  // somewhere inside the next append
    ::kill(pid, SIGKILL);
    ::close(progress[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited " << WEXITSTATUS(status);
    auto s = Spool::Open({dir, budget, "s1"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_TRUE((*s)->corrupt().empty());
    for (uint64_t id : (*s)->Pending()) {
      auto b = DecodeBatch(*(*s)->Read(id));
      ASSERT_TRUE(b.ok()) << b.status().ToString();
      ASSERT_EQ(b->batch_id, id);
      EXPECT_GT(id, floor);
      EXPECT_LT(id, (*s)->next_id());
    }
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      EXPECT_FALSE(e.path().string().ends_with(".tmp")) << e.path();
    }
    floor = (*s)->next_id() - 1;
    // Ack everything (as the collector would) so the next round starts with room.
    for (uint64_t id : (*s)->Pending()) ASSERT_TRUE((*s)->Ack(id).ok());
  }
  auto s = Spool::Open({dir, budget, "s1"});
  ASSERT_TRUE(s.ok());
  EXPECT_GT((*s)->next_id(), 12u);
}

}  // namespace
}  // namespace teiten
