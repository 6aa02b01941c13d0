"""Who may import whom (DESIGN.md §2), checked on the source."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def runtime_imports(path: Path) -> set[str]:
    """Top-level module names imported at run time (imports under TYPE_CHECKING excluded)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names.add(child.module)
            elif isinstance(child, ast.ImportFrom) and child.level > 0:
                names.add("." * child.level + (child.module or ""))
            visit(child)

    visit(tree)
    return names


def test_rules_use_only_the_standard_library() -> None:
    imports = runtime_imports(ROOT / "plugin_server" / "loyalty" / "rules.py")
    outside = {name for name in imports
               if name.split(".")[0] not in sys.stdlib_module_names and name != "__future__"}
    assert outside == set()


def test_services_never_import_flask() -> None:
    for path in (ROOT / "plugin_server" / "loyalty").glob("*.py"):
        imports = runtime_imports(path)
        assert not any(name.split(".")[0] == "flask" for name in imports), path.name


def test_integrations_import_neither_flask_nor_the_server() -> None:
    for path in (ROOT / "integrations").rglob("*.py"):
        imports = runtime_imports(path)
        banned = {name for name in imports
                  if name.split(".")[0] in ("flask", "plugin_server")}
        assert banned == set(), (path, banned)
