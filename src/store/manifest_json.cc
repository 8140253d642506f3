#include "store/manifest_json.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace teiten {
namespace {

// Appends `s` as a JSON string.
void Quote(std::string* out, std::string_view s) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20) {
      *out += fmt::format("\\u{:04x}", c);
      ++i;
    } else if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      ++i;
    } else {
      // A whole, shortest-form UTF-8 sequence is copied; anything else is one U+FFFD.
      size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
      bool ok = n > 0 && i + n <= s.size();
      for (size_t k = 1; ok && k < n; ++k)
        ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
      if (ok && n == 3) {
        auto c1 = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong, surrogate
      }
      if (ok && n == 4) {
        auto c1 = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);  // overlong, > U+10FFFF
      }
      if (ok) {
        out->append(s.substr(i, n));
        i += n;
      } else {
        *out += "\xEF\xBF\xBD";
        ++i;
      }
    }
  }
  out->push_back('"');
}

template <typename T, typename Fn>
void List(std::string* out, const std::vector<T>& v, Fn each) {
  out->push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) *out += ", ";
    each(v[i]);
  }
  out->push_back(']');
}

void Strings(std::string* out, const std::vector<std::string>& v) {
  List(out, v, [&](const std::string& s) { Quote(out, s); });
}

template <typename T>
void Numbers(std::string* out, const std::vector<T>& v) {
  List(out, v, [&](T x) { fmt::format_to(std::back_inserter(*out), "{}", x); });
}

void Counts(std::string* out, const std::map<std::string, uint64_t>& m) {
  out->push_back('{');
  bool first = true;
  for (const auto& [k, n] : m) {
    if (!first) *out += ", ";
    first = false;
    Quote(out, k);
    fmt::format_to(std::back_inserter(*out), ": {}", n);
  }
  out->push_back('}');
}

// One part is written as a plain name (as before rollups had parts), several as a list.
void Parts(std::string* out, const std::vector<std::string>& parts) {
  if (parts.size() == 1) {
    Quote(out, parts[0]);
  } else {
    Strings(out, parts);
  }
}

// A part's name is a file of rollup/ and nothing else: a manifest is data, and a damaged or
// hostile one must not make a reader open a file outside the store.
std::string CheckPartName(std::string_view rel) {
  bool ok = rel.size() > 7 && rel.compare(0, 7, "rollup/") == 0 && rel.size() < 200;
  for (size_t i = 7; ok && i < rel.size(); ++i) {
    char c = rel[i];
    ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  }
  if (!ok || rel.find("..") != std::string_view::npos) {
    throw std::runtime_error("'" + std::string(rel.substr(0, 80)) +
                             "' is not the name of a rollup part");
  }
  return std::string(rel);
}

int32_t ParseDay(std::string_view s) {
  // "2018-08-12", as written (a manifest holds one per segment and day): read without sscanf.
  auto digits = [&](size_t at, size_t n) {
    unsigned v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + static_cast<unsigned>(s[i] - '0');
    }
    return static_cast<int>(v);
  };
  if (s.size() == 10 && s[4] == '-' && s[7] == '-') {
    const int y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2);
    if (y >= 0 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31) {
      return TimeZone::DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
    }
  }
  int y = 0;
  unsigned mo = 0, d = 0;
  char tail = 0;
  std::string z(s);
  if (std::sscanf(z.c_str(), "%d-%u-%u%c", &y, &mo, &d, &tail) != 3 || mo < 1 || mo > 12 || d < 1 ||
      d > 31) {
    throw std::runtime_error("bad day '" + z.substr(0, 40) + "'");
  }
  return TimeZone::DaysFromCivil(y, mo, d);
}

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

[[noreturn]] void Bad(std::string_view where, std::string_view what) {
  throw std::runtime_error(fmt::format("{}: {}", where, what));
}

element At(object o, std::string_view key, std::string_view where) {
  element e;
  if (o[key].get(e)) Bad(where, fmt::format("no member '{}'", key));
  return e;
}
bool Has(object o, std::string_view key) {
  element e;
  return !o[key].get(e);
}
uint64_t U64(element e, std::string_view what) {
  uint64_t v;
  if (e.get(v)) Bad(what, "not an unsigned integer");
  return v;
}
int64_t I64(element e, std::string_view what) {
  int64_t v;
  if (e.get(v)) Bad(what, "not an integer");
  return v;
}
std::string Str(element e, std::string_view what) {
  std::string_view v;
  if (e.get(v)) Bad(what, "not a string");
  return std::string(v);
}
object Obj(element e, std::string_view what) {
  object v;
  if (e.get(v)) Bad(what, "not an object");
  return v;
}
array Arr(element e, std::string_view what) {
  array v;
  if (e.get(v)) Bad(what, "not an array");
  return v;
}
std::vector<std::string> StrList(element e, std::string_view what) {
  std::vector<std::string> v;
  for (element x : Arr(e, what)) v.push_back(Str(x, what));
  return v;
}
std::vector<uint64_t> U64List(element e, std::string_view what) {
  std::vector<uint64_t> v;
  for (element x : Arr(e, what)) v.push_back(U64(x, what));
  return v;
}
std::map<std::string, uint64_t> CountMap(element e, std::string_view what) {
  std::map<std::string, uint64_t> m;
  for (auto [k, v] : Obj(e, what)) m[std::string(k)] = U64(v, what);
  return m;
}
std::vector<std::string> PartsOf(element e, std::string_view what) {
  std::string_view one;
  if (!e.get(one)) return {CheckPartName(one)};
  std::vector<std::string> v;
  for (element x : Arr(e, what)) {
    std::string_view s;
    if (x.get(s)) Bad(what, "a part's name is not a string");
    v.push_back(CheckPartName(s));
  }
  if (v.empty()) Bad(what, "a rollup with no parts");
  return v;
}

}  // namespace

namespace {

enum class Scope { kWhole, kRoot, kChapter };

// The first day of a month label "2018-08"; throws on anything else.
int32_t MonthStart(std::string_view month) {
  int y = 0;
  unsigned mo = 0;
  char tail = 0;
  std::string z(month);
  if (month.size() != 7 || std::sscanf(z.c_str(), "%d-%u%c", &y, &mo, &tail) != 2 || mo < 1 ||
      mo > 12) {
    throw std::runtime_error("bad month '" + z.substr(0, 40) + "'");
  }
  return TimeZone::DaysFromCivil(y, mo, 1);
}

// One writer for the three documents: the whole manifest (format 3), the root of a chaptered
// one (format 4), and one month's chapter. What a scope leaves out, another writes.
std::string Write(const Manifest& m, Scope scope, std::string_view month) {
  int32_t lo = INT32_MIN, hi = INT32_MAX;  // the days written: all, or the chapter's month
  if (scope == Scope::kChapter) ChapterSpan(month, &lo, &hi);
  const bool days_here = scope != Scope::kRoot;
  auto period_here = [&](const std::string& label) {
    std::string_view c = ChapterOfLabel(label);
    return scope == Scope::kWhole || (scope == Scope::kRoot ? c.empty() : c == month);
  };
  std::string o;
  o.reserve(256 + (scope == Scope::kChapter ? 0 : m.inputs.size() * 400) +
            (days_here ? m.segments.size() * 128 + m.days.size() * 512 : 0) +
            m.periods.size() * 128);
  auto out = std::back_inserter(o);
  if (scope == Scope::kChapter) {
    fmt::format_to(out, "{{\n \"format\": 4,\n \"chapter\": ");
    Quote(&o, month);
    fmt::format_to(out, ",\n \"generation\": {},\n \"segments\": [", m.generation);
  } else {
    fmt::format_to(out, "{{\n \"format\": {},\n \"timezone\": ", scope == Scope::kRoot ? 4 : 3);
    Quote(&o, m.timezone);
    fmt::format_to(out, ",\n \"generation\": {},\n \"next_id\": {},\n \"sensors\": [", m.generation,
                   m.next_id);
    for (size_t i = 0; i < m.sensors.size(); ++i) {
      const SensorRecord& s = m.sensors[i];
      o += i ? ",\n  {\"id\": " : "\n  {\"id\": ";
      Quote(&o, s.id);
      o += ", \"name\": ";
      Quote(&o, s.name);
      o += ", \"group\": ";
      Quote(&o, s.group);
      o += ", \"country\": ";
      Quote(&o, s.country);
      o += ", \"mode\": ";
      Quote(&o, s.mode);
      o += ", \"prefixes\": ";
      Strings(&o, s.prefixes);
      o += "}";
    }
    o += m.sensors.empty() ? "],\n \"inputs\": [" : "\n ],\n \"inputs\": [";
    for (size_t k = 0; k < m.inputs.size(); ++k) {
      const InputRecord& i = m.inputs[k];
      o += k ? ",\n  {\"hash\": " : "\n  {\"hash\": ";
      Quote(&o, i.hash);
      o += ", \"sensor\": ";
      Quote(&o, i.sensor);
      o += ", \"path\": ";
      Quote(&o, i.path);
      fmt::format_to(out,
                     ", \"ingested_at\": {}, \"packets_read\": {}, \"kept\": {}, \"dropped\": ",
                     i.ingested_at, i.packets_read, i.kept);
      Counts(&o, i.dropped);
      o += ", \"anomalies\": ";
      Counts(&o, i.anomalies);
      o += ", \"error\": ";
      Quote(&o, i.error);
      o += ", \"country_db\": ";
      Quote(&o, i.country_db);
      o += ", \"asn_db\": ";
      Quote(&o, i.asn_db);
      o += ", \"segments\": ";
      Numbers(&o, i.segments);
      fmt::format_to(out, ", \"index\": {}", i.index);
      if (!i.file_hash.empty()) {
        o += ", \"file_hash\": ";
        Quote(&o, i.file_hash);
      }
      if (!i.more_indexes.empty()) {
        o += ", \"more_indexes\": ";
        Numbers(&o, i.more_indexes);
      }
      if (!i.batches.empty()) {
        o += ", \"batches\": ";
        List(&o, i.batches, [&](const BatchRange& r) {
          fmt::format_to(out, "[{}, {}, {}]", r.stream, r.first, r.last);
        });
      }
      if (i.folded_file) {
        fmt::format_to(out, ", \"folded_file\": {}, \"folded_count\": {}", i.folded_file,
                       i.folded_count);
      }
      if (!i.folded.empty()) {
        o += ", \"folded\": ";
        List(&o, i.folded, [&](const InputRecord::Folded& f) {
          o += "[";
          Quote(&o, f.hash);
          o += ", ";
          Quote(&o, f.file_hash);
          o += "]";
        });
      }
      if (!i.extends.empty()) {
        o += ", \"extends\": ";
        Quote(&o, i.extends);
        fmt::format_to(out, ", \"prefix_packets\": {}", i.prefix_packets);
      }
      o += "}";
    }
    if (scope == Scope::kRoot) {
      o += m.inputs.empty() ? "],\n \"chapters\": {" : "\n ],\n \"chapters\": {";
      bool first = true;
      for (const auto& [label, id] : m.chapters) {
        o += first ? "\n  " : ",\n  ";
        first = false;
        Quote(&o, label);
        fmt::format_to(out, ": {}", id);
      }
      o += m.chapters.empty() ? "}" : "\n }";
    } else {
      o += m.inputs.empty() ? "],\n \"segments\": [" : "\n ],\n \"segments\": [";
    }
  }
  bool first = true;
  if (days_here) {
    for (const SegmentRecord& s : m.segments) {
      if (s.day < lo || s.day >= hi) continue;
      fmt::format_to(
          out,
          "{}{{\"id\": {}, \"day\": \"{}\", \"rows\": {}, \"bytes\": {}, \"ts_min\": {}, "
          "\"ts_max\": {}{}}}",
          first ? "\n  " : ",\n  ", s.id, TimeZone::DayString(s.day), s.rows, s.bytes, s.ts_min,
          s.ts_max,
          s.rows_of == SegmentRows::kBackscatter     ? ", \"rows_of\": \"backscatter\""
          : s.rows_of == SegmentRows::kNoBackscatter ? ", \"rows_of\": \"no backscatter\""
                                                     : "");
      first = false;
    }
    o += first ? "],\n \"days\": {" : "\n ],\n \"days\": {";
    auto begin = m.days.lower_bound(lo);
    auto end = hi == INT32_MAX ? m.days.end() : m.days.lower_bound(hi);
    first = true;
    for (auto it = begin; it != end; ++it) {
      fmt::format_to(out, "{}\"{}\": {{", first ? "\n  " : ",\n  ", TimeZone::DayString(it->first));
      first = false;
      bool f2 = true;
      for (const auto& [sensor, parts] : it->second) {
        fmt::format_to(out, "{}\"{}\": ", f2 ? "" : ", ", sensor);
        f2 = false;
        Parts(&o, parts);
      }
      o += "}";
    }
    // Each sensor-day's parts' counts, in the order of its parts, where every part has them.
    o += first ? "},\n \"day_counts\": {" : "\n },\n \"day_counts\": {";
    first = true;
    for (auto it = begin; it != end; ++it) {
      bool f2 = true;
      for (const auto& [sensor, parts] : it->second) {
        bool known = true;
        for (const auto& p : parts) known = known && m.part_counts.count(p);
        if (!known) continue;
        if (f2) {
          fmt::format_to(out, "{}\"{}\": {{", first ? "\n  " : ",\n  ",
                         TimeZone::DayString(it->first));
          first = false;
        }
        fmt::format_to(out, "{}\"{}\": [", f2 ? "" : ", ", sensor);
        f2 = false;
        for (size_t i = 0; i < parts.size(); ++i) {
          const Manifest::PartCounts& c = m.part_counts.at(parts[i]);
          fmt::format_to(out, "{}{}, {}", i ? ", " : "", c.packets, c.sources);
        }
        o += "]";
      }
      if (!f2) o += "}";
    }
    o += first ? "}" : "\n }";
  }
  o += ",\n \"periods\": {";
  first = true;
  auto pbegin =
      scope == Scope::kChapter ? m.periods.lower_bound(std::string(month)) : m.periods.begin();
  for (auto it = pbegin; it != m.periods.end(); ++it) {
    const auto& [label, parts] = *it;
    if (scope == Scope::kChapter && label.compare(0, month.size(), month) != 0) break;
    if (!period_here(label)) continue;
    o += first ? "\n  " : ",\n  ";
    first = false;
    Quote(&o, label);
    o += ": ";
    Parts(&o, parts);
  }
  o += first ? "}" : "\n }";
  if (scope != Scope::kChapter) {
    if (m.segments_from != INT32_MIN) {
      fmt::format_to(out, ",\n \"segments_from\": \"{}\"", TimeZone::DayString(m.segments_from));
    }
    if (!m.garbage.empty()) {
      o += ",\n \"garbage\": ";
      Strings(&o, m.garbage);
      o += ",\n \"garbage_since\": ";
      Numbers(&o, m.garbage_since);
    }
  }
  o += "\n}";
  return o;
}

}  // namespace

std::string_view ChapterOfLabel(std::string_view label) {
  // "2018-08-12", "2018-08", "2018-08/s3": month "2018-08"; "2018Q3", "2018Q3/s3": none.
  if (label.size() < 7 || label[4] != '-') return {};
  for (size_t i : {0, 1, 2, 3, 5, 6}) {
    if (label[i] < '0' || label[i] > '9') return {};
  }
  if (label.size() > 7 && label[7] != '-' && label[7] != '/') return {};
  return label.substr(0, 7);
}

void MonthSpan(int32_t day, int32_t* first, int32_t* next) {
  int y;
  unsigned mo, d;
  TimeZone::CivilFromDays(day, &y, &mo, &d);
  *first = TimeZone::DaysFromCivil(y, mo, 1);
  *next = mo == 12 ? TimeZone::DaysFromCivil(y + 1, 1, 1) : TimeZone::DaysFromCivil(y, mo + 1, 1);
}

void ChapterSpan(std::string_view month, int32_t* first, int32_t* next) {
  MonthSpan(MonthStart(month), first, next);
}

std::string ChapterOfDay(int32_t day) {
  int y;
  unsigned mo, d;
  TimeZone::CivilFromDays(day, &y, &mo, &d);
  return fmt::format("{:04}-{:02}", y, mo);
}

std::string ManifestJson(const Manifest& m) {
  return Write(m, Scope::kWhole, {});
}
std::string ManifestRootJson(const Manifest& m) {
  return Write(m, Scope::kRoot, {});
}
std::string ChapterJson(const Manifest& m, std::string_view month) {
  return Write(m, Scope::kChapter, month);
}

namespace {

object ParseObject(simdjson::dom::parser* parser, std::string_view text, bool padded,
                   const char* what) {
  static_assert(simdjson::SIMDJSON_PADDING <= 64);
  element root;
  if (auto err = parser->parse(text.data(), text.size(), !padded).get(root)) {
    throw std::runtime_error(std::string("not JSON: ") + simdjson::error_message(err));
  }
  return Obj(root, what);
}

// The members a scope holds (Write above), into `m`; a chapter's must lie in its month.
void Read(object j, Scope scope, std::string_view month, Manifest* out) {
  Manifest& m = *out;
  int32_t lo = INT32_MIN, hi = INT32_MAX;
  if (scope == Scope::kChapter) ChapterSpan(month, &lo, &hi);
  auto in_chapter = [&](int32_t day, std::string_view what) {
    if (day < lo || day >= hi) {
      Bad(what,
          fmt::format("{} is not in the chapter's month {}", TimeZone::DayString(day), month));
    }
  };
  if (scope != Scope::kChapter) {
    m.timezone = Str(At(j, "timezone", "manifest"), "timezone");
    m.generation = U64(At(j, "generation", "manifest"), "generation");
    m.next_id = U64(At(j, "next_id", "manifest"), "next_id");
    for (element e : Arr(At(j, "sensors", "manifest"), "sensors")) {
      object s = Obj(e, "a sensor");
      m.sensors.push_back({Str(At(s, "id", "a sensor"), "a sensor's id"),
                           Str(At(s, "name", "a sensor"), "a sensor's name"),
                           Str(At(s, "group", "a sensor"), "a sensor's group"),
                           Str(At(s, "country", "a sensor"), "a sensor's country"),
                           Str(At(s, "mode", "a sensor"), "a sensor's mode"),
                           StrList(At(s, "prefixes", "a sensor"), "a sensor's prefixes")});
    }
    for (element e : Arr(At(j, "inputs", "manifest"), "inputs")) {
      object i = Obj(e, "an input");
      const char* w = "an input";
      InputRecord r;
      r.hash = Str(At(i, "hash", w), "an input's hash");
      r.sensor = Str(At(i, "sensor", w), "an input's sensor");
      r.path = Str(At(i, "path", w), "an input's path");
      r.ingested_at = I64(At(i, "ingested_at", w), "an input's ingested_at");
      r.packets_read = U64(At(i, "packets_read", w), "an input's packets_read");
      r.kept = U64(At(i, "kept", w), "an input's kept");
      r.dropped = CountMap(At(i, "dropped", w), "an input's dropped");
      r.anomalies = CountMap(At(i, "anomalies", w), "an input's anomalies");
      r.error = Str(At(i, "error", w), "an input's error");
      r.country_db = Str(At(i, "country_db", w), "an input's country_db");
      r.asn_db = Str(At(i, "asn_db", w), "an input's asn_db");
      r.segments = U64List(At(i, "segments", w), "an input's segments");
      if (Has(i, "index")) r.index = U64(At(i, "index", w), "an input's index");
      if (Has(i, "file_hash")) r.file_hash = Str(At(i, "file_hash", w), "an input's file_hash");
      if (Has(i, "more_indexes")) {
        r.more_indexes = U64List(At(i, "more_indexes", w), "an input's more_indexes");
      }
      if (Has(i, "extends")) r.extends = Str(At(i, "extends", w), "an input's extends");
      if (Has(i, "batches")) {
        for (element b : Arr(At(i, "batches", w), "an input's batches")) {
          std::vector<uint64_t> x = U64List(b, "a batch range");
          if (x.size() < 3) Bad("a batch range", "fewer than 3 numbers");
          r.batches.push_back({x[0], x[1], x[2]});
        }
      }
      if (Has(i, "prefix_packets")) {
        r.prefix_packets = U64(At(i, "prefix_packets", w), "an input's prefix_packets");
      }
      if (Has(i, "folded_file")) {
        r.folded_file = U64(At(i, "folded_file", w), "an input's folded_file");
        r.folded_count = U64(At(i, "folded_count", w), "an input's folded_count");
      }
      if (Has(i, "folded")) {
        for (element f : Arr(At(i, "folded", w), "an input's folded")) {
          std::vector<std::string> x = StrList(f, "a folded capture");
          if (x.size() < 2) Bad("a folded capture", "fewer than 2 hashes");
          r.folded.push_back({x[0], x[1]});
        }
      }
      m.inputs.push_back(std::move(r));
    }
  }
  if (scope == Scope::kRoot) {
    for (auto [label, id] : Obj(At(j, "chapters", "manifest"), "chapters")) {
      MonthStart(label);
      m.chapters[std::string(label)] = U64(id, "a chapter's id");
    }
  } else {
    for (element e : Arr(At(j, "segments", "manifest"), "segments")) {
      object s = Obj(e, "a segment");
      const char* w = "a segment";
      m.segments.push_back(
          {U64(At(s, "id", w), "a segment's id"), ParseDay(Str(At(s, "day", w), "a segment's day")),
           U64(At(s, "rows", w), "a segment's rows"), U64(At(s, "bytes", w), "a segment's bytes"),
           I64(At(s, "ts_min", w), "a segment's ts_min"),
           I64(At(s, "ts_max", w), "a segment's ts_max")});
      if (Has(s, "rows_of")) {
        const std::string of = Str(At(s, "rows_of", w), "a segment's rows_of");
        if (of == "backscatter") {
          m.segments.back().rows_of = SegmentRows::kBackscatter;
        } else if (of == "no backscatter") {
          m.segments.back().rows_of = SegmentRows::kNoBackscatter;
        } else {
          Bad("a segment", fmt::format("rows_of \"{}\" is neither \"backscatter\" nor \"no "
                                       "backscatter\"",
                                       of));
        }
      }
      in_chapter(m.segments.back().day, "a segment");
    }
    for (auto [d, per_sensor] : Obj(At(j, "days", "manifest"), "days")) {
      int32_t day = ParseDay(d);
      in_chapter(day, "a day");
      for (auto [sensor, parts] : Obj(per_sensor, "a day")) {
        unsigned long n = std::stoul(std::string(sensor));
        if (n > 0xFFFF) Bad("a day", fmt::format("sensor {} out of range", n));
        m.days[day][static_cast<uint16_t>(n)] = PartsOf(parts, "a day's parts");
      }
    }
    if (Has(j, "day_counts")) {
      for (auto [d, per_sensor] : Obj(At(j, "day_counts", "manifest"), "day_counts")) {
        auto day = m.days.find(ParseDay(d));
        for (auto [sensor, counts] : Obj(per_sensor, "a day's counts")) {
          std::vector<uint64_t> c = U64List(counts, "a day's counts");
          if (day == m.days.end()) continue;
          auto parts = day->second.find(static_cast<uint16_t>(std::stoul(std::string(sensor))));
          // Counts that do not match the day's parts are not used (the parts are opened instead).
          if (parts == day->second.end() || c.size() != 2 * parts->second.size()) continue;
          for (size_t i = 0; i < parts->second.size(); ++i) {
            m.part_counts[parts->second[i]] = {c[2 * i], c[2 * i + 1]};
          }
        }
      }
    }
  }
  if (scope != Scope::kChapter) {
    if (Has(j, "segments_from")) {
      m.segments_from = ParseDay(Str(At(j, "segments_from", "manifest"), "segments_from"));
    }
    if (Has(j, "garbage")) {
      m.garbage = StrList(At(j, "garbage", "manifest"), "garbage");
      if (Has(j, "garbage_since")) {
        m.garbage_since = U64List(At(j, "garbage_since", "manifest"), "garbage_since");
      }
      // A manifest from before garbage_since: its entries died at the latest at its generation.
      m.garbage_since.resize(m.garbage.size(), m.generation);
    }
  }
  if (Has(j, "periods")) {
    for (auto [label, parts] : Obj(At(j, "periods", "manifest"), "periods")) {
      std::string_view c = ChapterOfLabel(label);
      if (scope == Scope::kRoot && !c.empty()) {
        Bad("a period", fmt::format("'{}' belongs in the chapter of {}", label, c));
      }
      if (scope == Scope::kChapter && c != month) {
        Bad("a period", fmt::format("'{}' is not in the chapter's month {}", label, month));
      }
      m.periods[std::string(label)] = PartsOf(parts, "a period's parts");
    }
  }
}

}  // namespace

Manifest ManifestFromJson(std::string_view text, bool padded) {
  simdjson::dom::parser parser;
  object j = ParseObject(&parser, text, padded, "the manifest");
  Manifest m;
  int64_t format = I64(At(j, "format", "manifest"), "format");
  if (format > 4) {
    throw std::runtime_error(fmt::format("manifest format {} is newer than this teiten", format));
  }
  if (Has(j, "chapter")) throw std::runtime_error("a chapter, not a manifest");
  m.format = 4;  // written sealed and in chapters from now on
  Read(j, format == 4 ? Scope::kRoot : Scope::kWhole, {}, &m);
  return m;
}

void ChapterFromJson(std::string_view text, bool padded, std::string_view month, Manifest* m) {
  simdjson::dom::parser parser;
  object j = ParseObject(&parser, text, padded, "a chapter");
  if (I64(At(j, "format", "chapter"), "format") != 4) Bad("chapter", "not format 4");
  std::string c = Str(At(j, "chapter", "chapter"), "chapter");
  if (c != month) Bad("chapter", fmt::format("holds {}, the manifest names it for {}", c, month));
  Read(j, Scope::kChapter, month, m);
}

}  // namespace teiten
