// Netfilter LOG lines as observations (SPEC C3): a host sensor that has only its firewall's log.
//
// The kernel's `nf_log_syslog` (iptables `-j LOG`, nftables `log`) writes one line per packet:
//
//   teiten: IN=eth0 OUT= MACSRC=… SRC=192.0.2.7 DST=198.51.100.1 LEN=44 TOS=0x00 PREC=0x00
//   TTL=241 ID=54321 PROTO=TCP SPT=40000 DPT=23 SEQ=1 ACK=0 WINDOW=1024 RES=0x00 SYN URGP=0
//   OPT (020405B4)
//
// ParseNetfilterLog turns such a line into the Observation the packet decoder
// (capture/decoder.h) makes from the packet itself, as far as the line carries the fields:
// src, dst, proto, ttl/hop limit, ip_len (LEN=, IPv6: payload + 40 as the decoder counts it),
// ip_id (IPv4 ID=, IPv6 fragment ID: low 16 bits), sport, dport, seq and ack (SEQ=/ACK=, logged
// with --log-tcp-sequence or `flags tcp sequence`), window, the TCP flag words, ICMP/ICMPv6
// TYPE/CODE, TCP option bytes (OPT (hex), --log-tcp-options / `flags tcp options`) and the
// fragment flags (IPv4 MF/FRAG:, IPv6 FRAG:/INCOMPLETE). A log line carries no payload bytes:
// payload_cap is always 0. payload_len is computed from the lengths when they determine it
// (UDP from its LEN=, TCP from LEN= less the option bytes the line shows, ICMP from LEN=); see
// NflogContext::options_logged. IPv6 extension headers other than the fragment header are not
// in the line, so an IPv6 payload_len behind them counts their bytes. `sensor` is left 0.
//
// Timestamps come from the line's own prefix where it has one:
//   - `journalctl -o json` lines: {"__REALTIME_TIMESTAMP":"…µs…","MESSAGE":"…"} (MESSAGE may be
//     journald's byte array form),
//   - ISO-8601 (rsyslog's RFC 3339 form) `2026-12-04T05:41:07.123456+00:00 host kernel: …`,
//     a missing zone meaning NflogContext::zone,
//   - classic syslog `Dec  4 05:41:07 host kernel: [12345.678] …`, in NflogContext::year and
//     NflogContext::zone,
// and otherwise (raw dmesg, /dev/kmsg records) it is NflogContext::ts_us, given by the caller.
//
// Everything read is hostile: no input crashes the parser or makes it read past the line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/observation.h"
#include "common/status.h"
#include "common/time_zone.h"

namespace teiten {

struct NflogContext {
  // The year of classic syslog lines, which carry none. 0: such lines are an error.
  int year = 0;
  // The zone of classic syslog lines and of ISO lines without an offset; nullptr means UTC.
  // Not owned; must outlive the parse.
  const TimeZone* zone = nullptr;
  // The time of lines whose format carries none (dmesg, /dev/kmsg), µs since the epoch, UTC.
  int64_t ts_us = 0;
  // True when the rule logs IP and TCP options (nft `flags all`, iptables --log-ip-options
  // --log-tcp-options): a line without OPT then means the packet had none, and payload_len is
  // exact. When false, TCP payload_len is left 0 (the option length is unknown) and an IPv4
  // packet's IP options, if it had any, are counted in its UDP or ICMP payload_len. Whatever
  // this says, fields a line does not carry (SEQ=/ACK= without --log-tcp-sequence) are 0.
  bool options_logged = true;
};

// Parses one log line. NotFound when the line is not a netfilter LOG line (no SRC= and DST=;
// kernel logs hold other lines and callers skip these silently). InvalidArgument naming the
// field and its byte offset in the line when a LOG line has a broken or out-of-range field, or
// a timestamp that cannot be read. TCP option bytes are appended to `blob` (the observation's
// `blob` is their offset); on error nothing is appended.
Result<Observation> ParseNetfilterLog(std::string_view line, const NflogContext& ctx,
                                      std::vector<uint8_t>* blob);

// Why a line was not kept (LOG lines that failed, and lines too long to look at).
enum class NflogError : uint8_t {
  kLineTooLong,   // longer than NflogReaderOptions::max_line: skipped up to its newline
  kBadField,      // a LOG line with a broken or out-of-range field
  kBadTimestamp,  // a LOG line whose timestamp prefix cannot be read
  kBadJournal,    // a journal JSON line or export entry that is broken
  kCount,
};
const char* NflogErrorName(NflogError e);  // "line_too_long", … (stable, used in summaries)

struct NflogCounts {
  uint64_t lines = 0;      // complete lines read (including too-long ones)
  uint64_t log_lines = 0;  // lines that were netfilter LOG lines (kept or not)
  uint64_t kept = 0;       // observations yielded
  uint64_t rotations = 0;  // followed file replaced (renamed away) or truncated
  uint64_t errors[static_cast<size_t>(NflogError::kCount)] = {};
  struct Example {
    uint64_t line_number;  // 1-based, counted over everything this reader read
    std::string message;   // the error, naming the file, the field and its byte offset
  };
  std::vector<Example> first_errors;  // at most NflogReaderOptions::kept_errors
  uint64_t Errors(NflogError e) const { return errors[static_cast<size_t>(e)]; }
};

struct NflogReaderOptions {
  // Follow the file as it grows, like `tail -F`: at end of file Next() returns what it has and
  // the next call goes on; a file renamed away is read to its end and the new file at the path
  // is then read from its start; a file truncated below the read position is read from its start.
  bool follow = false;
  size_t max_line = 64 * 1024;  // longer lines are counted kLineTooLong and skipped
  size_t kept_errors = 16;
  // Start where an earlier reader of this path stopped (its position()): used when the file at
  // the path is still that inode and at least that long; otherwise (rotated or truncated since)
  // the file is read from its start.
  uint64_t resume_inode = 0;
  int64_t resume_offset = 0;
};

// Reads LOG lines from a file or a stream fd and yields observations in batches. Not thread-safe.
// Besides plain log lines and `journalctl -o json` lines it reads `journalctl -o export` streams
// (entered at a `__CURSOR=` or `__REALTIME_TIMESTAMP=` line): each entry's MESSAGE, text or
// binary (length-prefixed) form, is parsed at the entry's blank line with the entry's
// __REALTIME_TIMESTAMP as its time. An export entry's errors carry the MESSAGE's line number.
//
//   ASSIGN_OR_RETURN(auto reader, NetfilterLogReader::Open("/var/log/kern.log", ctx, {}));
//   ObservationBatch batch;
//   while (true) { ASSIGN_OR_RETURN(size_t n, reader.Next(&batch, 4096)); if (n == 0) break; … }
class NetfilterLogReader {
 public:
  static Result<NetfilterLogReader> Open(const std::string& path, const NflogContext& ctx,
                                         const NflogReaderOptions& options);
  // Reads from `fd` (a pipe or a socket: not followed by name). The reader takes ownership.
  static NetfilterLogReader FromFd(int fd, std::string name, const NflogContext& ctx,
                                   const NflogReaderOptions& options);
  NetfilterLogReader(NetfilterLogReader&& o) noexcept;
  NetfilterLogReader& operator=(NetfilterLogReader&& o) noexcept;
  NetfilterLogReader(const NetfilterLogReader&) = delete;
  NetfilterLogReader& operator=(const NetfilterLogReader&) = delete;
  ~NetfilterLogReader();

  // Appends up to `max_rows` observations to `batch` (its blob holds their option bytes) and
  // returns how many. 0 means: nothing more now — end of input when not following, or nothing
  // new yet when following (call again later). When not following, a last line without a
  // newline is read as a line. IoError when reading fails; bad lines are counted, not errors.
  Result<size_t> Next(ObservationBatch* batch, size_t max_rows);

  const NflogCounts& counts() const { return counts_; }
  // The file and byte offset of the first line not yet yielded (for NflogReaderOptions::resume_*).
  struct Position {
    uint64_t inode = 0;
    int64_t offset = 0;
  };
  Position position() const {
    int64_t held = static_cast<int64_t>(pending_.size());
    return {ino_, offset_ > held ? offset_ - held : 0};
  }
  // Caller-side context changes (e.g. ts_us for timestamp-less lines) apply to later lines.
  NflogContext& context() { return ctx_; }

 private:
  NetfilterLogReader(int fd, std::string name, const NflogContext& ctx,
                     const NflogReaderOptions& options);
  void TakeLine(std::string_view line, ObservationBatch* batch);
  void TakeExportLine(std::string_view line, ObservationBatch* batch);
  void FinishEntry(ObservationBatch* batch);
  void Keep(std::string_view text, const NflogContext& ctx, uint64_t line_number,
            ObservationBatch* batch);
  void CountError(NflogError e, uint64_t line_number, std::string message);
  Result<bool> Reopen();  // follow mode at EOF: true when a new file or truncation was found

  int fd_ = -1;
  std::string name_;
  NflogContext ctx_;
  NflogReaderOptions options_;
  NflogCounts counts_;
  std::string pending_;    // an incomplete line
  bool skipping_ = false;  // inside a too-long line, until its newline
  bool eof_ = false;       // not following: input ended
  uint64_t ino_ = 0, dev_ = 0;
  int64_t offset_ = 0;  // bytes read from the current file

  // `journalctl -o export` state: the entry being read, and a binary field being skipped.
  enum class Binary : uint8_t { kNone, kLength, kData };
  bool export_ = false;
  std::optional<int64_t> entry_ts_;
  std::optional<std::string> entry_message_;
  uint64_t entry_message_line_ = 0;
  std::string entry_error_;
  Binary binary_ = Binary::kNone;
  bool binary_message_ = false;  // the binary field is MESSAGE: its bytes are kept
  uint64_t binary_left_ = 0;     // data bytes and the newline after them
};

}  // namespace teiten
