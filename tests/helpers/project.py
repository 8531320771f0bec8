"""The marker project the tests build, its tariffs, people and settings.

A marker project shares the real site configuration (mkdocs.yml, overrides, the hooks) and has
one marker article per section whose title, body and address appear nowhere else: finding a
marker in an answer means that section leaked.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from pathlib import Path

from gate.sections import SECTIONS

PROJECT = Path(__file__).resolve().parents[2]

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

PASSWORD = "correct-horse-battery"
# identity -> (organisation, tariff, staff); organisations are created per app
PEOPLE = {
    "start@client.example": ("Сеть Старт", "start", False),
    "func@client.example": ("Сеть Функ", "solo-func", False),
    "pair@client.example": ("Сеть Пара", "pair", False),
    "ended@client.example": ("Сеть Бывшая", "start", False),
    "disabled@client.example": ("Сеть Старт", "start", False),
    "staff@vendor.example": (None, None, True),
}


def marker(section: str, kind: str) -> str:
    """A string that appears only in one section's marker article (title, body or address)."""
    tag = section.replace("-", "")
    return {"title": f"Заголовокмаркер{tag}", "body": f"текстмаркер{tag}",
            "slug": f"marker-{section}-page", "url": f"{section}/marker-{section}-page"}[kind]


def page_url(section: str) -> str:
    """The address of a section's marker article."""
    return f"/{marker(section, 'url')}/"


def forbidden_markers(allowed) -> list[str]:
    """Every marker of the sections not in `allowed`."""
    return [marker(s, kind) for s in SECTIONS if s not in allowed for kind in ("title", "body", "url")]


def without_echoes(text: str) -> str:
    """The text without the requested address echoed back in next=/from= (allowed)."""
    return re.sub(r"(?:next|from)=[^\"'&\s<]*", "", text)


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
    # change notes (yesterday's, so the first digest lists them): a marker article's note
    # carries its body marker, so a note that reaches the wrong reader is caught as a leak
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    (docs / "index.md").write_text(
        f"---\ntitle: Главная\ndescription: Главная страница.\nchanges:\n  - date: {yesterday}\n"
        f"    note: Обновили публичнуюзаметку.\n---\n\nПубличнаястраница.\n\n{links}\n"
        "\n[Обратиться в поддержку](/support/new?from=/)\n")
    for i, (section, title) in enumerate(SECTIONS.items()):
        d = docs / section
        d.mkdir()
        (d / "index.md").write_text(
            f"---\ntitle: {title}\ndescription: Раздел.\n---\n\nО разделе.\n\n"
            f"[Обратиться в поддержку](/support/new?from=/{section}/)\n")
        others = [s for s in SECTIONS if s != section]
        other = others[i % len(others)]
        (d / f"{marker(section, 'slug')}.md").write_text(
            f"---\ntitle: {marker(section, 'title')}\ndescription: Маркер.\norder: 10\n"
            f"changes:\n  - date: {yesterday}\n    note: Дописали {marker(section, 'body')}.\n---\n\n"
            f"## Раздел статьи\n\n{marker(section, 'body')} и ещё немного текста.\n\n"
            f"См. [{marker(other, 'title')}](../{other}/{marker(other, 'slug')}.md) и "
            f"[главную](../index.md).\n\n"
            f'<p>Ссылка HTML: <a class="x" href=\'/{other}/{marker(other, "slug")}/\'>{marker(other, "title")}</a> '
            f'и <a href="/{other}/{marker(other, "slug")}/"><b>{marker(other, "title")}</b></a></p>\n\n'

            f"[Обратиться в поддержку](/support/new?from=/{marker(section, 'url')}/)\n")
    (root / "tariffs.yml").write_text(tariffs)
    return root


def build_project(root: Path, tariffs: str = TEST_TARIFFS):
    """make_project, then every edition built: (root, manifest)."""
    from gate.build import build_all

    root = make_project(root, tariffs)
    return root, build_all(root, root / "tariffs.yml", log=lambda *_: None)


def make_config(root: Path, instance: Path, **overrides):
    """The gate's Config for a project and an instance folder (local mode, SQLite)."""
    from zoneinfo import ZoneInfo

    from gate.config import Config

    values = dict(mode="local", root=root, tariffs_path=root / "tariffs.yml", instance=instance,
                  database_url=f"sqlite:///{instance / 'gate.sqlite3'}",
                  timezone=ZoneInfo("Europe/Moscow"))
    values.update(overrides)
    return Config(**values)


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (SQLite's online backup, not a file copy)."""
    import sqlite3

    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def populate(engine, tariffs):
    """PEOPLE and their organisations; one organisation's contract ended, one person disabled."""
    from gate import accounts

    with engine.begin() as conn:
        for email, (org, tariff, staff) in PEOPLE.items():
            if org and not conn.execute(accounts.sa.select(accounts.orgs.c.id).where(
                    accounts.orgs.c.name == org)).first():
                accounts.add_org(conn, org, tariff, tariffs)
            accounts.add_user(conn, email, PASSWORD, org=org, staff=staff)
        accounts.end_org(conn, "Сеть Бывшая")
        accounts.set_disabled(conn, "disabled@client.example", True)
