"""HTTP clients of the tests, and the one place that knows how the login form is filled.

- `csrf_of` / `login_data`: the csrf_token scraped from a form page, and the fields of a login.
- `login`: logs a Flask test client in through /login (GET, then POST with the token).
- `request` / `Resp`: one raw request on its own connection to a real server, the path sent
  exactly as given (no dot-segment clean-up), cookies set by hand.
- `WebClient`: a requests session against a running server that logs in through the form.
"""

from __future__ import annotations

import http.client
import re
import ssl

from tests.helpers.project import PASSWORD

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str, where: str = "the page") -> str:
    """The csrf_token of the form in `html`."""
    m = CSRF_RE.search(html)
    if not m:
        raise AssertionError(f"no csrf_token in {where}")
    return m.group(1)


def login_data(html: str, email: str, password: str = PASSWORD, next_path: str = "/") -> dict:
    """The fields a person sends from the login page `html`."""
    return {"csrf_token": csrf_of(html, "the login page"), "email": email, "password": password,
            "next": next_path}


def login(client, email: str, password: str = PASSWORD, next_path: str = "/", **post):
    """Logs a Flask test client in through the form; the POST's response (303 when it worked).
    `post` goes to the POST as keyword arguments (headers=...)."""
    page = client.get("/login")
    return client.post("/login", data=login_data(page.get_data(as_text=True), email, password,
                                                 next_path), **post)


# --- raw requests to a real server -------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def by_gate(self) -> bool:
        return self.headers.get("Server") == "kb-gate"

    def cookie(self, name: str) -> str | None:
        for line in self.headers.get_all("Set-Cookie") or []:
            pair = line.split(";", 1)[0]
            key, _, value = pair.partition("=")
            if key.strip() == name:
                return value.strip()
        return None

    def __repr__(self):
        return f"<Resp {self.status} {dict(self.headers)}>"


def request(port: int, path: str, method: str = "GET", headers=None, body=None,
            cookies=None, tls: ssl.SSLContext | None = None) -> Resp:
    """One request on its own connection; https with `tls` (the context that trusts the server)."""
    headers = dict(headers or {})
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    conn = (http.client.HTTPSConnection("127.0.0.1", port, timeout=15, context=tls) if tls
            else http.client.HTTPConnection("127.0.0.1", port, timeout=15))
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return Resp(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


# --- a logged-in person's session ----------------------------------------------------------------

class WebClient:
    """A requests session against a running gate (`base`) that logs in through the form."""

    def __init__(self, base: str, email: str, password: str = PASSWORD, timeout: float = 15):
        import requests

        self.base, self.email, self.password, self.timeout = base, email, password, timeout
        self.http = requests.Session()

    def login(self) -> None:
        page = self.http.get(self.base + "/login", timeout=self.timeout)
        r = self.http.post(self.base + "/login", timeout=self.timeout, allow_redirects=False,
                           data=login_data(page.text, self.email, self.password))
        if r.status_code != 303 or r.headers.get("Location", "").startswith("/login"):
            raise RuntimeError(f"login of {self.email} failed: {r.status_code}")
