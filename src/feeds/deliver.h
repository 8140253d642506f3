// Delivering a feed (SPEC O5, issue 13 point 3): by webhook (an HTTP POST, retried with
// exponential backoff, signed), by mail through a sendmail-compatible command, and the state of
// "since the last run".
//
//   ASSIGN_OR_RETURN(WebhookResult r, PostWebhook(opts, body, "text/csv", log));
//
// The webhook request carries:
//   X-Teiten-Timestamp:  the Unix time (seconds) at which the attempt was made;
//   X-Teiten-Delivery:   one id per feed (the first 16 bytes of the body's SHA-256, hex), the same
//                        on every retry, so a receiver that got an attempt whose answer was lost
//                        can drop the repeat;
//   X-Teiten-Signature:  "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body).
// The receiver recomputes the HMAC over the timestamp it received and the raw body, compares in
// constant time and refuses timestamps far from its clock (replays). docs/FEEDS.md shows how.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace teiten {

struct WebhookOptions {
  std::string url;      // http://host[:port]/path or https://… (certificate verified)
  std::string secret;   // the shared secret's bytes; empty: no signature header
  std::string ca_file;  // https: a CA bundle to verify the receiver with (default: the system's)
  int attempts = 6;     // in all, the first included
  double first_backoff_s = 2;  // before the 2nd attempt; doubled each time, at most max_backoff_s
  double max_backoff_s = 300;
  int timeout_s = 30;  // connect, and each read and write
};

struct WebhookResult {
  int attempts = 0;  // made, the successful one included
  int http_status = 0;
};

// One line per failed attempt, for the caller to log ("attempt 1/6: HTTP 500; retrying in 2 s").
using DeliveryLog = std::function<void(const std::string&)>;

// POSTs `body` to opts.url until a 2xx answer. Retried: network errors, 408, 425, 429 and 5xx
// (a Retry-After in seconds is honoured up to max_backoff_s). Not retried: other answers (a 4xx
// means the request itself is refused — a wrong URL or secret, which waiting will not mend).
// Errors: kInvalidArgument for a URL that is not http(s)://host[:port][/path]; kUnavailable when
// every attempt failed or the answer was final, naming the URL, the attempts and the last error.
Result<WebhookResult> PostWebhook(const WebhookOptions& opts, std::string_view body,
                                  std::string_view content_type, const DeliveryLog& log);

// The signature header's value for `body` sent at `timestamp` (exposed for tests and receivers).
std::string WebhookSignature(std::string_view secret, std::string_view timestamp,
                             std::string_view body);
std::string DeliveryId(std::string_view body);

struct MailOptions {
  std::string command;  // run by /bin/sh, the message on its stdin, e.g. "/usr/sbin/sendmail -t -i"
  std::string from, to;  // addresses (several in `to` separated by ", "); no CR or LF allowed
  std::string subject;   // UTF-8; encoded per RFC 2047 when not ASCII
};

// The RFC 5322 message: the headers, then `body` as a base64 MIME part of type `content_type`
// (so that long CSV lines and UTF-8 survive any relay), attached under `filename`.
Result<std::string> MailMessage(const MailOptions& opts, std::string_view body,
                                std::string_view content_type, std::string_view filename,
                                int64_t now_unix);
// Pipes the message into opts.command; an error when it cannot start, or exits non-zero (with its
// exit status).
Status SendMail(const MailOptions& opts, std::string_view message);

// "Since the last run": the last day (days since the epoch) a previous run covered, kept in a small
// JSON file {"last_day": "YYYY-MM-DD"}. Absent file: nullopt. A file that is not that: an error
// naming it (a state file is never silently reset — that would send a year of findings again).
Result<std::optional<int32_t>> ReadFeedState(const std::string& path);
// Written beside the file and renamed over it (fsynced), so a crash leaves the old or the new one.
Status WriteFeedState(const std::string& path, int32_t last_day);

}  // namespace teiten
