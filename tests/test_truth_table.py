"""One truth table for "who may see what", checked against the gate (Python) and nginx (njs).

The njs side runs inside a real nginx with the JavaScript module, the same engine edge mode
uses: a small harness module imports deploy/kb.js and evaluates the rows it is sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import jwt
import pytest

from gate import tokens
from gate.access import may_see
from gate.editions import edition_name
from gate.sections import SECTIONS, section_of_url
from tests.test_edge import JS_MODULE, NGINX, NGINX_MISSING, free_port, port_open, request

PROJECT = Path(__file__).resolve().parent.parent
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


# --- njs inside nginx -------------------------------------------------------------------------

HARNESS = r"""
import kb from 'kb.js';

function one(c) {
    try {
        if (c.fn === 'maySee') { return {value: kb.maySee(c.sections, c.section)}; }
        if (c.fn === 'editionName') { return {value: kb.editionName(c.sections)}; }
        if (c.fn === 'sectionOf') {
            var s = kb.sectionOf(c.path);
            return {value: s === undefined ? 'GATE' : s};
        }
        if (c.fn === 'verifyToken') {
            return {value: kb.verifyToken(c.token, Buffer.from(c.key, 'hex'), c.now)};
        }
        return {error: 'unknown function ' + c.fn};
    } catch (e) {
        return {error: String(e)};
    }
}

function run(r) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(200, JSON.stringify(JSON.parse(r.requestText).map(one)));
}

export default {run};
"""

CONF = """
load_module "{module}";
worker_processes 1;
pid "{work}/nginx.pid";
error_log "{work}/error.log" info;
env KB_KEY;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path "{work}/body";
    proxy_temp_path "{work}/proxy";
    fastcgi_temp_path "{work}/fastcgi";
    uwsgi_temp_path "{work}/uwsgi";
    scgi_temp_path "{work}/scgi";
    js_path "{deploy}";
    js_import kb from "{deploy}/kb.js";
    js_import harness from "{work}/harness.js";
    js_set $kb_edition kb.edition;
    js_set $kb_target kb.target;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 4m;
        client_body_buffer_size 4m;
        location = /eval {{ js_content harness.run; }}
        location / {{ return 200 "$kb_edition|$kb_target"; }}
    }}
}}
"""

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def njs(tmp_path_factory):
    if NGINX_MISSING:
        pytest.skip(NGINX_MISSING)
    work = tmp_path_factory.mktemp("njs")
    port = free_port()
    (work / "harness.js").write_text(HARNESS)
    conf = work / "nginx.conf"
    conf.write_text(CONF.format(module=JS_MODULE, work=work, deploy=PROJECT / "deploy", port=port))
    if os.geteuid() == 0:  # workers would otherwise run as nobody
        conf.write_text("user root;\n" + conf.read_text())
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KB_KEY": KEY.hex()}
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not port_open(port):
            if proc.poll() is not None:
                pytest.fail(f"nginx did not start: {proc.stdout.read().decode()}"
                            f"{(work / 'error.log').read_text() if (work / 'error.log').exists() else ''}")
            assert time.monotonic() < deadline, "nginx did not listen within 20 s"
            time.sleep(0.1)

        def evaluate(cases):
            r = request(port, "/eval", method="POST", body=json.dumps(cases),
                        headers={"Content-Type": "application/json"})
            assert r.status == 200, (r, r.text, (work / "error.log").read_text())
            return json.loads(r.body)

        def variables(headers):
            r = request(port, "/launches/x/", headers=headers)
            return tuple(r.text.split("|"))

        evaluate.variables = variables
        evaluate.port = port
        yield evaluate
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_njs_may_see(njs):
    results = njs([{"fn": "maySee", "sections": r["sections"], "section": r["section"]} for r in SEE])
    for row, got in zip(SEE, results):
        assert got == {"value": row["may_see"]}, row


def test_njs_edition_name(njs):
    results = njs([{"fn": "editionName", "sections": r["sections"]} for r in EDITION])
    for row, got in zip(EDITION, results):
        if row["edition"] is None:
            assert "error" in got, row
        else:
            assert got == {"value": row["edition"]}, row


def test_njs_section_of_path(njs):
    results = njs([{"fn": "sectionOf", "path": r["path"]} for r in PATHS])
    for row, got in zip(PATHS, results):
        assert got == {"value": row["section"]}, row
    odd = njs([{"fn": "sectionOf", "path": p} for p in ("/launchés/", "/laun\u212aches/")])
    assert odd == [{"value": "GATE"}] * 2  # unusual first segments go to the gate


def _claims(**change):
    now = int(time.time())
    c = {"iss": tokens.ISSUER, "sub": "7", "org": "Сеть", "tariff": "pair",
         "sections": ["launches", "maintenance"], "iat": now, "exp": now + 45, "jti": "j",
         "typ": "session", "sid": "s"}
    c.update(change)
    return {k: v for k, v in c.items() if v is not None}


def _sign(claims, key=KEY, alg="HS256"):
    return jwt.encode(claims, key, algorithm=alg)


def _raw(header: dict, claims: dict, key=KEY) -> str:
    """A token signed with HMAC-SHA256 whatever its header says."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return signing + "." + b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())


def token_cases():
    """(description, token, edition nginx may serve or None = to the gate)."""
    now = time.time()
    good = tokens.issue(KEY, sub=7, org="Сеть", tariff="pair", sections=["maintenance", "launches"],
                        typ="session", ttl=45, sid="secret")
    head, payload, sig = good.split(".")
    cases = [("valid", good, "launches+maintenance")]
    for sections in ([], ["functionality"], list(SECTIONS), ["claim-desk", "launches"]):
        cases.append((f"sections {sections}",
                      tokens.issue(KEY, sub=1, org="o", tariff="t", sections=sections,
                                   typ="session", ttl=45, sid="s"), edition_name(sections)))
    cases += [
        ("expired", tokens.issue(KEY, sub=7, org="o", tariff="t", sections=[], typ="session",
                                 ttl=10, sid="s", now=now - 11), None),
        ("exp now", _sign(_claims(iat=int(now) - 5, exp=int(now))), None),
        ("other key", tokens.issue(b"x" * 32, sub=7, org="o", tariff="t", sections=[],
                                   typ="session", ttl=45, sid="s"), None),
        ("api token", tokens.issue(KEY, sub=7, org="o", tariff="t", sections=[], typ="api",
                                   ttl=45), None),
        ("other issuer", _sign(_claims(iss="someone")), None),
        ("unknown section", _sign(_claims(sections=["launches", "drafts"])), None),
        ("sections not a list", _sign(_claims(sections="launches")), None),
        ("no sid", _sign(_claims(sid=None)), None),
        ("no jti", _sign(_claims(jti=None)), None),
        ("sub not digits", _sign(_claims(sub="x7")), None),
        ("exp not an integer", _sign(_claims(exp=int(now) + 45.5)), None),
        ("iat in the future", _sign(_claims(iat=int(now) + 30, exp=int(now) + 60)), None),
        ("audience", _sign(_claims(aud="x")), None),
        ("header says HS512", _raw({"alg": "HS512", "typ": "JWT"}, _claims()), None),
        ("header without alg", _raw({"typ": "JWT"}, _claims()), None),
        # nginx accepts only the header exactly as the gate writes it (stricter costs a round trip)
        ("raw HS256, other header spelling", _raw({"alg": "HS256", "typ": "JWT"}, _claims()), None),
        ("alg none", jwt.encode(_claims(), None, algorithm="none"), None),
        ("tampered payload", f"{head}.{_sign(_claims(sections=list(SECTIONS))).split('.')[1]}.{sig}",
         None),
        ("cut signature", f"{head}.{payload}.{sig[:-1]}", None),
        ("padded signature", f"{head}.{payload}.{sig}=", None),
        ("two parts", f"{head}.{payload}", None),
        ("empty", "", None),
        ("too long", _sign(_claims(org="o" * 5000)), None),
    ]
    return cases


def test_njs_token_check_agrees_with_the_gate(njs):
    cases = token_cases()
    results = njs([{"fn": "verifyToken", "token": t, "key": KEY.hex(), "now": time.time()}
                   for _, t, _ in cases])
    for (what, token, expected), got in zip(cases, results):
        assert got == {"value": expected}, what
        try:  # nginx never accepts what the gate would refuse, and agrees on the edition
            claims = tokens.decode(KEY, token)
        except tokens.TokenError:
            claims = None
        if claims is None:
            assert expected is None, what
        elif expected is not None:
            assert edition_name(claims["sections"]) == expected, what


def test_njs_request_variables(njs):
    good = tokens.issue(KEY, sub=7, org="o", tariff="t", sections=["launches"], typ="session",
                        ttl=45, sid="s")
    func = tokens.issue(KEY, sub=7, org="o", tariff="t", sections=["functionality"],
                        typ="session", ttl=45, sid="s")
    # (headers) -> ($kb_edition, $kb_target) for GET /launches/x/
    assert njs.variables({}) == ("", "gate")  # anonymous at a gated page
    assert njs.variables({"Cookie": f"kb_session={good}"}) == ("launches", "launches")
    assert njs.variables({"Cookie": f"other=1; kb_session={good}; x=y"}) == ("launches", "launches")
    assert njs.variables({"Cookie": f"kb_session={func}"}) == ("functionality", "gate")
    assert njs.variables({"Cookie": "kb_session="}) == ("", "gate")
    assert njs.variables({"Cookie": "kb_session=nonsense"}) == ("gate", "gate")
    assert njs.variables({"Cookie": f"kb_session={good}; kb_session={good}"})[1] == "gate"
    assert njs.variables({"Cookie": f"KB_SESSION={good}"}) == ("", "gate")  # names are exact
    assert njs.variables({"Cookie": f"kb_session={good}", "Authorization": "Bearer x"})[1] == "gate"
    public = request(njs.port, "/index.html", headers={"Cookie": f"kb_session={func}"})
    assert public.text == "functionality|functionality"
    assert request(njs.port, "/index.html").text == "|public"
    assert request(njs.port, "/LAUNCHES/x", headers={"Cookie": f"kb_session={func}"}).text.endswith("|gate")
