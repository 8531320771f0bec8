"""Staff sign-in through the company's identity provider (OpenID Connect, the authorization
code flow with PKCE S256, `state` and `nonce`), with Authlib's client pieces.

The provider says who the person is; the knowledge base decides who gets in (`refusal`):
only a staff member whose e-mail exists here, is enabled and that the provider calls
verified. Nothing is created or changed from the provider's word.

Between the redirect to the provider and its callback nobody is signed in: the browser holds
`seal`'s signed state (state, nonce, PKCE verifier, where to go next), STATE_TTL seconds.
The provider's configuration is discovered from `<issuer>/.well-known/openid-configuration`
at first use and cached; its keys (JWKS) too, fetched again on an unknown `kid` at most once a
JWKS_REFETCH seconds. A provider that cannot be reached is `Unavailable` (the web says 503),
anything wrong with its answer or the ID token is `Refused`.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

TIMEOUT = 5            # seconds for each request to the provider
STATE_TTL = 600        # seconds between the redirect to the provider and its callback
JWKS_REFETCH = 60      # an unknown `kid` fetches the keys again at most this often
DISCOVERY_RETRY = 30   # a failed discovery answers 503 at once for this long, then is tried again
LEEWAY = 60            # seconds of clock difference with the provider
SCOPE = "openid email"
# the provider's published keys only: never HS256 (a key the client shares) or none
ALGORITHMS = ["RS256", "PS256", "ES256"]
CALLBACK = "/login/oidc/callback"


class Unavailable(Exception):
    """The provider cannot be reached or answers nonsense (its discovery, keys or token
    endpoint): nobody can sign in through it right now."""


class Refused(Exception):
    """This sign-in is refused; `reason` is a short word for the audit log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Pending:
    """What the callback must match: kept in the browser, signed, between the two redirects."""
    state: str
    nonce: str
    verifier: str
    next: str


def seal(key: bytes, pending: Pending) -> str:
    return _serializer(key).dumps([pending.state, pending.nonce, pending.verifier, pending.next])


def unseal(key: bytes, value: str | None, max_age: int = STATE_TTL) -> Pending | None:
    """The pending sign-in of a `seal`ed value; None when missing, tampered or expired."""
    if not value or len(value) > 4096:
        return None
    try:
        state, nonce, verifier, next_path = _serializer(key).loads(value, max_age=max_age)
        return Pending(str(state), str(nonce), str(verifier), str(next_path))
    except (BadSignature, ValueError, TypeError):
        return None


def _serializer(key: bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt="kb-oidc-pending")


def state_matches(pending: Pending | None, state: str | None) -> bool:
    return pending is not None and bool(state) and hmac.compare_digest(
        pending.state.encode(), state.encode())


def refusal(claims: dict, row) -> str | None:
    """Why the person the ID token names may not sign in (None: they may). `row` is the users
    row of the token's e-mail, or None."""
    if claims.get("email_verified") is not True:
        return "email_unverified"
    if row is None or row.email is None:
        return "unknown"
    if row.disabled:
        return "disabled"
    if not row.is_staff:
        return "not_staff"
    return None


@dataclass
class Provider:
    issuer: str
    client_id: str
    client_secret: str
    name: str
    _metadata: dict | None = field(default=None, repr=False)
    _keys: KeySet | None = field(default=None, repr=False)
    _refetched_at: float = field(default=float("-inf"), repr=False)
    _failed_until: float = field(default=float("-inf"), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_config(cls, cfg) -> Provider | None:
        if not cfg.oidc:
            return None
        return cls(cfg.oidc_issuer, cfg.oidc_client_id, cfg.oidc_client_secret, cfg.oidc_name)

    def metadata(self) -> dict:
        """The provider's discovery document, fetched at first use and kept. A provider that
        did not answer is not asked again for DISCOVERY_RETRY seconds: meanwhile sign-ins
        answer 503 at once instead of each holding a worker's thread for TIMEOUT. (A document
        that answered but is wrong is not remembered: the next sign-in reads it again.)"""
        if self._metadata is not None:
            return self._metadata
        if time.monotonic() < self._failed_until:
            raise Unavailable("the provider did not answer a moment ago")
        with self._lock:
            if self._metadata is None:
                if time.monotonic() < self._failed_until:
                    raise Unavailable("the provider did not answer a moment ago")
                self._metadata = self._discover()
            return self._metadata

    def _discover(self) -> dict:
        try:
            meta = _get_json(self.issuer + "/.well-known/openid-configuration")
        except Unavailable:
            self._failed_until = time.monotonic() + DISCOVERY_RETRY
            raise
        issuer = meta.get("issuer")
        if not isinstance(issuer, str) or issuer.rstrip("/") != self.issuer:
            raise Unavailable("the discovery document names another issuer")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(meta.get(name), str):
                raise Unavailable(f"the discovery document has no {name}")
        return meta

    def _session(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(self.client_id, self.client_secret, scope=SCOPE,
                             redirect_uri=redirect_uri, code_challenge_method="S256")

    def begin(self, redirect_uri: str, next_path: str) -> tuple[str, Pending]:
        """The provider's authorization URL to send the browser to, and what to keep."""
        meta = self.metadata()
        pending = Pending(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                          verifier=secrets.token_urlsafe(64), next=next_path)
        with self._session(redirect_uri) as session:
            url, _ = session.create_authorization_url(
                meta["authorization_endpoint"], state=pending.state, nonce=pending.nonce,
                code_verifier=pending.verifier)
        return url, pending

    def finish(self, code: str, redirect_uri: str, pending: Pending) -> dict:
        """The ID token's claims for the code the callback brought, checked: the code redeemed
        with the PKCE verifier, the token's signature (the provider's keys), iss, aud, exp, iat
        and nonce."""
        meta = self.metadata()
        with self._session(redirect_uri) as session:
            try:
                token = session.fetch_token(meta["token_endpoint"], code=code,
                                            code_verifier=pending.verifier, timeout=TIMEOUT)
            except AuthlibBaseError as exc:  # the provider's own refusal (e.g. invalid_grant)
                raise Refused(f"token:{exc.error}"[:60]) from None
            except (requests.RequestException, ValueError) as exc:
                if getattr(getattr(exc, "response", None), "status_code", 500) < 500:
                    raise Refused("token") from None
                raise Unavailable(f"token endpoint: {exc}") from None
        if not isinstance(token.get("id_token"), str):
            raise Refused("no_id_token")
        return self.verify_id_token(token["id_token"], pending.nonce, token.get("access_token"))

    def verify_id_token(self, id_token: str, nonce: str, access_token: str | None = None) -> dict:
        registry = JWSRegistry(algorithms=ALGORITHMS)
        try:
            try:
                decoded = jwt.decode(id_token, self._key_set(), registry=registry)
            except InvalidKeyIdError:  # the provider may have rotated its keys
                decoded = jwt.decode(id_token, self._key_set(refresh=True), registry=registry)
            # the issuer exactly as the provider spells it (some end it with "/": Auth0, ADFS)
            options = {"iss": {"essential": True, "value": self.metadata()["issuer"]},
                       "aud": {"essential": True, "value": self.client_id},
                       "nonce": {"essential": True, "value": nonce}}
            params = {"nonce": nonce, "client_id": self.client_id}
            if access_token:
                params["access_token"] = access_token
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(leeway=LEEWAY)
        except (JoseError, ValueError, TypeError, KeyError) as exc:  # whatever a token holds
            raise Refused(f"id_token:{getattr(exc, 'error', type(exc).__name__)}"[:60]) from None
        return dict(claims)

    def _key_set(self, refresh: bool = False) -> KeySet:
        with self._lock:
            stale = refresh and time.monotonic() - self._refetched_at >= JWKS_REFETCH
            if self._keys is None or stale:
                uri = self._metadata["jwks_uri"] if self._metadata else None
                if uri is None:
                    raise Unavailable("no discovery document yet")
                try:
                    self._keys = KeySet.import_key_set(_get_json(uri))
                except (JoseError, ValueError, TypeError, KeyError) as exc:
                    raise Unavailable(f"the provider's keys: {exc}") from None
                if refresh:
                    self._refetched_at = time.monotonic()
            return self._keys


def _get_json(url: str) -> dict:
    try:
        resp = requests.get(url, timeout=TIMEOUT, headers={"Accept": "application/json"})
        resp.raise_for_status()
        data = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise Unavailable(f"{url}: {exc}") from None
    if not isinstance(data, dict):
        raise Unavailable(f"{url}: not a JSON object")
    return data
