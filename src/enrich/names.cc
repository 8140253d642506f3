#include "enrich/names.h"

#include <algorithm>
#include <fstream>
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
  std::ifstream in(path);
  if (!in) return IoError("services file " + path);
  ServiceNames s;
  std::string line;
  while (std::getline(in, line)) {
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream ls(line);
    std::string name, portproto;
    if (!(ls >> name >> portproto)) continue;
    size_t slash = portproto.find('/');
    if (slash == std::string::npos) continue;
    unsigned long port = 0;
    try {
      port = std::stoul(portproto.substr(0, slash));
    } catch (...) {
      continue;
    }
    if (port > 65535) continue;
    std::string protos = portproto.substr(slash + 1);  // "tcp", "udp", "tcp/udp", "sctp"
    std::istringstream ps(protos);
    std::string p;
    while (std::getline(ps, p, '/')) {
      uint8_t num = p == "tcp" ? 6 : p == "udp" ? 17 : p == "sctp" ? 132 : p == "dccp" ? 33 : 0;
      if (num) s.names_.emplace(MakePortKey(num, static_cast<uint16_t>(port)), name);
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
