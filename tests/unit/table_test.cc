#include "cli/table.h"

#include <gtest/gtest.h>

#include <sstream>

namespace teiten {
namespace {

TEST(Table, AlignsNumbersRightAndCountsJapaneseAsWide) {
  Table t({"順位", "送信元地域", "パケット数"});
  t.AddRow({Count(1), Text("CN 中国"), Count(1234567)});
  t.AddRow({Count(10), Text("NL オランダ"), Count(42)});
  std::ostringstream out;
  t.Write(out, OutputFormat::kTable);
  EXPECT_EQ(out.str(),
            "順位  送信元地域   パケット数\n"
            "----  -----------  ----------\n"
            "   1  CN 中国       1,234,567\n"
            "  10  NL オランダ          42\n");
}

TEST(Table, CsvQuotesAndJsonKeepsNumbersAsNumbers) {
  Table t({"port", "packets", "share"});
  t.AddRow({Text("80/TCP (http), \"alt\""), Count(1500), Percent(0.125)});
  std::ostringstream csv, json;
  t.Write(csv, OutputFormat::kCsv);
  t.Write(json, OutputFormat::kJson);
  EXPECT_EQ(csv.str(), "port,packets,share\r\n\"80/TCP (http), \"\"alt\"\"\",1500,0.125000\r\n");
  EXPECT_NE(json.str().find("\"packets\": 1500"), std::string::npos) << json.str();
  EXPECT_NE(json.str().find("\"share\": 0.125"), std::string::npos) << json.str();
}

TEST(Table, NumberFormatting) {
  EXPECT_EQ(Thousands(0), "0");
  EXPECT_EQ(Thousands(999), "999");
  EXPECT_EQ(Thousands(1000), "1,000");
  EXPECT_EQ(Thousands(263940), "263,940");
  EXPECT_EQ(Fixed(1419341.04, 1).text, "1,419,341.0");
  EXPECT_EQ(Fixed(2.625, 2).text, "2.62");
  EXPECT_EQ(Percent(0.2618).text, "26.18%");
  EXPECT_EQ(DisplayWidth("中国"), 4u);
  EXPECT_EQ(DisplayWidth("abc"), 3u);
}

}  // namespace
}  // namespace teiten
