#include "feeds/feed.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/ip.h"
#include "common/time_zone.h"

namespace teiten {

const char* FeedItemSourceName(FeedItemSource s) {
  switch (s) {
    case FeedItemSource::kFinding:
      return "finding";
    case FeedItemSource::kWatch:
      return "watch";
    case FeedItemSource::kRisk:
      return "risk";
  }
  return "?";
}

std::vector<FeedItem> FeedItemsFromFindings(const std::vector<Finding>& findings) {
  std::vector<FeedItem> items;
  items.reserve(findings.size());
  for (const Finding& f : findings) {
    FeedItem it;
    it.rank = f.rank;
    it.kind = FindingKindName(f.kind);
    if (f.has_port) {
      it.channel = "port";
      it.key = PortKeyToString(f.port);
    } else {
      it.channel = "region";
      it.key = CountryCodeString(f.country);
    }
    if (f.first_day != kNoDay) it.first_day = TimeZone::DayString(f.first_day);
    if (f.last_day != kNoDay) it.last_day = TimeZone::DayString(f.last_day);
    it.packets_before = f.packets_before;
    it.packets_after = f.packets_after;
    it.sources_before = f.sources_before;
    it.sources_after = f.sources_after;
    it.ratio = f.ratio;
    it.score = f.score;
    for (const SourceEvidence& s : f.top_sources) it.sources.push_back(s.addr.ToString());
    it.tags = f.tags;
    items.push_back(std::move(it));
  }
  return items;
}

std::vector<FeedItem> FeedItemsFromMustan(const MustanView& view) {
  std::vector<FeedItem> items;
  const size_t half = kMustanDays / 2;
  auto add = [&](const std::vector<MustanItem>& list, FeedItemSource src, const char* kind) {
    int rank = 0;
    for (const MustanItem& m : list) {
      FeedItem it;
      it.source = src;
      it.rank = ++rank;
      it.kind = kind;
      it.channel = view.channel;
      it.key = m.name;
      if (!view.day_labels.empty()) {
        it.first_day = view.day_labels.front();
        it.last_day = view.day_labels.back();
      }
      it.packets_before = m.first_half / static_cast<double>(half);
      it.packets_after = m.last_half / static_cast<double>(half);
      it.sources_before = m.early_sources;
      it.sources_after = m.late_sources;
      it.ratio = m.first_half > 0 ? m.last_half / m.first_half : 0;
      it.score = m.z;
      if (m.is_new) it.tags.push_back("new");
      it.tags.push_back(std::string("trend-") + TrendName(m.trend));
      items.push_back(std::move(it));
    }
  };
  add(view.watch, FeedItemSource::kWatch, "watch");
  add(view.risk, FeedItemSource::kRisk, "risk");
  return items;
}

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string CsvRecord(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += CsvField(fields[i]);
  }
  out += "\r\n";
  return out;
}

namespace {

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

}  // namespace

std::string WriteFeedCsv(const std::vector<FeedItem>& items) {
  std::string out =
      "source,rank,kind,channel,key,first_day,last_day,packets_before,packets_after,"
      "sources_before,sources_after,ratio,score,sources,tags\r\n";
  for (const FeedItem& it : items) {
    out += CsvRecord({FeedItemSourceName(it.source), std::to_string(it.rank), it.kind, it.channel,
                      it.key, it.first_day, it.last_day, Number(it.packets_before),
                      Number(it.packets_after), Number(it.sources_before), Number(it.sources_after),
                      Number(it.ratio), Number(it.score), Joined(it.sources), Joined(it.tags)});
  }
  return out;
}

std::string WriteFeedJson(const std::vector<FeedItem>& items) {
  auto day = [](const std::string& d) { return d.empty() ? nlohmann::json() : nlohmann::json(d); };
  nlohmann::json arr = nlohmann::json::array();
  for (const FeedItem& it : items) {
    arr.push_back({{"source", FeedItemSourceName(it.source)},
                   {"rank", it.rank},
                   {"kind", it.kind},
                   {"channel", it.channel},
                   {"key", it.key},
                   {"first_day", day(it.first_day)},
                   {"last_day", day(it.last_day)},
                   {"packets_before", it.packets_before},
                   {"packets_after", it.packets_after},
                   {"sources_before", it.sources_before},
                   {"sources_after", it.sources_after},
                   {"ratio", it.ratio},
                   {"score", it.score},
                   {"sources", it.sources},
                   {"tags", it.tags}});
  }
  // Attacker-influenced strings (tags) may hold invalid UTF-8: replaced, never thrown on.
  return nlohmann::json{{"items", arr}}.dump(2, ' ', false,
                                             nlohmann::json::error_handler_t::replace) +
         "\n";
}

namespace {

// XML 1.0 text: escaped, and what it cannot hold replaced by U+FFFD (see WriteFeedXml).
std::string XmlText(std::string_view s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
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
          out += "&apos;";
          break;
        default:
          if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            out += kReplacement;
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence (no overlongs, surrogates or code points past U+10FFFF).
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    bool ok = n != 0 && c <= 0xF4 && i + n <= s.size();
    uint32_t cp = ok ? (c & (0x7F >> n)) : 0;
    for (size_t k = 1; ok && k < n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      ok = (d & 0xC0) == 0x80;
      cp = (cp << 6) | (d & 0x3F);
    }
    ok = ok && !(n == 3 && cp < 0x800) && !(n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) &&
         !(cp >= 0xD800 && cp <= 0xDFFF) && cp != 0xFFFE && cp != 0xFFFF;
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

}  // namespace

std::string WriteFeedXml(const std::vector<FeedItem>& items, const FeedMeta& meta) {
  // xs:double spells the infinities and NaN its own way.
  auto Number = [](double v) -> std::string {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "INF" : "-INF";
    return teiten::Number(v);
  };
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<feed xmlns=\"urn:teiten:feed:1\" version=\"1\" generator=\"teiten\" generated=\"{}\" "
      "firstDay=\"{}\" lastDay=\"{}\" items=\"{}\">\n",
      XmlText(meta.generated), XmlText(meta.first_day), XmlText(meta.last_day), items.size());
  for (const FeedItem& it : items) {
    out +=
        fmt::format("  <item source=\"{}\" rank=\"{}\" kind=\"{}\" channel=\"{}\">\n",
                    FeedItemSourceName(it.source), it.rank, XmlText(it.kind), XmlText(it.channel));
    out += fmt::format("    <key>{}</key>\n", XmlText(it.key));
    if (!it.first_day.empty()) out += fmt::format("    <firstDay>{}</firstDay>\n", it.first_day);
    if (!it.last_day.empty()) out += fmt::format("    <lastDay>{}</lastDay>\n", it.last_day);
    out += fmt::format(
        "    <packetsBefore>{}</packetsBefore>\n    <packetsAfter>{}</packetsAfter>\n"
        "    <sourcesBefore>{}</sourcesBefore>\n    <sourcesAfter>{}</sourcesAfter>\n"
        "    <ratio>{}</ratio>\n    <score>{}</score>\n",
        Number(it.packets_before), Number(it.packets_after), Number(it.sources_before),
        Number(it.sources_after), Number(it.ratio), Number(it.score));
    if (!it.sources.empty()) {
      out += "    <sources>\n";
      for (const std::string& a : it.sources) {
        out += fmt::format("      <address>{}</address>\n", XmlText(a));
      }
      out += "    </sources>\n";
    }
    if (!it.tags.empty()) {
      out += "    <tags>\n";
      for (const std::string& t : it.tags) out += fmt::format("      <tag>{}</tag>\n", XmlText(t));
      out += "    </tags>\n";
    }
    out += "  </item>\n";
  }
  out += "</feed>\n";
  return out;
}

namespace {

// RFC 4122 §4.3 name-based UUID, SHA-1 (version 5).
std::string Uuid5(const std::array<uint8_t, 16>& ns, std::string_view name) {
  std::string in(reinterpret_cast<const char*>(ns.data()), ns.size());
  in.append(name);
  unsigned char h[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(in.data(), in.size(), h, &n, EVP_sha1(), nullptr);
  h[6] = static_cast<unsigned char>((h[6] & 0x0F) | 0x50);
  h[8] = static_cast<unsigned char>((h[8] & 0x3F) | 0x80);
  std::string u;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) u += '-';
    u += fmt::format("{:02x}", h[i]);
  }
  return u;
}

// The STIX spec's namespace for SCO ids, and teiten's for everything else (a fixed random one).
constexpr std::array<uint8_t, 16> kStixScoNs = {0x00, 0xab, 0xed, 0xb4, 0xaa, 0x42, 0x46, 0x6c,
                                                0x9c, 0x01, 0xfe, 0xd2, 0x33, 0x15, 0xa9, 0xb7};
constexpr std::array<uint8_t, 16> kTeitenNs = {0x3f, 0x6e, 0x1c, 0x52, 0x8d, 0x0b, 0x4e, 0x2a,
                                               0x9b, 0x71, 0x5c, 0xe4, 0x0d, 0x93, 0x27, 0x6a};

// "2026-12-04T20:10:00Z" → "2026-12-04T20:10:00.000Z" (STIX timestamps carry milliseconds).
std::string StixTime(const std::string& utc) {
  if (utc.size() == 20 && utc.back() == 'Z') return utc.substr(0, 19) + ".000Z";
  return utc;
}

}  // namespace

std::string WriteFeedStix(const std::vector<FeedItem>& items, const FeedMeta& meta) {
  using nlohmann::json;
  const std::string now = StixTime(meta.generated);
  const std::string identity = "identity--" + Uuid5(kTeitenNs, "identity|teiten");
  json objects = json::array();
  objects.push_back({{"type", "identity"},
                     {"spec_version", "2.1"},
                     {"id", identity},
                     {"created", now},
                     {"modified", now},
                     {"name", "teiten"},
                     {"description", "an Internet fixed-point observation system (darknet)"},
                     {"identity_class", "system"}});
  const std::string label =
      meta.first_day == meta.last_day ? meta.first_day : meta.first_day + ".." + meta.last_day;
  const std::string report = "report--" + Uuid5(kTeitenNs, "report|" + label);
  std::vector<std::string> refs = {identity};
  std::map<std::string, std::string> sco_of;  // address → its SCO id
  for (const FeedItem& it : items) {
    json note_refs = json::array({report});
    for (const std::string& a : it.sources) {
      auto addr = IpAddr::Parse(a);
      if (!addr) continue;  // FeedItem sources are written by teiten: always addresses
      const std::string type = addr->is_v4() ? "ipv4-addr" : "ipv6-addr";
      auto [pos, fresh] = sco_of.try_emplace(a, "");
      if (fresh) {
        pos->second = type + "--" + Uuid5(kStixScoNs, json{{"value", a}}.dump());
        objects.push_back(
            {{"type", type}, {"spec_version", "2.1"}, {"id", pos->second}, {"value", a}});
        const std::string ind = "indicator--" + Uuid5(kTeitenNs, "indicator|" + a);
        objects.push_back(
            {{"type", "indicator"},
             {"spec_version", "2.1"},
             {"id", ind},
             {"created", now},
             {"modified", now},
             {"created_by_ref", identity},
             {"name", "teiten: darknet source " + a},
             {"indicator_types", {"anomalous-activity"}},
             {"pattern", fmt::format("[{}:value = '{}']", type, a)},
             {"pattern_type", "stix"},
             {"valid_from",
              StixTime((it.first_day.empty() ? meta.first_day : it.first_day) + "T00:00:00Z")}});
        refs.push_back(pos->second);
        refs.push_back(ind);
      }
      note_refs.push_back(pos->second);
    }
    const std::string what = it.source == FeedItemSource::kFinding
                                 ? it.kind
                                 : std::string(FeedItemSourceName(it.source)) + " item";
    std::string content = fmt::format(
        "{} on {} {} from {}{}: packets per day {} -> {}, distinct sources per day {} -> {}, "
        "ratio {}, score {}.",
        what, it.channel, it.key, it.first_day,
        it.last_day.empty() ? " (still going)" : " to " + it.last_day, Number(it.packets_before),
        Number(it.packets_after), Number(it.sources_before), Number(it.sources_after),
        Number(it.ratio), Number(it.score));
    // One report per item: the bundle schema of the OASIS repository admits reports, not
    // notes, among the objects a bundle holds.
    if (note_refs.size() == 1)
      note_refs = json::array({identity});  // nothing else to name
    else
      note_refs.erase(note_refs.begin());  // its addresses
    json item = {
        {"type", "report"},
        {"spec_version", "2.1"},
        {"id", "report--" + Uuid5(kTeitenNs,
                                  fmt::format("item|{}|{}|{}|{}|{}", FeedItemSourceName(it.source),
                                              it.kind, it.channel, it.key, it.first_day))},
        {"created", now},
        {"modified", now},
        {"created_by_ref", identity},
        {"name", fmt::format("{} {} {}", what, it.channel, it.key)},
        {"description", content},
        {"report_types", {"threat-report"}},
        {"published", now},
        {"object_refs", std::move(note_refs)}};
    if (!it.tags.empty()) item["labels"] = it.tags;
    refs.push_back(item["id"]);
    objects.push_back(std::move(item));
  }
  objects.push_back({{"type", "report"},
                     {"spec_version", "2.1"},
                     {"id", report},
                     {"created", now},
                     {"modified", now},
                     {"created_by_ref", identity},
                     {"name", "teiten feed " + label},
                     {"description", fmt::format("Findings and MUSTAN watch/risk items of {}, "
                                                 "from darknet observations.",
                                                 label)},
                     {"report_types", {"threat-report"}},
                     {"published", now},
                     {"object_refs", refs}});
  json bundle = {{"type", "bundle"},
                 {"id", "bundle--" + Uuid5(kTeitenNs, "bundle|" + label + "|" + now)},
                 {"objects", std::move(objects)}};
  return bundle.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string WriteFeedMisp(const std::vector<FeedItem>& items, const FeedMeta& meta,
                          int64_t now_unix) {
  using nlohmann::json;
  const std::string label =
      meta.first_day == meta.last_day ? meta.first_day : meta.first_day + ".." + meta.last_day;
  const std::string ts = std::to_string(now_unix);
  const json org = {{"id", "0"}, {"name", "teiten"}, {"uuid", Uuid5(kTeitenNs, "org|teiten")}};
  json attributes = json::array();
  auto attribute = [&](const std::string& key, const std::string& category, const std::string& type,
                       bool to_ids, const std::string& value, const std::string& comment) {
    attributes.push_back({{"id", "0"},
                          {"uuid", Uuid5(kTeitenNs, "misp-attribute|" + label + "|" + key)},
                          {"event_id", "0"},
                          {"category", category},
                          {"type", type},
                          {"to_ids", to_ids},
                          {"distribution", "5"},  // the event's
                          {"sharing_group_id", "0"},
                          {"timestamp", ts},
                          {"deleted", false},
                          {"comment", comment},
                          {"value", value}});
  };
  std::set<std::string> addresses, tags;
  for (const FeedItem& it : items) {
    const std::string what = it.source == FeedItemSource::kFinding
                                 ? it.kind
                                 : std::string(FeedItemSourceName(it.source)) + " item";
    const std::string subject = fmt::format("{} {} {}", what, it.channel, it.key);
    attribute(
        "item|" + subject + "|" + it.first_day, "Other", "comment", false,
        fmt::format("{} from {}{}: packets per day {} -> {}, distinct sources per day {} -> "
                    "{}, ratio {}, score {}.",
                    subject, it.first_day,
                    it.last_day.empty() ? " (still going)" : " to " + it.last_day,
                    Number(it.packets_before), Number(it.packets_after), Number(it.sources_before),
                    Number(it.sources_after), Number(it.ratio), Number(it.score)),
        "teiten " + std::string(FeedItemSourceName(it.source)));
    for (const std::string& a : it.sources) {
      if (addresses.insert(a).second) {
        attribute("ip-src|" + a, "Network activity", "ip-src", true, a,
                  "darknet source named by: " + subject);
      }
    }
    for (const std::string& t : it.tags) tags.insert(t);
  }
  json tag_list = json::array();
  for (const std::string& t : tags) {
    json name = t;  // quoted by the JSON writer, so any byte of it stays data
    tag_list.push_back(
        {{"name", "teiten:tag=" + name.dump(-1, ' ', false, json::error_handler_t::replace)}});
  }
  json event = {{"uuid", Uuid5(kTeitenNs, "misp-event|" + label)},
                {"id", "0"},
                {"info", fmt::format("teiten: darknet findings and watch/risk items, {} ({} items)",
                                     label, items.size())},
                {"date", meta.last_day},
                {"published", false},
                {"publish_timestamp", "0"},
                {"first_publication", "0"},
                {"timestamp", ts},
                {"threat_level_id", "3"},
                {"analysis", "2"},
                {"distribution", "0"},
                {"sharing_group_id", "0"},
                {"extends_uuid", ""},
                {"locked", false},
                {"org_id", "0"},
                {"orgc_id", "0"},
                {"Org", org},
                {"Orgc", org},
                {"attribute_count", std::to_string(attributes.size())},
                {"Attribute", std::move(attributes)},
                {"Tag", std::move(tag_list)}};
  return json{{"Event", std::move(event)}}.dump(2, ' ', false, json::error_handler_t::replace) +
         "\n";
}

Result<std::vector<FeedItem>> BuildFeedItems(const Store& store, const Period& period,
                                             const SensorSelection& sel) {
  ASSIGN_OR_RETURN(std::vector<Finding> findings, FindNotable(store, period, sel));
  std::vector<FeedItem> items = FeedItemsFromFindings(findings);
  if (auto last = LastDayWithData(store); last && *last >= period.first_day) {
    ASSIGN_OR_RETURN(MustanView view,
                     BuildMustan(store, *PortChannel(), std::min(*last, period.end_day - 1), sel));
    for (FeedItem& it : FeedItemsFromMustan(view)) items.push_back(std::move(it));
  }
  return items;
}

Result<std::string> WriteFeed(std::string_view format, const std::vector<FeedItem>& items,
                              const FeedMeta& meta) {
  if (format == "csv") return WriteFeedCsv(items);
  if (format == "json") return WriteFeedJson(items);
  if (format == "xml") return WriteFeedXml(items, meta);
  if (format == "stix") return WriteFeedStix(items, meta);
  if (format == "misp") return WriteFeedMisp(items, meta, static_cast<int64_t>(std::time(nullptr)));
  return InvalidArgument(
      fmt::format("feed format '{}': expected csv, json, xml, stix or misp", format));
}

std::string FeedContentType(std::string_view format) {
  if (format == "json") return "application/json";
  if (format == "stix") return "application/stix+json;version=2.1";
  if (format == "misp") return "application/json";
  if (format == "xml") return "application/xml";
  return "text/csv; charset=utf-8";
}

}  // namespace teiten
