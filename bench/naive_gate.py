"""The naive reference gate for benchmarks: Flask + PyJWT decoding the cookie on every request.

Same decisions as the real gate's plain case (section check, edition folder, file send), none
of its caching. Run: python bench/naive_gate.py SITE_DIR KEY_HEX PORT THREADS
"""

import sys
from pathlib import Path

import jwt
import waitress
from flask import Flask, abort, request, send_from_directory

from gate.editions import edition_name
from gate.sections import section_of_url


def make_app(site: Path, key: bytes) -> Flask:
    app = Flask(__name__)

    @app.route("/", defaults={"path": ""})
    @app.route("/<path:path>")
    def page(path):
        sections = []
        token = request.cookies.get("kb_session")
        if token:
            try:
                claims = jwt.decode(token, key, algorithms=["HS256"],
                                    options={"require": ["exp", "sub", "sections"]})
                sections = claims["sections"]
            except jwt.PyJWTError:
                abort(401)
        section = section_of_url("/" + path)
        if section and section not in sections:
            abort(403)
        edition = edition_name(sections) if token else "public"
        if path == "" or path.endswith("/"):
            path += "index.html"
        resp = send_from_directory(site / "editions" / edition, path)
        resp.headers["Cache-Control"] = "private, no-cache"
        resp.headers["Vary"] = "Cookie"
        return resp

    return app


if __name__ == "__main__":
    site, key, port, threads = Path(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    waitress.serve(make_app(site, key), host="127.0.0.1", port=port, threads=threads, ident="naive")
