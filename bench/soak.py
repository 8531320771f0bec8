"""Soak of the support form's delivery: 8 clients, 200 requests, kill -9, an SMTP outage.

Standalone: `.venv/bin/python bench/soak.py [--clients 8] [--requests 200] [--outage 20]`.
Builds its own marker project in a temporary folder, runs `python -m gate serve` (local mode)
and a real SMTP server (aiosmtpd) on 127.0.0.1, then:

  acks   0 .. 40   mail server up (mail flows)
  at  40           mail server DOWN
  at 100           the gate is killed with SIGKILL (requests in flight) and restarted
  at 150           mail server back, once it has been down for at least --outage seconds
  at 200           clients stop; the outbox drains (bounded)

and prints what was acknowledged (303), stored, delivered exactly once (the support mail at
the support address and the confirmation at the requester, by Message-ID), duplicated, lost
(acknowledged but not stored), undelivered (stored but not mailed once the outbox had
DRAIN_LIMIT seconds), the wall time and the p50/p99 latency of the form's POST. Exit status 1
when anything acknowledged was lost or undelivered, or any message arrived twice. Bounded:
about a minute with the defaults, never more than ~3 minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers.mail import MailSink, delivery_report  # noqa: E402
from tests.helpers.ports import wait_until  # noqa: E402
from tests.helpers.processes import GateProcess  # noqa: E402
from tests.helpers.project import PASSWORD, TEST_TARIFFS, make_project  # noqa: E402
from tests.helpers.support import FormClient, Load  # noqa: E402

SUPPORT = "support@kb.test"
DRAIN_LIMIT = 120  # seconds for the outbox to drain after the mail server is back


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def run(clients: int, requests: int, outage: float, work: Path, log=print) -> dict:
    from gate.build import build_all

    t0 = time.monotonic()
    root = make_project(work / "project", TEST_TARIFFS)
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    sink = MailSink().start()
    gate = GateProcess(root, work / "instance", sink.port, work / "serve.log", support_email=SUPPORT)
    people = [f"soak{i}@shop.test" for i in range(clients)]
    gate.add_people("Сеть Старт", "start", people, PASSWORD)
    log(f"project built and {clients} people created in {time.monotonic() - t0:.1f}s; "
        f"logs in {work}")
    phase = {}
    try:
        gate.start()
        form_clients = [FormClient(gate.base, e, PASSWORD) for e in people]
        for c in form_clients:
            c.login()
        started = time.monotonic()
        load = Load(form_clients, requests).start()

        load.wait_acked(int(requests * 0.2), timeout=120)
        sink.stop()
        down_at = time.monotonic()
        phase["smtp_down_at_ack"] = len(load.acked)
        log(f"{time.monotonic() - started:6.1f}s  mail server down (ack {len(load.acked)})")

        load.wait_acked(int(requests * 0.5), timeout=120)
        gate.kill()
        phase["killed_at_ack"] = len(load.acked)
        log(f"{time.monotonic() - started:6.1f}s  gate killed -9 (ack {len(load.acked)})")
        gate.start()
        log(f"{time.monotonic() - started:6.1f}s  gate restarted")

        load.wait_acked(int(requests * 0.75), timeout=120)
        wait_until(lambda: time.monotonic() - down_at >= outage, outage + 1)
        sink.start()
        up_at = time.monotonic()
        phase["smtp_up_at_ack"] = len(load.acked)
        log(f"{time.monotonic() - started:6.1f}s  mail server up after {up_at - down_at:.1f}s "
            f"(ack {len(load.acked)})")

        load.join(timeout=120)
        submitted_at = time.monotonic()
        log(f"{submitted_at - started:6.1f}s  {len(load.acked)} requests acknowledged")

        try:
            state = wait_until(gate.drained_state, DRAIN_LIMIT, interval=0.25, what="outbox drained")
        except TimeoutError:
            state = gate.outbox_state()
        drained_at = time.monotonic()
        log(f"{drained_at - started:6.1f}s  outbox: {state['sent']} of {state['total']} sent")

        stored = state["stored"]
        acked = list(load.acked)
        report = delivery_report(sink, acked, SUPPORT, {n: stored.get(n, "?") for n in acked})
        all_report = delivery_report(sink, stored, SUPPORT, stored)
        by_id = sink.by_id()
        listed = {r["number"]: r["delivery"] for r in gate.requests_json()}
        latencies = [a.latency for a in load.attempts if a.number is not None]
        result = {
            "clients": clients,
            "acknowledged": len(acked),
            "distinct_acknowledged": len(set(acked)),
            "stored": len(stored),
            "stored_not_acknowledged": len(set(stored) - set(acked)),
            "delivered_exactly_once": len(report["once"]),
            "stored_delivered_exactly_once": len(all_report["once"]),
            "duplicates": sum(n - 1 for n in by_id.values() if n > 1),
            "lost": len(set(acked) - set(stored)),          # acknowledged, not stored
            "undelivered": len(report["missing"]),          # stored, not mailed in time
            "not_listed_delivered": sum(1 for n in acked if listed.get(n) != "delivered"),
            "submissions_cut_by_kill": sum(1 for a in load.attempts if a.number is None and a.status is None),
            "http_errors": len(load.http_errors()),
            "mails_received": len(sink.snapshot()),
            "max_attempts": state["max_attempts"],
            "retried_messages": state["retried"],
            "smtp_outage_s": round(up_at - down_at, 1),
            "drain_after_smtp_up_s": round(drained_at - up_at, 1),
            "wall_time_s": round(drained_at - started, 1),
            "post_p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "post_p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "post_max_ms": round(max(latencies) * 1000, 1),
            **phase,
        }
        if report["duplicates"] or report["missing"]:
            missing = sorted(report["missing"])
            result["detail"] = {"duplicates": report["duplicates"],
                                "missing": missing[:20] + (["..."] if len(missing) > 20 else [])}
        return result
    finally:
        gate.stop()
        sink.stop()


class SoakFailed(RuntimeError):
    pass


def main(argv=()) -> int:
    """Runs the soak and prints its figures; raises SoakFailed when anything acknowledged was
    lost or undelivered or a message arrived twice (bench/run.py counts that as a failure)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--outage", type=float, default=20.0, help="least seconds the SMTP server is down")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    args = p.parse_args(list(argv))
    work = Path(tempfile.mkdtemp(prefix="kb-soak-"))
    say = (lambda *_: None) if args.json else print
    try:
        r = run(args.clients, args.requests, args.outage, work, log=say)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ok = (r["lost"] == 0 and r["undelivered"] == 0 and r["duplicates"] == 0 and r["http_errors"] == 0
          and r["delivered_exactly_once"] == r["acknowledged"] == r["distinct_acknowledged"]
          and r["not_listed_delivered"] == 0)
    r["ok"] = ok
    if args.json:
        print(json.dumps(r, ensure_ascii=False))
    else:
        print(f"\nsupport form soak: {r['clients']} clients, gate killed -9 at ack "
              f"{r['killed_at_ack']}, SMTP down {r['smtp_outage_s']}s")
        for key in ("acknowledged", "stored", "delivered_exactly_once", "duplicates", "lost",
                    "undelivered", "stored_not_acknowledged", "submissions_cut_by_kill", "http_errors",
                    "mails_received", "max_attempts", "drain_after_smtp_up_s", "wall_time_s",
                    "post_p50_ms", "post_p99_ms", "post_max_ms"):
            print(f"  {key.replace('_', ' '):28} {r[key]}")
        print("  result                       " + ("OK" if ok else f"FAILED {r.get('detail', '')}"))
    if not ok:
        raise SoakFailed(f"lost {r['lost']}, undelivered {r['undelivered']}, duplicates "
                         f"{r['duplicates']}, HTTP errors {r['http_errors']}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SoakFailed as exc:
        print(f"soak failed: {exc}", file=sys.stderr)
        sys.exit(1)
