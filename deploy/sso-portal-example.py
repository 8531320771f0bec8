"""The client portal's side of the knowledge base's sign-in (README, "Sign-in from the client
portal"): mint a short-lived token for the person at the browser and send them to /sso/jwt.

    python deploy/sso-portal-example.py engineer@client.example "Сеть Старт" /launches/

Needs PyJWT (and `cryptography` for RS256/ES256/EdDSA). Here: an RS256 key from a PEM file
whose public half is in the knowledge base's JWKS under the same kid; with the shared secret
instead use `jwt.encode(claims, SECRET, algorithm="HS256")`.
"""

import sys
import time
import uuid
from urllib.parse import urlencode

import jwt

KB = "https://kb.example.ru"         # GATE_SSO_AUDIENCE (or GATE_BASE_URL) of the knowledge base
ISSUER = "https://portal.example.ru"  # GATE_SSO_ISSUER
KID = "portal-2026-07"                # the kid of this key in the knowledge base's JWKS
PRIVATE_KEY = open("portal-signing-key.pem", "rb").read()


def handoff_url(email: str, org: str, next_path: str = "/") -> str:
    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "aud": KB, "iat": now, "exp": now + 60,
                        "jti": uuid.uuid4().hex, "email": email, "org": org},
                       PRIVATE_KEY, algorithm="RS256", headers={"kid": KID})
    return f"{KB}/sso/jwt?{urlencode({'token': token, 'next': next_path})}"


if __name__ == "__main__":
    print(handoff_url(*sys.argv[1:4]))
