"""Issue 10, item 5: stores forget old jobs (prune, retention=) and give space back."""

from __future__ import annotations

import doctest
import math
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    CheckpointError,
    ConfigurationError,
    Flow,
    JobStatus,
    Routine,
)
from routilux.persistence import (
    JsonFileCheckpointStore,
    PruningStore,
    Retention,
    SQLiteCheckpointStore,
)
from routilux.persistence import retention as retention_module
from routilux.persistence.sqlite import database as sqlite_database

if TYPE_CHECKING:
    from collections.abc import Iterator

KINDS = ["sqlite", "jsonfile"]


def open_store(kind: str, tmp_path: Path, **options: Any) -> Any:
    if kind == "sqlite":
        return SQLiteCheckpointStore(tmp_path / "store.db", **options)
    return JsonFileCheckpointStore(tmp_path / "store", **options)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path) -> Iterator[Any]:
    with open_store(kind, tmp_path) as opened:
        yield opened


def ago(seconds: float) -> str:
    """An ``updated_at`` this long before now (now: when the test runs)."""
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat()


def job(
    job_id: str,
    status: str = "completed",
    age: float = 0.0,
    flow_id: str = "flow",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "flow_id": flow_id,
        "status": status,
        "updated_at": ago(age),
        **extra,
    }


def activation(activation_id: str) -> dict[str, Any]:
    return {"id": activation_id, "routine_id": "r", "slot": "in", "payload": {}}


def letter(
    letter_id: str, job_id: str, replayed_by: str | None = None
) -> dict[str, Any]:
    return {
        "letter_id": letter_id,
        "flow_id": "flow",
        "job_id": job_id,
        "routine_id": "r",
        "slot": "in",
        "payload": {"n": 1},
        "error_type": "ValueError",
        "error": "bad",
        "causes": [],
        "attempts": 1,
        "failed_at": 1.0,
        "replayed_by": replayed_by,
    }


def stored(store: Any) -> list[str]:
    return sorted(summary["job_id"] for summary in store.list_jobs())


# -- prune: what it deletes ----------------------------------------------------------


def test_both_stores_are_pruning_stores(store: Any) -> None:
    assert isinstance(store, PruningStore)


def test_prune_by_age_deletes_only_old_finished_jobs(store: Any) -> None:
    for status in ("completed", "failed", "cancelled", "paused", "running"):
        store.save_job(job(f"old-{status}", status, age=3600))
        store.save_job(job(f"new-{status}", status, age=0))
    assert store.prune(older_than=600) == 3
    assert stored(store) == [
        "new-cancelled",
        "new-completed",
        "new-failed",
        "new-paused",
        "new-running",
        "old-paused",
        "old-running",
    ]


def test_older_than_takes_a_timedelta(store: Any) -> None:
    store.save_job(job("old", age=7200))
    store.save_job(job("new", age=60))
    assert store.prune(older_than=timedelta(hours=1)) == 1
    assert stored(store) == ["new"]


def test_status_picks_the_statuses_and_names_paused_explicitly(store: Any) -> None:
    for status in ("completed", "failed", "paused"):
        store.save_job(job(status, status, age=10))
    assert store.prune(status="failed") == 1
    assert store.prune(status=[JobStatus.PAUSED, "completed"]) == 2
    assert stored(store) == []


def test_keep_last_keeps_the_newest_of_each_flow(store: Any) -> None:
    for n in range(5):
        store.save_job(job(f"a{n}", age=100 - n, flow_id="a"))
        store.save_job(job(f"b{n}", age=100 - n, flow_id="b"))
    store.save_job(job("a-running", "running", age=1000, flow_id="a"))
    assert store.prune(keep_last=2) == 6
    assert stored(store) == ["a-running", "a3", "a4", "b3", "b4"]


def test_keep_last_and_older_than_together(store: Any) -> None:
    # Of a0..a4 (a4 newest), keep the 2 newest; of the rest, only those > 50 s old.
    for n, age in enumerate((400, 300, 40, 20, 10)):
        store.save_job(job(f"a{n}", age=age))
    assert store.prune(older_than=50, keep_last=2) == 2
    assert stored(store) == ["a2", "a3", "a4"]


def test_flow_id_limits_the_prune_to_one_flow(store: Any) -> None:
    store.save_job(job("a", flow_id="a", age=10))
    store.save_job(job("b", flow_id="b", age=10))
    assert store.prune(flow_id="a") == 1
    assert stored(store) == ["b"]


def test_a_pruned_job_takes_its_pending_and_replayed_letters_along(store: Any) -> None:
    store.save_job(job("gone", "cancelled", age=10))
    store.record_step("gone", added=[activation("a1"), activation("a2")])
    store.save_job(job("kept", "running"))
    store.record_step("kept", added=[activation("a1")])
    store.add_dead_letter(letter("waiting", "gone"))
    store.add_dead_letter(letter("replayed", "gone"))
    store.mark_dead_letters_replayed(["replayed"], "replayer")
    store.add_dead_letter(letter("other", "kept"))
    store.mark_dead_letters_replayed(["other"], "replayer")

    assert store.prune() == 1
    assert store.pending("gone") == []
    assert [a["id"] for a in store.pending("kept")] == ["a1"]
    letters = store.dead_letters(include_replayed=True)
    # A waiting letter is the only copy of failed work: it outlives its job.
    assert sorted(x["letter_id"] for x in letters) == ["other", "waiting"]
    with pytest.raises(CheckpointError, match="gone"):
        store.load("gone")


def test_prune_of_nothing_returns_zero(store: Any) -> None:
    store.save_job(job("running", "running", age=99999))
    assert store.prune() == 0
    assert store.prune(older_than=0, keep_last=0) == 0
    assert stored(store) == ["running"]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"older_than": -1}, "older_than"),
        ({"older_than": math.nan}, "older_than"),
        ({"older_than": math.inf}, "older_than"),
        ({"older_than": True}, "older_than"),
        ({"older_than": "3600"}, "older_than"),
        ({"older_than": timedelta(seconds=-1)}, "older_than"),
        ({"status": "running"}, "never pruned"),
        ({"status": ["completed", "pending"]}, "never pruned"),
        ({"status": "done"}, "'done'"),
        ({"status": []}, "empty"),
        ({"status": 3}, "status"),
        ({"keep_last": -1}, "keep_last"),
        ({"keep_last": 2.0}, "keep_last"),
        ({"keep_last": True}, "keep_last"),
        ({"flow_id": 7}, "flow_id"),
    ],
)
def test_bad_arguments_name_themselves_and_delete_nothing(
    store: Any, arguments: dict[str, Any], named: str
) -> None:
    store.save_job(job("old", age=99999))
    with pytest.raises(CheckpointError, match=named):
        store.prune(**arguments)
    assert stored(store) == ["old"]


def test_a_read_only_store_refuses_to_prune(kind: str, tmp_path: Path) -> None:
    with open_store(kind, tmp_path) as store:
        store.save_job(job("old", age=99999))
    with open_store(kind, tmp_path, read_only=True) as store:
        with pytest.raises(CheckpointError, match="read-only"):
            store.prune()
        assert stored(store) == ["old"]


# -- retention= ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "max_age or keep_last"),
        ({"max_age": -5}, "Retention.max_age"),
        ({"max_age": "1d"}, "Retention.max_age"),
        ({"keep_last": -1}, "Retention.keep_last"),
        ({"keep_last": 5, "statuses": "running"}, "Retention.statuses"),
        ({"keep_last": 5, "every": 0}, "Retention.every"),
        ({"keep_last": 5, "every": 2.5}, "Retention.every"),
    ],
)
def test_retention_checks_its_settings(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Retention(**settings)


def test_a_store_refuses_a_retention_of_another_type(kind: str, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="retention must be"):
        open_store(kind, tmp_path, retention={"keep_last": 3})


def test_retention_prunes_at_the_first_finished_job_then_every_n(
    kind: str, tmp_path: Path
) -> None:
    retention = Retention(keep_last=2, every=3)
    with open_store(kind, tmp_path, retention=retention) as store:
        for n in range(4):  # stored by an earlier process
            store.save_job(job(f"old{n}", "running", age=1000 - n))
        counts = []
        for n in range(4):
            store.save_job(job(f"old{n}", age=1000 - n))  # finished now
            counts.append(len(store.list_jobs()))
        # The first finished job prunes (nothing beyond the newest two finished
        # yet), then the 4th: old0 and old1 go.
        assert counts == [4, 4, 4, 2]
        assert stored(store) == ["old2", "old3"]
        store.save_job(job("live", "running"))
        store.record_step("live", added=[activation("a")])  # not finished: no count
        assert stored(store) == ["live", "old2", "old3"]


def test_retention_by_age_keeps_recent_jobs(kind: str, tmp_path: Path) -> None:
    retention = Retention(max_age=timedelta(minutes=5), every=1)
    with open_store(kind, tmp_path, retention=retention) as store:
        store.save_job(job("ancient", age=3600))
        store.save_job(job("recent", "failed", age=60))
        store.save_job(job("paused", "paused", age=3600))
        assert stored(store) == ["paused", "recent"]


class Echo(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.run)
        self.define_event("out", ["n"])

    def run(self, n: int = 0) -> None:
        self.emit("out", n=n)


class Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("in", handler=self.take)

    def take(self, n: int) -> None:
        pass


def test_a_flow_on_a_store_with_retention_keeps_the_last_jobs(
    kind: str, tmp_path: Path
) -> None:
    retention = Retention(keep_last=3, every=1)
    with open_store(kind, tmp_path, retention=retention) as store:
        flow = Flow("kept", checkpoint_store=store)
        flow.add_routine(Echo(), "echo")
        flow.add_routine(Sink(), "sink")
        flow.connect("echo", "out", "sink", "in")
        jobs = [flow.execute("echo", {"n": n}) for n in range(10)]
        assert all(j.status is JobStatus.COMPLETED for j in jobs)
        assert stored(store) == sorted(j.job_id for j in jobs[-3:])
        flow.shutdown()


@pytest.mark.parametrize("repeat", range(3))
def test_retention_counts_exactly_under_concurrent_jobs(
    kind: str, tmp_path: Path, repeat: int
) -> None:
    # 100 jobs on 8 threads: prunes at the 1st, 11th, ... 91st finished job,
    # so the last one leaves keep_last, and 9 more finish after it.
    retention = Retention(keep_last=4, every=10)
    with open_store(kind, tmp_path / str(repeat), retention=retention) as store:
        flow = Flow("busy", "concurrent", 8, checkpoint_store=store)
        flow.add_routine(Echo(), "echo")
        flow.add_routine(Sink(), "sink")
        flow.connect("echo", "out", "sink", "in")
        jobs = [flow.execute("echo", {"n": n}) for n in range(100)]
        assert flow.wait_for_completion(timeout=60)
        assert all(j.status is JobStatus.COMPLETED for j in jobs)
        assert len(store.list_jobs()) == 4 + 9
        flow.shutdown()


def traced(store: SQLiteCheckpointStore) -> list[str]:
    """Every statement the store's connection runs from now on."""
    statements: list[str] = []
    store._db._conn.set_trace_callback(statements.append)  # type: ignore[union-attr]
    return statements


@pytest.mark.parametrize("count", [10, 1000])
def test_prune_runs_the_same_statements_for_any_number_of_jobs(
    tmp_path: Path, count: int
) -> None:
    with SQLiteCheckpointStore(tmp_path / "x.db") as store:
        for n in range(count):
            store.save_job(job(f"j{n}", age=100))
            store.record_step(f"j{n}", added=[activation("a")])
        statements = traced(store)
        assert store.prune() == count
    deletes = [s for s in statements if s.lstrip().startswith("DELETE")]
    # Two clears of the temporary table, pending, history log, letters, jobs:
    # never per job. (The trace repeats the pending statement once per row as
    # its triggers run, see payload_refs: SQLite's own per-row work.)
    issued = [
        s
        for i, s in enumerate(deletes)
        if "FROM pending" not in s or i == 0 or s != deletes[i - 1]
    ]
    assert len(issued) == 6, deletes


def test_a_retention_prune_is_part_of_the_write_that_finishes_a_job(
    tmp_path: Path,
) -> None:
    retention = Retention(keep_last=1, every=1)
    with SQLiteCheckpointStore(tmp_path / "x.db", retention=retention) as store:
        store.save_job(job("first", age=10))
        statements = traced(store)
        store.save_job(job("second", age=0))
        assert stored(store) == ["second"]
    begin = statements.index("BEGIN IMMEDIATE")
    end = statements.index("COMMIT", begin)
    inside = " ".join(statements[begin:end])
    assert "INSERT INTO jobs" in inside and "DELETE FROM jobs" in inside


def locked(*args: Any, **kwargs: Any) -> Any:
    raise sqlite3.OperationalError("database is locked")


def test_space_not_given_back_fails_a_prune_but_not_a_finishing_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    retention = Retention(keep_last=1, every=1)
    with SQLiteCheckpointStore(tmp_path / "x.db", retention=retention) as store:
        store.save_job(job("first", age=10))
        monkeypatch.setattr(store._db, "connection", locked)
        # The job's write and its prune are done; the space comes back later.
        store.save_job(job("second", age=0))
        assert stored(store) == ["second"]
        store.save_job(job("third", "paused", age=20))  # retention leaves it
        with pytest.raises(CheckpointError, match=r"give space back.*locked"):
            store.prune(status="paused")
        assert stored(store) == ["second"]  # the prune itself was committed


# -- space ---------------------------------------------------------------------------


def file_size(path: Path) -> int:
    """The database and its WAL, as a user sees them on disk."""
    return sum(
        os.path.getsize(f) for f in (path, Path(f"{path}-wal")) if os.path.exists(f)
    )


def fill(store: SQLiteCheckpointStore, count: int) -> None:
    history = [
        {
            "routine_id": "r",
            "event_name": "out",
            "data": {"row": n, "text": "x" * 60},
            "timestamp": "2026-01-01T00:00:00Z",
        }
        for n in range(10)
    ]
    for n in range(count):
        store.save_job(job(f"j{n:05}", age=3600, execution_history=history))


def test_pruning_10000_jobs_gives_three_quarters_of_the_file_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.db"
    with SQLiteCheckpointStore(path) as store:
        fill(store, 10_000)
        store.save_job(job("live", "running"))
        store.record_step("live", added=[activation("a")])
        before = file_size(path)
        assert store.prune(older_than=60) == 10_000
        after = file_size(path)
        assert stored(store) == ["live"]
        assert [a["id"] for a in store.pending("live")] == ["a"]
    assert before > 10_000 * 1000  # the jobs were real
    assert after <= before / 4, (before, after)


def test_retention_gives_space_back_as_it_goes(tmp_path: Path) -> None:
    path = tmp_path / "kept.db"
    with SQLiteCheckpointStore(path) as store:
        fill(store, 3000)
    before = file_size(path)
    with SQLiteCheckpointStore(path, retention=Retention(keep_last=1)) as store:
        store.save_job(job("last", age=0))
        assert stored(store) == ["last"]
        # The database file shrinks at once; its WAL is reused by later writes.
        assert os.path.getsize(path) <= before / 4
    assert file_size(path) <= before / 4


def old_layout(path: Path) -> None:
    """A database as routilux made it before incremental vacuum."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in (*sqlite_database._SCHEMA, *sqlite_database._LETTERS_SCHEMA):
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {sqlite_database.SCHEMA_VERSION}")
    conn.close()


def auto_vacuum(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        mode: int = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
    finally:
        conn.close()
    return mode


def test_a_new_file_has_incremental_vacuum(tmp_path: Path) -> None:
    SQLiteCheckpointStore(tmp_path / "new.db").close()
    assert auto_vacuum(tmp_path / "new.db") == 2  # INCREMENTAL


def test_compact_converts_a_file_from_before_and_shrinks_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_layout(path)
    with SQLiteCheckpointStore(path) as store:
        fill(store, 2000)
        full = file_size(path)
        assert store.prune() == 2000
        # Without auto_vacuum the pages stay in the file, free for reuse.
        assert file_size(path) > full / 2
        store.compact()
        assert file_size(path) <= full / 4
        store.save_job(job("after", age=0))
        assert stored(store) == ["after"]
    assert auto_vacuum(path) == 2


def test_compact_of_a_read_only_store_is_refused(tmp_path: Path) -> None:
    SQLiteCheckpointStore(tmp_path / "x.db").close()
    with (
        SQLiteCheckpointStore(tmp_path / "x.db", read_only=True) as store,
        pytest.raises(CheckpointError, match="read-only"),
    ):
        store.compact()


# -- the JSON store's temporary files --------------------------------------------------

KILLED_WRITE = """
import os, sys
from routilux.persistence import JsonFileCheckpointStore

store = JsonFileCheckpointStore(sys.argv[1])
os.replace = lambda *args: os._exit(9)  # killed between the write and the rename
store.save_job({"job_id": "j", "flow_id": "f", "status": "completed",
                "updated_at": "2026-01-01T00:00:01Z"})
"""


def test_a_write_killed_before_its_rename_leaves_nothing_after_reopen(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "store"
    with JsonFileCheckpointStore(directory) as store:
        store.save_job(job("j", "running"))
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", KILLED_WRITE, str(directory)],
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 9
    # Each kill leaves one; each opening removes those before: they never pile up.
    assert sum(p.name.endswith(".tmp") for p in directory.iterdir()) == 1
    with JsonFileCheckpointStore(directory, read_only=True) as store:
        assert sum(p.name.endswith(".tmp") for p in directory.iterdir()) == 1
    with JsonFileCheckpointStore(directory) as store:
        assert [p.name for p in directory.iterdir()] == ["j.json"]
        assert store.load("j")["status"] == "running"  # the old file, whole


def test_temporary_files_of_dead_letters_go_too(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    (directory / "dead_letters").mkdir(parents=True)
    (directory / "dead_letters" / ".j.abc123.tmp").write_bytes(b"{")
    (directory / ".j.def456.tmp").write_bytes(b"{")
    (directory / "notes.tmp").write_bytes(b"mine")  # not a name the store makes
    JsonFileCheckpointStore(directory).close()
    assert sorted(p.name for p in directory.rglob("*") if p.is_file()) == ["notes.tmp"]


def test_the_retention_docstring_examples_run() -> None:
    result = doctest.testmod(retention_module)
    assert result.attempted >= 2 and result.failed == 0
