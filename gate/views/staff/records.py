"""The console's overview, API tokens (list, revoke), support requests and the audit log."""

from __future__ import annotations

from flask import request

from gate import audit, changes, console, feedback
from gate.accounts import AccountError, Unknown, org_by_name
from gate.views.staff.common import ID, actor, bp, done, int_arg, page, page_arg, refused
from gate.web.runtime import current_gate

AUDIT_PERIODS = (1, 7, 30, 90, 365)


@bp.route("/")
def overview():
    gate = current_gate()
    with gate.engine.connect() as conn:
        counts = console.overview(conn, gate.cfg.timezone)
        recent = audit.latest(conn, 10)
    return page("Консоль поддержки", "staff_overview.html", counts=counts,
                recent=[audit.as_dict(r, gate.cfg.timezone) for r in recent])


@bp.route("/tokens/")
def tokens():
    gate = current_gate()
    q = request.args.get("find", "")[:254]
    with gate.engine.connect() as conn:
        found = console.tokens_page(conn, q, page=page_arg())
    return page("API-токены", "staff_tokens.html", p=found, q=q)


@bp.route(f"/tokens/<{ID}:token_id>/revoke", methods=["POST"])
def revoke(token_id):
    gate = current_gate()
    try:
        with gate.engine.begin() as conn:
            now = changes.token_revoke(conn, actor(), token_id)
    except AccountError as exc:
        return refused(exc.ru, "/staff/tokens/", status=404 if isinstance(exc, Unknown) else 422)
    gate.identities.invalidate()
    return done(f"Токен {token_id} отозван: он перестанет действовать в течение минуты." if now
                else f"Токен {token_id} уже был отозван.", "/staff/tokens/")


@bp.route("/requests/")
def requests():
    gate = current_gate()
    with gate.engine.connect() as conn:
        counts = console.overview(conn, gate.cfg.timezone)
    return page("Обращения", "staff_requests.html", counts=counts)


@bp.route("/feedback/")
def feedback_report():
    """The authors' report of readers' votes (the same as `gate feedback`), in the console."""
    gate = current_gate()
    return page("Отзывы о статьях", "staff_feedback.html", **feedback.report_pages(
        gate.engine, gate.cfg.site_dir, feedback.report_days(request.args.get("days", 30))))


@bp.route("/audit/")
def audit_log():
    gate = current_gate()
    days = int_arg("days")
    days = days if days in AUDIT_PERIODS else None
    action = request.args.get("action", "")
    action = action if action in audit.ACTIONS or action in _prefixes() else ""
    who, target = request.args.get("actor", "")[:254], request.args.get("target", "")[:300]
    org_name, error = request.args.get("org", "").strip()[:200], None
    with gate.engine.connect() as conn:
        org_id = None
        if org_name:
            try:
                org_id = org_by_name(conn, org_name).id
            except AccountError as exc:
                error = exc.ru
        rows, total = ([], 0) if error else audit.query(
            conn, org_id=org_id, days=days, action=action, actor=who, target=target,
            newest_first=True, limit=console.PER_PAGE,
            offset=(min(page_arg(), 100_000) - 1) * console.PER_PAGE)
    found = console.Page([audit.as_dict(r, gate.cfg.timezone) for r in rows], total,
                         min(page_arg(), 100_000))
    return page("Журнал действий", "staff_audit.html", p=found, days=days, action=action,
                actor=who, target=target, org=org_name, periods=AUDIT_PERIODS,
                actions=[*_prefixes(), *audit.ACTIONS], error=error)


def _prefixes() -> list[str]:
    """Groups of actions to filter by: 'org.', 'user.', ..."""
    return sorted({a.split(".")[0] + "." for a in audit.ACTIONS})
