"""What changed: the authors' change notes (front matter `changes:`), per edition.

`gate build` reads every article's notes once (`read_articles`) and writes them to
site/articles.json, outside every edition (never served), and each edition's Atom feed
`feed.xml` (feedgen) from the notes of that edition's own articles. Which articles an edition
or a person sees is gate.access.may_see, as for pages: `visible` is the one filter the feed
(at build time) and the digest (at sending time, with the person's sections then) both use.
Personal feed keys (/feed.xml?key=...) are made and checked here too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

import sqlalchemy as sa

from gate import frontmatter
from gate.access import may_see
from gate.check import page_url
from gate.clock import utcnow
from gate.db import feed_keys
from gate.sections import section_of_source

ARTICLES = "articles.json"  # in site/, beside manifest.json: read by the gate, never served
FEED = "feed.xml"           # in each edition
FEED_ENTRIES = 50
FEED_TITLE = "Что изменилось — База знаний SET Retail 10"


def _as_date(value) -> dt.date | None:
    if type(value) is dt.date:
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def notes_of(meta: dict) -> list[dict]:
    """The well-formed change notes of an article's front matter (gate check reports the rest)."""
    notes = []
    items = meta.get("changes")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        date, note = _as_date(item.get("date")), item.get("note")
        if date and isinstance(note, str) and note.strip():
            notes.append({"date": date.isoformat(), "note": " ".join(note.split())})
    return sorted(notes, key=lambda n: n["date"], reverse=True)


def read_articles(docs_dir: Path) -> list[dict]:
    """Every article of docs/: path, title, section and change notes (newest first)."""
    docs_dir = Path(docs_dir)
    articles = []
    for path in sorted(docs_dir.rglob("*.md")):
        rel = path.relative_to(docs_dir).as_posix()
        meta = frontmatter.of_file(path)
        articles.append({"path": page_url(rel), "title": str(meta.get("title") or ""),
                         "section": section_of_source(rel), "changes": notes_of(meta)})
    return articles


def write_articles(site_dir: Path, articles: list[dict]) -> None:
    (Path(site_dir) / ARTICLES).write_text(json.dumps(articles, ensure_ascii=False, indent=1))


def load_articles(site_dir: Path) -> list[dict]:
    """The articles the current site/ was built from ([] when it has none)."""
    try:
        return json.loads((Path(site_dir) / ARTICLES).read_text())
    except (OSError, ValueError):
        return []


def titles(articles: list[dict]) -> dict:
    return {a["path"]: a["title"] for a in articles}


def visible(articles: list[dict], sections) -> list[dict]:
    """The change notes of the articles a reader of `sections` may see, newest first: one entry
    per note {path, title, date, note}."""
    entries = [{"path": a["path"], "title": a["title"], "date": n["date"], "note": n["note"]}
               for a in articles if may_see(sections, a["section"]) for n in a["changes"]]
    return sorted(entries, key=lambda e: (e["date"], e["path"]), reverse=True)


def feed_xml(entries: list[dict], site_url: str, built: dt.datetime) -> bytes:
    """The Atom feed of `entries` (newest first) with absolute links under `site_url`."""
    from feedgen.feed import FeedGenerator

    base = site_url.rstrip("/") + "/"
    fg = FeedGenerator()
    fg.id(base + FEED)
    fg.title(FEED_TITLE)
    fg.subtitle("Изменения статей в разделах, открытых вашим тарифом")
    fg.link(href=base + FEED, rel="self")
    fg.link(href=base, rel="alternate")
    fg.language("ru")
    newest = None
    for e in entries[:FEED_ENTRIES]:
        when = dt.datetime.combine(dt.date.fromisoformat(e["date"]), dt.time(), dt.timezone.utc)
        newest = max(newest or when, when)
        fe = fg.add_entry(order="append")
        fe.id(f"{base}{e['path'].lstrip('/')}#change-{e['date']}")
        fe.title(e["title"])
        fe.link(href=base + e["path"].lstrip("/"))
        fe.updated(when)
        fe.published(when)
        fe.summary(e["note"])
        fe.content(e["note"], type="text")
    fg.updated(newest or built)
    return fg.atom_str(pretty=True)


def write_feed(edition_dir: Path, entries: list[dict], site_url: str,
               built: dt.datetime | None = None) -> Path:
    path = Path(edition_dir) / FEED
    tmp = path.with_name(f"{FEED}.{os.getpid()}.tmp")
    tmp.write_bytes(feed_xml(entries, site_url, built or dt.datetime.now(dt.timezone.utc)))
    tmp.replace(path)
    return path


# --- personal feed keys ---------------------------------------------------------------------

def feed_secret(key: bytes) -> bytes:
    """The key feed keys are derived with, from the gate's signing key."""
    return hmac.new(key, b"kb-feed-keys", hashlib.sha256).digest()


def _key_of(secret: bytes, row_id: int, nonce: str) -> str:
    mac = hmac.new(secret, f"kb-feed-key:{row_id}:{nonce}".encode(), hashlib.sha256).hexdigest()
    return f"{row_id}.{mac[:40]}"


def active_key(conn, secret: bytes, user_id: int) -> str | None:
    """The person's current feed key, or None."""
    row = conn.execute(sa.select(feed_keys).where(
        feed_keys.c.user_id == user_id, feed_keys.c.revoked_at.is_(None))
        .order_by(feed_keys.c.id.desc()).limit(1)).first()
    return _key_of(secret, row.id, row.nonce) if row else None


def new_key(conn, secret: bytes, user_id: int) -> str:
    """A new feed key for the person; the previous ones stop working."""
    revoke_keys(conn, user_id)
    nonce = secrets.token_hex(16)
    row_id = conn.execute(feed_keys.insert().values(user_id=user_id, nonce=nonce,
                                                    created_at=utcnow())).inserted_primary_key[0]
    return _key_of(secret, row_id, nonce)


def revoke_keys(conn, user_id: int) -> None:
    conn.execute(feed_keys.update().where(feed_keys.c.user_id == user_id,
                                          feed_keys.c.revoked_at.is_(None))
                 .values(revoked_at=utcnow()))


def key_owner(engine, secret: bytes, key: str) -> int | None:
    """The id of the person whose current feed key `key` is, or None."""
    row_id, _, mac = (key or "").partition(".")
    if not (row_id.isascii() and row_id.isdigit()) or len(row_id) > 9 or len(mac) != 40:
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(feed_keys).where(feed_keys.c.id == int(row_id))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row.user_id if hmac.compare_digest(_key_of(secret, row.id, row.nonce), key) else None
