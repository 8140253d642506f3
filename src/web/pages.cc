#include "web/pages.h"

#include <fmt/format.h>

#include <climits>

#include "analysis/period.h"
#include "cli/table.h"
#include "store/store.h"

namespace teiten::web {
namespace {

using nlohmann::json;

struct Ctx {
  const PageRequest& req;
  bool ja = false;
  const char* T(const char* en, const char* ja_text) const { return ja ? ja_text : en; }
};

std::string Get(const Params& p, const std::string& k) {
  auto it = p.find(k);
  return it == p.end() ? std::string() : it->second;
}

std::string Query(const Params& p) {
  std::string q;
  for (const auto& [k, v] : p) {
    q += (q.empty() ? "?" : "&") + UrlEncode(k) + "=" + UrlEncode(v);
  }
  return q;
}

// A URL on this site with `p`, plus the page's language (when Japanese).
std::string Link(const Ctx& c, const std::string& path, Params p) {
  if (c.ja) p.emplace("lang", "ja");
  return path + Query(p);
}

std::string Num(const json& v) {
  if (v.is_number_unsigned()) return Thousands(v.get<uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_float()) return fmt::format("{:.2f}", v.get<double>());
  if (v.is_string()) return Escape(v.get<std::string>());
  return "-";
}

std::string Pct(const json& v) {
  return v.is_number() ? fmt::format("{:.2f}%", v.get<double>() * 100) : "-";
}

std::string Str(const json& v) {
  return v.is_string() ? Escape(v.get<std::string>()) : std::string("-");
}

std::string PrevRank(const Ctx& c, const json& v) {
  if (v.is_number()) return std::to_string(v.get<int>());
  std::string s = v.is_string() ? v.get<std::string>() : "";
  if (s == "out") return c.T("out of top 10", "トップ10圏外");
  if (s == "new") return c.T("new", "新規");
  if (s == "no-data") return c.T("no data", "データなし");
  return Escape(s);
}

std::string Layout(const Ctx& c, const std::string& title, const std::string& body) {
  const PageRequest& r = c.req;
  Params other = r.params;
  other.erase("lang");
  if (!c.ja) other.emplace("lang", "ja");
  std::string lang_link = r.path + Query(other);
  std::string h = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>{} — teiten</title>"
      "<link rel=\"stylesheet\" href=\"/static/uplot.css\">"
      "<link rel=\"stylesheet\" href=\"/static/teiten.css\">"
      "<script src=\"/static/uplot.js\" defer></script>"
      "<script src=\"/static/teiten.js\" defer></script></head><body>"
      "<header><a class=\"brand\" href=\"{}\">teiten 定点</a><nav>"
      "<a href=\"{}\">{}</a><a href=\"{}\">{}</a>",
      c.ja ? "ja" : "en", Escape(title), Escape(Link(c, "/", {})), Escape(Link(c, "/", {})),
      c.T("Overview", "概況"), Escape(Link(c, "/sensors", {})), c.T("Sensors", "センサー"));
  h += fmt::format("<a href=\"{}\">MUSTAN</a><a href=\"{}\">{}</a>", Escape(Link(c, "/mustan", {})),
                   Escape(Link(c, "/findings", {})), c.T("Findings", "注目事象"));
  h += fmt::format(
      "<form class=\"search\" method=\"get\" action=\"/port\">"
      "<input name=\"port\" placeholder=\"{}\" aria-label=\"{}\">{}</form>",
      c.T("port, e.g. 23/tcp", "ポート 例 23/tcp"), c.T("port", "ポート"),
      c.ja ? "<input type=\"hidden\" name=\"lang\" value=\"ja\">" : "");
  h += fmt::format("<a class=\"lang\" id=\"lang-switch\" href=\"{}\">{}</a>", Escape(lang_link),
                   c.ja ? "English" : "日本語");
  if (r.user) {
    h += fmt::format(
        "<span class=\"user\">{}</span><form method=\"post\" action=\"/logout\" "
        "class=\"logout\"><button type=\"submit\">{}</button></form>",
        Escape(*r.user), c.T("Log out", "ログアウト"));
  } else if (r.show_logout) {
    h += fmt::format("<a href=\"/login\">{}</a>", c.T("Log in", "ログイン"));
  }
  h += "</nav></header><main>" + body + "</main></body></html>\n";
  return h;
}

// Asks the API; on an error, the page is the error.
struct Answer {
  ApiReply reply;
  bool ok() const { return reply.status == 200; }
};
Answer Ask(const Ctx& c, const std::string& path, const Params& p) {
  return {HandleApi(*c.req.snap, path, p, c.req.access)};
}

PageReply ErrorPage(const Ctx& c, const ApiReply& r) {
  const json& e = r.body["error"];
  std::string msg = e.value("message", "");
  std::string param = e.value("parameter", "");
  std::string body =
      fmt::format("<h1>{}</h1><p class=\"error\">{}{}</p>", r.status,
                  param.empty() ? "" : "<code>" + Escape(param) + "</code>: ", Escape(msg));
  return {r.status, Layout(c, std::to_string(r.status), body)};
}

// The store's last day with data, or nothing for an empty store.
std::optional<int32_t> LastDay(const Store& store) {
  if (store.manifest().days.empty()) return std::nullopt;
  return store.manifest().days.rbegin()->first;
}

std::string TopTable(const Ctx& c, const json& top, bool ports, const std::string& id) {
  const std::string period = top["period"]["label"];
  std::string h = fmt::format(
      "<table id=\"{}\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
      "<th>{} ({})</th></tr></thead><tbody>",
      id, c.T("rank", "順位"), ports ? c.T("port", "宛先ポート") : c.T("region", "送信元地域"),
      c.T("packets", "パケット数"), c.T("sources", "送信元数"), c.T("share", "割合"),
      c.T("previous rank", "前期の順位"), Str(top["previous"]["label"]));
  for (const json& r : top["rows"]) {
    std::string name = Str(r["name"]);
    if (ports) {
      name = fmt::format("<a href=\"{}\">{}</a>",
                         Escape(Link(c, "/port", {{"port", r["key"]}, {"period", period}})), name);
    } else {
      name = fmt::format("<a href=\"{}\">{}</a>",
                         Escape(Link(c, "/region", {{"cc", r["key"]}, {"period", period}})),
                         Str(r["key"]) + " " + Str(r["name"]));
    }
    h += fmt::format(
        "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>"
        "<td class=\"n\">{}</td><td>{}</td></tr>",
        Num(r["rank"]), name, Num(r["packets"]), Num(r["sources"]), Pct(r["share"]),
        PrevRank(c, r["previous_rank"]));
  }
  return h + "</tbody></table>";
}

std::string Chart(const std::string& id, const std::string& title, const std::string& src,
                  const std::string& measure) {
  return fmt::format(
      "<figure class=\"chart-box\"><figcaption>{}</figcaption><div class=\"chart\" id=\"{}\" "
      "data-src=\"{}\" data-measure=\"{}\"></div></figure>",
      Escape(title), id, Escape(src), measure);
}

std::string FindingsTable(const Ctx& c, const json& fs, const std::string& id) {
  if (fs.empty()) return fmt::format("<p id=\"{}\">{}</p>", id, c.T("None.", "なし。"));
  std::string h = fmt::format(
      "<table id=\"{}\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
      "<th>{}</th><th>{}</th></tr></thead><tbody>",
      id, c.T("rank", "順位"), c.T("kind", "種類"), c.T("subject", "対象"), c.T("from", "開始"),
      c.T("until", "終了"), c.T("per day before → after (packets)", "1日あたり 前 → 後 (パケット)"),
      c.T("ratio", "倍率"));
  for (const json& f : fs) {
    std::string subject;
    if (f["port"].is_object()) {
      subject = fmt::format(
          "<a href=\"{}\">{}</a>",
          Escape(Link(c, "/port",
                      {{"port", f["port"]["key"]}, {"period", Get(c.req.params, "period")}})),
          Str(f["port"]["name"]));
    } else if (f["country"].is_string()) {
      subject =
          fmt::format("<a href=\"{}\">{}</a>",
                      Escape(Link(c, "/region",
                                  {{"cc", f["country"]}, {"period", Get(c.req.params, "period")}})),
                      Str(f["country"]));
    }
    std::string until = f["last_day"].is_null() ? c.T("still going", "継続中") : Str(f["last_day"]);
    // The tools behind it, as the report says them (shares of the port's sources at its start).
    if (f.contains("tools") && !f["tools"].empty()) {
      std::string tools;
      for (const json& t : f["tools"]) {
        tools += (tools.empty() ? "" : ", ") + Str(t["tag"]) + " " + Pct(t["source_share"]);
      }
      subject += " <span class=\"tools\">(" + tools + ")</span>";
    }
    h += fmt::format(
        "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td class=\"n\">{:.1f} → {:.1f}</td><td class=\"n\">{:.2f}</td></tr>",
        Num(f["rank"]), Str(f["kind"]), subject, Str(f["first_day"]), until,
        f["packets_before"].get<double>(), f["packets_after"].get<double>(),
        f["ratio"].get<double>());
  }
  return h + "</tbody></table>";
}

PageReply Overview(const Ctx& c) {
  const Store& store = c.req.snap->store();
  Params base;
  std::string period = Get(c.req.params, "period");
  auto last = LastDay(store);
  if (!last) {
    return {200, Layout(c, c.T("Overview", "概況"),
                        fmt::format("<h1>{}</h1><p>{}</p>", c.T("Overview", "概況"),
                                    c.T("The store holds no data yet.",
                                        "ストアにはまだデータがありません。")))};
  }
  if (period.empty()) period = Store::QuarterLabel(*last);
  std::string days30 = DaysPeriod(*last - 29, *last + 1).Label();
  Params q = {{"period", period}};
  Params q30 = {{"period", days30}};
  if (c.ja) {
    q.emplace("lang", "ja");
    q30.emplace("lang", "ja");
  }
  Answer sum = Ask(c, "/api/v1/summary", q);
  if (!sum.ok()) return ErrorPage(c, sum.reply);
  Answer tp = Ask(c, "/api/v1/top/ports", q), tr = Ask(c, "/api/v1/top/countries", q);
  Answer tp30 = Ask(c, "/api/v1/top/ports", q30), tr30 = Ask(c, "/api/v1/top/countries", q30);
  Answer fs = Ask(c, "/api/v1/findings", {{"period", period}});
  for (const Answer* a : {&tp, &tr, &tp30, &tr30, &fs}) {
    if (!a->ok()) return ErrorPage(c, a->reply);
  }
  const json& s = sum.reply.body;
  std::string h = fmt::format("<h1>{} <span class=\"period\">{}</span></h1>",
                              c.T("Overview", "概況"), Str(s["period"]["label"]));
  h += fmt::format(
      "<dl class=\"totals\" id=\"totals\"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>"
      "<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>",
      c.T("packets", "パケット数"), Num(s["packets"]), c.T("sources", "送信元数"),
      Num(s["sources"]), c.T("sensors", "センサー数"), Num(s["sensors"]),
      c.T("packets per sensor-day", "1センサー1日あたりパケット数"),
      Num(s["packets_per_sensor_day"]), c.T("sources per sensor-day", "1センサー1日あたり送信元数"),
      Num(s["sources_per_sensor_day"]));
  // The daily charts: every sensor's packets, then the top 5 ports'.
  std::string per_sensor = "/api/v1/series?period=" + UrlEncode(period);
  for (const auto& sr : store.manifest().sensors)
    per_sensor += "&sensor_series=" + UrlEncode(sr.id);
  std::string top5 = "/api/v1/series?period=" + UrlEncode(period);
  int k = 0;
  for (const json& r : tp.reply.body["rows"]) {
    if (k++ == 5) break;
    top5 += "&port=" + UrlEncode(r["key"].get<std::string>());
  }
  h += "<section class=\"charts\">";
  h += Chart("chart-sensors", c.T("Daily packets per sensor", "センサー別 日別パケット数"),
             per_sensor, "packets");
  h += Chart("chart-ports", c.T("Daily packets of the top 5 ports", "上位5ポートの日別パケット数"),
             top5, "packets");
  h += "</section>";
  h += fmt::format("<section class=\"pair\"><div><h2>{} — {}</h2>{}</div>",
                   c.T("Top ports", "宛先ポート上位"), Escape(period),
                   TopTable(c, tp.reply.body, true, "top-ports"));
  h += fmt::format("<div><h2>{} — {}</h2>{}</div></section>", c.T("Top regions", "送信元地域上位"),
                   Escape(period), TopTable(c, tr.reply.body, false, "top-regions"));
  h += fmt::format("<section class=\"pair\"><div><h2>{} — {}</h2>{}</div>",
                   c.T("Top ports, last 30 days", "宛先ポート上位 (直近30日)"), Escape(days30),
                   TopTable(c, tp30.reply.body, true, "top-ports-30"));
  h += fmt::format("<div><h2>{} — {}</h2>{}</div></section>",
                   c.T("Top regions, last 30 days", "送信元地域上位 (直近30日)"), Escape(days30),
                   TopTable(c, tr30.reply.body, false, "top-regions-30"));
  h += fmt::format("<section><h2>{}</h2>{}</section>", c.T("Notable phenomena", "注目された現象"),
                   FindingsTable(c, fs.reply.body["findings"], "findings"));
  return {200, Layout(c, c.T("Overview", "概況"), h)};
}

PageReply PortPage(const Ctx& c) {
  const Store& store = c.req.snap->store();
  std::string port = Get(c.req.params, "port");
  std::string period = Get(c.req.params, "period");
  auto last = LastDay(store);
  if (period.empty() && last) period = Store::QuarterLabel(*last);
  Params q = {{"period", period}, {"port", port}};
  Answer series = Ask(c, "/api/v1/series", q);
  if (!series.ok()) return ErrorPage(c, series.reply);
  std::string canonical = series.reply.body["series"][0];
  std::string h = fmt::format(
      "<h1>{} <span class=\"port\">{}</span> <span class=\"period\">{}"
      "</span></h1>",
      c.T("Port", "ポート"), Escape(canonical), Escape(period));
  std::string src = "/api/v1/series?period=" + UrlEncode(period) + "&port=" + UrlEncode(canonical);
  h += "<section class=\"charts\">";
  h += Chart("chart-port-packets", c.T("Daily packets", "日別パケット数"), src, "packets");
  h += Chart("chart-port-sources", c.T("Daily distinct sources", "日別送信元数"), src, "sources");
  h += Chart("chart-port-regions",
             c.T("Daily packets by source region", "送信元地域別 日別パケット数"),
             "/api/v1/series?period=" + UrlEncode(period) + "&by_country=" + UrlEncode(canonical),
             "packets");
  h += "</section>";
  if (!c.req.access.aggregate_only) {
    Answer src_ans = Ask(c, "/api/v1/sources", {{"period", period}, {"port", canonical}});
    if (!src_ans.ok()) return ErrorPage(c, src_ans.reply);
    h += fmt::format(
        "<section><h2>{}</h2><table id=\"top-sources\"><thead><tr><th>{}</th>"
        "<th>{}</th></tr></thead><tbody>",
        c.T("Top sources", "送信元上位"), c.T("source", "送信元"), c.T("packets", "パケット数"));
    for (const json& s : src_ans.reply.body["sources"]) {
      std::string packets = Num(s["packets"]);
      if (s["error"].get<uint64_t>() > 0) packets += " (+≤" + Num(s["error"]) + ")";
      h +=
          fmt::format("<tr><td><a href=\"{}\">{}</a></td><td class=\"n\">{}</td></tr>",
                      Escape(Link(c, "/ip", {{"addr", s["address"]}})), Str(s["address"]), packets);
    }
    h += "</tbody></table></section>";
  }
  Answer fs = Ask(c, "/api/v1/findings", {{"period", period}, {"port", canonical}});
  if (!fs.ok()) return ErrorPage(c, fs.reply);
  h += fmt::format("<section><h2>{}</h2>{}</section>", c.T("Findings", "注目された現象"),
                   FindingsTable(c, fs.reply.body["findings"], "findings"));
  return {200, Layout(c, canonical, h)};
}

// A source region (a country): its daily packets and sources, its ports by day, its rank, and
// the findings about it. Aggregates only: served in public mode too.
PageReply RegionPage(const Ctx& c) {
  const Store& store = c.req.snap->store();
  std::string cc = Get(c.req.params, "cc");
  std::string period = Get(c.req.params, "period");
  auto last = LastDay(store);
  if (period.empty() && last) period = Store::QuarterLabel(*last);
  Params q = {{"period", period}, {"country", cc}};
  if (c.ja) q.emplace("lang", "ja");
  Answer series = Ask(c, "/api/v1/series", q);
  if (!series.ok()) return ErrorPage(c, series.reply);
  const std::string code = series.reply.body["series"][0];
  Answer top = Ask(c, "/api/v1/top/countries",
                   c.ja ? Params{{"period", period}, {"n", "300"}, {"lang", "ja"}}
                        : Params{{"period", period}, {"n", "300"}});
  if (!top.ok()) return ErrorPage(c, top.reply);
  const json* row = nullptr;
  for (const json& r : top.reply.body["rows"]) {
    if (r["key"] == code) row = &r;
  }
  const std::string name = row ? Str((*row)["name"]) : Escape(code);
  std::string h = fmt::format(
      "<h1>{} <span class=\"region\">{} ({})</span> <span class=\"period\">{}</span></h1>",
      c.T("Region", "送信元地域"), name, Escape(code), Escape(period));
  if (row) {
    h += fmt::format(
        "<dl class=\"totals\" id=\"region-totals\"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>"
        "<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>",
        c.T("rank", "順位"), Num((*row)["rank"]), c.T("packets", "パケット数"),
        Num((*row)["packets"]), c.T("sources", "送信元数"), Num((*row)["sources"]),
        c.T("share of packets", "パケットの割合"), Pct((*row)["share"]));
  } else {
    h += fmt::format("<p id=\"region-totals\">{}</p>",
                     c.T("No packets from this region in the period.",
                         "期間中、この地域からのパケットはありません。"));
  }
  const std::string src =
      "/api/v1/series?period=" + UrlEncode(period) + "&country=" + UrlEncode(code);
  const std::string by_port =
      "/api/v1/series?period=" + UrlEncode(period) + "&by_port=" + UrlEncode(code);
  h += "<section class=\"charts\">";
  h += Chart("chart-region-packets", c.T("Daily packets", "日別パケット数"), src, "packets");
  h += Chart("chart-region-sources", c.T("Daily distinct sources", "日別送信元数"), src, "sources");
  h +=
      Chart("chart-region-ports",
            c.T("Daily packets by destination port (top 5)", "宛先ポート別 日別パケット数 (上位5)"),
            by_port, "packets");
  h += "</section>";
  // The top ports' totals over the period, from the same breakdown the chart draws.
  Answer ports = Ask(c, "/api/v1/series", {{"period", period}, {"by_port", code}, {"n", "10"}});
  if (!ports.ok()) return ErrorPage(c, ports.reply);
  const json& names = ports.reply.body["series"];
  std::vector<uint64_t> sums(names.size(), 0);
  uint64_t total = 0;
  for (const json& pt : ports.reply.body["points"]) {
    for (size_t i = 0; i < sums.size() && i < pt["packets"].size(); ++i) {
      sums[i] += pt["packets"][i].get<uint64_t>();
      total += pt["packets"][i].get<uint64_t>();
    }
  }
  h += fmt::format(
      "<section><h2>{}</h2><table id=\"region-ports\"><thead><tr><th>{}</th><th>{}</th>"
      "<th>{}</th></tr></thead><tbody>",
      c.T("Destination ports of its packets", "この地域からのパケットの宛先ポート"),
      c.T("port", "宛先ポート"), c.T("packets", "パケット数"), c.T("share", "割合"));
  for (size_t i = 0; i < sums.size(); ++i) {
    const std::string label = names[i];
    if (label == "other" && sums[i] == 0) continue;
    const std::string cell =
        label == "other"
            ? c.T("other ports", "その他のポート")
            : fmt::format("<a href=\"{}\">{}</a>",
                          Escape(Link(c, "/port", {{"port", label}, {"period", period}})),
                          Escape(label));
    h += fmt::format(
        "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>", cell,
        Num(json(sums[i])),
        Pct(json(total ? static_cast<double>(sums[i]) / static_cast<double>(total) : 0.0)));
  }
  h += "</tbody></table></section>";
  // Outages (A11): the days the region went dark, by the rule stated under the table.
  Answer out = Ask(c, "/api/v1/outages", {{"period", period}});
  if (!out.ok()) return ErrorPage(c, out.reply);
  const json& rules = out.reply.body["rules"];
  std::string rows;
  for (const json& o : out.reply.body["outages"]) {
    if (o["key"] != code) continue;
    rows += fmt::format(
        "<tr><td>{}</td><td>{}{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1f}</td>"
        "<td class=\"n\">{:.1f}</td><td class=\"n\">{}</td></tr>",
        Str(o["first_day"]), Str(o["last_day"]),
        o["ongoing"].get<bool>() ? c.T(" (ongoing)", "（継続中）") : std::string(), Num(o["days"]),
        o["baseline_sources"].get<double>(), o["sources"].get<double>(), Pct(o["depth"]));
  }
  h += fmt::format("<section><h2>{}</h2>", c.T("Outages", "停止"));
  if (rows.empty()) {
    h += fmt::format("<p id=\"region-outages\">{}</p>",
                     c.T("No outage in the period.", "期間中に停止はありません。"));
  } else {
    h += fmt::format(
        "<table id=\"region-outages\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
        "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
        c.T("start", "開始"), c.T("end", "終了"), c.T("days", "日数"),
        c.T("sources/day before", "平常時の送信元数/日"),
        c.T("sources/day during", "停止中の送信元数/日"), c.T("depth", "深さ"), rows);
  }
  h += fmt::format(
      "<p class=\"rule\">{}</p></section>",
      c.ja ? fmt::format(
                 "停止：1日の送信元数が直前{}日（データのある日）の中央値の{:.0f}%以下に落ちた日。"
                 "中央値が{:.0f}以上、減少が{:.0f}σ以上のとき。",
                 rules["lookback_days"].get<int>(), rules["fraction"].get<double>() * 100,
                 rules["min_baseline"].get<double>(), rules["sigmas"].get<double>())
           : fmt::format("An outage day: the region's distinct sources fall to at most {:.0f}% "
                         "of their median over the {} days with data before it, that median "
                         "being at least {:.0f} and the drop at least {:.0f} σ.",
                         rules["fraction"].get<double>() * 100, rules["lookback_days"].get<int>(),
                         rules["min_baseline"].get<double>(), rules["sigmas"].get<double>()));
  Answer fs = Ask(c, "/api/v1/findings", {{"period", period}, {"country", code}});
  if (!fs.ok()) return ErrorPage(c, fs.reply);
  h += fmt::format("<section><h2>{}</h2>{}</section>", c.T("Findings", "注目された現象"),
                   FindingsTable(c, fs.reply.body["findings"], "findings"));
  return {200, Layout(c, row ? (*row)["name"].get<std::string>() + " (" + code + ")" : code, h)};
}

PageReply IpPage(const Ctx& c) {
  std::string addr = Get(c.req.params, "addr");
  if (addr.empty()) return ErrorPage(c, ApiError(400, "addr", "required: an IPv4 or IPv6 address"));
  Answer a = Ask(c, "/api/v1/ip/" + addr, {});
  if (!a.ok()) return ErrorPage(c, a.reply);
  const json& j = a.reply.body;
  std::string h = fmt::format("<h1>{} <span class=\"addr\">{}</span></h1>", c.T("Source", "送信元"),
                              Str(j["address"]));
  if (!j["seen"].get<bool>()) {
    h += fmt::format("<p id=\"not-seen\">{}</p>",
                     c.T("Not seen by any sensor in this store.",
                         "このストアのどのセンサーも観測していません。"));
    return {200, Layout(c, j["address"], h)};
  }
  h += fmt::format(
      "<dl class=\"totals\" id=\"ip-facts\"><dt>{}</dt><dd>{} {}</dd><dt>ASN</dt><dd>{}</dd>"
      "<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>",
      c.T("region", "地域"), Str(j["country"]["key"]), Str(j["country"]["name"]), Num(j["asn"]),
      c.T("first seen (UTC)", "初観測 (UTC)"), Str(j["first_seen"]),
      c.T("last seen (UTC)", "最終観測 (UTC)"), Str(j["last_seen"]), c.T("packets", "パケット数"),
      Num(j["packets"]));
  auto list = [&](const char* title, const char* id, const json& rows, const char* key,
                  bool port_link) {
    std::string t = fmt::format("<section><h2>{}</h2><table id=\"{}\"><tbody>", title, id);
    for (const json& r : rows) {
      std::string name = r[key].is_object() ? Str(r[key]["name"]) : Num(r[key]);
      if (port_link) {
        name = fmt::format("<a href=\"{}\">{}</a>", Escape(Link(c, "/port", {{"port", r["key"]}})),
                           Str(r["name"]));
      }
      t += fmt::format("<tr><td>{}</td><td class=\"n\">{}</td></tr>", name, Num(r["packets"]));
    }
    return t + "</tbody></table></section>";
  };
  h += "<div class=\"pair\">";
  h += list(c.T("Ports", "宛先ポート"), "ip-ports", j["ports"], "name", true);
  h += list(c.T("Sensors", "センサー"), "ip-sensors", j["sensors"], "sensor", false);
  h += list(c.T("Days", "観測日"), "ip-days", j["days"], "day", false);
  h += "</div>";
  return {200, Layout(c, j["address"], h)};
}

PageReply SensorsPage(const Ctx& c) {
  Answer a = Ask(c, "/api/v1/sensors", {});
  if (!a.ok()) return ErrorPage(c, a.reply);
  std::string h = fmt::format(
      "<h1>{}</h1><table id=\"sensors\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
      "<th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
      c.T("Sensors", "センサー"), c.T("sensor", "センサー"), c.T("group", "グループ"),
      c.T("mode", "方式"), c.T("last data (UTC)", "最終データ (UTC)"),
      c.T("last contact (UTC)", "最終通信 (UTC)"), c.T("inputs", "入力数"),
      c.T("packets", "パケット数"), c.T("lost", "損失"));
  auto when = [&](const json& v) -> std::string {
    int64_t t = v.get<int64_t>();
    if (t <= 0) return c.T("never", "なし");
    int64_t us = t * 1000000;
    int32_t day = static_cast<int32_t>(t / 86400 - (t % 86400 < 0));
    int64_t s = t - int64_t{day} * 86400;
    (void)us;
    return fmt::format("{} {:02}:{:02}", TimeZone::DayString(day), s / 3600, s % 3600 / 60);
  };
  for (const json& r : a.reply.body["sensors"]) {
    std::string lost;
    for (auto it = r["lost"].begin(); it != r["lost"].end(); ++it) {
      lost += (lost.empty() ? "" : ", ") + Escape(it.key()) + " " + Num(it.value());
    }
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>"
        "<td class=\"n\">{}</td><td>{}</td></tr>",
        r["name"].is_string() && !r["name"].get<std::string>().empty() && r["name"] != r["id"]
            ? Str(r["id"]) + " (" + Str(r["name"]) + ")"
            : Str(r["id"]),
        Str(r["group"]), Str(r["mode"]), when(r["last_input"]), when(r["last_contact"]),
        Num(r["inputs"]), Num(r["packets"]), lost.empty() ? c.T("none", "なし") : lost);
  }
  h += "</tbody></table>";
  return {200, Layout(c, c.T("Sensors", "センサー"), h)};
}

// The findings of a period (default: the store's last day's quarter) with their figures.
PageReply FindingsPage(const Ctx& c) {
  Params p;
  std::string period = Get(c.req.params, "period");
  if (period.empty()) {
    auto last = LastDay(c.req.snap->store());
    if (!last) return ErrorPage(c, ApiError(404, "", "the store holds no day yet"));
    period = Store::QuarterLabel(*last);
  }
  p.emplace("period", period);
  for (const char* k : {"sensor", "group", "port"}) {
    std::string v = Get(c.req.params, k);
    if (!v.empty()) p.emplace(k, v);
  }
  Answer a = Ask(c, "/api/v1/findings", p);
  if (!a.ok()) return ErrorPage(c, a.reply);
  const json& j = a.reply.body;
  std::string h = fmt::format(
      "<h1>{} {}</h1><table id=\"findings\"><thead><tr><th>#</th><th>{}</th><th>{}</th>"
      "<th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
      c.T("Findings", "注目すべき事象"), Str(j["period"]["label"]), c.T("kind", "種類"),
      c.T("port / region", "ポート / 地域"), c.T("from", "開始"), c.T("to", "終了"),
      c.T("packets/day before → after", "1日のパケット数 前 → 後"),
      c.T("sources/day before → after", "1日の送信元数 前 → 後"), c.T("ratio", "倍率"));
  for (const json& f : j["findings"]) {
    std::string subject;
    if (f["port"].is_object()) {
      subject =
          fmt::format("<a href=\"{}\">{}</a>",
                      Escape(Link(c, "/port", {{"port", f["port"]["key"]}, {"period", period}})),
                      Str(f["port"]["name"]));
    }
    if (f["country"].is_string()) subject += (subject.empty() ? "" : " ") + Str(f["country"]);
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{} → {}</td>"
        "<td class=\"n\">{} → {}</td><td class=\"n\">{}</td></tr>",
        Num(f["rank"]), Str(f["kind"]), subject.empty() ? "-" : subject, Str(f["first_day"]),
        f["last_day"].is_null() ? c.T("ongoing", "継続中") : Str(f["last_day"]),
        Num(f["packets_before"]), Num(f["packets_after"]), Num(f["sources_before"]),
        Num(f["sources_after"]), Num(f["ratio"]));
  }
  if (j["findings"].empty())
    h += fmt::format("<tr><td colspan=\"8\">{}</td></tr>", c.T("none", "なし"));
  h += "</tbody></table>";
  return {200, Layout(c, c.T("Findings", "注目すべき事象"), h)};
}

// MUSTAN views: the top 5 with 10 daily counts and arrows, the watch and risk lists, a search by
// port, and the rules the arrows and lists rest on, as the API states them.
PageReply MustanPage(const Ctx& c) {
  Params p;
  for (const char* k : {"end", "port", "sensor", "group"}) {
    std::string v = Get(c.req.params, k);
    if (!v.empty()) p.emplace(k, v);
  }
  p.emplace("lang", c.ja ? "ja" : "en");
  Answer a = Ask(c, "/api/v1/mustan", p);
  if (!a.ok()) return ErrorPage(c, a.reply);
  const json& j = a.reply.body;
  std::string h =
      fmt::format("<h1>{} {} .. {}</h1>", c.T("MUSTAN: destination ports", "MUSTAN 宛先ポート"),
                  Str(j["first_day"]), Str(j["last_day"]));
  h += fmt::format(
      "<form class=\"search\" id=\"mustan-search\" method=\"get\" action=\"/mustan\">"
      "<input name=\"port\" placeholder=\"{}\" aria-label=\"{}\" value=\"{}\">"
      "<input type=\"hidden\" name=\"end\" value=\"{}\">{}<button "
      "type=\"submit\">{}</button></form>",
      c.T("port, e.g. 445/tcp", "ポート 例 445/tcp"), c.T("port", "ポート"),
      Escape(Get(c.req.params, "port")), Str(j["last_day"]),
      c.ja ? "<input type=\"hidden\" name=\"lang\" value=\"ja\">" : "", c.T("Search", "検索"));
  auto table = [&](const std::string& id, const std::string& title, const json& items) {
    std::string t = fmt::format("<h2>{}</h2><table id=\"{}\"><thead><tr><th>{}</th>", title, id,
                                c.T("port", "宛先ポート"));
    for (const json& d : j["days"]) t += "<th>" + Escape(d.get<std::string>().substr(5)) + "</th>";
    t += fmt::format("<th>{}</th><th>{}</th><th>z</th><th>{}</th></tr></thead><tbody>",
                     c.T("total", "合計"), c.T("trend", "傾向"),
                     c.T("sources (first 7 → last 3 days)", "送信元数 (前7日→後3日)"));
    if (items.empty()) t += fmt::format("<tr><td colspan=\"15\">{}</td></tr>", c.T("none", "なし"));
    for (const json& it : items) {
      t += fmt::format(
          "<tr><td><a href=\"{}\">{}</a>{}</td>", Escape(Link(c, "/port", {{"port", it["key"]}})),
          Str(it["key"]),
          it["new"].get<bool>() ? std::string(" <b>") + c.T("new", "新規") + "</b>" : "");
      for (const json& n : it["packets"]) t += "<td class=\"n\">" + Num(n) + "</td>";
      t += fmt::format(
          "<td class=\"n\">{}</td><td class=\"arrow\">{}</td><td class=\"n\">{:.1f}</td>"
          "<td class=\"n\">{:.1f} → {:.1f}</td></tr>",
          Num(it["total_packets"]), Str(it["arrow"]), it["z"].get<double>(),
          it["early_sources_mean"].get<double>(), it["late_sources_mean"].get<double>());
    }
    return t + "</tbody></table>";
  };
  if (j.contains("search")) {
    h += table("mustan-search-result", c.T("Search", "検索"), json::array({j["search"]}));
  }
  h += table("mustan-top", c.T("Top 5 over 10 days", "10日間の上位5"), j["top"]);
  h += table("mustan-watch", c.T("Watch: sources rising sharply", "要注意: 送信元数の急増"),
             j["watch"]);
  h += table("mustan-risk", c.T("Risk: rising or new", "リスク: 増加または新規"), j["risk"]);
  h += fmt::format("<section id=\"mustan-rules\"><h2>{}</h2><p>{}</p><p>{}</p><p>{}</p></section>",
                   c.T("How the arrows and lists are decided", "矢印と一覧の判定基準"),
                   Str(j["rules"]["trend"]), Str(j["rules"]["watch"]), Str(j["rules"]["risk"]));
  return {200, Layout(c, "MUSTAN", h)};
}

}  // namespace

std::string Escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) {
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += fmt::format("%{:02X}", ch);
    }
  }
  return out;
}

PageReply RenderPage(const PageRequest& req) {
  Ctx c{req, Get(req.params, "lang") == "ja"};
  std::string lang = Get(req.params, "lang");
  if (!lang.empty() && lang != "en" && lang != "ja") {
    return ErrorPage(c, ApiError(400, "lang", fmt::format("'{}': expected en or ja", lang)));
  }
  if (req.path == "/") return Overview(c);
  if (req.path == "/port") return PortPage(c);
  if (req.path == "/region") return RegionPage(c);
  if (req.path == "/ip") {
    if (req.access.aggregate_only) {
      return ErrorPage(c, ApiError(403, "", "per-IP data is not public: log in"));
    }
    return IpPage(c);
  }
  if (req.path == "/sensors") return SensorsPage(c);
  if (req.path == "/mustan") return MustanPage(c);
  if (req.path == "/findings") return FindingsPage(c);
  return ErrorPage(c, ApiError(404, "", "no such page"));
}

PageReply RenderLogin(const std::string& lang, const std::string& next, const std::string& error,
                      int status) {
  bool ja = lang == "ja";
  std::string h = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>teiten — {}</title>"
      "<link rel=\"stylesheet\" href=\"/static/teiten.css\"></head><body><main class=\"login\">"
      "<h1>teiten 定点</h1>{}<form method=\"post\" action=\"/login\">"
      "<input type=\"hidden\" name=\"next\" value=\"{}\">"
      "<label>{} <input name=\"user\" autocomplete=\"username\" required></label>"
      "<label>{} <input name=\"password\" type=\"password\" autocomplete=\"current-password\" "
      "required></label><button type=\"submit\">{}</button></form></main></body></html>\n",
      ja ? "ja" : "en", ja ? "ログイン" : "log in",
      error.empty() ? "" : "<p class=\"error\" id=\"login-error\">" + Escape(error) + "</p>",
      Escape(next), ja ? "ユーザー" : "user", ja ? "パスワード" : "password",
      ja ? "ログイン" : "Log in");
  return {status, h};
}

}  // namespace teiten::web
