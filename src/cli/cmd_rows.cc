// The row analyses over stored observations (issue 12): scans, dos, payloads and os.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "analysis/dos.h"
#include "analysis/os_guesses.h"
#include "analysis/payloads.h"
#include "analysis/query.h"
#include "analysis/scans.h"
#include "analysis/sensor_health.h"
#include "analysis/tools.h"
#include "cli/cli_common.h"
#include "cli/table.h"
#include "daemon/collector.h"
#include "daemon/sensor_daemon.h"
#include "enrich/names.h"
#include "ingest/ingest.h"
#include "report/report.h"
#include "sensor/config.h"
#include "simulate/simulate_command.h"
#include "store/store.h"
#include "store/verify.h"
#include "web/access.h"
#include "web/server.h"

namespace teiten {
namespace {

int RunScans(const Common& c, const std::string& period_text, const std::string& port_text,
             size_t n, uint64_t min_addresses, int64_t timeout_s) {
  auto port = OptionalPort(port_text);
  if (!port.ok()) return Fail(port.status());
  if (timeout_s <= 0) return Fail(InvalidArgument("--timeout: expected seconds > 0"));
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  WarnIfRetained(store, q->period);
  bool from_data = false;
  auto res = FindScans(store, q->period, q->sel,
                       {.port = *port, .min_addresses = min_addresses, .timeout_s = timeout_s},
                       &from_data);
  if (!res.ok()) return Fail(res.status());
  Lang lang = ParseLang(c.lang);
  if (q->format == OutputFormat::kTable) {
    fmt::print(
        "Period {} — scans: one source probing ≥ {} distinct of {} monitored addresses{} on one "
        "port, gaps ≤ {} s\n",
        q->period.Label(), Thousands(res->threshold), Thousands(res->monitored),
        from_data ? " (seen; no sensor names its prefix)" : "", res->timeout_s);
  }
  if (!*port) {
    Table t({"port", "scans", "scanners", "probes", "mean coverage", "max coverage", "tools"});
    for (size_t i = 0; i < res->ports.size() && i < n; ++i) {
      const PortScans& p = res->ports[i];
      std::string tools;
      for (const auto& [tool, k] : p.tools) {
        tools += fmt::format("{}{} ×{}", tools.empty() ? "" : ", ", ProbeToolName(tool), k);
      }
      t.AddRow({Text(KeyName(store, nullptr, Dimension::kPort, p.port, lang)), Count(p.scans),
                Count(p.scanners), Count(p.packets), Percent(p.mean_coverage),
                Percent(p.max_coverage), Text(tools)});
    }
    t.Write(std::cout, q->format);
    return 0;
  }
  if (q->format == OutputFormat::kTable) {
    uint64_t scanners = res->ports.empty() ? 0 : res->ports[0].scanners;
    fmt::print("{}: {} scans by {} sources, {} of {} probes inside scans\n",
               KeyName(store, nullptr, Dimension::kPort, **port, lang),
               Thousands(res->scans.size()), Thousands(scanners),
               Thousands(res->ports.empty() ? 0 : res->ports[0].packets), Thousands(res->probes));
  }
  Table t({"rank", "source", "region", "start", "seconds", "probes", "addresses", "coverage",
           "rate (pps)", "tool"});
  for (size_t i = 0; i < res->scans.size() && i < n; ++i) {
    const Scan& s = res->scans[i];
    t.AddRow({Count(i + 1), Text(s.src.ToString()), Text(CountryCodeString(s.geo.country)),
              Text(LocalTime(store, s.start_us)),
              Fixed(static_cast<double>(s.end_us - s.start_us) / 1e6, 1), Count(s.packets),
              Count(s.addresses), Percent(s.coverage), Fixed(s.rate_pps, 2),
              Text(ProbeToolName(s.tool))});
  }
  t.Write(std::cout, q->format);
  return 0;
}

int RunDos(const Common& c, const std::string& period_text, size_t n) {
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  WarnIfRetained(store, q->period);
  auto res = FindDosAttacks(store, q->period, q->sel);
  if (!res.ok()) return Fail(res.status());
  if (q->format == OutputFormat::kTable) {
    std::set<IpAddr> victims;
    for (const DosAttack& a : res->attacks) victims.insert(a.victim);
    fmt::print(
        "Period {} — backscatter: {} packets from {} victims ({} ICMP errors quote too little to "
        "name one); {} attacks on {} victims (≥ 25 packets, ≥ 60 s, ≥ 30 in a minute)\n",
        q->period.Label(), Thousands(res->backscatter), Thousands(res->victims),
        Thousands(res->unattributed), Thousands(res->attacks.size()), Thousands(victims.size()));
  }
  Table t({"rank", "victim", "region", "start", "end", "minutes", "packets", "peak/min",
           "attacked ports", "attacker ports", "spoofed addrs", "backscatter"});
  for (size_t i = 0; i < res->attacks.size() && i < n; ++i) {
    const DosAttack& a = res->attacks[i];
    std::string ports;
    for (size_t k = 0; k < a.attacked_ports.size() && k < 3; ++k) {
      ports += fmt::format("{}{}", k ? ", " : "", PortKeyToString(a.attacked_ports[k].first));
    }
    if (a.attacked_ports.size() > 3) ports += fmt::format(" +{}", a.attacked_ports.size() - 3);
    std::string kinds;
    for (size_t k = 1; k < std::size(a.by_kind); ++k) {
      if (!a.by_kind[k]) continue;
      kinds += fmt::format("{}{} ×{}", kinds.empty() ? "" : ", ",
                           BackscatterKindName(static_cast<BackscatterKind>(k)),
                           Thousands(a.by_kind[k]));
    }
    t.AddRow({Count(i + 1), Text(a.victim.ToString()), Text(CountryCodeString(a.geo.country)),
              Text(LocalTime(store, a.start_us)), Text(LocalTime(store, a.end_us)),
              Fixed(static_cast<double>(a.end_us - a.start_us) / 60e6, 1), Count(a.packets),
              Count(a.peak_per_minute), Text(ports.empty() ? "-" : ports), Count(a.attacker_ports),
              Count(a.spoofed), Text(kinds)});
  }
  t.Write(std::cout, q->format);
  return 0;
}

int RunPayloads(const Common& c, const std::string& period_text, const std::string& port_text,
                bool templates, size_t n) {
  PortKey port;
  if (!ParsePortKey(port_text, &port)) {
    return Fail(InvalidArgument(fmt::format("port '{}': expected e.g. 5060/udp", port_text)));
  }
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  WarnIfRetained(store, q->period);
  auto res = GroupPayloads(store, q->period, q->sel, port,
                           templates ? PayloadGrouping::kTemplate : PayloadGrouping::kIdentical);
  if (!res.ok()) return Fail(res.status());
  Lang lang = ParseLang(c.lang);
  if (q->format == OutputFormat::kTable) {
    fmt::print(
        "Period {} — {}: {} packets, {} with a payload in {} {} ({} longer than the {} bytes "
        "kept: grouped by what was kept)\n",
        q->period.Label(), KeyName(store, nullptr, Dimension::kPort, port, lang),
        Thousands(res->packets), Thousands(res->with_payload), Thousands(res->groups.size()),
        templates ? (res->groups.size() == 1 ? "template" : "templates")
                  : (res->groups.size() == 1 ? "group of identical payloads"
                                             : "groups of identical payloads"),
        Thousands(res->truncated), kPayloadPrefix);
  }
  Table t({"rank", "digest", "bytes", "variants", "packets", "sources", "addresses", "first",
           "last", "strings"});
  for (size_t i = 0; i < res->groups.size() && i < n; ++i) {
    const PayloadGroup& g = res->groups[i];
    std::string strings = fmt::format("{}", fmt::join(g.strings, " | "));
    if (q->format == OutputFormat::kTable && strings.size() > 100) {
      strings = strings.substr(0, 97) + "...";
    }
    t.AddRow({Count(i + 1), Text(fmt::format("{:016x}", g.digest)), Count(g.length),
              Count(g.variants), Count(g.packets), Count(g.sources), Count(g.destinations),
              Text(LocalTime(store, g.first_us)), Text(LocalTime(store, g.last_us)),
              Text(strings)});
  }
  t.Write(std::cout, q->format);
  return 0;
}

int RunOs(const Common& c, const std::string& period_text, const std::string& port_text,
          const std::string& p0f_path, size_t n) {
  auto port = OptionalPort(port_text);
  if (!port.ok()) return Fail(port.status());
  auto db = P0fDatabase::Load(p0f_path);
  if (!db.ok()) return Fail(db.status());
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  WarnIfRetained(store, q->period);
  auto res = GuessOs(store, q->period, q->sel, *db, *port);
  if (!res.ok()) return Fail(res.status());
  Lang lang = ParseLang(c.lang);
  const bool table = q->format == OutputFormat::kTable;
  if (table) {
    fmt::print(
        "Period {} — {}: {} SYNs from {} sources ({} without a readable fingerprint); p0f "
        "signatures from {} ({} SYN signatures)\n",
        q->period.Label(),
        *port ? KeyName(store, nullptr, Dimension::kPort, **port, lang) : "every port",
        Thousands(res->syns), Thousands(res->sources.size()), Thousands(res->unreadable), p0f_path,
        Thousands(db->syn_signatures().size()));
    Table t({"os", "kind", "sources", "source share", "SYNs", "SYN share"});
    for (const OsShare& s : res->shares) {
      t.AddRow({Text(s.os), Text(s.application ? "tool" : (s.os == "unknown" ? "-" : "os")),
                Count(s.sources), Percent(s.source_share), Count(s.packets),
                Percent(s.packet_share)});
    }
    t.Write(std::cout, q->format);
    fmt::print("\n");
    if (!*port) {
      // Every port: each port's sources by guess, the three largest shares.
      Table pt({"port", "sources", "SYNs", "guesses (share of the port's sources)"});
      for (size_t i = 0; i < res->ports.size() && i < n; ++i) {
        const PortOs& p = res->ports[i];
        std::string guesses;
        for (size_t k = 0; k < p.shares.size() && k < 3; ++k) {
          guesses += fmt::format("{}{} {}", k ? ", " : "", p.shares[k].os,
                                 Percent(p.shares[k].source_share).text);
        }
        pt.AddRow({Text(KeyName(store, nullptr, Dimension::kPort, p.port, lang)), Count(p.sources),
                   Count(p.packets), Text(guesses)});
      }
      pt.Write(std::cout, q->format);
      fmt::print("\n");
    }
  }
  Table t({"rank", "source", "region", "os", "match", "hops", "SYNs", "agreeing"});
  for (size_t i = 0; i < res->sources.size() && i < n; ++i) {
    const SourceOs& s = res->sources[i];
    t.AddRow({Count(i + 1), Text(s.src.ToString()), Text(CountryCodeString(s.geo.country)),
              Text(s.os), Text(s.os == "unknown" ? "-" : (s.fuzzy ? "fuzzy" : "exact")),
              Count(static_cast<uint64_t>(s.distance)), Count(s.syns), Count(s.agreeing)});
  }
  t.Write(std::cout, q->format);
  return 0;
}

}  // namespace

void AddRowCommands(Commands& cmds) {
  Common& c = cmds.common();
  struct Args {
    std::string period, port_text;
    size_t n = 10;
    uint64_t min_addresses = 0;
    int64_t scan_timeout = kScanTimeoutS;
    bool templates = false;
    std::string p0f_path = "/etc/p0f/p0f.fp";
  };
  auto a = std::make_shared<Args>();
  auto* scans = cmds.Add("scans", "scans (Durumeric et al. 2014): per port, or one port's", true);
  scans->add_option("--period", a->period, "period")->required();
  scans->add_option("--port", a->port_text, "one port, e.g. 23/tcp (default: every port)");
  scans->add_option("--min-addresses", a->min_addresses,
                    "N (default: scaled to the sensors' space)");
  scans->add_option("--timeout", a->scan_timeout, "inactivity timeout, s")->capture_default_str();
  scans->add_option("-n,--limit", a->n, "rows")->capture_default_str();
  cmds.OnParsed(scans, [&c, a] {
    return RunScans(c, a->period, a->port_text, a->n, a->min_addresses, a->scan_timeout);
  });

  auto* dos = cmds.Add("dos", "DoS attacks inferred from backscatter (Moore et al. 2006)", true);
  dos->add_option("--period", a->period, "period")->required();
  dos->add_option("-n,--limit", a->n, "rows")->capture_default_str();
  cmds.OnParsed(dos, [&c, a] { return RunDos(c, a->period, a->n); });

  auto* payloads = cmds.Add("payloads", "one port's identical payloads, grouped", true);
  payloads->add_option("--period", a->period, "period")->required();
  payloads->add_option("--port", a->port_text, "the port, e.g. 5060/udp")->required();
  payloads->add_flag("--templates", a->templates,
                     "group by template (tokens with digits masked), not identical payload");
  payloads->add_option("-n,--limit", a->n, "rows")->capture_default_str();
  cmds.OnParsed(payloads,
                [&c, a] { return RunPayloads(c, a->period, a->port_text, a->templates, a->n); });

  auto* os = cmds.Add("os", "OS guesses for SYN sources from p0f's signatures", true);
  os->add_option("--period", a->period, "period")->required();
  os->add_option("--port", a->port_text, "one port, e.g. 23/tcp (default: every port)");
  os->add_option("--p0f", a->p0f_path, "p0f v3 signature file")->capture_default_str();
  os->add_option("-n,--limit", a->n, "sources listed")->capture_default_str();
  cmds.OnParsed(os, [&c, a] { return RunOs(c, a->period, a->port_text, a->p0f_path, a->n); });
}

}  // namespace teiten
