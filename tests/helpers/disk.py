"""A full disk in tests: a tmpfs of its own (mounting needs root), filled to the last byte."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path


class DiskUnavailable(Exception):
    """This machine cannot mount a tmpfs for the test (the reason says why)."""


class TinyDisk:
    """A tmpfs of `size` mounted at `path`; `fill()` takes its last byte, `free()` gives it back."""

    def __init__(self, path: Path, size: str = "16m"):
        self.path, self.size = Path(path), size
        self.filler = self.path / "filler"

    def mount(self) -> "TinyDisk":
        if os.geteuid() != 0:
            raise DiskUnavailable("filling a disk needs a tmpfs of its own, and mounting one "
                                  "needs root")
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755",
                               "tmpfs", str(self.path)], capture_output=True, text=True)
        if done.returncode != 0:
            raise DiskUnavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        return self

    def unmount(self) -> None:
        subprocess.run(["umount", "--lazy", str(self.path)], capture_output=True)

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self) -> None:
        """Big pieces first, then ever smaller ones down to a single byte."""
        with open(self.filler, "ab", buffering=0) as f:
            for piece in (1 << 20, 1 << 16, 1 << 12, 1):
                while True:
                    try:
                        f.write(b"\0" * piece)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        assert self.free_bytes() == 0

    def free(self) -> None:
        self.filler.unlink()
