"""``bench/run.py --write-results FILE``: the run's table and machine as JSON.

The documentation's performance page is built from this file (docs/_ext/
bench_table.py), so ``make bench BENCH_ARGS="--write-results
docs/_static/bench.json"`` refreshes the page's figures together with the
machine, date and load they were measured under.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

import routilux

if TYPE_CHECKING:
    from common import Options, Row

#: Bumped when the document's layout changes; the docs refuse other versions.
FORMAT = 1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _git_head() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: when, where, on which Python and code."""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "routilux": routilux.__version__,
        "git": _git_head(),
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "load_start": _load(),
    }


def results_document(
    facts: dict[str, Any],
    opts: Options,
    rows: list[Row],
    seconds: dict[str, float],
    failed: list[str],
) -> dict[str, Any]:
    """The JSON document of one run: *facts* from its start, then its results."""
    return {
        "format": FORMAT,
        **facts,
        "load_end": _load(),
        "quick": opts.quick,
        "repeats": opts.repeats,
        "budget_seconds": opts.budget,
        "seconds": {name: round(value, 1) for name, value in seconds.items()},
        "failed": failed,
        "rows": [asdict(row) for row in rows],
    }


def write_results(path: Path, document: dict[str, Any]) -> None:
    """Write *document* to *path* (parents created), replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(
        orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    )
    partial.replace(path)
