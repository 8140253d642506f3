// `teiten notify`: notification lists for network owners (SPEC O6, issue 13 point 4;
// feeds/notify.h).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli_common.h"
#include "common/files.h"
#include "common/time_zone.h"
#include "feeds/deliver.h"
#include "feeds/notify.h"

namespace teiten {
namespace {

struct NotifyArgs {
  std::string period, state, out, out_dir, recipients, prefix_file, research;
  std::vector<std::string> asns, countries, prefixes;
  size_t max_ports = 20;
};

// The one-off scope of --asn, --country, --prefix and --prefixes.
Result<NotifyScope> ScopeOfArgs(const NotifyArgs& a) {
  NotifyScope s;
  for (const std::string& t : a.asns) {
    auto asn = ParseAsn(t);
    if (!asn.ok()) return InvalidArgument("--asn: " + asn.status().message());
    s.asns.push_back(*asn);
  }
  for (const std::string& t : a.countries) {
    auto c = ParseCountry(t);
    if (!c.ok()) return InvalidArgument("--country: " + c.status().message());
    s.countries.push_back(*c);
  }
  for (const std::string& t : a.prefixes) {
    auto p = ParseStrictPrefix(t);
    if (!p.ok()) return InvalidArgument("--prefix: " + p.status().message());
    s.prefixes.push_back(*p);
  }
  if (!a.prefix_file.empty()) {
    ASSIGN_OR_RETURN(std::string text, ReadWholeFile(a.prefix_file));
    ASSIGN_OR_RETURN(std::vector<Prefix> more, ParsePrefixList(text, a.prefix_file));
    if (more.empty()) return InvalidArgument(a.prefix_file + ": no prefixes in the file");
    s.prefixes.insert(s.prefixes.end(), more.begin(), more.end());
  }
  return s;
}

// The names of the lists' networks, from the config's ASN database when it has one.
AsnNames NamesOf(const Config& cfg, const std::vector<NotifyList>& lists) {
  std::vector<std::pair<IpAddr, uint32_t>> sources;
  std::set<uint32_t> seen;
  for (const NotifyList& l : lists) {
    for (const NotifyRow& r : l.rows) {
      if (r.geo.asn != 0 && seen.insert(r.geo.asn).second) sources.emplace_back(r.src, r.geo.asn);
    }
  }
  return NameSourceNetworks(cfg, sources);
}

int RunNotify(Common c, NotifyArgs a) {
  if (c.format == "table") c.format = "csv";
  if (c.format != "csv" && c.format != "json") {
    return Fail(InvalidArgument(fmt::format("notify format '{}': expected csv or json", c.format)));
  }
  const std::string format = c.format;
  c.format = "table";
  const bool one_off =
      !a.asns.empty() || !a.countries.empty() || !a.prefixes.empty() || !a.prefix_file.empty();
  if (one_off == !a.recipients.empty()) {
    return Fail(InvalidArgument(
        "notify: give either the networks of one list (--asn, --country, --prefix, --prefixes) "
        "or --recipients FILE with --out-dir DIR"));
  }
  if (!a.recipients.empty() && a.out_dir.empty()) {
    return Fail(
        InvalidArgument("notify: --recipients writes a file per recipient: give --out-dir"));
  }
  if (a.recipients.empty() && !a.out_dir.empty()) {
    return Fail(InvalidArgument("notify: --out-dir goes with --recipients (one list: -o FILE)"));
  }
  std::vector<NotifyScope> scopes;
  if (one_off) {
    auto s = ScopeOfArgs(a);
    if (!s.ok()) return Fail(s.status());
    scopes.push_back(std::move(*s));
  } else {
    auto r = LoadRecipients(a.recipients);
    if (!r.ok()) return Fail(r.status());
    scopes = std::move(*r);
  }
  auto research = LoadResearch(a.research);
  if (!research.ok()) return Fail(research.status());
  auto run = PrepareRun(c, a.period, a.state);
  if (!run.ok()) return Fail(run.status());
  if (run->nothing_new) {
    std::fprintf(stderr, "teiten notify: nothing new since %s (%s); nothing written\n",
                 TimeZone::DayString(run->last_day).c_str(), a.state.c_str());
    return 0;
  }
  const QueryContext& q = run->q;
  WarnIfRetained(*q.store, q.period);
  // 64 scopes a pass (a bit each); more recipients take more passes.
  std::vector<NotifyList> lists;
  for (size_t from = 0; from < scopes.size(); from += 64) {
    std::vector<NotifyScope> part(
        scopes.begin() + static_cast<ptrdiff_t>(from),
        scopes.begin() + static_cast<ptrdiff_t>(std::min(scopes.size(), from + 64)));
    auto got = BuildNotifyLists(*q.store, q.period, q.sel, part, &*research);
    if (!got.ok()) return Fail(got.status());
    for (NotifyList& l : *got) lists.push_back(std::move(l));
  }
  const AsnNames names = NamesOf(q.cfg, lists);
  const std::string label = RunLabel(q.period);
  auto body_of = [&](const NotifyList& l) {
    return format == "csv"
               ? WriteNotifyCsv(l, &names, a.max_ports)
               : WriteNotifyJson(l, &names, TimeZone::DayString(q.period.first_day),
                                 TimeZone::DayString(q.period.end_day - 1), a.max_ports);
  };
  if (one_off) {
    const std::string body = body_of(lists[0]);
    if (Status st = WriteOutput(a.out, body); !st.ok()) return Fail(st);
    std::fprintf(stderr, "teiten notify: %s, %s: %zu sources, %s packets\n",
                 lists[0].scope.Describe().c_str(), label.c_str(), lists[0].rows.size(),
                 Thousands(lists[0].packets).c_str());
  } else {
    std::error_code ec;
    std::filesystem::create_directories(a.out_dir, ec);
    if (ec) {
      return Fail(InvalidArgument(fmt::format("{}: cannot create ({})", a.out_dir, ec.message())));
    }
    for (const NotifyList& l : lists) {
      if (l.rows.empty()) {
        std::fprintf(stderr, "teiten notify: %s: no sources in %s; no file written\n",
                     l.scope.name.c_str(), label.c_str());
        continue;
      }
      const std::string path =
          (std::filesystem::path(a.out_dir) / fmt::format("{}-{}.{}", l.scope.name, label, format))
              .string();
      if (Status st = WriteFileAtomically(path, body_of(l)); !st.ok()) return Fail(st);
      std::fprintf(stderr, "teiten notify: %s: %zu sources, %s packets -> %s\n",
                   l.scope.name.c_str(), l.rows.size(), Thousands(l.packets).c_str(), path.c_str());
    }
  }
  // Only a run that wrote every file moves the state on.
  if (!a.state.empty()) {
    if (Status st = WriteFeedState(a.state, q.period.end_day - 1); !st.ok()) return Fail(st);
  }
  return 0;
}

}  // namespace

void AddNotifyCommands(Commands& cmds) {
  Common& c = cmds.common();
  auto a = std::make_shared<NotifyArgs>();
  auto* n = cmds.Add("notify",
                     "notification lists for network owners: one CSV row per source of their "
                     "networks seen in a period (Shadowserver-style; --format csv|json)",
                     true);
  n->add_option("--period", a->period, "2018Q3, 2018-08, 2018-08-12 or 2018-08-01..2018-08-15");
  n->add_option("--since-last-run", a->state,
                "state file: cover the days after the last successful run's (first run: the last "
                "day with data); advanced only when every file was written");
  n->add_option("--asn", a->asns, "the sources of this AS (64500 or AS64500; repeatable)");
  n->add_option("--country", a->countries, "the sources of this country (JP; repeatable)");
  n->add_option("--prefix", a->prefixes, "the sources in this prefix (192.0.2.0/24; repeatable)");
  n->add_option("--prefixes", a->prefix_file,
                "the sources in the prefixes of this file (one a line)");
  n->add_option("-o,--output", a->out, "file for the one list (default: stdout)");
  n->add_option("--recipients", a->recipients,
                "TOML file of recipients ([[recipient]] name, asn, country, prefixes, "
                "prefix_file): a list per recipient, see docs/NOTIFY.md");
  n->add_option("--out-dir", a->out_dir, "with --recipients: where NAME-PERIOD.csv files go");
  n->add_option("--max-ports", a->max_ports, "ports listed per source, busiest first (default 20)")
      ->check(CLI::Range(1, 65536));
  n->add_option("--research", a->research,
                "research scanners' networks for the tags (default: the shipped list)");
  cmds.OnParsed(n, [&c, a] { return RunNotify(c, *a); });
}

}  // namespace teiten
