// Realistic defaults for 2018. The numbers are ours, chosen so that a trace ranks like the
// TSUBAME 2018 Q3 report (seed 003): ports 23, 445, 80, 8080, 22; regions China, Russia, the US,
// the Netherlands, Ukraine; with the tool populations a 2018 darknet shows (Mirai and its forks
// as the largest population, Windows hosts on 445 retransmitting, research scanners few but busy).
#include "simulate/generator.h"

namespace teiten::simulate {

std::map<std::string, double> DefaultCountryWeights2018() {
  return {{"CN", 0.24},  {"RU", 0.11},  {"US", 0.10},  {"NL", 0.06},  {"UA", 0.05},  {"BR", 0.045},
          {"KR", 0.04},  {"TW", 0.035}, {"VN", 0.03},  {"IN", 0.03},  {"DE", 0.03},  {"FR", 0.025},
          {"GB", 0.025}, {"TR", 0.02},  {"IR", 0.02},  {"JP", 0.02},  {"ID", 0.02},  {"EG", 0.015},
          {"IT", 0.015}, {"AR", 0.015}, {"MX", 0.015}, {"TH", 0.015}, {"HK", 0.015}, {"CA", 0.01},
          {"RO", 0.01},  {"PL", 0.01},  {"SG", 0.01}};
}

std::vector<ProfileSpec> DefaultProfiles2018() {
  std::vector<ProfileSpec> p;
  auto add = [&](std::string name, Tool tool, double packets, double sources,
                 std::vector<PortWeight> ports) -> ProfileSpec& {
    ProfileSpec s;
    s.name = std::move(name);
    s.tool = tool;
    s.packet_share = packets;
    s.source_share = sources;
    s.ports = std::move(ports);
    p.push_back(std::move(s));
    return p.back();
  };
  // Mirai proper scans 23 nine times in ten and 2323 otherwise (scanner.c).
  add("mirai-telnet", Tool::kMirai, 0.23, 0.40, {{23, 0.9}, {2323, 0.1}});
  // Forks: Satori/Okiru (37215 Huawei HG532, 52869 Realtek SDK), ADB miners (5555), the TR-069
  // variant (7547), camera and router web ports (8080, 81).
  add("mirai-forks", Tool::kMirai, 0.06, 0.12,
      {{37215, 0.25}, {52869, 0.15}, {5555, 0.2}, {7547, 0.1}, {8080, 0.2}, {81, 0.1}});
  // Infected Windows servers spreading over SMB; 003 found 80% of them Windows 2003.
  auto& smb = add("windows-smb", Tool::kWindows, 0.13, 0.10, {{445, 1.0}});
  smb.retransmit = 0.9;
  smb.variant_share = 0.2;
  auto& sql = add("windows-sql-rdp", Tool::kWindows, 0.03, 0.03, {{1433, 0.6}, {3389, 0.4}});
  sql.retransmit = 0.9;
  sql.variant_share = 0.5;
  // Compromised Linux servers brute-forcing SSH and probing web ports with connect().
  auto& lin = add("linux-scanners", Tool::kLinux, 0.07, 0.07,
                  {{22, 0.35}, {80, 0.33}, {8080, 0.25}, {2222, 0.07}});
  lin.retransmit = 0.8;
  lin.variant_share = 0.5;
  auto& zmap = add("zmap", Tool::kZmap, 0.08, 0.01,
                   {{80, 0.2},
                    {443, 0.12},
                    {8080, 0.08},
                    {22, 0.07},
                    {23, 0.05},
                    {3389, 0.04},
                    {445, 0.04},
                    {21, 0.04},
                    {25, 0.03},
                    {7547, 0.03},
                    {5900, 0.03},
                    {8443, 0.03},
                    {1433, 0.02},
                    {3306, 0.02},
                    {0, 0.20}});
  zmap.variant_share = 0.3;
  auto& masscan = add("masscan", Tool::kMasscan, 0.09, 0.01,
                      {{3389, 0.12},
                       {80, 0.1},
                       {8080, 0.08},
                       {22, 0.06},
                       {445, 0.05},
                       {1433, 0.05},
                       {3306, 0.04},
                       {6379, 0.04},
                       {5900, 0.04},
                       {8088, 0.03},
                       {9200, 0.03},
                       {2375, 0.03},
                       {0, 0.33}});
  masscan.variant_share = 0.5;
  // Nmap's most common ports and a tail of others.
  add("nmap", Tool::kNmap, 0.025, 0.005,
      {{80, 0.08},   {23, 0.06},   {443, 0.06},  {21, 0.05},   {22, 0.06},  {25, 0.04},
       {3389, 0.05}, {110, 0.03},  {445, 0.04},  {139, 0.03},  {143, 0.02}, {53, 0.02},
       {135, 0.03},  {3306, 0.03}, {8080, 0.05}, {1723, 0.02}, {111, 0.02}, {995, 0.02},
       {993, 0.02},  {5900, 0.03}, {0, 0.24}});
  add("sipvicious", Tool::kSipVicious, 0.02, 0.005, {{5060, 1.0}});
  add("netis", Tool::kNetis, 0.01, 0.01, {{53413, 1.0}});
  // Windows Messenger spam to 1026–1028/UDP: a quarter of a 2007 darknet, a residue by 2018.
  add("messenger", Tool::kMessenger, 0.002, 0.002, {{1026, 0.45}, {1027, 0.35}, {1028, 0.2}});
  auto& ping = add("ping", Tool::kPing, 0.02, 0.05, {});
  ping.variant_share = 0.4;
  add("backscatter", Tool::kBackscatter, 0.04, 0.005,
      {{80, 0.45},
       {443, 0.25},
       {22, 0.05},
       {25, 0.05},
       {53, 0.08},
       {3074, 0.04},
       {27015, 0.04},
       {25565, 0.04}});
  auto& v6 = add("ipv6-linux", Tool::kLinux, 0.003, 0.003, {{22, 0.4}, {80, 0.3}, {443, 0.3}});
  v6.family = 6;
  v6.retransmit = 0.8;
  v6.variant_share = 0.5;
  auto& v6ping = add("ipv6-ping", Tool::kPing, 0.002, 0.002, {});
  v6ping.family = 6;
  return p;
}

GeneratorSpec GeneratorSpec::Default2018() {
  GeneratorSpec s;
  s.country_weights = DefaultCountryWeights2018();
  s.profiles = DefaultProfiles2018();
  return s;
}

}  // namespace teiten::simulate
