import pytest

from gate.tariffs import TariffError, load_tariffs, parse_tariffs

GOOD = """tariffs:
  start:
    title: СТАРТ
    sections: [launches, functionality, maintenance, claim-desk]
    sla: {register: 30m, consult: 8h, consult_critical: 4h, workaround: 3 working days}
"""


def test_project_tariffs_match_the_tariff_description():
    from gate.config import PROJECT_ROOT
    from datetime import timedelta

    tariffs = load_tariffs(PROJECT_ROOT / "tariffs.yml")
    assert list(tariffs) == ["start"]
    start = tariffs["start"]
    assert start.title == "СТАРТ"
    assert start.sections == {"launches", "functionality", "maintenance", "claim-desk"}
    assert start.sla.register == timedelta(minutes=30)
    assert start.sla.consult == timedelta(hours=8)
    assert start.sla.consult_critical == timedelta(hours=4)
    assert start.sla.workaround_working_days == 3


def test_good_file_parses_and_sla_is_optional():
    t = parse_tariffs(GOOD + "  solo:\n    title: Solo\n    sections: [functionality]\n", "t.yml")
    assert t["solo"].sections == {"functionality"} and t["solo"].sla.consult is None


@pytest.mark.parametrize("text, fragment", [
    ("tariffs:\n  x:\n    title: X\n    sections: [launches, kitchen]\n", "tariffs.x.sections: unknown section 'kitchen'"),
    ("tariffs:\n  x: {}\n", "tariffs.x: empty tariff"),
    ("tariffs:\n  x:\n", "tariffs.x: empty tariff"),
    ("tariffs:\n  x:\n    title: X\n    sections: []\n", "tariffs.x.sections: must be a non-empty list"),
    ("tariffs:\n  x:\n    title: X\n    sections: [launches]\n  x:\n    title: Y\n    sections: [launches]\n", "duplicate key 'x'"),
    ("tariffs:\n  x:\n    title: X\n    sections: [launches]\n    sla: {consult: soon}\n", "tariffs.x.sla.consult: 'soon' is not a duration"),
    ("tariffs:\n  x:\n    title: X\n    sections: [launches]\n    sla: {workaround: 3 days}\n", "tariffs.x.sla.workaround"),
    ("tariffs:\n  x:\n    title: X\n    sections: [launches]\n    sla: {consult: 0h}\n", "tariffs.x.sla.consult"),
    ("tariffs:\n  x:\n    title: X\n    sections: [launches]\n    sla: {lunch: 1h}\n", "tariffs.x.sla.lunch: unknown SLA key"),
    ("tariffs:\n  x:\n    sections: [launches]\n", "tariffs.x.title: missing"),
    ("tariffs:\n  x:\n    title: X\n    sections: [launches]\n    price: 1\n", "tariffs.x.price: unknown key"),
    ("tariffs:\n  Bad Key:\n    title: X\n    sections: [launches]\n", "key must be lowercase"),
    ("tariffs:\n  staff:\n    title: X\n    sections: [launches]\n", "reserved"),
    ("tariffs: {}\n", "no tariff is defined"),
    ("plans: {}\n", "single top-level key 'tariffs'"),
    ("tariffs: [\n", "not valid YAML"),
])
def test_bad_tariffs_name_file_and_key(text, fragment):
    with pytest.raises(TariffError) as err:
        parse_tariffs(text, "/etc/kb/t.yml")
    assert str(err.value).startswith("/etc/kb/t.yml: ")
    assert fragment in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(TariffError, match="cannot read tariffs file"):
        load_tariffs(tmp_path / "nope.yml")
