"""Shared fixtures: a temporary project with marker articles, built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gate.sections import SECTIONS

PROJECT = Path(__file__).resolve().parent.parent

TEST_TARIFFS = """\
tariffs:
  start:
    title: СТАРТ
    sections: [launches, functionality, maintenance, claim-desk]
    sla: {register: 30m, consult: 8h, consult_critical: 4h, workaround: 3 working days}
  solo-func:
    title: Только функциональность
    sections: [functionality]
  solo-claim:
    title: Только Claim Desk
    sections: [claim-desk]
  pair:
    title: Пара
    sections: [launches, maintenance]
"""


def marker(section: str, kind: str) -> str:
    """A string that appears only in one section's marker article (title, body or address)."""
    tag = section.replace("-", "")
    return {"title": f"Заголовокмаркер{tag}", "body": f"текстмаркер{tag}",
            "slug": f"marker-{section}-page", "url": f"{section}/marker-{section}-page"}[kind]


def make_project(root: Path, tariffs: str = TEST_TARIFFS) -> Path:
    """A project folder sharing the real site configuration, with marker docs."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "mkdocs.yml", root / "mkdocs.yml")
    os.symlink(PROJECT / "overrides", root / "overrides")
    os.symlink(PROJECT / "gate", root / "gate")
    docs = root / "docs"
    (docs / "assets").mkdir(parents=True)
    shutil.copy(PROJECT / "docs/assets/kb.css", docs / "assets/kb.css")
    links = "\n".join(f"- [{marker(s, 'title')}]({s}/{marker(s, 'slug')}.md)" for s in SECTIONS)
    (docs / "index.md").write_text(
        f"---\ntitle: Главная\ndescription: Главная страница.\n---\n\nПубличнаястраница.\n\n{links}\n")
    for i, (section, title) in enumerate(SECTIONS.items()):
        d = docs / section
        d.mkdir()
        (d / "index.md").write_text(
            f"---\ntitle: {title}\ndescription: Раздел.\n---\n\nО разделе.\n")
        others = [s for s in SECTIONS if s != section]
        other = others[i % len(others)]
        (d / f"{marker(section, 'slug')}.md").write_text(
            f"---\ntitle: {marker(section, 'title')}\ndescription: Маркер.\norder: 10\n---\n\n"
            f"## Раздел статьи\n\n{marker(section, 'body')} и ещё немного текста.\n\n"
            f"См. [{marker(other, 'title')}](../{other}/{marker(other, 'slug')}.md) и "
            f"[главную](../index.md).\n\n"
            f"[Обратиться в поддержку](/support/new?from=/{marker(section, 'url')}/)\n")
    (root / "tariffs.yml").write_text(tariffs)
    return root


@pytest.fixture(scope="session")
def built_project(tmp_path_factory):
    """A marker project with every edition built (tariffs start, solo-func, solo-claim, pair)."""
    from gate.build import build_all

    root = make_project(tmp_path_factory.mktemp("project"))
    manifest = build_all(root, root / "tariffs.yml", log=lambda *_: None)
    return root, manifest
