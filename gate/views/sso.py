"""/sso/jwt: the vendor's client portal signs a person in with a JWT (gate.sso decides).

One redirect: the portal sends the browser here (GET, or a POST of the form field `token`), and
we answer 303 to `next` with the session cookie, as after /login. A person with a second factor
is taken to its code step first, as after a password. Without SSO keys the address does not
exist (404)."""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, request

from gate import accounts, changes, sso
from gate.clock import today
from gate.limits import Windows
from gate.config import ConfigError
from gate.security import safe_next
from gate.shared_limits import SharedWindows
from gate.sso_keys import KeyRing, KeysError
from gate.views import second_factor
from gate.web import signin
from gate.web.csrf import signed_elsewhere
from gate.web.rates import too_many
from gate.web.responses import message, see_other
from gate.web.runtime import current_gate
from gate.web.signin import client_address
from gate.web.storage import on_storage_fault

bp = Blueprint("sso", __name__)
# (limit, window seconds): every handoff from one address; verified handoffs of one person
RATE_LIMIT = {"address": (60, 60), "person": (10, 60)}

MALFORMED_TEXT = ("Ссылка для входа из клиентского портала повреждена или неполна. Вернитесь в "
                  "портал и откройте базу знаний оттуда ещё раз.")
REFUSED_TEXT = {
    # the token itself: it did not come from the portal, is stale or was used already
    "token": ("Ссылка для входа из клиентского портала недействительна: она устарела, уже "
              "использована или выдана не для этой базы знаний. Вернитесь в портал и откройте "
              "базу знаний оттуда ещё раз."),
    "contract": ("Вход из клиентского портала для вашей организации не открыт: её нет среди "
                 "клиентов базы знаний или срок её договора закончился. Обратитесь к "
                 "ответственному за договор в вашей организации или в поддержку."),
    "account": ("Вход из клиентского портала для этой учётной записи невозможен: она отключена, "
                "относится к другой организации или к сотрудникам поддержки. Войдите по паролю "
                "или обратитесь к администратору вашей организации."),
}
_REASON_TEXT = {"unknown-org": "contract", "ended-org": "contract", "vendor-org": "account",
                "staff": "account", "disabled": "account", "other-org": "account",
                "no-create": "account"}


def init_app(app, gate) -> None:
    """Reads the portal's keys at start-up (a JWKS file that is no JWKS stops the start)."""
    sso_cfg = gate.cfg.sso
    try:
        app.extensions["sso"] = KeyRing.from_settings(sso_cfg) if sso_cfg else None
    except (OSError, KeysError) as exc:
        raise ConfigError(f"GATE_SSO_JWKS_FILE {sso_cfg.jwks_file}: {exc}") from None
    app.config.setdefault("SSO_RATE_LIMIT", RATE_LIMIT)
    horizon = max(window for _, window in RATE_LIMIT.values())
    app.extensions["sso_windows"] = (SharedWindows(gate.counters, horizon=horizon)
                                     if gate.counters is not None else Windows(horizon=horizon))


def keys() -> KeyRing | None:
    return current_app.extensions.get("sso")


def _limited(kind: str, who: str):
    """429 when `who` has made too many handoffs of this kind (counted across every process
    and host: gate.shared_limits), else None."""
    limit, window = current_app.config["SSO_RATE_LIMIT"][kind]
    wait = current_app.extensions["sso_windows"].hit(("sso", kind, who), limit, window)
    return too_many(wait) if wait else None


def _refused(reason: str, email: str | None = None, org_id=None, user_id=None):
    """The refusal's page (400 or 403, in general words), its audit row counted by
    gate.audit.Refusals (so a flood adds a bounded number of rows), and no session."""
    current_gate().refusals.note("sso.refused", email or "-", client_address(), org_id=org_id,
                                 user_id=user_id, details={"reason": reason})
    if reason in sso.MALFORMED:
        return message("Вход не выполнен", MALFORMED_TEXT, status=400, link=("/login", "Вход"))
    return message("Вход не выполнен", REFUSED_TEXT[_REASON_TEXT.get(reason, "token")],
                   status=403, link=("/login", "Вход"))


@bp.route("/sso/jwt", methods=["GET", "POST"])
@signed_elsewhere
@on_storage_fault(lambda: None)
def jwt_handoff():
    ring, settings = keys(), current_gate().cfg.sso
    if ring is None or settings is None:
        abort(404)  # no key configured: the feature is off
    limited = _limited("address", client_address())
    if limited:
        return limited
    next_path = safe_next(request.values.get("next"))
    token = request.form.get("token") if request.method == "POST" else request.args.get("token")
    try:
        claims = sso.verify(token, ring, settings.issuer, settings.audience, time.time())
    except sso.Refused as refused:
        return _refused(refused.reason)
    limited = _limited("person", claims.email)
    if limited:
        return limited
    return _sign_in(claims, settings, next_path)


def _sign_in(claims: sso.Claims, settings, next_path: str):
    gate = current_gate()
    if not sso.valid_email(claims.email):
        return _refused("bad-email", claims.email)
    for attempt in (1, 2):
        try:
            with gate.engine.begin() as conn:  # one commit: the jti noted, the person signed in
                step, started, row, refusal = _decide_and_start(conn, claims, settings)
            break
        except sso.Refused as replayed:
            return _refused(replayed.reason, claims.email)
        except (sa.exc.IntegrityError, accounts.AccountError):
            # two first sign-ins of one new person at once (two tabs, two tokens): the other
            # created them first and everything here was rolled back, jti included; the second
            # attempt finds the person
            if attempt == 2:
                raise
    if refusal is not None:
        reason, org_id, user_id = refusal
        return _refused(reason, claims.email, org_id, user_id)
    if step is not None:
        return second_factor.ask(step, row.id, next_path, via="sso")
    signin.finish(started)
    return see_other(next_path)


def _decide_and_start(conn, claims: sso.Claims, settings):
    """In the sign-in's transaction: (second-factor step, started session, users row,
    refusal (reason, org id, user id) or None). A refused token's jti stays used."""
    sso.use_once(conn, claims)
    org, person, row = sso.facts(conn, claims, today(current_gate().cfg.timezone))
    verdict = sso.decide(org, person, settings.create)
    if verdict == sso.CREATE:
        # the audit's actor is the person, created by their own first sign-in from the portal
        actor = changes.Actor(claims.email, client_address())
        user_id = changes.user_add(conn, actor, claims.email, None, org=sso.org_name(conn, org.id))
        row = accounts.user_by_id(conn, user_id)
    elif verdict != sso.SIGN_IN:
        return None, None, row, (verdict, org.id if org else None, row.id if row else None)
    # the second factor is still asked for, exactly as after a password
    step = second_factor.step_after_password(conn, row)
    if step is not None:
        return step, None, row, None
    started = signin.start(conn, row, action="sso.login")
    if started is None:
        return None, None, row, ("disabled", row.org_id, row.id)
    return None, started, row, None
