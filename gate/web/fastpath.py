"""The hot path: a WSGI layer that serves an edition's file without entering Flask.

It handles only the plain case (GET/HEAD of a page or asset outside the gate's own addresses,
no Authorization header, a valid unexpired session cookie or none, a current edge ticket in
edge mode, a section the visitor may see, a file that exists) and hands everything else
(renewal, 303/401/403/404, forms, APIs) to the Flask application. Both decide with the same
functions: gate.web.visitor (who), gate.access (may see), gate.routes (whose address),
gate.site (which file, with which headers). Per request: two dict lookups for the token
(decoded-token cache, accounts snapshot), one for the file, no database query.
"""

from __future__ import annotations

import os

from werkzeug.http import parse_cookie

from gate import edge_tickets
from gate.access import SERVE, edition_for, page_decision
from gate.identities import SESSION_COOKIE
from gate.routes import owned_by_gate
from gate.sections import section_of_url
from gate.site import file_headers, file_stamp, normalize_path
from gate.storage_errors import classify
from gate.web.responses import SERVER
from gate.web.visitor import identify, ticket_current

MAX_CACHED = 100_000
IN_ONE_PIECE = 1 << 20  # bytes: files up to this size are read whole


class FastPages:
    def __init__(self, app, gate):
        self.app, self.gate = app, gate
        self._files = {}  # (edition, path) -> (file, stamp, etag, response headers)
        self._version = gate.site_version
        self._production = not gate.cfg.local

    def _file(self, edition, norm):
        key = (edition.name, norm)
        hit = self._files.get(key)
        if hit is not None:
            return hit
        file, redirect = edition.lookup(norm)
        if file is None or redirect:
            return None
        st = os.stat(file)
        headers = [*file_headers(file, st, norm, self._production), ("Server", SERVER)]
        etag = dict(headers)["ETag"]
        hit = (file, file_stamp(st), etag, headers)
        if len(self._files) < MAX_CACHED:
            self._files[key] = hit
        return hit

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO", "")
        if (method not in ("GET", "HEAD") or owned_by_gate(path)
                or "HTTP_AUTHORIZATION" in environ):
            return self.app(environ, start_response)
        header = environ.get("HTTP_COOKIE", "")
        ours = SESSION_COOKIE in header or edge_tickets.COOKIE in header
        cookies = parse_cookie(header) if ours else None  # parsed once, only when it matters
        try:
            visit = identify(self.gate.identities, "", cookies)
        except Exception as exc:  # no accounts snapshot yet and no database: Flask answers 503
            if classify(exc) is None:
                raise
            return self.app(environ, start_response)
        if visit.expired or visit.refused:  # to renew, or to clear: the application answers
            return self.app(environ, start_response)
        identity = visit.identity
        if self.gate.ticket_secret and not ticket_current(
                self.gate.ticket_secret, cookies.get(edge_tickets.COOKIE) if cookies else None,
                identity):
            return self.app(environ, start_response)  # it sets, renews or clears the ticket
        norm = normalize_path(path)
        if norm is None or page_decision(identity, section_of_url(norm)) != SERVE:
            return self.app(environ, start_response)
        editions = self.gate.current_editions()
        if self.gate.site_version != self._version:  # gate build replaced site/
            self._files, self._version = {}, self.gate.site_version
        edition = edition_for(identity)
        hit = self._file(editions[edition], norm)
        if hit is None:
            return self.app(environ, start_response)
        file, stamp, etag, headers = hit
        try:
            f = open(file, "rb")
            st = os.fstat(f.fileno())
        except OSError:  # the site is being replaced right now
            return self.app(environ, start_response)
        if stamp != file_stamp(st):  # rebuilt since it was cached
            f.close()
            self._files.pop((edition, norm), None)
            return self.app(environ, start_response)
        if identity is not None:  # in memory, flushed by the housekeeping thread (gate.usage)
            self.gate.usage.page(identity.org_id, norm)
        if environ.get("HTTP_IF_NONE_MATCH") == etag:
            f.close()
            start_response("304 Not Modified", [h for h in headers if h[0] not in
                                                ("Content-Length", "Content-Type")])
            return []
        start_response("200 OK", headers)
        if method == "HEAD":
            f.close()
            return []
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper:
            return wrapper(f, 65536)
        if st.st_size <= IN_ONE_PIECE:  # granian: one bytes object is one call into its Rust side
            with f:
                return [f.read()]
        return _chunks(f)


def _chunks(f):
    with f:
        while chunk := f.read(65536):
            yield chunk
