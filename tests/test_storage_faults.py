"""A full disk: the instance folder on a tiny tmpfs, filled to the last byte under a gate.

Every change answers 503 with Retry-After in Russian and writes nothing (the support form comes
back with what was typed and the other ways to reach support); pages are served; /healthz
says 200 with "writes": false; the log gets one line, not a traceback per request. Once space
is freed everything works again, and the outbox worker, which lived through it, delivers every
acknowledged request exactly once (a real SMTP server), including the one whose mail the server
took just as the disk filled.

Mounting a tmpfs needs root: elsewhere these tests are skipped, with the reason.
"""

from __future__ import annotations

import io
import logging
import re
import sqlite3
import time

import requests
import sqlalchemy as sa
from markupsafe import escape

from gate import contacts
from gate.db import attachments, outbox, password_resets, sessions, support_requests
from gate.web.storage import RETRY_AFTER
from tests.helpers.http import csrf_of, login
from tests.helpers.mail import MailSink, delivery_report
from tests.helpers.ports import wait_until
from tests.helpers.processes import GateProcess
from tests.helpers.project import PASSWORD, make_config, populate
from tests.helpers.support import FORM, FormClient

HTML = {"Accept": "text/html"}
SUPPORT = "support@kb.test"


def selected(html: str, name: str) -> str | None:
    """The value of the option chosen in the select `name`."""
    block = re.search(rf'<select[^>]*name="{name}".*?</select>', html, re.S).group(0)
    for option in re.findall(r"<option[^>]*>", block):
        if re.search(r"\sselected\b", option):
            return re.search(r'value="([^"]*)"', option).group(1)
    return None


def counts(engine) -> dict:
    with engine.connect() as conn:  # reading works on a full disk
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                for t in (support_requests, attachments, outbox, sessions, password_resets)}


def test_a_full_disk_changes_nothing_and_says_so(built_project, disk, caplog):
    from gate.factory import create_app
    from gate.views.auth import NO_LOGIN

    root, _ = built_project
    app = create_app(make_config(root, disk.path / "instance"))
    app.config["TESTING"] = True
    gate = app.extensions["gate"]
    populate(gate.engine, gate.tariffs)
    reader, writer, staff, anonymous = (app.test_client() for _ in range(4))
    assert login(reader, "start@client.example").status_code == 303
    assert login(writer, "func@client.example").status_code == 303
    assert login(staff, "staff@vendor.example").status_code == 303
    csrf = csrf_of(writer.get("/support/new?from=/functionality/").get_data(as_text=True))
    typed = {**FORM, "csrf_token": csrf, "phone": "+7 (912) 555-01-02", "store": "Магазин 47",
             "subject": "Ночью встали кассы", "criticality": "critical-registers",
             "description": "В 03:10 остановились кассы 3, 5 и 7 магазина 47 <после обновления>."}
    r = writer.post("/support/new", data=typed, content_type="multipart/form-data")
    assert r.status_code == 303  # one request stored before the disk fills
    before = counts(gate.engine)
    caplog.set_level(logging.INFO)
    caplog.clear()
    disk.fill()

    # the support form: 503, everything typed is back, files to be chosen again, other ways
    r = writer.post("/support/new", content_type="multipart/form-data",
                    data={**typed, "attachments": (io.BytesIO(b"pos log\n"), "pos.log")})
    assert r.status_code == 503 and r.headers["Retry-After"] == str(RETRY_AFTER)
    html = r.get_data(as_text=True)
    assert "Обращение не отправлено" in html and "ничего не сохранено" in html
    assert "Файлы нужно выбрать заново" in html
    for field in ("phone", "store", "subject", "description"):
        assert str(escape(typed[field])) in html, field
    assert selected(html, "category") == typed["category"]
    assert selected(html, "criticality") == "critical-registers"
    assert re.search(r'name="consent" value="yes" checked', html)
    assert contacts.PHONE in html and contacts.EMAIL in html
    assert 'name="csrf_token"' in html  # it can be sent again as it is

    # login, password change, reset mail, logout and a staff action: 503, nothing written
    r = login(anonymous, "pair@client.example")
    assert r.status_code == 503 and r.headers["Retry-After"] == str(RETRY_AFTER)
    assert NO_LOGIN in r.get_data(as_text=True)
    assert 'value="pair@client.example"' in r.get_data(as_text=True)
    account = writer.get("/account/").get_data(as_text=True)
    r = writer.post("/account/password", data={"csrf_token": csrf_of(account), "current": PASSWORD,
                                                "new": "another-long-password", "repeat": "another-long-password"})
    assert r.status_code == 503 and "Пароль не изменён" in r.get_data(as_text=True)
    forgot = anonymous.get("/password/forgot").get_data(as_text=True)
    r = anonymous.post("/password/forgot", data={"csrf_token": csrf_of(forgot),
                                                 "email": "start@client.example"})
    assert r.status_code == 503 and "Письмо не отправлено" in r.get_data(as_text=True)
    r = reader.post("/logout", data={"csrf_token": csrf_of(reader.get("/account/").get_data(as_text=True))})
    assert r.status_code == 503 and "Выход не выполнен" in r.get_data(as_text=True)
    assert "kb_session=;" not in r.headers.get("Set-Cookie", "")  # still logged in: may retry
    r = staff.post("/support/1/mark", data={
        "csrf_token": csrf_of(staff.get("/support/1/").get_data(as_text=True)), "what": "registered"})
    assert r.status_code == 503 and r.headers["Retry-After"] == str(RETRY_AFTER)
    assert "Изменение не выполнено" in r.get_data(as_text=True)
    assert counts(gate.engine) == before  # nothing half-written
    with gate.engine.connect() as conn:
        assert conn.execute(sa.select(support_requests.c.registered_at)).scalar() is None

    # pages that need no write
    assert anonymous.get("/", headers=HTML).status_code == 200
    assert reader.get("/launches/marker-launches-page/", headers=HTML).status_code == 200
    assert writer.get("/functionality/", headers=HTML).status_code == 200
    assert writer.get("/support/1/", headers=HTML).status_code == 200
    r = reader.get("/api/search?q=несуществующееслово")  # its statistics cannot be written
    assert r.status_code == 200 and r.json["results"] == []
    health = anonymous.get("/healthz")
    assert health.status_code == 200
    assert health.json["status"] == "ok" and health.json["serving"] is True
    assert health.json["writes"] is False and health.json["reads"] is True
    assert health.json["fault"] == "full" and health.json["disk_free"] == 0

    # the log: one line for the fault, no traceback
    lines = [r for r in caplog.records if "storage fault" in r.getMessage()]
    assert len(lines) == 1 and "database or disk is full" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"

    # space again: the same form goes through; the old password still works
    disk.free()
    r = writer.post("/support/new", data=typed, content_type="multipart/form-data")
    assert r.status_code == 303
    assert counts(gate.engine)["support_requests"] == before["support_requests"] + 1
    assert login(app.test_client(), "func@client.example").status_code == 303
    wait_until(lambda: anonymous.get("/healthz").json["writes"], 15, 0.5, "writes reported")
    assert any("storage recovered" in r.getMessage() for r in caplog.records)
    gate.engine.dispose()


def sending(gate: GateProcess, number: int):
    """Whether the worker has claimed the request's mail to support and is sending it."""
    with sqlite3.connect(f"file:{gate.database}?mode=ro", uri=True, timeout=30) as con:
        return con.execute("SELECT 1 FROM outbox WHERE message_id LIKE ? AND claimed_by IS NOT "
                           "NULL AND sent_at IS NULL", (f"<kb-request-{number}@%",)).fetchone()


def test_the_outbox_lives_through_a_full_disk_and_delivers_once(built_project, disk, tmp_path):
    """The disk fills while the SMTP server is taking a request's mail: the worker cannot mark
    it sent, keeps it, marks it once there is space, and never sends it again."""
    root, _ = built_project
    sink = MailSink(delay=3).start()  # the server takes 3 s to accept a message
    gate = GateProcess(root, disk.path / "instance", sink.port, tmp_path / "serve.log",
                       support_email=SUPPORT)
    try:
        gate.add_people("Сеть Старт", "start", ["engineer@shop.test"], PASSWORD)
        gate.start()
        client = FormClient(gate.base, "engineer@shop.test", PASSWORD)
        client.login()
        first = client.submit("first")
        assert first.number, first
        wait_until(lambda: sending(gate, first.number), 10, 0.02, "the support mail claimed")
        disk.fill()  # while the server has not answered yet
        sink.delay = 0

        during = client.submit("during")
        assert during.number is None and during.status == 503, during
        # each worker's write probe is at most 5 s old (README, gate.health)
        health = wait_until(lambda: (lambda h: h if h.json()["writes"] is False else None)(
            requests.get(gate.base + "/healthz", timeout=10)), 10, 0.5, "healthz: no writes")
        assert health.status_code == 200

        wait_until(lambda: sink.by_id(), 10, 0.1, "the mail server got the support mail")
        time.sleep(3)  # the worker tries again to mark it, and cannot
        assert gate.outbox_state()["sent"] == 0
        disk.free()
        after = client.submit("after")
        assert after.number, after
        state = wait_until(gate.drained_state, 30, 0.2, "every mail sent")
        assert set(state["stored"]) == {first.number, after.number}  # nothing else stored
        report = delivery_report(sink, state["stored"], SUPPORT, state["stored"])
        assert report["once"] == {first.number, after.number}, report
        assert len(sink.snapshot()) == 4  # two requests, two mails each, no copies
        log = gate.log_tail(100_000)
        assert "Traceback" not in log
        assert 1 <= log.count("storage fault") <= 2, log  # one a minute per kind of fault
    finally:
        gate.stop()
        sink.stop()


def test_healthz_is_503_only_when_pages_cannot_be_served(built_project, tmp_path):
    """A gate is taken out of a load balancer only when it cannot serve pages (its site is
    gone), never because it cannot write."""
    import shutil

    from gate.factory import create_app

    root, _ = built_project
    project = tmp_path / "project"
    shutil.copytree(root, project, symlinks=True)
    app = create_app(make_config(project, tmp_path / "instance"))
    client = app.test_client()
    r = client.get("/healthz")
    assert r.status_code == 200
    assert {k: r.json[k] for k in ("status", "serving", "reads", "writes", "fault")} == {
        "status": "ok", "serving": True, "reads": True, "writes": True, "fault": None}
    assert r.json["disk_free"] > 0
    (project / "site" / "editions" / "public" / "index.html").unlink()
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json["status"] == "cannot serve" and r.json["serving"] is False
    app.extensions["gate"].engine.dispose()


def test_a_failed_attempt_is_written_once_there_is_space(built_project, disk, tmp_path):
    """The mail server goes away in the middle of a delivery just as the disk fills: the worker
    cannot write the failure (nor end its lease); it does so once there is space, and the mail
    goes out then, not two minutes later when the lease would have run out."""
    root, _ = built_project
    sink = MailSink(delay=3).start()
    gate = GateProcess(root, disk.path / "instance", sink.port, tmp_path / "serve.log",
                       support_email=SUPPORT)
    try:
        gate.add_people("Сеть Старт", "start", ["engineer@shop.test"], PASSWORD)
        gate.start()
        client = FormClient(gate.base, "engineer@shop.test", PASSWORD)
        client.login()
        first = client.submit("first")
        assert first.number, first
        wait_until(lambda: sending(gate, first.number), 10, 0.02, "the support mail claimed")
        disk.fill()
        sink.stop()  # drops the connection before answering: the attempt failed
        sink.delay = 0
        sink.start()
        time.sleep(3)  # the worker tries to write the failure, and cannot
        assert sending(gate, first.number)  # still leased
        disk.free()
        state = wait_until(gate.drained_state, 30, 0.2, "every mail sent")
        report = delivery_report(sink, state["stored"], SUPPORT, state["stored"])
        assert report["once"] == {first.number}, report
        assert "Traceback" not in gate.log_tail(100_000)
    finally:
        gate.stop()
        sink.stop()
