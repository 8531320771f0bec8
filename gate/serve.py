"""`gate serve`: the gate under granian (a production WSGI server), one process per core.

Why granian: measured on this 2-core machine with the fast path (bench/http_bench.py, a 128 KB
page with a session cookie, wrk -c32), granian with 2 workers served about 5.5k pages/s,
gunicorn's gthread workers 2.1k, its sync workers 1.3k, waitress in one process 2.4k: its HTTP
side is Rust, so the Python each page costs is nearly all the gate's own.

The master process checks the site and the database once (a stale site or an unreachable
database stops it with one line, before any worker starts), creates the demo accounts in local
mode, then granian forks the workers. Each worker builds its own application (its own database
connections, accounts snapshot, site reload) and runs its own outbox worker: delivery is
lease-safe across processes and hosts (gate.outbox), so N of them never send a message twice.
SIGTERM or SIGINT stops the master, which stops the workers gracefully; a worker whose master
dies (kill -9) is killed by the kernel (PR_SET_PDEATHSIG), so no orphan keeps the port.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

import sqlalchemy as sa

WORKER_TARGET = "gate.serve:worker_app"
PR_SET_PDEATHSIG = 1
OUTBOX_STOP_WAIT = 5  # seconds a stopping worker gives a mail being sent to finish
# local mode without GATE_BASE_URL: the address the master listens on, for the digest's links
DIGEST_BASE_ENV = "KB_SERVE_URL"


def default_workers() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def ensure_demo_accounts(engine, cfg, tariffs) -> None:
    """Local mode only: a demo organisation and two people, created once; credentials printed."""
    from gate import accounts
    from gate.db import users

    path = cfg.instance / "demo-accounts.txt"
    with engine.begin() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(users)).scalar():
            if path.exists():
                print(f"demo accounts: see {path}")
            return
        tariff = "start" if "start" in tariffs else next(iter(tariffs))
        accounts.add_org(conn, "Демо-сеть", tariff, tariffs)
        lines = []
        for email, org, staff in (("client@demo.example", "Демо-сеть", False),
                                  ("staff@demo.example", None, True)):
            password = accounts.generate_password()
            accounts.add_user(conn, email, password, org=org, staff=staff)
            lines.append(f"{email}\t{password}\t{'staff' if staff else 'client, tariff ' + tariff}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    print("demo accounts (also in instance/demo-accounts.txt):")
    for line in lines:
        print("  " + line)


def prepare(cfg) -> None:
    """What the master checks before any worker starts: tariffs, a fresh site, the database
    (migrated), the signing key; the demo accounts in local mode. Raises BuildError for a
    stale site; leaves no connection open for the workers to inherit."""
    from gate.build import check_fresh
    from gate.instance import open_database, signing_key
    from gate.site import load_site
    from gate.tariffs import load_tariffs

    tariffs = load_tariffs(cfg.tariffs_path)
    check_fresh(cfg.root, tariffs)
    load_site(cfg.site_dir)
    signing_key(cfg)
    engine = open_database(cfg)
    try:
        if cfg.local:
            ensure_demo_accounts(engine, cfg, tariffs)
    finally:
        engine.dispose()


def serve(cfg, host: str, port: int, workers: int | None = None, threads: int = 4) -> int:
    from granian import Granian
    from granian.constants import Interfaces

    workers = workers or default_workers()
    prepare(cfg)
    if not cfg.local and not cfg.base_url:
        print("warning: GATE_BASE_URL is not set: password reset links cannot be mailed "
              "(a link built from the request's Host header could be sent to another site)",
              file=sys.stderr)
    if not cfg.base_url and not cfg.local:
        print("warning: GATE_BASE_URL is not set: the weekly digest is not sent", file=sys.stderr)
    elif not cfg.base_url:  # local mode: the digest's links point here
        os.environ[DIGEST_BASE_ENV] = f"http://127.0.0.1:{port}"
    print(f"serving the knowledge base on http://{host}:{port} ({cfg.mode} mode, "
          f"{workers} worker process{'es' if workers > 1 else ''})", flush=True)
    server = Granian(WORKER_TARGET, factory=True, interface=Interfaces.WSGI, address=host,
                     port=port, workers=workers, blocking_threads=threads,
                     log_level="warning", workers_kill_timeout=15)
    server.serve()
    return 0


def _die_with_parent() -> None:
    """The kernel kills this worker when the master dies, however it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the master's own shutdown still stops us
        return
    if os.getppid() == 1:  # the master died before the line above
        os._exit(1)


def worker_app():
    """Runs in each worker process (granian's factory): the application and an outbox worker."""
    from multiprocessing import util

    from gate import config, digest
    from gate.factory import create_app
    from gate.housekeeping import TICK, Housekeeper
    from gate.usage_log import Keeper
    from gate.outbox import Worker

    _die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = config.from_env()
    app = create_app(cfg, check_site=False)  # the master has checked the site
    gate = app.extensions["gate"]
    try:  # every worker holds an accounts snapshot from the start: should the database go
        gate.identities.snapshot()  # away, people already logged in are served by any worker
    except Exception as exc:  # noqa: BLE001 - the first request tries again
        logging.getLogger("gate.serve").warning("accounts snapshot not loaded at start: %s", exc)
    worker = Worker(gate.engine, cfg)
    gate.outbox_worker = worker
    worker.start()
    # multiprocessing runs its finalizers when the worker leaves after a graceful stop
    util.Finalize(worker, worker.stop_and_join, args=(OUTBOX_STOP_WAIT,), exitpriority=10)
    # this process's batches of token uses and refusals; the audit log's pruning (idempotent)
    # and the usage counts per organisation (nginx's usage log too in edge mode: gate.usage_log)
    counting = Keeper(gate.engine, gate.usage, cfg.timezone, cfg.usage_days, cfg.usage_log)
    keeper = Housekeeper(gate.engine, gate.identities, gate.refusals, cfg.audit_days,
                         interval=min(TICK, cfg.usage_flush), chores=[counting])
    keeper.start()
    util.Finalize(keeper, _stop_keeper, args=(keeper,), exitpriority=9)
    # the weekly digest: every process looks, one claims the week (gate.digest); its links need
    # GATE_BASE_URL in production
    base_url = cfg.base_url or (os.environ.get(DIGEST_BASE_ENV) if cfg.local else None)
    sender = digest.Sender(gate.engine, cfg, gate.tariffs, digest.secret(gate.key), base_url,
                           poke=worker.poke)
    sender.start()
    util.Finalize(sender, sender.stop, exitpriority=11)
    return app


def _stop_keeper(keeper) -> None:
    keeper.stop()
    keeper.join(OUTBOX_STOP_WAIT)  # its last tick writes what is still batched
