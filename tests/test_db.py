"""The SQLite database: gates starting together on a fresh file migrate it exactly once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from gate.db import MIGRATIONS

MIGRATE = "import sys; from gate.db import migrate; from gate.engine import make_engine; migrate(make_engine(sys.argv[1]))"


def test_gates_starting_together_on_a_fresh_file_migrate_once(tmp_path):
    for round_ in range(3):
        path = tmp_path / f"gate{round_}.sqlite3"
        procs = [subprocess.Popen([sys.executable, "-c", MIGRATE, f"sqlite:///{path}"],
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert all(p.returncode == 0 for p in procs), errors
        versions = sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall()
        assert sorted(v for (v,) in versions) == list(range(1, len(MIGRATIONS) + 1))
