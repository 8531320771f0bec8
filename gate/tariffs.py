"""Tariffs: which sections each unlocks and which service levels it promises.

Loaded from `tariffs.yml` (or the file named by GATE_TARIFFS, which replaces it) and validated
as a whole: any problem is a TariffError naming the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import yaml

from gate.sections import SECTIONS

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
DURATION_RE = re.compile(r"^\s*(\d+)\s*(m|min|h|d)\s*$")
WORKING_DAYS_RE = re.compile(r"^\s*(\d+)\s+working\s+days?\s*$")
SLA_KEYS = ("register", "consult", "consult_critical", "workaround")
STAFF_TARIFF = "staff"  # the vendor's own people; not configurable


class TariffError(ValueError):
    pass


@dataclass(frozen=True)
class Sla:
    register: timedelta | None = None
    consult: timedelta | None = None
    consult_critical: timedelta | None = None
    workaround_working_days: int | None = None
    source: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Tariff:
    key: str
    title: str
    sections: frozenset[str]
    sla: Sla


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise TariffError(f"duplicate key '{key}' (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_duration(value) -> timedelta:
    m = DURATION_RE.match(str(value))
    if not m:
        raise ValueError(f"'{value}' is not a duration like 30m, 8h or 2d")
    n, unit = int(m.group(1)), m.group(2)
    if n <= 0:
        raise ValueError(f"'{value}' must be positive")
    return {"m": timedelta(minutes=n), "min": timedelta(minutes=n),
            "h": timedelta(hours=n), "d": timedelta(days=n)}[unit]


def parse_working_days(value) -> int:
    m = WORKING_DAYS_RE.match(str(value))
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"'{value}' is not like '3 working days'")
    return int(m.group(1))


def _parse_sla(raw, where: str) -> Sla:
    if raw is None:
        return Sla()
    if not isinstance(raw, dict):
        raise TariffError(f"{where}: must be a mapping of {', '.join(SLA_KEYS)}")
    values = {}
    for key, value in raw.items():
        if key not in SLA_KEYS:
            raise TariffError(f"{where}.{key}: unknown SLA key (known: {', '.join(SLA_KEYS)})")
        try:
            if key == "workaround":
                values["workaround_working_days"] = parse_working_days(value)
            else:
                values[key] = parse_duration(value)
        except ValueError as exc:
            raise TariffError(f"{where}.{key}: {exc}") from None
    return Sla(**values, source=dict(raw))


def parse_tariffs(text: str, source: str) -> dict[str, Tariff]:
    """Parse and validate the YAML text of a tariffs file; `source` names it in errors."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except TariffError as exc:
        raise TariffError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise TariffError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"tariffs"} or not isinstance(data["tariffs"], dict):
        raise TariffError(f"{source}: expected a single top-level key 'tariffs' holding a mapping")
    if not data["tariffs"]:
        raise TariffError(f"{source}: tariffs: no tariff is defined")
    tariffs = {}
    for key, body in data["tariffs"].items():
        where = f"{source}: tariffs.{key}"
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise TariffError(f"{where}: key must be lowercase letters, digits, '-' or '_'")
        if key == STAFF_TARIFF:
            raise TariffError(f"{where}: '{STAFF_TARIFF}' is reserved for the vendor's own staff")
        if not isinstance(body, dict) or not body:
            raise TariffError(f"{where}: empty tariff (needs title and sections)")
        unknown = set(body) - {"title", "sections", "sla"}
        if unknown:
            raise TariffError(f"{where}.{sorted(unknown)[0]}: unknown key (known: title, sections, sla)")
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise TariffError(f"{where}.title: missing or empty")
        sections = body.get("sections")
        if not isinstance(sections, list) or not sections:
            raise TariffError(f"{where}.sections: must be a non-empty list of sections")
        for s in sections:
            if s not in SECTIONS:
                raise TariffError(
                    f"{where}.sections: unknown section '{s}' (known: {', '.join(SECTIONS)})")
        if len(set(sections)) != len(sections):
            raise TariffError(f"{where}.sections: a section is listed twice")
        tariffs[key] = Tariff(key, title.strip(), frozenset(sections),
                              _parse_sla(body.get("sla"), f"{where}.sla"))
    return tariffs


def load_tariffs(path: str | Path) -> dict[str, Tariff]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TariffError(f"{path}: cannot read tariffs file: {exc.strerror}") from None
    return parse_tariffs(text, str(path))


def tariffs_opening(tariffs: dict[str, Tariff], section: str) -> list[Tariff]:
    """The tariffs whose sections include `section` (for the locked page)."""
    return [t for t in tariffs.values() if section in t.sections]
