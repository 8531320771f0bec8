"""The hot path: a WSGI layer that serves an edition's file without entering Flask.

It handles only the plain case — GET/HEAD of a page or asset, no Authorization header, a valid
unexpired session cookie (or none), a section the visitor may see, a file that exists — and
hands everything else (renewal, 303/401/403/404, forms, APIs) to the Flask application, which
makes the same decisions with the same functions. Per request it does two dict lookups for the
token (decoded-token cache, accounts snapshot), one for the file, and no database query.
"""

from __future__ import annotations

import os
import time
from email.utils import formatdate

from werkzeug.http import parse_cookie

from gate import edge_tickets, tokens
from gate.access import SERVE, edition_for, page_decision
from gate.identities import SESSION_COOKIE
from gate.sections import section_of_url
from gate.security import cache_headers, security_headers
from gate.site import content_type, normalize_path

APP_PREFIXES = ("/login", "/logout", "/account", "/password", "/support", "/api", "/healthz")


def _session_token(cookies) -> str | None:
    """The session cookie as Flask reads it; "" (not a token) when it is there twice."""
    values = cookies.getlist(SESSION_COOKIE) if cookies else []
    if not values:
        return None
    return values[0] if len(values) == 1 else ""


class FastPages:
    def __init__(self, app, gate):
        self.app, self.gate = app, gate
        self._headers = {}  # (edition, path) -> (file, etag, response headers)
        self._version = gate.site_version
        security = {}
        security_headers(security, production=not gate.cfg.local)  # the same as Flask's
        self._security = list(security.items())

    def _file(self, edition, norm):
        key = (edition.name, norm)
        hit = self._headers.get(key)
        if hit is not None:
            return hit
        file, redirect = edition.lookup(norm)
        if file is None or redirect:
            return None
        kind = content_type(file)
        if kind.startswith("text/") or kind == "application/json":
            kind += "; charset=utf-8"
        st = os.stat(file)
        etag = _etag(st)
        cache = {}
        cache_headers(cache, norm)  # the same as Flask's
        headers = [("Content-Type", kind), ("Content-Length", str(st.st_size)), ("ETag", etag),
                   ("Last-Modified", formatdate(st.st_mtime, usegmt=True)), *cache.items(),
                   *self._security]
        hit = (file, etag, headers)
        if len(self._headers) < 100_000:
            self._headers[key] = hit
        return hit

    def _ticket_current(self, cookies, identity) -> bool:
        """Edge mode: does the request carry the edition ticket the gate would issue now?"""
        ticket = cookies.get(edge_tickets.COOKIE) if cookies else None
        if identity is None:
            return ticket is None
        edition = edge_tickets.edition_of(self.gate.ticket_secret, ticket, time.time())
        return edition == edition_for(identity)

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO", "")
        if (method not in ("GET", "HEAD") or path.startswith(APP_PREFIXES)
                or "HTTP_AUTHORIZATION" in environ):
            return self.app(environ, start_response)
        identity = None
        header = environ.get("HTTP_COOKIE", "")
        ours = SESSION_COOKIE in header or edge_tickets.COOKIE in header
        cookies = parse_cookie(header) if ours else None  # parsed once, only when it matters
        token = _session_token(cookies)
        if token is not None:
            try:
                claims = self.gate.identities.session_claims(token)
            except tokens.TokenError:  # expired (to renew) or bad: the application answers
                return self.app(environ, start_response)
            identity = self.gate.identities.from_claims(claims)
            if identity is None:
                return self.app(environ, start_response)
        if self.gate.ticket_secret and not self._ticket_current(cookies, identity):
            return self.app(environ, start_response)  # it sets, renews or clears the ticket
        norm = normalize_path(path)
        if norm is None or page_decision(identity, section_of_url(norm)) != SERVE:
            return self.app(environ, start_response)
        editions = self.gate.current_editions()
        if self.gate.site_version != self._version:  # gate build replaced site/
            self._headers, self._version = {}, self.gate.site_version
        edition = edition_for(identity)
        hit = self._file(editions[edition], norm)
        if hit is None:
            return self.app(environ, start_response)
        file, etag, headers = hit
        try:
            f = open(file, "rb")
            st = os.fstat(f.fileno())
        except OSError:  # the site is being replaced right now
            return self.app(environ, start_response)
        if etag != _etag(st):  # rebuilt since it was cached
            f.close()
            self._headers.pop((edition, norm), None)
            return self.app(environ, start_response)
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
        return wrapper(f, 65536) if wrapper else _chunks(f)


def _etag(st) -> str:
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


def _chunks(f):
    with f:
        while chunk := f.read(65536):
            yield chunk
