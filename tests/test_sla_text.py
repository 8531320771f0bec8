"""SLA figures on the pages come from the tariffs: placeholders, their words, the build, the check."""

from __future__ import annotations

import pytest

from gate import sla_text
from gate.build import BuildError, build_all, check_fresh
from gate.check import check_docs
from gate.tariffs import load_tariffs, parse_tariffs
from tests.helpers.articles import article, make_docs
from tests.helpers.project import TEST_TARIFFS, make_project

NEUTRAL = sla_text.NEUTRAL


def tariffs(text: str):
    return parse_tariffs(text, "test.yml")


def one_sla(**sla) -> dict:
    body = ", ".join(f"{k}: {v}" for k, v in sla.items())
    return tariffs(f"tariffs:\n  t:\n    title: T\n    sections: [launches]\n    sla: {{{body}}}\n")


# --- the words ------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, words", [
    ("register", "30m", "в течение 30 минут"),
    ("register", "1m", "в течение 1 минуты"),
    ("register", "90m", "в течение 90 минут"),
    ("consult", "8h", "в течение 8 часов"),
    ("consult", "1h", "в течение 1 часа"),
    ("consult", "21h", "в течение 21 часа"),
    ("consult", "11h", "в течение 11 часов"),
    ("consult_critical", "4h", "в течение 4 часов"),
    ("consult", "2d", "в течение 48 часов"),
    ("workaround", "3 working days", "в течение 3 рабочих дней"),
    ("workaround", "1 working day", "в течение 1 рабочего дня"),
    ("workaround", "5 working days", "в течение 5 рабочих дней"),
])
def test_each_service_level_reads_as_russian_words(key, value, words):
    sla = one_sla(**{key: value})["t"].sla
    assert sla_text.phrase(sla, key) == words


TWO = """\
tariffs:
  full:
    title: Полный
    sections: [launches, functionality, maintenance, claim-desk]
    sla: {register: 30m, consult: 8h, consult_critical: 4h, workaround: 3 working days}
  fast:
    title: Быстрый
    sections: [launches]
    sla: {register: 30m, consult: 2h}
  bare:
    title: Без сроков
    sections: [maintenance]
"""


# edition sections -> (placeholder, expected words): the figure of the edition's own readers,
# and only when every one of them is promised the same.
@pytest.mark.parametrize("sections, name, words", [
    (["launches", "functionality", "maintenance", "claim-desk"], "consult", "в течение 8 часов"),
    (["launches"], "consult", "в течение 2 часов"),
    (["launches"], "workaround", None),          # `fast` promises no workaround
    (["maintenance"], "consult", None),          # `bare` has no sla at all
    ([], "register", None),                      # public: `bare` reads it too, promised none
    ([], "consult", None),                       # readers disagree (8h, 2h, none)
    (["maintenance"], "full.consult", "в течение 8 часов"),  # a named tariff, in any edition
    (["maintenance"], "bare.consult", None),
])
def test_an_edition_shows_a_figure_only_when_all_its_readers_share_it(sections, name, words):
    assert sla_text.phrases(tariffs(TWO), sections).get(name) == words


def test_render_puts_the_words_in_and_neutral_wording_where_none():
    words = {"consult": "в течение 8 часов", "start.workaround": "в течение 3 рабочих дней"}
    md = "Консультация {{ sla.consult }}, обходное решение {{sla.start.workaround}}, " \
         "регистрация {{ sla.register }}, у другого тарифа {{ sla.other.consult }}."
    assert sla_text.render(md, words) == (
        "Консультация в течение 8 часов, обходное решение в течение 3 рабочих дней, "
        f"регистрация {NEUTRAL}, у другого тарифа {NEUTRAL}.")


def test_render_leaves_a_misspelt_key_for_gate_check_to_report():
    assert sla_text.render("{{ sla.consul }}", {"consult": "x"}) == "{{ sla.consul }}"


# --- the build ------------------------------------------------------------------------------

SLA_PAGE = """---
title: Сроки
description: Сроки консультации.
---

Консультацию вы получите {{ sla.consult }}; по тарифу «СТАРТ» — {{ sla.start.consult }}.
Обходное решение предоставят {{ sla.workaround }}.

[Обратиться в поддержку](/support/new?from=/maintenance/sla-page/)
"""


def page(root, edition):
    return (root / f"site/editions/{edition}/maintenance/sla-page/index.html").read_text()


def test_the_built_pages_take_their_figures_from_the_tariffs(tmp_path):
    root = make_project(tmp_path / "p")
    (root / "docs/maintenance/sla-page.md").write_text(SLA_PAGE)
    build_all(root, root / "tariffs.yml", jobs=1, log=lambda *_: None)
    start = page(root, "all")  # `start` opens every section: its edition is `all`
    assert "Консультацию вы получите в течение 8 часов" in start
    assert "по тарифу «СТАРТ» — в течение 8 часов" in start
    assert "Обходное решение предоставят в течение 3 рабочих дней" in start
    pair = page(root, "launches+maintenance")  # tariff `pair` has no sla
    assert f"Консультацию вы получите {NEUTRAL}" in pair
    assert "по тарифу «СТАРТ» — в течение 8 часов" in pair
    assert "{{" not in start + pair

    # A new figure in tariffs.yml: the old site is stale until rebuilt, then shows it.
    (root / "tariffs.yml").write_text(TEST_TARIFFS.replace("consult: 8h", "consult: 6h"))
    with pytest.raises(BuildError, match="other tariffs"):
        check_fresh(root, load_tariffs(root / "tariffs.yml"))
    build_all(root, root / "tariffs.yml", jobs=1, log=lambda *_: None)
    assert "Консультацию вы получите в течение 6 часов" in page(root, "all")
    assert "8 часов" not in page(root, "all")


def test_tariffs_without_sla_still_build_with_neutral_words(tmp_path):
    no_sla = "\n".join(line for line in TEST_TARIFFS.splitlines() if "sla:" not in line) + "\n"
    root = make_project(tmp_path / "p", tariffs=no_sla)
    (root / "docs/maintenance/sla-page.md").write_text(SLA_PAGE)
    build_all(root, root / "tariffs.yml", jobs=1, log=lambda *_: None)
    html = page(root, "all")
    assert f"Консультацию вы получите {NEUTRAL}; по тарифу «СТАРТ» — {NEUTRAL}" in html
    assert "{{" not in html and "часов" not in html


# --- the check ------------------------------------------------------------------------------

def check_body(tmp_path, body: str, front: str = "title: Статья\ndescription: О чём статья.\n"):
    make_docs(tmp_path, {"launches/x.md": article(front, body)})
    return check_docs(tmp_path)


@pytest.mark.parametrize("body, line", [
    ("Консультацию вы получите в течение 8 часов.", 6),
    ("Текст.\n\nОбращение зарегистрируют\nза 30 минут.", 9),
    ("| Обходное решение | 3 рабочих дня |", 6),
    ("- **4 часа.** Срок консультации при критичной остановке.", 6),
    ("По тарифу ответ придёт через 2 суток.", 6),
])
def test_check_fails_an_article_that_types_an_sla_figure(tmp_path, body, line):
    problems = check_body(tmp_path, body)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"docs/launches/x.md:{line}: SLA figure «")
    assert "{{ sla.consult }}" in problems[0]


@pytest.mark.parametrize("body", [
    "Консультацию вы получите {{ sla.consult }}; по тарифу «СТАРТ» — {{ sla.start.consult }}.",
    "Обращения принимают 24 часа в сутки и регистрируют {{ sla.register }}.",
    "Касса простояла без сети 3 дня: проверьте справочники.",           # not about support
    "Пакет из ERP обрабатывается за 5 минут, пример — в логе.",
    "`Консультация в течение 8 часов` в коде не считается.",
])
def test_check_accepts_placeholders_and_other_durations(tmp_path, body):
    assert check_body(tmp_path, body) == []


def test_check_reports_unknown_placeholders_and_figures_in_front_matter(tmp_path):
    front = ("title: Статья\ndescription: Консультация в течение 4 часов.\n"
             "keywords: [\"{{ sla.consult }}\"]\n")
    problems = check_body(tmp_path, "Срок: {{ sla.consul }}.", front)
    assert [p.split(": ", 1)[0] for p in problems] == ["docs/launches/x.md:3", "docs/launches/x.md:4",
                                                      "docs/launches/x.md:7"]
    assert "in the front matter" in problems[0]
    assert "only in the article body" in problems[1]
    assert "unknown SLA placeholder" in problems[2]
