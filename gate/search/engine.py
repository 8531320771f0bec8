"""The query engine: a loaded edition index, a query's words, BM25F ranking. No Flask here.

Ranking is BM25F over the fields title, keywords, description, headings and text. Each query
word becomes a slot of alternatives: the word itself, its synonyms (search-synonyms.yml, as
carried by the index), a typo correction or completion (gate.search.typos) and its stem, each
with its own weight; a document scores the best alternative of each slot, plus a bonus for
matching more of the query's words.

Headings: every article's sections (a heading and its text) are ranked too, as documents of
their own (BM25F over heading and text). An article gains from its best section, so a question
whose words meet in one paragraph of a long article still finds it; and when that section
holds the query's words better than the article as a whole, the result points into the article
(`/page/#anchor`, the heading as its title, the article as its context), as Material's own
search does. Titles: a query that repeats a run of an article's title word for word ranks it
above articles that share only some of those words.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from gate.sections import SECTIONS
from gate.search import snippets
from gate.search.analysis import stem, term_of, terms_of, tokens, word_stem
from gate.search.index import read_index
from gate.search.query import MAX_QUERY
from gate.search.typos import Vocabulary

MAX_RESULTS = 10
MAX_WORDS = 40       # of a query; the rest is ignored
MAX_CORRECTIONS = 8  # unknown words of one query looked up for typos

# BM25F: field weights and length normalisation. Keywords are the words clients use (front
# matter), so they weigh almost as much as the title.
WEIGHTS = {"title": 6.0, "keywords": 6.0, "description": 2.5, "headings": 2.5, "text": 1.0}
LENGTH_B = {"title": 0.3, "keywords": 0.3, "description": 0.3, "headings": 0.5, "text": 0.75}
K1 = 20.0  # little saturation: in a small corpus, how often an article names a thing matters
COORDINATION = 0.5   # bonus for documents that match more of the query's words
FUZZY_WEIGHT = 0.7   # a corrected or completed word counts less than an exact one
SYNONYM_WEIGHT = 0.8
MIN_RELATIVE_SCORE = 0.15  # results far below the best one are noise
STEM_WEIGHT = 0.5
SECTION_ROOT_WEIGHT = 0.7  # a section's own page lists its articles: rarely the answer itself
# Sections (a heading and its text) as documents of their own
SECTION_WEIGHTS = {"title": 2.5, "text": 1.0}
SECTION_LENGTH_B = {"title": 0.3, "text": 0.75}
SECTION_BONUS = 0.7   # an article gains this share of its best section's score
POINT_SHARE = 0.5     # the best section holds at least this share of the article's found words
TITLE_RUN = 1.5       # bonus of an article whose title's words the query repeats in a row
TITLE_PHRASE = 3      # title words in a row (or the whole title) that rank an article first


def _bm25_postings(docs, weights, length_b):
    """term -> [(document, BM25F weight)] over `docs` (each with "fields" and "lengths")."""
    n = len(docs)
    avg = {f: (sum(d["lengths"][f] for d in docs) / n if n else 0) or 1 for f in weights}
    weighted: dict[int, dict[int, float]] = defaultdict(dict)
    for di, doc in enumerate(docs):
        for f, flat in doc["fields"].items():
            norm = 1 - length_b[f] + length_b[f] * doc["lengths"][f] / avg[f]
            for t, tf in zip(flat[::2], flat[1::2]):
                weighted[t][di] = weighted[t].get(di, 0.0) + weights[f] * tf / norm
    postings = {}
    for t, per_doc in weighted.items():
        df = len(per_doc)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        postings[t] = [(d, idf * w / (K1 + w)) for d, w in per_doc.items()]
    return postings


@dataclass
class Slot:
    """One word of the query and the index terms it may stand for: [(weight, [term ids])]."""
    word: str
    alternatives: list = field(default_factory=list)


class SearchIndex:
    """A loaded index of one edition: postings with precomputed BM25F weights."""

    def __init__(self, data: dict):
        self.edition = data.get("edition", "")
        self.spellings: dict[str, str] = data["spellings"]
        self.synonyms: dict[str, list[str]] = data["synonyms"]
        self.terms: list[str] = data["terms"]
        self.term_id = {t: i for i, t in enumerate(self.terms)}
        self.surfaces: dict[str, int] = data["surfaces"]
        self.docs = data["docs"]
        self.postings = _bm25_postings(self.docs, WEIGHTS, LENGTH_B)
        # every article's sections, numbered across the edition; section -> its article
        self.sections = [s for d in self.docs for s in d["sections"]]
        self.section_doc = [di for di, d in enumerate(self.docs) for _ in d["sections"]]
        self.section_postings = _bm25_postings(self.sections, SECTION_WEIGHTS, SECTION_LENGTH_B)
        # an article title's words in order, for runs of them repeated by a query
        self.title_terms = [[t for _, _, t in sorted(zip(d["spans"]["title"][::3],
                                                         d["spans"]["title"][1::3],
                                                         d["spans"]["title"][2::3]))]
                            for d in self.docs]
        self.df = {t: len(p) for t, p in self.postings.items()}
        self.spans = [{k: snippets.span_map(v) for k, v in d["spans"].items()} for d in self.docs]
        # vocabulary for corrections and completions: surface forms and lemmas
        words = dict(self.surfaces)
        for t, i in self.term_id.items():
            if not t.startswith("~"):
                words.setdefault(t, i)
        self.vocabulary = Vocabulary(words, self.df)
        self.stem_members: dict[int, list[int]] = defaultdict(list)  # for highlighting
        for t, i in self.term_id.items():
            root = None if t.startswith("~") else stem(t)
            if root in self.term_id:
                self.stem_members[self.term_id[root]].append(i)

    @classmethod
    def load(cls, path: Path) -> "SearchIndex":
        return cls(read_index(path))

    def prepare(self) -> "SearchIndex":
        """Builds the lazily made structures now (typo lookup), not at a visitor's query."""
        self.vocabulary.prepare()
        return self

    # -- the query's words --------------------------------------------------------------------

    def _known(self, word: str) -> int | None:
        term = term_of(word, self.spellings)
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
            term = term_of(word, self.spellings)
            if not term and word not in self.synonyms:
                continue
            key = term or word
            if key in slots:
                continue
            slot = Slot(word)
            known = self._known(word)
            if known is not None:
                slot.alternatives.append((1.0, [known]))
            for synonym in self.synonyms.get(word) or self.synonyms.get(term) or ():
                ids = [self.term_id[t] for t in terms_of(synonym, self.spellings)
                       if self.term_id.get(t) in self.postings]
                if ids and (SYNONYM_WEIGHT, ids) not in slot.alternatives:
                    slot.alternatives.append((SYNONYM_WEIGHT, ids))
            if not slot.alternatives:
                if typing and n == len(simple) - 1 and end == len(query):
                    for t in self.vocabulary.complete(word):
                        slot.alternatives.append((FUZZY_WEIGHT, [t]))
                if not slot.alternatives and corrections > 0:
                    corrections -= 1
                    t = self.vocabulary.correct(word)
                    if t is not None:
                        slot.alternatives.append((FUZZY_WEIGHT, [t]))
            roots = {stem(self.terms[t]) for _, ids in slot.alternatives for t in ids}
            if term and not slot.alternatives:
                roots.add(word_stem(word, self.spellings))
            for root in sorted(r for r in roots if r):
                if self.term_id.get(root) in self.postings:
                    slot.alternatives.append((STEM_WEIGHT, [self.term_id[root]]))
            slots[key] = slot
        for start, end, word in compounds:  # 'чек-лист' also matches 'чеклист'
            term = term_of(word, self.spellings)
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
        scores, matched_slots, matched_terms = self._score(slots, self.postings)
        if not scores:
            return [], len(slots)
        section_scores, section_slots, _ = self._score(slots, self.section_postings)
        best_section: dict[int, int] = {}
        for si, v in section_scores.items():
            d = self.section_doc[si]
            if d not in best_section or v > section_scores[best_section[d]]:
                best_section[d] = si
        total = len(slots)
        exact = [{t for w, ids in slot.alternatives if w == 1.0 for t in ids} for slot in slots]
        close = [{t for w, ids in slot.alternatives if w >= FUZZY_WEIGHT for t in ids}
                 for slot in slots]
        found = set().union(*close)
        ranked = []
        for d, s in scores.items():
            si = best_section.get(d)
            if si is not None:
                s += SECTION_BONUS * section_scores[si]
            prior = SECTION_ROOT_WEIGHT if self.docs[d]["location"].strip("/") in SECTIONS else 1.0
            s *= prior * (1 + COORDINATION * len(matched_slots[d]) / total)
            run, share = self._title_run(d, exact, close, found)
            s *= 1 + TITLE_RUN * share
            # the query repeats the whole title, or three of its words in a row: a title phrase
            phrase = run >= min(TITLE_PHRASE, len(self.title_terms[d])) and run >= 2
            ranked.append((phrase, s, d))
        ranked.sort(key=lambda x: (not x[0], -x[1], x[2]))
        ranked = [(s, d) for _, s, d in ranked]
        top = max(s for s, _ in ranked)
        results = []
        for score, d in ranked[:limit]:
            if score < top * MIN_RELATIVE_SCORE:
                break
            # a stem found stands for every word of that root in the document
            terms = {m for t in matched_terms[d] for m in self.stem_members.get(t, [t])}
            missing = [s.word for i, s in enumerate(slots) if i not in matched_slots[d]]
            si = best_section.get(d)
            section = None
            if si is not None and len(section_slots[si]) >= POINT_SHARE * len(matched_slots[d]) \
                    and section_slots[si] - self._title_slots(d, close):
                section = self.sections[si]
            results.append(snippets.result(self.docs[d], self.spans[d], score, terms, missing,
                                           section))
        return results, total

    def _score(self, slots: list[Slot], postings: dict):
        """Per document of `postings`: the score, the slots found, the terms found."""
        scores: dict[int, float] = defaultdict(float)
        matched_slots: dict[int, set[int]] = defaultdict(set)
        matched_terms: dict[int, set[int]] = defaultdict(set)
        for si, slot in enumerate(slots):
            best: dict[int, float] = {}
            for weight, ids in slot.alternatives:
                per_doc: dict[int, float] = defaultdict(float)
                for t in ids:
                    for d, w in postings.get(t, ()):
                        per_doc[d] += w
                for d, v in per_doc.items():
                    v *= weight
                    matched_terms[d].update(ids)  # every form found is highlighted
                    if d not in best or v > best[d]:
                        best[d] = v
            for d, v in best.items():
                scores[d] += v
                matched_slots[d].add(si)
        return scores, matched_slots, matched_terms

    def _title_slots(self, d: int, close: list[set]) -> set[int]:
        """The query's slots found in the article's title."""
        title = set(self.title_terms[d])
        return {i for i, terms in enumerate(close) if terms & title}

    def _title_run(self, d: int, exact: list[set], close: list[set], found: set) -> tuple[int, float]:
        """How many of the article's title words the query repeats exactly, in a row, and
        which share of the title the query repeats in a row counting synonyms and corrections
        too (0 below two words): 'настройка нового сервера Set10' repeats three of the four
        words of «Настройка нового сервера магазина». `exact` and `close` hold each slot's
        terms; `found` all of them."""
        title = self.title_terms[d]
        if len(title) < 2 or sum(t in found for t in title) < 2:
            return 0, 0.0
        near = _longest_run(close, title)
        return _longest_run(exact, title), (near / len(title) if near >= 2 else 0.0)


def _longest_run(words: list[set], title: list[int]) -> int:
    """The longest run of consecutive query slots that match consecutive title words."""
    best, previous = 0, [0] * (len(title) + 1)
    for slot in words:
        current = [0] * (len(title) + 1)
        for j, t in enumerate(title):
            if t in slot:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best
