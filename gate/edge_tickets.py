"""Edition tickets: the cookie nginx checks by itself in edge mode.

A ticket says "this browser, of organisation O, may read edition E until second X":
`<X>.<E>.<O>.<mac>`, where mac is the unpadded base64url MD5 of `<X>.<E>.<O>.<secret>`,
exactly what nginx's built-in secure_link module computes (`secure_link_md5
"$exp.$edition.$org.<secret>"`). O (the organisation's id, 0 when unknown) only names whom
nginx's usage log counts a page for (gate.usage_log); it opens nothing. nginx thus serves an edition's
files with no script and no round trip; whatever a ticket does not settle (none, expired,
tampered, a form, an API, an Authorization header) goes to the gate, which checks the session
JWT as always and issues a new ticket with every new session token.

Why MD5 is acceptable here: it is the only keyed check nginx has built in; the secret comes
last (no length extension) and the gate alone chooses the message, so a forgery needs an MD5
second preimage, which nobody can compute. A ticket lives no longer than the session token it
came with (45 s), only chooses among prebuilt editions, and the secret is derived from the
signing key (HMAC-SHA256), so nginx's configuration never holds the key that signs JWTs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

COOKIE = "kb_edge"
# nginx reads the three parts with these same patterns (gate.edge_config). The MAC's last
# character carries 2 bits of the digest and 4 unused ones that nginx's decoder ignores: only
# the canonical spelling is accepted, so a ticket is valid in one spelling only, everywhere.
EXP_PATTERN = r"[0-9]{10}"
EDITION_PATTERN = r"[a-z+-]{3,64}"
ORG_PATTERN = r"0|[1-9][0-9]{0,9}"
MAC_PATTERN = r"[A-Za-z0-9_-]{21}[AQgw]"
_SHAPE = re.compile(rf"({EXP_PATTERN})\.({EDITION_PATTERN})\.({ORG_PATTERN})\.({MAC_PATTERN})\Z")


def ticket_secret(key: bytes) -> str:
    """The secret nginx and the gate share, derived from the JWT signing key (64 hex digits)."""
    return hmac.new(key, b"kb-edge-ticket-v1", hashlib.sha256).hexdigest()


def _mac(secret: str, exp: int, edition: str, org: int) -> str:
    digest = hashlib.md5(f"{exp}.{edition}.{org}.{secret}".encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(secret: str, edition: str, exp: int, org: int = 0) -> str:
    """A ticket for `edition`, valid through second `exp` (nginx: expired when exp < now), of
    a person of organisation `org` (its id)."""
    value = f"{int(exp)}.{edition}.{int(org)}"
    ticket = f"{value}.{_mac(secret, int(exp), edition, int(org))}"
    if not _SHAPE.match(ticket):
        raise ValueError(f"cannot make a ticket for edition {edition!r} and expiry {exp!r}")
    return ticket


def read(secret: str, ticket: str | None, now: float) -> tuple[str, int] | None:
    """(edition, organisation id) of a ticket valid now, as nginx would decide, or None."""
    m = _SHAPE.match(ticket or "")
    if m is None:
        return None
    exp, edition, org, mac = m.groups()
    if int(exp) < int(now) or not hmac.compare_digest(mac, _mac(secret, int(exp), edition, int(org))):
        return None
    return edition, int(org)


def edition_of(secret: str, ticket: str | None, now: float) -> str | None:
    """The edition a ticket opens now, as nginx would decide, or None."""
    found = read(secret, ticket, now)
    return found[0] if found else None
