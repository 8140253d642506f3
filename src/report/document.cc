#include "report/document.h"

#include <fmt/format.h>

#include <algorithm>

namespace teiten::report {

void Document::Heading(int level, std::string text, std::string id) {
  Block b;
  b.kind = Block::Kind::kHeading;
  b.level = level;
  b.text = std::move(text);
  b.id = std::move(id);
  blocks.push_back(std::move(b));
}

void Document::Paragraph(std::string text) {
  Block b;
  b.text = std::move(text);
  blocks.push_back(std::move(b));
}

void Document::Strong(std::string text) {
  Block b;
  b.kind = Block::Kind::kStrong;
  b.text = std::move(text);
  blocks.push_back(std::move(b));
}

void Document::AddTable(TableBlock t) {
  Block b;
  b.kind = Block::Kind::kTable;
  b.table = std::move(t);
  blocks.push_back(std::move(b));
}

void Document::AddFigure(FigureBlock f) {
  Block b;
  b.kind = Block::Kind::kFigure;
  b.figure = std::move(f);
  blocks.push_back(std::move(b));
}

void Document::Links(std::vector<std::pair<std::string, std::string>> links) {
  Block b;
  b.kind = Block::Kind::kLinks;
  b.links = std::move(links);
  blocks.push_back(std::move(b));
}

void Document::PageBreak() {
  Block b;
  b.kind = Block::Kind::kPageBreak;
  blocks.push_back(std::move(b));
}

std::string EscapeHtml(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // Control characters other than tab and newline cannot appear in HTML text.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += "\xEF\xBF\xBD";  // U+FFFD
        } else {
          out += c;
        }
    }
  }
  return out;
}

namespace {

// Only web links are shown as links; anything else is shown as text.
bool SafeUrl(const std::string& url) {
  return url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0;
}

constexpr const char* kCss = R"css(
:root { --ink: #1a1a1a; --muted: #555; --rule: #c8c8c8; --head: #eef1f5; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 190mm; padding: 12mm 8mm; color: var(--ink);
  font-family: "Noto Sans CJK JP", "Noto Sans JP", "Noto Sans", "DejaVu Sans", sans-serif;
  font-size: 10.5pt; line-height: 1.7; }
header { border-top: 3px solid #0b3d91; border-bottom: 1px solid var(--rule); margin-bottom: 6mm;
  padding: 3mm 0; }
header h1 { font-size: 17pt; margin: 0; line-height: 1.4; }
header p { margin: 1mm 0 0; color: var(--muted); font-size: 11pt; }
h2 { font-size: 14pt; border-left: 5px solid #0b3d91; padding-left: 3mm; margin: 8mm 0 3mm; }
h3 { font-size: 12pt; margin: 6mm 0 2mm; }
h4 { font-size: 11pt; margin: 4mm 0 2mm; }
p { margin: 0 0 3mm; }
html:lang(ja) p { text-align: justify; }
p.strong { font-weight: bold; }
table { border-collapse: collapse; margin: 2mm auto 1mm; font-size: 10pt; min-width: 60%; }
th, td { border: 1px solid var(--rule); padding: 1mm 3mm; vertical-align: top; }
th { background: var(--head); font-weight: bold; text-align: center; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.notes td:first-child { white-space: nowrap; font-weight: bold; }
caption { caption-side: top; font-weight: bold; padding-bottom: 1.5mm; }
.table-note { font-size: 9pt; color: var(--muted); margin: 1mm 0 4mm; }
figure { margin: 3mm 0 5mm; text-align: center; }
figure svg { width: 100%; height: auto; max-width: 175mm; }
figcaption { font-weight: bold; font-size: 10pt; margin-top: 1mm; }
ul.links { font-size: 9.5pt; padding-left: 0; list-style: none; }
ul.links li { margin-bottom: 1mm; overflow-wrap: anywhere; }
footer { margin-top: 10mm; border-top: 1px solid var(--rule); padding-top: 2mm; color: var(--muted);
  font-size: 8.5pt; white-space: pre-wrap; }
.break { break-after: page; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; }
  figure, table, .keep { break-inside: avoid; }
  h2, h3, h4 { break-after: avoid; }
}
)css";

void Cell(std::string* out, const char* tag, const std::string& text, bool num) {
  *out += fmt::format("<{}{}>{}</{}>", tag, num ? " class=\"num\"" : "", EscapeHtml(text), tag);
}

}  // namespace

std::string RenderHtml(const Document& d) {
  std::string o;
  o += "<!DOCTYPE html>\n";
  o += fmt::format("<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n",
                   d.lang == Lang::kJa ? "ja" : "en");
  o += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  o += "<meta name=\"generator\" content=\"teiten\">\n";
  o += fmt::format("<title>{} {}</title>\n", EscapeHtml(d.title), EscapeHtml(d.subtitle));
  o += "<style>";
  o += kCss;
  o += "</style>\n</head>\n<body>\n";
  o += fmt::format("<header>\n<h1>{}</h1>\n<p>{}</p>\n</header>\n<main>\n", EscapeHtml(d.title),
                   EscapeHtml(d.subtitle));
  for (const Block& b : d.blocks) {
    switch (b.kind) {
      case Block::Kind::kHeading: {
        int lv = std::clamp(b.level + 1, 2, 5);
        o += fmt::format("<h{}{}>{}</h{}>\n", lv,
                         b.id.empty() ? "" : fmt::format(" id=\"{}\"", EscapeHtml(b.id)),
                         EscapeHtml(b.text), lv);
        break;
      }
      case Block::Kind::kParagraph:
        o += fmt::format("<p>{}</p>\n", EscapeHtml(b.text));
        break;
      case Block::Kind::kStrong:
        o += fmt::format("<p class=\"strong\">{}</p>\n", EscapeHtml(b.text));
        break;
      case Block::Kind::kTable: {
        const TableBlock& t = b.table;
        o += fmt::format("<table{}{}>\n<caption>{}{}{}</caption>\n",
                         t.id.empty() ? "" : fmt::format(" id=\"{}\"", EscapeHtml(t.id)),
                         t.id == "port-notes" ? " class=\"notes\"" : "", EscapeHtml(t.label),
                         t.label.empty() ? "" : (d.lang == Lang::kJa ? "：" : ": "),
                         EscapeHtml(t.caption));
        o += "<thead><tr>";
        for (const auto& h : t.header) Cell(&o, "th", h, false);
        o += "</tr></thead>\n<tbody>\n";
        for (const auto& row : t.rows) {
          o += "<tr>";
          for (size_t i = 0; i < row.size(); ++i) {
            Cell(&o, "td", row[i], i < t.numeric.size() && t.numeric[i]);
          }
          o += "</tr>\n";
        }
        o += "</tbody>\n</table>\n";
        if (!t.note.empty()) {
          o += fmt::format("<p class=\"table-note\">{}</p>\n", EscapeHtml(t.note));
        }
        break;
      }
      case Block::Kind::kFigure: {
        const FigureBlock& f = b.figure;
        o += fmt::format("<figure{}>\n{}\n<figcaption>{}{}{}</figcaption>\n</figure>\n",
                         f.id.empty() ? "" : fmt::format(" id=\"{}\"", EscapeHtml(f.id)), f.svg,
                         EscapeHtml(f.label),
                         f.label.empty() ? "" : (d.lang == Lang::kJa ? "：" : ": "),
                         EscapeHtml(f.caption));
        break;
      }
      case Block::Kind::kLinks: {
        o += "<ul class=\"links\">\n";
        for (const auto& [text, url] : b.links) {
          if (SafeUrl(url)) {
            o += fmt::format("<li>{}<br><a href=\"{}\">{}</a></li>\n", EscapeHtml(text),
                             EscapeHtml(url), EscapeHtml(url));
          } else {
            o += fmt::format("<li>{}</li>\n", EscapeHtml(text));
          }
        }
        o += "</ul>\n";
        break;
      }
      case Block::Kind::kPageBreak:
        o += "<div class=\"break\"></div>\n";
        break;
    }
  }
  o += "</main>\n";
  if (!d.footer.empty()) o += fmt::format("<footer>{}</footer>\n", EscapeHtml(d.footer));
  o += "</body>\n</html>\n";
  return o;
}

namespace {

// Markdown text: escape what would otherwise be markup, and HTML.
std::string EscapeMd(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '`' || c == '*' || c == '_' || c == '[' || c == ']' || c == '|' ||
        c == '#') {
      out += '\\';
      out += c;
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '&') {
      out += "&amp;";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string RenderMarkdown(const Document& d, const std::string& stem,
                           std::vector<std::pair<std::string, std::string>>* figure_files) {
  std::string o;
  o += fmt::format("# {}\n\n**{}**\n\n", EscapeMd(d.title), EscapeMd(d.subtitle));
  const char* colon = d.lang == Lang::kJa ? "：" : ": ";
  for (const Block& b : d.blocks) {
    switch (b.kind) {
      case Block::Kind::kHeading:
        o += fmt::format("{} {}\n\n", std::string(static_cast<size_t>(b.level + 1), '#'),
                         EscapeMd(b.text));
        break;
      case Block::Kind::kParagraph:
        o += EscapeMd(b.text) + "\n\n";
        break;
      case Block::Kind::kStrong:
        o += "**" + EscapeMd(b.text) + "**\n\n";
        break;
      case Block::Kind::kTable: {
        const TableBlock& t = b.table;
        o += fmt::format("[{}{}{}]\n\n", EscapeMd(t.label), colon, EscapeMd(t.caption));
        o += "|";
        for (const auto& h : t.header) o += " " + EscapeMd(h) + " |";
        o += "\n|";
        for (size_t i = 0; i < t.header.size(); ++i) {
          o += i < t.numeric.size() && t.numeric[i] ? " ---: |" : " --- |";
        }
        o += "\n";
        for (const auto& row : t.rows) {
          o += "|";
          for (const auto& c : row) o += " " + EscapeMd(c) + " |";
          o += "\n";
        }
        o += "\n";
        if (!t.note.empty()) o += "<sub>" + EscapeMd(t.note) + "</sub>\n\n";
        break;
      }
      case Block::Kind::kFigure: {
        const FigureBlock& f = b.figure;
        std::string file = fmt::format("{}-{}.svg", stem, f.id.empty() ? "figure" : f.id);
        if (figure_files) figure_files->push_back({file, f.svg});
        std::string cap = fmt::format("{}{}{}", f.label, colon, f.caption);
        o += fmt::format("![{}]({})\n\n[{}]\n\n", EscapeMd(cap), file, EscapeMd(cap));
        break;
      }
      case Block::Kind::kLinks:
        for (const auto& [text, url] : b.links) {
          if (SafeUrl(url)) {
            o += fmt::format("- {}  \n  <{}>\n", EscapeMd(text), url);
          } else {
            o += fmt::format("- {}\n", EscapeMd(text));
          }
        }
        o += "\n";
        break;
      case Block::Kind::kPageBreak:
        break;
    }
  }
  if (!d.footer.empty()) o += "---\n\n<sub>" + EscapeMd(d.footer) + "</sub>\n";
  return o;
}

}  // namespace teiten::report
