"""The client portal's signing keys (gate.sso verifies its tokens with them).

A key is chosen by the token's `kid` and allows exactly one algorithm, its own:
- `GATE_SSO_SECRET`: HS256, named by no `kid` or by `kid` "secret";
- a JWKS (RFC 7517), from `GATE_SSO_JWKS_FILE` or `GATE_SSO_JWKS_URL`: RSA → RS256, EC P-256 →
  ES256, OKP Ed25519 → EdDSA; every entry needs a `kid`; symmetric ("oct") and other keys are
  left out, so a public JWKS can never hand out an HMAC secret.
Several keys are valid at once: rotating means adding the new key, switching the portal to it,
then removing the old one.

The file is looked at (its size, time and inode) at most once per `check_every` seconds and
re-read when it changed. The URL is fetched at start, again every REFRESH seconds, and on an
unknown `kid` at most once per `check_every` seconds, so a flood of made-up `kid`s costs the
portal one request a minute. A failed read or fetch keeps the keys known so far.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import jwt

log = logging.getLogger("gate.sso")
CHECK_EVERY = 60.0       # seconds: the file's check, the URL's refetch on an unknown kid
REFRESH = 600.0          # seconds: the URL's keys are fetched again this often anyway
FETCH_TIMEOUT = 5.0      # seconds
MAX_JWKS_BYTES = 256 * 1024
SECRET_KID = "secret"    # the kid naming GATE_SSO_SECRET (a token without a kid means it too)
JWKS_ALGORITHMS = {("RSA", None): "RS256", ("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "EdDSA"}


class KeysError(ValueError):
    """A JWKS that cannot be used at all (start-up refuses it)."""


@dataclass(frozen=True)
class Key:
    kid: str | None
    algorithm: str
    key: object  # what PyJWT verifies with: bytes (HS256) or a cryptography public key


def parse_jwks(text: str | bytes) -> dict[str, Key]:
    """kid -> Key of a JWKS document; entries that are not signing keys of the allowed kinds
    are left out (and logged). KeysError when the document is not a JWKS."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeysError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeysError('not a JWKS: no "keys" list')
    found = {}
    for entry in doc["keys"]:
        key = _entry(entry)
        if key is not None:
            found[key.kid] = key
    return found


def _entry(entry) -> Key | None:
    if not isinstance(entry, dict):
        return None
    kid, kty = entry.get("kid"), entry.get("kty")
    if not isinstance(kid, str) or not kid or len(kid) > 200:
        log.warning("SSO JWKS: an entry without a usable kid is left out")
        return None
    algorithm = JWKS_ALGORITHMS.get((kty, None if kty == "RSA" else entry.get("crv")))
    if algorithm is None or entry.get("use", "sig") != "sig" or entry.get("alg", algorithm) != algorithm:
        log.warning("SSO JWKS: key %r (%s) is not RS256, ES256 or EdDSA: left out", kid, kty)
        return None
    try:
        public = jwt.PyJWK(entry, algorithm).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        log.warning("SSO JWKS: key %r cannot be read (%s): left out", kid, exc)
        return None
    if hasattr(public, "private_bytes"):  # a private key published by mistake: use its public half
        public = public.public_key()
    return Key(kid, algorithm, public)


class KeyRing:
    """Every key the portal may sign with now; `find(kid)` is the one question."""

    def __init__(self, secret: bytes | None = None, jwks_file: Path | None = None,
                 jwks_url: str | None = None, check_every: float = CHECK_EVERY,
                 refresh: float = REFRESH, clock=time.monotonic):
        self.secret = Key(SECRET_KID, "HS256", secret) if secret else None
        self.jwks_file, self.jwks_url = jwks_file, jwks_url
        self.check_every, self.refresh, self.clock = check_every, refresh, clock
        self.fetches = 0  # how often the URL was asked (the bench and tests read it)
        self._keys: dict[str, Key] = {}
        self._lock = threading.Lock()
        self._stamp = None
        self._checked = clock()  # the file's last look, or the URL's last fetch
        if jwks_file is not None:
            self._keys = parse_jwks(Path(jwks_file).read_bytes())  # start-up: a bad file is an error
            self._stamp = _stamp(jwks_file)
        elif jwks_url is not None:
            self._fetch(clock())  # a portal that is down at start: its keys come with a later fetch

    @classmethod
    def from_settings(cls, sso) -> "KeyRing":
        """From config.SsoSettings; KeysError for a JWKS file that is no JWKS."""
        return cls(sso.secret, sso.jwks_file, sso.jwks_url)

    def find(self, kid) -> Key | None:
        """The key `kid` names, or None (unknown, or not a plausible name at all)."""
        if kid is None or kid == SECRET_KID:
            return self.secret
        if not isinstance(kid, str) or not kid or len(kid) > 200:
            return None
        now = self.clock()
        if self.jwks_file is not None:
            self._look_at_file(now)
        elif self.jwks_url is not None:
            age = now - self._checked
            if age >= self.refresh or (kid not in self._keys and age >= self.check_every):
                self._fetch(now)
        return self._keys.get(kid)

    def kids(self) -> list[str]:
        return ([self.secret.kid] if self.secret else []) + sorted(self._keys)

    # --- the JWKS file ---------------------------------------------------------------------
    def _look_at_file(self, now: float) -> None:
        if now - self._checked < self.check_every or not self._lock.acquire(blocking=False):
            return  # looked at lately, or another thread is looking: the keys known now
        try:
            self._checked = now
            stamp = _stamp(self.jwks_file)
            if stamp is None or stamp == self._stamp:
                return
            try:
                self._keys = parse_jwks(Path(self.jwks_file).read_bytes())
                self._stamp = stamp
                log.info("SSO JWKS file re-read: keys %s", ", ".join(sorted(self._keys)) or "none")
            except (OSError, KeysError) as exc:
                log.warning("SSO JWKS file %s cannot be used (%s): the keys known so far stay",
                            self.jwks_file, exc)
        finally:
            self._lock.release()

    # --- the JWKS URL ----------------------------------------------------------------------
    def _fetch(self, now: float) -> None:
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._checked = now
            self.fetches += 1
            try:
                request = urllib.request.Request(self.jwks_url, headers={"Accept": "application/json"})
                with _OPENER.open(request, timeout=FETCH_TIMEOUT) as answer:
                    body = answer.read(MAX_JWKS_BYTES + 1)
                if len(body) > MAX_JWKS_BYTES:
                    raise KeysError("larger than 256 KB")
                self._keys = parse_jwks(body)
            except (OSError, ValueError) as exc:  # URLError, timeouts, KeysError
                log.warning("SSO JWKS %s could not be fetched (%s): the keys known so far stay",
                            self.jwks_url, exc)
        finally:
            self._lock.release()


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    """Follows a redirect of the JWKS URL only to https (or from plain http on this host, as
    the setting itself allows): keys must never arrive over plain http from elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        target = urllib.parse.urlsplit(newurl)
        if target.scheme != "https" and not (
                target.scheme == "http" and target.hostname in ("127.0.0.1", "localhost", "::1")
                and urllib.parse.urlsplit(req.full_url).scheme == "http"):
            raise urllib.error.HTTPError(newurl, code, "redirect away from https refused",
                                         headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_NoDowngrade)


def _stamp(path) -> tuple | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
