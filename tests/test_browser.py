"""End to end in a real browser: headless Debian chromium driven by Selenium against the gate.

Every test runs three times: against `gate serve` (standalone), against edge mode (deploy/edge.sh:
nginx serving the editions itself in front of the gate) and edge mode over https. One server per
mode (the session's marker project, people created with the `gate` CLI, real processes); a fresh
browser profile per test. Every wait is explicit and bounded; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from gate.sections import SECTIONS
from tests.helpers.ports import free_port
from tests.helpers.processes import NGINX_MISSING, GateProcess, add_people, running_edge
from tests.helpers.project import PASSWORD, marker, page_url

pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("browser tests need Debian's chromium and chromium-driver "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)

START_USER = "start@client.example"
FUNC_USER = "func@client.example"
# organisation, tariff, people
ORGS = {"Сеть Старт": ("start", [START_USER]), "Сеть Функ": ("solo-func", [FUNC_USER])}
# Material's messages in Russian (theme language ru)
SEARCH_PLACEHOLDER = "Начните печатать для поиска"
SEARCH_NONE = "Совпадений не найдено"
WAIT = 15  # seconds: the upper bound of every explicit wait in a browser


@pytest.fixture(scope="module", params=["standalone", "edge", "edge-https"])
def server(request, built_project, tmp_path_factory):
    """The gate alone, edge mode, or edge mode over https (production mode: Secure cookies,
    HSTS; a self-signed certificate the browser is told to accept). Each has `mode`, `base`,
    `url()`, `log_tail()` and, in edge mode, nginx's `access_log`."""
    mode = request.param
    if mode.startswith("edge") and NGINX_MISSING:
        pytest.skip("edge mode needs nginx (apt-get install nginx)")
    root, _ = built_project
    tmp = tmp_path_factory.mktemp(f"browser-{mode}")
    if mode == "standalone":
        gate = GateProcess(root, tmp / "instance", free_port(), tmp / "serve.log")
        add_people(gate.env, ORGS)
        gate.start()
        gate.mode, gate.access_log = mode, None
        try:
            yield gate
        finally:
            gate.stop()
        return
    settings = dict(GATE_MODE="local", EDGE_WORKERS="1", GATE_SMTP_HOST="127.0.0.1",
                    GATE_SMTP_PORT=str(free_port()))
    tls = None
    if mode == "edge-https":
        from tests.helpers.tls import make_certificate

        cert, key = make_certificate(tmp, "edge")[:2]
        settings.update(GATE_MODE="production", EDGE_TLS_CERT=str(cert), EDGE_TLS_KEY=str(key))
        tls = ssl.create_default_context(cafile=str(cert))
    with running_edge(root, tmp, tls=tls, people=ORGS, **settings) as edge:
        edge.mode = mode
        yield edge


@pytest.fixture
def browser(tmp_path, server):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                "--lang=ru", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    if server.base.startswith("https:"):
        options.add_argument("--ignore-certificate-errors")  # the test's self-signed certificate
    options.add_experimental_option("prefs", {
        "credentials_enable_service": False,
        "profile.password_manager_enabled": False,
        "profile.password_manager_leak_detection": False,
    })
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, poll_frequency=0.1)


def path_of(driver) -> str:
    parts = urlsplit(driver.current_url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def wait_for_path(driver, expected: str, server) -> None:
    try:
        wait(driver).until(lambda d: path_of(d) == expected)
    except TimeoutException:
        raise AssertionError(f"expected to land on {expected}, browser is at {driver.current_url}\n"
                             f"server log:\n{server.log_tail()}") from None


def submit_login(driver, email: str, password: str = PASSWORD) -> None:
    form = wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, "form[action='/login']")))
    field = form.find_element(By.NAME, "email")
    field.clear()
    field.send_keys(email)
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def log_in(driver, server, email: str, next_path: str = "/") -> None:
    driver.get(server.url("/login?next=" + quote(next_path, safe="")))
    submit_login(driver, email)
    wait_for_path(driver, next_path, server)


def text_of(element) -> str:
    """All text of an element, also the parts a narrow layout hides (textContent)."""
    return element.get_attribute("textContent") or ""


def primary_nav(driver):
    return wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, "nav.md-nav--primary")))


def nav_section_titles(driver) -> list[str]:
    """The titles of the top-level sections in Material's primary navigation."""
    nav = primary_nav(driver)
    items = nav.find_elements(By.CSS_SELECTOR, ":scope > ul.md-nav__list > li.md-nav__item--nested")
    titles = []
    for item in items:
        label = item.find_element(By.CSS_SELECTOR, ":scope > label.md-nav__link, :scope > div.md-nav__link > a, "
                                                   ":scope > a.md-nav__link")
        titles.append(" ".join(text_of(label).split()))
    return titles


# 1 ---------------------------------------------------------------------------------------------

def test_anonymous_is_sent_to_login_and_back_to_the_page(browser, server):
    target = page_url("launches")
    browser.get(server.url(target))
    wait(browser).until(lambda d: urlsplit(d.current_url).path == "/login")
    query = parse_qs(urlsplit(browser.current_url).query)
    assert query.get("next") == [target], browser.current_url
    assert marker("launches", "body") not in browser.page_source
    assert marker("launches", "title") not in browser.page_source

    submit_login(browser, START_USER)
    wait_for_path(browser, target, server)
    content = wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "article.md-content__inner")))
    assert marker("launches", "body") in content.text
    assert marker("launches", "title") in browser.find_element(By.TAG_NAME, "h1").text
    # the account bar of a logged-in person, with the logout button
    assert browser.find_elements(By.CSS_SELECTOR, ".kb-account form[action='/logout'] button")


def test_wrong_password_stays_on_the_login_page(browser, server):
    target = page_url("launches")
    browser.get(server.url(target))
    wait(browser).until(lambda d: urlsplit(d.current_url).path == "/login")
    submit_login(browser, START_USER, "wrong-" + PASSWORD)
    error = wait(browser).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".kb-error")))
    assert "Неверный" in error.text
    assert marker("launches", "body") not in browser.page_source


# 2 ---------------------------------------------------------------------------------------------

def test_navigation_of_start_shows_every_section(browser, server):
    log_in(browser, server, START_USER, page_url("functionality"))
    titles = nav_section_titles(browser)
    assert titles == list(SECTIONS.values()), titles
    nav = text_of(primary_nav(browser))
    for section in SECTIONS:
        assert marker(section, "title") in nav, section


def test_navigation_of_solo_func_shows_only_functionality(browser, server):
    log_in(browser, server, FUNC_USER, page_url("functionality"))
    assert nav_section_titles(browser) == [SECTIONS["functionality"]]
    nav = text_of(primary_nav(browser))
    assert marker("functionality", "title") in nav
    for path in (page_url("functionality"), "/", "/functionality/"):
        if path_of(browser) != path:
            browser.get(server.url(path))
            wait_for_path(browser, path, server)
            primary_nav(browser)
        nav = text_of(primary_nav(browser))
        source = browser.page_source
        for section, title in SECTIONS.items():
            if section == "functionality":
                continue
            assert title not in nav, f"{title} in the navigation of {path}"
            for kind in ("title", "body", "slug"):
                assert marker(section, kind) not in source, f"{marker(section, kind)} on {path}"


# 3 ---------------------------------------------------------------------------------------------

def open_search(driver):
    """Opens Material's search (the magnifier label in a narrow header, the box in a wide one)."""
    labels = driver.find_elements(By.CSS_SELECTOR, "label.md-header__button[for='__search']")
    if labels and labels[0].is_displayed():
        labels[0].click()
    box = wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input.md-search__input")))
    box.click()
    wait(driver).until(lambda d: d.execute_script("return document.activeElement === arguments[0]", box))
    return box


def search_for(driver, box, query: str) -> None:
    """Types a new query once the previous one is cleared, so no stale result is read for it."""
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACK_SPACE)
    wait(driver).until(lambda d: not box.get_attribute("value")
                       and results_meta(d) == SEARCH_PLACEHOLDER and not result_items(d))
    box.send_keys(query)
    # Material rewrites the meta line once the worker has answered this query.
    wait(driver).until(lambda d: box.get_attribute("value") == query
                       and results_meta(d) != SEARCH_PLACEHOLDER)


def results_meta(driver) -> str:
    return text_of(driver.find_element(By.CSS_SELECTOR, ".md-search-result__meta")).strip()


def result_items(driver):
    return driver.find_elements(By.CSS_SELECTOR, ".md-search-result__list > .md-search-result__item")


def test_search_finds_only_the_visitors_edition(browser, server):
    log_in(browser, server, FUNC_USER, "/")
    box = open_search(browser)

    wanted = marker("functionality", "title")
    search_for(browser, box, wanted)
    try:
        wait(browser).until(lambda d: any(wanted in text_of(i) for i in result_items(d)))
    except TimeoutException:
        raise AssertionError(f"no search result for {wanted!r}; meta: {results_meta(browser)!r}") from None
    hrefs = [a.get_dom_attribute("href") or "" for i in result_items(browser)
             for a in i.find_elements(By.CSS_SELECTOR, "a")]
    assert any(marker("functionality", "slug") in h for h in hrefs), hrefs

    for section in ("launches", "maintenance", "claim-desk"):
        for kind in ("body", "title"):
            hidden = marker(section, kind)
            search_for(browser, box, hidden)
            listing = text_of(browser.find_element(By.CSS_SELECTOR, ".md-search-result"))
            links = " ".join(a.get_dom_attribute("href") or "" for a in
                             browser.find_elements(By.CSS_SELECTOR, ".md-search-result a"))
            for leak in (marker(section, "body"), marker(section, "title"), marker(section, "slug")):
                assert leak not in listing, f"search for {hidden!r} shows {leak!r}"
                assert leak not in links, f"search for {hidden!r} links to {leak!r}"
            # nothing in the solo-func edition carries another section's marker
            assert results_meta(browser) == SEARCH_NONE, (hidden, results_meta(browser))
            assert not result_items(browser), hidden


# 4 ---------------------------------------------------------------------------------------------

def test_locked_section_page(browser, server):
    log_in(browser, server, FUNC_USER, "/")
    browser.get(server.url("/launches/anything/"))
    heading = wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "article h1")))
    assert path_of(browser) == "/launches/anything/", browser.current_url
    assert "«Запуски»" in heading.text
    assert "недоступен" in heading.text
    assert "Раздел недоступен" in browser.title
    links = [a.get_dom_attribute("href") for a in
             browser.find_elements(By.CSS_SELECTOR, "a[href^='/support/new?from=']")]
    assert links, "the locked page links to the support request form"
    assert parse_qs(urlsplit(links[0]).query).get("from") == ["/launches/anything/"], links
    source = browser.page_source
    for kind in ("title", "body", "slug"):
        assert marker("launches", kind) not in source
    # the same page for a launches article that exists
    browser.get(server.url(page_url("launches")))
    heading = wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "article h1")))
    assert "«Запуски»" in heading.text and "недоступен" in heading.text
    assert marker("launches", "body") not in browser.page_source


# 5 ---------------------------------------------------------------------------------------------

def test_logout_button_ends_the_session(browser, server):
    target = page_url("launches")
    log_in(browser, server, START_USER, target)
    assert marker("launches", "body") in browser.page_source
    button = wait(browser).until(EC.element_to_be_clickable(
        (By.CSS_SELECTOR, ".kb-account form[action='/logout'] button")))
    assert button.text.strip() == "Выйти"
    button.click()
    wait(browser).until(EC.staleness_of(button))  # the POST answered and a new page loaded
    # wherever logging out lands, the account bar is an anonymous visitor's again
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".kb-account a[href='/login']")))
    assert not browser.find_elements(By.CSS_SELECTOR, ".kb-account form[action='/logout']")
    assert browser.get_cookie("kb_session") is None
    assert browser.get_cookie("kb_edge") is None

    browser.get(server.url(target))
    wait(browser).until(lambda d: urlsplit(d.current_url).path == "/login")
    assert parse_qs(urlsplit(browser.current_url).query).get("next") == [target]
    assert marker("launches", "body") not in browser.page_source


# 6 ---------------------------------------------------------------------------------------------

def test_article_to_support_request_and_back_to_the_list(browser, server):
    """Article → «Обратиться в поддержку» → form prefilled → submit → request page with its
    number and deadlines → the request in the client's list."""
    article = page_url("maintenance")
    log_in(browser, server, START_USER, article)
    link = wait(browser).until(EC.element_to_be_clickable(
        (By.XPATH, "//article//a[contains(., 'Обратиться в поддержку')]")))
    link.click()
    wait_for_path(browser, "/support/new?from=" + article, server)
    form = browser.find_element(By.ID, "support-form")
    assert form.find_element(By.NAME, "from").get_attribute("value") == article
    assert "Сеть Старт" in text_of(browser.find_element(By.TAG_NAME, "article"))
    form.find_element(By.NAME, "phone").send_keys("+7 900 000-00-00")
    from selenium.webdriver.support.ui import Select
    Select(form.find_element(By.NAME, "category")).select_by_value("data")
    Select(form.find_element(By.NAME, "criticality")).select_by_value("critical-loading")
    form.find_element(By.NAME, "store").send_keys("Магазин 7")
    form.find_element(By.NAME, "registers").clear()
    form.find_element(By.NAME, "registers").send_keys("4")
    form.find_element(By.NAME, "subject").send_keys("Не грузятся цены")
    form.find_element(By.NAME, "description").send_keys("С ночи цены не загружаются на кассы магазина 7.")
    form.find_element(By.NAME, "consent").click()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser).until(lambda d: path_of(d).startswith("/support/") and path_of(d).rstrip("/")[9:].isdigit())
    number = path_of(browser).strip("/").split("/")[-1]
    page = text_of(browser.find_element(By.TAG_NAME, "article"))
    assert f"Обращение № {number}" in page
    assert "Регистрация" in page and "Консультация" in page and "до " in page
    browser.get(server.url("/support/"))
    row = wait(browser).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, f"a[href='/support/{number}/']")))
    assert row.text == number


# 7 ---------------------------------------------------------------------------------------------

def test_edge_mode_serves_a_logged_in_persons_pages_from_nginx_itself(browser, server):
    """In a real browser the gate's two cookies (session token and edition ticket) come back,
    so nginx answers the section pages itself: its access log shows no upstream for them."""
    if not server.mode.startswith("edge"):
        pytest.skip("edge mode only")
    target = page_url("functionality")
    log_in(browser, server, FUNC_USER, "/")
    assert browser.get_cookie("kb_edge")["httpOnly"] is True
    # https: production mode, Secure cookies that the browser still sends back
    assert browser.get_cookie("kb_edge")["secure"] is server.base.startswith("https:")
    for _ in range(2):  # the second visit at the latest carries the ticket issued with the login
        browser.get(server.url(target))
        wait_for_path(browser, target, server)
    assert marker("functionality", "body") in browser.page_source
    version = "2.0" if server.base.startswith("https:") else "1.1"  # chromium speaks h2 over TLS
    line = re.compile(f'"GET {re.escape(target)} HTTP/{version}" 200 .*upstream=-')

    def served_by_nginx(_):
        text = server.access_log.read_text() if server.access_log.exists() else ""
        return any(line.search(entry) for entry in text.splitlines())

    try:  # the access log is written in buffered lumps, at least once a second
        wait(browser, 5).until(served_by_nginx)
    except TimeoutException:
        raise AssertionError(f"nginx did not serve {target} itself:\n"
                             + server.access_log.read_text()[-3000:]) from None
