"""Rate limits of the console and the invitation links: sliding windows (gate.limits) per
address and per person, answered with 429 and Retry-After in Russian."""

from __future__ import annotations

from flask import Response

from gate.web.responses import message
from gate.web.runtime import current_gate


def too_many(wait: int) -> Response:
    resp = message("Слишком много запросов", f"Подождите {wait} с и повторите. Ничего не изменено.",
                   status=429)
    resp.headers["Retry-After"] = str(wait)
    return resp


def check(*rules) -> Response | None:
    """rules: (key, limit, window seconds). This request counts against every key, unless one
    of them is over its limit: then nothing is counted and the answer is 429."""
    windows = current_gate().limits
    with windows.lock:
        wait = max(windows.wait(key, limit, window) for key, limit, window in rules)
        if wait:
            return too_many(wait)
        windows.add(*(key for key, _, _ in rules))
    return None
