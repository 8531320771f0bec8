"""SLA figures in the articles come from the tariffs, never from the author's keyboard.

Authors write a placeholder where a deadline belongs; the MkDocs hook replaces it at build time
with the figure from `tariffs.yml` (or GATE_TARIFFS):

    {{ sla.consult }}         the reader's tariff: "в течение 8 часов"
    {{ sla.start.consult }}   a named tariff (for sentences that name it, e.g. «СТАРТ»)

Keys: register, consult, consult_critical, workaround (the keys of a tariff's `sla`).

"The reader's tariff" is whatever tariff reads the edition being built: the tariffs whose
sections are exactly the edition's, or every tariff for the editions without one (public, none,
staff). A figure is printed only when all of them promise the same one; otherwise, and when a
tariff has no `sla`, the placeholder becomes neutral words (NEUTRAL), so a page never shows a
promise some of its readers were not given.

`problems()` is the other half: `gate check` refuses a deadline typed by hand (a number with
минут/часов/дней in a sentence about consultation, registration, workaround or the tariff).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gate.tariffs import SLA_KEYS, TariffError, load_tariffs

NEUTRAL = "в срок, установленный тарифом"
PLACEHOLDER_RE = re.compile(r"\{\{\s*sla\.([\w-]+)(?:\.([\w-]+))?\s*\}\}")
# Anything that looks like a placeholder, to report misspelt ones ({{ sla.consul }}).
LOOSE_PLACEHOLDER_RE = re.compile(r"\{\{\s*sla\b[^}]*\}\}")


# --- rendering ------------------------------------------------------------------------------

def _count(n: int, one: str, many: str) -> str:
    """'в течение N ...': genitive singular after 1, 21, 31 ...; genitive plural otherwise."""
    return f"в течение {n} {one if n % 10 == 1 and n % 100 != 11 else many}"


def phrase(sla, key: str) -> str | None:
    """The words for one service level of a tariff's Sla, or None when it promises none."""
    if key == "workaround":
        days = sla.workaround_working_days
        return _count(days, "рабочего дня", "рабочих дней") if days else None
    value = getattr(sla, key)
    if not value:
        return None
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0:
        return _count(seconds // 3600, "часа", "часов")
    return _count(seconds // 60, "минуты", "минут")


def _common(tariffs, key: str) -> str | None:
    found = {phrase(t.sla, key) for t in tariffs}
    return found.pop() if len(found) == 1 and None not in found else None


def phrases(tariffs: dict, sections) -> dict[str, str]:
    """Placeholder name ('consult', 'start.consult') -> words, for the edition of `sections`.

    Names left out render as NEUTRAL.
    """
    sections = frozenset(sections)
    readers = [t for t in tariffs.values() if frozenset(t.sections) == sections] \
        or list(tariffs.values())
    out = {}
    for key in SLA_KEYS:
        if words := _common(readers, key):
            out[key] = words
        for name, tariff in tariffs.items():
            if words := phrase(tariff.sla, key):
                out[f"{name}.{key}"] = words
    return out


def preview_phrases(config_dir: str | Path, sections) -> dict[str, str]:
    """Phrases for `mkdocs serve`/`mkdocs build` outside `gate build`: the project's tariffs."""
    path = os.environ.get("GATE_TARIFFS") or Path(config_dir) / "tariffs.yml"
    try:
        return phrases(load_tariffs(path), sections)
    except TariffError:
        return {}


def _name(m: re.Match) -> tuple[str | None, str]:
    """(tariff or None, key) of a placeholder match."""
    return (m.group(1), m.group(2)) if m.group(2) else (None, m.group(1))


def render(markdown: str, words: dict[str, str]) -> str:
    """Replaces every placeholder with its words (NEUTRAL where none).

    A misspelt key is left as written: `gate check` (run before every `gate build`) reports it
    with its line, and a placeholder shown as an example inside code stays readable.
    """
    def one(m):
        tariff, key = _name(m)
        if key not in SLA_KEYS:
            return m.group(0)
        return words.get(f"{tariff}.{key}" if tariff else key, NEUTRAL)
    return PLACEHOLDER_RE.sub(one, markdown)


# --- the check --------------------------------------------------------------------------------

# A number with a unit of time: 30 минут, 8 часов, 4 часа, 3 рабочих дня, 2 суток.
FIGURE_RE = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)?\s*(?:минут\w*|мин\b|час(?:а|ов)?\b|ч\b|"
                       r"(?:рабоч\w+\s+|календарн\w+\s+)?(?:дн(?:я|ей)|день)|сут(?:ки|ок))",
                       re.I)
# Words that make a sentence a promise of the support service.
SLA_CONTEXT_RE = re.compile(r"консультац|регистр|обходн\w* решени|тариф|\bSLA\b|срок|критичн|"
                            r"гарантир", re.I)
# Acceptance around the clock is part of the tariff's text, not a deadline in tariffs.yml.
ALLOWED_RE = re.compile(r"24\s*час\w*\s+в\s+сутки", re.I)
# What ends a sentence for this check: punctuation, a blank line, a list item, a table cell.
BOUNDARY_RE = re.compile(r"[.!?;](?=\s)|\n[ \t]*\n|\n[ \t]*(?:[-*+]|\d+\.)[ \t]|\|")

FIX = ("write {{ sla.consult }} (or sla.register, sla.consult_critical, sla.workaround; "
       "sla.start.consult where the sentence names the tariff) so it comes from tariffs.yml")


def _context(text: str, pos: int, end: int) -> str:
    """The sentence around text[pos:end], the one after it ("**8 часов.** Срок консультации") and,
    in a table, the whole row."""
    start = 0
    for b in BOUNDARY_RE.finditer(text, 0, pos):
        start = b.end()
    stop = end
    for _ in range(2):
        nxt = BOUNDARY_RE.search(text, stop)
        stop = nxt.end() if nxt else len(text)
    line = text[text.rfind("\n", 0, pos) + 1:text.find("\n", end) % (len(text) + 1)]
    row = line if line.lstrip().startswith("|") else ""  # a table row: its label is a cell away
    return text[start:stop] + " " + row


def problems(text: str, masked: str, body_start: int) -> list[tuple[int, str]]:
    """Hand-typed SLA figures and bad placeholders of one article, as (line, message).

    `text` is the whole file; `masked` the same with front matter and code blanked out (offsets
    kept), as gate.check makes it.
    """
    def line(pos):
        return text.count("\n", 0, pos) + 1

    found = []
    front = text[:body_start]
    # Front matter is not rendered through the hook: no placeholders, no figures there.
    front_prose = re.sub(r"https?://\S+", lambda m: " " * len(m.group(0)), front)
    for m in LOOSE_PLACEHOLDER_RE.finditer(front):
        found.append((line(m.start()), "SLA placeholders are replaced only in the article body: "
                                       "write the title, description and keywords without the "
                                       "figure"))
    for m in FIGURE_RE.finditer(front_prose):
        value_line = front_prose[front_prose.rfind("\n", 0, m.start()) + 1:
                                 front_prose.find("\n", m.end())]
        if SLA_CONTEXT_RE.search(value_line) and not ALLOWED_RE.match(front_prose, m.start()):
            found.append((line(m.start()), f"SLA figure «{' '.join(m.group(0).split())}» in the front matter: "
                                           "leave it out (the body may say it with a placeholder)"))
    body = masked[body_start:]
    for m in LOOSE_PLACEHOLDER_RE.finditer(body):
        exact = PLACEHOLDER_RE.fullmatch(m.group(0))
        if not exact or _name(exact)[1] not in SLA_KEYS:
            found.append((line(body_start + m.start()),
                          f"unknown SLA placeholder {m.group(0)!r}: use {{{{ sla.KEY }}}} or "
                          f"{{{{ sla.TARIFF.KEY }}}} with KEY one of {', '.join(SLA_KEYS)}"))
    for m in FIGURE_RE.finditer(body):
        if ALLOWED_RE.match(body, m.start()):
            continue
        if SLA_CONTEXT_RE.search(_context(body, m.start(), m.end())):
            found.append((line(body_start + m.start()),
                          f"SLA figure «{' '.join(m.group(0).split())}» typed by hand: {FIX}"))
    return found
