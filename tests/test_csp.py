"""The Content-Security-Policy: scripts only from the site's files, on every answer, in both
modes (issue 12, point 6).

- One string (gate.security.CONTENT_SECURITY_POLICY) sent by the fast path, by Flask and by
  nginx (its add_header lines are written from it by gate.edge_config).
- No built page keeps an inline script: the build moves Material's into files
  (gate.inline_scripts); ours are files in overrides/assets/javascripts/.
- In the real browser (chromium), every page kind of the real knowledge base, standalone and in
  edge mode: no violation in the console, and the scripts still do their work (search box,
  palette toggle, code copy, the support form's hint and suggestions).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gate import edge_config, inline_scripts
from gate.security import CONTENT_SECURITY_POLICY, security_headers
from tests import browser_support as bs

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


# --- the real browser --------------------------------------------------------------------------

pytestmark_browser = pytest.mark.skipif(
    not (bs.CHROMIUM.exists() and bs.CHROMEDRIVER.exists()),
    reason="browser tests need Debian's chromium and chromium-driver")


@pytest.fixture(scope="module", params=["standalone", "edge"])
def server(request, tmp_path_factory):
    if request.param == "edge" and bs.NGINX is None:
        pytest.skip("edge mode needs nginx (apt-get install nginx)")
    project = bs.build_project(tmp_path_factory.getbasetemp() / "kb-real-project")
    with bs.start_server(tmp_path_factory.mktemp(f"csp-{request.param}"), project,
                         request.param) as server:
        yield server


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    driver = bs.chromium(tmp_path_factory.mktemp("csp-profile") / "profile")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def fresh(browser, server):
    """The module's browser, logged out, its console read empty."""
    browser.get(server.url("/healthz"))
    browser.delete_all_cookies()
    bs.console(browser)
    return browser


def test_every_answer_carries_the_policy(server):
    import requests

    public = Path(server.env["GATE_ROOT"]) / "site/editions/public"
    bundle = next(public.glob("assets/javascripts/bundle.*.min.js")).relative_to(public)
    # the fast path (files in standalone mode), nginx (files in edge mode), Flask (the rest)
    for path in ("/", "/assets/kb.css", f"/{bundle}", "/login", "/no-such-page/",
                 "/functionality/", "/api/search?q=x", "/healthz"):
        r = requests.get(server.url(path), timeout=10, allow_redirects=False,
                         headers={"Accept": "text/html"})
        assert r.headers.get("Content-Security-Policy") == CONTENT_SECURITY_POLICY, (path, r)


@pytestmark_browser
@pytest.mark.parametrize("kind", list(bs.PAGE_KINDS))
def test_no_csp_violation_on_any_page_kind(fresh, server, kind):
    bs.visit(fresh, server, kind)
    messages = bs.console(fresh)
    assert not bs.csp_violations(messages), f"{kind} ({server.mode}):\n" + "\n".join(messages)
    assert not [m for m in messages if "Uncaught" in m], "\n".join(messages)  # scripts ran
    assert fresh.execute_script("return document.querySelector('script:not([src]):not([type])')"
                                " === null"), "an inline script in the page"


@pytestmark_browser
def test_scripts_still_work_under_the_policy(fresh, server):
    """Palette toggle, code copy, the support form's out-of-SLA hint and its suggestions."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    article = "/functionality/erp-export/"  # has code blocks and tabs
    bs.log_in(fresh, server, bs.START_USER, article)
    bs.loaded(fresh)
    scheme = fresh.execute_script("return document.body.getAttribute('data-md-color-scheme')")
    toggle = [label for label in fresh.find_elements(By.CSS_SELECTOR, "form[data-md-component=palette]"
                                                     " label.md-header__button") if label.is_displayed()]
    toggle[0].click()
    bs.wait(fresh).until(lambda d: d.execute_script(
        "return document.body.getAttribute('data-md-color-scheme')") != scheme)

    copy = bs.by_css(fresh, "button.md-code__button[data-md-type=copy]")
    fresh.execute_script("arguments[0].scrollIntoView({block: 'center'})", copy)
    copy.click()
    bs.wait(fresh).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".md-dialog--active"))

    fresh.get(server.url("/support/new"))
    form = bs.by_css(fresh, "#support-form")
    select = Select(form.find_element(By.NAME, "category"))
    hint = form.find_element(By.ID, "out-of-sla")
    assert not hint.is_displayed()
    outside = [o.get_attribute("value") for o in select.options if o.get_attribute("data-in-sla") == "no"]
    assert outside, "a category outside the tariff's deadlines"
    select.select_by_value(outside[0])
    bs.wait(fresh).until(lambda d: hint.is_displayed())
    form.find_element(By.NAME, "description").send_keys("Не выгружаются чеки в ERP, выгрузка чеков стоит")
    bs.wait(fresh).until(lambda d: d.find_element(By.ID, "suggestions").is_displayed())
    assert fresh.find_elements(By.CSS_SELECTOR, "#suggestions li a")
    messages = bs.console(fresh)
    assert not bs.csp_violations(messages), "\n".join(messages)
