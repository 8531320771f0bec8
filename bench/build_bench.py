"""All editions vs one plain `mkdocs build` of the same docs (300 and 1 000 articles), cold:
interleaved rounds, each editions build from scratch (no previous site, so every edition's
inputs count as changed). Peak memory is that of the whole process tree (the build and its
workers together), sampled every 50 ms: the sum of RSS, and the sum of PSS (shared pages
counted once, fair to forked workers). Also the time of a rebuild with nothing changed (every
edition kept). Target: editions <= 1.1x the plain build; memory reported (aim: < 3x).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.corpus import make_corpus  # noqa: E402

TARGET = 1.1
CHILD = r"""
import json, os, sys, time
os.environ["NO_MKDOCS_2_WARNING"] = "1"
root, kind = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if kind == "plain":
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    build(load_config(os.path.join(root, "mkdocs.yml"), site_dir=os.path.join(root, "plain-site")))
else:
    from gate.build import build_all
    build_all(root, os.path.join(root, "tariffs.yml"), log=lambda *a: None)
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
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


def _memory(pids) -> tuple[int, int]:
    """Sum of RSS and of PSS (kB) of the processes."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return rss, pss


def run(root: Path, kind: str) -> dict:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), kind],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_rss = peak_pss = 0
    while proc.poll() is None:
        rss, pss = _memory(_tree(proc.pid))
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.05)
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{kind} build failed:\n{err[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "rss_mb": peak_rss / 1024, "pss_mb": peak_pss / 1024}


def measure(articles: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_corpus(Path(tmp) / "corpus", articles=articles)
        run(root, "plain")  # warm the file cache once
        plain, editions = [], []
        for _ in range(rounds):
            plain.append(run(root, "plain"))
            shutil.rmtree(root / "site", ignore_errors=True)  # cold: nothing to keep
            editions.append(run(root, "editions"))
        unchanged = run(root, "editions")  # nothing changed: every edition kept
        manifest = json.loads((root / "site/manifest.json").read_text())
    ratios = [e["seconds"] / p["seconds"] for p, e in zip(plain, editions)]
    return {
        "articles": articles, "editions": len(manifest["editions"]),
        "plain_s": statistics.median(x["seconds"] for x in plain),
        "editions_s": statistics.median(x["seconds"] for x in editions),
        "ratio": statistics.median(ratios), "ratios": ratios,
        "unchanged_s": unchanged["seconds"],
        "plain_rss": max(x["rss_mb"] for x in plain), "plain_pss": max(x["pss_mb"] for x in plain),
        "editions_rss": max(x["rss_mb"] for x in editions),
        "editions_pss": max(x["pss_mb"] for x in editions),
    }


def main(rounds: int = 3, sizes=(300, 1000)) -> list[dict]:
    results = []
    for articles in sizes:
        r = measure(articles, rounds)
        results.append(r)
        print(f"build, {r['articles']} articles, {r['editions']} editions, cold, {rounds} interleaved "
              f"rounds (medians): all editions {r['editions_s']:.1f}s vs one plain build "
              f"{r['plain_s']:.1f}s = {r['ratio']:.2f}x (target <= {TARGET}x; rounds "
              f"{', '.join(f'{x:.2f}' for x in r['ratios'])})", flush=True)
        print(f"  peak memory of the whole build: PSS {r['editions_pss']:.0f} MB vs "
              f"{r['plain_pss']:.0f} MB = {r['editions_pss'] / r['plain_pss']:.1f}x, RSS "
              f"{r['editions_rss']:.0f} MB vs {r['plain_rss']:.0f} MB = "
              f"{r['editions_rss'] / r['plain_rss']:.1f}x (aim < 3x)", flush=True)
        print(f"  rebuild with nothing changed: {r['unchanged_s']:.1f}s (every edition kept)",
              flush=True)
    return results


if __name__ == "__main__":
    main()
