"""The support request form, request pages and lists."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, g, request

from gate import contacts
from gate import feedback as feedback_store
from gate import usage
from gate import requests_store as store
from gate.clock import utcnow
from gate.db import attachments, users
from gate.views import feedback, search
from gate.views.support_form import MAX_FILES, SupportForm, from_value
from gate.web.responses import login_required, message, render_in_site, see_other
from gate.web.runtime import current_gate as _gate
from gate.web.storage import on_storage_fault

bp = Blueprint("support", __name__)
ID = "int(max=2147483647)"  # ids are 32-bit in PostgreSQL: larger numbers are no request (404, no 500)


def _form(form: SupportForm, status: int = 200, storage_failed: bool = False) -> Response:
    return render_in_site("Обращение в поддержку", "support_form.html", status=status, form=form,
                          categories=store.CATEGORIES, max_files=MAX_FILES,
                          storage_failed=storage_failed, contacts=contacts,
                          files_dropped=any(f.filename for f in request.files.getlist("attachments")))


def _form_again() -> Response | None:
    """Storage failed, in the view or before it: nothing was stored; the form as it was posted,
    with the other ways to reach support (gate.web.storage adds 503)."""
    if request.method != "POST":
        return None
    return _form(SupportForm(), storage_failed=True)


@bp.route("/support/new", methods=["GET", "POST"])
@login_required
@on_storage_fault(_form_again)
def new():
    if request.method == "GET":
        form = SupportForm(formdata=None)
        form.origin.data = from_value(request.args.get("from"))
        if request.args.get("via") == "feedback" and form.origin.data:
            _from_feedback(form)
        return _form(form)
    form = SupportForm()
    if not form.validate():
        return _form(form, status=422)
    gate = _gate()
    base = gate.cfg.base_url or request.host_url.rstrip("/")
    fields = form.fields_to_store()
    if form.via.data == "feedback" and fields["from"]:
        vote = feedback_store.latest(gate.engine, fields["from"], feedback.voters())
        fields["feedback"] = (fields["from"], vote.id if vote is not None else None)
    number = store.create(gate.engine, gate.cfg, gate.tariffs, g.identity,
                          fields, form.files, base, gate.calendar)
    gate.poke_outbox()
    gate.usage.add(g.identity.org_id, usage.REQUEST)  # per organisation, in memory
    search.note_support_request()  # what was searched just before did not answer it
    return see_other(f"/support/{number}/")


def _from_feedback(form: SupportForm) -> None:
    """Opened from an article's "no": the request will say so, and its description starts with
    the reader's reason and comment (kept with the vote, so the comment never rides in a URL)."""
    form.via.data = "feedback"
    vote = feedback_store.latest(_gate().engine, form.origin.data, feedback.voters())
    if vote is None or vote.vote != "no":
        return
    reason = feedback_store.REASONS.get(vote.reason or "")
    parts = [f"Статья не помогла{': ' + reason.lower() if reason else ''}."]
    if vote.comment:
        parts.append(vote.comment)
    form.description.data = "\n\n".join(parts)


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


@bp.route("/support/")
@login_required
def index():
    found, delivery = store.rows(_gate().engine, org_id=None if g.identity.staff else _org_id())
    return render_in_site("Обращения", "support_list.html", requests=found, delivery=delivery,
                          tz=_gate().cfg.timezone, local=store.local, now=utcnow(),
                          categories=store.CATEGORIES, criticalities=store.CRITICALITIES)


@bp.route(f"/support/<{ID}:number>/")
@login_required
def show(number):
    row, delivery = _visible(number)
    if row is None:
        return message("Обращение не найдено", "Такого обращения нет или оно принадлежит другой "
                       "организации.", status=404, link=("/support/", "Все обращения"))
    with _gate().engine.connect() as conn:
        files = conn.execute(sa.select(attachments.c.id, attachments.c.filename).where(
            attachments.c.request_id == number)).all()
    return render_in_site(f"Обращение № {number}", "support_request.html", r=row, files=files,
                          delivery=delivery, tz=_gate().cfg.timezone, local=store.local, now=utcnow(),
                          categories=store.CATEGORIES, criticalities=store.CRITICALITIES)


@bp.route(f"/support/<{ID}:number>/files/<{ID}:file_id>")
@login_required
def attachment(number, file_id):
    row, _ = _visible(number)
    if row is None:
        return message("Не найдено", "Такого файла нет.", status=404)
    with _gate().engine.connect() as conn:
        f = conn.execute(sa.select(attachments).where(attachments.c.id == file_id,
                                                      attachments.c.request_id == number)).first()
    if f is None:
        return message("Не найдено", "Такого файла нет.", status=404)
    resp = Response(f.data, mimetype="application/octet-stream")
    resp.headers.set("Content-Disposition", "attachment", filename=f.filename)
    return resp


@bp.route(f"/support/<{ID}:number>/mark", methods=["POST"])
@login_required
def mark(number):
    what = request.form.get("what")
    if not g.identity.staff or what not in ("registered", "consulted"):
        return message("Недоступно", "Отмечать обращения могут только сотрудники поддержки.",
                       status=403)
    if not store.mark(_gate().engine, number, what):
        return message("Обращение не найдено", "Такого обращения нет.", status=404)
    return see_other(f"/support/{number}/")
