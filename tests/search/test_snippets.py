"""gate.search.snippets: the title and snippet a visitor sees, escaped and marked."""

from gate.search.snippets import SNIPPET_CHARS, mark


def test_result_has_title_location_marked_escaped_snippet_and_score(small):
    [first, *_] = small.search("загрузка цен")
    assert first["title"] == "Остановилась загрузка цен"
    assert first["location"] == "/maintenance/prices/"
    assert "page" not in first
    assert "<mark>цены</mark>" in first["snippet"]
    assert first["title_html"] == "Остановилась <mark>загрузка</mark> <mark>цен</mark>"
    assert isinstance(first["score"], float) and first["score"] > 0
    assert "цены" in first["matched"] and first["missing"] == []
    script = small.search("script alert поля")[0]
    assert "<script" not in script["snippet"].replace("<mark>", "").replace("</mark>", "")
    assert "&lt;<mark>script</mark>&gt;<mark>alert</mark>(1)&lt;/" in script["snippet"]


def test_snippet_is_short(small):
    for r in small.search("касса"):
        assert len(r["snippet"]) < SNIPPET_CHARS * 3


def test_mark_merges_overlaps_and_escapes():
    assert mark("a <b> c", [(0, 1), (2, 5), (3, 4)]) == "<mark>a</mark> <mark>&lt;b&gt;</mark> c"
    assert mark("x & y", []) == "x &amp; y"


def test_a_result_in_a_section_has_the_heading_as_title_and_the_article_as_context(small):
    """Words beyond the title, met in one section: the result points at that heading."""
    [first, *_] = small.search("цены не доходят")
    assert first["location"] == "/maintenance/prices/#s0"
    assert first["title"] == "Симптомы" and first["title_html"] == "Симптомы"
    assert first["page"] == {"title": "Остановилась загрузка цен", "location": "/maintenance/prices/",
                             "title_html": "Остановилась загрузка <mark>цен</mark>"}
    # the snippet comes from that section only, with the found words marked
    assert "<mark>цены</mark>" in first["snippet"] and "<mark>доходят</mark>" in first["snippet"]
    assert "8090" not in first["snippet"]
    assert "доходят" in first["matched"] and first["missing"] == []
