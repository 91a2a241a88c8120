"""Every example runs and prints what it promises.

The README's example is run by tests/test_docs_code_blocks.py.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))
# Needs Ray: run by test_ray_demo_runs_on_the_sessions_instance, under the marker.
RAY_DEMO = "ray_flow_demo.py"
RUN_EVERYWHERE = [path for path in EXAMPLES if path.name != RAY_DEMO]
RUN_TIMEOUT = 60  # seconds for one example; each one should take a few

# Lines (or fragments of lines) each example must print. An example missing from
# this table is still run and must exit cleanly.
EXPECTED: dict[str, list[str]] = {
    "basic_example.py": [
        "printer got squares [1, 4, 9, 16] (total 30)",
        "job status: completed",
        "events: ['start', 'numbers', 'squares', 'completed']",
        "printer received 1 payload(s)",
        "history:",
    ],
    "concurrent_flow_demo.py": [
        "=== 1. Parallel fetchers into an aggregator ===",
        "aggregator collected 4 results: customers, inventory, orders, prices",
        "=== 2. Sequential versus concurrent ===",
        "Speed-up: ",
        "=== 3. Error handling with ErrorStrategy.CONTINUE ===",
        "job status: completed",
        "error_continued",
        "aggregator still collected: customers, orders, prices",
        "=== 4. Serialization round trip ===",
        "restored flow: strategy=concurrent, max_workers=3",
        "restored flow ran: status=completed, 4 results",
        "filled flow 'to_serialize': strategy=concurrent, max_workers=3",
        "=== 5. Switching strategies ===",
        "concurrent max_workers=4: completed",
        "sequential max_workers=1: completed",
        "Demo finished.",
    ],
    "error_handling_example.py": [
        "=== 1. The four error strategies ===",
        "routine states: fragile=failed, start=completed",
        "routine states: audit=completed, fragile=error_continued, start=completed",
        "routine states: audit=completed, fragile=skipped, start=completed",
        "error: fragile raised ValueError (attempt 3): cannot parse record 42",
        "fragile called 3 time(s); audit received 0, report received 0",
        "=== 2. RETRY: a flaky service succeeds on its third call ===",
        "retries made: 2; sink received [{'answer': 'pong'}]",
        "=== 3. Timeout: a routine that overruns set_timeout(0.1) ===",
        "routine states: stuck=error_continued",
        "error: stuck raised RoutineTimeoutError (attempt 1)",
        "late emits discarded: 1; sink received 0",
        "=== 4. Circuit breaker: opens after 3 failures, closes after the reset ===",
        "job 4:         CircuitOpenError breaker open, handler called 3 time(s)",
        "after 30s: breaker half_open",
        "job 6 (trial): ok               breaker closed, handler called 4 time(s)",
        "=== 5. Cancel a running concurrent job ===",
        "cancel source: user; reason: operator request",
        "processed 2 item(s), dropped 8 (of 10)",
        "=== 6. Pause and resume a concurrent job ===",
        "processed 2 item(s), held 8 in pending_tasks",
        "resumed the same job: True; job status: completed",
        "processed 10 item(s) in all",
        "Example finished in",
    ],
    "resume_after_crash.py": [
        "=== 1. Run the job in a child process and kill it ===",
        "and was killed",
        "=== 2. What the checkpoint store kept ===",
        "of flow 'resume-after-crash': status running",
        "=== 3. Resume the job in this process ===",
        "(same id: True)",
        "finished: True; job status: completed",
        "=== 4. What was recovered ===",
        "(none run again)",
        "at most max_workers + commit_window=4 + 32",
        "completed items run again: 0",
        "total: 300 of 300 items; all there: True",
        "job status: completed; store: job completed, 0 pending",
        "Example finished in",
    ],
    "session_affinity_demo.py": [
        "=== 1. Three sessions, run concurrently ===",
        "started 3 jobs, one per session, on 4 workers",
        "all three sessions ran at the same time: True",
        "job statuses: completed, completed, completed",
        "classification_1234: steps [1, 2, 3]; positive=2, negative=1",
        "translation_5678: steps [1, 2, 3]; again->encore, good->bonne, "
        "hello->bonjour, night-><night>, world->monde",
        "summarization_9012: steps [1, 2, 3]; 3 sentences read",
        "=== 2. One more operation per session: the context is still there ===",
        "classification_1234 step 4: {'positive': 3, 'negative': 1}",
        "translation_5678 step 4: {'translation': 'bonjour monde', 'glossary': 5}",
        "summarization_9012 step 4: {'summary': '4 sentences, 100 chars'}",
        "=== 3. Pool statistics ===",
        "session states kept: 3 (3 sessions, 0 in use); lanes busy now: 0; "
        "idle states expire after 300s",
        "jobs completed: 6",
        "Demo finished.",
    ],
    "state_management_example.py": [
        "=== 1. The JobState of a finished job ===",
        "routine pricer error_continued",
        "error: pricer.input raised ValueError: order 0 has no amount (attempt 1)",
        "ledger booked: [(1, 12.0), (2, 24.0)]",
        "=== 2. Save a JobState and load it back ===",
        "loaded: same job_id True, status completed, 8 history records, 1 error(s)",
        "loaded document equals the original: True",
        "=== 3. Save a flow's structure and load it back ===",
        "document: schema_version ",
        ", 3 routines, 2 connections",
        "restored flow 'shop-v2': strategy=concurrent, max_workers=3",
        "restored flow ran: status=completed, ledger booked [(1, 15.0), (2, 30.0)]",
        "=== 4. Pause and resume a concurrent job in the same process ===",
        "job status: paused",
        "7 activation(s) held in pending_tasks",
        "resumed the same job: True; job status: completed",
        "booked 7 order(s) in all",
        "=== 5. Cross-host: pause here, resume in another process ===",
        "paused, booked 0 order(s), 7 pending; wrote flow.json and job.json",
        "host B: loaded flow 'shop-xhost' (3 routines)",
        ": status completed",
        "host B: booked 7 order(s) here",
        "host B exited with code 0",
        "Example finished in",
    ],
}


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


@functools.cache
def run_example(name: str) -> subprocess.CompletedProcess[str]:
    """Run one example once per test session (several tests read its output)."""
    return run_python(f"examples/{name}")


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_examples_exist() -> None:
    names = {path.name for path in EXAMPLES}
    assert set(EXPECTED) <= names


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize("path", RUN_EVERYWHERE, ids=lambda path: path.name)
def test_example_runs(path: Path) -> None:
    result = run_example(path.name)
    assert result.returncode == 0, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    for line in EXPECTED.get(path.name, []):
        assert line in result.stdout, f"missing {line!r}\n{describe(result)}"


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_concurrent_demo_is_faster_than_sequential() -> None:
    result = run_example("concurrent_flow_demo.py")
    assert result.returncode == 0, describe(result)
    match = re.search(r"^Speed-up: ([0-9.]+)x$", result.stdout, re.MULTILINE)
    assert match, describe(result)
    # Four fetchers that only sleep: ideally 4x; leave room for a busy machine.
    assert float(match.group(1)) > 1.5, describe(result)


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_ray_demo_runs_on_the_sessions_instance(ray_instance: Any) -> None:
    address = ray_instance.get_runtime_context().gcs_address
    result = subprocess.run(
        [sys.executable, f"examples/{RAY_DEMO}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "RAY_ADDRESS": address, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert result.returncode == 0, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    for line in (
        "concurrent (threads, one GIL): ",
        "ray (host actors",
        "Same totals: True",
    ):
        assert line in result.stdout, f"missing {line!r}\n{describe(result)}"


def test_ray_demo_says_when_ray_is_missing(tmp_path: Path) -> None:
    # A 'ray' that cannot be imported, first on the path: as if not installed.
    (tmp_path / "ray.py").write_text("raise ImportError('no ray here')\n")
    result = subprocess.run(
        [sys.executable, f"examples/{RAY_DEMO}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 0, describe(result)
    assert "Ray is not installed" in result.stdout, describe(result)
    assert "pip install 'routilux[ray]'" in result.stdout, describe(result)


PUBLIC_PACKAGES = {"routilux.strategies", "routilux.persistence", "routilux.testing"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_imports_only_public_api(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            # STYLE.md: examples use routilux and its documented public packages.
            assert not module.startswith("routilux.") or module in PUBLIC_PACKAGES, (
                f"{path.name}:{node.lineno} imports {module}; use 'from routilux'"
            )
