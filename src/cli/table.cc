#include "cli/table.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace teiten {

std::string Thousands(uint64_t v) {
  std::string d = std::to_string(v);
  std::string out;
  int n = static_cast<int>(d.size());
  for (int i = 0; i < n; ++i) {
    out += d[static_cast<size_t>(i)];
    if ((n - i - 1) % 3 == 0 && i != n - 1) out += ',';
  }
  return out;
}

TableCell Text(std::string s) {
  return {s, s, false};
}
TableCell Count(uint64_t v) {
  return {Thousands(v), std::to_string(v), true};
}
TableCell Fixed(double v, int decimals) {
  // Thousands separators on the integer part, as for counts: 1,419,341.0
  std::string text = fmt::format("{:.{}f}", v, decimals);
  size_t dot = text.find('.');
  std::string whole = text.substr(0, dot), frac = dot == std::string::npos ? "" : text.substr(dot);
  bool neg = !whole.empty() && whole[0] == '-';
  if (neg) whole.erase(0, 1);
  text = (neg ? "-" : "") + Thousands(std::stoull(whole)) + frac;
  return {text, fmt::format("{:.{}f}", v, decimals + 2), true};
}
TableCell Percent(double f) {
  return {fmt::format("{:.2f}%", f * 100), fmt::format("{:.6f}", f), true};
}

size_t DisplayWidth(const std::string& s) {
  size_t w = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    int len;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if ((c >> 5) == 6) {
      cp = c & 0x1F;
      len = 2;
    } else if ((c >> 4) == 14) {
      cp = c & 0x0F;
      len = 3;
    } else {
      cp = c & 0x07;
      len = 4;
    }
    for (int k = 1; k < len && i + static_cast<size_t>(k) < s.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3F);
    }
    i += static_cast<size_t>(len);
    bool wide = (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
                (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
                (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
                (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD);
    w += wide ? 2 : 1;
  }
  return w;
}

namespace {
std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}
}  // namespace

void Table::Write(std::ostream& out, OutputFormat f) const {
  if (f == OutputFormat::kCsv) {
    for (size_t i = 0; i < header_.size(); ++i) out << (i ? "," : "") << CsvField(header_[i]);
    out << "\r\n";
    for (const auto& r : rows_) {
      for (size_t i = 0; i < r.size(); ++i) out << (i ? "," : "") << CsvField(r[i].raw);
      out << "\r\n";
    }
    return;
  }
  if (f == OutputFormat::kJson) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : rows_) {
      nlohmann::json o = nlohmann::json::object();
      for (size_t i = 0; i < r.size() && i < header_.size(); ++i) {
        if (r[i].number) {
          o[header_[i]] = nlohmann::json::parse(r[i].raw);
        } else {
          o[header_[i]] = r[i].raw;
        }
      }
      arr.push_back(o);
    }
    out << arr.dump(2) << "\n";
    return;
  }
  std::vector<size_t> w(header_.size());
  for (size_t i = 0; i < header_.size(); ++i) w[i] = DisplayWidth(header_[i]);
  for (const auto& r : rows_) {
    for (size_t i = 0; i < r.size() && i < w.size(); ++i)
      w[i] = std::max(w[i], DisplayWidth(r[i].text));
  }
  auto pad = [&](const std::string& s, size_t width, bool right) {
    std::string sp(width - std::min(width, DisplayWidth(s)), ' ');
    return right ? sp + s : s + sp;
  };
  std::vector<bool> right(header_.size(), false);
  if (!rows_.empty()) {
    for (size_t i = 0; i < rows_[0].size() && i < right.size(); ++i) right[i] = rows_[0][i].number;
  }
  std::string line;
  for (size_t i = 0; i < header_.size(); ++i) {
    line += (i ? "  " : "") + pad(header_[i], w[i], right[i]);
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  out << line << "\n";
  line.clear();
  for (size_t i = 0; i < header_.size(); ++i) line += (i ? "  " : "") + std::string(w[i], '-');
  out << line << "\n";
  for (const auto& r : rows_) {
    line.clear();
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) {
      line += (i ? "  " : "") + pad(r[i].text, w[i], r[i].number);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

}  // namespace teiten
