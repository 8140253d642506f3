// Delivering feeds (src/feeds/deliver.h, `teiten feed --webhook/--sendmail/--since-last-run`): the
// real CLI process against a real HTTP receiver on 127.0.0.1, a real shell as the sendmail
// command; signatures checked with openssl(1), mail parsed by Python's email package.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "analysis/period.h"
#include "common/time_zone.h"
#include "feeds/deliver.h"
#include "scenario_fixture.h"
#include "test_support.h"

namespace teiten {
namespace {

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

struct Post {
  std::chrono::steady_clock::time_point at;
  std::string body, timestamp, signature, delivery, content_type;
};

// An HTTP receiver on 127.0.0.1 that answers the first `failures` POSTs with `fail_status`.
class Receiver {
 public:
  Receiver(int failures, int fail_status) : failures_(failures), fail_status_(fail_status) {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> l(mu_);
      posts_.push_back(
          {std::chrono::steady_clock::now(), req.body, req.get_header_value("X-Teiten-Timestamp"),
           req.get_header_value("X-Teiten-Signature"), req.get_header_value("X-Teiten-Delivery"),
           req.get_header_value("Content-Type")});
      res.status = static_cast<int>(posts_.size()) <= failures_ ? fail_status_ : 204;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Bound and listening already: connections queue until the thread accepts them.
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return fmt::format("http://127.0.0.1:{}/hook", port_); }
  std::vector<Post> posts() {
    std::lock_guard<std::mutex> l(mu_);
    return posts_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  int failures_, fail_status_;
  std::mutex mu_;
  std::vector<Post> posts_;
};

class FeedDelivery : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = testing::ScenarioStoreFor("small");
    if (!s.ok() && s.status().code() == StatusCode::kNotFound)
      GTEST_SKIP() << s.status().ToString();
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    config_ = s->config_path;
  }
  // Runs `teiten feed --config … ARGS`; stderr is kept in err_.
  std::string Feed(const std::string& args, bool* ok) {
    const std::string err = dir_.path() + "/stderr";
    std::string out = testing::Run(
        fmt::format("{} feed --config {} {} 2>{}", TEITEN_BIN, Quote(config_), args, Quote(err)),
        ok);
    err_ = Slurp(err);
    return out;
  }
  std::string Secret() {
    const std::string p = dir_.path() + "/secret";
    WriteText(p, "s3cr3t-shared-with-the-receiver\n");
    return p;
  }
  testing::TempDir dir_;
  std::string config_, err_;
};

TEST_F(FeedDelivery, AWebhookIsRetriedWithBackoffUntilAcceptedAndEveryAttemptIsSigned) {
  Receiver rx(2, 500);
  const std::string out = dir_.path() + "/feed.csv";
  bool ok = false;
  Feed(fmt::format("--period 2018-08 -o {} --webhook {} --webhook-secret-file {} "
                   "--webhook-backoff 0.4",
                   Quote(out), rx.url(), Quote(Secret())),
       &ok);
  ASSERT_TRUE(ok) << err_;
  const std::string feed = Slurp(out);
  ASSERT_GT(feed.size(), 200u);
  std::vector<Post> posts = rx.posts();
  ASSERT_EQ(posts.size(), 3u) << err_;
  for (size_t i = 0; i < posts.size(); ++i) {
    EXPECT_EQ(posts[i].body, feed) << "attempt " << i + 1;
    EXPECT_EQ(posts[i].delivery, posts[0].delivery) << "one delivery id for every retry";
    EXPECT_EQ(posts[i].content_type, "text/csv; charset=utf-8");
    // The signature, recomputed by openssl over "timestamp.body" with the secret (no newline).
    const std::string signed_file = dir_.path() + fmt::format("/signed{}", i);
    WriteText(signed_file, posts[i].timestamp + "." + posts[i].body);
    bool ran = false;
    std::string mac =
        testing::Run("openssl dgst -sha256 -hmac 's3cr3t-shared-with-the-receiver' -r " +
                         Quote(signed_file) + " | cut -d' ' -f1",
                     &ran);
    ASSERT_TRUE(ran);
    while (!mac.empty() && mac.back() == '\n') mac.pop_back();
    EXPECT_EQ(posts[i].signature, "sha256=" + mac) << "attempt " << i + 1;
  }
  // Backoff doubles: at least 0.4 s, then 0.8 s, between attempts.
  using std::chrono::duration;
  EXPECT_GE(duration<double>(posts[1].at - posts[0].at).count(), 0.38);
  EXPECT_GE(duration<double>(posts[2].at - posts[1].at).count(), 0.78);
  EXPECT_NE(err_.find("attempt 1/6 failed (HTTP 500)"), std::string::npos) << err_;
  EXPECT_NE(err_.find("delivered"), std::string::npos) << err_;
}

TEST_F(FeedDelivery, ARefusalIsNotRetriedAndAReceiverThatNeverAnswersFailsTheRun) {
  {
    Receiver rx(100, 401);
    bool ok = true;
    Feed(fmt::format("--period 2018-08 --webhook {} --webhook-backoff 0.1", rx.url()), &ok);
    EXPECT_FALSE(ok);
    EXPECT_EQ(rx.posts().size(), 1u) << "a 401 is final";
    EXPECT_NE(err_.find("HTTP 401"), std::string::npos) << err_;
  }
  // A socket that listens but never accepts: connections queue and no answer ever comes.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::string state = dir_.path() + "/state.json";
  WriteText(state, "{\"last_day\": \"2018-08-10\"}\n");
  bool ok = true;
  Feed(fmt::format("--since-last-run {} --webhook http://127.0.0.1:{}/hook --webhook-timeout 1 "
                   "--webhook-attempts 2 --webhook-backoff 0.1",
                   Quote(state), ntohs(a.sin_port)),
       &ok);
  ::close(fd);
  EXPECT_FALSE(ok);
  EXPECT_NE(err_.find("not delivered after 2 attempts"), std::string::npos) << err_;
  EXPECT_EQ(Slurp(state), "{\"last_day\": \"2018-08-10\"}\n") << "a failed run moved the state";
}

TEST_F(FeedDelivery, SinceTheLastRunCoversTheNewDaysOnceAndMovesOnOnlyAfterSuccess) {
  // The first run (no state file) covers the store's last day with data alone and records it.
  const std::string state = dir_.path() + "/state.json";
  bool ok = false;
  std::string first = Feed("--since-last-run " + Quote(state), &ok);
  ASSERT_TRUE(ok) << err_;
  auto j = Slurp(state);
  ASSERT_NE(j.find("\"last_day\""), std::string::npos) << j;
  auto parsed = ReadFeedState(state);
  ASSERT_TRUE(parsed.ok() && parsed->has_value());
  const int32_t last_day = **parsed;
  EXPECT_EQ(first, Feed("--period " + TimeZone::DayString(last_day), &ok));
  // Nothing new: nothing written, the state as it was.
  std::string again = Feed("--since-last-run " + Quote(state), &ok);
  EXPECT_TRUE(ok);
  EXPECT_EQ(again, "");
  EXPECT_NE(err_.find("nothing new since " + TimeZone::DayString(last_day)), std::string::npos)
      << err_;
  // Five days back: the run covers exactly the four days after, as --period would.
  ASSERT_TRUE(WriteFeedState(state, last_day - 5).ok());
  std::string caught_up = Feed("--since-last-run " + Quote(state) + " --format json", &ok);
  ASSERT_TRUE(ok) << err_;
  EXPECT_EQ(caught_up,
            Feed(fmt::format("--period {}..{} --format json", TimeZone::DayString(last_day - 4),
                             TimeZone::DayString(last_day)),
                 &ok));
  EXPECT_EQ(**ReadFeedState(state), last_day);
  // A state file that is not ours is an error, never a silent reset.
  WriteText(state, "garbage");
  Feed("--since-last-run " + Quote(state), &ok);
  EXPECT_FALSE(ok);
  EXPECT_NE(err_.find("state.json"), std::string::npos) << err_;
}

TEST_F(FeedDelivery, MailCarriesTheFeedAsAnAttachmentAndAFailingCommandFailsTheRun) {
  const std::string out = dir_.path() + "/feed.json";
  const std::string mail = dir_.path() + "/mail.eml";
  bool ok = false;
  Feed(fmt::format("--period 2018-08 --format json -o {} --sendmail {} --mail-to "
                   "'csirt@example.org' --mail-from 'teiten@example.org' --mail-subject "
                   "'定点観測 feed'",
                   Quote(out), Quote("cat > " + Quote(mail))),
       &ok);
  ASSERT_TRUE(ok) << err_;
  // Python's email package decodes what a mail client would show.
  const std::string py = dir_.path() + "/read.py";
  WriteText(py,
            "import email, email.header, sys\n"
            "m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n"
            "subj = str(email.header.make_header(email.header.decode_header(m['Subject'])))\n"
            "parts = [p for p in m.walk() if p.get_filename()]\n"
            "sys.stdout.buffer.write((m['To'] + '\\n' + subj + '\\n' + parts[0].get_filename() + "
            "'\\n' + parts[0].get_content_type() + '\\n').encode())\n"
            "sys.stdout.buffer.write(parts[0].get_payload(decode=True))\n");
  std::string shown = testing::Run("python3 " + Quote(py) + " " + Quote(mail), &ok);
  ASSERT_TRUE(ok) << Slurp(mail).substr(0, 2000);
  EXPECT_EQ(shown,
            "csirt@example.org\n定点観測 feed\nteiten-feed-2018-08-01..2018-08-31.json\n"
            "application/json\n" +
                Slurp(out));
  // A command that fails: the run fails, naming it and its exit status — also when it exits
  // before reading the message (under ASan teiten writes after `exit 3` has run: SIGPIPE).
  Feed("--period 2018-08 --sendmail 'exit 3' --mail-to csirt@example.org", &ok);
  EXPECT_FALSE(ok);
  EXPECT_NE(err_.find("exit status 3"), std::string::npos) << err_;
  // A message bigger than a pipe holds (the STIX bundle, 58 KB, 79 KB in base64) to a command
  // that never reads: the write surely meets a closed pipe. Before, SIGPIPE killed teiten (141).
  Feed("--period 2018-08 --format stix --sendmail 'exit 5' --mail-to csirt@example.org", &ok);
  EXPECT_FALSE(ok);
  EXPECT_NE(err_.find("exit status 5"), std::string::npos) << err_;
  // Header injection through an address is refused.
  MailOptions m{.command = "cat", .to = "a@x\r\nBcc: victim@y", .subject = "s"};
  EXPECT_FALSE(MailMessage(m, "body", "text/csv", "f.csv", 0).ok());
}

TEST_F(FeedDelivery, TheXmlFeedValidatesAgainstItsSchemaAndCarriesTheCsvItems) {
  if (!testing::HaveCommand("xmllint")) GTEST_SKIP() << "xmllint (libxml2-utils) missing";
  const std::string xsd = testing::SourceDir() + "/data/feeds/teiten-feed.xsd";
  const std::string xml = dir_.path() + "/feed.xml", csv = dir_.path() + "/feed.csv";
  bool ok = false;
  Feed("--period 2018-08 --format xml -o " + Quote(xml), &ok);
  ASSERT_TRUE(ok) << err_;
  Feed("--period 2018-08 --format csv -o " + Quote(csv), &ok);
  ASSERT_TRUE(ok) << err_;
  std::string out =
      testing::Run("xmllint --noout --schema " + Quote(xsd) + " " + Quote(xml) + " 2>&1", &ok);
  EXPECT_TRUE(ok) << out;
  // The same items in the same order: the CSV's key column against the XML's <key>s, read by
  // Python's XML parser.
  const std::string py = dir_.path() + "/keys.py";
  WriteText(py,
            "import csv, sys, xml.etree.ElementTree as ET\n"
            "ns = {'f': 'urn:teiten:feed:1'}\n"
            "root = ET.parse(sys.argv[1]).getroot()\n"
            "x = [(i.get('source'), i.get('rank'), i.find('f:key', ns).text) for i in "
            "root.findall('f:item', ns)]\n"
            "c = [(r['source'], r['rank'], r['key']) for r in csv.DictReader(open(sys.argv[2], "
            "newline=''))]\n"
            "print(len(x), int(root.get('items')), x == c, root.get('firstDay'), "
            "root.get('lastDay'))\n");
  out = testing::Run("python3 " + Quote(py) + " " + Quote(xml) + " " + Quote(csv), &ok);
  ASSERT_TRUE(ok) << out;
  std::istringstream in(out);
  size_t n = 0, declared = 0;
  std::string same, first, last;
  in >> n >> declared >> same >> first >> last;
  EXPECT_GT(n, 10u);
  EXPECT_EQ(n, declared);
  EXPECT_EQ(same, "True") << out;
  EXPECT_EQ(first, "2018-08-01");
  EXPECT_EQ(last, "2018-08-31");
  // The schema checks something: an unknown kind, a missing key and a bad day are each refused.
  const std::string doc = Slurp(xml);
  for (auto [from, to] : {std::pair<std::string, std::string>{"kind=\"spike\"", "kind=\"bogus\""},
                          {"<key>", "<notkey>"},
                          {"firstDay=\"2018-08-01\"", "firstDay=\"2018-8-1\""}}) {
    std::string bad = doc;
    const size_t at = bad.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    bad.replace(at, from.size(), to);
    if (to == "<notkey>") bad.replace(bad.find("</key>", at), 6, "</notkey>");
    const std::string bad_path = dir_.path() + "/bad.xml";
    WriteText(bad_path, bad);
    bool valid = true;
    testing::Run("xmllint --noout --schema " + Quote(xsd) + " " + Quote(bad_path) + " 2>&1",
                 &valid);
    EXPECT_FALSE(valid) << "accepted with " << to;
  }
}

// The STIX 2.1 bundle validates against the OASIS schemas in ../shared (every object against its
// type's schema and the bundle's), with Debian's python3-jsonschema; a damaged bundle does not;
// the same items keep the same ids from one run to the next.
TEST_F(FeedDelivery, TheStixBundleValidatesAgainstTheOasisSchemasAndKeepsItsIds) {
  const std::string schemas = testing::SharedDir() + "/data/formats/stix2.1-json-schemas/schemas";
  if (!std::filesystem::exists(schemas)) GTEST_SKIP() << "no STIX schemas in ../shared";
  bool have = false;
  testing::Run("/usr/bin/python3 -c 'import jsonschema' 2>/dev/null", &have);
  if (!have) GTEST_SKIP() << "python3-jsonschema missing (scripts/setup.sh installs it)";
  const std::string check = testing::SourceDir() + "/tests/feeds/stix_validate.py";
  const std::string a = dir_.path() + "/a.json", b = dir_.path() + "/b.json";
  bool ok = false;
  Feed("--period 2018-08 --format stix -o " + Quote(a), &ok);
  ASSERT_TRUE(ok) << err_;
  std::string out = testing::Run(
      "/usr/bin/python3 " + Quote(check) + " " + Quote(schemas) + " " + Quote(a) + " 2>&1", &ok);
  EXPECT_TRUE(ok) << out;
  nlohmann::json bundle = nlohmann::json::parse(Slurp(a));
  std::map<std::string, int> types;
  std::set<std::string> ids;
  for (const auto& o : bundle["objects"]) {
    types[o["type"]]++;
    ids.insert(o["id"].get<std::string>());
  }
  // The small scenario's feed: 70 items, one evidence address (the 9600/TCP scanner).
  bool csv_ok = false;
  std::string csv = Feed("--period 2018-08", &csv_ok);
  ASSERT_TRUE(csv_ok);
  const size_t items = static_cast<size_t>(std::count(csv.begin(), csv.end(), '\n')) - 1;
  EXPECT_EQ(types["report"], static_cast<int>(items) + 1);
  EXPECT_EQ(types["identity"], 1);
  EXPECT_EQ(types["ipv4-addr"], 1);
  EXPECT_EQ(types["indicator"], 1);
  EXPECT_EQ(ids.size(), bundle["objects"].size()) << "ids are unique";
  for (const auto& o : bundle["objects"]) {
    if (o["type"] == "indicator") EXPECT_EQ(o["pattern"], "[ipv4-addr:value = '24.180.125.87']");
  }
  // A second run a second later: the same ids.
  ::sleep(1);
  Feed("--period 2018-08 --format stix -o " + Quote(b), &ok);
  ASSERT_TRUE(ok);
  std::set<std::string> again;
  const nlohmann::json second = nlohmann::json::parse(Slurp(b));
  for (const auto& o : second["objects"]) {
    if (o["type"] != "bundle") again.insert(o["id"].get<std::string>());
  }
  EXPECT_EQ(again, ids);
  // The validator checks something: an indicator without its pattern is refused.
  for (auto& o : bundle["objects"]) {
    if (o["type"] == "indicator") o.erase("pattern");
  }
  WriteText(b, bundle.dump());
  testing::Run("/usr/bin/python3 " + Quote(check) + " " + Quote(schemas) + " " + Quote(b), &ok);
  EXPECT_FALSE(ok);
}

// The MISP event keeps every MUST of the MISP core format in ../shared (checked by
// tests/feeds/misp_check.py, which reads the valid category-type pairs from the format document),
// carries one ip-src per evidence address and one comment per item, and a broken one is refused.
TEST_F(FeedDelivery, TheMispEventKeepsTheCoreFormatsRules) {
  const std::string format_doc = testing::SharedDir() + "/data/formats/misp/misp-core-format.md";
  if (!std::filesystem::exists(format_doc)) GTEST_SKIP() << "no MISP format in ../shared";
  const std::string check = testing::SourceDir() + "/tests/feeds/misp_check.py";
  const std::string path = dir_.path() + "/misp.json";
  bool ok = false;
  Feed("--period 2018-08 --format misp -o " + Quote(path), &ok);
  ASSERT_TRUE(ok) << err_;
  std::string out = testing::Run(
      "/usr/bin/python3 " + Quote(check) + " " + Quote(format_doc) + " " + Quote(path) + " 2>&1",
      &ok);
  EXPECT_TRUE(ok) << out;
  const nlohmann::json event = nlohmann::json::parse(Slurp(path))["Event"];
  bool csv_ok = false;
  std::string csv = Feed("--period 2018-08", &csv_ok);
  ASSERT_TRUE(csv_ok);
  const size_t items = static_cast<size_t>(std::count(csv.begin(), csv.end(), '\n')) - 1;
  size_t comments = 0, ips = 0;
  for (const auto& a : event["Attribute"]) {
    comments += a["type"] == "comment";
    if (a["type"] == "ip-src") {
      ++ips;
      EXPECT_EQ(a["value"], "24.180.125.87");
      EXPECT_EQ(a["to_ids"], true);
    }
  }
  EXPECT_EQ(comments, items);
  EXPECT_EQ(ips, 1u);
  EXPECT_EQ(event["date"], "2018-08-31");
  EXPECT_EQ(event["published"], false);
  // The checker checks something: a type the category does not allow, a missing info.
  nlohmann::json bad = nlohmann::json::parse(Slurp(path));
  bad["Event"]["Attribute"][0]["category"] = "Financial fraud";
  bad["Event"]["Attribute"][0]["type"] = "ip-src";
  bad["Event"].erase("info");
  WriteText(path, bad.dump());
  out = testing::Run(
      "/usr/bin/python3 " + Quote(check) + " " + Quote(format_doc) + " " + Quote(path) + " 2>&1",
      &ok);
  EXPECT_FALSE(ok);
  EXPECT_NE(out.find("not valid for category 'Financial fraud'"), std::string::npos) << out;
  EXPECT_NE(out.find("info missing"), std::string::npos) << out;
}

}  // namespace
}  // namespace teiten
