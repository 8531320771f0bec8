"""`gate serve`: the gate under waitress (a production WSGI server) with the outbox worker."""

from __future__ import annotations

import logging
import sys

import sqlalchemy as sa


def ensure_demo_accounts(app) -> None:
    """Local mode only: a demo organisation and two people, created once; credentials printed."""
    from gate import accounts
    from gate.db import users

    gate = app.extensions["gate"]
    path = gate.cfg.instance / "demo-accounts.txt"
    with gate.engine.begin() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(users)).scalar():
            if path.exists():
                print(f"demo accounts: see {path}")
            return
        tariff = "start" if "start" in gate.tariffs else next(iter(gate.tariffs))
        accounts.add_org(conn, "Демо-сеть", tariff, gate.tariffs)
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


def serve(cfg, host: str, port: int, threads: int = 8) -> int:
    import waitress

    from gate.factory import create_app
    from gate.housekeeping import Housekeeper
    from gate.outbox import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(cfg)  # refuses a stale site (gate.build.BuildError)
    if cfg.local:
        ensure_demo_accounts(app)
    elif not cfg.base_url:
        print("warning: GATE_BASE_URL is not set: password reset links cannot be mailed "
              "(a link built from the request's Host header could be sent to another site)",
              file=sys.stderr)
    gate = app.extensions["gate"]
    worker = Worker(gate.engine, cfg)
    gate.outbox_worker = worker
    worker.start()
    keeper = Housekeeper(gate.engine, gate.identities, gate.refusals, cfg.audit_days)
    keeper.start()
    print(f"serving the knowledge base on http://{host}:{port} ({cfg.mode} mode)", flush=True)
    try:
        # send_bytes: a page (~25 KB) is written by the server loop in one go instead of by the
        # worker thread in 18 KB pieces; measured +55% requests/s with 32 connections.
        waitress.serve(app, host=host, port=port, threads=threads, ident="kb-gate",
                       clear_untrusted_proxy_headers=False, channel_timeout=60,
                       send_bytes=262144)
    finally:
        worker.stop()
        keeper.stop()
        keeper.join(5)  # the last batch of token uses and refusals
    return 0


