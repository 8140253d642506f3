#include <algorithm>
#include <bit>
#include <cmath>

#include "simulate/engine.h"

namespace teiten::simulate::engine {

namespace {

using namespace wire;  // NOLINT(google-build-using-namespace): the wire-format helpers

// Option layouts as the stacks and tools send them.
constexpr uint8_t kOptMssBytes[] = {2, 4, 0x05, 0xb4};  // MSS 1460
// Windows 2003/XP: MSS, NOP, NOP, SACK_PERM (p0f: mss,nop,nop,sok; window 65535).
constexpr uint8_t kOptWin2003Bytes[] = {2, 4, 0x05, 0xb4, 1, 1, 4, 2};
// Windows 7/2008R2 and later: MSS, NOP, WS 8, NOP, NOP, SACK_PERM.
constexpr uint8_t kOptWin7Bytes[] = {2, 4, 0x05, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2};
// Linux: MSS, SACK_PERM, TS (TSval patched, TSecr 0), NOP, WS 7.
constexpr uint8_t kOptLinuxBytes[] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0,
                                      0, 0, 0,    0,    0, 0, 1, 3,  3, 7};
// A victim's SYN-ACK to a SYN without timestamps: MSS, NOP, NOP, SACK_PERM, NOP, WS 7.
constexpr uint8_t kOptSynAckBytes[] = {2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7};
const TcpOptions kOptMss = MakeOptions(kOptMssBytes);
const TcpOptions kOptWin2003 = MakeOptions(kOptWin2003Bytes);
const TcpOptions kOptWin7 = MakeOptions(kOptWin7Bytes);
const TcpOptions kOptLinux = MakeOptions(kOptLinuxBytes, 8);
const TcpOptions kOptSynAck = MakeOptions(kOptSynAckBytes);

// The Netis/Netcore backdoor's login string, which scanners send to 53413/UDP.
constexpr uint8_t kNetisPayload[] = {'A', 'A', 'A', 'A', 'A', 'A', 'A', 'A',
                                     'n', 'e', 't', 'c', 'o', 'r', 'e', 0};
// Messenger spam: a DCE/RPC connectionless request (version 4, opnum 0) for the Messenger
// service's interface 5a7b91f8-ff00-11d0-a9b2-00c04fb6e6fc, then NDR strings: from, to, text.
const std::vector<uint8_t>& MessengerPayload() {
  static const std::vector<uint8_t> payload = [] {
    std::vector<uint8_t> p = {4, 0, 0x28, 0, 0x10, 0, 0, 0};  // version, request, flags, drep
    p.resize(8 + 16, 0);                                      // serial hi, object UUID (nil)
    const uint8_t iface[16] = {0xf8, 0x91, 0x7b, 0x5a, 0x00, 0xff, 0xd0, 0x11,
                               0xa9, 0xb2, 0x00, 0xc0, 0x4f, 0xb6, 0xe6, 0xfc};
    p.insert(p.end(), iface, iface + 16);
    p.resize(p.size() + 16, 0x11);  // activity UUID
    // Boot time, interface version 1, sequence, opnum 0, hints, fragment length (patched below),
    // fragment number, auth, serial low: an 80-byte header in all.
    const uint8_t rest[] = {0, 0, 0,    0,    1,    0,    0, 0, 0, 0, 0, 0,
                            0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0};
    p.insert(p.end(), rest, rest + sizeof rest);
    auto ndr = [&](std::string_view s) {
      const uint32_t n = static_cast<uint32_t>(s.size() + 1);
      const uint8_t len[12] = {static_cast<uint8_t>(n), 0, 0, 0, 0, 0, 0, 0,
                               static_cast<uint8_t>(n), 0, 0, 0};
      p.insert(p.end(), len, len + 12);
      p.insert(p.end(), s.begin(), s.end());
      p.push_back(0);
      while (p.size() % 4) p.push_back(0);
    };
    ndr("Security Center");
    ndr("Administrator");
    ndr("CRITICAL ERROR MESSAGE! - REGISTRY DAMAGED AND CORRUPTED. To fix the problem visit: "
        "http://www.registryclean.example/");
    const uint16_t body = static_cast<uint16_t>(p.size() - 80);
    p[74] = static_cast<uint8_t>(body), p[75] = static_cast<uint8_t>(body >> 8);  // fragment length
    return p;
  }();
  return payload;
}

// Windows ping's 32 data bytes.
constexpr char kWindowsPingData[] = "abcdefghijklmnopqrstuvwabcdefghi";

// Two-digit decimal and hexadecimal strings, for writing numbers into payloads quickly.
constexpr std::array<char, 200> kDecimalPairs = [] {
  std::array<char, 200> t{};
  for (int i = 0; i < 100; ++i) {
    t[2 * i] = static_cast<char>('0' + i / 10);
    t[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return t;
}();
constexpr std::array<char, 512> kHexPairs = [] {
  std::array<char, 512> t{};
  constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 256; ++i) {
    t[2 * i] = kHex[i >> 4];
    t[2 * i + 1] = kHex[i & 15];
  }
  return t;
}();

constexpr int64_t kPendingDelay[4] = {1 * kSecond, 2 * kSecond, 3 * kSecond, 6 * kSecond};
constexpr int kLinuxFirst = 0, kWindowsFirst = 2;

}  // namespace

Episode& Engine::PickEpisode(Stream& s) {
  return s.episodes[s.active.Draw(pkt_rng_.Next())];
}

void Engine::SchedulePending(const Pending& p, int64_t delay, int queue) {
  if (pending_total_ >= kMaxPending) {
    ++retransmissions_dropped_;
    return;
  }
  Pending q = p;
  q.due += delay;
  if (q.due >= spec_.end_us) return;  // would fall after the trace ends
  pending_[queue].push_back(q);
  ++pending_total_;
  next_due_ = std::min(next_due_, q.due);
}

const Pending* Engine::DuePending(int64_t t, int* queue) {
  if (next_due_ > t) return nullptr;
  int best = -1;
  for (int i = 0; i < 4; ++i) {
    if (!pending_[i].empty() &&
        (best < 0 || pending_[i].front().due < pending_[best].front().due)) {
      best = i;
    }
  }
  *queue = best;
  return &pending_[best].front();
}

// The SYN of an ordinary stack (Windows or Linux), fresh or retransmitted.
void Engine::EmitStackSyn(uint32_t idx, const Profile& prof, int64_t t, uint32_t dst,
                          uint8_t dst_prefix, uint32_t dport, uint32_t sport, uint32_t seq,
                          int attempt) {
  const Source& s = Src(idx);
  const bool windows = prof.tool == Tool::kWindows;
  const bool v6 = prof.v6;
  const TcpOptions& opts = windows ? (s.variant ? kOptWin7 : kOptWin2003) : kOptLinux;
  TcpFields f;
  f.sport = sport;
  f.dport = dport;
  f.seq = seq;
  f.flags = tcp_flag::kSyn;
  f.window = windows ? (s.variant ? 8192 : 65535) : (s.variant ? 64240 : 29200);
  const uint32_t tsval = s.key + static_cast<uint32_t>(t / 1000);  // 1000 Hz clock
  uint8_t* p = w_->Begin(128);
  WriteEth(p, v6);
  size_t len;
  if (!v6) {
    const uint32_t src = s.addr;
    // Windows' IP ID is one counter for all the host's traffic: it climbs with time.
    const uint32_t id = windows ? ((s.key >> 16) + static_cast<uint32_t>(t / 8000)) & 0xffff
                                : pkt_rng_.Next32() >> 16;
    const uint32_t ttl = (windows ? 128 : 64) - s.hops;
    len = WriteTcp(p + kEthLen + kIp4Len, f, opts, tsval, Pseudo4(src, dst, kProtoTcp));
    WriteIp4(p + kEthLen, kProtoTcp, static_cast<uint32_t>(kIp4Len + len), id, ttl, true, src, dst);
    len += kEthLen + kIp4Len;
  } else {
    uint8_t d[16];
    Dst6(dst_prefix, dst, d);
    uint8_t* ip = p + kEthLen;
    uint64_t pseudo = WriteIp6(ip, kProtoTcp, 20 + opts.len, 64 - s.hops,
                               pop_->v6_addrs[s.addr].bytes.data(), d, s.key);
    len = WriteTcp(ip + kIp6Len, f, opts, tsval, pseudo);
    len += kEthLen + kIp6Len;
  }
  w_->End(t, len);
  Count(idx, prof.tool, kProtoTcp, dport, v6);
  if (attempt > 0) ++retransmissions_;
  if (attempt < 2 && pkt_rng_.Uniform() < prof.retransmit) {
    Pending next{t,
                 idx,
                 dst,
                 seq,
                 static_cast<uint16_t>(sport),
                 static_cast<uint16_t>(dport),
                 dst_prefix,
                 static_cast<uint8_t>(attempt + 1)};
    SchedulePending(next, kPendingDelay[(windows ? kWindowsFirst : kLinuxFirst) + attempt],
                    (windows ? kWindowsFirst : kLinuxFirst) + attempt);
  }
}

void Engine::EmitRetransmission(const Pending& q, int64_t t) {
  const Source& s = Src(q.source);
  EmitStackSyn(q.source, profiles_[cells_[s.cell].profile], t, q.dst, q.dst_prefix, q.dport,
               q.sport, q.seq, q.attempt);
}

void Engine::EmitPopulation(int64_t t) {
  int queue = -1;
  if (const Pending* due = DuePending(t, &queue)) {
    Pending q = *due;
    pending_[queue].pop_front();
    if (!pending_[queue].empty() && pending_[queue].front().source < pop_sources_) {
      __builtin_prefetch(&pop_->sources[pending_[queue].front().source]);
    }
    --pending_total_;
    next_due_ = INT64_MAX;
    for (const auto& d : pending_) {
      if (!d.empty()) next_due_ = std::min(next_due_, d.front().due);
    }
    EmitRetransmission(q, t);
    return;
  }
  if (run_left_ == 0) {
    Pick p = picks_[pick_pos_];
    picks_[pick_pos_] = DrawPick();
    pick_pos_ = (pick_pos_ + 1) % kPickAhead;
    // An outage: redraw (bounded, in case every country is silent).
    for (int tries = 0; any_silent_ && tries < 64 &&
                        (Silent(cells_[p.cell].country, t) || SourceSilent(p.source, t));
         ++tries) {
      p = DrawPick();
    }
    run_source_ = p.source;
    run_profile_ = &profiles_[cells_[p.cell].profile];
    // Scanners probe in runs: a source sends L packets in a row, P(L = k) = 2^-k (k < 8).
    run_left_ = 1 + std::countr_zero(pick_rng_.Next32() | 0x80u);
  }
  --run_left_;
  EmitFresh(run_source_, *run_profile_, t);
}

void Engine::EmitFresh(uint32_t idx, const Profile& prof, int64_t t) {
  const Source& s = Src(idx);
  const Tool tool = prof.tool;
  if (tool == Tool::kPing) {
    EmitPing(s, prof, t);
    Count(idx, tool, prof.v6 ? kProtoIcmp6 : kProtoIcmp, 0, prof.v6);
    return;
  }
  uint32_t dport = prof.ports[prof.port_alias.Sample(pkt_rng_.Next())];
  if (dport == 0) dport = 1 + pkt_rng_.Below(65535);
  if (prof.v6) {
    uint8_t prefix = static_cast<uint8_t>(pkt_rng_.Below(static_cast<uint32_t>(dst6_.size())));
    const uint32_t host = DrawHost6(prefix);
    const uint32_t sport = 32768 + pkt_rng_.Below(28232);
    EmitStackSyn(idx, prof, t, host, prefix, dport, sport, pkt_rng_.Next32(), 0);
    return;
  }
  const uint32_t dst = DrawDst4();
  const uint32_t src = s.addr;
  uint8_t* p = w_->Begin(1600);
  WriteEth(p, false);
  uint8_t* ip = p + kEthLen;
  uint8_t* l4 = ip + kIp4Len;
  TcpFields f;
  f.dport = dport;
  f.flags = tcp_flag::kSyn;
  size_t l4_len = 0;
  uint32_t id = 0, ttl = 0;
  bool df = false;
  uint8_t proto = kProtoTcp;
  switch (tool) {
    case Tool::kMirai:
      // scanner.c: source port fixed at start-up, random IP ID and window, seq = daddr, TTL 64.
      f.sport = std::max((s.key >> 8) & 0xffff, 1024u);
      f.seq = dst;
      {
        const uint32_t r = pkt_rng_.Next32();
        f.window = r >> 16;
        id = r & 0xffff;
      }
      ttl = 64 - s.hops;
      l4_len = WriteTcp(l4, f, kNoOptions, 0, Pseudo4(src, dst, kProtoTcp));
      break;
    case Tool::kZmap: {
      // Validation words derive from the target; the source port from the probe range.
      const uint64_t v = Mix64((uint64_t{s.key} << 32) ^ (uint64_t{dst} << 16) ^ dport);
      f.seq = static_cast<uint32_t>(v >> 32);
      f.sport = 32768 + static_cast<uint32_t>(((v & 0xffffffff) * 28232) >> 32);
      f.window = 65535;
      id = 54321;
      ttl = 255 - s.hops;
      l4_len = WriteTcp(l4, f, s.variant ? kOptMss : kNoOptions, 0, Pseudo4(src, dst, kProtoTcp));
      break;
    }
    case Tool::kMasscan:
      // One source port per scan; SYN cookie in seq; IP ID = (dst ^ dport ^ seq) & 0xffff.
      f.sport = 32768 + static_cast<uint32_t>((uint64_t{s.key} * 28232) >> 32);
      f.seq = static_cast<uint32_t>(
          Mix64((uint64_t{s.key ^ dst} << 32) ^ (uint64_t{f.sport} << 16) ^ dport) >> 32);
      f.window = 1024;
      id = (dst ^ dport ^ f.seq) & 0xffff;
      ttl = 255 - s.hops;
      l4_len = WriteTcp(l4, f, s.variant ? kOptMss : kNoOptions, 0, Pseudo4(src, dst, kProtoTcp));
      break;
    case Tool::kNmap:
      // One source port and one seq for the scan; TTL drawn from 37..59 per packet.
      f.sport = 33000 + static_cast<uint32_t>((uint64_t{s.key} * 32000) >> 32);
      f.seq = static_cast<uint32_t>(Mix64(s.key ^ 0x6e6d617000000000ULL));
      f.window = 1024;
      id = pkt_rng_.Next32() >> 16;
      ttl = std::max(37 + pkt_rng_.Below(23) - s.hops, 1u);
      l4_len = WriteTcp(l4, f, kOptMss, 0, Pseudo4(src, dst, kProtoTcp));
      break;
    case Tool::kWindows: {
      // Ephemeral ports climb with each connection: 1025–5000 (2003/XP), 49152–65535 (later).
      auto step = static_cast<uint32_t>(t / 250000);
      uint32_t sport = s.variant ? 49152 + (s.key + step) % 16384 : 1025 + (s.key + step) % 3976;
      EmitStackSyn(idx, prof, t, dst, 0, dport, sport, pkt_rng_.Next32(), 0);
      return;
    }
    case Tool::kLinux: {
      const uint32_t sport = 32768 + pkt_rng_.Below(28232);
      EmitStackSyn(idx, prof, t, dst, 0, dport, sport, pkt_rng_.Next32(), 0);
      return;
    }
    case Tool::kSipVicious:
      EmitSip(s, dst, dport, t);
      Count(idx, tool, kProtoUdp, dport, false);
      return;
    case Tool::kNetis: {
      proto = kProtoUdp;
      static const uint64_t kNetisSum = SumBytes(kNetisPayload, sizeof kNetisPayload);
      l4_len = WriteUdp(l4, 1024 + pkt_rng_.Below(64512), dport, kNetisPayload,
                        sizeof kNetisPayload, kNetisSum, Pseudo4(src, dst, kProtoUdp));
      id = pkt_rng_.Next32() >> 16;
      ttl = 64 - s.hops;
      break;
    }
    case Tool::kMessenger: {
      proto = kProtoUdp;
      static const uint64_t kMessengerSum =
          SumBytes(MessengerPayload().data(), MessengerPayload().size());
      l4_len = WriteUdp(l4, 1024 + (s.key % 4000), dport, MessengerPayload().data(),
                        MessengerPayload().size(), kMessengerSum, Pseudo4(src, dst, kProtoUdp));
      id = ((s.key >> 16) + static_cast<uint32_t>(t / 8000)) & 0xffff;
      ttl = 128 - s.hops;
      break;
    }
    default:
      return;  // backscatter and floods come from their own streams
  }
  WriteIp4(ip, proto, static_cast<uint32_t>(kIp4Len + l4_len), id, ttl, df, src, dst);
  w_->End(t, kEthLen + kIp4Len + l4_len);
  Count(idx, tool, proto, dport, false);
}

// svmap's OPTIONS request, as darknets capture it (header order as svmap sends it).
void Engine::EmitSip(const Source& s, uint32_t dst, uint32_t dport, int64_t t) {
  char body[700];
  size_t n = 0;
  auto put = [&](std::string_view text) {
    std::memcpy(body + n, text.data(), text.size());
    n += text.size();
  };
  auto put_num = [&](uint64_t v) {
    char tmp[24];
    int k = 24;
    while (v >= 100) {
      k -= 2;
      std::memcpy(tmp + k, &kDecimalPairs[2 * (v % 100)], 2);
      v /= 100;
    }
    if (v >= 10) {
      k -= 2;
      std::memcpy(tmp + k, &kDecimalPairs[2 * v], 2);
    } else {
      tmp[--k] = static_cast<char>('0' + v);
    }
    std::memcpy(body + n, tmp + k, static_cast<size_t>(24 - k));
    n += static_cast<size_t>(24 - k);
  };
  auto put_ip = [&](uint32_t a) {
    for (int i = 3; i >= 0; --i) {
      put_num((a >> (8 * i)) & 0xff);
      if (i) body[n++] = '.';
    }
  };
  const uint32_t sport = s.variant ? 5061 + s.key % 8 : 5060;
  const uint32_t ext = 100 + (s.key % 4) * 100;
  put("OPTIONS sip:");
  put_num(ext);
  put("@");
  put_ip(dst);
  put(" SIP/2.0\r\nVia: SIP/2.0/UDP ");
  put_ip(s.addr);
  put(":");
  put_num(sport);
  put(";branch=z9hG4bK-");
  put_num(pkt_rng_.Next32());
  put(";rport\r\nContent-Length: 0\r\nFrom: \"sipvicious\"<sip:100@1.1.1.1>;tag=");
  for (int i = 0; i < 2; ++i) {
    uint64_t r = pkt_rng_.Next();
    for (int k = 0; k < 8; ++k, n += 2)
      std::memcpy(body + n, &kHexPairs[2 * ((r >> (8 * k)) & 0xff)], 2);
  }
  put("3133\r\nAccept: application/sdp\r\nUser-Agent: friendly-scanner\r\n"
      "To: \"sipvicious\"<sip:100@1.1.1.1>\r\nContact: sip:100@");
  put_ip(s.addr);
  put(":");
  put_num(sport);
  put("\r\nCSeq: 1 OPTIONS\r\nCall-ID: ");
  put_num(pkt_rng_.Next() % 1000000000000ULL);
  put_num(pkt_rng_.Next32());
  put("\r\nMax-Forwards: 70\r\n\r\n");

  uint8_t* p = w_->Begin(kEthLen + kIp4Len + 8 + n);
  WriteEth(p, false);
  uint8_t* udp = p + kEthLen + kIp4Len;
  std::memcpy(udp + 8, body, n);
  size_t l4 = WriteUdp(udp, sport, dport, udp + 8, n, SumBytes(udp + 8, n),
                       Pseudo4(s.addr, dst, kProtoUdp));
  WriteIp4(p + kEthLen, kProtoUdp, static_cast<uint32_t>(kIp4Len + l4), pkt_rng_.Next32() >> 16,
           64 - s.hops, true, s.addr, dst);
  w_->End(t, kEthLen + kIp4Len + l4);
}

// Echo requests: iputils ping (56 bytes: timeval, then bytes 0x10…0x37) or Windows ping (32).
void Engine::EmitPing(const Source& s, const Profile& prof, int64_t t) {
  const bool v6 = prof.v6;
  const bool windows = s.variant && !v6;
  uint8_t data[56];
  size_t n;
  uint32_t id, seq = (s.key + static_cast<uint32_t>((t - spec_.start_us) / kSecond)) & 0xffff;
  if (windows) {
    n = 32;
    std::memcpy(data, kWindowsPingData, n);
    id = 1;
  } else {
    n = 56;
    uint64_t sec = static_cast<uint64_t>(t / kSecond), usec = static_cast<uint64_t>(t % kSecond);
    for (int i = 0; i < 8; ++i) data[i] = static_cast<uint8_t>(sec >> (8 * i));
    for (int i = 0; i < 8; ++i) data[8 + i] = static_cast<uint8_t>(usec >> (8 * i));
    for (size_t i = 16; i < 56; ++i) data[i] = static_cast<uint8_t>(i);
    id = s.key & 0xffff;
  }
  uint8_t* p = w_->Begin(kEthLen + kIp6Len + 8 + n);
  WriteEth(p, v6);
  const size_t ip_len = v6 ? kIp6Len : kIp4Len;
  uint8_t* icmp = p + kEthLen + ip_len;
  icmp[0] = v6 ? 128 : 8;
  icmp[1] = 0;
  Put16(icmp + 2, 0);
  Put16(icmp + 4, id);
  Put16(icmp + 6, seq);
  std::memcpy(icmp + 8, data, n);
  uint64_t sum = (uint32_t{icmp[0]} << 8) + id + seq + SumBytes(data, n);
  if (v6) {
    uint8_t prefix = static_cast<uint8_t>(pkt_rng_.Below(static_cast<uint32_t>(dst6_.size())));
    uint8_t d[16];
    Dst6(prefix, DrawHost6(prefix), d);
    uint64_t pseudo = WriteIp6(p + kEthLen, kProtoIcmp6, static_cast<uint32_t>(8 + n), 64 - s.hops,
                               pop_->v6_addrs[s.addr].bytes.data(), d, 0);
    sum += pseudo + 8 + n;
  } else {
    const uint32_t dst = DrawDst4();
    WriteIp4(p + kEthLen, kProtoIcmp, static_cast<uint32_t>(kIp4Len + 8 + n),
             pkt_rng_.Next32() >> 16, (windows ? 128 : 64) - s.hops, false, s.addr, dst);
  }
  Put16(icmp + 2, Fold(sum));
  w_->End(t, kEthLen + ip_len + 8 + n);
}

void Engine::EmitBackscatter(Stream& st, int64_t t) {
  Episode& e = PickEpisode(st);
  ++e.packets;
  const Source& s = Src(e.who);
  const uint32_t src = s.addr, dst = DrawDst4();
  const uint32_t spoofed_port = 1024 + pkt_rng_.Below(64512);
  auto kind = static_cast<BackscatterKind>(e.kind);
  if (pkt_rng_.Below(100) < 15) kind = static_cast<BackscatterKind>(pkt_rng_.Below(4));
  const uint32_t ttl = (s.variant ? 128 : 64) - s.hops;
  uint8_t* p = w_->Begin(128);
  WriteEth(p, false);
  uint8_t* ip = p + kEthLen;
  uint8_t* l4 = ip + kIp4Len;
  size_t l4_len;
  uint8_t proto = kProtoTcp;
  uint32_t dport = spoofed_port;
  if (kind == BackscatterKind::kIcmpUnreach) {
    // Port unreachable, quoting the spoofed UDP packet: its IP header and first 8 bytes.
    proto = kProtoIcmp;
    uint8_t* inner = l4 + 8;
    const uint32_t inner_id = pkt_rng_.Next32() >> 16;
    const uint32_t inner_ttl = 40 + pkt_rng_.Below(20);
    WriteIp4(inner, kProtoUdp, 20 + 8 + 512, inner_id, inner_ttl, false, dst, src);
    Put16(inner + 20, spoofed_port);
    Put16(inner + 22, e.port);
    Put16(inner + 24, 8 + 512);
    Put16(inner + 26, pkt_rng_.Next32() >> 16);
    l4[0] = 3;
    l4[1] = 3;
    Put16(l4 + 2, 0);
    Put32(l4 + 4, 0);
    Put16(l4 + 2, Fold(SumBytes(l4, 8 + 28)));
    l4_len = 8 + 28;
    dport = 0;
  } else {
    TcpFields f;
    f.sport = e.port;
    f.dport = spoofed_port;
    switch (kind) {
      case BackscatterKind::kSynAck:
        f.flags = tcp_flag::kSyn | tcp_flag::kAck;
        f.seq = pkt_rng_.Next32();
        f.ack = pkt_rng_.Next32();
        f.window = s.variant ? 8192 : 29200;
        break;
      case BackscatterKind::kRst:
        f.flags = tcp_flag::kRst;
        f.seq = pkt_rng_.Next32();
        break;
      default:
        f.flags = tcp_flag::kRst | tcp_flag::kAck;
        f.ack = pkt_rng_.Next32();
        break;
    }
    l4_len = WriteTcp(l4, f, kind == BackscatterKind::kSynAck ? kOptSynAck : kNoOptions, 0,
                      Pseudo4(src, dst, kProtoTcp));
  }
  WriteIp4(ip, proto, static_cast<uint32_t>(kIp4Len + l4_len),
           s.variant ? pkt_rng_.Next32() >> 16 : 0, ttl, proto == kProtoTcp, src, dst);
  w_->End(t, kEthLen + kIp4Len + l4_len);
  Count(e.who, Tool::kBackscatter, proto, dport, false);
}

// Candidates are computed kSpoofAhead draws early and their bitmap words prefetched: the 2 MB
// bitmap does not stay in cache next to the packet buffer.
uint32_t Engine::NextSpoofed() {
  for (;;) {
    uint32_t a = spoof_ahead_[spoof_counter_ % kSpoofAhead];
    uint32_t next = Permute32(spoof_counter_ + kSpoofAhead, spoof_key_);
    spoof_ahead_[spoof_counter_ % kSpoofAhead] = next;
    __builtin_prefetch(&pop_->per24[next >> 14]);
    ++spoof_counter_;
    if (!PopulationHas(a)) return a;
  }
}

void Engine::EmitFlood(Stream& st, int64_t t) {
  Episode& e = PickEpisode(st);
  ++e.packets;
  const uint32_t src = NextSpoofed(), dst = e.who;
  ++spoofed_;
  TcpFields f;
  f.dport = e.port;
  f.flags = tcp_flag::kSyn;
  f.seq = pkt_rng_.Next32();
  uint32_t id = pkt_rng_.Next32() >> 16;
  if (e.kind == 0) {  // hping3 --flood --rand-source: window 512, source port climbing
    f.sport = 1024 + static_cast<uint32_t>(e.packets % 64512);
    f.window = 512;
  } else {
    f.sport = 1024 + pkt_rng_.Below(64512);
    f.window = pkt_rng_.Next32() >> 16;
  }
  uint8_t* p = w_->Begin(128);
  WriteEth(p, false);
  size_t l4 = WriteTcp(p + kEthLen + kIp4Len, f, kNoOptions, 0, Pseudo4(src, dst, kProtoTcp));
  WriteIp4(p + kEthLen, kProtoTcp, static_cast<uint32_t>(kIp4Len + l4), id, e.ttl, false, src, dst);
  w_->End(t, kEthLen + kIp4Len + l4);
  Count(kNoSource, Tool::kSpoofedFlood, kProtoTcp, e.port, false);
}

void Engine::EmitPlanted(Stream& st, int64_t t) {
  const PlantedSpec& ps = spec_.planted[st.planted];
  const Cell& c = cells_[planted_cell_[st.planted]];
  const double f =
      static_cast<double>(t - ps.start_us) / static_cast<double>(ps.end_us - ps.start_us);
  const double active = ps.active_start + (ps.active_end - ps.active_start) * f;
  auto n = static_cast<uint32_t>(std::ceil(std::clamp(active, 0.0, 1.0) * c.count));
  n = std::clamp<uint32_t>(n, 1, c.count);
  ++planted_packets_[st.planted];
  EmitFresh(c.base + pkt_rng_.Below(n), profiles_[c.profile], t);
}

Status Engine::Run(PcapWriter* w) {
  w_ = w;
  pick_rng_ = Rng(Mix64(spec_.seed ^ 0x7069636b));
  if (!pop_->send_cells.empty()) {
    for (Pick& p : picks_) p = DrawPick();
  }
  const int64_t start = spec_.start_us, end = spec_.end_us;
  std::vector<uint64_t> owed(streams_.size());
  // A stream's rounded target cannot grow before next_change[i]: its curve is not evaluated
  // until then. A sensor-day of a scaled scenario has far fewer packets than 1 s slots, and
  // evaluating every stream in every slot cost more than writing the packets.
  std::vector<int64_t> next_change(streams_.size(), start);
  for (int64_t t0 = start; t0 < end;) {
    const int64_t t1 = std::min(t0 + kSlotUs, end);
    uint64_t total = 0;
    int64_t earliest = end;
    for (size_t i = 0; i < streams_.size(); ++i) {
      Stream& s = streams_[i];
      owed[i] = 0;
      if (t1 < end && t1 < next_change[i]) {
        earliest = std::min(earliest, next_change[i]);
        continue;
      }
      uint64_t target = s.budget;
      if (t1 < end && s.curve.total() > 0) {
        double f = s.curve.Cumulative(t1) / s.curve.total();
        target = std::min<uint64_t>(
            s.budget, static_cast<uint64_t>(std::llround(f * static_cast<double>(s.budget))));
      }
      target = std::max(target, s.done);
      owed[i] = target - s.done;
      s.done = target;
      total += owed[i];
      // The target grows once the cumulative rate reaches (done + ½)/budget of the total.
      // TimeOf() truncates, and 2 µs more cover the rounding of the two formulas; were a change
      // ever missed, its packets would go out a slot later, the budget still exact.
      if (s.done >= s.budget || s.curve.total() <= 0) {
        next_change[i] = end;
      } else {
        const double c =
            (static_cast<double>(s.done) + 0.5) * s.curve.total() / static_cast<double>(s.budget);
        next_change[i] = s.curve.TimeOf(c) - 2;
      }
      earliest = std::min(earliest, next_change[i]);
      if (owed[i] > 0 && !s.episodes.empty()) {
        s.active.Advance(s.episodes, t0, t1);
        if (s.active.empty()) return Internal("packets owed by a stream with no active episode");
      }
    }
    if (total == 0) {
      // Jump to the slot holding the earliest possible change (the last slot always counts).
      const int64_t slot = start + (std::max(earliest, t1) - start) / kSlotUs * kSlotUs;
      const int64_t last = start + (end - 1 - start) / kSlotUs * kSlotUs;
      t0 = std::max(t0 + kSlotUs, std::min(slot, last));
      continue;
    }
    // Packet i of the slot lies in [t0 + i·len/total, t0 + (i+1)·len/total), in 32.32 fixed
    // point: a multiply instead of a division per packet, and never decreasing.
    const uint64_t step = (static_cast<uint64_t>(t1 - t0) << 32) / total;
    uint64_t left = total;
    for (uint64_t i = 0; i < total; ++i, --left) {
      // One random word: the high half jitters the time, the low half picks the stream.
      const uint64_t r = pkt_rng_.Next();
      // step < 2^52 (a 1 s slot in 32.32 µs): the product needs 128 bits.
      const auto jitter = static_cast<uint64_t>((static_cast<__uint128_t>(r >> 32) * step) >> 32);
      const int64_t t = t0 + static_cast<int64_t>((i * step + jitter) >> 32);
      size_t k = 0;
      if (streams_.size() > 1 && owed[0] != left) {
        uint64_t pick =
            left < (uint64_t{1} << 32) ? ((r & 0xffffffff) * left) >> 32 : pkt_rng_.Below64(left);
        while (pick >= owed[k]) pick -= owed[k++];
      }
      --owed[k];
      Stream& s = streams_[k];
      switch (s.kind) {
        case StreamKind::kPopulation:
          EmitPopulation(t);
          break;
        case StreamKind::kBackscatter:
          EmitBackscatter(s, t);
          break;
        case StreamKind::kFlood:
          EmitFlood(s, t);
          break;
        case StreamKind::kPlanted:
          EmitPlanted(s, t);
          break;
      }
    }
    t0 = t1;
  }
  return OkStatus();
}

}  // namespace teiten::simulate::engine
