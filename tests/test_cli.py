"""The `gate` command as a script uses it: exit codes, one-line errors, no tracebacks."""

import os
import subprocess
import sys

import pytest

from tests.helpers.project import PASSWORD


@pytest.fixture
def gate_cli(built_project, tmp_path):
    root, _ = built_project
    env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(tmp_path / "instance")}

    def run(*args, stdin=None, **extra_env):
        return subprocess.run([sys.executable, "-m", "gate", *args], env={**env, **extra_env},
                              input=stdin, capture_output=True, text=True, timeout=120)
    return run


def ok(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_org_and_user_lifecycle(gate_cli):
    ok(gate_cli("org", "add", "Сеть Один", "--tariff", "start", "--until", "2030-12-31"))
    out = ok(gate_cli("user", "add", "Eng@Example.ru", "--org", "Сеть Один"))
    password = out.strip().splitlines()[-1]
    assert len(password) >= 16 and " " not in password  # alone on the last line
    ok(gate_cli("user", "add", "staff@crystals.example", "--staff", "--password-stdin", stdin=PASSWORD + "\n"))
    listing = ok(gate_cli("user", "list"))
    assert "eng@example.ru\tСеть Один" in listing and "staff@crystals.example" in listing
    assert "eng@example.ru" in ok(gate_cli("user", "list", "--org", "Сеть Один"))
    assert "staff@crystals.example" not in ok(gate_cli("user", "list", "--org", "Сеть Один"))
    ok(gate_cli("org", "set", "Сеть Один", "--tariff", "pair"))
    assert "Сеть Один\tpair\t2030-12-31\tactive" in ok(gate_cli("org", "list"))
    ok(gate_cli("org", "end", "Сеть Один"))
    assert "ended" in ok(gate_cli("org", "list"))
    ok(gate_cli("user", "disable", "eng@example.ru"))
    assert "disabled" in ok(gate_cli("user", "list"))
    ok(gate_cli("user", "enable", "eng@example.ru"))
    new = ok(gate_cli("user", "password", "eng@example.ru")).strip().splitlines()[-1]
    assert new != password


def test_token_is_one_line_and_refused_for_disabled(gate_cli):
    import jwt
    ok(gate_cli("org", "add", "T", "--tariff", "solo-func"))
    ok(gate_cli("user", "add", "t@example.ru", "--org", "T"))
    out = ok(gate_cli("token", "t@example.ru", "--ttl", "600"))
    assert len(out.strip().splitlines()) == 1
    claims = jwt.decode(out.strip(), options={"verify_signature": False})
    assert claims["sections"] == ["functionality"] and claims["exp"] - claims["iat"] == 600
    ok(gate_cli("user", "disable", "t@example.ru"))
    r = gate_cli("token", "t@example.ru")
    assert r.returncode != 0 and "disabled" in r.stderr


@pytest.mark.parametrize("args, message", [
    (("org", "add", "X", "--tariff", "gold"), "unknown tariff 'gold'"),
    (("org", "add", "X", "--tariff", "start", "--until", "31.12.2030"), "bad date"),
    (("org", "set", "Nobody", "--tariff", "start"), "unknown organisation"),
    (("org", "end", "Nobody"), "unknown organisation"),
    (("user", "add", "not-an-email", "--org", "Dup"), "not a valid e-mail"),
    (("user", "add", "иван@почта.рф", "--org", "Dup"), "not a valid e-mail"),  # punycode only
    (("user", "add", "a\r\nBcc:x@y.ru", "--org", "Dup"), "not a valid e-mail"),
    (("user", "add", "a@example.ru", "--org", "Nobody"), "unknown organisation"),
    (("user", "add", "dup@example.ru", "--org", "Dup"), "already exists"),
    (("user", "disable", "ghost@example.ru"), "unknown user"),
    (("token", "ghost@example.ru"), "unknown user"),
    (("token", "dup@example.ru", "--ttl", str(31 * 24 * 3600)), "--ttl"),
    (("org", "add", "Dup", "--tariff", "start"), "already exists"),
    (("org", "add", "Crystals", "--tariff", "start"), "already exists"),  # the vendor's own
    (("org", "add", "Сеть\tДва", "--tariff", "start"), "control characters"),
    (("org", "add", "X"), "--tariff"),
    (("user", "frobnicate"), "No such command"),
    (("no-such-command",), "No such command"),
])
def test_bad_input_is_one_clear_line_and_non_zero(gate_cli, args, message):
    ok(gate_cli("org", "add", "Dup", "--tariff", "start"))
    ok(gate_cli("user", "add", "dup@example.ru", "--org", "Dup"))
    r = gate_cli(*args)
    assert r.returncode != 0
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_short_password_on_stdin_is_refused(gate_cli):
    ok(gate_cli("org", "add", "P", "--tariff", "start"))
    r = gate_cli("user", "add", "p@example.ru", "--org", "P", "--password-stdin", stdin="short\n")
    assert r.returncode != 0 and "at least" in r.stderr


def test_serve_refuses_a_stale_site(gate_cli, tmp_path):
    other = tmp_path / "t.yml"
    other.write_text("tariffs:\n  solo:\n    title: S\n    sections: [launches]\n")
    r = gate_cli("serve", "--port", "1", GATE_TARIFFS=str(other))
    assert r.returncode != 0 and "gate build" in r.stderr and "Traceback" not in r.stderr


def test_bad_tariffs_file_is_a_clear_error(gate_cli, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("tariffs:\n  x:\n    title: X\n    sections: [kitchen]\n")
    r = gate_cli("org", "add", "X", "--tariff", "x", GATE_TARIFFS=str(bad))
    assert r.returncode != 0 and "unknown section 'kitchen'" in r.stderr and str(bad) in r.stderr


@pytest.mark.parametrize("url, message", [("foo://x", "database error"),
                                          ("postgresql://u@127.0.0.1:1/db", "")])
def test_bad_database_url_is_one_line(gate_cli, url, message):
    r = gate_cli("org", "list", GATE_DATABASE_URL=url)
    assert r.returncode != 0 and "Traceback" not in r.stderr and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_undecodable_arguments_are_one_clear_line(built_project, tmp_path):
    root, _ = built_project
    env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(tmp_path / "instance")}
    r = subprocess.run([sys.executable.encode(), b"-m", b"gate", b"org", b"add", b"\xff\xfe",
                        b"--tariff", b"start"], env=env, capture_output=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.decode().strip() == "gate: arguments must be UTF-8 text"
