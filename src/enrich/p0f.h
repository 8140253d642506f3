// OS guesses from p0f v3's TCP SYN signatures (SPEC E6). Reads the signature file p0f ships
// (Debian's `p0f` package: /etc/p0f/p0f.fp; format in p0f's docs/README, section 5) and matches
// the SYNs teiten keeps against its [tcp:request] signatures, the way p0f's fp_tcp.c does: an
// exact match of a specific signature wins, then the first exact generic one, then the first
// fuzzy one (quirks that only lose df/id+ or gain id-/ecn, or a TTL farther than 35 hops);
// fuzzy matches never name a user-land tool ("!" class), as in p0f.
//
// What differs from p0f, because the store does not keep it: the IPv4 DF bit, the IP ECN bits,
// the reserved bit, the IPv6 flow label and the TCP urgent pointer. The quirks built on them
// (df, id+, id-, 0+, flow, uptr+) are neither required nor excluded; ecn is judged from the TCP
// ECE/CWR flags alone. Signatures that differ only in those quirks tie, and the first in the file
// wins. The IP options length is derived from the stored lengths (IPv4 total length minus the
// TCP header and payload).
//
// The file is hostile input: every error names the file and line and what was wrong, and
// nothing is guessed from a line that did not parse.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/observation.h"
#include "common/status.h"

namespace teiten {

// p0f's quirk bits, as its signature file names them.
namespace p0f_quirk {
inline constexpr uint32_t kDf = 1u << 0, kNzId = 1u << 1, kZeroId = 1u << 2, kEcn = 1u << 3,
                          kNzMbz = 1u << 4, kFlow = 1u << 5, kZeroSeq = 1u << 6, kNzAck = 1u << 7,
                          kZeroAck = 1u << 8, kNzUrg = 1u << 9, kUrg = 1u << 10, kPush = 1u << 11,
                          kTs1Zero = 1u << 12, kTs2Nz = 1u << 13, kOptEolNz = 1u << 14,
                          kExws = 1u << 15, kOptBad = 1u << 16;
// The quirks teiten cannot see in a stored observation (above).
inline constexpr uint32_t kUnseen = kDf | kNzId | kZeroId | kNzMbz | kFlow | kNzUrg;
}  // namespace p0f_quirk

// TCP option kinds as p0f lays them out; "?N" keeps N itself.
inline constexpr uint8_t kTcpOptEol = 0, kTcpOptNop = 1, kTcpOptMss = 2, kTcpOptWs = 3,
                         kTcpOptSok = 4, kTcpOptSack = 5, kTcpOptTs = 8;

struct P0fLabel {
  bool generic = false;         // "g:" (a family), not "s:" (a specific version)
  bool application = false;     // class "!": a tool such as Nmap, not an operating system
  std::string os_class;         // "unix", "win", "other", "!"
  std::string name;             // "Linux", "Windows", "NMap"
  std::string flavor;           // "3.11 and newer", "" when none
  std::string Display() const;  // "Linux 3.11 and newer", "NMap SYN scan"
};

enum class P0fWindow : uint8_t { kAny, kExact, kMod, kMss, kMtu };

struct P0fSignature {
  int line = 0;          // in the file
  size_t label = 0;      // index in P0fDatabase::labels()
  int ip_version = 0;    // 4, 6, or 0 for any
  int ittl = 0;          // initial TTL
  bool bad_ttl = false;  // "64-": a TTL the system randomizes
  int ip_opt_len = 0;
  int mss = -1;  // -1: any
  P0fWindow window_type = P0fWindow::kAny;
  int window = 0;  // the value, the modulus or the multiplier, by window_type
  int scale = -1;  // -1: any
  std::vector<uint8_t> layout;
  int eol_pad = 0;
  uint32_t quirks = 0;
  int payload = -1;  // -1: any, 0: none, 1: some
};

// A SYN as p0f's matcher sees it.
struct SynFingerprint {
  int ip_version = 4;
  int ttl = 0;
  int ip_opt_len = 0;
  int mss = 0;  // 0 without an MSS option, as p0f reads it
  uint16_t window = 0;
  int scale = 0;  // 0 without a window scale option, as p0f reads it
  std::vector<uint8_t> layout;
  int eol_pad = 0;
  uint32_t quirks = 0;
  bool payload = false;
};

// The fingerprint of a stored TCP SYN (SYN set, ACK not). False when `o` is not one, or its
// options or header were not kept whole (cut short by the capture, a fragment).
bool SynFingerprintOf(const Observation& o, std::string_view tcp_options, SynFingerprint* out);

struct P0fMatch {
  const P0fSignature* signature = nullptr;  // nullptr: no signature matched
  bool fuzzy = false;
  int distance = 0;  // hops: the signature's initial TTL minus the TTL seen
};

class P0fDatabase {
 public:
  // Reads and parses `path` (p0f's own default: /etc/p0f/p0f.fp).
  static Result<P0fDatabase> Load(const std::string& path);
  // Parses a signature file's text; `name` is what errors call it.
  static Result<P0fDatabase> Parse(std::string_view text, const std::string& name);

  const std::vector<P0fLabel>& labels() const { return labels_; }
  const std::vector<P0fSignature>& syn_signatures() const { return syn_; }
  const P0fLabel& LabelOf(const P0fSignature& s) const { return labels_[s.label]; }
  P0fMatch Match(const SynFingerprint& fp) const;

 private:
  std::vector<P0fLabel> labels_;
  std::vector<P0fSignature> syn_;  // [tcp:request], in file order
};

}  // namespace teiten
