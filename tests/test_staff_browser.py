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

import re
from urllib.parse import quote, urlsplit

import pytest

from gate.sections import SECTIONS
from tests.helpers.browser import CHROMEDRIVER, CHROMIUM, WAIT, chromium, start_server
from tests.helpers.ports import wait_until
from tests.helpers.processes import NGINX
from tests.helpers.project import PASSWORD, TEST_TARIFFS, make_project, marker

pytest.importorskip("selenium")
from selenium.common.exceptions import (StaleElementReferenceException,  # noqa: E402
                                        TimeoutException)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("browser tests need Debian's chromium and chromium-driver "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)

STAFF = "boss@crystals.example"
MAIL_WAIT = 30  # seconds for the outbox worker to deliver an invitation


@pytest.fixture(scope="module", params=["standalone", "edge"])
def server(request, tmp_path_factory):
    from gate.build import build_all

    mode = request.param
    if mode == "edge" and NGINX is None:
        pytest.skip("edge mode needs nginx (apt-get install nginx)")
    tmp = tmp_path_factory.mktemp(f"staff-{mode}")
    root = make_project(tmp / "project", TEST_TARIFFS)
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    with start_server(tmp, root, mode, orgs={}, staff=(STAFF,),
                      env={"GATE_MAIL_FROM": "kb@kb.test", "GATE_BASE_URL": "{base}"}) as srv:
        yield srv


@pytest.fixture
def browsers(tmp_path):
    """Browsers with profiles of their own (the staff member's, the invited person's)."""
    made = []

    def make():
        made.append(chromium(tmp_path / f"profile-{len(made)}"))
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
        raise AssertionError(f"expected {expected}, at {driver.current_url}\n{server.log_tail()}") from None


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
        return [m for m in server.mail.snapshot() if email in m.rcpt_tos]
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
