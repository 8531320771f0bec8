"""The gated sections of the knowledge base and the one rule that maps a path to its section."""

# Key (folder under docs/ and first URL segment) -> title shown to people. Order is the nav order.
SECTIONS: dict[str, str] = {
    "launches": "Запуски",
    "functionality": "Функциональность",
    "maintenance": "Сопровождение",
    "claim-desk": "Claim Desk",
}

# Folders under docs/ that are public besides the files directly in docs/.
PUBLIC_FOLDERS = frozenset({"assets"})


class UnknownFolder(ValueError):
    """A docs folder that is neither public nor a declared section (deny by default)."""


def section_of_source(src_path: str) -> str | None:
    """Section of a docs source path like 'launches/new-store.md'; None for public files.

    Raises UnknownFolder for any other top folder, so nothing is published by accident.
    """
    parts = src_path.replace("\\", "/").strip("/").split("/")
    if len(parts) == 1:
        return None
    top = parts[0]
    if top in SECTIONS:
        return top
    if top in PUBLIC_FOLDERS:
        return None
    raise UnknownFolder(top)


def section_of_url(path: str) -> str | None:
    """Section of a (decoded) URL path like '/launches/x/'; None when it is not under a section.

    Case variants ('/Launches/') are treated as the section too, so they can never slip past it.
    """
    top = path.lstrip("/").split("/", 1)[0].lower()
    return top if top in SECTIONS else None
