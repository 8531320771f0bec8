"""Typo tolerance within one edition's vocabulary: corrections and completions.

A query word the edition does not know is replaced by the nearest word of the edition's
vocabulary (at most 1 edit for short words, 2 for longer ones; a swap of neighbours is one
edit); the word still being typed also matches as a prefix. Only words of the edition itself
are ever proposed, so a correction can never reveal another edition's words.
"""

from __future__ import annotations

import bisect
import threading

MAX_TYPO_WORD = 32   # longer "words" are not looked up for typos
TYPO_PREFIX = 7      # typo candidates are found by a word's first letters, then checked whole
MIN_PREFIX = 3       # a word being typed is completed from this many letters on


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


def deletes(word: str, depth: int) -> set[str]:
    """Every string made from `word` by deleting 1 to `depth` letters."""
    out, frontier = set(), {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


class Vocabulary:
    """An edition's words (surface forms and lemmas) -> term ids, for corrections and completions.

    `df` maps each searchable term to the number of documents holding it: terms outside it are
    never proposed, and among equally near words the more common one wins."""

    def __init__(self, words: dict[str, int], df: dict[int, int]):
        self.words, self.df = words, df
        self.sorted_words = sorted(words)
        self._deletes: dict | None = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Builds the typo lookup now (it is lazily made otherwise, at the first unknown word)."""
        self._deletes_index()

    def _deletes_index(self) -> dict:
        """Symmetric deletes (SymSpell) of the words' first TYPO_PREFIX letters:
        variant -> word, or a tuple of words."""
        if self._deletes is None:
            with self._lock:
                if self._deletes is None:
                    index: dict = {}
                    for word in self.words:
                        depth = max_edits(word)
                        if depth == 0 or word.isdigit():
                            continue
                        head = word[:TYPO_PREFIX]
                        for d in {head} | deletes(head, depth):
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
        for d in {head} | deletes(head, limit):
            found = index.get(d)
            if found is not None:
                candidates.update((found,) if isinstance(found, str) else found)
        best = None
        for cand in candidates:
            allowed = min(limit, max_edits(cand))
            dist = edit_distance(word, cand, allowed)
            if dist <= allowed:
                key = (dist, -self.df.get(self.words[cand], 0), cand)
                if best is None or key < best[0]:
                    best = (key, self.words[cand])
        return best[1] if best else None

    def complete(self, prefix: str, limit: int = 8) -> list[int]:
        """Terms of vocabulary words that start with `prefix` (the word being typed)."""
        if len(prefix) < MIN_PREFIX:
            return []
        found = []
        i = bisect.bisect_left(self.sorted_words, prefix)
        while i < len(self.sorted_words) and self.sorted_words[i].startswith(prefix):
            t = self.words[self.sorted_words[i]]
            if t not in found and t in self.df:
                found.append(t)
            i += 1
        found.sort(key=lambda t: -self.df.get(t, 0))
        return found[:limit]
