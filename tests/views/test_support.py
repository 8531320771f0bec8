"""The support request form: storing, deadlines, visibility, bad input."""

import io
import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from gate.db import outbox, support_requests
from tests.helpers.http import csrf_of, login
from tests.helpers.support import FORM as SUPPORT_FORM, submit_support

GOOD, submit = SUPPORT_FORM, submit_support


def test_anonymous_is_sent_to_login(client):
    r = client.get("/support/new?from=/launches/", headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["Location"].startswith("/login?next=%2Fsupport%2Fnew")


def test_form_is_prefilled_and_shows_limits_and_consent(client):
    login(client, "start@client.example")
    html = client.get("/support/new?from=/launches/new-store/").get_data(as_text=True)
    assert 'name="from" value="/launches/new-store/"' in html
    assert "Сеть Старт" in html and "start@client.example" in html
    assert "152-ФЗ" in html and 'href="/privacy/"' in html and "5 МБ" in html
    assert "вне условий тарифа" in html


def test_request_is_stored_with_mails_and_deadlines(app, client):
    login(client, "start@client.example")
    r = submit(client, attachments=(io.BytesIO(b"log line\n"), "pos.log"))
    assert r.status_code == 303
    number = int(r.headers["Location"].strip("/").split("/")[-1])
    engine = app.extensions["gate"].engine
    with engine.connect() as conn:
        row = conn.execute(sa.select(support_requests).where(support_requests.c.id == number)).one()
        mails = conn.execute(sa.select(outbox).where(outbox.c.request_id == number)).all()
    assert (row.consult_by - row.created_at).total_seconds() == 4 * 3600
    assert (row.register_by - row.created_at).total_seconds() == 30 * 60
    assert row.workaround_by is not None
    assert sorted(m.message_id.split("@")[0] for m in mails) == [
        f"<kb-request-{number}", f"<kb-request-{number}-confirmation"]
    support_mail = next(m for m in mails if "confirmation" not in m.message_id).body
    assert b"pos.log" in support_mail
    page = client.get(f"/support/{number}/").get_data(as_text=True)
    assert f"Обращение № {number}" in page and "Регистрация" in page and "до " in page
    assert f'href="/support/{number}/"' in client.get("/support/").get_data(as_text=True)


def test_request_page_is_for_the_organisation_and_staff_only(app, client):
    login(client, "start@client.example")
    number = submit(client).headers["Location"].split("/")[-2]
    outsider = app.test_client()
    login(outsider, "func@client.example")
    assert outsider.get(f"/support/{number}/").status_code == 404
    assert f"/support/{number}/" not in outsider.get("/support/").get_data(as_text=True)
    staff = app.test_client()
    login(staff, "staff@vendor.example")
    page = staff.get(f"/support/{number}/").get_data(as_text=True)
    assert "Отметить: зарегистрировано" in page
    r = staff.post(f"/support/{number}/mark", data={"csrf_token": csrf_of(page), "what": "registered"})
    assert r.status_code == 303
    assert "выполнено" in staff.get(f"/support/{number}/").get_data(as_text=True)
    # a client cannot mark
    page = client.get("/support/new").get_data(as_text=True)
    assert client.post(f"/support/{number}/mark", data={"csrf_token": csrf_of(page),
                                                        "what": "consulted"}).status_code == 403


@pytest.mark.parametrize("field, value, message", [
    ("phone", "", "Укажите телефон"),
    ("phone", "call me maybe", "Укажите телефон"),
    ("category", "kitchen", "Выберите тему"),
    ("criticality", "panic", "Выберите критичность"),
    ("store", "", "Укажите магазин"),
    ("store", "x" * 201, "Не более 200"),
    ("subject", "", "Укажите краткую тему"),
    ("description", "коротко", "Опишите проблему"),
    ("description", "x" * 20001, "длиннее 20000"),
    ("registers", "-1", "Укажите число касс"),
    ("registers", "много", "Укажите число касс"),
    ("consent", None, "Без согласия"),
])
def test_bad_input_gets_422_with_a_message_and_the_form_kept(app, client, field, value, message):
    login(client, "start@client.example")
    r = submit(client, **{field: value})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and message in html
    assert "Магазин 12" in html or field == "store"  # what was typed is kept
    with app.extensions["gate"].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(support_requests)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar() == 0


def test_too_many_files_and_oversized_body(app, client):
    login(client, "start@client.example")
    files = [(io.BytesIO(b"x"), f"f{i}.log") for i in range(6)]
    assert submit(client, attachments=files).status_code == 422
    assert submit(client, attachments=(io.BytesIO(b"x" * (5 * 1024 * 1024 + 1)), "big.log")).status_code == 422
    two = [(io.BytesIO(b"x" * (4 * 1024 * 1024)), f"p{i}.log") for i in range(2)]
    assert submit(client, attachments=two).status_code == 422  # 8 MB together
    big = (io.BytesIO(b"x" * (11 * 1024 * 1024)), "huge.log")
    assert submit(client, attachments=big).status_code == 413


def test_external_from_is_ignored_and_text_is_escaped(app, client):
    login(client, "start@client.example")
    r = submit(client, **{"from": "https://evil.example/", "subject": "<script>alert(1)</script>\r\nBcc: x@evil"})
    number = r.headers["Location"].split("/")[-2]
    html = client.get(f"/support/{number}/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "evil.example" not in html
    with app.extensions["gate"].engine.connect() as conn:
        body = conn.execute(sa.select(outbox.c.body).where(outbox.c.message_id.like(f"<kb-request-{number}@%"))).scalar()
    headers = body.split(b"\n\n", 1)[0].replace(b"\r", b"")
    assert b"\nBcc:" not in headers


def test_without_csrf_the_form_is_refused(client):
    login(client, "start@client.example")
    assert client.post("/support/new", data=GOOD).status_code == 400


def test_gate_requests_lists_stored_requests(app, client, built_project, tmp_path):
    login(client, "start@client.example")
    submit(client)
    cfg = app.extensions["gate"].cfg
    env = {"GATE_ROOT": str(cfg.root), "GATE_INSTANCE": str(cfg.instance), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "gate", "requests", "--json"], env=env,
                         capture_output=True, text=True, check=True).stdout
    rows = json.loads(out)
    assert rows[0]["org"] == "Сеть Старт" and rows[0]["criticality"] == "critical-loading"
    assert rows[0]["delivery"] == "pending" and rows[0]["consult_by"]
    text = subprocess.run([sys.executable, "-m", "gate", "requests"], env=env,
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert text[0].split("\t") == ["number", "org", "category", "criticality", "created",
                                   "register_by", "consult_by", "workaround_by", "delivery"]
    fields = text[1].split("\t")
    assert fields[0] == str(rows[0]["number"]) and fields[7] == rows[0]["workaround_by"]
    assert "None" not in fields


def test_from_in_a_locked_section_keeps_only_the_section_root(client):
    login(client, "func@client.example")
    html = client.get("/support/new?from=/launches/marker-launches-page/").get_data(as_text=True)
    assert 'name="from" value="/launches/"' in html
    assert "marker-launches-page" not in html.replace("from=/launches/marker-launches-page/", "")


def test_huge_request_numbers_are_not_found_not_500(client):
    login(client, "start@client.example")
    for path in ("/support/99999999999999999999/", "/support/1/files/99999999999999999999"):
        assert client.get(path).status_code == 404
