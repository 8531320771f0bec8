"""The weekly digest: opt-in in /account/, what it lists at sending time (a downgrade between
the change and the digest leaks nothing), once across processes, through the outbox to a real
SMTP server (aiosmtpd), with List-Unsubscribe and a signed unsubscribe link."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from gate import accounts, digest, outbox
from gate.db import digest_runs, digest_subscriptions, outbox as outbox_t, users
from gate.engine import make_engine
from gate.sections import SECTIONS
from tests.helpers.http import csrf_of, login
from tests.helpers.project import make_project, marker, PASSWORD, TEST_TARIFFS
from tests.helpers.ports import free_port, wait_until
from tests.helpers.processes import wait_healthy

ORIGIN = {"Origin": "http://localhost"}
BASE = "https://kb.example.ru"


def now_due(cfg) -> dt.datetime:
    """A moment when this week's digest is due (GATE_DIGEST_AT has passed)."""
    weekday, time = digest.parse_at(cfg.digest_at)
    today = dt.datetime.now(cfg.timezone)
    monday = today.date() - dt.timedelta(days=today.weekday())
    return dt.datetime.combine(monday + dt.timedelta(days=weekday), time, cfg.timezone) \
        + dt.timedelta(minutes=1)


def subscribe(app, *emails):
    with app.extensions["gate"].engine.begin() as conn:
        for email in emails:
            digest.subscribe(conn, accounts.user_id_by_email(conn, email), True)


def deliver(app, sink) -> dict:
    """Delivers the outbox to `sink`; recipient -> the mails they got."""
    gate = app.extensions["gate"]
    outbox.deliver_due(gate.engine, dataclasses.replace(gate.cfg, smtp_host="127.0.0.1",
                                                        smtp_port=sink.port))
    got: dict = {}
    for m in sink.snapshot():
        for rcpt in m.rcpt_tos:
            got.setdefault(rcpt, []).append(m.message)
    return got


def sections_of(text: str) -> set[str]:
    return {s for s in SECTIONS if marker(s, "body") in text}


def assert_no_marker(text: str, allowed: set[str]):
    for s in SECTIONS:
        if s not in allowed:
            for kind in ("title", "body", "url"):
                assert marker(s, kind) not in text, f"{kind} of {s} leaks"


def test_the_digest_is_off_by_default_and_switched_in_the_profile(app):
    client = app.test_client()
    login(client, "func@client.example")
    page = client.get("/account/").get_data(as_text=True)
    assert 'name="digest" value="on" >' in page or 'value="on" >' in page
    assert "рассылка выключена" in page
    csrf = csrf_of(page)
    assert client.post("/account/digest", data={"csrf_token": csrf, "digest": "on"},
                       headers=ORIGIN).status_code == 303
    assert "рассылка включена" in client.get("/account/").get_data(as_text=True)
    assert client.post("/account/digest", data={"digest": "on"}, headers=ORIGIN).status_code == 400
    assert client.post("/account/digest", data={"csrf_token": csrf}, headers=ORIGIN).status_code == 303
    assert "рассылка выключена" in client.get("/account/").get_data(as_text=True)


def test_a_downgrade_between_change_and_digest_leaks_nothing(app, sink):
    gate = app.extensions["gate"]
    subscribe(app, "start@client.example", "func@client.example", "pair@client.example",
              "ended@client.example", "disabled@client.example", "staff@vendor.example")
    # the notes were written while Сеть Старт had every section; then its tariff goes down
    with gate.engine.begin() as conn:
        accounts.set_org(conn, "Сеть Старт", gate.tariffs, tariff="solo-func")
    queued = digest.send_due(gate.engine, gate.cfg, gate.tariffs, digest.secret(gate.key), BASE,
                             now=now_due(gate.cfg))
    assert queued == 4  # start, func, pair, staff: not the ended contract, not the disabled one
    got = deliver(app, sink)
    assert set(got) == {"start@client.example", "func@client.example", "pair@client.example",
                        "staff@vendor.example"}
    expected = {"start@client.example": {"functionality"}, "func@client.example": {"functionality"},
                "pair@client.example": {"launches", "maintenance"},
                "staff@vendor.example": set(SECTIONS)}
    for email, [mail] in got.items():
        text = mail.get_content()
        raw = mail.as_string()
        assert sections_of(text) == expected[email], email
        assert_no_marker(raw, expected[email])
        assert "Обновили публичнуюзаметку." in text
        link = re.search(r"<(https://kb\.example\.ru/account/unsubscribe/[^>]+)>",
                         mail["List-Unsubscribe"]).group(1)
        assert link in text
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail["Message-ID"].startswith("<kb-digest-")


def test_the_digest_is_sent_once_per_week_across_processes(app, built_project, tmp_path):
    gate = app.extensions["gate"]
    subscribe(app, "func@client.example", "pair@client.example")
    moment = now_due(gate.cfg)
    start = threading.Barrier(6)
    results, errors = [], []

    def claim():
        engine = make_engine(gate.cfg.database_url)  # a connection pool of its own, as a process
        try:
            start.wait(10)
            results.append(digest.send_due(engine, gate.cfg, gate.tariffs,
                                           digest.secret(gate.key), BASE, now=moment))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
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
        ids = [r[0] for r in conn.execute(sa.select(outbox_t.c.message_id))]
    assert len(ids) == len(set(ids)) == 2
    # later the same week: nothing more
    assert digest.send_due(gate.engine, gate.cfg, gate.tariffs, digest.secret(gate.key), BASE,
                           now=moment + dt.timedelta(days=2)) is None


def test_not_due_before_its_time():
    tz = dt.timezone(dt.timedelta(hours=3))
    wednesday = dt.datetime(2026, 12, 2, 8, 59, tzinfo=tz)
    assert digest.slot_due(wednesday, "wed 09:00") is None
    assert digest.slot_due(wednesday + dt.timedelta(minutes=1), "wed 09:00") == "2026-W49"
    assert digest.slot_due(wednesday, "mon 09:00") == "2026-W49"
    with pytest.raises(digest.DigestError):
        digest.parse_at("someday")


def test_a_digest_lists_only_what_is_new_since_the_previous_one():
    today = dt.date(2026, 12, 7)
    entries = [{"path": "/a/", "title": "A", "date": "2026-12-05", "note": "n1"},
               {"path": "/b/", "title": "B", "date": "2026-11-20", "note": "n2"},
               {"path": "/c/", "title": "C", "date": "2026-12-01", "note": "late merge"}]
    assert [e["path"] for e in digest.new_entries(entries, None, today)] == ["/a/", "/c/"]
    known = {"/a/#2026-12-05", "/b/#2026-11-20"}  # /c/'s note reached the site after that digest
    assert [e["path"] for e in digest.new_entries(entries, known, today)] == ["/c/"]


def test_the_unsubscribe_link_works_without_login_and_only_when_signed(app):
    gate = app.extensions["gate"]
    subscribe(app, "func@client.example")
    with gate.engine.connect() as conn:
        uid = accounts.user_id_by_email(conn, "func@client.example")
    token = digest.unsubscribe_token(digest.secret(gate.key), uid)
    client = app.test_client()  # not logged in
    page = client.get(f"/account/unsubscribe/{token}")
    assert page.status_code == 200 and "Отписаться" in page.get_data(as_text=True)
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad in (forged, f"{uid + 1}.{token.split('.')[1]}", "x", "1." + "a" * 40):
        assert client.post(f"/account/unsubscribe/{bad}").status_code == 404
    with gate.engine.connect() as conn:
        assert digest.subscribed(conn, uid)
    # RFC 8058 one-click: a POST from the mail provider, no Origin, no form token
    assert client.post(f"/account/unsubscribe/{token}",
                       data="List-Unsubscribe=One-Click").status_code == 200
    with gate.engine.connect() as conn:
        assert not digest.subscribed(conn, uid)


def cli(app, monkeypatch, capsys, *args) -> tuple[int, str]:
    from gate.cli import main
    gate = app.extensions["gate"]
    monkeypatch.setenv("GATE_ROOT", str(gate.cfg.root))
    monkeypatch.setenv("GATE_INSTANCE", str(gate.cfg.instance))
    monkeypatch.setenv("GATE_TARIFFS", str(gate.cfg.tariffs_path))
    monkeypatch.delenv("GATE_DATABASE_URL", raising=False)
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().out


def test_dry_run_says_first_whether_subscribed(app, monkeypatch, capsys):
    code, out = cli(app, monkeypatch, capsys, "digest", "--dry-run", "pair@client.example")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "subscribed: no"
    assert "To: pair@client.example" in lines and sections_of(out) == {"launches", "maintenance"}
    subscribe(app, "pair@client.example")
    code, out = cli(app, monkeypatch, capsys, "digest", "--dry-run", "pair@client.example")
    assert out.splitlines()[0] == "subscribed: yes"
    code, out = cli(app, monkeypatch, capsys, "digest", "--dry-run", "ended@client.example")
    assert out.splitlines()[1].startswith("nothing would be sent") and not sections_of(out)
    code, out = cli(app, monkeypatch, capsys, "digest", "--dry-run", "nobody@client.example")
    assert code == 1


# --- `gate serve`: the sender runs beside the outbox worker, in every process -------------------

def _gate_cli(env, *args, stdin=None):
    r = subprocess.run([sys.executable, "-m", "gate", *args], env=env, input=stdin,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_two_gate_serve_processes_send_one_digest(tmp_path, sink):
    from gate.build import build_all
    root = make_project(tmp_path / "project", TEST_TARIFFS)
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    instance = tmp_path / "instance"
    env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(instance),
           "GATE_MODE": "local", "GATE_SMTP_HOST": "127.0.0.1", "GATE_SMTP_PORT": str(sink.port),
           "GATE_DIGEST_AT": "mon 00:00", "GATE_BASE_URL": BASE}
    for name in ("GATE_TARIFFS", "GATE_DATABASE_URL", "GATE_EDGE"):
        env.pop(name, None)
    _gate_cli(env, "org", "add", "Сеть Пара", "--tariff", "pair")
    for email in ("a@client.example", "b@client.example"):
        _gate_cli(env, "user", "add", email, "--org", "Сеть Пара", "--password-stdin",
                  stdin=PASSWORD + "\n")
    db = instance / "gate.sqlite3"
    con = sqlite3.connect(db)
    with con:
        con.execute("INSERT INTO digest_subscriptions (user_id, created_at) "
                    "SELECT id, '2026-01-01 00:00:00' FROM users")
    con.close()
    processes = []
    try:
        for i in range(2):
            port = free_port()
            log = open(tmp_path / f"serve-{i}.log", "wb")
            p = subprocess.Popen([sys.executable, "-m", "gate", "serve", "--port", str(port)],
                                 env=env, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            processes.append(p)
            wait_healthy(f"http://127.0.0.1:{port}", p, tmp_path / f"serve-{i}.log")
        wait_until(lambda: len(sink.snapshot()) >= 2, 60, what="two digest mails")

        def settled():
            c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                runs = c.execute("SELECT count(*) FROM digest_runs").fetchone()[0]
                unsent = c.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
                return runs == 1 and unsent == 0
            finally:
                c.close()
        wait_until(settled, 30, what="the digest claimed once and delivered")
    finally:
        for p in processes:
            os.killpg(p.pid, signal.SIGTERM)
            # a worker still loading when the signal comes is killed by granian after 15 s
            p.wait(40)
    got = sorted((m.rcpt_tos[0], m.message_id.split("@")[0]) for m in sink.snapshot())
    assert len(got) == 2 and {r for r, _ in got} == {"a@client.example", "b@client.example"}
    for m in sink.snapshot():
        assert sections_of(m.message.get_content()) == {"launches", "maintenance"}
        assert m.message["List-Unsubscribe"].startswith(f"<{BASE}/account/unsubscribe/")
