#include "enrich/port_notes.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>

#include "common/toml_context.h"

namespace teiten {
namespace embedded {
extern const std::string_view kPortsToml;
}

namespace {

// Messages name file, line and key (common/toml_context.h).
using Ctx = TomlContext;

Result<std::string> Str(const Ctx& c, const toml::table& t, std::string_view key, bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) return c.Missing(t, key);
    return std::string();
  }
  if (!n->is_string()) return c.Err(*n, key, "expected a string");
  return std::string(*n->value<std::string_view>());
}

// The code point that starts at s[i] (s is valid UTF-8 or close to it; bad bytes read as
// themselves, which is enough to tell ASCII from not).
char32_t CodePointAt(std::string_view s, size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  int n = b < 0x80 ? 0 : (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : 0;
  char32_t c = n == 0 ? b : b & (0x3f >> n);
  for (int k = 1; k <= n && i + k < s.size(); ++k) {
    c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
  }
  return c;
}

char32_t LastCodePoint(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) >> 6) == 2) --i;
  return CodePointAt(s, i);
}

// Japanese punctuation and brackets: 、。「」〜・ and the full-width forms.
bool IsCjkPunct(char32_t c) {
  return (c >= 0x3000 && c <= 0x303f) || c == 0x30fb || (c >= 0xff00 && c <= 0xffef);
}

bool IsAsciiAlnum(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Whether a wrapped line break between `a` and `b` reads as a space: always between English
// words, never between Japanese characters, and between a Japanese word and a Latin one
// ("攻撃に Mirai"), as Japanese technical writing spaces them, unless punctuation is on either
// side ("、Mirai", "脆弱性(CVE-…").
bool BreakIsSpace(char32_t a, char32_t b) {
  bool a_ascii = a < 0x80, b_ascii = b < 0x80;
  if (a_ascii && b_ascii) return true;
  if (!a_ascii && !b_ascii) return false;
  char32_t latin = a_ascii ? a : b, other = a_ascii ? b : a;
  return IsAsciiAlnum(latin) && !IsCjkPunct(other);
}

// The text as one paragraph: the file wraps long strings over several lines.
std::string Paragraph(std::string_view raw) {
  std::string out;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t nl = raw.find('\n', pos);
    if (nl == std::string_view::npos) nl = raw.size();
    std::string_view line = raw.substr(pos, nl - pos);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    if (!line.empty()) {
      if (!out.empty() && BreakIsSpace(LastCodePoint(out), CodePointAt(line, 0))) out += ' ';
      out += line;
    }
    pos = nl + 1;
  }
  return out;
}

// "23/TCP, 2323/TCP", "1026–1028/UDP", "53/TCP, 53/UDP (domain)".
std::string Title(const std::vector<PortKey>& keys, const std::string& service) {
  std::string s;
  for (size_t i = 0; i < keys.size();) {
    size_t j = i;
    while (j + 1 < keys.size() && PortKeyHasPort(keys[j]) &&
           PortKeyProto(keys[j + 1]) == PortKeyProto(keys[j]) &&
           PortKeyPort(keys[j + 1]) == PortKeyPort(keys[j]) + 1) {
      ++j;
    }
    if (!s.empty()) s += ", ";
    if (j > i + 1) {
      const char* proto = ProtoName(PortKeyProto(keys[i]));
      s += fmt::format("{}\u2013{}/{}", PortKeyPort(keys[i]), PortKeyPort(keys[j]),
                       proto ? proto : "?");
      i = j + 1;
    } else {
      s += PortKeyToString(keys[i]);
      ++i;
    }
  }
  bool one_port = true;
  for (PortKey k : keys) one_port = one_port && PortKeyPort(k) == PortKeyPort(keys[0]);
  if (one_port && !service.empty()) s += fmt::format(" ({})", service);
  return s;
}

Status ParseRefs(const Ctx& c, const toml::node& n, std::vector<PortNoteRef>* refs) {
  const toml::array* a = n.as_array();
  if (!a) return c.Err(n, "refs", "expected an array of { title, url } tables");
  for (const toml::node& e : *a) {
    const toml::table* t = e.as_table();
    if (!t) return c.Err(e, "refs", "expected a { title = \"…\", url = \"…\" } table");
    RETURN_IF_ERROR(CheckKeys(c, *t, {"title", "url"}));
    PortNoteRef r;
    ASSIGN_OR_RETURN(r.title, Str(c, *t, "title", true));
    ASSIGN_OR_RETURN(r.url, Str(c, *t, "url", true));
    if (r.title.empty()) return c.Err(*t->get("title"), "title", "empty");
    if (r.url.rfind("https://", 0) != 0 && r.url.rfind("http://", 0) != 0) {
      return c.Err(*t->get("url"), "url", "expected an http:// or https:// address");
    }
    refs->push_back(std::move(r));
  }
  return OkStatus();
}

}  // namespace

Result<PortNotes> PortNotes::Parse(std::string_view text, const std::string& file) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    return InvalidArgument(fmt::format("{}:{}: {}", file, e.source().begin.line, e.description()));
  }
  const Ctx c{file};
  RETURN_IF_ERROR(CheckKeys(c, root, {"port"}));
  const toml::node* list = root.get("port");
  if (!list) return InvalidArgument(fmt::format("{}: no [[port]] tables", file));
  const toml::array* a = list->as_array();
  if (!a || !a->is_array_of_tables()) return c.Err(*list, "port", "expected [[port]] tables");

  PortNotes out;
  for (const toml::node& node : *a) {
    const toml::table& t = *node.as_table();
    RETURN_IF_ERROR(CheckKeys(c, t, {"ports", "service", "label", "en", "ja", "refs"}));
    PortNote note;
    note.line = static_cast<int>(t.source().begin.line);

    const toml::node* ports = t.get("ports");
    if (!ports) return c.Missing(t, "ports");
    const toml::array* pa = ports->as_array();
    if (!pa || pa->empty()) return c.Err(*ports, "ports", "expected a non-empty array of ports");
    for (const toml::node& p : *pa) {
      std::optional<std::string_view> s = p.value<std::string_view>();
      PortKey key = 0;
      if (!s || !ParsePortKey(*s, &key)) {
        return c.Err(p, "ports", "expected \"<port>/tcp\", \"<port>/udp\", \"icmp\" or \"icmpv6\"");
      }
      if (out.index_.count(key) ||
          std::find(note.keys.begin(), note.keys.end(), key) != note.keys.end()) {
        return c.Err(p, "ports", fmt::format("{} has a note already", PortKeyToString(key)));
      }
      note.keys.push_back(key);
    }

    ASSIGN_OR_RETURN(note.service, Str(c, t, "service", false));
    ASSIGN_OR_RETURN(note.label, Str(c, t, "label", false));
    ASSIGN_OR_RETURN(std::string en, Str(c, t, "en", true));
    ASSIGN_OR_RETURN(std::string ja, Str(c, t, "ja", true));
    note.en = Paragraph(en);
    note.ja = Paragraph(ja);
    if (note.en.empty()) return c.Err(*t.get("en"), "en", "empty");
    if (note.ja.empty()) return c.Err(*t.get("ja"), "ja", "empty");
    if (const toml::node* refs = t.get("refs")) RETURN_IF_ERROR(ParseRefs(c, *refs, &note.refs));
    note.title = Title(note.keys, note.service);

    for (PortKey k : note.keys) out.index_.emplace(k, out.notes_.size());
    out.notes_.push_back(std::move(note));
  }
  return out;
}

const PortNotes& PortNotes::Default() {
  static const PortNotes* notes = [] {
    Result<PortNotes> r = Parse(embedded::kPortsToml, "data/ports.toml");
    if (!r.ok()) {
      // Unreachable from input: the embedded file is fixed at build time and unit-tested.
      std::fprintf(stderr, "teiten: embedded port notes: %s\n", r.status().ToString().c_str());
      std::abort();
    }
    return new PortNotes(std::move(*r));
  }();
  return *notes;
}

const PortNote* PortNotes::Find(PortKey key) const {
  if (!PortKeyHasPort(key)) return nullptr;
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &notes_[it->second];
}

std::vector<const PortNote*> PortNotes::FindAll(const std::vector<PortKey>& keys) const {
  std::vector<const PortNote*> out;
  for (PortKey k : keys) {
    const PortNote* n = Find(k);
    if (n && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

const PortNote* FindPortNote(PortKey key) {
  return PortNotes::Default().Find(key);
}

std::vector<const PortNote*> FindPortNotes(const std::vector<PortKey>& keys) {
  return PortNotes::Default().FindAll(keys);
}

}  // namespace teiten
