"""Organisations in the console: the searchable list, adding one, one organisation's page
(change tariff, end date and external id; end the contract; its people; invite into it)."""

from __future__ import annotations

from flask import request

from gate import changes, console
from gate.access import contract_active
from gate.accounts import AccountError, Unknown, org_by_id
from gate.clock import today
from gate.views.staff import usage
from gate.views.staff.common import ID, actor, bp, done, page, page_arg, refused
from gate.views.staff.forms import InviteForm, OrgAddForm, OrgSetForm, tariff_choices
from gate.web.responses import message
from gate.web.runtime import current_gate


def _list(form, status=200, error=None):
    gate = current_gate()
    q, state = request.args.get("find", "")[:200], request.args.get("status", "")
    state = state if state in console.STATUSES else ""
    with gate.engine.connect() as conn:
        found = console.orgs_page(conn, gate.cfg.timezone, q, state, page_arg())
    return page("Организации", "staff_orgs.html", status=status, p=found, q=q, state=state,
                statuses=console.STATUSES, form=form, error=error, tariffs=gate.tariffs)


@bp.route("/orgs/")
def orgs():
    form = OrgAddForm(formdata=None)
    form.tariff.choices = tariff_choices(current_gate().tariffs)
    return _list(form)


@bp.route("/orgs/", methods=["POST"])
def org_add():
    gate = current_gate()
    form = OrgAddForm()
    form.tariff.choices = tariff_choices(gate.tariffs)
    try:
        with gate.engine.begin() as conn:
            org_id = changes.org_add(conn, actor(), gate.tariffs, form.name.data or "",
                                     form.tariff.data or "", (form.until.data or "").strip() or None,
                                     form.external_id.data or None)
    except AccountError as exc:
        return _list(form, status=422, error=exc.ru)
    return done("Организация добавлена.", f"/staff/orgs/{org_id}/")


def _org_page(org_id, form=None, status=200, error=None):
    gate = current_gate()
    with gate.engine.connect() as conn:
        try:
            row = org_by_id(conn, org_id)
        except AccountError:
            return message("Не найдено", "Такой организации нет.", status=404,
                           link=("/staff/orgs/", "Все организации"))
        people = console.people_page(conn, org_id=org_id)
        used = usage.for_org(conn, org_id)
    if form is None:
        form = OrgSetForm(formdata=None, tariff=row.tariff,
                          until=row.until.isoformat() if row.until else "",
                          external_id=row.external_id or "")
    form.tariff.choices = tariff_choices(gate.tariffs)
    invite = InviteForm(formdata=None, org=row.name)
    active = contract_active(row.until, row.ended_at, today(gate.cfg.timezone))
    return page(f"Организация «{row.name}»", "staff_org.html", status=status, org=row,
                active=active, form=form, invite=invite, people=people, error=error,
                tariffs=gate.tariffs, usage=used)


@bp.route(f"/orgs/<{ID}:org_id>/")
def org(org_id):
    return _org_page(org_id)


@bp.route(f"/orgs/<{ID}:org_id>/", methods=["POST"])
def org_set(org_id):
    """Changes what differs from the organisation as it is (a new end date reopens an ended
    contract; an unchanged one does not)."""
    gate = current_gate()
    form = OrgSetForm()
    try:
        with gate.engine.begin() as conn:
            row = org_by_id(conn, org_id)
            wanted = {"tariff": form.tariff.data or "", "until": (form.until.data or "").strip(),
                      "external_id": (form.external_id.data or "").strip()}
            now = {"tariff": row.tariff, "until": row.until.isoformat() if row.until else "",
                   "external_id": row.external_id or ""}
            differ = {k: v for k, v in wanted.items() if v != now[k]}
            if differ:
                changes.org_set(conn, actor(), gate.tariffs, row.name, **differ)
    except AccountError as exc:
        if isinstance(exc, Unknown):
            return message("Не найдено", exc.ru, status=404, link=("/staff/orgs/", "Все организации"))
        return _org_page(org_id, form=form, status=422, error=exc.ru)
    gate.identities.invalidate()
    return done("Изменения сохранены." if differ else "Ничего не изменилось.",
                f"/staff/orgs/{org_id}/")


@bp.route(f"/orgs/<{ID}:org_id>/end", methods=["POST"])
def org_end(org_id):
    gate = current_gate()
    back = f"/staff/orgs/{org_id}/"
    try:
        with gate.engine.begin() as conn:
            changes.org_end(conn, actor(), org_by_id(conn, org_id).name)
    except AccountError as exc:
        return refused(exc.ru, back, status=404)
    gate.identities.invalidate()
    return done("Договор завершён: разделы закроются для её людей в течение минуты.", back)
