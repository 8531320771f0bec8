"""MkDocs hooks that cut one edition of the site out of docs/.

`config.extra.gate.sections` lists the sections of the edition being built (set by gate.build);
without it (plain `mkdocs build` / `mkdocs serve` while writing) every section is included.
Each hook is short; the decisions come from gate.sections.
"""

from __future__ import annotations

import posixpath
import re
from html import unescape
from urllib.parse import urlsplit

from markdown import Extension
from markdown.treeprocessors import Treeprocessor
from mkdocs.exceptions import PluginError

from gate import frontmatter, inline_scripts, sla_text
from gate.access import may_see
from gate.sections import SECTIONS, UnknownFolder, section_of_source, section_of_url

_state = {"allowed": frozenset(SECTIONS), "page_src": ""}


def _allowed(config) -> frozenset[str]:
    gate = (config.extra or {}).get("gate") or {}
    return frozenset(gate.get("sections", SECTIONS))


def on_config(config):
    _state["allowed"] = _allowed(config)
    gate = (config.extra or {}).get("gate")  # SLA words: from gate.build, else the tariffs file
    _state["sla"] = gate.get("sla", {}) if gate else sla_text.preview_phrases(
        posixpath.dirname(config.config_file_path), _state["allowed"])
    config.markdown_extensions.append(_OutsideLinks())
    return config


def on_files(files, config):
    allowed = _state["allowed"]
    for file in list(files):
        try:
            section = section_of_source(file.src_uri)
        except UnknownFolder as exc:
            raise PluginError(
                f"docs/{exc}/ is neither public (docs/, docs/assets/) nor a section "
                f"({', '.join(SECTIONS)}); move '{file.src_uri}' or declare the section") from None
        if not may_see(allowed, section):
            files.remove(file)
    return files


def _front_matter(page) -> dict:
    return frontmatter.of_text(page.file.content_string)


def _sort_key(item):
    page = item if item.is_page else next((c for c in item.children if c.is_page and c.is_index), None)
    meta = _front_matter(page) if page else {}
    order = meta.get("order", 1000)
    title = str(meta.get("title") or (item.title if not item.is_page else page.file.name))
    is_index = bool(item.is_page and item.is_index)
    return (not is_index, order if isinstance(order, (int, float)) else 1000, title.lower())


def _arrange(items, depth=0):
    for item in items:
        if item.is_section:
            folder = item.children and _folder_of(item)
            if depth == 0 and folder in SECTIONS:
                item.title = SECTIONS[folder]
            else:
                index = next((c for c in item.children if c.is_page and c.is_index), None)
                title = _front_matter(index).get("title") if index else None
                if title:
                    item.title = str(title)
            _arrange(item.children, depth + 1)
    items.sort(key=_sort_key)
    if depth == 0:
        # Public pages first, then the sections in the tariff's order.
        order = list(SECTIONS)
        items.sort(key=lambda i: (order.index(_folder_of(i)) if i.is_section and _folder_of(i) in order else -1))


def _folder_of(section) -> str | None:
    for child in section.children:
        if child.is_page:
            return child.file.src_uri.split("/")[0]
        if child.is_section:
            return _folder_of(child)
    return None


def on_nav(nav, config, files):
    _arrange(nav.items)
    # prev/next links follow the arranged order
    pages = []

    def walk(items):
        for item in items:
            if item.is_page:
                pages.append(item)
            elif item.is_section:
                walk(item.children)

    walk(nav.items)
    for i, page in enumerate(pages):
        page.previous_page = pages[i - 1] if i else None
        page.next_page = pages[i + 1] if i + 1 < len(pages) else None
    nav.pages = pages
    return nav


def on_page_markdown(markdown, page, config, files):
    _state["page_src"] = page.file.src_uri
    return sla_text.render(markdown, _state["sla"])  # deadlines from the tariffs


_HTML_LINK = re.compile(r"<a\b[^>]*?\bhref\s*=\s*([\"'])(.*?)\1[^>]*>.*?</a\s*>", re.S | re.I)
_HTML_IMG = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*([\"'])(.*?)\1[^>]*>", re.S | re.I)


def on_page_content(html, page, config, files):
    """Raw HTML links and images (which Markdown leaves alone) get the same treatment."""
    allowed = _state["allowed"]

    def locked(m):
        section = _target_section(unescape(m.group(2)), page.file.src_uri, base=page.url)
        if may_see(allowed, section):
            return m.group(0)
        if m.group(0)[:4].lower() == "<img":
            return ""
        return f'<a href="/{section}/" class="kb-locked-link">раздел «{SECTIONS[section]}»</a>'

    return _HTML_IMG.sub(locked, _HTML_LINK.sub(locked, html))


def on_post_page(output, page, config):
    """Inline scripts into files: the Content-Security-Policy allows none (gate.inline_scripts)."""
    return inline_scripts.externalize(output, config.site_dir, "../" * page.url.count("/"))


def on_post_template(output, template_name, config):
    """The same for the error pages (404.html, the gate's shell 403.html), served under any
    address: their scripts are addressed from the site's root."""
    root = urlsplit(config.site_url or "/").path or "/"
    return inline_scripts.externalize(output, config.site_dir, root if root.endswith("/") else root + "/")


class _OutsideLinksProcessor(Treeprocessor):
    """Points links to pages outside the edition at their section's root, without their text.

    The locked section's root is all a reader of this edition may learn: the link text (often
    the target's title) becomes the section's name, and images from there are dropped.
    """

    def run(self, root):
        allowed = _state["allowed"]
        for parent in root.iter():
            for el in list(parent):
                attr = "href" if el.tag == "a" else "src" if el.tag == "img" else None
                if attr is None or not el.get(attr):
                    continue
                section = _target_section(el.get(attr), _state["page_src"])
                if may_see(allowed, section):
                    continue
                if el.tag == "img":
                    parent.remove(el)
                    continue
                for child in list(el):
                    el.remove(child)
                el.text = f"раздел «{SECTIONS[section]}»"
                el.attrib = {"href": f"/{section}/", "class": "kb-locked-link"}


def _target_section(url: str, page_src: str, base: str | None = None) -> str | None:
    """Section a link points into; relative links resolve against the page's source folder
    (Markdown) or `base`, the page's own URL folder (rendered HTML)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    if parts.path.startswith("/"):
        target = parts.path.lstrip("/")
    else:
        folder = base if base is not None else posixpath.dirname(page_src)
        target = posixpath.normpath(posixpath.join(folder, parts.path))
    return section_of_url("/" + target)


class _OutsideLinks(Extension):
    def extendMarkdown(self, md):
        # before mkdocs' own link validation ("relpath", priority 0)
        md.treeprocessors.register(_OutsideLinksProcessor(md), "gate_outside_links", 1)


