// What the report tests share: running the CLI and Debian's python3, reading a report back with
// html5lib (tests/unit/report_check.py), and the small scenario's store.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "scenario_fixture.h"
#include "test_support.h"

namespace teiten::report {

namespace fs = std::filesystem;
using nlohmann::json;

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Debian's python3, which has the python3-html5lib and python3-pil packages setup.sh installs
// (a python3 earlier on PATH, such as a pyenv one, may not).
inline std::string Python() {
  return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

// Runs tests/unit/report_check.py on an HTML file: html5lib in strict mode, then the structure.
inline json CheckHtml(const std::string& path) {
  bool ok = false;
  std::string out =
      testing::Run(Python() + " " + Quote(testing::SourceDir() + "/tests/unit/report_check.py") +
                       " " + Quote(path),
                   &ok);
  json j = json::parse(out.empty() ? "{}" : out, nullptr, false);
  if (!ok && !j.contains("parse_error")) j["parse_error"] = "report_check.py failed: " + out;
  return j;
}

inline std::string TeitenBin() {
  return TEITEN_BIN;
}

// A CSV's rows (no quoting in the fields compared here).
inline std::vector<std::vector<std::string>> Csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> cells;
    std::string cell;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') {
        quoted = !quoted;
      } else if (c == ',' && !quoted) {
        cells.push_back(cell);
        cell.clear();
      } else {
        cell += c;
      }
    }
    cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

inline std::string NoCommas(std::string s) {
  std::erase(s, ',');
  return s;
}

class ScenarioReport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto s = testing::ScenarioStoreFor("small");
    if (!s.ok()) {
      skip_ = s.status().ToString();
      return;
    }
    store_ = new testing::ScenarioStore(*s);
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
  }
  void SetUp() override {
    if (!store_) FAIL() << "scenario store unavailable: " << skip_;
  }
  std::string Cli(const std::string& args, bool* ok) {
    return testing::Run(
        Quote(TeitenBin()) + " " + args + " --config " + Quote(store_->config_path) + " 2>&1", ok);
  }
  // The small scenario's period as a span of days (from its store's days).
  static std::string SmallPeriod() { return "2018-08-10..2018-08-13"; }

  inline static testing::ScenarioStore* store_ = nullptr;
  inline static std::string skip_;
  testing::TempDir dir_;
};

}  // namespace teiten::report
