"""Pages per second, p99 latency and CPU per page, interleaved on the same page, each side set up
the way a user would run it:
- the standalone gate: `gate serve --workers <cores>` (granian, the fast path);
- the naive reference: bench/naive_gate.py (Flask, PyJWT, send_file) under `gunicorn -w <cores>`
  (gunicorn's default sync workers, as its documentation starts);
- edge mode: deploy/edge.sh (nginx serving the files, checking the ticket);
- plain nginx: the same nginx settings as edge mode's nginx.conf (types, charset, sendfile, open
  file cache, gzip, the same buffered access log), one static server with the same headers.
Every round logs in afresh (a session token lives 45 s) and sends the cookies in the order a
browser would. CPU per page is the servers' own CPU time (/proc/<pid>/schedstat of the whole
process tree) divided by the pages served: steadier than pages per second on a shared machine.
Targets: gate >= 3x naive; edge >= 0.95x plain nginx.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
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
from tests.helpers.ports import free_port  # noqa: E402,F401 (also bench.usage_bench's)

PY = sys.executable
BIN = Path(PY).parent
PROJECT = Path(__file__).resolve().parent.parent
PAGE = "/launches/generated-000/"
EMAIL, PASSWORD = "bench@example.ru", "bench-password-1"
def cores() -> int:
    return len(os.sched_getaffinity(0))


def summarize(results: dict, load_before: str, width: int) -> dict:
    """Medians of each side's rounds (pages/s, p99, CPU per page), printed with the load before
    and after and every round's pages/s; returns them by side."""
    summary = {name: {k: statistics.median(r[k] for r in runs) for k in ("rps", "p99", "cpu_us")}
               for name, runs in results.items()}
    print(f"  load before: {load_before}\n  load after:  {uptime()}")
    for name, s in summary.items():
        print(f"  {name:{width}s} {s['rps']:8.0f} pages/s  p99 {s['p99']:7.2f} ms  "
              f"CPU {s['cpu_us']:6.1f} us/page   rounds: "
              + " ".join(f"{r['rps']:.0f}" for r in results[name]))
    return summary


def stop_all(processes) -> None:
    """SIGTERM to each server's process group, then wait (killed after 20 s)."""
    processes = list(processes)
    for p in processes:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in processes:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def wait_up(url: str, seconds: float = 90):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def login(base: str) -> str:
    """Logs in through the form; the Cookie header a browser would send to a page after it
    (cookies in the order they were first set; kb_device is for /login only)."""
    import requests

    http = requests.Session()
    page = http.get(base + "/login", timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = http.post(base + "/login", allow_redirects=False, timeout=30,
                  data={"csrf_token": csrf, "email": EMAIL, "password": PASSWORD, "next": "/"})
    if r.status_code != 303:
        raise RuntimeError(f"login at {base} answered {r.status_code}")
    order = [line.split("=", 1)[0] for resp in (page, r)
             for line in resp.raw.headers.getlist("Set-Cookie")]
    jar = {c.name: c.value for c in http.cookies if c.path == "/"}
    return "; ".join(f"{name}={jar[name]}" for name in dict.fromkeys(order) if name in jar)


def tree(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += [c for c, parent in parents.items() if parent == p]
    return found


def cpu_ns(pids) -> int:
    """CPU time of the processes, every thread counted (granian serves from several)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(task.read_text().split()[0])
            except (OSError, ValueError):
                pass
    return total


def wrk(url: str, cookie: str, seconds: int, connections: int, pids=()) -> dict:
    before = cpu_ns(pids)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-H", f"Cookie: {cookie}", url],
                         capture_output=True, text=True, check=True).stdout
    used = cpu_ns(pids) - before
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"{url}: errors during the run:\n{out}")
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    pages = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p99": float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)],
            "cpu_us": used / max(pages, 1) / 1000}


def plain_nginx_conf(edge_conf: Path, run: Path, port: int, root: Path) -> str:
    """Edge mode's own nginx.conf up to its rules (the same settings, log and paths), then one
    plain static server with the same headers."""
    from gate.edge_config import security_header_lines

    text = edge_conf.read_text()
    common = text[:text.index('    include "')].replace(str(edge_conf.parent), str(run))
    headers = "\n".join(" " * 12 + line for line in (
        'add_header Cache-Control "private, no-cache" always;', "add_header Vary Cookie always;",
        *security_header_lines(production=False).splitlines()))
    return common + f"""
    server {{
        listen 127.0.0.1:{port} default_server;
        root "{root}";
        location / {{
            try_files $uri $uri/index.html =404;
{headers}
        }}
    }}
}}
"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(rounds: int = 7, seconds: int = 5, connections: int = 32) -> dict:
    procs, workers = {}, cores()
    load_before = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_corpus(tmp / "corpus")
        secret = secrets.token_hex(32)  # the gates' signing key, given to the naive gate too
        env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(tmp / "instance"),
               "GATE_MODE": "local", "NO_MKDOCS_2_WARNING": "1", "GATE_SECRET_KEY": secret}
        gate = [PY, "-m", "gate"]
        subprocess.run([*gate, "build"], env=env, check=True, capture_output=True)
        subprocess.run([*gate, "org", "add", "Bench", "--tariff", "start"], env=env, check=True,
                       capture_output=True)
        subprocess.run([*gate, "user", "add", EMAIL, "--org", "Bench", "--password-stdin"],
                       env=env, input=PASSWORD + "\n", check=True, capture_output=True, text=True)
        key = secret.encode().hex()
        ports = {name: free_port() for name in ("plain", "edge", "edge_gate", "gate", "naive")}
        run = tmp / "run"
        (run / "tmp").mkdir(parents=True)
        logs = open(tmp / "servers.log", "w")
        try:
            procs["edge"] = subprocess.Popen(["sh", str(PROJECT / "deploy/edge.sh")], env={
                **env, "EDGE_PORT": str(ports["edge"]), "GATE_PORT": str(ports["edge_gate"]),
                "EDGE_DIR": str(run / "edge"), "VENV_BIN": str(BIN)},
                stdout=logs, stderr=subprocess.STDOUT, start_new_session=True)
            # Every server in a session of its own: with the kernel's autogroup scheduling
            # (on by default) a session shares the CPU with others as one; servers started in
            # the bench's own session would share wrk's share.
            procs["gate"] = subprocess.Popen(
                [*gate, "serve", "--port", str(ports["gate"]), "--workers", str(workers)],
                env=env, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True)
            procs["naive"] = subprocess.Popen(
                [str(BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{ports['naive']}",
                 "bench.naive_gate:app"], cwd=PROJECT, stdout=logs, stderr=subprocess.STDOUT,
                env={**env, "NAIVE_SITE": str(root / "site"), "NAIVE_KEY": key},
                start_new_session=True)
            wait_up(f"http://127.0.0.1:{ports['edge']}/healthz")
            (run / "plain.conf").write_text(plain_nginx_conf(
                run / "edge" / "nginx.conf", run, ports["plain"], root / "site/editions/all"))
            procs["plain"] = subprocess.Popen(["nginx", "-c", str(run / "plain.conf"), "-g",
                                               "daemon off;"], stdout=logs, stderr=subprocess.STDOUT,
                                              start_new_session=True)
            sides = {"plain nginx": "plain", "edge mode": "edge", "gate": "gate", "naive": "naive"}
            for name, side in sides.items():
                wait_up(f"http://127.0.0.1:{ports[side]}/")
            results = {name: [] for name in sides}
            for i in range(rounds + 1):  # round 0 warms up
                edge_cookie = login(f"http://127.0.0.1:{ports['edge']}")
                gate_cookie = login(f"http://127.0.0.1:{ports['gate']}")
                cookies = {"plain": edge_cookie, "edge": edge_cookie, "gate": gate_cookie,
                           "naive": gate_cookie}
                for name, side in sides.items():
                    url = f"http://127.0.0.1:{ports[side]}{PAGE}"
                    if i == 0:
                        check = urllib.request.urlopen(urllib.request.Request(
                            url, headers={"Cookie": cookies[side]}), timeout=10)
                        if side == "edge" and check.headers.get("Server") == "kb-gate":
                            raise RuntimeError("edge mode passed the page to the gate")
                    pids = tree(procs[side].pid)
                    r = wrk(url, cookies[side], 1 if i == 0 else seconds, connections, pids)
                    if i:
                        results[name].append(r)
        finally:
            stop_all(procs.values())
            logs.close()
    print(f"http: {PAGE} (a 128 KB page) with a START session, wrk -t2 -c{connections}, {rounds} "
          f"interleaved rounds of {seconds}s, a fresh login each round, medians; {workers} cores")
    summary = summarize(results, load_before, width=12)
    g, n = summary["gate"], summary["naive"]
    e, p = summary["edge mode"], summary["plain nginx"]
    print(f"  gate / naive (gunicorn -w {workers}) = {g['rps'] / n['rps']:.2f}x pages/s, "
          f"{n['cpu_us'] / g['cpu_us']:.2f}x by CPU per page (target >= 3x)")
    print(f"  edge / plain nginx = {e['rps'] / p['rps']:.2f}x pages/s, "
          f"{p['cpu_us'] / e['cpu_us']:.2f}x by CPU per page (target >= 0.95x)")
    return summary


if __name__ == "__main__":
    main()
