"""Search: the client questions against the real articles, Russian morphology, typos, tariffs.

The evaluation set (tests/data/questions-*.yml: a client's question and the article it should
find) runs through GET /api/search against every edition of the real project, built into a
temporary copy. The rest uses small corpora and the marker project of conftest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from gate import search
from gate.db import search_misses
from gate.sections import SECTIONS
from tests.conftest import PASSWORD, PROJECT, login, make_config, marker

QUESTIONS = sorted((PROJECT / "tests/data").glob("questions-*.yml"))
TOP3_TARGET = 0.90


def questions():
    for path in QUESTIONS:
        name = path.stem.removeprefix("questions-")
        for item in yaml.safe_load(path.read_text(encoding="utf-8")):
            yield name, item["q"], item["expect"]


# --------------------------------------------------------------------------------------------
# The real articles


@pytest.fixture(scope="module")
def real_project(tmp_path_factory):
    """A copy of the project's docs, configuration and tariffs with every edition built."""
    from gate.build import build_all

    root = tmp_path_factory.mktemp("real")
    shutil.copytree(PROJECT / "docs", root / "docs")
    shutil.copy(PROJECT / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copy(PROJECT / "tariffs.yml", root / "tariffs.yml")
    os.symlink(PROJECT / "overrides", root / "overrides")
    os.symlink(PROJECT / "gate", root / "gate")
    manifest = build_all(root, root / "tariffs.yml", log=lambda *_: None)
    return root, manifest


@pytest.fixture(scope="module")
def real_app(real_project, tmp_path_factory):
    from gate import accounts
    from gate.factory import create_app

    root, _ = real_project
    app = create_app(make_config(root, tmp_path_factory.mktemp("instance")))
    app.config.update(TESTING=True, SEARCH_RATE_LIMIT=(100_000, 1))
    with app.extensions["gate"].engine.begin() as conn:
        accounts.add_user(conn, "staff@vendor.example", PASSWORD, staff=True)
        accounts.add_org(conn, "Сеть Бывшая", "start", app.extensions["gate"].tariffs)
        accounts.end_org(conn, "Сеть Бывшая")  # logged in, no section: edition `none`
        accounts.add_user(conn, "ended@client.example", PASSWORD, org="Сеть Бывшая")
    return app


def rank_of(results, expected):
    locations = [r["location"] for r in results]
    return locations.index(expected) + 1 if expected in locations else None


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
        own = {"/" + d["location"] for d in json.loads(
            (root / "site/editions" / edition / "search/search_index.json").read_text())["docs"]
            if "#" not in d["location"]}
        totals = {}
        for name, q, expected in questions():
            r = client.get("/api/search", query_string={"q": q})
            assert r.status_code == 200, (q, r.status_code)
            results = r.get_json()["results"]
            assert len(results) <= search.MAX_RESULTS
            assert {x["location"] for x in results} <= own, f"{q!r}: a result outside {edition}"
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


def test_every_edition_index_holds_only_its_own_pages(real_project):
    root, manifest = real_project
    for edition in manifest["editions"]:
        folder = root / "site/editions" / edition
        material = {"/" + d["location"].partition("#")[0]
                    for d in json.loads((folder / search.MATERIAL_INDEX).read_text())["docs"]}
        index = json.loads((folder / search.INDEX_FILE).read_text())
        assert {d["location"] for d in index["docs"]} == material
        for d in index["docs"]:
            section = d["location"].strip("/").split("/")[0]
            assert section not in SECTIONS or section in manifest["editions"][edition]


def test_morphology_on_the_real_articles(real_project):
    root, _ = real_project
    index = search.SearchIndex.load(root / "site/editions/all" / search.INDEX_FILE)
    results = index.search("грузятся цены")[:3]
    assert any("загрузк" in r["title"].lower() and "цен" in r["title"].lower() for r in results), results
    assert index.search("сервак упал")[0]["location"].endswith("server-failure/")
    assert index.search("раскансервация кассы")[0]["location"] == "/maintenance/register-conservation/"


# --------------------------------------------------------------------------------------------
# The engine on a small corpus of its own


def small_edition(tmp_path: Path, pages: dict) -> search.SearchIndex:
    """pages: location -> (title, [(heading, html text)], front matter dict)."""
    docs, entries = tmp_path / "docs", []
    for location, (title, sections, meta) in pages.items():
        entries.append({"location": location, "title": title, "text": ""})
        for i, (heading, text) in enumerate(sections):
            entries.append({"location": f"{location}#s{i}", "title": heading, "text": text})
        source = docs / ((location.rstrip("/") or "index") + ".md")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("---\n" + yaml.safe_dump({"title": title, **meta}, allow_unicode=True)
                          + "---\n\nТекст.\n", encoding="utf-8")
    edition = tmp_path / "edition"
    (edition / "search").mkdir(parents=True)
    (edition / search.MATERIAL_INDEX).write_text(json.dumps({"config": {}, "docs": entries}))
    path = search.write_index(edition, docs, "test")
    return search.SearchIndex.load(path)


PAGES = {
    "maintenance/prices/": ("Остановилась загрузка цен", [
        ("Симптомы", "<p>Новые цены не доходят до касс магазина.</p>"),
        ("Что проверить", "<p>Веб-сервис <code>SOAP</code> на порту 8090, пакет в BASE64 &amp; XML.</p>")],
        {"description": "Что делать, если цены перестали загружаться.", "keywords": ["импорт цен"]}),
    "maintenance/conservation/": ("Консервация кассы", [
        ("Расконсервация", "<p>Расконсервация возвращает кассу на линию. Ёлка и ёж.</p>")],
        {"description": "Вывести кассу из работы.", "keywords": ["касса в ремонте"]}),
    "launches/store/": ("Запуск магазина", [
        ("Порядок", "<p>Сначала Set10 Centrum, затем сервер магазина, затем кассы.</p>"),
        ("Опасно", "<p>Не вставляйте &lt;script&gt;alert(1)&lt;/script&gt; в поля.</p>")],
        {"description": "Чек-лист запуска.", "keywords": ["открытие магазина", "сервак"]}),
    "claim-desk/logs/": ("Логи кассы", [("Где лежат", "<p>Каталог crystal-cash/logs.</p>")],
                         {"description": "Что приложить.", "keywords": ["лог-файлы"]}),
}


@pytest.fixture
def small(tmp_path):
    return small_edition(tmp_path, PAGES)


def top(index, query):
    results = index.search(query)
    return results[0]["location"] if results else None


@pytest.mark.parametrize("query, expected", [
    ("грузятся цены", "/maintenance/prices/"),          # грузиться ~ загрузка, цены ~ цен
    ("не загружаются цены на кассы", "/maintenance/prices/"),
    ("цена", "/maintenance/prices/"),
    ("расконсервировать", "/maintenance/conservation/"),  # a word of the same root
    ("ёлка", "/maintenance/conservation/"),
    ("елка", "/maintenance/conservation/"),             # ё and е are one letter
    ("ЁЖ", "/maintenance/conservation/"),
    ("раскансервация", "/maintenance/conservation/"),   # a typo
    ("касу", "/maintenance/conservation/"),             # a typo in a short word
    ("загрузкаа цен", "/maintenance/prices/"),
    ("soap", "/maintenance/prices/"),                   # Latin terms, any case
    ("Base64", "/maintenance/prices/"),
    ("xml 8090", "/maintenance/prices/"),
    ("set10", "/launches/store/"),
    ("сентрум", "/launches/store/"),                    # Cyrillic spelling of Centrum
    ("импорт", "/maintenance/prices/"),                 # front matter keywords
    ("касса в ремонте", "/maintenance/conservation/"),
    ("сервак", "/launches/store/"),
    ("чеклист", "/launches/store/"),                     # чек-лист written as one word
    ("запуск маг", "/launches/store/"),                  # the last word still being typed
    ("crystal-cash", "/claim-desk/logs/"),
])
def test_finds_the_article(small, query, expected):
    assert top(small, query) == expected


@pytest.mark.parametrize("query", ["кофемашина", "!!!", "в на и", "zzzzzz", "qwertyuiopasdf",
                                   "ло", "a" * 200, "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\u200b\u200b"])
def test_finds_nothing_for_words_no_article_has(small, query):
    assert small.search(query) == []


def test_result_has_title_location_marked_escaped_snippet_and_score(small):
    [first, *_] = small.search("цены не доходят")
    assert first["title"] == "Остановилась загрузка цен"
    assert first["location"] == "/maintenance/prices/"
    assert "<mark>цены</mark>" in first["snippet"] and "<mark>доходят</mark>" in first["snippet"]
    assert first["title_html"] == "Остановилась загрузка <mark>цен</mark>"
    assert isinstance(first["score"], float) and first["score"] > 0
    assert "цены" in first["matched"] and first["missing"] == []
    script = small.search("script alert поля")[0]
    assert "<script" not in script["snippet"].replace("<mark>", "").replace("</mark>", "")
    assert "&lt;<mark>script</mark>&gt;<mark>alert</mark>(1)&lt;/" in script["snippet"]


def test_snippet_is_short(small):
    for r in small.search("касса"):
        assert len(r["snippet"]) < search.SNIPPET_CHARS * 3


def test_typo_tolerance_is_bounded():
    assert search.max_edits("кас") == 0
    assert search.max_edits("касса") == 1
    assert search.max_edits("расконсервация") == 2
    assert search.edit_distance("касса", "кассы", 1) == 1
    assert search.edit_distance("пичатает", "печатает", 2) == 1
    assert search.edit_distance("ксаса", "касса", 2) == 1  # neighbours swapped: one edit
    assert search.edit_distance("сервер", "кофемашина", 2) > 2


def test_analyzer_is_created_once_and_lemmas_are_cached():
    assert search.analyzer() is search.analyzer()
    search.lemma("цены")
    before = search.lemma.cache_info().hits
    assert search.lemma("цены") == "цена"
    assert search.lemma.cache_info().hits == before + 1


def test_lemmas_fold_yo_keep_latin_and_drop_function_words():
    assert search.terms_of("Ещё ёлки, Set10 и SOAP в XML; не грузятся") == [
        "елка", "set10", "soap", "xml", "грузиться"]


# --------------------------------------------------------------------------------------------
# The endpoint, on the marker project: every identity sees only its own edition

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
                assert set(res["missing"]) <= {w for _, _, w in search.tokens(q)}
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
    from tests.test_support import submit

    login(client, "start@client.example")
    ask(client, "Заголовокмаркерlaunches")
    ask(client, "касса не печатает чек")
    assert submit(client).status_code == 303
    kinds = [m for m in misses(app) if m[2] == "then_request"]
    assert kinds == [("заголовокмаркерlaunches", "all", "then_request"),
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
