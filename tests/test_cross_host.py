"""The cross-host recipe: pause, write flow and job apart, resume in another process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tests.cross_host", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_pause_serialize_resume_in_another_process(tmp_path: Path) -> None:
    flow_file, job_file, sink = (
        tmp_path / "flow.json",
        tmp_path / "job.json",
        tmp_path / "sink",
    )
    held = int(run("pause", str(flow_file), str(job_file)))
    assert held == 48  # two numbers were being recorded when the pause came
    job_document = orjson.loads(job_file.read_bytes())
    assert job_document["status"] == "paused"
    status, job_id, reason = run(
        "resume", str(flow_file), str(job_file), str(sink)
    ).split(maxsplit=2)
    assert (status, job_id, reason) == (
        "completed",
        job_document["job_id"],
        "moving host",
    )
    resumed = sorted(int(n) for n in sink.read_text().split())
    assert len(resumed) == held  # exactly the held ones ran on the new host
    assert len(set(resumed)) == held
