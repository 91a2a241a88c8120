"""Issue 10: a big payload is stored once per job, however many rows refer to it.

A 50 MB payload fanned out to 10 routines made 10 pending rows of 50 MB each
while they waited. A payload of at least ``payload_refs.SHARED_BYTES`` is now
kept once in the ``payloads`` table; SQLite counts the rows referring to it
(triggers), so every way a row goes drops its reference in the same
transaction, and the payload goes with the last one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

import pytest

from routilux import Flow, JobStatus, Routine
from routilux.persistence import SQLiteCheckpointStore
from routilux.persistence.sqlite import payload_refs

from .test_persistence import make_job

if TYPE_CHECKING:
    from pathlib import Path

PAYLOAD = 2_000_000  # characters
TARGETS = 10
BIG = "x" * payload_refs.SHARED_BYTES
OTHER = "y" * payload_refs.SHARED_BYTES


def payload_rows(path: Path) -> list[tuple[str, int]]:
    """(job_id, refs) of every stored payload, read with a connection of its own."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            "SELECT job_id, refs FROM payloads ORDER BY rowid"
        ).fetchall()


def activation(aid: str, blob: str) -> dict[str, Any]:
    return {"id": aid, "routine_id": "r", "slot": "s", "payload": {"blob": blob}}


def files_size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


class Source(Routine):
    """Emits one big text."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["blob"])

    def go(self) -> None:
        self.emit("out", blob="x" * PAYLOAD)


class Sink(Routine):
    """Notes the store's files' size when it runs: its siblings still wait."""

    def __init__(self, path: Path, sizes: list[int]) -> None:
        super().__init__()
        self.path = path
        self.sizes = sizes
        self.define_slot("input", handler=self.take)

    def take(self, blob: str) -> None:
        assert len(blob) == PAYLOAD
        self.sizes.append(files_size(self.path))


def fan_out_peak(path: Path, strategy: str) -> int:
    """The most the store's files took while the sinks ran; checks the job."""
    sizes: list[int] = []
    with SQLiteCheckpointStore(path) as store:
        flow = Flow(flow_id="fan", execution_strategy=strategy, checkpoint_store=store)
        flow.add_routine(Source(), "source")
        for n in range(TARGETS):
            flow.add_routine(Sink(path, sizes), f"sink{n}")
            flow.connect("source", "out", f"sink{n}", "input")
        job = flow.execute("source", {})
        assert job.wait(60)
        flow.shutdown(timeout=10)
        assert job.status == JobStatus.COMPLETED
        assert len(sizes) == TARGETS
        assert payload_rows(path) == []  # the last reference took it along
        assert store.load(job.job_id)["pending_activations"] == []
    return max(sizes)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_fanned_out_payload_is_stored_once_while_its_rows_wait(
    tmp_path: Path, strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = fan_out_peak(tmp_path / "shared.sqlite", strategy)
    monkeypatch.setattr(payload_refs, "SHARED_BYTES", 10 * PAYLOAD)  # as before
    copied = fan_out_peak(tmp_path / "copied.sqlite", strategy)
    # One copy in the table (and the WAL), one in the history the source's
    # emit logged, against one per waiting row.
    assert shared < 5 * PAYLOAD, shared
    assert copied > 2 * shared, (copied, shared)


def test_rows_share_one_payload_and_the_last_one_out_takes_it(tmp_path: Path) -> None:
    path = tmp_path / "cp.sqlite"
    with SQLiteCheckpointStore(path) as store:
        store.save_job(make_job("j"))
        store.record_step("j", added=[activation("a", BIG), activation("b", BIG)])
        assert payload_rows(path) == [("j", 2)]
        store.record_step("j", added=[activation("c", BIG)])  # a later step
        assert payload_rows(path) == [("j", 3)]
        assert [a["payload"]["blob"] for a in store.pending("j")] == [BIG] * 3
        store.record_step("j", finished=["a"], added=[activation("d", "small")])
        assert payload_rows(path) == [("j", 2)]
        store.record_step("j", finished=["b", "c"])
        assert payload_rows(path) == []
        assert store.pending("j") == [activation("d", "small")]


def test_a_replaced_row_moves_its_reference(tmp_path: Path) -> None:
    path = tmp_path / "cp.sqlite"
    with SQLiteCheckpointStore(path) as store:
        store.save_job(make_job("j"))
        store.record_step("j", added=[activation("a", BIG)])
        store.record_step("j", added=[activation("a", OTHER)])  # same id: replaced
        assert payload_rows(path) == [("j", 1)]
        assert store.pending("j") == [activation("a", OTHER)]
        store.record_step("j", added=[activation("a", "small")])
        assert payload_rows(path) == []
        assert store.pending("j") == [activation("a", "small")]


def test_a_passed_on_big_payload_keeps_one_reference(tmp_path: Path) -> None:
    path = tmp_path / "cp.sqlite"
    with SQLiteCheckpointStore(path) as store:
        store.save_job(make_job("j"))
        store.record_step("j", added=[activation("a", BIG)])
        for n in range(5):  # finish one, add one: the one-statement path
            previous = "a" if n == 0 else f"a{n - 1}"
            store.record_step(
                "j", finished=[previous], added=[activation(f"a{n}", BIG)]
            )
            assert payload_rows(path) == [("j", 1)]
        assert store.pending("j") == [activation("a4", BIG)]


def test_jobs_do_not_share_payloads_and_deleting_one_takes_its_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cp.sqlite"
    with SQLiteCheckpointStore(path) as store:
        for job_id in ("j", "k"):
            store.save_job(make_job(job_id))
            store.record_step(job_id, added=[activation("a", BIG)])
        assert payload_rows(path) == [("j", 1), ("k", 1)]
        store.delete("j")
        assert payload_rows(path) == [("k", 1)]
        store.save_job(make_job("k", status="completed"))
        assert store.prune(status="completed") == 1
        assert payload_rows(path) == []


def test_a_job_started_with_a_big_payload_stores_it_once(tmp_path: Path) -> None:
    path = tmp_path / "cp.sqlite"
    with SQLiteCheckpointStore(path) as store:
        flow = Flow(flow_id="one", checkpoint_store=store)
        got: list[int] = []
        started = threading.Event()
        release = threading.Event()

        class Slow(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.go)

            def go(self, blob: str) -> None:
                started.set()
                release.wait(30)
                got.append(len(blob))

        flow.add_routine(Slow(), "slow")
        flow.set_execution_strategy("concurrent", max_workers=2)
        job = flow.execute("slow", {"blob": BIG})
        assert started.wait(30)
        assert payload_rows(path) == [(job.job_id, 1)]
        assert store.pending(job.job_id)[0]["payload"] == {"blob": BIG}
        release.set()
        assert job.wait(30)
        flow.shutdown(timeout=10)
        assert got == [len(BIG)]
        assert payload_rows(path) == []


def test_a_file_from_before_the_table_gets_it_when_opened_for_writing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cp.sqlite"
    with SQLiteCheckpointStore(path) as store:
        store.save_job(make_job("j"))
        store.record_step("j", added=[activation("a", "small")])
    with contextlib.closing(
        sqlite3.connect(path)
    ) as conn:  # as an older routilux left it
        for name in (
            "pending_payload_added",
            "pending_payload_dropped",
            "pending_payload_replaced",
        ):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP TABLE payloads")
        conn.commit()
    with SQLiteCheckpointStore(path, read_only=True) as reader:
        assert reader.pending("j") == [activation("a", "small")]
    with SQLiteCheckpointStore(path) as store:
        store.record_step("j", added=[activation("b", BIG)])
        assert payload_rows(path) == [("j", 1)]
        assert [a["payload"]["blob"] for a in store.pending("j")] == ["small", BIG]
    assert os.path.exists(path)
