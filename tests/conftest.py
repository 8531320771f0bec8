"""Shared fixtures: a temporary project with marker articles, built once per session."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from gate.sections import SECTIONS
from tests.smtp_support import FORM as SUPPORT_FORM
from tests.smtp_support import MailSink

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


@pytest.fixture(scope="session")
def built_project(tmp_path_factory):
    """A marker project with every edition built (tariffs start, solo-func, solo-claim, pair)."""
    from gate.build import build_all

    root = make_project(tmp_path_factory.mktemp("project"))
    manifest = build_all(root, root / "tariffs.yml", log=lambda *_: None)
    return root, manifest


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


def make_config(root: Path, instance: Path, **overrides):
    from zoneinfo import ZoneInfo

    from gate.config import Config

    values = dict(mode="local", root=root, tariffs_path=root / "tariffs.yml", instance=instance,
                  database_url=f"sqlite:///{instance / 'gate.sqlite3'}",
                  timezone=ZoneInfo("Europe/Moscow"))
    values.update(overrides)
    return Config(**values)


def populate(engine, tariffs):
    from gate import accounts

    with engine.begin() as conn:
        for email, (org, tariff, staff) in PEOPLE.items():
            if org and not conn.execute(accounts.sa.select(accounts.orgs.c.id).where(
                    accounts.orgs.c.name == org)).first():
                accounts.add_org(conn, org, tariff, tariffs)
            accounts.add_user(conn, email, PASSWORD, org=org, staff=staff)
        accounts.end_org(conn, "Сеть Бывшая")
        accounts.set_disabled(conn, "disabled@client.example", True)


@pytest.fixture
def app(built_project, tmp_path):
    from gate.factory import create_app

    root, _ = built_project
    application = create_app(make_config(root, tmp_path / "instance"))
    application.config["TESTING"] = True
    gate = application.extensions["gate"]
    populate(gate.engine, gate.tariffs)
    return application


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_of(html: str) -> str:
    import re

    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the form carries a csrf_token"
    return m.group(1)


def login(client, email, password=PASSWORD, next_path="/"):
    page = client.get("/login")
    return client.post("/login", data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                                       "email": email, "password": password, "next": next_path})


@pytest.fixture
def sink():
    """A real SMTP server (aiosmtpd) on a free port, recording what it receives."""
    server = MailSink().start()
    yield server
    server.stop()


def submit_support(client, **over):
    """Opens the form from an article and posts it (None drops a field); the response."""
    page = client.get("/support/new?from=/functionality/marker-functionality-page/")
    data = {**SUPPORT_FORM, "csrf_token": csrf_of(page.get_data(as_text=True)), **over}
    data = {k: v for k, v in data.items() if v is not None}
    return client.post("/support/new", data=data, content_type="multipart/form-data")
