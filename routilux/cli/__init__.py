"""The ``routilux`` command: run, draw, check and inspect flows from a shell.

Installed with the ``cli`` extra (``pip install 'routilux[cli]'``), which brings
click and rich; ``import routilux`` never imports this package. The command is
``routilux`` (a console script) or ``python -m routilux``. See :doc:`/cli`.
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the ``routilux`` command with ``argv`` (the process's arguments if None).

    Returns:
        The exit code: 0 completed, 1 failed (or validation errors), 2 a usage
        or load error.
    """
    from .app import run

    return run(argv)
