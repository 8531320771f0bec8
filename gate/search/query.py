"""Queries coming from outside: what the endpoint accepts, and how a query is counted as a gap."""

from __future__ import annotations

from gate.search.analysis import SPACE, WORD, fold

MAX_QUERY = 200  # characters


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
    words = " ".join(fold(m.group()) for m in WORD.finditer(q))
    return (words or SPACE.sub(" ", fold(q)).strip())[:MAX_QUERY]
