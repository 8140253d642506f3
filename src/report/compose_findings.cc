// The notable phenomena (SPEC A6, §3 item 6): each finding with its facts in sentences and its
// figures — the port by source region over the period, and the long-term series since the first
// stored data.
#include <fmt/format.h>

#include <cmath>
#include <map>

#include "common/time_zone.h"
#include "report/compose.h"

namespace teiten::report {
namespace {

std::string Count(double v) {
  return Num(static_cast<uint64_t>(std::llround(std::max(0.0, v))));
}

// The finding's port or country as a sentence names it ("the Netherlands").
std::string Subject(const Finding& f, Lang lang) {
  if (f.has_port) return PortShort(f.port);
  return CountryInText(f.country, lang);
}
// As a legend names it.
std::string SubjectLabel(const Finding& f, Lang lang) {
  if (f.has_port) return PortShort(f.port);
  return CountryText(f.country, lang);
}

// The finding's first fact of `kind`, if any.
const FindingFact* FactOf(const Finding& f, FindingKind kind) {
  for (const FindingFact& x : f.facts) {
    if (x.kind == kind) return &x;
  }
  return nullptr;
}
// A spike that stayed (a level shift) or is still going at the period's end.
bool Lasting(const FindingFact& x) {
  return x.level_shift || x.last_day == kNoDay;
}

// "8月12日～8月13日" / "August 12 to August 13"; "8月12日以降" / "since August 12".
std::string When(int32_t first, int32_t last, Lang lang) {
  bool ja = lang == Lang::kJa;
  if (last == kNoDay) return ja ? DayText(first, lang) + "以降" : "since " + DayText(first, lang);
  if (last == first) return ja ? DayText(first, lang) + "に" : "on " + DayText(first, lang);
  return ja ? DayText(first, lang) + "～" + DayText(last, lang) + "に"
            : "from " + DayText(first, lang) + " to " + DayText(last, lang);
}

// The finding's port and its related ports: "8080/TCP、8081/TCP、81/TCP".
std::string PortList(const Finding& f, Lang lang) {
  std::vector<std::string> ports = {PortShort(f.port)};
  for (PortKey k : f.related_ports) ports.push_back(PortShort(k));
  return JoinList(ports, lang);
}

std::string Title(const Finding& f, Lang lang) {
  bool ja = lang == Lang::kJa;
  std::string s = Subject(f, lang);
  switch (f.kind) {
    case FindingKind::kSpike: {
      const FindingFact* x = FactOf(f, FindingKind::kSpike);
      if (x && Lasting(*x)) {
        return ja ? fmt::format("{} 宛のパケットの急増", s)
                  : fmt::format("A jump in packets to {}", s);
      }
      return ja ? fmt::format("{} 宛のパケットの一時的な増加", s)
                : fmt::format("A spike of packets to {}", s);
    }
    case FindingKind::kRise: {
      const FindingFact* x = FactOf(f, FindingKind::kRise);
      if (!f.has_port) {
        return ja ? fmt::format("{}からのパケットの増加", s)
                  : fmt::format("More packets from {}", s);
      }
      if (x && x->on_packets) {
        return ja ? fmt::format("{} 宛のパケットの増加", s) : fmt::format("More packets to {}", s);
      }
      return ja ? fmt::format("{} 宛のパケットの送信元の増加", s)
                : fmt::format("More and more sources probing {}", s);
    }
    case FindingKind::kTopEntry:
      return ja ? fmt::format("{} 宛のパケットのトップ 10 入り", s)
                : fmt::format("{} enters the top 10", s);
    case FindingKind::kDominantSource:
      return ja ? fmt::format("特定の送信元による {} 宛の探索", s)
                : fmt::format("{} probed mostly by one source", s);
    case FindingKind::kPortsTogether: {
      std::vector<std::string> ports = {s};
      for (PortKey k : f.related_ports) ports.push_back(PortShort(k));
      return ja ? fmt::format("{} 宛のパケットの同時増加", JoinList(ports, lang))
                : fmt::format("{} rising together", JoinList(ports, lang));
    }
    case FindingKind::kRegionEntry:
      return ja ? fmt::format("{}からのパケットの増加", s) : fmt::format("More packets from {}", s);
    case FindingKind::kRegionSilent:
      return ja ? fmt::format("{}からの送信元の急減", s)
                : fmt::format("Sources in {} fall silent", s);
  }
  return s;
}

std::string PrevRankWords(int prev_rank, const Period& p, Lang lang) {
  bool ja = lang == Lang::kJa;
  std::string prev = PreviousPeriodWord(p, lang);
  if (prev_rank > 0)
    return ja ? fmt::format("{}は {} 位", prev, prev_rank)
              : fmt::format("{} in {}", Ordinal(prev_rank), prev);
  if (prev_rank == kRankOutOfTop)
    return ja ? prev + "はトップ10圏外" : "outside the top 10 in " + prev;
  if (prev_rank == kRankNew) return ja ? prev + "は観測なし" : "not seen in " + prev;
  return ja ? "前期のデータなし" : "no earlier data";
}

// One sentence per fact, in the fact's own terms.
std::string FactSentence(const Composer& c, const Finding& f, const FindingFact& x) {
  Lang lang = c.lang;
  bool ja = c.ja;
  std::string s = Subject(f, lang);
  const Period& p = c.data.opts.period;
  switch (x.kind) {
    case FindingKind::kSpike: {
      std::string peak;
      bool one_day = x.last_day != kNoDay && x.last_day == x.first_day;
      if (x.peak_day != kNoDay && !one_day) {
        peak = ja ? fmt::format("最も多かった{}には {} 件でした。", DayText(x.peak_day, lang),
                                Num(x.peak_packets))
                  : fmt::format(" The peak was {} packets on {}.", Num(x.peak_packets),
                                DayText(x.peak_day, lang));
      }
      // Against a baseline of (almost) nothing a ratio says nothing.
      bool from_nothing = x.packets_before < 1;
      std::string level =
          from_nothing
              ? (ja ? fmt::format(
                          "それまでほとんど観測されていなかったパケットが 1 日あたり平均 {} 件"
                          "観測されました。",
                          Count(x.packets_after))
                    : fmt::format(" Almost nothing had been seen there before; it received {} "
                                  "packets a day on average.",
                                  Count(x.packets_after)))
              : (ja ? fmt::format(
                          "1 日あたりのパケット数は、それまでの {} 件から平均 {} 件（{} 倍）と"
                          "なりました。",
                          Count(x.packets_before), Count(x.packets_after), Dec(x.ratio, 1))
                    : fmt::format(" Packets rose from a baseline of {} a day to an average of {} "
                                  "({}×).",
                                  Count(x.packets_before), Count(x.packets_after),
                                  Dec(x.ratio, 1)));
      if (x.level_shift) {
        // The level's mean, not its peak: a spike on top of the new level is a fact of its own.
        return ja ? fmt::format(
                        "{}から、{} 宛のパケットが急増し、その後も高い水準が続いています。"
                        "{}",
                        DayText(x.first_day, lang), s, level)
                  : fmt::format("On {}, packets to {} jumped, and they have stayed high.{}",
                                DayText(x.first_day, lang), s, level);
      }
      return ja ? fmt::format("{}、{} 宛のパケットが突発的に増加しました。{}{}",
                              When(x.first_day, x.last_day, lang), s, level, peak)
                : fmt::format("{}, packets to {} spiked.{}{}",
                              Capitalized(When(x.first_day, x.last_day, lang)), s, level, peak);
    }
    case FindingKind::kRise: {
      // A port's packets arrive "to" it; a region's come "from" it.
      std::string who = f.has_port ? (ja ? s + " 宛のパケット" : "to " + s)
                                   : (ja ? s + "からのパケット" : "from " + s);
      if (x.from_zero) {
        // No baseline to rise from: the first day and where it stands now (issue 14).
        return ja ? fmt::format(
                        "{}は{}に現れました（それまで観測されていませんでした）。直近 1 週間の"
                        "1 日あたりの送信元数は {} 個、パケット数は {} 件です。",
                        f.has_port ? s + " 宛のパケット" : s + "からのパケット",
                        DayText(x.first_day, lang), Count(x.sources_after), Count(x.packets_after))
                  : fmt::format(
                        "Packets {} appeared on {} (none had been seen before); in the "
                        "last week, {} distinct sources and {} packets a day.",
                        who, DayText(x.first_day, lang), Count(x.sources_after),
                        Count(x.packets_after));
      }
      if (x.on_packets) {
        std::string base =
            ja ? fmt::format(
                     "{}頃より、{}が増加傾向にあります。1 日あたりのパケット数は {} 件から直近 1 "
                     "週間の {} 件に増えました（1 日あたり約 {} 件の増加）。",
                     DayText(x.first_day, lang), who, Count(x.packets_before),
                     Count(x.packets_after), Count(x.slope))
               : fmt::format(
                     "Since about {}, packets {} have been rising steadily: from {} a day to {} "
                     "in the last week (about {} more each day).",
                     DayText(x.first_day, lang), who, Count(x.packets_before),
                     Count(x.packets_after), Count(x.slope));
        if (x.sources_before > 0 && x.sources_after > 0) {
          base += ja ? fmt::format("1 日あたりの送信元数は {} 個から {} 個となりました（{}）。",
                                   Count(x.sources_before), Count(x.sources_after),
                                   ChangeShort(x.sources_before, x.sources_after, lang))
                     : fmt::format(" Distinct sources a day went from {} to {} ({}).",
                                   Count(x.sources_before), Count(x.sources_after),
                                   ChangeShort(x.sources_before, x.sources_after, lang));
        }
        return base;
      }
      std::string base =
          ja ? fmt::format(
                   "{}頃より、{}の送信元 IP アドレス数が増加傾向にあります。1 日あたりの送信元"
                   "数は {} 個から直近 1 週間の {} 個に増えました（1 日あたり約 {} 個の増加）。",
                   DayText(x.first_day, lang), who, Count(x.sources_before), Count(x.sources_after),
                   Dec(x.slope, 1))
             : fmt::format(
                   "Since about {}, the number of distinct sources sending packets {} has been "
                   "rising steadily: from {} a day to {} in the last week (about {} more each "
                   "day).",
                   DayText(x.first_day, lang), who, Count(x.sources_before), Count(x.sources_after),
                   Dec(x.slope, 1));
      if (x.packets_before > 0 && x.packets_after > 0) {
        base += ja ? fmt::format("1 日あたりのパケット数は {} 件から {} 件となりました（{}）。",
                                 Count(x.packets_before), Count(x.packets_after),
                                 ChangeShort(x.packets_before, x.packets_after, lang))
                   : fmt::format(" Packets per day went from {} to {} ({}).",
                                 Count(x.packets_before), Count(x.packets_after),
                                 ChangeShort(x.packets_before, x.packets_after, lang));
      }
      return base;
    }
    case FindingKind::kTopEntry:
    case FindingKind::kRegionEntry: {
      bool region = x.kind == FindingKind::kRegionEntry;
      std::string where = region ? (ja ? "送信元地域" : "source regions")
                                 : (ja ? "宛先ポート番号" : "destination ports");
      int top = region ? 5 : 10;
      std::string from = PrevRankWords(x.prev_rank, p, lang);
      std::string who = region ? (ja ? s + "からのパケット" : "Packets from " + s)
                               : (ja ? s + " 宛のパケット" : "Packets to " + s);
      // A port with no packets before (a fact of its finding says so) appeared on its first
      // day: it did not rise from anything.
      int32_t appeared = kNoDay;
      for (const FindingFact& y : f.facts) {
        if (y.from_zero && y.first_day != kNoDay) appeared = y.first_day;
      }
      std::string since, since_en;
      if (appeared != kNoDay) {
        since = DayText(appeared, lang) + "に現れ、";
        since_en = ", which appeared on " + DayText(appeared, lang) + ",";
      } else if (x.first_day != kNoDay) {
        since = DayText(x.first_day, lang) + "頃から増加し、";
        since_en = ", rising since about " + DayText(x.first_day, lang) + ",";
      }
      return ja ? fmt::format("{}は{}{}のトップ {} で {} 位になりました（{}）。", who, since, where,
                              top, x.rank, from)
                : fmt::format("{}{} ranked {} among the {} (top {}; {}).", who, since_en,
                              Ordinal(x.rank), where, top, from);
    }
    case FindingKind::kRegionSilent:
      return ja ? fmt::format(
                      "{}、{}からの 1 日あたりの送信元 IP アドレス数が {} 個から {} 個に急減し"
                      "ました。当該地域のネットワーク障害や遮断の可能性があります。",
                      When(x.first_day, x.last_day, lang), s, Count(x.sources_before),
                      Count(x.sources_after))
                : fmt::format(
                      "{}, the distinct sources from {} fell from {} a day to {}. A "
                      "network outage or shutdown in that region is a possible cause.",
                      Capitalized(When(x.first_day, x.last_day, lang)), s, Count(x.sources_before),
                      Count(x.sources_after));
    case FindingKind::kPortsTogether: {
      std::vector<std::string> ports = {s};
      for (PortKey k : f.related_ports) ports.push_back(PortShort(k));
      return ja ? fmt::format(
                      "{}頃から、{} 宛のパケットが同時に増加しており、その送信元の多くは共通"
                      "しています。同じマルウェアなどが探索するポートを変更、または追加した"
                      "可能性があります。",
                      DayText(x.first_day, lang), JoinList(ports, lang))
                : fmt::format(
                      "Since about {}, packets to {} have been rising together, largely "
                      "from the same sources: the same malware, or the same operators, "
                      "may have changed or added the ports they scan.",
                      DayText(x.first_day, lang), JoinList(ports, lang));
    }
    case FindingKind::kDominantSource:
      return "";  // told with the sources below
  }
  return "";
}

std::string SourceSentence(const Composer& c, const Finding& f, const SourceEvidence& e) {
  Lang lang = c.lang;
  bool ja = c.ja;
  std::string who = e.addr.ToString();
  std::string where = CountryText(e.country, lang);
  if (e.asn != 0) {
    const std::string org = AsnNameIn(c.data.opts.asn_names, e.asn);
    std::string sep = ja ? "、" : ", ";
    where +=
        org.empty() ? fmt::format("{}AS{}", sep, e.asn) : fmt::format("{}AS{} {}", sep, e.asn, org);
  }
  int32_t first = c.data.tz.LocalDay(e.first_seen_us);
  int32_t last = c.data.tz.LocalDay(e.last_seen_us);
  std::vector<std::string> other;
  for (const auto& p : e.other_ports) {
    if (p.port == f.port) continue;
    other.push_back(PortShort(p.port));
    if (other.size() == 6) break;
  }
  std::string s =
      ja ? fmt::format(
               "{} 宛のパケットの {} は、1 つの送信元 IP アドレス {}（{}）から送られたもので"
               "した。",
               Subject(f, lang), Pct(e.share), who, where)
         : fmt::format("{} of the packets to {} came from one source, {} ({}).", Pct(e.share),
                       Subject(f, lang), who, where);
  Period seen = DaysPeriod(first, last + 1);
  const size_t selected = c.data.opts.sensors.sensors.size();
  if (selected == 0) {
    s += ja ? fmt::format("この送信元は {}の間の {} 日間、{} 台のセンサーで観測されており、",
                          SpanText(seen, lang), e.days_seen, e.sensors_seen)
            : fmt::format(" It was seen on {} day{} ({}) by {} sensor{}", e.days_seen,
                          e.days_seen == 1 ? "" : "s", SpanText(seen, lang), e.sensors_seen,
                          e.sensors_seen == 1 ? "" : "s");
  } else {
    // A report on some sensors: every number is theirs (the source's days, span and other
    // ports at those sensors).
    s += ja ? fmt::format(
                  "この送信元は、本レポートの対象センサー {} 台のうち {} 台で、{}の間の {} 日間観測"
                  "されており、",
                  selected, e.sensors_seen, SpanText(seen, lang), e.days_seen)
            : fmt::format(" It was seen by {} of the {} sensors of this report, on {} day{} ({})",
                          e.sensors_seen, selected, e.days_seen, e.days_seen == 1 ? "" : "s",
                          SpanText(seen, lang));
  }
  if (other.empty()) {
    s += ja ? fmt::format("{} 以外のポートにはパケットを送っていませんでした。", Subject(f, lang))
            : fmt::format(", and sent nothing to ports other than {}.", Subject(f, lang));
  } else {
    s += ja ? fmt::format("{} 以外に {} にもパケットを送っていました。", Subject(f, lang),
                          JoinList(other, lang))
            : fmt::format(", and also probed {}.", JoinList(other, lang));
  }
  if (!e.tags.empty()) {
    s += ja ? fmt::format("ツールの特徴: {}。", JoinList(e.tags, lang))
            : fmt::format(" Tool traits: {}.", JoinList(e.tags, lang));
  }
  return s;
}

// A tool tag as readers know it ("mirai" → "Mirai").
std::string ToolName(const std::string& tag, Lang lang) {
  static const std::map<std::string, std::pair<std::string, std::string>> names = {
      {"mirai", {"Mirai", "Mirai"}},
      {"zmap", {"ZMap", "ZMap"}},
      {"masscan", {"Masscan", "Masscan"}},
      {"nmap", {"Nmap", "Nmap"}},
      {"unicornscan", {"Unicornscan", "Unicornscan"}},
      {"sipvicious", {"SIPVicious", "SIPVicious"}},
      {"backscatter", {"backscatter", "バックスキャッタ"}},
      {"spoofed", {"spoofed traffic", "送信元詐称"}},
      {"research", {"a research scanner", "研究目的のスキャナー"}},
  };
  auto it = names.find(tag);
  if (it == names.end()) return tag;
  return lang == Lang::kJa ? it->second.second : it->second.first;
}

// Who sent a port finding's packets in its first days: "Of the 652 sources … 72.0% carried the
// fingerprint of Mirai" (Finding::tools; docs/FINGERPRINTS.md gives the rules).
std::string ToolsSentence(const Composer& c, const Finding& f) {
  if (!f.has_port || f.tool_sources == 0 || f.tools.empty()) return "";
  const std::string when = When(f.tool_first_day, f.tool_last_day, c.lang);
  const std::string port = PortShort(f.port);
  // "all" rather than 100.0%, the one source rather than "1 sources".
  auto share = [&](const FindingTool& t) -> std::string {
    if (t.sources == f.tool_sources) return c.ja ? "すべて" : "all";
    return Pct(t.source_share);
  };
  if (c.ja) {
    std::vector<std::string> parts;
    for (const FindingTool& t : f.tools) {
      parts.push_back(fmt::format("{}に {} ", share(t), ToolName(t.tag, c.lang)));
    }
    std::string list;
    for (size_t i = 0; i < parts.size(); ++i) list += (i ? "、" : "") + parts[i];
    if (f.tool_sources == 1) {
      return fmt::format("{}{}へ送信した唯一の送信元には {} の特徴がありました。", when, port,
                         ToolName(f.tools[0].tag, c.lang));
    }
    return fmt::format("{}{}へ送信した送信元 {} 個のうち、{}の特徴がありました。", when, port,
                       Num(f.tool_sources), list);
  }
  if (f.tool_sources == 1) {
    return fmt::format("The only source that sent to {} {} carried the fingerprint of {}.", port,
                       when, ToolName(f.tools[0].tag, c.lang));
  }
  std::vector<std::string> parts;
  for (size_t i = 0; i < f.tools.size(); ++i) {
    const FindingTool& t = f.tools[i];
    parts.push_back(fmt::format("{} {} of {}", share(t),
                                i == 0 ? "carried the fingerprint" : "that",
                                ToolName(t.tag, c.lang)));
  }
  return fmt::format("Of the {} sources that sent to {} {}, {}.", Num(f.tool_sources), port, when,
                     JoinList(parts, c.lang));
}

std::string RegionsSentence(const Composer& c, const Finding& f) {
  if (f.top_regions.empty()) return "";
  std::vector<std::string> parts;
  for (const auto& r : f.top_regions) {
    parts.push_back(c.ja ? fmt::format("{}（{}）", CountryText(r.country, c.lang), Pct(r.share))
                         : fmt::format("{} ({})", CountryInText(r.country, c.lang), Pct(r.share)));
  }
  if (parts.size() == 1) {
    return c.ja ? fmt::format("期間中の送信元地域は、{}でした。", parts[0])
                : fmt::format("The source region was {}.", parts[0]);
  }
  return c.ja ? fmt::format("期間中の主な送信元地域は、{}でした。", JoinList(parts, c.lang))
              : fmt::format("The main source regions were {}.", JoinList(parts, c.lang));
}

std::string OtherName(Lang lang) {
  return lang == Lang::kJa ? "その他" : "Other";
}

Result<DailySet> DailySeries(const Store& store, Dimension dim, const std::vector<uint64_t>& keys,
                             const std::vector<std::string>& names, const Period& p, Granularity g,
                             const SensorSelection& sel) {
  ASSIGN_OR_RETURN(SeriesResult s, Series(store, dim, keys, p, g, sel));
  DailySet d;
  d.names = names;
  d.keys = keys;
  d.packets.assign(names.size(), {});
  d.sources.assign(names.size(), {});
  for (const auto& pt : s.points) {
    int y = 0;
    unsigned m = 0, dd = 0;
    if (std::sscanf(pt.label.c_str(), "%d-%u-%u", &y, &m, &dd) != 3) {
      return Internal("series label '" + pt.label + "' is not a date");
    }
    d.days.push_back(TimeZone::DaysFromCivil(y, m, dd));
    for (size_t i = 0; i < names.size(); ++i) {
      d.packets[i].push_back(i < pt.packets.size() ? pt.packets[i] : 0);
      d.sources[i].push_back(i < pt.sources.size() ? pt.sources[i] : 0);
    }
  }
  return d;
}

}  // namespace

Status FillFindingFigures(const Store& store, const ReportData& data, FindingFigure* ff) {
  const Finding& f = ff->finding;
  const FigureHint& h = f.figure;
  const SensorSelection& sel = data.opts.sensors;
  Lang lang = data.opts.lang;
  Period span = DaysPeriod(h.first_day, h.end_day);
  if (span.days() <= 0) span = data.opts.period;
  switch (h.series) {
    case FigureHint::Series::kPortByCountry: {
      if (!f.has_port) break;
      ASSIGN_OR_RETURN(SeriesResult s, PortByCountry(store, f.port, span, sel, 5));
      DailySet& d = ff->by_region;
      for (uint64_t k : s.keys) {
        d.keys.push_back(k);
        d.names.push_back(CountryText(static_cast<CountryCode>(k), lang));
      }
      d.keys.push_back(kOtherKey);
      d.names.push_back(OtherName(lang));
      d.packets.assign(d.names.size(), {});
      d.sources.assign(d.names.size(), {});
      for (size_t i = 0; i < s.points.size(); ++i) {
        d.days.push_back(span.first_day + static_cast<int32_t>(i));
        for (size_t j = 0; j < d.names.size(); ++j) {
          d.packets[j].push_back(j < s.points[i].packets.size() ? s.points[i].packets[j] : 0);
          d.sources[j].push_back(0);
        }
      }
      break;
    }
    case FigureHint::Series::kPorts: {
      std::vector<uint64_t> keys;
      std::vector<std::string> names;
      for (PortKey k : h.ports) {
        keys.push_back(k);
        names.push_back(PortShort(k));
      }
      if (keys.empty() && f.has_port) {
        keys.push_back(f.port);
        names.push_back(PortShort(f.port));
      }
      ASSIGN_OR_RETURN(ff->by_region, DailySeries(store, Dimension::kPort, keys, names, span,
                                                  Granularity::kDay, sel));
      break;
    }
    case FigureHint::Series::kCountry: {
      CountryCode cc = !h.countries.empty() ? h.countries[0] : f.country;
      ASSIGN_OR_RETURN(ff->by_region,
                       DailySeries(store, Dimension::kCountry, {cc}, {CountryText(cc, lang)}, span,
                                   Granularity::kDay, sel));
      break;
    }
  }
  // The long-term series, when the store holds more than the period.
  if (h.long_first_day < data.opts.period.first_day && h.long_end_day > h.long_first_day) {
    Period lt = DaysPeriod(h.long_first_day, h.long_end_day);
    Dimension dim = f.has_port ? Dimension::kPort : Dimension::kCountry;
    uint64_t key = f.has_port ? f.port : f.country;
    ASSIGN_OR_RETURN(ff->long_term, DailySeries(store, dim, {key}, {SubjectLabel(f, lang)}, lt,
                                                h.long_granularity, sel));
  }
  return OkStatus();
}

std::string FindingOverviewSentence(const Composer& c, size_t i) {
  const Finding& f = c.data.findings[i].finding;
  Lang lang = c.lang;
  bool ja = c.ja;
  std::string section = i < c.finding_sections.size() ? c.finding_sections[i] : "";
  std::string pointer =
      ja ? fmt::format("本現象については、「{} {}」の節で述べます。", section, Title(f, lang))
         : fmt::format(" Section {}, \"{}\", describes it.", section, Title(f, lang));
  std::string s = Subject(f, lang);
  std::string head;
  switch (f.kind) {
    case FindingKind::kSpike: {
      const FindingFact* x = FactOf(f, FindingKind::kSpike);
      if (x && Lasting(*x)) {
        head = ja ? fmt::format("{}から、{} 宛のパケットが急増し、高い水準が続いています。",
                                DayText(f.first_day, lang), s)
                  : fmt::format("Packets to {} jumped on {} and have stayed high.", s,
                                DayText(f.first_day, lang));
      } else {
        head = ja ? fmt::format("{}、{} 宛のパケットが一時的に増加しました。",
                                When(f.first_day, f.last_day, lang), s)
                  : fmt::format("Packets to {} spiked {}.", s, When(f.first_day, f.last_day, lang));
      }
      break;
    }
    case FindingKind::kRise:
    case FindingKind::kPortsTogether:
    case FindingKind::kTopEntry:
      if (!f.has_port) {
        head = f.first_day != kNoDay
                   ? (ja ? fmt::format("{}からのパケットが、{}以降増加傾向にあります。", s,
                                       DayText(f.first_day, lang))
                         : fmt::format("Packets from {} have been rising since {}.", s,
                                       DayText(f.first_day, lang)))
                   : (ja ? fmt::format("{}からのパケットが増加しました。", s)
                         : fmt::format("Packets from {} increased.", s));
      } else if (f.first_day != kNoDay && f.facts.front().from_zero &&
                 f.kind != FindingKind::kPortsTogether) {
        head = ja ? fmt::format("{} 宛のパケットが{}に現れ、増加しています。", s,
                                DayText(f.first_day, lang))
                  : fmt::format("Packets to {} appeared on {} and have been rising since.", s,
                                DayText(f.first_day, lang));
      } else if (f.first_day != kNoDay && f.kind == FindingKind::kRise &&
                 !f.facts.front().on_packets) {
        // The section measures distinct sources: so does the overview.
        head =
            ja ? fmt::format("{} 宛のパケットの送信元 IP アドレス数が、{}以降増加傾向にあります。",
                             s, DayText(f.first_day, lang))
               : fmt::format(
                     "The distinct sources sending packets to {} have been rising "
                     "since {}.",
                     s, DayText(f.first_day, lang));
      } else if (f.first_day != kNoDay) {
        head = ja ? fmt::format("{} 宛のパケットが、{}以降増加傾向にあります。", s,
                                DayText(f.first_day, lang))
                  : fmt::format("Packets to {} have been rising since {}.", s,
                                DayText(f.first_day, lang));
      } else {
        head = ja ? fmt::format("{} 宛のパケットが増加しました。", s)
                  : fmt::format("Packets to {} increased.", s);
      }
      break;
    case FindingKind::kDominantSource:
      head = ja ? fmt::format("{} 宛のパケットの多くは、特定の送信元から送られたものでした。", s)
                : fmt::format("Most packets to {} came from a single source.", s);
      break;
    case FindingKind::kRegionEntry:
      head =
          f.first_day != kNoDay
              ? (ja ? fmt::format("次に送信元地域に着目すると、{}からのパケットが {}頃から増加傾向"
                                  "にあります。",
                                  s, DayText(f.first_day, lang))
                    : fmt::format("Among source regions, packets from {} have been rising "
                                  "since about {}.",
                                  s, DayText(f.first_day, lang)))
              : (ja ? fmt::format("{}からのパケットが増加し、送信元地域のトップ 5 に入りました。",
                                  s)
                    : fmt::format("Packets from {} rose into the top 5 source regions.", s));
      break;
    case FindingKind::kRegionSilent:
      head = ja ? fmt::format("{}、{}からの送信元 IP アドレス数が急減しました。",
                              When(f.first_day, f.last_day, lang), s)
                : fmt::format("The sources in {} fell almost silent {}.", s,
                              When(f.first_day, f.last_day, lang));
      break;
  }
  return head + pointer;
}

std::vector<std::string> FindingParagraphs(const Composer& c, size_t i) {
  const Finding& f = c.data.findings[i].finding;
  std::vector<std::string> out;
  std::string body;
  for (const FindingFact& x : f.facts) {
    std::string s = FactSentence(c, f, x);
    if (s.empty()) continue;
    if (!body.empty() && !c.ja) body += " ";
    body += s;
  }
  std::string regions = RegionsSentence(c, f);
  if (!regions.empty()) body += (c.ja || body.empty() ? "" : " ") + regions;
  std::string tools = ToolsSentence(c, f);
  if (!tools.empty()) body += (c.ja || body.empty() ? "" : " ") + tools;
  // A rise that is mostly a region's own, told where that region's finding is.
  for (size_t j = 0; f.rise_region != 0 && j < c.data.findings.size(); ++j) {
    const Finding& r = c.data.findings[j].finding;
    if (r.has_port || r.country != f.rise_region) continue;
    std::string section = j < c.finding_sections.size() ? c.finding_sections[j] : "";
    std::string who = CountryInText(r.country, c.lang);
    // The share is capped at 1 (the region may add more than the port's net increase while
    // others send less): then it is all of it, not "100.0 %".
    const bool all = f.rise_region_share >= 0.995;
    body += c.ja ? fmt::format(
                       "この増加{}は{}からのパケットによるもので、{}の増加については"
                       "「{} {}」の節で述べます。",
                       all ? "" : "の " + Pct(f.rise_region_share) + " ", who, who, section,
                       Title(r, c.lang))
                 : fmt::format(
                       "{}{} came from {}, whose own rise is described in section {}, "
                       "\"{}\".",
                       body.empty() ? "" : " ",
                       all ? std::string("The added packets")
                           : Pct(f.rise_region_share) + " of the added packets",
                       who, section, Title(r, c.lang));
    break;
  }
  if (!body.empty()) out.push_back(std::move(body));
  for (const SourceEvidence& e : f.top_sources) {
    if (e.share < 0.1) continue;
    out.push_back(SourceSentence(c, f, e));
  }
  return out;
}

void ComposeFindings(Composer* c, const std::string& section_number) {
  const ReportData& d = c->data;
  Lang lang = c->lang;
  bool ja = c->ja;
  Document& doc = c->doc;
  if (d.findings.empty()) {
    doc.Paragraph(
        ja ? "本期間には、docs/FINDINGS.md の基準を満たす注目すべき現象は見つかりませんでした。"
           : "No phenomenon in this period met the thresholds of docs/FINDINGS.md.");
    return;
  }
  for (size_t i = 0; i < d.findings.size(); ++i) {
    const FindingFigure& ff = d.findings[i];
    const Finding& f = ff.finding;
    if (f.has_port) c->featured.insert(f.port);
    for (PortKey k : f.related_ports) c->featured.insert(k);
    std::string number = fmt::format("{}.{}", section_number, i + 1);
    doc.Heading(2, number + " " + Title(f, lang), "finding-" + std::to_string(i + 1));

    for (std::string& p : FindingParagraphs(*c, i)) doc.Paragraph(std::move(p));
    if (!f.payloads.empty()) {
      doc.Paragraph((ja ? "観測されたペイロードの例: " : "Payloads seen: ") +
                    JoinList(f.payloads, lang));
    }
    if (!f.os.empty()) {
      doc.Paragraph((ja ? "送信元の OS の推定: " : "Source operating systems (guessed): ") +
                    JoinList(f.os, lang));
    }

    // Figures: the period, then the long term.
    if (!ff.by_region.days.empty()) {
      FigureBlock fig;
      std::string label = c->PeekFigureLabel();
      bool by_region = f.figure.series == FigureHint::Series::kPortByCountry;
      std::string what =
          by_region
              ? (ja ? fmt::format("{} 観測パケット数の主な送信元地域ごとの推移", Subject(f, lang))
                    : fmt::format("Packets to {} by main source region", Subject(f, lang)))
          : f.figure.series == FigureHint::Series::kPorts
              ? (ja ? fmt::format("{} 宛のパケット数の推移", PortList(f, lang))
                    : fmt::format("Daily packets to {}", PortList(f, lang)))
              : (ja ? fmt::format("{}からのパケット数の推移", Subject(f, lang))
                    : fmt::format("Daily packets from {}", Subject(f, lang)));
      // Introduced as what it plots: a region going silent is drawn by its sources.
      const bool plots_sources = f.kind == FindingKind::kRegionSilent;
      doc.Paragraph(
          ja ? fmt::format("{}の{}の推移を {} に示します。",
                           f.has_port ? Subject(f, lang) + " 宛" : Subject(f, lang) + "から",
                           plots_sources ? "送信元 IP アドレス数" : "パケット数", c->Ref(label))
             : fmt::format("{} shows its {} day by day.", label,
                           plots_sources ? "distinct sources" : "packets"));
      fig.label = c->NextFigureLabel();
      fig.id = fmt::format("figure-finding-{}", i + 1);
      fig.caption = what;
      std::vector<chart::Marker> marks;
      if (f.first_day != kNoDay) {
        marks.push_back({f.first_day, DayText(f.first_day, lang)});
      }
      // A region going silent is about its sources; everything else about packets.
      bool sources = f.kind == FindingKind::kRegionSilent;
      if (sources) {
        fig.caption = ja ? fmt::format("{}からの送信元 IP アドレス数の推移", Subject(f, lang))
                         : fmt::format("Daily distinct sources in {}", Subject(f, lang));
      }
      fig.svg = c->DailyChart(ff.by_region, sources, by_region, fig.id, marks);
      doc.AddFigure(std::move(fig));
    }
    if (!ff.long_term.days.empty()) {
      FigureBlock fig;
      std::string label = c->PeekFigureLabel();
      doc.Paragraph(ja ? fmt::format("{}以降の長期の推移を {} に示します。",
                                     DayTextWithYear(ff.long_term.days.front(), lang),
                                     c->Ref(label))
                       : fmt::format("{} shows the long-term series since {}.", label,
                                     DayTextWithYear(ff.long_term.days.front(), lang)));
      fig.label = c->NextFigureLabel();
      fig.id = fmt::format("figure-finding-{}-long", i + 1);
      bool monthly = f.figure.long_granularity == Granularity::kMonth;
      std::string mean = ja ? (monthly ? "月平均" : "週平均") : (monthly ? "monthly" : "weekly");
      fig.caption =
          ja ? fmt::format("{}以降の {} の 1 日あたりの観測パケット数の推移（{}）",
                           DayTextWithYear(ff.long_term.days.front(), lang), Subject(f, lang), mean)
             : fmt::format("Packets a day {} {} since {} ({} means)", f.has_port ? "to" : "from",
                           Subject(f, lang), DayTextWithYear(ff.long_term.days.front(), lang),
                           mean);
      chart::TimeChart tc;
      tc.id = fig.id;
      tc.days = ff.long_term.days;
      tc.monthly = monthly;
      tc.lang = c->ChartLang();
      tc.y_label = ja ? "1 日あたりのパケット数" : "packets a day";
      tc.series.push_back({SubjectLabel(f, lang), {}, false});
      // A week or month is drawn as its mean day over the days of it the series covers, so that
      // a bucket cut by the first or last day of data does not read as a fall.
      const auto& days = ff.long_term.days;
      for (size_t k = 0; k < days.size(); ++k) {
        int32_t from = std::max(days[k], f.figure.long_first_day);
        int32_t next = k + 1 < days.size() ? days[k + 1] : f.figure.long_end_day;
        int32_t to = std::min(next, f.figure.long_end_day);
        double covered = std::max(1, to - from);
        tc.series.back().values.push_back(static_cast<double>(ff.long_term.packets[0][k]) /
                                          covered);
      }
      fig.svg = chart::Lines(tc);
      doc.AddFigure(std::move(fig));
    }
  }
}

}  // namespace teiten::report
