// ComposeReport: the quarterly (TSUBAME) and monthly (TALOT2) layouts of SPEC §3, written from
// ReportData. Every sentence states only what the numbers beside it show.
#include "report/compose.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "enrich/port_notes.h"

namespace teiten::report {

std::string Composer::PacketsAxis() const {
  if (data.opts.totals) return ja ? "パケット数" : "packets";
  return ja ? "パケット数（1 センサーあたり）" : "packets per sensor";
}

std::string Composer::SourcesAxis() const {
  return ja ? "送信元 IP アドレス数" : "distinct sources";
}

std::string Composer::DailyChart(const DailySet& set, bool sources, bool stacked,
                                 const std::string& id,
                                 const std::vector<chart::Marker>& markers) const {
  chart::TimeChart tc;
  tc.id = id;
  tc.days = set.days;
  tc.stacked = stacked;
  tc.lang = ChartLang();
  tc.markers = markers;
  tc.y_label = sources ? SourcesAxis() : PacketsAxis();
  for (size_t s = 0; s < set.names.size(); ++s) {
    chart::Series series;
    series.name = set.names[s];
    series.other = s < set.keys.size() && set.keys[s] == kOtherKey;
    const auto& v = sources ? set.sources[s] : set.packets[s];
    for (size_t i = 0; i < v.size(); ++i) {
      double x = static_cast<double>(v[i]);
      // Sources are counted distinct over all sensors; only packets are averaged per sensor.
      if (!sources && !data.opts.totals) {
        int32_t off = set.days[i] - data.opts.period.first_day;
        int active = off >= 0 && static_cast<size_t>(off) < data.active_sensors.size()
                         ? data.active_sensors[static_cast<size_t>(off)]
                         : 0;
        x = active > 0 ? x / active : 0;
      }
      series.values.push_back(x);
    }
    tc.series.push_back(std::move(series));
  }
  return chart::Lines(tc);
}

namespace {

constexpr const char* kIanaUrl =
    "https://www.iana.org/assignments/service-names-port-numbers/"
    "service-names-port-numbers.xhtml";

std::string KeyName(Dimension dim, uint64_t key, Lang lang) {
  if (dim == Dimension::kPort) return PortText(static_cast<PortKey>(key));
  return CountryText(static_cast<CountryCode>(key), lang);
}
std::string KeyShort(Dimension dim, uint64_t key, Lang lang) {
  if (dim == Dimension::kPort) return PortShort(static_cast<PortKey>(key));
  return CountryText(static_cast<CountryCode>(key), lang);
}
// As running text names it ("the United States").
std::string KeyInText(Dimension dim, uint64_t key, Lang lang) {
  if (dim == Dimension::kPort) return PortShort(static_cast<PortKey>(key));
  return CountryInText(static_cast<CountryCode>(key), lang);
}

// How ranks changed among the first `n` rows, as one or two sentences.
std::string RankChanges(const Composer& c, const TopResult& t, Dimension dim, size_t n) {
  bool ja = c.ja;
  std::string prev = PreviousPeriodWord(c.data.opts.period, c.lang);
  if (!c.data.has_previous) {
    return ja ? fmt::format("{}のデータがないため、順位は比較していません。", prev)
              : fmt::format("The store holds no data for {}, so ranks are not compared.", prev);
  }
  std::vector<std::string> clauses;
  size_t same = 0, shown = std::min(n, t.rows.size());
  for (size_t i = 0; i < shown; ++i) {
    const RankRow& r = t.rows[i];
    std::string name = KeyInText(dim, r.key, c.lang);
    if (r.prev_rank > 0 && r.prev_rank > r.rank) {
      clauses.push_back(
          ja ? fmt::format("{}が{}位から{}位に上がり", name, r.prev_rank, r.rank)
             : fmt::format("{} rose from {} to {}", name, Ordinal(r.prev_rank), Ordinal(r.rank)));
    } else if (r.prev_rank > 0 && r.prev_rank < r.rank) {
      clauses.push_back(
          ja ? fmt::format("{}が{}位から{}位に下がり", name, r.prev_rank, r.rank)
             : fmt::format("{} fell from {} to {}", name, Ordinal(r.prev_rank), Ordinal(r.rank)));
    } else if (r.prev_rank == kRankOutOfTop) {
      clauses.push_back(
          ja ? fmt::format("{}がトップ10圏外から{}位に入り", name, r.rank)
             : fmt::format("{} entered at {} from outside the top 10", name, Ordinal(r.rank)));
    } else if (r.prev_rank == kRankNew) {
      clauses.push_back(
          ja ? fmt::format("{}が新たに{}位に入り", name, r.rank)
             : fmt::format("{}, not seen before, entered at {}", name, Ordinal(r.rank)));
    } else {
      ++same;
    }
  }
  // Those that left: in the previous period's first `n` (its summary ranks them the same way,
  // by packets over the same sensors) and not in this one's.
  const auto& before =
      dim == Dimension::kPort ? c.data.prev_summary.ports : c.data.prev_summary.countries;
  for (const RankRow& p : before) {
    if (p.rank < 1 || static_cast<size_t>(p.rank) > n) continue;
    bool still = false;
    for (size_t i = 0; i < shown; ++i) still |= t.rows[i].key == p.key;
    if (still) continue;
    std::string name = KeyInText(dim, p.key, c.lang);
    clauses.push_back(ja ? fmt::format("{}位だった{}が上位 {} 位から外れ", p.rank, name, n)
                         : fmt::format("{}, {} before, left the top {}", name, Ordinal(p.rank), n));
  }
  if (clauses.empty()) {
    return ja ? fmt::format("上位 {} 位までの順位は{}と同じでした。", shown, prev)
              : fmt::format("The top {} were in the same order as in {}.", shown, prev);
  }
  std::string s;
  if (ja) {
    s = prev + "と比べると、";
    for (size_t i = 0; i < clauses.size(); ++i) {
      s += clauses[i];
      s += i + 1 < clauses.size() ? "、" : "ました。";
    }
    if (same > 0) s += "その他の順位は変わりませんでした。";
  } else {
    s = "Compared with " + prev + ", " + JoinList(clauses, c.lang) + ".";
    if (same > 0) s += same == 1 ? " The other kept its rank." : " The others kept their ranks.";
  }
  return s;
}

// The previous-rank column's heading, worded the same in every table.
std::string PrevRankHeader(const Composer& c) {
  bool ja = c.ja;
  return c.data.opts.period.kind == Period::Kind::kQuarter
             ? (ja ? "前四半期の順位" : "Rank in the previous quarter")
         : c.data.opts.period.kind == Period::Kind::kMonth
             ? (ja ? "前月の順位" : "Rank in the previous month")
             : (ja ? "前期間の順位" : "Rank in the previous period");
}

// Table 1 / Table 2: rank | name | previous rank, as the seeds print them.
void TopFiveTable(Composer* c, const TopResult& t, Dimension dim) {
  bool ja = c->ja;
  TableBlock tb;
  tb.label = c->NextTableLabel();
  tb.id = dim == Dimension::kPort ? "table-top5-ports" : "table-top5-regions";
  tb.caption = dim == Dimension::kPort ? (ja ? "宛先ポート番号トップ 5" : "Top 5 destination ports")
                                       : (ja ? "送信元地域トップ 5" : "Top 5 source regions");
  std::string prev_col = PrevRankHeader(*c);
  tb.header = {ja ? "順位" : "Rank",
               dim == Dimension::kPort ? (ja ? "宛先ポート番号" : "Destination port")
                                       : (ja ? "送信元地域" : "Source region"),
               prev_col};
  tb.numeric = {true, false, true};
  for (size_t i = 0; i < t.rows.size() && i < 5; ++i) {
    const RankRow& r = t.rows[i];
    tb.rows.push_back({std::to_string(r.rank), KeyName(dim, r.key, c->lang),
                       c->data.has_previous ? PrevRankCell(r.prev_rank, c->lang) : "—"});
    if (dim == Dimension::kPort) c->featured.insert(static_cast<PortKey>(r.key));
  }
  if (dim == Dimension::kPort) {
    tb.note = ja ? "※ポート番号とサービスの対応の詳細は、IANA の文書 (1) を参照してください。なお、"
                   "サービス名は IANA の情報をもとに記載していますが、必ずしも各サービスプロトコ"
                   "ルに則ったパケットが受信されているとは限りません。"
                 : "Service names follow the IANA registry (1); the packets received do not "
                   "necessarily follow each service's protocol.";
  }
  c->doc.AddTable(std::move(tb));
}

// Top 10 with the numbers behind the ranks.
void TopTenTable(Composer* c, const TopResult& t, Dimension dim) {
  bool ja = c->ja;
  TableBlock tb;
  tb.label = c->NextTableLabel();
  tb.id = dim == Dimension::kPort ? "table-top10-ports" : "table-top10-regions";
  tb.caption = dim == Dimension::kPort
                   ? (ja ? "宛先ポート番号トップ 10" : "Top 10 destination ports")
                   : (ja ? "送信元地域トップ 10" : "Top 10 source regions");
  tb.header = {ja ? "順位" : "Rank",
               dim == Dimension::kPort ? (ja ? "宛先ポート番号" : "Destination port")
                                       : (ja ? "送信元地域" : "Source region"),
               ja ? "パケット数" : "Packets",
               ja ? "割合" : "Share",
               ja ? "送信元 IP アドレス数" : "Distinct sources",
               PrevRankHeader(*c)};
  tb.numeric = {true, false, true, true, true, true};
  for (const RankRow& r : t.rows) {
    tb.rows.push_back({std::to_string(r.rank), KeyName(dim, r.key, c->lang), Num(r.packets),
                       Pct(r.share), Num(r.sources),
                       c->data.has_previous ? PrevRankCell(r.prev_rank, c->lang) : "—"});
    if (dim == Dimension::kPort) c->featured.insert(static_cast<PortKey>(r.key));
  }
  tb.note = ja ? fmt::format(
                     "期間中の全パケット数 {}、送信元 IP アドレス数 {}。割合は全パケット数に"
                     "対する比率です。",
                     Num(t.total_packets), Num(t.total_sources))
               : fmt::format(
                     "All packets in the period: {}; distinct sources: {}. Share is of all "
                     "packets.",
                     Num(t.total_packets), Num(t.total_sources));
  c->doc.AddTable(std::move(tb));
}

std::string SensorsPhrase(const Composer& c) {
  const ReportData& d = c.data;
  size_t n = d.sensor_ids.size();
  std::string groups = JoinList(d.groups, c.lang);
  if (c.ja) {
    std::string s = fmt::format("{} 台のセンサー", n);
    if (!d.opts.sensors_label.empty())
      s += "（" + d.opts.sensors_label + "）";
    else if (!d.groups.empty())
      s += "（グループ: " + groups + "）";
    return s;
  }
  std::string s = fmt::format("{} sensor{}", n, n == 1 ? "" : "s");
  if (!d.opts.sensors_label.empty())
    s += " (" + d.opts.sensors_label + ")";
  else if (!d.groups.empty())
    s += fmt::format(" (group{} {})", d.groups.size() == 1 ? "" : "s", groups);
  return s;
}

// Totals of the period and their change against the previous one.
std::string TotalsParagraph(const Composer& c) {
  const ReportData& d = c.data;
  const Period& p = d.opts.period;
  std::string packets_change, sources_change;
  if (d.has_previous) {
    packets_change = ChangePhrase(static_cast<double>(d.prev_summary.packets),
                                  static_cast<double>(d.summary.packets), c.lang);
    sources_change = ChangePhrase(static_cast<double>(d.prev_summary.sources),
                                  static_cast<double>(d.summary.sources), c.lang);
  }
  bool sensors_changed = d.has_previous && d.prev_summary.sensors != d.summary.sensors;
  std::string s;
  if (c.ja) {
    s = fmt::format(
        "{}（{}）に {}で観測したパケットは合計 {} 件、送信元 IP アドレスは {} 個でした。",
        ThisPeriodWord(p, c.lang), SpanText(p, c.lang), SensorsPhrase(c), Num(d.summary.packets),
        Num(d.summary.sources));
    if (d.has_previous) {
      s += fmt::format("{}と比べて、パケット数は{}。送信元 IP アドレス数は{}。",
                       PreviousPeriodWord(p, c.lang), packets_change, sources_change);
    }
    if (sensors_changed) {
      s += fmt::format("なお、データのあるセンサーは {} 台から {} 台に変わっています。",
                       d.prev_summary.sensors, d.summary.sensors);
    }
    return s;
  }
  std::string when =
      p.kind == Period::Kind::kQuarter ? "This quarter" : "In " + PeriodName(p, c.lang);
  s = fmt::format("{} ({}), {} recorded {} packets from {} distinct source addresses.", when,
                  SpanText(p, c.lang), SensorsPhrase(c), Num(d.summary.packets),
                  Num(d.summary.sources));
  if (d.has_previous) {
    s += fmt::format(" Compared with {}, the number of packets {} and the number of sources {}.",
                     PreviousPeriodWord(p, c.lang), packets_change, sources_change);
  }
  if (sensors_changed) {
    s += fmt::format(" The number of sensors with data changed from {} to {}.",
                     d.prev_summary.sensors, d.summary.sensors);
  }
  return s;
}

// The largest key's share, as a sentence.
std::string LeaderSentence(const Composer& c, const TopResult& t, Dimension dim) {
  if (t.rows.empty()) return "";
  const RankRow& r = t.rows[0];
  std::string name = KeyInText(dim, r.key, c.lang);
  if (dim == Dimension::kPort) {
    return c.ja ? fmt::format("最も多かったのは {} 宛のパケットで、全体の {} を占めました。", name,
                              Pct(r.share))
                : fmt::format("The most packets went to {}, {} of the total.", name, Pct(r.share));
  }
  return c.ja ? fmt::format("送信元地域では{}が最も多く、全体の {} を占めました。", name,
                            Pct(r.share))
              : fmt::format("{} sent the most packets, {} of the total.", Capitalized(name),
                            Pct(r.share));
}

// Per-sensor-per-day averages (TALOT2, SPEC A4), this period and the previous one.
void AveragesTable(Composer* c) {
  const ReportData& d = c->data;
  bool ja = c->ja;
  TableBlock tb;
  tb.label = c->NextTableLabel();
  tb.id = "table-averages";
  tb.caption = ja ? "1 センサー 1 日あたりの平均" : "Averages per sensor per day";
  tb.header = {ja ? "項目" : "Measure", PeriodName(d.opts.period, c->lang)};
  tb.numeric = {false, true};
  if (d.has_previous) {
    tb.header.push_back(PeriodName(d.previous, c->lang));
    tb.header.push_back(ja ? "増減" : "Change");
    tb.numeric.push_back(true);
    tb.numeric.push_back(false);
  }
  auto row = [&](const std::string& name, double now, double before, int dec) {
    std::vector<std::string> r = {name, Dec(now, dec)};
    if (d.has_previous) {
      r.push_back(Dec(before, dec));
      r.push_back(ChangeShort(before, now, c->lang));
    }
    tb.rows.push_back(std::move(r));
  };
  const SummaryResult& s = d.summary;
  const SummaryResult& q = d.prev_summary;
  row(ja ? "パケット数" : "Packets", s.packets_per_sensor_day, q.packets_per_sensor_day, 1);
  row(ja ? "送信元 IP アドレス数" : "Distinct sources", s.sources_per_sensor_day,
      q.sources_per_sensor_day, 1);
  row(ja ? "送信元 1 個あたりのパケット数" : "Packets per source", s.packets_per_source,
      q.packets_per_source, 2);
  row(ja ? "センサー数" : "Sensors with data", s.sensors, q.sensors, 0);
  tb.note = ja ? "送信元数は各センサー・各日の重複を除いた数の平均です。"
               : "Sources are each sensor-day's distinct addresses, averaged.";
  c->doc.AddTable(std::move(tb));
}

// Shares of packets and of sources for the period's top keys.
void SharesFigure(Composer* c, Dimension dim) {
  const ReportData& d = c->data;
  bool ja = c->ja;
  const auto& rows = dim == Dimension::kPort ? d.summary.ports : d.summary.countries;
  if (rows.empty()) return;
  chart::ShareChart sc;
  sc.id = dim == Dimension::kPort ? "share-ports" : "share-regions";
  sc.lang = c->ChartLang();
  sc.row_labels = {ja ? "パケット数" : "Packets", ja ? "送信元数" : "Sources"};
  std::vector<double> pk, src;
  double source_sum = 0;
  for (const auto& r : rows) source_sum += static_cast<double>(r.sources);
  // Sources can reach several keys, so each key's sources are shown as a share of the sum of
  // the listed keys' sources (the parts of a whole), not of all distinct sources.
  for (const auto& r : rows) {
    sc.part_names.push_back(KeyShort(dim, r.key, c->lang));
    pk.push_back(r.share);
    src.push_back(source_sum > 0 ? static_cast<double>(r.sources) / source_sum : 0);
  }
  sc.shares = {pk, src};
  sc.remainder_as_other = true;
  FigureBlock f;
  f.label = c->NextFigureLabel();
  f.id = sc.id;
  f.caption = dim == Dimension::kPort
                  ? (ja ? fmt::format("{}の宛先ポート番号別の比率（パケット数・送信元数）",
                                      PeriodName(d.opts.period, c->lang))
                        : fmt::format("Shares by destination port, {} (packets and sources)",
                                      PeriodName(d.opts.period, c->lang)))
                  : (ja ? fmt::format("{}の送信元地域別の比率（パケット数・送信元数）",
                                      PeriodName(d.opts.period, c->lang))
                        : fmt::format("Shares by source region, {} (packets and sources)",
                                      PeriodName(d.opts.period, c->lang)));
  f.svg = chart::Shares(sc);
  c->doc.AddFigure(std::move(f));
}

// Six months of shares, one row per month (TALOT2 §3), for packets or sources.
void SixMonthShares(Composer* c, Dimension dim, bool sources) {
  const ReportData& d = c->data;
  bool ja = c->ja;
  if (d.months.size() < 2) return;
  // The parts: the largest keys over the six months together.
  std::map<uint64_t, double> weight;
  for (const auto& m : d.months) {
    const auto& rows = dim == Dimension::kPort ? m.summary.ports : m.summary.countries;
    for (const auto& r : rows) {
      weight[r.key] += static_cast<double>(sources ? r.sources : r.packets);
    }
  }
  std::vector<std::pair<double, uint64_t>> order;
  for (auto& [k, w] : weight) order.push_back({w, k});
  std::sort(order.begin(), order.end(), [](auto& a, auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  if (order.size() > 8) order.resize(8);
  chart::ShareChart sc;
  sc.id = fmt::format("six-{}-{}", dim == Dimension::kPort ? "ports" : "regions",
                      sources ? "sources" : "packets");
  sc.lang = c->ChartLang();
  for (auto& [w, k] : order) sc.part_names.push_back(KeyShort(dim, k, c->lang));
  for (const auto& m : d.months) {
    sc.row_labels.push_back(MonthText(m.month.year, m.month.index, c->lang));
    const auto& rows = dim == Dimension::kPort ? m.summary.ports : m.summary.countries;
    double denom = 0;
    if (sources) {
      for (const auto& r : rows) denom += static_cast<double>(r.sources);
    } else {
      denom = static_cast<double>(m.summary.packets);
    }
    std::vector<double> parts;
    for (auto& [w, k] : order) {
      double v = 0;
      for (const auto& r : rows) {
        if (r.key == k) v = static_cast<double>(sources ? r.sources : r.packets);
      }
      parts.push_back(denom > 0 ? v / denom : 0);
    }
    sc.shares.push_back(std::move(parts));
  }
  FigureBlock f;
  f.label = c->NextFigureLabel();
  f.id = sc.id;
  std::string span = MonthRange(d.months.front().month, d.months.back().month, c->lang);
  if (ja) {
    f.caption = fmt::format("{}の{}別{}の比率", span,
                            dim == Dimension::kPort ? "宛先ポート番号" : "送信元地域",
                            sources ? "送信元数" : "パケット数");
  } else {
    f.caption = fmt::format("Shares of {} by {}, {}", sources ? "sources" : "packets",
                            dim == Dimension::kPort ? "destination port" : "source region", span);
  }
  f.svg = chart::Shares(sc);
  c->doc.AddFigure(std::move(f));
}

// Explanations of the featured ports (E4) and the references they cite.
// Tool tags: who sent the period's packets (Mirai, ZMap, Masscan, …), and the top-5 ports by
// tool (SPEC E5; the seeds' "tool names found inside packets").
void ToolsSection(Composer* c, const std::string& number) {
  const ReportData& d = c->data;
  const ToolsResult& t = d.tools;
  bool ja = c->ja;
  c->doc.Heading(1, number + (ja ? " 送信元の走査ツール" : " Scanning tools"), "tools");
  if (d.tools_skipped) {
    c->doc.Paragraph(
        ja ? fmt::format(
                 "ツールの判定は保存された観測から行うため、{} パケットを超える期間では報告書"
                 "に含めていません。`teiten top tools --period {}` で求められます。",
                 Num(d.opts.row_scan_max), d.opts.period.Label())
           : fmt::format("Tools are judged from the stored observations, so a period of more than "
                         "{} packets is not scanned for the report; `teiten top tools --period {}` "
                         "gives them.",
                         Num(d.opts.row_scan_max), d.opts.period.Label()));
    return;
  }
  uint64_t tagged = 0;
  for (const ToolRow& r : t.rows) {
    if (r.tag == Tag::kCount) tagged = t.sources - r.sources;
  }
  if (t.rows.empty() || tagged == 0) {
    c->doc.Paragraph(ja ? "期間中の送信元に、既知の走査ツールの特徴を持つものはありませんでした。"
                        : "No source of the period carried the fingerprint of a known tool.");
    return;
  }
  std::string label = c->PeekTableLabel();
  c->doc.Paragraph(
      ja ? fmt::format(
               "期間中の送信元 {} 個のうち {} "
               "個（{}）は、パケットのヘッダーやペイロードに走査ツール"
               "やマルウェアに固有の特徴がありました{}。送信元ごとに、その特徴を持つパケットが十分"
               "にある場合にだけツールを判定しています（判定規則は docs/FINGERPRINTS.md）。",
               Num(t.sources), Num(tagged),
               Pct(static_cast<double>(tagged) / static_cast<double>(t.sources)), c->Ref(label))
         : fmt::format(
               "Of the period's {} distinct sources, {} ({}) carried in their headers or payloads "
               "the fingerprint of a scanning tool or malware ({}). A source is tagged only when "
               "enough of its packets agree (the rules are in docs/FINGERPRINTS.md).",
               Num(t.sources), Num(tagged),
               Pct(static_cast<double>(tagged) / static_cast<double>(t.sources)), label));
  TableBlock tb;
  tb.label = c->NextTableLabel();
  tb.id = "table-tools";
  tb.caption = ja ? "ツール別の送信元数とパケット数" : "Sources and packets by tool";
  tb.header = {ja ? "ツール" : "Tool", ja ? "送信元 IP アドレス数" : "Distinct sources",
               ja ? "送信元の割合" : "Share of sources", ja ? "パケット数" : "Packets",
               ja ? "パケットの割合" : "Share of packets"};
  tb.numeric = {false, true, true, true, true};
  // A share that would read 0.0% is not none.
  auto share = [](double f) { return f > 0 && f < 0.0005 ? std::string("<0.1%") : Pct(f); };
  auto name = [&](Tag tag) -> std::string {
    if (tag == Tag::kCount) return ja ? "判定なし" : "untagged";
    if (tag == Tag::kBackscatter) return ja ? "バックスキャッタ" : "backscatter";
    if (tag == Tag::kResearch) return ja ? "研究目的のスキャナー" : "research scanners";
    return TagName(tag);
  };
  for (const ToolRow& r : t.rows) {
    tb.rows.push_back({name(r.tag), Num(r.sources), share(r.source_share), Num(r.packets),
                       share(r.packet_share)});
  }
  tb.note =
      ja ? "一つの送信元が複数のツールに該当することがあります（割合の合計は 100% を超えることが"
           "あります）。"
         : "A source may carry several tags: shares may add up to more than 100%.";
  c->doc.AddTable(std::move(tb));
  if (t.by_port.empty()) return;
  TableBlock pb;
  pb.label = c->NextTableLabel();
  pb.id = "table-tools-ports";
  pb.caption = ja ? "宛先ポート番号トップ 5 の送信元のツール" : "Tools of the top 5 ports' sources";
  pb.header = {ja ? "宛先ポート番号" : "Destination port",
               ja ? "送信元 IP アドレス数" : "Distinct sources",
               ja ? "ツール（送信元の割合）" : "Tools (share of the port's sources)"};
  pb.numeric = {false, true, false};
  for (const RankRow& rr : d.ports.rows) {
    auto it = t.by_port.find(static_cast<PortKey>(rr.key));
    if (it == t.by_port.end()) continue;
    std::string tools;
    for (const ToolRow& r : it->second) {
      if (r.tag == Tag::kCount) continue;
      tools +=
          fmt::format("{}{} {}", tools.empty() ? "" : ", ", name(r.tag), share(r.source_share));
    }
    pb.rows.push_back({KeyName(Dimension::kPort, rr.key, c->lang),
                       Num(t.port_sources.count(it->first) ? t.port_sources.at(it->first) : 0),
                       tools.empty() ? (ja ? "判定なし" : "none tagged") : tools});
  }
  c->doc.AddTable(std::move(pb));
}

// DoS attacks inferred from backscatter (SPEC A10, CAIDA RSDoS): the period's attacks, largest
// first. The victims are the attacked hosts — the spoofed sources that reached the telescope are
// not theirs — so a CSIRT can tell its own network's victims.
void DosSection(Composer* c, const std::string& number) {
  const ReportData& d = c->data;
  bool ja = c->ja;
  c->doc.Heading(
      1,
      number + (ja ? " バックスキャッタから推定した DoS 攻撃" : " DoS attacks seen in backscatter"),
      "dos");
  if (d.dos_skipped) {
    c->doc.Paragraph(
        ja ? fmt::format("DoS 攻撃は期間中のバックスキャッタの観測から推定します。その読み出しは "
                         "{} パケット（バックスキャッタと、それを他の観測と分けずに保存していた"
                         "以前の teiten による観測）に及び、報告書の上限 {} パケットを超えるため、"
                         "ここには含めていません。`teiten dos --period {}` で求められます。",
                         Num(d.dos_scan_rows), Num(d.opts.backscatter_scan_max),
                         d.opts.period.Label())
           : fmt::format("Attacks are inferred from the period's backscatter. Reading it means "
                         "reading {} stored packets (the backscatter, and whatever an earlier "
                         "teiten stored without keeping backscatter apart), more than the report's "
                         "{}, so they are not in the report; `teiten dos --period {}` gives them.",
                         Num(d.dos_scan_rows), Num(d.opts.backscatter_scan_max),
                         d.opts.period.Label()));
    return;
  }
  const DosResult& r = d.dos;
  const std::string rule =
      ja ? "Moore ら (2006) の基準（同じ被害者からの応答が 25 パケット以上、60 秒以上続き、"
           "ある 60 秒間に 30 パケット以上）"
         : "Moore et al. (2006): at least 25 packets from one victim over at least 60 s, with 30 "
           "in some 60 s window";
  if (r.backscatter == 0) {
    c->doc.Paragraph(ja ? "期間中にバックスキャッタ（なりすまされた送信元への応答）は観測されません"
                          "でした。"
                        : "No backscatter (answers to spoofed sources) reached the sensors in the "
                          "period.");
    return;
  }
  const std::string label = r.attacks.empty() ? std::string() : c->PeekTableLabel();
  c->doc.Paragraph(
      ja ? fmt::format("DoS 攻撃の被害者は、送信元を詐称したパケットに応答します。その応答"
                       "（バックスキャッタ：SYN-ACK、RST、ICMP のエラーと応答）が期間中に {} "
                       "パケット届き、応答した被害者は {} 個でした。このうち、{}を満たす攻撃は "
                       "{} 件でした{}。",
                       Num(r.backscatter), Num(r.victims), rule, Num(r.attacks.size()),
                       r.attacks.empty() ? "" : c->Ref(label))
         : fmt::format("The victim of a DoS attack answers packets whose sources were spoofed. "
                       "{} such answers (backscatter: SYN-ACKs, RSTs, ICMP errors and replies) "
                       "reached the sensors in the period, from {} victims; {} of their floods "
                       "meet the rule of {}{}.",
                       Num(r.backscatter), Num(r.victims), Num(r.attacks.size()), rule,
                       r.attacks.empty() ? "" : " (" + label + ")"));
  if (r.attacks.empty()) return;
  TableBlock tb;
  tb.label = c->NextTableLabel();
  tb.id = "table-dos";
  tb.caption = ja ? "推定された DoS 攻撃（パケット数の多い順に最大 10 件）"
                  : "DoS attacks inferred (at most 10, most packets first)";
  tb.header = {ja ? "被害者" : "Victim",
               ja ? "地域" : "Region",
               ja ? "開始" : "Start",
               ja ? "継続（分）" : "Minutes",
               ja ? "パケット数" : "Packets",
               ja ? "最大（1 分間）" : "Peak per minute",
               ja ? "攻撃された宛先ポート" : "Attacked ports"};
  tb.numeric = {false, false, false, true, true, true, false};
  for (size_t i = 0; i < r.attacks.size() && i < 10; ++i) {
    const DosAttack& a = r.attacks[i];
    const int64_t local_s = (a.start_us + d.tz.OffsetUs(a.start_us)) / 1000000;
    const int32_t day = static_cast<int32_t>(local_s / 86400 - (local_s % 86400 < 0));
    const int64_t sec = local_s - int64_t{day} * 86400;
    std::string ports;
    for (size_t k = 0; k < a.attacked_ports.size() && k < 3; ++k) {
      ports += fmt::format("{}{}", k ? ", " : "", PortKeyToString(a.attacked_ports[k].first));
    }
    if (a.attacked_ports.size() > 3) ports += fmt::format(" +{}", a.attacked_ports.size() - 3);
    tb.rows.push_back(
        {a.victim.ToString(),
         a.geo.country ? KeyName(Dimension::kCountry, a.geo.country, c->lang) : "-",
         fmt::format("{} {:02}:{:02}", TimeZone::DayString(day), sec / 3600, sec % 3600 / 60),
         Dec(static_cast<double>(a.end_us - a.start_us) / 60e6, 1), Num(a.packets),
         Num(a.peak_per_minute), ports.empty() ? "-" : ports});
  }
  tb.note = ja ? fmt::format(
                     "時刻は {}。被害者のアドレスは攻撃された側のもので、攻撃元ではありません。"
                     "全件は `teiten dos --period {}` で得られます。",
                     d.timezone, d.opts.period.Label())
               : fmt::format(
                     "Times in {}. A victim's address is the attacked host's, not an "
                     "attacker's. `teiten dos --period {}` lists every attack.",
                     d.timezone, d.opts.period.Label());
  c->doc.AddTable(std::move(tb));
}

void PortNotesSection(Composer* c, const std::string& number,
                      std::vector<std::pair<std::string, std::string>>* refs) {
  bool ja = c->ja;
  std::vector<const PortNote*> notes;
  for (PortKey k : c->featured) {
    const PortNote* n = FindPortNote(k);
    if (n && std::find(notes.begin(), notes.end(), n) == notes.end()) notes.push_back(n);
  }
  if (notes.empty()) return;
  c->doc.Heading(1, number + (ja ? " 補足説明（ポート番号の解説）" : " Port explanations"),
                 "port-notes-section");
  c->doc.Paragraph(ja ? "本レポートで取り上げた宛先ポート番号について、そのポート番号を使う主なサー"
                        "ビスと、そのポート番号を狙う探索や攻撃を解説します。"
                      : "What uses each destination port featured in this report, and what "
                        "scans and attacks aim at it.");
  TableBlock tb;
  tb.label = c->NextTableLabel();
  tb.id = "port-notes";
  tb.caption = ja ? "ポート番号の解説" : "Port explanations";
  tb.header = {ja ? "ポート番号" : "Port", ja ? "解説" : "Explanation"};
  tb.numeric = {false, false};
  for (const PortNote* n : notes) {
    tb.rows.push_back({n->title, n->Text(c->lang)});
    for (const auto& r : n->refs) refs->push_back({n->title + ": " + r.title, r.url});
  }
  c->doc.AddTable(std::move(tb));
}

void ReferencesSection(Composer* c, const std::string& number,
                       const std::vector<std::pair<std::string, std::string>>& refs) {
  bool ja = c->ja;
  c->doc.Heading(1, number + (ja ? " 参考文献" : " References"), "references");
  std::vector<std::pair<std::string, std::string>> links;
  links.push_back(
      {"(1) Service Name and Transport Protocol Port Number Registry (IANA)", kIanaUrl});
  int n = 2;
  for (const auto& r : refs) {
    links.push_back({fmt::format("({}) {}", n++, r.first), r.second});
  }
  c->doc.Links(std::move(links));
}

std::string Footer(const Composer& c) {
  const ReportData& d = c.data;
  std::string s =
      c.ja ? fmt::format("teiten により作成。期間 {}（{}）、時刻は {}。", d.opts.period.Label(),
                         SpanText(d.opts.period, c.lang), d.timezone)
           : fmt::format("Written by teiten. Period {} ({}), times in {}.", d.opts.period.Label(),
                         SpanText(d.opts.period, c.lang), d.timezone);
  s += c.ja ? fmt::format("\nセンサー: {}", JoinList(d.sensor_ids, c.lang))
            : fmt::format("\nSensors: {}", JoinList(d.sensor_ids, c.lang));
  if (!d.geo_dbs.empty()) {
    s += c.ja ? "\n地域・AS の判定に用いたデータベース: " : "\nRegions and networks from: ";
    s += JoinList(d.geo_dbs, c.lang);
  }
  return s;
}

void Quarterly(Composer* c) {
  const ReportData& d = c->data;
  const Period& p = d.opts.period;
  bool ja = c->ja;
  Document& doc = c->doc;
  doc.title = ja ? "インターネット定点観測レポート" : "Internet Fixed-Point Observation Report";
  doc.subtitle = "[" + SpanText(p, c->lang) + "]";
  for (size_t i = 0; i < d.findings.size(); ++i) {
    c->finding_sections.push_back(fmt::format("2.{}", i + 1));
  }

  doc.Heading(1, ja ? "1. 概況" : "1. Overview", "overview");
  doc.Paragraph(
      ja ? "teiten "
           "では、インターネット上に分散配置した観測用センサーで、不特定多数に向けて発信される"
           "パケットを継続的に収集し、宛先ポート番号や送信元地域ごとに分類して、攻撃活動や準備活動"
           "の"
           "捕捉に努めています。本レポートでは、" +
               ThisPeriodWord(p, c->lang) + "に観測されたパケットを分析した結果について述べます。"
         : "teiten collects the packets that sensors spread over the Internet receive although "
           "nobody should send them any, classifies them by destination port and source region, "
           "and watches them for attacks and their preparation. This report analyses the packets "
           "observed " +
               std::string(p.kind == Period::Kind::kQuarter ? "this quarter" : "in the period") +
               ".");
  doc.Paragraph(TotalsParagraph(*c));

  // Table 1 and Figure 1: ports.
  std::string t1 = c->PeekTableLabel();
  doc.Paragraph(
      ja ? fmt::format("{}に観測されたパケットの宛先ポート番号をパケットが多かった順に並べ"
                       "るとトップ 5 は {} に示すとおりでした。",
                       ThisPeriodWord(p, c->lang), c->Ref(t1))
         : fmt::format("{} lists the five destination ports that received the most "
                       "packets.",
                       t1));
  TopFiveTable(c, d.ports, Dimension::kPort);
  doc.Paragraph(RankChanges(*c, d.ports, Dimension::kPort, 5) + (ja ? "" : " ") +
                LeaderSentence(*c, d.ports, Dimension::kPort));
  std::string f1 = c->PeekFigureLabel();
  doc.Paragraph(
      ja ? fmt::format("{} に示した宛先ポート番号の各パケット観測数の推移を {} に示します。",
                       c->Ref(t1), c->Ref(f1))
         : fmt::format("{} shows the daily packets of the ports in {}.", f1, t1));
  {
    FigureBlock f;
    f.label = c->NextFigureLabel();
    f.id = "figure-top5-ports";
    f.caption = ja ? fmt::format("{}の宛先ポート番号別パケット観測数トップ 5 の推移",
                                 PeriodName(p, c->lang))
                   : fmt::format("Daily packets of the top 5 destination ports, {}",
                                 PeriodName(p, c->lang));
    if (!d.opts.totals) f.caption += ja ? "（1 センサーあたり）" : " (per sensor)";
    f.svg = c->DailyChart(d.port_days, false, false, f.id);
    doc.AddFigure(std::move(f));
  }
  for (size_t i = 0; i < d.findings.size(); ++i) {
    if (d.findings[i].finding.port == 0) continue;
    std::string s = FindingOverviewSentence(*c, i);
    if (!s.empty()) doc.Paragraph(s);
  }

  // Table 2 and Figure 2: regions.
  std::string t2 = c->PeekTableLabel();
  doc.Paragraph(
      ja ? fmt::format("同様に、送信元 IP アドレスを地域ごとにまとめてパケットが多かった順に"
                       "並べたトップ 5 を {} に示します。",
                       c->Ref(t2))
         : fmt::format("Grouping the sources by region, {} lists the five regions that "
                       "sent the most packets.",
                       t2));
  TopFiveTable(c, d.countries, Dimension::kCountry);
  doc.Paragraph(RankChanges(*c, d.countries, Dimension::kCountry, 5) + (ja ? "" : " ") +
                LeaderSentence(*c, d.countries, Dimension::kCountry));
  std::string f2 = c->PeekFigureLabel();
  doc.Paragraph(ja ? fmt::format("{} の送信元地域からのパケット観測数の推移を {} に示します。",
                                 c->Ref(t2), c->Ref(f2))
                   : fmt::format("{} shows the daily packets from the regions in {}.", f2, t2));
  {
    FigureBlock f;
    f.label = c->NextFigureLabel();
    f.id = "figure-top5-regions";
    f.caption =
        ja ? fmt::format("{}の送信元地域別トップ 5 ごとのパケット観測数の推移",
                         PeriodName(p, c->lang))
           : fmt::format("Daily packets from the top 5 source regions, {}", PeriodName(p, c->lang));
    if (!d.opts.totals) f.caption += ja ? "（1 センサーあたり）" : " (per sensor)";
    f.svg = c->DailyChart(d.country_days, false, false, f.id);
    doc.AddFigure(std::move(f));
  }
  for (size_t i = 0; i < d.findings.size(); ++i) {
    if (d.findings[i].finding.port != 0) continue;
    std::string s = FindingOverviewSentence(*c, i);
    if (!s.empty()) doc.Paragraph(s);
  }
  if (d.findings.empty()) {
    doc.Paragraph(
        ja ? "その他については、多少の増減はありましたが、特筆すべき状況の変化は見られませ"
             "んでした。"
           : "Otherwise there were ups and downs, but no change worth singling out.");
  }

  // Top 10 and statistics.
  doc.Heading(2, ja ? "1.1 宛先ポート番号と送信元地域のトップ 10" : "1.1 Top 10 ports and regions",
              "top10");
  TopTenTable(c, d.ports, Dimension::kPort);
  TopTenTable(c, d.countries, Dimension::kCountry);
  doc.Heading(2, ja ? "1.2 センサーあたりの平均と比率" : "1.2 Averages and shares", "stats");
  doc.Paragraph(
      ja ? fmt::format(
               "1 センサーが 1 日に受けたパケットは平均 {} 件、その送信元は平均 {} 個で、送信元 1 "
               "個あたり {} 件でした。",
               Dec(d.summary.packets_per_sensor_day, 1), Dec(d.summary.sources_per_sensor_day, 1),
               Dec(d.summary.packets_per_source, 2))
         : fmt::format("On average a sensor received {} packets a day from {} distinct sources, "
                       "{} packets per source.",
                       Dec(d.summary.packets_per_sensor_day, 1),
                       Dec(d.summary.sources_per_sensor_day, 1),
                       Dec(d.summary.packets_per_source, 2)));
  AveragesTable(c);
  SharesFigure(c, Dimension::kPort);
  SharesFigure(c, Dimension::kCountry);
  if (d.months.size() >= 2) {
    doc.Heading(2, ja ? "1.3 過去 6 か月の統計" : "1.3 The last six months", "six-months");
    SixMonthShares(c, Dimension::kPort, false);
    SixMonthShares(c, Dimension::kCountry, false);
  }

  doc.Heading(1, ja ? "2. 注目された現象" : "2. Notable phenomena", "findings");
  ComposeFindings(c, "2");
  ToolsSection(c, "3.");
  DosSection(c, "4.");

  std::vector<std::pair<std::string, std::string>> refs;
  PortNotesSection(c, "5.", &refs);
  ReferencesSection(c, "6.", refs);
  doc.footer = Footer(*c);
}

// TALOT2 Figure 1.1: six months of per-sensor-per-day accesses and sources.
void SixMonthAverages(Composer* c) {
  const ReportData& d = c->data;
  bool ja = c->ja;
  chart::BarsAndLineChart bc;
  bc.id = "six-month-averages";
  bc.lang = c->ChartLang();
  bc.monthly = true;
  bc.bars.name = ja ? "アクセス数" : "Accesses";
  bc.line.name = ja ? "発信元数" : "Sources";
  bc.y_label = ja ? "1 観測点 1 日あたりのアクセス数" : "accesses per sensor per day";
  bc.y2_label = ja ? "1 観測点 1 日あたりの発信元数" : "sources per sensor per day";
  for (const auto& m : d.months) {
    bc.days.push_back(m.month.first_day);
    bc.bars.values.push_back(m.summary.packets_per_sensor_day);
    bc.line.values.push_back(m.summary.sources_per_sensor_day);
  }
  FigureBlock f;
  f.label = c->NextFigureLabel();
  f.id = bc.id;
  f.caption = ja ? "1 観測点での 1 日あたりの期待しない（一方的な）アクセス数および発信元数"
                 : "Unsolicited accesses and their sources per sensor per day";
  f.svg = chart::BarsAndLine(bc);
  c->doc.AddFigure(std::move(f));
}

// The direction of a monthly average over the six months: a least-squares slope against the
// mean, "falling" when the fit drops by more than 5% of the mean over the span.
int Trend(const std::vector<double>& v) {
  size_t n = v.size();
  if (n < 3) return 0;
  double mx = (static_cast<double>(n) - 1) / 2, my = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (static_cast<double>(i) - mx) * (v[i] - my);
    sxx += (static_cast<double>(i) - mx) * (static_cast<double>(i) - mx);
  }
  if (my <= 0 || sxx <= 0) return 0;
  double change = sxy / sxx * static_cast<double>(n - 1) / my;
  if (change > 0.05) return 1;
  if (change < -0.05) return -1;
  return 0;
}

void Monthly(Composer* c) {
  const ReportData& d = c->data;
  const Period& p = d.opts.period;
  bool ja = c->ja;
  Document& doc = c->doc;
  const SummaryResult& s = d.summary;
  std::string month = PeriodName(p, c->lang);
  doc.title = ja ? "インターネット定点観測での観測状況について"
                 : "What the Internet fixed-point observation saw";
  doc.subtitle = "[" + month + "]";
  for (size_t i = 0; i < d.findings.size(); ++i) {
    c->finding_sections.push_back(fmt::format("2.{}", i + 1));
  }
  size_t nsensors = d.sensor_ids.size();
  uint64_t per_source = static_cast<uint64_t>(std::llround(s.packets_per_source));

  doc.Heading(1, ja ? "1. 一般のインターネット利用者の皆さんへ" : "1. For the general reader",
              "general");
  doc.Paragraph(
      ja ? fmt::format(
               "インターネット定点観測によると、{}の期待しない（一方的な）アクセスの総数は、{}"
               "観測点で {} 件ありました。1 観測点で 1 日あたり {} の発信元から {} 件のアクセ"
               "スがあったことになります。",
               month, nsensors, Num(s.packets), Num(std::llround(s.sources_per_sensor_day)),
               Num(std::llround(s.packets_per_sensor_day)))
         : fmt::format("In {}, the {} sensors of the observation received {} unsolicited accesses "
                       "in all: each sensor received, per day, {} accesses from {} sources.",
                       month, nsensors, Num(s.packets), Num(std::llround(s.packets_per_sensor_day)),
                       Num(std::llround(s.sources_per_sensor_day))));
  doc.Strong(
      ja ? fmt::format("観測点と同じような接続環境にあるコンピュータは、毎日、平均して、{} 人の"
                       "見知らぬ人（発信元）から、発信元一人当たり {} 件の不正と思われるアク"
                       "セスを受けていることになります。",
                       Num(std::llround(s.sources_per_sensor_day)), Num(per_source))
         : fmt::format("In other words, a computer on a connection like a sensor's "
                       "receives, every day, on average, {} likely malicious accesses from "
                       "each of {} strangers (sources).",
                       Num(per_source), Num(std::llround(s.sources_per_sensor_day))));
  if (d.months.size() >= 2) {
    std::string f11 = c->PeekFigureLabel();
    std::vector<double> pk, sr;
    for (const auto& m : d.months) {
      pk.push_back(m.summary.packets_per_sensor_day);
      sr.push_back(m.summary.sources_per_sensor_day);
    }
    std::string span = MonthRange(d.months.front().month, d.months.back().month, c->lang);
    int tp = Trend(pk), ts = Trend(sr);
    std::string trend_ja = tp > 0   ? "増加傾向にあります"
                           : tp < 0 ? "減少傾向にあります"
                                    : "ほぼ横ばいです";
    std::string trend_en = tp > 0 ? "are rising" : tp < 0 ? "are falling" : "are level";
    std::string src_ja = ts == tp ? ""
                         : ts > 0 ? "一方、発信元数は増加傾向にあります。"
                         : ts < 0 ? "一方、発信元数は減少傾向にあります。"
                                  : "一方、発信元数はほぼ横ばいです。";
    std::string src_en = ts == tp ? ""
                         : ts > 0 ? " The number of sources, however, is rising."
                         : ts < 0 ? " The number of sources, however, is falling."
                                  : " The number of sources, however, is level.";
    doc.Paragraph(
        ja ? fmt::format("{}までの各月の 1 観測点での 1 日あたりの平均アクセス数および、そ"
                         "れらのアクセスの平均発信元数を {} に示します。この図を見ると、期"
                         "待しない（一方的な）アクセスは{}。{}",
                         span, c->Ref(f11), trend_ja, src_ja)
           : fmt::format("{} shows, for each month of {}, the average accesses per "
                         "sensor per day and their sources. Unsolicited accesses {}.{}",
                         f11, span, trend_en, src_en));
    SixMonthAverages(c);
  }

  doc.Heading(
      1, ja ? fmt::format("2. {}のアクセス状況", month) : fmt::format("2. Accesses in {}", month),
      "month");
  {
    std::string s2;
    if (d.has_previous) {
      s2 = ja ? fmt::format("{}の 1 観測点 1 日あたりのアクセス数は前月と比べて{}。", month,
                            ChangePhrase(d.prev_summary.packets_per_sensor_day,
                                         s.packets_per_sensor_day, c->lang))
              : fmt::format(
                    "The number of accesses per sensor per day {} from the previous "
                    "month.",
                    ChangePhrase(d.prev_summary.packets_per_sensor_day, s.packets_per_sensor_day,
                                 c->lang));
    }
    // The leading ports' combined share.
    std::vector<std::string> names;
    double share = 0;
    for (size_t i = 0; i < d.ports.rows.size() && i < 3; ++i) {
      names.push_back(PortShort(static_cast<PortKey>(d.ports.rows[i].key)));
      share += d.ports.rows[i].share;
    }
    if (!names.empty()) {
      s2 += ja ? fmt::format(
                     "アクセスの多かった上位 {} ポート（{}）の合計が、全体の {} を占めました。",
                     names.size(), JoinList(names, c->lang), Pct(share))
               : fmt::format(" The {} most accessed ports ({}) took {} of all accesses.",
                             names.size(), JoinList(names, c->lang), Pct(share));
    }
    doc.Paragraph(s2);
  }
  ComposeFindings(c, "2");
  size_t sec = d.findings.size() + 1;

  doc.Heading(2,
              ja ? fmt::format("2.{} {}の一方的なアクセス状況", sec, month)
                 : fmt::format("2.{} Daily accesses in {}", sec, month),
              "daily");
  std::string fa = c->PeekFigureLabel();
  std::string fb = fmt::format("{} {}", ja ? "図" : "Figure", c->figures() + 2);
  doc.Paragraph(
      ja ? fmt::format("{}の一方的なアクセス状況（アクセス数）の遷移を {} に、一方的なアクセ"
                       "ス状況（発信元数）の遷移を {} に示します。",
                       month, c->Ref(fa), c->Ref(fb))
         : fmt::format("{} shows the daily accesses of {} and {} their daily sources.", fa, month,
                       fb));
  for (bool sources : {false, true}) {
    FigureBlock f;
    f.label = c->NextFigureLabel();
    f.id = sources ? "daily-sources" : "daily-accesses";
    f.caption =
        ja ? fmt::format("{}の一方的なアクセス状況（{}）", month,
                         sources ? "発信元数" : "アクセス数")
           : fmt::format("Unsolicited {} per day, {}", sources ? "sources" : "accesses", month);
    f.svg = c->DailyChart(d.total_days, sources, false, f.id);
    doc.AddFigure(std::move(f));
  }

  ++sec;
  doc.Heading(2,
              ja ? fmt::format("2.{} {}の宛先（ポート種類）別の比率", sec, month)
                 : fmt::format("2.{} Shares by destination port, {}", sec, month),
              "port-shares");
  SharesFigure(c, Dimension::kPort);
  TopTenTable(c, d.ports, Dimension::kPort);

  ++sec;
  doc.Heading(2,
              ja ? fmt::format("2.{} {}の発信元地域別アクセス状況", sec, month)
                 : fmt::format("2.{} Accesses by source region, {}", sec, month),
              "regions");
  for (bool sources : {false, true}) {
    FigureBlock f;
    f.label = c->NextFigureLabel();
    f.id = sources ? "region-sources" : "region-accesses";
    f.caption =
        ja ? fmt::format("{}の発信元地域別{}の変化", month, sources ? "発信元数" : "アクセス数")
           : fmt::format("Daily {} by source region, {}", sources ? "sources" : "accesses", month);
    f.svg = c->DailyChart(d.country_days, sources, false, f.id);
    doc.AddFigure(std::move(f));
  }
  SharesFigure(c, Dimension::kCountry);
  TopTenTable(c, d.countries, Dimension::kCountry);

  if (d.months.size() >= 2) {
    std::string span = MonthRange(d.months.front().month, d.months.back().month, c->lang);
    doc.Heading(1, ja ? "3. 統計情報" : "3. Statistics", "statistics");
    doc.Heading(2, ja ? fmt::format("3.1 {}の宛先（ポート種類）別の比率", span)
                      : fmt::format("3.1 Shares by destination port, {}", span));
    SixMonthShares(c, Dimension::kPort, false);
    SixMonthShares(c, Dimension::kPort, true);
    doc.Heading(2, ja ? fmt::format("3.2 {}の発信元地域別の比率", span)
                      : fmt::format("3.2 Shares by source region, {}", span));
    SixMonthShares(c, Dimension::kCountry, false);
    SixMonthShares(c, Dimension::kCountry, true);
  }
  AveragesTable(c);

  std::vector<std::pair<std::string, std::string>> refs;
  PortNotesSection(c, "4.", &refs);
  ReferencesSection(c, "5.", refs);
  doc.footer = Footer(*c);
}

}  // namespace

Document ComposeReport(const ReportData& data) {
  Composer c(data);
  c.doc.lang = data.opts.lang;
  if (data.opts.layout == Layout::kMonthly) {
    Monthly(&c);
  } else {
    Quarterly(&c);
  }
  return std::move(c.doc);
}

}  // namespace teiten::report
