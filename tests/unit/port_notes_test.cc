// Port knowledge base (src/enrich/port_notes.h, data/ports.toml): the shipped notes parse, read
// as English and Japanese, cover every port the shipped scenarios send to, and agree with the
// IANA registry; malformed note files are rejected with the line and key.
#include "enrich/port_notes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <string>

#include "enrich/names.h"
#include "simulate/scenario.h"
#include "test_support.h"

namespace teiten {
namespace embedded {
extern const std::string_view kPortsToml;
}
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Decodes UTF-8; false on a malformed sequence.
bool DecodeUtf8(std::string_view s, std::vector<char32_t>* out) {
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    char32_t c = n == 1 ? b : b & (0x7f >> n);
    for (int k = 1; k < n; ++k) {
      auto cb = static_cast<unsigned char>(s[i + k]);
      if ((cb >> 6) != 2) return false;
      c = (c << 6) | (cb & 0x3f);
    }
    out->push_back(c);
    i += n;
  }
  return true;
}

bool IsKana(char32_t c) {
  return c >= 0x3040 && c <= 0x30ff;  // hiragana and katakana
}
bool IsJapanese(char32_t c) {
  return IsKana(c) || (c >= 0x3000 && c <= 0x303f) || (c >= 0x4e00 && c <= 0x9fff) ||
         (c >= 0xff00 && c <= 0xffef);
}

// Sentences in English prose: a '.', '!' or '?' that ends the text or is followed by a space and
// a capital letter ("1.3 Tbps" and "(CVE-2014-0160)." inside a sentence do not count).
int EnglishSentences(const std::string& s) {
  int n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '.' && s[i] != '!' && s[i] != '?') continue;
    if (i + 1 == s.size() || (i + 2 < s.size() && s[i + 1] == ' ' && std::isupper(s[i + 2]))) ++n;
  }
  return n;
}

int JapaneseSentences(const std::string& s) {
  int n = 0;
  for (size_t i = s.find("。"); i != std::string::npos; i = s.find("。", i + 1)) ++n;
  return n;
}

Result<PortNotes> Embedded() {
  return PortNotes::Parse(embedded::kPortsToml, "data/ports.toml");
}

TEST(PortNotesTest, EmbeddedDataParses) {
  Result<PortNotes> notes = Embedded();
  ASSERT_TRUE(notes.ok()) << notes.status().ToString();
  EXPECT_GE(notes->notes().size(), 55u);  // "about 60 ports" (SPEC E4)
  EXPECT_LE(notes->notes().size(), 90u);
  EXPECT_EQ(PortNotes::Default().notes().size(), notes->notes().size());
}

TEST(PortNotesTest, EveryNoteHasSaneEnglishAndJapanese) {
  Result<PortNotes> notes = Embedded();
  ASSERT_TRUE(notes.ok()) << notes.status().ToString();
  for (const PortNote& n : notes->notes()) {
    SCOPED_TRACE(n.title + " (data/ports.toml:" + std::to_string(n.line) + ")");
    std::vector<char32_t> en, ja;
    ASSERT_TRUE(DecodeUtf8(n.en, &en));
    ASSERT_TRUE(DecodeUtf8(n.ja, &ja));

    EXPECT_GE(n.en.size(), 150u);
    EXPECT_LE(n.en.size(), 700u);
    int es = EnglishSentences(n.en);
    EXPECT_GE(es, 2) << n.en;
    EXPECT_LE(es, 4) << n.en;
    for (char32_t c : en) EXPECT_FALSE(IsJapanese(c)) << "Japanese in the English text: " << n.en;
    EXPECT_EQ(n.en.find('\n'), std::string::npos);
    EXPECT_EQ(n.en.find("  "), std::string::npos) << n.en;
    EXPECT_TRUE(std::isupper(static_cast<unsigned char>(n.en[0]))) << n.en;

    // Length in characters: a Japanese sentence carries what an English one does in ~40% of
    // the characters.
    EXPECT_GE(ja.size(), 70u);
    EXPECT_LE(ja.size(), 320u);
    int js = JapaneseSentences(n.ja);
    EXPECT_GE(js, 2) << n.ja;
    EXPECT_LE(js, 4) << n.ja;
    size_t kana = 0;
    for (char32_t c : ja) kana += IsKana(c);
    EXPECT_GE(kana, ja.size() / 5) << "too little kana to be Japanese prose: " << n.ja;
    EXPECT_TRUE(n.ja.ends_with("。")) << n.ja;
    EXPECT_EQ(n.ja.find('\n'), std::string::npos);
    // です・ます調, as IPA and JPCERT/CC write.
    EXPECT_TRUE(n.ja.find("です。") != std::string::npos ||
                n.ja.find("ます。") != std::string::npos ||
                n.ja.find("した。") != std::string::npos)
        << n.ja;
    EXPECT_EQ(n.ja.find("である。"), std::string::npos) << n.ja;

    EXPECT_FALSE(n.label.empty()) << "a reader needs a name where IANA's is missing or misleading";

    for (const PortNoteRef& r : n.refs) {
      EXPECT_FALSE(r.title.empty());
      EXPECT_THAT(r.url, StartsWith("https://"));
      EXPECT_EQ(r.url.find_first_of(" \"<>"), std::string::npos) << r.url;
    }
  }
}

// Scenario tools that send UDP, ICMP or (by default) TCP to their ports (simulate/generator.h).
uint8_t ProtoOfTool(simulate::Tool t) {
  switch (t) {
    case simulate::Tool::kSipVicious:
    case simulate::Tool::kNetis:
    case simulate::Tool::kMessenger:
      return 17;
    case simulate::Tool::kPing:
      return 1;
    default:
      return 6;
  }
}

TEST(PortNotesTest, EveryPortOfTheShippedScenariosHasANote) {
  std::set<PortKey> used;
  int scenarios = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(testing::SourceDir() + "/data/scenarios")) {
    if (entry.path().extension() != ".toml") continue;
    auto sc = simulate::LoadScenario(entry.path().string());
    ASSERT_TRUE(sc.ok()) << sc.status().ToString();
    ++scenarios;
    auto add = [&](simulate::Tool tool, int family,
                   const std::vector<simulate::PortWeight>& ports) {
      uint8_t proto = ProtoOfTool(tool);
      if (proto == 1) {
        used.insert(MakePortKey(family == 6 ? 58 : 1, 0));
        return;
      }
      for (const simulate::PortWeight& p : ports) {
        if (p.port != 0) used.insert(MakePortKey(proto, p.port));  // 0: any port
      }
    };
    for (const simulate::ProfileSpec& p : sc->base.profiles) {
      // Backscatter's ports are the victims' source ports; spoofed floods hit random ports.
      if (p.tool == simulate::Tool::kBackscatter || p.tool == simulate::Tool::kSpoofedFlood) {
        continue;
      }
      add(p.tool, p.family, p.ports);
    }
    for (const simulate::ScenarioEvent& e : sc->events) add(e.tool, 4, e.ports);
  }
  EXPECT_GE(scenarios, 4);
  // The scenarios send to far more than a handful of ports; a broken walk would find few.
  EXPECT_GE(used.size(), 40u);
  EXPECT_TRUE(used.count(MakePortKey(17, 53413)));
  EXPECT_TRUE(used.count(MakePortKey(17, 1027)));
  for (PortKey k : used) {
    EXPECT_NE(FindPortNote(k), nullptr) << "no note for " << PortKeyToString(k);
  }
}

// The services(5) reader: a hand-made file with what the registry's copy holds — a port for
// several protocols, a range (X11's displays), comments, aliases — and lines to skip.
TEST(PortNotesTest, ServiceNamesReadsPortsRangesAndSkipsMalformedLines) {
  std::string path = ::testing::TempDir() + "/services-test";
  {
    std::ofstream f(path);
    f << "# a comment line\n"
         "telnet\t\t23/tcp\t\t# Telnet\n"
         "domain  53/tcp/udp  nameserver   # aliases after the port\n"
         "x11\t\t6000-6063/tcp/udp\t# X Window System\n"
         "ftp 21/tcp\r\n"
         "first 7/tcp\n"
         "second 7/tcp\n"
         "noport\n"
         "bad 99999/tcp\n"
         "badrange 10-5/tcp\n"
         "junk 12x/tcp\n"
         "weird 13/ipx\n"
         "last 8080/tcp";  // no final newline
  }
  auto s = ServiceNames::Load(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->Name(MakePortKey(6, 23)), "telnet");
  EXPECT_EQ(s->Name(MakePortKey(17, 23)), "");
  EXPECT_EQ(s->Name(MakePortKey(6, 53)), "domain");
  EXPECT_EQ(s->Name(MakePortKey(17, 53)), "domain");
  EXPECT_EQ(s->Name(MakePortKey(6, 6000)), "x11");
  EXPECT_EQ(s->Name(MakePortKey(17, 6001)), "x11");
  EXPECT_EQ(s->Name(MakePortKey(6, 6063)), "x11");
  EXPECT_EQ(s->Name(MakePortKey(6, 6064)), "");
  EXPECT_EQ(s->Name(MakePortKey(6, 21)), "ftp");
  EXPECT_EQ(s->Name(MakePortKey(6, 7)), "first");  // the first line for a port wins
  EXPECT_EQ(s->Name(MakePortKey(6, 8080)), "last");
  for (uint16_t p : {5, 10, 12, 13}) EXPECT_EQ(s->Name(MakePortKey(6, p)), "") << p;
  // telnet 1, domain 2, x11 64 × 2, ftp, first (second is the same key) and last 1 each.
  EXPECT_EQ(s->size(), 134u);
  EXPECT_EQ(s->Describe(MakePortKey(6, 6010)), "6010/TCP (x11)");
  EXPECT_FALSE(ServiceNames::Load(path + ".missing").ok());
}

TEST(PortNotesTest, ServiceNamesAgreeWithIana) {
  if (!std::filesystem::exists(kDefaultServicesPath)) {
    GTEST_SKIP() << kDefaultServicesPath << " missing (Debian wireshark-common)";
  }
  auto iana = ServiceNames::Load(kDefaultServicesPath);
  ASSERT_TRUE(iana.ok()) << iana.status().ToString();
  ASSERT_EQ(iana->Name(MakePortKey(6, 445)), "microsoft-ds");  // the file is the registry
  Result<PortNotes> notes = Embedded();
  ASSERT_TRUE(notes.ok()) << notes.status().ToString();
  int named = 0;
  for (const PortNote& n : notes->notes()) {
    SCOPED_TRACE(n.title);
    PortKey first = n.keys[0];
    std::string_view registered = iana->Name(first);
    EXPECT_EQ(n.service, registered)
        << "IANA lists " << PortKeyToString(first) << " as '" << registered << "'";
    named += !registered.empty();
    // Other protocols of the same port number carry the same registered name, if any.
    for (PortKey k : n.keys) {
      if (PortKeyPort(k) != PortKeyPort(first) || iana->Name(k).empty()) continue;
      EXPECT_EQ(iana->Name(k), n.service) << PortKeyToString(k);
    }
    // A one-port note's title is what the rest of teiten prints for that port.
    if (n.keys.size() == 1) {
      EXPECT_EQ(n.title, iana->Describe(first));
    }
  }
  EXPECT_GE(named, 40);
}

TEST(PortNotesTest, SharedNotesResolveToOneEntry) {
  const PortNote* telnet = FindPortNote(MakePortKey(6, 23));
  ASSERT_NE(telnet, nullptr);
  EXPECT_EQ(FindPortNote(MakePortKey(6, 2323)), telnet);
  EXPECT_EQ(telnet->title, "23/TCP, 2323/TCP");
  EXPECT_EQ(FindPortNote(MakePortKey(17, 23)), nullptr);  // the note is about TCP

  const PortNote* messenger = FindPortNote(MakePortKey(17, 1026));
  ASSERT_NE(messenger, nullptr);
  EXPECT_EQ(FindPortNote(MakePortKey(17, 1027)), messenger);
  EXPECT_EQ(FindPortNote(MakePortKey(17, 1028)), messenger);
  EXPECT_EQ(messenger->title, "1026\u20131028/UDP");
  EXPECT_EQ(FindPortNote(MakePortKey(17, 1029)), nullptr);

  const PortNote* dns = FindPortNote(MakePortKey(17, 53));
  ASSERT_NE(dns, nullptr);
  EXPECT_EQ(FindPortNote(MakePortKey(6, 53)), dns);
  EXPECT_EQ(dns->title, "53/UDP, 53/TCP (domain)");

  const PortNote* smb = FindPortNote(MakePortKey(6, 445));
  ASSERT_NE(smb, nullptr);
  EXPECT_EQ(smb->title, "445/TCP (microsoft-ds)");
  EXPECT_THAT(smb->en, HasSubstr("MS17-010"));
  EXPECT_THAT(smb->Text(Lang::kJa), HasSubstr("MS17-010"));

  ASSERT_NE(FindPortNote(MakePortKey(1, 0)), nullptr);
  EXPECT_EQ(FindPortNote(MakePortKey(1, 0))->title, "0/ICMP, 0/ICMPv6");
  EXPECT_EQ(FindPortNote(MakePortKey(58, 0)), FindPortNote(MakePortKey(1, 0)));
  EXPECT_EQ(FindPortNote(MakePortKey(6, 0) | kNoPortBit), nullptr);  // fragments: no port
  EXPECT_EQ(FindPortNote(MakePortKey(6, 31337)), nullptr);
}

TEST(PortNotesTest, FindAllListsEachNoteOnceInOrder) {
  // A TALOT2-style top list: 135, 1026/UDP, 445, ICMP, 1027/UDP, 139, 1028/UDP, an unknown port.
  std::vector<PortKey> featured = {
      MakePortKey(6, 135),   MakePortKey(17, 1026), MakePortKey(6, 445),   MakePortKey(1, 0),
      MakePortKey(17, 1027), MakePortKey(6, 139),   MakePortKey(17, 1028), MakePortKey(6, 31337)};
  std::vector<const PortNote*> notes = FindPortNotes(featured);
  ASSERT_EQ(notes.size(), 5u);
  EXPECT_EQ(notes[0]->title, "135/TCP (epmap)");
  EXPECT_EQ(notes[1]->title, "1026\u20131028/UDP");
  EXPECT_EQ(notes[2]->title, "445/TCP (microsoft-ds)");
  EXPECT_EQ(notes[3]->title, "0/ICMP, 0/ICMPv6");
  EXPECT_EQ(notes[4]->title, "139/TCP (netbios-ssn)");
  EXPECT_TRUE(FindPortNotes({}).empty());
}

// The seed reports (JPCERT/CC TSUBAME, IPA TALOT2) name the ports a telescope's readers ask
// about; every one of them has a note.
TEST(PortNotesTest, EveryPortTheSeedReportsNameHasANote) {
  // TEITEN_SHARED_DIR when set, else the shared directory beside the source tree.
  const char* shared = std::getenv("TEITEN_SHARED_DIR");
  std::filesystem::path dir =
      std::filesystem::path(shared ? shared : testing::SourceDir() + "/../shared") / "seeds";
  if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << dir << " missing";
  // "445/TCP", "5168/tcp", "1026(UDP)", "ICMP".
  const std::regex port_re(R"((\d{1,5})(?:/|\()(TCP|UDP|tcp|udp)|ICMP)");
  std::set<PortKey> named;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::sregex_iterator m(text.begin(), text.end(), port_re), end; m != end; ++m) {
      if ((*m)[0] == "ICMP") {
        named.insert(MakePortKey(1, 0));
        continue;
      }
      std::string proto = (*m)[2];
      named.insert(MakePortKey(proto == "TCP" || proto == "tcp" ? 6 : 17,
                               static_cast<uint16_t>(std::stoi((*m)[1]))));
    }
  }
  EXPECT_GE(named.size(), 15u);  // 23, 445, 53413/UDP, 5060/UDP, 9600, 2967, 1026–1028/UDP …
  for (PortKey k : named) {
    EXPECT_NE(FindPortNote(k), nullptr) << "no note for " << PortKeyToString(k);
  }
}

TEST(PortNotesTest, WrappedTextBecomesOneParagraph) {
  auto notes = PortNotes::Parse(
      "[[port]]\n"
      "ports = [\"22/tcp\"]\n"
      "en = \"\"\"\n  Secure\n  Shell, port 22.  \nSecond sentence.\n\"\"\"\n"
      "ja = \"\"\"\nWindows の\n設定です。\n2 文目\nです。攻撃に\nMirai が、\nMirai の脆弱性\n"
      "(CVE-1)。REST API\nでは\n\"\"\"\n"
      "refs = [{ title = \"RFC 4253\", url = \"https://www.rfc-editor.org/rfc/rfc4253\" }]\n",
      "t.toml");
  ASSERT_TRUE(notes.ok()) << notes.status().ToString();
  ASSERT_EQ(notes->notes().size(), 1u);
  const PortNote& n = notes->notes()[0];
  EXPECT_EQ(n.en, "Secure Shell, port 22. Second sentence.");
  EXPECT_EQ(
      n.ja,
      "Windows の設定です。2 文目です。攻撃に Mirai が、Mirai の脆弱性(CVE-1)。REST API では");
  EXPECT_EQ(n.title, "22/TCP");  // no service given
  EXPECT_EQ(n.line, 1);
  ASSERT_EQ(n.refs.size(), 1u);
  EXPECT_EQ(n.refs[0].url, "https://www.rfc-editor.org/rfc/rfc4253");
  EXPECT_EQ(notes->Find(MakePortKey(6, 22)), &n);
}

// Each malformed file and the message a person reading it needs: file, line, key, what.
TEST(PortNotesTest, MalformedFilesNameLineAndKey) {
  const std::string ok_note = "[[port]]\nports = [\"22/tcp\"]\nen = \"a.\"\nja = \"あ。\"\n";
  struct Case {
    std::string text, message;
  };
  const Case cases[] = {
      {ok_note + "colour = \"red\"\n", "bad.toml:5: key 'colour': unknown key"},
      {"[[port]]\nports = [\"22/tcp\", \"22/tcpx\"]\nen = \"a.\"\nja = \"あ。\"\n",
       "bad.toml:2: key 'ports': expected \"<port>/tcp\", \"<port>/udp\", \"icmp\" or \"icmpv6\""},
      {"[[port]]\nports = [\"70000/udp\"]\nen = \"a.\"\nja = \"あ。\"\n",
       "bad.toml:2: key 'ports': expected \"<port>/tcp\", \"<port>/udp\", \"icmp\" or \"icmpv6\""},
      {"[[port]]\nports = []\nen = \"a.\"\nja = \"あ。\"\n",
       "bad.toml:2: key 'ports': expected a non-empty array of ports"},
      {"\n[[port]]\nports = [\"22/tcp\"]\nen = \"a.\"\n", "bad.toml:2: missing key 'ja'"},
      {"[[port]]\nports = [\"22/tcp\"]\nen = 42\nja = \"あ。\"\n",
       "bad.toml:3: key 'en': expected a string"},
      {"[[port]]\nports = [\"22/tcp\"]\nen = \"  \"\nja = \"あ。\"\n",
       "bad.toml:3: key 'en': empty"},
      {ok_note + "\n[[port]]\nports = [\"23/tcp\", \"22/TCP\"]\nen = \"b.\"\nja = \"い。\"\n",
       "bad.toml:7: key 'ports': 22/TCP has a note already"},
      {ok_note + "refs = [{ title = \"x\", url = \"ftp://example.org/\" }]\n",
       "bad.toml:5: key 'url': expected an http:// or https:// address"},
      {ok_note + "refs = [{ title = \"x\" }]\n", "bad.toml:5: missing key 'url'"},
      {ok_note + "refs = \"none\"\n",
       "bad.toml:5: key 'refs': expected an array of { title, url } tables"},
      {"[port]\nports = [\"22/tcp\"]\n", "bad.toml:1: key 'port': expected [[port]] tables"},
      {"[[ports]]\n", "bad.toml:1: key 'ports': unknown key"},
      {"# nothing\n", "bad.toml: no [[port]] tables"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto r = PortNotes::Parse(c.text, "bad.toml");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), c.message);
  }
  // TOML syntax errors come from toml++ with the line of the fault.
  auto syntax = PortNotes::Parse(ok_note + "\nen2 = \"unterminated\n", "bad.toml");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(syntax.status().message(), StartsWith("bad.toml:6: "));
}

}  // namespace
}  // namespace teiten
