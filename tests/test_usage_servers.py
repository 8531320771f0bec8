"""Usage per organisation with real servers: `gate serve` (standalone) and deploy/edge.sh (nginx
serving pages itself, its usage log read by the gate). Views, locked hits, searches and
requests appear in `gate usage --json` within the lag (a short GATE_USAGE_FLUSH here, not a
sleep of a minute); the usage log holds no person; with GATE_USAGE=0 nginx writes none."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest

from tests.helpers.http import HTML, WebClient
from tests.helpers.ports import free_port
from tests.helpers.processes import NGINX_MISSING, GateProcess, running_edge
from tests.helpers.project import page_url

LAG = 40  # seconds: nginx flushes its log every 5 s, the gate reads and writes every 0.5 s here


def _usage(cli, org: str) -> dict:
    [row] = json.loads(cli("usage", "--json", "--org", org, "--days", "1"))
    return row


def _wait_for(cli, org: str, want) -> dict:
    deadline = time.monotonic() + LAG
    while True:
        row = _usage(cli, org)
        if want(row) or time.monotonic() > deadline:
            return row
        time.sleep(0.5)


def test_standalone_gate_serve_counts_within_the_lag(built_project, tmp_path):
    root, _ = built_project
    gate = GateProcess(root, tmp_path / "instance", free_port(), tmp_path / "gate.log",
                       extra_env={"GATE_USAGE_FLUSH": "0.5"})
    gate.add_people("Сеть Функ", "solo-func", ["func@client.example"])
    gate.start()
    try:
        web = WebClient(gate.base, "func@client.example")
        web.login()
        for _ in range(3):
            assert web.http.get(gate.url(page_url("functionality")), headers=HTML).status_code == 200
        assert web.http.get(gate.url(page_url("launches")), headers=HTML).status_code == 403
        assert web.http.get(gate.url("/api/search?q=" + quote("маркер"))).status_code == 200
        row = _wait_for(gate.cli, "Сеть Функ", lambda r: r["searches"] == 1
                        and r["views"].get("functionality") == 3)
    finally:
        gate.stop()
    assert row["views"] == {"functionality": 3} and row["locked_hits"] == {"launches": 1}
    assert row["searches"] == 1 and row["people"] == 1 and row["active_people"] == 1


@pytest.mark.skipif(bool(NGINX_MISSING), reason=str(NGINX_MISSING))
def test_edge_mode_counts_what_nginx_served_from_its_log(built_project, tmp_path):
    root, _ = built_project
    with running_edge(root, tmp_path, GATE_USAGE_FLUSH="0.5") as e:
        cookies = e.login("func@client.example")
        for _ in range(3):
            r = e.get(page_url("functionality"), headers=HTML, cookies=cookies)
            assert r.status == 200 and not r.by_gate  # nginx served it: only its log knows
        asset = e.get("/functionality/", headers=HTML, cookies=cookies)
        assert asset.status == 200 and not asset.by_gate
        locked = e.get(page_url("launches"), headers=HTML, cookies=cookies)
        assert locked.status == 403 and locked.by_gate
        assert e.get("/api/search?q=" + quote("маркер"), cookies=cookies).status == 200
        row = _wait_for(e.cli, "Сеть Функ", lambda r: r["views"].get("functionality") == 4
                        and r["searches"] == 1)
        log = (tmp_path / "run" / "usage.log").read_text()
        start = _usage(e.cli, "Сеть Старт")
    assert row["views"] == {"functionality": 4}, row  # 3 articles and the section's page
    assert row["locked_hits"] == {"launches": 1} and row["searches"] == 1
    assert start["views"] == {}  # another organisation's count stays its own
    lines = log.splitlines()
    assert lines and all(line.split(" ")[1] == "200" for line in lines)
    assert "func@" not in log and "kb_session" not in log and "127.0.0.1" not in log


@pytest.mark.skipif(bool(NGINX_MISSING), reason=str(NGINX_MISSING))
def test_edge_mode_without_counting_writes_no_usage_log(built_project, tmp_path):
    root, _ = built_project
    with running_edge(root, tmp_path, GATE_USAGE="0") as e:
        cookies = e.login("func@client.example")
        assert e.get(page_url("functionality"), headers=HTML, cookies=cookies).status == 200
        conf = (tmp_path / "run" / "nginx.conf").read_text()
        assert "kb_usage" not in conf
        assert _usage(e.cli, "Сеть Функ")["views"] == {}
    assert not (tmp_path / "run" / "usage.log").exists()
