"""/account/people/ over HTTP (Flask test client): a truth table of role x action x target with
the expected status and, for every refusal, nothing changed (people, invitations, outbox,
audit); the changes that go through leave an audit row with the admin as actor; invitations
are rate-limited per admin and per organisation; an admin never grants admin."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gate import accounts, audit, changes, invitations
from gate.db import audit as audit_t
from gate.db import invitations as invitations_t
from gate.db import outbox, users
from gate.views import org_people
from tests.helpers.http import csrf_of, login

HTML = {"Accept": "text/html,application/xhtml+xml"}
STAFF = "staff@vendor.example"
PLAIN = "start@client.example"          # Сеть Старт, not an admin
ADMIN = "func@client.example"           # made the admin of Сеть Функ
ENDED_ADMIN = "ended@client.example"    # made the admin of Сеть Бывшая (contract ended)
OTHER = "pair@client.example"           # Сеть Пара
COLLEAGUE = {ADMIN: "colleague@func.example", ENDED_ADMIN: "colleague@ended.example",
             PLAIN: "colleague@func.example", STAFF: "colleague@func.example"}
ROLES = {"anonymous": None, "plain": PLAIN, "admin": ADMIN, "ended-admin": ENDED_ADMIN,
         "staff": STAFF}
ACTIONS = ("view", "invite", "resend", "disable", "enable")
TARGETS = ("own", "other", "staff", "self", "unknown")


def _expected(role: str, action: str, target: str) -> int:
    if role == "anonymous":
        return 303  # to the login page
    if role in ("plain", "staff"):
        return 403
    if action == "view":
        return 200
    if role == "ended-admin" and action in ("invite", "resend"):
        return 403  # the contract has ended: no invitations
    if action == "invite":  # the target is an e-mail: a colleague's (renewed) or a new one
        # another organisation's or staff's address: 404, as for their people (the contract)
        return {"own": 303, "unknown": 303, "self": 422}.get(target, 404)
    if target == "own":
        return 303
    return 403 if target == "self" else 404


TABLE = [(r, a, t) for r in ROLES for a in ACTIONS for t in (TARGETS if a != "view" else ("own",))]


@pytest.fixture
def world(app):
    """Admins of two organisations (one ended) and a pending colleague in each."""
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        changes.user_admin(conn, changes.CLI, ADMIN, True)
        changes.user_admin(conn, changes.CLI, ENDED_ADMIN, True)
        invitations.invite(conn, gate.cfg, "http://kb.test", COLLEAGUE[ADMIN], org="Сеть Функ")
        ended = accounts.org_by_name(conn, "Сеть Бывшая")
        colleague_id = accounts.add_user(conn, COLLEAGUE[ENDED_ADMIN], None, org=ended.name)
        ids = {email: accounts.user_id_by_email(conn, email)
               for email in (ADMIN, ENDED_ADMIN, PLAIN, OTHER, STAFF, COLLEAGUE[ADMIN])}
        ids[COLLEAGUE[ENDED_ADMIN]] = colleague_id
    gate.identities.invalidate()
    return ids


def _state(engine) -> dict:
    with engine.connect() as conn:
        people = conn.execute(sa.select(users.c.id, users.c.email, users.c.org_id, users.c.disabled,
                                        users.c.is_admin, users.c.password_hash)
                              .order_by(users.c.id)).all()
        count = lambda t: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()  # noqa: E731
        live = conn.execute(sa.select(sa.func.count()).select_from(invitations_t).where(
            invitations_t.c.voided_at.is_(None))).scalar()
        return {"people": [tuple(p) for p in people], "invitations": count(invitations_t),
                "live": live, "outbox": count(outbox),
                "audit": conn.execute(sa.select(sa.func.count()).select_from(audit_t).where(
                    audit_t.c.action.not_like("password.%"))).scalar()}


def _client(app, role):
    c = app.test_client()
    if ROLES[role]:
        assert login(c, ROLES[role]).status_code == 303
    return c


def _token(c) -> str:
    return csrf_of(c.get("/account/").get_data(as_text=True))


def _target_id(ids, role, target) -> int:
    me = ROLES[role] or ADMIN
    return {"own": ids[COLLEAGUE[me]], "other": ids[OTHER], "staff": ids[STAFF],
            "self": ids.get(me, 0), "unknown": 999_999}[target]


def _target_email(role, target) -> str:
    me = ROLES[role] or ADMIN
    return {"own": COLLEAGUE[me], "other": OTHER, "staff": STAFF, "self": me,
            "unknown": f"new-{role}@func.example"}[target]


def _prepare(app, ids, role, action, target):
    """The target in the state the action applies to (enable: a disabled person)."""
    if action == "enable" and target == "own":
        gate = app.extensions["gate"]
        with gate.engine.begin() as conn:
            accounts.set_disabled(conn, COLLEAGUE[ROLES[role] or ADMIN], True)


@pytest.mark.parametrize("role, action, target", TABLE)
def test_role_action_target_truth_table(app, world, role, action, target):
    gate = app.extensions["gate"]
    _prepare(app, world, role, action, target)
    c = _client(app, role)
    token = _token(c) if ROLES[role] else csrf_of(c.get("/login").get_data(as_text=True))
    before = _state(gate.engine)
    if action == "view":
        r = c.get("/account/people/", headers=HTML)
    elif action == "invite":
        r = c.post("/account/people/invite", headers=HTML,
                   data={"csrf_token": token, "email": _target_email(role, target), "admin": "1"})
    else:
        r = c.post(f"/account/people/{_target_id(world, role, target)}/{action}", headers=HTML,
                   data={"csrf_token": token})
    expected = _expected(role, action, target)
    assert r.status_code == expected, (role, action, target, r.get_data(as_text=True)[-600:])
    after = _state(gate.engine)
    if expected == 303 and role == "anonymous":
        assert r.headers["Location"].startswith("/login?next=")
    if expected != 303 or role == "anonymous":
        assert after == before, (role, action, target)
        return
    assert r.headers["Location"] == "/account/people/"
    with gate.engine.connect() as conn:
        rows, _ = audit.query(conn, newest_first=True, limit=1)
    row = audit.as_dict(rows[0], gate.cfg.timezone)
    assert (row["actor"], row["address"]) == (ROLES[role], "127.0.0.1")
    assert row["action"] == {"invite": "user.invite", "resend": "user.invite",
                             "disable": "user.disable", "enable": "user.enable"}[action]
    assert row["target"] == _target_email(role, target)
    assert after["audit"] == before["audit"] + 1
    changed = {p[1]: p for p in after["people"]}[_target_email(role, target)]
    assert changed[4] is False  # never an admin through this page
    assert changed[2] == {p[1]: p for p in after["people"]}[ROLES[role]][2]  # in the admin's org
    if action in ("invite", "resend"):
        assert after["outbox"] == before["outbox"] + 1
    if action in ("disable", "enable"):
        assert changed[3] is (action == "disable")


def test_the_list_shows_own_people_only_with_pending_invitations(app, world):
    c = _client(app, "admin")
    html = c.get("/account/people/").get_data(as_text=True)
    assert "Люди организации «Сеть Функ»" in html
    assert COLLEAGUE[ADMIN] in html and "приглашён, ссылка до" in html and "это вы" in html
    for stranger in (PLAIN, OTHER, STAFF, ENDED_ADMIN, COLLEAGUE[ENDED_ADMIN]):
        assert stranger not in html
    assert f"/account/people/{world[ADMIN]}/disable" not in html  # no button against oneself
    assert "Пригласить" in html and "только сотрудники поддержки" in html
    profile = c.get("/account/").get_data(as_text=True)
    assert 'href="/account/people/"' in profile
    assert 'href="/account/people/"' not in _client(app, "plain").get("/account/").get_data(as_text=True)


def test_an_ended_contract_is_said_and_the_form_is_gone(app, world):
    html = _client(app, "ended-admin").get("/account/people/").get_data(as_text=True)
    assert "Договор вашей организации завершён" in html
    assert 'action="/account/people/invite"' not in html


def test_admin_cannot_grant_admin(app, world):
    gate = app.extensions["gate"]
    c = _client(app, "admin")
    token = _token(c)
    r = c.post(f"/account/people/{world[COLLEAGUE[ADMIN]]}/admin", data={"csrf_token": token, "on": "1"})
    assert r.status_code in (404, 405)
    with gate.engine.connect() as conn:
        assert conn.execute(sa.select(users.c.is_admin).where(
            users.c.id == world[COLLEAGUE[ADMIN]])).scalar() is False


def test_changes_need_the_csrf_token_and_our_origin(app, world):
    gate = app.extensions["gate"]
    c = _client(app, "admin")
    before = _state(gate.engine)
    target = world[COLLEAGUE[ADMIN]]
    assert c.post(f"/account/people/{target}/disable", data={}).status_code == 400
    r = c.post(f"/account/people/{target}/disable", data={"csrf_token": _token(c)},
               headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert _state(gate.engine) == before


def test_a_disabled_or_demoted_admin_changes_nothing_even_with_a_fresh_session(app, world):
    gate = app.extensions["gate"]
    c = _client(app, "admin")
    token = _token(c)
    with gate.engine.begin() as conn:  # no invalidate(): the process's snapshot still says admin
        conn.execute(users.update().where(users.c.id == world[ADMIN]).values(is_admin=False))
    before = _state(gate.engine)
    r = c.post(f"/account/people/{world[COLLEAGUE[ADMIN]]}/disable", data={"csrf_token": token})
    assert r.status_code == 403 and _state(gate.engine) == before


def test_invitations_are_limited_per_admin_and_per_organisation(app, world, monkeypatch):
    gate = app.extensions["gate"]
    monkeypatch.setattr(org_people, "PER_ADMIN", (3, 3600))
    monkeypatch.setattr(org_people, "PER_ORG", (4, 3600))
    with gate.engine.begin() as conn:  # a second admin of the same organisation
        changes.user_admin(conn, changes.CLI, COLLEAGUE[ADMIN], False)
        accounts.set_password(conn, world[COLLEAGUE[ADMIN]], "второй-пароль-длинный")
        changes.user_admin(conn, changes.CLI, COLLEAGUE[ADMIN], True)
    gate.identities.invalidate()
    first = _client(app, "admin")
    token = _token(first)
    for n in range(3):
        r = first.post("/account/people/invite", data={"csrf_token": token,
                                                       "email": f"n{n}@func.example"})
        assert r.status_code == 303
    before = _state(gate.engine)
    r = first.post("/account/people/invite", data={"csrf_token": token, "email": "n3@func.example"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Слишком много запросов" in r.get_data(as_text=True) and _state(gate.engine) == before
    second = app.test_client()
    assert login(second, COLLEAGUE[ADMIN], "второй-пароль-длинный").status_code == 303
    token2 = _token(second)
    assert second.post("/account/people/invite", data={"csrf_token": token2,
                                                       "email": "m0@func.example"}).status_code == 303
    before = _state(gate.engine)
    r = second.post("/account/people/invite", data={"csrf_token": token2, "email": "m1@func.example"})
    assert r.status_code == 429 and "Retry-After" in r.headers  # the organisation's 4 are used
    assert _state(gate.engine) == before
    resend = second.post(f"/account/people/{accounts_id(gate, 'n0@func.example')}/resend",
                         data={"csrf_token": token2})
    assert resend.status_code == 429  # invitations again count too


def accounts_id(gate, email) -> int:
    with gate.engine.connect() as conn:
        return accounts.user_id_by_email(conn, email)


def test_storage_away_answers_503_and_changes_nothing(app, world, tmp_path):
    gate = app.extensions["gate"]
    c = _client(app, "admin")
    token = _token(c)
    healthy = gate.engine
    gate.engine = sa.create_engine(f"sqlite:///{tmp_path}/missing/gate.sqlite3")
    try:
        r = c.post(f"/account/people/{world[COLLEAGUE[ADMIN]]}/disable", data={"csrf_token": token},
                   headers=HTML)
    finally:
        gate.engine = healthy
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert "ничего не изменено" in r.get_data(as_text=True)
    with healthy.connect() as conn:
        assert conn.execute(sa.select(users.c.disabled).where(
            users.c.id == world[COLLEAGUE[ADMIN]])).scalar() is False
