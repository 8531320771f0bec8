"""The leak crawler: every identity, every reachable URL and every file of every edition."""

import gzip
import re
from html import unescape
from urllib.parse import quote, urljoin, urlsplit

import pytest

from gate.sections import SECTIONS
from tests.helpers.http import login
from tests.helpers.project import marker

LINK = re.compile(r'(?:href|src)="([^"]+)"')
IDENTITIES = {
    "anonymous": (None, set()),
    "start": ("start@client.example", set(SECTIONS)),
    "one-section": ("func@client.example", {"functionality"}),
    "disabled": ("disabled@client.example", set()),
    "ended": ("ended@client.example", set()),
}


def every_edition_file(root):
    paths = set()
    for edition in (root / "site/editions").iterdir():
        for p in edition.rglob("*"):
            if p.is_file():
                paths.add("/" + p.relative_to(edition).as_posix())
    return paths


def assert_clean(path, response, forbidden):
    data = response.get_data()
    if path.endswith(".gz") and response.status_code == 200:
        data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace")
    # allowed: the requested address echoed back in from=/next=
    for echo in (path, quote(path, safe=""), quote(path)):
        text = text.replace(f"from={echo}", "").replace(f"next={echo}", "")
    for s in forbidden:
        for kind in ("title", "body", "url"):
            assert marker(s, kind) not in text, f"{path} ({response.status_code}) leaks {kind} of {s}"
    assert response.status_code < 500, path


@pytest.mark.parametrize("who", IDENTITIES)
def test_crawl_finds_nothing_of_locked_sections(app, built_project, who):
    root, _ = built_project
    email, allowed = IDENTITIES[who]
    client = app.test_client()
    if email:
        login(client, email)
    forbidden = [s for s in SECTIONS if s not in allowed]
    seen, queue = set(), ["/"]
    queue += sorted(every_edition_file(root))
    queue += [f"/{marker(s, 'url')}/" for s in SECTIONS]
    while queue and len(seen) < 3000:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        r = client.get(path, headers={"Accept": "text/html"})
        assert_clean(path, r, forbidden)
        if r.mimetype == "text/html":
            for link in LINK.findall(r.get_data(as_text=True)):
                url = urlsplit(urljoin("http://localhost" + path, unescape(link)))
                if url.netloc == "localhost" and url.path not in seen:
                    queue.append(url.path)
    assert len(seen) > 50  # every file of every edition was asked for
    for s in allowed:  # and what the identity may see really is there
        r = client.get(f"/{marker(s, 'url')}/")
        assert r.status_code == 200 and marker(s, "body") in r.get_data(as_text=True)
