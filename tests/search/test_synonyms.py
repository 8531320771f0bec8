"""search-synonyms.yml: support staff's spellings and synonyms, checked, built into the index."""

import pytest

from gate.build import BuildError, build_all, check_fresh
from gate.search import INDEX_FILE, SearchIndex
from gate.search.synonyms import (SYNONYMS_FILE, Synonyms, SynonymsError, load_synonyms,
                                  parse_synonyms)
from gate.tariffs import load_tariffs
from tests.helpers.project import PROJECT, make_project, marker
from tests.helpers.search import PAGES, top

F = SYNONYMS_FILE


def test_the_projects_file_is_valid_and_keeps_what_was_code(project_synonyms):
    assert project_synonyms.spellings["сентрум"] == "centrum"
    assert project_synonyms.synonyms["сервак"] == ("сервер",)
    assert project_synonyms.synonyms["грузиться"] == ("загружаться", "загрузка")


def test_keys_are_folded_and_a_missing_file_means_none(tmp_path):
    parsed = parse_synonyms("spellings:\n  Сентрум: Centrum\nsynonyms:\n  Ёлка: ель\n", F)
    assert parsed == Synonyms({"сентрум": "centrum"}, {"елка": ("ель",)})
    assert parse_synonyms("", F) == Synonyms() == parse_synonyms("synonyms:\n", F)
    assert load_synonyms(tmp_path / "none.yml") == Synonyms()


@pytest.mark.parametrize("text, message", [
    ("synonyms: {сервак: сервер\n", f"{F}:2: not valid YAML"),
    ("- сервак\n", f"{F}:1: (top): expected a mapping with the keys spellings and synonyms"),
    ("synonym:\n  сервак: сервер\n", f"{F}:1: synonym: unknown key (known: spellings, synonyms)"),
    ("synonyms: [сервак, сервер]\n", f"{F}:1: synonyms: must be a mapping of word: words"),
    ("synonyms:\n  комп: компьютер\nsynonyms:\n  инет: интернет\n", f"{F}:3: synonyms: appears twice"),
    ("synonyms:\n  сервак: сервер\n  Сервак: сервер\n",
     f"{F}:3: synonyms.сервак: repeats the word of line 2"),
    ("synonyms:\n  опер день: операционный день\n",
     f"{F}:2: synonyms.опер день: the key must be one word"),
    ("synonyms:\n  грузиться: загружаться|загрузка\n",
     f"{F}:2: synonyms.грузиться: list alternatives as [word, other words] instead of '|'"),
    ("synonyms:\n  сервак:\n", f"{F}:2: synonyms.сервак: an empty alternative"),
    ("synonyms:\n  сервак: []\n", f"{F}:2: synonyms.сервак: an empty list"),
    ("synonyms:\n  сервак: [сервер, {a: b}]\n", f"{F}:2: synonyms.сервак: must be the articles' words"),
    ("synonyms:\n  сервак: и в на\n",
     f"{F}:2: synonyms.сервак: 'и в на' has no word the search looks for"),
    ("spellings:\n  erp: ерп\n", f"{F}:2: spellings.erp: a spelling is for a Russian word"),
    ("spellings:\n  ерп: enterprise planning\n", f"{F}:2: spellings.ерп: must be one word"),
    ("spellings:\n  ерп: кассы\n", f"{F}:2: spellings.ерп: write the term in its dictionary form ('касса')"),
])
def test_a_bad_file_names_file_line_and_key(text, message):
    with pytest.raises(SynonymsError) as exc:
        parse_synonyms(text, F)
    assert str(exc.value).startswith(message), str(exc.value)


def test_every_problem_of_a_file_is_reported_at_once():
    with pytest.raises(SynonymsError) as exc:
        parse_synonyms("synonyms:\n  сервак: []\n  баг: ошибка\n  глюк: ''\n", F)
    assert [p.split(": ")[0] for p in exc.value.problems] == [f"{F}:2", f"{F}:4"]


def test_a_synonym_or_spelling_changes_what_the_search_finds(small_edition, project_synonyms):
    plain = small_edition(PAGES)
    assert top(plain, "кофеварка") is None and top(plain, "мыльце") is None
    assert top(plain, "сентрум") is None
    added = Synonyms({**project_synonyms.spellings, "мыльце": "soap"},
                     {**project_synonyms.synonyms, "кофеварка": ("консервация",)})
    index = small_edition(PAGES, added)
    assert top(index, "кофеварка") == "/maintenance/conservation/"
    assert top(index, "мыльце") == "/maintenance/prices/"  # the page says SOAP
    assert top(index, "сентрум") == "/launches/store/"  # the page says Centrum


@pytest.fixture
def project(tmp_path):
    tariffs = ("tariffs:\n  start:\n    title: СТАРТ\n"
               "    sections: [launches, functionality, maintenance, claim-desk]\n")
    return make_project(tmp_path / "project", tariffs)


def test_gate_build_reads_the_file_and_a_changed_file_makes_the_site_stale(project):
    word = marker("launches", "body")
    (project / F).write_text(f"synonyms:\n  кофеварка: {word}\n", encoding="utf-8")
    build_all(project, project / "tariffs.yml", log=lambda *_: None)
    index = SearchIndex.load(project / "site/editions/all" / INDEX_FILE)
    assert top(index, "кофеварка") == f"/{marker('launches', 'url')}/"
    tariffs = load_tariffs(project / "tariffs.yml")
    check_fresh(project, tariffs)
    (project / F).write_text(f"synonyms:\n  кофемолка: {word}\n", encoding="utf-8")
    with pytest.raises(BuildError, match="run `gate build`"):
        check_fresh(project, tariffs)


def test_gate_build_refuses_a_bad_file_before_building(project):
    (project / F).write_text("synonyms:\n  сервак: сервер|серверная\n", encoding="utf-8")
    with pytest.raises(BuildError) as exc:
        build_all(project, project / "tariffs.yml", log=lambda *_: None)
    assert f"{F}:2: synonyms.сервак:" in str(exc.value)
    assert not (project / "site").exists()


def test_the_file_is_not_published(real_project):
    root, manifest = real_project
    assert (PROJECT / F).is_file() and not (PROJECT / "docs" / F).exists()
    for edition in manifest["editions"]:
        assert not list((root / "site/editions" / edition).rglob("*synonyms*"))
