"""The leak crawl, extended to what changed: the feed for every identity (by cookie and by its
personal key) and the digest's dry run for every tariff. Nothing of a section a reader's
tariff does not include may appear: no title, no note, no address."""

from __future__ import annotations

import re

import pytest

from gate import accounts
from gate.sections import SECTIONS
from tests.helpers.http import csrf_of, login
from tests.helpers.project import marker, PASSWORD

ORIGIN = {"Origin": "http://localhost"}
# identity -> (e-mail, sections it may see); the people of tests/conftest.PEOPLE
IDENTITIES = {
    "anonymous": (None, set()),
    "start": ("start@client.example", set(SECTIONS)),
    "one-section": ("func@client.example", {"functionality"}),
    "pair": ("pair@client.example", {"launches", "maintenance"}),
    "ended": ("ended@client.example", set()),
    "staff": ("staff@vendor.example", set(SECTIONS)),
}


def assert_clean(where: str, text: str, allowed: set[str]):
    for s in SECTIONS:
        if s in allowed:
            continue
        for kind in ("title", "body", "url", "slug"):
            assert marker(s, kind) not in text, f"{where} leaks the {kind} of {s}"


@pytest.mark.parametrize("who", IDENTITIES)
def test_the_feed_of_every_identity_holds_only_its_sections(app, who):
    email, allowed = IDENTITIES[who]
    client = app.test_client()
    if email:
        login(client, email)
    text = client.get("/feed.xml").get_data(as_text=True)
    assert_clean(f"/feed.xml ({who})", text, allowed)
    for s in allowed:  # and what the identity may see is there
        assert marker(s, "body") in text and marker(s, "url") in text
    if not email:
        return
    csrf = csrf_of(client.get("/account/").get_data(as_text=True))
    client.post("/account/feed-key", data={"csrf_token": csrf, "action": "new"}, headers=ORIGIN)
    page = client.get("/account/").get_data(as_text=True)
    key = re.search(r"/feed\.xml\?key=([0-9a-f.]+)", page).group(1)
    by_key = app.test_client().get("/feed.xml", query_string={"key": key})
    assert by_key.status_code == 200
    assert_clean(f"/feed.xml?key= ({who})", by_key.get_data(as_text=True), allowed)
    assert by_key.data == client.get("/feed.xml").data


def test_the_disabled_persons_key_gives_nothing(app):
    client = app.test_client()
    login(client, "start@client.example")
    csrf = csrf_of(client.get("/account/").get_data(as_text=True))
    client.post("/account/feed-key", data={"csrf_token": csrf, "action": "new"}, headers=ORIGIN)
    key = re.search(r"/feed\.xml\?key=([0-9a-f.]+)", client.get("/account/").get_data(as_text=True)).group(1)
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        accounts.set_disabled(conn, "start@client.example", True)
    gate.identities.invalidate()
    r = app.test_client().get("/feed.xml", query_string={"key": key})
    assert r.status_code == 404
    assert_clean("/feed.xml?key= (disabled)", r.get_data(as_text=True), set())


TARIFF_PEOPLE = {  # one person per tariff of tests/conftest.TEST_TARIFFS, plus staff and ended
    "start": ("Сеть Т-start", set(SECTIONS)),
    "solo-func": ("Сеть Т-solo-func", {"functionality"}),
    "solo-claim": ("Сеть Т-solo-claim", {"claim-desk"}),
    "pair": ("Сеть Т-pair", {"launches", "maintenance"}),
}


def test_the_digest_dry_run_of_every_tariff_holds_only_its_sections(app, monkeypatch, capsys):
    from gate.cli import main
    gate = app.extensions["gate"]
    people = {}
    with gate.engine.begin() as conn:
        for tariff, (org, allowed) in TARIFF_PEOPLE.items():
            accounts.add_org(conn, org, tariff, gate.tariffs)
            email = f"{tariff}@digest.example"
            accounts.add_user(conn, email, PASSWORD, org=org)
            people[email] = allowed
    people["staff@vendor.example"] = set(SECTIONS)
    people["ended@client.example"] = set()
    people["disabled@client.example"] = set()
    monkeypatch.setenv("GATE_ROOT", str(gate.cfg.root))
    monkeypatch.setenv("GATE_INSTANCE", str(gate.cfg.instance))
    monkeypatch.setenv("GATE_TARIFFS", str(gate.cfg.tariffs_path))
    monkeypatch.delenv("GATE_DATABASE_URL", raising=False)
    for email, allowed in people.items():
        capsys.readouterr()
        assert main(["digest", "--dry-run", email]) == 0
        out = capsys.readouterr().out
        assert out.startswith("subscribed: no\n")
        assert_clean(f"digest of {email}", out, allowed)
        for s in allowed:
            assert marker(s, "body") in out, (email, s)
