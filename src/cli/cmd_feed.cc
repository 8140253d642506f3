// `teiten feed`: the findings of a period as an alert feed (SPEC O5, issue 13 point 3).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "analysis/findings.h"
#include "analysis/mustan.h"
#include "cli/cli_common.h"
#include "common/files.h"
#include "common/time_zone.h"
#include "feeds/deliver.h"
#include "feeds/feed.h"

namespace teiten {
namespace {

struct FeedArgs {
  std::string period, out, state;
  WebhookOptions webhook;
  std::string secret_file;
  MailOptions mail;
};

int RunFeed(Common c, FeedArgs a) {
  // The common default "table" means the feed's default, CSV.
  if (c.format == "table") c.format = "csv";
  if (c.format != "csv" && c.format != "json" && c.format != "xml" && c.format != "stix" &&
      c.format != "misp") {
    return Fail(InvalidArgument(
        fmt::format("feed format '{}': expected csv, json, xml, stix or misp", c.format)));
  }
  const std::string format = c.format;
  c.format = "table";  // the query context's own output format is not the feed's
  if (!a.secret_file.empty()) {
    auto secret = ReadWholeFile(a.secret_file);
    if (!secret.ok()) return Fail(secret.status());
    // A trailing newline is an editor's, not the secret's.
    while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r')) {
      secret->pop_back();
    }
    if (secret->empty())
      return Fail(InvalidArgument(a.secret_file + ": the webhook secret is empty"));
    a.webhook.secret = std::move(*secret);
  }
  if (!a.mail.command.empty() && a.mail.to.empty()) {
    return Fail(InvalidArgument("feed: --sendmail needs --mail-to"));
  }
  auto run = PrepareRun(c, a.period, a.state);
  if (!run.ok()) return Fail(run.status());
  if (run->nothing_new) {
    std::fprintf(stderr, "teiten feed: nothing new since %s (%s); nothing written or sent\n",
                 TimeZone::DayString(run->last_day).c_str(), a.state.c_str());
    return 0;
  }
  QueryContext* q = &run->q;
  auto items = BuildFeedItems(*q->store, q->period, q->sel);
  if (!items.ok()) return Fail(items.status());
  FeedMeta meta;
  meta.first_day = TimeZone::DayString(q->period.first_day);
  meta.last_day = TimeZone::DayString(q->period.end_day - 1);
  {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    meta.generated = buf;
  }
  auto written = WriteFeed(format, *items, meta);
  if (!written.ok()) return Fail(written.status());
  const std::string& body = *written;
  const std::string content_type = FeedContentType(format);
  const bool delivers = !a.webhook.url.empty() || !a.mail.command.empty();
  // Written (or printed) unless it is only delivered.
  if (!a.out.empty() || !delivers) {
    if (Status st = WriteOutput(a.out, body); !st.ok()) return Fail(st);
  }
  const std::string label = RunLabel(q->period);
  if (!a.webhook.url.empty()) {
    auto r = PostWebhook(a.webhook, body, content_type, [](const std::string& line) {
      std::fprintf(stderr, "teiten feed: %s\n", line.c_str());
    });
    if (!r.ok()) return Fail(r.status());
    std::fprintf(stderr, "teiten feed: %zu items for %s delivered to %s (HTTP %d, attempt %d)\n",
                 items->size(), label.c_str(), a.webhook.url.c_str(), r->http_status, r->attempts);
  }
  if (!a.mail.command.empty()) {
    if (a.mail.subject.empty()) {
      a.mail.subject = fmt::format("teiten feed {}: {} items", label, items->size());
    }
    auto msg =
        MailMessage(a.mail, body, content_type, fmt::format("teiten-feed-{}.{}", label, format),
                    static_cast<int64_t>(std::time(nullptr)));
    if (!msg.ok()) return Fail(msg.status());
    if (Status st = SendMail(a.mail, *msg); !st.ok()) return Fail(st);
  }
  // Only a run that wrote and delivered everything moves the state on: a failed one is repeated
  // whole by the next.
  if (!a.state.empty()) {
    if (Status st = WriteFeedState(a.state, q->period.end_day - 1); !st.ok()) return Fail(st);
  }
  return 0;
}

}  // namespace

void AddFeedCommands(Commands& cmds) {
  Common& c = cmds.common();
  auto a = std::make_shared<FeedArgs>();
  auto* feed =
      cmds.Add("feed",
               "the findings and MUSTAN watch/risk items of a period as an alert feed (--format "
               "csv|json|xml|stix|misp), "
               "written, POSTed to a webhook or mailed",
               true);
  feed->add_option("--period", a->period, "2018Q3, 2018-08, 2018-08-12 or 2018-08-01..2018-08-15");
  feed->add_option("--since-last-run", a->state,
                   "state file: cover the days after the last successful run's (first run: the "
                   "last day with data); advanced only when everything was written and delivered");
  feed->add_option("-o,--output", a->out,
                   "file to write (default: stdout, unless the feed is delivered)");
  feed->add_option("--webhook", a->webhook.url, "POST the feed to this http(s) URL");
  feed->add_option("--webhook-secret-file", a->secret_file,
                   "sign each POST with HMAC-SHA256 over this file's secret "
                   "(X-Teiten-Signature; see docs/FEEDS.md)");
  feed->add_option("--webhook-ca", a->webhook.ca_file, "CA bundle for an https webhook");
  feed->add_option("--webhook-attempts", a->webhook.attempts, "attempts in all (default 6)")
      ->check(CLI::Range(1, 100));
  feed->add_option("--webhook-backoff", a->webhook.first_backoff_s,
                   "seconds before the first retry, doubled each time up to 300 (default 2)")
      ->check(CLI::Range(0.0, 3600.0));
  feed->add_option("--webhook-timeout", a->webhook.timeout_s,
                   "seconds to connect and for each read/write (default 30)")
      ->check(CLI::Range(1, 600));
  feed->add_option("--sendmail", a->mail.command,
                   "mail the feed through this sendmail-compatible command, e.g. "
                   "\"/usr/sbin/sendmail -t -i\"");
  feed->add_option("--mail-to", a->mail.to, "recipients of the mail (\"a@x, b@y\")");
  feed->add_option("--mail-from", a->mail.from, "sender of the mail");
  feed->add_option("--mail-subject", a->mail.subject,
                   "subject (default: \"teiten feed PERIOD: N items\")");
  cmds.OnParsed(feed, [&c, a] { return RunFeed(c, *a); });
}

}  // namespace teiten
