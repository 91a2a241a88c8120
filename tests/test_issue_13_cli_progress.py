"""Progress of ``run`` and ``demo``: live on a terminal, plain lines otherwise.

The live display is checked under a pseudo-terminal (the stdlib ``pty``): its
last frame holds the exact final counts. Plain mode prints one line per job
start, failure and end, then the same counts.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading

import pytest

from routilux import ErrorHandler, ErrorStrategy, Flow
from routilux.cli.display import PlainView, QuietView, final_lines
from routilux.cli.progress import Progress

from . import cli_flows
from .cli_helpers import ROOT, cli, target

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

RETRYING_FINAL = [
    "finished: jobs: 0 running, 1 completed",
    "activations: 11 done, 0 queued, 0 running, 0 failed, 1 retries",
    "  numbers: 1 done, 0 failed, 0 retries",
    "  flaky: 5 done, 0 failed, 1 retries",
    "  total: 5 done, 0 failed, 0 retries",
]


def _without_time(line: str) -> str:
    return re.sub(r"; \d+\.\d\ds$", "", line)


def run_in_pty(*args: str) -> tuple[int, str]:
    """Run ``python -m routilux ARGS`` on a pseudo-terminal; its code and output."""
    controller, terminal = pty.openpty()
    env = dict(os.environ, COLUMNS="100", LINES="40", TERM="xterm")
    env.pop("NO_COLOR", None)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "routilux", *args],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            cwd=ROOT,
            env=env,
        )
    finally:
        os.close(terminal)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(controller)
    code = process.wait(timeout=60)
    return code, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.timeout(120)  # a process of its own: slow on a loaded machine
def test_live_progress_on_a_terminal_ends_with_the_exact_counts() -> None:
    code, raw = run_in_pty("run", target("make_retrying"), "--param", "count=5")
    assert code == 0, raw
    assert "\x1b[?25l" in raw  # rich hid the cursor: the live display ran
    text = ANSI.sub("", raw).replace("\r", "")
    last = text[text.rindex("finished: jobs:") :]
    lines = [line.rstrip() for line in last.splitlines()]
    assert lines[0] == "finished: jobs: 0 running, 1 completed"
    assert _without_time(lines[1]) == RETRYING_FINAL[1]
    rows = [line.split() for line in lines[2:6]]
    assert rows == [
        ["routine", "running", "done", "failed", "retries"],
        ["numbers", "0", "1", "0", "0"],
        ["flaky", "0", "5", "0", "1"],
        ["total", "0", "5", "0", "0"],
    ]
    assert "completed in" in lines[6]  # then the summary
    assert '"total": 10' in last


@pytest.mark.slow
@pytest.mark.timeout(120)  # a process of its own: slow on a loaded machine
def test_live_progress_of_a_failing_run_and_no_progress() -> None:
    code, raw = run_in_pty("run", target("make_failing"))
    assert code == 1
    text = ANSI.sub("", raw).replace("\r", "")
    assert "broken.input failed: ValueError: cannot parse 0" in text
    last = text[text.rindex("finished: jobs:") :].splitlines()
    assert last[0].rstrip() == "finished: jobs: 0 running, 1 failed"
    assert _without_time(last[1].rstrip()) == (
        "activations: 2 done, 0 queued, 0 running, 1 failed, 0 retries"
    )
    assert last[-1].startswith("routilux: error: job ")
    code, raw = run_in_pty("run", target("make_counting"), "--no-progress")
    assert code == 0
    assert "activations" not in raw and "\x1b[?25l" not in raw


@pytest.mark.slow
@pytest.mark.timeout(120)  # a process of its own: slow on a loaded machine
def test_live_progress_of_a_demo() -> None:
    code, raw = run_in_pty("demo", "errors")
    assert code == 0
    assert "\x1b[?25l" in raw
    text = ANSI.sub("", raw).replace("\r", "")
    assert "1 dead letter(s): ['fetch_prices']" in text
    last = [
        line.rstrip() for line in text[text.rindex("finished: jobs:") :].splitlines()
    ]
    assert last[0] == "finished: jobs: 0 running, 1 completed"
    assert _without_time(last[1]) == (
        "activations: 8 done, 0 queued, 0 running, 1 failed, 1 retries"
    )
    assert [row.split() for row in last[3:9]] == [
        ["fanout", "0", "1", "0", "0"],
        ["fetch_orders", "0", "1", "0", "0"],
        ["fetch_customers", "0", "1", "0", "0"],
        ["fetch_inventory", "0", "1", "0", "1"],
        ["fetch_prices", "0", "1", "1", "0"],
        ["collector", "0", "3", "0", "0"],
    ]


def test_plain_progress_when_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got = cli(capsys, "run", target("make_retrying"), "--param", "count=5")
    assert got.code == 0
    lines = got.out.splitlines()
    assert re.fullmatch(r"job \S+ started \(flow cli-retrying\)", lines[0])
    assert re.fullmatch(r"job \S+ completed", lines[1])
    assert [_without_time(line) for line in lines[2:7]] == RETRYING_FINAL
    assert re.fullmatch(r"job \S+ completed in \d+\.\d\ds", lines[7])


def test_plain_progress_names_each_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got = cli(capsys, "run", target("make_continuing"), "--param", "count=3")
    assert got.code == 0
    failures = [line for line in got.out.splitlines() if " failed: " in line]
    assert [line.split(": ", 1)[1] for line in failures] == [
        f"broken.input failed: ValueError: cannot parse {n}" for n in range(3)
    ]
    assert "activations: 4 done, 0 queued, 0 running, 3 failed, 0 retries" in got.out


def test_demo_progress_plain(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "demo", "errors")
    assert got.code == 0, got.err
    lines = got.out.splitlines()
    at = lines.index("finished: jobs: 0 running, 1 completed")
    assert [_without_time(line) for line in lines[at:]] == [
        "finished: jobs: 0 running, 1 completed",
        "activations: 8 done, 0 queued, 0 running, 1 failed, 1 retries",
        "  fanout: 1 done, 0 failed, 0 retries",
        "  fetch_orders: 1 done, 0 failed, 0 retries",
        "  fetch_customers: 1 done, 0 failed, 0 retries",
        "  fetch_inventory: 1 done, 0 failed, 1 retries",
        "  fetch_prices: 1 done, 1 failed, 0 retries",
        "  collector: 3 done, 0 failed, 0 retries",
    ]


class _Lines:
    """A stream that keeps what is written (and is not a terminal)."""

    def __init__(self) -> None:
        self.text: list[str] = []

    def write(self, text: str) -> int:
        self.text.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@pytest.mark.parametrize("repeat", range(3))
def test_counts_are_exact_over_many_threads_and_jobs(repeat: int) -> None:
    """8 workers, 12 jobs at once, each 1 + 40 + 40 activations, one retry each."""
    stream = _Lines()
    progress = Progress(PlainView(stream))  # type: ignore[arg-type]
    flow = Flow(f"many-{repeat}", execution_strategy="concurrent", max_workers=8)
    flaky = cli_flows.FirstCallFails()
    flaky.set_error_handler(
        ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=0.0)
    )
    flow.add_routine(cli_flows.Numbers(), "numbers")
    flow.add_routine(cli_flows.Double(), "double")
    flow.add_routine(flaky, "flaky")
    flow.connect("numbers", "value", "double", "input")
    flow.connect("double", "value", "flaky", "input")
    progress.watch(flow)
    with flow, progress:
        jobs = [flow.execute("numbers", {"count": 40}) for _ in range(12)]
        for job in jobs:
            assert job.wait(30)
    snap = progress.snapshot()
    assert [job.status.value for job in jobs] == ["completed"] * 12
    assert (snap.total.done, snap.total.running, snap.total.failed) == (972, 0, 0)
    assert (snap.total.retries, snap.queued, snap.jobs_running) == (1, 0, 0)
    assert snap.jobs_ended == {"completed": 12}
    assert {rid: c.done for rid, c in snap.routines.items()} == {
        "numbers": 12,
        "double": 480,
        "flaky": 480,
    }
    written = "".join(stream.text).splitlines()
    final = final_lines(snap)
    assert written[-len(final) :] == final
    assert sum(" started (flow " in line for line in written) == 12


def test_queued_counts_what_is_waiting_and_never_runs_below_zero() -> None:
    """Sequential, first in first out: every double runs, then every total."""
    seen: list[tuple[int, int]] = []
    progress = Progress(QuietView())
    flow = cli_flows.make_counting()
    total = flow.routines["total"]

    def look(value: int) -> int:
        snap = progress.snapshot()
        seen.append((snap.queued, snap.total.running))
        return cli_flows.Total.add(total, value)  # type: ignore[arg-type]

    total.get_slot("input").handler = look  # type: ignore[union-attr]
    progress.watch(flow)
    with flow, progress:
        flow.execute("numbers", {"count": 3})
    # While a total runs, nothing else does; the totals not started are queued.
    assert seen == [(2, 1), (1, 1), (0, 1)]
    assert progress.snapshot().queued == 0


def test_hooks_run_on_threads_do_not_lose_lines() -> None:
    stream = _Lines()
    view = PlainView(stream)  # type: ignore[arg-type]
    barrier = threading.Barrier(8)

    def say(n: int) -> None:
        barrier.wait()
        for k in range(200):
            view._say(f"{n}-{k}")

    threads = [threading.Thread(target=say, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = "".join(stream.text).splitlines()
    assert sorted(lines) == sorted(f"{n}-{k}" for n in range(8) for k in range(200))


def test_elapsed_runs_from_the_first_start_to_the_last_end() -> None:
    now = [1.0]
    progress = Progress(QuietView(), clock=lambda: now[0])
    flow = progress.watch(cli_flows.make_counting())
    with flow, progress:
        assert progress.snapshot().elapsed == 0.0
        job = flow.execute("numbers", {"count": 1})  # starts at 1.0, ends at 1.0
        now[0] = 4.5
        second = flow.execute("numbers", {"count": 1})  # from 4.5 to 4.5
        now[0] = 100.0
    assert job.status.value == second.status.value == "completed"
    assert progress.snapshot().elapsed == 3.5
