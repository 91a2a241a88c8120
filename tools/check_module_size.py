"""Fail when a module passes the hard size limit; warn past the budget (STYLE.md)."""

from __future__ import annotations

import sys
from pathlib import Path

BUDGET = 400
HARD_LIMIT = 600


def main(root: str) -> int:
    """Check every Python module under *root*; return the exit status."""
    status = 0
    for path in sorted(Path(root).rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > HARD_LIMIT:
            print(f"{path}: {lines} lines, over the hard limit of {HARD_LIMIT}")
            status = 1
        elif lines > BUDGET:
            print(f"{path}: {lines} lines, over the budget of {BUDGET} (warning)")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "routilux"))
