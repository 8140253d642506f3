// How the store encodes what it keeps of sources (issues 10 and 16): source sets as addresses
// and as positions in a dictionary, their streamed unions, and the source index's blocks. Each
// is checked against members and counts the test planted, not against another encoder.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "store/source_index.h"
#include "store/source_set.h"
#include "store_test_support.h"
#include "test_support.h"

namespace teiten {
namespace {

using namespace store_testing;

// The bytes of a Rice code of ascending positions (the first, then each gap less one) with the
// best parameter k of 0 to 31, counted here from the layout docs/STORE_FORMAT.md gives (a value
// v: v >> k in unary and a one, or from 15 on an escape of 16 bits and Elias gamma of
// (v >> k) − 14; then k bits), without the kind byte.
uint64_t RiceBytes(const std::vector<uint64_t>& positions, int* best_k = nullptr) {
  uint64_t best = UINT64_MAX;
  for (int k = 0; k < 32; ++k) {
    uint64_t bits = 0;
    for (size_t i = 0; i < positions.size(); ++i) {
      const uint64_t v = i == 0 ? positions[0] : positions[i] - positions[i - 1] - 1;
      const uint64_t q = v >> k;
      if (q < 15) {
        bits += q + 1 + k;
      } else {
        uint64_t x = q - 14, l = 0;
        while (x >> (l + 1)) ++l;
        bits += 16 + 2 * l + 1 + k;
      }
    }
    if ((bits + 7) / 8 < best) {
      best = (bits + 7) / 8;
      if (best_k) *best_k = k;
    }
  }
  return best;
}

// A large set is written with a table of every 128th member (kind 2) so that a few addresses are
// looked up without decoding it whole. Every member and non-member, at the table's entries, just
// after them, below the first and above the last, is found as a plain search of the members finds
// it, whether the lookup goes through the table (few addresses) or walks every gap (many).
TEST(SourceSetEncoding, ALargeSetsSkipTableFindsWhatAWalkFinds) {
  std::mt19937 rng(7);
  for (size_t n : {size_t{0}, size_t{1}, SourceSet::kSkipFrom - 1, SourceSet::kSkipFrom,
                   SourceSet::kSkipFrom + 1, size_t{100000}}) {
    std::set<uint32_t> members;
    while (members.size() < n) {
      uint32_t a = rng() & 0x3FFFFFFF;  // dense enough that neighbours are often members
      if (members.size() < 2) a = members.empty() ? 1u : 0xFFFFFFFEu;
      members.insert(a);
    }
    SourceSet set;
    for (uint32_t a : members) set.AddV4(a);
    set.Add(*IpAddr::Parse("2001:db8::1"));
    set.Add(*IpAddr::Parse("2001:db8::7"));
    set.Normalize();  // as the rollup writer does before serializing
    std::vector<uint8_t> bytes;
    set.AppendTo(&bytes);
    ASSERT_EQ(bytes[0], n >= SourceSet::kSkipFrom ? 2 : 0) << n;
    std::vector<uint32_t> v4;
    std::vector<IpAddr> v6;
    codec::Reader r(bytes.data(), bytes.size());
    ASSERT_TRUE(SourceSet::AppendMembers(&r, &v4, &v6).ok());
    EXPECT_EQ(r.remaining(), 0u);
    EXPECT_EQ(v4, std::vector<uint32_t>(members.begin(), members.end()));
    EXPECT_EQ(v6.size(), 2u);
    // Queries of 1 to 60,000 addresses: the small ones go through the table, the large walk.
    std::vector<uint32_t> sorted(members.begin(), members.end());
    for (size_t q : {size_t{1}, size_t{7}, size_t{300}, size_t{60000}}) {
      std::set<uint32_t> ask;
      for (size_t i = 0; i < sorted.size() && ask.size() < q / 2; i += 1 + rng() % 200) {
        ask.insert(sorted[i]);  // a member (a table entry when i % 128 == 0)
        if (sorted[i] + 1 != 0) ask.insert(sorted[i] + 1);  // often not one
      }
      ask.insert(0);
      ask.insert(0xFFFFFFFFu);
      while (ask.size() < q) ask.insert(rng());
      uint64_t want = 0;
      for (uint32_t a : ask) want += members.count(a);
      std::vector<uint32_t> a4(ask.begin(), ask.end());
      std::vector<IpAddr> a6 = {*IpAddr::Parse("2001:db8::2"), *IpAddr::Parse("2001:db8::7")};
      codec::Reader rr(bytes.data(), bytes.size());
      auto hits = SourceSet::CountHits(&rr, a4, a6);
      ASSERT_TRUE(hits.ok()) << hits.status().ToString();
      EXPECT_EQ(*hits, want + 1) << "set of " << n << ", " << q << " asked";
      EXPECT_EQ(rr.remaining(), 0u);
    }
  }
}

// Sets of positions (kinds 3, 4 and 5, rollup formats 7 and 8): a subset of a dictionary set —
// small and large, each with IPv6 members, in small and large dictionaries — written as positions
// reads back as exactly its members; CountHits through the dictionary finds what a plain search
// finds; a union of sets of positions and of addresses, written as addresses or as positions in the
// union of the dictionaries, holds exactly the union. Damage is DataLoss, never members.
TEST(SourceSetEncoding, SetsOfPositionsInADictionaryReadBackAsTheirMembers) {
  std::mt19937 rng(17);
  auto ip6 = [](uint32_t i) { return *IpAddr::Parse(fmt::format("2001:db8::{:x}", i)); };
  for (size_t dict_n : {size_t{50}, SourceSet::kSkipFrom - 1, size_t{300000}}) {
    std::set<uint32_t> d4;
    while (d4.size() < dict_n) d4.insert(rng());
    std::set<IpAddr> d6;
    for (uint32_t i = 0; i < 40; ++i) d6.insert(ip6(i * 3));
    SourceSet dict;
    for (uint32_t a : d4) dict.AddV4(a);
    for (const IpAddr& a : d6) dict.Add(a);
    dict.Normalize();
    std::vector<uint8_t> dict_bytes;
    dict.AppendTo(&dict_bytes);
    MemberDict md;
    dict.Members(&md.v4, &md.v6);
    ASSERT_EQ(md.v4, std::vector<uint32_t>(d4.begin(), d4.end()));
    const codec::Reader dr(dict_bytes.data(), dict_bytes.size());
    for (size_t every : {size_t{1}, size_t{2}, size_t{97}}) {  // every member, half, a few
      std::vector<uint32_t> s4;
      std::vector<IpAddr> s6;
      size_t i = 0;
      for (uint32_t a : d4) {
        if (i++ % every == 0) s4.push_back(a);
      }
      i = 0;
      for (const IpAddr& a : d6) {
        if (i++ % every == 0) s6.push_back(a);
      }
      SourceSet sub;
      for (uint32_t a : s4) sub.AddV4(a);
      for (const IpAddr& a : s6) sub.Add(a);
      sub.Normalize();
      std::vector<uint8_t> bytes;
      ASSERT_TRUE(sub.AppendPositionsTo(md.v4, md.v6, &bytes).ok());
      // Every member is one run (kind 5); every other member or fewer, gaps (4 with a skip
      // table), or below kSkipFrom members gaps (6) or a Rice code (16 + k), whichever is smaller.
      if (every == 1) {
        ASSERT_EQ(bytes[0], 5);
      } else if (s4.size() + s6.size() >= SourceSet::kSkipFrom) {
        ASSERT_EQ(bytes[0], 4);
      } else {
        std::vector<uint64_t> pos;
        for (size_t k = 0; k < md.v4.size(); k += every) pos.push_back(k);
        for (size_t k = 0; k < md.v6.size(); k += every) pos.push_back(md.v4.size() + k);
        uint64_t gap_bytes = 0;
        for (size_t k = 0; k < pos.size(); ++k) {
          gap_bytes += codec::VarintSize(k == 0 ? pos[0] : pos[k] - pos[k - 1]);
        }
        const uint64_t rice = RiceBytes(pos);
        ASSERT_EQ(bytes[0] >= 16, rice < gap_bytes) << dict_n << "/" << every;
        ASSERT_EQ(bytes.size(), 1 + std::min(rice, gap_bytes)) << dict_n << "/" << every;
      }
      std::vector<uint8_t> as_addresses;
      sub.AppendTo(&as_addresses);
      EXPECT_LT(bytes.size(), as_addresses.size()) << dict_n << "/" << every;
      std::vector<uint32_t> v4;
      std::vector<IpAddr> v6;
      codec::Reader r(bytes.data(), bytes.size());
      ASSERT_TRUE(SourceSet::AppendMembers(&r, &v4, &v6, &dr).ok());
      EXPECT_EQ(v4, s4);
      EXPECT_EQ(v6, s6);
      // Without its dictionary a set of positions is an error, not members.
      codec::Reader alone(bytes.data(), bytes.size());
      v4.clear();
      EXPECT_EQ(SourceSet::AppendMembers(&alone, &v4, &v6).code(), StatusCode::kDataLoss);
      // Asked: some members, their neighbours, addresses outside the dictionary, IPv6 in and out.
      for (size_t q : {size_t{3}, size_t{500}, size_t{70000}}) {
        std::set<uint32_t> ask;
        for (size_t k = 0; k < s4.size() && ask.size() < q / 2; k += 1 + rng() % 50) {
          ask.insert(s4[k]);
          ask.insert(s4[k] + 1);
        }
        while (ask.size() < q) ask.insert(rng());
        std::vector<uint32_t> a4(ask.begin(), ask.end());
        std::vector<IpAddr> a6 = {ip6(0), ip6(1), ip6(3), ip6(117)};
        std::set<uint32_t> in4(s4.begin(), s4.end());
        std::set<IpAddr> in6(s6.begin(), s6.end());
        uint64_t want = 0;
        for (uint32_t a : a4) want += in4.count(a);
        for (const IpAddr& a : a6) want += in6.count(a);
        codec::Reader rr(bytes.data(), bytes.size());
        auto hits = SourceSet::CountHits(&rr, a4, a6, &dr);
        ASSERT_TRUE(hits.ok()) << hits.status().ToString();
        EXPECT_EQ(*hits, want) << dict_n << "/" << every << ", " << q << " asked";
        // The same through the dictionary decoded by the caller (a query's cache): searched in
        // the members instead of walked in the gaps.
        codec::Reader rd(bytes.data(), bytes.size());
        auto hits_decoded = SourceSet::CountHits(&rd, a4, a6, &dr, &md);
        ASSERT_TRUE(hits_decoded.ok()) << hits_decoded.status().ToString();
        EXPECT_EQ(*hits_decoded, want) << dict_n << "/" << every << ", " << q << " asked, decoded";
      }
      // United with a set of addresses (some members outside the dictionary), as addresses and
      // as positions in the union's own dictionary.
      SourceSet other;
      for (uint32_t k = 0; k < 3000; ++k) other.AddV4(rng());
      other.AddV4(s4.empty() ? 5u : s4[0]);
      other.Add(ip6(1000));
      other.Normalize();
      std::vector<uint8_t> other_bytes;
      other.AppendTo(&other_bytes);
      SourceSet want_union = sub;
      want_union.Merge(other);
      want_union.Normalize();
      std::vector<uint32_t> u4;
      std::vector<IpAddr> u6;
      want_union.Members(&u4, &u6);
      SourceSet whole = dict;
      whole.Merge(other);
      whole.Normalize();
      MemberDict to;
      whole.Members(&to.v4, &to.v6);
      std::vector<uint8_t> whole_bytes;
      whole.AppendTo(&whole_bytes);
      const codec::Reader wr(whole_bytes.data(), whole_bytes.size());
      for (const MemberDict* target : std::vector<const MemberDict*>{nullptr, &to}) {
        std::vector<SetInput> in = {{codec::Reader(bytes.data(), bytes.size()), dr, true},
                                    {codec::Reader(other_bytes.data(), other_bytes.size()),
                                     codec::Reader(nullptr, 0), false}};
        auto u = SetUnion::Plan(in, nullptr, target);
        ASSERT_TRUE(u.ok()) << u.status().ToString();
        EXPECT_EQ(u->count(), u4.size() + u6.size());
        std::vector<uint8_t> out;
        ASSERT_TRUE(u->Write([&](const uint8_t* p, size_t n) {
                       out.insert(out.end(), p, p + n);
                       return OkStatus();
                     }).ok());
        EXPECT_EQ(out.size(), u->bytes());
        codec::Reader back(out.data(), out.size());
        v4.clear();
        v6.clear();
        ASSERT_TRUE(SourceSet::AppendMembers(&back, &v4, &v6, target ? &wr : nullptr).ok());
        EXPECT_EQ(v4, u4);
        EXPECT_EQ(v6, u6);
      }
      // A position past the dictionary, and positions out of order: errors.
      if (every == 1) {
        std::vector<uint8_t> past;
        SourceSet::AppendPositions({0, md.v4.size() + md.v6.size()}, &past);
        codec::Reader pr(past.data(), past.size());
        EXPECT_EQ(SourceSet::AppendMembers(&pr, &v4, &v6, &dr).code(), StatusCode::kDataLoss);
        std::vector<uint8_t> repeat = {3, 2, 1, 0};  // positions 1, 1
        codec::Reader rp(repeat.data(), repeat.size());
        EXPECT_EQ(SourceSet::AppendMembers(&rp, &v4, &v6, &dr).code(), StatusCode::kDataLoss);
        // Kind 6 (no count): the same, and a varint cut short at the set's end.
        std::vector<uint8_t> repeat6 = {6, 1, 0}, cut6 = {6, 1, 0x81};
        codec::Reader rp6(repeat6.data(), repeat6.size()), rc6(cut6.data(), cut6.size());
        EXPECT_EQ(SourceSet::AppendMembers(&rp6, &v4, &v6, &dr).code(), StatusCode::kDataLoss);
        EXPECT_EQ(SourceSet::AppendMembers(&rc6, &v4, &v6, &dr).code(), StatusCode::kDataLoss);
        // Kind 6 written by hand: positions 0, 2 and 300 of the dictionary.
        std::vector<uint8_t> three = {6, 0, 2, 0xAA, 0x02};  // gaps 0, 2, 298
        if (md.v4.size() > 300) {
          codec::Reader r3(three.data(), three.size());
          v4.clear();
          v6.clear();
          ASSERT_TRUE(SourceSet::AppendMembers(&r3, &v4, &v6, &dr).ok());
          EXPECT_EQ(v4, (std::vector<uint32_t>{md.v4[0], md.v4[2], md.v4[300]}));
        }
        std::vector<uint8_t> written;
        SourceSet::AppendPositions({0, 2, 300}, &written);
        EXPECT_EQ(written, three);
      }
    }
  }
}

// A dictionary of `n` random IPv4 sources (from `rng`) and 40 IPv6 ones, written as an entry's
// total set, and sets of positions in it read back as positions.
struct PositionDict {
  std::vector<uint8_t> bytes;
  MemberDict md;
  PositionDict(std::mt19937* rng, size_t n) {
    std::set<uint32_t> d4;
    while (d4.size() < n) d4.insert((*rng)());
    SourceSet dict;
    for (uint32_t a : d4) dict.AddV4(a);
    for (uint32_t i = 0; i < 40; ++i) dict.Add(*IpAddr::Parse(fmt::format("2001:db8::{:x}", i)));
    dict.Normalize();
    dict.AppendTo(&bytes);
    dict.Members(&md.v4, &md.v6);
  }
  codec::Reader Reader() const { return codec::Reader(bytes.data(), bytes.size()); }
  uint64_t size() const { return md.v4.size() + md.v6.size(); }
  // Reads a set of positions in this dictionary (`decoded`: its members, or null to walk it).
  Status Read(const std::vector<uint8_t>& set, const MemberDict* decoded,
              std::vector<uint64_t>* positions) const {
    std::vector<uint32_t> v4;
    std::vector<IpAddr> v6;
    codec::Reader r(set.data(), set.size());
    const codec::Reader dr = Reader();
    RETURN_IF_ERROR(SourceSet::AppendMembers(&r, &v4, &v6, &dr, decoded));
    positions->clear();
    for (uint32_t a : v4) {
      positions->push_back(std::lower_bound(md.v4.begin(), md.v4.end(), a) - md.v4.begin());
    }
    for (const IpAddr& a : v6) {
      positions->push_back(md.v4.size() +
                           (std::lower_bound(md.v6.begin(), md.v6.end(), a) - md.v6.begin()));
    }
    return OkStatus();
  }
};

// Small sets of positions as Rice codes (kinds 16 to 47, rollup format 11): written exactly when
// smaller than their gaps and runs, in the bytes the layout gives, read back as their members
// (the dictionary decoded or walked), counted, and united with others into the bytes of their
// union; hand-written codes (an escape included) read as the layout says; damage is DataLoss.
TEST(SourceSetEncoding, SmallSetsOfPositionsAsRiceCodesReadBackAsTheirMembers) {
  std::mt19937 rng(41);
  const PositionDict pd(&rng, 200000);
  const MemberDict& md = pd.md;
  const uint64_t size = pd.size();
  const codec::Reader dr = pd.Reader();
  int rice_sets = 0, escapes = 0;
  // Sets of 1 to 2,047 positions, evenly spread (geometric gaps of several means), clustered
  // (gaps of 1 to 3 with jumps of about 100: codes with escapes), and one reaching the IPv6 end.
  for (int trial = 0; trial < 60; ++trial) {
    std::set<uint64_t> pick;
    const uint64_t n = trial < 5 ? uint64_t{1} + trial : 1 + rng() % (SourceSet::kSkipFrom - 1);
    if (trial % 3 == 2) {
      uint64_t x = rng() % 1000;
      while (pick.size() < n && x < size) {
        pick.insert(x);
        x += rng() % 20 == 0 ? 80 + rng() % 40 : 1 + rng() % 3;
      }
    } else {
      while (pick.size() < n) pick.insert(rng() % size);
    }
    if (trial == 7) pick.insert(size - 1);
    std::vector<uint64_t> positions(pick.begin(), pick.end());
    uint64_t gap_bytes = 0, prev = 0;
    for (uint64_t x : positions) {
      gap_bytes += codec::VarintSize(x - prev);
      prev = x;
    }
    int k = -1;
    const uint64_t rice = RiceBytes(positions, &k);
    std::vector<uint8_t> bytes;
    SourceSet::AppendPositions(positions, &bytes);
    SCOPED_TRACE(fmt::format("trial {}: {} positions, gaps {} B, Rice {} B", trial,
                             positions.size(), gap_bytes, rice));
    // Clustered sets are as often runs (kind 5); the rest are gaps or a Rice code.
    if (bytes[0] != 5) {
      EXPECT_EQ(bytes.size(), 1 + std::min(gap_bytes, rice));
      EXPECT_EQ(bytes[0] >= 16, rice < gap_bytes);
    }
    if (bytes[0] >= 16) {
      ++rice_sets;
      const int kk = bytes[0] - 16;
      for (size_t i = 0; i < positions.size(); ++i) {
        const uint64_t v = i == 0 ? positions[0] : positions[i] - positions[i - 1] - 1;
        if ((v >> kk) >= 15) {
          ++escapes;
          break;
        }
      }
    }
    for (const MemberDict* decoded : std::vector<const MemberDict*>{nullptr, &md}) {
      std::vector<uint64_t> got;
      ASSERT_TRUE(pd.Read(bytes, decoded, &got).ok());
      EXPECT_EQ(got, positions);
    }
    // Counted: members, their neighbours, addresses outside the dictionary.
    std::set<uint32_t> ask;
    for (uint64_t x : positions) {
      if (x < md.v4.size() && rng() % 2 == 0) {
        ask.insert(md.v4[x]);
        ask.insert(md.v4[x] + 1);
      }
    }
    for (int j = 0; j < 300; ++j) ask.insert(rng());
    std::vector<uint32_t> a4(ask.begin(), ask.end());
    uint64_t want_hits = 0;
    for (uint32_t a : a4) {
      auto it = std::lower_bound(md.v4.begin(), md.v4.end(), a);
      if (it != md.v4.end() && *it == a) {
        want_hits += pick.count(static_cast<uint64_t>(it - md.v4.begin()));
      }
    }
    const std::vector<IpAddr> a6 = {md.v6[0], md.v6[39]};
    for (const IpAddr& a : a6) {
      want_hits += pick.count(md.v4.size() +
                              (std::lower_bound(md.v6.begin(), md.v6.end(), a) - md.v6.begin()));
    }
    for (const MemberDict* decoded : std::vector<const MemberDict*>{nullptr, &md}) {
      codec::Reader rr(bytes.data(), bytes.size());
      auto hits = SourceSet::CountHits(&rr, a4, a6, &dr, decoded);
      ASSERT_TRUE(hits.ok()) << hits.status().ToString();
      EXPECT_EQ(*hits, want_hits);
    }
    // United with another small set: the bytes of the union written at once.
    std::set<uint64_t> more;
    while (more.size() < 1 + rng() % 300) more.insert(rng() % size);
    std::vector<uint8_t> other;
    SourceSet::AppendPositions(std::vector<uint64_t>(more.begin(), more.end()), &other);
    std::set<uint64_t> united(pick);
    united.insert(more.begin(), more.end());
    std::vector<uint8_t> want_bytes;
    SourceSet::AppendPositions(std::vector<uint64_t>(united.begin(), united.end()), &want_bytes);
    for (const MemberDict* decoded : std::vector<const MemberDict*>{nullptr, &md}) {
      std::vector<SetInput> in = {{codec::Reader(bytes.data(), bytes.size()), dr, true, decoded},
                                  {codec::Reader(other.data(), other.size()), dr, true, decoded}};
      auto u = SetUnion::Plan(in, nullptr, &md);
      ASSERT_TRUE(u.ok()) << u.status().ToString();
      EXPECT_EQ(u->count(), united.size());
      std::vector<uint8_t> out;
      ASSERT_TRUE(u->Write([&](const uint8_t* p, size_t len) {
                     out.insert(out.end(), p, p + len);
                     return OkStatus();
                   }).ok());
      EXPECT_EQ(out.size(), u->bytes());
      EXPECT_EQ(out, want_bytes);
    }
  }
  EXPECT_GE(rice_sets, 30);
  EXPECT_GE(escapes, 3);
  // By hand: positions 0 to 3 with k = 0 (four codes "1"); 5 and 7 with k = 0 (five zeros and a
  // one, then a zero and a one); 20 with k = 0 as an escape (15 zeros and a one, then 6 in gamma:
  // two zeros, a one, the bits 0 and 1).
  {
    std::vector<uint8_t> b;
    SourceSet::AppendPositions({0, 1, 2, 3}, &b);
    EXPECT_EQ(b, (std::vector<uint8_t>{16, 0x0F}));
    b.clear();
    SourceSet::AppendPositions({5, 7}, &b);
    EXPECT_EQ(b, (std::vector<uint8_t>{16, 0xA0}));
    std::vector<uint64_t> got;
    ASSERT_TRUE(pd.Read({16, 0x00, 0x80, 0x14}, nullptr, &got).ok());
    EXPECT_EQ(got, (std::vector<uint64_t>{20}));
    ASSERT_TRUE(pd.Read({16 + 5, 0x01}, nullptr, &got).ok());  // 0 with k = 5, two bits of padding
    EXPECT_EQ(got, (std::vector<uint64_t>{0}));
  }
  // Damage: padding of a whole byte; a code cut short; a value past 32 bits (k = 31, q = 2); a
  // position past the dictionary; positions summing past 2^32. Codes packed here by the layout
  // (values below 15 << k: no escape).
  auto code = [](int k, std::vector<uint64_t> values) {
    std::vector<uint8_t> b = {static_cast<uint8_t>(16 + k)};
    unsigned __int128 acc = 0;
    int bits = 0;
    for (uint64_t v : values) {
      acc |= static_cast<unsigned __int128>(1) << (bits + (v >> k));
      bits += static_cast<int>(v >> k) + 1;
      acc |= static_cast<unsigned __int128>(v & ((uint64_t{1} << k) - 1)) << bits;
      bits += k;
    }
    for (int at = 0; at < bits; at += 8) b.push_back(static_cast<uint8_t>(acc >> at));
    return b;
  };
  ASSERT_EQ(code(0, {5, 1}), (std::vector<uint8_t>{16, 0xA0}));
  const std::vector<std::vector<uint8_t>> bad = {{16, 0x01, 0x00},
                                                 {16 + 8, 0x01},
                                                 {16 + 31, 0x04},
                                                 code(20, {size + 5}),
                                                 code(31, {UINT32_MAX, 5})};
  for (size_t bi = 0; bi < bad.size(); ++bi) {
    SCOPED_TRACE(bi);
    std::vector<uint64_t> got;
    for (const MemberDict* decoded : std::vector<const MemberDict*>{nullptr, &md}) {
      EXPECT_EQ(pd.Read(bad[bi], decoded, &got).code(), StatusCode::kDataLoss);
    }
    std::vector<SetInput> in = {{codec::Reader(bad[bi].data(), bad[bi].size()), dr, true, nullptr}};
    EXPECT_FALSE(SetUnion::Plan(in, nullptr, &md).ok());
  }
}

// Sets of positions as runs (kind 5, rollup format 8): a region's sources lie in its address
// blocks, so its positions in the day's sources are runs. A set is written as runs exactly when
// that takes fewer bytes than gaps, reads back as its members (the dictionary decoded or walked),
// is counted run by run, and unites with others into runs again. Damage is DataLoss, and a run
// claiming more members than its dictionary holds is refused before it is walked.
TEST(SourceSetEncoding, SetsOfPositionsAsRunsReadBackAsTheirMembers) {
  std::mt19937 rng(29);
  const PositionDict pd(&rng, 300000);
  const MemberDict& md = pd.md;
  const uint64_t size = pd.size();
  const codec::Reader dr = pd.Reader();
  // Every member: one run, 1 + 3 + 1 + 1 + 3 bytes, written by hand.
  std::vector<uint64_t> all(size);
  for (uint64_t i = 0; i < size; ++i) all[i] = i;
  std::vector<uint8_t> bytes;
  SourceSet::AppendPositions(all, &bytes);
  std::vector<uint8_t> want = {5};
  codec::PutVarint(&want, size);
  codec::PutVarint(&want, 1);
  codec::PutVarint(&want, 0);
  codec::PutVarint(&want, size - 1);
  EXPECT_EQ(bytes, want);
  // Blocks of consecutive positions (one spanning the last IPv4 member and the IPv6 ones), with
  // isolated positions between them in growing number: runs while they are smaller, then gaps.
  for (int isolated : {0, 3, 30, -1}) {
    std::set<uint64_t> pick;
    // -1: every other position of the first 40,000 and one block (gaps of 2: one byte each,
    // where runs of one take two).
    for (uint64_t x = 0; isolated < 0 && x < 40000; x += 2) pick.insert(x);
    for (int b = 0; b < (isolated < 0 ? 1 : 200); ++b) {
      const uint64_t start = rng() % (size - 600), len = 1 + rng() % 500;
      for (uint64_t x = start; x < start + len; ++x) pick.insert(x);
      for (int k = 0; k < isolated; ++k) pick.insert(rng() % size);
    }
    for (uint64_t x = md.v4.size() - 5; x < md.v4.size() + 7; ++x) pick.insert(x);
    std::vector<uint64_t> positions(pick.begin(), pick.end());
    uint64_t runs = 0, run_bytes = 0, gap_bytes = 0, end = 0, prev = 0;
    for (size_t i = 0; i < positions.size(); ++i) {
      gap_bytes += codec::VarintSize(positions[i] - prev);
      prev = positions[i];
      if (i > 0 && positions[i] == positions[i - 1] + 1) continue;
      size_t j = i;
      while (j + 1 < positions.size() && positions[j + 1] == positions[j] + 1) ++j;
      ++runs;
      run_bytes += codec::VarintSize(positions[i] - end) + codec::VarintSize(j - i);
      end = positions[j] + 1;
    }
    const uint64_t n = positions.size();
    // Below kSkipFrom members the gaps are kind 6, which writes no count.
    const uint64_t as_gaps =
        1 + gap_bytes +
        (n >= SourceSet::kSkipFrom
             ? codec::VarintSize(n) + codec::VarintSize(SourceSet::kSkipStride) +
                   codec::VarintSize(gap_bytes) +
                   8 * ((n + SourceSet::kSkipStride - 1) / SourceSet::kSkipStride)
             : 0);
    const uint64_t as_runs = 1 + codec::VarintSize(n) + codec::VarintSize(runs) + run_bytes;
    bytes.clear();
    SourceSet::AppendPositions(positions, &bytes);
    EXPECT_EQ(bytes.size(), std::min(as_gaps, as_runs)) << isolated;
    EXPECT_EQ(bytes[0] == 5, as_runs < as_gaps) << isolated;
    if (isolated == 0) {
      EXPECT_EQ(bytes[0], 5);
    }
    if (isolated < 0) {
      EXPECT_EQ(bytes[0], 4);
    }
    for (const MemberDict* decoded : std::vector<const MemberDict*>{nullptr, &md}) {
      std::vector<uint64_t> got;
      ASSERT_TRUE(pd.Read(bytes, decoded, &got).ok()) << isolated;
      EXPECT_EQ(got, positions) << isolated;
    }
    // Counted: members, their neighbours and addresses outside the dictionary.
    std::vector<uint32_t> a4;
    std::set<uint32_t> ask;
    for (uint64_t x : positions) {
      if (x < md.v4.size() && rng() % 4 == 0) {
        ask.insert(md.v4[x]);
        ask.insert(md.v4[x] + 1);
      }
    }
    for (int k = 0; k < 1000; ++k) ask.insert(rng());
    a4.assign(ask.begin(), ask.end());
    uint64_t want_hits = 0;
    for (uint32_t a : a4) {
      auto it = std::lower_bound(md.v4.begin(), md.v4.end(), a);
      if (it != md.v4.end() && *it == a) {
        want_hits += pick.count(static_cast<uint64_t>(it - md.v4.begin()));
      }
    }
    const std::vector<IpAddr> a6 = {md.v6[0], md.v6[39], *IpAddr::Parse("2001:db8::ffff")};
    for (const IpAddr& a : a6) {
      auto it = std::lower_bound(md.v6.begin(), md.v6.end(), a);
      if (it != md.v6.end() && *it == a) {
        want_hits += pick.count(md.v4.size() + static_cast<uint64_t>(it - md.v6.begin()));
      }
    }
    codec::Reader rr(bytes.data(), bytes.size());
    auto hits = SourceSet::CountHits(&rr, a4, a6, &dr);
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    EXPECT_EQ(*hits, want_hits) << isolated;
    // United with a shifted copy of itself, as positions in the dictionary (decoded or not).
    std::set<uint64_t> shifted;
    for (uint64_t x : positions) shifted.insert((x + 250) % size);
    std::vector<uint8_t> other;
    SourceSet::AppendPositions(std::vector<uint64_t>(shifted.begin(), shifted.end()), &other);
    std::set<uint64_t> united(pick);
    united.insert(shifted.begin(), shifted.end());
    std::vector<uint8_t> want_bytes;
    SourceSet::AppendPositions(std::vector<uint64_t>(united.begin(), united.end()), &want_bytes);
    for (const MemberDict* decoded : std::vector<const MemberDict*>{nullptr, &md}) {
      std::vector<SetInput> in = {{codec::Reader(bytes.data(), bytes.size()), dr, true, decoded},
                                  {codec::Reader(other.data(), other.size()), dr, true, decoded}};
      auto u = SetUnion::Plan(in, nullptr, &md);
      ASSERT_TRUE(u.ok()) << u.status().ToString();
      EXPECT_EQ(u->count(), united.size());
      std::vector<uint8_t> out;
      ASSERT_TRUE(u->Write([&](const uint8_t* p, size_t k) {
                     out.insert(out.end(), p, p + k);
                     return OkStatus();
                   }).ok());
      EXPECT_EQ(out.size(), u->bytes());
      EXPECT_EQ(out, want_bytes) << isolated;  // the bytes of the union written at once
    }
  }
  // Damage: a run past the dictionary; a count its runs do not hold (over and under); more runs
  // than members; a run cut short; a run of 2^32 members claimed in six bytes.
  auto hostile = [](std::initializer_list<uint64_t> varints) {
    std::vector<uint8_t> b = {5};
    for (uint64_t v : varints) codec::PutVarint(&b, v);
    return b;
  };
  const std::vector<std::vector<uint8_t>> bad = {
      hostile({3, 1, size - 2, 2}),  // positions size−2 .. size
      hostile({5, 1, 0, 3}),         // four members, five claimed
      hostile({3, 2, 0, 1, 5, 1}),   // four members, three claimed
      hostile({2, 3, 0, 0, 1, 0}),   // three runs of two members
      hostile({9, 2, 0, 3, 4}),      // the second run's length missing
      hostile({uint64_t{1} << 32, 1, 0, (uint64_t{1} << 32) - 1})};
  for (size_t bi = 0; bi < bad.size(); ++bi) {
    const auto& b = bad[bi];
    SCOPED_TRACE(bi);
    std::vector<uint64_t> got;
    for (const MemberDict* decoded : std::vector<const MemberDict*>{nullptr, &md}) {
      EXPECT_EQ(pd.Read(b, decoded, &got).code(), StatusCode::kDataLoss) << b.size();
    }
    codec::Reader rr(b.data(), b.size());
    EXPECT_EQ(SourceSet::CountHits(&rr, md.v4, {}, &dr).status().code(), StatusCode::kDataLoss);
    std::vector<SetInput> in = {{codec::Reader(b.data(), b.size()), dr, true, nullptr}};
    auto u = SetUnion::Plan(in, nullptr, &md);
    EXPECT_FALSE(u.ok()) << b.size();
  }
}

// A merge streams the union of its parts' sets into the new part (SetUnion) instead of holding
// the members: the bytes are those of uniting the sets in memory and serializing the result, on
// either side of the size where a set gets its skip table, with IPv6 members, overlaps and an
// empty set among the inputs.
TEST(SourceSetEncoding, AStreamedUnionWritesTheBytesOfTheUnitedSet) {
  std::mt19937 rng(3);
  // Four inputs are walked by a scan of their heads, nine by a heap: both must write the bytes
  // of the united set.
  for (int inputs : {4, 9}) {
    for (size_t n : {size_t{0}, size_t{700}, size_t{1100}, size_t{40000}, size_t{300000}}) {
      if (n == 300000 && inputs == 4) continue;
      std::vector<std::vector<uint8_t>> blobs;
      SourceSet all;
      std::vector<uint32_t> shared;
      for (int k = 0; k < inputs; ++k) {
        SourceSet s;
        for (size_t i = 0; i < (k == 2 ? 0 : n); ++i) {
          uint32_t a = rng() % 5000000;
          s.AddV4(a);
          if (i % 9 == 0) shared.push_back(a);
        }
        for (uint32_t a : shared) s.AddV4(a);  // members in several inputs
        if (k == 1) s.Add(*IpAddr::Parse("2001:db8::5"));
        if (k == 3) s.Add(*IpAddr::Parse("2001:db8::5"));
        s.Normalize();
        blobs.emplace_back();
        s.AppendTo(&blobs.back());
        all.Merge(s);
      }
      all.Normalize();
      std::vector<uint8_t> want;
      all.AppendTo(&want);
      std::vector<codec::Reader> readers;
      for (const auto& b : blobs) readers.emplace_back(b.data(), b.size());
      uint64_t hooks = 0;
      auto u = SetUnion::Plan(std::move(readers), [&] { ++hooks; });
      ASSERT_TRUE(u.ok()) << u.status().ToString();
      std::vector<uint8_t> got;
      ASSERT_TRUE(u->Write([&](const uint8_t* p, size_t len) {
                     got.insert(got.end(), p, p + len);
                     return OkStatus();
                   }).ok());
      EXPECT_EQ(u->count(), all.Count()) << inputs << " inputs of " << n;
      EXPECT_EQ(u->bytes(), want.size()) << inputs << " inputs of " << n;
      EXPECT_TRUE(got == want) << "union of " << inputs << " sets of " << n
                               << " differs from the united set";
      // The hook runs after each 2^20 members of each of the two walks.
      EXPECT_EQ(hooks, 2 * ((all.Count() - 1) >> 20)) << inputs << " " << n;  // one IPv6 member
    }
  }
}

// One source's packets as the test planted them, to check an index against.
struct Planted {
  IpAddr addr;
  std::vector<Observation> rows;
  std::vector<uint32_t> refs;  // the block reference of each run (one run per ref)
};

TEST(SourceIndexTest, BlocksOfBothFamiliesAnswerEverySourceExactlyAndDamageOnlyTheirOwn) {
  // Issue 10/16: entries in compressed blocks (format 5). 20,000 IPv4 and 700 IPv6 sources, some
  // in two runs (two segments), each found with exactly the packets, ports, TTLs, times and
  // visits planted; addresses between them are not found; a merge of the file with itself
  // doubles every count; a flipped byte fails only the sources whose block it lies in.
  testing::TempDir dir;
  SourceIndexBuilder b;
  const uint32_t r0 = b.AddBlock(7, 0, 17755), r1 = b.AddBlock(9, 3, 17756);
  std::vector<Planted> planted;
  constexpr uint32_t kV4 = 20000, kAll = kV4 + 700;
  for (uint32_t i = 0; i < kAll; ++i) {
    Planted p;
    // Ascending addresses whose gaps vary (16 bits of noise each), so that the file spans
    // several checksum chunks.
    p.addr = i < kV4 ? IpAddr::V4(0x01000000u + i * 70001u + (i * i) % 65521u)
                     : *IpAddr::Parse(fmt::format("2001:db8::{:x}:{:x}", i % 7, i * 3));
    for (uint32_t j = 0; j <= i % 4; ++j) {
      Observation o;
      o.ts_us = kAug12Jst + int64_t{i} * 1000 + j * 700'007;  // a source's rows over 2 s
      o.src = p.addr;
      o.proto = j % 2 ? 17 : 6;
      // Most first ports are a block's frequent ones (index format 7 codes them as symbols);
      // every 97th source's is its own.
      o.dport = static_cast<uint16_t>(i % 97 == 0 ? 30000 + i : 23 + (i + j) % 3);
      o.ttl = static_cast<uint8_t>(j % 3 ? 64 : 128);
      p.rows.push_back(o);
    }
    p.refs = {r0};
    if (i % 10 == 0) p.refs.push_back(r1);
    planted.push_back(p);
  }
  std::sort(planted.begin() + kV4, planted.end(),
            [](const Planted& a, const Planted& c) { return a.addr.bytes < c.addr.bytes; });
  // Runs as a segment writer adds them: every source's run of one segment, then the next's.
  for (uint32_t ref : {r0, r1}) {
    for (const Planted& p : planted) {
      if (std::find(p.refs.begin(), p.refs.end(), ref) == p.refs.end()) continue;
      std::vector<const Observation*> rows;
      for (const Observation& o : p.rows) rows.push_back(&o);
      b.AddRun(rows.data(), rows.size(), ref, 1, GeoInfo{MakeCountryCode("JP"), 2497});
    }
  }
  const std::string path = dir.path() + "/a.tsix";
  ASSERT_TRUE(b.Write(path).ok());
  auto x = SourceIndex::Open(path);
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_EQ((*x)->sources(), kAll);
  EXPECT_TRUE((*x)->Verify().ok());
  std::vector<std::string> walked;
  ASSERT_TRUE((*x)->ForEachSource([&](const IpAddr& a) {
                    walked.push_back(a.ToString());
                    return OkStatus();
                  })
                  .ok());
  std::vector<std::string> want_order;
  for (const Planted& p : planted) want_order.push_back(p.addr.ToString());  // already ascending
  EXPECT_EQ(walked, want_order);
  // What a lookup must say of `p`, each run counted `times` times.
  auto expect = [](const Planted& p, const SourceSummary& s, uint64_t times) {
    const uint64_t runs = p.refs.size() * times;
    EXPECT_EQ(s.packets, p.rows.size() * runs) << p.addr.ToString();
    // Times are kept in whole seconds (index format 6), rounded down.
    auto whole = [](int64_t us) { return us / 1000000 * 1000000; };
    EXPECT_EQ(s.first_us, whole(p.rows.front().ts_us));
    EXPECT_EQ(s.last_us, whole(p.rows.back().ts_us));
    EXPECT_EQ(s.geo.country, MakeCountryCode("JP"));
    EXPECT_EQ(s.geo.asn, 2497u);
    std::map<PortKey, uint64_t> ports;
    std::map<uint8_t, uint64_t> ttls;
    for (const Observation& o : p.rows) {
      ports[PortKeyOf(o)] += runs;
      ttls[o.ttl] += runs;
    }
    using PortMap = std::map<PortKey, uint64_t>;
    using TtlMap = std::map<uint8_t, uint64_t>;
    EXPECT_EQ(PortMap(s.ports.begin(), s.ports.end()), ports);
    EXPECT_EQ(TtlMap(s.ttls.begin(), s.ttls.end()), ttls);
    ASSERT_EQ(s.visits.size(), runs);
    for (const Visit& v : s.visits) {
      EXPECT_EQ(v.packets, p.rows.size());
      EXPECT_TRUE((v.first == BlockRef{7, 0} && v.day == 17755) ||
                  (v.first == BlockRef{9, 3} && v.day == 17756));
    }
  };
  for (const Planted& p : planted) {
    SourceSummary s;
    auto found = (*x)->Lookup(p.addr, &s);
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    ASSERT_TRUE(*found) << p.addr.ToString();
    expect(p, s, 1);
  }
  for (const char* absent : {"0.0.0.1", "1.0.0.1", "1.0.31.0", "255.255.255.255", "::1",
                             "2001:db8::1:4", "2001:db9::"}) {
    SourceSummary s;
    auto found = (*x)->Lookup(*IpAddr::Parse(absent), &s);
    ASSERT_TRUE(found.ok());
    EXPECT_FALSE(*found) << absent;
  }
  // Merged with itself: one entry per address, twice the counts, the second copy's visits
  // pointing into the second block table.
  ASSERT_TRUE(SourceIndex::Merge({x->get(), x->get()}, dir.path() + "/m.tsix").ok());
  auto m = SourceIndex::Open(dir.path() + "/m.tsix");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->sources(), kAll);
  std::map<uint64_t, uint64_t> by_segment, by_segment_merged;
  ASSERT_TRUE((*x)->PacketsBySegment(&by_segment).ok());
  ASSERT_TRUE((*m)->PacketsBySegment(&by_segment_merged).ok());
  uint64_t in_7 = 0, in_9 = 0;
  for (const Planted& p : planted) {
    in_7 += p.rows.size();
    if (p.refs.size() == 2) in_9 += p.rows.size();
  }
  EXPECT_EQ(by_segment, (std::map<uint64_t, uint64_t>{{7, in_7}, {9, in_9}}));
  EXPECT_EQ(by_segment_merged, (std::map<uint64_t, uint64_t>{{7, 2 * in_7}, {9, 2 * in_9}}));
  for (size_t i = 0; i < planted.size(); i += 13) {
    SourceSummary s;
    ASSERT_TRUE(*(*m)->Lookup(planted[i].addr, &s));
    expect(planted[i], s, 2);
  }
  // Compressed: the same entries in place (format 4) took ~45 bytes a source here.
  const uint64_t size = (*x)->size();
  EXPECT_LT(size, kAll * 8u) << "bytes per source: " << static_cast<double>(size) / kAll;
  // A byte flipped in the third of the file's 16 KiB checksum chunks, among the blocks: the
  // sources of the blocks in that chunk are errors naming the file; every other source answers
  // as before.
  ASSERT_GT(size, 3u * 16384 + 1024);
  x->reset();
  std::string bytes = testing::Run("cat " + path);
  bytes[2 * 16384 + 100] = static_cast<char>(bytes[2 * 16384 + 100] ^ 0x04);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  auto damaged = SourceIndex::Open(path);
  ASSERT_TRUE(damaged.ok()) << damaged.status().ToString();
  EXPECT_FALSE((*damaged)->Verify().ok());
  EXPECT_FALSE((*damaged)->PacketsBySegment(&by_segment).ok());
  size_t failed = 0;
  for (const Planted& p : planted) {
    SourceSummary s;
    auto found = (*damaged)->Lookup(p.addr, &s);
    if (!found.ok()) {
      ++failed;
      EXPECT_EQ(found.status().code(), StatusCode::kDataLoss);
      EXPECT_NE(found.status().message().find("a.tsix"), std::string::npos);
      continue;
    }
    ASSERT_TRUE(*found);
    expect(p, s, 1);
  }
  EXPECT_GT(failed, 0u);
  EXPECT_LT(failed, planted.size() / 2);
}

}  // namespace
}  // namespace teiten
