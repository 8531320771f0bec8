"""Nothing acknowledged is lost, nothing is mailed twice: real processes, kill -9, SMTP outage.

`python -m gate serve` (a marker project, local mode) and a real SMTP server (aiosmtpd). Four
clients fill the support form over HTTP while the mail server is DOWN; the gate is killed with
SIGKILL while requests are in flight and restarted on the same port; the clients go on; the
mail server comes back. Then every request the gate stored, and in particular every one it
acknowledged with a 303, reaches the support address exactly once (Message-ID
<kb-request-N@…>) and its requester's confirmation exactly once.

The outage is kept short on purpose instead of touching the database: the worker's backoff
doubles from 1 s, so a message first refused t seconds before the server returns is retried
at most about t seconds after it — every wait below is bounded by that, not by the 10-minute
ceiling. The one thing skipped is the lease a killed worker may leave on the message it was
sending (120 s): see `GateProcess.expire_dead_leases`.
"""

from __future__ import annotations

import time

import pytest

from tests.helpers.mail import MailSink, delivery_report
from tests.helpers.ports import wait_until
from tests.helpers.processes import GateProcess
from tests.helpers.project import PASSWORD
from tests.helpers.support import FormClient, Load

ORG, TARIFF = "Сеть Старт", "start"
PEOPLE = [f"client{i}@shop.test" for i in range(4)]
SUPPORT = "support@kb.test"
TARGET = 36          # acknowledged requests in all
KILL_AFTER = 12      # acknowledged before the kill
SMTP_UP_AFTER = 24   # acknowledged before the mail server comes back
MIN_OUTAGE = 6       # seconds the mail server stays down at least (several retries each)
DELIVERY_WAIT = 45   # seconds for the outbox to drain once the server is back


@pytest.fixture
def rig(built_project, tmp_path):
    root, _ = built_project
    sink = MailSink()  # port reserved, server not started: the mail server is down
    gate = GateProcess(root, tmp_path / "instance", sink.port, tmp_path / "serve.log",
                       support_email=SUPPORT)
    gate.add_people(ORG, TARIFF, PEOPLE, PASSWORD)
    try:
        yield gate, sink
    finally:
        gate.stop()
        sink.stop()


def test_killed_gate_and_mail_outage_lose_nothing_and_send_nothing_twice(rig):
    gate, sink = rig
    started = time.monotonic()
    gate.start()
    clients = [FormClient(gate.base, email, PASSWORD) for email in PEOPLE]
    for c in clients:
        c.login()
    load = Load(clients, TARGET).start()

    # 1. mail server down; kill -9 while the clients are submitting
    load.wait_acked(KILL_AFTER, timeout=30)
    gate.kill()
    time.sleep(0.3)  # the clients run into the dead port (connection refused / reset)
    acked_before_kill = set(load.acked)  # no gate runs now: every 303 is already counted
    stored_after_kill = {r["number"] for r in gate.requests_json()}
    assert acked_before_kill <= stored_after_kill, gate.log_tail()
    assert not sink.snapshot()
    # The killed worker may have held a lease (claimed, neither sent nor released). The next
    # gate would wait out its 120 s, which test_outbox checks in process; here the time is
    # skipped by ending the dead process's leases, nothing else in the database is touched.
    leased_by_the_dead = gate.expire_dead_leases()

    # 2. restart (the mail server still down), the clients go on; then the mail server returns
    gate.start()
    load.wait_acked(SMTP_UP_AFTER, timeout=30)
    wait_until(lambda: time.monotonic() - started >= MIN_OUTAGE, MIN_OUTAGE + 1)
    outage = time.monotonic() - started
    sink.start()
    load.join(timeout=30)
    acked = set(load.acked)
    assert len(acked) == len(load.acked) == TARGET, "each acknowledgement names its own number"

    # 3. the outbox drains: when no row is unsent no worker can send anything any more, so
    # the counts at the server are final
    try:
        state = wait_until(gate.drained_state, DELIVERY_WAIT, interval=0.25, what="outbox drained")
    except TimeoutError:
        pytest.fail(f"outbox not drained within {DELIVERY_WAIT}s: {gate.outbox_state()}\n"
                    f"{gate.log_tail()}")
    stored = state["stored"]

    # every acknowledged request is stored; nothing answered with an error other than the kill
    assert acked <= set(stored)
    assert load.http_errors() == []
    # the scenario really happened: the gate retried while the server was down
    assert state["retried"] > 0, state
    # exactly once each: the support mail at the support address, the confirmation at the
    # requester; also for requests stored while their client saw the connection drop
    report = delivery_report(sink, stored, SUPPORT, stored)
    assert report["duplicates"] == {} and report["missing"] == set()
    assert report["once"] == set(stored)
    assert all(n == 1 for n in sink.by_id().values()), "no Message-ID arrived twice"
    assert len(sink.snapshot()) == 2 * len(stored)
    # the acknowledged ones came from the people who submitted them
    for number, email in load.requester_of().items():
        assert stored[number] == email
    # `gate requests --json` agrees
    listed = {r["number"]: r["delivery"] for r in gate.requests_json()}
    assert {n: listed.get(n) for n in acked} == {n: "delivered" for n in acked}
    elapsed = time.monotonic() - started
    lost_in_kill = sum(1 for a in load.attempts if a.number is None)
    print(f"\nacknowledged {len(acked)} (before the kill {len(acked_before_kill)}), stored "
          f"{len(stored)}, submissions cut by the kill {lost_in_kill}, mails {len(sink.snapshot())}, "
          f"outage {outage:.1f}s, max attempts {state['max_attempts']}, leases left by the kill "
          f"{len(leased_by_the_dead)}, total {elapsed:.1f}s")
