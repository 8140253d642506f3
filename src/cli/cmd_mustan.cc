// `teiten mustan`: the MUSTAN views (analysis/mustan.h) of destination ports for the 10 days
// ending on --end (default: the store's last day), or one port's view with --port.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "analysis/mustan.h"
#include "cli/cli_common.h"
#include "cli/table.h"

namespace teiten {
namespace {

// One row per item: its name, the 10 daily counts, the window's total, arrow and flags.
void AddItemRow(Table& t, const std::string& list, const MustanItem& it, bool ja) {
  std::vector<TableCell> row{Text(list), Text(it.name)};
  for (uint64_t p : it.packets) row.push_back(Count(p));
  row.push_back(Count(it.total_packets));
  row.push_back(Text(TrendArrow(it.trend)));
  row.push_back(Fixed(it.z, 1));
  row.push_back(Fixed(it.early_sources, 1));
  row.push_back(Fixed(it.late_sources, 1));
  std::string flags;
  if (it.is_new) flags += ja ? "新規 " : "new ";
  if (it.watch) flags += ja ? "要注意 " : "watch ";
  if (it.risk) flags += ja ? "リスク" : "risk";
  row.push_back(Text(flags));
  t.AddRow(std::move(row));
}

int RunMustan(const Common& c, const std::string& end_text, const std::string& port_text) {
  auto q = PrepareQuery(c, "1970-01-01");  // the store and sensors; the window is set below
  if (!q.ok()) return Fail(q.status());
  const Store& store = *q->store;
  int32_t last_day = 0;
  if (end_text.empty()) {
    auto d = LastDayWithData(store);
    if (!d) return Fail(NotFound("the store holds no day yet: nothing to rank"));
    last_day = *d;
  } else {
    auto p = ParsePeriod(end_text);
    if (!p.ok() || p->days() != 1)
      return Fail(InvalidArgument(fmt::format("--end '{}': expected a day, YYYY-MM-DD", end_text)));
    last_day = p->first_day;
  }
  auto ch = PortChannel();
  bool ja = ParseLang(c.lang) == Lang::kJa;
  auto view = BuildMustan(store, *ch, last_day, q->sel);
  if (!view.ok()) return Fail(view.status());
  std::vector<std::string> header{ja ? "一覧" : "list", ja ? "宛先ポート番号" : "port"};
  for (const auto& l : view->day_labels) header.push_back(l.substr(5));
  for (const char* h :
       {ja ? "合計" : "total", ja ? "傾向" : "trend", "z", ja ? "送信元(前7日)" : "sources first 7",
        ja ? "送信元(後3日)" : "sources last 3", ja ? "注記" : "flags"})
    header.push_back(h);
  Table t(header);
  if (!port_text.empty()) {
    auto key = ch->ParseKey(port_text);
    if (!key.ok()) return Fail(key.status());
    auto it = MustanItemView(store, *ch, *key, last_day, q->sel);
    if (!it.ok()) return Fail(it.status());
    AddItemRow(t, ja ? "検索" : "search", *it, ja);
  } else {
    for (const auto& it : view->top) AddItemRow(t, ja ? "上位5" : "top 5", it, ja);
    for (const auto& it : view->watch) AddItemRow(t, ja ? "要注意" : "watch", it, ja);
    for (const auto& it : view->risk) AddItemRow(t, ja ? "リスク" : "risk", it, ja);
  }
  std::string lang = ja ? "ja" : "en";
  if (q->format == OutputFormat::kTable) {
    fmt::print("{} {}..{}\n", ja ? "MUSTAN 宛先ポート" : "MUSTAN destination ports",
               view->day_labels.front(), view->day_labels.back());
  }
  t.Write(std::cout, q->format);
  if (q->format == OutputFormat::kTable) {
    fmt::print("\n{}\n{}\n{}\n", view->rules.TrendRule(lang), view->rules.WatchRule(lang),
               view->rules.RiskRule(lang));
  }
  return 0;
}

}  // namespace

void AddMustanCommands(Commands& cmds) {
  auto* sub = cmds.Add("mustan",
                       "MUSTAN views: top 5 ports over 10 days with trend arrows, watch and risk "
                       "items, or one port's view",
                       /*query=*/true);
  auto end = std::make_shared<std::string>();
  auto port = std::make_shared<std::string>();
  sub->add_option("--end", *end, "last day of the 10 (YYYY-MM-DD; default: the last with data)");
  sub->add_option("--port", *port, "search: one port's view (e.g. 445/tcp)");
  cmds.OnParsed(sub, [&c = cmds.common(), end, port] { return RunMustan(c, *end, *port); });
}

}  // namespace teiten
