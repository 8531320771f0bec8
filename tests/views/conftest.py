"""Fixtures of the HTTP tests of the client portal's sign-in (tests/views/test_sso.py)."""

from __future__ import annotations

import json

import pytest

from tests.helpers.processes import NGINX_MISSING, running_edge
from tests.helpers.project import copy_database, make_config
from tests.helpers.sso import AUDIENCE, ISSUER, SECRET, PortalKey, jwks


@pytest.fixture
def portal_keys():
    """The portal's RSA and EC keys (kids "rsa-1", "ec-1"), published in the JWKS file."""
    return PortalKey("rsa-1", "RS256"), PortalKey("ec-1", "ES256")


@pytest.fixture
def sso_app(built_project, people_database, tmp_path, portal_keys):
    """make(**settings): the gate in process (as the `app` fixture) with the portal's HS256
    secret and a JWKS file of `portal_keys`; settings replace config.SsoSettings fields."""
    from gate.config import SsoSettings
    from gate.factory import create_app

    def make(**settings):
        root, _ = built_project
        instance = tmp_path / "instance"
        instance.mkdir()
        copy_database(people_database, instance / "gate.sqlite3")
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps(jwks(*portal_keys)))
        values = dict(issuer=ISSUER, audience=AUDIENCE, secret=SECRET.encode(), jwks_file=path)
        values.update(settings)
        application = create_app(make_config(root, instance, sso=SsoSettings(**values)))
        application.config["TESTING"] = True
        return application
    return make


@pytest.fixture(scope="module")
def sso_edge(built_project, tmp_path_factory):
    """Edge mode (real nginx in front of `gate serve`, production mode) with the portal's
    HS256 secret configured; one per test module."""
    if NGINX_MISSING:
        pytest.skip(NGINX_MISSING)
    root, _ = built_project
    with running_edge(root, tmp_path_factory.mktemp("sso-edge"), GATE_SSO_SECRET=SECRET,
                      GATE_SSO_ISSUER=ISSUER, GATE_SSO_AUDIENCE=AUDIENCE) as e:
        yield e
