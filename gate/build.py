"""`gate build`: every edition of the site into site/editions/<name>/, plus site/manifest.json.

Editions are built side by side in worker processes (each a full, strict MkDocs build from
mkdocs.yml with `extra.gate.sections` set), into a fresh folder that replaces site/ only when
all of them succeeded, so a failed build never leaves a half-written site behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from gate.check import check_docs
from gate.editions import plan_editions
from gate.sla_text import phrases as sla_phrases
from gate.tariffs import load_tariffs

os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
MANIFEST = "manifest.json"
# What a build reads besides docs/: a change in any of them makes site/ stale.
BUILD_INPUTS = ("mkdocs.yml", "overrides", "gate/mkdocs_hooks.py", "gate/sections.py",
                "gate/search", "gate/sla_text.py", "gate/frontmatter.py", "search-synonyms.yml",
                "gate/inline_scripts.py")


# Sitemaps need absolute addresses: GATE_BASE_URL at build time, else the local address.
DEFAULT_SITE_URL = "http://127.0.0.1:8000/"


class BuildError(RuntimeError):
    pass


def source_digest(root: Path) -> str:
    """A hash of everything the editions are built from (docs and site configuration)."""
    h = hashlib.sha256()
    for top in ("docs", *BUILD_INPUTS):
        base = root / top
        paths = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for path in paths:
            if not path.exists() or "__pycache__" in path.parts:
                continue
            h.update(str(path.relative_to(root)).encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def tariffs_digest(tariffs) -> str:
    data = {k: {"title": t.title, "sections": sorted(t.sections), "sla": t.sla.source}
            for k, t in sorted(tariffs.items())}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def build_edition(root: str, name: str, sections: list[str], out_dir: str,
                  site_url: str | None = None, sla: dict | None = None,
                  synonyms=None) -> tuple[str, str | None]:
    """Builds one edition strictly; returns (name, error message or None).

    `sla` holds the words of the SLA placeholders for this edition (gate.sla_text.phrases): the
    tariffs reach the pages only through it, and tariffs_digest() covers them in the manifest.
    `synonyms` (gate.search.Synonyms, checked by build_all) go into the edition's search index.
    """
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    collect = _Collect()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(collect)
    try:
        overrides = {"site_url": site_url} if site_url else {}
        config = load_config(str(Path(root) / "mkdocs.yml"), site_dir=out_dir, strict=True,
                             **overrides)
        config.extra["gate"] = {"edition": name, "sections": list(sections), "sla": sla or {}}
        build(config)
        # the gate's search index, from this edition's own pages only (gate.search)
        from gate.search import write_index
        write_index(Path(out_dir), Path(config["docs_dir"]), name, synonyms)
        return name, None
    except (MkDocsException, Exception) as exc:  # noqa: B014 - report any build failure by name
        detail = "; ".join(dict.fromkeys(collect.messages)) or str(exc)
        return name, detail
    finally:
        logger.removeHandler(collect)


def build_all(root: Path, tariffs_path: Path, jobs: int | None = None, log=print,
              site_url: str | None = None) -> dict:
    """Builds every edition; returns the manifest. Raises BuildError with a clear message."""
    root = Path(root).resolve()
    if problems := check_docs(root):
        raise BuildError(f"{len(problems)} problem(s) in docs/:\n  " + "\n  ".join(problems))
    synonyms = _synonyms(root)
    tariffs = load_tariffs(tariffs_path)
    plan = plan_editions(tariffs)
    site = root / "site"
    staging = root / f"site.new-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    digest = source_digest(root)
    started = time.perf_counter()
    # Largest editions first, so the two cores finish together.
    order = sorted(plan, key=lambda n: -len(plan[n]))
    jobs = jobs or min(len(order), os.cpu_count() or 1)
    site_url = site_url or DEFAULT_SITE_URL
    args = [(str(root), n, sorted(plan[n]), str(staging / "editions" / n), site_url,
             sla_phrases(tariffs, plan[n]), synonyms) for n in order]
    if jobs == 1:
        results = [build_edition(*a) for a in args]
    else:
        import mkdocs.commands.build  # noqa: F401 - imported once, before the workers fork
        import material  # noqa: F401
        with ProcessPoolExecutor(jobs, mp_context=get_context("fork")) as pool:
            results = list(pool.map(build_edition, *zip(*args)))
    errors = [f"edition '{n}': {e}" for n, e in results if e]
    if errors:
        shutil.rmtree(staging, ignore_errors=True)
        raise BuildError("build failed:\n  " + "\n  ".join(errors))
    manifest = {
        "source_digest": digest,
        "tariffs_digest": tariffs_digest(tariffs),
        "editions": {n: sorted(s) for n, s in plan.items()},
        "built_at": int(time.time()),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    old = root / f"site.old-{os.getpid()}"
    if site.exists():
        site.rename(old)
    staging.rename(site)
    shutil.rmtree(old, ignore_errors=True)
    log(f"built {len(plan)} editions ({', '.join(order)}) in {time.perf_counter() - started:.1f}s")
    return manifest


def _synonyms(root: Path):
    """The project's search-synonyms.yml, checked before any edition is built."""
    from gate.search import SYNONYMS_FILE, SynonymsError, load_synonyms
    try:
        return load_synonyms(root / SYNONYMS_FILE, SYNONYMS_FILE)
    except SynonymsError as exc:
        raise BuildError(f"{len(exc.problems)} problem(s) in {SYNONYMS_FILE}:\n  "
                         + "\n  ".join(exc.problems)) from None


def check_fresh(root: Path, tariffs) -> dict:
    """The manifest of site/, or BuildError when site/ was built from other docs or tariffs."""
    path = Path(root) / "site" / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        raise BuildError(f"{path} is missing or unreadable: run `gate build` first") from None
    if manifest.get("tariffs_digest") != tariffs_digest(tariffs):
        raise BuildError("site/ was built from other tariffs than configured now: run `gate build`")
    if manifest.get("source_digest") != source_digest(Path(root)):
        raise BuildError("site/ was built from other docs than there are now: run `gate build`")
    return manifest
