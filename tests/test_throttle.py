"""Login throttling with a fake clock: per address, per account, never locking the owner out.

Every rule is checked with both limiters: in memory (one process) and in the database (shared
by every gate process and host; here a SQLite file).
"""

import pytest

from gate.throttle import ACCOUNT_WINDOW, MAX_ACCOUNT, MAX_ACCOUNT_ANY, MAX_ADDRESS, Throttle


def make():
    clock = [1000.0]
    return Throttle(clock=lambda: clock[0]), clock


@pytest.fixture(params=["memory", "database"])
def made(request, tmp_path):
    if request.param == "memory":
        yield make()
        return
    from gate.db import migrate
    from gate.engine import make_engine
    from gate.shared_limits import SharedWindows

    engine = make_engine(f"sqlite:///{tmp_path / 'limits.sqlite3'}", durable=False)
    migrate(engine)
    clock = [1000.0]
    yield Throttle(SharedWindows(engine, horizon=600), clock=lambda: clock[0]), clock
    engine.dispose()


def test_account_limit_blocks_the_failing_address_for_at_most_the_window(made):
    t, clock = made
    for _ in range(MAX_ACCOUNT):
        assert t.retry_after("1.1.1.1", "a@x") == 0
        t.failed("1.1.1.1", "a@x")
    wait = t.retry_after("1.1.1.1", "a@x")
    assert 0 < wait <= ACCOUNT_WINDOW
    clock[0] += ACCOUNT_WINDOW
    assert t.retry_after("1.1.1.1", "a@x") == 0


def _spray(t, clock, minutes, owner_addresses):
    """An attacker rotating addresses, failing all the time; per half minute: how many of
    their guesses were checked, and which of the owner's addresses were blocked."""
    guesses, blocked = 0, {a: 0 for a in owner_addresses}
    for step in range(minutes * 2):
        for i in range(50):
            address = f"10.{step}.0.{i}"
            if t.retry_after(address, "a@x") == 0:
                t.failed(address, "a@x")
                guesses += 1
        for a in owner_addresses:
            wait = t.retry_after(a, "a@x")
            assert wait <= ACCOUNT_WINDOW
            blocked[a] += wait > 0
        clock[0] += ACCOUNT_WINDOW / 2
    return guesses, blocked


def test_guesses_spread_over_many_addresses_are_limited_per_account(made):
    t, clock = made
    guesses, _ = _spray(t, clock, 10, [])
    assert guesses <= 10 * MAX_ACCOUNT_ANY  # not 10 minutes x 100 addresses
    assert guesses >= 5 * MAX_ACCOUNT_ANY   # the limit lifts after each window


def test_the_owner_at_a_known_address_is_never_blocked_and_elsewhere_at_most_a_window(made):
    t, clock = made
    t.succeeded("192.0.2.1", "a@x")  # the owner logged in from here before
    _, blocked = _spray(t, clock, 10, ["192.0.2.1", "198.51.100.7"])
    assert blocked["192.0.2.1"] == 0
    # a new address of the owner is blocked while the spray goes on, each time for at most
    # the window (asserted in _spray), and free at most a window after it stops
    assert blocked["198.51.100.7"] > 0
    clock[0] += ACCOUNT_WINDOW / 2
    assert t.retry_after("198.51.100.7", "a@x") == 0


def test_a_known_address_is_forgotten_after_thirty_days(made):
    from gate.throttle import KNOWN_FOR

    t, clock = made
    t.succeeded("192.0.2.1", "a@x")
    clock[0] += KNOWN_FOR + 1
    for i in range(MAX_ACCOUNT_ANY):
        t.failed(f"10.0.0.{i}", "a@x")
    assert 0 < t.retry_after("192.0.2.1", "a@x") <= ACCOUNT_WINDOW


def test_address_limit_counts_every_account(made):
    t, _ = made
    for i in range(MAX_ADDRESS):
        t.failed("1.1.1.1", f"user{i}@x")
    assert t.retry_after("1.1.1.1", "fresh@x") > 0
    assert t.retry_after("2.2.2.2", "fresh@x") == 0


def test_success_clears_the_account_for_that_address(made):
    t, _ = made
    for _ in range(MAX_ACCOUNT):
        t.failed("1.1.1.1", "a@x")
    t.succeeded("1.1.1.1", "a@x")
    assert t.retry_after("1.1.1.1", "a@x") == 0


def test_an_owners_typo_at_a_known_address_is_judged_by_its_own_failures(made):
    t, _ = made
    t.succeeded("192.0.2.1", "a@x")
    for i in range(MAX_ACCOUNT):  # somebody else's guesses
        t.failed(f"10.0.0.{i}", "a@x")
    t.failed("192.0.2.1", "a@x")  # the owner mistypes once
    assert t.retry_after("192.0.2.1", "a@x") == 0
    for _ in range(MAX_ACCOUNT - 1):
        t.failed("192.0.2.1", "a@x")
    assert 0 < t.retry_after("192.0.2.1", "a@x") <= ACCOUNT_WINDOW


def test_a_known_device_is_never_blocked_by_a_spray(made):
    t, clock = made
    for i in range(MAX_ACCOUNT_ANY * 3):
        if t.retry_after(f"10.0.0.{i}", "a@x") == 0:
            t.failed(f"10.0.0.{i}", "a@x")
    assert t.retry_after("203.0.113.9", "a@x") > 0                   # a stranger
    assert t.retry_after("203.0.113.9", "a@x", known_device=True) == 0  # the owner's browser


def test_too_many_addresses_forget_what_expired_not_the_current_lock(monkeypatch):
    import gate.throttle as throttle

    monkeypatch.setattr(throttle, "MAX_KEYS", 60)
    t, clock = make()
    for i in range(20):  # old failures of other accounts, long expired
        t.failed(f"10.1.0.{i}", f"old{i}@x")
    clock[0] += throttle.ADDRESS_WINDOW + 1
    for i in range(MAX_ACCOUNT_ANY):  # 3 keys each: the store overflows during this attack
        t.failed(f"10.2.0.{i}", "a@x")
    assert t.retry_after("203.0.113.9", "a@x") > 0


def test_attempt_counts_before_the_check_and_a_success_gives_it_back(made):
    t, clock = made
    for _ in range(MAX_ACCOUNT):
        assert t.attempt("1.1.1.1", "a@x") == 0  # each counted as a failure in advance
    assert 0 < t.attempt("1.1.1.1", "a@x") <= ACCOUNT_WINDOW  # refused, not counted
    clock[0] += ACCOUNT_WINDOW
    for i in range(MAX_ADDRESS - MAX_ACCOUNT):  # successes give the address its try back
        assert t.attempt("1.1.1.1", f"ok{i}@x") == 0
        t.succeeded("1.1.1.1", f"ok{i}@x")
    assert t.attempt("1.1.1.1", "b@x") == 0
    assert t.retry_after("1.1.1.1", "c@x") == 0


def test_a_wait_never_exceeds_the_window(made):
    t, clock = made
    for _ in range(MAX_ACCOUNT):
        assert t.attempt("1.1.1.1", "a@x") == 0
        clock[0] += 0.999
    assert t.attempt("1.1.1.1", "a@x") <= ACCOUNT_WINDOW
    clock[0] += ACCOUNT_WINDOW - MAX_ACCOUNT * 0.999 + 0.001  # the first try has left the window
    assert t.attempt("1.1.1.1", "a@x") == 0
