"""The second factor in tests: real TOTP codes (pyotp) for a secret, the secret shown on an
enrolment page, enrolling through /account/totp, and the code step of a login."""

from __future__ import annotations

import re
import time

import pyotp

from tests.helpers.http import csrf_of

SECRET_RE = re.compile(r'name="secret" value="([A-Z2-7]{32})"')
CODE_RE = re.compile(r"<li><code>([0-9a-f]{6}-[0-9a-f]{6})</code></li>")
STEP = 30


def code(secret: str, steps_ahead: int = 0) -> str:
    """The code of now (or of a later step: the gate accepts one step of drift)."""
    return pyotp.TOTP(secret).at(time.time() + steps_ahead * STEP)


def wrong_code(secret: str) -> str:
    """Six digits that are no code of the steps the gate accepts now."""
    near = {code(secret, d) for d in (-1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in near)


def secret_of(html: str) -> str:
    m = SECRET_RE.search(html)
    if not m:
        raise AssertionError("no secret on the enrolment page")
    return m.group(1)


def recovery_codes(html: str) -> list[str]:
    return CODE_RE.findall(html)


def enrol(client, path: str = "/account/totp"):
    """Enrols through the form at `path` with the code of now: (secret, the POST's response)."""
    page = client.get(path).get_data(as_text=True)
    secret = secret_of(page)
    resp = client.post(path, data={"csrf_token": csrf_of(page, path), "secret": secret,
                                   "code": code(secret), "next": "/"})
    return secret, resp


def send_code(client, value: str, next_path: str = "/"):
    """The login's second step (after a right password answered 303 to /login/code)."""
    page = client.get("/login/code").get_data(as_text=True)
    return client.post("/login/code", data={"csrf_token": csrf_of(page, "/login/code"),
                                            "code": value, "next": next_path})
