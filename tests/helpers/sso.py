"""The client portal's side, for the SSO tests and the bench: its keys, JWKS documents, tokens
minted as the portal would (or as an attacker might), and a JWKS served over real HTTP."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

SECRET = "portal-shared-secret-0123456789abcdef"  # 37 bytes: HS256 needs at least 32
ISSUER = "https://portal.example"
AUDIENCE = "https://kb.example"


class PortalKey:
    """A private key of the portal with its kid and algorithm."""

    def __init__(self, kid: str, algorithm: str = "RS256"):
        self.kid, self.algorithm = kid, algorithm
        if algorithm == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(algorithm)

    def jwk(self) -> dict:
        """The public half as a JWKS entry."""
        algo = {"RS256": jwt.algorithms.RSAAlgorithm, "ES256": jwt.algorithms.ECAlgorithm,
                "EdDSA": jwt.algorithms.OKPAlgorithm}[self.algorithm]
        entry = json.loads(algo.to_jwk(self.private.public_key()))
        entry.update(kid=self.kid, use="sig")
        return entry

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def mint(self, **claims) -> str:
        return mint(self.private, self.algorithm, kid=self.kid, **claims)


def jwks(*keys: PortalKey) -> dict:
    return {"keys": [k.jwk() for k in keys]}


def claims(email="start@client.example", org="Сеть Старт", now=None, **change) -> dict:
    """Valid claims for the tests' audience and issuer; `change` replaces or (None) removes."""
    now = int(time.time() if now is None else now)
    c = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 120, "jti": uuid.uuid4().hex,
         "email": email, "org": org}
    for name, value in change.items():
        if value is None:
            c.pop(name, None)
        else:
            c[name] = value
    return c


def mint(key, algorithm: str = "HS256", kid: str | None = None, headers: dict | None = None,
         **change) -> str:
    """A token as the portal makes it (claims(...) with `change`), signed with `key`."""
    head = dict(headers or {})
    if kid is not None:
        head["kid"] = kid
    return jwt.encode(claims(**change), key, algorithm=algorithm, headers=head or None)


def _part(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def unsigned(headers: dict | None = None, **change) -> str:
    """An `alg: none` token (PyJWT will not make one that the gate should accept)."""
    return f"{_part({'alg': 'none', 'typ': 'JWT', **(headers or {})})}.{_part(claims(**change))}."


def forged(header: dict, **change) -> str:
    """A token with any header at all (PyJWT refuses to make some) and a made-up signature."""
    return f"{_part(header)}.{_part(claims(**change))}.c2lnbmF0dXJl"


def hmac_with(secret: bytes, kid: str, **change) -> str:
    """HS256 with any bytes as the secret (e.g. an RSA key's public PEM: algorithm confusion),
    signed by hand since PyJWT refuses PEM keys as HMAC secrets."""
    import hashlib
    import hmac

    signing = f"{_part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_part(claims(**change))}"
    sig = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


class JwksServer:
    """A JWKS served by http.server on 127.0.0.1 in a thread; counts the requests it gets.
    `document` may be replaced while it runs; `failing = True` answers 500; `redirect` (a URL)
    answers 302 to it."""

    def __init__(self, document: dict, host: str = "127.0.0.1"):
        self.document, self.requests, self.failing = document, 0, False
        self.redirect: str | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests += 1
                if server.redirect:
                    self.send_response(302)
                    self.send_header("Location", server.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(server.document).encode()
                self.send_response(500 if server.failing else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "JwksServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
