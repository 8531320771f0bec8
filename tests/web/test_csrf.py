"""Forms that change something are checked against Origin and carry a csrf_token
(gate/web/csrf.py); through the real application (Flask test client)."""

from tests.helpers.http import csrf_of
from tests.helpers.project import PASSWORD


def test_login_without_csrf_token_is_refused(client):
    r = client.post("/login", data={"email": "start@client.example", "password": PASSWORD, "next": "/"})
    assert r.status_code == 400


def test_login_from_another_site_is_refused(client):
    page = client.get("/login")
    r = client.post("/login", headers={"Origin": "http://evil.example"},
                    data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                          "email": "start@client.example", "password": PASSWORD, "next": "/"})
    assert r.status_code == 403


def test_forms_from_https_behind_an_untrusted_tls_proxy_are_accepted(client):
    page = client.get("/login")
    r = client.post("/login", headers={"Origin": "https://localhost"}, data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "email": "start@client.example",
        "password": PASSWORD, "next": "/"})
    assert r.status_code == 303
