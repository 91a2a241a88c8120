"""Issue 13: every Python block in the documentation runs, and prints what it shows.

``make docs`` runs the ``testcode``/``testoutput`` and ``>>>`` blocks with
Sphinx's doctest builder. This file holds the rule that keeps it so:

* no page under ``docs/`` may show Python that nothing runs: a
  ``.. code-block:: python`` (or ``code``/``sourcecode``, any Python-like
  language), a ``::`` literal block whose text parses as Python, or ``>>>``
  lines inside a literal block (Sphinx runs a ``>>>`` paragraph, not a literal
  block) fails the test unless it is in :data:`SKIPPED`, with the reason;
* every page (but the built-in routines', which have their own test) is run
  here too, the way Sphinx runs it, so ``make test`` (on every Python of the
  matrix) sees a page that drifted from the code;
* the README's Python blocks are run, and each one's output is compared with the
  ``.. code-block:: text`` that follows it.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import io
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.rst"

PYTHON_LANGUAGES = {"python", "python3", "py", "py3", "pycon", "ipython", "default"}
CODE_DIRECTIVE = re.compile(
    r"^(?P<indent>[ \t]*)\.\. (?:code-block|code|sourcecode)::"
    r"[ \t]*(?P<lang>\S*)[ \t]*$"
)
DOCTEST_DIRECTIVE = re.compile(
    r"^\.\. (?P<kind>testsetup|testcode|testoutput|testcleanup|doctest)::"
    r"(?:[ \t]+(?P<group>\S.*))?[ \t]*$"
)
FLAGS = (
    doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL | doctest.DONT_ACCEPT_TRUE_FOR_1
)

#: Python shown but not run, keyed by (page, first line of the block): keep short.
SKIPPED: dict[tuple[str, str], str] = {
    (
        "guide/durability.rst",
        'flow = Flow.load("shop.json", allowed_modules=["myshop.routines"])',
    ): "names an application's module (myshop.routines) that does not exist",
    (
        "guide/testing.rst",
        'pytest_plugins = ["routilux.testing.plugin"]',
    ): "a conftest.py line; tests/test_issue_11_testing.py uses the plugin",
    (
        "guide/testing.rst",
        "def test_my_flow(routilux_flow):",
    ): "a pytest test body; tests/test_issue_11_testing.py runs the fixture",
    (
        "guide/observing.rst",
        "from routilux.telemetry import OpenTelemetryHooks",
    ): "needs the otel extra; the page's testcode runs the same hooks with the SDK",
    (
        "guide/ray.rst",
        "# shapes.py",
    ): "needs Ray; tests/test_issue_12_ray_docs.py runs it under the ray marker",
    (
        "guide/ray.rst",
        "# run_shapes.py",
    ): "needs Ray; tests/test_issue_12_ray_docs.py runs it under the ray marker",
    (
        "guide/fan_in.rst",
        'self.define_slot("input", handler=self.combine, policy="all_sources")',
    ): "one line out of a routine; the page's testcode blocks run whole routines",
}

#: Pages run here as well as by ``make docs``: every page but the built-in
#: routines' (tests/test_issue_11_builtin_docs.py runs those).
RUN_HERE = sorted(
    p
    for p in DOCS.rglob("*.rst")
    if "_build" not in p.parts and p.parent.name != "builtin"
)


def pages() -> list[Path]:
    """Every reStructuredText page of the documentation."""
    return sorted(p for p in DOCS.rglob("*.rst") if "_build" not in p.parts)


def name(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


def indented_body(lines: list[str], start: int, indent: int) -> tuple[str, int]:
    """The block indented deeper than *indent* from *start*, and the line after it.

    Directive options (``:name: value`` lines right at the top) are left out.
    """
    body: list[str] = []
    index = start
    at_top = True
    while index < len(lines):
        line = lines[index]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        if at_top and line.strip().startswith(":") and not body:
            index += 1
            continue
        if line.strip():
            at_top = False
        body.append(line)
        index += 1
    return textwrap.dedent("\n".join(body)).strip("\n"), index


@dataclass(frozen=True)
class Shown:
    """A block of a page that shows code: what kind, its language, its text."""

    kind: str  # "code" (a code directive) or "literal" (after ``::``)
    language: str
    text: str
    line: int


def shown_blocks(text: str) -> list[Shown]:
    """The code directives and ``::`` literal blocks of a page, in order."""
    lines = text.splitlines()
    found: list[Shown] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        match = CODE_DIRECTIVE.match(line)
        if match:
            indent = len(match.group("indent"))
            body, after = indented_body(lines, index + 1, indent)
            found.append(
                Shown("code", match.group("lang") or "default", body, index + 1)
            )
            index = after
            continue
        stripped = line.rstrip()
        if stripped.endswith("::") and not stripped.lstrip().startswith(".. "):
            indent = len(line) - len(line.lstrip())
            body, after = indented_body(lines, index + 1, indent)
            if body:
                found.append(Shown("literal", "default", body, index + 1))
            index = max(after, index + 1)
            continue
        index += 1
    return found


def is_python(block: Shown) -> bool:
    """Whether Sphinx would show *block* as Python code."""
    if block.language.lower() not in PYTHON_LANGUAGES:
        return False
    if block.kind == "code":
        return True
    try:
        tree = ast.parse(block.text)
    except SyntaxError:
        return False  # a shell command, a diagram, prose
    # A lone name or constant is prose in a literal block, not code.
    return not all(
        isinstance(node, ast.Expr) and isinstance(node.value, (ast.Name, ast.Constant))
        for node in tree.body
    )


def unrun_python(page: Path) -> list[str]:
    """The Python blocks of *page* that no test runs, as ``page:line first-line``."""
    found = []
    for block in shown_blocks(page.read_text(encoding="utf-8")):
        first = block.text.splitlines()[0].strip() if block.text else ""
        if (name(page), first) in SKIPPED:
            continue
        if is_python(block) or ">>>" in block.text:
            found.append(f"{name(page)}:{block.line} {first}")
    return found


def test_no_page_shows_python_that_nothing_runs() -> None:
    offenders = [found for page in pages() for found in unrun_python(page)]
    assert offenders == [], (
        "Python in docs/ must be a testcode/testoutput or >>> block that make docs "
        "runs (or an entry of SKIPPED with its reason):\n" + "\n".join(offenders)
    )


def test_every_skip_still_names_a_block() -> None:
    # A skip whose block was rewritten or removed would hide nothing but rot.
    firsts = {
        (name(page), block.text.splitlines()[0].strip())
        for page in pages()
        for block in shown_blocks(page.read_text(encoding="utf-8"))
        if block.text
    }
    assert [key for key in SKIPPED if key not in firsts] == []


def test_the_rule_catches_each_kind_of_unrun_block(tmp_path: Path) -> None:
    page = tmp_path / "page.rst"
    page.write_text(
        "Title\n=====\n\n"
        ".. code-block:: python\n\n    print('shown, not run')\n\n"
        "A literal block::\n\n    flow.execute('a')\n\n"
        ".. code-block:: text\n\n    >>> 1 + 1\n    2\n\n"
        "A command::\n\n    python -m pip install routilux\n\n"
        ".. code-block:: console\n\n    $ make docs\n\n"
        "A word::\n\n    trigger\n\n"
        ".. testcode::\n\n    print('run')\n",
        encoding="utf-8",
    )
    found = [
        (block.line, is_python(block) or ">>>" in block.text)
        for block in shown_blocks(page.read_text(encoding="utf-8"))
    ]
    assert found == [
        (4, True),
        (8, True),
        (12, True),
        (17, False),
        (21, False),
        (25, False),
    ]


# -- running pages the way Sphinx's doctest builder does ----------------------


@dataclass(frozen=True)
class Block:
    """One doctest directive of a page."""

    kind: str
    group: str
    body: str
    options: str
    line: int


def doctest_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        match = DOCTEST_DIRECTIVE.match(lines[index])
        index += 1
        if match is None:
            continue
        at = index
        options = ""
        while index < len(lines) and lines[index].strip().startswith(":"):
            options += lines[index].strip() + "\n"
            index += 1
        body, index = indented_body(lines, index, 0)
        group = (match.group("group") or "default").strip()
        found.append(Block(match.group("kind"), group, body, options, at))
    return found


def option_flags(options: str) -> int:
    flags = FLAGS
    for token in re.findall(r"([+-])([A-Z_]+)", options):
        flag = doctest.OPTIONFLAGS_BY_NAME[token[1]]
        flags = flags | flag if token[0] == "+" else flags & ~flag
    return flags


def run_page(page: Path) -> None:
    """Run *page*'s doctest blocks group by group, as Sphinx does."""
    blocks = doctest_blocks(page.read_text(encoding="utf-8"))
    groups = sorted({b.group for b in blocks if b.group != "*"})
    checker = doctest.OutputChecker()
    for group in groups:
        mine = [b for b in blocks if b.group in (group, "*")]
        namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
        exec("import routilux", namespace)  # conf.py's doctest_global_setup
        ordered = [b for b in mine if b.kind == "testsetup"]
        ordered += [b for b in mine if b.kind not in ("testsetup", "testcleanup")]
        cleanups = [b for b in mine if b.kind == "testcleanup"]
        printed: str | None = None
        try:
            for block in ordered:
                where = f"{name(page)}:{block.line}"
                if block.kind == "testoutput":
                    assert printed is not None, f"{where}: output before any code"
                    want = block.body + "\n"
                    assert checker.check_output(
                        want, printed, option_flags(block.options)
                    ), f"{where}: the page shows\n{want}\nbut it printed\n{printed}"
                    printed = None
                    continue
                if block.kind == "doctest":
                    test = doctest.DocTestParser().get_doctest(
                        block.body, namespace, where, str(page), block.line
                    )
                    runner = doctest.DocTestRunner(optionflags=FLAGS)
                    runner.run(test, clear_globs=False)
                    assert runner.failures == 0, f"{where}: a >>> example failed"
                    continue
                if printed:
                    pytest.fail(f"{name(page)}: a block printed unchecked\n{printed}")
                stream = io.StringIO()
                with contextlib.redirect_stdout(stream):
                    exec(
                        compile(block.body, where, "exec", dont_inherit=True), namespace
                    )
                printed = stream.getvalue() if block.kind == "testcode" else None
            if printed:
                pytest.fail(
                    f"{name(page)}: its last block printed unchecked\n{printed}"
                )
        finally:
            for block in cleanups:
                exec(compile(block.body, name(page), "exec"), namespace)


@pytest.mark.parametrize("page", RUN_HERE, ids=name)
def test_page_runs_and_prints_what_it_shows(page: Path) -> None:
    run_page(page)


# -- the README ------------------------------------------------------------------


def readme_examples() -> list[tuple[str, str]]:
    """Each Python block of the README with the text block right after it."""
    blocks = shown_blocks(README.read_text(encoding="utf-8"))
    pairs = []
    for number, block in enumerate(blocks):
        if block.kind == "code" and block.language == "python":
            after = blocks[number + 1] if number + 1 < len(blocks) else None
            assert after is not None and after.language == "text", (
                f"README.rst:{block.line}: a Python block needs its output after it"
            )
            pairs.append((block.text, after.text))
    return pairs


def test_readme_shows_one_example_of_twenty_lines_or_so() -> None:
    examples = readme_examples()
    assert len(examples) == 1
    code = [line for line in examples[0][0].splitlines() if line.strip()]
    assert len(code) <= 25


@pytest.mark.timeout(120)
@pytest.mark.parametrize("number", range(len(readme_examples())))
def test_readme_example_prints_what_it_shows(number: int, tmp_path: Path) -> None:
    code, shown = readme_examples()[number]
    script = tmp_path / "readme_example.py"
    script.write_text(code + "\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown + "\n"


def test_readme_keeps_the_markers_the_index_includes() -> None:
    readme = README.read_text(encoding="utf-8")
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    for marker in (".. intro-start", ".. intro-end"):
        assert readme.count(marker) == 1
        assert marker in index
