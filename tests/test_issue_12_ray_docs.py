"""Issue 12: the Ray guide's example (code blocks, not doctests) runs as shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide" / "ray.rst"

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]


def _block(text: str, first_line: str) -> str:
    """The python code block of the guide whose first line is ``first_line``."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == first_line and lines[index - 2] == ".. code-block:: python":
            body = []
            for item in lines[index:]:
                if item.strip() and not item.startswith("    "):
                    break
                body.append(item[4:])
            return "\n".join(body).strip() + "\n"
    raise AssertionError(f"no code block starting with {first_line!r} in {GUIDE}")


def test_issue_12_the_guides_example_prints_what_it_says(
    ray_instance: Any, tmp_path: Path
) -> None:
    text = GUIDE.read_text(encoding="utf-8")
    (tmp_path / "shapes.py").write_text(_block(text, "# shapes.py"))
    (tmp_path / "run_shapes.py").write_text(_block(text, "# run_shapes.py"))
    assert "It prints ``completed 4``" in text
    result = subprocess.run(
        [sys.executable, "run_shapes.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={
            **os.environ,
            "RAY_ADDRESS": ray_instance.get_runtime_context().gcs_address,
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "completed 4\n", result.stdout + result.stderr
