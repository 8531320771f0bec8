"""`gate check`: a table of broken articles, each with the one line it must produce."""

from __future__ import annotations

import pytest

from gate.check import check_docs, page_url
from tests.helpers.articles import SUPPORT, article, make_docs
from tests.helpers.project import PROJECT

GOOD_FRONT = """\
title: "Касса не печатает чек: что проверить"
description: Что проверить, если чек не печатается.
keywords: [касса, чек не печатается, "8090"]
sources:
  - https://crystals.atlassian.net/wiki/spaces/INT/pages/1646177/-+ERP+SetRetail10
updated: 2026-11-26
order: 10
"""
GOOD_BODY = """\
## Симптомы

Касса не печатает чек. См. [другую статью](../maintenance/other.md#anchor), [раздел](index.md),
[главную](../index.md), [Сопровождение](/maintenance/other/), [вход](/login),
[сайт](https://www.crystals.ru/support), [почту](mailto:sd@crystals.ru), [якорь](#symptoms).

![Схема подключения](../assets/scheme.png)
<img src="../assets/scheme.png" alt="Схема">

[Ссылка, разбитая
на две строки](../maintenance/other.md)

```text
[в коде не проверяется](missing.md) ![](missing.png)
```

`[и в строке кода](missing.md)`

Сноска[^1] и ссылка по имени на [статью][other].

[^1]: Текст сноски, не ссылка.
[other]: ../maintenance/other.md
<!-- [закомментировано](missing.md) -->
"""


def test_a_good_article_has_no_problem(tmp_path):
    make_docs(tmp_path, {"launches/x.md": article(GOOD_FRONT, GOOD_BODY)})
    assert check_docs(tmp_path) == []


def test_updated_may_be_a_quoted_date_and_order_a_fraction(tmp_path):
    front = 'title: Т\ndescription: О.\nupdated: "2026-01-31"\norder: 2.5\n'
    make_docs(tmp_path, {"launches/x.md": article(front)})
    assert check_docs(tmp_path) == []


T, D = "title: Статья\n", "description: О чём статья.\n"

# (file content, line, message); the file is docs/launches/x.md unless the case says otherwise.
BAD = {
    "no title": (article(D), 1, "missing required field 'title' in front matter"),
    "no description": (article(T), 1, "missing required field 'description' in front matter"),
    "unknown field": (article(T + D + "tags: [касса]\n"), 4,
                      "unknown field 'tags' in front matter (allowed: title, description, "
                      "keywords, sources, updated, changes, order)"),
    "misspelt field": (article(T + D + "keyword: [касса]\n"), 4, "unknown field 'keyword'"),
    "field twice": (article(T + D + "title: Другая\n"), 4, "field 'title' is given twice"),
    "empty title": (article("title:\n" + D), 2, "title must be text, not nothing"),
    "number as title": (article("title: 2024\n" + D), 2, "title must be text, not a number"),
    "yes as title": (article("title: yes\n" + D), 2, "title must be text, not yes/no"),
    "blank description": (article(T + 'description: "  "\n'), 3, "description is empty"),
    "colon in title": (article("title: Ошибка: касса не печатает\n" + D), 2,
                       "front matter is not valid YAML (mapping values are not allowed"),
    "colon in description": (article(T + "description: Симптом: нет цен\n"), 3,
                             "front matter is not valid YAML"),
    "bracket at start": (article("title: [Черновик] Касса\n" + D), 2,
                         "front matter is not valid YAML"),
    "quote inside": (article('title: "Касса "Меркурий""\n' + D), 2,
                     "front matter is not valid YAML"),
    "comment in title": (article("title: Касса #2 не печатает\n" + D), 2,
                         "title: the text after ' #' is a YAML comment and is dropped; "
                         "put the whole value in quotes"),
    "list, not mapping": ("---\n- title: Статья\n- description: О.\n---\n\n" + SUPPORT + "\n", 2,
                          "front matter is not a mapping of fields"),
    "text, not mapping": ("---\nСтатья о кассе\n---\n\n" + SUPPORT + "\n", 2,
                          "front matter is not a mapping of fields"),
    "empty front matter": ("---\n\n---\n\n" + SUPPORT + "\n", 1,
                           "front matter is not a mapping of fields"),
    "no front matter": ("# Статья\n\nТекст.\n\n" + SUPPORT + "\n", 1, "no front matter"),
    "MultiMarkdown meta": ("title: Статья\ndescription: О.\n\n" + SUPPORT + "\n", 1,
                           "no front matter"),
    "front matter not closed": ("---\ntitle: Статья\ndescription: О.\n\nТекст.\n" + SUPPORT, 1,
                                "front matter is not closed"),
    "keywords as text": (article(T + D + "keywords: касса, чек\n"), 4,
                         "keywords must be a list of words"),
    "number in keywords": (article(T + D + "keywords: [касса, 8090]\n"), 4,
                           "keywords must hold only non-empty text, not 8090"),
    "source not a URL": (article(T + D + "sources:\n  - вики поддержки\n"), 4,
                         "sources must hold only http(s) addresses, not 'вики поддержки'"),
    "source over ftp": (article(T + D + "sources: [ftp://example.com/a]\n"), 4,
                        "sources must hold only http(s) addresses"),
    "one source as text": (article(T + D + "sources: https://example.com/a\n"), 4,
                           "sources must be a list of http(s) addresses"),
    "date in Russian order": (article(T + D + "updated: 26.11.2026\n"), 4,
                              "updated must be a date YYYY-MM-DD, not '26.11.2026'"),
    "impossible date": (article(T + D + "updated: 2026-13-01\n"), 4,
                        "updated must be a date YYYY-MM-DD (month must be in 1..12)"),
    "date with time": (article(T + D + "updated: 2026-11-26 10:00:00\n"), 4,
                       "updated must be a date YYYY-MM-DD, not a date with a time"),
    "order as text": (article(T + D + "order: первая\n"), 4, "order must be a number"),
    "broken link": (article(body="См. [статью](missing.md).\n"), 6,
                    "broken link 'missing.md': no page docs/launches/missing.md"),
    "broken link with anchor": (article(body="Текст.\n\n[статья](missing.md#a)\n"), 8,
                                "broken link 'missing.md#a'"),
    "broken link across lines": (article(body="Текст [раз\nдва](nope.md)\n"), 6,
                                 "broken link 'nope.md'"),
    "broken link to a section": (article(body="[x](../maintenance/nope.md)\n"), 6,
                                 "broken link '../maintenance/nope.md': no page "
                                 "docs/maintenance/nope.md"),
    "broken reference link": (article(body="[x][1]\n\n[1]: missing.md\n"), 8,
                              "broken link 'missing.md'"),
    "broken html link": (article(body='<a href="missing.md">x</a>\n'), 6,
                         "broken link 'missing.md'"),
    "link outside docs": (article(body="[x](../../README.md)\n"), 6,
                          "link '../../README.md' points outside docs/"),
    "link to a folder": (article(body="[x](../maintenance/)\n"), 6,
                         "link '../maintenance/' points to a folder: link to the page itself, "
                         "e.g. '../maintenance/index.md'"),
    "broken absolute link": (article(body="[x](/maintenance/nope/)\n"), 6,
                             "broken link '/maintenance/nope/': no page docs/maintenance/nope.md"),
    "image without alt": (article(body="![](../assets/scheme.png)\n"), 6,
                          "image without alt text"),
    "image with blank alt": (article(body="Текст.\n![ ](../assets/scheme.png)\n"), 7,
                             "image without alt text"),
    "html image without alt": (article(body='<img src="../assets/scheme.png">\n'), 6,
                               "image without alt text"),
    "missing image": (article(body="![Схема](../assets/none.png)\n"), 6,
                      "broken link '../assets/none.png': no file docs/assets/none.png"),
    "no support link": (article(support="Конец.\n"), 8,
                        "no support link: end the article with [Обратиться в поддержку]"
                        "(/support/new?from=/launches/x/){ .md-button }"),
    "support link without from": (article(support="[Поддержка](/support/new)"), 8,
                                  "no support link"),
    "support link only in code": (article(support="`/support/new?from=/launches/x/`"), 8,
                                  "no support link"),
    "support link from another page": (
        article(support="[Поддержка](/support/new?from=/launches/y/)"), 8,
        "support link says from=/launches/y/, but this page is /launches/x/: link to "
        "/support/new?from=/launches/x/"),
    "index page's support link": (
        ("launches/sub/index.md", article(support="[П](/support/new?from=/launches/sub/x/)")), 8,
        "support link says from=/launches/sub/x/, but this page is /launches/sub/"),
    "unknown folder": (("drafts/x.md", article(support="[П](/support/new?from=/drafts/x/)")), 1,
                       "folder docs/drafts/ is neither public (docs/, docs/assets/) nor a section"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_article_gives_one_line_with_file_and_line(tmp_path, case):
    content, line, message = BAD[case]
    rel, content = content if isinstance(content, tuple) else ("launches/x.md", content)
    make_docs(tmp_path, {rel: content})
    problems = check_docs(tmp_path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"docs/{rel}:{line}: {message}"), problems


def test_problems_of_one_article_come_in_line_order_with_every_one_reported(tmp_path):
    front = "title: Т\nkeywords: касса\ncolour: red\n"
    make_docs(tmp_path, {"launches/x.md": article(front, "[a](a.md)\n\n![](b.png)\n", "")})
    found = [(p.split(":")[1], p.split(": ", 1)[1].split(" ")[0]) for p in check_docs(tmp_path)]
    assert found == [("1", "missing"), ("3", "keywords"), ("4", "unknown"), ("7", "broken"),
                     ("9", "image"), ("9", "broken"), ("9", "no")]


@pytest.mark.parametrize("src, url", [
    ("index.md", "/"),
    ("contacts.md", "/contacts/"),
    ("launches/index.md", "/launches/"),
    ("launches/new-store.md", "/launches/new-store/"),
    ("claim-desk/sub/index.md", "/claim-desk/sub/"),
])
def test_page_url_follows_mkdocs_directory_urls(src, url):
    assert page_url(src) == url


def test_gate_check_command_prints_problems_and_fails(tmp_path, monkeypatch, capsys):
    from gate.cli import main

    make_docs(tmp_path, {"launches/x.md": article(T)})
    monkeypatch.setenv("GATE_ROOT", str(tmp_path))
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert "docs/launches/x.md:1: missing required field 'description'" in err
    assert "gate: 1 problem(s) in docs/" in err


def test_the_projects_own_articles_pass():
    assert check_docs(PROJECT) == []
