"""Usage per organisation (gate/usage.py, gate/usage_log.py), in process: what is counted
where (the fast path, the Flask page view, the locked page, search, support requests), the
flush that adds up across processes, fail-soft counting while storage is away, nginx's usage
log read by offset (rotation, partial lines), `gate usage` and the stored schema (aggregates
only), the retention."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from gate import accounts, config, usage
from gate.clock import today
from gate.db import migrate, usage_daily
from gate.engine import make_engine
from gate.usage_log import Keeper, LogReader, parse
from tests.helpers.http import login
from tests.helpers.project import page_url
from tests.helpers.support import submit_support

TZ = ZoneInfo("Europe/Moscow")
HTML = {"Accept": "text/html"}


def _org_id(app, name="Сеть Функ") -> int:
    with app.extensions["gate"].engine.connect() as conn:
        return accounts.org_by_name(conn, name).id


def _report(app, **kw) -> list:
    gate = app.extensions["gate"]
    with gate.engine.connect() as conn:
        return usage.report(conn, gate.cfg.timezone, **kw)


def test_views_locked_hits_searches_and_requests_are_counted_per_organisation(app):
    gate = app.extensions["gate"]
    c = app.test_client()
    assert login(c, "func@client.example").status_code == 303
    for _ in range(2):
        assert c.get(page_url("functionality"), headers=HTML).status_code == 200  # fast path
    assert c.get("/functionality/", headers=HTML).status_code == 200
    assert c.get("/functionality", headers=HTML).status_code in (301, 308)  # not a view
    assert c.get("/search/search_index.json").status_code in (200, 404)     # an asset: not a view
    assert c.get(page_url("launches"), headers=HTML).status_code == 403      # locked
    assert c.get("/api/search?q=маркер").status_code == 200
    assert submit_support(c).status_code == 303
    anonymous = app.test_client()
    assert anonymous.get("/", headers=HTML).status_code == 200               # no organisation
    org = _org_id(app)
    day = today(gate.cfg.timezone)
    pending = gate.usage.pending()
    assert pending[(org, day, usage.VIEW, "functionality")] == 3
    assert pending[(org, day, usage.LOCKED, "launches")] == 1
    assert pending[(org, day, usage.SEARCH, "")] == 1
    assert pending[(org, day, usage.REQUEST, "")] == 1
    assert {k[0] for k in pending} == {org}
    assert gate.usage.flush(gate.engine) == 4 and gate.usage.pending() == {}
    [row] = _report(app, org="Сеть Функ", days=1)
    assert row == {"org": "Сеть Функ", "people": 1, "active_people": 1,
                   "last_login": row["last_login"], "views": {"functionality": 3},
                   "public_views": 0, "locked_hits": {"launches": 1}, "searches": 1,
                   "requests": 1}
    assert row["last_login"].startswith(str(day))


def test_flushes_of_several_processes_add_up(app):
    gate = app.extensions["gate"]
    org = _org_id(app)
    first, second = usage.Counter(TZ), usage.Counter(TZ)
    for counter, n in ((first, 2), (second, 3)):
        for _ in range(n):
            counter.page(org, "/launches/x/")
        counter.flush(gate.engine)
    second.page(org, "/launches/x/")
    second.flush(gate.engine)
    assert _report(app, org="Сеть Функ", days=1)[0]["views"] == {"launches": 6}


def test_storage_away_keeps_the_counts_and_a_page_is_served(app, tmp_path, caplog):
    gate = app.extensions["gate"]
    c = app.test_client()
    login(c, "func@client.example")
    healthy = gate.engine
    away = sa.create_engine(f"sqlite:///{tmp_path}/missing/gate.sqlite3")
    gate.engine = away
    try:
        assert c.get(page_url("functionality"), headers=HTML).status_code == 200
        assert gate.usage.flush(away) == 0  # the housekeeping's try: kept in memory
        assert c.get(page_url("functionality"), headers=HTML).status_code == 200
        assert gate.usage.flush(away) == 0
    finally:
        gate.engine = healthy
    assert "kept in memory" in caplog.text
    assert sum(gate.usage.pending().values()) == 2
    assert gate.usage.flush(healthy) == 1
    assert _report(app, org="Сеть Функ", days=1)[0]["views"] == {"functionality": 2}


def test_memory_is_bounded_while_storage_is_away(tmp_path, caplog):
    counter = usage.Counter(TZ, max_keys=3)
    old, new = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
    counter.add(1, usage.VIEW, "launches", day=old)
    counter.add(2, usage.VIEW, "launches", day=old)
    counter.add(1, usage.VIEW, "launches", day=new)
    counter.add(1, usage.SEARCH, day=new)  # the fourth key: the oldest day goes
    assert set(counter.pending()) == {(1, new, usage.VIEW, "launches"), (1, new, usage.SEARCH, "")}
    assert counter.dropped == 2 and "dropped" in caplog.text
    assert counter.flush(sa.create_engine(f"sqlite:///{tmp_path}/no/such.db")) == 0
    assert len(counter.pending()) == 2


def test_counting_off_counts_nothing(built_project, people_database, tmp_path):
    from gate.factory import create_app
    from tests.helpers.project import copy_database, make_config

    root, _ = built_project
    (tmp_path / "i").mkdir()
    copy_database(people_database, tmp_path / "i" / "gate.sqlite3")
    app = create_app(make_config(root, tmp_path / "i", usage=False))
    c = app.test_client()
    login(c, "func@client.example")
    assert c.get(page_url("functionality"), headers=HTML).status_code == 200
    assert c.get(page_url("launches"), headers=HTML).status_code == 403
    assert app.extensions["gate"].usage.pending() == {}
    assert config.from_env({"GATE_USAGE": "0"}).usage is False
    assert config.from_env({}).usage is True and config.from_env({}).usage_days == 400


def test_the_table_holds_aggregates_only(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/g.sqlite3")
    migrate(engine)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("usage_daily")}
    assert columns == {"org_id", "day", "kind", "section", "n"}  # no person, address or page


def test_old_days_are_pruned(app):
    gate = app.extensions["gate"]
    org = _org_id(app)
    now = today(gate.cfg.timezone)
    counter = usage.Counter(gate.cfg.timezone)
    counter.add(org, usage.VIEW, "launches", day=now - dt.timedelta(days=500))
    counter.add(org, usage.VIEW, "launches", day=now - dt.timedelta(days=10))
    counter.flush(gate.engine)
    assert usage.prune(gate.engine, gate.cfg.timezone, 400) == 1
    with gate.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(usage_daily.c.n))).scalar() == 1


# --- nginx's usage log ---------------------------------------------------------------------

def test_log_lines_are_page_views_of_an_organisation():
    assert parse("7 200 /functionality/x/") == (7, "/functionality/x/")
    assert parse("7 304 /Functionality/x/?q=1") == (7, "/Functionality/x/")
    assert parse("7 200 /functionality/%D1%8F/") == (7, "/functionality/я/")
    for bad in ("- 200 /x/", "0 200 /x/", "7 404 /x/", "7 200", "", "x y z",
                "-1 200 /x/"):
        assert parse(bad) is None, bad


def test_the_log_is_read_from_where_it_was_left_across_rotation(tmp_path):
    log = tmp_path / "usage.log"
    counter = usage.Counter(TZ)
    reader = LogReader(log, counter)
    assert reader.read() == 0  # no log yet
    log.write_text("5 200 /launches/a/\n5 200 /launches/b/\n6 200 /maintenance/")
    assert reader.read() == 2  # the unfinished line waits
    with open(log, "a") as f:
        f.write("\n")
    assert reader.read() == 1
    assert LogReader(log, counter).read() == 0  # another process: the position is shared
    rotated = tmp_path / "usage.log.1"
    log.rename(rotated)  # rotated: nginx writes on into the renamed file until it reopens
    with open(rotated, "a") as f:
        f.write("7 200 /launches/c/\n")
    assert reader.read() == 1  # the renamed file's new end, the new log not there yet
    with open(rotated, "a") as f:
        f.write("7 200 /launches/d/\n7 200 /launches/e")  # nginx's buffer at reopen
    log.write_text("5 200 /claim-desk/\n")  # nginx -s reopen
    assert reader.read() == 1  # the rest of the renamed file (its unfinished line is lost)
    assert reader.read() == 1  # then the new log from its start
    assert reader.read() == 0
    log.write_text("")  # truncated
    assert reader.read() == 0
    day = today(TZ)
    assert counter.pending() == {(5, day, usage.VIEW, "launches"): 2,
                                 (6, day, usage.VIEW, "maintenance"): 1,
                                 (7, day, usage.VIEW, "launches"): 2,
                                 (5, day, usage.VIEW, "claim-desk"): 1}


def test_one_process_reads_at_a_time(tmp_path):
    import fcntl

    log = tmp_path / "usage.log"
    log.write_text("5 200 /launches/a/\n")
    reader = LogReader(log, usage.Counter(TZ))
    fd = os.open(reader.lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert reader.read() == 0
    finally:
        os.close(fd)
    assert reader.read() == 1


def test_the_keeper_reads_flushes_and_survives_a_broken_database(app, tmp_path):
    gate = app.extensions["gate"]
    org = _org_id(app)
    log = tmp_path / "usage.log"
    log.write_text(f"{org} 200 /functionality/\n{org} 200 /functionality/x/\n")
    counter = usage.Counter(gate.cfg.timezone)
    broken = Keeper(sa.create_engine(f"sqlite:///{tmp_path}/no/db.sqlite3"), counter,
                    gate.cfg.timezone, 400, log)
    broken()  # read, but not written: kept
    assert sum(counter.pending().values()) == 2
    Keeper(gate.engine, counter, gate.cfg.timezone, 400, log)()
    assert _report(app, org="Сеть Функ", days=1)[0]["views"] == {"functionality": 2}


# --- gate usage ----------------------------------------------------------------------------

def test_the_command_prints_json_text_and_filters(app):
    gate = app.extensions["gate"]
    counter = usage.Counter(gate.cfg.timezone)
    counter.add(_org_id(app), usage.VIEW, "functionality", n=4)
    counter.add(_org_id(app, "Сеть Старт"), usage.SEARCH, n=2)
    counter.add(_org_id(app, "Сеть Старт"), usage.VIEW, "launches",
                day=today(gate.cfg.timezone) - dt.timedelta(days=3))
    counter.flush(gate.engine)
    env = {**os.environ, "GATE_ROOT": str(gate.cfg.root), "GATE_INSTANCE": str(gate.cfg.instance),
           "GATE_MODE": "local"}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "gate", "usage", *args], env=env,
                              capture_output=True, text=True, timeout=120)
    every = json.loads(run("--json").stdout)
    assert {r["org"] for r in every} == {"Сеть Старт", "Сеть Функ", "Сеть Пара", "Сеть Бывшая"}
    assert all(set(r) == {"org", "people", "active_people", "last_login", "views", "locked_hits",
                          "searches", "requests"} for r in every)  # the contract's shape
    [start] = json.loads(run("--json", "--org", "Сеть Старт").stdout)
    assert start["searches"] == 2 and start["views"] == {"launches": 1}
    [start] = json.loads(run("--json", "--org", "Сеть Старт", "--days", "2").stdout)
    assert start["views"] == {}
    text = run("--org", "Сеть Функ").stdout
    assert text.splitlines()[0].startswith("org\tpeople") and "functionality:4" in text
    bad = run("--org", "Нет такой")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


# --- the console ---------------------------------------------------------------------------

def test_the_console_shows_usage_with_an_accessible_chart_to_staff_only(app):
    gate = app.extensions["gate"]
    org = _org_id(app)
    counter = usage.Counter(gate.cfg.timezone)
    now = today(gate.cfg.timezone)
    counter.add(org, usage.VIEW, "functionality", n=5)
    counter.add(org, usage.VIEW, "functionality", n=2, day=now - dt.timedelta(days=2))
    counter.add(org, usage.VIEW, usage.PUBLIC, n=1)
    counter.add(org, usage.LOCKED, "launches", n=3)
    counter.flush(gate.engine)
    for who in (None, "func@client.example"):
        c = app.test_client()
        if who:
            login(c, who)
        r = c.get("/staff/usage/", headers=HTML)
        assert r.status_code == (403 if who else 303)
        assert "Сеть Функ" not in r.get_data(as_text=True)
    staff = app.test_client()
    login(staff, "staff@vendor.example")
    listing = staff.get("/staff/usage/?days=7", headers=HTML).get_data(as_text=True)
    assert "Функциональность: 7" in listing and "Запуски: 3" in listing
    assert "Общие страницы: 1" in listing  # not a section: apart from the sections' views
    [row] = _report(app, org="Сеть Функ", days=7)
    assert "public" not in row["views"] and row["public_views"] == 1
    assert 'href="/staff/usage/"' in listing  # in the console's menu
    page = staff.get(f"/staff/orgs/{org}/", headers=HTML)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    start = html.index('<svg class="kb-chart"')
    svg = html[start:html.index("</svg>", start)]
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg and "<polyline" in svg
    assert "Функциональность: всего 7" in svg and "<script" not in svg and "http" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "<caption>Просмотры по разделам и дням" in html
    assert f"<th scope=\"row\">{now.strftime('%d.%m.%Y')}</th><td>5</td>" in html
    assert "Запуски — 3" in html


def test_a_full_disk_fails_no_page_and_the_counts_come_later(built_project, disk):
    """The instance on a tiny tmpfs filled to the last byte (as tests/test_storage_faults.py):
    pages are served, the flush fails and keeps the counts, and writes them once there is
    space. Mounting needs root: skipped elsewhere."""
    from gate.factory import create_app
    from tests.helpers.project import make_config, populate

    root, _ = built_project
    app = create_app(make_config(root, disk.path / "instance"))
    gate = app.extensions["gate"]
    populate(gate.engine, gate.tariffs)
    c = app.test_client()
    assert login(c, "func@client.example").status_code == 303
    disk.fill()
    for _ in range(3):
        assert c.get(page_url("functionality"), headers=HTML).status_code == 200
    assert c.get(page_url("launches"), headers=HTML).status_code == 403
    assert gate.usage.flush(gate.engine) == 0  # the disk is full: kept in memory
    assert sum(gate.usage.pending().values()) == 4
    disk.free()
    assert gate.usage.flush(gate.engine) == 2
    [row] = _report(app, org="Сеть Функ", days=1)
    assert row["views"] == {"functionality": 3} and row["locked_hits"] == {"launches": 1}
    gate.engine.dispose()
    gate.counters.dispose()
