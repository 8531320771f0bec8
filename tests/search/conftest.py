"""Fixtures of the search tests: the real project built once, and small editions of their own."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from gate import search
from gate.search.synonyms import SYNONYMS_FILE, load_synonyms
from tests.helpers.project import PASSWORD, PROJECT, make_config
from tests.helpers.search import PAGES


@pytest.fixture(scope="session")
def real_project(tmp_path_factory):
    """A copy of the project's docs, configuration, tariffs and synonyms, every edition built."""
    from gate.build import build_all

    root = tmp_path_factory.mktemp("real")
    shutil.copytree(PROJECT / "docs", root / "docs")
    for name in ("mkdocs.yml", "tariffs.yml", SYNONYMS_FILE):
        shutil.copy(PROJECT / name, root / name)
    os.symlink(PROJECT / "overrides", root / "overrides")
    os.symlink(PROJECT / "gate", root / "gate")
    manifest = build_all(root, root / "tariffs.yml", log=lambda *_: None)
    return root, manifest


@pytest.fixture(scope="module")
def real_app(real_project, tmp_path_factory):
    """The gate on the real project: staff (edition all) and an ended contract (edition none)."""
    from gate import accounts
    from gate.factory import create_app

    root, _ = real_project
    app = create_app(make_config(root, tmp_path_factory.mktemp("instance")))
    app.config.update(TESTING=True, SEARCH_RATE_LIMIT=(100_000, 1))
    with app.extensions["gate"].engine.begin() as conn:
        accounts.add_user(conn, "staff@vendor.example", PASSWORD, staff=True)
        accounts.add_org(conn, "Сеть Бывшая", "start", app.extensions["gate"].tariffs)
        accounts.end_org(conn, "Сеть Бывшая")  # logged in, no section: edition `none`
        accounts.add_user(conn, "ended@client.example", PASSWORD, org="Сеть Бывшая")
    return app


@pytest.fixture(scope="session")
def project_synonyms():
    """The project's own search-synonyms.yml."""
    return load_synonyms(PROJECT / SYNONYMS_FILE)


@pytest.fixture
def small_edition(tmp_path):
    """A factory: (pages, synonyms) -> the SearchIndex of an edition holding just those pages,
    written by the same write_index as `gate build` (Material's search_index.json imitated)."""
    made = []

    def make(pages: dict = PAGES, synonyms=None) -> search.SearchIndex:
        base = tmp_path / f"edition-{len(made)}"
        docs, entries = base / "docs", []
        for location, (title, sections, meta) in pages.items():
            entries.append({"location": location, "title": title, "text": ""})
            for i, (heading, text) in enumerate(sections):
                entries.append({"location": f"{location}#s{i}", "title": heading, "text": text})
            source = docs / ((location.rstrip("/") or "index") + ".md")
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_text("---\n" + yaml.safe_dump({"title": title, **meta}, allow_unicode=True)
                              + "---\n\nТекст.\n", encoding="utf-8")
        edition = base / "edition"
        (edition / "search").mkdir(parents=True)
        (edition / search.MATERIAL_INDEX).write_text(json.dumps({"config": {}, "docs": entries}))
        made.append(edition)
        return search.SearchIndex.load(search.write_index(edition, docs, "test", synonyms))

    return make


@pytest.fixture
def small(small_edition, project_synonyms):
    """The small corpus with the project's synonyms."""
    return small_edition(PAGES, project_synonyms)
