"""Fetches axe-core, the accessibility engine the browser tests run (tests/test_browser_pages.py).

One pinned version from the npm registry through npm itself (`npm pack`), checked against the
registry's sha512 integrity pinned here, unpacked into .tools/ (git-ignored). `make setup` runs
it; the tests run it too when the file is missing. Without npm or the registry it says why and
exits 0: the tests that need axe-core are then skipped with that reason. A package whose hash
differs from the pin is an error (exit 1), never used.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "4.14.1"
INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / ".tools" / f"axe-core-{VERSION}"
SCRIPT = DEST / "axe.min.js"


class Unavailable(RuntimeError):
    """axe-core cannot be fetched on this machine (no npm, no registry)."""


def fetch() -> Path:
    """The path of axe.min.js, fetched and checked if it is not there yet."""
    if SCRIPT.is_file():
        return SCRIPT
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not installed (Debian: apt-get install npm)")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result = subprocess.run(
                [npm, "pack", f"axe-core@{VERSION}", "--pack-destination", tmp, "--silent",
                 "--fetch-retries=1", "--fetch-timeout=60000"],
                capture_output=True, text=True, timeout=300, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise Unavailable("npm pack timed out") from None
        tgz = Path(tmp) / f"axe-core-{VERSION}.tgz"
        if result.returncode != 0 or not tgz.is_file():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"npm pack axe-core@{VERSION} failed: {last}")
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
        if digest != INTEGRITY:
            raise ValueError(f"axe-core-{VERSION}.tgz is not the pinned package: {digest}")
        staging = DEST.with_name(DEST.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        with tarfile.open(tgz) as archive:
            for name in ("axe.min.js", "LICENSE"):
                member = archive.extractfile(f"package/{name}")
                (staging / name).write_bytes(member.read())
        shutil.rmtree(DEST, ignore_errors=True)
        staging.rename(DEST)
    return SCRIPT


def main() -> int:
    try:
        path = fetch()
    except Unavailable as exc:
        print(f"axe-core not fetched ({exc}): the accessibility tests will be skipped",
              file=sys.stderr)
        return 0
    except ValueError as exc:
        print(f"axe-core: {exc}", file=sys.stderr)
        return 1
    print(f"axe-core {VERSION}: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
