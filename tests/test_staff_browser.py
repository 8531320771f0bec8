"""The staff console in a real browser (headless Debian chromium, Selenium) against real
processes: `gate serve` alone and edge mode (nginx in front), a real SMTP server (aiosmtpd)
receiving the invitations the outbox worker sends.

A staff member adds an organisation, changes its contract and invites a person; the mail
arrives; the person opens the link in their own browser, sets a password, lands logged in and
sees exactly their tariff's sections. Then every other console action is clicked through
(disable, enable, invite again, admin on and off, revoke a token, the audit log with a filter,
end the contract, erase the person). Every wait is explicit and bounded.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from gate.sections import SECTIONS
from tests.helpers.browser import CHROMEDRIVER, CHROMIUM, WAIT
from tests.helpers.mail import MailSink
from tests.helpers.ports import free_port, wait_until
from tests.helpers.processes import NGINX, healthz, start
from tests.helpers.project import PASSWORD, TEST_TARIFFS, make_project, marker

pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (StaleElementReferenceException,  # noqa: E402
                                        TimeoutException)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("browser tests need Debian's chromium and chromium-driver "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)

STAFF = "boss@crystals.example"
MAIL_WAIT = 30  # seconds for the outbox worker to deliver an invitation


class Server:
    def __init__(self, base, process, log, env, sink):
        self.base, self.process, self.log, self.env, self.sink = base, process, log, env, sink

    def url(self, path: str) -> str:
        return self.base + path

    def cli(self, *args: str, stdin: str | None = None) -> str:
        r = subprocess.run([sys.executable, "-m", "gate", *args], env=self.env, input=stdin,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"gate {' '.join(args)}: {r.stderr}"
        return r.stdout

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture(scope="module", params=["standalone", "edge"])
def server(request, tmp_path_factory):
    from gate.build import build_all

    mode = request.param
    if mode == "edge" and NGINX is None:
        pytest.skip("edge mode needs nginx (apt-get install nginx)")
    tmp = tmp_path_factory.mktemp(f"staff-{mode}")
    root = make_project(tmp / "project", TEST_TARIFFS)
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    sink = MailSink().start()
    port = free_port()
    env = {**os.environ, "GATE_ROOT": str(root), "GATE_INSTANCE": str(tmp / "instance"),
           "GATE_MODE": "local", "GATE_SMTP_HOST": "127.0.0.1", "GATE_SMTP_PORT": str(sink.port),
           "GATE_MAIL_FROM": "kb@kb.test", "GATE_BASE_URL": f"http://127.0.0.1:{port}"}
    for name in ("GATE_TARIFFS", "GATE_DATABASE_URL", "GATE_EDGE", "EDGE_TLS_CERT",
                 "EDGE_TLS_KEY", "EDGE_HTTP_PORT"):
        env.pop(name, None)
    log = tmp / "serve.log"
    if mode == "edge":
        env.update(EDGE_PORT=str(port), GATE_PORT=str(free_port()), EDGE_DIR=str(tmp / "edge"),
                   EDGE_WORKERS="1", NGINX=NGINX)
        command = ["sh", str(Path(__file__).resolve().parent.parent / "deploy/edge.sh")]
    else:
        command = [sys.executable, "-m", "gate", "serve", "--host", "127.0.0.1", "--port", str(port)]
    running = None
    try:
        running = start(command, ready=healthz(f"http://127.0.0.1:{port}"), log=log, env=env,
                        what=f"the {mode} server")
        srv = Server(f"http://127.0.0.1:{port}", running.process, log, env, sink)
        srv.cli("user", "add", STAFF, "--staff", "--password-stdin", stdin=PASSWORD + "\n")
        yield srv
    finally:
        if running:
            running.stop(timeout=15)
            try:  # edge mode: nginx and the gate are children of deploy/edge.sh
                os.killpg(running.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        sink.stop()


def _chromium(profile: Path):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                "--lang=ru", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"credentials_enable_service": False,
                                              "profile.password_manager_enabled": False,
                                              "profile.password_manager_leak_detection": False})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    return driver


@pytest.fixture
def browsers(tmp_path):
    """Browsers with profiles of their own (the staff member's, the invited person's)."""
    made = []

    def make():
        made.append(_chromium(tmp_path / f"profile-{len(made)}"))
        return made[-1]
    yield make
    for driver in made:
        driver.quit()


def wait(driver) -> WebDriverWait:
    return WebDriverWait(driver, WAIT, poll_frequency=0.1)


def path_of(driver) -> str:
    parts = urlsplit(driver.current_url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def wait_for_path(driver, expected, server) -> None:
    try:
        wait(driver).until(lambda d: path_of(d) == expected if isinstance(expected, str)
                           else expected.fullmatch(path_of(d)))
    except TimeoutException:
        raise AssertionError(f"expected {expected}, at {driver.current_url}\n{server.tail()}") from None


def log_in(driver, server, email, next_path="/staff/") -> None:
    driver.get(server.url("/login?next=" + quote(next_path, safe="")))
    form = wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, "form[action='/login']")))
    form.find_element(By.NAME, "email").send_keys(email)
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for_path(driver, next_path, server)


def fill(form, **fields) -> None:
    for name, value in fields.items():
        element = form.find_element(By.NAME, name)
        if element.tag_name == "select":
            element.find_element(By.CSS_SELECTOR, f"option[value='{value}']").click()
        elif element.get_attribute("type") == "checkbox":
            if bool(value) != element.is_selected():
                element.click()
        else:
            element.clear()
            element.send_keys(value)


def form_at(driver, action: str):
    return wait(driver).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, f"form[method='post'][action='{action}']")))


def click(driver, action: str, label: str | None = None) -> None:
    """Presses the button of the one-button form posting to `action`."""
    form = form_at(driver, action)
    button = form.find_element(By.CSS_SELECTOR, "button[type=submit]")
    if label:
        assert label in button.text, button.text
    button.click()


def note(driver, expected: str) -> str:
    """The console's confirmation after a change, once it says `expected`: the page before the
    change may still show the previous confirmation (or be replaced while it is read)."""
    def says(d):
        try:
            found = d.find_elements(By.CSS_SELECTOR, ".kb-done")
            text = found[0].text if found else ""
        except StaleElementReferenceException:
            return False
        return text if expected in text else False
    try:
        return wait(driver).until(says)
    except TimeoutException:
        shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".kb-done, .kb-error")]
        raise AssertionError(f"no confirmation {expected!r} at {driver.current_url}: {shown}")


def invitation_link(server, email: str, count: int = 1) -> str:
    def mails():
        return [m for m in server.sink.snapshot() if email in m.rcpt_tos]
    found = wait_until(lambda: len(mails()) >= count and mails(), MAIL_WAIT, what=f"mail to {email}")
    msg = found[count - 1].message
    assert "Приглашение" in msg["Subject"]
    text = msg.get_body().get_content()
    link = re.search(r"(http://127\.0\.0\.1:\d+/invite/[A-Za-z0-9_-]+)\n", text)
    assert link, text
    return link.group(1)


def nav_sections(driver) -> list[str]:
    nav = wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, "nav.md-nav--primary")))
    text = nav.get_attribute("textContent")
    return [title for title in SECTIONS.values() if title in text]


def test_invite_mail_link_password_logged_in_with_exactly_the_tariffs_sections(server, browsers):
    staff = browsers()
    log_in(staff, server, STAFF, "/staff/orgs/")
    form = form_at(staff, "/staff/orgs/")
    fill(form, name="Сеть Браузер", tariff="start", until="2031-12-31", external_id="crm-77")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    note(staff, "Организация добавлена.")
    org_path = path_of(staff)
    assert re.fullmatch(r"/staff/orgs/\d+/", org_path)
    form = form_at(staff, org_path)
    fill(form, tariff="pair")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    note(staff, "Изменения сохранены.")
    assert "Пара" in staff.find_element(By.TAG_NAME, "table").text
    form = form_at(staff, "/staff/people/invite")
    fill(form, email="engineer@browser.example")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    note(staff, "Приглашение отправлено на engineer@browser.example")

    link = invitation_link(server, "engineer@browser.example")
    person = browsers()
    person.get(link)
    form = form_at(person, urlsplit(link).path)
    assert "engineer@browser.example" in person.find_element(By.TAG_NAME, "article").text
    fill(form, new="engineer-password-1", repeat="engineer-password-1")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for_path(person, "/", server)
    assert person.find_elements(By.CSS_SELECTOR, ".kb-account form[action='/logout'] button")
    assert nav_sections(person) == [SECTIONS["launches"], SECTIONS["maintenance"]]
    for section in SECTIONS:
        person.get(server.url(f"/{marker(section, 'url')}/"))
        heading = wait(person).until(EC.presence_of_element_located((By.TAG_NAME, "h1"))).text
        if section in ("launches", "maintenance"):
            assert heading == marker(section, "title"), section
        else:
            assert "недоступен" in heading.lower() or SECTIONS[section] in heading, (section, heading)
            assert marker(section, "body") not in person.page_source
    person.get(link)  # used up
    assert "Ссылка недействительна" in wait(person).until(
        EC.presence_of_element_located((By.TAG_NAME, "h1"))).text
    person.get(server.url("/staff/"))
    assert "для сотрудников поддержки" in person.find_element(By.TAG_NAME, "article").text


def _person_page(staff, server, email) -> str:
    staff.get(server.url("/staff/people/?find=" + quote(email)))
    wait(staff).until(EC.presence_of_element_located((By.LINK_TEXT, email))).click()
    wait_for_path(staff, re.compile(r"/staff/people/\d+/"), server)
    return path_of(staff)


def test_every_other_console_action_in_the_browser(server, browsers):
    server.cli("org", "add", "Сеть Действий", "--tariff", "start")
    server.cli("user", "invite", "worker@actions.example", "--org", "Сеть Действий")
    server.cli("user", "add", "scripts@actions.example", "--org", "Сеть Действий",
               "--password-stdin", stdin=PASSWORD + "\n")
    token = server.cli("token", "scripts@actions.example").strip().splitlines()[-1]
    tid = int(server.cli("token", "list", "scripts@actions.example").splitlines()[1].split("\t")[0])
    staff = browsers()
    log_in(staff, server, STAFF, "/staff/")
    me = _person_page(staff, server, "worker@actions.example")
    click(staff, me + "disable", "Отключить")
    note(staff, "отключён")
    click(staff, me + "enable", "Включить")
    note(staff, "снова может входить")
    click(staff, me + "resend", "Пригласить снова")
    note(staff, "Новое приглашение отправлено")
    first, second = (invitation_link(server, "worker@actions.example", n) for n in (1, 2))
    assert first != second
    click(staff, me + "admin", "Сделать администратором")
    note(staff, "Теперь администратор")
    click(staff, me + "admin", "Снять права")
    note(staff, "Больше не администратор")

    staff.get(server.url("/staff/tokens/?find=scripts"))
    click(staff, f"/staff/tokens/{tid}/revoke", "Отозвать")
    note(staff, f"Токен {tid} отозван")
    import urllib.error
    import urllib.request
    request = urllib.request.Request(server.url(f"/{marker('launches', 'url')}/"),
                                     headers={"Authorization": f"Bearer {token}"})
    def refused():
        try:
            urllib.request.urlopen(request, timeout=5)
        except urllib.error.HTTPError as exc:
            return exc.code == 401
        return False
    wait_until(refused, 60, interval=1, what="the revoked token refused")

    staff.get(server.url("/staff/audit/"))
    form = wait(staff).until(EC.presence_of_element_located((By.CSS_SELECTOR, "form[action='/staff/audit/']")))
    fill(form, action="user.admin", target="worker@")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(staff).until(lambda d: "action=user.admin" in d.current_url)
    rows = staff.find_elements(By.CSS_SELECTOR, "table tr")[1:]
    assert len(rows) == 2 and all(STAFF in r.text and "user.admin" in r.text for r in rows)

    org_link = staff.find_element(By.LINK_TEXT, "Организации")
    org_link.click()
    form = wait(staff).until(EC.presence_of_element_located((By.CSS_SELECTOR, "form[action='/staff/orgs/'][method='get']")))
    fill(form, find="действий")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(staff).until(EC.presence_of_element_located((By.LINK_TEXT, "Сеть Действий"))).click()
    org_path = path_of(staff)
    click(staff, org_path + "end", "Завершить договор")
    note(staff, "Договор завершён")

    me = _person_page(staff, server, "worker@actions.example")
    staff.find_element(By.LINK_TEXT, "Удалить данные…").click()
    click(staff, me + "forget", "Удалить данные")
    note(staff, "Данные пользователя удалены")
    assert "worker@actions.example" not in server.cli("audit")
    assert "worker@actions.example" not in server.cli("user", "list")
    staff.get(server.url("/staff/audit/?action=user.forget"))
    assert "user.forget" in staff.find_element(By.CSS_SELECTOR, "table").text
