// Helpers shared by tests: temporary directories, where the shared captures and the default geo
// database are, and running a command for its output.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace teiten::testing {

// The source tree and ../shared as the build saw them; $TEITEN_SOURCE_DIR / $TEITEN_SHARED_DIR
// override them.
inline std::string SourceDir() {
  if (const char* e = std::getenv("TEITEN_SOURCE_DIR")) return e;
#ifdef TEITEN_SOURCE_DIR_BUILT
  return TEITEN_SOURCE_DIR_BUILT;
#else
  return ".";
#endif
}
inline std::string SharedDir() {
  if (const char* e = std::getenv("TEITEN_SHARED_DIR")) return e;
#ifdef TEITEN_SHARED_DIR_BUILT
  return TEITEN_SHARED_DIR_BUILT;
#else
  return SourceDir() + "/../shared";
#endif
}
inline std::string SharedPcapDir() {
  return SharedDir() + "/data/pcaps";
}
inline std::string CountryDb() {
  return SourceDir() +
         "/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb";
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "teiten-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs a shell command and returns its standard output ("" and *ok=false on failure).
inline std::string Run(const std::string& cmd, bool* ok = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    if (ok) *ok = false;
    return out;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (ok) *ok = rc == 0;
  return out;
}

// `s` as one word of a POSIX shell command line.
inline std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

// A file's bytes ("" when it cannot be read).
inline std::string Slurp(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return "";
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

inline bool HaveCommand(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace teiten::testing
