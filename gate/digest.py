"""The weekly digest of what changed, for the people who opted in (off by default).

Once a week (GATE_DIGEST_AT, default Monday 09:00 in GATE_TIMEZONE) one process claims the
week's slot: a row in digest_runs whose primary key is the week, so across every process and
host exactly one insert succeeds. In that same transaction it queues one mail per subscriber
into the outbox (gate.outbox delivers them, each once, with a stable Message-ID), so a digest is
queued whole or not at all. What a person gets is decided then, from their account as it
stands at that moment: the notes (gate.change_notes) of articles in the sections their
organisation's tariff includes now (gate.access), nothing to disabled people or ended
contracts. A digest lists the notes the site did not have at the previous digest (each run
records what it knew), or for the first one, the notes of the last 7 days. The same slot also
mails the support desk the week's "articles that fail" (gate.feedback).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading

import sqlalchemy as sa

from gate import accounts, change_notes, outbox
from gate import feedback as feedback_store
from gate.clock import utcnow
from gate.db import digest_runs, digest_subscriptions
from gate.sections import SECTIONS

log = logging.getLogger("gate.digest")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_AT = "mon 09:00"
FIRST_DAYS = 7  # the first digest ever lists the notes of this many days


class DigestError(ValueError):
    pass


def parse_at(value: str) -> tuple[int, dt.time]:
    """'mon 09:00' -> (weekday 0-6, time); DigestError otherwise."""
    day, _, clock = (value or "").strip().lower().partition(" ")
    try:
        return DAYS.index(day), dt.time.fromisoformat(clock.strip())
    except ValueError:
        raise DigestError(f"expected a weekday and a time like '{DEFAULT_AT}', not {value!r}") from None


def slot_due(now: dt.datetime, at: str = DEFAULT_AT) -> str | None:
    """The week's slot ('2026-W49') when its sending time has come (`now` is local time)."""
    weekday, time = parse_at(at)
    monday = now.date() - dt.timedelta(days=now.weekday())
    start = dt.datetime.combine(monday + dt.timedelta(days=weekday), time, now.tzinfo)
    if now < start:
        return None
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


# --- subscriptions ---------------------------------------------------------------------------

def subscribed(conn, user_id: int) -> bool:
    return conn.execute(sa.select(digest_subscriptions.c.user_id).where(
        digest_subscriptions.c.user_id == user_id)).first() is not None


def subscribe(conn, user_id: int, on: bool) -> None:
    conn.execute(digest_subscriptions.delete().where(digest_subscriptions.c.user_id == user_id))
    if on:
        conn.execute(digest_subscriptions.insert().values(user_id=user_id, created_at=utcnow()))


def secret(key: bytes) -> bytes:
    """The key unsubscribe links are signed with, from the gate's signing key."""
    return hmac.new(key, b"kb-digest", hashlib.sha256).digest()


def unsubscribe_token(key: bytes, user_id: int) -> str:
    """The signed token of a person's unsubscribe link (works without logging in)."""
    mac = hmac.new(key, f"kb-digest-unsubscribe:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"{user_id}.{mac[:40]}"


def token_user(key: bytes, token: str) -> int | None:
    user_id, _, _ = (token or "").partition(".")
    if not (user_id.isascii() and user_id.isdigit()) or len(user_id) > 9:
        return None
    return int(user_id) if hmac.compare_digest(unsubscribe_token(key, int(user_id)), token) else None


# --- what a person gets ----------------------------------------------------------------------

def _key(entry: dict) -> str:
    return f"{entry['path']}#{entry['date']}"


def last_known(conn) -> set | None:
    """The notes the site had at the latest digest, or None before the first one."""
    row = conn.execute(sa.select(digest_runs.c.known).order_by(
        digest_runs.c.claimed_at.desc()).limit(1)).first()
    return set(json.loads(row.known)) if row else None


def new_entries(entries: list[dict], known: set | None, today: dt.date) -> list[dict]:
    if known is None:
        since = (today - dt.timedelta(days=FIRST_DAYS)).isoformat()
        return [e for e in entries if e["date"] >= since]
    return [e for e in entries if _key(e) not in known]


def compose(identity, articles: list[dict], known: set | None, today: dt.date, base_url: str,
            token: str) -> tuple[str, str] | None:
    """(subject, text) of the digest for `identity` now, or None when there is nothing for them
    (no new note in their sections, a disabled person, an ended contract)."""
    if identity is None or not identity.contract_active:
        return None
    entries = new_entries(change_notes.visible(articles, identity.sections), known, today)
    if not entries:
        return None
    lines = ["Здравствуйте!", "",
             "Что изменилось в базе знаний SET Retail 10 в разделах, открытых вашим тарифом:", ""]
    for e in entries:
        date = dt.date.fromisoformat(e["date"]).strftime("%d.%m.%Y")
        lines += [f"* {e['title']} ({date})", f"  {e['note']}", f"  {base_url}{e['path']}", ""]
    lines += [f"Все изменения — лента Atom: {base_url}/feed.xml (личная ссылка для программ "
              f"чтения лент — в профиле: {base_url}/account/)",
              "", "Вы получаете это письмо, потому что подписались на него в профиле.",
              f"Отписаться: {base_url}/account/unsubscribe/{token}", ""]
    n = len(entries)
    subject = f"Что изменилось в базе знаний SET Retail 10: {n} " + (
        "изменение" if n % 10 == 1 and n % 100 != 11 else
        "изменения" if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14 else "изменений")
    return subject, "\n".join(lines)


def dry_run(engine, cfg, tariffs, key: bytes, email: str, base_url: str) -> list[str]:
    """What `gate digest --dry-run EMAIL` prints: whether the person is subscribed, then what
    they would get now if they were."""
    from gate.accounts import user_id_by_email
    today = dt.datetime.now(cfg.timezone).date()
    articles = change_notes.load_articles(cfg.site_dir)
    with engine.connect() as conn:
        user_id = user_id_by_email(conn, email)
        on = subscribed(conn, user_id)
        identity = accounts.identity(conn, user_id, tariffs, cfg.timezone)  # as it is now
        known = last_known(conn)
    out = [f"subscribed: {'yes' if on else 'no'}"]
    if identity is None:
        return out + ["nothing would be sent: the person is disabled"]
    if not identity.contract_active:
        return out + ["nothing would be sent: the organisation's contract has ended"]
    mail = compose(identity, articles, known, today, base_url, unsubscribe_token(key, user_id))
    if mail is None:
        return out + ["nothing would be sent: no new change notes in this person's sections"]
    return out + [f"To: {identity.email}", f"Subject: {mail[0]}", ""] + mail[1].split("\n")


# --- sending once a week ---------------------------------------------------------------------

def send_due(engine, cfg, tariffs, key: bytes, base_url: str | None,
             now: dt.datetime | None = None) -> int | None:
    """Queues this week's digest if its time has come and no process has claimed it yet;
    returns how many mails were queued (None: not due, or claimed elsewhere)."""
    now = now or dt.datetime.now(cfg.timezone)
    slot = slot_due(now, cfg.digest_at)
    if slot is None or base_url is None:
        return None
    with engine.connect() as conn:
        if conn.execute(sa.select(digest_runs.c.slot).where(digest_runs.c.slot == slot)).first():
            return None
    articles = change_notes.load_articles(cfg.site_dir)
    today = now.date()
    failing = feedback_store.failing(feedback_store.report(
        engine, days=7, titles=change_notes.titles(articles)))
    try:
        with engine.begin() as conn:
            known = last_known(conn)
            everything = change_notes.visible(articles, frozenset(SECTIONS))
            conn.execute(digest_runs.insert().values(
                slot=slot, claimed_by=outbox.process_name(), claimed_at=utcnow(),
                known=json.dumps(sorted(_key(e) for e in everything)), mails=0))
            sent = _queue(conn, cfg, tariffs, key, base_url, slot, articles, known, today)
            _queue_failing(conn, cfg, base_url, slot, failing)
            conn.execute(digest_runs.update().where(digest_runs.c.slot == slot).values(mails=sent))
    except sa.exc.IntegrityError:
        return None  # another process or host claimed this week first
    log.info("digest %s: %s mail(s) queued", slot, sent)
    return sent


def _queue(conn, cfg, tariffs, key, base_url, slot, articles, known, today) -> int:
    sent = 0
    for (user_id,) in conn.execute(sa.select(digest_subscriptions.c.user_id)
                                   .order_by(digest_subscriptions.c.user_id)).all():
        identity = accounts.identity(conn, user_id, tariffs, cfg.timezone)  # as it is now
        token = unsubscribe_token(key, user_id)
        mail = compose(identity, articles, known, today, base_url, token)
        if mail is None:
            continue
        link = f"{base_url}/account/unsubscribe/{token}"
        outbox.enqueue(conn, cfg, to=identity.email, subject=mail[0], text=mail[1],
                       message_id=f"kb-digest-{slot}-{user_id}",
                       headers={"List-Unsubscribe": f"<{link}>",
                                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                                "Auto-Submitted": "auto-generated"})
        sent += 1
    return sent


def _queue_failing(conn, cfg, base_url, slot, failing: list[dict]) -> None:
    """The week's "articles that fail" for the authors, to the support desk."""
    if failing:
        lines = ["Статьи, на которые читатели за неделю чаще всего отвечали «нет» "
                 "на вопрос «Была ли статья полезной?»:", ""]
        for a in failing:
            lines.append(f"* {a['title'] or a['page']}: «нет» {a['no']} из {a['yes'] + a['no']}"
                         f", обращений после «нет»: {a['requests']} — {base_url}{a['page']}")
        lines += ["", f"Причины и комментарии: {base_url}/api/feedback/report?days=7 "
                      "или `gate feedback --days 7`.", ""]
        outbox.enqueue(conn, cfg, to=cfg.support_email,
                       subject=f"Статьи, которые не помогают читателям: {len(failing)}",
                       text="\n".join(lines), message_id=f"kb-feedback-{slot}")


class Sender(threading.Thread):
    """Inside `gate serve`, beside the outbox worker: looks every `interval` seconds whether
    the week's digest is due, queues it if no other process has, and pokes the outbox."""

    def __init__(self, engine, cfg, tariffs, key: bytes, base_url: str | None, poke=None,
                 interval: float = 60.0):
        super().__init__(name="digest", daemon=True)
        self.engine, self.cfg, self.tariffs, self.key = engine, cfg, tariffs, key
        self.base_url, self.poke, self.interval = base_url, poke, interval
        self._stopping = threading.Event()

    def stop(self):
        self._stopping.set()

    def run(self):
        while not self._stopping.is_set():
            try:
                if send_due(self.engine, self.cfg, self.tariffs, self.key, self.base_url) and self.poke:
                    self.poke()
            except Exception:  # keep the sender alive whatever the database says
                log.exception("digest sender error")
            self._stopping.wait(self.interval)
