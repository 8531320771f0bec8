"""The fast path (gate/web/fastpath.py): plain page requests served without entering Flask, with
the same answers and headers."""

from tests.helpers.http import HTML, login
from tests.helpers.project import marker, page_url


def test_plain_page_requests_take_the_fast_path_with_the_same_headers(app, client, monkeypatch):
    login(client, "start@client.example")
    # another scheme (a staging proxy's Basic) goes through Flask and leaves the cookie in charge
    via_flask = client.get(page_url("launches"), headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert via_flask.status_code == 200
    calls = []
    original = app.full_dispatch_request
    monkeypatch.setattr(app, "full_dispatch_request", lambda: calls.append(1) or original())
    fast = client.get(page_url("launches"))
    assert fast.status_code == 200 and calls == []
    assert marker("launches", "body") in fast.get_data(as_text=True)
    for h in ("X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy", "Vary", "ETag"):
        assert h in fast.headers
    assert fast.headers["Cache-Control"].startswith("private")
    again = client.get(page_url("launches"), headers={"If-None-Match": fast.headers["ETag"]})
    assert again.status_code == 304 and calls == []
    assert client.get(page_url("launches"), headers={"Accept": "text/html"}).status_code == 200
    client.post("/logout")
    assert client.get(page_url("launches"), headers=HTML).status_code == 303 and calls
