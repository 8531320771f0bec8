"""The console's commands as scripts use them (`python -m gate` in a subprocess): invitations,
admins, erasure, API token ids, the audit log, external ids. Exit codes, one-line errors on
stderr, output shapes exactly as the contract has them."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys

import pyotp
import pytest

from gate import accounts, totp
from gate.engine import make_engine
from tests.helpers.project import PASSWORD


@pytest.fixture(scope="module")
def refusal_instance(built_project, tmp_path_factory):
    """An instance made once by the CLI for the refusals below (each test gets a copy): an
    organisation with an external id, an ended one, an active and a disabled person, a staff
    member invited."""
    root, _ = built_project
    instance = tmp_path_factory.mktemp("refusals") / "instance"
    env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(instance),
           "GATE_MODE": "local", "PORT": "8123"}
    for name in ("GATE_BASE_URL", "GATE_DATABASE_URL", "GATE_TARIFFS"):
        env.pop(name, None)
    for args in (("org", "add", "Сеть", "--tariff", "start", "--external-id", "crm-1"),
                 ("org", "add", "Бывшая", "--tariff", "start"), ("org", "end", "Бывшая"),
                 ("user", "add", "active@example.ru", "--org", "Сеть"),
                 ("user", "add", "off@example.ru", "--org", "Сеть"),
                 ("user", "disable", "off@example.ru"),
                 ("user", "invite", "staffer@crystals.example", "--staff")):
        ok(subprocess.run([sys.executable, "-m", "gate", *args], env=env, capture_output=True,
                          text=True, timeout=120))
    return instance


@pytest.fixture
def gate_cli(built_project, tmp_path):
    root, _ = built_project
    env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(tmp_path / "instance"),
           "GATE_MODE": "local", "PORT": "8123"}
    for name in ("GATE_BASE_URL", "GATE_DATABASE_URL", "GATE_TARIFFS"):
        env.pop(name, None)

    def run(*args, stdin=None, **extra_env):
        return subprocess.run([sys.executable, "-m", "gate", *args], env={**env, **extra_env},
                              input=stdin, capture_output=True, text=True, timeout=120)
    run.database = tmp_path / "instance" / "gate.sqlite3"
    return run


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def refused(result, text: str) -> None:
    assert result.returncode != 0 and result.returncode != 2, (result.returncode, result.stdout)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gate: ") and text in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def _mails(database) -> list[tuple[str, str]]:
    con = sqlite3.connect(database)
    try:
        return [(r, email.message_from_bytes(b, policy=email.policy.default).get_body().get_content())
                for r, b in con.execute("SELECT recipient, body FROM outbox ORDER BY id")]
    finally:
        con.close()


def test_invite_mails_a_link_and_refreshes_a_pending_invitation(gate_cli):
    ok(gate_cli("org", "add", "Сеть Один", "--tariff", "start", "--external-id", "crm-1"))
    out = ok(gate_cli("user", "invite", "Eng@Example.ru", "--org", "Сеть Один", "--admin"))
    assert "eng@example.ru" in out
    (to, body), = _mails(gate_cli.database)
    assert to == "eng@example.ru"
    first = re.search(r"http://127\.0\.0\.1:8123/invite/[A-Za-z0-9_-]+", body).group(0)
    ok(gate_cli("user", "invite", "eng@example.ru", "--org", "Сеть Один",
                GATE_BASE_URL="https://kb.example.ru"))
    second = re.search(r"https://kb\.example\.ru/invite/[A-Za-z0-9_-]+",
                       _mails(gate_cli.database)[-1][1]).group(0)
    assert second.rsplit("/", 1)[1] != first.rsplit("/", 1)[1]
    con = sqlite3.connect(gate_cli.database)
    try:  # the older link died with the new one
        assert con.execute("SELECT count(*), count(voided_at) FROM invitations").fetchone() == (2, 1)
    finally:
        con.close()
    assert "eng@example.ru\tСеть Один\tadmin,invited" in ok(gate_cli("user", "list"))
    ok(gate_cli("user", "invite", "boss@crystals.example", "--staff"))
    assert "boss@crystals.example\tCrystals\tstaff,invited" in ok(gate_cli("user", "list"))


@pytest.mark.parametrize("args, env, message", [
    (("user", "invite", "active@example.ru", "--org", "Сеть"), {}, "already has a password"),
    (("user", "invite", "off@example.ru", "--org", "Сеть"), {}, "is disabled"),
    (("user", "invite", "a@example.ru", "--org", "Нет такой"), {}, "unknown organisation"),
    (("user", "invite", "a@example.ru", "--org", "Бывшая"), {}, "has ended"),
    (("user", "invite", "a@example.ru", "--org", "Сеть"), {"GATE_MODE": "production"},
     "GATE_BASE_URL is not set"),
    (("user", "invite", "not-an-email", "--org", "Сеть"), {}, "not a valid e-mail"),
    (("user", "invite", "a@example.ru", "--staff", "--admin"), {}, "--admin is for"),
    (("user", "invite", "staffer@crystals.example", "--org", "Сеть"), {}, "another organisation"),
    (("user", "admin", "ghost@example.ru"), {}, "unknown user"),
    (("user", "admin", "staffer@crystals.example"), {}, "is staff"),
    (("user", "forget", "ghost@example.ru"), {}, "unknown user"),
    (("token", "list", "ghost@example.ru"), {}, "unknown user"),
    (("token", "revoke", "999"), {}, "unknown token 999"),
    (("audit", "--org", "Нет такой"), {}, "unknown organisation"),
    (("org", "add", "Другая", "--tariff", "start", "--external-id", "crm-1"), {}, "already used by 'Сеть'"),
    (("org", "set", "Бывшая", "--external-id", "crm-1"), {}, "already used"),
    (("org", "add", "Другая", "--tariff", "start", "--external-id", "a\tb"), {}, "printable"),
    (("org", "set", "Сеть"), {}, "nothing to change"),
])
def test_refusals_are_one_line(gate_cli, refusal_instance, args, env, message):
    shutil.copytree(refusal_instance, gate_cli.database.parent)
    before = len(_mails(gate_cli.database))
    refused(gate_cli(*args, **env), message)
    assert len(_mails(gate_cli.database)) == before


@pytest.mark.parametrize("args", [
    ("user", "invite", "a@example.ru"),
    ("user", "invite", "a@example.ru", "--org", "Сеть", "--staff"),
    ("token", "revoke", "abc"),
    ("token", "revoke", "0"),
    ("audit", "--days", "0"),
    ("audit", "--days", "many"),
])
def test_usage_errors_exit_2(gate_cli, args):
    r = gate_cli(*args)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_token_ids_list_and_revoke(gate_cli):
    ok(gate_cli("org", "add", "T", "--tariff", "solo-func"))
    ok(gate_cli("user", "add", "t@example.ru", "--org", "T"))
    assert ok(gate_cli("token", "list", "t@example.ru")) == "id\tcreated\texpires\tlast_used\n"
    import jwt
    tokens = [ok(gate_cli("token", "t@example.ru", "--ttl", str(ttl))).strip() for ttl in (600, 86400)]
    assert all(len(t.splitlines()) == 1 for t in tokens)  # unchanged: the token alone
    ids = [jwt.decode(t, options={"verify_signature": False})["tid"] for t in tokens]
    assert ids[1] == ids[0] + 1
    header, *lines = ok(gate_cli("token", "list", "t@example.ru")).splitlines()
    assert header == "id\tcreated\texpires\tlast_used"
    assert [int(line.split("\t")[0]) for line in lines] == ids
    for line, ttl in zip(lines, (600, 86400)):
        tid, created, expires, last = line.split("\t")
        created, expires = dt.datetime.fromisoformat(created), dt.datetime.fromisoformat(expires)
        assert expires - created == dt.timedelta(seconds=ttl) and created.utcoffset() is not None
        assert last == "-"
    assert ok(gate_cli("token", "revoke", str(ids[0]))).strip() == f"token {ids[0]} revoked"
    assert "already revoked" in ok(gate_cli("token", "revoke", str(ids[0])))
    header, *lines = ok(gate_cli("token", "list", "t@example.ru")).splitlines()
    assert [int(line.split("\t")[0]) for line in lines] == [ids[1]]
    log = json.loads(ok(gate_cli("audit", "--json")))
    issued = [r for r in log if r["action"] == "token.issue"]
    assert [r["details"] for r in issued] == [{"id": ids[0], "ttl": 600}, {"id": ids[1], "ttl": 86400}]
    assert [r["details"] for r in log if r["action"] == "token.revoke"] == [{"id": ids[0]}]


def test_audit_json_shape_and_filters(gate_cli):
    ok(gate_cli("org", "add", "А", "--tariff", "start", "--until", "2030-12-31"))
    ok(gate_cli("org", "add", "Б", "--tariff", "pair"))
    ok(gate_cli("org", "set", "А", "--tariff", "pair", "--external-id", "ext-a"))
    ok(gate_cli("user", "add", "a@example.ru", "--org", "А"))
    ok(gate_cli("user", "invite", "b@example.ru", "--org", "Б"))
    ok(gate_cli("user", "disable", "a@example.ru"))
    ok(gate_cli("user", "enable", "a@example.ru"))
    ok(gate_cli("user", "admin", "a@example.ru"))
    ok(gate_cli("user", "admin", "a@example.ru", "--off"))
    ok(gate_cli("user", "password", "a@example.ru", "--password-stdin", stdin=PASSWORD + "\n"))
    ok(gate_cli("org", "end", "А"))
    ok(gate_cli("user", "forget", "b@example.ru"))
    log = json.loads(ok(gate_cli("audit", "--json")))
    assert all(set(r) == {"time", "actor", "address", "action", "target", "details"} for r in log)
    assert all(r["actor"] == "cli" and r["address"] is None for r in log)
    assert all(dt.datetime.fromisoformat(r["time"]).utcoffset() == dt.timedelta(hours=3) for r in log)
    assert [r["action"] for r in log] == [
        "org.add", "org.add", "org.set", "user.add", "user.invite", "user.disable", "user.enable",
        "user.admin", "user.admin", "user.password", "org.end", "user.forget"]
    assert log[2]["details"] == {"tariff": ["start", "pair"], "external_id": [None, "ext-a"]}
    assert [r["details"] for r in log if r["action"] == "user.admin"] == [{"admin": True}, {"admin": False}]
    assert "b@example.ru" not in json.dumps(log)
    assert [r["target"] for r in log if r["action"] in ("user.invite", "user.forget")] == \
        [log[-1]["target"]] * 2 and log[-1]["target"].startswith("user#")
    only_a = json.loads(ok(gate_cli("audit", "--json", "--org", "А")))
    assert {r["action"] for r in only_a} == {"org.add", "org.set", "user.add", "user.disable",
                                             "user.enable", "user.admin", "user.password", "org.end"}
    assert json.loads(ok(gate_cli("audit", "--json", "--days", "1"))) == log
    text = ok(gate_cli("audit")).splitlines()
    assert text[0] == "time\tactor\taddress\taction\ttarget\tdetails"
    assert len(text) == len(log) + 1 and all(len(line.split("\t")) == 6 for line in text)


def test_old_audit_rows_are_gone_after_gate_audit_days(gate_cli):
    ok(gate_cli("org", "add", "А", "--tariff", "start"))
    con = sqlite3.connect(gate_cli.database)
    with con:
        con.execute("UPDATE audit SET at = '2001-01-01 00:00:00.000000'")
    con.close()
    ok(gate_cli("org", "add", "Б", "--tariff", "start"))
    log = json.loads(ok(gate_cli("audit", "--json")))
    assert [r["target"] for r in log] == ["Б"]


def test_forget_in_the_cli(gate_cli):
    ok(gate_cli("org", "add", "А", "--tariff", "start"))
    ok(gate_cli("user", "add", "gone@example.ru", "--org", "А"))
    ok(gate_cli("token", "gone@example.ru"))
    out = ok(gate_cli("user", "forget", "gone@example.ru"))
    assert "erased" in out and "user#" in out
    assert "gone@example.ru" not in ok(gate_cli("user", "list"))
    assert "gone@example.ru" not in ok(gate_cli("audit"))
    refused(gate_cli("token", "gone@example.ru"), "unknown user")
    ok(gate_cli("user", "add", "gone@example.ru", "--org", "А"))  # the address may come back


def test_totp_reset_removes_a_second_factor_with_audit(gate_cli):
    ok(gate_cli("org", "add", "Сеть Фактор", "--tariff", "start"))
    ok(gate_cli("user", "add", "lost@phone.example", "--org", "Сеть Фактор"))
    engine = make_engine(f"sqlite:///{gate_cli.database}")
    secret = totp.new_secret()
    with engine.begin() as conn:
        user_id = accounts.user_id_by_email(conn, "lost@phone.example")
        assert totp.enrol(conn, user_id, secret, pyotp.TOTP(secret).now())
    engine.dispose()
    assert "second factor of 'lost@phone.example' removed" in ok(
        gate_cli("user", "totp-reset", "lost@phone.example"))
    again = gate_cli("user", "totp-reset", "lost@phone.example")
    assert again.returncode == 1 and "no second factor" in again.stderr
    assert "Traceback" not in again.stderr
    rows = sqlite3.connect(gate_cli.database).execute(
        "SELECT actor, target, details FROM audit WHERE action = 'totp.reset'").fetchall()
    assert rows == [("cli", "lost@phone.example", '{"via": "cli"}')]
