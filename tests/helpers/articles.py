"""Articles and docs/ trees for the tests of `gate check`, the build and the SLA placeholders."""

from __future__ import annotations

SUPPORT = "[Обратиться в поддержку](/support/new?from=/launches/x/){ .md-button }"


def article(front: str = "title: Статья\ndescription: О чём статья.\n", body: str = "Текст.\n",
            support: str = SUPPORT) -> str:
    return f"---\n{front}---\n\n{body}\n{support}\n"


def make_docs(root, files: dict[str, str]):
    """A docs/ tree like the project's: public pages, a section folder, an asset."""
    docs = root / "docs"
    base = {
        "index.md": article(support="[Поддержка](/support/new?from=/)"),
        "launches/index.md": article(support="[Поддержка](/support/new?from=/launches/)"),
        "maintenance/other.md": article(
            support="[Поддержка](/support/new?from=/maintenance/other/)"),
    }
    for rel, text in {**base, **files}.items():
        (docs / rel).parent.mkdir(parents=True, exist_ok=True)
        (docs / rel).write_text(text, encoding="utf-8")
    (docs / "assets").mkdir(exist_ok=True)
    (docs / "assets/scheme.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return root
