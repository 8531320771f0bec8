"""gate.identities: every process judges a token by the accounts as they stand, even when
another process (which read them later) issued it."""

from __future__ import annotations

from gate import accounts
from gate.identities import Identities


def _worker(gate):
    """A second process's view of the same database: its own snapshot."""
    return Identities(gate.engine, gate.key, gate.tariffs, gate.identities.tz)


def _change_tariff(gate, tariff):
    with gate.engine.begin() as conn:
        accounts.set_org(conn, "Сеть Старт", gate.tariffs, tariff=tariff)


def _session_claims(issuer, uid):
    ident = issuer.from_claims({"sub": str(uid), "typ": "api", "iat": 0,
                                "tariff": "", "sections": []})
    token = issuer.session_token(ident, "secret")
    return issuer.session_claims(token)


def _uid(gate):
    with gate.engine.connect() as conn:
        return accounts.user_id_by_email(conn, "start@client.example")


def test_a_downgrade_renewed_elsewhere_is_not_undone_by_an_older_snapshot(app):
    gate = app.extensions["gate"]
    uid = _uid(gate)
    stale, renewing = _worker(gate), _worker(gate)
    assert len(stale.snapshot().orgs) and stale.person(uid).sections >= {"launches"}
    _change_tariff(gate, "solo-func")
    claims = _session_claims(renewing, uid)  # the other worker reads the accounts afresh
    assert claims["sections"] == ["functionality"]
    ident = stale.from_claims(claims)
    assert ident.sections == frozenset({"functionality"}) and ident.tariff == "solo-func"


def test_an_upgrade_in_the_same_second_as_the_token_applies(app):
    gate = app.extensions["gate"]
    uid = _uid(gate)
    _change_tariff(gate, "solo-func")
    worker = _worker(gate)
    claims = _session_claims(worker, uid)
    _change_tariff(gate, "start")
    worker.invalidate()  # this process made the change: its snapshot is read again
    assert "launches" in worker.from_claims(claims).sections


def test_agreeing_tokens_never_reread_the_snapshot(app):
    gate = app.extensions["gate"]
    uid = _uid(gate)
    worker = _worker(gate)
    claims = _session_claims(worker, uid)
    first = worker.snapshot()
    for _ in range(50):
        worker.from_claims(claims)
    assert worker.snapshot() is first


def test_an_older_disagreeing_token_is_judged_by_the_snapshot_without_rereading(app):
    gate = app.extensions["gate"]
    uid = _uid(gate)
    worker = _worker(gate)
    claims = _session_claims(worker, uid)
    _change_tariff(gate, "solo-func")
    worker.invalidate()
    assert worker.from_claims(claims).sections == frozenset({"functionality"})
    current = worker.snapshot()
    for _ in range(50):
        worker.from_claims(claims)
    assert worker.snapshot() is current
