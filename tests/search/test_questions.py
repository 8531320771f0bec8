"""The client questions against the real articles, through GET /api/search, in every edition.

The evaluation set (tests/data/questions-*.yml: a client's question and the article it should
find) runs against every edition of the real project, built into a temporary copy.
"""

import json

import yaml

from gate.search import MAX_RESULTS
from tests.helpers.http import login
from tests.helpers.project import PROJECT

QUESTIONS = sorted((PROJECT / "tests/data").glob("questions-*.yml"))
TOP3_TARGET = 0.96


def questions():
    for path in QUESTIONS:
        name = path.stem.removeprefix("questions-")
        for item in yaml.safe_load(path.read_text(encoding="utf-8")):
            yield name, item["q"], item["expect"]


def rank_of(results, expected):
    """Rank of the first result for the article, whether it points at it or into it."""
    pages = [r["location"].partition("#")[0] for r in results]
    return pages.index(expected) + 1 if expected in pages else None


def test_client_questions_find_their_article_in_every_edition(real_project, real_app, capsys):
    """Top-1 and top-3 per question set and edition, through the endpoint the search box uses."""
    root, manifest = real_project
    staff = real_app.test_client()
    assert login(staff, "staff@vendor.example").status_code == 303
    ended = real_app.test_client()
    assert login(ended, "ended@client.example").status_code == 303
    anonymous = real_app.test_client()
    report, misses = [], []
    for edition, client in (("all", staff), ("public", anonymous), ("none", ended)):
        # the edition's own pages and headings (Material's index of that edition)
        entries = {"/" + d["location"] for d in json.loads(
            (root / "site/editions" / edition / "search/search_index.json").read_text())["docs"]}
        own = {e for e in entries if "#" not in e}
        totals = {}
        for name, q, expected in questions():
            r = client.get("/api/search", query_string={"q": q})
            assert r.status_code == 200, (q, r.status_code)
            results = r.get_json()["results"]
            assert len(results) <= MAX_RESULTS
            assert {x["location"] for x in results} <= entries, f"{q!r}: a result outside {edition}"
            assert {x["page"]["location"] for x in results if "page" in x} <= own
            if expected not in own:
                continue  # the article is not in this edition: nothing of it may be found
            rank = rank_of(results, expected)
            t = totals.setdefault(name, [0, 0, 0])
            t[0] += 1
            t[1] += rank == 1
            t[2] += rank is not None and rank <= 3
            if rank is None or rank > 3:
                misses.append(f"[{edition}] {q!r} -> {expected}: "
                              f"{[x['location'] for x in results[:3]]}")
        n, top1, top3 = (sum(t[i] for t in totals.values()) for i in range(3))
        for name, (k, a, b) in sorted(totals.items()):
            report.append(f"{edition:7} {name:14} {k:3} questions  top-1 {a / k:4.0%}  top-3 {b / k:4.0%}")
        report.append(f"{edition:7} {'ALL':14} {n:3} questions  top-1 {top1 / n:4.0%}  top-3 {top3 / n:4.0%}")
        assert n, f"no question has its article in edition {edition}"
        assert top3 / n >= TOP3_TARGET, "\n".join(report + misses)
    with capsys.disabled():  # the figures belong in every test run's output
        print("\nsearch evaluation (client questions through /api/search):\n  "
              + "\n  ".join(report + misses))
