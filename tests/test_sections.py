import pytest

from gate.editions import edition_name, plan_editions
from gate.sections import UnknownFolder, section_of_source, section_of_url
from gate.tariffs import parse_tariffs


@pytest.mark.parametrize("src, section", [
    ("index.md", None),
    ("tariff-start.md", None),
    ("assets/logo.png", None),
    ("launches/index.md", "launches"),
    ("launches/sub/deep.md", "launches"),
    ("functionality/import.md", "functionality"),
    ("maintenance/x.md", "maintenance"),
    ("claim-desk/index.md", "claim-desk"),
])
def test_section_of_source(src, section):
    assert section_of_source(src) == section


@pytest.mark.parametrize("src", ["drafts/x.md", "Launches/x.md", "secret/index.md", "claim_desk/a.md"])
def test_unknown_folder_is_refused(src):
    with pytest.raises(UnknownFolder):
        section_of_source(src)


@pytest.mark.parametrize("path, section", [
    ("/", None), ("/index.html", None), ("/tariff-start/", None), ("/assets/x.css", None),
    ("/launches", "launches"), ("/launches/", "launches"), ("/launches/a/b/", "launches"),
    ("/LAUNCHES/x/", "launches"), ("//launches/x", "launches"), ("/claim-desk/", "claim-desk"),
    ("/launchesx/", None),
])
def test_section_of_url(path, section):
    assert section_of_url(path) == section


def test_editions_plan_has_public_staff_and_one_per_section_set():
    from tests.helpers.project import TEST_TARIFFS
    plan = plan_editions(parse_tariffs(TEST_TARIFFS, "t"))
    assert plan == {
        "public": frozenset(), "none": frozenset(), "all": frozenset({"launches", "functionality", "maintenance", "claim-desk"}),
        "functionality": frozenset({"functionality"}), "claim-desk": frozenset({"claim-desk"}),
        "launches+maintenance": frozenset({"launches", "maintenance"}),
    }
    assert edition_name(["maintenance", "launches"]) == "launches+maintenance"
    with pytest.raises(ValueError):
        edition_name(["kitchen"])
