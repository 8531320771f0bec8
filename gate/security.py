"""Small security decisions: local redirect targets, same-origin checks, response headers."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
FINGERPRINTED = re.compile(r"^/assets/(stylesheets|javascripts)/.+\.[0-9a-f]{8,}\.min\.(css|js)(\.map)?$")

# Scripts and styles only from files of this site: the build moves Material's inline scripts
# into files (gate.inline_scripts), ours live in overrides/assets/javascripts/, and no page has
# a style attribute (scripts set styles through the DOM, which the policy allows). One constant
# for every answer, so nginx's configuration (written from it by gate.edge_config) and the fast
# path's cached headers never go stale. Images and fonts allow data: (Material's icons are
# data: SVGs in its CSS).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])


def safe_next(value: str | None, default: str = "/") -> str:
    """`value` when it is a path on this site, else `default`.

    Refuses '//host', '/\\host', schemes ('https:', 'javascript:'), encoded slashes and
    backslashes that a browser may decode into one of those, and control characters.
    """
    if not value or len(value) > 2000 or not value.startswith("/"):
        return default
    decoded = value
    for _ in range(3):  # catch double and triple encoding too
        decoded = unquote(decoded)
    for candidate in (value, decoded):
        if _BAD_CHARS.search(candidate) or candidate.startswith("//"):
            return default
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return default
    return value


def same_origin(origin: str | None, referer: str | None, expected: set[str]) -> bool:
    """Whether a state-changing request comes from our own pages.

    A browser sends Origin (or at least Referer) with a cross-site form post; a request with
    neither is not a browser's cross-site request, and its CSRF token (where the form has one)
    still decides.
    """
    if origin and origin != "null":
        return origin.rstrip("/") in expected
    if origin == "null":
        return False
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}" in expected
    return True


def security_headers(headers, production: bool) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("Referrer-Policy", "same-origin")
    if production:  # two years: the minimum of Mozilla's TLS guidelines
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")


def cache_headers(headers, path: str) -> None:
    """Fingerprinted theme assets are the same in every edition; everything else is per visitor."""
    if FINGERPRINTED.match(path):
        headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        headers["Cache-Control"] = "private, no-cache"
        vary = headers.get("Vary")
        if not vary or "cookie" not in vary.lower():
            headers["Vary"] = f"{vary}, Cookie" if vary else "Cookie"
