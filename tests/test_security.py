import pytest

from gate.security import cache_headers, safe_next, same_origin
from gate.site import normalize_path


@pytest.mark.parametrize("value", [
    "//evil.example", "//evil.example/path", "/\\evil.example", "\\\\evil.example",
    "https://evil.example", "http:evil.example", "javascript:alert(1)", "JaVaScRiPt:alert(1)",
    "/%2F%2Fevil.example", "/%2f/evil.example", "/%5Cevil.example", "%2F%2Fevil.example",
    "/%252F%252Fevil.example", "/\tjavascript:x", "/ /evil", "/\r\nLocation: x", "evil.example",
    "", None, "/" + "a" * 3000, "data:text/html,x", "///evil.example",
])
def test_next_refuses_attack_forms(value):
    assert safe_next(value) == "/"


@pytest.mark.parametrize("value", ["/", "/launches/new-store/", "/support/new?from=/x/", "/a/b#c"])
def test_next_keeps_local_paths(value):
    assert safe_next(value) == value


EXPECTED = {"http://kb.example"}


@pytest.mark.parametrize("origin, referer, ok", [
    ("http://kb.example", None, True),
    ("http://kb.example/", None, True),
    ("http://evil.example", None, False),
    ("https://kb.example", None, False),
    ("null", None, False),
    (None, "http://kb.example/login", True),
    (None, "http://evil.example/kb.example", False),
    (None, None, True),     # not a browser's cross-site post; the CSRF token decides
])
def test_same_origin(origin, referer, ok):
    assert same_origin(origin, referer, EXPECTED) is ok


@pytest.mark.parametrize("path, norm", [
    ("/", "/"), ("/a/b/", "/a/b/"), ("/a/../launches/x/", "/launches/x/"),
    ("/../../etc/passwd", "/etc/passwd"), ("//launches/x", "/launches/x"),
    ("/a\\b", None), ("/a\x00", None), ("/" + "a" * 2000, None),
])
def test_normalize_path(path, norm):
    assert normalize_path(path) == norm


def test_fingerprinted_assets_are_public_and_pages_private():
    h = {}
    cache_headers(h, "/assets/javascripts/bundle.79ae519e.min.js")
    assert "immutable" in h["Cache-Control"]
    h = {}
    cache_headers(h, "/launches/")
    assert h["Cache-Control"].startswith("private") and h["Vary"] == "Cookie"
