"""The support request form, request pages and lists."""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa
from flask import Blueprint, Response, g, request

from gate import requests_store as store
from gate.db import attachments, users
from gate.pages import login_required, render_in_site
from gate.search_api import note_support_request
from gate.access import may_see
from gate.sections import section_of_url
from gate.security import safe_next
from gate.site import normalize_path
from gate.app import current_gate as _gate

bp = Blueprint("support", __name__)
MAX_FILES = 5
# A mail with 7 MB of attachments stays under common SMTP limits (Postfix: 10 MB) after base64.
MAX_FILE = 5 * 1024 * 1024
MAX_TOTAL = 7 * 1024 * 1024
CONTENT_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
PHONE_RE = re.compile(r"^\+?[0-9 ()\-]{5,30}$")
ID = "int(max=2147483647)"  # ids are 32-bit in PostgreSQL: larger numbers are no request (404, no 500)
LIMITS = {"store": 200, "subject": 200, "description": 20000}


def _from_value(raw: str | None) -> str:
    """The article the reader came from: a local path only, anything else is dropped.

    An address in a section the visitor may not see is kept only as that section's root.
    """
    value = safe_next(raw, default="")
    if len(value) > 500:
        return ""
    section = section_of_url(normalize_path(value.split("?")[0].split("#")[0]) or value)
    if section and not may_see(g.identity.sections, section):
        return f"/{section}/"
    return value


def _content_type(value: str | None) -> str:
    """The client's type of an uploaded file when it is a plain type/subtype that fits the
    database column (100 characters), else application/octet-stream."""
    if value and len(value) <= 100 and CONTENT_TYPE_RE.match(value):
        return value
    return "application/octet-stream"


def validate(form, files) -> tuple[dict, dict, list]:
    """(clean fields, errors by field, files as (name, type, bytes)); messages are in Russian."""
    f = {k: (form.get(k) or "").strip() for k in
         ("phone", "category", "criticality", "store", "registers", "subject", "description")}
    f["from"] = _from_value(form.get("from"))
    errors = {}
    if not PHONE_RE.match(f["phone"]):
        errors["phone"] = "Укажите телефон для связи: цифры, пробелы, скобки, «+» и «-», от 5 до 30 знаков."
    if f["category"] not in store.CATEGORIES:
        errors["category"] = "Выберите тему обращения из списка."
    if f["criticality"] not in store.CRITICALITIES:
        errors["criticality"] = "Выберите критичность из списка."
    for key, label in (("store", "магазин (название или номер)"), ("subject", "краткую тему")):
        if not f[key]:
            errors[key] = f"Укажите {label}."
        elif len(f[key]) > LIMITS[key]:
            errors[key] = f"Не более {LIMITS[key]} символов."
    if len(f["description"]) < 10:
        errors["description"] = "Опишите проблему: что произошло, когда, что уже проверили (не меньше 10 символов)."
    elif len(f["description"]) > LIMITS["description"]:
        errors["description"] = f"Описание длиннее {LIMITS['description']} символов: приложите подробности файлом."
    try:
        f["registers"] = int(f["registers"] or "0")
        if not 0 <= f["registers"] <= 100000:
            raise ValueError
    except ValueError:
        errors["registers"] = "Укажите число касс: целое число от 0."
    if form.get("consent") != "yes":
        errors["consent"] = "Без согласия на обработку персональных данных мы не можем принять обращение."
    for key, value in f.items():
        if isinstance(value, str) and "\x00" in value:
            errors[key] = "Недопустимые символы."
    kept, total = [], 0
    for upload in files:
        if not upload or not upload.filename:
            continue
        data = upload.read(MAX_FILE + 1)
        name = re.sub(r"[^\w.\- ()]", "_", upload.filename)[-100:] or "file"
        if len(data) > MAX_FILE:
            errors["attachments"] = f"Файл «{name}» больше 5 МБ."
        kept.append((name, _content_type(upload.mimetype), data))
        total += len(data)
    if len(kept) > MAX_FILES:
        errors["attachments"] = f"Не больше {MAX_FILES} файлов."
    elif total > MAX_TOTAL:
        errors["attachments"] = "Вложения вместе больше 7 МБ."
    return f, errors, kept


def _form(status=200, values=None, errors=None):
    return render_in_site("Обращение в поддержку", "support_form.html", status=status,
                          values=values or {}, errors=errors or {}, categories=store.CATEGORIES,
                          criticalities=store.CRITICALITIES, max_files=MAX_FILES)


@bp.route("/support/new", methods=["GET", "POST"])
def new():
    if g.identity is None:
        return login_required()
    if request.method == "GET":
        return _form(values={"from": _from_value(request.args.get("from")),
                             "criticality": "ordinary"})
    fields, errors, files = validate(request.form, request.files.getlist("attachments"))
    if errors:
        return _form(status=422, values=fields, errors=errors)
    gate = _gate()
    base = gate.cfg.base_url or request.host_url.rstrip("/")
    number = store.create(gate.engine, gate.cfg, gate.tariffs, g.identity, fields, files, base)
    note_support_request()
    worker = getattr(gate, "outbox_worker", None)
    if worker:
        worker.poke()
    resp = Response(status=303)
    resp.headers["Location"] = f"/support/{number}/"
    return resp


def _org_id() -> int:
    with _gate().engine.connect() as conn:
        return conn.execute(sa.select(users.c.org_id).where(users.c.id == g.identity.user_id)).scalar_one()


def _visible(number: int):
    """The request row when the visitor may see it (its organisation's people, staff), else None."""
    found, delivery = store.rows(_gate().engine, number=number)
    if not found:
        return None, None
    row = found[0]
    if not g.identity.staff and row.org_id != _org_id():
        return None, None
    return row, delivery.get(row.id, "pending")


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@bp.route("/support/")
def index():
    if g.identity is None:
        return login_required()
    found, delivery = store.rows(_gate().engine, org_id=None if g.identity.staff else _org_id())
    return render_in_site("Обращения", "support_list.html", requests=found, delivery=delivery,
                          tz=_gate().cfg.timezone, local=store.local, now=_now(),
                          categories=store.CATEGORIES, criticalities=store.CRITICALITIES)


@bp.route(f"/support/<{ID}:number>/")
def show(number):
    if g.identity is None:
        return login_required()
    row, delivery = _visible(number)
    if row is None:
        return render_in_site("Обращение не найдено", "message.html", status=404,
                              heading="Обращение не найдено",
                              message="Такого обращения нет или оно принадлежит другой организации.",
                              link=("/support/", "Все обращения"))
    with _gate().engine.connect() as conn:
        files = conn.execute(sa.select(attachments.c.id, attachments.c.filename).where(
            attachments.c.request_id == number)).all()
    return render_in_site(f"Обращение № {number}", "support_request.html", r=row, files=files,
                          delivery=delivery, tz=_gate().cfg.timezone, local=store.local, now=_now(),
                          categories=store.CATEGORIES, criticalities=store.CRITICALITIES)


@bp.route(f"/support/<{ID}:number>/files/<{ID}:file_id>")
def attachment(number, file_id):
    if g.identity is None:
        return login_required()
    row, _ = _visible(number)
    if row is None:
        return render_in_site("Не найдено", "message.html", status=404, heading="Не найдено",
                              message="Такого файла нет.")
    with _gate().engine.connect() as conn:
        f = conn.execute(sa.select(attachments).where(attachments.c.id == file_id,
                                                      attachments.c.request_id == number)).first()
    if f is None:
        return render_in_site("Не найдено", "message.html", status=404, heading="Не найдено",
                              message="Такого файла нет.")
    resp = Response(f.data, mimetype="application/octet-stream")
    resp.headers.set("Content-Disposition", "attachment", filename=f.filename)
    return resp


@bp.route(f"/support/<{ID}:number>/mark", methods=["POST"])
def mark(number):
    if g.identity is None:
        return login_required()
    what = request.form.get("what")
    if not g.identity.staff or what not in ("registered", "consulted"):
        return render_in_site("Недоступно", "message.html", status=403, heading="Недоступно",
                              message="Отмечать обращения могут только сотрудники поддержки.")
    if not store.mark(_gate().engine, number, what):
        return render_in_site("Обращение не найдено", "message.html", status=404,
                              heading="Обращение не найдено", message="Такого обращения нет.")
    resp = Response(status=303)
    resp.headers["Location"] = f"/support/{number}/"
    return resp
