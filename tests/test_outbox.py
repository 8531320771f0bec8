"""The mail outbox against a real SMTP server (aiosmtpd on 127.0.0.1), in process.

Time is moved by shifting the outbox's clock (`outbox.utcnow`), never by sleeping or by editing
the stored rows: the worker sees exactly what it would see that many seconds later.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import io

import pytest
import sqlalchemy as sa

from gate import outbox, requests_store
from gate.db import migrate, outbox as outbox_t
from gate.engine import make_engine
from tests.helpers.http import login
from tests.helpers.mail import deliver_with_workers
from tests.helpers.project import make_config
from tests.helpers.support import submit_support

SUPPORT = "support@kb.test"
CLIENT = "client@shop.test"


@pytest.fixture
def cfg(tmp_path, sink):
    instance = tmp_path / "instance"
    instance.mkdir()
    return make_config(tmp_path, instance, smtp_host="127.0.0.1", smtp_port=sink.port,
                       support_email=SUPPORT, mail_from="kb@kb.test")


@pytest.fixture
def engine(cfg):
    e = make_engine(cfg.database_url)
    migrate(e)
    yield e
    e.dispose()


class Clock:
    """The outbox's clock, moved forward on demand."""

    def __init__(self, real):
        self.real, self.offset = real, dt.timedelta(0)

    def now(self) -> dt.datetime:
        return self.real() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    c = Clock(outbox.utcnow)
    monkeypatch.setattr(outbox, "utcnow", c.now)
    return c


def enqueue(engine, cfg, n: int, to: str = SUPPORT, **kw) -> str:
    with engine.begin() as conn:
        return outbox.enqueue(conn, cfg, to=to, subject=kw.pop("subject", f"[KB-{n}] Тема {n}"),
                              text=kw.pop("text", f"Обращение № {n}\n"),
                              message_id=f"kb-request-{n}", request_id=n, **kw)


def rows(engine):
    with engine.connect() as conn:
        return {r.message_id: r for r in conn.execute(sa.select(outbox_t).order_by(outbox_t.c.id))}


def test_delivered_with_attachments_and_a_stable_message_id(engine, cfg, sink):
    blob = bytes(range(256)) * 40
    mid = enqueue(engine, cfg, 7, reply_to=CLIENT,
                  attachments=[("pos.log", "text/plain", "касса 3: ошибка\n".encode()),
                               ("dump.bin", "application/octet-stream", blob)])
    assert mid == "<kb-request-7@kb.test>"
    assert outbox.deliver_due(engine, cfg) == 1
    [got] = sink.snapshot()
    assert got.message_id == mid and got.rcpt_tos == [SUPPORT] and got.mail_from == "kb@kb.test"
    assert got.message["Subject"] == "[KB-7] Тема 7" and got.message["Reply-To"] == CLIENT
    files = {a.get_filename(): a.get_payload(decode=True) for a in got.message.iter_attachments()}
    assert files["pos.log"] == "касса 3: ошибка\n".encode()  # the bytes as uploaded
    assert files["dump.bin"] == blob
    row = rows(engine)[mid]
    assert row.sent_at is not None and row.attempts == 1
    assert row.claimed_until is None and row.last_error is None
    # nothing is due any more: a second pass sends nothing
    assert outbox.deliver_due(engine, cfg) == 0
    assert len(sink.snapshot()) == 1


def test_a_request_from_the_form_is_mailed_to_support_and_confirmed(app, client, sink):
    """Form → outbox → real SMTP: support mail with the attachment, confirmation, listing."""
    gate = app.extensions["gate"]
    cfg = dataclasses.replace(gate.cfg, smtp_host="127.0.0.1", smtp_port=sink.port)
    login(client, "start@client.example")
    r = submit_support(client, attachments=(io.BytesIO(b"2024-01-01 price load failed\n"), "pos.log"))
    assert r.status_code == 303
    number = int(r.headers["Location"].split("/")[-2])
    assert outbox.deliver_due(gate.engine, cfg) == 2
    got = {m.message_id.split("@")[0]: m for m in sink.snapshot()}
    assert set(got) == {f"<kb-request-{number}", f"<kb-request-{number}-confirmation"}
    to_support = got[f"<kb-request-{number}"]
    assert to_support.rcpt_tos == [gate.cfg.support_email]
    assert to_support.message["Reply-To"] == "start@client.example"
    assert f"[KB-{number}]" in to_support.message["Subject"]
    [att] = list(to_support.message.iter_attachments())
    assert att.get_filename() == "pos.log"
    assert att.get_payload(decode=True) == b"2024-01-01 price load failed\n"
    body = to_support.message.get_body(("plain",)).get_content()
    assert f"Обращение № {number}" in body and "Магазин 12" in body
    confirmation = got[f"<kb-request-{number}-confirmation"]
    assert confirmation.rcpt_tos == ["start@client.example"]
    assert f"№ {number}" in confirmation.message.get_body(("plain",)).get_content()
    [listed] = [x for x in requests_store.listing(gate.engine, cfg) if x["number"] == number]
    assert listed["delivery"] == "delivered"


def test_while_the_server_is_down_attempts_back_off_and_nothing_is_sent(engine, cfg, sink, clock):
    sink.stop()
    ids = [enqueue(engine, cfg, n) for n in (1, 2, 3)]
    # each pass stops at the first failure: one message tried per pass
    for expected_tried in (1, 2, 3):
        before = outbox.utcnow()
        assert outbox.deliver_due(engine, cfg) == 0
        tried = [r for r in rows(engine).values() if r.attempts]
        assert len(tried) == expected_tried
    for r in rows(engine).values():
        assert r.attempts == 1 and r.sent_at is None and r.claimed_until is None
        assert r.next_attempt_at > before  # backed off into the future
        assert "refused" in r.last_error.lower() or "errno" in r.last_error.lower()
    # nothing is due: a pass attempts nothing
    assert outbox.deliver_due(engine, cfg) == 0
    assert all(r.attempts == 1 for r in rows(engine).values())
    # the server comes back, but the backoff is honoured: still nothing before it runs out
    sink.start()
    assert outbox.deliver_due(engine, cfg) == 0
    assert sink.snapshot() == []
    clock.advance(3)
    assert outbox.deliver_due(engine, cfg) == 3
    assert sink.by_id() == {i: 1 for i in ids}
    assert all(r.sent_at and r.last_error is None and r.attempts == 2 for r in rows(engine).values())
    # later passes never send them again
    clock.advance(3600)
    assert outbox.deliver_due(engine, cfg) == 0
    assert sink.by_id() == {i: 1 for i in ids}


def test_once_the_server_is_back_every_waiting_message_goes_at_once(engine, cfg, sink, clock):
    """After an outage each message has its own backoff (up to 10 minutes); the first one
    that goes through shows the server is back, and the others follow in the same pass.
    A message the server refused keeps its backoff."""
    sink.stop()
    ids = [enqueue(engine, cfg, n) for n in (1, 2, 3, 4)]
    for _ in ids:
        assert outbox.deliver_due(engine, cfg) == 0  # one failed attempt each
    with engine.begin() as conn:  # long backoffs, as after many failed attempts
        conn.execute(outbox_t.update().values(
            next_attempt_at=outbox.utcnow() + dt.timedelta(seconds=600)))
        conn.execute(outbox_t.update().where(outbox_t.c.message_id == ids[0])
                     .values(next_attempt_at=outbox.utcnow()))
        conn.execute(outbox_t.update().where(outbox_t.c.message_id == ids[3])
                     .values(last_error="552 message too big"))  # refused, not unreachable
    assert all(r.last_error.startswith(outbox.UNREACHABLE) for r in list(rows(engine).values())[:3])
    sink.start()
    assert outbox.deliver_due(engine, cfg) == 3
    assert sink.by_id() == {i: 1 for i in ids[:3]}
    assert rows(engine)[ids[3]].sent_at is None
    assert outbox.deliver_due(engine, cfg) == 0
    clock.advance(601)
    assert outbox.deliver_due(engine, cfg) == 1
    assert sink.by_id() == {i: 1 for i in ids}


def test_a_new_message_through_after_an_outage_releases_the_waiting_ones(engine, cfg, sink, clock):
    sink.stop()
    waiting = enqueue(engine, cfg, 1)
    assert outbox.deliver_due(engine, cfg) == 0
    with engine.begin() as conn:
        conn.execute(outbox_t.update().values(next_attempt_at=outbox.utcnow() + dt.timedelta(seconds=600)))
    sink.start()
    fresh = enqueue(engine, cfg, 2)  # never failed: its success shows the server is back
    assert outbox.deliver_due(engine, cfg) == 2
    assert sink.by_id() == {waiting: 1, fresh: 1}


def test_backoff_doubles_up_to_ten_minutes(engine, cfg, sink, clock):
    sink.stop()
    mid = enqueue(engine, cfg, 1)
    delays = []
    for _ in range(13):
        now = outbox.utcnow()
        assert outbox.deliver_due(engine, cfg) == 0
        row = rows(engine)[mid]
        delays.append(round((row.next_attempt_at - now).total_seconds()))
        clock.advance((row.next_attempt_at - now).total_seconds() + 0.01)
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]
    assert rows(engine)[mid].attempts == 13
    sink.start()
    assert outbox.deliver_due(engine, cfg) == 1
    assert sink.by_id() == {mid: 1}


def test_a_message_the_server_refuses_does_not_hold_up_the_others(engine, cfg, sink):
    """A 5xx for one message (here: bigger than the server takes) backs off that message
    alone; the server is up, so the same pass delivers the rest."""
    sink.stop()
    sink.data_size_limit = 100_000
    sink.start()
    big = enqueue(engine, cfg, 1, attachments=[("dump.bin", "application/octet-stream",
                                                 b"x" * 200_000)])
    small = [enqueue(engine, cfg, n) for n in (2, 3, 4)]
    assert outbox.deliver_due(engine, cfg) == 3
    assert sink.by_id() == {i: 1 for i in small}
    refused = rows(engine)[big]
    assert refused.sent_at is None and refused.attempts == 1 and "552" in refused.last_error


def test_two_workers_on_the_same_database_never_send_a_message_twice(engine, cfg, sink):
    sink.delay = 0.01  # a slower server widens the window between claim and mark
    ids = [enqueue(engine, cfg, n) for n in range(1, 31)]
    sent, errors = deliver_with_workers(cfg.database_url, cfg)  # two engines, two threads each
    assert not errors
    assert sum(sent.values()) == 30, sent
    assert sink.by_id() == {i: 1 for i in ids}
    assert sum(1 for v in sent.values() if v) >= 2, f"both workers should have sent: {sent}"
    assert all(r.sent_at is not None and r.attempts == 1 for r in rows(engine).values())


def _header_names(raw: bytes) -> list[str]:
    return [k.lower() for k in email.message_from_bytes(raw, policy=email.policy.default).keys()]


EXPECTED_HEADERS = {"from", "to", "subject", "date", "message-id", "reply-to", "mime-version",
                    "content-type", "content-transfer-encoding"}


def test_header_injection_in_subject_and_reply_to_adds_no_header(engine, cfg, sink):
    mid = enqueue(engine, cfg, 5, to=CLIENT,
                  subject="Цены\r\nBcc: evil@evil.test\r\nX-Injected: 1",
                  reply_to=f"{CLIENT}\nBcc: evil@evil.test")
    assert set(_header_names(rows(engine)[mid].body)) <= EXPECTED_HEADERS
    assert outbox.deliver_due(engine, cfg) == 1
    [got] = sink.snapshot()
    assert got.rcpt_tos == [CLIENT]
    names = _header_names(got.raw)
    assert "bcc" not in names and "x-injected" not in names and names.count("to") == 1
    assert "\n" not in got.message["Subject"] and "Bcc" in got.message["Subject"]  # kept as text


def test_header_injection_in_the_recipient_reaches_nobody_else(engine, cfg, sink, clock):
    mid = enqueue(engine, cfg, 6, to=f"{CLIENT}\r\nBcc: evil@evil.test")
    assert set(_header_names(rows(engine)[mid].body)) <= EXPECTED_HEADERS
    outbox.deliver_due(engine, cfg)
    clock.advance(5)
    outbox.deliver_due(engine, cfg)
    assert len(sink.snapshot()) <= 1
    for m in sink.snapshot():
        assert all("evil" not in r for r in m.rcpt_tos)
        names = _header_names(m.raw)
        assert "bcc" not in names and names.count("to") == 1


def test_a_message_claimed_by_a_crashed_worker_waits_for_the_lease(engine, cfg, sink, clock):
    mid = enqueue(engine, cfg, 9)
    # a worker claims it and dies before sending (no mark, the lease stays)
    assert outbox._claim(engine, outbox.utcnow()).message_id == mid
    assert outbox.deliver_due(engine, cfg) == 0
    clock.advance(outbox.LEASE.total_seconds() - 5)
    assert outbox.deliver_due(engine, cfg) == 0
    assert sink.snapshot() == []
    clock.advance(10)  # the lease has run out
    assert outbox.deliver_due(engine, cfg) == 1
    assert sink.by_id() == {mid: 1}
    clock.advance(outbox.LEASE.total_seconds() * 2)
    assert outbox.deliver_due(engine, cfg) == 0
    assert sink.by_id() == {mid: 1}


def test_the_lease_of_a_process_that_is_gone_is_released_at_once(engine, cfg, sink):
    """kill -9 of a gate while it sends: its restart (or any worker on the host) releases the
    lease at once instead of after LEASE; a lease of a live process or of another host stays."""
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = outbox._process().rpartition("|")[0]
    holders = {"dead here": f"{here}|{gone.pid}", "alive here": outbox._process(),
               "other host": f"other-host|{here.split('|', 1)[1]}|{gone.pid}",
               "other namespace": f"{here.split('|')[0]}|pid:[1]|{gone.pid}"}
    ids = {}
    for n, (what, holder) in enumerate(holders.items(), start=1):
        ids[what] = enqueue(engine, cfg, n)
        assert outbox._claim(engine, outbox.utcnow()).message_id == ids[what]
        with engine.begin() as conn:
            conn.execute(outbox_t.update().where(outbox_t.c.message_id == ids[what])
                         .values(claimed_by=holder))
    assert outbox.release_orphans(engine) == 1
    assert outbox.deliver_due(engine, cfg) == 1
    assert sink.by_id() == {ids["dead here"]: 1}
    assert outbox.release_orphans(engine) == 0
    assert all(r.claimed_until and r.sent_at is None
               for m, r in rows(engine).items() if m != ids["dead here"])


def test_a_worker_dying_after_the_server_accepted_resends_with_the_same_message_id(
        engine, cfg, sink, clock):
    """The one window of at-least-once: accepted by the server, not yet marked. The copy
    carries the same Message-ID, so the receiving side can tell it is the same mail."""
    import smtplib

    mid = enqueue(engine, cfg, 11)
    row = outbox._claim(engine, outbox.utcnow())
    with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=10) as smtp:
        smtp.sendmail(cfg.mail_from, [row.recipient], row.body)  # ... and then the crash
    clock.advance(outbox.LEASE.total_seconds() + 1)
    assert outbox.deliver_due(engine, cfg) == 1
    assert sink.by_id() == {mid: 2}
