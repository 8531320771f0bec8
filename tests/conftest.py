"""Fixtures every test module can use: the marker project built once per session (per worker
under pytest-xdist), the gate on it in process, a real SMTP server and edge mode (nginx and
the gate as processes). The helpers they stand on are in tests/helpers/.

`make test` runs the suite on pytest-xdist workers with `--dist loadscope`: each test module
runs on one worker, so a module's servers (module-scoped fixtures: the edge, the browser's
servers, nginx, PostgreSQL) start once; session fixtures such as `built_project` are made once
per worker, each in the worker's own temporary folder.
"""

from __future__ import annotations

import pytest

from tests.helpers.disk import DiskUnavailable, TinyDisk
from tests.helpers.mail import MailSink
from tests.helpers.processes import NGINX_MISSING, Unavailable, running_cluster, running_edge
from tests.helpers.project import build_project, copy_database, make_config, populate


@pytest.fixture(scope="session")
def built_project(tmp_path_factory):
    """A marker project with every edition built (tariffs start, solo-func, solo-claim, pair)."""
    return build_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="session")
def people_database(built_project, tmp_path_factory):
    """A SQLite database holding helpers.project.PEOPLE, made once per session: hashing their
    passwords (argon2, deliberately slow) was most of every `app` test's setup."""
    from gate.factory import create_app

    root, _ = built_project
    instance = tmp_path_factory.mktemp("people")
    gate = create_app(make_config(root, instance)).extensions["gate"]
    populate(gate.engine, gate.tariffs)
    gate.engine.dispose()
    return instance / "gate.sqlite3"


@pytest.fixture
def app(built_project, people_database, tmp_path):
    """The gate on the marker project, in process, with the people of helpers.project.PEOPLE
    (a fresh copy of people_database for every test)."""
    from gate.factory import create_app

    root, _ = built_project
    instance = tmp_path / "instance"
    instance.mkdir()
    copy_database(people_database, instance / "gate.sqlite3")
    application = create_app(make_config(root, instance))
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sink():
    """A real SMTP server (aiosmtpd) on a free port, recording what it receives."""
    server = MailSink().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def edge(built_project, tmp_path_factory):
    """Edge mode (deploy/edge.sh: a real nginx in front of the gate) on the marker project,
    production mode, with helpers.processes.EDGE_PEOPLE; one per test module."""
    if NGINX_MISSING:
        pytest.skip(NGINX_MISSING)
    root, _ = built_project
    with running_edge(root, tmp_path_factory.mktemp("edge")) as e:
        yield e


@pytest.fixture(scope="module")
def cluster():
    """A throwaway PostgreSQL server, one per test module that asks for it (skipped, with the
    reason, where PostgreSQL is not installed)."""
    try:
        c = running_cluster()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield c
    finally:
        c.stop()


# --- staff sign-in through OIDC (tests/test_oidc.py) -------------------------------------------

@pytest.fixture(scope="module")
def oidc_provider():
    """A real OIDC provider (tests/helpers/oidc_provider.py) on a free port, one per module;
    reset to an honest one before each test by `oidc_gate`."""
    from tests.helpers.oidc_provider import OidcProvider

    provider = OidcProvider(redirect_uri="").start()
    yield provider
    provider.stop()


@pytest.fixture
def oidc_gate(built_project, people_database, tmp_path, oidc_provider):
    """Makes the gate (in process, served over HTTP) with staff sign-in through `oidc_provider`
    and the people of helpers.project.PEOPLE: `oidc_gate(**config_overrides)`."""
    from gate.factory import create_app
    from tests.helpers import oidc_provider as op
    from tests.helpers.ports import free_port

    served = []

    def make(**overrides):
        root, _ = built_project
        instance = tmp_path / f"instance{len(served)}"
        instance.mkdir()
        copy_database(people_database, instance / "gate.sqlite3")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = dict(base_url=base, oidc_issuer=oidc_provider.issuer,
                        oidc_client_id=op.CLIENT_ID, oidc_client_secret=op.CLIENT_SECRET)
        settings.update(overrides)
        app = create_app(make_config(root, instance, **settings))
        oidc_provider.reset()
        oidc_provider.redirect_uri = base + "/login/oidc/callback"
        served.append(op.Served(app, port))
        return served[-1]

    yield make
    for s in served:
        s.stop()


@pytest.fixture
def disk(tmp_path):
    """A 16 MB tmpfs of its own (tests/helpers/disk.py), to fill to the last byte; skipped
    where it cannot be mounted (not root). This process's storage-fault log starts afresh."""
    from gate.storage_errors import faults

    try:
        tiny = TinyDisk(tmp_path / "disk").mount()
    except DiskUnavailable as exc:
        pytest.skip(str(exc))
    faults.recovered()
    yield tiny
    tiny.unmount()
