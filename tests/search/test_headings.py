"""Answers at heading level: sections as results, and exact title phrases first (issue 19)."""

import pytest

from gate.search import engine

FILLER = "<p>" + " ".join(f"слово{i} касса чек смена" for i in range(120)) + "</p>"

PAGES = {
    "launches/new-server/": ("Настройка нового сервера магазина", [
        ("Порядок", "<p>Установите сервер, проверьте порт.</p>")],
        {"description": "Как поставить сервер.", "keywords": []}),
    "functionality/functions/": ("Функции и настройки SET10", [
        ("Что умеет", "<p>Функции SET10 на сервере и кассах; новые версии.</p>")],
        {"description": "Функции SET10 и настройки сервера.", "keywords": []}),
    "maintenance/long/": ("Справочник кассира", [
        ("Общее", FILLER),
        ("Ещё", FILLER),
        ("Тайм-аут соединения", "<p>Параметр connectionTimeout задаёт тайм-аут соединения "
                                "кассы с сервером в секундах.</p>"),
        ("Прочее", FILLER)],
        {"description": "Всё о кассе.", "keywords": []}),
    "maintenance/short/": ("Связь кассы с сервером", [
        ("Сеть", "<p>Соединения кассы с сервером: касса соединяется с сервером по сети, "
                 "соединения проверяют по кабелю.</p>")],
        {"description": "Связь кассы и сервера.", "keywords": []}),
}


@pytest.fixture
def index(small_edition):
    return small_edition(PAGES)


def test_a_parameter_question_reaches_its_heading(index):
    [first, *_] = index.search("параметр connectionTimeout тайм-аут")
    assert first["location"] == "/maintenance/long/#s2"
    assert first["title"] == "Тайм-аут соединения"
    assert first["page"]["title"] == "Справочник кассира"


def test_a_question_about_the_whole_article_points_at_the_article(index):
    [first, *_] = index.search("справочник кассира")
    assert first["location"] == "/maintenance/long/" and "page" not in first


def test_words_met_in_one_section_of_a_long_article_outrank_a_short_partial_match(index, monkeypatch):
    query = "тайм-аут соединения кассы с сервером"
    assert index.search(query)[0]["location"].startswith("/maintenance/long/")
    monkeypatch.setattr(engine, "SECTION_BONUS", 0.0)  # without sections the long one loses
    assert not index.search(query)[0]["location"].startswith("/maintenance/long/")


def test_an_exact_title_phrase_outranks_a_partial_match(index, monkeypatch):
    query = "настройка нового сервера Set10"
    assert index.search(query)[0]["location"].partition("#")[0] == "/launches/new-server/"
    monkeypatch.setattr(engine, "TITLE_RUN", 0.0)  # the page that repeats the words would win
    monkeypatch.setattr(engine, "TITLE_PHRASE", 99)
    assert index.search(query)[0]["location"].partition("#")[0] == "/functionality/functions/"
