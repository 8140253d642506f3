#include "web/access.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace teiten::web {
namespace {

// One Argon2id computation at a time (see the header).
std::mutex pwhash_mu;

std::string Hex(const unsigned char* p, size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

struct Line {
  std::string kind, name, value;
};

Result<std::vector<Line>> ReadLines(const std::string& path, bool missing_ok) {
  std::ifstream in(path);
  std::vector<Line> out;
  if (!in) {
    if (missing_ok && access(path.c_str(), F_OK) != 0) return out;
    return IoError(fmt::format("{}: cannot read the users file", path));
  }
  std::string text;
  int no = 0;
  while (std::getline(in, text)) {
    ++no;
    if (text.empty() || text[0] == '#') continue;
    std::istringstream ss(text);
    Line l;
    std::string extra;
    ss >> l.kind >> l.name >> l.value;
    if (ss >> extra || l.value.empty()) {
      return InvalidArgument(
          fmt::format("{}:{}: expected 'user NAME HASH' or 'token LABEL HASH'", path, no));
    }
    if (l.kind != "user" && l.kind != "token") {
      return InvalidArgument(
          fmt::format("{}:{}: '{}' is neither 'user' nor 'token'", path, no, l.kind));
    }
    if (!ValidName(l.name)) {
      return InvalidArgument(
          fmt::format("{}:{}: the name must be 1-64 of A-Z a-z 0-9 . _ -", path, no));
    }
    if (l.kind == "user" && l.value.rfind("$argon2", 0) != 0) {
      return InvalidArgument(fmt::format(
          "{}:{}: the password hash is not an Argon2 hash (crypto_pwhash_str)", path, no));
    }
    if (l.kind == "token" && (l.value.size() != 64 ||
                              l.value.find_first_not_of("0123456789abcdef") != std::string::npos)) {
      return InvalidArgument(
          fmt::format("{}:{}: a token hash is 64 lower-case hex digits", path, no));
    }
    out.push_back(std::move(l));
  }
  return out;
}

Status WriteLines(const std::string& path, const std::vector<Line>& lines) {
  std::string text =
      "# teiten serve users: 'user NAME ARGON2ID-HASH' and 'token LABEL BLAKE2B-HEX' (see "
      "docs/API.md)\n";
  for (const Line& l : lines) text += l.kind + " " + l.name + " " + l.value + "\n";
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError(fmt::format("{}: cannot write", tmp));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return IoError(fmt::format("{}: cannot write the users file", path));
  }
  return OkStatus();
}

}  // namespace

bool InitCrypto() {
  return sodium_init() >= 0;
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> b(bytes);
  randombytes_buf(b.data(), b.size());
  return Hex(b.data(), b.size());
}

std::string HashHex(const std::string& s) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                     nullptr, 0);
  return Hex(h, sizeof h);
}

Result<Users> Users::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<Line> lines, ReadLines(path, false));
  Users u;
  for (Line& l : lines) {
    if (l.kind == "user") {
      u.users_[l.name] = std::move(l.value);
    } else {
      u.tokens_[l.value] = l.name;
    }
  }
  return u;
}

std::optional<std::string> Users::CheckPassword(const std::string& name,
                                                const std::string& password) const {
  auto it = users_.find(name);
  std::lock_guard<std::mutex> l(pwhash_mu);
  if (it == users_.end()) {
    // Spend the same time on an unknown name, so that timing does not tell which names exist.
    char dummy[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(dummy, password.data(), password.size(),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
      return std::nullopt;
    }
    return std::nullopt;
  }
  if (crypto_pwhash_str_verify(it->second.c_str(), password.data(), password.size()) != 0) {
    return std::nullopt;
  }
  return name;
}

std::optional<std::string> Users::CheckToken(const std::string& token) const {
  auto it = tokens_.find(HashHex(token));
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

Status SetUserPassword(const std::string& path, const std::string& name,
                       const std::string& password) {
  if (!ValidName(name)) {
    return InvalidArgument(fmt::format("user '{}': 1-64 of A-Z a-z 0-9 . _ -", name));
  }
  if (password.size() < 8) return InvalidArgument("the password must be at least 8 characters");
  ASSIGN_OR_RETURN(std::vector<Line> lines, ReadLines(path, true));
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return Internal("crypto_pwhash_str failed (out of memory?)");
  }
  bool replaced = false;
  for (Line& l : lines) {
    if (l.kind == "user" && l.name == name) {
      l.value = hash;
      replaced = true;
    }
  }
  if (!replaced) lines.push_back({"user", name, hash});
  return WriteLines(path, lines);
}

Result<std::string> AddToken(const std::string& path, const std::string& label) {
  if (!ValidName(label)) {
    return InvalidArgument(fmt::format("token label '{}': 1-64 of A-Z a-z 0-9 . _ -", label));
  }
  ASSIGN_OR_RETURN(std::vector<Line> lines, ReadLines(path, true));
  std::string token = "tt_" + RandomHex(32);
  lines.push_back({"token", label, HashHex(token)});
  RETURN_IF_ERROR(WriteLines(path, lines));
  return token;
}

std::string Sessions::Create(const std::string& user, int64_t now) {
  std::string cookie = RandomHex(32);
  std::lock_guard<std::mutex> l(mu_);
  // Expired sessions go whenever a new one is made: the map holds only live ones and those
  // since the last login.
  for (auto it = by_hash_.begin(); it != by_hash_.end();) {
    it = it->second.expires <= now ? by_hash_.erase(it) : std::next(it);
  }
  by_hash_[HashHex(cookie)] = {user, now + kSessionSeconds};
  return cookie;
}

std::optional<std::string> Sessions::Find(const std::string& cookie, int64_t now) {
  if (cookie.size() != 64) return std::nullopt;
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_hash_.find(HashHex(cookie));
  if (it == by_hash_.end() || it->second.expires <= now) return std::nullopt;
  return it->second.user;
}

void Sessions::Remove(const std::string& cookie) {
  std::lock_guard<std::mutex> l(mu_);
  by_hash_.erase(HashHex(cookie));
}

}  // namespace teiten::web
