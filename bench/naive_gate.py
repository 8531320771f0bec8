"""The naive reference gate of the benchmarks, written as a user would write it: Flask, PyJWT
decoding the cookie on every request, `send_file` for the page. It knows nothing of the real
gate's code; it makes the same decisions for the plain case (section of the path, edition
folder of the token's sections) and sets the same headers.

Run it as a user would: NAIVE_SITE=site NAIVE_KEY=<hex> gunicorn -w <cores> bench.naive_gate:app
"""

import os
from pathlib import Path

import jwt
from flask import Flask, abort, request, send_file
from werkzeug.security import safe_join

SITE = Path(os.environ.get("NAIVE_SITE", "site"))
KEY = bytes.fromhex(os.environ.get("NAIVE_KEY", "00" * 32))
SECTIONS = ["launches", "functionality", "maintenance", "claim-desk"]  # in the site's order
HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Cookie",
           "X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN",
           "Content-Security-Policy": "frame-ancestors 'self'", "Referrer-Policy": "same-origin"}

app = Flask(__name__)


def edition(sections) -> str:
    if not sections:
        return "none"
    if set(sections) == set(SECTIONS):
        return "all"
    return "+".join(s for s in SECTIONS if s in sections)


@app.route("/", defaults={"path": ""})
@app.route("/<path:path>")
def page(path):
    token = request.cookies.get("kb_session")
    sections, folder = [], "public"
    if token:
        try:
            claims = jwt.decode(token, KEY, algorithms=["HS256"],
                                options={"require": ["exp", "sub", "sections"]})
        except jwt.PyJWTError:
            abort(401)
        sections, folder = claims["sections"], edition(claims["sections"])
    section = path.split("/", 1)[0].lower()
    if section in SECTIONS and section not in sections:
        abort(403)
    if path == "" or path.endswith("/"):
        path += "index.html"
    file = safe_join(str(SITE / "editions" / folder), path)
    if file is None or not os.path.isfile(file):
        abort(404)
    response = send_file(file, conditional=True)
    response.headers.update(HEADERS)
    return response
