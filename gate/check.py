"""`gate check`: the articles' front matter, links, images and support link, without building.

Every problem is one line `docs/<path>.md:<line>: <message>`. Front matter is found the way MkDocs
finds it (mkdocs.utils.meta: YAML between `---` lines at the very top of the file), but read
strictly: where MkDocs silently drops front matter that does not parse or is not a mapping (and
the page loses its title and description without a word), this check reports it.
"""

from __future__ import annotations

import posixpath
import re
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from gate import frontmatter
from gate.sections import PUBLIC_FOLDERS, SECTIONS, UnknownFolder, section_of_source, section_of_url
from gate.sla_text import problems as sla_problems

try:
    from yaml import CSafeLoader as SafeLoader  # the loader MkDocs uses
except ImportError:  # pragma: no cover
    from yaml import SafeLoader

SUPPORT_PATH = "/support/new"
URL_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _text(value):
    if not isinstance(value, str):
        return f"must be text, not {_kind(value)} (put the value in quotes)"
    return None if value.strip() else "is empty"


def _words(value):
    if not isinstance(value, list):
        return "must be a list of words, e.g. [касса, чек не печатается]"
    bad = [v for v in value if not isinstance(v, str) or not v.strip()]
    return f"must hold only non-empty text, not {bad[0]!r}" if bad else None


def _urls(value):
    if not isinstance(value, list):
        return "must be a list of http(s) addresses, one per line after '  - '"
    for url in value:
        parts = urlsplit(url) if isinstance(url, str) else None
        if not parts or parts.scheme not in ("http", "https") or not parts.netloc \
                or re.search(r"\s", url):
            return f"must hold only http(s) addresses, not {url!r}"
    return None


def _date(value):
    if type(value) is date:
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            date.fromisoformat(value)
            return None
        except ValueError:
            pass
    what = "a date with a time" if isinstance(value, datetime) else repr(value)
    return f"must be a date YYYY-MM-DD, not {what}"


def _number(value):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return None if ok else f"must be a number, not {_kind(value)}"


# field -> (required, validator returning an error or None)
FIELDS = {
    "title": (True, _text),
    "description": (True, _text),
    "keywords": (False, _words),
    "sources": (False, _urls),
    "updated": (False, _date),
    "order": (False, _number),
}


def _kind(value) -> str:
    if value is None:
        return "nothing"
    return {bool: "yes/no", int: "a number", float: "a number", list: "a list", dict: "a mapping",
            date: "a date", datetime: "a date"}.get(type(value), repr(value))


def page_url(rel: str) -> str:
    """The site address of a docs source path: 'launches/x.md' -> '/launches/x/'."""
    parent, name = posixpath.split(rel)
    stem = name[:-3] if name.endswith(".md") else name
    parts = [parent] if parent else []
    if stem not in ("index", "README"):
        parts.append(stem)
    return "/" + "".join(p + "/" for p in parts)


def check_docs(root: Path) -> list[str]:
    """Every problem in root/docs/, one line each, ordered by file and line."""
    docs = Path(root) / "docs"
    if not docs.is_dir():
        return [f"docs/:0: no docs/ folder in {root}"]
    problems = []
    for path in sorted(docs.rglob("*.md")):
        rel = path.relative_to(docs).as_posix()
        problems += [(rel, line, msg) for line, msg in check_article(docs, rel)]
    problems.sort(key=lambda p: (p[0], p[1]))
    return [f"docs/{rel}:{line}: {msg}" for rel, line, msg in problems]


def check_article(docs: Path, rel: str) -> list[tuple[int, str]]:
    """Problems of one article as (line, message)."""
    try:
        text = (docs / rel).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [(1, f"cannot be read as UTF-8 text: {exc}")]
    problems = []
    try:
        section_of_source(rel)
    except UnknownFolder as exc:
        problems.append((1, f"folder docs/{exc}/ is neither public (docs/, "
                            f"{', '.join(f'docs/{f}/' for f in sorted(PUBLIC_FOLDERS))}) nor a "
                            f"section ({', '.join(SECTIONS)}): move the file"))
    meta_problems, body_start = front_matter_problems(text)
    problems += meta_problems
    # Front matter and code are blanked out (newlines kept), so offsets still give line numbers.
    masked = _mask(text, body_start)
    problems += link_problems(docs, rel, masked, last_line=len(text.rstrip().split("\n")))
    problems += sla_problems(text, masked, body_start)  # deadlines come from tariffs.yml
    return problems


def front_matter_problems(text: str) -> tuple[list[tuple[int, str]], int]:
    """Problems of the front matter, and the offset where the body starts."""
    add_fields = "start the file with a '---' line, title:, description:, then a '---' line"
    if not frontmatter.OPENING.match(text):
        return [(1, f"no front matter: {add_fields}")], 0
    m = frontmatter.block(text)
    if not m:
        return [(1, "front matter is not closed: add a '---' line after its last field")], 0
    problems: list[tuple[int, str]] = []
    loader = SafeLoader(m.group(1))
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 2 if mark else 1
        what = getattr(exc, "problem", None) or str(exc)
        return [(line, f"front matter is not valid YAML ({what}), so MkDocs would silently drop "
                       "all of it: put a value in quotes if it contains ': ' or ' #' or starts "
                       "with one of [ { * & ! | > ' \" % @ `")], m.end()
    if not isinstance(node, yaml.MappingNode):
        line = node.start_mark.line + 2 if node is not None else 1
        return [(line, "front matter is not a mapping of fields (title: ..., description: ...), "
                       "so MkDocs would silently drop it")], m.end()
    source_lines = m.group(1).split("\n")
    seen = set()
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 2
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in FIELDS:
            problems.append((line, f"unknown field {key!r} in front matter (allowed: "
                                   f"{', '.join(FIELDS)})"))
            continue
        if key in seen:
            problems.append((line, f"field {key!r} is given twice; the last one would win"))
        seen.add(key)
        try:
            value = loader.construct_object(value_node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            what = "must be a date YYYY-MM-DD" if key == "updated" else "cannot be read"
            problems.append((line, f"{key} {what} ({exc})"))
            continue
        error = FIELDS[key][1](value)
        if error:
            problems.append((line, f"{key} {error}"))
        elif isinstance(value_node, yaml.ScalarNode) and not value_node.style \
                and isinstance(value, str):
            end = value_node.end_mark
            if "#" in source_lines[end.line][end.column:]:
                problems.append((line, f"{key}: the text after ' #' is a YAML comment and is "
                                       "dropped; put the whole value in quotes"))
    for key, (required, _) in FIELDS.items():
        if required and key not in seen:
            problems.append((1, f"missing required field {key!r} in front matter"))
    return problems, m.end()


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
# A code span ends within its paragraph; an unmatched backtick must not swallow the next one.
CODE_SPAN_RE = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.S)
COMMENT_RE = re.compile(r"<!--.*?(?:-->|\Z)", re.S)


def _mask(text: str, body_start: int) -> str:
    lines = text[body_start:].split("\n")
    fence = None
    for i, line in enumerate(lines):
        m = FENCE_RE.match(line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and m and m.group(1).startswith(fence) \
                and not line.strip().strip(fence[0]):
            fence = None
        elif fence is None:
            continue
        lines[i] = " " * len(line)
    body = "\n".join(lines)
    for pattern in (COMMENT_RE, CODE_SPAN_RE):
        body = pattern.sub(_blank, body)
    return re.sub(r"[^\n]", " ", text[:body_start]) + body


# [text](url "title") and ![alt](url); the text may hold one level of [brackets].
INLINE_RE = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)"
                       r"[^\s()]*)*)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
# [id]: url, but not a footnote ([^1]: text)
REF_DEF_RE = re.compile(r"^ {0,3}\[([^\]^][^\]]*)\]:[ \t]*<?([^\s>]+)>?", re.M)
REF_IMG_RE = re.compile(r"!\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\[[^\]]*\]")
HTML_TAG_RE = re.compile(r"<(a|img)\b([^>]*)>", re.I)
ATTR_RE = re.compile(r"([\w-]+)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)")


def link_problems(docs: Path, rel: str, masked: str, last_line: int) -> list[tuple[int, str]]:
    """Broken links, images without alt text, and the support link of this page."""
    def line_of(pos):
        return masked.count("\n", 0, pos) + 1

    links = []  # (offset, url, is_image, alt or None)
    for m in INLINE_RE.finditer(masked):
        links.append((m.start(), m.group(3).strip("<>"), m.group(1) == "!", m.group(2)))
    for m in REF_DEF_RE.finditer(masked):
        links.append((m.start(), m.group(2), False, None))
    for m in REF_IMG_RE.finditer(masked):
        links.append((m.start(), "", True, m.group(1)))
    for m in HTML_TAG_RE.finditer(masked):
        attrs = {k.lower(): v.strip("\"'") for k, v in ATTR_RE.findall(m.group(2))}
        is_image = m.group(1).lower() == "img"
        links.append((m.start(), attrs.get("src" if is_image else "href", ""), is_image,
                      attrs.get("alt", "") if is_image else None))

    problems = []
    url = page_url(rel)
    support = []
    for pos, target, is_image, alt in sorted(links):
        if is_image and not (alt or "").strip():
            problems.append((line_of(pos), "image without alt text: write what it shows in "
                                           "![...](...)"))
        error = _link_error(docs, rel, target)
        if error:
            problems.append((line_of(pos), error))
        parts = urlsplit(target)
        if not is_image and not parts.scheme and not parts.netloc and parts.path == SUPPORT_PATH:
            support.append((pos, parse_qs(parts.query).get("from")))
    expected = f"{SUPPORT_PATH}?from={url}"
    if not any(origin == [url] for _, origin in support):
        wrong = [(pos, origin) for pos, origin in support if origin]
        if wrong:
            pos, origin = wrong[-1]
            problems.append((line_of(pos), f"support link says from={origin[0]}, but this "
                                           f"page is {url}: link to {expected}"))
        else:
            problems.append((last_line, "no support link: end the article with "
                             f"[Обратиться в поддержку]({expected}){{ .md-button }}"))
    return problems


def _link_error(docs: Path, rel: str, target: str) -> str | None:
    parts = urlsplit(target)
    if URL_SCHEME_RE.match(target) or target.startswith("//") or not parts.path:
        return None  # another site, mail, phone, or an anchor on this page
    path = unquote(parts.path)
    if path.startswith("/"):
        return _absolute_link_error(docs, path, target)
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), path))
    if resolved == ".." or resolved.startswith("../"):
        return f"link {target!r} points outside docs/"
    file = docs / resolved
    if file.is_dir():
        return (f"link {target!r} points to a folder: link to the page itself, e.g. "
                f"{posixpath.join(path.rstrip('/'), 'index.md')!r}")
    if not file.is_file():
        what = "page" if path.endswith(".md") else "file"
        return f"broken link {target!r}: no {what} docs/{resolved}"
    return None


def _absolute_link_error(docs: Path, path: str, target: str) -> str | None:
    # Only addresses inside a section are checked: the rest (/login, /support/new) are the gate's.
    if section_of_url(path) is None:
        return None
    inner = path.strip("/")
    if inner.endswith(".md"):
        candidates = [inner]
    else:
        candidates = [f"{inner}/index.md", f"{inner}.md"]
    if any((docs / c).is_file() for c in candidates):
        return None
    return (f"broken link {target!r}: no page docs/{candidates[-1]}; prefer a relative link to "
            "the .md file")
