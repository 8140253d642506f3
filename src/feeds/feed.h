// Alert feeds (SPEC O5, issue 13 point 3): the findings of a period as flat feed items, and the
// RFC 4180 CSV and JSON they are written as. Other formats (MUSTAN-like XML, JSON, STIX 2.1, MISP)
// are to be written over the same items.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "analysis/findings.h"
#include "analysis/mustan.h"

namespace teiten {

// Where an item came from: a finding (FindNotable) or a MUSTAN watch/risk item (BuildMustan).
enum class FeedItemSource { kFinding, kWatch, kRisk };
const char* FeedItemSourceName(FeedItemSource s);

// One line of a feed. Guaranteed: every field is plain data copied from its finding; `sources`
// holds only the addresses the finding names as evidence (at most kMaxTopSources), never all.
struct FeedItem {
  FeedItemSource source = FeedItemSource::kFinding;
  int rank = 0;
  std::string kind;                 // FindingKindName of the headline fact, e.g. "spike"
  std::string channel;              // "port" for port findings, "region" for region findings
  std::string key;                  // "23/TCP" (PortKeyToString), or a country code "CN"
  std::string first_day, last_day;  // "YYYY-MM-DD"; last_day empty while still going
  double packets_before = 0, packets_after = 0;  // per day
  double sources_before = 0, sources_after = 0;  // distinct sources per day
  double ratio = 0;
  double score = 0;
  std::vector<std::string> sources;  // evidence addresses, most packets first
  std::vector<std::string> tags;
};

std::vector<FeedItem> FeedItemsFromFindings(const std::vector<Finding>& findings);
// The watch (要注意) and risk items of a MUSTAN view, watch first: kind "watch" or "risk", the
// view's channel and item key, the window's first and last day; before/after are the per-day
// means the rules compare — packets of the first and last 5 days, distinct sources of the first
// 7 and last 3 — ratio the last 5 days' packets over the first 5's, score the trend statistic z.
std::vector<FeedItem> FeedItemsFromMustan(const MustanView& view);

// One CSV field per RFC 4180: quoted (with inner quotes doubled) when it holds a comma, a quote,
// CR or LF; otherwise as is. Lists inside a field are joined with ' '.
std::string CsvField(std::string_view s);
// A CSV record: the fields (each through CsvField) joined by commas, ended by CRLF.
std::string CsvRecord(const std::vector<std::string>& fields);
// The feed as CSV: a header line, then one line per item, every line ended by CRLF.
std::string WriteFeedCsv(const std::vector<FeedItem>& items);
// The feed as JSON: {"items": [{...}]} with the CSV's columns as keys, lists as arrays and
// empty days as null.
std::string WriteFeedJson(const std::vector<FeedItem>& items);

// What a feed document says about itself (XML root attributes).
struct FeedMeta {
  std::string first_day, last_day;  // the period covered, "YYYY-MM-DD"
  std::string generated;            // UTC, "2026-12-04T20:10:00Z"
};

// The feed as MUSTAN-like XML (namespace urn:teiten:feed:1, schema data/feeds/teiten-feed.xsd):
// a <feed> root with the period and generation time, one <item> per item. Text is escaped
// (& < > " '); characters XML 1.0 cannot hold (C0 controls other than TAB, LF, CR; invalid
// UTF-8) become U+FFFD, so an attacker's bytes in a tag never make the document ill-formed.
std::string WriteFeedXml(const std::vector<FeedItem>& items, const FeedMeta& meta);

// The feed as a STIX 2.1 bundle (docs/FEEDS.md): an identity for teiten (created_by_ref of the
// rest), one report per item (its facts in words, its tags as labels, its addresses as refs),
// for each evidence address an
// ipv4-addr/ipv6-addr object and an indicator ([ipv4-addr:value = '…'], anomalous-activity),
// and a report naming them all. Ids are UUIDv5: SCOs per the STIX spec (namespace
// 00abedb4-aa42-466c-9c01-fed23315a9b7 over {"value":…}), the others over what the object
// says (an item's source, kind, channel, key and first day), so the same finding has the same id
// in every run and a consumer updates it rather than adding a copy.
std::string WriteFeedStix(const std::vector<FeedItem>& items, const FeedMeta& meta);

// The feed as a MISP event (the MISP core format, ../shared/data/formats/misp): {"Event": {…}}
// with teiten as Org and Orgc, unpublished, distribution "0" (this organisation only: the
// CSIRT decides to share), threat level "3" (low), analysis "2" (complete), date the period's
// last day; one Attribute per item (category "Other", type "comment": its facts in words) and one
// per evidence address (category "Network activity", type ip-src, to_ids true); the items' tags
// as event Tags ("teiten:tag=\"mirai\""). UUIDs are UUIDv5 over what each says, as for STIX.
std::string WriteFeedMisp(const std::vector<FeedItem>& items, const FeedMeta& meta,
                          int64_t now_unix);

// The items of a period's feed, as `teiten feed` and /api/v1/feeds/… give them: the findings of
// the period (FindNotable), then the MUSTAN watch and risk items of the 10 days ending on the
// period's last day with data (none when the period holds no data).
Result<std::vector<FeedItem>> BuildFeedItems(const Store& store, const Period& period,
                                             const SensorSelection& sel);
// The feed in `format` (csv, json, xml, stix or misp); kInvalidArgument naming any other.
Result<std::string> WriteFeed(std::string_view format, const std::vector<FeedItem>& items,
                              const FeedMeta& meta);
// Its Content-Type ("text/csv; charset=utf-8", "application/json", "application/xml").
std::string FeedContentType(std::string_view format);

}  // namespace teiten
