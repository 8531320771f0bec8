"""Serving the editions (gate/views/pages.py): public and gated pages, the locked page, 404,
caching and security headers, the health check; through the real application (Flask test client)."""

import pytest

from gate.sections import SECTIONS
from tests.helpers.http import HTML, login
from tests.helpers.project import marker, page_url


def test_public_pages_are_open_to_everyone(client):
    for path in ("/", "/assets/kb.css"):
        assert client.get(path).status_code == 200


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("suffix", ["", "{page}", "no-such-page/", "a/b/c.html", "index.html"])
def test_anonymous_gets_the_same_answer_for_every_url_of_a_section(client, section, suffix):
    path = f"/{section}/" + suffix.format(page=marker(section, "slug") + "/")
    browser = client.get(path, headers=HTML)
    assert browser.status_code == 303
    assert browser.headers["Location"].startswith("/login?next=%2F" + section)
    script = client.get(path, headers={"Accept": "application/json"})
    assert script.status_code == 401
    assert marker(section, "body") not in script.get_data(as_text=True)
    assert client.get(path, headers={"Accept": "TEXT/HTML"}).status_code == 303  # any case


@pytest.mark.parametrize("section", SECTIONS)
def test_locked_section_gives_403_page_naming_section_and_tariff(client, section):
    login(client, "func@client.example")
    for path in (f"/{section}/", page_url(section), f"/{section}/no-such/"):
        r = client.get(path, headers=HTML)
        html = r.get_data(as_text=True)
        if section == "functionality":
            assert r.status_code in (200, 404)
            continue
        assert r.status_code == 403
        assert SECTIONS[section] in html and "«СТАРТ»" in html
        assert "/support/new?from=" in html
        for s in SECTIONS:
            if s != "functionality":
                assert marker(s, "body") not in html and marker(s, "title") not in html


def test_ended_contract_is_locked_out_of_every_section(client):
    r = login(client, "ended@client.example", next_path="/")
    assert r.status_code == 303
    home = client.get("/", headers=HTML).get_data(as_text=True)
    assert 'action="/logout"' in home  # logged in: logout offered
    r = client.get(page_url("launches"), headers=HTML)
    assert r.status_code == 403 and "завершён" in r.get_data(as_text=True)


@pytest.mark.parametrize("path", [
    "/launches/../launches/{page}", "/%2e%2e/launches/{page}", "/LAUNCHES/{page}",
    "/Launches/{page}", "/launches%2F{page}", "/launches\\{page}", "/./launches/{page}",
    "//launches/{page}", "/editions/all/launches/{page}", "/../all/launches/{page}",
    "/site/editions/all/launches/{page}", "/launches/%252e%252e/", "/403.html", "/manifest.json",
    "/..%2f..%2fmanifest.json", "/" + "a/" * 600,
])
def test_path_tricks_never_reach_locked_content(client, path):
    login(client, "func@client.example")
    r = client.get(path.format(page=marker("launches", "slug") + "/"), headers=HTML)
    assert r.status_code in (301, 303, 403, 404)
    body = r.get_data(as_text=True)
    assert marker("launches", "body") not in body and marker("launches", "title") not in body
    assert "@@GATE_CONTENT@@" not in body


def test_missing_public_page_gets_the_editions_404(client):
    r = client.get("/no-such-page/")
    assert r.status_code == 404 and "404" in r.get_data(as_text=True)


def test_caching_and_security_headers(client):
    page = client.get("/")
    assert page.headers["Cache-Control"].startswith("private")
    assert "Cookie" in page.headers["Vary"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    import re
    asset = re.search(r'(assets/javascripts/bundle\.[0-9a-f]+\.min\.js)', html).group(1)
    a = client.get("/" + asset)
    assert a.status_code == 200 and "immutable" in a.headers["Cache-Control"]
    for path in ("/search/search_index.json", "/sitemap.xml", "/no-such/"):
        r = client.get(path)
        assert r.headers["Cache-Control"].startswith("private") and "Cookie" in r.headers["Vary"]


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json["status"] == "ok"
