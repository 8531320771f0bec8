"""GET /api/search and the search gaps, on the marker project: every identity sees only its
own edition; what clients search for and do not find is counted without the person."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from gate.db import search_misses
from gate.search.analysis import tokens
from gate.sections import SECTIONS
from tests.helpers.http import login
from tests.helpers.project import PROJECT, marker
from tests.helpers.support import submit_support


IDENTITIES = {
    "anonymous": (None, set()),
    "start": ("start@client.example", set(SECTIONS)),
    "func": ("func@client.example", {"functionality"}),
    "pair": ("pair@client.example", {"launches", "maintenance"}),
    "ended": ("ended@client.example", set()),
    "disabled": ("disabled@client.example", set()),
    "staff": ("staff@vendor.example", set(SECTIONS)),
}


def ask(client, q, **headers):
    return client.get("/api/search", query_string={"q": q}, headers=headers)


def typo(word: str) -> str:
    return word[:3] + word[4] + word[3] + word[5:]  # two neighbours swapped: one edit


@pytest.mark.parametrize("who", IDENTITIES)
def test_search_finds_only_the_visitors_sections(app, who):
    email, allowed = IDENTITIES[who]
    client = app.test_client()
    if email:
        login(client, email)
    forbidden = [s for s in SECTIONS if s not in allowed]
    for section in SECTIONS:
        for q in (marker(section, "title"), marker(section, "body"), marker(section, "slug"),
                  typo(marker(section, "title")), marker(section, "title")[:-2],
                  f"{marker(section, 'body')} раздел статьи"):
            r = ask(client, q)
            assert r.status_code == 200, (q, r.status_code)
            results = r.get_json()["results"]
            # everything but the echo of the visitor's own words ("missing" are words of q)
            shown = json.dumps([{k: v for k, v in x.items() if k != "missing"} for x in results],
                               ensure_ascii=False).lower()
            for s in forbidden:
                for kind in ("title", "body", "url"):
                    assert marker(s, kind).lower() not in shown, f"{who}: {q!r} shows {kind} of {s}"
            for res in results:
                assert set(res["missing"]) <= {w for _, _, w in tokens(q)}
                top_folder = res["location"].strip("/").split("/")[0]
                assert top_folder not in SECTIONS or top_folder in allowed, (who, q, res)
            if section in forbidden and " " not in q and "-" not in q:  # marker words alone
                assert results == [], (who, q, results)
        if section in allowed:
            found = ask(client, marker(section, "title")).get_json()["results"]
            assert found and found[0]["location"] == f"/{marker(section, 'url')}/"
            assert f"<mark>{marker(section, 'title')}</mark>" in found[0]["title_html"]


def test_answer_shape_and_cache_headers(client):
    r = ask(client, "Публичнаястраница")
    assert r.status_code == 200 and r.mimetype == "application/json"
    data = r.get_json()
    assert data["query"] == "Публичнаястраница"
    [hit] = data["results"]
    assert set(hit) >= {"title", "location", "snippet", "score"}
    assert hit["location"] == "/" and "<mark>" in hit["snippet"]
    assert "private" in r.headers["Cache-Control"] or "no-store" in r.headers["Cache-Control"]
    assert "Cookie" in r.headers["Vary"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("query_string, status", [
    ("", 400),
    ("q=", 400),
    ("q=%20%20%20", 400),
    ("q=" + "a" * 201, 400),
    ("q=" + "я" * 201, 400),
    ("q=a%00b", 400),
    ("q=%1b%5b31m", 400),
    ("q=%FF%FE", 200),
    ("q=!!!", 200),
    ("q=%3Cscript%3Ealert(1)%3C/script%3E", 200),
    ("q=" + "слово " * 33, 200),
    ("q=%D0", 200),
    ("q=..%2F..%2Fetc%2Fpasswd", 200),
    ("q=a&q=b", 200),
    ("q=" + "кофемашина+" * 18, 200),
])
def test_bad_input_gets_4xx_or_an_empty_answer_never_500(client, query_string, status):
    r = client.get("/api/search?" + query_string)
    assert r.status_code == status, r.get_data(as_text=True)
    data = r.get_json()
    if status == 400:
        assert data["error"] and data.get("results") is None
        assert any(c in data["error"] for c in "абвгдеж")  # a Russian message
    else:
        assert isinstance(data["results"], list)
        assert "<script>" not in r.get_data(as_text=True)


def test_bad_bearer_token_is_refused(client):
    r = client.get("/api/search?q=касса", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401


def test_rate_limit_answers_429_per_client(app):
    app.config["SEARCH_RATE_LIMIT"] = (5, 60)
    app.extensions.pop("kb_search", None)
    a, b = app.test_client(), app.test_client()
    login(b, "start@client.example")
    for _ in range(5):
        assert ask(a, "касса").status_code == 200
    r = ask(a, "касса")
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert "Подождите" in r.get_json()["error"]
    assert ask(b, "касса").status_code == 200  # another person is not held back


def misses(app):
    with app.extensions["gate"].engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(search_misses.c.query, search_misses.c.edition, search_misses.c.kind)
            .order_by(search_misses.c.id))]


def test_queries_without_results_are_counted_without_the_person(app, client):
    login(client, "func@client.example")
    for typed in ("коф", "кофем", "кофемаш", "кофемашина"):  # typed on: one query
        assert ask(client, typed).get_json()["results"] == []
    assert ask(client, "Заголовокмаркерfunctionality").get_json()["results"]
    assert ask(client, "Ёлочная гирлянда").get_json()["results"] == []
    assert misses(app) == [("кофемашина", "functionality", "no_results"),
                           ("елочная гирлянда", "functionality", "no_results")]
    columns = set(search_misses.c.keys())
    assert columns == {"id", "query", "edition", "kind", "at"}  # nothing about the person


def test_a_query_answered_only_by_one_of_its_words_counts_as_a_gap(app, client):
    login(client, "start@client.example")
    results = ask(client, "раздел кофемашина весы этикетки").get_json()["results"]
    assert results  # the visitor still sees what there is
    assert misses(app) == [("раздел кофемашина весы этикетки", "all", "no_results")]


def test_a_query_typed_on_into_a_hit_is_not_a_miss(app, client):
    login(client, "start@client.example")
    assert ask(client, "Ёлочная").get_json()["results"] == []
    assert ask(client, "Ёлочная Заголовокмаркерlaunches").get_json()["results"]
    assert misses(app) == []


def test_support_form_suggestions_are_not_counted(app, client):
    login(client, "start@client.example")
    r = ask(client, "кофемашина сломалась", Referer="http://localhost/support/new?from=/")
    assert r.status_code == 200 and misses(app) == []


def test_searches_followed_by_a_support_request_are_counted(app, client):
    login(client, "start@client.example")
    ask(client, "Заголовокмаркерlaunches")
    ask(client, "касса не печатает чек")
    assert submit_support(client).status_code == 303
    kinds = [m for m in misses(app) if m[2] == "then_request"]
    assert kinds == [("заголовокмаркерlaunches", "all", "then_request"),
                     ("касса не печатает чек", "all", "then_request")]


def test_a_refused_support_form_does_not_count_the_searches(app, client):
    login(client, "start@client.example")
    ask(client, "касса не печатает чек")
    assert submit_support(client, phone="").status_code == 422
    assert [m for m in misses(app) if m[2] == "then_request"] == []
    assert submit_support(client).status_code == 303  # the searches are still remembered
    assert [m for m in misses(app) if m[2] == "then_request"] == [
        ("касса не печатает чек", "all", "then_request")]


def test_gaps_page_is_for_staff_only(app, client):
    login(client, "func@client.example")
    ask(client, "кофемашина")
    assert client.get("/api/search/gaps", headers={"Accept": "text/html"}).status_code == 403
    anonymous = app.test_client()
    assert anonymous.get("/api/search/gaps", headers={"Accept": "text/html"}).status_code == 303
    assert anonymous.get("/api/search/gaps").status_code == 401
    staff = app.test_client()
    login(staff, "staff@vendor.example")
    page = staff.get("/api/search/gaps?days=7")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "кофемашина" in html and "functionality" in html
    assert 'class="md-header' in html  # in the site's look
    assert "private" in page.headers["Cache-Control"]


def test_gate_search_gaps_command(app, client):
    login(client, "func@client.example")
    ask(client, "кофемашина")
    cfg = app.extensions["gate"].cfg
    env = {**os.environ, "GATE_ROOT": str(cfg.root), "GATE_INSTANCE": str(cfg.instance),
           "GATE_TARIFFS": str(cfg.tariffs_path), "GATE_DATABASE_URL": cfg.database_url}
    out = subprocess.run([sys.executable, "-m", "gate", "search-gaps", "--days", "1"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "кофемашина" in out.stdout and "functionality" in out.stdout
    js = subprocess.run([sys.executable, "-m", "gate", "search-gaps", "--json"], env=env,
                        capture_output=True, text=True, timeout=60)
    [row] = json.loads(js.stdout)
    assert row["query"] == "кофемашина" and row["no_results"] >= 1
    bad = subprocess.run([sys.executable, "-m", "gate", "search-gaps", "--days", "0"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


# --------------------------------------------------------------------------------------------
# The search box


def test_pages_point_materials_search_box_at_the_gate(built_project):
    root, manifest = built_project
    for edition in manifest["editions"]:
        folder = root / "site/editions" / edition
        assert (folder / "assets/javascripts/workers/kb-search.js").is_file()
        html = (folder / "index.html").read_text(encoding="utf-8")
        assert "kb-search.js" in html and "__config" in html
        assert html.index("kb-search.js") < html.index("assets/javascripts/bundle.")
    worker = (PROJECT / "overrides/assets/javascripts/workers/kb-search.js").read_text()
    assert "/api/search" in worker and "importScripts(material)" in worker
