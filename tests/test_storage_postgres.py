"""PostgreSQL stopped and started again under a running gate (`gate serve`, a real SMTP server).

While the server is down: every change answers 503 with Retry-After in Russian and nothing is
acknowledged (the support form comes back as typed, with the other ways to reach support);
pages are served, to people already logged in too, from the last accounts snapshot, also after
it is due for a refresh and after their session token has expired; /healthz stays 200 and says
that it cannot write. Once the server is back, every acknowledged request, including one whose
mail was waiting in the outbox through the outage, is delivered exactly once.
"""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
import requests

from gate import contacts, tokens
from gate.housekeeping import TICK
from gate.identities import REFRESH
from gate.views.auth import NO_LOGIN
from gate.web.storage import RETRY_AFTER
from tests.helpers.http import CSRF_RE
from tests.helpers.mail import MailSink, delivery_report
from tests.helpers.ports import wait_until
from tests.helpers.processes import GateProcess
from tests.helpers.project import PASSWORD
from tests.helpers.support import FORM, FormClient

HTML = {"Accept": "text/html"}
SUPPORT = "support@kb.test"
READER, WRITER, GONE = "reader@shop.test", "writer@shop.test", "gone@shop.test"
PAGE = "/launches/marker-launches-page/"


def csrf(http: requests.Session, base: str, path: str) -> str:
    return CSRF_RE.search(http.get(base + path, headers=HTML, timeout=10).text).group(1)


def session_claims(client: FormClient, key: bytes) -> dict:
    return jwt.decode(client.http.cookies.get("kb_session"), key, algorithms=["HS256"],
                      options={"verify_exp": False})


def expired_cookie(key: bytes, claims: dict, issued_ago: float) -> dict:
    """The session cookie a browser of that session holds once its token has expired."""
    token = tokens.issue(key, sub=int(claims["sub"]), org=claims["org"], tariff=claims["tariff"],
                         sections=claims["sections"], typ="session", ttl=tokens.SESSION_TTL,
                         sid=claims["sid"], now=time.time() - issued_ago)
    return {"kb_session": token}


def health(base: str) -> dict:
    r = requests.get(base + "/healthz", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_postgresql_stopped_and_started_under_a_running_gate(built_project, cluster, tmp_path):
    root, _ = built_project
    sink = MailSink().start()
    gate = GateProcess(root, tmp_path / "instance", sink.port, tmp_path / "serve.log",
                       support_email=SUPPORT,
                       extra_env={"GATE_DATABASE_URL": cluster.create_database("outage")})
    try:
        gate.add_people("Сеть Старт", "start", [READER, WRITER, GONE], PASSWORD)
        gate.start()
        base = gate.base
        key = bytes.fromhex((Path(gate.instance) / "signing.key").read_text().strip())
        reader, writer, gone = (FormClient(base, e, PASSWORD) for e in (READER, WRITER, GONE))
        for client in (reader, writer, gone):
            client.login()
        gone_claims = session_claims(gone, key)
        r = gone.http.post(base + "/logout", data={"csrf_token": csrf(gone.http, base, "/account/")},
                           allow_redirects=False, timeout=10)
        assert r.status_code == 303
        # the logout reaches the other worker processes with their next snapshot (each reloads
        # it after REFRESH s, at the latest on the housekeeper's next TICK): a logout made less
        # than that before an outage is known only in the process where it was made
        time.sleep(REFRESH + TICK + 1)
        sink.stop()  # the first request's mails wait in the outbox through the outage
        first = writer.submit("first")
        assert first.number, first
        assert reader.http.get(base + PAGE, headers=HTML, timeout=10).status_code == 200
        form_csrf = csrf(writer.http, base, "/support/new?from=" + FORM["from"])
        account_csrf = csrf(writer.http, base, "/account/")
        login_page = requests.Session()
        login_csrf = csrf(login_page, base, "/login")

        cluster.halt()
        sink.start()

        # the support form: 503, as typed, files to be chosen again, other ways to support
        typed = {**FORM, "csrf_token": form_csrf, "subject": "Кассы не видят сервер",
                 "description": "С 04:20 кассы 2 и 9 магазина 12 не видят сервер магазина."}
        r = writer.http.post(base + "/support/new", data=typed, allow_redirects=False, timeout=30,
                             files=[("attachments", ("pos.log", b"log\n", "text/plain"))])
        assert r.status_code == 503 and r.headers["Retry-After"] == str(RETRY_AFTER)
        assert "Обращение не отправлено" in r.text and "Файлы нужно выбрать заново" in r.text
        assert typed["subject"] in r.text and typed["description"] in r.text
        assert contacts.PHONE in r.text and contacts.EMAIL in r.text

        # login, logout: 503, nothing changed
        r = login_page.post(base + "/login", allow_redirects=False, timeout=30, data={
            "csrf_token": login_csrf, "email": READER, "password": PASSWORD, "next": "/"})
        assert r.status_code == 503 and r.headers["Retry-After"] == str(RETRY_AFTER)
        assert NO_LOGIN in r.text and "kb_session=" not in r.headers.get("Set-Cookie", "")
        r = writer.http.post(base + "/logout", data={"csrf_token": account_csrf},
                             allow_redirects=False, timeout=30)
        assert r.status_code == 503 and "Выход не выполнен" in r.text

        # pages, and a health check that keeps the gate in
        assert requests.get(base + "/", headers=HTML, timeout=10).status_code == 200
        assert reader.http.get(base + PAGE, headers=HTML, timeout=10).status_code == 200
        r = reader.http.get(base + "/support/", headers=HTML, timeout=30)  # needs the database
        assert r.status_code == 503 and r.headers["Retry-After"] == str(RETRY_AFTER)
        assert "Страница временно недоступна" in r.text
        # each worker process probes at most every 5 s (gate.health): one may still say "writes"
        h = wait_until(lambda: (h := health(base))["writes"] is False and h["reads"] is False and h,
                       20, 0.5, "every worker's health check to see the outage")
        assert h["serving"] is True
        assert h["fault"] == "unavailable"

        # after the snapshot is due for a refresh, logged-in people are still served from it
        wait_until(lambda: (reader.http.get(base + PAGE, headers=HTML, timeout=10)
                            .status_code == 200 and health(base)["accounts_age"] > REFRESH + 1),
                   REFRESH + 20, 1.0, "the accounts snapshot overdue")
        claims = session_claims(reader, key)
        page = lambda cookies: requests.get(base + PAGE, headers=HTML, cookies=cookies,
                                            allow_redirects=False, timeout=10)
        # an expired token of a live session is renewed from the snapshot
        r = page(expired_cookie(key, claims, tokens.SESSION_TTL + 10))
        assert r.status_code == 200 and "kb_session=ey" in r.headers.get("Set-Cookie", "")
        # one of a session ended before the outage is not
        r = page(expired_cookie(key, gone_claims, tokens.SESSION_TTL + 10))
        assert r.status_code == 303 and r.headers["Location"].startswith("/login")
        # one issued before the snapshot's memory of logouts waits for the database
        r = page(expired_cookie(key, claims, 3600))
        assert r.status_code == 503 and r.headers["Retry-After"] == str(RETRY_AFTER)
        assert "kb_session=;" not in r.headers.get("Set-Cookie", "")
        # ... and its support form, posted before the visitor could be confirmed, comes back too
        cookies = {**expired_cookie(key, session_claims(writer, key), 3600),
                   "kb_form": writer.http.cookies.get("kb_form")}
        r = requests.post(base + "/support/new", data=typed, cookies=cookies, timeout=30,
                          files=[("attachments", ("pos.log", b"log\n", "text/plain"))],
                          allow_redirects=False)
        assert r.status_code == 503 and "Обращение не отправлено" in r.text
        assert typed["description"] in r.text and "Файлы нужно выбрать заново" in r.text

        cluster.resume()
        wait_until(lambda: health(base)["writes"], 30, 0.5, "writes again")
        # the logout was not made: the writer is still logged in and files the request again
        r = writer.http.get(base + "/support/new", headers=HTML, allow_redirects=False, timeout=10)
        assert r.status_code == 200
        second = writer.submit("second")
        assert second.number, second

        requester = {first.number: WRITER, second.number: WRITER}
        wait_until(lambda: delivery_report(sink, requester, SUPPORT, requester)["once"]
                   == set(requester), 60, 0.2, "both requests delivered")
        time.sleep(3)  # a copy would come now
        report = delivery_report(sink, requester, SUPPORT, requester)
        assert report["once"] == set(requester) and not report["duplicates"], report
        assert len(sink.snapshot()) == 4
        assert {r["number"] for r in gate.requests_json()} == set(requester)  # nothing else stored
        log = gate.log_tail(200_000)
        assert "Traceback" not in log
        assert 1 <= log.count("storage fault") <= 4, log  # per kind of fault, one a minute
    finally:
        gate.stop()
        sink.stop()


def test_real_postgresql_faults_are_classified(cluster):
    """The errors a real server gives: a read-only transaction (a standby after failover), a
    lock timeout, a connection terminated by the administrator."""
    import sqlalchemy as sa

    from gate.engine import make_engine
    from gate.storage_errors import BUSY, READONLY, UNAVAILABLE, classify

    engine = make_engine(cluster.create_database("faults"))
    other = make_engine(engine.url.render_as_string(hide_password=False))

    def error_of(action):
        try:
            action()
        except sa.exc.DBAPIError as exc:
            return exc
        raise AssertionError("no error")

    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        with engine.connect() as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")  # as on a standby
            exc = error_of(lambda: conn.exec_driver_sql("INSERT INTO t VALUES (2)"))
            assert classify(exc) == READONLY, exc
            conn.rollback()
        with other.connect() as holder:
            holder.exec_driver_sql("UPDATE t SET x = 3")  # holds the row's lock
            with engine.connect() as conn:
                conn.exec_driver_sql("SET lock_timeout = '100ms'")
                exc = error_of(lambda: conn.exec_driver_sql("UPDATE t SET x = 4"))
                assert classify(exc) == BUSY, exc
                conn.rollback()
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                conn.commit()
                holder.rollback()
                holder.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
                holder.commit()
                exc = error_of(lambda: conn.exec_driver_sql("SELECT 1"))
                assert classify(exc) == UNAVAILABLE, exc
    finally:
        engine.dispose()
        other.dispose()
