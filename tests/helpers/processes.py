"""Every server the tests (and bench/) start, started and waited for in one way.

`start` runs a command in a process group of its own, its output appended to a log file, and
waits until `ready()` is true; when the process exits first or time runs out it fails with
the log's tail. `Running.stop` sends one signal to the process (a server's own way to shut
down, which must stop its children: edge.sh stops nginx and the gate) and only after a
timeout kills the whole group.

On top of it: `GateProcess` (`python -m gate serve`, killed with SIGKILL and restarted on the
same port), `running_edge` (deploy/edge.sh: nginx in front of the gate), `Cluster` (a
throwaway PostgreSQL), and `gate_cli` for the `gate` command against the same settings.
Imports nothing from pytest, so bench/ uses it standalone.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

from tests.helpers.http import HTML, Resp, login_data, request
from tests.helpers.ports import free_port, port_open
from tests.helpers.project import PASSWORD, PROJECT

START_WAIT = 60  # seconds for a server to answer (the machine may be busy with other tests)
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
NGINX_MISSING = ("nginx is not installed (apt-get install nginx; `make setup` does it as root)"
                 if NGINX is None else None)


def log_tail(log: Path, chars: int = 3000) -> str:
    try:
        return Path(log).read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class Running:
    """A started server: its process (leader of its own process group) and its log."""

    def __init__(self, process: subprocess.Popen, log: Path, what: str):
        self.process, self.log, self.what = process, Path(log), what

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return log_tail(self.log, chars)

    def kill(self) -> None:
        """SIGKILL to the server process alone: no shutdown code of it runs."""
        if self.alive():
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """`sig` to the server process; its whole group is killed if it has not ended in time."""
        if not self.alive():
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start(command: list[str], *, ready, log: Path, env: dict | None = None, cwd=None,
          seconds: float = START_WAIT, what: str | None = None, **popen) -> Running:
    """Starts `command` and waits until `ready()` is true (see the module's docstring)."""
    what = what or Path(command[0]).name
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, **popen)
    running = Running(process, log, what)
    deadline = time.monotonic() + seconds
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with {process.returncode}:\n{running.log_tail()}")
            try:
                if ready():
                    return running
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} was not ready within {seconds:.0f}s:\n"
                                   f"{running.log_tail()}")
            time.sleep(0.05)
    except BaseException:
        running.stop(timeout=5)  # never leave a half-started server behind
        raise


def wait_healthy(base: str, process: subprocess.Popen, log: Path, seconds: float = START_WAIT,
                 tls: ssl.SSLContext | None = None) -> None:
    """For a server started elsewhere: waits until `base`/healthz answers 200; fails with the
    log's tail if the process exits or the time runs out."""
    ready = healthz(base, tls)
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base} was not healthy within {seconds:.0f}s:\n{log_tail(log)}")
        time.sleep(0.05)


# --- readiness -----------------------------------------------------------------------------------

def answers(url: str, tls: ssl.SSLContext | None = None, status: int | None = None):
    """Ready when `url` gives an HTTP answer (`status` when given)."""
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=tls) as resp:
                code = resp.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except (urllib.error.URLError, OSError):
            return False
        return status is None or code == status
    return check


def healthz(base: str, tls: ssl.SSLContext | None = None):
    """Ready when the gate (directly or through nginx) answers 200 at /healthz."""
    return answers(base + "/healthz", tls, status=200)


def listening(port: int):
    """Ready when something accepts connections on 127.0.0.1:`port`."""
    return lambda: port_open(port)


# --- the gate command ---------------------------------------------------------------------------

def gate_cli(env: dict, *args: str, stdin: str | None = None, cwd=None) -> str:
    """`python -m gate ARGS` with `env`; its output, or RuntimeError with its error line."""
    result = subprocess.run([sys.executable, "-m", "gate", *args], env=env, input=stdin, cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"gate {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def add_people(env: dict, orgs: dict, password: str = PASSWORD, cwd=None) -> None:
    """Organisations and their people with the `gate` command: {org: (tariff, [e-mail, ...])}."""
    for org, (tariff, _) in orgs.items():
        gate_cli(env, "org", "add", org, "--tariff", tariff, cwd=cwd)
    for org, (_, emails) in orgs.items():
        for address in emails:
            gate_cli(env, "user", "add", address, "--org", org, "--password-stdin",
                     stdin=password + "\n", cwd=cwd)


def edge_config(env: dict) -> subprocess.CompletedProcess:
    """`python -m gate.edge_config` (what deploy/edge.sh runs first) with `env`."""
    return subprocess.run([sys.executable, "-m", "gate.edge_config"], env=env, cwd=PROJECT,
                          capture_output=True, text=True, timeout=60)


def clean_env(**settings) -> dict:
    """This process's environment without any setting of the gate or the edge, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATE_", "EDGE_", "KB_"))}
    env.update(settings)
    return env


# --- the gate as a process ---------------------------------------------------------------------

class GateProcess:
    """`python -m gate serve` (local mode) for a built project; SIGKILL and restart on the same
    port; `cli()` runs the `gate` command against the same instance."""

    def __init__(self, root: Path, instance: Path, smtp_port: int, log: Path,
                 support_email: str = "support@kb.test", port: int | None = None,
                 extra_env: dict | None = None):
        self.root, self.instance, self.log = Path(root), Path(instance), Path(log)
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.support_email = support_email
        self.env = clean_env(GATE_ROOT=str(self.root), GATE_INSTANCE=str(self.instance),
                             GATE_MODE="local", GATE_SMTP_HOST="127.0.0.1",
                             GATE_SMTP_PORT=str(smtp_port), GATE_SUPPORT_EMAIL=support_email,
                             GATE_MAIL_FROM="kb@kb.test", PYTHONUNBUFFERED="1")
        self.env.update(extra_env or {})
        self.running: Running | None = None
        self.starts = 0

    @property
    def database(self) -> Path:
        return self.instance / "gate.sqlite3"

    def url(self, path: str) -> str:
        return self.base + path

    def cli(self, *args: str, stdin: str | None = None) -> str:
        return gate_cli(self.env, *args, stdin=stdin)

    def add_people(self, org: str, tariff: str, emails, password: str = PASSWORD) -> None:
        add_people(self.env, {org: (tariff, list(emails))}, password)

    def requests_json(self) -> list[dict]:
        return json.loads(self.cli("requests", "--json"))

    def start(self) -> "GateProcess":
        assert self.running is None or not self.running.alive(), "already running"
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"\n=== start {self.starts} ===\n".encode())
        self.running = start([sys.executable, "-m", "gate", "serve", "--host", "127.0.0.1",
                              "--port", str(self.port)], ready=healthz(self.base), log=self.log,
                             env=self.env, cwd=str(self.root), what="gate serve")
        return self

    def kill(self) -> None:
        """kill -9: no shutdown code runs, the outbox worker dies wherever it is."""
        if self.running:
            self.running.kill()

    def stop(self) -> None:
        if self.running:
            self.running.stop(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        return log_tail(self.log, chars)

    def expire_dead_leases(self) -> list[str]:
        """Only while no gate runs: ends the leases the killed gate held, as if the lease time
        (gate.outbox.LEASE, 120 s) had passed. Returns the Message-IDs it had claimed.

        A gate killed between claiming a message and marking it leaves that message leased;
        the next gate honours the lease and sends it only when it runs out (tests/test_outbox.py
        checks exactly that). Waiting two minutes for it would not fit a test run.
        """
        assert self.running is None or not self.running.alive(), "a gate is running"
        con = sqlite3.connect(str(self.database), timeout=30)
        try:
            with con:
                leased = [r[0] for r in con.execute(
                    "SELECT message_id FROM outbox WHERE sent_at IS NULL AND claimed_until IS NOT NULL")]
                con.execute("UPDATE outbox SET claimed_until = NULL "
                            "WHERE sent_at IS NULL AND claimed_until IS NOT NULL")
        finally:
            con.close()
        return leased

    def outbox_state(self) -> dict:
        """Straight from the database (read-only): counts of the outbox's rows by state."""
        con = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30)
        try:
            total, sent, tried, max_attempts = con.execute(
                "SELECT count(*), count(sent_at), sum(attempts > 0), max(attempts) FROM outbox"
            ).fetchone()
            retried = con.execute("SELECT count(*) FROM outbox WHERE attempts > 1").fetchone()[0]
            stored = con.execute("SELECT r.id, u.email FROM support_requests r "
                                 "JOIN users u ON u.id = r.user_id ORDER BY r.id").fetchall()
        finally:
            con.close()
        return {"total": total, "sent": sent, "unsent": total - sent, "tried": tried or 0,
                "retried": retried, "max_attempts": max_attempts or 0,
                "stored": dict(stored)}  # request number -> requester's e-mail

    def drained_state(self) -> dict | None:
        """The outbox state once nothing is left to send (both mails of every stored request
        exist and none is unsent), else None: a predicate for wait_until."""
        s = self.outbox_state()
        return s if s["unsent"] == 0 and s["total"] == 2 * len(s["stored"]) else None


# --- edge mode: nginx in front of the gate --------------------------------------------------------

# the people every edge starts with: organisation -> (tariff, people)
EDGE_PEOPLE = {"Сеть Старт": ("start", ["start@client.example", "revoke@client.example"]),
               "Сеть Функ": ("solo-func", ["func@client.example"])}


class Edge:
    """A running deploy/edge.sh: requests to it, logins through it, tickets and tokens signed
    with its instance's key."""

    def __init__(self, root, work, env, port, gate_port, tls: ssl.SSLContext | None = None):
        self.root, self.work, self.env, self.port, self.gate_port = root, work, env, port, gate_port
        self.tls = tls  # https: a client context that trusts the edge's certificate
        self.origin = self.base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        self.log = work / "edge.log"
        self.access_log = Path(env["EDGE_DIR"]) / "access.log"

    def url(self, path: str) -> str:
        return self.base + path

    def log_tail(self, chars: int = 3000) -> str:
        return log_tail(self.log, chars)

    def get(self, path, **kw) -> Resp:
        return request(self.port, path, tls=self.tls, **kw)

    def cli(self, *args, stdin: str | None = None) -> str:
        return gate_cli(self.env, *args, stdin=stdin, cwd=PROJECT)

    @property
    def key(self) -> bytes:
        return bytes.fromhex((self.work / "instance" / "signing.key").read_text().strip())

    def login(self, email: str) -> dict:
        """Logs in through the form as a browser does; returns the cookies it was given."""
        page = self.get("/login", headers=HTML)
        assert page.status == 200, page
        form_cookie = page.cookie("kb_form")
        resp = self.get("/login", method="POST", body=urlencode(login_data(page.text, email)),
                        headers={**HTML, "Origin": self.origin,
                                 "Content-Type": "application/x-www-form-urlencoded"},
                        cookies={"kb_form": form_cookie} if form_cookie else None)
        assert resp.status == 303, (resp, resp.text[:500])
        self.login_response = resp  # its Set-Cookie lines, for their flags
        cookies = {name: resp.cookie(name) for name in ("kb_session", "kb_edge")}
        assert all(cookies.values()), resp.headers.get_all("Set-Cookie")
        return cookies

    def ticket(self, edition: str, exp: int) -> str:
        """An edition ticket signed with the instance's secret, as the gate issues them."""
        from gate import edge_tickets

        return edge_tickets.issue(edge_tickets.ticket_secret(self.key), edition, exp)

    def session_token(self, token: str, **change) -> str:
        """A token for the same login session, signed with the instance's key (e.g. expired)."""
        import jwt

        from gate import tokens

        c = jwt.decode(token, options={"verify_signature": False})
        args = dict(sub=int(c["sub"]), org=c["org"], tariff=c["tariff"], sections=c["sections"],
                    typ="session", ttl=tokens.SESSION_TTL, sid=c["sid"])
        args.update(change)
        return tokens.issue(self.key, **args)


@contextmanager
def running_edge(root: Path, work: Path, tls: ssl.SSLContext | None = None,
                 people: dict = EDGE_PEOPLE, **settings):
    """deploy/edge.sh for the built project `root`, its instance and runtime folder in `work`,
    with `people`; `settings` add to its environment (EDGE_TLS_CERT, GATE_MODE, ...)."""
    if NGINX_MISSING:
        raise RuntimeError(NGINX_MISSING)
    port, gate_port = free_port(), free_port()
    env = clean_env(GATE_ROOT=str(root), GATE_INSTANCE=str(work / "instance"),
                    EDGE_DIR=str(work / "run"), EDGE_PORT=str(port), GATE_PORT=str(gate_port),
                    EDGE_WORKERS="2", NGINX=NGINX, PYTHONUNBUFFERED="1")
    env.update(settings)
    e = Edge(root, work, env, port, gate_port, tls)
    add_people(env, people, cwd=PROJECT)
    edge = start(["sh", str(PROJECT / "deploy/edge.sh")], ready=healthz(e.base, tls), log=e.log,
                 env=env, cwd=PROJECT, what="deploy/edge.sh")
    try:
        yield e
    finally:
        edge.stop(signal.SIGTERM)  # edge.sh stops nginx and the gate
    deadline = time.monotonic() + 10
    while (port_open(port) or port_open(gate_port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not port_open(port) and not port_open(gate_port), "edge.sh left nginx or the gate running"


# --- PostgreSQL ---------------------------------------------------------------------------------

SERVER_TIMEZONE = "America/New_York"  # not UTC, not GATE_TIMEZONE: stored times must not depend on it


class Unavailable(Exception):
    """What a server needs is not on this machine (the message says what to install)."""


def postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL's bin folder, or None."""
    found = [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))]
    found.sort(key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return found[-1].parent if found else None


class Cluster:
    """A PostgreSQL server in a temporary folder, listening on 127.0.0.1:<free port>, as the
    unprivileged `postgres` user when run as root (PostgreSQL refuses to run as root), in
    SERVER_TIMEZONE. `halt()` and `resume()` stop and start the same server (its data kept)."""

    def __init__(self, bindir: Path, settings: dict | None = None):
        self.bindir = bindir
        self.settings = {"timezone": SERVER_TIMEZONE, **(settings or {})}
        self.user: dict = {}
        self.folder = Path(tempfile.mkdtemp(prefix="gate-pg-", dir="/tmp"))
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.folder)
                raise Unavailable("running as root and there is no 'postgres' user to run "
                                  "PostgreSQL as") from None
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self.user = dict(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
        self.data, self.log = self.folder / "data", self.folder / "server.log"
        self.port = free_port()
        self.running: Running | None = None

    def start(self) -> "Cluster":
        initdb = subprocess.run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "gate",
                                 "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                                capture_output=True, text=True, timeout=120, cwd=self.folder,
                                **self.user)
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        self.resume()
        return self

    def resume(self) -> None:
        """Starts the server (again: the same port and data) and waits until it accepts."""
        settings = {"listen_addresses": "127.0.0.1", "fsync": "off", "full_page_writes": "off",
                    **self.settings}
        command = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                   "-k", str(self.folder)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        self.running = start(command, ready=self._accepts, log=self.log, cwd=self.folder,
                             what="postgres", **self.user)

    def halt(self) -> None:
        """Stops the server as an administrator would for a restart ("fast": open connections
        are terminated), keeping its data."""
        if self.running:
            self.running.stop(signal.SIGINT, timeout=60)
            self.running = None

    def _accepts(self) -> bool:
        import psycopg

        try:
            psycopg.connect(host="127.0.0.1", port=self.port, user="gate", dbname="postgres",
                            connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        try:
            if self.running:
                self.running.stop(signal.SIGQUIT, timeout=30)  # immediate shutdown
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://gate@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)


def running_cluster() -> Cluster:
    """A started cluster (stop() it when done); Unavailable, with what to install, when
    PostgreSQL or the psycopg driver is missing."""
    bindir = postgres_bindir()
    if bindir is None:
        raise Unavailable("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; "
                          "Debian: apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("the PostgreSQL driver psycopg is not installed") from None
    return Cluster(bindir).start()
