"""`make bench`: every benchmark in one run, on this machine, printing ratios and p99s."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# module -> what it measures; each has main() and prints its own figures
BENCHES = [
    ("bench.build_bench", "all editions vs one plain build (300 and 1 000 articles, cold)"),
    ("bench.http_bench", "gate --workers=cores vs naive gate under gunicorn; edge vs plain nginx"),
    ("bench.search_eval", "search quality (top-1/top-3) and latency"),
    ("bench.soak", "support requests: 8 clients, 200 requests, kill -9, SMTP outage"),
    ("bench.console_bench", "staff console: /staff/orgs/ with 2 000 organisations, 20 000 people"),
    ("bench.sso_bench", "client portal handoff (/sso/jwt) p50/p99 vs a password login, in process"),
    ("bench.usage_bench", "usage per organisation: pages/s with counting on vs off, gate and edge"),
]


def main(only: list[str]) -> int:
    failed = 0
    print("machine:", os.cpu_count(), "cores;", subprocess.run(["uptime"], capture_output=True,
                                                              text=True).stdout.strip(), flush=True)
    for module, what in BENCHES:
        if only and not any(o in module for o in only):
            continue
        print(f"\n== {module}: {what}", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(module).main()
        except Exception as exc:  # report and go on with the other benchmarks
            failed += 1
            print(f"!! {module} failed: {exc}", flush=True)
        print(f"   ({time.perf_counter() - started:.0f}s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
