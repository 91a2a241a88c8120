"""``routilux demo`` and ``routilux bench`` (issue 13)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from routilux.cli.bench import Recorder, _baseline_time, baseline_calls

from . import cli_flows
from .cli_helpers import ROOT, cli, target


def console_script() -> Path:
    script = Path(sys.executable).parent / "routilux"
    if not script.exists():
        pytest.skip("the routilux console script is not installed here")
    return script


@pytest.mark.slow
@pytest.mark.timeout(120)  # a process of its own: slow on a loaded machine
def test_demo_affinity_as_a_new_user_runs_it() -> None:
    done = subprocess.run(
        [str(console_script()), "demo", "affinity"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert (
        "session classification: remembered 2: ['is it positive?', 'and this one?']"
    ) in lines
    assert "session translation: remembered 3: ['hello', 'world', 'good night']" in (
        lines
    )
    assert "session summary: remembered 2: ['read chapter 1', 'read chapter 2']" in (
        lines
    )
    assert "3 jobs, one per session: completed, completed, completed" in lines
    assert "finished: jobs: 0 running, 3 completed" in lines
    assert "  desk: 7 done, 0 failed, 0 retries" in lines


def test_demo_concurrent(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "demo", "--no-progress")
    assert got.code == 0
    lines = got.out.splitlines()
    assert lines[0] == "job completed: collected customers, inventory, orders, prices"
    assert lines[1].startswith("4 fetchers of 0.05s each took ")
    assert len(lines) == 2  # no progress


def test_demo_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "demo", "benchmark", "--no-progress")
    assert got.code == 0
    lines = got.out.splitlines()
    assert lines[0].startswith("sequential ") and lines[0].endswith("s (completed)")
    assert lines[1].startswith("concurrent ") and lines[1].endswith("s (completed)")
    assert lines[2].startswith("speed-up: ") and lines[2].endswith("x with 4 workers")


def test_demo_errors(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "demo", "errors", "--no-progress")
    assert got.code == 0
    assert got.out.splitlines() == [
        "job completed",
        "  collector        completed",
        "  fanout           completed",
        "  fetch_customers  completed",
        "  fetch_inventory  completed",
        "  fetch_orders     completed",
        "  fetch_prices     error_continued (ConnectionError: prices: no answer "
        "(call 1))",
        "1 dead letter(s): ['fetch_prices']",
    ]


def test_demo_unknown_name_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got = cli(capsys, "demo", "nope")
    assert got.code == 2 and "'nope' is not one of" in got.err


def test_bench_prints_both_medians_and_the_ratio(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got = cli(capsys, "bench", target("make_counting"), "--repeats", "3", "--json")
    assert got.code == 0, got.err
    figures = json.loads(got.out)
    assert figures["handler_calls"] == 11
    assert figures["repeats"] == 3
    assert figures["strategy"] == "sequential"
    assert figures["routilux_median_seconds"] > 0
    assert figures["baseline_median_seconds"] > 0
    assert figures["ratio"] == pytest.approx(
        figures["routilux_median_seconds"] / figures["baseline_median_seconds"]
    )
    got = cli(capsys, "bench", target("make_counting"), "--repeats", "1")
    lines = got.out.splitlines()
    assert lines[0].startswith("routilux: median ")
    assert lines[0].endswith(" over 1 jobs (sequential, 1 workers)")
    assert lines[1].endswith(
        " over 1 runs (11 handler calls, plain Python, one thread)"
    )
    assert lines[2].startswith("ratio: ") and lines[2].endswith("x")


def test_bench_of_a_failing_flow_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "bench", target("make_failing"))
    assert got.code == 1
    assert got.err.count("\n") == 1
    assert got.err.endswith(" failed: ValueError: cannot parse 0\n")


def test_baseline_calls_the_same_handlers_with_the_same_inputs_once() -> None:
    """Concurrent job recorded; the baseline runs in topological order, no emits."""
    flow = cli_flows.make_counting()
    flow.set_execution_strategy("concurrent", 4)
    recorder = Recorder()
    flow.add_hooks(recorder)
    total = flow.routines["total"]
    assert isinstance(total, cli_flows.Total)
    with flow:
        assert flow.execute("numbers", {"count": 20}).wait(30)
        assert total.total == 2 * sum(range(20))
        calls = baseline_calls(flow, recorder.calls)
        order = [
            next(rid for rid, r in flow.routines.items() if _owns(r, invoke))
            for invoke, _ in calls
        ]
        assert order == ["numbers"] + ["double"] * 20 + ["total"] * 20
        assert sorted(p["value"] for _, p in calls[21:]) == [2 * n for n in range(20)]
        _baseline_time(flow, calls)
        # The totals ran once more each, and nothing else: double's emits were
        # dropped (delivered, they would have added the values again).
        assert total.total == 2 * 2 * sum(range(20))
        assert "emit" not in vars(total)  # Routine.emit is back


def _owns(routine: object, invoke: object) -> bool:
    return any(
        slot.invoke is invoke
        for name in ("trigger", "input")
        if (slot := routine.get_slot(name)) is not None  # type: ignore[attr-defined]
    )
