"""The console's schema (migration v4) and its actions on SQLite and on a real PostgreSQL (the
throwaway cluster of tests/helpers/processes.py): a database of the previous release is upgraded
with its rows intact, and invitations, tokens, erasure and the audit log behave alike."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from gate import accounts, audit, changes, console, db
from gate.engine import make_engine
from tests.helpers.http import csrf_of, login
from tests.helpers.project import make_config, populate

V4_COLUMNS = {"orgs": {"external_id"}, "users": {"is_admin", "last_login_at", "erased_at"}}
V4_TABLES = {"invitations", "api_tokens", "audit"}


def _previous_release(engine) -> None:
    """The schema as v1-v3 left it: the tables without v4's columns, indexes and tables."""
    old = sa.MetaData()
    for table in db.metadata.sorted_tables:
        if table.name in V4_TABLES or table.name == "schema_version":
            continue
        sa.Table(table.name, old, *[c._copy() for c in table.columns
                                    if c.name not in V4_COLUMNS.get(table.name, ())])
    sa.Table("schema_version", old, sa.Column("version", sa.Integer, primary_key=True))
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(old.tables["schema_version"].insert(), [{"version": v} for v in (1, 2, 3)])
        conn.exec_driver_sql("INSERT INTO orgs (name, tariff, is_vendor, created_at) VALUES "
                             "('Старая сеть', 'start', false, '2025-01-01 00:00:00')")
        conn.exec_driver_sql("INSERT INTO users (email, org_id, password_hash, is_staff, "
                             "disabled, tokens_valid_after, created_at) SELECT 'old@x.example',"
                             " id, 'h', false, false, 0, '2025-01-01 00:00:00' FROM orgs")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gate.sqlite3'}"
    return request.getfixturevalue("cluster").create_database(f"staff_{tmp_path.name[-30:].lower()}")


def test_a_database_of_the_previous_release_is_upgraded(url):
    e = make_engine(url)
    try:
        _previous_release(e)
        assert db.migrate(e) == len(db.MIGRATIONS) >= 4
        inspector = sa.inspect(e)
        for table, columns in V4_COLUMNS.items():
            assert columns <= {c["name"] for c in inspector.get_columns(table)}
        assert V4_TABLES <= set(inspector.get_table_names())
        assert "ix_users_org_id" in {i["name"] for i in inspector.get_indexes("users")}
        with e.begin() as conn:
            row = conn.execute(sa.select(db.users)).one()
            assert (row.email, row.is_admin, row.erased_at) == ("old@x.example", False, None)
            accounts.add_org(conn, "Без id 1", "start", {"start": 1})
            accounts.add_org(conn, "Без id 2", "start", {"start": 1})  # several without an id
        with pytest.raises(sa.exc.IntegrityError):
            with e.begin() as conn:
                conn.execute(db.orgs.update().values(external_id="same"))
        assert db.migrate(e) == len(db.MIGRATIONS)  # and again: nothing to do
    finally:
        e.dispose()


@pytest.fixture
def gate_app(built_project, tmp_path, url):
    from gate.factory import create_app

    root, _ = built_project
    application = create_app(make_config(root, tmp_path / "instance", database_url=url))
    application.config["TESTING"] = True
    gate = application.extensions["gate"]
    populate(gate.engine, gate.tariffs)
    yield application
    gate.engine.dispose()


def test_console_invitation_tokens_erasure_and_audit(gate_app):
    gate = gate_app.extensions["gate"]
    staff = gate_app.test_client()
    login(staff, "staff@vendor.example")
    token = csrf_of(staff.get("/staff/orgs/").get_data(as_text=True))
    r = staff.post("/staff/orgs/", data={"csrf_token": token, "name": "Сеть Ёлка",
                                         "tariff": "pair", "until": "2031-01-31",
                                         "external_id": "E-1"})
    assert r.status_code == 303
    assert "Сеть Ёлка" in staff.get("/staff/orgs/?find=ЁЛКА").get_data(as_text=True)
    r = staff.post("/staff/people/invite", data={"csrf_token": token, "email": "e@elka.example",
                                                 "org": "Сеть Ёлка"})
    assert r.status_code == 303
    with gate.engine.connect() as conn:
        body = conn.execute(sa.select(db.outbox.c.body).order_by(db.outbox.c.id.desc())).scalar()
    import email
    import email.policy
    text = email.message_from_bytes(body, policy=email.policy.default).get_body().get_content()
    path = re.search(r"/invite/[A-Za-z0-9_-]+", text).group(0)
    person = gate_app.test_client()
    page = person.get(path)
    r = person.post(path, data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                                "new": "elka-password-1", "repeat": "elka-password-1"})
    assert r.status_code == 303 and person.get("/launches/").status_code == 200
    assert person.get(path).status_code == 404
    with gate.engine.begin() as conn:
        uid = accounts.user_id_by_email(conn, "e@elka.example")
        ident = accounts.identity(conn, uid, gate.tariffs, gate.cfg.timezone)
        tid, api = changes.token_issue(conn, changes.CLI, gate.key, ident, 600, 1)
    bearer = {"Authorization": f"Bearer {api}"}
    assert gate_app.test_client().get("/launches/", headers=bearer).status_code == 200
    assert gate.identities.token_use.flush(gate.engine) == 1
    assert staff.post(f"/staff/tokens/{tid}/revoke", data={"csrf_token": token}).status_code == 303
    assert gate_app.test_client().get("/launches/", headers=bearer).status_code == 401
    login(gate_app.test_client(), "e@elka.example", "wrong-password-1")
    assert staff.post(f"/staff/people/{uid}/forget", data={"csrf_token": token}).status_code == 303
    with gate.engine.connect() as conn:
        rows, _ = audit.query(conn)
        listing = console.people_page(conn, "elka")
    actions = [r.action for r in rows]
    for action in ("org.add", "user.invite", "invite.accept", "token.issue", "token.revoke",
                   "password.refused", "user.forget"):
        assert action in actions, action
    assert all("e@elka.example" not in f"{r.actor} {r.target} {r.details}" for r in rows)
    assert listing.total == 0
