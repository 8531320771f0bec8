"""A small but real OpenID Connect provider for the tests, served over HTTP on a free port.

It does what a company's identity provider does for the authorization code flow, and checks
what the gate must send: discovery (`/.well-known/openid-configuration`), `/authorize` (a
registered client and redirect URI, `response_type=code`, scope `openid`, a PKCE S256
challenge and a nonce required; it approves `user` at once, as a signed-in person would, so
`requests` following redirects or a browser can drive it), `/token` (the client secret,
a code used once and only with its redirect URI, and the PKCE verifier that matches its
challenge) and `/jwks`. ID tokens are RS256, signed with a key of its JWKS.

Misbehaviour for the tests: `discovery` (overrides of its discovery document), `deny`
(answers error=access_denied), `claims` (overrides of the next ID tokens' claims: a wrong
nonce, aud or iss, email_verified false, None to leave one out, ...), `rogue` (signs with a key
that is not in its JWKS), `hs256` (signs with the client secret). `token_requests` records
what /token was asked.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from werkzeug.serving import make_server

from tests.helpers.ports import free_port

CLIENT_ID = "kb-gate"
CLIENT_SECRET = "client-secret-of-the-knowledge-base"


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OidcProvider:
    def __init__(self, redirect_uri: str, port: int | None = None):
        self.port = port or free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.redirect_uri = redirect_uri
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}, private=True)
        self.rogue_key = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
        self.user = {"sub": "staff-1", "email": "staff@vendor.example", "email_verified": True}
        self.claims: dict = {}
        self.discovery: dict = {}
        self.deny = False
        self.rogue = False
        self.hs256 = False
        self.codes: dict[str, dict] = {}
        self.token_requests: list[dict] = []
        self._server = None
        self._lock = threading.Lock()

    # --- running ---------------------------------------------------------------------------

    def start(self) -> "OidcProvider":
        self._server = make_server("127.0.0.1", self.port, self._app(), threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self, **user) -> None:
        """Back to an honest provider approving the person of `user` (claims)."""
        self.user = {"sub": "staff-1", "email": "staff@vendor.example", "email_verified": True,
                     **user}
        self.claims, self.discovery = {}, {}
        self.deny = self.rogue = self.hs256 = False
        self.token_requests.clear()

    def id_token(self, nonce: str, **override) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                  "nonce": nonce, **self.user, **self.claims, **override}
        claims = {k: v for k, v in claims.items() if v is not None}  # None: left out
        if self.hs256:  # what OIDC allows but the gate refuses: the client secret as the key
            return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(CLIENT_SECRET))
        key = self.rogue_key if self.rogue else self.key
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)

    # --- the provider's endpoints ----------------------------------------------------------

    def _app(self) -> Flask:
        app = Flask("oidc-provider")

        @app.get("/.well-known/openid-configuration")
        def discovery():
            document = dict(issuer=self.issuer, authorization_endpoint=self.issuer + "/authorize",
                            token_endpoint=self.issuer + "/token", jwks_uri=self.issuer + "/jwks",
                            response_types_supported=["code"], subject_types_supported=["public"],
                            id_token_signing_alg_values_supported=["RS256"],
                            code_challenge_methods_supported=["S256"],
                            token_endpoint_auth_methods_supported=["client_secret_basic",
                                                                   "client_secret_post"])
            document.update(self.discovery)
            return jsonify(document)

        @app.get("/jwks")
        def jwks():
            return jsonify(KeySet([self.key]).as_dict(private=False))

        @app.get("/authorize")
        def authorize():
            q = request.args
            if q.get("client_id") != CLIENT_ID or q.get("redirect_uri") != self.redirect_uri:
                return "unknown client or redirect_uri", 400  # never redirect to an unknown URI
            back = {"state": q["state"]} if "state" in q else {}
            problem = None
            if q.get("response_type") != "code" or "openid" not in q.get("scope", "").split():
                problem = "invalid_request"
            elif q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                problem = "invalid_request"  # PKCE is required here
            elif not q.get("nonce"):
                problem = "invalid_request"
            elif self.deny:
                problem = "access_denied"
            if problem:
                return redirect(f"{self.redirect_uri}?{urlencode({'error': problem, **back})}")
            code = secrets.token_urlsafe(24)
            with self._lock:
                self.codes[code] = {"challenge": q["code_challenge"], "nonce": q["nonce"],
                                    "redirect_uri": q["redirect_uri"], "used": False,
                                    "expires": time.time() + 60}
            return redirect(f"{self.redirect_uri}?{urlencode({'code': code, **back})}")

        @app.post("/token")
        def token():
            form = request.form
            self.token_requests.append(dict(form))
            auth = request.authorization
            client = (auth.username, auth.password) if auth else (form.get("client_id"),
                                                                  form.get("client_secret"))
            if client != (CLIENT_ID, CLIENT_SECRET):
                return jsonify(error="invalid_client"), 401
            with self._lock:
                grant = self.codes.get(form.get("code", ""))
                first_use = grant is not None and not grant["used"]
                if grant is not None:
                    grant["used"] = True  # single use, even when this try fails
            if (form.get("grant_type") != "authorization_code" or not first_use
                    or grant["expires"] < time.time()
                    or form.get("redirect_uri") != grant["redirect_uri"]
                    or _s256(form.get("code_verifier", "")) != grant["challenge"]):
                return jsonify(error="invalid_grant"), 400
            return jsonify(access_token=secrets.token_urlsafe(24), token_type="Bearer",
                           expires_in=300, id_token=self.id_token(grant["nonce"]))

        return app


class Served:
    """A WSGI application served over HTTP in a thread (the gate in process, for a live flow)."""

    def __init__(self, app, port: int | None = None):
        self.app, self.port = app, port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
