"""gate.search.index: one index per edition, from that edition's pages only."""

import json

import pytest

from gate.sections import SECTIONS
from gate.search.index import INDEX_FILE, INDEX_VERSION, MATERIAL_INDEX, read_index


def test_every_edition_index_holds_only_its_own_pages(real_project):
    root, manifest = real_project
    for edition in manifest["editions"]:
        folder = root / "site/editions" / edition
        material = {"/" + d["location"].partition("#")[0]
                    for d in json.loads((folder / MATERIAL_INDEX).read_text())["docs"]}
        index = json.loads((folder / INDEX_FILE).read_text())
        assert {d["location"] for d in index["docs"]} == material
        for d in index["docs"]:
            section = d["location"].strip("/").split("/")[0]
            assert section not in SECTIONS or section in manifest["editions"][edition]


def test_the_index_carries_the_synonyms_it_was_built_with(real_project, project_synonyms):
    root, _ = real_project
    index = read_index(root / "site/editions/public" / INDEX_FILE)
    assert index["version"] == INDEX_VERSION
    assert index["spellings"] == dict(project_synonyms.spellings)
    assert index["synonyms"] == {k: list(v) for k, v in project_synonyms.synonyms.items()}


def test_an_index_of_another_version_is_refused(tmp_path):
    path = tmp_path / "kb_index.json"
    path.write_text(json.dumps({"version": INDEX_VERSION - 1, "docs": []}))
    with pytest.raises(ValueError, match="gate build"):
        read_index(path)
