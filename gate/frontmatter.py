"""An article's front matter, read the way MkDocs reads it (YAML between '---' lines at the top).

Lenient: what MkDocs would drop (invalid YAML, not a mapping) reads as {}; `gate check` reports
those problems with file and line (gate.check reads the same block strictly).
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.utils.meta import YAML_RE, get_data

OPENING = re.compile(r"-{3}[ \t]*\n")


def block(text: str) -> re.Match | None:
    """The front matter block (group 1: its YAML) as MkDocs finds it, or None."""
    return YAML_RE.match(text)


def of_text(text: str) -> dict:
    try:
        meta = get_data(text)[1]
    except Exception:  # unreadable front matter is reported by gate check and the build
        return {}
    return meta if isinstance(meta, dict) else {}


def of_file(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        return of_text(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        return {}
