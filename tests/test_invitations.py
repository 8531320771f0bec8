"""Invitations over HTTP: the mailed link sets a password and signs the person in (as /login
does), once; every dead link (used, expired, replaced, unknown, a disabled person, an ended
contract) is the same 404 page; the secret is stored only as its hash; rate limits."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import re

import pytest
import sqlalchemy as sa

from gate import changes
from gate.db import invitations, outbox
from gate.sections import SECTIONS
from tests.helpers.http import csrf_of, login
from tests.helpers.project import marker

HTML = {"Accept": "text/html"}
NEW_PASSWORD = "a-new-long-password"


def _invite(app, email_address="new@pair.example", org="Сеть Пара", **kw) -> str:
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        changes.user_invite(conn, changes.CLI, gate.cfg, "https://kb.example.ru", email_address,
                            org=org, **kw)
        body = conn.execute(sa.select(outbox.c.body).order_by(outbox.c.id.desc())).scalar()
    msg = email.message_from_bytes(body, policy=email.policy.default)
    assert msg["To"] == email_address and "Приглашение" in msg["Subject"]
    text = msg.get_body().get_content()
    link = re.search(r"https://kb\.example\.ru(/invite/[A-Za-z0-9_-]{40,})\n", text)
    assert link, text
    assert "72 часа" in text
    return link.group(1)


def _accept(c, path, password=NEW_PASSWORD, repeat=None):
    page = c.get(path)
    assert page.status_code == 200, page.status_code
    return c.post(path, data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                              "new": password, "repeat": repeat or password})


def test_the_link_sets_a_password_and_signs_in_with_exactly_the_tariffs_sections(app):
    path = _invite(app)
    c = app.test_client()
    form = c.get(path).get_data(as_text=True)
    assert "new@pair.example" in form and "Сеть Пара" in form and 'name="csrf_token"' in form
    r = _accept(c, path)
    assert r.status_code == 303 and r.headers["Location"] == "/"
    cookie = r.headers.get("Set-Cookie", "")
    assert "kb_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    for section in SECTIONS:
        page = c.get(f"/{marker(section, 'url')}/", headers=HTML)
        assert page.status_code == (200 if section in ("launches", "maintenance") else 403), section
    # the password works on the login form too, and the link is used up
    assert login(app.test_client(), "new@pair.example", NEW_PASSWORD).status_code == 303
    assert app.test_client().get(path).status_code == 404
    rows = [r for r in _audit(app) if r["target"] == "new@pair.example"]
    assert [r["action"] for r in rows] == ["user.invite", "invite.accept", "password.login"]
    assert rows[1]["actor"] == "new@pair.example" and rows[1]["address"] == "127.0.0.1"


def _audit(app):
    from gate import audit
    gate = app.extensions["gate"]
    with gate.engine.connect() as conn:
        rows, _ = audit.query(conn)
    return [audit.as_dict(r, gate.cfg.timezone) for r in rows]


def test_only_the_hash_of_the_secret_is_stored(app):
    path = _invite(app)
    secret = path.rsplit("/", 1)[1]
    with app.extensions["gate"].engine.connect() as conn:
        ids = conn.execute(sa.select(invitations.c.id)).scalars().all()
    assert ids == [hashlib.sha256(secret.encode()).hexdigest()]


def _dead(app, path):
    r = app.test_client().get(path, headers=HTML)
    assert r.status_code == 404, r.status_code
    html = r.get_data(as_text=True)
    assert "Ссылка недействительна" in html and 'name="new"' not in html
    r = app.test_client().post(path, data={"new": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert r.status_code in (400, 404)  # no token (400) or no link: never a password set


@pytest.mark.parametrize("how", ["used", "expired", "replaced", "unknown", "disabled",
                                 "contract ended", "password set", "forgotten", "tampered",
                                 "huge"])
def test_dead_links_give_one_404_page(app, how):
    gate = app.extensions["gate"]
    path = _invite(app)
    if how == "used":
        assert _accept(app.test_client(), path).status_code == 303
    elif how == "expired":
        with gate.engine.begin() as conn:
            conn.execute(invitations.update().values(
                expires_at=dt.datetime(2000, 1, 1)))
    elif how == "replaced":
        _invite(app)
    elif how == "unknown":
        path = "/invite/" + "A" * 43
    elif how in ("disabled", "password set", "forgotten"):
        with gate.engine.begin() as conn:
            if how == "disabled":
                changes.user_disable(conn, changes.CLI, "new@pair.example", True)
                changes.user_disable(conn, changes.CLI, "new@pair.example", False)
            elif how == "password set":
                changes.user_password(conn, changes.CLI, "new@pair.example", NEW_PASSWORD)
            else:
                changes.user_forget(conn, changes.CLI, "new@pair.example")
    elif how == "contract ended":
        with gate.engine.begin() as conn:
            changes.org_end(conn, changes.CLI, "Сеть Пара")
    elif how == "tampered":
        path = path[:-1] + ("A" if path[-1] != "A" else "B")
    elif how == "huge":
        path = "/invite/" + "x" * 5000
    _dead(app, path)


def test_mismatched_or_short_passwords_keep_the_link(app):
    path = _invite(app)
    c = app.test_client()
    r = _accept(c, path, repeat="something-else-1")
    assert r.status_code == 422 and "не совпадают" in r.get_data(as_text=True)
    r = _accept(c, path, password="short")
    assert r.status_code == 422 and "от 10 до 256 символов" in r.get_data(as_text=True)
    assert "kb_session=" not in r.headers.get("Set-Cookie", "")
    assert _accept(c, path).status_code == 303


def test_a_new_invitation_refreshes_a_pending_person_only(app):
    first = _invite(app)
    second = _invite(app, admin=True)
    _dead(app, first)
    assert _accept(app.test_client(), second).status_code == 303
    gate = app.extensions["gate"]
    with pytest.raises(Exception, match="already has a password"):
        with gate.engine.begin() as conn:
            changes.user_invite(conn, changes.CLI, gate.cfg, "https://kb.example.ru",
                                "new@pair.example", org="Сеть Пара")
    with pytest.raises(Exception, match="another organisation"):
        with gate.engine.begin() as conn:
            changes.user_invite(conn, changes.CLI, gate.cfg, "https://kb.example.ru",
                                "other@pair.example", org="Сеть Пара")
            changes.user_invite(conn, changes.CLI, gate.cfg, "https://kb.example.ru",
                                "other@pair.example", org="Сеть Старт")


def test_staff_invitation_opens_the_console(app):
    path = _invite(app, "new@vendor.example", org=None, staff=True)
    c = app.test_client()
    assert _accept(c, path).status_code == 303
    assert c.get("/staff/", headers=HTML).status_code == 200


def test_invitation_links_are_rate_limited_per_address_and_per_link(app):
    c = app.test_client()
    path = _invite(app)
    statuses = [c.get(path).status_code for _ in range(11)]
    assert statuses[:10] == [200] * 10 and statuses[10] == 429
    r = c.get(path)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    other = app.test_client()  # the same address: guessing other links is limited too
    guesses = [other.get(f"/invite/guess{i:040d}").status_code for i in range(25)]
    assert guesses[:19] == [404] * 19 and 429 in guesses
    assert app.test_client().get(path, environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 429
    fresh = _invite(app, "fresh@pair.example")
    assert app.test_client().get(fresh, environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200


def test_refused_links_are_audited_without_flooding(app):
    c = app.test_client()
    for i in range(8):
        c.get(f"/invite/guess{i:040d}", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    gate = app.extensions["gate"]
    gate.refusals.flush()
    rows = [r for r in _audit(app) if r["action"] == "invite.refused"]
    assert len(rows) == 1 and rows[0]["address"] == "10.9.9.9" and rows[0]["details"] == {"count": 1}


def test_the_invitation_form_needs_csrf_and_our_origin(app):
    path = _invite(app)
    c = app.test_client()
    page = c.get(path).get_data(as_text=True)
    data = {"new": NEW_PASSWORD, "repeat": NEW_PASSWORD}
    assert c.post(path, data=data).status_code == 400
    r = c.post(path, data={**data, "csrf_token": csrf_of(page)},
               headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert _accept(c, path).status_code == 303
