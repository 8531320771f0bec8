"""Login throttling with a fake clock: per address, per account, never locking the owner out."""

from gate.throttle import ACCOUNT_WINDOW, MAX_ACCOUNT, MAX_ADDRESS, Throttle


def make():
    clock = [1000.0]
    return Throttle(clock=lambda: clock[0]), clock


def test_account_limit_blocks_the_failing_address_for_at_most_the_window():
    t, clock = make()
    for _ in range(MAX_ACCOUNT):
        assert t.retry_after("1.1.1.1", "a@x") == 0
        t.failed("1.1.1.1", "a@x")
    wait = t.retry_after("1.1.1.1", "a@x")
    assert 0 < wait <= ACCOUNT_WINDOW
    clock[0] += ACCOUNT_WINDOW
    assert t.retry_after("1.1.1.1", "a@x") == 0


def test_owner_from_another_address_is_never_blocked_by_the_account_limit():
    t, clock = make()
    blocked = 0
    for minute in range(10):  # an attacker rotating addresses, failing all the time
        for i in range(MAX_ACCOUNT + 2):
            address = f"10.0.{minute}.{i}"
            if t.retry_after(address, "a@x") == 0:
                t.failed(address, "a@x")
        if t.retry_after("192.0.2.1", "a@x"):
            blocked += 1
        clock[0] += ACCOUNT_WINDOW / 2
    assert blocked == 0


def test_address_limit_counts_every_account():
    t, _ = make()
    for i in range(MAX_ADDRESS):
        t.failed("1.1.1.1", f"user{i}@x")
    assert t.retry_after("1.1.1.1", "fresh@x") > 0
    assert t.retry_after("2.2.2.2", "fresh@x") == 0


def test_success_clears_the_account_for_that_address():
    t, _ = make()
    for _ in range(MAX_ACCOUNT):
        t.failed("1.1.1.1", "a@x")
    t.succeeded("1.1.1.1", "a@x")
    assert t.retry_after("1.1.1.1", "a@x") == 0
