"""Helpers for the delivery tests and the soak: a real SMTP server, `gate serve` as a process,
and a client that fills the support form over HTTP like a browser.

- `MailSink`: an aiosmtpd server on 127.0.0.1 that records every message it accepts (envelope
  and parsed message, Message-ID first). `stop()` and `start()` on the same port simulate an
  outage of the mail server; `port` may be reserved while it is down.
- `GateProcess`: a marker project's gate, `python -m gate serve` in local mode, started,
  killed with SIGKILL and restarted on the same port; `cli()` runs the `gate` command against
  the same instance.
- `FormClient`: logs in (GET /login → csrf_token → POST) and submits the support form with
  every field it shows (multipart, an attachment included), without following redirects: a
  303 to /support/<number>/ is the acknowledgement.

Used by tests/test_outbox.py, tests/test_delivery_crash.py and bench/soak.py; it imports
nothing from pytest so the soak runs standalone.
"""

from __future__ import annotations

import collections
import email
import email.policy
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller

SERVER_START = 30  # seconds for `gate serve` to answer /healthz


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Polls `predicate` until it returns a true value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(interval)


# --- the mail server -------------------------------------------------------------------------

@dataclass
class Received:
    message_id: str
    mail_from: str
    rcpt_tos: list
    message: email.message.EmailMessage
    raw: bytes
    at: float = field(default_factory=time.monotonic)


class _Recorder:
    def __init__(self, sink: "MailSink"):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if self.sink.delay:
            import asyncio
            await asyncio.sleep(self.sink.delay)
        with self.sink.lock:
            self.sink.messages.append(Received(str(msg.get("Message-ID", "")).strip(),
                                               envelope.mail_from, list(envelope.rcpt_tos),
                                               msg, raw))
        return "250 Message accepted for delivery"


class MailSink:
    """A real SMTP server that records every accepted message; can go down and come back."""

    def __init__(self, port: int | None = None, delay: float = 0.0,
                 data_size_limit: int = 33554432):
        self.port = port or free_port()
        self.delay = delay  # seconds the server takes to accept DATA (widens race windows)
        self.data_size_limit = data_size_limit  # bigger messages are refused with 552
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> "MailSink":
        assert self._controller is None, "already running"
        last = None
        for _ in range(50):  # the port may linger for a moment after stop()
            controller = Controller(_Recorder(self), hostname="127.0.0.1", port=self.port,
                                    server_hostname="localhost", ready_timeout=10,
                                    data_size_limit=self.data_size_limit)
            try:
                controller.start()
            except (OSError, RuntimeError) as exc:
                last = exc
                time.sleep(0.1)
                continue
            self._controller = controller
            return self
        raise RuntimeError(f"SMTP server could not listen on {self.port}: {last}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def counts(self) -> collections.Counter:
        """(Message-ID, recipient) -> how many times the server accepted it."""
        c = collections.Counter()
        for m in self.snapshot():
            for rcpt in m.rcpt_tos:
                c[(m.message_id, rcpt)] += 1
        return c

    def by_id(self) -> collections.Counter:
        return collections.Counter(m.message_id for m in self.snapshot())


def request_ids(number: int) -> tuple[str, str]:
    """Message-ID prefixes of request `number`: its mail to support and its confirmation."""
    return f"<kb-request-{number}@", f"<kb-request-{number}-confirmation@"


def delivery_report(sink: MailSink, numbers, support: str, requester_of: dict) -> dict:
    """For request numbers: which mails arrived exactly once, more than once, or not at all.

    Returns {"once": set, "duplicates": {number: counts}, "missing": set} where a number is
    "once" when its support mail reached `support` exactly once and its confirmation reached
    its requester exactly once, and no other copy of either arrived anywhere.
    """
    per_id = collections.defaultdict(list)
    for m in sink.snapshot():
        per_id[m.message_id.split("@")[0] + "@"].append(tuple(m.rcpt_tos))
    once, duplicates, missing = set(), {}, set()
    for n in numbers:
        to_support, confirmation = request_ids(n)
        got_s, got_c = per_id.get(to_support, []), per_id.get(confirmation, [])
        if got_s == [(support,)] and got_c == [(requester_of[n],)]:
            once.add(n)
        elif len(got_s) > 1 or len(got_c) > 1:
            duplicates[n] = (len(got_s), len(got_c))
        else:
            missing.add(n)
    return {"once": once, "duplicates": duplicates, "missing": missing}


def deliver_with_workers(database_url: str, cfg, workers: int = 4, seconds: float = 60):
    """Runs `workers` outbox workers at once (threads over two engines on one database) until
    nothing is left to send; returns ({worker: messages it sent}, [errors])."""
    import sqlalchemy as sa

    from gate import outbox
    from gate.db import make_engine
    from gate.db import outbox as outbox_t

    engines = [make_engine(database_url), make_engine(database_url)]
    start = threading.Barrier(workers)
    sent, errors = {}, []

    def work(engine, name):
        try:
            start.wait(10)
            total, deadline = 0, time.monotonic() + seconds
            while time.monotonic() < deadline:
                total += outbox.deliver_due(engine, cfg)
                with engine.connect() as conn:
                    if not conn.execute(sa.select(sa.func.count()).select_from(outbox_t)
                                        .where(outbox_t.c.sent_at.is_(None))).scalar():
                        break
            sent[name] = total
        except Exception as exc:  # reported to the caller
            errors.append(f"{name}: {exc!r}")

    threads = [threading.Thread(target=work, args=(engines[i % 2], f"w{i}")) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    for engine in engines:
        engine.dispose()
    return sent, errors


# --- the gate as a process -------------------------------------------------------------------

def wait_healthy(base: str, process: subprocess.Popen, log: Path, seconds: float = SERVER_START,
                 tls=None):
    """Waits until `base`/healthz answers 200 (https: `tls`, a client ssl context); fails with
    the log's tail if the process exits."""
    def tail() -> str:
        try:
            return Path(log).read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{tail()}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2, context=tls) as resp:
                if resp.status == 200:
                    return
                last = resp.status
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{base}/healthz did not answer 200 within {seconds}s (last: {last}):\n{tail()}")


class GateProcess:
    """`python -m gate serve` for a built project; SIGKILL and restart on the same port."""

    def __init__(self, root: Path, instance: Path, smtp_port: int, log: Path,
                 support_email: str = "support@kb.test", port: int | None = None,
                 extra_env: dict | None = None):
        self.root, self.instance, self.log = Path(root), Path(instance), Path(log)
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.support_email = support_email
        self.env = {**os.environ, "GATE_ROOT": str(self.root), "GATE_INSTANCE": str(self.instance),
                    "GATE_MODE": "local", "GATE_SMTP_HOST": "127.0.0.1",
                    "GATE_SMTP_PORT": str(smtp_port), "GATE_SUPPORT_EMAIL": support_email,
                    "GATE_MAIL_FROM": "kb@kb.test", "PYTHONUNBUFFERED": "1"}
        for name in ("GATE_TARIFFS", "GATE_DATABASE_URL", "GATE_BASE_URL", "GATE_SECRET_KEY"):
            self.env.pop(name, None)
        self.env.update(extra_env or {})
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def database(self) -> Path:
        return self.instance / "gate.sqlite3"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run([sys.executable, "-m", "gate", *args], env=self.env, input=stdin,
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"gate {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def add_people(self, org: str, tariff: str, emails, password: str) -> None:
        self.cli("org", "add", org, "--tariff", tariff)
        for address in emails:
            self.cli("user", "add", address, "--org", org, "--password-stdin", stdin=password + "\n")

    def requests_json(self) -> list[dict]:
        return json.loads(self.cli("requests", "--json"))

    def start(self) -> "GateProcess":
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        out = open(self.log, "ab")
        out.write(f"\n=== start {self.starts} ===\n".encode())
        out.flush()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gate", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=str(self.root))
        out.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        wait_healthy(self.base, self.process, self.log)

    def kill(self) -> None:
        """kill -9: no shutdown code runs, the outbox worker dies wherever it is."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def expire_dead_leases(self) -> list[str]:
        """Only while no gate runs: ends the leases the killed gate held, as if the lease time
        (gate.outbox.LEASE, 120 s) had passed. Returns the Message-IDs it had claimed.

        A gate killed between claiming a message and marking it leaves that message leased;
        the next gate honours the lease and sends it only when it runs out (tests/test_outbox.py
        checks exactly that). Waiting two minutes for it would not fit a test run.
        """
        assert self.process is None or self.process.poll() is not None, "a gate is running"
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


# --- a person filling the form ---------------------------------------------------------------

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
NUMBER_RE = re.compile(r"^/support/(\d+)/$")

# a support request as a person fills the form (also tests/conftest.SUPPORT_FORM)
FORM = {"phone": "+7 (900) 123-45-67", "category": "data", "criticality": "critical-loading",
        "store": "Магазин 12", "registers": "3", "subject": "Не грузятся цены",
        "description": "С 02:00 цены не загружаются на кассы магазина 12.", "consent": "yes",
        "from": "/functionality/marker-functionality-page/"}


@dataclass
class Attempt:
    """One submission: the number when acknowledged (303 to /support/<n>/), else the failure."""
    number: int | None
    status: int | None
    error: str | None
    latency: float | None  # seconds of the POST, when an HTTP answer came
    email: str


class FormClient:
    def __init__(self, base: str, email: str, password: str, timeout: float = 15):
        import requests

        self.base, self.email, self.password, self.timeout = base, email, password, timeout
        self.http = requests.Session()

    def _csrf(self, resp) -> str:
        m = CSRF_RE.search(resp.text)
        if not m:
            raise RuntimeError(f"no csrf_token in {resp.url} ({resp.status_code})")
        return m.group(1)

    def login(self) -> None:
        page = self.http.get(self.base + "/login", timeout=self.timeout)
        r = self.http.post(self.base + "/login", timeout=self.timeout, allow_redirects=False,
                           data={"csrf_token": self._csrf(page), "email": self.email,
                                 "password": self.password, "next": "/"})
        if r.status_code != 303 or r.headers.get("Location", "").startswith("/login"):
            raise RuntimeError(f"login of {self.email} failed: {r.status_code}")

    def form_page(self):
        page = self.http.get(self.base + "/support/new", params={"from": FORM["from"]},
                             timeout=self.timeout, allow_redirects=False,
                             headers={"Accept": "text/html"})
        if page.status_code == 303 and "/login" in page.headers.get("Location", ""):
            self.login()
            page = self.http.get(self.base + "/support/new", params={"from": FORM["from"]},
                                 timeout=self.timeout, headers={"Accept": "text/html"})
        page.raise_for_status()
        return page

    def submit(self, tag: str) -> Attempt:
        """GET the form, POST it with every field it shows; never raises for network errors."""
        import requests

        try:
            csrf = self._csrf(self.form_page())
        except requests.HTTPError as exc:  # an answer, but not the form: counted as an error
            return Attempt(None, exc.response.status_code, f"form: HTTP {exc.response.status_code}",
                           None, self.email)
        except (requests.RequestException, RuntimeError) as exc:
            return Attempt(None, None, f"form: {type(exc).__name__}: {exc}", None, self.email)
        data = {**FORM, "subject": f"Не грузятся цены {tag}",
                "description": f"Обращение {tag}: с 02:00 цены не загружаются на кассы магазина 12.",
                "csrf_token": csrf}
        files = [("attachments", (f"pos-{tag}.log", f"log of {tag}\n".encode(), "text/plain"))]
        started = time.monotonic()
        try:
            r = self.http.post(self.base + "/support/new", data=data, files=files,
                               timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return Attempt(None, None, f"post: {type(exc).__name__}", None, self.email)
        latency = time.monotonic() - started
        m = NUMBER_RE.match(r.headers.get("Location", "")) if r.status_code == 303 else None
        if m:
            return Attempt(int(m.group(1)), 303, None, latency, self.email)
        return Attempt(None, r.status_code, f"HTTP {r.status_code} {r.headers.get('Location', '')}",
                       latency, self.email)


class Load:
    """Clients (threads) submitting the form until `target` acknowledgements; thread-safe log."""

    def __init__(self, clients: list[FormClient], target: int, pause_after_error: float = 0.3):
        self.clients, self.target, self.pause = clients, target, pause_after_error
        self.lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self.acked: list[int] = []
        self.progress = threading.Condition(self.lock)
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._seq = 0
        self._inflight = 0

    def _next_tag(self) -> str | None:
        """A new submission while acknowledged + in flight < target, else None (done)."""
        with self.lock:
            while len(self.acked) + self._inflight >= self.target:
                if len(self.acked) >= self.target or self._stop.is_set():
                    return None
                self.progress.wait(1)  # one in flight may still fail and free its slot
            if self._stop.is_set():
                return None
            self._seq += 1
            self._inflight += 1
            return f"#{self._seq}"

    def _run(self, client: FormClient) -> None:
        while True:
            tag = self._next_tag()
            if tag is None:
                return
            a = client.submit(tag)
            with self.lock:
                self._inflight -= 1
                self.attempts.append(a)
                if a.number is not None:
                    self.acked.append(a.number)
                self.progress.notify_all()
            if a.number is None:
                time.sleep(self.pause)

    def start(self) -> "Load":
        for c in self.clients:
            t = threading.Thread(target=self._run, args=(c,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def wait_acked(self, count: int, timeout: float) -> int:
        with self.lock:
            ok = self.progress.wait_for(lambda: len(self.acked) >= count or
                                        not any(t.is_alive() for t in self._threads), timeout)
            if not ok or len(self.acked) < count:
                raise TimeoutError(f"only {len(self.acked)} of {count} requests acknowledged "
                                   f"within {timeout:.0f}s")
            return len(self.acked)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            self._stop.set()
            raise TimeoutError("clients still running")

    def requester_of(self) -> dict:
        with self.lock:
            return {a.number: a.email for a in self.attempts if a.number is not None}

    def http_errors(self) -> list[Attempt]:
        """Answers other than the acknowledgement (connection errors during a kill excluded)."""
        with self.lock:
            return [a for a in self.attempts if a.number is None and a.status is not None]
