"""The theme's overrides stay in step with Material: the partials copied into
overrides/partials/ (with changes marked 'kb:') were made from these versions of Material's own;
a new Material version must be copied again (see the head of each copy)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
# Material's partials copied into overrides/partials/ with a change of ours, and the hash of
# the original each copy was made from: a new Material version must be copied again.
COPIED_PARTIALS = {
    "search.html": "bfd556535abcddb99396ab2a7e3acc2ebcd3f36756007d3969396caa4126be30",
    "nav-item.html": "89895208f22d68ce405a4bcb6649b9150eba5bbb04663a6cb3f93f02daf1d2f7",
}


@pytest.mark.parametrize("name", sorted(COPIED_PARTIALS))
def test_copied_partials_follow_materials_own(name):
    import material

    original = Path(material.__file__).parent / "templates" / "partials" / name
    assert hashlib.sha256(original.read_bytes()).hexdigest() == COPIED_PARTIALS[name], (
        f"Material's partials/{name} changed: copy it into overrides/partials/ again, repeat the "
        f"changes marked 'kb:' and update COPIED_PARTIALS")
    assert "kb:" in (PROJECT / "overrides" / "partials" / name).read_text()
