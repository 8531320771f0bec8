"""A generated project for benchmarks: 300 articles over the four sections, four tariffs."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

from tests.helpers.project import TEST_TARIFFS

PROJECT = Path(__file__).resolve().parent.parent
TARIFFS = TEST_TARIFFS  # start, solo-func, solo-claim, pair: the same as the tests use
WORDS = ("касса сервер магазин загрузка цены товары чек смена консервация журнал выгрузка "
         "импорт лояльность акция скидка купон отчёт настройка обновление версия ошибка").split()


def make_corpus(root: Path, articles: int = 300, seed: int = 1) -> Path:
    rnd = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "mkdocs.yml", root / "mkdocs.yml")
    for link in ("overrides", "gate", "search-synonyms.yml"):
        os.symlink(PROJECT / link, root / link)
    shutil.copytree(PROJECT / "docs", root / "docs")  # the real articles, then generated ones
    sections = ["launches", "functionality", "maintenance", "claim-desk"]
    existing = sum(1 for p in (root / "docs").rglob("*.md") if p.name != "index.md")
    for i in range(max(0, articles - existing)):
        section = sections[i % 4]
        url = f"/{section}/generated-{i:03d}/"
        paragraphs = "\n\n".join(
            " ".join(rnd.choice(WORDS) for _ in range(60)).capitalize() + "." for _ in range(6))
        (root / "docs" / section / f"generated-{i:03d}.md").write_text(
            f"---\ntitle: Статья {i:03d} о {rnd.choice(WORDS)}\ndescription: Сгенерированная статья.\n"
            f"order: {1000 + i}\n---\n\n## Симптом\n\n{paragraphs}\n\n## Что проверить\n\n"
            f"1. {rnd.choice(WORDS)}\n2. {rnd.choice(WORDS)}\n\n"
            f"[Обратиться в поддержку](/support/new?from={url}){{ .md-button }}\n")
    (root / "tariffs.yml").write_text(TARIFFS)
    return root
