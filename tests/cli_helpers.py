"""Running the ``routilux`` command in the tests: in-process, or as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from routilux.cli import main

if TYPE_CHECKING:
    import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FLOWS = TESTS / "cli_flows.py"


def target(name: str) -> str:
    """``tests/cli_flows.py:NAME`` as an absolute TARGET."""
    return f"{FLOWS}:{name}"


class Result(NamedTuple):
    code: int
    out: str
    err: str


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """Run the command in this process; its exit code and what it printed."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def cli_process(*args: str, cwd: Path = ROOT, timeout: float = 60) -> Result:
    """Run ``python -m routilux ARGS`` as a process (stdout is a pipe)."""
    env = dict(os.environ, PYTHONWARNINGS="error")
    done = subprocess.run(
        [sys.executable, "-m", "routilux", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)
