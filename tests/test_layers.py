"""The picture of the architecture cannot drift from the code: the import contracts in
pyproject.toml ([tool.importlinter]) hold, and no module grows past a size one can read."""

import subprocess
import sys
from pathlib import Path

GATE = Path(__file__).resolve().parent.parent / "gate"
MAX_LINES = 400


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint), "--no-cache"], cwd=GATE.parent, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_no_module_of_the_gate_is_over_400_lines():
    sizes = {p.relative_to(GATE.parent).as_posix(): len(p.read_text().splitlines())
             for p in GATE.rglob("*.py")}
    assert sizes and not {p: n for p, n in sizes.items() if n > MAX_LINES}
