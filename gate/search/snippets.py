"""A result as the visitor sees it: title and snippet, HTML-escaped, found words in <mark>.

The snippet is the window of the article's text with the most distinct found words; word
positions come from the index (spans recorded at build time), so no text is analysed here.
"""

from __future__ import annotations

import html
from collections import defaultdict

from gate.search.analysis import fold

SNIPPET_CHARS = 180


def span_map(flat: list[int]) -> dict[int, list[tuple[int, int]]]:
    """The index's flat [start, end, term, ...] list as term -> [(start, end)]."""
    spans = defaultdict(list)
    for s, e, t in zip(flat[::3], flat[1::3], flat[2::3]):
        spans[t].append((s, e))
    return spans


def result(doc: dict, spans: dict, score: float, terms: set[int], missing: list[str],
           section: dict | None = None) -> dict:
    """One result: title, location, snippet, score, the title marked, the words found and not.

    `spans` are the document's span maps ("title", "body"); `terms` every term to highlight.
    With `section` (one of the document's sections), the result points at its heading: the
    heading is its title, the snippet comes from the section's text, and `page` names the
    article (title, location) as its context."""
    if section is not None:
        return _section_result(doc, spans, score, terms, missing, section)
    title_spans = sorted(s for t in terms for s in spans["title"].get(t, ()))
    body_spans = sorted(s for t in terms for s in spans["body"].get(t, ()))
    snippet, shown = _snippet(doc, spans["body"], body_spans, terms)
    matched = []
    for text, found in ((doc["title"], title_spans), (doc["body"], shown)):
        for s, e in found:
            word = fold(text[s:e])
            if word not in matched:
                matched.append(word)
    return {"title": doc["title"], "location": doc["location"], "snippet": snippet,
            "score": round(score, 3), "title_html": mark(doc["title"], title_spans),
            "matched": matched[:10], "missing": missing}


def _section_result(doc, spans, score, terms, missing, section) -> dict:
    start, end = section["start"], section["end"]
    body = doc["body"][start:end]
    heading_map = span_map(section["title_spans"])
    body_map = {t: [(s - start, e - start) for s, e in spans["body"].get(t, ())
                    if start <= s and e <= end] for t in terms}
    part = {"title": section["title"], "body": body, "description": ""}
    heading_spans = sorted(s for t in terms for s in heading_map.get(t, ()))
    body_spans = sorted(s for t in terms for s in body_map.get(t, ()))
    snippet, shown = _snippet(part, body_map, body_spans, terms)
    matched = []
    for text, found in ((section["title"], heading_spans), (body, shown)):
        for s, e in found:
            word = fold(text[s:e])
            if word not in matched:
                matched.append(word)
    return {"title": section["title"], "location": f"{doc['location']}#{section['anchor']}",
            "snippet": snippet, "score": round(score, 3),
            "title_html": mark(section["title"], heading_spans),
            "page": {"title": doc["title"], "location": doc["location"],
                     "title_html": mark(doc["title"], sorted(
                         s for t in terms for s in spans["title"].get(t, ())))},
            "matched": matched[:10], "missing": missing}


def _snippet(doc: dict, body_map: dict, spans: list, terms: set[int]):
    body = doc["body"]
    if not spans:
        text = doc["description"] or body
        return html.escape(_cut(text, 0, SNIPPET_CHARS)), []
    # the window of SNIPPET_CHARS with the most distinct matched terms, then the most matches
    term_at = {}
    for t in terms:
        for s in body_map.get(t, ()):
            term_at[s] = t
    best, j = None, 0
    for i in range(len(spans)):
        while j < len(spans) and spans[j][1] - spans[i][0] <= SNIPPET_CHARS:
            j += 1
        window = spans[i:j]
        key = (len({term_at[s] for s in window}), len(window), -i)
        if best is None or key > best[0]:
            best = (key, i, j)
    _, i, j = best
    first, last = spans[i][0], spans[j - 1][1]
    room = max(0, SNIPPET_CHARS - (last - first))
    start = _word_start(body, max(0, first - room // 3))
    end = _word_end(body, min(len(body), max(last, start + SNIPPET_CHARS)))
    shown = spans[i:j]
    out = html.escape(body[start:first]) if start < first else ""
    out = ("… " if start > 0 else "") + out
    out += mark(body[first:end], [(s - first, e - first) for s, e in shown])
    if end < len(body):
        out += " …"
    return out, shown


def _word_start(text: str, i: int) -> int:
    if i <= 0:
        return 0
    j = text.find(" ", i)
    return j + 1 if 0 <= j < i + 30 else i


def _word_end(text: str, i: int) -> int:
    if i >= len(text):
        return len(text)
    j = text.rfind(" ", 0, i)
    return j if j > i - 30 else i


def _cut(text: str, start: int, size: int) -> str:
    end = _word_end(text, start + size)
    return text[start:end] + (" …" if end < len(text) else "")


def mark(text: str, spans) -> str:
    """`text` HTML-escaped, with each (start, end) span wrapped in <mark> (overlaps merged)."""
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, pos = [], 0
    for s, e in merged:
        out.append(html.escape(text[pos:s]))
        out.append("<mark>" + html.escape(text[s:e]) + "</mark>")
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)
