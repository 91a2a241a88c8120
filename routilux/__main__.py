"""``python -m routilux``: the ``routilux`` command (needs the ``cli`` extra)."""

from __future__ import annotations

import sys


def _main() -> int:
    try:
        from .cli import app  # noqa: F401 - fails early without click and rich
    except ImportError as exc:
        print(
            f"routilux: the command needs the cli extra ({exc}): "
            "pip install 'routilux[cli]'",
            file=sys.stderr,
        )
        return 2
    from .cli import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
