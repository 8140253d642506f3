#include "enrich/port_notes.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>

namespace teiten {
namespace embedded {
extern const std::string_view kPortsToml;
}

namespace {

// Every message is "<file>:<line>: key '<key>': <what>", as scenario and config files say it.
struct Ctx {
  const std::string& file;
  Status Err(const toml::node& n, std::string_view key, std::string_view what) const {
    return InvalidArgument(
        fmt::format("{}:{}: key '{}': {}", file, n.source().begin.line, key, what));
  }
  Status Missing(const toml::table& t, std::string_view key) const {
    return InvalidArgument(
        fmt::format("{}:{}: missing key '{}'", file, t.source().begin.line, key));
  }
};

Status CheckKeys(const Ctx& c, const toml::table& t, const std::set<std::string_view>& allowed) {
  for (const auto& [k, v] : t) {
    if (!allowed.count(k.str())) return c.Err(v, k.str(), "unknown key");
  }
  return OkStatus();
}

Result<std::string> Str(const Ctx& c, const toml::table& t, std::string_view key, bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) return c.Missing(t, key);
    return std::string();
  }
  if (!n->is_string()) return c.Err(*n, key, "expected a string");
  return std::string(*n->value<std::string_view>());
}

bool IsAscii(char ch) {
  return static_cast<unsigned char>(ch) < 0x80;
}

// The text as one paragraph: the file wraps long strings over several lines, and a line break
// becomes a space between ASCII words but nothing between Japanese characters.
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
      if (!out.empty() && IsAscii(out.back()) && IsAscii(line.front())) out += ' ';
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

const PortNote* FindPortNote(PortKey key) {
  return PortNotes::Default().Find(key);
}

}  // namespace teiten
