// Words: how a report writes dates, numbers, names, ranks and changes, in Japanese and English.
// Every sentence the composer builds goes through these, so that a number is always formatted
// the same way and a change is always described in the direction the numbers go.
//
//   SpanText(QuarterPeriod(2018, 3), Lang::kJa)  → "2018年7月1日～9月30日"
//   SpanText(QuarterPeriod(2018, 3), Lang::kEn)  → "July 1 – September 30, 2018"
//   DayText(day, Lang::kJa)                       → "8月12日"
//   ChangeText(100, 160, Lang::kEn)               → "rose by 60.0%"
#pragma once

#include <cstdint>
#include <string>

#include "analysis/period.h"
#include "common/observation.h"
#include "enrich/names.h"

namespace teiten::report {

std::string SpanText(const Period& p, Lang lang);
// "2018 年 7～9 月" / "July–September 2018"; for a month "2007年8月" / "August 2007".
std::string PeriodName(const Period& p, Lang lang);
// What the period is called in running text: "本四半期" / "this quarter", "本月"… and the previous
// one.
std::string ThisPeriodWord(const Period& p, Lang lang);
std::string PreviousPeriodWord(const Period& p, Lang lang);
std::string DayText(int32_t day, Lang lang);             // "8月12日" / "August 12"
std::string DayTextWithYear(int32_t day, Lang lang);     // "2018年8月12日" / "August 12, 2018"
std::string MonthText(int year, int month, Lang lang);   // "2007年3月" / "March 2007"
std::string MonthShort(int year, int month, Lang lang);  // "3月" / "Mar"
std::string MonthRange(const Period& first, const Period& last, Lang lang);  // 6-month spans

std::string Num(uint64_t v);                        // "1,234,567"
std::string Dec(double v, int decimals);            // "1,234.5"
std::string Pct(double fraction);                   // "12.3%"
std::string PortText(PortKey k);                    // "445/TCP (microsoft-ds)", "ICMP"
std::string PortShort(PortKey k);                   // "445/TCP"
std::string CountryText(CountryCode c, Lang lang);  // "中国" / "China"
// A country as running English text names it: "the United States", "the Netherlands"; as
// CountryText otherwise (and always in Japanese). Tables and legends use CountryText.
std::string CountryInText(CountryCode c, Lang lang);
// The first letter in upper case (ASCII), for an English phrase that begins a sentence.
std::string Capitalized(std::string s);

// A previous-period rank as the seeds print it: "1", "TOP10 外" / "out of top 10", "新規" / "new",
// "—" when the store holds nothing for the previous period.
std::string PrevRankCell(int prev_rank, Lang lang);

// A change from `before` to `after` as a phrase: "60.0% 増加しました" / "rose by 60.0%",
// "ほぼ横ばいでした" / "was almost unchanged" (within ±2%).
std::string ChangePhrase(double before, double after, Lang lang);
// As ChangePhrase, for use inside a longer sentence (no final verb ending in Japanese):
// "60.0% 増加" / "up 60.0%".
std::string ChangeShort(double before, double after, Lang lang);

// "1st", "2nd", "3rd", "11th"…
std::string Ordinal(int n);

// Joins items: "A、B、C" / "A, B and C".
std::string JoinList(const std::vector<std::string>& items, Lang lang);

}  // namespace teiten::report
