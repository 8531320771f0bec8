"""Moves a built page's inline scripts into files, so the Content-Security-Policy can forbid
inline scripts altogether (gate.security.CONTENT_SECURITY_POLICY).

Material writes small inline scripts into every page (its local-storage helpers in the head, the
palette, tab and anchor restorers in the body). Each becomes a file named by its content's hash,
`assets/kb/inline/<hash>.js` in the edition, and the page gets `<script src=...>` in its place:
a classic script from a file runs at the same point of the page, synchronously, as the inline
one did. Data blocks (`type="application/json"`, Material's `__config`) are not scripts and stay.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

FOLDER = "assets/kb/inline"
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
_TYPE = re.compile(r"""\btype\s*=\s*["']?([^"'\s>]+)""", re.I)
_EXECUTABLE = {"", "text/javascript", "application/javascript", "module"}


def _executable(attrs: str) -> bool:
    if re.search(r"\bsrc\s*=", attrs, re.I):
        return False
    kind = _TYPE.search(attrs)
    return (kind.group(1).lower() if kind else "") in _EXECUTABLE


def externalize(html: str, site_dir: str, prefix: str) -> str:
    """`html` with every inline script replaced by a file under `site_dir`/FOLDER.

    `prefix` leads from the page to the site's root: "../" for a page one folder deep, "/" for
    the error pages, which are served under any address.
    """
    def move(m: re.Match) -> str:
        attrs, body = m.group(1), m.group(2)
        if not _executable(attrs) or not body.strip():
            return m.group(0)
        data = body.encode()
        name = f"{FOLDER}/{hashlib.sha256(data).hexdigest()[:20]}.js"
        path = Path(site_dir) / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return f'<script{attrs} src="{prefix}{name}"></script>'

    return _SCRIPT.sub(move, html)
