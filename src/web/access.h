// Who may read `teiten serve`: the users file, login sessions and API tokens.
//
// The users file (`teiten serve-user add NAME`, `teiten serve-token add LABEL`) is text, one
// entry a line, '#' comments:
//   user  NAME   $argon2id$v=19$m=…        libsodium crypto_pwhash_str (Argon2id, memory-hard)
//   token LABEL  <64 hex>                  BLAKE2b-256 of the token; the token itself is shown
//                                          once, when made, and never stored
// NAME and LABEL are 1–64 of [A-Za-z0-9._-]. A malformed line is an error naming the file and
// the line; the server does not start on a file it cannot read whole.
//
// Guarantees: passwords and tokens are never stored or logged in clear; a password check holds
// at most one Argon2id computation (64 MiB) at a time, so a burst of logins cannot exhaust
// memory; sessions live in memory only (a restart logs everyone out), expire after
// kSessionSeconds, and are keyed by the BLAKE2b hash of their cookie value.
// Thread safety: Users is immutable after Load; Sessions is internally locked.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace teiten::web {

inline constexpr int64_t kSessionSeconds = 12 * 3600;

// Sets up libsodium; false if it cannot be (then nothing here may be used).
bool InitCrypto();

bool ValidName(const std::string& name);

class Users {
 public:
  static Result<Users> Load(const std::string& path);
  bool empty() const { return users_.empty() && tokens_.empty(); }
  // The user's name when the password is theirs.
  std::optional<std::string> CheckPassword(const std::string& name,
                                           const std::string& password) const;
  // The token's label when it is one of ours.
  std::optional<std::string> CheckToken(const std::string& token) const;

 private:
  std::map<std::string, std::string> users_;   // name → pwhash string
  std::map<std::string, std::string> tokens_;  // hash hex → label
};

// Adds or replaces the user's password (hashing it), creating the file (mode 0600) if need be.
// The file is rewritten whole and renamed into place.
Status SetUserPassword(const std::string& path, const std::string& name,
                       const std::string& password);
// Adds an API token labelled `label` and returns it (the only time it is seen).
Result<std::string> AddToken(const std::string& path, const std::string& label);

// Random hex of `bytes` random bytes.
std::string RandomHex(size_t bytes);
// BLAKE2b-256 of `s`, hex.
std::string HashHex(const std::string& s);

class Sessions {
 public:
  // A new session's cookie value for `user`.
  std::string Create(const std::string& user, int64_t now);
  // The user of a live session, or nothing.
  std::optional<std::string> Find(const std::string& cookie, int64_t now);
  void Remove(const std::string& cookie);

 private:
  struct Entry {
    std::string user;
    int64_t expires = 0;
  };
  std::mutex mu_;
  std::map<std::string, Entry> by_hash_;
};

}  // namespace teiten::web
