"""Search that understands Russian: one index per edition, and the query engine. No Flask here.

`gate build` calls `write_index` for every edition after MkDocs has built it. The index is made
from that edition's own `search/search_index.json` (Material writes it per edition, holding only
the edition's pages) plus the `keywords` and `description` of those pages' front matter, so
nothing outside the edition can ever be found. It lives beside it, in `search/kb_index.json`.

Words are lemmatised with pymorphy3 (Russian dictionaries), ё is folded to е, Latin terms
(Set10, ERP, SOAP, XML, BASE64) stay as lower-cased tokens. Ranking is BM25F over the fields
title, keywords, description, headings and text. A query word the edition does not know is
replaced by the nearest word of the edition's vocabulary (at most 1 edit for short words, 2 for
longer ones); the last word, while it is still being typed, also matches as a prefix.
"""

from __future__ import annotations

import bisect
import html
import json
import math
import os
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from gate.sections import SECTIONS

INDEX_FILE = "search/kb_index.json"
MATERIAL_INDEX = "search/search_index.json"
INDEX_VERSION = 1
MAX_QUERY = 200      # characters
MAX_RESULTS = 10
MAX_WORDS = 40       # of a query; the rest is ignored
MAX_CORRECTIONS = 8  # unknown words of one query looked up for typos
MAX_TYPO_WORD = 32   # longer "words" are not looked up for typos
TYPO_PREFIX = 7      # typo candidates are found by a word's first letters, then checked whole

# BM25F: field weights and length normalisation. Keywords are the words clients use (front
# matter), so they weigh almost as much as the title.
WEIGHTS = {"title": 6.0, "keywords": 6.0, "description": 2.5, "headings": 2.5, "text": 1.0}
LENGTH_B = {"title": 0.3, "keywords": 0.3, "description": 0.3, "headings": 0.5, "text": 0.75}
K1 = 20.0  # little saturation: in a small corpus, how often an article names a thing matters
COORDINATION = 0.5   # bonus for documents that match more of the query's words
FUZZY_WEIGHT = 0.7   # a corrected or completed word counts less than an exact one
SYNONYM_WEIGHT = 0.8
MIN_RELATIVE_SCORE = 0.15  # results far below the best one are noise
SNIPPET_CHARS = 180
STEM_CHARS = 5       # a lemma's first letters stand for its root
STEM_WEIGHT = 0.5
SECTION_ROOT_WEIGHT = 0.7  # a section's own page lists its articles: rarely the answer itself

# Words that carry no meaning of their own: grammatical classes, and pronoun-like words.
STOP_POS = frozenset({"PREP", "CONJ", "PRCL", "INTJ", "NPRO", "PRED"})
STOP_GRAMMEMES = frozenset({"Apro", "Ques"})
STOP_LEMMAS = frozenset({"быть", "это", "весь", "всё", "все", "еще", "уже", "так", "там", "тут",
                         "здесь", "очень", "можно", "нужно", "надо", "ничего", "ничто", "нечего"})

# One thing, two spellings: Cyrillic transliterations of Latin product names are indexed and
# searched as the Latin term (applied to lemmas, in articles and in queries alike).
CANONICAL = {
    "ерп": "erp",
    "сет": "set",
    "сет10": "set10",
    "центрум": "centrum",
    "сентрум": "centrum",
    "ритейл": "retail",
    "ретейл": "retail",
    "виндовс": "windows",
    "линукс": "linux",
}

# How clients name things that the articles name otherwise: a query word (or its lemma) -> the
# articles' words ('|' between alternatives), matched with a lower weight. Support slang and
# everyday verbs; extend it when `gate search-gaps` shows a word clients use and articles do not.
SYNONYMS = {
    "сервак": "сервер",
    "серв": "сервер",
    "опердень": "операционный день",
    "фискальник": "фискальный регистратор",
    "фр": "фискальный регистратор",
    "ккт": "фискальный регистратор",
    "сетритейл": "set retail",
    "баг": "ошибка",
    "глючить": "ошибка",
    "глюк": "ошибка",
    "звонить": "телефон",
    "позвонить": "телефон",
    "комп": "компьютер",
    "инет": "интернет",
    "прайс": "цена",
    "грузиться": "загружаться|загрузка",
    "грузить": "загружать|загрузка",
    "слать": "отправлять|передавать|отправить|передать",
    "приходить": "доходить|поступать|приходить",
    "прийти": "дойти|поступить|прийти",
    "виснуть": "зависать",
    "зависнуть": "зависать",
    "тормозить": "медленно",
}

_CYRILLIC = re.compile("[а-я]")
_RUSSIAN_WORD = re.compile("[а-я]+")
_WORD = re.compile(r"[^\W_]+")
_COMPOUND = re.compile(r"[^\W_]+(?:-[^\W_]+)+")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")

_morph = None
_morph_lock = threading.Lock()


def analyzer():
    """The one pymorphy3 analyzer of this process (it is heavy: created once, then shared)."""
    global _morph
    if _morph is None:
        with _morph_lock:
            if _morph is None:
                import pymorphy3
                _morph = pymorphy3.MorphAnalyzer(lang="ru")
    return _morph


def fold(text: str) -> str:
    return text.lower().replace("ё", "е")


@lru_cache(maxsize=200_000)
def lemma(word: str) -> str:
    """The dictionary form of a folded word, '' for words without meaning of their own."""
    if not _CYRILLIC.search(word):
        return word if len(word) > 1 or word.isdigit() else ""
    parse = analyzer().parse(word)[0]
    tag = parse.tag
    if tag.POS in STOP_POS or STOP_GRAMMEMES & set(tag.grammemes):
        return ""
    form = parse.normal_form.replace("ё", "е")
    form = CANONICAL.get(form, CANONICAL.get(word, form))
    if form in STOP_LEMMAS or (len(form) < 2 and not form.isdigit()):
        return ""
    return form


def tokens(text: str):
    """(start, end, folded surface word) for each word; hyphenated words also as one joined word."""
    for m in _WORD.finditer(text):
        yield m.start(), m.end(), fold(m.group())
    for m in _COMPOUND.finditer(text):
        yield m.start(), m.end(), fold(m.group().replace("-", ""))


def terms_of(text: str) -> list[str]:
    return [t for t in (lemma(w) for _, _, w in tokens(text)) if t]


def stem(term: str) -> str | None:
    """A coarse root shared by related words (ответ, ответить; закрытие, закрываться), or None.

    Stems live in the index beside the lemmas, marked with '~', and match with a lower weight."""
    if len(term) < 4 or not _RUSSIAN_WORD.fullmatch(term):
        return None
    return "~" + term[:STEM_CHARS]


@lru_cache(maxsize=200_000)
def word_stem(word: str) -> str | None:
    """The stem of a folded word the Russian dictionary knows (guessed words have none)."""
    term = lemma(word)
    if not term or not stem(term) or not analyzer().word_is_known(word):
        return None
    return stem(term)


def clean_html(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text or ""))).strip()


# --------------------------------------------------------------------------------------------
# Building


def source_of(docs_dir: Path, location: str) -> Path | None:
    """docs/ source of a built page: 'launches/new-store/' -> docs/launches/new-store.md."""
    rel = location.strip("/")
    candidates = [f"{rel}/index.md", f"{rel}.md", f"{rel}/README.md"] if rel else ["index.md", "README.md"]
    for c in candidates:
        path = (docs_dir / c).resolve()
        if path.is_file() and docs_dir.resolve() in path.parents:
            return path
    return None


def front_matter(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        from mkdocs.utils.meta import get_data
        meta = get_data(path.read_text(encoding="utf-8"))[1]
    except Exception:  # the build itself reports broken front matter
        return {}
    return meta if isinstance(meta, dict) else {}


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


def build_index(edition_dir: Path, docs_dir: Path | None = None, edition: str = "") -> dict:
    """The index of one built edition (a JSON-able dict), from its own search_index.json."""
    edition_dir = Path(edition_dir)
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
            term = lemma(word)
            if not term:
                continue
            i = tid(term)
            counts[i] += 1
            surfaces.setdefault(word, i)
            root = word_stem(word)
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
            "surfaces": surfaces, "docs": docs}


def write_index(edition_dir: Path, docs_dir: Path | None, edition: str = "") -> Path:
    index = build_index(edition_dir, docs_dir, edition)
    path = Path(edition_dir) / INDEX_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(index, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------------------------
# Typo tolerance


def max_edits(word: str) -> int:
    n = len(word)
    return 0 if n <= 3 else 1 if n <= 6 else 2


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (a swap of neighbours is one edit); > limit when far."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _deletes(word: str, depth: int) -> set[str]:
    out, frontier = set(), {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


# --------------------------------------------------------------------------------------------
# Querying


@dataclass
class Slot:
    """One word of the query and the index terms it may stand for: [(weight, [term ids])]."""
    word: str
    alternatives: list = field(default_factory=list)


class SearchIndex:
    """A loaded index of one edition: postings with precomputed BM25F weights."""

    def __init__(self, data: dict):
        if data.get("version") != INDEX_VERSION:
            raise ValueError("search index of another version: run `gate build`")
        self.edition = data.get("edition", "")
        self.terms: list[str] = data["terms"]
        self.term_id = {t: i for i, t in enumerate(self.terms)}
        self.surfaces: dict[str, int] = data["surfaces"]
        self.docs = data["docs"]
        n = len(self.docs)
        avg = {f: (sum(d["lengths"][f] for d in self.docs) / n if n else 0) or 1 for f in WEIGHTS}
        weighted: dict[int, dict[int, float]] = defaultdict(dict)
        for di, doc in enumerate(self.docs):
            for f, flat in doc["fields"].items():
                norm = 1 - LENGTH_B[f] + LENGTH_B[f] * doc["lengths"][f] / avg[f]
                for t, tf in zip(flat[::2], flat[1::2]):
                    weighted[t][di] = weighted[t].get(di, 0.0) + WEIGHTS[f] * tf / norm
        self.postings: dict[int, list[tuple[int, float]]] = {}
        for t, per_doc in weighted.items():
            df = len(per_doc)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            self.postings[t] = [(d, idf * w / (K1 + w)) for d, w in per_doc.items()]
        self.df = {t: len(p) for t, p in self.postings.items()}
        self.spans = [{k: self._span_map(v) for k, v in d["spans"].items()} for d in self.docs]
        # vocabulary for corrections and completions: surface forms and lemmas
        vocab = dict(self.surfaces)
        for t, i in self.term_id.items():
            if not t.startswith("~"):
                vocab.setdefault(t, i)
        self.vocab = vocab
        self.sorted_vocab = sorted(vocab)
        self.stem_members: dict[int, list[int]] = defaultdict(list)  # for highlighting
        for t, i in self.term_id.items():
            root = None if t.startswith("~") else stem(t)
            if root in self.term_id:
                self.stem_members[self.term_id[root]].append(i)
        self._deletes: dict | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _span_map(flat):
        spans = defaultdict(list)
        for s, e, t in zip(flat[::3], flat[1::3], flat[2::3]):
            spans[t].append((s, e))
        return spans

    @classmethod
    def load(cls, path: Path) -> "SearchIndex":
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    # -- the query's words --------------------------------------------------------------------

    def prepare(self) -> "SearchIndex":
        """Builds the lazily made structures now (typo lookup), not at a visitor's query."""
        self._deletes_index()
        return self

    def _deletes_index(self) -> dict:
        """Symmetric deletes (SymSpell) of the vocabulary's words' first TYPO_PREFIX letters:
        variant -> word, or a tuple of words."""
        if self._deletes is None:
            with self._lock:
                if self._deletes is None:
                    index: dict = {}
                    for word in self.vocab:
                        depth = max_edits(word)
                        if depth == 0 or word.isdigit():
                            continue
                        head = word[:TYPO_PREFIX]
                        for d in {head} | _deletes(head, depth):
                            have = index.get(d)
                            index[d] = word if have is None else (
                                (have, word) if isinstance(have, str) else have + (word,))
                    self._deletes = index
        return self._deletes

    def correct(self, word: str) -> int | None:
        """The term of the nearest vocabulary word within the allowed edits, or None."""
        limit = max_edits(word)
        if limit == 0 or word.isdigit() or len(word) > MAX_TYPO_WORD:
            return None
        index = self._deletes_index()
        head = word[:TYPO_PREFIX]
        candidates = set()
        for d in {head} | _deletes(head, limit):
            found = index.get(d)
            if found is not None:
                candidates.update((found,) if isinstance(found, str) else found)
        best = None
        for cand in candidates:
            allowed = min(limit, max_edits(cand))
            dist = edit_distance(word, cand, allowed)
            if dist <= allowed:
                key = (dist, -self.df.get(self.vocab[cand], 0), cand)
                if best is None or key < best[0]:
                    best = (key, self.vocab[cand])
        return best[1] if best else None

    def complete(self, prefix: str, limit: int = 8) -> list[int]:
        """Terms of vocabulary words that start with `prefix` (the word being typed)."""
        if len(prefix) < 3:
            return []
        found = []
        i = bisect.bisect_left(self.sorted_vocab, prefix)
        while i < len(self.sorted_vocab) and self.sorted_vocab[i].startswith(prefix):
            t = self.vocab[self.sorted_vocab[i]]
            if t not in found and t in self.postings:
                found.append(t)
            i += 1
        found.sort(key=lambda t: -self.df.get(t, 0))
        return found[:limit]

    def _known(self, word: str) -> int | None:
        term = lemma(word)
        if term and self.term_id.get(term) in self.postings:
            return self.term_id[term]
        t = self.surfaces.get(word)
        return t if t in self.postings else None

    def parse(self, query: str) -> list[Slot]:
        words = list(tokens(query[:MAX_QUERY]))[:MAX_WORDS]
        corrections = MAX_CORRECTIONS
        typing = bool(query) and not query[-1].isspace()
        slots: dict[str, Slot] = {}
        simple = [w for w in words if "-" not in query[w[0]:w[1]]]
        compounds = [w for w in words if "-" in query[w[0]:w[1]]]
        for n, (start, end, word) in enumerate(simple):
            term = lemma(word)
            if not term and word not in SYNONYMS:
                continue
            key = term or word
            if key in slots:
                continue
            slot = Slot(word)
            known = self._known(word)
            if known is not None:
                slot.alternatives.append((1.0, [known]))
            for synonym in (SYNONYMS.get(word) or SYNONYMS.get(term) or "").split("|"):
                ids = [self.term_id[t] for t in terms_of(synonym) if self.term_id.get(t) in self.postings]
                if ids and (SYNONYM_WEIGHT, ids) not in slot.alternatives:
                    slot.alternatives.append((SYNONYM_WEIGHT, ids))
            if not slot.alternatives:
                if typing and n == len(simple) - 1 and end == len(query):
                    for t in self.complete(word):
                        slot.alternatives.append((FUZZY_WEIGHT, [t]))
                if not slot.alternatives and corrections > 0:
                    corrections -= 1
                    t = self.correct(word)
                    if t is not None:
                        slot.alternatives.append((FUZZY_WEIGHT, [t]))
            roots = {stem(self.terms[t]) for _, ids in slot.alternatives for t in ids}
            if term and not slot.alternatives:
                roots.add(word_stem(word))
            for root in sorted(r for r in roots if r):
                if self.term_id.get(root) in self.postings:
                    slot.alternatives.append((STEM_WEIGHT, [self.term_id[root]]))
            slots[key] = slot
        for start, end, word in compounds:  # 'чек-лист' also matches 'чеклист'
            term = lemma(word)
            if term and self.term_id.get(term) in self.postings:
                parts = [s for s in slots.values()
                         if any(w == s.word for _, _, w in tokens(query[start:end]))]
                if parts:
                    parts[0].alternatives.append((1.0, [self.term_id[term]]))
        return list(slots.values())

    # -- ranking ------------------------------------------------------------------------------

    def search(self, query: str, limit: int = MAX_RESULTS) -> list[dict]:
        """At most `limit` results, best first: title, location, snippet, score and more."""
        return self.search_words(query, limit)[0]

    def search_words(self, query: str, limit: int = MAX_RESULTS) -> tuple[list[dict], int]:
        """(results, how many meaningful words the query has)."""
        slots = self.parse(query)
        if not slots:
            return [], 0
        scores: dict[int, float] = defaultdict(float)
        matched_slots: dict[int, set[int]] = defaultdict(set)
        matched_terms: dict[int, set[int]] = defaultdict(set)
        for si, slot in enumerate(slots):
            best: dict[int, float] = {}
            for weight, ids in slot.alternatives:
                per_doc: dict[int, float] = defaultdict(float)
                for t in ids:
                    for d, w in self.postings.get(t, ()):
                        per_doc[d] += w
                for d, v in per_doc.items():
                    v *= weight
                    matched_terms[d].update(ids)  # every form found is highlighted
                    if d not in best or v > best[d]:
                        best[d] = v
            for d, v in best.items():
                scores[d] += v
                matched_slots[d].add(si)
        if not scores:
            return [], len(slots)
        total = len(slots)
        prior = [SECTION_ROOT_WEIGHT if doc["location"].strip("/") in SECTIONS else 1.0
                 for doc in self.docs]
        ranked = sorted(((s * prior[d] * (1 + COORDINATION * len(matched_slots[d]) / total), d)
                         for d, s in scores.items()), key=lambda x: (-x[0], x[1]))
        top = ranked[0][0]
        results = []
        for score, d in ranked[:limit]:
            if score < top * MIN_RELATIVE_SCORE:
                break
            results.append(self._result(d, score, matched_terms[d],
                                        [s.word for i, s in enumerate(slots) if i not in matched_slots[d]]))
        return results, total

    # -- presentation -------------------------------------------------------------------------

    def _result(self, d: int, score: float, terms: set[int], missing: list[str]) -> dict:
        doc = self.docs[d]
        terms = {m for t in terms for m in self.stem_members.get(t, [t])}
        title_spans = sorted(s for t in terms for s in self.spans[d]["title"].get(t, ()))
        body_spans = sorted(s for t in terms for s in self.spans[d]["body"].get(t, ()))
        snippet, shown = self._snippet(doc, d, body_spans, terms)
        matched = []
        for text, spans in ((doc["title"], title_spans), (doc["body"], shown)):
            for s, e in spans:
                word = fold(text[s:e])
                if word not in matched:
                    matched.append(word)
        return {"title": doc["title"], "location": doc["location"], "snippet": snippet,
                "score": round(score, 3), "title_html": mark(doc["title"], title_spans),
                "matched": matched[:10], "missing": missing}

    def _snippet(self, doc: dict, d: int, spans: list, terms: set[int]):
        body = doc["body"]
        if not spans:
            text = doc["description"] or body
            return html.escape(_cut(text, 0, SNIPPET_CHARS)), []
        # the window of SNIPPET_CHARS with the most distinct matched terms, then the most matches
        term_at = {}
        for t in terms:
            for s in self.spans[d]["body"].get(t, ()):
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
        shown = [s for s in spans[i:j]]
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


# --------------------------------------------------------------------------------------------
# Queries coming from outside


class BadQuery(ValueError):
    """A query the endpoint refuses (the message is for the visitor, in Russian)."""


def check_query(q: str | None) -> str:
    """The query to search for, or BadQuery: empty, too long, control characters."""
    if q is None or not q.strip():
        raise BadQuery("Введите текст запроса.")
    if len(q) > MAX_QUERY:
        raise BadQuery(f"Запрос слишком длинный: не больше {MAX_QUERY} символов.")
    if any(ord(c) < 32 and c not in "\t\n\r" or 0x7f <= ord(c) < 0xa0 for c in q):
        raise BadQuery("Запрос содержит недопустимые символы.")
    return q


def normalize_query(q: str) -> str:
    """The form in which a query is counted among search gaps."""
    words = " ".join(fold(m.group()) for m in _WORD.finditer(q))
    return (words or _SPACE.sub(" ", fold(q)).strip())[:MAX_QUERY]
