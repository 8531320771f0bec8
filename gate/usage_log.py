"""Edge mode's usage: nginx serves most pages itself and writes one line per page it served to a
valid edition ticket into its usage log (gate.edge_config.usage_log_lines):

    <organisation id> <status> <request URI>

The gate's housekeeping reads the new lines every tick into the in-memory counter
(gate.usage.Counter), which is flushed like the gate's own counts. Several gate processes on
the host share the log: an exclusive, non-blocking file lock lets one read at a time, and the
position reached (the file's inode and offset) is kept beside the log, written before the
lines are counted, so no line is counted twice. When the log was rotated (renamed beside itself,
then `nginx -s reopen`), the unread end of the renamed file is read first, then the new file
from its start; a truncated log (shorter than the offset) is read from its start. Lines nginx
has not finished (no newline yet) wait for the next round.
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
        inode, offset = self._position()
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            f = None  # not written yet, or rotated and not yet reopened by nginx
        current = os.fstat(f.fileno()).st_ino if f is not None else None
        if inode and inode != current:
            rotated = self._rotated(inode)
            if rotated is not None:  # its unread end first (rotated by mv + nginx -s reopen)
                if f is not None:
                    f.close()
                return self._read_from(rotated, inode, offset, then=current)
        if f is None:
            return 0
        with f:
            if inode != current or os.fstat(f.fileno()).st_size < offset:
                offset = 0  # a new or truncated file: from its start
            return self._read_from(f, current, offset)

    def _rotated(self, inode: int) -> Path | None:
        """The rotated file (usage.log.1, usage.log-20261207, ...) that is the one read last."""
        for candidate in self.path.parent.glob(self.path.name + "?*"):
            if candidate in (self.state, self.lock) or candidate.name.startswith(self.state.name):
                continue
            try:
                if candidate.stat().st_ino == inode:
                    return candidate
            except OSError:
                continue
        return None

    def _read_from(self, source, inode: int, offset: int, then: int | None = None) -> int:
        """Counts the whole lines of `source` (a path or an open file) from `offset`; the
        position is kept before counting. `then`: the file to go on with once `source`, a
        rotated file nginx no longer writes, has been read to its end."""
        if isinstance(source, Path):
            try:
                with open(source, "rb") as g:
                    g.seek(offset)
                    data = g.read(MAX_READ)
            except OSError:
                return 0
        else:
            source.seek(offset)
            data = source.read(MAX_READ)
        end = data.rfind(b"\n") + 1
        finished = then is not None and len(data) < MAX_READ
        if not end and not finished:
            return 0
        try:
            if finished:  # the rotated file is done (an unfinished last line is lost with it)
                self._remember(then or 0, 0)
            else:
                self._remember(inode, offset + end)
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
