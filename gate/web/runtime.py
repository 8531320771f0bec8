"""The running gate's state: settings, database, key, tariffs and the current site.

Views reach it through `current_gate()` (as Flask's `current_app`); the factory makes it, the
fast path is handed it. The site is reloaded when `gate build` has replaced site/.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from flask import current_app, g

from gate.access import edition_for
from gate.build import MANIFEST, tariffs_digest
from gate.audit import Refusals
from gate.identities import Identities
from gate.limits import Windows
from gate.site import Edition, load_site
from gate.throttle import Throttle

SITE_CHECK_INTERVAL = 2.0  # seconds between looks at site/manifest.json for a rebuilt site
log = logging.getLogger("gate")


@dataclass
class Gate:
    cfg: object
    engine: object
    key: bytes
    tariffs: dict
    manifest: dict
    editions: dict
    identities: Identities
    throttle: Throttle
    ticket_secret: str = ""  # edge mode: the secret of the edition tickets nginx checks
    counters: object = None  # engine of the shared limits (gate.shared_limits), or None
    site_version: int = 0
    outbox_worker: object = None  # gate serve: poked when a mail is queued
    storage_probe: object = None  # gate.health.StorageProbe: can it write (for /healthz)
    calendar: object = None       # gate.workdays.WorkingDays of the workaround deadlines
    refusals: Refusals | None = None  # refused attempts, audited with bounded growth
    limits: Windows = field(default_factory=Windows)  # the console's and invitations' rates
    usage: object = None          # gate.usage.Counter: usage per organisation, flushed in the background
    _manifest_stamp: tuple = ()
    _next_check: float = 0.0

    def current_editions(self) -> dict:
        """The editions, reloaded when `gate build` has replaced site/ (checked every 2 s).

        A site built for other tariffs than the running gate's is not taken: the gate keeps
        serving what it has (and says so in its log) until it is restarted.
        """
        now = time.monotonic()
        if now < self._next_check:
            return self.editions
        self._next_check = now + SITE_CHECK_INTERVAL
        try:
            st = (self.cfg.site_dir / MANIFEST).stat()
        except OSError:
            return self.editions  # in the middle of the swap: keep the old editions
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp == self._manifest_stamp:
            return self.editions
        try:
            manifest, editions = load_site(self.cfg.site_dir)
        except (OSError, ValueError, KeyError):
            return self.editions
        self._manifest_stamp = stamp
        if manifest.get("tariffs_digest") != tariffs_digest(self.tariffs):
            log.warning("site/ was rebuilt for other tariffs: restart the gate")
            return self.editions
        self.manifest, self.editions = manifest, editions
        self.site_version += 1
        return editions

    def poke_outbox(self) -> None:
        """A mail was queued: the worker (if this process runs one) sends it now."""
        if self.outbox_worker is not None:
            self.outbox_worker.poke()


def current_gate() -> Gate:
    return current_app.extensions["gate"]


def current_edition() -> Edition:
    """The edition of the visitor of this request (see gate.access.edition_for)."""
    return current_gate().current_editions()[edition_for(g.get("identity"))]
