#include "feeds/deliver.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "analysis/period.h"
#include "common/time_zone.h"

namespace teiten {
namespace {

std::string Hex(const unsigned char* p, size_t n) {
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) s += fmt::format("{:02x}", p[i]);
  return s;
}

struct Url {
  std::string origin;  // scheme://host[:port], what httplib's Client takes
  std::string path;
};

Result<Url> SplitUrl(const std::string& url) {
  std::string_view rest = url;
  std::string_view scheme;
  if (rest.starts_with("http://")) {
    scheme = "http";
  } else if (rest.starts_with("https://")) {
    scheme = "https";
  } else {
    return InvalidArgument(
        fmt::format("webhook URL '{}': must start with http:// or https://", url));
  }
  rest.remove_prefix(scheme.size() + 3);
  size_t slash = rest.find('/');
  std::string_view host = rest.substr(0, slash);
  if (host.empty() || host.find_first_of("@ \t\r\n?#") != std::string_view::npos) {
    return InvalidArgument(
        fmt::format("webhook URL '{}': no host, or a host with user info or "
                    "blanks",
                    url));
  }
  Url u;
  u.origin = fmt::format("{}://{}", scheme, host);
  u.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (u.path.find_first_of(" \t\r\n") != std::string::npos) {
    return InvalidArgument(fmt::format("webhook URL '{}': blanks in the path", url));
  }
  return u;
}

bool Retryable(int status) {
  return status == 408 || status == 425 || status == 429 || status >= 500;
}

// RFC 2047 encoded-word for a non-ASCII header text (base64, UTF-8).
std::string EncodeHeaderText(std::string_view s) {
  if (std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
    return std::string(s);
  }
  std::string b64(sodium_base64_ENCODED_LEN(s.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(s.data()),
                    s.size(), sodium_base64_VARIANT_ORIGINAL);
  b64.resize(std::strlen(b64.c_str()));
  return "=?UTF-8?B?" + b64 + "?=";
}

}  // namespace

std::string WebhookSignature(std::string_view secret, std::string_view timestamp,
                             std::string_view body) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(secret.data()),
                              secret.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(timestamp.data()),
                                timestamp.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>("."), 1);
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(body.data()),
                                body.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&st, mac);
  return "sha256=" + Hex(mac, sizeof mac);
}

std::string DeliveryId(std::string_view body) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(body.data()), body.size());
  return Hex(h, 16);
}

Result<WebhookResult> PostWebhook(const WebhookOptions& opts, std::string_view body,
                                  std::string_view content_type, const DeliveryLog& log) {
  if (sodium_init() < 0) return Internal("libsodium failed to initialise");
  ASSIGN_OR_RETURN(Url url, SplitUrl(opts.url));
  if (opts.attempts < 1) return InvalidArgument("webhook attempts must be at least 1");
  httplib::Client client(url.origin);
  if (!client.is_valid()) {
    return InvalidArgument(fmt::format("webhook URL '{}': not a usable address", opts.url));
  }
  client.set_connection_timeout(opts.timeout_s, 0);
  client.set_read_timeout(opts.timeout_s, 0);
  client.set_write_timeout(opts.timeout_s, 0);
  client.set_follow_location(false);  // a redirect would send the feed where no one checked
  if (url.origin.starts_with("https://")) {
    client.enable_server_certificate_verification(true);
    if (!opts.ca_file.empty()) client.set_ca_cert_path(opts.ca_file.c_str());
  }
  const std::string id = DeliveryId(body);
  double backoff = opts.first_backoff_s;
  std::string last_error;
  WebhookResult r;
  for (int attempt = 1; attempt <= opts.attempts; ++attempt) {
    r.attempts = attempt;
    const std::string ts = std::to_string(static_cast<int64_t>(std::time(nullptr)));
    httplib::Headers headers = {
        {"X-Teiten-Timestamp", ts}, {"X-Teiten-Delivery", id}, {"User-Agent", "teiten-feed"}};
    if (!opts.secret.empty()) {
      headers.emplace("X-Teiten-Signature", WebhookSignature(opts.secret, ts, body));
    }
    auto res = client.Post(url.path, headers, body.data(), body.size(), std::string(content_type));
    double wait = backoff;
    if (res && res->status >= 200 && res->status < 300) {
      r.http_status = res->status;
      return r;
    }
    if (res) {
      r.http_status = res->status;
      last_error = fmt::format("HTTP {}", res->status);
      if (!Retryable(res->status)) {
        return Unavailable(
            fmt::format("webhook {}: refused with HTTP {} on attempt {} (not "
                        "retried: a 4xx means the request itself is wrong)",
                        opts.url, res->status, attempt));
      }
      // Retry-After in seconds (the HTTP-date form is rare from webhooks; then our backoff).
      const std::string ra = res->get_header_value("Retry-After");
      if (!ra.empty() && std::all_of(ra.begin(), ra.end(), ::isdigit) && ra.size() < 9) {
        wait = std::min(opts.max_backoff_s, std::max(wait, std::stod(ra)));
      }
    } else {
      last_error = httplib::to_string(res.error());
    }
    if (attempt == opts.attempts) break;
    if (log) {
      log(fmt::format("webhook {}: attempt {}/{} failed ({}); retrying in {:g} s", opts.url,
                      attempt, opts.attempts, last_error, wait));
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    backoff = std::min(opts.max_backoff_s, backoff * 2);
  }
  return Unavailable(fmt::format("webhook {}: not delivered after {} attempts; last: {}", opts.url,
                                 r.attempts, last_error));
}

Result<std::string> MailMessage(const MailOptions& opts, std::string_view body,
                                std::string_view content_type, std::string_view filename,
                                int64_t now_unix) {
  if (sodium_init() < 0) return Internal("libsodium failed to initialise");
  for (const auto* field : {&opts.from, &opts.to, &opts.subject}) {
    if (field->find_first_of("\r\n") != std::string::npos) {
      return InvalidArgument("mail headers may not hold CR or LF (header injection)");
    }
  }
  if (opts.to.empty()) return InvalidArgument("mail: no recipient (--mail-to)");
  if (filename.find_first_of("\"\\\r\n") != std::string_view::npos) {
    return InvalidArgument("mail: the attachment name holds a quote, backslash or line break");
  }
  char date[64];
  std::time_t t = static_cast<std::time_t>(now_unix);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  const std::string id = DeliveryId(body);
  const std::string boundary = "teiten-" + id;
  std::string m;
  m += fmt::format("From: {}\r\n", opts.from.empty() ? "teiten" : opts.from);
  m += fmt::format("To: {}\r\n", opts.to);
  m += fmt::format("Subject: {}\r\n", EncodeHeaderText(opts.subject));
  m += fmt::format("Date: {}\r\n", date);
  m += fmt::format("Message-ID: <{}.{}@teiten>\r\n", id, now_unix);
  m += "MIME-Version: 1.0\r\n";
  m += fmt::format("Content-Type: multipart/mixed; boundary=\"{}\"\r\n\r\n", boundary);
  m += fmt::format("--{}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", boundary);
  m += fmt::format("{} ({} bytes) is attached.\r\n\r\n", filename, body.size());
  m += fmt::format("--{}\r\nContent-Type: {}\r\nContent-Transfer-Encoding: base64\r\n", boundary,
                   content_type);
  m += fmt::format("Content-Disposition: attachment; filename=\"{}\"\r\n\r\n", filename);
  std::string b64(sodium_base64_ENCODED_LEN(body.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(body.data()),
                    body.size(), sodium_base64_VARIANT_ORIGINAL);
  b64.resize(std::strlen(b64.c_str()));
  for (size_t i = 0; i < b64.size(); i += 76) m += b64.substr(i, 76) + "\r\n";  // RFC 2045
  m += fmt::format("--{}--\r\n", boundary);
  return m;
}

Status SendMail(const MailOptions& opts, std::string_view message) {
  if (opts.command.empty()) return InvalidArgument("mail: no command (--sendmail)");
  // A command that exits without reading its input (`exit 3`, a wrong path) would kill us with
  // SIGPIPE before its status could be reported: ignored while we write, the write fails with
  // EPIPE instead and the exit status says what happened.
  struct sigaction ignore {
  }, previous{};
  ignore.sa_handler = SIG_IGN;
  ::sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, &previous);
  // popen writes through /bin/sh, as sendmail commands with flags are configured.
  std::FILE* p = ::popen(opts.command.c_str(), "w");
  if (p == nullptr) {
    ::sigaction(SIGPIPE, &previous, nullptr);
    return IoError(fmt::format("mail command '{}': cannot start", opts.command));
  }
  bool wrote = std::fwrite(message.data(), 1, message.size(), p) == message.size();
  wrote = std::fflush(p) == 0 && wrote;
  const int rc = ::pclose(p);
  ::sigaction(SIGPIPE, &previous, nullptr);
  if (rc == -1) {
    return IoError(fmt::format("mail command '{}'", opts.command));
  }
  if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
    return Unavailable(fmt::format(
        "mail command '{}' failed ({})", opts.command,
        WIFEXITED(rc) ? fmt::format("exit status {}", WEXITSTATUS(rc))
                      : fmt::format("killed by signal {}", WIFSIGNALED(rc) ? WTERMSIG(rc) : 0)));
  }
  if (!wrote)
    return Internal(fmt::format("mail command '{}': it stopped reading the message", opts.command));
  return OkStatus();
}

Result<std::optional<int32_t>> ReadFeedState(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::optional<int32_t>{};
    return IoError(fmt::format("feed state {}", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("last_day") || !j["last_day"].is_string()) {
    return InvalidArgument(
        fmt::format("feed state {}: not {{\"last_day\": \"YYYY-MM-DD\"}}; fix or remove it", path));
  }
  const std::string day = j["last_day"].get<std::string>();
  auto p = ParsePeriod(day);
  if (!p.ok() || p->days() != 1) {
    return InvalidArgument(fmt::format("feed state {}: last_day '{}' is not a day", path, day));
  }
  return std::optional<int32_t>(p->first_day);
}

Status WriteFeedState(const std::string& path, int32_t last_day) {
  const std::string tmp = path + ".tmp";
  const std::string text =
      nlohmann::json{{"last_day", TimeZone::DayString(last_day)}}.dump() + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(fmt::format("feed state {}", tmp));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return IoError(fmt::format("feed state {}: writing failed", path));
  }
  return OkStatus();
}

}  // namespace teiten
