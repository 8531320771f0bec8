"""search-synonyms.yml: the words clients use that the articles spell or name otherwise.

Support staff extend it (AUTHORING.md says how) when `gate search-gaps` shows a word clients
search for and articles do not use. It lives in the project root, beside tariffs.yml, and not
in docs/, which MkDocs would publish. Two mappings, both optional:

    spellings:        # one thing, two spellings: indexed and searched as one term
      сентрум: centrum
    synonyms:         # a client's word -> the articles' words, matched with a lower weight
      сервак: сервер
      грузиться: [загружаться, загрузка]    # alternatives: any of them

`gate build` reads the file once, checks it as a whole (every problem as `file:line: key:
what`), applies the spellings while indexing and writes both mappings into each edition's
index, so the running gate answers with what was built; the file is one of the build's inputs
(gate.build.BUILD_INPUTS), so changing it makes site/ stale until the next build. No file
means no spellings and no synonyms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gate.search.analysis import CYRILLIC, WORD, fold, lemma, terms_of

SYNONYMS_FILE = "search-synonyms.yml"
SECTIONS = ("spellings", "synonyms")


class SynonymsError(ValueError):
    """Problems of a synonyms file, one `file:line: key: what is wrong` per line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Synonyms:
    """Folded word -> term (spellings), folded word -> alternatives of the articles' words."""
    spellings: Mapping[str, str] = field(default_factory=dict)
    synonyms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def as_index(self) -> dict:
        """The form in which an index carries them (JSON)."""
        return {"spellings": dict(self.spellings),
                "synonyms": {k: list(v) for k, v in self.synonyms.items()}}


def load_synonyms(path: str | Path, name: str | None = None) -> Synonyms:
    """The synonyms file at `path` checked (SynonymsError), or no synonyms when there is none.

    `name` is how messages call the file (default: its path)."""
    path = Path(path)
    name = name or str(path)
    if not path.exists():
        return Synonyms()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SynonymsError([f"{name}:1: cannot be read as UTF-8 text: {exc}"]) from None
    return parse_synonyms(text, name)


def parse_synonyms(text: str, source: str) -> Synonyms:
    """Parses and checks the YAML text of a synonyms file; `source` names it in messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SynonymsError([f"{source}:{mark.line + 1 if mark else 1}: not valid YAML: {problem}"]) from None
    problems: list[str] = []

    def problem(node, key: str, message: str):
        problems.append(f"{source}:{node.start_mark.line + 1}: {key}: {message}")

    found: dict[str, list] = {}
    if root is None or _is_null(root):
        return Synonyms()
    if not isinstance(root, yaml.MappingNode):
        problem(root, "(top)", f"expected a mapping with the keys {' and '.join(SECTIONS)}")
        raise SynonymsError(problems)
    for key_node, value_node in root.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
        if key not in SECTIONS:
            problem(key_node, str(key), f"unknown key (known: {', '.join(SECTIONS)})")
        elif key in found:
            problem(key_node, key, "appears twice: keep one list")
        elif _is_null(value_node):
            found[key] = []
        elif not isinstance(value_node, yaml.MappingNode):
            problem(value_node, key, "must be a mapping of word: words")
        else:
            found[key] = _entries(value_node, key, problem)
    spellings = {}
    for node, word, value in found.get("spellings", []):
        where = f"spellings.{word}"
        target = fold(value.value.strip()) if isinstance(value, yaml.ScalarNode) else ""
        if not CYRILLIC.search(word):
            problem(node, where, "a spelling is for a Russian word (Latin words are searched as written)")
        elif not _one_word(target) or _is_null(value):
            problem(node, where, "must be one word: the term it stands for, e.g. ерп: erp")
        elif lemma(target) != target:
            problem(node, where, f"write the term in its dictionary form "
                                 f"('{lemma(target)}'), as the articles' words are indexed"
                    if lemma(target) else f"'{target}' is a word the search skips")
        else:
            spellings[word] = target
    synonyms = {}
    for node, word, value in found.get("synonyms", []):
        where = f"synonyms.{word}"
        items = value.value if isinstance(value, yaml.SequenceNode) else [value]
        if not items:
            problem(value, where, "an empty list: write the articles' words")
        alternatives = []
        for item in items:
            if not isinstance(item, yaml.ScalarNode):
                problem(item, where, "must be the articles' words, or a list of them: [word, other words]")
                continue
            text = "" if _is_null(item) else item.value.strip()
            if not text:
                problem(item, where, "an empty alternative: write the articles' words")
            elif "|" in text:
                problem(item, where, "list alternatives as [word, other words] instead of '|'")
            elif not terms_of(text, spellings):
                problem(item, where, f"'{text}' has no word the search looks for "
                                     "(prepositions, conjunctions and pronouns are skipped)")
            elif text not in alternatives:
                alternatives.append(text)
        synonyms[word] = tuple(alternatives)
    if problems:
        raise SynonymsError(problems)
    return Synonyms(spellings, synonyms)


def _entries(mapping, section: str, problem) -> list:
    """(key node, folded word, value node) of one section; bad or repeated keys are problems."""
    entries, lines = [], {}
    for key_node, value_node in mapping.value:
        raw = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        word = fold(raw.strip()) if isinstance(raw, str) else ""
        if not _one_word(word):
            problem(key_node, f"{section}.{raw if isinstance(raw, str) else '?'}",
                    "the key must be one word (the search looks words up one by one)")
        elif word in lines:
            problem(key_node, f"{section}.{word}", f"repeats the word of line {lines[word]}")
        else:
            lines[word] = key_node.start_mark.line + 1
            entries.append((key_node, word, value_node))
    return entries


def _one_word(text: str) -> bool:
    return bool(WORD.fullmatch(text)) and (len(text) > 1 or text.isdigit())


def _is_null(node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
