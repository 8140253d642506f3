#include "sensor/nflog.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace teiten {
namespace {

// A parse failure with the reader's reason for it.
struct Failure {
  NflogError reason;
  Status status;
};

Failure Bad(NflogError reason, std::string message) {
  return {reason, InvalidArgument(std::move(message))};
}

std::string Quote(std::string_view v) {
  // Hostile bytes go into messages a person reads: show at most 40, escaped.
  std::string out = "'";
  for (size_t i = 0; i < v.size() && i < 40; ++i) {
    unsigned char c = static_cast<unsigned char>(v[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (v.size() > 40) out += "…";
  return out + "'";
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The whole of `text` as a decimal number ≤ max; nullopt on anything else (sign, overflow, junk).
std::optional<uint64_t> ParseDecimal(std::string_view text, uint64_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  for (char c : text) {
    if (!IsDigit(c)) return std::nullopt;
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > max) return std::nullopt;
  return v;
}

// ---- timestamps -------------------------------------------------------------------------------

int64_t LocalToUtc(int64_t local_us, const TimeZone* zone) {
  if (zone == nullptr) return local_us;
  // The offset is a function of the UTC instant; two steps settle it except inside a
  // daylight-saving gap or overlap, where either reading is as good as the log line.
  int64_t off = zone->OffsetUs(local_us);
  int64_t t = local_us - off;
  int64_t off2 = zone->OffsetUs(t);
  return off2 == off ? t : local_us - off2;
}

bool ValidCivil(int y, unsigned m, unsigned d, unsigned hh, unsigned mm, unsigned ss) {
  if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || hh > 23 || mm > 59 || ss > 60) {
    return false;
  }
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  unsigned dim = kDays[m - 1];
  if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) dim = 29;
  return d <= dim;
}

int64_t CivilUs(int y, unsigned m, unsigned d, unsigned hh, unsigned mm, unsigned ss) {
  int64_t days = TimeZone::DaysFromCivil(y, m, d);
  return ((days * 86400) + hh * 3600 + mm * 60 + ss) * 1000000LL;
}

// Reads `n` digits at line[*at]; false if they are not all there.
bool Digits(std::string_view line, size_t* at, size_t n, unsigned* out) {
  if (*at + n > line.size()) return false;
  unsigned v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = line[*at + i];
    if (!IsDigit(c)) return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  *at += n;
  *out = v;
  return true;
}
bool Expect(std::string_view line, size_t* at, char c) {
  if (*at >= line.size() || line[*at] != c) return false;
  ++*at;
  return true;
}

// "2026-12-04T05:41:07.123456+00:00 " (RFC 3339; a space for the T and no zone accepted).
std::optional<Failure> ParseIso(std::string_view line, const NflogContext& ctx, int64_t* ts) {
  size_t at = 0;
  unsigned y, mo, d, hh, mi, ss;
  auto bad = [&](const char* what) {
    return Bad(NflogError::kBadTimestamp, "byte " + std::to_string(at) + ": ISO-8601 timestamp " +
                                              what + ": " + Quote(line.substr(0, 40)));
  };
  if (!Digits(line, &at, 4, &y) || !Expect(line, &at, '-') || !Digits(line, &at, 2, &mo) ||
      !Expect(line, &at, '-') || !Digits(line, &at, 2, &d)) {
    return bad("has no date");
  }
  if (at >= line.size() || (line[at] != 'T' && line[at] != ' ')) return bad("has no time");
  ++at;
  if (!Digits(line, &at, 2, &hh) || !Expect(line, &at, ':') || !Digits(line, &at, 2, &mi) ||
      !Expect(line, &at, ':') || !Digits(line, &at, 2, &ss)) {
    return bad("has no time");
  }
  if (!ValidCivil(static_cast<int>(y), mo, d, hh, mi, ss)) return bad("is out of range");
  int64_t frac_us = 0;
  if (at < line.size() && (line[at] == '.' || line[at] == ',')) {
    ++at;
    size_t n = 0;
    int64_t scale = 100000;
    while (at < line.size() && IsDigit(line[at])) {
      if (n++ < 6) {
        frac_us += (line[at] - '0') * scale;
        scale /= 10;
      }
      if (n > 9) return bad("has too many fraction digits");
      ++at;
    }
    if (n == 0) return bad("has an empty fraction");
  }
  int64_t local = CivilUs(static_cast<int>(y), mo, d, hh, mi, ss) + frac_us;
  if (at < line.size() && line[at] == 'Z') {
    ++at;
    *ts = local;
  } else if (at < line.size() && (line[at] == '+' || line[at] == '-')) {
    int sign = line[at] == '-' ? -1 : 1;
    ++at;
    unsigned oh, om;
    if (!Digits(line, &at, 2, &oh)) return bad("has a broken offset");
    Expect(line, &at, ':');
    if (!Digits(line, &at, 2, &om) || oh > 23 || om > 59) return bad("has a broken offset");
    *ts = local - sign * (int64_t{oh} * 3600 + om * 60) * 1000000LL;
  } else {
    *ts = LocalToUtc(local, ctx.zone);
  }
  if (at < line.size() && line[at] != ' ') return bad("is followed by junk");
  return std::nullopt;
}

int MonthOf(std::string_view m) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (m == kMonths[i]) return i + 1;
  }
  return 0;
}

// "Dec  4 05:41:07 " (RFC 3164), in ctx.year and ctx.zone.
std::optional<Failure> ParseClassic(std::string_view line, const NflogContext& ctx, int64_t* ts) {
  size_t at = 3;
  auto bad = [&](const char* what) {
    return Bad(NflogError::kBadTimestamp, "byte " + std::to_string(at) + ": syslog timestamp " +
                                              what + ": " + Quote(line.substr(0, 20)));
  };
  unsigned mo = static_cast<unsigned>(MonthOf(line.substr(0, 3)));
  if (!Expect(line, &at, ' ')) return bad("has no day");
  if (at < line.size() && line[at] == ' ') ++at;  // space-padded day
  unsigned d, hh, mi, ss;
  size_t day_digits = (at + 1 < line.size() && IsDigit(line[at + 1])) ? 2 : 1;
  if (!Digits(line, &at, day_digits, &d) || !Expect(line, &at, ' ') || !Digits(line, &at, 2, &hh) ||
      !Expect(line, &at, ':') || !Digits(line, &at, 2, &mi) || !Expect(line, &at, ':') ||
      !Digits(line, &at, 2, &ss)) {
    return bad("is broken");
  }
  if (at < line.size() && line[at] != ' ') return bad("is followed by junk");
  if (ctx.year == 0) return bad("needs the year (NflogContext::year) and none was given");
  if (!ValidCivil(ctx.year, mo, d, hh, mi, ss)) return bad("is out of range");
  *ts = LocalToUtc(CivilUs(ctx.year, mo, d, hh, mi, ss), ctx.zone);
  return std::nullopt;
}

// ---- the kernel's text ------------------------------------------------------------------------

// Where the kernel's part begins: "IN=<dev> OUT=" (the rule's prefix is free text before it);
// failing that, the first SRC= token. npos when the line has no SRC= and DST= tokens.
size_t FindStart(std::string_view msg) {
  auto token_at = [&](size_t pos) { return pos == 0 || msg[pos - 1] == ' '; };
  auto find_token = [&](std::string_view key) {
    for (size_t pos = msg.find(key); pos != std::string_view::npos; pos = msg.find(key, pos + 1)) {
      if (token_at(pos)) return pos;
    }
    return std::string_view::npos;
  };
  size_t src = find_token("SRC=");
  if (src == std::string_view::npos || find_token("DST=") == std::string_view::npos) {
    return std::string_view::npos;
  }
  for (size_t pos = msg.find("IN="); pos != std::string_view::npos && pos < src;
       pos = msg.find("IN=", pos + 1)) {
    size_t sp = msg.find(' ', pos);
    if (sp != std::string_view::npos && msg.substr(sp + 1, 4) == "OUT=") return pos;
  }
  return src;
}

struct Fields {
  bool v6 = false;
  std::optional<IpAddr> src, dst;
  std::optional<uint64_t> len, ttl, ip_id, proto;
  bool mf = false;
  uint64_t frag_off = 0;
  bool frag_header = false;  // IPv6 fragment header seen
  uint32_t ip_opt_len = 0;
  std::optional<uint64_t> sport, dport, udp_len;
  bool transport_cut = false;  // INCOMPLETE [n bytes]
};

class KernelParser {
 public:
  KernelParser(std::string_view msg, size_t base, const NflogContext& ctx)
      : msg_(msg), base_(base), ctx_(ctx) {}

  std::optional<Failure> Run(size_t start, Observation* o, std::vector<uint8_t>* opts);

 private:
  Failure BadField(size_t at, std::string_view field, std::string_view value, const char* what) {
    return Bad(NflogError::kBadField, "byte " + std::to_string(base_ + at) + ": field " +
                                          std::string(field) + ": " + Quote(value) + " " + what);
  }
  std::optional<Failure> Number(size_t at, std::string_view key, std::string_view value,
                                uint64_t max, std::optional<uint64_t>* out, bool once) {
    if (once && out->has_value()) return BadField(at, key, value, "appears twice");
    auto v = ParseDecimal(value, max);
    if (!v) {
      return BadField(at, key, value, ("is not a number 0.." + std::to_string(max)).c_str());
    }
    *out = v;
    return std::nullopt;
  }
  // "(hex)" right after OPT at msg_[at]; the bytes go to `out` (≤ max of them).
  std::optional<Failure> HexOptions(size_t* at, size_t max, std::vector<uint8_t>* out, uint32_t* n);

  std::string_view msg_;
  size_t base_;
  const NflogContext& ctx_;
};

std::optional<Failure> KernelParser::HexOptions(size_t* at, size_t max, std::vector<uint8_t>* out,
                                                uint32_t* n) {
  size_t begin = *at;
  size_t close = msg_.find(')', begin);
  if (begin >= msg_.size() || msg_[begin] != '(' || close == std::string_view::npos) {
    return BadField(begin, "OPT", msg_.substr(begin, 20), "is not '(hex)'");
  }
  std::string_view hex = msg_.substr(begin + 1, close - begin - 1);
  if (hex.size() % 2 != 0 || hex.size() / 2 > max) {
    return BadField(
        begin, "OPT", hex,
        ("is not an even number of hex digits for at most " + std::to_string(max) + " bytes")
            .c_str());
  }
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]), lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return BadField(begin + 1 + i, "OPT", hex, "has a non-hex digit");
    if (out) out->push_back(static_cast<uint8_t>(hi * 16 + lo));
  }
  *n = static_cast<uint32_t>(hex.size() / 2);
  *at = close + 1;
  return std::nullopt;
}

std::optional<Failure> KernelParser::Run(size_t start, Observation* o, std::vector<uint8_t>* opts) {
  Fields f;
  bool transport = false;  // past PROTO=
  bool ext_list = false;   // inside IPv6 "OPT ( … )"
  uint32_t tcp_opt_len = 0;
  std::optional<uint64_t> seq, ack, window, icmp_type, icmp_code;
  uint8_t tcp_flags = 0;
  size_t i = start;
  const size_t n = msg_.size();
  while (i < n) {
    while (i < n && msg_[i] == ' ') ++i;
    if (i >= n) break;
    size_t j = i;
    while (j < n && msg_[j] != ' ') ++j;
    std::string_view tok = msg_.substr(i, j - i);
    size_t at = i;
    i = j;
    // IPv6 fragment header words: inside "OPT ( … )" when the rule logs IP options, bare
    // between FLOWLBL= and PROTO= when it does not.
    if (ext_list || (!transport && f.v6)) {
      if (ext_list && tok == ")") {
        ext_list = false;
        continue;
      }
      if (tok.starts_with("FRAG:")) {
        std::optional<uint64_t> v;
        if (auto e = Number(at, "FRAG", tok.substr(5), 0xFFF8, &v, false)) return e;
        f.frag_off = *v;
        f.frag_header = true;
        continue;
      }
      if (tok == "INCOMPLETE") {
        f.mf = true;
        continue;
      }
      if (tok.starts_with("ID:")) {
        std::string_view hex = tok.substr(3);
        if (hex.empty() || hex.size() > 8) return BadField(at, "ID", hex, "is not 32-bit hex");
        uint32_t v = 0;
        for (char c : hex) {
          int h = HexValue(c);
          if (h < 0) return BadField(at, "ID", hex, "is not 32-bit hex");
          v = v * 16 + static_cast<uint32_t>(h);
        }
        f.ip_id = v & 0xFFFF;
        continue;
      }
      if (ext_list) continue;  // other extension headers: named, not sized in the line
    }
    if (tok == "OPT") {
      size_t p = i;
      while (p < n && msg_[p] == ' ') ++p;
      if (!transport && f.v6 && msg_.substr(p, 2) == "( ") {
        ext_list = true;
        i = p + 1;
        continue;
      }
      if (!transport) {
        if (auto e = HexOptions(&p, 40, nullptr, &f.ip_opt_len)) return e;
      } else if (o->proto == 6) {
        if (auto e = HexOptions(&p, kMaxTcpOptions, opts, &tcp_opt_len)) return e;
      } else {
        uint32_t ignored;
        if (auto e = HexOptions(&p, 40, nullptr, &ignored)) return e;
      }
      i = p;
      continue;
    }
    if (tok[0] == '[') break;  // an ICMP error's quoted packet: not this packet's fields
    size_t eq = tok.find('=');
    if (eq == std::string_view::npos) {
      if (!transport) {
        if (tok == "MF") {
          f.mf = true;
        } else if (tok.starts_with("FRAG:")) {  // IPv4: in 8-byte units
          std::optional<uint64_t> v;
          if (auto e = Number(at, "FRAG", tok.substr(5), 0x1FFF, &v, false)) return e;
          f.frag_off = *v;
        }
      } else if (tok == "INCOMPLETE") {
        f.transport_cut = true;
        break;  // "[n bytes]" follows and nothing else of the transport header
      } else if (o->proto == 6) {
        static constexpr std::pair<std::string_view, uint8_t> kFlags[] = {
            {"CWR", tcp_flag::kCwr}, {"ECE", tcp_flag::kEce}, {"URG", tcp_flag::kUrg},
            {"ACK", tcp_flag::kAck}, {"PSH", tcp_flag::kPsh}, {"RST", tcp_flag::kRst},
            {"SYN", tcp_flag::kSyn}, {"FIN", tcp_flag::kFin}};
        for (const auto& [word, bit] : kFlags) {
          if (tok == word) tcp_flags |= bit;
        }
      }
      continue;
    }
    std::string_view key = tok.substr(0, eq), value = tok.substr(eq + 1);
    size_t vat = at + eq + 1;
    if (!transport) {
      if (key == "SRC" || key == "DST") {
        auto& slot = key == "SRC" ? f.src : f.dst;
        if (slot) return BadField(vat, key, value, "appears twice");
        slot = IpAddr::Parse(value);
        if (!slot) return BadField(vat, key, value, "is not an IP address");
        if (key == "SRC") f.v6 = !slot->is_v4();
      } else if (key == "LEN") {
        if (auto e = Number(vat, key, value, 65535 + 40, &f.len, true)) return e;
      } else if (key == "TTL" || key == "HOPLIMIT") {
        if (auto e = Number(vat, key, value, 255, &f.ttl, true)) return e;
      } else if (key == "ID") {
        if (auto e = Number(vat, key, value, 65535, &f.ip_id, true)) return e;
      } else if (key == "PROTO") {
        static constexpr std::pair<std::string_view, uint8_t> kProtos[] = {
            {"TCP", 6}, {"UDP", 17}, {"UDPLITE", 136}, {"ICMP", 1}, {"ICMPv6", 58},
            {"AH", 51}, {"ESP", 50}, {"SCTP", 132},    {"GRE", 47}, {"DCCP", 33}};
        for (const auto& [name, num] : kProtos) {
          if (value == name) f.proto = num;
        }
        if (!f.proto) {
          if (auto e = Number(vat, key, value, 255, &f.proto, false)) return e;
        }
        o->proto = static_cast<uint8_t>(*f.proto);
        transport = true;
        // A non-first fragment's line ends with its protocol: no transport header was there.
        if (f.frag_off != 0) break;
      }
      continue;
    }
    switch (o->proto) {
      case 6:
        if (key == "SEQ") {
          if (auto e = Number(vat, key, value, 0xFFFFFFFFu, &seq, true)) return e;
        } else if (key == "ACK") {
          if (auto e = Number(vat, key, value, 0xFFFFFFFFu, &ack, true)) return e;
        } else if (key == "WINDOW") {
          if (auto e = Number(vat, key, value, 65535, &window, true)) return e;
        }
        [[fallthrough]];
      case 17:
      case 136:
        if (key == "SPT") {
          if (auto e = Number(vat, key, value, 65535, &f.sport, true)) return e;
        } else if (key == "DPT") {
          if (auto e = Number(vat, key, value, 65535, &f.dport, true)) return e;
        } else if (key == "LEN" && o->proto != 6) {
          if (auto e = Number(vat, key, value, 65535, &f.udp_len, true)) return e;
        }
        break;
      case 1:
      case 58:
        if (key == "TYPE") {
          if (auto e = Number(vat, key, value, 255, &icmp_type, true)) return e;
        } else if (key == "CODE") {
          if (auto e = Number(vat, key, value, 255, &icmp_code, true)) return e;
        }
        break;
      default:
        break;
    }
  }
  auto missing = [&](const char* field) {
    return Bad(NflogError::kBadField,
               "byte " + std::to_string(base_ + start) + ": LOG line has no " + field + " field");
  };
  if (!f.src) return missing("SRC=");
  if (!f.dst) return missing("DST=");
  if (f.src->is_v4() != f.dst->is_v4()) {
    return BadField(start, "DST", f.dst->ToString(), "is not of SRC's address family");
  }
  if (!f.len) return missing("LEN=");
  if (!f.ttl) return missing(f.v6 ? "HOPLIMIT=" : "TTL=");
  if (!f.proto) return missing("PROTO=");
  if (!f.v6 && *f.len > 65535) return BadField(start, "LEN", std::to_string(*f.len), "> 65535");

  o->src = *f.src;
  o->dst = *f.dst;
  o->ip_len = static_cast<uint16_t>(std::min<uint64_t>(*f.len, 0xFFFF));
  o->ttl = static_cast<uint8_t>(*f.ttl);
  o->ip_id = static_cast<uint16_t>(f.ip_id.value_or(0));
  if (f.frag_off != 0) {
    o->flags |= obs_flag::kFragment;
    return std::nullopt;
  }
  if (f.mf) o->flags |= obs_flag::kFirstFragment;
  // The transport segment's length as the decoder reckons it: the datagram less the IP header.
  uint32_t ihl = f.v6 ? 40 + (f.frag_header ? 8 : 0) : 20 + f.ip_opt_len;
  uint32_t l4 = *f.len > ihl ? static_cast<uint32_t>(*f.len - ihl) : 0;
  uint8_t p = o->proto;
  bool ported = p == 6 || p == 17 || p == 136;
  bool icmp = p == 1 || p == 58;
  if (f.transport_cut || (ported && (!f.sport || !f.dport)) || (icmp && !icmp_type)) {
    o->flags |= obs_flag::kNoTransport;
    return std::nullopt;
  }
  if (ported) {
    o->sport = static_cast<uint16_t>(*f.sport);
    o->dport = static_cast<uint16_t>(*f.dport);
  }
  uint32_t header = 0;
  if (p == 6) {
    o->seq = static_cast<uint32_t>(seq.value_or(0));
    o->ack = static_cast<uint32_t>(ack.value_or(0));
    o->window = static_cast<uint16_t>(window.value_or(0));
    o->tcp_flags = tcp_flags;
    o->opt_len = static_cast<uint8_t>(tcp_opt_len);
    if (!ctx_.options_logged && tcp_opt_len == 0) return std::nullopt;  // header length unknown
    header = 20 + tcp_opt_len;
  } else if (p == 17 || p == 136) {
    header = 8;
    // A UDP length beyond the datagram is trusted no more than the decoder trusts it.
    if (p == 17 && f.udp_len && *f.udp_len >= 8 && *f.udp_len < l4) {
      l4 = static_cast<uint32_t>(*f.udp_len);
    }
  } else if (icmp) {
    o->icmp_type = static_cast<uint8_t>(*icmp_type);
    o->icmp_code = static_cast<uint8_t>(icmp_code.value_or(0));
    header = 8;
  } else {
    return std::nullopt;  // no transport fields the decoder reads
  }
  o->payload_len = static_cast<uint16_t>(l4 > header ? std::min<uint32_t>(l4 - header, 0xFFFF) : 0);
  return std::nullopt;
}

// Nesting of a JSON text, strings skipped: nlohmann recurses on nesting when it destroys a value.
bool ShallowJson(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

// A `journalctl -o json` line: its MESSAGE into *message and __REALTIME_TIMESTAMP into *ts.
// An entry without a MESSAGE leaves *message empty: the caller finds no LOG line in it.
std::optional<Failure> ParseJournalJson(std::string_view line, std::string* message, int64_t* ts,
                                        bool* has_ts) {
  auto bad = [&](const std::string& what) {
    return Bad(NflogError::kBadJournal, "journal JSON: " + what);
  };
  if (!ShallowJson(line, 8)) return bad("nested too deeply");
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto m = j.find("MESSAGE");
  if (m == j.end()) return std::nullopt;
  if (m->is_string()) {
    *message = m->get<std::string>();
  } else if (m->is_array()) {  // journald's form of a message that is not valid UTF-8
    for (const auto& b : *m) {
      if (!b.is_number_unsigned() || b.get<uint64_t>() > 255) return bad("MESSAGE bytes broken");
      message->push_back(static_cast<char>(b.get<uint64_t>()));
    }
  } else if (!m->is_null()) {
    return bad("MESSAGE is neither a string nor bytes");
  }
  auto t = j.find("__REALTIME_TIMESTAMP");
  if (t != j.end()) {
    auto v =
        t->is_string() ? ParseDecimal(t->get<std::string>(), 253402300799999999ULL) : std::nullopt;
    if (!v) return bad("__REALTIME_TIMESTAMP is not a decimal string of microseconds");
    *ts = static_cast<int64_t>(*v);
    *has_ts = true;
  }
  return std::nullopt;
}

// NotFound: not a LOG line. Otherwise *why says which error a failure is.
Result<Observation> Parse(std::string_view line, const NflogContext& ctx,
                          std::vector<uint8_t>* blob, NflogError* why) {
  std::string json_message;
  std::string_view msg = line;
  int64_t ts = ctx.ts_us;
  bool json = !line.empty() && line[0] == '{';
  if (json) {
    bool has_ts = false;
    if (auto e = ParseJournalJson(line, &json_message, &ts, &has_ts)) {
      *why = e->reason;
      return e->status;
    }
    msg = json_message;
  }
  size_t start = FindStart(msg);
  if (start == std::string_view::npos) return NotFound("not a netfilter LOG line");
  if (!json) {
    std::optional<Failure> e;
    if (line.size() >= 5 && IsDigit(line[0]) && IsDigit(line[1]) && IsDigit(line[2]) &&
        IsDigit(line[3]) && line[4] == '-') {
      e = ParseIso(line, ctx, &ts);
    } else if (line.size() >= 4 && MonthOf(line.substr(0, 3)) != 0 && line[3] == ' ') {
      e = ParseClassic(line, ctx, &ts);
    }
    if (e) {
      *why = e->reason;
      return e->status;
    }
  }
  Observation o;
  o.ts_us = ts;
  size_t mark = blob->size();
  o.blob = static_cast<uint32_t>(mark);
  KernelParser parser(msg, 0, ctx);
  if (auto e = parser.Run(start, &o, blob)) {
    blob->resize(mark);
    *why = e->reason;
    Status s = e->status;
    if (json) s = InvalidArgument("MESSAGE " + s.message());
    return s;
  }
  return o;
}

}  // namespace

Result<Observation> ParseNetfilterLog(std::string_view line, const NflogContext& ctx,
                                      std::vector<uint8_t>* blob) {
  NflogError why = NflogError::kBadField;
  return Parse(line, ctx, blob, &why);
}

const char* NflogErrorName(NflogError e) {
  switch (e) {
    case NflogError::kLineTooLong:
      return "line_too_long";
    case NflogError::kBadField:
      return "bad_field";
    case NflogError::kBadTimestamp:
      return "bad_timestamp";
    case NflogError::kBadJournal:
      return "bad_journal";
    case NflogError::kCount:
      break;
  }
  return "unknown";
}

// ---- reader -----------------------------------------------------------------------------------

NetfilterLogReader::NetfilterLogReader(int fd, std::string name, const NflogContext& ctx,
                                       const NflogReaderOptions& options)
    : fd_(fd), name_(std::move(name)), ctx_(ctx), options_(options) {}

NetfilterLogReader::NetfilterLogReader(NetfilterLogReader&& o) noexcept {
  *this = std::move(o);
}

NetfilterLogReader& NetfilterLogReader::operator=(NetfilterLogReader&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    name_ = std::move(o.name_);
    ctx_ = o.ctx_;
    options_ = o.options_;
    counts_ = std::move(o.counts_);
    pending_ = std::move(o.pending_);
    skipping_ = o.skipping_;
    eof_ = o.eof_;
    ino_ = o.ino_;
    dev_ = o.dev_;
    offset_ = o.offset_;
    export_ = o.export_;
    entry_ts_ = o.entry_ts_;
    entry_message_ = std::move(o.entry_message_);
    entry_message_line_ = o.entry_message_line_;
    entry_error_ = std::move(o.entry_error_);
    binary_ = o.binary_;
    binary_message_ = o.binary_message_;
    binary_left_ = o.binary_left_;
  }
  return *this;
}

NetfilterLogReader::~NetfilterLogReader() {
  if (fd_ >= 0) ::close(fd_);
}

Result<NetfilterLogReader> NetfilterLogReader::Open(const std::string& path,
                                                    const NflogContext& ctx,
                                                    const NflogReaderOptions& options) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(path + ": cannot open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = IoError(path + ": cannot stat");
    ::close(fd);
    return s;
  }
  NetfilterLogReader r(fd, path, ctx, options);
  r.ino_ = st.st_ino;
  r.dev_ = st.st_dev;
  if (options.resume_inode != 0 && options.resume_inode == st.st_ino && options.resume_offset > 0 &&
      options.resume_offset <= st.st_size &&
      ::lseek(fd, options.resume_offset, SEEK_SET) == options.resume_offset) {
    r.offset_ = options.resume_offset;
  }
  return r;
}

NetfilterLogReader NetfilterLogReader::FromFd(int fd, std::string name, const NflogContext& ctx,
                                              const NflogReaderOptions& options) {
  NetfilterLogReader r(fd, std::move(name), ctx, options);
  r.options_.follow = false;  // a stream has no name to follow; its end is its end
  return r;
}

void NetfilterLogReader::CountError(NflogError e, uint64_t line_number, std::string message) {
  ++counts_.errors[static_cast<size_t>(e)];
  if (counts_.first_errors.size() < options_.kept_errors) {
    counts_.first_errors.push_back(
        {line_number, name_ + ":" + std::to_string(line_number) + ": " + std::move(message)});
  }
}

void NetfilterLogReader::TakeLine(std::string_view line, ObservationBatch* batch) {
  ++counts_.lines;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > options_.max_line) {
    CountError(NflogError::kLineTooLong, counts_.lines,
               "line of " + std::to_string(line.size()) + " bytes is longer than " +
                   std::to_string(options_.max_line) + ": skipped");
    return;
  }
  if (export_ || line.starts_with("__CURSOR=") || line.starts_with("__REALTIME_TIMESTAMP=")) {
    TakeExportLine(line, batch);
    return;
  }
  Keep(line, ctx_, counts_.lines, batch);
}

void NetfilterLogReader::Keep(std::string_view text, const NflogContext& ctx, uint64_t line_number,
                              ObservationBatch* batch) {
  NflogError why = NflogError::kBadField;
  Result<Observation> r = Parse(text, ctx, &batch->blob, &why);
  if (r.ok()) {
    ++counts_.log_lines;
    ++counts_.kept;
    batch->rows.push_back(*r);
    return;
  }
  if (r.status().code() == StatusCode::kNotFound) return;
  if (why != NflogError::kBadJournal) ++counts_.log_lines;
  CountError(why, line_number, r.status().message());
}

void NetfilterLogReader::TakeExportLine(std::string_view line, ObservationBatch* batch) {
  export_ = true;  // a file that began as an export stream stays one
  if (line.empty()) {
    FinishEntry(batch);
    return;
  }
  size_t eq = line.find('=');
  if (eq == std::string_view::npos) {
    // A binary field: its name alone, then a 64-bit little-endian length, the bytes and '\n'.
    bool name = std::all_of(line.begin(), line.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!name) {
      if (entry_error_.empty()) {
        entry_error_ =
            "journal export: line " + std::to_string(counts_.lines) +
            " is neither FIELD=value nor a binary field name: " + Quote(line.substr(0, 40));
      }
      return;
    }
    binary_ = Binary::kLength;
    binary_message_ = line == "MESSAGE";
    if (binary_message_) {
      entry_message_ = std::string();
      entry_message_line_ = counts_.lines;
    }
    return;
  }
  std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
  if (key == "__REALTIME_TIMESTAMP") {
    auto v = ParseDecimal(value, 253402300799999999ULL);
    if (v) {
      entry_ts_ = static_cast<int64_t>(*v);
    } else if (entry_error_.empty()) {
      entry_error_ = "journal export: __REALTIME_TIMESTAMP " + Quote(value) +
                     " is not a decimal number of microseconds";
    }
  } else if (key == "MESSAGE") {
    entry_message_ = std::string(value);
    entry_message_line_ = counts_.lines;
  }
}

void NetfilterLogReader::FinishEntry(ObservationBatch* batch) {
  if (entry_message_) {
    if (!entry_error_.empty()) {
      if (FindStart(*entry_message_) != std::string_view::npos) {
        CountError(NflogError::kBadJournal, entry_message_line_, entry_error_);
      }
    } else {
      NflogContext ctx = ctx_;
      if (entry_ts_) ctx.ts_us = *entry_ts_;
      // The MESSAGE is the kernel's text: no syslog prefix to read a time from.
      std::string_view msg = *entry_message_;
      size_t start = FindStart(msg);
      if (start != std::string_view::npos) {
        Observation o;
        o.ts_us = ctx.ts_us;
        size_t mark = batch->blob.size();
        o.blob = static_cast<uint32_t>(mark);
        KernelParser parser(msg, 0, ctx);
        ++counts_.log_lines;
        if (auto e = parser.Run(start, &o, &batch->blob)) {
          batch->blob.resize(mark);
          CountError(e->reason, entry_message_line_, "MESSAGE " + e->status.message());
        } else {
          ++counts_.kept;
          batch->rows.push_back(o);
        }
      }
    }
  }
  entry_ts_.reset();
  entry_message_.reset();
  entry_error_.clear();
}

Result<bool> NetfilterLogReader::Reopen() {
  struct stat st {};
  if (::stat(name_.c_str(), &st) != 0) return false;  // renamed away, new file not there yet
  if (static_cast<uint64_t>(st.st_ino) != ino_ || static_cast<uint64_t>(st.st_dev) != dev_) {
    // Rotated by rename. The writer may have added to the old file after our last read: drain
    // it, and read a last line without its newline as a line (nobody will finish it).
    char chunk[65536];
    while (true) {
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      pending_.append(chunk, static_cast<size_t>(n));
    }
    if (!pending_.empty() && pending_.back() != '\n') pending_ += '\n';
    int fd = ::open(name_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;  // gone again between stat and open: try on the next call
    struct stat nst {};
    if (::fstat(fd, &nst) != 0) {
      ::close(fd);
      return IoError(name_ + ": cannot stat");
    }
    ::close(fd_);
    fd_ = fd;
    ino_ = nst.st_ino;
    dev_ = nst.st_dev;
    offset_ = 0;
    ++counts_.rotations;
    return true;
  }
  struct stat fst {};
  if (::fstat(fd_, &fst) == 0 && fst.st_size < offset_) {
    // Truncated in place (copytruncate): what is there now was written after the truncation.
    if (::lseek(fd_, 0, SEEK_SET) < 0) return IoError(name_ + ": cannot seek after truncation");
    offset_ = 0;
    pending_.clear();
    skipping_ = false;
    ++counts_.rotations;
    return true;
  }
  return false;
}

Result<size_t> NetfilterLogReader::Next(ObservationBatch* batch, size_t max_rows) {
  size_t start_rows = batch->rows.size();
  size_t head = 0;
  auto done = [&] { return batch->rows.size() - start_rows >= max_rows; };
  Status failure;
  while (true) {
    while (!done()) {
      if (binary_ == Binary::kLength) {
        if (pending_.size() - head < 8) break;
        uint64_t len = 0;
        for (int b = 7; b >= 0; --b) len = (len << 8) | static_cast<uint8_t>(pending_[head + b]);
        head += 8;
        binary_ = Binary::kData;
        binary_left_ = len < UINT64_MAX ? len + 1 : len;  // the bytes, then '\n'
        if (binary_message_ && len > options_.max_line) {
          CountError(NflogError::kLineTooLong, counts_.lines,
                     "binary MESSAGE of " + std::to_string(len) + " bytes is longer than " +
                         std::to_string(options_.max_line) + ": skipped");
          binary_message_ = false;
          entry_message_.reset();
        }
      }
      if (binary_ == Binary::kData) {
        size_t take = static_cast<size_t>(std::min<uint64_t>(binary_left_, pending_.size() - head));
        if (binary_message_) {
          size_t data = binary_left_ > 1 ? std::min<uint64_t>(take, binary_left_ - 1) : 0;
          entry_message_->append(pending_, head, data);
        }
        head += take;
        binary_left_ -= take;
        if (binary_left_ > 0) break;
        binary_ = Binary::kNone;
        continue;
      }
      size_t nl = pending_.find('\n', head);
      if (nl == std::string::npos) break;
      std::string_view line(pending_.data() + head, nl - head);
      head = nl + 1;
      if (skipping_) {  // the tail of a line already counted as too long
        skipping_ = false;
        continue;
      }
      TakeLine(line, batch);
    }
    pending_.erase(0, head);
    head = 0;
    if (done()) break;
    if (binary_ != Binary::kNone) {
      // Inside a binary field: its bytes are consumed as they come, not as a line.
    } else if (skipping_) {
      pending_.clear();
    } else if (pending_.size() > options_.max_line + 1) {
      // No newline within the limit: count the line now and drop its bytes as they come.
      ++counts_.lines;
      CountError(NflogError::kLineTooLong, counts_.lines,
                 "line longer than " + std::to_string(options_.max_line) + " bytes: skipped");
      pending_.clear();
      skipping_ = true;
    }
    if (eof_) break;
    char chunk[65536];
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      failure = IoError(name_ + ": read at byte " + std::to_string(offset_));
      break;
    }
    if (n == 0) {
      if (options_.follow) {
        Result<bool> again = Reopen();
        if (!again.ok()) {
          failure = again.status();
          break;
        }
        if (*again) continue;
        break;
      }
      eof_ = true;
      if (binary_ == Binary::kNone && !pending_.empty() && !skipping_) {
        pending_ += '\n';  // a last line without its newline
      }
      continue;
    }
    offset_ += n;
    pending_.append(chunk, static_cast<size_t>(n));
  }
  if (!failure.ok()) return failure;
  if (eof_ && pending_.empty() && (entry_message_ || entry_ts_) && !done()) {
    FinishEntry(batch);  // an export stream's last entry without its blank line
  }
  return batch->rows.size() - start_rows;
}

}  // namespace teiten
