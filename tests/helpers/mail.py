"""The mail side: a real SMTP server that records what it receives, and what arrived how often.

- `MailSink`: an aiosmtpd server on 127.0.0.1 that records every message it accepts (envelope
  and parsed message, Message-ID first). `stop()` and `start()` on the same port simulate an
  outage of the mail server; `port` is reserved while it is down.
- `delivery_report`: for request numbers, which mails arrived exactly once, twice, or never.
- `deliver_with_workers`: several outbox workers at once on one database.

Imports nothing from pytest, so bench/soak.py runs it standalone.
"""

from __future__ import annotations

import collections
import email
import email.policy
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

from tests.helpers.ports import free_port


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
    from gate.engine import make_engine
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
