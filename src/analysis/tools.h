// Tool tags (SPEC E5, issue 12 points 1–2): which tool or kind of sender is behind a source.
//
// Each packet carries *evidence* of a tag when a header field or its payload is what that tool
// writes (the rules in TagRules(), documented with their sources in docs/FINGERPRINTS.md). A
// 16-bit match happens by chance once in 65,536 packets, so a source gets a tag — the *verdict* —
// only when at least `min_packets` of its packets in the period carry the evidence and they are
// at least `min_share` of its packets (or of its TCP SYN probes, for the scanners' rules). The
// research-scanner tag comes from a user-edited list of networks instead.
//
// Tags are computed from the stored observations through the query interface (ScanRows,
// ScanSourceRows), so a changed rule applies to everything already stored. The cost is a scan
// of the period's rows (the demo's quarter of 3 M packets: about a second); keeping tags in the
// rollups is the next step (docs/FINGERPRINTS.md).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/period.h"
#include "analysis/query.h"
#include "common/ip.h"
#include "common/observation.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "store/store.h"

namespace teiten {

enum class Tag : uint8_t {
  kMirai,
  kZmap,
  kMasscan,
  kNmap,
  kSipvicious,
  kBackscatter,
  kResearch,
  kCount
};
inline constexpr size_t kTagCount = static_cast<size_t>(Tag::kCount);
const char* TagName(Tag t);  // "mirai", "zmap", "masscan", "nmap", "sipvicious", …
// Parses a tag name as TagName writes it (case-insensitive); false for anything else.
bool ParseTag(std::string_view text, Tag* out);

struct TagRule {
  Tag tag;
  uint64_t min_packets;  // packets with the evidence, at least
  double min_share;      // of the source's packets (its TCP SYN probes for the scanners' rules)
  bool of_probes;        // min_share is of TCP SYN probes rather than of all packets
  const char* evidence;  // what a packet must show, in words
};
// One rule per tag, in Tag order (kResearch's evidence is membership of the list).
const std::array<TagRule, kTagCount>& TagRules();

// Evidence bits (1 << Tag) of one packet. `options` and `payload` are its kept TCP options and
// payload prefix.
uint32_t PacketEvidence(const Observation& o, std::string_view options, std::string_view payload);
// True for a TCP SYN without ACK or RST: what the scanners' rules count shares against.
bool IsTcpSynProbe(const Observation& o);

// Networks of known research scanners (Censys, university surveys…), from a text file: one
// "PREFIX  ORGANISATION  SOURCE" per line (whitespace between; ORGANISATION without spaces;
// SOURCE the rest of the line, where the entry comes from), '#' starts a comment. Hostile input:
// a bad line is an error naming the file and line.
class ResearchNetworks {
 public:
  struct Entry {
    Prefix prefix;
    std::string organisation;
    std::string source;
  };
  static Result<ResearchNetworks> Load(const std::string& path);
  static Result<ResearchNetworks> Parse(std::string_view text, const std::string& name);
  // The list shipped in data/research_scanners.txt (compiled in; checked by the tests).
  static const ResearchNetworks& Shipped();
  // The organisation whose network holds `a`, or nullptr.
  const Entry* Find(const IpAddr& a) const;
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

// One source's evidence over a selection of rows.
struct SourceTags {
  IpAddr src;
  GeoInfo geo;
  uint64_t packets = 0;
  uint64_t probes = 0;                            // TCP SYN probes among them
  std::array<uint64_t, kTagCount> evidence = {};  // packets with each tag's evidence
  uint32_t verdict = 0;                           // 1 << Tag for each tag the rules give it
  // Nmap's SYN scan sends every first probe of a scan with one sequence number: its Nmap-shaped
  // probes that repeat the sequence number of the one before them (in stored order), and that
  // number. Chance gives ~0 repeats; a scan gives all but its retransmissions.
  uint64_t nmap_seq_repeats = 0;
  uint32_t nmap_last_seq = 0;
  const ResearchNetworks::Entry* research = nullptr;
  // Of the stored blocks holding the source's rows, how many were read (TagSource with a limit
  // reads the latest days' only; then the counts above are of those rows).
  size_t blocks_read = 0, blocks_named = 0;
  bool Has(Tag t) const { return verdict & (1u << static_cast<unsigned>(t)); }
  // Adds the counts of another part of the same source's rows (the verdict is Judge's, after).
  void AddCounts(const SourceTags& o) {
    packets += o.packets;
    probes += o.probes;
    for (size_t t = 0; t < kTagCount; ++t) evidence[t] += o.evidence[t];
    nmap_seq_repeats += o.nmap_seq_repeats;
  }
};
// The columns a row must be decoded with for CountEvidence.
inline constexpr uint32_t kTagColumns =
    col::kSrc | col::kDst | col::kPorts | col::kHeader | col::kBlob;
// Counts row i of a block (decoded with kTagColumns) as evidence for its source's tags: sets
// `t`'s address and region to the row's, adds to its counts, and returns the row's region. Judge
// gives the verdict once every row of the source has been counted.
GeoInfo CountEvidence(SourceTags* t, const DecodedBlock& blk, size_t i);
// Applies the rules (and the research list, may be null) to a source's counts: sets `verdict`.
void Judge(SourceTags* s, const ResearchNetworks* research);

// The tags of one source over everything stored, read through its source-index entries.
// With `max_blocks`, only the blocks of the source's latest days, up to that many, are read: a
// tool's fingerprint is on every probe, so the verdict of a sample of its recent rows is its
// verdict, at a bounded cost (`teiten ip` reads at most kIpTagBlocks, and no block more once it
// has kIpTagRows of the source's rows: a 16-bit rule's verdict over 2,048 probes is as sure as
// over 6,000, and decoding the blocks is most of what `ip` costs).
Result<SourceTags> TagSource(const Store& store, const IpAddr& addr,
                             const ResearchNetworks* research, size_t max_blocks = SIZE_MAX,
                             size_t max_rows = SIZE_MAX);
// The same over the source's index entries already looked up (LookupSource).
Result<SourceTags> TagSource(const Store& store, const SourceEntries& entries,
                             const ResearchNetworks* research, size_t max_blocks = SIZE_MAX,
                             size_t max_rows = SIZE_MAX);
inline constexpr size_t kIpTagBlocks = 8;
inline constexpr size_t kIpTagRows = 2048;

struct ToolRow {
  Tag tag = Tag::kCount;              // kCount: the untagged sources
  uint64_t sources = 0;               // with the verdict (and, with a port, packets on it)
  uint64_t packets = 0;               // their packets (on the port, with one)
  double source_share = 0;            // of the selection's sources
  double packet_share = 0;            // of the selection's packets
  std::map<PortKey, uint64_t> ports;  // their packets by port (the five busiest kept)
};
struct ToolsResult {
  Period period;
  std::optional<PortKey> port;
  uint64_t sources = 0, packets = 0;  // of the selection (on the port, with one)
  std::vector<ToolRow> rows;          // by sources, most first; the untagged last
  // For each port asked for (`breakdown`): the same rows over that port's sources and packets
  // (a source counted under its verdict over all its packets of the period).
  std::map<PortKey, std::vector<ToolRow>> by_port;
  std::map<PortKey, uint64_t> port_sources;  // sources with packets on each breakdown port
};
// Tags every source of the period (verdicts over all its packets of the period at the selected
// sensors) and counts, per tag, the sources and packets — on `port` only, when given; with
// `country`, only the sources geolocated there (a region's breakdown by tag; a source's region
// is that of its last row read). Memory: one record per distinct source of the period.
Result<ToolsResult> TopTools(const Store& store, const Period& period,
                             const SensorSelection& filter, std::optional<PortKey> port,
                             const ResearchNetworks* research,
                             const std::vector<PortKey>& breakdown = {},
                             std::optional<CountryCode> country = std::nullopt);

// `teiten top ports|countries|asns --tag T` (issue 12 point 2): the top `n` keys of `dim` by
// packets, counting only the sources whose verdict over the period (all their packets at the
// selected sensors) carries `tag`. Guarantees: exact packets and exact distinct sources per key;
// totals are those of the tagged sources; share is of their packets. Not computed: previous
// ranks (every row's prev_rank is kRankNoData; `previous` is left empty) — a second scan would
// double the cost. Cost: one ScanRows pass, one record per distinct source of the period.
// kSensor is not supported (InvalidArgument).
Result<TopResult> TopByTag(const Store& store, Dimension dim, const Period& period,
                           const SensorSelection& filter, Tag tag, const ResearchNetworks* research,
                           size_t n);

// `teiten series --tag T`: daily packets and distinct sources of the sources whose verdict over
// the period carries `tag` — for each of `keys` of `dim` (ports or countries; empty: all of their
// traffic as one series). Guarantees: exact per day (a source counts on a day it sent a packet of
// the key). Daily only. Cost: one ScanRows pass; memory one record per distinct source of the
// period plus one count per (source, day, key) it sent.
Result<SeriesResult> SeriesByTag(const Store& store, Dimension dim,
                                 const std::vector<uint64_t>& keys, const Period& period,
                                 const SensorSelection& filter, Tag tag,
                                 const ResearchNetworks* research);

}  // namespace teiten
