// Document: what a report says, independent of how it is written out. The composer (compose.cc)
// fills one from the data; RenderHtml and RenderMarkdown write it. Text is plain UTF-8 (it may
// hold country, AS or port names that came from network data): every renderer escapes it.
//
//   Document d{.lang = Lang::kJa, .title = "…"};
//   d.Heading(2, "1. 概況");
//   d.Paragraph("本四半期に…");
//   d.AddTable({.label = "表 1", .caption = "宛先ポート番号トップ 5", .header = {...}, .rows = …});
//   d.AddFigure({.label = "図 1", .caption = "…", .svg = chart::Lines(…)});
//   std::string html = RenderHtml(d);
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "enrich/names.h"

namespace teiten::report {

struct TableBlock {
  std::string label;    // "表 1", "Table 1"
  std::string caption;  // "宛先ポート番号トップ 5"
  std::vector<std::string> header;
  std::vector<bool> numeric;  // per column: right-aligned
  std::vector<std::vector<std::string>> rows;
  std::string note;  // small print under the table
  std::string id;    // anchor, e.g. "table-1"
};

struct FigureBlock {
  std::string label;  // "図 1", "Figure 1"
  std::string caption;  // "2018 年 7～9 月の宛先ポート番号別パケット観測数トップ 5 の推移"
  std::string svg;  // one inline <svg> element (trusted: made by chart.h, which escapes)
  std::string id;   // anchor and, for Markdown, the file name stem: "figure-1"
};

struct Block {
  enum class Kind { kHeading, kParagraph, kStrong, kTable, kFigure, kLinks, kPageBreak };
  Kind kind = Kind::kParagraph;
  int level = 0;     // headings: 1–4
  std::string text;  // heading and paragraph text
  std::string id;    // heading anchor
  TableBlock table;
  FigureBlock figure;
  std::vector<std::pair<std::string, std::string>> links;  // (text, URL)
};

struct Document {
  Lang lang = Lang::kEn;
  std::string title;     // "JPCERT/CC-style" report title line
  std::string subtitle;  // the period, e.g. "[2018年7月1日～9月30日]"
  std::string footer;    // provenance: generator, store, time zone, geo databases
  std::vector<Block> blocks;

  void Heading(int level, std::string text, std::string id = "");
  void Paragraph(std::string text);
  void Strong(std::string text);  // a paragraph set in bold (TALOT2's key sentence)
  void AddTable(TableBlock t);
  void AddFigure(FigureBlock f);
  void Links(std::vector<std::pair<std::string, std::string>> links);
  void PageBreak();
};

// A self-contained HTML page: inline CSS and SVG, no scripts, no external resources; A4 print
// rules (figures and tables kept whole).
std::string RenderHtml(const Document& d);

// Markdown (GitHub flavour). Figures are written by the caller as `<stem>-<figure id>.svg` beside
// the .md file; `figure_files` receives (file name, svg) for each.
std::string RenderMarkdown(const Document& d, const std::string& stem,
                           std::vector<std::pair<std::string, std::string>>* figure_files);

// Escapes text for HTML/XML content and attribute values.
std::string EscapeHtml(const std::string& s);

}  // namespace teiten::report
