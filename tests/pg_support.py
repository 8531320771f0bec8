"""A real, throwaway PostgreSQL server on this machine (Debian's postgresql), for the tests that
run the gate on PostgreSQL: tests/test_postgres.py and tests/test_storage_postgres.py.

`running_cluster()` initialises and starts one (as the unprivileged `postgres` user when run as
root: PostgreSQL refuses to run as root), or skips the test with the reason when PostgreSQL or
the psycopg driver is not installed. The server runs in another time zone than UTC on purpose:
stored times are naive UTC and must not depend on it. `halt()` and `resume()` stop and start
the same server (its data kept) under a running gate.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.smtp_support import free_port

SERVER_TIMEZONE = "America/New_York"  # not UTC, not GATE_TIMEZONE


def _initdb() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]) if found else None


class Cluster:
    """A PostgreSQL server in a temporary folder, listening on 127.0.0.1:<free port>."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.as_user: list[str] = []
        self.folder = Path(tempfile.mkdtemp(prefix="gate-pg-", dir="/tmp"))
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.folder)
                pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data, self.log = self.folder / "data", self.folder / "server.log"
        self.port = free_port()

    def _run(self, *args: str, timeout: float = 60):
        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True,
                                timeout=timeout, cwd=self.folder)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}{log}")
        return result

    def start(self) -> "Cluster":
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "gate",
                  "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        self.resume()
        return self

    def resume(self) -> None:
        """Starts the server (again, on the same port and data)."""
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   f"-c fsync=off -c full_page_writes=off -c timezone={SERVER_TIMEZONE}")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-w", "-t", "30", "start")

    def halt(self) -> None:
        """Stops the server as an administrator would for a restart ("fast": open connections
        are terminated), keeping its data."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop",
                  timeout=60)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():  # not halted
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop", timeout=30)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://gate@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)


def running_cluster() -> Cluster:
    """A started cluster (stop() it when done), or the test is skipped with the reason."""
    bindir = _initdb()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; "
                    "Debian: apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg is not installed")
    return Cluster(bindir.parent).start()
