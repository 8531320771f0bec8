"""Search quality and latency: the client questions of tests/data through GET /api/search.

Builds the real project (docs/, mkdocs.yml, tariffs.yml, search-synonyms.yml) into a temporary copy, then asks every
question as staff (edition `all`) and anonymously (edition `public`, public questions only) and
prints top-1 / top-3 per question set, for two sets apart: the tuning set
(tests/data/questions-*.yml, which the ranking was tuned on) and the held-out set
(tests/data/heldout/, written by someone else and never tuned on). A result counts for its
article whether it points at the page or into it (`/page/#anchor`); for the held-out questions
that name the heading of their answer (`anchor:`), the share whose article's result points at
exactly that heading is printed too. Latency: p50 / p99 of /api/search through the Flask test
client, for the questions and for the prefixes a search box sends while a question is typed,
plus the engine alone (in process). With --url, latency is measured against a running gate
instead (optionally with --token from `gate token`), paced under the per-client rate limit.

    .venv/bin/python bench/search_eval.py [--url http://127.0.0.1:8000 [--token T]] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
PROJECT = Path(__file__).resolve().parent.parent


TUNING, HELDOUT = PROJECT / "tests/data", PROJECT / "tests/data/heldout"


def load_questions(folder: Path = TUNING):
    """Question set name -> [(question, expected article, expected anchor or None)]."""
    import yaml
    sets = {}
    for path in sorted(folder.glob("questions-*.yml")):
        sets[path.stem.removeprefix("questions-")] = [
            (item["q"], item["expect"], item.get("anchor"))
            for item in yaml.safe_load(path.read_text(encoding="utf-8"))]
    return sets


def build_copy(root: Path) -> None:
    from gate.build import build_all
    shutil.copytree(PROJECT / "docs", root / "docs")
    shutil.copy(PROJECT / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copy(PROJECT / "tariffs.yml", root / "tariffs.yml")
    shutil.copy(PROJECT / "search-synonyms.yml", root / "search-synonyms.yml")
    os.symlink(PROJECT / "overrides", root / "overrides")
    os.symlink(PROJECT / "gate", root / "gate")
    build_all(root, root / "tariffs.yml", log=lambda *_: None)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def typed_prefixes(question: str):
    """What a search box sends while the question is typed (one query per word typed on)."""
    words = question.split()
    return [" ".join(words[:i]) + (words[i][:3] if i < len(words) else "")
            for i in range(1, len(words) + 1)]


def rank_of(locations: list[str], expected: str, anchor: str | None = None):
    """(rank of the first result for the expected article, whether that result points at
    `anchor`); a result counts for its article whether it points at it or into it."""
    pages = [loc.partition("#")[0] for loc in locations]
    if expected not in pages:
        return None, False
    i = pages.index(expected)
    return i + 1, anchor is not None and locations[i] == f"{expected}#{anchor}"


def evaluate(ask, sets, edition_has) -> list[str]:
    lines, misses = [], []
    n = n1 = n3 = na = nh = 0
    for name, items in sets.items():
        k = a = b = 0
        for q, expected, anchor in items:
            if not edition_has(expected):
                continue
            locations = [r["location"] for r in ask(q)]
            rank, at_heading = rank_of(locations, expected, anchor)
            k += 1
            a += rank == 1
            b += rank is not None and rank <= 3
            if anchor:
                na += 1
                nh += at_heading and rank <= 3
            if rank is None or rank > 3:
                misses.append(f"      miss: {q!r} -> {expected}, got {locations[:3]}")
        if k:
            lines.append(f"    {name:14} {k:3} questions   top-1 {a / k:5.1%}   top-3 {b / k:5.1%}")
            n, n1, n3 = n + k, n1 + a, n3 + b
    if n:
        lines.append(f"    {'all sets':14} {n:3} questions   top-1 {n1 / n:5.1%}   top-3 {n3 / n:5.1%}")
    if na:
        lines.append(f"    {'at the heading':14} {na:3} questions with an anchor: the article's "
                     f"result points at it in {nh / na:5.1%}")
    return lines + misses


def latency_lines(label, timings):
    ms = [t * 1000 for t in timings]
    return (f"    {label:38} n={len(ms):5}  p50 {percentile(ms, 50):6.2f} ms   "
            f"p99 {percentile(ms, 99):6.2f} ms   max {max(ms):6.2f} ms")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running gate to measure latency against")
    parser.add_argument("--token", help="Bearer token for --url (gate token EMAIL)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over all questions (default 5)")
    args = parser.parse_args(argv if argv is not None else [])
    sets, heldout = load_questions(TUNING), load_questions(HELDOUT)
    everything = [q for group in (sets, heldout) for items in group.values() for q, _, _ in items]

    from gate import accounts, search
    from gate.factory import create_app
    from gate.config import Config

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory(prefix="kb-search-eval-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        started = time.perf_counter()
        build_copy(root)
        print(f"  built the real project's editions in {time.perf_counter() - started:.1f}s")
        instance = Path(tmp) / "instance"
        app = create_app(Config(mode="local", root=root, tariffs_path=root / "tariffs.yml",
                                instance=instance,
                                database_url=f"sqlite:///{instance / 'gate.sqlite3'}"))
        app.config.update(TESTING=True, SEARCH_RATE_LIMIT=(10**9, 1))
        with app.extensions["gate"].engine.begin() as conn:
            accounts.add_user(conn, "bench-staff@vendor.example", "bench-password-123456", staff=True)
        staff = app.test_client()
        page = staff.get("/login").get_data(as_text=True)
        import re
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        staff.post("/login", data={"csrf_token": csrf, "email": "bench-staff@vendor.example",
                                   "password": "bench-password-123456", "next": "/"})
        anonymous = app.test_client()

        def asker(client):
            def ask(q):
                r = client.get("/api/search", query_string={"q": q})
                assert r.status_code == 200, (q, r.status_code, r.get_data(as_text=True))
                return r.get_json()["results"]
            return ask

        started = time.perf_counter()
        asker(staff)("касса")  # loads the index and the analyzer
        first = time.perf_counter() - started

        def pages_of(edition):
            index = search.SearchIndex.load(root / "site/editions" / edition / search.INDEX_FILE)
            return {d["location"] for d in index.docs}

        for label, questions in (("tuning set", sets), ("held-out set", heldout)):
            print(f"  quality through /api/search, {label}, edition all (staff):")
            print("\n".join(evaluate(asker(staff), questions, pages_of("all").__contains__)))
            print(f"  quality through /api/search, {label}, edition public (anonymous):")
            print("\n".join(evaluate(asker(anonymous), questions, pages_of("public").__contains__)))

        print(f"  latency (first query, loading index and analyzer: {first * 1000:.0f} ms):")
        typed = [p for q in everything for p in typed_prefixes(q)]
        for label, queries in (("questions, Flask test client", everything),
                               ("typing prefixes, Flask test client", typed)):
            timings = []
            for _ in range(args.rounds):
                for q in queries:
                    t = time.perf_counter()
                    staff.get("/api/search", query_string={"q": q})
                    timings.append(time.perf_counter() - t)
            print(latency_lines(label, timings))
        index = search.SearchIndex.load(root / "site/editions/all" / search.INDEX_FILE).prepare()
        timings, cpu = [], []
        for _ in range(args.rounds):
            for q in everything + typed:
                t, c = time.perf_counter(), time.thread_time()
                index.search(q)
                cpu.append(time.thread_time() - c)
                timings.append(time.perf_counter() - t)
        print(latency_lines("engine alone (in process)", timings))
        # the CPU time of each search: what it costs without other processes taking the cores
        # (the wall-clock figures above include waiting for a core on a loaded machine)
        print(latency_lines("engine alone, CPU time per search", cpu)
              + f"   (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        if args.url:
            headers = {"Accept": "application/json"}
            if args.token:
                headers["Authorization"] = f"Bearer {args.token}"
            timings, refused = [], 0
            for _ in range(args.rounds):
                for q in everything:
                    time.sleep(10 / 29)  # under the gate's per-client limit (30 in 10 s)
                    url = args.url.rstrip("/") + "/api/search?" + urllib.parse.urlencode({"q": q})
                    t = time.perf_counter()
                    try:
                        urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10).read()
                    except urllib.error.HTTPError as exc:
                        refused += exc.code == 429
                    timings.append(time.perf_counter() - t)
            print(latency_lines(f"questions, {args.url}", timings)
                  + (f"   ({refused} answered 429: rate limit)" if refused else ""))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"  peak memory of this process: {rss / 1024:.0f} MB (before the search: {rss_before / 1024:.0f} MB)")


if __name__ == "__main__":
    main(sys.argv[1:])
