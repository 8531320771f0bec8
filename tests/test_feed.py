"""GET /feed.xml: the Atom feed of change notes of the visitor's own edition, by cookie or by a
personal, revocable feed key; `changes:` in front matter, checked by `gate check`."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from gate import accounts
from gate.check import check_docs
from gate.sections import SECTIONS
from tests.helpers.http import csrf_of, login
from tests.helpers.project import marker

ATOM = "{http://www.w3.org/2005/Atom}"
ORIGIN = {"Origin": "http://localhost"}


def entries(response) -> list[dict]:
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert "private" in response.headers["Cache-Control"] and "Cookie" in response.headers["Vary"]
    feed = ET.fromstring(response.data)
    assert feed.tag == f"{ATOM}feed"
    return [{"title": e.findtext(f"{ATOM}title"), "summary": e.findtext(f"{ATOM}summary"),
             "link": e.find(f"{ATOM}link").get("href"), "updated": e.findtext(f"{ATOM}updated")}
            for e in feed.findall(f"{ATOM}entry")]


def sections_in(items) -> set[str]:
    return {s for s in SECTIONS for e in items if marker(s, "body") in e["summary"]}


@pytest.mark.parametrize("email,expected", [
    (None, set()),
    ("start@client.example", set(SECTIONS)),
    ("func@client.example", {"functionality"}),
    ("pair@client.example", {"launches", "maintenance"}),
    ("ended@client.example", set()),
    ("staff@vendor.example", set(SECTIONS)),
])
def test_the_feed_holds_the_notes_of_the_visitors_own_edition(app, email, expected):
    client = app.test_client()
    if email:
        login(client, email)
    items = entries(client.get("/feed.xml"))
    assert sections_in(items) == expected
    public = [e for e in items if e["summary"] == "Обновили публичнуюзаметку."]
    assert len(public) == 1 and public[0]["link"].endswith("/") and public[0]["title"] == "Главная"
    for e in items:  # each entry: the article's title, its address, the author's note
        if e["summary"] != "Обновили публичнуюзаметку.":
            [s] = sections_in([e])
            assert e["title"] == marker(s, "title") and e["link"].endswith(f"/{marker(s, 'url')}/")


def test_newest_first(app):
    client = app.test_client()
    login(client, "start@client.example")
    dates = [e["updated"] for e in entries(client.get("/feed.xml"))]
    assert dates == sorted(dates, reverse=True) and dates


def feed_key_url(client) -> str | None:
    page = client.get("/account/").get_data(as_text=True)
    m = re.search(r'value="(http://[^"]+/feed\.xml\?key=[^"]+)"', page)
    return m.group(1).replace("&amp;", "&") if m else None


def key_action(client, action: str):
    csrf = csrf_of(client.get("/account/").get_data(as_text=True))
    return client.post("/account/feed-key", data={"csrf_token": csrf, "action": action},
                       headers=ORIGIN)


def test_a_personal_key_gives_a_feed_reader_the_persons_feed_until_revoked(app):
    person = app.test_client()
    login(person, "func@client.example")
    assert feed_key_url(person) is None
    assert key_action(person, "new").status_code == 303
    url = feed_key_url(person)
    path = url.split("127.0.0.1", 1)[-1].split("localhost", 1)[-1]
    reader = app.test_client()  # no cookie: a feed reader
    assert sections_in(entries(reader.get(path))) == {"functionality"}
    assert reader.get(path).data == person.get("/feed.xml").data

    assert key_action(person, "new").status_code == 303  # a new key: the old one stops
    assert reader.get(path).status_code == 404
    path = feed_key_url(person).split("localhost", 1)[-1]
    assert reader.get(path).status_code == 200
    assert key_action(person, "revoke").status_code == 303
    assert reader.get(path).status_code == 404 and feed_key_url(person) is None


def test_a_key_follows_its_owners_account(app):
    person = app.test_client()
    login(person, "start@client.example")
    key_action(person, "new")
    path = feed_key_url(person).split("localhost", 1)[-1]
    reader = app.test_client()
    assert sections_in(entries(reader.get(path))) == set(SECTIONS)
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        accounts.set_org(conn, "Сеть Старт", gate.tariffs, tariff="solo-func")
    gate.identities.invalidate()
    assert sections_in(entries(reader.get(path))) == {"functionality"}
    with gate.engine.begin() as conn:
        accounts.set_disabled(conn, "start@client.example", True)
    gate.identities.invalidate()
    assert reader.get(path).status_code == 404


@pytest.mark.parametrize("key", ["", "1", "1.abc", "x" * 5000, "99.0123456789abcdef0123456789abcdef01234567",
                                 "1.0123456789abcdef0123456789abcdef01234567", "-1.", "１.２"])
def test_a_bad_key_is_404(app, key):
    r = app.test_client().get("/feed.xml", query_string={"key": key})
    assert r.status_code == 404 and b"<entry" not in r.data


def test_key_lookups_are_rate_limited(app, monkeypatch):
    from gate.views import changes as view
    monkeypatch.setattr(view, "ADDRESS_LIMIT", (3, 600))
    client = app.test_client()
    statuses = [client.get("/feed.xml?key=1.x").status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    assert int(client.get("/feed.xml?key=1.x").headers["Retry-After"]) > 0


def test_feed_key_changes_need_the_form_token(app):
    person = app.test_client()
    login(person, "func@client.example")
    assert person.post("/account/feed-key", data={"action": "new"}, headers=ORIGIN).status_code == 400
    assert feed_key_url(person) is None


CHANGES_PROBLEMS = [
    ("changes: 2026-01-01", "changes must be a list of changes"),
    ("changes:\n  - date: 2026-01-02\n    note: ''", "item 1: note is empty"),
    ("changes:\n  - date: 2026-01-02\n    note: Да.\n  - date: 2026/01/02\n    note: Нет.",
     "item 2: date must be a date YYYY-MM-DD"),
    ("changes:\n  - date: 2099-01-01\n    note: Будущее.", "is in the future"),
    ("changes:\n  - date: 2026-01-02\n    note: Да.\n    author: я", "unknown field 'author'"),
    ("changes:\n  - note: Без даты.", "needs both date: and note:"),
    ("changes:\n  - date: 2026-01-02\n    note: " + "слово " * 80, "longer than 300"),
    ("changes:\n  - 5", "item 1 must be a mapping"),
]


@pytest.mark.parametrize("block,message", CHANGES_PROBLEMS)
def test_gate_check_reports_bad_change_notes_with_file_and_line(tmp_path, block, message):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(f"---\ntitle: Т\ndescription: Д.\n{block}\n---\n\nТекст.\n\n"
                               "[Обратиться в поддержку](/support/new?from=/a/)\n")
    [problem] = check_docs(tmp_path)
    assert message in problem, problem
    line = int(problem.split(":")[1])
    wanted = 7 if "item 2" in message else 4 if block.startswith("changes: ") else 5  # item line
    assert problem.startswith("docs/a.md:") and line == wanted, problem


def test_good_change_notes_pass_the_check(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("---\ntitle: Т\ndescription: Д.\nupdated: 2026-01-03\nchanges:\n"
                               "  - date: 2026-01-03\n    note: Добавили порт агента.\n"
                               "  - date: '2026-01-02'\n    note: \"Уточнили: порядок шагов.\"\n"
                               "---\n\nТекст.\n\n[Обратиться в поддержку](/support/new?from=/a/)\n")
    assert check_docs(tmp_path) == []
