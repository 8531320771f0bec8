"""Edge mode's usage: nginx serves most pages itself and writes one line per page it served to a
valid edition ticket into its usage log (gate.edge_config.usage_log_lines):

    <organisation id> <status> <request URI>

The gate's housekeeping reads the new lines every tick into the in-memory counter
(gate.usage.Counter), which is flushed like the gate's own counts. Several gate processes on
the host share the log: an exclusive, non-blocking file lock lets one read at a time, and the
position reached (the file's inode and offset) is kept beside the log, written before the
lines are counted, so no line is counted twice. A rotated log (another inode) or a truncated
one (shorter than the offset) is read from its start. Lines nginx has not finished (no newline
yet) wait for the next round.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path
from urllib.parse import unquote

from gate import usage
from gate.site import normalize_path

log = logging.getLogger("gate.usage")
MAX_READ = 1 << 20  # bytes read in one round (~12 000 lines; parsing holds the GIL), the rest next tick


def parse(line: str) -> tuple[int, str] | None:
    """(organisation id, normalized path) of a page view line, or None."""
    parts = line.split(" ", 2)
    if len(parts) != 3 or not (parts[0].isascii() and parts[0].isdigit()) or parts[1] not in ("200", "304"):
        return None
    path = normalize_path(unquote(parts[2].split("?", 1)[0]))
    return (int(parts[0]), path) if path is not None and int(parts[0]) > 0 else None


class LogReader:
    def __init__(self, path: Path, counter: usage.Counter):
        self.path, self.counter = Path(path), counter
        self.state = self.path.with_name(self.path.name + ".offset")
        self.lock = self.path.with_name(self.path.name + ".lock")

    def _position(self) -> tuple[int, int]:
        try:
            inode, offset = self.state.read_text().split()
            return int(inode), int(offset)
        except (OSError, ValueError):
            return 0, 0

    def _remember(self, inode: int, offset: int) -> None:
        tmp = self.state.with_name(f"{self.state.name}.{os.getpid()}")
        tmp.write_text(f"{inode} {offset}\n")
        os.replace(tmp, self.state)

    def read(self) -> int:
        """Counts the lines written since the last round; returns how many page views."""
        try:
            fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("usage log: cannot open %s: %s", self.lock, exc)
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another process of this host is reading it now
            return self._read_locked()
        finally:
            os.close(fd)  # releases the lock

    def _read_locked(self) -> int:
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return 0  # nginx has not written a line yet
        with f:
            st = os.fstat(f.fileno())
            inode, offset = self._position()
            if inode != st.st_ino or st.st_size < offset:
                offset = 0  # rotated or truncated: the new file from its start
            f.seek(offset)
            data = f.read(MAX_READ)
        end = data.rfind(b"\n") + 1
        if not end:
            return 0
        try:
            self._remember(st.st_ino, offset + end)
        except OSError as exc:  # a full disk: counted once the position can be kept
            log.warning("usage log: cannot keep the position in %s: %s", self.state, exc)
            return 0
        views = 0
        for line in data[:end].decode("utf-8", "replace").splitlines():
            found = parse(line.strip())
            if found is not None:
                self.counter.page(*found)
                views += 1
        return views


class Keeper:
    """The usage chore of gate.housekeeping: read nginx's log (edge mode), flush the counts,
    prune old days once an hour. Fail-soft: whatever fails is tried again next tick."""

    PRUNE_EVERY = 3600

    def __init__(self, engine, counter: usage.Counter, tz, days: int, log_path: Path | None = None,
                 clock=time.monotonic):
        self.engine, self.counter, self.tz, self.days = engine, counter, tz, days
        self.reader = LogReader(log_path, counter) if log_path and counter.enabled else None
        self.clock = clock
        self._next_prune = self.clock()

    def __call__(self, final: bool = False) -> None:
        if self.reader is not None:
            try:
                self.reader.read()
            except Exception as exc:  # noqa: BLE001 - the next tick reads on
                log.warning("usage log: not read: %s", exc)
        self.counter.flush(self.engine)
        if not final and self.clock() >= self._next_prune:
            self._next_prune = self.clock() + self.PRUNE_EVERY
            try:
                usage.prune(self.engine, self.tz, self.days)
            except Exception as exc:  # noqa: BLE001 - the database may be away: next hour
                log.warning("usage: could not prune old days: %s", exc)
