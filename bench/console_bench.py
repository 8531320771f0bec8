"""The staff console with 2 000 organisations and 20 000 people: latency of `/staff/orgs/` (and
the other lists) through a real `gate serve`, on SQLite and, where PostgreSQL is installed, on
a throwaway PostgreSQL cluster. Target: `/staff/orgs/` p95 < 100 ms.

The data is written straight into the database (hashing 20 000 passwords would take longer than
the benchmark); the staff member logs in over HTTP like a browser. The requests mix the first
page, other pages, searches and status filters, one at a time (the latency a person sees).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PY = sys.executable
ORGS, PEOPLE, AUDIT_ROWS = 2000, 20000, 50000
SAMPLES = 300
TARGET_P95_MS = 100.0
PASSWORD = "bench-staff-password"
WORDS = ("Сеть", "Маркет", "Универсам", "Гипер", "Продукты", "Лавка", "Торг", "Ритейл")


def populate(url: str, tariffs: dict) -> None:
    import sqlalchemy as sa

    from gate import accounts
    from gate.db import audit, invitations, migrate, orgs, users
    from gate.engine import make_engine

    rnd = random.Random(15)
    engine = make_engine(url)
    migrate(engine)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    keys = list(tariffs)
    with engine.begin() as conn:
        accounts.vendor_org_id(conn)
        conn.execute(orgs.insert(), [
            {"name": f"{rnd.choice(WORDS)} {i:04d}", "tariff": keys[i % len(keys)],
             "until": (now + dt.timedelta(days=rnd.randint(-200, 900))).date(),
             "ended_at": now if i % 17 == 0 else None, "is_vendor": False,
             "external_id": f"crm-{i}" if i % 3 else None, "created_at": now}
            for i in range(ORGS)])
        org_ids = [r.id for r in conn.execute(sa.select(orgs.c.id).where(orgs.c.is_vendor.is_(False)))]
        hashed = accounts.hash_password("not-a-real-password")
        conn.execute(users.insert(), [
            {"email": f"person{i:05d}@client{i % ORGS:04d}.example", "org_id": org_ids[i % len(org_ids)],
             "password_hash": "" if i % 11 == 0 else hashed, "is_staff": False,
             "is_admin": i % 10 == 1, "disabled": i % 23 == 0, "tokens_valid_after": 0,
             "created_at": now, "last_login_at": now - dt.timedelta(minutes=rnd.randint(0, 90000))
             if i % 4 else None}
            for i in range(PEOPLE)])
        pending = [r.id for r in conn.execute(sa.select(users.c.id).where(users.c.password_hash == ""))]
        conn.execute(invitations.insert(), [
            {"id": f"{uid:064x}", "user_id": uid, "created_at": now,
             "expires_at": now + dt.timedelta(hours=72)} for uid in pending])
        conn.execute(audit.insert(), [
            {"at": now - dt.timedelta(minutes=i), "actor": "cli", "address": None,
             "action": rnd.choice(("org.set", "user.invite", "password.login", "user.disable")),
             "target": f"person{i % PEOPLE:05d}@client.example", "org_id": org_ids[i % len(org_ids)],
             "user_id": None, "details": '{"count": 1}'} for i in range(AUDIT_ROWS)])
        accounts.add_user(conn, "staff@bench.example", PASSWORD, staff=True)
    with engine.connect() as conn:  # statistics, as PostgreSQL's autovacuum keeps them
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()


def _percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(base: str) -> dict:
    import requests

    http = requests.Session()
    page = http.get(base + "/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = http.post(base + "/login", allow_redirects=False, data={
        "csrf_token": token, "email": "staff@bench.example", "password": PASSWORD, "next": "/staff/"})
    assert r.status_code == 303, r.status_code
    rnd = random.Random(7)
    lists = {
        "/staff/orgs/": lambda: rnd.choice([
            "", f"?page={rnd.randint(1, 40)}", f"?find={rnd.choice(WORDS)}",
            f"?find={rnd.randint(0, 1999):04d}", "?status=ended", "?status=active&page=3",
            f"?find=crm-{rnd.randint(1, 1999)}"]),
        "/staff/people/": lambda: rnd.choice([
            "", f"?page={rnd.randint(1, 400)}", f"?find=person{rnd.randint(0, 19999):05d}",
            "?state=invited", f"?org={rnd.randint(2, 2000)}", "?state=admin&page=5"]),
        "/staff/audit/": lambda: rnd.choice(["", "?days=7", "?action=user.", "?page=50"]),
        "/staff/": lambda: "",
    }
    for path in lists:  # warm-up
        for _ in range(5):
            http.get(base + path).raise_for_status()
    results = {}
    for path, query in lists.items():
        times = []
        for _ in range(SAMPLES if path == "/staff/orgs/" else SAMPLES // 3):
            started = time.perf_counter()
            resp = http.get(base + path + query())
            times.append((time.perf_counter() - started) * 1000)
            resp.raise_for_status()
            if path == "/staff/orgs/" and "<table>" not in resp.text and "Ничего не найдено" not in resp.text:
                raise RuntimeError("the organisations page has no table")
        results[path] = (statistics.median(times), _percentile(times, 0.95), _percentile(times, 0.99))
    return results


def run_one(label: str, url: str | None, tmp: Path) -> dict:
    from gate.tariffs import load_tariffs
    from tests.helpers.ports import free_port
    from tests.helpers.processes import healthz, start
    from tests.helpers.project import make_project

    root = tmp / "project"
    if not (root / "site").exists():
        make_project(root)
        subprocess.run([PY, "-m", "gate", "build"], env={**os.environ, "GATE_ROOT": str(root)},
                       check=True, capture_output=True)
    instance = tmp / f"instance-{label}"
    env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(instance), "GATE_MODE": "local",
           "GATE_SMTP_PORT": str(free_port())}
    env.pop("GATE_BASE_URL", None)
    url = url or f"sqlite:///{instance / 'gate.sqlite3'}"
    instance.mkdir(parents=True, exist_ok=True)
    env["GATE_DATABASE_URL"] = url
    started = time.perf_counter()
    populate(url, load_tariffs(root / "tariffs.yml"))
    print(f"  {label}: {ORGS} organisations, {PEOPLE} people, {AUDIT_ROWS} audit rows written "
          f"in {time.perf_counter() - started:.0f}s", flush=True)
    port = free_port()
    log = tmp / f"serve-{label}.log"
    server = start([PY, "-m", "gate", "serve", "--host", "127.0.0.1", "--port", str(port)],
                   ready=healthz(f"http://127.0.0.1:{port}"), log=log, env=env, what="gate serve")
    try:
        results = measure(f"http://127.0.0.1:{port}")
    finally:
        server.stop(timeout=15)
    for path, (p50, p95, p99) in results.items():
        print(f"  {label:10s} {path:15s} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   p99 {p99:6.1f} ms")
    p95 = results["/staff/orgs/"][1]
    print(f"  {label}: /staff/orgs/ p95 {p95:.1f} ms (target < {TARGET_P95_MS:.0f} ms): "
          f"{'ok' if p95 < TARGET_P95_MS else 'MISSED'}", flush=True)
    return results


def main() -> dict:
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        summary["sqlite"] = run_one("sqlite", None, tmp)
        from tests.helpers.processes import Unavailable, running_cluster
        try:
            cluster = running_cluster()
        except Unavailable as exc:
            print(f"  postgresql: skipped ({exc})")
            return summary
        try:
            summary["postgresql"] = run_one("postgresql", cluster.create_database("bench"), tmp)
        finally:
            cluster.stop()
    missed = [k for k, r in summary.items() if r["/staff/orgs/"][1] >= TARGET_P95_MS]
    if missed:
        raise RuntimeError(f"/staff/orgs/ p95 over {TARGET_P95_MS:.0f} ms on {', '.join(missed)}")
    return summary


if __name__ == "__main__":
    main()
