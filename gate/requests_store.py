"""Support requests: the form's vocabulary, storing a request with its mails, and listings."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from gate import contacts, outbox, sla, workdays
from gate.clock import utcnow
from gate.db import attachments, orgs, outbox as outbox_t, support_requests, users

# The tariff's topics (within the SLA) and the problems it cannot solve in its terms.
CATEGORIES = {
    "functions": ("Функционал и настройки SET", True),
    "data": ("Импорт и экспорт данных", True),
    "loyalty": ("Работа модуля лояльности", True),
    "ui": ("Работа пользовательского интерфейса", True),
    "infrastructure": ("Оборудование, ОС, БД (вне SLA)", False),
    "erp-connector": ("Модуль стыковки с ERP (вне SLA)", False),
    "channels": ("Каналы связи (вне SLA)", False),
}
CRITICALITIES = {
    "ordinary": "Обычная: консультация в течение 8 часов",
    "critical-registers": "Критичная: остановлено более 50% касс магазина (консультация в течение 4 часов)",
    "critical-loading": "Критичная: остановлена загрузка товаров и цен (консультация в течение 4 часов)",
    "server-failed": "Вышел из строя сервер SET (гарантированная консультация в течение 8 часов)",
    "new-server": "Проблемы при настройке нового сервера (гарантированная консультация в течение 8 часов)",
    "store-launch": "Инженеры не могут запустить магазин на объекте (гарантированная консультация в течение 8 часов)",
}


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value else None


def local(value: dt.datetime | None, tz) -> dt.datetime | None:
    """A stored (naive UTC) time in GATE_TIMEZONE."""
    return value.replace(tzinfo=dt.timezone.utc).astimezone(tz) if value else None


def create(engine, cfg, tariffs, identity, fields: dict, files: list, base_url: str,
           calendar=None) -> int:
    """Stores the request, its attachments and both mails in one transaction; returns its number."""
    now = dt.datetime.now(dt.timezone.utc)
    tariff = tariffs.get(identity.tariff)
    in_sla = CATEGORIES[fields["category"]][1]
    due = sla.deadlines(tariff.sla if tariff and identity.contract_active else None, now,
                        fields["criticality"], in_sla, cfg.timezone,
                        calendar or workdays.MONDAY_TO_FRIDAY)
    with engine.begin() as conn:
        org_id = conn.execute(sa.select(users.c.org_id).where(users.c.id == identity.user_id)).scalar_one()
        number = conn.execute(support_requests.insert().values(
            org_id=org_id, user_id=identity.user_id, tariff=identity.tariff,
            category=fields["category"], criticality=fields["criticality"], phone=fields["phone"],
            store=fields["store"], registers_affected=fields["registers"], subject=fields["subject"],
            description=fields["description"], from_page=fields.get("from") or None,
            created_at=_utc(now), register_by=_utc(due.register_by), consult_by=_utc(due.consult_by),
            workaround_by=_utc(due.workaround_by))).inserted_primary_key[0]
        for name, content_type, data in files:
            conn.execute(attachments.insert().values(request_id=number, filename=name,
                                                     content_type=content_type, data=data))
        text = mail_text(number, identity, fields, due, cfg.timezone, base_url)
        outbox.enqueue(conn, cfg, to=cfg.support_email, reply_to=identity.email,
                       subject=f"[KB-{number}] {fields['subject']}", text=text,
                       message_id=f"kb-request-{number}", attachments=files, request_id=number)
        outbox.enqueue(conn, cfg, to=identity.email,
                       subject=f"Обращение № {number} принято: {fields['subject']}",
                       text=confirmation_text(number, due, cfg.timezone, base_url),
                       message_id=f"kb-request-{number}-confirmation", request_id=number)
    return number


def _fmt(value, tz) -> str:
    if value is None:
        return "—"
    return value.astimezone(tz).strftime("%d.%m.%Y %H:%M %Z")


def mail_text(number, identity, f, due, tz, base_url) -> str:
    return "\n".join([
        f"Обращение № {number}",
        f"Организация: {identity.org}",
        f"Контакт: {identity.email}, телефон {f['phone']}",
        f"Категория: {CATEGORIES[f['category']][0]}",
        f"Критичность: {CRITICALITIES[f['criticality']]}",
        f"Магазин: {f['store']}",
        f"Затронуто касс: {f['registers']}",
        f"Статья: {f.get('from') or '—'}",
        f"Зарегистрировать до: {_fmt(due.register_by, tz)}",
        f"Консультация до: {_fmt(due.consult_by, tz)}",
        f"Обходное решение до: {_fmt(due.workaround_by, tz)}",
        f"Страница обращения: {base_url}/support/{number}/",
        "",
        f"Тема: {f['subject']}",
        "",
        f["description"],
        "",
    ])


def confirmation_text(number, due, tz, base_url) -> str:
    return "\n".join([
        "Здравствуйте!",
        "",
        f"Ваше обращение № {number} принято.",
        f"Оно будет зарегистрировано до {_fmt(due.register_by, tz)}, "
        f"консультацию вы получите до {_fmt(due.consult_by, tz)}.",
        f"Следить за обращением: {base_url}/support/{number}/",
        "",
        f"Поддержка SET Retail 10: {contacts.PHONE}, {contacts.EMAIL}",
        "",
    ])


def _delivery(conn):
    """request id -> 'delivered' | 'pending' | 'retrying' (of its mail to the support desk)."""
    rows = conn.execute(sa.select(outbox_t.c.request_id, outbox_t.c.sent_at, outbox_t.c.attempts)
                        .where(outbox_t.c.request_id.is_not(None),
                               outbox_t.c.message_id.not_like("%confirmation%")))
    return {r.request_id: "delivered" if r.sent_at else ("retrying" if r.attempts else "pending")
            for r in rows}


def rows(engine, org_id: int | None = None, number: int | None = None):
    q = (sa.select(support_requests, orgs.c.name.label("org_name"), users.c.email.label("email"))
         .join(orgs, support_requests.c.org_id == orgs.c.id)
         .join(users, support_requests.c.user_id == users.c.id)
         .order_by(support_requests.c.id.desc()))
    if org_id is not None:
        q = q.where(support_requests.c.org_id == org_id)
    if number is not None:
        q = q.where(support_requests.c.id == number)
    with engine.connect() as conn:
        found = conn.execute(q).all()
        delivery = _delivery(conn)
    return found, delivery


def listing(engine, cfg) -> list[dict]:
    """Every stored request for `gate requests`, oldest first; times in GATE_TIMEZONE."""
    found, delivery = rows(engine)
    def iso(v):
        v = local(v, cfg.timezone)
        return v.isoformat(timespec="minutes") if v else None
    return [{
        "number": r.id, "org": r.org_name, "category": r.category, "criticality": r.criticality,
        "created": iso(r.created_at), "register_by": iso(r.register_by),
        "consult_by": iso(r.consult_by), "workaround_by": iso(r.workaround_by),
        "registered": iso(r.registered_at), "consulted": iso(r.consulted_at),
        "delivery": delivery.get(r.id, "pending"),
    } for r in reversed(found)]


def mark(engine, number: int, what: str) -> bool:
    column = {"registered": "registered_at", "consulted": "consulted_at"}[what]
    with engine.begin() as conn:
        return conn.execute(support_requests.update().where(support_requests.c.id == number)
                            .values({column: utcnow()})
                            ).rowcount == 1
