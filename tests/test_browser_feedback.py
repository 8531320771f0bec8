""""Была ли статья полезной?" in a real browser (headless Debian chromium, Selenium), against
`gate serve` (standalone) and edge mode (nginx serves the prebuilt pages and the script, the
gate takes the votes): a "no" with a reason and a comment becomes a prefilled support request,
everything works from the keyboard, and an anonymous reader votes on a public page."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.helpers.browser import CHROMEDRIVER, CHROMIUM, WAIT, chromium, start_server
from tests.helpers.processes import NGINX
from tests.helpers.project import PASSWORD, TEST_TARIFFS, make_project, marker

pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("browser tests need Debian's chromium and chromium-driver", allow_module_level=True)
START_USER = "start@client.example"
ARTICLE = f"/{marker('functionality', 'url')}/"


@pytest.fixture(scope="module", params=["standalone", "edge"])
def server(request, tmp_path_factory):
    from gate.build import build_all

    mode = request.param
    if mode == "edge" and NGINX is None:
        pytest.skip("edge mode needs nginx (apt-get install nginx)")
    tmp = tmp_path_factory.mktemp(f"feedback-{mode}")
    root = make_project(tmp / "project", TEST_TARIFFS)
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    with start_server(tmp, root, mode, orgs={"Сеть Старт": ("start", START_USER)},
                      staff=()) as srv:
        yield srv


def feedback(server) -> list[dict]:
    return json.loads(server.cli("feedback", "--json"))


@pytest.fixture
def browser(tmp_path, server):
    driver = chromium(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver):
    return WebDriverWait(driver, WAIT, poll_frequency=0.1)


def log_in(driver, server, next_path):
    driver.get(server.url("/login?next=" + quote(next_path, safe="")))
    form = wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, "form[action='/login']")))
    form.find_element(By.NAME, "email").send_keys(START_USER)
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: urlsplit(d.current_url).path == next_path)


def widget(driver):
    return wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".kb-feedback")))


def status_says(driver, text):
    wait(driver).until(lambda d: text in d.find_element(By.CSS_SELECTOR, ".kb-feedback__status").text)


def active(driver):
    return driver.switch_to.active_element


def test_a_no_with_reason_and_comment_becomes_a_prefilled_request(browser, server):
    log_in(browser, server, ARTICLE)
    box = widget(browser)
    assert box.find_element(By.TAG_NAME, "h2").text == "Была ли статья полезной?"
    box.find_element(By.CSS_SELECTOR, "[data-vote=no]").click()
    why = wait(browser).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".kb-feedback__why")))
    why.find_element(By.XPATH, ".//label[contains(., 'Устарело')]").click()
    why.find_element(By.NAME, "comment").send_keys("Порт 8090 теперь другой")
    why.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    status_says(browser, "Спасибо, отзыв отправлен")
    link = wait(browser).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".kb-feedback__support a")))
    assert active(browser) == link  # focus moves to the next step
    [article] = [a for a in feedback(server) if a["page"] == ARTICLE]
    assert (article["no"], article["reasons"]) == (1, {"outdated": 1})
    assert article["comments"][0]["text"] == "Порт 8090 теперь другой"
    link.click()
    wait(browser).until(lambda d: urlsplit(d.current_url).path == "/support/new")
    query = parse_qs(urlsplit(browser.current_url).query)
    assert query == {"from": [ARTICLE], "via": ["feedback"]}
    description = wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "textarea[name=description]")))
    assert "Порт 8090 теперь другой" in description.get_property("value")
    assert "устарело" in description.get_property("value")


def test_everything_works_from_the_keyboard(browser, server):
    log_in(browser, server, ARTICLE)
    box = widget(browser)
    yes = box.find_element(By.CSS_SELECTOR, "[data-vote=yes]")
    browser.execute_script("arguments[0].focus()", yes)
    active(browser).send_keys(Keys.SPACE)
    status_says(browser, "Рады, что статья помогла")
    assert yes.get_attribute("aria-pressed") == "true"
    active(browser).send_keys(Keys.TAB)
    assert active(browser).get_attribute("data-vote") == "no"
    active(browser).send_keys(Keys.ENTER)
    wait(browser).until(lambda d: active(d).get_attribute("name") == "reason")
    active(browser).send_keys(Keys.ARROW_DOWN)  # the next reason
    assert active(browser).get_attribute("value") == "outdated"
    active(browser).send_keys(Keys.TAB)
    assert active(browser).get_attribute("name") == "comment"
    active(browser).send_keys("С клавиатуры")
    active(browser).send_keys(Keys.TAB)
    active(browser).send_keys(Keys.ENTER)
    status_says(browser, "Спасибо, отзыв отправлен")
    [article] = [a for a in feedback(server) if a["page"] == ARTICLE]
    assert article["comments"][0]["text"] == "С клавиатуры"
    # every control has a name a screen reader says
    unnamed = browser.execute_script("""
        return Array.from(document.querySelectorAll('.kb-feedback button, .kb-feedback input, .kb-feedback textarea'))
          .filter(el => !(el.labels && el.labels.length) && !el.textContent.trim()
                        && !el.getAttribute('aria-label')).map(el => el.outerHTML);""")
    assert unnamed == []


def test_an_anonymous_reader_votes_on_a_public_page(browser, server):
    browser.get(server.url("/"))
    widget(browser).find_element(By.CSS_SELECTOR, "[data-vote=yes]").click()
    status_says(browser, "Рады, что статья помогла")
    assert any(a["page"] == "/" and a["yes"] >= 1 for a in feedback(server))


def test_the_feed_comes_from_the_gate_in_both_modes(server):
    """/feed.xml is the gate's (gate.routes): nginx passes it on, a ?key= is checked alike."""
    import requests
    r = requests.get(server.url("/feed.xml"), timeout=WAIT)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/atom+xml")
    assert r.headers.get("Server") == "kb-gate"
    assert "Обновили публичнуюзаметку." in r.text and marker("functionality", "body") not in r.text
    assert requests.get(server.url("/feed.xml?key=1.x"), timeout=WAIT).status_code == 404
