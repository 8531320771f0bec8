"""The console and invitations when storage fails (contract, "When storage fails"): on a full
disk every console change and the invitation form answer 503 with Retry-After in Russian and
write nothing (no audit row either); console pages keep being served; a refused login is still
answered although its audit row cannot be written, and the row comes once there is space.

The instance lives on a tiny tmpfs filled to the last byte, as in tests/test_storage_faults.py;
mounting one needs root, elsewhere these tests are skipped."""

from __future__ import annotations

import re

import sqlalchemy as sa

from gate import changes
from gate.db import audit, invitations, orgs, outbox, users
from tests.helpers.http import csrf_of, login
from tests.helpers.project import make_config, populate

HTML = {"Accept": "text/html"}


def _counts(engine) -> dict:
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                for t in (audit, orgs, users, invitations, outbox)}


def test_console_and_invitations_on_a_full_disk(built_project, disk):
    from gate.factory import create_app

    root, _ = built_project
    app = create_app(make_config(root, disk.path / "instance"))
    app.config["TESTING"] = True
    gate = app.extensions["gate"]
    populate(gate.engine, gate.tariffs)
    with gate.engine.begin() as conn:
        changes.user_invite(conn, changes.CLI, gate.cfg, "http://localhost", "new@pair.example",
                            org="Сеть Пара")
        body = conn.execute(sa.select(outbox.c.body).order_by(outbox.c.id.desc())).scalar()
    import email
    import email.policy
    link = re.search(r"/invite/[A-Za-z0-9_-]+", email.message_from_bytes(
        body, policy=email.policy.default).get_body().get_content()).group(0)
    staff, person = app.test_client(), app.test_client()
    assert login(staff, "staff@vendor.example").status_code == 303
    token = csrf_of(staff.get("/staff/orgs/").get_data(as_text=True))
    form = csrf_of(person.get(link).get_data(as_text=True))
    with gate.engine.connect() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.email == "start@client.example")).scalar()
    before = _counts(gate.engine)
    disk.fill()

    posts = [("/staff/orgs/", {"name": "Сеть Новая", "tariff": "start"}),
             ("/staff/orgs/1/", {"tariff": "pair", "until": "", "external_id": "x"}),
             ("/staff/orgs/1/end", {}),
             ("/staff/people/invite", {"email": "x@pair.example", "org": "Сеть Пара"}),
             (f"/staff/people/{uid}/disable", {}), (f"/staff/people/{uid}/admin", {"on": "1"}),
             (f"/staff/people/{uid}/forget", {})]
    for path, data in posts:
        r = staff.post(path, data={"csrf_token": token, **data}, headers=HTML)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, (path, r.status_code)
        assert "ничего не изменено" in r.get_data(as_text=True), path
    r = person.post(link, data={"csrf_token": form, "new": "a-long-password-1",
                                "repeat": "a-long-password-1"})
    assert r.status_code == 503 and "kb_session=" not in r.headers.get("Set-Cookie", "")
    for path in ("/staff/", "/staff/orgs/", "/staff/people/", f"/staff/people/{uid}/",
                 "/staff/audit/", "/staff/tokens/"):
        assert staff.get(path, headers=HTML).status_code == 200, path
    # a login is a change too (CONTRACT: 503): its try cannot be counted (gate.shared_limits)
    assert login(app.test_client(), "start@client.example", "wrong-password-1").status_code == 503
    assert _counts(gate.engine) == before  # nothing half-written, no audit row either

    disk.free()
    assert login(app.test_client(), "start@client.example", "wrong-password-1").status_code == 401
    gate.refusals.clock = lambda: 10**10  # the minute is over: the counted refusal is written
    gate.refusals.flush()
    after = _counts(gate.engine)
    assert after["audit"] == before["audit"] + 1
    r = person.post(link, data={"csrf_token": form, "new": "a-long-password-1",
                                "repeat": "a-long-password-1"})
    assert r.status_code == 303  # the link survived the fault
    gate.engine.dispose()
