"""What every page of the staff console shares: its blueprint, the guard that gives every
address under /staff/ one answer for everybody but staff, the acting person, paging and the
answers after a change."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, flash, g, request

from gate import changes, totp
from gate.accounts import AccountError
from gate.security import safe_next
from gate.web import rates
from gate.web.responses import ask_to_log_in, message, render_in_site, see_other, staff_only
from gate.web.runtime import current_gate
from gate.web.signin import client_address

bp = Blueprint("staff", __name__, url_prefix="/staff")
PREFIX = "/staff"
ID = "int(max=2147483647)"  # ids are 32-bit in PostgreSQL: larger numbers are nobody (404)
PER_PERSON = (60, 60)    # console changes per staff member a minute
PER_ADDRESS = (120, 60)  # console changes per address a minute


def guard():
    """Before anything else looks at a request under /staff (CSRF, routing, 404): anonymous
    visitors are asked to log in (303, or 401 for scripts), everybody but staff gets 403,
    whatever the method and whether the page exists. Changes by staff are rate-limited."""
    path = request.path
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return None
    if g.get("bad_bearer") or g.get("identity") is None:
        return ask_to_log_in()
    if not g.identity.staff:
        return staff_only()
    if current_gate().cfg.staff_2fa and not _has_factor(g.identity.user_id):
        # a session from before GATE_STAFF_2FA was set: the console waits for the factor
        return see_other("/account/totp")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        return rates.check((("staff-person", g.identity.user_id), *PER_PERSON),
                           (("staff-address", client_address()), *PER_ADDRESS))
    return None


def _has_factor(user_id: int) -> bool:
    with current_gate().engine.connect() as conn:
        return totp.enrolled(conn, user_id)


def actor() -> changes.Actor:
    return changes.Actor(g.identity.email, client_address(), g.identity.user_id)


# Lists are searched with ?find=: Material's own script opens its search box for ?q=.


def page_arg() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 1_000_000))
    except ValueError:
        return 1


def int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


def done(text: str, default: str):
    """After a change: back to where the form was (a local path only), with a note."""
    flash(text)
    return see_other(safe_next(request.form.get("next"), default=default))


def refused(text: str, back: str, status: int = 422):
    """A change that was not made, in Russian, with the way back."""
    return message("Не выполнено", text + " Ничего не изменено.", status=status,
                   link=(back, "Вернуться"))


UNSET_BASE = ("Адрес базы знаний (GATE_BASE_URL) не задан: ссылку-приглашение не из чего "
              "составить. Задайте его и перезапустите gate.")


def invitation_base(unset: str = UNSET_BASE) -> str:
    """Where invitation links point (the console's, an organisation admin's): GATE_BASE_URL,
    else (local mode only) the address this page was asked on. In production a link built from
    the Host header could carry the secret to another site; then `unset` is the refusal."""
    cfg = current_gate().cfg
    if cfg.base_url:
        return cfg.base_url
    if cfg.local:
        return request.host_url.rstrip("/")
    raise AccountError("GATE_BASE_URL is not set", ru=unset)


def page(title: str, template: str, status: int = 200, **context):
    """A console page: the site's look, the console's menu, times in GATE_TIMEZONE."""
    tz = current_gate().cfg.timezone

    def when(value):
        if value is None:
            return "—"
        return value.replace(tzinfo=dt.timezone.utc).astimezone(tz).strftime("%d.%m.%Y %H:%M")

    def day(value):
        return value.strftime("%d.%m.%Y") if value else "бессрочно"

    return render_in_site(title, template, status=status, when=when, day=day,
                          here=request.full_path.rstrip("?"), **context)
