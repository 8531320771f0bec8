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
