"""Numbers in addresses and query strings that Python's str.isdigit() accepts but int() does not
("²", "٣"): each answers as any bad number does, never a 500."""

from __future__ import annotations

import pytest

from gate import accounts, changes
from tests.helpers.http import login

ODD = ["²", "١٢", "𝟗"]
STAFF_PATHS = ["/staff/audit/?page={}", "/staff/orgs/?page={}", "/staff/people/?page={}",
               "/staff/usage/?days={}", "/staff/tokens/?page={}"]


@pytest.mark.parametrize("odd", ODD)
def test_odd_digits_never_fail_a_page(app, odd):
    gate = app.extensions["gate"]
    with gate.engine.begin() as conn:
        changes.user_admin(conn, changes.CLI, "start@client.example", True)
    staff, admin, anonymous = app.test_client(), app.test_client(), app.test_client()
    assert login(staff, "staff@vendor.example").status_code == 303
    assert login(admin, "start@client.example").status_code == 303
    answers = {path.format(odd): staff.get(path.format(odd)).status_code for path in STAFF_PATHS}
    answers["/account/people/"] = admin.get(f"/account/people/?page={odd}").status_code
    answers["feed key"] = anonymous.get(f"/feed.xml?key={odd}.{'a' * 40}").status_code
    answers["unsubscribe"] = anonymous.post(f"/account/unsubscribe/{odd}.{'a' * 40}").status_code
    assert all(code < 500 for code in answers.values()), answers
    assert answers["/account/people/"] == 200 and answers["unsubscribe"] == 404
