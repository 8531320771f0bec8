"""gate.identities: a token newer than the accounts snapshot never grants more than it says."""

from __future__ import annotations

import time

from gate import accounts, tokens


def _claims(gate, uid, sections, iat):
    token = tokens.issue(gate.key, sub=uid, org="Сеть Старт", tariff="solo-func",
                         sections=sections, typ="api", ttl=600, now=iat)
    return tokens.decode(gate.key, token, now=iat)


def test_a_token_issued_after_the_snapshot_narrows_what_it_reads(app):
    """Another worker renewed the token after a downgrade this worker's snapshot has not seen."""
    gate = app.extensions["gate"]
    with gate.engine.connect() as conn:
        uid = accounts.user_id_by_email(conn, "start@client.example")
    snap = gate.identities.snapshot()
    time.sleep(1.1)  # iat has whole seconds
    newer = gate.identities.from_claims(_claims(gate, uid, ["functionality"], time.time()))
    assert newer.sections == frozenset({"functionality"}) and newer.tariff == "solo-func"
    older = gate.identities.from_claims(_claims(gate, uid, ["functionality"], snap.loaded_at - 60))
    assert len(older.sections) == 4  # an older token: the snapshot, newer than it, decides
