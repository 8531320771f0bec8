"""Readers' feedback, feed keys, the weekly digest and the second factor on PostgreSQL (a real,
throwaway cluster, tests/helpers/processes.py): the digest is claimed once by gates on separate
connections, as by several hosts sharing one database; a TOTP code and a recovery code are
accepted once there too."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from gate import accounts, digest, outbox
from gate.db import digest_runs, feedback
from gate.engine import make_engine
from tests.helpers import totp
from tests.helpers.http import csrf_of, login
from tests.helpers.project import make_config, marker, populate
ORIGIN = {"Origin": "http://localhost"}


_databases = iter(range(1, 10_000))


@pytest.fixture
def pg_app(built_project, tmp_path, cluster, sink):
    from gate.factory import create_app

    url = cluster.create_database(f"readers_t{next(_databases)}")
    root, _ = built_project
    cfg = make_config(root, tmp_path / "instance", database_url=url, smtp_host="127.0.0.1",
                      smtp_port=sink.port)
    application = create_app(cfg)
    application.config["TESTING"] = True
    gate = application.extensions["gate"]
    assert gate.engine.dialect.name == "postgresql"
    populate(gate.engine, gate.tariffs)
    yield application
    gate.engine.dispose()


def test_votes_and_feed_keys_on_postgresql(pg_app):
    client = pg_app.test_client()
    login(client, "pair@client.example")
    page = f"/{marker('launches', 'url')}/"
    for fields in ({"vote": "yes"}, {"vote": "no", "reason": "unclear", "comment": "Где порт?"}):
        assert client.post("/api/feedback", data={"page": page, **fields},
                           headers=ORIGIN).status_code == 204
    with pg_app.extensions["gate"].engine.connect() as conn:
        [row] = conn.execute(sa.select(feedback)).all()
    assert (row.vote, row.reason, row.comment) == ("no", "unclear", "Где порт?")
    csrf = csrf_of(client.get("/account/").get_data(as_text=True))
    client.post("/account/feed-key", data={"csrf_token": csrf, "action": "new"}, headers=ORIGIN)
    key = client.get("/account/").get_data(as_text=True).split("/feed.xml?key=")[1].split('"')[0]
    text = pg_app.test_client().get(f"/feed.xml?key={key}").get_data(as_text=True)
    assert marker("launches", "body") in text and marker("functionality", "body") not in text


def test_the_digest_is_claimed_once_by_gates_on_separate_connections(pg_app, sink):
    gate = pg_app.extensions["gate"]
    with gate.engine.begin() as conn:
        for email in ("start@client.example", "func@client.example"):
            digest.subscribe(conn, accounts.user_id_by_email(conn, email), True)
    weekday, time = digest.parse_at(gate.cfg.digest_at)
    today = dt.datetime.now(gate.cfg.timezone)
    moment = dt.datetime.combine(today.date() - dt.timedelta(days=today.weekday() - weekday),
                                 time, gate.cfg.timezone) + dt.timedelta(minutes=1)
    start, results, errors = threading.Barrier(6), [], []

    def claim():
        engine = make_engine(gate.cfg.database_url)
        try:
            start.wait(10)
            results.append(digest.send_due(engine, gate.cfg, gate.tariffs, digest.secret(gate.key),
                                           "https://kb.example.ru", now=moment))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(results, key=str) == [2] + [None] * 5
    with gate.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(digest_runs)).scalar() == 1
    outbox.deliver_due(gate.engine, dataclasses.replace(gate.cfg, smtp_host="127.0.0.1",
                                                        smtp_port=sink.port))
    assert sorted(r for m in sink.snapshot() for r in m.rcpt_tos) == [
        "func@client.example", "start@client.example"]


def test_the_second_factor_on_postgresql(pg_app):
    person = "start@client.example"
    enrolling = pg_app.test_client()
    assert login(enrolling, person).status_code == 303
    secret, resp = totp.enrol(enrolling)
    codes = totp.recovery_codes(resp.get_data(as_text=True))
    assert resp.status_code == 200 and len(codes) == 10

    def second_step(value):
        c = pg_app.test_client()
        r = login(c, person)
        assert r.status_code == 303 and r.headers["Location"] == "/login/code"
        return c, totp.send_code(c, value)

    later = totp.code(secret, 1)
    for value in (later, codes[0]):
        c, ok = second_step(value)
        assert ok.status_code in (200, 303) and c.get("/account/").status_code == 200
        _, replay = second_step(value)  # each is accepted once
        assert replay.status_code == 401
