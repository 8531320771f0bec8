"""gate.search.query: what the endpoint accepts, and a query's form among search gaps."""

import pytest

from gate.search.query import MAX_QUERY, BadQuery, check_query, normalize_query


@pytest.mark.parametrize("q", [None, "", "   ", "a" * (MAX_QUERY + 1), "a\x00b", "\x1b[31m", "a\x85"])
def test_bad_queries_are_refused_in_russian(q):
    with pytest.raises(BadQuery) as exc:
        check_query(q)
    assert any(c in str(exc.value) for c in "абвгдеж")


@pytest.mark.parametrize("q", ["касса", "a" * MAX_QUERY, "строка\tс\nпереводом", "!!!"])
def test_good_queries_are_kept_as_they_are(q):
    assert check_query(q) == q


@pytest.mark.parametrize("q, counted", [
    ("  Ёлочная   ГИРЛЯНДА! ", "елочная гирлянда"),
    ("!!!", "!!!"),
    ("чек-лист", "чек лист"),
])
def test_gaps_are_counted_in_a_folded_form(q, counted):
    assert normalize_query(q) == counted
