// Table: what CLI commands print, as an aligned text table (thousands separators, numbers
// right-aligned, East Asian wide characters counted as two columns), CSV (RFC 4180) or JSON.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace teiten {

enum class OutputFormat { kTable, kCsv, kJson };

struct TableCell {
  std::string text;  // as shown in a table
  std::string raw;   // as written to CSV and JSON (numbers without separators)
  bool number = false;
};

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<TableCell> row) { rows_.push_back(std::move(row)); }
  void Write(std::ostream& out, OutputFormat f) const;
  size_t rows() const { return rows_.size(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<TableCell>> rows_;
};

TableCell Text(std::string s);
TableCell Count(uint64_t v);              // "1,234,567"
TableCell Fixed(double v, int decimals);  // "2.63"
TableCell Percent(double fraction);       // "12.34%"
std::string Thousands(uint64_t v);
// Display width of UTF-8 text in a terminal (CJK and fullwidth forms count 2).
size_t DisplayWidth(const std::string& s);

}  // namespace teiten
