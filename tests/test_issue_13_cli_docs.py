"""docs/cli.rst: every console example runs and prints what the page shows.

Each ``$ routilux ...`` line of a ``console`` block is run as
``python -m routilux ...`` in a scratch directory that links to the checkout's
``examples``; stdout and stderr together are compared with the lines after it,
``...`` matching anything and runs of spaces matching any run of spaces.
"""

from __future__ import annotations

import doctest
import os
import shlex
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from .cli_helpers import ROOT

if TYPE_CHECKING:
    from pathlib import Path

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


@pytest.mark.slow
def test_every_console_example_prints_what_the_page_shows(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    checker = doctest.OutputChecker()
    for command, shown in examples():
        words = shlex.split(command)
        assert words[0] == "routilux"
        done = subprocess.run(
            [sys.executable, "-m", "routilux", *words[1:]],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            env=dict(os.environ, COLUMNS="200"),
            check=False,
        )
        printed = "".join(line.rstrip() + "\n" for line in done.stdout.splitlines())
        assert checker.check_output(shown, printed, FLAGS), (
            f"$ {command}\n--- shown ---\n{shown}--- printed ---\n{printed}"
        )
