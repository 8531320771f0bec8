"""Usage per organisation on PostgreSQL: the migration, flushes of several processes adding up
(the upsert), the report's queries, and a stopped database: pages are served meanwhile, the
counts wait in memory and are written once the server is back."""

from __future__ import annotations

import sqlalchemy as sa

from gate import accounts, usage
from gate.db import MIGRATIONS, migrate, schema_version, usage_daily
from gate.engine import make_engine
from gate.factory import create_app
from tests.helpers.http import login
from tests.helpers.project import make_config, page_url, populate

HTML = {"Accept": "text/html"}


def test_usage_on_postgresql_with_the_server_stopped_for_a_while(cluster, built_project, tmp_path):
    url = cluster.create_database("gate_usage")
    root, _ = built_project
    (tmp_path / "instance").mkdir()
    app = create_app(make_config(root, tmp_path / "instance", database_url=url))
    gate = app.extensions["gate"]
    populate(gate.engine, gate.tariffs)
    with gate.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() == len(MIGRATIONS)
        org = accounts.org_by_name(conn, "Сеть Функ").id
    assert {c["name"] for c in sa.inspect(gate.engine).get_columns("usage_daily")} == {
        "org_id", "day", "kind", "section", "n"}
    other = usage.Counter(gate.cfg.timezone)  # a second process on the same database
    other.page(org, "/functionality/x/")
    other.flush(gate.engine)
    c = app.test_client()
    assert login(c, "func@client.example").status_code == 303
    assert c.get(page_url("functionality"), headers=HTML).status_code == 200
    cluster.halt()
    try:
        for _ in range(2):  # the accounts snapshot answers; counting waits
            assert c.get(page_url("functionality"), headers=HTML).status_code == 200
        assert gate.usage.flush(gate.engine) == 0
        assert sum(gate.usage.pending().values()) == 3
    finally:
        cluster.resume()
    assert gate.usage.flush(gate.engine) == 1
    with gate.engine.connect() as conn:
        [row] = usage.report(conn, gate.cfg.timezone, org="Сеть Функ", days=1)
    assert row["views"] == {"functionality": 4} and row["active_people"] == 1
    again = make_engine(url)
    try:
        assert migrate(again) == len(MIGRATIONS)  # once only
        with again.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(usage_daily)).scalar() == 1
    finally:
        again.dispose()
    gate.engine.dispose()
