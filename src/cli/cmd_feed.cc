// `teiten feed`: the findings of a period as an alert feed (SPEC O5, issue 13 point 3).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "analysis/findings.h"
#include "analysis/mustan.h"
#include "cli/cli_common.h"
#include "feeds/feed.h"

namespace teiten {
namespace {

int RunFeed(Common c, const std::string& period_text, const std::string& out_path) {
  // Only CSV and JSON are written so far; the common default "table" means the feed's default, CSV.
  if (c.format == "table") c.format = "csv";
  if (c.format != "csv" && c.format != "json")
    return Fail(InvalidArgument(
        fmt::format("feed format '{}': only csv and json are built so far", c.format)));
  auto q = PrepareQuery(c, period_text);
  if (!q.ok()) return Fail(q.status());
  auto findings = FindNotable(*q->store, q->period, q->sel);
  if (!findings.ok()) return Fail(findings.status());
  std::vector<FeedItem> items = FeedItemsFromFindings(*findings);
  // The MUSTAN watch and risk items of the 10 days ending on the period's last day with data.
  if (auto last = LastDayWithData(*q->store); last && *last >= q->period.first_day) {
    auto view =
        BuildMustan(*q->store, *PortChannel(), std::min(*last, q->period.end_day - 1), q->sel);
    if (!view.ok()) return Fail(view.status());
    for (FeedItem& it : FeedItemsFromMustan(*view)) items.push_back(std::move(it));
  }
  const std::string csv = c.format == "json" ? WriteFeedJson(items) : WriteFeedCsv(items);
  if (out_path.empty() || out_path == "-") {
    std::fwrite(csv.data(), 1, csv.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : Fail(Internal("writing the feed to stdout failed"));
  }
  // Written beside the target and renamed over it, so a reader never sees half a feed.
  const std::string tmp = out_path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return Fail(InvalidArgument(fmt::format("{}: cannot open for writing", tmp)));
  const bool wrote = std::fwrite(csv.data(), 1, csv.size(), f) == csv.size();
  if (std::fclose(f) != 0 || !wrote || std::rename(tmp.c_str(), out_path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Fail(Internal(fmt::format("{}: writing the feed failed", out_path)));
  }
  return 0;
}

}  // namespace

void AddFeedCommands(Commands& cmds) {
  Common& c = cmds.common();
  struct Args {
    std::string period, out;
  };
  auto a = std::make_shared<Args>();
  auto* feed = cmds.Add(
      "feed",
      "the findings and MUSTAN watch/risk items of a period as an alert feed (--format csv|json)",
      true);
  feed->add_option("--period", a->period, "2018Q3, 2018-08, 2018-08-12 or 2018-08-01..2018-08-15")
      ->required();
  feed->add_option("-o,--output", a->out, "file to write (default: stdout)");
  cmds.OnParsed(feed, [&c, a] { return RunFeed(c, a->period, a->out); });
}

}  // namespace teiten
