"""Storage faults in the application: a full disk, a database that is away, read-only or locked
is answered 503 with Retry-After and a Russian page that says nothing was changed, never 500.

Every view gets this for free (one error handler for the exceptions gate.storage_errors
recognises): its transaction was rolled back, so nothing is half-written. A view that wants to
show its form again with what the person typed says how, in one line:

    @on_storage_fault(form_again)   # form_again() builds the page from the request

`form_again` is also used when the fault comes before the view runs (renewing the visitor's
session while the database is away), so it must not rely on a logged-in visitor; it may return
None for the general page. The handler sets 503 and Retry-After and logs one line per fault
(gate.storage_errors.FaultLog) instead of a traceback per request. Other errors pass on to the
usual 500 handling.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from flask import current_app, jsonify, request

from gate import contacts
from gate.storage_errors import classify, faults
from gate.web.responses import message, private

RETRY_AFTER = 60  # seconds; space is freed or a database restarts in about that time

NOT_CHANGED = ("Хранилище базы знаний сейчас недоступно (заполнен диск или не отвечает база "
               "данных), поэтому ничего не изменено и не сохранено. Повторите через минуту.")
NOT_READ = ("Хранилище базы знаний сейчас недоступно, поэтому эту страницу не удалось "
            "показать. Статьи базы знаний открываются как обычно. Повторите через минуту.")
REACH_SUPPORT = (f"Если дело срочное, свяжитесь с поддержкой: по телефону {contacts.PHONE} "
                 f"или по e-mail {contacts.EMAIL}.")


def on_storage_fault(render):
    """Decorates a view: `render()` answers its requests when storage fails (503 and
    Retry-After are added). Put it below the route and login decorators."""
    def decorate(view):
        view.storage_fallback = render  # functools.wraps of outer decorators copies it
        return view
    return decorate


def _wants_json() -> bool:
    accept = request.headers.get("Accept", "").lower()
    return request.is_json or ("json" in accept and "text/html" not in accept)


def _answer(kind: str):
    view = current_app.view_functions.get(request.endpoint)
    render = getattr(view, "storage_fallback", None)
    resp = render() if render is not None else None
    if resp is not None:
        return resp
    if _wants_json():  # scripts and fetch
        return private(jsonify(error="storage unavailable", fault=kind, retry_after=RETRY_AFTER))
    if request.method in ("GET", "HEAD"):
        return message("Страница временно недоступна", f"{NOT_READ} {REACH_SUPPORT}")
    return message("Изменение не выполнено", f"{NOT_CHANGED} {REACH_SUPPORT}")


def _storage_failed(exc):
    kind = classify(exc)
    if kind is None:
        raise exc  # not a storage fault: the usual 500, with its traceback in the log
    faults.seen(kind, exc, f"{request.method} {request.path}")
    resp = _answer(kind)
    resp.status_code = 503
    resp.headers["Retry-After"] = str(RETRY_AFTER)
    return resp


def init_app(app) -> None:
    import psycopg

    for error in (sa.exc.SQLAlchemyError, sqlite3.Error, psycopg.Error, OSError):
        app.register_error_handler(error, _storage_failed)
