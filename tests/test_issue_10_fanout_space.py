"""Issue 10: a big payload fanned out to many routines leaves no big file behind.

Each connected slot's pending row holds its own copy of the payload while the
job runs. Those pages were freed when the rows went, but the file kept their
size (the issue measured a 1 GB file for a 50 MB payload sent to 10 routines).
A job's end now gives the free pages back when they are a large part of the
file; small jobs leave theirs for later writes to reuse.

Rows now share a big payload (tests/test_issue_10_shared_payloads.py); these
tests keep a copy per row, as many different big payloads would, to free
the pages they are about.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import TYPE_CHECKING

import pytest

from routilux import Flow, JobStatus, Routine
from routilux.persistence import SQLiteCheckpointStore
from routilux.persistence.sqlite import payload_refs, retention

if TYPE_CHECKING:
    from pathlib import Path

PAYLOAD = 2_000_000  # characters
TARGETS = 10


@pytest.fixture(autouse=True)
def _a_copy_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payload_refs, "SHARED_BYTES", 100 * PAYLOAD)


class Source(Routine):
    """Emits one big text."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["blob"])

    def go(self) -> None:
        self.emit("out", blob="x" * self.size)


class Sink(Routine):
    """Keeps the length of what it got."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[int] = []
        self.define_slot("input", handler=self.take)

    def take(self, blob: str) -> None:
        self.got.append(len(blob))


def fan_out(store: SQLiteCheckpointStore, strategy: str, size: int) -> list[Sink]:
    flow = Flow(flow_id="fan", execution_strategy=strategy, checkpoint_store=store)
    flow.add_routine(Source(size), "source")
    sinks = []
    for n in range(TARGETS):
        sink = Sink()
        sinks.append(sink)
        flow.add_routine(sink, f"sink{n}")
        flow.connect("source", "out", f"sink{n}", "input")
    job = flow.execute("source", {})
    assert job.wait(30)
    assert job.status == JobStatus.COMPLETED
    flow.shutdown(timeout=10)
    return sinks


@pytest.mark.timeout(120)
@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_fanned_out_payload_leaves_a_file_about_its_size(
    tmp_path: Path, strategy: str
) -> None:
    path = tmp_path / "cp.sqlite"
    store = SQLiteCheckpointStore(path)
    try:
        sinks = fan_out(store, strategy, PAYLOAD)
        assert [sink.got for sink in sinks] == [[PAYLOAD]] * TARGETS
        # The finished job's document holds the payload once (its history).
        assert path.stat().st_size < 2 * PAYLOAD
        document = store.load(store.list_jobs("fan")[0]["job_id"])
        assert document["status"] == "completed"
    finally:
        store.close()
    assert path.stat().st_size < 2 * PAYLOAD


@pytest.mark.timeout(120)
def test_a_small_job_leaves_its_free_pages_for_reuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []
    real = retention.give_back_space

    def counted(db: object, *, best_effort: bool) -> None:
        calls.append(best_effort)
        real(db, best_effort=best_effort)  # type: ignore[arg-type]

    monkeypatch.setattr(retention, "give_back_space", counted)
    store = SQLiteCheckpointStore(tmp_path / "cp.sqlite")
    try:
        fan_out(store, "sequential", 50_000)  # 500 kB freed: under FREE_BYTES
        assert calls == []
        fan_out(store, "sequential", PAYLOAD)
        assert calls == [True]
    finally:
        store.close()


def test_the_rule_needs_both_a_share_of_the_file_and_a_size(tmp_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "plain.sqlite")) as conn:
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("CREATE TABLE t (x BLOB)")
        assert not retention.space_to_give_back(conn)  # nothing free
        conn.execute("INSERT INTO t VALUES (zeroblob(?))", (8 * 1024 * 1024,))
        conn.execute("INSERT INTO t VALUES (zeroblob(?))", (64 * 1024 * 1024,))
        conn.commit()
        conn.execute("DELETE FROM t WHERE length(x) < ?", (10 * 1024 * 1024,))
        conn.commit()
        # 8 MB free of 72: over FREE_BYTES, under a quarter of the file.
        assert not retention.space_to_give_back(conn)
        conn.execute("DELETE FROM t")
        conn.commit()
        assert retention.space_to_give_back(conn)
