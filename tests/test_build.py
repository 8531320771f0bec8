"""Every edition holds its own sections and nothing of the others: a crawl of every file."""

import gzip
import json
import shutil
from pathlib import Path

import pytest

from gate.build import BuildError, build_all, check_fresh
from gate.sections import SECTIONS
from gate.tariffs import load_tariffs
from tests.helpers.project import make_project, marker

EDITIONS = ["public", "none", "all", "functionality", "claim-desk", "launches+maintenance"]


def edition_texts(site: Path, name: str):
    for path in sorted((site / "editions" / name).rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            yield path, data.decode("utf-8", errors="replace")


def test_manifest_lists_every_edition(built_project):
    root, manifest = built_project
    assert sorted(manifest["editions"]) == sorted(EDITIONS)
    assert json.loads((root / "site/manifest.json").read_text()) == manifest


@pytest.mark.parametrize("name", EDITIONS)
def test_no_file_of_an_edition_carries_another_section(built_project, name):
    root, manifest = built_project
    allowed = set(manifest["editions"][name])
    forbidden = [s for s in SECTIONS if s not in allowed]
    checked = 0
    for path, text in edition_texts(root / "site", name):
        checked += 1
        for s in forbidden:
            for kind in ("title", "body", "url"):
                assert marker(s, kind) not in text, f"{path} leaks {kind} of {s}"
    assert checked > 20  # a real site was crawled, not an empty folder


@pytest.mark.parametrize("name", EDITIONS)
def test_every_allowed_page_is_present_and_searchable(built_project, name):
    root, manifest = built_project
    edition = root / "site/editions" / name
    index = json.loads((edition / "search/search_index.json").read_text())
    locations = {d["location"] for d in index["docs"]}
    sitemap = (edition / "sitemap.xml").read_text()
    for s in manifest["editions"][name]:
        page = edition / marker(s, "url") / "index.html"
        html = page.read_text()
        assert marker(s, "title") in html and marker(s, "body") in html
        assert f"{marker(s, 'url')}/" in locations
        assert marker(s, "url") in sitemap
    assert "" in locations  # the public home page is in every edition


def test_link_to_a_locked_page_points_at_its_section_root(built_project):
    root, _ = built_project
    html = (root / "site/editions/public/index.html").read_text()
    for s, title in SECTIONS.items():
        assert f'href="/{s}/"' in html
        assert f"раздел «{title}»" in html


def test_nav_uses_section_titles_in_tariff_order(built_project):
    root, _ = built_project
    html = (root / "site/editions/all/index.html").read_text()
    positions = [html.index(t) for t in SECTIONS.values()]
    assert positions == sorted(positions)


def test_public_edition_offers_login_and_others_offer_logout(built_project):
    root, _ = built_project
    public = (root / "site/editions/public/index.html").read_text()
    staff = (root / "site/editions/all/index.html").read_text()
    assert 'href="/login"' in public and 'action="/logout"' not in public
    assert 'action="/logout"' in staff


def test_manifest_detects_stale_docs_and_tariffs(built_project, tmp_path):
    root, _ = built_project
    tariffs = load_tariffs(root / "tariffs.yml")
    assert check_fresh(root, tariffs)["editions"]
    other = load_tariffs(root / "tariffs.yml")
    other.pop("pair")
    with pytest.raises(BuildError, match="other tariffs"):
        check_fresh(root, other)
    extra = root / "docs/launches/new-article.md"
    extra.write_text("---\ntitle: Новая\ndescription: Новая.\n---\n\nТекст.\n")
    try:
        with pytest.raises(BuildError, match="other docs"):
            check_fresh(root, tariffs)
    finally:
        extra.unlink()


def test_unknown_folder_fails_the_build_and_keeps_the_old_site(tmp_path):
    root = make_project(tmp_path / "p")
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    (root / "docs/drafts").mkdir()
    (root / "docs/drafts/secret.md").write_text("---\ntitle: S\ndescription: S.\n---\n\nS\n")
    with pytest.raises(BuildError, match=r"docs/drafts/ is neither public"):
        build_all(root, root / "tariffs.yml", log=lambda *_: None)
    assert (root / "site/manifest.json").exists()
    assert not list(root.glob("site.new-*"))


def test_broken_link_fails_the_build(tmp_path):
    from tests.helpers.project import make_project

    root = make_project(tmp_path / "p")
    (root / "docs/launches/broken.md").write_text(
        "---\ntitle: B\ndescription: B.\n---\n\n[нет такой](missing.md)\n")
    with pytest.raises(BuildError, match="missing.md"):
        build_all(root, root / "tariffs.yml", jobs=1, log=lambda *_: None)


def test_a_new_article_appears_in_its_editions_with_front_matter_title_and_order(tmp_path):
    from tests.helpers.project import make_project

    root = make_project(tmp_path / "p")
    d = root / "docs/maintenance"
    (d / "b-first.md").write_text("---\ntitle: Статья Бэ\ndescription: x.\norder: 1\n---\n\nБэ.\n\n"
                                  "[Поддержка](/support/new?from=/maintenance/b-first/)\n")
    (d / "a-second.md").write_text("---\ntitle: Статья А\ndescription: x.\norder: 2\n---\n\nА.\n\n"
                                   "[Поддержка](/support/new?from=/maintenance/a-second/)\n")
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    pair = (root / "site/editions/launches+maintenance/maintenance/index.html").read_text()
    assert pair.index("Статья Бэ") < pair.index("Статья А")
    func = root / "site/editions/functionality"
    assert not (func / "maintenance").exists()
    assert "Статья Бэ" not in (func / "search/search_index.json").read_text()


def test_only_editions_whose_inputs_changed_are_built_again(tmp_path):
    root = make_project(tmp_path / "p")
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    site = root / "site/editions"
    inode = {name: (site / name / "index.html").stat().st_ino for name in EDITIONS}
    article = root / "docs" / (marker("maintenance", "url") + ".md")
    article.write_text(article.read_text().replace(marker("maintenance", "body"), "новыйтекст"))
    said = []
    manifest = build_all(root, root / "tariffs.yml", log=said.append)
    with_maintenance = {"all", "launches+maintenance"}
    for name in EDITIONS:  # the others' files are the very same files, linked over
        same = (site / name / "index.html").stat().st_ino == inode[name]
        assert same is (name not in with_maintenance), name
    page = site / "all" / marker("maintenance", "url") / "index.html"
    assert "новыйтекст" in page.read_text()
    assert "kept 4 unchanged" in said[0]
    check_fresh(root, load_tariffs(root / "tariffs.yml"))
    said.clear()
    assert build_all(root, root / "tariffs.yml", log=said.append)["edition_digests"] == \
        manifest["edition_digests"]
    assert said[0].startswith("built 0 editions (none), kept 6 unchanged")
