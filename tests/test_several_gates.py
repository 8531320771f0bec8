"""Several gates, one service: two `gate serve` processes, each with its worker processes,
behind a real nginx running deploy/two-gates.conf, on one real PostgreSQL (two "hosts": each
gate its own instance folder, the same database and signing key) and on one SQLite file (one
host, one instance). Mail goes to a real SMTP server (aiosmtpd).

Checked across both gates: the failed-login limits (an attacker's guesses spread over both
gates and many addresses are limited per account; the owner still gets in), logout and
`gate user disable` within 60 s, unique request numbers and exactly one copy of each mail, a
rebuilt site in every worker, and a gate stopped or killed while nginx sends its share to the
other.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from gate.build import build_all
from tests.helpers.mail import MailSink, delivery_report
from tests.helpers.nginx import Nginx
from tests.helpers.ports import free_port, wait_until
from tests.helpers.processes import NGINX_MISSING, GateProcess, running_cluster
from tests.helpers.project import PASSWORD, make_project, marker
from tests.helpers.support import FormClient, Load

pytestmark = pytest.mark.skipif(NGINX_MISSING is not None, reason=str(NGINX_MISSING))

PROJECT = Path(__file__).resolve().parent.parent
ORG = "Сеть Несколько"
OWNER, LEAVER, DISABLED = "owner@several.example", "leaver@several.example", "off@several.example"
FILERS = [f"filer{i}@several.example" for i in range(4)]
PAGE = "/" + marker("launches", "url") + "/"
SUPPORT = "support@kb.test"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A marker project of this module's own (one test rebuilds it)."""
    root = make_project(tmp_path_factory.mktemp("several") / "project")
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    return root


@dataclass
class Stack:
    kind: str
    gates: list
    nginx: Nginx
    base: str  # nginx
    mail: MailSink

    def cli(self, *args, stdin=None) -> str:
        return self.gates[0].cli(*args, stdin=stdin)


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def stack(request, project, tmp_path_factory):
    work = tmp_path_factory.mktemp(request.param)
    mail = MailSink().start()
    cluster = None
    env = {"GATE_TRUSTED_PROXIES": "1"}  # nginx in front
    if request.param == "postgresql":
        cluster = running_cluster()
        env.update(GATE_DATABASE_URL=cluster.create_database("several"),
                   GATE_SECRET_KEY=secrets.token_hex(32))  # both hosts sign with one key
        instances = [work / "host-a", work / "host-b"]
    else:
        instances = [work / "instance"] * 2  # one host: one SQLite file, one key file
    gates = [GateProcess(project, instance, mail.port, work / f"gate-{name}.log",
                         support_email=SUPPORT, extra_env=env)
             for name, instance in zip("ab", instances)]
    nginx = None
    try:
        _add_people(gates[0].env)
        for gate in gates:
            gate.start()
        port = free_port()
        conf = (PROJECT / "deploy/two-gates.conf").read_text()
        conf = (conf.replace("@LISTEN@", f"127.0.0.1:{port}")
                .replace("@GATE_A@", f"127.0.0.1:{gates[0].port}")
                .replace("@GATE_B@", f"127.0.0.1:{gates[1].port}"))
        nginx = Nginx(work / "nginx", conf).start(port)
        yield Stack(request.param, gates, nginx, f"http://127.0.0.1:{port}", mail)
    finally:
        if nginx:
            nginx.stop()
        for gate in gates:
            gate.stop()
        mail.stop()
        if cluster:
            cluster.stop()


def _add_people(env: dict) -> None:
    """The organisation and its people, straight into the database (faster than the CLI)."""
    from gate import accounts, config, instance
    from gate.tariffs import load_tariffs

    cfg = config.from_env(env)
    engine = instance.open_database(cfg)
    try:
        with engine.begin() as conn:
            accounts.add_org(conn, ORG, "start", load_tariffs(cfg.tariffs_path))
            for email in (OWNER, LEAVER, DISABLED, *FILERS):
                accounts.add_user(conn, email, PASSWORD, org=ORG)
    finally:
        engine.dispose()


def login(base: str, email: str, password: str = PASSWORD, address: str | None = None,
          session: requests.Session | None = None) -> requests.Response:
    """The login form as a browser fills it; `address` as the proxy in front would name it."""
    http = session or requests.Session()
    page = http.get(base + "/login", timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return http.post(base + "/login", allow_redirects=False, timeout=30,
                     headers={"X-Forwarded-For": address} if address else {},
                     data={"csrf_token": csrf, "email": email, "password": password, "next": "/"})


def test_guesses_on_both_gates_share_the_limits_and_the_owner_still_gets_in(stack):
    a, b = (g.base for g in stack.gates)
    owner = requests.Session()  # the owner's browser: it gets the device cookie at login
    assert login(a, OWNER, address="192.0.2.50", session=owner).status_code == 303
    # ten wrong passwords a minute from ten addresses, half on each gate
    for i in range(10):
        r = login((a, b)[i % 2], OWNER, "wrong-password-1", address=f"203.0.113.{i + 1}")
        assert r.status_code == 401, (i, r.status_code)
    for gate in (a, b):
        r = login(gate, OWNER, PASSWORD, address="203.0.113.99")  # anybody else: blocked
        assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 60
    # the owner: from their browser on a new network, and from their known address
    assert login(b, OWNER, address="198.51.100.7", session=owner).status_code == 303
    assert login(a, OWNER, address="192.0.2.50").status_code == 303

    # five a minute from one address on one account, whichever gate answers
    codes = [login((a, b)[i % 2], LEAVER, "wrong-password-1", address="203.0.113.150").status_code
             for i in range(6)]
    assert codes == [401] * 5 + [429]
    # (the other limits are the same code with the same table: tests/test_throttle.py)


def _refused_everywhere(stack, cookies) -> bool:
    for token in cookies:
        for gate in stack.gates:
            r = requests.get(gate.base + PAGE, cookies={"kb_session": token}, timeout=30,
                             allow_redirects=False)
            if r.status_code != 401:
                return False
    return True


def test_logout_and_disable_reach_both_gates_within_60_seconds(stack):
    leaver, off = requests.Session(), requests.Session()
    assert login(stack.base, LEAVER, session=leaver).status_code == 303
    assert login(stack.base, DISABLED, session=off).status_code == 303
    copies = [leaver.cookies["kb_session"], off.cookies["kb_session"]]
    for token in copies:
        for gate in stack.gates:
            assert requests.get(gate.base + PAGE, cookies={"kb_session": token},
                                timeout=30).status_code == 200
    started = time.monotonic()
    r = leaver.post(stack.base + "/logout", headers={"Origin": stack.base}, allow_redirects=False,
                    timeout=30)
    assert r.status_code == 303
    stack.cli("user", "disable", DISABLED)
    wait_until(lambda: _refused_everywhere(stack, copies), 60, interval=1,
               what="the logged-out and the disabled person's tokens refused by both gates")
    assert time.monotonic() - started <= 60


def test_requests_filed_through_both_get_unique_numbers_and_each_mail_goes_once(stack):
    clients = [FormClient(stack.base, email, PASSWORD, timeout=60) for email in FILERS]
    load = Load(clients, target=100).start()
    load.wait_acked(100, timeout=300)
    load.join(60)
    numbers = list(load.acked)
    assert len(numbers) == len(set(numbers)) == 100
    assert not load.http_errors()
    # both gates took requests (nginx names the upstream of each)
    served = {line.split()[-1] for line in stack.nginx.access_log()
              if line.startswith("POST /support/new 303")}
    assert served == {f"127.0.0.1:{g.port}" for g in stack.gates}
    wait_until(lambda: len(stack.mail.snapshot()) >= 200, 180, interval=0.5,
               what="both mails of 100 requests")
    time.sleep(5)  # four outbox workers: a second copy would show up now
    report = delivery_report(stack.mail, numbers, SUPPORT, load.requester_of())
    assert not report["duplicates"] and not report["missing"]
    assert report["once"] == set(numbers)
    assert max(stack.mail.by_id().values()) == 1


def _workers(pid: int) -> list[int]:
    """The worker processes a gate's master has forked (its children)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_rebuilt_site_reaches_every_worker_of_both_gates(stack, project):
    if stack.kind != "sqlite":
        pytest.skip("the site is the same whatever the database: checked once, on SQLite")
    article = project / "docs" / (marker("launches", "url") + ".md")
    article.write_text(article.read_text() + "\nНовыйабзацпослесборки.\n")
    out = subprocess.run([sys.executable, "-m", "gate", "build"], env=stack.gates[0].env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr

    def everywhere():  # fresh connections, so each worker of each gate answers some
        return all("Новыйабзацпослесборки" in requests.get(
            gate.base + PAGE, cookies=owner, headers={"Connection": "close"}, timeout=30).text
            for gate in stack.gates for _ in range(12))

    session = requests.Session()
    assert login(stack.base, OWNER, address="192.0.2.50", session=session).status_code == 303
    owner = {"kb_session": session.cookies["kb_session"]}
    wait_until(everywhere, 30, interval=0.5, what="the rebuilt page from every worker")


def test_a_stopped_or_killed_gate_takes_its_workers_and_nginx_uses_the_other(stack):
    if stack.kind != "sqlite":
        pytest.skip("process handling is the same whatever the database: checked once, on SQLite")
    b = stack.gates[1]
    workers = _workers(b.running.process.pid)
    assert len(workers) == 2  # --workers defaults to the number of cores (2 here)
    b.stop()  # SIGTERM: the master stops its workers, then itself
    assert b.running.process.returncode is not None and not any(_alive(w) for w in workers)
    for _ in range(6):  # nginx leaves the stopped gate out and answers from the other
        assert requests.get(stack.base + "/healthz", timeout=30).status_code == 200
    b.start()
    workers = _workers(b.running.process.pid)
    b.running.process.send_signal(signal.SIGKILL)  # no shutdown code runs in the master
    b.running.process.wait(10)
    wait_until(lambda: not any(_alive(w) for w in workers), 10,
               what="the killed master's workers gone")
    b.start()  # on the same port: nothing of the old one holds it
    assert requests.get(b.base + "/healthz", timeout=30).status_code == 200
