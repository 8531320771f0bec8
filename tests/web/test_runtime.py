"""The running gate's state (gate/web/runtime.py): a rebuilt site is picked up without a restart."""

from tests.helpers.project import make_config, make_project


def test_a_rebuilt_site_is_served_without_a_restart(tmp_path):
    from gate.factory import create_app
    from gate.build import build_all

    root = make_project(tmp_path / "p")
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    app = create_app(make_config(root, tmp_path / "i"))
    c = app.test_client()
    assert "Публичнаястраница" in c.get("/").get_data(as_text=True)
    index = root / "docs/index.md"
    index.write_text(index.read_text().replace("Публичнаястраница", "Новаястраница"))
    (root / "docs/news.md").write_text("---\ntitle: Новости\ndescription: Новое.\n---\n\nНовость.\n\n"
                                       "[Обратиться в поддержку](/support/new?from=/news/)\n")
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    app.extensions["gate"]._next_check = 0  # instead of waiting for the 2-second look
    page = c.get("/").get_data(as_text=True)
    assert "Новаястраница" in page and page.rstrip().endswith("</html>")
    assert c.get("/news/").status_code == 200
