"""gate.storage_errors: which exceptions are storage faults (a table, with real SQLite errors
made on the spot), the log that writes one line per fault, and the support contacts the
fault pages quote (gate.contacts) against the public contacts page."""

from __future__ import annotations

import errno
import logging
import sqlite3
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from gate import contacts
from gate.storage_errors import BUSY, FULL, IO, READONLY, UNAVAILABLE, FaultLog, classify

PROJECT = Path(__file__).resolve().parent.parent


def wrapped(orig, cls=sa.exc.OperationalError):
    """As SQLAlchemy raises a driver's exception."""
    return cls("INSERT INTO support_requests ...", {}, orig)


def invalidated(orig):
    exc = wrapped(orig, sa.exc.DBAPIError)
    exc.connection_invalidated = True
    return exc


pg = psycopg.errors

CASES = [
    # SQLite, as its messages read (Python's sqlite3 adds the result code to real ones)
    (sqlite3.OperationalError("database or disk is full"), FULL),
    (wrapped(sqlite3.OperationalError("database or disk is full")), FULL),
    (wrapped(sqlite3.OperationalError("disk I/O error")), IO),
    (wrapped(sqlite3.OperationalError("attempt to write a readonly database")), READONLY),
    (wrapped(sqlite3.OperationalError("database is locked")), BUSY),
    (wrapped(sqlite3.OperationalError("database table is locked")), BUSY),
    (wrapped(sqlite3.OperationalError("unable to open database file")), UNAVAILABLE),
    # PostgreSQL, by SQLSTATE
    (wrapped(pg.DiskFull("could not extend file: No space left on device")), FULL),
    (wrapped(pg.IoError("could not read block")), IO),
    (wrapped(pg.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"),
             sa.exc.InternalError), READONLY),
    (wrapped(pg.LockNotAvailable("canceling statement due to lock timeout")), BUSY),
    (wrapped(pg.QueryCanceled("canceling statement due to statement timeout")), BUSY),
    (wrapped(pg.TooManyConnections("sorry, too many clients already")), BUSY),
    (wrapped(pg.AdminShutdown("terminating connection due to administrator command")), UNAVAILABLE),
    (wrapped(pg.CannotConnectNow("the database system is starting up")), UNAVAILABLE),
    (wrapped(pg.ConnectionFailure("connection failure")), UNAVAILABLE),
    # PostgreSQL connection failures carry no SQLSTATE
    (wrapped(psycopg.OperationalError('connection failed: connection to server at "127.0.0.1", '
                                      'port 5432 failed: Connection refused')), UNAVAILABLE),
    (wrapped(psycopg.OperationalError("consuming input failed: server closed the connection "
                                      "unexpectedly")), UNAVAILABLE),
    (wrapped(psycopg.InterfaceError("the connection is closed"), sa.exc.InterfaceError), UNAVAILABLE),
    (invalidated(psycopg.OperationalError("")), UNAVAILABLE),
    (sa.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"), BUSY),
    # the operating system
    (OSError(errno.ENOSPC, "No space left on device"), FULL),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), FULL),
    (OSError(errno.EROFS, "Read-only file system"), READONLY),
    (OSError(errno.EIO, "Input/output error"), IO),
    # not storage faults: bugs, bad data, damage - these stay a 500 with a traceback
    (wrapped(sqlite3.IntegrityError("UNIQUE constraint failed: users.email"),
             sa.exc.IntegrityError), None),
    (wrapped(sqlite3.OperationalError("no such table: users")), None),
    (wrapped(sqlite3.DatabaseError("database disk image is malformed"), sa.exc.DatabaseError), None),
    (wrapped(sqlite3.ProgrammingError("Cannot operate on a closed database.")), None),
    (wrapped(pg.UniqueViolation("duplicate key value"), sa.exc.IntegrityError), None),
    (wrapped(pg.UndefinedTable('relation "users" does not exist'), sa.exc.ProgrammingError), None),
    (wrapped(pg.SerializationFailure("could not serialize access")), None),
    (FileNotFoundError(errno.ENOENT, "No such file or directory"), None),
    (OSError(errno.EPIPE, "Broken pipe"), None),
    (ValueError("database or disk is full"), None),  # the words alone are not enough
    (KeyError("disk"), None),
    (sa.exc.NoResultFound("No row was found when one was required"), None),
]


@pytest.mark.parametrize("exc, kind", CASES, ids=[f"{type(e).__name__}-{k}-{i}"
                                                  for i, (e, k) in enumerate(CASES)])
def test_classify(exc, kind):
    assert classify(exc) == kind


def _error_of(action):
    try:
        action()
    except Exception as exc:  # noqa: BLE001
        return exc
    raise AssertionError("no error")


def test_real_sqlite_errors_by_their_result_code(tmp_path):
    """Errors as SQLite itself raises them (with sqlite_errorcode), through SQLAlchemy."""
    path = tmp_path / "db.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    # read-only: a connection opened read-only (root ignores file modes)
    ro = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with ro.connect() as conn:
        exc = _error_of(lambda: conn.exec_driver_sql("INSERT INTO t VALUES (1)"))
    assert exc.orig.sqlite_errorcode & 0xFF == 8 and classify(exc) == READONLY
    # locked: another connection holds the write lock
    holder = sqlite3.connect(path, timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with engine.connect() as conn:
            exc = _error_of(lambda: conn.exec_driver_sql("INSERT INTO t VALUES (1)"))
        assert exc.orig.sqlite_errorcode & 0xFF == 5 and classify(exc) == BUSY
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # cannot open: the instance folder is gone
    gone = sa.create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'db.sqlite3'}")
    exc = _error_of(gone.connect)
    assert classify(exc) == UNAVAILABLE
    for e in (engine, ro, gone):
        e.dispose()


def test_real_postgresql_refusal():
    """No server on the port: psycopg's own connection failure, without a SQLSTATE."""
    from tests.helpers.ports import free_port

    engine = sa.create_engine(f"postgresql+psycopg://gate@127.0.0.1:{free_port()}/gate")
    try:
        exc = _error_of(engine.connect)
    finally:
        engine.dispose()
    assert classify(exc) == UNAVAILABLE


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_one_log_line_per_fault_a_minute(caplog):
    clock = Clock()
    faults = FaultLog(logging.getLogger("test.storage"), every=60, clock=clock)
    full = wrapped(sqlite3.OperationalError("database or disk is full"))
    caplog.set_level(logging.INFO, logger="test.storage")
    assert faults.seen(FULL, full, "POST /support/new")          # the first: logged
    for _ in range(50):
        clock.now += 1
        assert not faults.seen(FULL, full, "POST /login")        # the same minute: counted
    assert faults.seen(UNAVAILABLE, full, "outbox worker")        # another kind: its own line
    clock.now += 11
    assert faults.seen(FULL, full, "POST /support/new")          # a minute on: one line
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and all(r.exc_info is None for r in caplog.records)
    assert "database or disk is full" in lines[0] and "POST /support/new" in lines[0]
    assert "50 more" in lines[2]
    faults.recovered()
    assert "storage recovered" in caplog.records[-1].getMessage()
    faults.recovered()  # nothing more to say
    assert len(caplog.records) == 4
    assert faults.seen(FULL, full, "POST /support/new")          # a new fault: logged at once


def test_contacts_are_the_tariff_descriptions(tmp_path):
    """The other ways to reach support are quoted from the tariff description; the public
    contacts page and the tariff page say the same."""
    for page in ("docs/contacts.md", "docs/tariff-start.md"):
        text = (PROJECT / page).read_text(encoding="utf-8")
        for value in (contacts.PHONE, contacts.EMAIL, contacts.WEBSITE):
            assert value in text, (page, value)
    assert contacts.PHONE_LINK == "tel:+7" + "".join(c for c in contacts.PHONE if c.isdigit())[1:]
