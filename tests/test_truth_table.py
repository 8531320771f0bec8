"""One truth table for "who may see what", checked against the gate (Python) and nginx.

The nginx side runs in a real nginx with the rules edge mode uses (gate.edge_config.rules for
every possible edition); a harness location answers with the variables they set for each
request: the section of the path, the ticket's edition and the folder nginx would serve from.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from gate import edge_config, edge_tickets
from gate.access import may_see
from gate.editions import edition_name
from gate.sections import SECTIONS, section_of_url
from tests.helpers.http import request
from tests.helpers.ports import free_port
from tests.helpers.processes import NGINX, NGINX_MISSING, listening, start

TABLE = json.loads((Path(__file__).parent / "data/access_truth_table.json").read_text())
ROWS = TABLE["rows"]
SEE = [r for r in ROWS if "may_see" in r]
EDITION = [r for r in ROWS if "edition" in r]
PATHS = [r for r in ROWS if "path" in r]


def test_the_table_covers_every_section_set():
    assert TABLE["sections_in_site_order"] == list(SECTIONS)
    sets = {frozenset(r["sections"]) for r in EDITION if r["edition"]}
    assert len(sets) == 2 ** len(SECTIONS)
    for s in sets:
        for section in [None, *SECTIONS]:
            assert any(frozenset(r["sections"]) == s and r["section"] == section for r in SEE)


# --- Python -----------------------------------------------------------------------------------

def test_python_may_see():
    for row in SEE:
        assert may_see(frozenset(row["sections"]), row["section"]) is row["may_see"], row


def test_python_edition_name():
    for row in EDITION:
        if row["edition"] is None:
            with pytest.raises(ValueError):
                edition_name(row["sections"])
        else:
            assert edition_name(row["sections"]) == row["edition"], row


def test_python_section_of_url():
    for row in PATHS:
        assert section_of_url(row["path"]) == row["section"], row


# --- nginx with edge mode's rules ---------------------------------------------------------------

CONF = """
worker_processes 1;
pid "{work}/nginx.pid";
error_log "{work}/error.log" info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path "{work}/body";
    proxy_temp_path "{work}/proxy";
    fastcgi_temp_path "{work}/fastcgi";
    uwsgi_temp_path "{work}/uwsgi";
    scgi_temp_path "{work}/scgi";
    include "{work}/rules.conf";
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "$kb_section|$kb_edition|$kb_target"; }}
    }}
}}
"""

SECRET = edge_tickets.ticket_secret(bytes(range(32)))
# every edition there can be: each set of sections, and public/none/all
EDITIONS = {"public": []}
EDITIONS.update({r["edition"]: r["sections"] for r in EDITION if r["edition"]})


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    if NGINX_MISSING:
        pytest.skip(NGINX_MISSING)
    work = tmp_path_factory.mktemp("rules")
    port = free_port()
    (work / "rules.conf").write_text(edge_config.rules(SECRET, EDITIONS))
    conf = work / "nginx.conf"
    conf.write_text(CONF.format(work=work, port=port))
    proc = start([NGINX, "-c", str(conf), "-g", "daemon off;"],
                 env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, ready=listening(port),
                 log=work / "nginx.out", seconds=20, what="nginx")
    try:
        def ask(path, cookies=None, method="GET", headers=None):
            """(section, edition, target) nginx decides for a request."""
            headers = dict(headers or {})
            if cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            r = request(port, path, method=method, headers=headers)
            assert r.status == 200, (path, r)
            return tuple(r.text.split("|"))

        yield ask
    finally:
        proc.stop(signal.SIGQUIT, timeout=10)


def _ticket(edition, exp=None, secret=SECRET):
    return edge_tickets.issue(secret, edition, exp if exp is not None else int(time.time()) + 45)


def _path_of(section):
    return "/" if section is None else f"/{section}/x/"


def test_nginx_may_see(nginx):
    """Every may_see row of a real section, for a visitor holding that edition's ticket."""
    checked = 0
    for row in SEE:
        if row["section"] is not None and row["section"] not in SECTIONS:
            continue  # not a section name nginx could see in a path (the Python rows cover it)
        edition = edition_name(row["sections"])
        cookies = {"kb_session": "s", "kb_edge": _ticket(edition)}
        got = nginx(_path_of(row["section"]), cookies)
        assert got[1] == edition, row
        assert got[2] == (edition if row["may_see"] else "gate"), row
        checked += 1
    assert checked == 16 * 5


def test_nginx_anonymous_visitors(nginx):
    for section in [None, *SECTIONS]:
        expected = "public" if may_see(frozenset(), section) else "gate"
        assert nginx(_path_of(section))[1:] == ("public", expected), section


def test_nginx_section_of_path(nginx):
    for row in PATHS:
        assert nginx(row["path"])[0] == (row["section"] or ""), row
    # unusual first segments go to the gate
    for path in ("/launch%C3%A9s/", "/laun%E2%84%AAches/", "/launches%5Cx/", "/x%01/"):
        assert nginx(path)[0] == "gate", path


def ticket_cases():
    """(description, kb_edge cookie value, the edition it opens or None)."""
    now = int(time.time())
    good = _ticket("launches+maintenance", now + 45)
    exp, edition, org, mac = good.split(".")
    return [
        ("valid", good, "launches+maintenance"),
        ("valid, of an organisation", edge_tickets.issue(SECRET, "all", now + 45, 4711), "all"),
        ("expired", _ticket("all", now - 2), None),
        ("other secret", _ticket("all", secret=edge_tickets.ticket_secret(b"x" * 32)), None),
        ("other edition, same mac", f"{exp}.all.{org}.{mac}", None),
        ("later expiry, same mac", f"{int(exp) + 1000}.{edition}.{org}.{mac}", None),
        ("other organisation, same mac", f"{exp}.{edition}.{int(org) + 1}.{mac}", None),
        ("organisation with a leading zero", f"{exp}.{edition}.0{org}.{mac}", None),
        ("no organisation (the tickets of before)", f"{exp}.{edition}.{mac}", None),
        ("changed mac", f"{exp}.{edition}.{org}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}", None),
        # the same digest spelled otherwise (bits nginx's base64 decoder ignores)
        ("non-canonical mac", f"{exp}.{edition}.{org}.{mac[:-1]}{chr(ord(mac[-1]) + 1)}", None),
        ("short mac", f"{exp}.{edition}.{org}.{mac[:-1]}", None),
        ("padded mac", f"{exp}.{edition}.{org}.{mac}==", None),
        ("path in the edition", f"{exp}.../all.{org}.{mac}", None),
        ("upper-case edition", f"{exp}.ALL.{org}.{mac}", None),
        ("two dots", f"{exp}..{edition}.{org}.{mac}", None),
        ("no expiry", f".{edition}.{org}.{mac}", None),
        ("empty", "", None),
        ("garbage", "garbage", None),
    ]


def test_nginx_checks_tickets_like_the_gate(nginx):
    for what, ticket, expected in ticket_cases():
        assert edge_tickets.edition_of(SECRET, ticket, time.time()) == expected, what
        got = nginx("/", {"kb_session": "s", "kb_edge": ticket})
        assert got[1:] == ((expected, expected) if expected else ("gate", "gate")), what


def test_nginx_request_variables(nginx):
    func = _ticket("functionality")
    # a session cookie without a ticket: the gate issues one
    assert nginx("/", {"kb_session": "s"})[1:] == ("gate", "gate")
    assert nginx("/launches/x/", {"kb_session": "s", "kb_edge": func})[1:] == ("functionality", "gate")
    assert nginx("/functionality/x/", {"other": "1", "kb_edge": func, "x": "y"})[2] == "functionality"
    assert nginx("/LAUNCHES/x", {"kb_edge": func})[2] == "gate"
    assert nginx("/Functionality/x", {"kb_edge": func})[2] == "functionality"
    for method, headers in (("POST", {}), ("PUT", {}), ("DELETE", {}), ("OPTIONS", {}),
                            ("GET", {"Authorization": "Bearer x"}),
                            ("GET", {"Authorization": "Basic eDp5"})):
        assert nginx("/functionality/x/", {"kb_edge": func}, method, headers)[2] == "gate", method
    assert nginx("/", {"kb_session": "", "kb_edge": ""})[1:] == ("public", "public")


def test_the_rules_list_exactly_what_may_see_allows():
    text = edge_config.rules(SECRET, EDITIONS)
    for edition, sections in EDITIONS.items():
        for section in SECTIONS:
            for method in ("GET", "HEAD"):
                listed = f'"{method}:{edition}:{section}" {edition};' in text
                assert listed is may_see(frozenset(sections), section), (edition, section)
    with pytest.raises(ValueError):
        edge_config.rules(SECRET, {"../x": []})
    with pytest.raises(ValueError):
        edge_config.rules("not hex", EDITIONS)
