"""The per-edition index: built from one built edition, written beside it, read back.

`gate build` calls `write_index` for every edition after MkDocs has built it. The index is made
from that edition's own `search/search_index.json` (Material writes it per edition, holding only
the edition's pages) plus the `keywords` and `description` of those pages' front matter, so
nothing outside the edition can ever be found. It lives beside it, in `search/kb_index.json`,
and carries the spellings and synonyms it was built with (search-synonyms.yml), so a running
gate answers with exactly what was built.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from gate import frontmatter
from gate.search.analysis import clean_html, term_of, tokens, word_stem
from gate.search.synonyms import Synonyms

INDEX_FILE = "search/kb_index.json"
MATERIAL_INDEX = "search/search_index.json"
INDEX_VERSION = 2  # 2: spellings and synonyms are part of the index


def source_of(docs_dir: Path, location: str) -> Path | None:
    """docs/ source of a built page: 'launches/new-store/' -> docs/launches/new-store.md."""
    rel = location.strip("/")
    candidates = [f"{rel}/index.md", f"{rel}.md", f"{rel}/README.md"] if rel else ["index.md", "README.md"]
    for c in candidates:
        path = (docs_dir / c).resolve()
        if path.is_file() and docs_dir.resolve() in path.parents:
            return path
    return None


front_matter = frontmatter.of_file  # the build itself reports broken front matter


def _pages(material_index: dict):
    """Material's entries grouped into pages: location -> title, headings, text parts."""
    pages: dict[str, dict] = {}
    for entry in material_index.get("docs", []):
        base, _, anchor = str(entry.get("location", "")).partition("#")
        page = pages.setdefault(base, {"title": "", "headings": [], "parts": []})
        title, text = clean_html(entry.get("title", "")), clean_html(entry.get("text", ""))
        if not anchor:
            page["title"] = page["title"] or title
            if text:
                page["parts"].append(text)
        else:
            page["headings"].append(title)
            sep = " " if title[-1:] in ".?!:" else ". "
            page["parts"].append(title + sep + text if text else title)
    for page in pages.values():
        if not page["title"] and page["headings"]:
            page["title"] = page["headings"][0]
    return pages


def build_index(edition_dir: Path, docs_dir: Path | None = None, edition: str = "",
                synonyms: Synonyms | None = None) -> dict:
    """The index of one built edition (a JSON-able dict), from its own search_index.json."""
    edition_dir = Path(edition_dir)
    synonyms = synonyms or Synonyms()
    spellings = synonyms.spellings
    material = json.loads((edition_dir / MATERIAL_INDEX).read_text(encoding="utf-8"))
    term_ids: dict[str, int] = {}
    surfaces: dict[str, int] = {}

    def tid(term: str) -> int:
        if term not in term_ids:
            term_ids[term] = len(term_ids)
        return term_ids[term]

    def analyse(text: str, spans: list | None = None) -> dict[int, int]:
        counts: dict[int, int] = defaultdict(int)
        for start, end, word in tokens(text):
            term = term_of(word, spellings)
            if not term:
                continue
            i = tid(term)
            counts[i] += 1
            surfaces.setdefault(word, i)
            root = word_stem(word, spellings)
            if root:
                counts[tid(root)] += 1
            if spans is not None:
                spans.extend((start, end, i))
        return counts

    docs = []
    for base, page in _pages(material).items():
        meta = front_matter(source_of(Path(docs_dir), base)) if docs_dir else {}
        keywords = meta.get("keywords") if isinstance(meta.get("keywords"), list) else []
        keywords = " ; ".join(str(k) for k in keywords)
        description = str(meta.get("description") or "")
        title = page["title"] or str(meta.get("title") or "")
        body = " ".join(page["parts"])
        title_spans: list = []
        body_spans: list = []
        fields = {
            "title": analyse(title, title_spans),
            "keywords": analyse(keywords),
            "description": analyse(description),
            "headings": analyse(" . ".join(page["headings"])),
            "text": analyse(body, body_spans),
        }
        docs.append({
            "location": "/" + base,
            "title": title,
            "description": description,
            "body": body,
            "fields": {f: [x for kv in sorted(c.items()) for x in kv] for f, c in fields.items()},
            "lengths": {f: sum(c.values()) for f, c in fields.items()},
            "spans": {"title": title_spans, "body": body_spans},
        })
    terms = [None] * len(term_ids)
    for term, i in term_ids.items():
        terms[i] = term
    return {"version": INDEX_VERSION, "edition": edition, "terms": terms,
            "surfaces": surfaces, "docs": docs, **synonyms.as_index()}


def write_index(edition_dir: Path, docs_dir: Path | None, edition: str = "",
                synonyms: Synonyms | None = None) -> Path:
    """Builds the edition's index and writes it atomically to <edition>/search/kb_index.json."""
    index = build_index(edition_dir, docs_dir, edition, synonyms)
    path = Path(edition_dir) / INDEX_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(index, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    tmp.replace(path)
    return path


def read_index(path: Path) -> dict:
    """A written index, or ValueError when it was written by another version of the gate."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("version") != INDEX_VERSION:
        raise ValueError("search index of another version: run `gate build`")
    return data
