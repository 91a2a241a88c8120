"""Issue 13: the design pages say what the code does.

docs/design/layers.rst draws the package's layers in a table; this reads the
table and checks it against the source: every module is in exactly one layer,
and no module imports a module of a higher layer when it is imported. Imports
under ``if TYPE_CHECKING:`` (type hints only) and imports inside a function
(made at call time, the page's sanctioned way up) are not counted.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "routilux"
PAGE = ROOT / "docs" / "design" / "layers.rst"


def layer_table(text: str) -> list[tuple[str, list[str]]]:
    """``(layer, [module, ...])`` of the page's simple table, top layer first."""
    lines = text.splitlines()
    rules = [n for n, line in enumerate(lines) if re.fullmatch(r"=+  =+", line)]
    assert len(rules) == 3, "layers.rst: one simple table with a header"
    rows: list[tuple[str, list[str]]] = []
    for line in lines[rules[1] + 1 : rules[2]]:
        if line[:1].strip():
            rows.append((line.split()[0], []))
        rows[-1][1].extend(re.findall(r"``([^`]+)``", line))
    return rows


def unit_of(module: str) -> str:
    """The table's name for a module: ``pkg/`` for a subpackage, else ``name.py``."""
    parts = module.split(".")[1:]  # drop "routilux"
    if not parts:
        return "__init__.py"
    if (PACKAGE / parts[0]).is_dir():
        return parts[0] + "/"
    return parts[0] + ".py"


def units() -> set[str]:
    return {
        p.name if p.is_file() else p.name + "/"
        for p in PACKAGE.iterdir()
        if (p.is_file() and p.suffix == ".py")
        or (p.is_dir() and (p / "__init__.py").exists())
    }


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def load_time_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported: not in functions, not for typing."""

    def walk(nodes: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from walk(node.orelse)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        yield from walk(children)

    yield from walk(tree.body)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of each routilux module *path* imports at load time."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    for node in load_time_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            names = []
            for alias in node.names:  # ``from . import sessions`` names a module
                candidate = ROOT / f"{target}.{alias.name}".replace(".", "/")
                is_module = candidate.is_dir() or candidate.with_suffix(".py").exists()
                names.append(f"{target}.{alias.name}" if is_module else target)
        for name in names:
            if name == "routilux" or name.startswith("routilux."):
                yield node.lineno, name


def test_every_module_is_in_exactly_one_layer() -> None:
    listed = [
        unit for _, modules in layer_table(PAGE.read_text("utf-8")) for unit in modules
    ]
    assert sorted(set(listed)) == sorted(listed), "a module is listed twice"
    assert set(listed) - units() == set(), "layers.rst lists modules that do not exist"
    assert units() - set(listed) == set(), "add these modules to docs/design/layers.rst"


def test_no_module_imports_a_higher_layer() -> None:
    table = layer_table(PAGE.read_text("utf-8"))
    depth = {unit: n for n, (_, modules) in enumerate(table) for unit in modules}
    names = [layer for layer, _ in table]
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        mine = unit_of(module_name(path))
        for line, imported in imported_modules(path):
            theirs = unit_of(imported)
            if mine not in depth or theirs not in depth:
                continue  # not in the table: the test above names it
            if depth[theirs] < depth[mine]:
                upward.append(
                    f"{path.relative_to(ROOT)}:{line} ({names[depth[mine]]}) imports "
                    f"{imported} ({names[depth[theirs]]})"
                )
    assert upward == []


def test_the_check_sees_an_upward_import() -> None:
    # The runtime may not import the model at load time; under TYPE_CHECKING or
    # inside a function it may.
    source = (
        "from typing import TYPE_CHECKING\n"
        "from ..slot import Slot\n"
        "if TYPE_CHECKING:\n    from ..routine import Routine\n"
        "def later():\n    from ..flow import Flow\n"
    )
    found = [node.lineno for node in load_time_imports(ast.parse(source))]
    assert found == [1, 2]


def test_the_runtime_page_names_every_runtime_module() -> None:
    page = (ROOT / "docs" / "design" / "runtime.rst").read_text(encoding="utf-8")
    runtime = PACKAGE / "runtime"
    modules = [p for p in runtime.rglob("*.py") if p.name != "__init__.py"]
    unnamed = [
        str(p.relative_to(runtime))
        for p in modules
        if f"``{p.name}``" not in page and f"``runtime/{p.name}``" not in page
    ]
    assert unnamed == []
