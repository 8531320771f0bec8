"""The support request form as people fill it: its fields, one submission through a Flask test
client, and many people submitting at once over HTTP (bench/soak.py, tests/test_delivery_crash.py).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from tests.helpers.http import WebClient, csrf_of

NUMBER_RE = re.compile(r"^/support/(\d+)/$")

# a support request as a person fills the form
FORM = {"phone": "+7 (900) 123-45-67", "category": "data", "criticality": "critical-loading",
        "store": "Магазин 12", "registers": "3", "subject": "Не грузятся цены",
        "description": "С 02:00 цены не загружаются на кассы магазина 12.", "consent": "yes",
        "from": "/functionality/marker-functionality-page/"}


def submit_support(client, **over):
    """Opens the form from an article with a Flask test client and posts it (None drops a
    field); the response."""
    page = client.get("/support/new?from=/functionality/marker-functionality-page/")
    data = {**FORM, "csrf_token": csrf_of(page.get_data(as_text=True), "the support form"), **over}
    data = {k: v for k, v in data.items() if v is not None}
    return client.post("/support/new", data=data, content_type="multipart/form-data")


@dataclass
class Attempt:
    """One submission: the number when acknowledged (303 to /support/<n>/), else the failure."""
    number: int | None
    status: int | None
    error: str | None
    latency: float | None  # seconds of the POST, when an HTTP answer came
    email: str


class FormClient(WebClient):
    """A person filling the support form over HTTP, as a browser would: every field it shows,
    an attachment, no redirects followed (a 303 to /support/<number>/ is the acknowledgement)."""

    def form_page(self):
        page = self.http.get(self.base + "/support/new", params={"from": FORM["from"]},
                             timeout=self.timeout, allow_redirects=False,
                             headers={"Accept": "text/html"})
        if page.status_code == 303 and "/login" in page.headers.get("Location", ""):
            self.login()
            page = self.http.get(self.base + "/support/new", params={"from": FORM["from"]},
                                 timeout=self.timeout, headers={"Accept": "text/html"})
        page.raise_for_status()
        return page

    def submit(self, tag: str) -> Attempt:
        """GET the form, POST it with every field it shows; never raises for network errors."""
        import requests

        try:
            csrf = csrf_of(self.form_page().text, "the support form")
        except requests.HTTPError as exc:  # an answer, but not the form: counted as an error
            return Attempt(None, exc.response.status_code, f"form: HTTP {exc.response.status_code}",
                           None, self.email)
        except (requests.RequestException, RuntimeError, AssertionError) as exc:
            return Attempt(None, None, f"form: {type(exc).__name__}: {exc}", None, self.email)
        data = {**FORM, "subject": f"Не грузятся цены {tag}",
                "description": f"Обращение {tag}: с 02:00 цены не загружаются на кассы магазина 12.",
                "csrf_token": csrf}
        files = [("attachments", (f"pos-{tag}.log", f"log of {tag}\n".encode(), "text/plain"))]
        started = time.monotonic()
        try:
            r = self.http.post(self.base + "/support/new", data=data, files=files,
                               timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return Attempt(None, None, f"post: {type(exc).__name__}", None, self.email)
        latency = time.monotonic() - started
        m = NUMBER_RE.match(r.headers.get("Location", "")) if r.status_code == 303 else None
        if m:
            return Attempt(int(m.group(1)), 303, None, latency, self.email)
        return Attempt(None, r.status_code, f"HTTP {r.status_code} {r.headers.get('Location', '')}",
                       latency, self.email)


class Load:
    """Clients (threads) submitting the form until `target` acknowledgements; thread-safe log."""

    def __init__(self, clients: list[FormClient], target: int, pause_after_error: float = 0.3):
        self.clients, self.target, self.pause = clients, target, pause_after_error
        self.lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self.acked: list[int] = []
        self.progress = threading.Condition(self.lock)
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._seq = 0
        self._inflight = 0

    def _next_tag(self) -> str | None:
        """A new submission while acknowledged + in flight < target, else None (done)."""
        with self.lock:
            while len(self.acked) + self._inflight >= self.target:
                if len(self.acked) >= self.target or self._stop.is_set():
                    return None
                self.progress.wait(1)  # one in flight may still fail and free its slot
            if self._stop.is_set():
                return None
            self._seq += 1
            self._inflight += 1
            return f"#{self._seq}"

    def _run(self, client: FormClient) -> None:
        while True:
            tag = self._next_tag()
            if tag is None:
                return
            a = client.submit(tag)
            with self.lock:
                self._inflight -= 1
                self.attempts.append(a)
                if a.number is not None:
                    self.acked.append(a.number)
                self.progress.notify_all()
            if a.number is None:
                time.sleep(self.pause)

    def start(self) -> "Load":
        for c in self.clients:
            t = threading.Thread(target=self._run, args=(c,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def wait_acked(self, count: int, timeout: float) -> int:
        with self.lock:
            ok = self.progress.wait_for(lambda: len(self.acked) >= count or
                                        not any(t.is_alive() for t in self._threads), timeout)
            if not ok or len(self.acked) < count:
                raise TimeoutError(f"only {len(self.acked)} of {count} requests acknowledged "
                                   f"within {timeout:.0f}s")
            return len(self.acked)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            self._stop.set()
            raise TimeoutError("clients still running")

    def requester_of(self) -> dict:
        with self.lock:
            return {a.number: a.email for a in self.attempts if a.number is not None}

    def http_errors(self) -> list[Attempt]:
        """Answers other than the acknowledgement (connection errors during a kill excluded)."""
        with self.lock:
            return [a for a in self.attempts if a.number is None and a.status is not None]
