"""The gate on PostgreSQL (GATE_DATABASE_URL): a real, throwaway cluster on this machine
(tests.helpers.processes.Cluster), one per module, each test in a database of its own. Skipped, with the
reason, when Debian's postgresql or the psycopg driver is not installed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa

from gate import accounts, outbox, requests_store
from gate.clock import utcnow
from gate.db import (MIGRATIONS, migrate, orgs, outbox as outbox_t, schema_version, sessions,
                     support_requests, users)
from gate.engine import make_engine
from tests.helpers.http import csrf_of, login
from tests.helpers.mail import deliver_with_workers
from tests.helpers.processes import SERVER_TIMEZONE
from tests.helpers.project import PASSWORD, make_config, populate
from tests.helpers.support import submit_support

SUPPORT = "support@kb.test"


@pytest.fixture(scope="module")
def pg_url(cluster):
    """A SQLAlchemy URL of a database of the module's cluster."""
    return cluster.create_database("gate")


_databases = iter(range(1, 10_000))


@pytest.fixture
def fresh_url(cluster):
    """A new, empty database for one test."""
    return cluster.create_database(f"gate_t{next(_databases)}")


@pytest.fixture
def engine(fresh_url):
    e = make_engine(fresh_url)
    migrate(e)
    yield e
    e.dispose()


# --- schema ----------------------------------------------------------------------------------

def test_the_cluster_is_postgresql_in_another_time_zone(pg_url):
    e = make_engine(pg_url)
    try:
        with e.connect() as conn:
            assert e.dialect.name == "postgresql" and e.driver == "psycopg"
            assert conn.exec_driver_sql("SHOW server_version").scalar()
            # the gate's own connections speak UTC, whatever the server's default is
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "UTC"
    finally:
        e.dispose()
    raw = sa.create_engine(pg_url)
    try:
        with raw.connect() as conn:
            assert conn.exec_driver_sql("SHOW timezone").scalar() == SERVER_TIMEZONE
    finally:
        raw.dispose()


def test_migrations_run_once_and_again_without_change(fresh_url):
    e = make_engine(fresh_url)
    try:
        assert migrate(e) == len(MIGRATIONS)
        assert migrate(e) == len(MIGRATIONS)
        inspector = sa.inspect(e)
        tables = set(inspector.get_table_names())
        assert {"orgs", "users", "sessions", "password_resets", "outbox", "support_requests",
                "attachments", "search_misses", "schema_version"} <= tables
        with e.connect() as conn:
            versions = conn.execute(sa.select(schema_version.c.version)
                                    .order_by(schema_version.c.version)).scalars().all()
        assert versions == list(range(1, len(MIGRATIONS) + 1))
        # seconds since 1970 outgrow a 32-bit integer in 2038
        column = {c["name"]: c for c in inspector.get_columns("users")}["tokens_valid_after"]
        assert isinstance(column["type"], sa.BigInteger)
    finally:
        e.dispose()


def test_a_database_made_by_the_first_version_is_upgraded(fresh_url, monkeypatch):
    from gate import db

    e = make_engine(fresh_url)
    try:
        monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:1])
        migrate(e)
        with e.begin() as conn:  # as v1 made it before tokens_valid_after became 64-bit
            conn.exec_driver_sql("ALTER TABLE users ALTER COLUMN tokens_valid_after TYPE INTEGER")
        monkeypatch.undo()
        assert migrate(e) == len(MIGRATIONS)
        column = {c["name"]: c for c in sa.inspect(e).get_columns("users")}["tokens_valid_after"]
        assert isinstance(column["type"], sa.BigInteger)
    finally:
        e.dispose()


def test_gates_starting_together_migrate_once(fresh_url):
    engines = [make_engine(fresh_url) for _ in range(4)]
    start, errors = threading.Barrier(len(engines)), []

    def run(e):
        try:
            start.wait(10)
            migrate(e)
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors
        with engines[0].connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schema_version)).scalar() \
                == len(MIGRATIONS)
    finally:
        for e in engines:
            e.dispose()


def test_times_are_stored_as_utc_and_big_numbers_fit(engine):
    tariffs = {"start": None}
    before = utcnow()
    with engine.begin() as conn:
        accounts.add_org(conn, "Сеть", "start", tariffs, until="2030-12-31")
        uid = accounts.add_user(conn, "a@example.ru", PASSWORD, org="Сеть")
        conn.execute(users.update().where(users.c.id == uid).values(tokens_valid_after=2**31 + 7))
    after = utcnow()
    with engine.connect() as conn:
        org = conn.execute(sa.select(orgs).where(orgs.c.name == "Сеть")).one()
        user = conn.execute(sa.select(users).where(users.c.id == uid)).one()
    assert org.until == dt.date(2030, 12, 31)
    assert org.created_at.tzinfo is None and before <= org.created_at <= after
    assert user.tokens_valid_after == 2**31 + 7


# --- the gate command ------------------------------------------------------------------------

@pytest.fixture
def gate_cli(built_project, tmp_path, fresh_url):
    root, _ = built_project
    env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(tmp_path / "instance"),
           "GATE_DATABASE_URL": fresh_url}

    def run(*args, stdin=None):
        result = subprocess.run([sys.executable, "-m", "gate", *args], env=env, input=stdin,
                                capture_output=True, text=True, timeout=120)
        assert "Traceback" not in result.stderr, result.stderr
        return result
    run.url = fresh_url
    return run


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cli_keeps_organisations_and_people_in_postgresql(gate_cli, tmp_path):
    import jwt

    ok(gate_cli("org", "add", "Сеть Один", "--tariff", "start", "--until", "2030-12-31"))
    password = ok(gate_cli("user", "add", "Eng@Example.ru", "--org", "Сеть Один")).split()[-1]
    ok(gate_cli("user", "add", "staff@crystals.example", "--staff", "--password-stdin",
                stdin=PASSWORD + "\n"))
    listing = ok(gate_cli("user", "list"))
    assert "eng@example.ru\tСеть Один\t-" in listing and "staff@crystals.example\tCrystals\tstaff" in listing
    assert "Сеть Один\tstart\t2030-12-31\tactive" in ok(gate_cli("org", "list"))
    for args, message in ((("user", "add", "eng@example.ru", "--org", "Сеть Один"), "already exists"),
                          (("org", "add", "Сеть Один", "--tariff", "start"), "already exists"),
                          (("user", "add", "x@example.ru", "--org", "Nobody"), "unknown organisation")):
        r = gate_cli(*args)
        assert r.returncode != 0 and message in r.stderr
    claims = jwt.decode(ok(gate_cli("token", "eng@example.ru", "--ttl", "600")).strip(),
                        options={"verify_signature": False})
    assert claims["org"] == "Сеть Один" and claims["exp"] - claims["iat"] == 600
    ok(gate_cli("user", "disable", "eng@example.ru"))
    r = gate_cli("token", "eng@example.ru")
    assert r.returncode != 0 and "disabled" in r.stderr
    ok(gate_cli("org", "end", "Сеть Один"))
    assert "Сеть Один\tstart\t2030-12-31\tended" in ok(gate_cli("org", "list"))
    assert ok(gate_cli("requests", "--json")).strip() == "[]"
    # everything went to PostgreSQL: no SQLite file in the instance
    assert not (tmp_path / "instance" / "gate.sqlite3").exists()
    e = make_engine(gate_cli.url)
    try:
        with e.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.email == "eng@example.ru")).one()
        assert row.disabled and row.tokens_valid_after > 0
        assert accounts.verify_password(row.password_hash, password)
    finally:
        e.dispose()


# --- the web application ---------------------------------------------------------------------

@pytest.fixture
def pg_app(built_project, tmp_path, fresh_url, sink):
    from gate.factory import create_app

    root, _ = built_project
    cfg = make_config(root, tmp_path / "instance", database_url=fresh_url,
                      smtp_host="127.0.0.1", smtp_port=sink.port, support_email=SUPPORT,
                      mail_from="kb@kb.test")
    application = create_app(cfg)
    application.config["TESTING"] = True
    gate = application.extensions["gate"]
    assert gate.engine.dialect.name == "postgresql"
    populate(gate.engine, gate.tariffs)
    yield application
    gate.engine.dispose()


def test_login_page_and_logout(pg_app):
    client = pg_app.test_client()
    html = {"Accept": "text/html"}
    assert client.get("/healthz").status_code == 200
    assert client.get("/functionality/", headers=html).status_code == 303
    assert login(client, "nobody@client.example").status_code == 401
    assert login(client, "disabled@client.example").status_code == 401
    r = login(client, "func@client.example", next_path="/functionality/")
    assert r.status_code == 303 and r.headers["Location"] == "/functionality/"
    assert client.get("/functionality/", headers=html).status_code == 200
    assert client.get("/launches/", headers=html).status_code == 403
    engine = pg_app.extensions["gate"].engine
    with engine.connect() as conn:
        [session] = conn.execute(sa.select(sessions)).all()
    assert session.ended_at is None and session.expires_at > utcnow()
    page = client.get("/account/").get_data(as_text=True)
    r = client.post("/logout", data={"csrf_token": csrf_of(page)},
                    headers={"Origin": "http://localhost"})
    assert r.status_code == 303
    assert client.get("/functionality/", headers=html).status_code == 303
    with engine.connect() as conn:
        assert conn.execute(sa.select(sessions.c.ended_at)).scalar_one() is not None
    # an ended contract and staff
    ended = pg_app.test_client()
    login(ended, "ended@client.example")
    assert ended.get("/functionality/", headers=html).status_code == 403
    staff = pg_app.test_client()
    login(staff, "staff@vendor.example")
    assert staff.get("/claim-desk/", headers=html).status_code == 200
    # request numbers beyond PostgreSQL's 32-bit ids are simply not found
    for path in ("/support/2147483647/", "/support/2147483648/", "/support/9223372036854775807/",
                 "/support/1/files/2147483648"):
        assert staff.get(path, headers=html).status_code == 404, path


def test_a_support_request_is_stored_and_mailed(pg_app, sink, built_project, tmp_path):
    client = pg_app.test_client()
    gate = pg_app.extensions["gate"]
    login(client, "start@client.example")
    blob = bytes(range(256)) * 8
    # a client may send any content type: a long one must not break the request
    r = submit_support(client, attachments=[(io.BytesIO(b"price load failed\n"), "pos.log"),
                                            (io.BytesIO(blob), "dump.bin", "application/x-" + "y" * 300)])
    assert r.status_code == 303, r.get_data(as_text=True)
    number = int(r.headers["Location"].split("/")[-2])
    with gate.engine.connect() as conn:
        row = conn.execute(sa.select(support_requests).where(support_requests.c.id == number)).one()
    assert (row.consult_by - row.created_at).total_seconds() == 4 * 3600
    assert abs(row.created_at - utcnow()) < dt.timedelta(minutes=1)  # naive UTC
    assert outbox.deliver_due(gate.engine, gate.cfg) == 2
    assert outbox.deliver_due(gate.engine, gate.cfg) == 0
    got = {m.message_id: m for m in sink.snapshot()}
    support = got[f"<kb-request-{number}@kb.test>"]
    assert support.rcpt_tos == [SUPPORT] and support.message["Reply-To"] == "start@client.example"
    files = {a.get_filename(): a.get_payload(decode=True) for a in support.message.iter_attachments()}
    assert files == {"pos.log": b"price load failed\n", "dump.bin": blob}
    assert got[f"<kb-request-{number}-confirmation@kb.test>"].rcpt_tos == ["start@client.example"]
    [listed] = requests_store.listing(gate.engine, gate.cfg)
    assert listed["number"] == number and listed["delivery"] == "delivered"
    assert listed["created"].endswith("+03:00")  # shown in GATE_TIMEZONE
    assert client.get(f"/support/{number}/files/2").data == blob
    # the same request through the gate command, on the same database
    root, _ = built_project
    env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(tmp_path / "cli"),
           "GATE_DATABASE_URL": str(gate.cfg.database_url)}
    out = subprocess.run([sys.executable, "-m", "gate", "requests", "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [(r["number"], r["delivery"]) for r in json.loads(out.stdout)] == [(number, "delivered")]


def test_two_workers_on_two_engines_never_send_a_message_twice(engine, fresh_url, sink, tmp_path):
    sink.delay = 0.01  # a slower server widens the window between claim and mark
    cfg = make_config(tmp_path, tmp_path / "instance", database_url=fresh_url,
                      smtp_host="127.0.0.1", smtp_port=sink.port, support_email=SUPPORT,
                      mail_from="kb@kb.test")
    with engine.begin() as conn:
        ids = [outbox.enqueue(conn, cfg, to=SUPPORT, subject=f"[KB-{n}] Тема", text=f"№ {n}\n",
                              message_id=f"kb-request-{n}", request_id=n) for n in range(1, 41)]
    sent, errors = deliver_with_workers(fresh_url, cfg)  # two engines, two threads each
    assert not errors
    assert sum(sent.values()) == 40, sent
    assert sink.by_id() == {i: 1 for i in ids}
    assert sum(1 for v in sent.values() if v) >= 2, f"both engines should have sent: {sent}"
    with engine.connect() as conn:
        assert all(r.sent_at is not None and r.attempts == 1 and r.claimed_until is None
                   for r in conn.execute(sa.select(outbox_t)))


def test_a_lease_holds_across_engines_until_it_runs_out(engine, fresh_url, sink, tmp_path,
                                                          monkeypatch):
    cfg = make_config(tmp_path, tmp_path / "instance", database_url=fresh_url,
                      smtp_host="127.0.0.1", smtp_port=sink.port, mail_from="kb@kb.test")
    with engine.begin() as conn:
        mid = outbox.enqueue(conn, cfg, to=SUPPORT, subject="s", text="t\n", message_id="kb-lease")
    now = outbox.utcnow()
    assert outbox._claim(engine, now) is not None           # a worker that then dies
    other = make_engine(fresh_url)
    try:
        assert outbox.deliver_due(other, cfg) == 0          # the lease is honoured
        later = now + outbox.LEASE + dt.timedelta(seconds=1)
        monkeypatch.setattr(outbox, "utcnow", lambda: later)
        assert outbox.deliver_due(other, cfg) == 1          # and ends
    finally:
        other.dispose()
    assert sink.by_id() == {mid: 1}
