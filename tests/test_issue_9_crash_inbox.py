"""Issue 9, crash: inbox and append-slot state survive a SIGKILL and a resume.

A child process runs the flow of ``crash_join_flow`` (five sources into an
``all_sources`` join and an ``append`` slot) and is killed part-way; this process
resumes the job from the store. The join fires once with every part, the append
slot ends holding every item once, and the store held exactly the arrivals of
the steps committed before the kill.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from routilux.runtime.held import CONSUMED, INBOX, MERGE, marker_of
from routilux.runtime.stream import split_progress

from .crash_join_flow import (
    ITEMS,
    JOB_ID,
    SOURCES,
    Accumulator,
    build,
    delivers_at,
    open_store,
)

ROOT = Path(__file__).resolve().parents[1]


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def expected_join() -> str:
    parts = ",".join(
        f"src{i}=part-{i}@{delivers_at(i)}" for i in sorted(range(SOURCES), key=str)
    )
    return f"J {parts}"


def kill_child(kind: str, where: Path, log: Path, strategy: str, after: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = str(ROOT / "tests" / "crash_join_flow.py")
    child = subprocess.Popen(
        [sys.executable, script, kind, str(where), str(log), strategy], env=env
    )
    waiter = threading.Event()
    try:
        while child.poll() is None:
            if sum(line.startswith("S ") for line in log_lines(log)) >= after:
                break
            waiter.wait(0.002)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, "the child finished before the kill"


def stored_state(kind: str, where: Path) -> list[dict[str, Any]]:
    store = open_store(kind, where)
    try:
        return list(store.pending(JOB_ID))
    finally:
        store.close()


def check_store_at_kill(pending: list[dict[str, Any]], log: Path) -> None:
    """Held rows are exactly those of the steps committed before the kill.

    A source whose item has its log line and no pending activation completed
    and its step was committed (the line is written in the handler, the step
    after it): its arrivals are held, each once. So are the arrivals of the
    emits a still pending source stored in partial steps (issue 10: emits
    stream), as many as its progress row counts; no other source's are.
    """
    pending, emitted, orphans = split_progress(pending)
    assert not orphans
    written = {int(line[2:]) for line in log_lines(log) if line.startswith("S ")}
    sources = {
        item["id"]: item["payload"]["n"]
        for item in pending
        if marker_of(item) is None and item["routine_id"].startswith("src")
    }
    running = set(sources.values())
    committed = written - running
    # A source emits its item first, and at delivers_at its part second.
    streamed = {sources[key]: count for key, count in emitted.items() if key in sources}
    held = [(marker_of(item) or {}, item) for item in pending]
    merged = collections.Counter(
        m["params"]["n"] for m, _ in held if m.get("kind") == MERGE
    )
    assert merged == dict.fromkeys(committed | set(streamed), 1)
    if any(line.startswith("J ") for line in log_lines(log)):
        return  # the join fired before the kill: its rows went with its step
    consumed = [m for m, _ in held if m.get("kind") == CONSUMED]
    joined = [m["source"] for m, _ in held if m.get("kind") == INBOX]
    parts = committed | {n for n, count in streamed.items() if count >= 2}
    delivered = {f"src{i}" for i in range(SOURCES) if delivers_at(i) in parts}
    assert not consumed
    assert sorted(joined) == sorted(delivered)


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
@pytest.mark.parametrize("kind", ["sqlite", "json"])
@pytest.mark.parametrize("after", [10, 45, 80])
def test_join_and_append_survive_a_kill(
    tmp_path: Path, strategy: str, kind: str, after: int
) -> None:
    log = tmp_path / "log.txt"
    kill_child(kind, tmp_path, log, strategy, after)
    pending = stored_state(kind, tmp_path)
    check_store_at_kill(pending, log)

    store = open_store(kind, tmp_path)
    flow = build(store, log, strategy)
    with flow:
        job = flow.resume(JOB_ID)
        assert flow.wait_for_completion(timeout=60)
    assert job.status == "completed", job.errors

    lines = log_lines(log)
    assert [line for line in lines if line.startswith("J ")] == [expected_join()]
    written = {int(line[2:]) for line in lines if line.startswith("S ")}
    assert written == set(range(ITEMS))
    acc = flow.routines["acc"]
    assert isinstance(acc, Accumulator)
    # The resumed process's last calls see the whole list: every item, once.
    assert sorted(acc.longest) == list(range(ITEMS))
    reopened = open_store(kind, tmp_path)
    try:
        assert reopened.pending(JOB_ID) == []
        assert reopened.load(JOB_ID)["status"] == "completed"
    finally:
        reopened.close()
        store.close()
