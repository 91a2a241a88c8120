"""docs/cli.rst: every console example runs and prints what the page shows.

Each ``$ routilux ...`` line of a ``console`` block is run (in this process,
as :func:`routilux.cli.main`) in a scratch directory that links to the
checkout's ``examples``; stdout and stderr together are compared with the lines
after it, ``...`` matching anything and runs of spaces matching any run of
spaces. tests/test_issue_13_cli_run.py runs the command as a process too.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import shlex
import sys
from typing import TYPE_CHECKING

from routilux.cli import main

from .cli_helpers import ROOT

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

PAGE = ROOT / "docs" / "cli.rst"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def examples() -> list[tuple[str, str]]:
    """``(command, shown output)`` of every console block, in order."""
    found: list[tuple[str, str]] = []
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != ".. code-block:: console":
            index += 1
            continue
        index += 1
        block: list[str] = []
        while index < len(lines) and (
            not lines[index].strip() or lines[index].startswith("   ")
        ):
            block.append(lines[index][3:])
            index += 1
        for line in "\n".join(block).strip("\n").splitlines():
            if line.startswith("$ "):
                found.append((line[2:], ""))
            else:
                command, shown = found[-1]
                found[-1] = (command, shown + line + "\n")
    return found


def test_the_page_has_examples() -> None:
    commands = [command.split()[:2] for command, _ in examples()]
    assert ["routilux", "run"] in commands and ["routilux", "graph"] in commands
    assert len(commands) >= 10


def test_every_console_example_prints_what_the_page_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the command adds to it
    checker = doctest.OutputChecker()
    for command, shown in examples():
        words = shlex.split(command)
        assert words[0] == "routilux"
        both = io.StringIO()
        with contextlib.redirect_stdout(both), contextlib.redirect_stderr(both):
            main(words[1:])
        printed = "".join(line.rstrip() + "\n" for line in both.getvalue().splitlines())
        assert checker.check_output(shown, printed, FLAGS), (
            f"$ {command}\n--- shown ---\n{shown}--- printed ---\n{printed}"
        )
