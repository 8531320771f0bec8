"""Rate limits of the console and the invitation links: sliding windows (gate.limits) per
address and per person, answered with 429 and Retry-After in Russian; `check_shared` keeps
the counts in the database (gate.shared_limits) for limits that must hold across processes."""

from __future__ import annotations

from flask import Response

from gate.shared_limits import SharedWindows
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


def check_shared(*rules) -> Response | None:
    """As `check`, but the counts live in the database (gate.shared_limits), so the limits hold
    across every gate process and host; one atomic step. Without shared counters (a tool, a
    test without them) this process's own windows apply. Storage errors propagate (503)."""
    gate = current_gate()
    if gate.counters is None:
        return check(*rules)
    horizon = max(window for _, _, window in rules)
    wait = SharedWindows(gate.counters, horizon=horizon).take(
        [key for key, _, _ in rules], rules)
    return too_many(wait) if wait else None
