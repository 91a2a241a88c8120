"""The ``routilux`` command: run, draw, check and inspect flows from a shell.

Installed with the ``cli`` extra (``pip install 'routilux[cli]'``), which brings
click and rich; ``import routilux`` never imports this package. The command is
``routilux`` (a console script) or ``python -m routilux``. See :doc:`/cli`.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the ``routilux`` command with ``argv`` (the process's arguments if None).

    Returns:
        The exit code: 0 completed, 1 failed (or validation errors), 2 a usage
        or load error.
    """
    try:
        from .app import run
    except ImportError as exc:
        if exc.name not in ("click", "rich"):
            raise
        print(
            f"routilux: error: the command needs the cli extra ({exc}): "
            "pip install 'routilux[cli]'",
            file=sys.stderr,
        )
        return 2
    return run(argv)
