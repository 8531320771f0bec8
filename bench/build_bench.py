"""All editions vs one plain `mkdocs build` of the same 300-article docs, interleaved."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.corpus import make_corpus  # noqa: E402

CHILD = r"""
import json, os, resource, sys, time
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
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024}))
"""


def run(root: Path, kind: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), kind], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(rounds: int = 3) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_corpus(Path(tmp) / "corpus")
        articles = sum(1 for p in (root / "docs").rglob("*.md") if p.name != "index.md")
        run(root, "plain")  # warm the file cache once
        ratios, plain, editions = [], [], []
        for _ in range(rounds):
            p, e = run(root, "plain"), run(root, "editions")
            plain.append(p)
            editions.append(e)
            ratios.append(e["seconds"] / p["seconds"])
        manifest = json.loads((root / "site/manifest.json").read_text())
    result = {
        "articles": articles,
        "editions": len(manifest["editions"]),
        "plain_s": statistics.median(x["seconds"] for x in plain),
        "editions_s": statistics.median(x["seconds"] for x in editions),
        "ratio": statistics.median(ratios),
        "plain_peak_mb": max(x["peak_mb"] for x in plain),
        "editions_peak_mb": max(x["peak_mb"] for x in editions),
    }
    print(f"build: {result['articles']} articles, {result['editions']} editions: all editions "
          f"{result['editions_s']:.1f}s vs one plain build {result['plain_s']:.1f}s = "
          f"{result['ratio']:.2f}x (target <= 1.5x); peak memory {result['editions_peak_mb']:.0f} MB "
          f"(parent + largest worker) vs {result['plain_peak_mb']:.0f} MB")
    return result


if __name__ == "__main__":
    main()
