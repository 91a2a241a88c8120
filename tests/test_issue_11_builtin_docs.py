"""Issue 11: the built-in routine pages run and print what they say.

``make docs`` runs them with Sphinx's doctest builder; this runs them in the test
suite too, the same way: every ``testcode`` block of a page in one namespace, in
order, each output compared with the ``testoutput`` block after it (with
Sphinx's default doctest flags).
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
import textwrap
from pathlib import Path

import pytest

PAGES = sorted(
    (Path(__file__).resolve().parent.parent / "docs" / "builtin").glob("*.rst")
)
ROUTINE_PAGES = [p for p in PAGES if p.stem != "index"]
DIRECTIVE = re.compile(r"^\.\. (testcode|testoutput|testsetup)::[ \t]*$")
FLAGS = (
    doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL | doctest.DONT_ACCEPT_TRUE_FOR_1
)


def blocks(text: str) -> list[tuple[str, str]]:
    """``(directive, body)`` of every doctest block, in order."""
    found: list[tuple[str, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = DIRECTIVE.match(lines[index])
        index += 1
        if match is None:
            continue
        body: list[str] = []
        while index < len(lines) and (
            not lines[index].strip() or lines[index].startswith("   ")
        ):
            if not lines[index].strip().startswith(":"):  # directive options
                body.append(lines[index])
            index += 1
        found.append((match.group(1), textwrap.dedent("\n".join(body)).strip("\n")))
    return found


def test_every_builtin_has_a_page() -> None:
    import routilux.builtin

    classes = {name for name in routilux.builtin.__all__ if name[0].isupper()}
    pages = {p.stem.replace("_", "") for p in ROUTINE_PAGES}
    assert {name.lower() for name in classes} == pages
    index = (PAGES[0].parent / "index.rst").read_text(encoding="utf-8")
    assert all(f"   {p.stem}\n" in index for p in ROUTINE_PAGES)


@pytest.mark.parametrize("page", ROUTINE_PAGES, ids=lambda p: p.stem)
def test_page_examples_print_what_the_page_shows(page: Path) -> None:
    found = blocks(page.read_text(encoding="utf-8"))
    assert any(kind == "testcode" for kind, _ in found), f"{page.name} runs nothing"
    namespace: dict[str, object] = {}
    exec("import routilux", namespace)  # conf.py's doctest_global_setup
    printed = ""
    checker = doctest.OutputChecker()
    for kind, body in found:
        if kind == "testoutput":
            want = body + "\n"
            assert checker.check_output(want, printed, FLAGS), (
                f"{page.name}: expected\n{want}\ngot\n{printed}"
            )
            continue
        stream = io.StringIO()
        with contextlib.redirect_stdout(stream):
            exec(compile(body, str(page), "exec", dont_inherit=True), namespace)
        printed = stream.getvalue()
