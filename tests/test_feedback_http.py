"""POST /api/feedback over HTTP (Flask test client): the contract's values and statuses, one
vote per voter and page, visibility, Origin, rate limits, the "no" that becomes a support
request, the authors' report and `gate feedback`."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from gate.db import feedback, feedback_requests, support_requests
from gate.views import feedback as feedback_view
from tests.helpers.http import csrf_of, login
from tests.helpers.project import marker

ORIGIN = {"Origin": "http://localhost"}
FUNC_PAGE = f"/{marker('functionality', 'url')}/"
LAUNCH_PAGE = f"/{marker('launches', 'url')}/"


def vote(client, origin=ORIGIN, **fields):
    return client.post("/api/feedback", data=fields, headers=origin)


def rows(app):
    with app.extensions["gate"].engine.connect() as conn:
        return conn.execute(sa.select(feedback).order_by(feedback.c.id)).all()


def test_a_vote_is_stored_and_the_last_one_counts(app, client):
    login(client, "start@client.example")
    assert vote(client, page=FUNC_PAGE, vote="yes").status_code == 204
    r = vote(client, page=FUNC_PAGE, vote="no", reason="outdated", comment="Версия 10.2 уже другая")
    assert r.status_code == 204 and r.data == b""
    [row] = rows(app)
    assert (row.page, row.vote, row.reason, row.comment) == (
        FUNC_PAGE, "no", "outdated", "Версия 10.2 уже другая")
    assert row.voter == f"u{row.user_id}" and row.edition == "all"


def test_json_is_accepted_too(app, client):
    login(client, "start@client.example")
    r = client.post("/api/feedback", headers=ORIGIN, json={
        "page": FUNC_PAGE, "vote": "no", "reason": "unclear", "comment": "Что такое «ti»?"})
    assert r.status_code == 204
    assert rows(app)[0].comment == "Что такое «ti»?"


def test_a_page_the_visitor_may_not_see_answers_like_a_missing_one(app, client):
    login(client, "func@client.example")  # tariff solo-func: functionality only
    locked = vote(client, page=LAUNCH_PAGE, vote="no")
    missing = vote(client, page="/functionality/no-such-page/", vote="no")
    assert locked.status_code == missing.status_code == 404
    assert locked.data == missing.data
    assert vote(client, page=FUNC_PAGE, vote="yes").status_code == 204
    anonymous = vote(client.application.test_client(), page=FUNC_PAGE, vote="yes")
    assert anonymous.status_code == 404 and anonymous.data == missing.data
    for page in ("/functionality/../launches/marker-launches-page/", LAUNCH_PAGE.upper(),
                 "/assets/kb.css", "/404.html", "/search/search_index.json",
                 FUNC_PAGE.rstrip("/"), "/functionality/%2e%2e/launches/"):
        assert vote(client, page=page, vote="no").status_code == 404, page
    assert len(rows(app)) == 1


def test_anonymous_visitors_vote_on_public_pages_as_their_browser(app, client):
    r = vote(client, page="/", vote="yes")
    assert r.status_code == 204
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"{feedback_view.VOTER_COOKIE}=") and "HttpOnly" in cookie
    assert vote(client, page="/", vote="no", reason="other").status_code == 204  # same browser
    [row] = rows(app)
    assert row.vote == "no" and row.user_id is None and row.voter.startswith("b")
    other_browser = client.application.test_client()
    assert vote(other_browser, page="/", vote="yes").status_code == 204
    assert len(rows(app)) == 2


BAD = [
    ({"vote": "yes"}, "page"),
    ({"page": FUNC_PAGE}, "vote"),
    ({"page": FUNC_PAGE, "vote": "maybe"}, "vote"),
    ({"page": FUNC_PAGE, "vote": "no", "reason": "boring"}, "reason"),
    ({"page": FUNC_PAGE, "vote": "yes", "reason": "outdated"}, "reason"),
    ({"page": FUNC_PAGE, "vote": "no", "comment": "я" * 2001}, "2000"),
    ({"page": FUNC_PAGE, "vote": "no", "comment": "стоп\x00"}, "недопустимые"),
    ({"page": FUNC_PAGE, "vote": "no", "comment": "\x1b[31m"}, "недопустимые"),
    ({"page": "functionality/x/", "vote": "no"}, "page"),
    ({"page": "/" + "a" * 600 + "/", "vote": "no"}, "page"),
]


@pytest.mark.parametrize("fields,word", BAD)
def test_bad_input_is_400_with_a_message(app, client, fields, word):
    login(client, "start@client.example")
    for r in (vote(client, **fields), client.post("/api/feedback", headers=ORIGIN, json=fields)):
        assert r.status_code == 400, fields
        assert word in r.get_json()["error"]
    assert rows(app) == []


@pytest.mark.parametrize("body,content_type", [
    (b"page=%2Ffunctionality%2F&vote=no&comment=%FF%FE", "application/x-www-form-urlencoded"),
    (b'{"page": "/functionality/", "vote": "no", "comment": "\xff"}', "application/json"),
    (b'{"page": "/functionality/", "vote": "no", "comment": "\\ud800"}', "application/json"),
    (b'["/functionality/", "no"]', "application/json"),
    (b'{"page": "/functionality/", "vote": "no", "comment": 5}', "application/json"),
    (b"page=%2Ffunctionality%2F&vote=no&vote=yes", "application/x-www-form-urlencoded"),
    (b"page=/functionality/&vote=no", "text/plain"),
    (b"{not json", "application/json"),
    (b"page=%2Ffunctionality%2F&vote=no&comment=" + b"x" * 40000, "application/x-www-form-urlencoded"),
])
def test_bad_encoding_and_shapes_are_400(app, client, body, content_type):
    login(client, "start@client.example")
    r = client.post("/api/feedback", data=body, content_type=content_type, headers=ORIGIN)
    assert r.status_code == 400 and r.get_json()["error"]
    assert rows(app) == []


def test_a_comment_of_2000_characters_is_taken(app, client):
    login(client, "start@client.example")
    assert vote(client, page=FUNC_PAGE, vote="no", comment="ё" * 2000).status_code == 204


def test_a_foreign_origin_is_refused(app, client):
    login(client, "start@client.example")
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Referer": "https://evil.example/page"}):
        assert vote(client, origin=headers, page=FUNC_PAGE, vote="yes").status_code == 403
    assert rows(app) == []


def test_votes_are_rate_limited_per_person_and_per_address(app, client, monkeypatch):
    monkeypatch.setattr(feedback_view, "VOTER_LIMIT", (3, 600))
    monkeypatch.setattr(feedback_view, "ADDRESS_LIMIT", (5, 600))
    login(client, "start@client.example")
    for _ in range(3):
        assert vote(client, page=FUNC_PAGE, vote="yes").status_code == 204
    r = vote(client, page=FUNC_PAGE, vote="yes")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    other = app.test_client()  # another person from the same address: the address's limit
    login(other, "func@client.example")
    assert [vote(other, page=FUNC_PAGE, vote="no").status_code for _ in range(3)] == [204, 204, 429]


def test_a_no_becomes_a_support_request_prefilled_with_the_comment(app, client):
    login(client, "start@client.example")
    assert vote(client, page=FUNC_PAGE, vote="no", reason="no-answer",
                comment="Нет порта для SetKit").status_code == 204
    page = client.get(f"/support/new?from={FUNC_PAGE}&via=feedback").get_data(as_text=True)
    assert 'name="via" value="feedback"' in page
    assert "Статья не помогла: нет ответа на мой вопрос." in page and "Нет порта для SetKit" in page
    from tests.helpers.support import FORM
    data = {**FORM, "csrf_token": csrf_of(page), "from": FUNC_PAGE, "via": "feedback",
            "description": "Статья не помогла. Нет порта для SetKit, подскажите."}
    r = client.post("/support/new", data=data, content_type="multipart/form-data")
    assert r.status_code == 303
    number = int(r.headers["Location"].strip("/").split("/")[-1])
    with app.extensions["gate"].engine.connect() as conn:
        linked = conn.execute(sa.select(feedback_requests)).one()
        stored = conn.execute(sa.select(support_requests.c.from_page)).scalar_one()
    assert (linked.request_id, linked.page, stored) == (number, FUNC_PAGE, FUNC_PAGE)
    assert linked.feedback_id == rows(app)[0].id
    # a request filed straight from the article's own link is not counted as from feedback
    page = client.get(f"/support/new?from={FUNC_PAGE}").get_data(as_text=True)
    assert 'name="via"' not in page and "Нет порта" not in page


def test_the_report_per_article_for_staff_and_the_cli(app, client, capsys, monkeypatch):
    login(client, "start@client.example")
    vote(client, page=FUNC_PAGE, vote="no", reason="error", comment="Опечатка в порту")
    other = app.test_client()
    login(other, "func@client.example")
    vote(other, page=FUNC_PAGE, vote="yes")
    staff = app.test_client()
    login(staff, "staff@vendor.example")
    page = staff.get("/api/feedback/report?days=7").get_data(as_text=True)
    assert marker("functionality", "title") in page and "Опечатка в порту" in page
    assert "Ошибка в статье: 1" in page
    assert client.get("/api/feedback/report").status_code == 403
    assert app.test_client().get("/api/feedback/report").status_code in (303, 401)
    console = staff.get("/staff/feedback/?days=7", headers={"Accept": "text/html"})
    assert console.status_code == 200
    text = console.get_data(as_text=True)
    assert "Опечатка в порту" in text and 'href="/staff/feedback/"' in text  # the console's menu
    assert client.get("/staff/feedback/", headers={"Accept": "text/html"}).status_code == 403

    from gate.cli import main
    gate = app.extensions["gate"]
    monkeypatch.setenv("GATE_ROOT", str(gate.cfg.root))
    monkeypatch.setenv("GATE_INSTANCE", str(gate.cfg.instance))
    monkeypatch.setenv("GATE_TARIFFS", str(gate.cfg.tariffs_path))
    capsys.readouterr()
    assert main(["feedback", "--json", "--days", "7"]) == 0
    [article] = json.loads(capsys.readouterr().out)
    assert article["page"] == FUNC_PAGE and article["title"] == marker("functionality", "title")
    assert (article["yes"], article["no"], article["share_no"]) == (1, 1, 0.5)
    assert article["reasons"] == {"error": 1} and article["requests"] == 0
    assert [c["text"] for c in article["comments"]] == ["Опечатка в порту"]
    assert main(["feedback"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("no%\tyes\tno") and "Опечатка в порту" in out


def test_erasing_a_person_removes_their_comments_feed_keys_and_digest_subscription(app, client):
    """CONTRACT, `gate user forget`: feedback comments go; the votes stay, counted."""
    import datetime as dt

    from gate import change_notes, changes
    from gate.db import digest_subscriptions, feed_keys
    gate = app.extensions["gate"]
    login(client, "start@client.example")
    assert vote(client, page=FUNC_PAGE, vote="no", comment="Мой телефон 8-900-000-00-00").status_code == 204
    [row] = rows(app)
    with gate.engine.begin() as conn:
        change_notes.new_key(conn, change_notes.feed_secret(gate.key), row.user_id)
        conn.execute(digest_subscriptions.insert().values(user_id=row.user_id,
                                                          created_at=dt.datetime(2026, 1, 1)))
        changes.user_forget(conn, changes.CLI, "start@client.example")
    [after] = rows(app)
    assert (after.vote, after.comment) == ("no", None)
    with gate.engine.connect() as conn:
        for table in (feed_keys, digest_subscriptions):
            assert conn.execute(sa.select(table).where(table.c.user_id == row.user_id)).all() == []
