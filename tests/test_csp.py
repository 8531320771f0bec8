"""The Content-Security-Policy: scripts only from the site's files, on every answer, in both
modes (issue 12, point 6).

- One string (gate.security.CONTENT_SECURITY_POLICY) sent by the fast path, by Flask and by
  nginx (its add_header lines are written from it by gate.edge_config).
- No built page keeps an inline script: the build moves Material's into files
  (gate.inline_scripts); ours are files in overrides/assets/javascripts/.
- In the real browser, tests/test_browser_pages.py: every answer of both modes carries it, no
  page kind has a violation in chromium's console, and the scripts still do their work.
"""

from __future__ import annotations

import re
from pathlib import Path

from gate import edge_config, inline_scripts
from gate.security import CONTENT_SECURITY_POLICY, security_headers

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)


def directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}


def test_the_policy_restricts_scripts():
    policy = directives(CONTENT_SECURITY_POLICY)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'self'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    for name in ("production", "local"):
        headers = {}
        security_headers(headers, production=name == "production")
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_externalize_moves_scripts_and_keeps_data_blocks(tmp_path):
    html = ('<head><script>var a = 1;</script></head><body><script id="__config" '
            'type="application/json">{"x": 1}</script><script src="b.js"></script>'
            '<script type="module">import "./c.js";</script><script>var a = 1;</script></body>')
    out = inline_scripts.externalize(html, str(tmp_path), "../")
    tags = SCRIPT_TAG.findall(out)
    assert [body for attrs, body in tags if "json" in attrs] == ['{"x": 1}']
    assert all(not body.strip() for attrs, body in tags if "json" not in attrs), out
    files = sorted((tmp_path / inline_scripts.FOLDER).iterdir())
    assert [f.read_text() for f in files] == sorted(['import "./c.js";', "var a = 1;"])
    same = f'src="../{inline_scripts.FOLDER}/{[f for f in files if "var" in f.read_text()][0].name}"'
    assert out.count(same) == 2  # one file for one content
    assert 'type="module" src="../' in out


def test_no_built_page_has_an_inline_script(built_project):
    root, _ = built_project
    editions = root / "site" / "editions"
    pages = list(editions.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        edition = editions / page.relative_to(editions).parts[0]
        text = page.read_text()
        assert not re.search(r"<[^>]+\sstyle=", text), f"a style attribute in {page}"
        for attrs, body in SCRIPT_TAG.findall(text):
            if "application/json" in attrs:
                continue
            assert not body.strip(), f"inline script in {page}: {body[:80]!r}"
            src = re.search(r'src="([^"]+)"', attrs).group(1)
            target = edition / src[1:] if src.startswith("/") else page.parent / src
            assert target.resolve().is_file(), f"{page}: {src} is missing"


def test_aligned_table_columns_need_no_style_attribute():
    import markdown
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "mkdocs.yml").read_text())
    names, settings = [], {}
    for entry in config["markdown_extensions"]:
        name, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, None)
        names.append(name)
        settings[name] = options or {}
    html = markdown.markdown("| a | b |\n|:-:|--:|\n| 1 | 2 |\n", extensions=["tables"],
                             extension_configs={"tables": settings["tables"]})
    assert 'align="center"' in html and "style=" not in html, html


def test_gate_templates_have_no_inline_script_or_style():
    templates = Path(__file__).resolve().parent.parent / "gate" / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text()
        for attrs, body in SCRIPT_TAG.findall(text):
            assert not body.strip(), f"inline script in {template.name}"
        assert not re.search(r"\sstyle\s*=|\son[a-z]+\s*=", text), template.name


def test_nginx_sends_the_same_policy_as_the_gate():
    lines = edge_config.security_header_lines(production=True)
    assert f'add_header Content-Security-Policy "{CONTENT_SECURITY_POLICY}" always;' in lines
    template = (Path(__file__).resolve().parent.parent / "deploy/nginx.conf.template").read_text()
    assert "Content-Security-Policy" not in template, "typed again in the template"
