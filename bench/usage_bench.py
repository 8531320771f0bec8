"""Counting usage per organisation costs pages no throughput: page rate with counting on and
off (GATE_USAGE=1 / 0), standalone (`gate serve`, the fast path counting in memory) and edge
mode (deploy/edge.sh, nginx writing its buffered usage log, the gate reading it), all four
servers at once, interleaved rounds on the same page, a fresh login each round, medians, CPU
per page beside pages per second, and the in-process cost of one count against the CPU a
page takes. Target: on / off >= 0.95 in both modes. At the end the
counts of the "on" sides are checked to have reached the database (`gate usage`)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.corpus import make_corpus  # noqa: E402
from bench.http_bench import (BIN, EMAIL, PAGE, PASSWORD, PROJECT, PY, cores, free_port,  # noqa: E402
                              login, stop_all, summarize, tree, uptime, wait_up, wrk)

SIDES = ("gate, counting on", "gate, counting off", "edge, counting on", "edge, counting off")


def _start(env: dict, side: str, ports: dict, run: Path, logs, workers: int):
    usage = "1" if "on" in side.split(", ")[1] else "0"
    settings = {**env, "GATE_USAGE": usage}
    if side.startswith("edge"):
        return subprocess.Popen(["sh", str(PROJECT / "deploy/edge.sh")], env={
            **settings, "EDGE_PORT": str(ports[side]), "GATE_PORT": str(ports[side + " gate"]),
            "EDGE_DIR": str(run / side.replace(", ", "-").replace(" ", "-")), "VENV_BIN": str(BIN)},
            stdout=logs, stderr=subprocess.STDOUT, start_new_session=True)
    return subprocess.Popen([PY, "-m", "gate", "serve", "--port", str(ports[side]), "--workers",
                             str(workers)], env=settings, stdout=logs, stderr=subprocess.STDOUT,
                            start_new_session=True)


def main(rounds: int = 5, seconds: int = 4, connections: int = 32) -> dict:
    procs, workers = {}, cores()
    load_before = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_corpus(tmp / "corpus")
        env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(tmp / "instance"),
               "GATE_MODE": "local", "NO_MKDOCS_2_WARNING": "1",
               "GATE_SECRET_KEY": secrets.token_hex(32)}
        gate = [PY, "-m", "gate"]
        subprocess.run([*gate, "build"], env=env, check=True, capture_output=True)
        subprocess.run([*gate, "org", "add", "Bench", "--tariff", "start"], env=env, check=True,
                       capture_output=True)
        subprocess.run([*gate, "user", "add", EMAIL, "--org", "Bench", "--password-stdin"],
                       env=env, input=PASSWORD + "\n", check=True, capture_output=True, text=True)
        ports = {name: free_port() for side in SIDES for name in (side, side + " gate")}
        run = tmp / "run"
        run.mkdir()
        logs = open(tmp / "servers.log", "w")
        results = {side: [] for side in SIDES}
        try:
            for side in SIDES:
                procs[side] = _start(env, side, ports, run, logs, workers)
            for side in SIDES:
                wait_up(f"http://127.0.0.1:{ports[side]}/healthz")
            for i in range(rounds + 1):  # round 0 warms up
                for side in SIDES:
                    base = f"http://127.0.0.1:{ports[side]}"
                    cookie = login(base)
                    r = wrk(base + PAGE, cookie, 1 if i == 0 else seconds, connections,
                            tree(procs[side].pid))
                    if i:
                        results[side].append(r)
            time.sleep(12)  # nginx's log flush (5 s) and a housekeeping tick (10 s)
            counted = json.loads(subprocess.run([*gate, "usage", "--json", "--org", "Bench",
                                                 "--days", "1"], env=env, check=True,
                                                capture_output=True, text=True).stdout)[0]
        finally:
            stop_all(procs.values())
            logs.close()
    print(f"usage counting: {PAGE} with a START session, wrk -t2 -c{connections}, {rounds} "
          f"interleaved rounds of {seconds}s, medians; {workers} cores")
    summary = summarize(results, load_before, width=20)
    for mode in ("gate", "edge"):
        on, off = summary[f"{mode}, counting on"], summary[f"{mode}, counting off"]
        print(f"  {mode}: counting on / off = {on['rps'] / off['rps']:.3f}x pages/s, "
              f"{off['cpu_us'] / on['cpu_us']:.3f}x by CPU per page (target >= 0.95x)")
    print(f"  counted views (both 'on' sides together, the 'off' sides add none): "
          f"{counted['views']}")
    cost = counting_cost()
    print(f"  the count itself (gate.usage.Counter.page, in process): {cost:.2f} us per page = "
          f"{cost / summary['gate, counting off']['cpu_us'] * 100:.1f}% of the gate's CPU per page "
          "(steadier than pages/s on a shared machine)")
    return summary


def counting_cost(n: int = 200_000) -> float:
    """Microseconds one counted page view costs the fast path."""
    import timeit
    from zoneinfo import ZoneInfo

    from gate.usage import Counter

    counter = Counter(ZoneInfo("Europe/Moscow"))
    spent = timeit.timeit(lambda: counter.page(1, PAGE), number=n)
    empty = timeit.timeit(lambda: None, number=n)
    return (spent - empty) / n * 1e6


if __name__ == "__main__":
    main()
