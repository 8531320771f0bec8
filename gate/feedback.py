"""Readers' feedback on articles: what a vote may say, reading it from a request's body,
storing it (one vote per voter and page, the last one counts) and the report for authors.

No Flask here: gate.views.feedback decides who the voter is and whether the page is theirs to
see; this module checks the values and keeps the votes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

import sqlalchemy as sa

from gate.clock import utcnow
from gate.db import feedback, feedback_requests

VOTES = ("yes", "no")
# reason -> how the form and the report name it
REASONS = {
    "no-answer": "Нет ответа на мой вопрос",
    "outdated": "Устарело",
    "error": "Ошибка в статье",
    "unclear": "Непонятно написано",
    "other": "Другое",
}
MAX_COMMENT = 2000   # characters
MAX_PAGE = 500       # characters of the article's path
MAX_BODY = 32 * 1024  # bytes: a 2000-character comment, percent-encoded, fits easily
FIELDS = ("page", "vote", "reason", "comment")


class BadFeedback(ValueError):
    """Input the endpoint refuses with 400 (the message is for people, in Russian)."""


@dataclass(frozen=True)
class Vote:
    page: str
    vote: str
    reason: str | None = None
    comment: str | None = None


def read_body(content_type: str, body: bytes) -> dict:
    """The fields of a form-encoded or JSON body, strictly UTF-8; BadFeedback otherwise."""
    if len(body) > MAX_BODY:
        raise BadFeedback("Слишком большой запрос.")
    kind = (content_type or "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadFeedback("Запрос не в кодировке UTF-8.") from None
    if kind == "application/json":
        try:
            data = json.loads(text)
        except ValueError:
            raise BadFeedback("Запрос не является корректным JSON.") from None
        if not isinstance(data, dict):
            raise BadFeedback("Ожидается JSON-объект с полями page и vote.")
        return data
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise BadFeedback("Запрос не в кодировке UTF-8.") from None
        data: dict = {}
        for key, value in pairs:
            if key in data:
                raise BadFeedback(f"Поле {key} передано дважды.")
            data[key] = value
        return data
    raise BadFeedback("Отправьте поля формой (application/x-www-form-urlencoded) или JSON.")


def _text(data: dict, name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadFeedback(f"Поле {name} должно быть строкой.")
    try:
        value.encode("utf-8")  # lone surrogates from JSON escapes are no text
    except UnicodeEncodeError:
        raise BadFeedback(f"Поле {name} содержит недопустимые символы.") from None
    if any((ord(c) < 32 and c not in "\n\r\t") or 0x7f <= ord(c) < 0xa0 for c in value):
        raise BadFeedback(f"Поле {name} содержит недопустимые символы.")
    return value


def check(data: dict) -> Vote:
    """The vote in `data` (read_body's fields), or BadFeedback saying what is wrong."""
    page = _text(data, "page")
    if page is None:
        raise BadFeedback("Укажите статью (поле page).")
    if len(page) > MAX_PAGE or not page.startswith("/") or any(c.isspace() for c in page):
        raise BadFeedback("Поле page должно быть адресом статьи, например /functionality/x/.")
    vote = _text(data, "vote")
    if vote not in VOTES:
        raise BadFeedback("Поле vote должно быть yes или no.")
    reason = _text(data, "reason")
    if reason is not None and reason not in REASONS:
        raise BadFeedback(f"Поле reason должно быть одним из: {', '.join(REASONS)}.")
    if reason is not None and vote != "no":
        raise BadFeedback("Причину (reason) указывают только к ответу no.")
    comment = _text(data, "comment")
    if comment is not None:
        comment = comment.replace("\r\n", "\n").replace("\r", "\n").strip()
        if len(comment) > MAX_COMMENT:
            raise BadFeedback(f"Комментарий длиннее {MAX_COMMENT} символов.")
    return Vote(page=page, vote=vote, reason=reason, comment=comment or None)


def person_voter(user_id: int) -> str:
    return f"u{user_id}"


def browser_voter(cookie: str) -> str:
    """An anonymous visitor's browser, by its kb_voter cookie (only a hash is stored)."""
    return "b" + hashlib.sha256(cookie.encode()).hexdigest()[:40]


def store(engine, vote: Vote, voter: str, user_id: int | None, edition: str) -> int:
    """Stores the vote; a voter's earlier vote on the page is replaced. Returns its row id."""
    now = utcnow()
    values = dict(vote=vote.vote, reason=vote.reason, comment=vote.comment, user_id=user_id,
                  edition=edition, updated_at=now)
    c = feedback.c
    for _ in range(2):  # two votes of one voter at once: the second updates the first's row
        try:
            with engine.begin() as conn:
                row = conn.execute(sa.select(c.id).where(c.voter == voter, c.page == vote.page)).first()
                if row is not None:
                    conn.execute(feedback.update().where(c.id == row.id).values(**values))
                    return row.id
                return conn.execute(feedback.insert().values(
                    page=vote.page, voter=voter, created_at=now, **values)).inserted_primary_key[0]
        except sa.exc.IntegrityError:
            continue
    raise RuntimeError("feedback not stored")


def latest(engine, page: str, voters: list[str]):
    """The newest vote of any of `voters` on `page` (a row), or None."""
    if not voters:
        return None
    c = feedback.c
    with engine.connect() as conn:
        return conn.execute(sa.select(feedback).where(c.page == page, c.voter.in_(voters))
                            .order_by(c.updated_at.desc()).limit(1)).first()


def note_request(conn, request_id: int, page: str, feedback_id: int | None) -> None:
    """In the support request's transaction: it was filed from the "no" of a feedback form."""
    conn.execute(feedback_requests.insert().values(request_id=request_id, page=page,
                                                   feedback_id=feedback_id, created_at=utcnow()))


def report(engine, days: int = 30, titles: dict | None = None) -> list[dict]:
    """Per article, for votes of the last `days` days: yes, no, share of no, reasons, comments
    (newest first) and support requests filed from a "no"; the largest share of "no" first."""
    since = utcnow() - dt.timedelta(days=days)
    titles = titles or {}
    rows: dict[str, dict] = {}

    def article(page):
        return rows.setdefault(page, {"page": page, "title": titles.get(page, ""), "yes": 0,
                                      "no": 0, "share_no": 0.0, "reasons": {}, "comments": [],
                                      "requests": 0})

    c = feedback.c
    with engine.connect() as conn:
        for r in conn.execute(sa.select(c.page, c.vote, c.reason, c.comment, c.updated_at)
                              .where(c.updated_at >= since).order_by(c.updated_at.desc())):
            a = article(r.page)
            a[r.vote] += 1
            if r.reason:
                a["reasons"][r.reason] = a["reasons"].get(r.reason, 0) + 1
            if r.comment:
                a["comments"].append({"date": r.updated_at.date().isoformat(), "vote": r.vote,
                                      "reason": r.reason, "text": r.comment})
        q = feedback_requests.c
        for page, n in conn.execute(sa.select(q.page, sa.func.count()).where(q.created_at >= since)
                                    .group_by(q.page)):
            article(page)["requests"] = n
    for a in rows.values():
        votes = a["yes"] + a["no"]
        a["share_no"] = round(a["no"] / votes, 3) if votes else 0.0
    return sorted(rows.values(), key=lambda a: (-a["share_no"], -a["no"], -a["requests"], a["page"]))


def failing(articles: list[dict], limit: int = 10) -> list[dict]:
    """The articles that fail their readers: at least one "no", the largest share first."""
    return [a for a in articles if a["no"]][:limit]


def report_pages(engine, site_dir, days: int) -> dict:
    """What the authors' report shows (`/staff/feedback/`, `/api/feedback/report`): every article
    with feedback in `days`, and the week's articles that fail."""
    from gate import change_notes
    titles = change_notes.titles(change_notes.load_articles(site_dir))
    return {"articles": report(engine, days=days, titles=titles),
            "weekly": failing(report(engine, days=7, titles=titles)),
            "days": days, "reasons": REASONS}


def report_days(value) -> int:
    """The report's period from a query argument: 1 to 3650 days, 30 when absent or bad."""
    try:
        return min(max(int(value), 1), 3650)
    except (TypeError, ValueError):
        return 30
