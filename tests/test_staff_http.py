"""The staff console over HTTP (Flask test client): who gets what under /staff/ (a truth table of
role x route x method), every console action with the audit row it leaves, bad input and
refusals (4xx in Russian, nothing changed), CSRF and Origin, rate limits."""

from __future__ import annotations

import re

import pyotp
import pytest
import sqlalchemy as sa

from gate import accounts, audit, changes, totp
from gate.db import audit as audit_t
from gate.db import orgs, users
from tests.helpers.http import csrf_of, login
from tests.helpers.project import PASSWORD

HTML = {"Accept": "text/html,application/xhtml+xml"}
SCRIPT = {"Accept": "application/json"}
STAFF = "staff@vendor.example"
CLIENT = "start@client.example"
ADMIN = "func@client.example"  # made an organisation's admin in the fixture

# Every page and change of the console, plus addresses that do not exist: the same answer
# for everyone but staff.
ROUTES = [
    ("GET", "/staff/"), ("GET", "/staff/orgs/"), ("POST", "/staff/orgs/"),
    ("GET", "/staff/orgs/{org}/"), ("POST", "/staff/orgs/{org}/"), ("POST", "/staff/orgs/{org}/end"),
    ("GET", "/staff/people/"), ("POST", "/staff/people/invite"), ("GET", "/staff/people/{user}/"),
    ("POST", "/staff/people/{user}/disable"), ("POST", "/staff/people/{user}/enable"),
    ("POST", "/staff/people/{user}/resend"), ("POST", "/staff/people/{user}/admin"),
    ("POST", "/staff/people/{user}/totp-reset"),
    ("GET", "/staff/people/{user}/forget"), ("POST", "/staff/people/{user}/forget"),
    ("GET", "/staff/tokens/"), ("POST", "/staff/tokens/1/revoke"), ("GET", "/staff/requests/"),
    ("GET", "/staff/audit/"), ("GET", "/staff/usage/"),
    ("GET", "/staff/no-such-page"), ("POST", "/staff/no-such-page"), ("GET", "/staff/orgs/999999/"),
    ("GET", "/staff"), ("PUT", "/staff/orgs/"), ("DELETE", "/staff/people/{user}/"),
]
PAGES = [path for method, path in ROUTES if method == "GET" and "no-such" not in path
         and "999999" not in path and path != "/staff"]


@pytest.fixture
def ids(app):
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        changes.user_admin(conn, changes.CLI, ADMIN, True)
        org = accounts.org_by_name(conn, "Сеть Старт").id
        user = accounts.user_id_by_email(conn, CLIENT)
    gate.identities.invalidate()
    return {"org": org, "user": user}


def _as(app, role):
    c = app.test_client()
    if role != "anonymous":
        assert login(c, {"client": CLIENT, "admin": ADMIN, "staff": STAFF}[role]).status_code == 303
    return c


def _send(c, method, path, headers):
    return c.open(path, method=method, headers=headers, data={"x": "1"})


@pytest.mark.parametrize("method, path", ROUTES)
def test_role_by_route_truth_table(app, ids, method, path):
    path = path.format(**ids)
    anonymous = _as(app, "anonymous")
    browser = _send(anonymous, method, path, HTML)
    assert browser.status_code == 303, (method, path)
    assert browser.headers["Location"].startswith("/login?next=%2Fstaff")
    assert _send(anonymous, method, path, SCRIPT).status_code == 401
    for role in ("client", "admin"):
        r = _send(_as(app, role), method, path, HTML)
        assert r.status_code == 403, (role, method, path)
        assert "для сотрудников поддержки" in r.get_data(as_text=True)
    staff = _send(_as(app, "staff"), method, path, HTML)
    if method == "POST":  # past the guard: the form's CSRF token decides
        assert staff.status_code == 400 or (path.endswith("no-such-page") and staff.status_code in (400, 404, 405))
    elif method in ("PUT", "DELETE"):
        assert staff.status_code in (400, 405)
    elif "no-such" in path or "999999" in path:
        assert staff.status_code == 404
    elif path == "/staff":
        assert staff.status_code in (301, 308, 404)
    else:
        assert staff.status_code == 200


def test_no_change_is_made_by_anyone_but_staff(app, ids):
    gate = app.extensions["gate"]
    with gate.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(audit_t)).scalar()
    for role in ("anonymous", "client", "admin"):
        c = _as(app, role)
        token = csrf_of(c.get("/login").get_data(as_text=True))
        for method, path in ROUTES:
            if method == "POST":
                c.post(path.format(**ids), data={"csrf_token": token, "name": "Взлом",
                                                 "tariff": "start", "email": "x@evil.example"})
    with gate.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_t).where(
            audit_t.c.action.not_like("password.%"))).scalar() == before
        assert not conn.execute(sa.select(orgs).where(orgs.c.name == "Взлом")).first()
        assert conn.execute(sa.select(users.c.disabled).where(users.c.id == ids["user"])).scalar() is False


@pytest.mark.parametrize("path", PAGES)
def test_every_console_page_is_russian_in_the_sites_look(app, ids, path):
    r = _as(app, "staff").get(path.format(**ids), headers=HTML)
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert 'lang="ru"' in html and 'aria-label="Консоль поддержки"' in html
    assert r.headers["Cache-Control"].startswith("private")
    forms = re.findall(r'<form method="(?:get|post)" action="/staff/.*?</form>', html, flags=re.S)
    assert forms or path in ("/staff/", "/staff/requests/")
    for form in forms:
        assert 'method="get"' in form or 'name="csrf_token"' in form
        for field in re.findall(r'<(?:input|select|textarea)\b[^>]*>', form):
            if 'type="hidden"' in field:
                continue
            m = re.search(r'id="([^"]+)"', field)
            assert m, field
            labelled = f'for="{m.group(1)}"' in form or re.search(
                r'<label>\s*<input[^>]*id="' + re.escape(m.group(1)) + '"', form)
            assert labelled, field


# --- the actions, each with its audit row ---------------------------------------------------

def _staff(app):
    c = _as(app, "staff")
    return c, csrf_of(c.get("/staff/orgs/").get_data(as_text=True))


def _rows(app, **filters):
    gate = app.extensions["gate"]
    with gate.engine.connect() as conn:
        rows, _ = audit.query(conn, **filters)
    return [audit.as_dict(r, gate.cfg.timezone) for r in rows]


def _last(app, action):
    found = [r for r in _rows(app) if r["action"] == action]
    assert found, f"no {action} row"
    return found[-1]


def test_staff_reset_a_persons_second_factor_with_audit(app, ids):
    gate = app.extensions["gate"]
    secret = totp.new_secret()
    with gate.engine.begin() as conn:
        assert totp.enrol(conn, ids["user"], secret, pyotp.TOTP(secret).now())
    c, token = _staff(app)
    page = c.get(f"/staff/people/{ids['user']}/").get_data(as_text=True)
    assert "Сбросить второй фактор" in page and "подключён" in page
    r = c.post(f"/staff/people/{ids['user']}/totp-reset", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["Location"] == f"/staff/people/{ids['user']}/"
    row = _last(app, "totp.reset")
    assert (row["actor"], row["target"], row["address"]) == (STAFF, CLIENT, "127.0.0.1")
    assert row["details"] == {"via": "console"}
    with gate.engine.connect() as conn:
        assert not totp.enrolled(conn, ids["user"])
    assert login(app.test_client(), CLIENT).headers["Location"] == "/"  # the password alone
    again = c.post(f"/staff/people/{ids['user']}/totp-reset", data={"csrf_token": token})
    assert again.status_code == 422 and "нет второго фактора" in again.get_data(as_text=True)
    with gate.engine.begin() as conn:  # one's own factor: only in the profile, with a code
        staff_id = accounts.user_id_by_email(conn, STAFF)
        assert totp.enrol(conn, staff_id, secret, pyotp.TOTP(secret).now())
    own = c.post(f"/staff/people/{staff_id}/totp-reset", data={"csrf_token": token})
    assert own.status_code == 422 and len([r for r in _rows(app) if r["action"] == "totp.reset"]) == 1


def test_organisation_add_change_end_with_audit(app):
    gate = app.extensions["gate"]
    c, token = _staff(app)
    r = c.post("/staff/orgs/", data={"csrf_token": token, "name": "Сеть Новая", "tariff": "pair",
                                     "until": "2030-12-31", "external_id": "P-17"})
    assert r.status_code == 303
    org_id = int(re.match(r"/staff/orgs/(\d+)/", r.headers["Location"]).group(1))
    row = _last(app, "org.add")
    assert (row["actor"], row["target"], row["address"]) == (STAFF, "Сеть Новая", "127.0.0.1")
    assert row["details"] == {"tariff": "pair", "until": "2030-12-31", "external_id": "P-17"}
    page = c.get(f"/staff/orgs/{org_id}/").get_data(as_text=True)
    assert "Изменения" not in page and "Организация добавлена." in page and "P-17" in page
    r = c.post(f"/staff/orgs/{org_id}/", data={"csrf_token": token, "tariff": "start",
                                               "until": "2031-06-30", "external_id": "P-17"})
    assert r.status_code == 303
    assert _last(app, "org.set")["details"] == {"tariff": ["pair", "start"],
                                                "until": ["2030-12-31", "2031-06-30"]}
    r = c.post(f"/staff/orgs/{org_id}/end", data={"csrf_token": token})
    assert r.status_code == 303 and _last(app, "org.end")["target"] == "Сеть Новая"
    with gate.engine.connect() as conn:
        o = accounts.org_by_id(conn, org_id)
    assert o.tariff == "start" and str(o.until) == "2031-06-30" and o.ended_at is not None
    listing = c.get("/staff/orgs/?find=новая&status=ended").get_data(as_text=True)
    assert "Сеть Новая" in listing and "завершён" in listing
    assert "Сеть Новая" not in c.get("/staff/orgs/?status=active").get_data(as_text=True)
    # saving the form unchanged neither reopens the contract nor writes a row
    before = len(_rows(app))
    c.post(f"/staff/orgs/{org_id}/", data={"csrf_token": token, "tariff": "start",
                                           "until": "2031-06-30", "external_id": "P-17"})
    assert len(_rows(app)) == before
    with gate.engine.connect() as conn:
        assert accounts.org_by_id(conn, org_id).ended_at is not None


def test_a_contract_ended_in_the_console_closes_sections_of_issued_sessions(app):
    client = _as(app, "client")
    assert client.get("/launches/", headers=HTML).status_code == 200
    c, token = _staff(app)
    with app.extensions["gate"].engine.connect() as conn:
        org_id = accounts.org_by_name(conn, "Сеть Старт").id
    assert c.post(f"/staff/orgs/{org_id}/end", data={"csrf_token": token}).status_code == 303
    assert client.get("/launches/", headers=HTML).status_code == 403


@pytest.mark.parametrize("data, message", [
    ({"name": "", "tariff": "start"}, "Название организации: от 1 до 200 символов."),
    ({"name": "x" * 201, "tariff": "start"}, "Название организации: от 1 до 200 символов."),
    ({"name": "Сеть\tТаб", "tariff": "start"}, "управляющих символов"),
    ({"name": "Сеть Старт", "tariff": "start"}, "уже есть"),
    ({"name": "Crystals", "tariff": "start"}, "уже есть"),
    ({"name": "Новая", "tariff": "gold"}, "Такого тарифа нет."),
    ({"name": "Новая", "tariff": "start", "until": "31.12.2030"}, "ГГГГ-ММ-ДД"),
    ({"name": "Новая", "tariff": "start", "until": "2030-02-30"}, "ГГГГ-ММ-ДД"),
    ({"name": "Новая", "tariff": "start", "external_id": "a\nb"}, "Внешний идентификатор"),
])
def test_bad_organisation_input_is_refused_in_russian(app, data, message):
    c, token = _staff(app)
    before = len(_rows(app))
    r = c.post("/staff/orgs/", data={"csrf_token": token, **data})
    assert r.status_code == 422 and message in r.get_data(as_text=True)
    assert len(_rows(app)) == before


def _outbox(app):
    from gate.db import outbox
    with app.extensions["gate"].engine.connect() as conn:
        return conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()


def _link(body: bytes) -> str:
    import email
    import email.policy
    text = email.message_from_bytes(body, policy=email.policy.default).get_body().get_content()
    return re.search(r"https?://\S+/invite/(\S+)", text).group(0)


def test_people_invite_resend_disable_enable_admin_forget_with_audit(app):
    gate = app.extensions["gate"]
    c, token = _staff(app)
    r = c.post("/staff/people/invite", data={"csrf_token": token, "email": "New@Client.example",
                                             "org": "Сеть Старт", "admin": "y"})
    assert r.status_code == 303
    uid = int(re.match(r"/staff/people/(\d+)/", r.headers["Location"]).group(1))
    row = _last(app, "user.invite")
    assert (row["actor"], row["target"]) == (STAFF, "new@client.example")
    assert row["details"] == {"org": "Сеть Старт", "admin": True}
    first = _link(_outbox(app)[-1].body)
    assert _outbox(app)[-1].recipient == "new@client.example"
    page = c.get(f"/staff/people/{uid}/").get_data(as_text=True)
    assert "приглашён" in page and "администратор организации" in page
    assert c.post(f"/staff/people/{uid}/resend", data={"csrf_token": token}).status_code == 303
    assert _last(app, "user.invite")["details"]["renewed"] is True
    second = _link(_outbox(app)[-1].body)
    anonymous = app.test_client()
    assert anonymous.get(first.split("localhost", 1)[1]).status_code == 404  # replaced
    assert anonymous.get(second.split("localhost", 1)[1]).status_code == 200
    for action, data in (("disable", {}), ("enable", {}), ("admin", {"on": "0"}),
                         ("admin", {"on": "1"})):
        r = c.post(f"/staff/people/{uid}/{action}", data={"csrf_token": token, **data})
        assert r.status_code == 303, action
        expected = "user.admin" if action == "admin" else f"user.{action}"
        last = _last(app, expected)
        assert last["target"] == "new@client.example" and last["actor"] == STAFF
    assert _last(app, "user.admin")["details"] == {"admin": True}
    # disabling voided the link: resend makes a new one
    assert anonymous.get(second.split("localhost", 1)[1]).status_code == 404
    assert c.get(f"/staff/people/{uid}/forget").status_code == 200
    r = c.post(f"/staff/people/{uid}/forget", data={"csrf_token": token})
    assert r.status_code == 303
    assert _last(app, "user.forget")["target"] == f"user#{uid}"
    assert all("new@client.example" not in str(r) for r in _rows(app))
    with gate.engine.connect() as conn:
        assert not conn.execute(sa.select(users).where(users.c.email == "new@client.example")).first()
    assert c.get(f"/staff/people/{uid}/").status_code == 404


def test_console_refuses_acting_on_oneself_and_unknown_people(app):
    c, token = _staff(app)
    with app.extensions["gate"].engine.connect() as conn:
        me = accounts.user_id_by_email(conn, STAFF)
    for action in ("disable", "forget"):
        r = c.post(f"/staff/people/{me}/{action}", data={"csrf_token": token})
        assert r.status_code == 422 and "своей учётной записи" in r.get_data(as_text=True)
    assert c.post("/staff/people/999999/disable", data={"csrf_token": token}).status_code == 404
    assert c.post("/staff/people/2147483647/enable", data={"csrf_token": token}).status_code == 404
    assert c.post("/staff/people/99999999999/enable", data={"csrf_token": token}).status_code == 404
    assert c.post("/staff/tokens/999999/revoke", data={"csrf_token": token}).status_code == 404
    r = c.post(f"/staff/people/{me}/admin", data={"csrf_token": token, "on": "1"})
    assert r.status_code == 422 and "Сотрудники поддержки" in r.get_data(as_text=True)


@pytest.mark.parametrize("data, message", [
    ({"email": "not-an-email", "org": "Сеть Старт"}, "правильный адрес"),
    ({"email": "a\r\nBcc:x@y.ru", "org": "Сеть Старт"}, "правильный адрес"),
    ({"email": "иван@почта.рф", "org": "Сеть Старт"}, "правильный адрес"),
    ({"email": "a@client.example", "org": "Нет такой"}, "Такой организации нет."),
    ({"email": "a@client.example", "org": "Сеть Бывшая"}, "завершён"),
    ({"email": "a@client.example"}, "что-то одно"),
    ({"email": "a@client.example", "org": "Сеть Старт", "staff": "y"}, "что-то одно"),
    ({"email": CLIENT, "org": "Сеть Старт"}, "уже зарегистрирован"),
    ({"email": "disabled@client.example", "org": "Сеть Старт"}, "отключён"),
    ({"email": "a@client.example", "staff": "y", "admin": "y"}, "Администратор бывает только"),
])
def test_bad_invitations_are_refused_in_russian(app, data, message):
    c, token = _staff(app)
    before = (len(_rows(app)), len(_outbox(app)))
    r = c.post("/staff/people/invite", data={"csrf_token": token, **data})
    assert r.status_code == 422 and message in r.get_data(as_text=True)
    assert (len(_rows(app)), len(_outbox(app))) == before


def test_console_lists_search_and_page(app):
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        for i in range(120):
            changes.org_add(conn, changes.CLI, gate.tariffs, f"Поиск {i:03d}", "start",
                            external_id=f"EXT-{i}")
            accounts.add_user(conn, f"p{i:03d}@search.example", PASSWORD, org=f"Поиск {i:03d}")
    c, _ = _staff(app)
    first = c.get("/staff/orgs/?find=ПОИСК").get_data(as_text=True)  # any case, any alphabet
    assert "страница 1 из 3 (всего 120)" in first and "Поиск 000" in first and "Поиск 050" not in first
    assert "Поиск 050" in c.get("/staff/orgs/?find=поиск&page=2").get_data(as_text=True)
    assert "Поиск 007" in c.get("/staff/orgs/?find=ext-7").get_data(as_text=True)
    assert "Поиск 119" in c.get("/staff/orgs/?find=поиск&page=99").get_data(as_text=True)  # the last
    people = c.get("/staff/people/?find=SEARCH.example&page=3").get_data(as_text=True)
    assert "p100@search.example" in people and "страница 3 из 3" in people
    assert "p099@search.example" not in people
    for junk in ("page=-1", "page=abc", "find=%25", "find=_", "state=evil", "org=abc", "days=x",
                 "action=%27", "org=" + "я" * 300):
        for path in ("/staff/orgs/", "/staff/people/", "/staff/tokens/", "/staff/audit/"):
            assert c.get(f"{path}?{junk}").status_code == 200, (path, junk)


def test_tokens_are_listed_and_revoked_in_the_console(app):
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        uid = accounts.user_id_by_email(conn, CLIENT)
        ident = accounts.identity(conn, uid, gate.tariffs, gate.cfg.timezone)
        tid, token = changes.token_issue(conn, changes.CLI, gate.key, ident, 3600, 1)
    script = app.test_client()
    bearer = {"Authorization": f"Bearer {token}", **SCRIPT}
    assert script.get("/launches/", headers=bearer).status_code == 200
    c, csrf = _staff(app)
    listing = c.get("/staff/tokens/").get_data(as_text=True)
    assert f"<td>{tid}</td>" in listing and CLIENT in listing
    assert c.post(f"/staff/tokens/{tid}/revoke", data={"csrf_token": csrf}).status_code == 303
    row = _last(app, "token.revoke")
    assert (row["actor"], row["target"], row["details"]) == (STAFF, CLIENT, {"id": tid})
    assert script.get("/launches/", headers=bearer).status_code == 401
    assert f"<td>{tid}</td>" not in c.get("/staff/tokens/").get_data(as_text=True)
    again = c.post(f"/staff/tokens/{tid}/revoke", data={"csrf_token": csrf})
    assert again.status_code == 303 and len([r for r in _rows(app) if r["action"] == "token.revoke"]) == 1


def test_audit_page_filters(app):
    c, token = _staff(app)
    c.post("/staff/orgs/", data={"csrf_token": token, "name": "Фильтр", "tariff": "start"})
    login(app.test_client(), CLIENT, "wrong-password-1")
    app.extensions["gate"].refusals.flush()
    page = c.get("/staff/audit/?action=org.").get_data(as_text=True)
    assert "Фильтр" in page and "password.refused" not in page.split("<table>")[-1]
    assert "password.refused" in c.get("/staff/audit/?action=password.refused").get_data(as_text=True)
    assert "Фильтр" in c.get("/staff/audit/?org=Фильтр&days=1").get_data(as_text=True)
    r = c.get("/staff/audit/?org=Нет такой")
    assert r.status_code == 200 and "Такой организации нет." in r.get_data(as_text=True)
    assert "Фильтр" in c.get(f"/staff/audit/?actor={STAFF[:5]}").get_data(as_text=True)
    assert "Записей нет." in c.get("/staff/audit/?actor=nobody-at-all").get_data(as_text=True)


# --- forms: CSRF, Origin, rate limits ---------------------------------------------------------

def test_console_changes_need_the_csrf_token_and_our_origin(app):
    c, token = _staff(app)
    data = {"name": "Без токена", "tariff": "start"}
    assert c.post("/staff/orgs/", data=data).status_code == 400
    r = c.post("/staff/orgs/", data={**data, "csrf_token": token},
               headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert not [r for r in _rows(app) if r["target"] == "Без токена"]


def test_console_changes_are_rate_limited_per_person(app):
    c, token = _staff(app)
    with app.extensions["gate"].engine.connect() as conn:
        uid = accounts.user_id_by_email(conn, CLIENT)
    statuses = [c.post(f"/staff/people/{uid}/enable", data={"csrf_token": token}).status_code
                for _ in range(61)]
    assert statuses[:60] == [303] * 60
    assert statuses[60] == 429
    r = c.post(f"/staff/people/{uid}/enable", data={"csrf_token": token})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Ничего не изменено" in r.get_data(as_text=True)
    assert c.get("/staff/orgs/").status_code == 200  # reading goes on
