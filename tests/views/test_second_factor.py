"""The second factor over HTTP (gate/views/second_factor.py) with real TOTP codes: enrolment
in /account/, the login's code step, a used code refused, recovery codes once, wrong codes
throttled, removal by the person, and GATE_STAFF_2FA."""

from __future__ import annotations

import email
import email.policy
import re

import sqlalchemy as sa

from gate import changes
from gate.db import audit as audit_t
from gate.db import outbox
from gate.factory import create_app
from tests.helpers import totp as t
from tests.helpers.http import HTML, csrf_of, login
from tests.helpers.project import copy_database, make_config

PERSON = "start@client.example"
STAFF = "staff@vendor.example"
BAD = "Неверный или уже использованный код"


def _actions(app, action):
    with app.extensions["gate"].engine.connect() as conn:
        return conn.execute(sa.select(audit_t).where(audit_t.c.action == action)).all()


def _logged_in(client) -> bool:
    return client.get("/account/", headers=HTML).status_code == 200


def _enrolled(app):
    """PERSON with a factor (enrolled in their profile); (secret, recovery codes)."""
    c = app.test_client()
    assert login(c, PERSON).status_code == 303
    secret, resp = t.enrol(c)
    return secret, t.recovery_codes(resp.get_data(as_text=True))


def test_enrolment_shows_a_local_qr_code_and_recovery_codes_once(app, client):
    assert login(client, PERSON).status_code == 303
    assert "Подключить второй фактор" in client.get("/account/").get_data(as_text=True)
    page = client.get("/account/totp").get_data(as_text=True)
    assert 'src="data:image/svg+xml;base64,' in page and "otpauth" not in page
    secret = t.secret_of(page)
    wrong = client.post("/account/totp", data={"csrf_token": csrf_of(page), "secret": secret,
                                               "code": t.wrong_code(secret)})
    assert wrong.status_code == 422 and BAD in wrong.get_data(as_text=True)
    assert not _actions(app, "totp.enrol")
    ok = client.post("/account/totp", data={"csrf_token": csrf_of(page), "secret": secret,
                                            "code": t.code(secret)})
    codes = t.recovery_codes(ok.get_data(as_text=True))
    assert ok.status_code == 200 and len(codes) == 10
    [row] = _actions(app, "totp.enrol")
    assert row.actor == PERSON and row.target == PERSON
    again = client.get("/account/totp")  # never shown again
    assert again.status_code == 303 and again.headers["Location"] == "/account/"
    profile = client.get("/account/").get_data(as_text=True)
    assert "Резервных кодов осталось: 10" in profile and codes[0] not in profile


def test_login_asks_for_the_code_and_a_used_code_is_refused(app):
    secret, _ = _enrolled(app)
    c = app.test_client()
    r = login(c, PERSON, next_path="/support/")
    assert r.status_code == 303 and r.headers["Location"] == "/login/code?next=/support/"
    assert "kb_session=" not in r.headers.get("Set-Cookie", "")
    assert not _logged_in(c)  # nothing but the code step until the code is given
    later = t.code(secret, 1)  # the code of enrolment (now) is used already
    ok = t.send_code(c, later, "/support/")
    assert ok.status_code == 303 and ok.headers["Location"] == "/support/"
    assert _logged_in(c)
    replay = app.test_client()
    assert login(replay, PERSON).status_code == 303
    refused = t.send_code(replay, later)
    assert refused.status_code == 401 and BAD in refused.get_data(as_text=True)
    assert not _logged_in(replay)


def test_code_step_needs_the_password_first(app, client):
    secret, _ = _enrolled(app)
    page = client.get("/login/code")
    assert "Войдите ещё раз" in page.get_data(as_text=True)
    token = csrf_of(client.get("/login").get_data(as_text=True))
    for state in (None, "code.1.99999999999.forged"):
        if state:
            client.set_cookie("kb_2fa", state, path="/login/")
        r = client.post("/login/code", data={"csrf_token": token, "code": t.code(secret, 1)})
        assert r.status_code == 401 and "Войдите ещё раз" in r.get_data(as_text=True)
        assert not _logged_in(client)


def test_a_recovery_code_works_once(app):
    _, codes = _enrolled(app)
    c = app.test_client()
    login(c, PERSON)
    r = t.send_code(c, codes[0])
    assert r.status_code == 200 and "резервному коду" in r.get_data(as_text=True)
    assert _logged_in(c)
    other = app.test_client()
    login(other, PERSON)
    assert t.send_code(other, codes[0]).status_code == 401
    assert t.send_code(other, codes[1]).status_code == 200


def test_wrong_codes_are_throttled_like_passwords(app):
    secret, _ = _enrolled(app)
    c = app.test_client()
    login(c, PERSON)
    answers = [t.send_code(c, t.wrong_code(secret)) for _ in range(8)]
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 401 and 429 in statuses, statuses
    blocked = answers[statuses.index(429)]
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Слишком много неверных кодов" in blocked.get_data(as_text=True)
    assert t.send_code(c, t.code(secret, 1)).status_code == 429  # even a right one, for now


def test_removing_the_factor_takes_a_current_code(app):
    secret, codes = _enrolled(app)
    c = app.test_client()
    login(c, PERSON)
    assert t.send_code(c, t.code(secret, 1)).status_code == 303
    page = c.get("/account/").get_data(as_text=True)
    assert "Отключить второй фактор" in page
    wrong = c.post("/account/totp/remove", data={"csrf_token": csrf_of(page),
                                                 "code": t.wrong_code(secret)})
    assert wrong.status_code == 422 and BAD in wrong.get_data(as_text=True)
    assert not _actions(app, "totp.reset")
    # the codes of now and the next step are used (enrolment, login): a recovery code does too
    ok = c.post("/account/totp/remove", data={"csrf_token": csrf_of(page), "code": codes[0]})
    assert ok.status_code == 200 and "Второй фактор отключён" in ok.get_data(as_text=True)
    [row] = _actions(app, "totp.reset")
    assert row.actor == PERSON and '"via": "profile"' in row.details
    assert login(app.test_client(), PERSON).headers["Location"] == "/"


def _staff_2fa_app(built_project, people_database, tmp_path):
    root, _ = built_project
    instance = tmp_path / "instance-2fa"
    instance.mkdir()
    copy_database(people_database, instance / "gate.sqlite3")
    application = create_app(make_config(root, instance, staff_2fa=True))
    application.config["TESTING"] = True
    return application


def test_staff_2fa_takes_staff_to_enrolment_before_anything_else(built_project,
                                                                  people_database, tmp_path):
    app = _staff_2fa_app(built_project, people_database, tmp_path)
    c = app.test_client()
    r = login(c, STAFF, next_path="/staff/")
    assert r.status_code == 303 and r.headers["Location"] == "/login/enrol?next=/staff/"
    assert c.get("/staff/", headers=HTML).status_code == 303  # not signed in
    assert not _logged_in(c)
    page = c.get("/login/enrol?next=/staff/").get_data(as_text=True)
    assert "Сотрудникам поддержки для входа нужен второй фактор" in page
    secret, done = t.enrol(c, "/login/enrol?next=/staff/")
    assert done.status_code == 200 and len(t.recovery_codes(done.get_data(as_text=True))) == 10
    assert c.get("/staff/", headers=HTML).status_code == 200
    assert [r.actor for r in _actions(app, "totp.enrol")] == [STAFF]
    # from now on the code is asked for, as for everyone with a factor
    again = app.test_client()
    assert login(again, STAFF).headers["Location"] == "/login/code"
    assert t.send_code(again, t.code(secret, 1)).status_code == 303
    # people who are not staff are not asked
    client = app.test_client()
    assert login(client, PERSON).headers["Location"] == "/"


def test_staff_2fa_applies_to_a_staff_invitation_too(built_project, people_database, tmp_path):
    app = _staff_2fa_app(built_project, people_database, tmp_path)
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        changes.user_invite(conn, changes.CLI, gate.cfg, "https://kb.example.ru",
                            "new@vendor.example", staff=True)
        body = conn.execute(sa.select(outbox.c.body).order_by(outbox.c.id.desc())).scalar()
    text = email.message_from_bytes(body, policy=email.policy.default).get_body().get_content()
    path = re.search(r"https://kb\.example\.ru(/invite/[A-Za-z0-9_-]{40,})", text).group(1)
    c = app.test_client()
    page = c.get(path).get_data(as_text=True)
    r = c.post(path, data={"csrf_token": csrf_of(page), "new": "a-new-long-password",
                           "repeat": "a-new-long-password"})
    assert r.status_code == 303 and r.headers["Location"] == "/login/enrol"
    assert c.get("/staff/", headers=HTML).status_code == 303  # no session yet
    _, done = t.enrol(c, "/login/enrol")
    assert done.status_code == 200 and c.get("/staff/", headers=HTML).status_code == 200


def test_a_staff_session_from_before_staff_2fa_is_sent_to_enrol(app):
    c = app.test_client()
    assert login(c, STAFF).status_code == 303
    assert c.get("/staff/", headers=HTML).status_code == 200
    app.extensions["gate"].cfg.staff_2fa = True  # as after a restart with GATE_STAFF_2FA=1
    r = c.get("/staff/", headers=HTML)
    assert r.status_code == 303 and r.headers["Location"] == "/account/totp"
    _, done = t.enrol(c)
    assert done.status_code == 200 and c.get("/staff/", headers=HTML).status_code == 200
