"""Every page kind of the real knowledge base in Debian's chromium, standalone and in edge mode:
the Content-Security-Policy (issue 12, point 6) and accessibility (issue 22, WCAG 2.1 AA).

- Each page kind (tests/helpers/browser.PAGE_KINDS), visited once: no policy violation and no
  uncaught error in the console, no inline script, and no serious or critical violation of
  axe-core (pinned, fetched at set-up by scripts/fetch_axe.py); form errors name their fields.
  The dark scheme and a narrow (phone) layout on the page kinds whose colours and layout differ,
  in standalone mode (the same files in edge mode).
- Every answer carries the one policy: the fast path, Flask and nginx; the scripts still work
  under it (palette toggle, code copy, the support form's hint and suggestions).
- A keyboard-only walk (Tab, Enter, Space and typing) logs in, files a support request and finds
  an article with the search box, every control showing where the focus is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.security import CONTENT_SECURITY_POLICY
from tests.helpers import browser as bs

if not (bs.CHROMIUM.exists() and bs.CHROMEDRIVER.exists()):
    pytest.skip("browser tests need Debian's chromium and chromium-driver "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

# Page kinds whose colours or layout differ: buttons, errors, search matches, tables, footer.
VARIANT_KINDS = ["home", "article", "search results", "login with error",
                 "support form with errors", "account", "request page"]
VIEWS = {"light": (1400, "default"), "dark": (1400, "slate"), "narrow": (600, "default")}


@pytest.fixture(scope="module")
def axe_js():
    """axe.min.js, or why it could not be fetched (then only the accessibility checks skip)."""
    try:
        return bs.axe_source()
    except bs.AxeUnavailable as exc:
        return exc


def need(axe_js) -> str:
    if isinstance(axe_js, Exception):
        pytest.skip(str(axe_js))
    return axe_js


@pytest.fixture(scope="module", params=["standalone", "edge"])
def server(request, tmp_path_factory):
    if request.param == "edge" and bs.NGINX is None:
        pytest.skip("edge mode needs nginx (apt-get install nginx)")
    project = bs.build_project(tmp_path_factory.getbasetemp() / "kb-real-project")
    with bs.start_server(tmp_path_factory.mktemp(f"pages-{request.param}"), project,
                         request.param) as server:
        yield server


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    driver = bs.chromium(tmp_path_factory.mktemp("pages-profile") / "profile")
    try:
        yield driver
    finally:
        driver.quit()


def prepare(driver, server, view: str) -> None:
    """Logged out, in the view's window size and colour scheme (Material keeps the chosen
    palette in local storage)."""
    width, scheme = VIEWS[view]
    driver.get(server.url("/healthz"))
    driver.delete_all_cookies()
    driver.set_window_size(width, 1000)
    driver.get(server.url("/tariff-start/"))
    bs.loaded(driver)
    index = 1 if scheme == "slate" else 0
    driver.execute_script(
        "localStorage.setItem(__md_scope.pathname + '.__palette', JSON.stringify("
        "{index: arguments[0], color: {media: '', scheme: arguments[1], primary: 'indigo',"
        " accent: 'indigo'}}))", index, scheme)
    bs.console(driver)


CASES = [(kind, "light") for kind in bs.PAGE_KINDS] + \
        [(kind, view) for view in ("dark", "narrow") for kind in VARIANT_KINDS]


@pytest.mark.parametrize("kind,view", CASES, ids=[f"{k}-{v}" for k, v in CASES])
def test_page_kind(browser, server, axe_js, kind, view):
    if view != "light" and server.mode != "standalone":
        pytest.skip("colours and layout come from the same files in edge mode")
    prepare(browser, server, view)
    bs.visit(browser, server, kind)
    messages = bs.console(browser)
    assert not bs.csp_violations(messages), f"{kind} ({server.mode}):\n" + "\n".join(messages)
    assert not [m for m in messages if "Uncaught" in m], "\n".join(messages)  # scripts ran
    assert browser.execute_script("return document.querySelector('script:not([src]):not([type])')"
                                  " === null"), "an inline script in the page"
    scheme = browser.execute_script("return document.body.getAttribute('data-md-color-scheme')")
    assert scheme == VIEWS[view][1], (kind, view, scheme)
    found = bs.serious(bs.axe(browser, need(axe_js)))
    assert not found, f"{kind} ({server.mode}, {view}) at {browser.current_url}:\n{bs.describe(found)}"
    if "error" in kind:  # each field marked invalid names the message that says why
        invalid = browser.execute_script(
            "return Array.from(document.querySelectorAll('[aria-invalid=true]')).map(function (f) {"
            "  var ids = (f.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);"
            "  return [f.name, ids.map(function (id) { var e = document.getElementById(id);"
            "    return e ? e.textContent.trim() : ''; }).join(' ')]; });")
        assert invalid, f"{kind}: no field is marked invalid"
        assert all(message for _, message in invalid), invalid


def test_axe_runs_under_the_sites_content_security_policy(browser, server, axe_js):
    """WebDriver's scripts are not the page's: the policy that forbids inline scripts lets the
    injected axe-core run, and the page itself stays without an inline script."""
    prepare(browser, server, "light")
    browser.get(server.url("/"))
    bs.loaded(browser)
    results = bs.axe(browser, need(axe_js))
    assert "error" not in results and "violations" in results, results
    assert not bs.csp_violations(bs.console(browser))


# --- the policy ------------------------------------------------------------------------------

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


def test_scripts_still_work_under_the_policy(browser, server):
    """Palette toggle, code copy, the support form's out-of-SLA hint and its suggestions."""
    from selenium.webdriver.support.ui import Select

    prepare(browser, server, "light")
    article = "/functionality/erp-export/"  # has code blocks and tabs
    bs.log_in(browser, server, bs.START_USER, article)
    bs.loaded(browser)
    scheme = browser.execute_script("return document.body.getAttribute('data-md-color-scheme')")
    toggle = [label for label in browser.find_elements(By.CSS_SELECTOR, "form[data-md-component=palette]"
                                                     " label.md-header__button") if label.is_displayed()]
    toggle[0].click()
    bs.wait(browser).until(lambda d: d.execute_script(
        "return document.body.getAttribute('data-md-color-scheme')") != scheme)

    copy = bs.by_css(browser, "button.md-code__button[data-md-type=copy]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", copy)
    copy.click()
    bs.wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".md-dialog--active"))

    browser.get(server.url("/support/new"))
    form = bs.by_css(browser, "#support-form")
    select = Select(form.find_element(By.NAME, "category"))
    hint = form.find_element(By.ID, "out-of-sla")
    assert not hint.is_displayed()
    outside = [o.get_attribute("value") for o in select.options if o.get_attribute("data-in-sla") == "no"]
    assert outside, "a category outside the tariff's deadlines"
    select.select_by_value(outside[0])
    bs.wait(browser).until(lambda d: hint.is_displayed())
    form.find_element(By.NAME, "description").send_keys("Не выгружаются чеки в ERP, выгрузка чеков стоит")
    bs.wait(browser).until(lambda d: d.find_element(By.ID, "suggestions").is_displayed())
    assert browser.find_elements(By.CSS_SELECTOR, "#suggestions li a")
    messages = bs.console(browser)
    assert not bs.csp_violations(messages), "\n".join(messages)


# --- the keyboard alone ------------------------------------------------------------------------

# An outline or a shadow on the focused control, or on the label after it (Material's palette
# toggle is a hidden radio button; the label after it shows the focus).
FOCUS_RING = ("var el = document.activeElement, next = el.nextElementSibling;"
              "return [el].concat(next && next.tagName === 'LABEL' ? [next] : []).some(function (e) {"
              "  var s = getComputedStyle(e);"
              "  return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)"
              "    || s.boxShadow !== 'none'; });")


def press(driver, *keys) -> None:
    ActionChains(driver).send_keys(*keys).perform()


def active(driver, prop: str):
    return driver.execute_script(f"return document.activeElement.{prop}")


def tab_to(driver, predicate: str, limit: int = 12) -> None:
    """Presses Tab until the focused element matches `predicate` (JavaScript over `el`); each
    control passed on the way shows a focus ring (Material's search box shows its focus by
    opening the search dialog instead)."""
    for _ in range(limit):
        press(driver, Keys.TAB)
        el = active(driver, "outerHTML")[:120]
        if active(driver, "tagName") in ("INPUT", "SELECT", "TEXTAREA", "BUTTON", "A") \
                and not active(driver, "classList.contains('md-search__input')"):
            assert driver.execute_script(FOCUS_RING), f"no visible focus on {el}"
        if driver.execute_script(f"var el = document.activeElement; return {predicate};"):
            return
    raise AssertionError(f"{predicate} not reached with {limit} Tabs; focus on {el}")


def test_keyboard_only_login_and_support_request(browser, server):
    prepare(browser, server, "light")
    browser.get(server.url("/login?next=%2Fsupport%2Fnew"))
    bs.loaded(browser)
    assert active(browser, "name") == "email"  # autofocus
    assert browser.execute_script(FOCUS_RING)
    press(browser, bs.START_USER)
    tab_to(browser, "el.name === 'password'", limit=1)
    press(browser, bs.PASSWORD, Keys.ENTER)
    bs.wait(browser).until(lambda d: bs.path_of(d) == "/support/new")
    bs.loaded(browser)

    # the skip link first, then straight into the form
    tab_to(browser, "el.classList.contains('md-skip')", limit=1)
    press(browser, Keys.ENTER)
    tab_to(browser, "el.name === 'phone'", limit=3)
    press(browser, "+7 900 000-00-00")
    tab_to(browser, "el.name === 'category'", limit=1)
    press(browser, "Оборуд")  # type-ahead picks «Оборудование, ОС, БД (вне SLA)»
    assert browser.find_element(By.NAME, "category").get_attribute("value") == "infrastructure"
    assert browser.find_element(By.ID, "out-of-sla").is_displayed()  # the hint follows
    tab_to(browser, "el.name === 'store'")
    press(browser, "Магазин 7")
    tab_to(browser, "el.name === 'subject'")
    press(browser, "Касса не видит весы")
    tab_to(browser, "el.name === 'description'")
    press(browser, "После обновления ОС касса 3 не видит весы.")
    tab_to(browser, "el.name === 'consent'")
    press(browser, Keys.SPACE)
    assert browser.find_element(By.NAME, "consent").is_selected()
    tab_to(browser, "el.type === 'submit' && el.form && el.form.id === 'support-form'")
    press(browser, Keys.ENTER)
    bs.wait(browser).until(lambda d: bs.path_of(d).rstrip("/").split("/")[-1].isdigit())
    assert "Обращение №" in browser.find_element(By.TAG_NAME, "h1").text


def test_keyboard_only_search(browser, server):
    prepare(browser, server, "light")
    bs.log_in(browser, server, bs.START_USER, "/")
    bs.loaded(browser)
    tab_to(browser, "el.classList.contains('md-search__input')")
    bs.wait(browser).until(lambda d: d.execute_script(
        "return document.getElementById('__search').checked"))  # the dialog opened
    press(browser, bs.SEARCH_QUERY)
    bs.wait(browser).until(lambda d: d.find_elements(
        By.CSS_SELECTOR, ".md-search-result__list > .md-search-result__item"))
    press(browser, Keys.ENTER)  # Material follows the best result
    bs.wait(browser).until(lambda d: bs.path_of(d).startswith("/functionality/"))
