// Human names for what teiten counts: countries in English and Japanese (SPEC E2) and IANA
// service names for ports (SPEC E3).
//
//   CountryName(MakeCountryCode("CN"), Lang::kJa)  → "中国"
//   ServiceNames::Default().Describe(MakePortKey(6, 23)) → "23/TCP (telnet)"
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/observation.h"
#include "common/status.h"
#include "enrich/geo.h"

namespace teiten {

enum class Lang { kEn, kJa };

// The country's name; the code itself ("ZZ") for codes the table does not know, and
// "Unknown"/"不明" for 0.
std::string CountryName(CountryCode c, Lang lang);
// Finds a code from "CN", "cn", "China" or "中国". 0 if none matches.
CountryCode FindCountry(std::string_view text);

// IANA service names, read from a services(5)-format file such as Debian wireshark-common's
// /usr/share/wireshark/services (a copy of the IANA registry).
class ServiceNames {
 public:
  static Result<ServiceNames> Load(const std::string& path);
  // The process-wide table from the default path; empty (names omitted) if the file is missing.
  static const ServiceNames& Default();

  // "telnet" for 23/TCP; "" when the registry has no name.
  std::string_view Name(PortKey k) const;
  // "23/TCP (telnet)", "8080/TCP (http-alt)", "0/ICMP", "53413/UDP".
  std::string Describe(PortKey k) const;
  size_t size() const { return names_.size(); }

 private:
  std::unordered_map<PortKey, std::string> names_;
};

inline constexpr const char* kDefaultServicesPath = "/usr/share/wireshark/services";

}  // namespace teiten
