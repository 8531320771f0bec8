"""The test suite's own house rules, checked like the code's.

- No test module (nor a conftest.py, nor a helper) imports a test module or a conftest.py:
  what tests share lives in tests/helpers/ (plain functions) and in conftest.py files
  (fixtures, which pytest hands to every module below them without an import).
- tests/helpers/ imports nothing from pytest, so bench/ runs it standalone.
- Every folder of tests is a package (has __init__.py), so two test modules of the same name
  in different folders (tests/views/test_search.py, tests/search/...) never collide.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def imports(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    """(line, dotted name) of every module the file `path` (or `text` as that file) imports,
    relative imports resolved; for `from package import name` both package and package.name."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    text = path.read_text(encoding="utf-8") if text is None else text
    found = []
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def is_test_code(module: str) -> bool:
    """A test module or a conftest of this suite (tests.x.test_y, tests.conftest, ...)."""
    parts = module.split(".")
    return parts[0] == "tests" and any(p.startswith("test_") or p == "conftest" for p in parts[1:])


def _python_files():
    return sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_test_module_imports_another_or_a_conftest():
    offences = [f"{path.relative_to(ROOT)}:{line} imports {module}"
                for path in _python_files()
                for line, module in imports(path) if is_test_code(module)]
    assert not offences, ("move what these share to tests/helpers/ (functions) or a conftest.py "
                          "(fixtures):\n" + "\n".join(offences))


def test_the_check_sees_every_kind_of_import():
    text = ("import tests.test_edge\nfrom tests import test_crawl\nfrom .test_pages import HTML\n"
            "from .. import conftest\nfrom tests.search.conftest import top\n"
            "from tests.helpers.http import login\nimport tests.helpers.project\n")
    found = imports(TESTS / "views" / "test_example.py", text)  # as if it were that file
    flagged = {m for _, m in found if is_test_code(m)}
    assert {"tests.test_edge", "tests.test_crawl", "tests.views.test_pages", "tests.conftest",
            "tests.search.conftest", "tests.search.conftest.top"} <= flagged
    assert not [m for m in flagged if m.startswith("tests.helpers")]


def test_helpers_import_nothing_from_pytest():
    offences = [f"{path.relative_to(ROOT)}:{line} imports {module}"
                for path in sorted((TESTS / "helpers").glob("*.py"))
                for line, module in imports(path) if module.split(".")[0] in ("pytest", "_pytest")]
    assert not offences, "\n".join(offences)


def test_every_folder_of_tests_is_a_package():
    folders = {p.parent for p in TESTS.rglob("test_*.py")} | {TESTS / "helpers"}
    missing = [str(f.relative_to(ROOT)) for f in sorted(folders) if not (f / "__init__.py").exists()]
    assert not missing, f"add an empty __init__.py to: {', '.join(missing)}"
