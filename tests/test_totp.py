"""The second factor's rules (gate.totp) with real pyotp codes: a code of now or one step
either side is accepted, each step once; recovery codes once; the signed state between the
password and the code."""

from __future__ import annotations

import time

import pyotp
import pytest

from gate import totp
from gate.db import migrate, users
from gate.engine import make_engine
from gate.clock import utcnow
from gate.db import orgs

KEY = b"k" * 32


@pytest.fixture
def conn(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gate.sqlite3'}")
    migrate(engine)
    with engine.begin() as c:
        c.execute(orgs.insert().values(id=1, name="o", tariff="start", created_at=utcnow()))
        c.execute(users.insert().values(id=7, email="a@b.example", org_id=1, password_hash="x",
                                        created_at=utcnow()))
        yield c
    engine.dispose()


def test_enrol_needs_a_current_code_and_each_code_works_once(conn):
    secret, now = totp.new_secret(), time.time()
    code = pyotp.TOTP(secret).at(now)
    assert totp.enrol(conn, 7, secret, "000000" if code != "000000" else "111111", now) is None
    assert not totp.enrolled(conn, 7)
    codes = totp.enrol(conn, 7, secret, code, now)
    assert len(codes) == totp.RECOVERY_CODES == len(set(codes))
    assert totp.verify(conn, 7, code, now) is None  # used at enrolment
    later = pyotp.TOTP(secret).at(now + totp.STEP)
    assert totp.verify(conn, 7, later, now) == "totp"
    assert totp.verify(conn, 7, later, now) is None   # replayed
    assert totp.verify(conn, 7, code, now) is None    # an older step
    far = pyotp.TOTP(secret).at(now + 3 * totp.STEP)
    assert totp.verify(conn, 7, far, now) is None     # too far ahead


def test_recovery_codes_work_once_and_are_stored_hashed(conn):
    secret, now = totp.new_secret(), time.time()
    codes = totp.enrol(conn, 7, secret, pyotp.TOTP(secret).at(now), now)
    stored = conn.exec_driver_sql("SELECT code_hash FROM totp_recovery").scalars().all()
    assert not set(codes) & set(stored)
    assert totp.verify(conn, 7, codes[0].upper().replace("-", " "), now) == "recovery"
    assert totp.verify(conn, 7, codes[0], now) is None
    assert totp.recovery_left(conn, 7) == totp.RECOVERY_CODES - 1
    assert totp.verify(conn, 7, "nonsense", now) is None
    assert totp.remove(conn, 7) and not totp.enrolled(conn, 7) and not totp.remove(conn, 7)


@pytest.mark.parametrize("value, purpose, at, expected", [
    ("good", "code", 0, 7),
    ("good", "enrol", 0, None),                  # another step's state
    ("good", "code", totp.PENDING_TTL + 1, None),  # expired
    ("tampered", "code", 0, None),
    ("", "code", 0, None),
    ("code.7.99999999999.00", "code", 0, None),
    ("a.b.c.d.e", "code", 0, None),
])
def test_pending_state(value, purpose, at, expected):
    now = 1_800_000_000
    good = totp.pending(KEY, "code", 7, now)
    value = {"good": good, "tampered": good.replace("code.7.", "code.8.")}.get(value, value)
    assert totp.read_pending(KEY, value, purpose, now + at) == expected


def test_pending_state_carries_the_first_factor():
    now = 1_800_000_000
    for via in totp.FIRST_FACTORS:
        assert totp.read_pending_state(KEY, totp.pending(KEY, "code", 7, now, via=via),
                                       "code", now) == (7, via)
    good = totp.pending(KEY, "code", 7, now, via="sso")
    assert totp.read_pending_state(KEY, good.replace(".sso.", ".password."), "code", now) is None
    with pytest.raises(AssertionError):
        totp.pending(KEY, "code", 7, now, via="token")


def test_qr_code_is_an_svg_data_uri():
    uri = totp.provisioning_uri(totp.new_secret(), "a@b.example")
    assert uri.startswith("otpauth://totp/")
    assert totp.qr_data_uri(uri).startswith("data:image/svg+xml;base64,")
