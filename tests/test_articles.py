"""The knowledge base itself: counts, topics and critical cases of the tariff, facts from the seed.

The tariff «СТАРТ» (../shared/seed/) is the source of every contact and service level the articles
quote; its facts are copied here, and checked against the seed itself when it is present.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mkdocs.utils.meta import get_data

from gate.check import page_url
from gate.sections import SECTIONS
from gate.sla_text import phrases, render
from gate.tariffs import load_tariffs
from tests.helpers.project import PROJECT

DOCS = PROJECT / "docs"
SEED_DIR = PROJECT.parent / "shared" / "seed"

# Facts of the tariff, word for word as the seed gives them.
PHONE = "8 (800) 333-22-51"
EMAIL = "sd@crystals.ru"
SITE = "www.crystals.ru/support"
# Service levels: the figures the seed names, as (number, unit) after normalisation.
SLA_FIGURES = {"24 часа": (24, "час"), "30 минут": (30, "минут"), "8 часов": (8, "час"),
               "4 часов": (4, "час"), "3 рабочих дней": (3, "рабочий день")}
CRITICAL_SHARE = "50%"
TOPICS = ["функционал и настройки", "импорт и экспорт данных", "модуля лояльности",
          "пользовательского интерфейса"]

MIN_PER_SECTION, MIN_TOTAL, MIN_WORDS = 6, 30, 250


def pages() -> dict[str, tuple[str, dict]]:
    """Every page: 'launches/x.md' -> (body, front matter)."""
    return {p.relative_to(DOCS).as_posix(): get_data(p.read_text(encoding="utf-8-sig"))
            for p in sorted(DOCS.rglob("*.md"))}


def articles() -> dict[str, tuple[str, dict]]:
    """Pages that count as articles: everything but a section's own index page."""
    return {rel: page for rel, page in pages().items()
            if not (rel.split("/")[0] in SECTIONS and rel.endswith("/index.md"))}


def words(body: str) -> int:
    text = re.sub(r"\]\([^)]*\)|https?://\S+", " ", body)  # link targets are not text
    text = re.sub(r"<[^>]+>|\{[^}\n]*\}", " ", text)
    return sum(1 for w in re.findall(r"\w+", text) if re.search(r"[^\W\d_]", w))


def plain(body: str) -> str:
    """Text as a reader sees it: links without targets, markup and line breaks flattened."""
    text = re.sub(r"\]\(([^)]*)\)", lambda m: "]" if "mailto:" not in m.group(1) else "] ", body)
    text = re.sub(r"\*\*|__|<[^>]+>", "", text)
    return re.sub(r"\s+", " ", text)


# --- counts -----------------------------------------------------------------------------------

@pytest.mark.parametrize("section", SECTIONS)
def test_every_section_has_at_least_six_articles(section):
    found = [rel for rel in articles() if rel.startswith(f"{section}/")]
    assert len(found) >= MIN_PER_SECTION, found


def test_there_are_at_least_thirty_articles_in_all():
    assert len(articles()) >= MIN_TOTAL, sorted(articles())


@pytest.mark.parametrize("rel", sorted(articles()))
def test_every_article_has_at_least_250_words_of_substance(rel):
    body, _ = articles()[rel]
    assert words(body) >= MIN_WORDS, f"docs/{rel}: {words(body)} words"


@pytest.mark.parametrize("rel", sorted(pages()))
def test_every_page_ends_with_its_support_link(rel):
    body, _ = pages()[rel]
    last = [line for line in body.splitlines() if line.strip()][-1]
    assert f"](/support/new?from={page_url(rel)})" in last, f"docs/{rel} ends with {last!r}"


TROUBLESHOOTING = ["Симптомы", "Что проверить", "Как исправить или обойти",
                   "Что приложить к обращению"]


def headings(body: str) -> list[str]:
    return re.findall(r"^## (.+?)\s*$", body, re.M)


def troubleshooting() -> list[str]:
    """Articles that start the troubleshooting template (they have a «Симптомы» heading)."""
    return [rel for rel, (body, _) in articles().items() if "Симптомы" in headings(body)]


@pytest.mark.parametrize("rel", troubleshooting())
def test_troubleshooting_articles_follow_the_template(rel):
    found = headings(articles()[rel][0])
    assert [h for h in found if h in TROUBLESHOOTING] == TROUBLESHOOTING, f"docs/{rel}: {found}"


# --- topics and critical cases of the tariff --------------------------------------------------

# what the tariff names -> (section, patterns that must all occur in one article's title)
COVERAGE = {
    "функционал и настройки SET": ("functionality", [r"функци", r"настро"]),
    "импорт данных": ("functionality", [r"импорт"]),
    "экспорт данных": ("functionality", [r"экспорт"]),
    "работа модуля лояльности": ("functionality", [r"лояльност"]),
    "работа пользовательского интерфейса": ("functionality", [r"интерфейс"]),
    "остановка более 50% касс магазина": ("maintenance", [r"касс", r"половин|50\s*%"]),
    "остановка загрузки товаров и цен": ("maintenance", [r"загрузк", r"товар", r"цен"]),
    "вышел из строя сервер SET": ("maintenance", [r"сервер", r"вышел из строя"]),
    "проблемы при настройке нового сервера": ("launches", [r"нов\w* сервер", r"настро"]),
    "инженеры не могут запустить магазин": ("launches", [r"магазин", r"не запуска"]),
}


@pytest.mark.parametrize("case", COVERAGE)
def test_every_topic_and_critical_case_of_the_tariff_has_an_article(case):
    section, patterns = COVERAGE[case]
    titles = [str(meta.get("title", "")) for rel, (_, meta) in articles().items()
              if rel.startswith(f"{section}/")]
    assert any(all(re.search(p, t, re.I) for p in patterns) for t in titles), (case, titles)


def test_the_tariff_page_names_every_topic_and_critical_case():
    text = plain(pages()["tariff-start.md"][0]).lower()
    for phrase in TOPICS + ["остановка более 50% касс магазина", "остановка загрузки товаров и цен",
                            "вышел из строя сервер set", "проблемы при настройке нового сервера",
                            "инженеры не могут запустить магазин"]:
        assert phrase in text, phrase


# --- contacts and service levels match the seed -----------------------------------------------

PHONE_RE = re.compile(r"(?:\+7|(?<![\w.-])8)[\s-]*\(?\d{3}\)?[\s-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}"
                      r"(?!\d)|(?<![\w.-])\d{3}-\d{2}-\d{2}(?![\w-])")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
SITE_RE = re.compile(r"(?<![\w.@/-])(?:https?://)?(?:www\.)?crystals\.ru(/[\w/.-]*\w/?)?")
EXAMPLE_MAIL = re.compile(r"@(?:[\w-]+\.)*example(?:\.(?:com|ru|org|net))?$")
FIGURE_RE = re.compile(r"(\d+)\s*(минут\w*|час(?:а|ов)?\b|(?:рабоч\w+\s+)?(?:дн(?:я|ей)|день))",
                       re.I)
SLA_CONTEXT = re.compile(r"консультац|регистр|обходн", re.I)


def _unit(word: str) -> str:
    word = word.lower()
    if word.startswith("минут"):
        return "минут"
    if word.startswith("час"):
        return "час"
    return "рабочий день" if word.startswith("рабоч") else "календарный день"


def sla_words() -> dict[str, str]:
    """The words the SLA placeholders become with the project's own tariffs (gate.sla_text)."""
    return phrases(load_tariffs(PROJECT / "tariffs.yml"), SECTIONS)


def texts():
    """Each page's front matter and body as one text, as the reader sees it: SLA placeholders
    rendered from the project's tariffs (URLs in sources are not prose)."""
    words = sla_words()
    for rel, (body, meta) in pages().items():
        fields = " ".join(str(meta.get(k, "")) for k in ("title", "description", "keywords"))
        yield rel, fields + "\n" + render(body, words)


def sentences(text: str):
    # A table cell, a list item and a sentence are each one context.
    return re.split(r"(?<=[.!?;])\s+|\n\s*\n|\n\s*[-*|]|\n\s*\d+\.\s|\|", text)


@pytest.mark.parametrize("rel, text", list(texts()), ids=[r for r, _ in texts()])
def test_contacts_in_the_articles_are_the_seeds(rel, text):
    prose = re.sub(r"https?://(?!www\.crystals\.ru)\S+", " ", text)
    for phone in PHONE_RE.findall(prose):
        assert phone == PHONE, f"docs/{rel}: phone {phone!r}, the tariff's is {PHONE!r}"
    for mail in EMAIL_RE.findall(prose):
        assert mail == EMAIL or EXAMPLE_MAIL.search(mail), f"docs/{rel}: e-mail {mail!r}"
    for path in SITE_RE.findall(prose):
        assert path in ("", "/support", "/support/"), f"docs/{rel}: crystals.ru{path}"


@pytest.mark.parametrize("rel, text", list(texts()), ids=[r for r, _ in texts()])
def test_service_levels_in_the_articles_are_the_seeds(rel, text):
    allowed = set(SLA_FIGURES.values())
    for sentence in sentences(plain(text)):
        if not SLA_CONTEXT.search(sentence):
            continue
        for number, unit in FIGURE_RE.findall(sentence):
            figure = (int(number), _unit(unit))
            assert figure in allowed, f"docs/{rel}: «{number} {unit}» in «{sentence.strip()}»"
    for share in re.findall(r"(\d+)\s*%", plain(text)):
        assert f"{share}%" == CRITICAL_SHARE, f"docs/{rel}: {share}% (the tariff says 50%)"


def test_the_checks_above_catch_wrong_figures():
    wrong = "Консультацию вы получите в течение 6 часов. Обращение зарегистрируют за 15 минут. " \
            "Обходное решение — в течение 3 дней."
    found = [(int(n), _unit(u)) for s in sentences(wrong) if SLA_CONTEXT.search(s)
             for n, u in FIGURE_RE.findall(s)]
    assert found == [(6, "час"), (15, "минут"), (3, "календарный день")]
    assert not set(found) & set(SLA_FIGURES.values())
    assert PHONE_RE.findall("звоните 8-800-333-22-51 или +7 (495) 123-45-67, доб. 222-33-44") == \
        ["8-800-333-22-51", "+7 (495) 123-45-67", "222-33-44"]
    assert PHONE_RE.findall("версия 10.3.10.0, дата 2026-11-26, порт 8090, pageId=1685094938") == []
    assert SITE_RE.findall("на сайте www.crystals.ru/support или crystals.ru/help") == \
        ["/support", "/help"]


# --- the seed itself --------------------------------------------------------------------------

def seed_text() -> str:
    files = sorted(SEED_DIR.glob("*")) if SEED_DIR.is_dir() else []
    if not files:
        pytest.skip(f"no seed in {SEED_DIR}")
    return "\n".join(f.read_text(encoding="utf-8") for f in files if f.is_file())


def test_the_facts_copied_here_are_in_the_seed():
    seed = re.sub(r"\s+", " ", seed_text())
    for fact in [PHONE, EMAIL, SITE, CRITICAL_SHARE, *SLA_FIGURES, *TOPICS]:
        assert fact in seed, fact


def test_the_projects_tariff_renders_the_seeds_deadlines_word_for_word():
    seed = re.sub(r"\s+", " ", seed_text())
    words = sla_words()
    assert set(words) >= {"consult", "start.consult", "register", "consult_critical", "workaround"}
    for name, text in words.items():
        assert text in seed, (name, text)


def test_the_seed_has_no_other_contacts_or_figures_than_copied_here():
    seed = seed_text()
    assert set(PHONE_RE.findall(seed)) == {PHONE}
    assert set(EMAIL_RE.findall(seed)) == {EMAIL}
    figures = {(int(n), _unit(u)) for n, u in FIGURE_RE.findall(seed)}
    assert figures == set(SLA_FIGURES.values())
