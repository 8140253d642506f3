#include "enrich/names.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

namespace teiten {
namespace embedded {
extern const std::string_view kCountriesTsv;
}

namespace {

struct CountryRow {
  CountryCode code;
  std::string en;
  std::string ja;
};

const std::unordered_map<CountryCode, CountryRow>& Countries() {
  static const auto* table = [] {
    auto* t = new std::unordered_map<CountryCode, CountryRow>();
    std::istringstream in{std::string(embedded::kCountriesTsv)};
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      size_t a = line.find('\t');
      size_t b = line.find('\t', a + 1);
      if (a != 2 || b == std::string::npos) continue;
      CountryCode c = MakeCountryCode(line.c_str());
      (*t)[c] = {c, line.substr(a + 1, b - a - 1), line.substr(b + 1)};
    }
    return t;
  }();
  return *table;
}

}  // namespace

std::string CountryName(CountryCode c, Lang lang) {
  if (c == 0) return lang == Lang::kJa ? "不明" : "Unknown";
  const auto& t = Countries();
  auto it = t.find(c);
  if (it == t.end()) return CountryCodeString(c);
  return lang == Lang::kJa ? it->second.ja : it->second.en;
}

CountryCode FindCountry(std::string_view text) {
  if (text.size() == 2) {
    char up[2] = {static_cast<char>(std::toupper(static_cast<unsigned char>(text[0]))),
                  static_cast<char>(std::toupper(static_cast<unsigned char>(text[1])))};
    CountryCode c = MakeCountryCode(up);
    if (Countries().count(c)) return c;
  }
  for (const auto& [code, row] : Countries()) {
    if (row.ja == text) return code;
    if (row.en.size() == text.size() &&
        std::equal(row.en.begin(), row.en.end(), text.begin(), [](char x, char y) {
          return std::tolower(static_cast<unsigned char>(x)) ==
                 std::tolower(static_cast<unsigned char>(y));
        })) {
      return code;
    }
  }
  return 0;
}

Result<ServiceNames> ServiceNames::Load(const std::string& path) {
  // Read whole and split in place: every command that names a port loads the registry's 6,000
  // lines, and a stream per line took 6 ms of `teiten ip`'s 100.
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("services file " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ServiceNames s;
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
  };
  // The next whitespace-separated word of `line` from `*at` (empty at its end).
  auto word = [&](std::string_view line, size_t* at) {
    while (*at < line.size() && is_space(line[*at])) ++*at;
    size_t b = *at;
    while (*at < line.size() && !is_space(line[*at])) ++*at;
    return line.substr(b, *at - b);
  };
  std::string_view all(text);
  for (size_t pos = 0; pos < all.size();) {
    size_t nl = all.find('\n', pos);
    if (nl == std::string_view::npos) nl = all.size();
    std::string_view line = all.substr(pos, nl - pos);
    pos = nl + 1;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    size_t at = 0;
    std::string_view name = word(line, &at), portproto = word(line, &at);
    size_t slash = portproto.find('/');
    if (name.empty() || slash == std::string_view::npos) continue;
    // A port or a range ("6000-6063/tcp/udp" is X11's displays): every port of it is named.
    unsigned long port = 0, last = 0;
    const char* const stop = portproto.data() + slash;
    auto [end, ec] = std::from_chars(portproto.data(), stop, port);
    if (ec != std::errc() || port > 65535) continue;
    last = port;
    if (end != stop) {
      if (*end != '-') continue;
      auto [end2, ec2] = std::from_chars(end + 1, stop, last);
      if (ec2 != std::errc() || end2 != stop || last > 65535 || last < port) continue;
    }
    // "tcp", "udp", "tcp/udp", "sctp"
    for (std::string_view protos = portproto.substr(slash + 1); !protos.empty();) {
      size_t cut = protos.find('/');
      std::string_view p = protos.substr(0, cut);
      protos = cut == std::string_view::npos ? std::string_view() : protos.substr(cut + 1);
      uint8_t num = p == "tcp" ? 6 : p == "udp" ? 17 : p == "sctp" ? 132 : p == "dccp" ? 33 : 0;
      for (unsigned long n = port; num && n <= last; ++n) {
        s.names_.emplace(MakePortKey(num, static_cast<uint16_t>(n)), std::string(name));
      }
    }
  }
  return s;
}

const ServiceNames& ServiceNames::Default() {
  static const ServiceNames* names = [] {
    auto r = Load(kDefaultServicesPath);
    return r.ok() ? new ServiceNames(std::move(*r)) : new ServiceNames();
  }();
  return *names;
}

std::string_view ServiceNames::Name(PortKey k) const {
  auto it = names_.find(k);
  return it == names_.end() ? std::string_view() : std::string_view(it->second);
}

std::string ServiceNames::Describe(PortKey k) const {
  std::string s = PortKeyToString(k);
  std::string_view n = Name(k);
  if (!n.empty()) {
    s += " (";
    s += n;
    s += ")";
  }
  return s;
}

}  // namespace teiten
