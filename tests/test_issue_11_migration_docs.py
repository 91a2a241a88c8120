"""Issue 11: the migration page states ``set_as_optional`` as the code has it.

SPEC shows 0.9's ``set_as_optional(strategy=ErrorStrategy.CONTINUE)``; the page
must give the current signature. (The page's examples run in the test suite in
``test_docs_code_blocks.py::test_page_runs_and_prints_what_it_shows[migration.rst]``.)
"""

from __future__ import annotations

import inspect
from pathlib import Path

from routilux import Routine

PAGE = Path(__file__).resolve().parent.parent / "docs" / "migration.rst"


def test_the_migration_page_states_set_as_optional_as_it_is() -> None:
    parameters = inspect.signature(Routine.set_as_optional).parameters
    assert list(parameters) == ["self", "strategy"]
    assert parameters["strategy"].default is None
    assert "``set_as_optional(strategy=None)``" in PAGE.read_text(encoding="utf-8")
