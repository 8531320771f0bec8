"""The page-kind browser tests' helpers (tests/test_browser_pages.py): the
real knowledge base (docs/ with its code blocks, tabs and tables) built for two tariffs, served
standalone or in edge mode with a real SMTP server, people made with the `gate` CLI, a headless
chromium that keeps its console, and a walk over every page kind the site has.

- `KbServer` / `start_server(tmp, mode)`: the project built once per folder, `gate serve` or
  deploy/edge.sh, a MailSink for the password-reset mail.
- `chromium(profile)`: Debian's chromium through chromedriver, console messages kept
  (goog:loggingPrefs), so Content-Security-Policy violations can be read back.
- `PAGE_KINDS` and `visit(driver, server, kind)`: brings the browser to one page kind, logged in
  as the kind needs (each kind in a fresh session).
- `axe(driver)`: axe-core (scripts/fetch_axe.py, pinned) injected through WebDriver and run.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

from tests.helpers.http import csrf_of
from tests.helpers.mail import MailSink
from tests.helpers.ports import free_port, wait_until
from tests.helpers.processes import NGINX, Running, clean_env, gate_cli, healthz, start
from tests.helpers.project import PASSWORD, PROJECT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT = 15  # seconds: the upper bound of every explicit wait in the browser

START_USER = "start@client.example"   # every section
FUNC_USER = "func@client.example"     # Функциональность only: the other sections are locked
STAFF_USER = "staff@vendor.example"
TARIFFS = """\
tariffs:
  start:
    title: СТАРТ
    sections: [launches, functionality, maintenance, claim-desk]
    sla: {register: 30m, consult: 8h, consult_critical: 4h, workaround: 3 working days}
  solo-func:
    title: Только функциональность
    sections: [functionality]
"""
ORGS = {"Сеть Старт": ("start", START_USER), "Сеть Функ": ("solo-func", FUNC_USER)}
SEARCH_QUERY = "выгрузка чеков"  # finds articles of Функциональность in the real docs


def build_project(root: Path) -> Path:
    """The real site (docs/, mkdocs.yml, overrides/) with the tariffs above, every edition built."""
    from gate.build import build_all

    if (root / "site" / "manifest.json").is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    for name in ("docs", "overrides", "gate"):
        os.symlink(PROJECT / name, root / name)
    for name in ("mkdocs.yml", "search-synonyms.yml"):
        shutil.copy(PROJECT / name, root / name)
    (root / "tariffs.yml").write_text(TARIFFS)
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    return root


class KbServer:
    def __init__(self, mode: str, base: str, env: dict, log: Path, mail: MailSink):
        self.mode, self.base, self.env, self.log, self.mail = mode, base, env, log, mail
        self.running: Running | None = None

    def url(self, path: str) -> str:
        return self.base + path

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def cli(self, *args: str, stdin: str | None = None) -> str:
        return gate_cli(self.env, *args, stdin=stdin)


@contextmanager
def start_server(tmp: Path, project: Path, mode: str, *, orgs: dict = ORGS,
                 staff: tuple = (STAFF_USER,), env: dict | None = None):
    """The gate alone ("standalone") or behind nginx ("edge"), local mode, with people:
    `orgs` (name -> (tariff, person's e-mail)) and `staff`, all with PASSWORD; `env` adds
    settings (GATE_BASE_URL may be "{base}": the server's own address)."""
    mail = MailSink().start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(GATE_ROOT=str(project), GATE_INSTANCE=str(tmp / "instance"),
                    GATE_MODE="local", GATE_SMTP_HOST="127.0.0.1", GATE_SMTP_PORT=str(mail.port),
                    GATE_TARIFFS=str(project / "tariffs.yml"),
                    **{k: v.replace("{base}", base) for k, v in (env or {}).items()})
    server = KbServer(mode, base, env, tmp / "serve.log", mail)
    for org, (tariff, email) in orgs.items():
        server.cli("org", "add", org, "--tariff", tariff)
        server.cli("user", "add", email, "--org", org, "--password-stdin", stdin=PASSWORD + "\n")
    for email in staff:
        server.cli("user", "add", email, "--staff", "--password-stdin", stdin=PASSWORD + "\n")
    if mode == "edge":
        env.update(EDGE_PORT=str(port), GATE_PORT=str(free_port()), EDGE_DIR=str(tmp / "edge"),
                   EDGE_WORKERS="1", NGINX=NGINX)
        command = ["sh", str(PROJECT / "deploy/edge.sh")]
    else:
        command = [sys.executable, "-m", "gate", "serve", "--host", "127.0.0.1", "--port", str(port)]
    try:
        server.running = start(command, ready=healthz(server.base), log=server.log, env=env,
                               what=f"the gate ({mode})")
        yield server
    finally:
        if server.running:
            server.running.stop(timeout=15)  # edge.sh stops nginx and the gate
        mail.stop()


# --- the browser -------------------------------------------------------------------------------

def chromium(profile: Path, width: int = 1400):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--window-size={width},1000",
                "--lang=ru", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {
        "credentials_enable_service": False,
        "profile.password_manager_enabled": False,
        "profile.password_manager_leak_detection": False,
    })
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(60)
    return driver


def wait(driver, timeout: float = WAIT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1)


def path_of(driver) -> str:
    parts = urlsplit(driver.current_url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def console(driver) -> list[str]:
    """The console messages since the last call (chromium hands each out once)."""
    return [entry["message"] for entry in driver.get_log("browser")]


_CSP = re.compile(r"Content Security Policy|Content-Security-Policy|Refused to (execute|load|apply"
                  r"|connect|create|evaluate|frame)", re.I)


def csp_violations(messages: list[str]) -> list[str]:
    return [m for m in messages if _CSP.search(m)]


def loaded(driver) -> None:
    """The page and Material's bundle are ready (its search box is set up by the bundle)."""
    wait(driver).until(lambda d: d.execute_script(
        "return document.readyState === 'complete' && typeof window.document$ === 'object'"))


def by_css(driver, selector: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    return wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, selector)))


def log_in(driver, server: KbServer, email: str, next_path: str = "/") -> None:
    from selenium.webdriver.common.by import By

    driver.get(server.url("/login?next=" + quote(next_path, safe="")))
    form = by_css(driver, "form[action='/login']")
    form.find_element(By.NAME, "email").send_keys(email)
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: path_of(d) == next_path)


def first_article(server: KbServer, section: str) -> str:
    """The address of a real article of `section` (from the staff edition's files)."""
    folder = Path(server.env["GATE_ROOT"]) / "site/editions/all" / section
    pages = sorted(p.parent.name for p in folder.glob("*/index.html"))
    assert pages, f"no article in {folder}"
    return f"/{section}/{pages[0]}/"


def fill_support_form(driver, subject: str = "Не грузятся цены") -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    form = by_css(driver, "#support-form")
    form.find_element(By.NAME, "phone").send_keys("+7 900 000-00-00")
    Select(form.find_element(By.NAME, "category")).select_by_index(1)
    Select(form.find_element(By.NAME, "criticality")).select_by_index(1)
    form.find_element(By.NAME, "store").send_keys("Магазин 7")
    form.find_element(By.NAME, "subject").send_keys(subject)
    form.find_element(By.NAME, "description").send_keys("С ночи цены не загружаются на кассы.")
    form.find_element(By.NAME, "consent").click()


def submit_request(driver, server: KbServer) -> str:
    """Files a support request through the form; the address of its page."""
    from selenium.webdriver.common.by import By

    driver.get(server.url("/support/new"))
    fill_support_form(driver)
    by_css(driver, "#support-form").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: re.fullmatch(r"/support/\d+/", path_of(d)))
    return path_of(driver)


def reset_link(server: KbServer, email: str) -> str:
    """Asks for a password reset over HTTP and reads the link from the mail it sends."""
    import requests

    session = requests.Session()
    page = session.get(server.url("/password/forgot"), timeout=10).text
    token = csrf_of(page, "the password reset form")
    before = len(server.mail.snapshot())
    r = session.post(server.url("/password/forgot"), data={"csrf_token": token, "email": email},
                     headers={"Origin": server.base}, timeout=10, allow_redirects=False)
    assert r.status_code == 200, r.status_code
    mail = wait_until(lambda: server.mail.snapshot()[before:], 30, what="the reset mail")[0]
    text = mail.message.get_body(("plain",)).get_content()
    return urlsplit(re.search(r"https?://\S+/password/reset/\S+", text).group(0)).path


def _search(driver, server):
    """The search box answers: a query typed, Material's result list filled by the gate."""
    from selenium.webdriver.common.by import By

    log_in(driver, server, START_USER, "/")
    loaded(driver)
    labels = driver.find_elements(By.CSS_SELECTOR, "label.md-header__button[for='__search']")
    if labels and labels[0].is_displayed():
        labels[0].click()
    box = by_css(driver, "input.md-search__input")
    box.click()
    box.send_keys(SEARCH_QUERY)
    wait(driver).until(lambda d: d.find_elements(
        By.CSS_SELECTOR, ".md-search-result__list > .md-search-result__item"))


def _support_errors(driver, server):
    from selenium.webdriver.common.by import By

    log_in(driver, server, START_USER, "/support/new")
    form = by_css(driver, "#support-form")
    form.find_element(By.NAME, "phone").send_keys("нет")
    form.find_element(By.NAME, "description").send_keys("коротко")
    # the browser's own checks (required) would stop the form before the gate sees it
    driver.execute_script("arguments[0].noValidate = true", form)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.kb-error[role=alert]"))


def _login_error(driver, server):
    from selenium.webdriver.common.by import By

    driver.get(server.url("/login"))
    form = by_css(driver, "form[action='/login']")
    form.find_element(By.NAME, "email").send_keys(START_USER)
    form.find_element(By.NAME, "password").send_keys("wrong-" + PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    by_css(driver, ".kb-error")


def _as(email, path_or_fn):
    def go(driver, server):
        target = path_or_fn(server) if callable(path_or_fn) else path_or_fn
        log_in(driver, server, email, "/")
        driver.get(server.url(target))
    return go


def _anonymous(path):
    def go(driver, server):
        driver.get(server.url(path))
    return go


def _request_page(driver, server):
    log_in(driver, server, START_USER, "/")
    submit_request(driver, server)


def _request_list(driver, server):
    log_in(driver, server, START_USER, "/")
    submit_request(driver, server)
    driver.get(server.url("/support/"))


def _reset(driver, server):
    driver.get(server.url(reset_link(server, FUNC_USER)))


def _enrolled_person(driver, server) -> str:
    """A new person of Сеть Старт who enrolled a TOTP factor in the browser (the others must
    keep logging in with a password alone); the page shown is the one with recovery codes."""
    import pyotp
    from selenium.webdriver.common.by import By

    email = f"totp-{secrets.token_hex(4)}@client.example"
    server.cli("user", "add", email, "--org", "Сеть Старт", "--password-stdin",
               stdin=PASSWORD + "\n")
    log_in(driver, server, email, "/account/totp")
    form = by_css(driver, "form[action='/account/totp']")
    secret = form.find_element(By.NAME, "secret").get_attribute("value")
    form.find_element(By.NAME, "code").send_keys(pyotp.TOTP(secret).now())
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: "<code>" in d.page_source and path_of(d) != "/login")
    return email


def _org_admin(driver, server):
    """A new admin of Сеть Старт on their people page (with a pending invitation listed)."""
    email = f"admin-{secrets.token_hex(4)}@client.example"
    server.cli("user", "add", email, "--org", "Сеть Старт", "--password-stdin",
               stdin=PASSWORD + "\n")
    server.cli("user", "admin", email)
    server.cli("user", "invite", f"new-{secrets.token_hex(4)}@client.example",
               "--org", "Сеть Старт")
    log_in(driver, server, email, "/account/people/")


def _login_code(driver, server):
    """The login's second step: the password was right, the code is asked."""
    from selenium.webdriver.common.by import By

    email = _enrolled_person(driver, server)
    driver.delete_all_cookies()
    driver.get(server.url("/login"))
    form = by_css(driver, "form[action='/login']")
    form.find_element(By.NAME, "email").send_keys(email)
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(lambda d: path_of(d) == "/login/code")


# page kind -> how the browser gets there (each in a fresh session)
PAGE_KINDS = {
    "home": _anonymous("/"),
    "public article": _anonymous("/contacts/"),
    "article": _as(START_USER, lambda s: first_article(s, "functionality")),
    "section index": _as(START_USER, "/maintenance/"),
    "search results": _search,
    "login": _anonymous("/login?next=%2Ffunctionality%2F"),
    "login with error": _login_error,
    "locked page": _as(FUNC_USER, "/launches/"),
    "404": _as(START_USER, "/no-such-page/"),
    "support form": _as(START_USER, lambda s: "/support/new?from="
                        + quote(first_article(s, "maintenance"), safe="")),
    "support form with errors": _support_errors,
    "request page": _request_page,
    "request list": _request_list,
    "account": _as(START_USER, "/account/"),
    "logout page": _as(START_USER, "/logout"),
    "password forgot": _anonymous("/password/forgot"),
    "password reset": _reset,
    "search gaps": _as(STAFF_USER, "/api/search/gaps"),
    "second factor enrolment": _as(START_USER, "/account/totp"),
    "recovery codes": _enrolled_person,
    "login code": _login_code,
    "organisation's people": _org_admin,
    "console usage": _as(STAFF_USER, "/staff/usage/"),
    "console organisations": _as(STAFF_USER, "/staff/orgs/"),
    "console people": _as(STAFF_USER, "/staff/people/"),
    "console audit": _as(STAFF_USER, "/staff/audit/"),
    "console tokens": _as(STAFF_USER, "/staff/tokens/"),
}


def visit(driver, server: KbServer, kind: str) -> None:
    PAGE_KINDS[kind](driver, server)
    loaded(driver)


# --- axe-core ----------------------------------------------------------------------------------

def axe_source() -> str:
    """axe.min.js, fetched (pinned, checked) by scripts/fetch_axe.py; raises AxeUnavailable with
    the reason when this machine cannot fetch it."""
    try:
        return _fetch_axe().fetch().read_text()
    except _fetch_axe().Unavailable as exc:
        raise AxeUnavailable(f"axe-core {_fetch_axe().VERSION} could not be fetched: {exc}") from None


class AxeUnavailable(RuntimeError):
    pass


def _fetch_axe():
    sys.path.insert(0, str(PROJECT / "scripts"))
    try:
        import fetch_axe
    finally:
        sys.path.pop(0)
    return fetch_axe


def axe(driver, source: str, context: str = "document") -> dict:
    """axe-core's results for the page: WCAG 2.0/2.1 A and AA rules plus best practices.

    Injected through WebDriver (Runtime.evaluate), which the page's Content-Security-Policy does
    not govern: the site itself still allows no inline script."""
    driver.execute_script(source)
    return driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(" + context + ", {resultTypes: ['violations']})"
        ".then(function (r) { done({violations: r.violations}); })"
        ".catch(function (e) { done({error: String(e)}); });")


# Moderate rules fixed once and kept fixed: every navigation landmark has a name of its own.
KEPT_FIXED = {"landmark-unique"}


def serious(results: dict) -> list[dict]:
    """The serious and critical violations (and those of KEPT_FIXED)."""
    assert "error" not in results, results.get("error")
    return [v for v in results["violations"]
            if v["impact"] in ("serious", "critical") or v["id"] in KEPT_FIXED]


def describe(violations: list[dict]) -> str:
    return "\n".join(f"  {v['id']} ({v['impact']}, {len(v['nodes'])}): {v['help']}\n"
                     + "\n".join(f"      {n['target']} {n['failureSummary'][:200]!r}"
                                 for n in v["nodes"][:5])
                     for v in violations)
