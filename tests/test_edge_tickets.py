"""Edition tickets (gate/edge_tickets.py): what they open, and how the gate hands them out.

The same tickets are checked by a real nginx in tests/test_truth_table.py and tests/test_edge.py.
"""

from __future__ import annotations

import time

import pytest

from gate import edge_tickets, tokens
from gate.factory import create_app
from tests.helpers.http import login
from tests.helpers.project import PASSWORD, make_config, populate

SECRET = edge_tickets.ticket_secret(b"k" * 32)


def test_a_ticket_opens_its_edition_through_its_expiry_second():
    now = 1_800_000_000
    ticket = edge_tickets.issue(SECRET, "launches+maintenance", now + 45)
    assert edge_tickets.edition_of(SECRET, ticket, now) == "launches+maintenance"
    assert edge_tickets.edition_of(SECRET, ticket, now + 45.9) == "launches+maintenance"
    assert edge_tickets.edition_of(SECRET, ticket, now + 46) is None  # nginx: exp < now


@pytest.mark.parametrize("change", [
    lambda e, ed, o, m: f"{e}.all.{o}.{m}",
    lambda e, ed, o, m: f"{int(e) + 1}.{ed}.{o}.{m}",
    lambda e, ed, o, m: f"{e}.{ed}.{int(o) + 1}.{m}",  # another organisation's count
    lambda e, ed, o, m: f"{e}.{ed}.0{o}.{m}",
    lambda e, ed, o, m: f"{e}.{ed}.{m}",  # the three-part ticket of before
    lambda e, ed, o, m: f"{e}.{ed}.{o}.{'B' if m[0] == 'A' else 'A'}{m[1:]}",
    lambda e, ed, o, m: f"{e}.{ed}.{o}.{m[:-1]}{chr(ord(m[-1]) + 1)}",  # same digest, other spelling
    lambda e, ed, o, m: f"{e}.{ed}.{o}.{m}=",
    lambda e, ed, o, m: f"{e}.{ed}.{o}",
    lambda e, ed, o, m: f"{e}.../{ed}.{o}.{m}",
    lambda e, ed, o, m: f" {e}.{ed}.{o}.{m}",
    lambda e, ed, o, m: f"{e}.{ed}.{o}.{m}\n",
    lambda e, ed, o, m: "",
])
def test_a_changed_ticket_opens_nothing(change):
    now = int(time.time())
    exp, edition, org, mac = edge_tickets.issue(SECRET, "functionality", now + 45, 17).split(".")
    assert edge_tickets.edition_of(SECRET, change(exp, edition, org, mac), now) is None
    assert edge_tickets.edition_of(SECRET, None, now) is None


def test_a_ticket_names_the_organisation_it_counts_for():
    now = 1_800_000_000
    ticket = edge_tickets.issue(SECRET, "functionality", now + 45, 17)
    assert ticket.split(".")[2] == "17"
    assert edge_tickets.read(SECRET, ticket, now) == ("functionality", 17)
    assert edge_tickets.read(SECRET, edge_tickets.issue(SECRET, "public", now + 45), now) == ("public", 0)
    with pytest.raises(ValueError):
        edge_tickets.issue(SECRET, "all", now, -1)


def test_the_secret_is_derived_and_never_the_signing_key():
    key = b"k" * 32
    assert SECRET != key.hex() and len(SECRET) == 64
    assert edge_tickets.ticket_secret(b"j" * 32) != SECRET
    other = edge_tickets.issue(edge_tickets.ticket_secret(b"j" * 32), "all", int(time.time()) + 9)
    assert edge_tickets.edition_of(SECRET, other, time.time()) is None
    with pytest.raises(ValueError):
        edge_tickets.issue(SECRET, "../all", int(time.time()))


# --- the gate hands tickets out in edge mode --------------------------------------------------

@pytest.fixture
def edge_app(built_project, tmp_path):
    root, _ = built_project
    application = create_app(make_config(root, tmp_path / "edge-instance", edge=True))
    application.config["TESTING"] = True
    gate = application.extensions["gate"]
    populate(gate.engine, gate.tariffs)
    return application


def _ticket(client):
    cookie = client.get_cookie(edge_tickets.COOKIE)
    return cookie.value if cookie else None


def _secret(app):
    return app.extensions["gate"].ticket_secret


def test_login_renewal_and_logout_carry_the_ticket(edge_app):
    client = edge_app.test_client()
    assert login(client, "func@client.example").status_code == 303
    token = client.get_cookie("kb_session").value
    claims = tokens.decode(edge_app.extensions["gate"].key, token)
    ticket = _ticket(client)
    assert edge_tickets.edition_of(_secret(edge_app), ticket, time.time()) == "functionality"
    assert int(ticket.split(".")[0]) == claims["exp"]  # never longer than its token

    # an expired token is renewed, and the ticket with it
    gate = edge_app.extensions["gate"]
    old = tokens.issue(gate.key, sub=int(claims["sub"]), org=claims["org"], tariff=claims["tariff"],
                       sections=claims["sections"], typ="session", ttl=5, sid=claims["sid"],
                       now=time.time() - 60)
    client.set_cookie("kb_session", old)
    client.set_cookie(edge_tickets.COOKIE, edge_tickets.issue(gate.ticket_secret, "functionality",
                                                               int(time.time()) - 50))
    r = client.get("/functionality/", headers={"Accept": "text/html"})
    assert r.status_code == 200
    renewed = _ticket(client)
    assert edge_tickets.edition_of(gate.ticket_secret, renewed, time.time()) == "functionality"

    page = client.get("/")
    assert page.status_code == 200
    form = client.get("/logout").get_data(as_text=True)
    assert 'action="/logout"' in form
    r = client.post("/logout", headers={"Origin": "http://localhost"})
    assert r.status_code == 303
    assert client.get_cookie("kb_session") is None and _ticket(client) is None


def test_a_session_without_a_ticket_gets_one_and_a_right_one_is_left_alone(edge_app):
    client = edge_app.test_client()
    login(client, "start@client.example")
    client.delete_cookie(edge_tickets.COOKIE)
    r = client.get("/launches/")  # a page the fast path would serve: it must set the ticket
    assert r.status_code == 200
    assert edge_tickets.edition_of(_secret(edge_app), _ticket(client), time.time()) == "all"
    with edge_app.extensions["gate"].engine.connect() as conn:
        from gate import accounts
        org_id = accounts.org_by_name(conn, "Сеть Старт").id
    assert edge_tickets.read(_secret(edge_app), _ticket(client), time.time())[1] == org_id
    again = client.get("/launches/")
    assert again.status_code == 200
    assert not any(h.startswith(edge_tickets.COOKIE) for h in again.headers.getlist("Set-Cookie"))


def test_a_ticket_for_another_edition_is_replaced(edge_app):
    client = edge_app.test_client()
    login(client, "func@client.example")
    client.set_cookie(edge_tickets.COOKIE, edge_tickets.issue(_secret(edge_app), "all",
                                                               int(time.time()) + 40))
    r = client.get("/launches/", headers={"Accept": "text/html"})
    assert r.status_code == 403
    assert edge_tickets.edition_of(_secret(edge_app), _ticket(client), time.time()) == "functionality"


def test_a_ticket_without_a_session_is_cleared(edge_app):
    client = edge_app.test_client()
    client.set_cookie(edge_tickets.COOKIE, edge_tickets.issue(_secret(edge_app), "all",
                                                               int(time.time()) + 40))
    r = client.get("/")
    assert r.status_code == 200
    assert _ticket(client) is None


def test_bearer_requests_and_standalone_mode_set_no_ticket(edge_app, app):
    gate = edge_app.extensions["gate"]
    with gate.engine.connect() as conn:
        from gate import accounts
        uid = accounts.user_id_by_email(conn, "start@client.example")
    api = tokens.issue(gate.key, sub=uid, org="Сеть Старт", tariff="start",
                       sections=["launches"], typ="api", ttl=60)
    r = edge_app.test_client().get("/launches/", headers={"Authorization": f"Bearer {api}"})
    assert r.status_code == 200
    assert not r.headers.getlist("Set-Cookie")

    standalone = app.test_client()
    assert login(standalone, "start@client.example", PASSWORD).status_code == 303
    assert standalone.get_cookie("kb_session") is not None
    assert _ticket(standalone) is None
