#include "enrich/p0f.h"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "common/text.h"

namespace teiten {
namespace {

// p0f's MAX_DIST: a TTL this many hops below the initial one still matches exactly.
constexpr int kMaxDistance = 35;

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// A decimal in [lo, hi], the whole of `s`.
bool Number(std::string_view s, int lo, int hi, int* out) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || v < lo || v > hi) {
    return false;
  }
  *out = v;
  return true;
}

// Each field parser returns an empty string on success, else what was wrong.
std::string ParseTtl(std::string_view f, P0fSignature* s) {
  // "64", "64-" (randomized TTL), "64+N" or "64+?" (a distance p0f printed; the initial TTL is
  // what matches).
  size_t plus = f.find('+');
  if (plus != std::string_view::npos) f = f.substr(0, plus);
  if (!f.empty() && f.back() == '-') {
    s->bad_ttl = true;
    f.remove_suffix(1);
  }
  if (!Number(f, 1, 255, &s->ittl)) return "initial TTL: expected 1-255";
  return "";
}

std::string ParseWindow(std::string_view f, P0fSignature* s) {
  auto parts = Split(f, ',');
  if (parts.size() != 2) return "window: expected wsize,scale";
  std::string_view w = parts[0];
  if (w == "*") {
    s->window_type = P0fWindow::kAny;
  } else if (w.starts_with("mss*")) {
    s->window_type = P0fWindow::kMss;
    if (!Number(w.substr(4), 1, 1000, &s->window)) return "window: mss*N needs N in 1-1000";
  } else if (w.starts_with("mtu*")) {
    s->window_type = P0fWindow::kMtu;
    if (!Number(w.substr(4), 1, 1000, &s->window)) return "window: mtu*N needs N in 1-1000";
  } else if (w.starts_with("%")) {
    s->window_type = P0fWindow::kMod;
    if (!Number(w.substr(1), 1, 65535, &s->window)) return "window: %N needs N in 1-65535";
  } else {
    s->window_type = P0fWindow::kExact;
    if (!Number(w, 0, 65535, &s->window)) return "window: expected *, N, mss*N, mtu*N or %N";
  }
  if (parts[1] == "*") {
    s->scale = -1;
  } else if (!Number(parts[1], 0, 255, &s->scale)) {
    return "window scale: expected * or 0-255";
  }
  return "";
}

std::string ParseLayout(std::string_view f, P0fSignature* s) {
  if (f.empty()) return "";
  auto items = Split(f, ',');
  for (size_t i = 0; i < items.size(); ++i) {
    std::string_view t = items[i];
    if (t == "nop") {
      s->layout.push_back(kTcpOptNop);
    } else if (t == "mss") {
      s->layout.push_back(kTcpOptMss);
    } else if (t == "ws") {
      s->layout.push_back(kTcpOptWs);
    } else if (t == "sok") {
      s->layout.push_back(kTcpOptSok);
    } else if (t == "sack") {
      s->layout.push_back(kTcpOptSack);
    } else if (t == "ts") {
      s->layout.push_back(kTcpOptTs);
    } else if (t.starts_with("eol+")) {
      if (i + 1 != items.size()) return "option layout: eol+N must come last";
      if (!Number(t.substr(4), 0, 255, &s->eol_pad)) return "option layout: eol+N needs N 0-255";
      s->layout.push_back(kTcpOptEol);
    } else if (t.starts_with("?")) {
      int kind = 0;
      if (!Number(t.substr(1), 0, 255, &kind)) return "option layout: ?N needs N 0-255";
      s->layout.push_back(static_cast<uint8_t>(kind));
    } else {
      return fmt::format("option layout: unknown option '{}'", t);
    }
  }
  if (s->layout.size() > kMaxTcpOptions) return "option layout: more options than fit";
  return "";
}

std::string ParseQuirks(std::string_view f, P0fSignature* s) {
  if (f.empty()) return "";
  static constexpr std::pair<std::string_view, uint32_t> kNames[] = {
      {"df", p0f_quirk::kDf},        {"id+", p0f_quirk::kNzId},   {"id-", p0f_quirk::kZeroId},
      {"ecn", p0f_quirk::kEcn},      {"0+", p0f_quirk::kNzMbz},   {"flow", p0f_quirk::kFlow},
      {"seq-", p0f_quirk::kZeroSeq}, {"ack+", p0f_quirk::kNzAck}, {"ack-", p0f_quirk::kZeroAck},
      {"uptr+", p0f_quirk::kNzUrg},  {"urgf+", p0f_quirk::kUrg},  {"pushf+", p0f_quirk::kPush},
      {"ts1-", p0f_quirk::kTs1Zero}, {"ts2+", p0f_quirk::kTs2Nz}, {"opt+", p0f_quirk::kOptEolNz},
      {"exws", p0f_quirk::kExws},    {"bad", p0f_quirk::kOptBad}};
  for (std::string_view q : Split(f, ',')) {
    bool known = false;
    for (const auto& [name, bit] : kNames) {
      if (q == name) {
        s->quirks |= bit;
        known = true;
      }
    }
    if (!known) return fmt::format("quirks: unknown quirk '{}'", q);
  }
  return "";
}

// "ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass"
std::string ParseSignature(std::string_view text, P0fSignature* s) {
  auto f = Split(text, ':');
  if (f.size() != 8)
    return fmt::format("signature: expected 8 fields separated by ':', got {}", f.size());
  if (f[0] == "*") {
    s->ip_version = 0;
  } else if (f[0] == "4" || f[0] == "6") {
    s->ip_version = f[0][0] - '0';
  } else {
    return "IP version: expected 4, 6 or *";
  }
  std::string e = ParseTtl(f[1], s);
  if (!e.empty()) return e;
  if (!Number(f[2], 0, 255, &s->ip_opt_len)) return "IP options length: expected 0-255";
  if (f[3] == "*") {
    s->mss = -1;
  } else if (!Number(f[3], 0, 65535, &s->mss)) {
    return "MSS: expected * or 0-65535";
  }
  if (!(e = ParseWindow(f[4], s)).empty()) return e;
  if (!(e = ParseLayout(f[5], s)).empty()) return e;
  if (!(e = ParseQuirks(f[6], s)).empty()) return e;
  if (f[7] == "*") {
    s->payload = -1;
  } else if (f[7] == "0") {
    s->payload = 0;
  } else if (f[7] == "+") {
    s->payload = 1;
  } else {
    return "payload class: expected 0, + or *";
  }
  return "";
}

// "s:unix:Linux:3.11 and newer"; the flavor may itself hold ':'.
std::string ParseLabel(std::string_view text, P0fLabel* l) {
  auto f = Split(text, ':');
  if (f.size() < 4) return "label: expected type:class:name:flavor";
  if (f[0] != "s" && f[0] != "g") return "label: type must be s or g";
  l->generic = f[0] == "g";
  l->os_class = std::string(f[1]);
  l->application = f[1] == "!";
  if (l->os_class.empty()) return "label: empty class";
  l->name = std::string(f[2]);
  if (l->name.empty()) return "label: empty name";
  size_t flavor_at = f[0].size() + f[1].size() + f[2].size() + 3;
  l->flavor = std::string(text.substr(flavor_at));
  return "";
}

uint16_t Be16(std::string_view s, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[at]) << 8) |
                               static_cast<uint8_t>(s[at + 1]));
}
uint32_t Be32(std::string_view s, size_t at) {
  return (uint32_t{Be16(s, at)} << 16) | Be16(s, at + 2);
}

// The window as a multiple of the MSS or the MTU, tried in p0f's order: the MSS, the MSS less
// 12 (the timestamp option's bytes, which some stacks subtract), the MTU (MSS + IP and TCP
// headers), then Ethernet's usual MSS 1460 and MTU 1500 (a window sized for a link other than
// the one the SYN announces). factor 0: none fits.
struct WindowMultiple {
  int factor = 0;
  bool mtu = false;
};
WindowMultiple MultipleOf(const SynFingerprint& fp) {
  const int w = fp.window, mss = fp.mss, headers = fp.ip_version == 4 ? 40 : 60;
  if (w == 0) return {};
  if (mss > 0 && w % mss == 0) return {w / mss, false};
  if (mss > 12 && w % (mss - 12) == 0) return {w / (mss - 12), false};
  if (mss > 0 && w % (mss + headers) == 0) return {w / (mss + headers), true};
  if (w % 1460 == 0) return {w / 1460, false};
  if (w % 1500 == 0) return {w / 1500, true};
  return {};
}

}  // namespace

std::string P0fLabel::Display() const {
  return flavor.empty() ? name : name + " " + flavor;
}

Result<P0fDatabase> P0fDatabase::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(fmt::format("{}: cannot read the p0f signature file", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return DataLoss(fmt::format("{}: read error", path));
  return Parse(text.str(), path);
}

Result<P0fDatabase> P0fDatabase::Parse(std::string_view text, const std::string& name) {
  P0fDatabase db;
  std::string section;
  bool have_label = false;
  int line_no = 0;
  for (std::string_view raw : Split(text, '\n')) {
    ++line_no;
    auto fail = [&](const std::string& what) {
      return InvalidArgument(fmt::format("{}:{}: {}: '{}'", name, line_no, what,
                                         std::string(TrimBlanks(raw)).substr(0, 120)));
    };
    std::string_view line = TrimBlanks(raw);
    if (line.empty() || line.front() == ';') continue;
    if (line.find('\0') != std::string_view::npos) return fail("NUL byte in the line");
    if (line.front() == '[') {
      if (line.back() != ']') return fail("section: expected [name]");
      section = std::string(line.substr(1, line.size() - 2));
      if (section != "mtu" && section != "tcp:request" && section != "tcp:response" &&
          section != "http:request" && section != "http:response") {
        return fail("unknown section");
      }
      have_label = false;
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return fail("expected key = value");
    std::string_view key = TrimBlanks(line.substr(0, eq)), value = TrimBlanks(line.substr(eq + 1));
    if (key.empty()) return fail("empty key");
    // Only [tcp:request] is matched; the other sections are p0f's own (MTU, SYN-ACK, HTTP).
    if (section != "tcp:request") continue;
    if (key == "label") {
      P0fLabel l;
      std::string e = ParseLabel(value, &l);
      if (!e.empty()) return fail(e);
      db.labels_.push_back(std::move(l));
      have_label = true;
    } else if (key == "sig") {
      if (!have_label) return fail("signature before any label");
      P0fSignature s;
      s.line = line_no;
      s.label = db.labels_.size() - 1;
      std::string e = ParseSignature(value, &s);
      if (!e.empty()) return fail(e);
      db.syn_.push_back(std::move(s));
    } else if (key == "sys") {
      if (!have_label) return fail("sys before any label");
    } else {
      return fail(fmt::format("unknown key '{}'", key));
    }
  }
  if (db.syn_.empty()) {
    return InvalidArgument(fmt::format("{}: no [tcp:request] signatures", name));
  }
  return db;
}

bool SynFingerprintOf(const Observation& o, std::string_view opts, SynFingerprint* out) {
  if (o.proto != 6 || !(o.tcp_flags & tcp_flag::kSyn) || (o.tcp_flags & tcp_flag::kAck)) {
    return false;
  }
  if (o.flags & (obs_flag::kFragment | obs_flag::kNoTransport | obs_flag::kSnapTruncated)) {
    return false;
  }
  SynFingerprint fp;
  fp.ip_version = o.src.is_v4() ? 4 : 6;
  fp.ttl = o.ttl;
  // The IP options' length is what the stored lengths leave over; anything inconsistent means
  // the header was not kept as sent.
  int ip_header = fp.ip_version == 4 ? 20 : 40;
  int rest = int{o.ip_len} - ip_header - 20 - int{o.opt_len} - int{o.payload_len};
  if (rest < 0) return false;
  fp.ip_opt_len = fp.ip_version == 4 ? rest : 0;
  fp.window = o.window;
  fp.payload = o.payload_len > 0;
  if (o.seq == 0) fp.quirks |= p0f_quirk::kZeroSeq;
  if (o.ack != 0) fp.quirks |= p0f_quirk::kNzAck;
  if (o.tcp_flags & tcp_flag::kUrg) fp.quirks |= p0f_quirk::kUrg;
  if (o.tcp_flags & tcp_flag::kPsh) fp.quirks |= p0f_quirk::kPush;
  if (o.tcp_flags & (tcp_flag::kEce | tcp_flag::kCwr)) fp.quirks |= p0f_quirk::kEcn;
  // The options, read as hostile bytes: a length that does not fit marks them "bad" and ends
  // the walk, as p0f does.
  size_t i = 0;
  while (i < opts.size()) {
    uint8_t kind = static_cast<uint8_t>(opts[i]);
    if (kind == kTcpOptEol) {
      fp.layout.push_back(kind);
      fp.eol_pad = static_cast<int>(opts.size() - i - 1);
      for (size_t k = i + 1; k < opts.size(); ++k) {
        if (opts[k] != 0) fp.quirks |= p0f_quirk::kOptEolNz;
      }
      break;
    }
    if (kind == kTcpOptNop) {
      fp.layout.push_back(kind);
      ++i;
      continue;
    }
    if (i + 1 >= opts.size()) {
      fp.quirks |= p0f_quirk::kOptBad;
      break;
    }
    size_t len = static_cast<uint8_t>(opts[i + 1]);
    if (len < 2 || i + len > opts.size()) {
      fp.quirks |= p0f_quirk::kOptBad;
      break;
    }
    fp.layout.push_back(kind);
    switch (kind) {
      case kTcpOptMss:
        if (len == 4) {
          fp.mss = Be16(opts, i + 2);
        } else {
          fp.quirks |= p0f_quirk::kOptBad;
        }
        break;
      case kTcpOptWs:
        if (len == 3) {
          fp.scale = static_cast<uint8_t>(opts[i + 2]);
          if (fp.scale > 14) fp.quirks |= p0f_quirk::kExws;
        } else {
          fp.quirks |= p0f_quirk::kOptBad;
        }
        break;
      case kTcpOptSok:
        if (len != 2) fp.quirks |= p0f_quirk::kOptBad;
        break;
      case kTcpOptTs:
        if (len == 10) {
          if (Be32(opts, i + 2) == 0) fp.quirks |= p0f_quirk::kTs1Zero;
          if (Be32(opts, i + 6) != 0) fp.quirks |= p0f_quirk::kTs2Nz;
        } else {
          fp.quirks |= p0f_quirk::kOptBad;
        }
        break;
      default:
        break;
    }
    i += len;
  }
  *out = std::move(fp);
  return true;
}

P0fMatch P0fDatabase::Match(const SynFingerprint& fp) const {
  const P0fSignature* generic = nullptr;
  const P0fSignature* fuzzy = nullptr;
  const uint32_t seen = fp.quirks & ~p0f_quirk::kUnseen;
  const WindowMultiple multiple = MultipleOf(fp);
  for (const P0fSignature& s : syn_) {
    if (s.ip_version && s.ip_version != fp.ip_version) continue;
    if (s.layout != fp.layout || s.eol_pad != fp.eol_pad || s.ip_opt_len != fp.ip_opt_len) {
      continue;
    }
    bool is_fuzzy = false;
    const uint32_t want = s.quirks & ~p0f_quirk::kUnseen;
    if (want != seen) {
      // p0f forgives quirks that only appear on the way (ecn; the others it forgives are ones
      // teiten cannot see): anything else lost or gained is no match.
      uint32_t lost = want & ~seen, gained = seen & ~want;
      if (lost || (gained & ~p0f_quirk::kEcn)) continue;
      is_fuzzy = true;
    }
    if (s.bad_ttl) {
      if (s.ittl < fp.ttl) continue;
    } else if (s.ittl < fp.ttl || s.ittl - fp.ttl > kMaxDistance) {
      is_fuzzy = true;
    }
    if (s.mss != -1 && s.mss != fp.mss) continue;
    if (s.scale != -1 && s.scale != fp.scale) continue;
    if (s.payload != -1 && s.payload != static_cast<int>(fp.payload)) continue;
    bool window_ok = true;
    switch (s.window_type) {
      case P0fWindow::kAny:
        break;
      case P0fWindow::kExact:
        window_ok = fp.window == s.window;
        break;
      case P0fWindow::kMod:
        window_ok = fp.window % s.window == 0;
        break;
      case P0fWindow::kMss:
        window_ok = !multiple.mtu && multiple.factor == s.window;
        break;
      case P0fWindow::kMtu:
        window_ok = multiple.mtu && multiple.factor == s.window;
        break;
    }
    if (!window_ok) continue;
    if (!is_fuzzy) {
      if (!labels_[s.label].generic) return {&s, false, std::max(0, s.ittl - fp.ttl)};
      if (!generic) generic = &s;
    } else if (!fuzzy && !labels_[s.label].application) {
      fuzzy = &s;
    }
  }
  if (generic) return {generic, false, std::max(0, generic->ittl - fp.ttl)};
  if (fuzzy) return {fuzzy, true, std::max(0, fuzzy->ittl - fp.ttl)};
  return {};
}

}  // namespace teiten
