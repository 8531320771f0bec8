"""GET /api/search (the visitor's own edition only), and what clients search for and do not find.

The edition is decided exactly as for pages (`gate.access.edition_for`); its index is the one
`gate build` wrote into that edition's folder (gate.search), loaded in the background at start
(or at first use) and shared by every request. Queries that find nothing (no result, or the best
one lacks most of the query's words) and queries followed by a support request (the support
form's view calls `note_support_request`) are counted in `search_misses` (query text, edition,
time: no person); a query typed on letter by letter counts once. Staff see them on
/api/search/gaps and with `gate search-gaps`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, g, request

from gate import usage
from gate.access import edition_for
from gate.clock import utcnow as _now
from gate.db import search_misses
from gate.limits import Windows
from gate.shared_limits import SharedWindows
from gate.search import INDEX_FILE, MAX_QUERY, BadQuery, SearchIndex, check_query, normalize_query
from gate.storage_errors import classify, faults
from gate.web.responses import ask_to_log_in, render_in_site, staff_required
from gate.web.runtime import current_gate as _gate

bp = Blueprint("search", __name__)
log = logging.getLogger(__name__)

RATE_LIMIT = (30, 10)        # requests per client within seconds
REFINE_SECONDS = 15          # a query typed on from a miss within this time replaces it
REQUEST_MEMORY = 15 * 60     # queries this recent count as "followed by a support request"
NO_RESULTS, THEN_REQUEST = "no_results", "then_request"
MIN_GAP_QUERY = 3            # characters; shorter queries are not counted as gaps


# --------------------------------------------------------------------------------------------
# Indexes, loaded once per process


_indexes: dict[str, tuple[tuple, SearchIndex]] = {}
_indexes_lock = threading.Lock()


def index_of(edition) -> SearchIndex | None:
    """The search index of a loaded edition (gate.site.Edition), or None when it has none."""
    path = Path(edition.root) / INDEX_FILE
    try:
        st = path.stat()
    except OSError:
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _indexes.get(str(path))
    if cached and cached[0] == stamp:
        return cached[1]
    with _indexes_lock:
        cached = _indexes.get(str(path))
        if cached and cached[0] == stamp:
            return cached[1]
        index = SearchIndex.load(path)
        index.prepare()
        _indexes[str(path)] = (stamp, index)
        return index


def warm_up(editions) -> threading.Thread:
    """Loads every edition's index and the analyzer in the background, so no visitor waits."""
    def run():
        try:
            for edition in list(editions):
                index_of(edition)
            from gate.search import lemma
            lemma("касса")
        except Exception:  # the first search loads what is missing, or reports it
            log.warning("search warm-up failed", exc_info=True)

    thread = threading.Thread(target=run, name="search-warm-up", daemon=True)
    thread.start()
    return thread


# --------------------------------------------------------------------------------------------
# Per-client state: rate limit, recent queries (in memory only)


class SearchState:
    MAX_CLIENTS = 50_000

    def __init__(self, limit: int, window: float, clock=time.monotonic, counters=None):
        """counters: the engine of the shared limits; the rate limit then holds across every
        gate process and host (and falls back to this process's own while it is unreachable)."""
        self.limit, self.window, self.clock = limit, window, clock
        self._lock = threading.Lock()
        self._hits = Windows(lambda: self.clock(), self.MAX_CLIENTS, horizon=window)
        self._shared = SharedWindows(counters, horizon=window) if counters is not None else None
        self._last_miss: dict = {}          # client -> (row id, query, edition, time)
        self._recent: dict = defaultdict(lambda: deque(maxlen=5))  # client -> (query, edition, time)

    def _bound(self):
        for d in (self._last_miss, self._recent):
            if len(d) > self.MAX_CLIENTS:
                d.clear()

    def retry_after(self, client) -> int:
        """0 when the client may search now (and counts the request), else seconds to wait."""
        if self._shared is not None:
            try:
                return self._shared.hit(("search", *client), self.limit, self.window)
            except sa.exc.SQLAlchemyError as exc:  # searching needs no database: limit it here
                kind = classify(exc)
                if kind is None:
                    log.warning("search: shared rate limit failed (%s); this process's own applies",
                                str(exc).splitlines()[0])
                else:
                    faults.seen(kind, exc, "search rate limit (this process's own applies)")
        return self._hits.hit(client, self.limit, self.window)

    def remember(self, client, query: str, edition: str):
        with self._lock:
            self._recent[client].append((query, edition, self.clock()))

    def recent(self, client) -> list[tuple[str, str]]:
        with self._lock:
            now = self.clock()
            found = [(q, e) for q, e, t in self._recent.pop(client, ()) if now - t <= REQUEST_MEMORY]
        return list(dict.fromkeys(found))

    def refine(self, client, query: str):
        """The miss this query continues (typed on from it, or back), as (row id, query), or None."""
        with self._lock:
            last = self._last_miss.get(client)
            if not last or self.clock() - last[3] > REFINE_SECONDS:
                return None
            if query.startswith(last[1]) or last[1].startswith(query):
                return last[0], last[1]
            return None

    def set_miss(self, client, row_id, query, edition):
        with self._lock:
            if row_id is None:
                self._last_miss.pop(client, None)
            else:
                self._last_miss[client] = (row_id, query, edition, self.clock())
                self._bound()


def note_support_request():
    """The visitor has just filed a support request: what they searched for shortly before
    did not answer it (counted as a gap, without the person)."""
    queries = _state().recent(_client())
    if queries:
        _write(lambda conn: conn.execute(search_misses.insert(), [
            {"query": q, "edition": e, "kind": THEN_REQUEST, "at": _now()} for q, e in queries]))


_state_lock = threading.Lock()


def _state() -> SearchState:
    """The application's search state, made on first use (SEARCH_RATE_LIMIT = (count, seconds))."""
    state = current_app.extensions.get("kb_search")
    if state is None:
        with _state_lock:
            state = current_app.extensions.get("kb_search")
            if state is None:
                limit, window = current_app.config.get("SEARCH_RATE_LIMIT", RATE_LIMIT)
                state = current_app.extensions["kb_search"] = SearchState(
                    limit, window, counters=_gate().counters)
    return state


def _client():
    identity = g.get("identity")
    return ("user", identity.user_id) if identity else ("addr", request.remote_addr or "")


def _write(action):
    """Runs a database write for the statistics; a failure never breaks the search."""
    try:
        with _gate().engine.begin() as conn:
            return action(conn)
    except Exception as exc:  # statistics are best effort
        kind = classify(exc)
        if kind is None:
            log.warning("search statistics not written", exc_info=True)
        else:  # a full disk or a database away: one line a minute, not a traceback a search
            faults.seen(kind, exc, "search statistics")
        return None


def _json(data: dict, status: int = 200) -> Response:
    """JSON with <, > and & escaped (\\u003c...), so no echo of a query reads as markup anywhere."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Response(text, status=status, mimetype="application/json")


def _error(status: int, message: str, **extra):
    return _json({"error": message, **extra}, status)


def _from_support_form() -> bool:
    """The support form asks for suggestions while a description is typed: not a search."""
    referrer = request.headers.get("Referer", "")
    return urlsplit(referrer).path.startswith("/support/")


def _record(query: str, edition: str, found: bool):
    norm = normalize_query(query)
    if len(norm) < MIN_GAP_QUERY or _from_support_form():
        return
    state, client = _state(), _client()
    state.remember(client, norm, edition)
    previous = state.refine(client, norm)
    if found:
        if previous:  # the miss was a word still being typed: it found something in the end
            _write(lambda conn: conn.execute(search_misses.delete().where(
                search_misses.c.id == previous[0])))
            state.set_miss(client, None, None, None)
        return
    if previous:
        _write(lambda conn: conn.execute(search_misses.update().where(
            search_misses.c.id == previous[0]).values(query=norm, at=_now())))
        state.set_miss(client, previous[0], norm, edition)
        return
    row = _write(lambda conn: conn.execute(search_misses.insert().values(
        query=norm, edition=edition, kind=NO_RESULTS, at=_now())).inserted_primary_key[0])
    if row is not None:
        state.set_miss(client, row, norm, edition)


@bp.route("/api/search")
def api_search():
    if g.get("bad_bearer"):
        return ask_to_log_in()
    wait = _state().retry_after(_client())
    if wait:
        resp = _error(429, "Слишком много запросов подряд. Подождите несколько секунд.",
                      retry_after=wait)
        resp.headers["Retry-After"] = str(wait)
        return resp
    raw = request.args.get("q")
    try:
        query = check_query(raw)
    except BadQuery as exc:
        return _error(400, str(exc), query=(raw or "")[:MAX_QUERY])
    name = edition_for(g.get("identity"))
    try:
        edition = _gate().current_editions().get(name)
        index = index_of(edition) if edition is not None else None
        if index is None:
            return _error(503, "Поиск временно недоступен: сайт собран без поискового индекса.")
        results, words = index.search_words(query)
    except Exception:  # never a 500 from search: the visitor gets a clear answer, the log the trace
        log.exception("search failed for edition %s", name)
        return _error(503, "Поиск временно недоступен. Попробуйте ещё раз позже.")
    # a gap: nothing found, or the best article lacks most of the query's words
    _record(query, name, bool(results) and 2 * len(results[0]["missing"]) <= words)
    identity = g.get("identity")
    if identity is not None and not _from_support_form():  # per organisation, in memory
        _gate().usage.add(identity.org_id, usage.SEARCH)
    return _json({"query": query, "results": results})


# --------------------------------------------------------------------------------------------
# What clients search for and do not find


def gaps(engine, days: int = 30, limit: int = 50) -> list[dict]:
    """Top queries without results (or followed by a support request) of the last `days` days."""
    since = _now() - dt.timedelta(days=days)
    c = search_misses.c
    stmt = (sa.select(c.query, c.edition, c.kind, sa.func.count().label("n"), sa.func.max(c.at).label("last"))
            .where(c.at >= since).group_by(c.query, c.edition, c.kind))
    rows: dict[str, dict] = {}
    with engine.connect() as conn:
        for query, edition, kind, n, last in conn.execute(stmt):
            row = rows.setdefault(query, {"query": query, "count": 0, NO_RESULTS: 0, THEN_REQUEST: 0,
                                          "editions": [], "last": last})
            row["count"] += n
            row[kind] = row.get(kind, 0) + n
            if edition not in row["editions"]:
                row["editions"].append(edition)
            row["last"] = max(row["last"], last)
    ranked = sorted(rows.values(), key=lambda r: (-r[NO_RESULTS], -r["count"], r["query"]))
    for r in ranked:
        r["editions"].sort()
        r["last"] = r["last"].replace(tzinfo=dt.timezone.utc)  # stored as naive UTC
    return ranked[:limit]


@bp.route("/api/search/gaps")
@staff_required
def gaps_page():
    try:
        days = min(max(int(request.args.get("days", 30)), 1), 3650)
    except ValueError:
        days = 30
    rows = gaps(_gate().engine, days=days, limit=200)
    return render_in_site("Что ищут и не находят", "search_gaps.html", rows=rows, days=days,
                          tz=_gate().cfg.timezone)
