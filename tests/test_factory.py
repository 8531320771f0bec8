"""What create_app (gate/factory.py) makes of its settings: production mode's headers and
cookies, and no gate for a site built from other tariffs."""

import pytest

from tests.helpers.http import login
from tests.helpers.project import make_config, populate


def test_production_mode_adds_hsts_and_secure_cookie(built_project, tmp_path):
    from gate.factory import create_app

    root, _ = built_project
    app = create_app(make_config(root, tmp_path / "prod", mode="production"))
    populate(app.extensions["gate"].engine, app.extensions["gate"].tariffs)
    c = app.test_client()
    assert "max-age" in c.get("/").headers["Strict-Transport-Security"]
    r = login(c, "start@client.example")
    assert "Secure" in r.headers["Set-Cookie"]


def test_stale_site_is_refused(built_project, tmp_path):
    from gate.factory import create_app
    from gate.build import BuildError

    root, _ = built_project
    other = tmp_path / "tariffs.yml"
    other.write_text("tariffs:\n  solo:\n    title: S\n    sections: [launches]\n")
    with pytest.raises(BuildError, match="other tariffs"):
        create_app(make_config(root, tmp_path / "i", tariffs_path=other))
