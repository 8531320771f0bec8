"""The audit log and what it keeps: refusals counted without flooding, retention, erasure that
leaves no e-mail behind, API token ids (revocation across processes, last use in batches)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from gate import accounts, api_tokens, audit, changes, config, db
from gate.engine import make_engine
from gate.clock import utcnow
from gate.identities import Identities
from tests.helpers.http import login
from tests.helpers.project import PASSWORD
from tests.helpers.support import submit_support

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def engine(tmp_path):
    e = make_engine(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    db.migrate(e)
    yield e
    e.dispose()


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def _all(engine):
    with engine.connect() as conn:
        rows, _ = audit.query(conn)
    return rows


def test_a_flood_of_refusals_is_a_few_rows_with_counts(engine):
    clock = Clock()
    refusals = audit.Refusals(engine, clock)
    for _ in range(500):
        refusals.note("password.refused", "victim@client.example", "10.0.0.1")
    refusals.note("password.refused", "victim@client.example", "10.0.0.2")
    assert [(r.address, r.details) for r in _all(engine)] == [
        ("10.0.0.1", '{"count": 1}'), ("10.0.0.2", '{"count": 1}')]
    clock.now += 61
    refusals.flush()
    rows = _all(engine)
    assert len(rows) == 3 and rows[-1].details == '{"count": 499}'
    assert rows[-1].actor == audit.ANONYMOUS and rows[-1].target == "victim@client.example"
    assert sum(audit.as_dict(r, dt.timezone.utc)["details"]["count"] for r in rows) == 501


def test_a_spray_of_addresses_is_bounded_per_minute(engine):
    clock = Clock()
    refusals = audit.Refusals(engine, clock)
    for i in range(5000):
        refusals.note("password.refused", f"user{i}@x.example", f"10.{i // 250}.{i % 250}.1")
    clock.now += 61
    refusals.flush()
    rows = _all(engine)
    immediate = audit.Refusals.IMMEDIATE
    assert len(rows) <= immediate + audit.Refusals.MAX_KEYS + 1
    assert sum(audit.as_dict(r, dt.timezone.utc)["details"]["count"] for r in rows) == 5000
    assert rows[-1].target == "*"


def test_refusals_survive_a_database_that_cannot_write_for_a_while(engine, tmp_path):
    broken = make_engine(f"sqlite:///{tmp_path / 'missing' / 'x.sqlite3'}")
    refusals = audit.Refusals(broken, Clock())
    refusals.note("password.refused", "a@b.example", "10.0.0.1")  # no exception
    refusals.engine = engine
    refusals.flush()
    assert len(_all(engine)) == 1


def test_control_characters_of_a_claimed_address_do_not_reach_the_log(engine):
    refusals = audit.Refusals(engine, Clock())
    refusals.note("password.refused", "a\r\nb\x1b[31m@x", "10.0.0.1")
    assert _all(engine)[0].target == "a??b?[31m@x"


def test_old_rows_are_pruned_by_gate_audit_days(engine):
    with engine.begin() as conn:
        audit.record(conn, "cli", "org.add", "Старая", at=utcnow() - dt.timedelta(days=400))
        audit.record(conn, "cli", "org.add", "Новая")
    assert audit.prune(engine, 365) == 1
    assert [r.target for r in _all(engine)] == ["Новая"]
    assert config.from_env({"GATE_AUDIT_DAYS": "30"}).audit_days == 30
    assert config.from_env({}).audit_days == 365
    for bad in ("0", "-1", "x", "1.5"):
        with pytest.raises(config.ConfigError, match="GATE_AUDIT_DAYS"):
            config.from_env({"GATE_AUDIT_DAYS": bad})
    readme = (PROJECT / "README.md").read_text()
    for name in config.SETTINGS:
        assert f"`{name}`" in readme, name


def _dump(engine) -> str:
    """Every value of every table, as text (what a backup of the database would show)."""
    out = []
    with engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                out.append(" ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                                    for v in row))
    return "\n".join(out)


def test_forget_leaves_no_email_and_keeps_the_organisations_request(app, client):
    gate = app.extensions["gate"]
    who = "start@client.example"
    login(client, who)
    assert submit_support(client).status_code == 303
    with gate.engine.begin() as conn:
        uid = accounts.user_id_by_email(conn, who)
        ident = accounts.identity(conn, uid, gate.tariffs, gate.cfg.timezone)
        _, token = changes.token_issue(conn, changes.CLI, gate.key, ident, 600, 1)
        changes.user_disable(conn, changes.CLI, who, True)
        changes.user_disable(conn, changes.CLI, who, False)
    with gate.engine.begin() as conn:  # the request's mails went out (sending: test_outbox.py)
        conn.execute(db.outbox.update().where(db.outbox.c.request_id.is_not(None))
                     .values(sent_at=utcnow()))
    login(app.test_client(), who, "wrong-password-1")
    assert who in _dump(gate.engine)
    with gate.engine.begin() as conn:
        assert changes.user_forget(conn, changes.CLI, who) == f"user#{uid}"
    gate.identities.invalidate()
    dump = _dump(gate.engine)
    assert who not in dump and "+7 (900) 123-45-67" not in dump
    assert "Не грузятся цены" in dump  # the organisation's request stays
    rows = _all(gate.engine)
    assert {r.action for r in rows} >= {"password.login", "token.issue", "user.disable",
                                         "user.enable", "password.refused", "user.forget"}
    assert all(who not in (r.actor, r.target) and who not in (r.details or "") for r in rows)
    assert login(app.test_client(), who).status_code == 401
    assert app.test_client().get("/launches/", headers={"Authorization": f"Bearer {token}"}
                                 ).status_code == 401
    assert client.get("/launches/", headers={"Accept": "text/html"}).status_code == 303
    with gate.engine.begin() as conn:  # the address is free again
        changes.user_add(conn, changes.CLI, who, PASSWORD, org="Сеть Старт")
    assert login(app.test_client(), who).status_code == 303
    staff = app.test_client()
    login(staff, "staff@vendor.example")
    assert "Не грузятся цены" in staff.get("/support/").get_data(as_text=True)


def test_a_revoked_token_is_refused_by_another_process_within_its_refresh(app):
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        uid = accounts.user_id_by_email(conn, "pair@client.example")
        ident = accounts.identity(conn, uid, gate.tariffs, gate.cfg.timezone)
        tid, token = changes.token_issue(conn, changes.CLI, gate.key, ident, 600, 1)
    other = Identities(gate.engine, gate.key, gate.tariffs, gate.cfg.timezone, refresh=0.2)
    claims = other.cache.get(token)
    assert claims["tid"] == tid and other.from_claims(claims) is not None
    with gate.engine.begin() as conn:
        changes.token_revoke(conn, changes.CLI, tid)
    time.sleep(0.3)  # the other process's next refresh (20 s in production)
    assert other.from_claims(claims) is None
    assert Identities.__init__.__defaults__[0] == 20  # REFRESH: within the contract's 60 s


def test_last_use_is_written_in_batches_not_per_request(app, client):
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        uid = accounts.user_id_by_email(conn, "pair@client.example")
        ident = accounts.identity(conn, uid, gate.tariffs, gate.cfg.timezone)
        tid, token = changes.token_issue(conn, changes.CLI, gate.key, ident, 600, 1)
    statements = []
    sa.event.listen(gate.engine, "before_cursor_execute",
                    lambda *a: statements.append(a[2]))
    for _ in range(20):
        assert client.get("/launches/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert not [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "INSERT"))]
    with gate.engine.connect() as conn:
        assert api_tokens.live(conn, uid)[0].last_used_at is None
    assert gate.identities.token_use.flush(gate.engine) == 1
    with gate.engine.connect() as conn:
        used = api_tokens.live(conn, uid)[0].last_used_at
    assert used is not None and abs((utcnow() - used).total_seconds()) < 30
    assert gate.identities.token_use.flush(gate.engine) == 0


def test_the_housekeeper_flushes_and_prunes(app):
    from gate.housekeeping import Housekeeper
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        audit.record(conn, "cli", "org.add", "Старая", at=utcnow() - dt.timedelta(days=40))
    keeper = Housekeeper(gate.engine, gate.identities, gate.refusals, audit_days=30)
    gate.identities.token_use.note(12345)
    keeper.tick(final=True)
    keeper.tick()
    assert "Старая" not in [r.target for r in _all(gate.engine)]
    assert not gate.identities.token_use._seen


def test_the_housekeeper_thread_stops_and_can_be_joined(app):
    """`gate serve` joins it at exit for its last batch; an attribute of threading.Thread
    shadowed by the housekeeper once made join() raise TypeError."""
    from gate.housekeeping import Housekeeper
    gate = app.extensions["gate"]
    keeper = Housekeeper(gate.engine, gate.identities, gate.refusals, audit_days=30, interval=0.05)
    keeper.start()
    time.sleep(0.2)
    keeper.stop()
    keeper.join(5)
    assert not keeper.is_alive()


def test_the_housekeeper_keeps_the_accounts_snapshot_fresh_without_requests(app):
    """A worker process no request reaches still reloads its snapshot: it is what answers when
    the database goes away, and a logout made in another process must be in it."""
    from gate.housekeeping import Housekeeper
    gate = app.extensions["gate"]
    gate.identities.refresh = 0.05
    first = gate.identities.snapshot()
    time.sleep(0.1)
    Housekeeper(gate.engine, gate.identities, gate.refusals, audit_days=30).tick()
    assert gate.identities._snap is not first and gate.identities._snap.taken_at > first.taken_at
