"""gate.search.engine: morphology, typos, synonyms and ranking, on a small corpus and the real one."""

import pytest

from gate.search import INDEX_FILE, SearchIndex
from tests.helpers.search import top


@pytest.mark.parametrize("query, expected", [
    ("грузятся цены", "/maintenance/prices/"),          # грузиться ~ загрузка, цены ~ цен
    ("не загружаются цены на кассы", "/maintenance/prices/"),
    ("цена", "/maintenance/prices/"),
    ("расконсервировать", "/maintenance/conservation/"),  # a word of the same root
    ("ёлка", "/maintenance/conservation/"),
    ("елка", "/maintenance/conservation/"),             # ё and е are one letter
    ("ЁЖ", "/maintenance/conservation/"),
    ("раскансервация", "/maintenance/conservation/"),   # a typo
    ("касу", "/maintenance/conservation/"),             # a typo in a short word
    ("загрузкаа цен", "/maintenance/prices/"),
    ("soap", "/maintenance/prices/"),                   # Latin terms, any case
    ("Base64", "/maintenance/prices/"),
    ("xml 8090", "/maintenance/prices/"),
    ("set10", "/launches/store/"),
    ("сентрум", "/launches/store/"),                    # Cyrillic spelling of Centrum
    ("импорт", "/maintenance/prices/"),                 # front matter keywords
    ("касса в ремонте", "/maintenance/conservation/"),
    ("сервак", "/launches/store/"),
    ("чеклист", "/launches/store/"),                     # чек-лист written as one word
    ("запуск маг", "/launches/store/"),                  # the last word still being typed
    ("crystal-cash", "/claim-desk/logs/"),
])
def test_finds_the_article(small, query, expected):
    assert top(small, query) == expected


@pytest.mark.parametrize("query", ["кофемашина", "!!!", "в на и", "zzzzzz", "qwertyuiopasdf",
                                   "ло", "a" * 200, "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\u200b\u200b"])
def test_finds_nothing_for_words_no_article_has(small, query):
    assert small.search(query) == []


def test_results_say_which_query_words_no_article_matched(small):
    results, words = small.search_words("консервация кофемашина")
    assert words == 2 and results[0]["missing"] == ["кофемашина"]


def test_morphology_on_the_real_articles(real_project):
    root, _ = real_project
    index = SearchIndex.load(root / "site/editions/all" / INDEX_FILE)
    results = index.search("грузятся цены")[:3]
    assert any("загрузк" in r["title"].lower() and "цен" in r["title"].lower() for r in results), results
    assert index.search("сервак упал")[0]["location"].endswith("server-failure/")
    assert index.search("раскансервация кассы")[0]["location"] == "/maintenance/register-conservation/"
