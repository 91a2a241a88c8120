"""Issue 11: the migration page's 0.9-and-ours examples run and print what it says.

``make docs`` runs them with Sphinx's doctest builder; this runs them in the test
suite too, as ``test_issue_11_builtin_docs`` runs the built-in pages: the page's
``testsetup`` and every ``testcode`` block in one namespace, in order, each
output compared with the ``testoutput`` block after it.
"""

from __future__ import annotations

import contextlib
import doctest
import io
from pathlib import Path

from .test_issue_11_builtin_docs import FLAGS, blocks

PAGE = Path(__file__).resolve().parent.parent / "docs" / "migration.rst"


def test_migration_page_examples_print_what_the_page_shows() -> None:
    found = blocks(PAGE.read_text(encoding="utf-8"))
    assert sum(kind == "testcode" for kind, _ in found) >= 10
    namespace: dict[str, object] = {}
    exec("import routilux", namespace)  # conf.py's doctest_global_setup
    printed = ""
    checker = doctest.OutputChecker()
    for kind, body in found:
        if kind == "testoutput":
            want = body + "\n"
            assert checker.check_output(want, printed, FLAGS), (
                f"{PAGE.name}: expected\n{want}\ngot\n{printed}"
            )
            continue
        stream = io.StringIO()
        with contextlib.redirect_stdout(stream):
            exec(compile(body, str(PAGE), "exec", dont_inherit=True), namespace)
        printed = stream.getvalue()
    for value in namespace.values():  # the page's concurrent flows are shut down
        shutdown = getattr(value, "shutdown", None)
        if callable(shutdown) and type(value).__name__ == "Flow":
            shutdown()


def test_the_migration_page_states_set_as_optional_as_it_is() -> None:
    import inspect

    from routilux import Routine

    parameters = inspect.signature(Routine.set_as_optional).parameters
    assert list(parameters) == ["self", "strategy"]
    assert parameters["strategy"].default is None
    assert "``set_as_optional(strategy=None)``" in PAGE.read_text(encoding="utf-8")
