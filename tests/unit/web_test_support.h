// What the web tests share: the real `teiten serve` as a child process on a free loopback port,
// and curl as the client (an HTTP implementation other than the server's).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

namespace teiten::web_test {

using nlohmann::json;

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `teiten serve ARGS --listen 127.0.0.1:0`, its port read from what it prints at start.
class ServeProcess {
 public:
  // Starts it; ok() tells whether it came up (log() says why not).
  ServeProcess(const std::string& bin, const std::vector<std::string>& args) {
    log_path_ = dir_.path() + "/serve.log";
    std::vector<std::string> argv_s = {bin, "serve"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    bool has_listen = false;
    for (const auto& a : args) has_listen |= a == "--listen";
    if (!has_listen) {
      argv_s.push_back("--listen");
      argv_s.push_back("127.0.0.1:0");
    }
    pid_ = fork();
    if (pid_ == 0) {
      // A test that dies (an abort, a sanitizer report) must not leave its server behind.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    const std::regex re(R"(://[^ ]*:([0-9]+)/)");
    for (int i = 0; i < 300; ++i) {
      std::smatch m;
      std::string log = Slurp(log_path_);
      if (std::regex_search(log, m, re)) {
        port_ = std::stoi(m[1]);
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~ServeProcess() { Stop(); }
  // Ends it with SIGTERM (as systemd would) and returns its exit status. A server that came up
  // must end cleanly: exit 0, and no sanitizer report in what it printed (its stderr is not the
  // test's, so this is where an ASan or UBSan finding of the server surfaces).
  int Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      pid_ = -1;
      std::string l = log();
      if (exit_code_ != 0 || l.find("Sanitizer") != std::string::npos ||
          l.find("runtime error:") != std::string::npos) {
        ADD_FAILURE() << "teiten serve ended with " << exit_code_ << ":\n" << l;
      }
    }
    return exit_code_;
  }
  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  int exit_code() const { return exit_code_; }
  std::string log() const { return Slurp(log_path_); }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  testing::TempDir dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = -1;
  int exit_code_ = -1;
};

struct HttpReply {
  int status = 0;
  std::string headers;  // as received, lower-cased names not guaranteed
  std::string body;
  json Json() const { return json::parse(body, nullptr, false); }
  // The first value of header `name` (case-insensitive), or "".
  std::string Header(const std::string& name) const {
    std::istringstream in(headers);
    std::string line;
    auto lower = [](std::string s) {
      for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return s;
    };
    while (std::getline(in, line)) {
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      if (lower(line.substr(0, colon)) == lower(name)) {
        std::string v = line.substr(colon + 1);
        while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
        while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
        return v;
      }
    }
    return "";
  }
};

// One request with curl; `extra` is more curl arguments (already quoted).
inline HttpReply Curl(const std::string& url, const std::string& extra = "") {
  testing::TempDir d;
  std::string h = d.path() + "/h", b = d.path() + "/b";
  bool ok = false;
  std::string code = testing::Run("curl -s -g --max-time 60 -D " + Quote(h) + " -o " + Quote(b) +
                                      " -w '%{http_code}' " + extra + " " + Quote(url),
                                  &ok);
  HttpReply r;
  r.status = code.empty() ? 0 : std::atoi(code.c_str());
  r.headers = Slurp(h);
  r.body = Slurp(b);
  return r;
}

}  // namespace teiten::web_test
