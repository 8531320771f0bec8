"""The addresses the gate answers itself rather than from an edition's files.

The fast path hands them to the application, and edge mode's nginx locations are written from
this list (gate.edge_config), so neither can serve a file where the gate should answer. A test
checks that every route of the application is covered.
"""

from __future__ import annotations

# /feed.xml: each edition has its own, chosen by the session cookie or a personal ?key= that
# only the gate can check (gate.views.changes), so nginx never serves it as a file.
EXACT = ("/login", "/logout", "/healthz", "/feed.xml", "/staff")
PREFIXES = ("/account/", "/login/", "/password/", "/support/", "/api/", "/staff/", "/invite/",
            "/sso/")
# Files of site/ that are never served as files: the gate answers them (404).
INTERNAL_EXACT = ("/403.html", "/manifest.json", "/articles.json")
INTERNAL_PREFIXES = ("/editions/",)


def owned_by_gate(path: str) -> bool:
    """Whether the gate answers `path` itself (forms, APIs, internal files), whoever asks."""
    return (path in EXACT or path in INTERNAL_EXACT
            or path.startswith(PREFIXES) or path.startswith(INTERNAL_PREFIXES))
