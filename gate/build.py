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
                "gate/inline_scripts.py", "gate/change_notes.py")


# Sitemaps need absolute addresses: GATE_BASE_URL at build time, else the local address.
DEFAULT_SITE_URL = "http://127.0.0.1:8000/"


class BuildError(RuntimeError):
    pass


def _file_hashes(root: Path) -> dict[str, bytes]:
    """Path relative to the project -> SHA-256 of the file, for docs/ and every build input."""
    hashes = {}
    for top in ("docs", *BUILD_INPUTS):
        base = root / top
        paths = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for path in paths:
            if not path.exists() or "__pycache__" in path.parts:
                continue
            hashes[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).digest()
    return hashes


def edition_digest(hashes: dict, name: str, sections, site_url: str, sla: dict) -> str:
    """What one edition is built from: the build inputs, its own sections' and the public
    files, the addresses (not contents) of every other page (links to them point at their
    section's root), its sections, site URL and SLA words. Equal digests: equal editions."""
    from gate.sections import SECTIONS
    h = hashlib.sha256(json.dumps([name, sorted(sections), site_url, sla, _tool_versions()],
                                  sort_keys=True, ensure_ascii=False).encode())
    for rel, digest in sorted(hashes.items()):
        parts = rel.split("/")
        foreign = parts[0] == "docs" and len(parts) > 2 and parts[1] in SECTIONS \
            and parts[1] not in sections
        h.update(rel.encode() + b"\0" + (b"" if foreign else digest))
    return h.hexdigest()


def _tool_versions() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version
    found = []
    for package in ("mkdocs", "mkdocs-material", "pymdown-extensions", "Markdown", "pymorphy3"):
        try:
            found.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            found.append(package)
    return found


def source_digest(root: Path, hashes: dict | None = None) -> str:
    """A hash of everything the editions are built from (docs and site configuration)."""
    h = hashlib.sha256()
    for rel, digest in (hashes if hashes is not None else _file_hashes(Path(root))).items():
        h.update(rel.encode() + b"\0")
        h.update(digest)
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
    hashes = _file_hashes(root)
    digest = source_digest(root, hashes)
    started = time.perf_counter()
    site_url = site_url or DEFAULT_SITE_URL
    slas = {n: sla_phrases(tariffs, plan[n]) for n in plan}
    digests = {n: edition_digest(hashes, n, plan[n], site_url, slas[n]) for n in plan}
    previous = _previous_digests(site)
    # An edition whose inputs are unchanged is not built again: its files are linked over.
    kept = {n for n in plan if previous.get(n) == digests[n] and (site / "editions" / n).is_dir()}
    # Largest editions first, so the two cores finish together.
    order = sorted((n for n in plan if n not in kept), key=lambda n: -len(plan[n]))
    jobs = max(1, jobs or min(len(order), os.cpu_count() or 1))
    args = [(str(root), n, sorted(plan[n]), str(staging / "editions" / n), site_url,
             slas[n], synonyms) for n in order]
    if jobs == 1 or len(order) <= 1:
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
    # feeds of the editions built now only: a kept edition's feed came from the same inputs,
    # and its files are hard links to the served site's, never to be written through
    staging.mkdir(parents=True, exist_ok=True)  # nothing was built when every edition is kept
    _write_changes(root, staging, {n: plan[n] for n in order}, site_url)
    for n in sorted(kept):
        shutil.copytree(site / "editions" / n, staging / "editions" / n, copy_function=os.link)
    manifest = {
        "source_digest": digest,
        "tariffs_digest": tariffs_digest(tariffs),
        "editions": {n: sorted(s) for n, s in plan.items()},
        "edition_digests": digests,
        "built_at": int(time.time()),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    old = root / f"site.old-{os.getpid()}"
    if site.exists():
        site.rename(old)
    staging.rename(site)
    shutil.rmtree(old, ignore_errors=True)
    log(f"built {len(order)} editions ({', '.join(order) or 'none'})"
        + (f", kept {len(kept)} unchanged ({', '.join(sorted(kept))})" if kept else "")
        + f" in {time.perf_counter() - started:.1f}s")
    return manifest


def _write_changes(root: Path, staging: Path, plan: dict, site_url: str) -> None:
    """The authors' change notes: site/articles.json (all of them, never served) and each
    edition's Atom feed of its own articles' notes (gate.change_notes)."""
    from gate import change_notes
    articles = change_notes.read_articles(root / "docs")
    change_notes.write_articles(staging, articles)
    for name, sections in plan.items():
        change_notes.write_feed(staging / "editions" / name, change_notes.visible(articles, sections), site_url)


def _previous_digests(site: Path) -> dict:
    """The per-edition digests of the site built before, if any."""
    try:
        return json.loads((site / MANIFEST).read_text()).get("edition_digests") or {}
    except (OSError, ValueError, AttributeError):
        return {}


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
