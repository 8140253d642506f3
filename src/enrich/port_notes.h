// Port knowledge base (SPEC E4): for the ports darknets see most, a few sentences in English and
// Japanese saying what legitimately uses the port and what scans and attacks target it, with
// optional references. Reports end with the notes of the ports they feature, as section 4
// (補足説明) of the TALOT2 report (seed 004) does.
//
// The notes are data, data/ports.toml (its header documents the format), compiled into the
// binary at build time:
//
//   if (const PortNote* n = FindPortNote(MakePortKey(6, 445))) {
//     out << n->title << ": " << n->Text(Lang::kJa);   // "445/TCP (microsoft-ds): Windows の…"
//   }
//
// Ports that share a story share one note (23 and 2323/TCP, 1026–1028/UDP): every one of their
// keys resolves to the same PortNote, so a report listing several featured ports can print a
// shared note once by comparing pointers.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/observation.h"
#include "common/status.h"
#include "enrich/names.h"

namespace teiten {

struct PortNoteRef {
  std::string title;  // e.g. "Microsoft Security Bulletin MS17-010"
  std::string url;    // https:// or http://
};

struct PortNote {
  // The ports the note covers, in the file's order; the first is the note's main port.
  std::vector<PortKey> keys;
  // The IANA service name of the first key as the IANA registry lists it ("microsoft-ds",
  // "http-alt", "wap-wsp"), so that it agrees with ServiceNames; "" where IANA names none.
  std::string service;
  // What the port is in practice when that differs from the IANA name ("Elasticsearch",
  // "Huawei HG532 UPnP"); may be "".
  std::string label;
  // The keys as reports print them, with the service when the note covers one port number:
  // "445/TCP (microsoft-ds)", "53/TCP, 53/UDP (domain)", "23/TCP, 2323/TCP", "1026–1028/UDP",
  // "0/ICMP".
  std::string title;
  std::string en, ja;  // 2–4 sentences of plain text each (no markup; escape when shown)
  std::vector<PortNoteRef> refs;
  int line = 0;  // where the note starts in its file

  const std::string& Text(Lang lang) const { return lang == Lang::kJa ? ja : en; }
};

// A parsed note file. Movable; PortNote pointers stay valid for the object's lifetime.
class PortNotes {
 public:
  // Parses note TOML. `file` names the text in messages, which read
  // "<file>:<line>: key '<key>': <what is wrong>" (kInvalidArgument), the line being that of the
  // offending value. A port listed by two notes is an error.
  static Result<PortNotes> Parse(std::string_view text, const std::string& file);
  // The notes compiled into the binary (data/ports.toml). They are checked by the unit tests, so
  // a failure to parse them is a build defect: it is reported on stderr and the process aborts.
  static const PortNotes& Default();

  // The note covering `key`, or nullptr. Keys without a port (kNoPortBit) have none.
  const PortNote* Find(PortKey key) const;
  // The notes for a report's featured ports, in the order of `keys`, each note once (ports
  // sharing a note give it where the first of them stands); ports without a note are skipped.
  std::vector<const PortNote*> FindAll(const std::vector<PortKey>& keys) const;
  const std::vector<PortNote>& notes() const { return notes_; }

 private:
  std::vector<PortNote> notes_;
  std::unordered_map<PortKey, size_t> index_;  // key → position in notes_
};

// PortNotes::Default().Find(key) and .FindAll(keys).
const PortNote* FindPortNote(PortKey key);
std::vector<const PortNote*> FindPortNotes(const std::vector<PortKey>& keys);

}  // namespace teiten
