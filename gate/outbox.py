"""The mail outbox: messages are stored with the change that causes them, then delivered.

Design: `enqueue` writes the complete message (with a stable Message-ID) into the outbox table
in the caller's transaction, so a support request and its mails are stored together or not at
all. A worker thread (inside `gate serve` and `make run`) claims due messages with a lease (a
conditional UPDATE, atomic on SQLite and PostgreSQL, so several gate processes never send the
same message at once; on PostgreSQL the candidate row is picked with FOR UPDATE SKIP LOCKED, so
workers take different messages instead of waiting for each other), sends them over SMTP and
marks them sent. While the server is down it retries with exponential backoff (up to 10
minutes), and the first message that goes through again makes all the others due; after a crash the lease is released as soon as a worker on the same host sees its process gone
(or else expires), and the message is sent again. Delivery
is at-least-once with a stable Message-ID; a message is sent twice only if the gate dies
between the SMTP server's acceptance and the mark.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import smtplib
import socket
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import sqlalchemy as sa

from gate.clock import utcnow
from gate.db import outbox
from gate.storage_errors import classify, faults

log = logging.getLogger("gate.outbox")
LEASE = dt.timedelta(seconds=120)
MAX_BACKOFF = 600


def _process() -> str:
    """Who holds a lease: host, PID namespace and process id (kept with the lease)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "?"
    return f"{socket.gethostname()}|{namespace}|{os.getpid()}"


process_name = _process  # also who claimed a weekly digest (gate.digest)


def _dead_here(holder: str | None) -> bool:
    """Whether a lease's holder was a process of this host and PID namespace that is gone
    (killed with -9, say): then nobody is sending that message and the lease may go."""
    if not holder:
        return False
    host, _, rest = holder.partition("|")
    namespace, _, pid = rest.rpartition("|")
    here, _, _ = _process().rpartition("|")
    if f"{host}|{namespace}" != here or not pid.isdigit() or namespace == "?":
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (e.g. another user's process)
        return False
    return False


def release_orphans(engine) -> int:
    """Releases the leases of dead processes of this host; returns how many."""
    now = utcnow()
    with engine.connect() as conn:
        held = conn.execute(sa.select(outbox.c.id, outbox.c.claimed_by).where(
            outbox.c.sent_at.is_(None), outbox.c.claimed_until > now)).all()
    dead = [r for r in held if _dead_here(r.claimed_by)]
    released = 0
    for r in dead:
        with engine.begin() as conn:
            released += conn.execute(outbox.update().where(
                outbox.c.id == r.id, outbox.c.claimed_by == r.claimed_by, outbox.c.sent_at.is_(None))
                .values(claimed_until=None, claimed_by=None)).rowcount
    if released:
        log.warning("released %s message(s) leased by a process that is gone", released)
    return released




def _clean_header(value: str) -> str:
    """No header injection: line breaks in a header value become spaces."""
    return " ".join(str(value).replace("\r", " ").replace("\n", " ").split())


def build_message(cfg, to: str, subject: str, text: str, message_id: str,
                  attachments=(), reply_to: str | None = None,
                  headers: dict | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = _clean_header(cfg.mail_from)
    msg["To"] = _clean_header(to)
    msg["Subject"] = _clean_header(subject)
    msg["Date"] = formatdate(localtime=False)
    domain = cfg.mail_from.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = f"<{_clean_header(message_id)}@{domain}>"
    if reply_to:
        msg["Reply-To"] = _clean_header(reply_to)
    for name, value in (headers or {}).items():  # e.g. List-Unsubscribe of the digest
        msg[name] = _clean_header(value)
    msg.set_content(text)
    for name, content_type, data in attachments:
        maintype, _, subtype = (content_type or "application/octet-stream").partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=name)
    return msg


def enqueue(conn, cfg, *, to: str, subject: str, text: str, message_id: str | None = None,
            attachments=(), reply_to: str | None = None, request_id: int | None = None,
            headers: dict | None = None) -> str:
    """Stores one message in the caller's transaction; returns its Message-ID."""
    message_id = message_id or make_msgid()[1:-1].partition("@")[0]
    msg = build_message(cfg, to, subject, text, message_id, attachments, reply_to, headers)
    now = utcnow()
    conn.execute(outbox.insert().values(
        message_id=msg["Message-ID"], recipient=_clean_header(to),
        body=msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")),  # SMTP lines end in CRLF
        created_at=now, attempts=0, next_attempt_at=now, request_id=request_id))
    return msg["Message-ID"]


def _claim(engine, now):
    """One due message leased to this worker, or None."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(outbox.c.id).where(
                outbox.c.sent_at.is_(None), outbox.c.next_attempt_at <= now,
                sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now))
            .order_by(outbox.c.id).limit(1)
            # PostgreSQL: workers pass over rows another is claiming and take the next one
            # (SQLite has no row locks and renders nothing here: its writers take turns)
            .with_for_update(skip_locked=True)).first()
        if row is None:
            return None
        taken = conn.execute(
            outbox.update().where(
                outbox.c.id == row.id, outbox.c.sent_at.is_(None), outbox.c.next_attempt_at <= now,
                sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now))
            .values(claimed_until=now + LEASE, claimed_by=_process())).rowcount
        if taken != 1:
            return None  # another worker took it first
        return conn.execute(sa.select(outbox).where(outbox.c.id == row.id)).first()


UNREACHABLE = "unreachable: "  # last_error of a message backed off because of the server
REFUSALS = (smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError)


def _settle(engine, message_pk: int, values: dict, unwritten: list | None) -> None:
    """Writes how a claimed message's attempt ended (sent, or when to try again) and ends the
    lease; if storage fails, keeps it in `unwritten` to be written first next time."""
    try:
        with engine.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == message_pk).values(
                claimed_until=None, claimed_by=None, **values))
    except Exception:
        if unwritten is not None:
            unwritten.append((message_pk, values))
        raise


def deliver_due(engine, cfg, limit: int = 100, unwritten: list | None = None) -> int:
    """Sends what is due now; returns how many were sent. Stops when the server cannot be
    reached; a message the server refuses is backed off alone and the others go on. Once a
    message that had failed goes through, the server is back: every message backed off because
    it was unreachable becomes due at once instead of when its own backoff ends.

    `unwritten` (the worker's own list) keeps the outcomes the database could not take (a full
    disk, a database gone at that moment): a mail the SMTP server took but that could not be
    marked sent, a failure whose backoff could not be written. They are written first on the
    next call, before anything is claimed: this process never sends a mail again because its
    sent mark was lost, and never leaves one leased (two minutes) because its failure was."""
    while unwritten:
        message_pk, values = unwritten[0]
        _settle(engine, message_pk, values, None)
        unwritten.pop(0)
    sent, revived = 0, False
    while sent < limit:
        now = utcnow()
        row = _claim(engine, now)
        if row is None:
            return sent
        try:
            with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=20) as smtp:
                smtp.sendmail(cfg.mail_from, [row.recipient], row.body)
        except (OSError, smtplib.SMTPException) as exc:
            refused = isinstance(exc, REFUSALS)
            delay = min(MAX_BACKOFF, 2 ** min(row.attempts, 10))
            _settle(engine, row.id, dict(
                attempts=row.attempts + 1, next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
                last_error=(("" if refused else UNREACHABLE) + str(exc))[:500]), unwritten)
            log.warning("mail %s not delivered (%s); retry in %ss", row.message_id, exc, delay)
            if refused:
                continue  # the server is up and refused this one message: go on with the others
            return sent
        _settle(engine, row.id, dict(sent_at=utcnow(), attempts=row.attempts + 1,
                                     last_error=None), unwritten)
        sent += 1
        if not revived:
            revived = True
            _release_waiting(engine, now)
    return sent


def _release_waiting(engine, now):
    """The server took a message: what waits only because it was unreachable is due now.
    Its own transaction, after the sent mark is committed; best effort (two workers doing it
    at once may collide on PostgreSQL, and then the backoff simply runs its course)."""
    try:
        with engine.begin() as conn:
            conn.execute(outbox.update().where(
                outbox.c.sent_at.is_(None), outbox.c.next_attempt_at > now,
                outbox.c.last_error.startswith(UNREACHABLE, autoescape=True))
                .values(next_attempt_at=now))
    except sa.exc.DBAPIError as exc:
        log.warning("could not release the messages waiting for the mail server: %s", exc)


class Worker(threading.Thread):
    """Delivers the outbox every `interval` seconds until stopped; woken early by `poke`."""

    def __init__(self, engine, cfg, interval: float = 2.0):
        super().__init__(name="outbox", daemon=True)
        self.engine, self.cfg, self.interval = engine, cfg, interval
        # not `_stop`: threading.Thread has a method of that name, which join() calls
        self._wake, self._stopping = threading.Event(), threading.Event()
        self.unwritten: list = []  # outcomes the database could not take yet (deliver_due)

    def poke(self):
        self._wake.set()

    def stop(self):
        self._stopping.set()
        self._wake.set()

    def stop_and_join(self, timeout: float):
        """Stops after the message being sent (if any), waiting at most `timeout` seconds."""
        self.stop()
        if self.is_alive():
            self.join(timeout)

    def run(self):
        while not self._stopping.is_set():
            try:
                release_orphans(self.engine)
                deliver_due(self.engine, self.cfg, unwritten=self.unwritten)
            except Exception as exc:  # keep the worker alive whatever the database says
                kind = classify(exc)
                if kind is None:
                    log.exception("outbox worker error")
                else:  # a full disk or a database away: one line a minute, resumes by itself
                    faults.seen(kind, exc, "outbox worker")
            self._wake.wait(self.interval)
            self._wake.clear()
