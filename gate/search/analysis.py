"""Words to index terms: tokens, pymorphy3 lemmas, ё folded to е, Latin terms kept, stems.

The same functions analyse articles (at `gate build`) and queries (at each search), so both
sides always agree on what a word is. Spellings (search-synonyms.yml, `spellings:`) map a
Cyrillic lemma to the term it stands for, e.g. 'ерп' -> 'erp'; they are passed in, since every
index carries the spellings it was built with.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Mapping
from functools import lru_cache

STEM_CHARS = 5  # a lemma's first letters stand for its root

# Words that carry no meaning of their own: grammatical classes, and pronoun-like words.
STOP_POS = frozenset({"PREP", "CONJ", "PRCL", "INTJ", "NPRO", "PRED"})
STOP_GRAMMEMES = frozenset({"Apro", "Ques"})
STOP_LEMMAS = frozenset({"быть", "это", "весь", "всё", "все", "еще", "уже", "так", "там", "тут",
                         "здесь", "очень", "можно", "нужно", "надо", "ничего", "ничто", "нечего"})

NO_SPELLINGS: Mapping[str, str] = {}

CYRILLIC = re.compile("[а-я]")
WORD = re.compile(r"[^\W_]+")
_RUSSIAN_WORD = re.compile("[а-я]+")
_COMPOUND = re.compile(r"[^\W_]+(?:-[^\W_]+)+")
_TAG = re.compile(r"<[^>]*>")
SPACE = re.compile(r"\s+")

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
    if not CYRILLIC.search(word):
        return word if len(word) > 1 or word.isdigit() else ""
    parse = analyzer().parse(word)[0]
    tag = parse.tag
    if tag.POS in STOP_POS or STOP_GRAMMEMES & set(tag.grammemes):
        return ""
    form = parse.normal_form.replace("ё", "е")
    if form in STOP_LEMMAS or (len(form) < 2 and not form.isdigit()):
        return ""
    return form


def term_of(word: str, spellings: Mapping[str, str] = NO_SPELLINGS) -> str:
    """The index term of a folded word: its lemma, or the term a spelling maps it to.

    A spelling applies to a Cyrillic word by its lemma first, then by the word as written."""
    form = lemma(word)
    if form and spellings and CYRILLIC.search(word):
        return spellings.get(form) or spellings.get(word) or form
    return form


def tokens(text: str):
    """(start, end, folded surface word) for each word; hyphenated words also as one joined word."""
    for m in WORD.finditer(text):
        yield m.start(), m.end(), fold(m.group())
    for m in _COMPOUND.finditer(text):
        yield m.start(), m.end(), fold(m.group().replace("-", ""))


def terms_of(text: str, spellings: Mapping[str, str] = NO_SPELLINGS) -> list[str]:
    return [t for t in (term_of(w, spellings) for _, _, w in tokens(text)) if t]


def stem(term: str) -> str | None:
    """A coarse root shared by related words (ответ, ответить; закрытие, закрываться), or None.

    Stems live in the index beside the lemmas, marked with '~', and match with a lower weight."""
    if len(term) < 4 or not _RUSSIAN_WORD.fullmatch(term):
        return None
    return "~" + term[:STEM_CHARS]


@lru_cache(maxsize=200_000)
def _known(word: str) -> bool:
    return analyzer().word_is_known(word)


def word_stem(word: str, spellings: Mapping[str, str] = NO_SPELLINGS) -> str | None:
    """The stem of a folded word the Russian dictionary knows (guessed words have none)."""
    root = stem(term_of(word, spellings))
    return root if root and _known(word) else None


def clean_html(text: str) -> str:
    return SPACE.sub(" ", html.unescape(_TAG.sub(" ", text or ""))).strip()
