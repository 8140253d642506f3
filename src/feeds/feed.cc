#include "feeds/feed.h"

#include <cstdio>
#include <nlohmann/json.hpp>

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
    const std::string fields[] = {FeedItemSourceName(it.source),
                                  std::to_string(it.rank),
                                  it.kind,
                                  it.channel,
                                  it.key,
                                  it.first_day,
                                  it.last_day,
                                  Number(it.packets_before),
                                  Number(it.packets_after),
                                  Number(it.sources_before),
                                  Number(it.sources_after),
                                  Number(it.ratio),
                                  Number(it.score),
                                  Joined(it.sources),
                                  Joined(it.tags)};
    bool first = true;
    for (const std::string& f : fields) {
      if (!first) out += ',';
      first = false;
      out += CsvField(f);
    }
    out += "\r\n";
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

}  // namespace teiten
