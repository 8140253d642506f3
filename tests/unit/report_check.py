#!/usr/bin/env python3
"""Reads a teiten HTML report with a real HTML5 parser (html5lib, strict: any parse error fails)
and prints what the tests compare, as JSON: the headings, every table (caption and cells, by id)
and every figure (id, caption, whether it holds an SVG with drawn marks)."""
import json
import sys

import html5lib

NS = "{http://www.w3.org/1999/xhtml}"
SVG = "{http://www.w3.org/2000/svg}"


def text(el):
    return "".join(el.itertext()).strip()


def main(path):
    with open(path, "rb") as f:
        parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True)
        try:
            doc = parser.parse(f)
        except html5lib.html5parser.ParseError as e:
            print(json.dumps({"parse_error": str(e)}))
            return 1
    out = {"lang": doc.get("lang"), "headings": [], "tables": {}, "figures": [], "paragraphs": []}
    body = doc.find(NS + "body")
    for el in body.iter():
        tag = el.tag.replace(NS, "")
        if tag in ("h1", "h2", "h3", "h4", "h5"):
            out["headings"].append({"level": int(tag[1]), "text": text(el), "id": el.get("id")})
        elif tag == "p":
            out["paragraphs"].append(text(el))
        elif tag == "table":
            cap = el.find(NS + "caption")
            rows = []
            for tr in el.iter(NS + "tr"):
                rows.append([text(c) for c in tr if c.tag in (NS + "td", NS + "th")])
            out["tables"][el.get("id") or str(len(out["tables"]))] = {
                "caption": text(cap) if cap is not None else "",
                "header": rows[0] if rows else [],
                "rows": rows[1:],
            }
        elif tag == "figure":
            cap = el.find(NS + "figcaption")
            svg = el.find(SVG + "svg")
            marks = 0
            if svg is not None:
                for s in svg.iter():
                    if s.tag in (SVG + "path", SVG + "polyline", SVG + "rect", SVG + "circle"):
                        marks += 1
            out["figures"].append({"id": el.get("id"), "caption": text(cap) if cap is not None else "",
                                   "svg": svg is not None, "marks": marks})
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
