"""Requests per second and p99 latency, interleaved, same machine, same page:
plain nginx serving the edition statically; edge mode; the standalone gate; the naive gate."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.corpus import make_corpus  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402
from tests.helpers.processes import answers, start  # noqa: E402

PY = sys.executable
PROJECT = Path(__file__).resolve().parent.parent
THREADS = 8
STATIC_CONF = """
{user} worker_processes auto; pid {run}/static.pid; error_log {run}/static-error.log;
events {{ worker_connections 1024; }}
http {{ include /etc/nginx/mime.types; access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path {run}/t1; proxy_temp_path {run}/t2; fastcgi_temp_path {run}/t3;
  uwsgi_temp_path {run}/t4; scgi_temp_path {run}/t5;
  server {{ listen 127.0.0.1:{port}; root {root}; location / {{ try_files $uri $uri/index.html =404; }} }} }}
"""


def wrk(url: str, cookie: str, seconds: int, connections: int) -> tuple[float, float]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-H", f"Cookie: {cookie}", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"{url}: errors during the run:\n{out}")
    return rps, p99


def main(rounds: int = 3, seconds: int = 5, connections: int = 32) -> dict:
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_corpus(tmp / "corpus")
        env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(tmp / "instance"),
               "GATE_MODE": "local", "NO_MKDOCS_2_WARNING": "1"}
        subprocess.run([PY, "-m", "gate", "build"], env=env, check=True, capture_output=True)
        subprocess.run([PY, "-m", "gate", "org", "add", "Bench", "--tariff", "start"], env=env,
                       check=True, capture_output=True)
        subprocess.run([PY, "-m", "gate", "user", "add", "bench@example.ru", "--org", "Bench",
                        "--password-stdin"], env=env, input="bench-password-1\n", check=True,
                       capture_output=True, text=True)
        from gate import accounts, config, edge_tickets, identities, instance, tokens
        from gate.editions import edition_name
        from gate.tariffs import load_tariffs

        cfg = config.from_env(env)
        key = instance.signing_key(cfg)
        engine = instance.open_database(cfg)
        with engine.begin() as conn:
            uid = accounts.user_id_by_email(conn, "bench@example.ru")
            ident = accounts.identity(conn, uid, load_tariffs(cfg.tariffs_path), cfg.timezone)
            secret = identities.Identities(engine, key, {}, cfg.timezone).start_session(conn, uid)
        # A real session's token and its edition ticket (edge mode), valid for the whole run
        # (the gate's own live only 45 s).
        token = tokens.issue(key, sub=uid, org=ident.org, tariff=ident.tariff,
                             sections=ident.sections, typ="session", ttl=3600, sid=secret)
        ticket = edge_tickets.issue(edge_tickets.ticket_secret(key), edition_name(ident.sections),
                                    int(time.time()) + 3600)
        cookie = f"kb_session={token}; {edge_tickets.COOKIE}={ticket}"
        page = "/launches/generated-000/"
        ports = {name: free_port() for name in ("static", "edge", "edge_gate", "gate", "naive")}
        run = tmp / "run"
        for d in ("", "t1", "t2", "t3", "t4", "t5"):
            (run / d).mkdir(parents=True, exist_ok=True)
        (run / "static.conf").write_text(STATIC_CONF.format(
            user="user root;" if os.getuid() == 0 else "", run=run, port=ports["static"], root=root / "site/editions/all"))

        def up(name, port, command, **kw):
            """Started and answering at / (any status), its output in run/<name>.log."""
            try:
                procs.append(start(command, ready=answers(f"http://127.0.0.1:{port}/"),
                                   log=run / f"{name}.log", what=name, **kw))
            except RuntimeError as exc:
                raise RuntimeError(f"{name} did not come up: {exc}") from None

        try:
            up("static", ports["static"], ["nginx", "-c", str(run / "static.conf"), "-g", "daemon off;"])
            up("edge", ports["edge"], ["sh", str(PROJECT / "deploy/edge.sh")], env={
                **env, "EDGE_PORT": str(ports["edge"]), "GATE_PORT": str(ports["edge_gate"]),
                "EDGE_DIR": str(run / "edge"), "VENV_BIN": str(Path(PY).parent)})
            up("gate", ports["gate"], [PY, "-m", "gate", "serve", "--port", str(ports["gate"]),
                                       "--threads", str(THREADS)], env=env)
            up("naive", ports["naive"], [PY, str(PROJECT / "bench/naive_gate.py"), str(root / "site"),
                                         key.hex(), str(ports["naive"]), str(THREADS)], env=env)
            targets = {"static nginx": ports["static"], "edge mode": ports["edge"],
                       "standalone gate": ports["gate"], "naive gate": ports["naive"]}
            for name, port in targets.items():
                try:
                    probe = urllib.request.urlopen(urllib.request.Request(
                        f"http://127.0.0.1:{port}{page}", headers={"Cookie": cookie}), timeout=5)
                except urllib.error.HTTPError as exc:
                    raise RuntimeError(f"{name} answered {exc.code}: {exc.read()[:300]!r}") from None
                if name == "edge mode" and probe.headers.get("Server") == "kb-gate":
                    raise RuntimeError("edge mode passed the page to the gate: the ticket was refused")
                try:
                    wrk(f"http://127.0.0.1:{port}{page}", cookie, 1, connections)  # warm-up
                except RuntimeError as exc:
                    raise RuntimeError(f"{name}: {exc}") from None
            results = {name: [] for name in targets}
            for _ in range(rounds):
                for name, port in targets.items():
                    results[name].append(wrk(f"http://127.0.0.1:{port}{page}", cookie, seconds, connections))
        finally:
            for p in procs:
                p.stop(timeout=10)  # edge.sh stops its nginx and gate
    summary = {name: (statistics.median(r for r, _ in runs), statistics.median(p for _, p in runs))
               for name, runs in results.items()}
    print(f"http: {page} with a START session cookie, wrk -t2 -c{connections}, {rounds} interleaved "
          f"rounds of {seconds}s, medians:")
    for name, (rps, p99) in summary.items():
        print(f"  {name:16s} {rps:9.0f} req/s   p99 {p99:7.2f} ms")
    static, edge = summary["static nginx"][0], summary["edge mode"][0]
    gate, naive = summary["standalone gate"], summary["naive gate"]
    print(f"  edge / static nginx       = {edge / static:.2f}x (target >= 0.85x)")
    print(f"  standalone / naive gate   = {gate[0] / naive[0]:.2f}x (target >= 2x); "
          f"p99 {gate[1]:.1f} ms vs {naive[1]:.1f} ms")
    return summary


if __name__ == "__main__":
    main()
