"""Checkpoint stores: round trips, atomic steps, threads, two processes, failures."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

import routilux
from routilux import (
    CheckpointError,
    JobState,
    JobStatus,
    RoutiluxError,
    SerializationError,
)
from routilux.persistence import (
    CheckpointStore,
    JsonFileCheckpointStore,
    SQLiteCheckpointStore,
    checkpoint_store,
)
from routilux.persistence.sqlite import database as sqlite_database

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: What the parametrized fixtures open (both are context managers).
AnyStore = SQLiteCheckpointStore | JsonFileCheckpointStore

WRITER = Path(__file__).with_name("checkpoint_writer.py")
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def make_job(
    job_id: str,
    *,
    flow_id: str = "flow",
    status: str | None = "running",
    updated_at: str = "2024-01-01T00:00:00.5Z",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "flow_id": flow_id,
        "status": status,
        "updated_at": updated_at,
        **extra,
    }


def act(activation_id: str, payload: Any = None) -> dict[str, Any]:
    return {
        "id": activation_id,
        "routine_id": "r",
        "slot": "in",
        "payload": {"value": activation_id} if payload is None else payload,
    }


def ids(activations: list[dict[str, Any]]) -> list[str]:
    return [a["id"] for a in activations]


def open_sqlite(path: Path, **options: Any) -> SQLiteCheckpointStore:
    return SQLiteCheckpointStore(path / "checkpoints.db", **options)


def open_json(path: Path, **options: Any) -> JsonFileCheckpointStore:
    return JsonFileCheckpointStore(path / "checkpoints", **options)


OPENERS: dict[str, Callable[..., AnyStore]] = {
    "sqlite": open_sqlite,
    "jsonfile": open_json,
}


@pytest.fixture(params=sorted(OPENERS))
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., AnyStore]:
    """Open a store of the parametrized kind in tmp_path (same place every call)."""
    open_store = OPENERS[request.param]
    return lambda **options: open_store(tmp_path, **options)


@pytest.fixture
def store(opener: Callable[..., AnyStore]) -> Iterator[AnyStore]:
    opened = opener()
    yield opened
    opened.close()


# -- round trips ----------------------------------------------------------------


def test_both_stores_satisfy_the_protocol(store: CheckpointStore) -> None:
    assert isinstance(store, CheckpointStore)


def test_job_state_round_trip(store: CheckpointStore) -> None:
    state = JobState(flow_id="orders")
    state.status = JobStatus.RUNNING
    state.routine_states["a"] = {"status": "completed", "n": 1}
    state.errors.append({"routine_id": "a", "message": "ünïcode ✓"})
    document = state.serialize()
    store.save_job(document)

    loaded = store.load(state.job_id)
    assert loaded.pop("pending_activations") == []
    assert loaded == document
    restored = JobState.deserialize(loaded)
    assert restored.job_id == state.job_id
    assert restored.status is JobStatus.RUNNING
    assert store.list_jobs() == [
        {
            "job_id": state.job_id,
            "flow_id": "orders",
            "status": "running",
            "updated_at": document["updated_at"],
        }
    ]


def test_save_job_replaces_the_document_and_keeps_pending(
    store: CheckpointStore,
) -> None:
    store.save_job(make_job("j", shared={"n": 1}))
    store.record_step("j", added=[act("a1")])
    store.save_job(make_job("j", status="paused", shared={"n": 2}))
    loaded = store.load("j")
    assert loaded["status"] == "paused" and loaded["shared"] == {"n": 2}
    assert ids(loaded["pending_activations"]) == ["a1"]


def test_saving_a_loaded_document_does_not_store_its_pending_list(
    store: CheckpointStore,
) -> None:
    store.save_job(make_job("j"))
    store.record_step("j", added=[act("a1")])
    loaded = store.load("j")
    store.record_step("j", finished=["a1"])
    store.save_job(loaded)  # still carries pending_activations == [a1]
    assert store.load("j")["pending_activations"] == []


def test_a_store_reopened_reads_what_was_written(
    opener: Callable[..., AnyStore],
) -> None:
    with opener() as first:
        first.save_job(make_job("j"))
        first.record_step("j", added=[act("a1", {"v": [1, 2.5, None, "x"]})])
    with opener() as second:
        assert second.pending("j") == [act("a1", {"v": [1, 2.5, None, "x"]})]


def test_checkpoint_store_opens_sqlite_for_a_path(tmp_path: Path) -> None:
    opened = checkpoint_store(tmp_path / "c.db")
    assert isinstance(opened, SQLiteCheckpointStore)
    opened.close()
    with open_json(tmp_path) as json_store:
        assert checkpoint_store(json_store) is json_store
    with pytest.raises(CheckpointError, match="got int"):
        checkpoint_store(3)  # type: ignore[arg-type]


def test_memory_database() -> None:
    with SQLiteCheckpointStore(":memory:") as store:
        store.save_job(make_job("j"))
        assert [s["job_id"] for s in store.list_jobs()] == ["j"]


# -- record_step ------------------------------------------------------------------


def test_record_step_keeps_insertion_order(store: CheckpointStore) -> None:
    store.save_job(make_job("j"))
    store.record_step("j", added=[act("c"), act("a"), act("b")])
    store.record_step("j", finished=["a"], added=[act("z"), act("y")])
    store.record_step("j", finished=["c", "unknown"], added=[act("a")])
    assert ids(store.pending("j")) == ["b", "z", "y", "a"]
    assert store.load("j")["pending_activations"] == store.pending("j")


def test_record_step_replaces_a_pending_activation_in_place(
    store: CheckpointStore,
) -> None:
    store.save_job(make_job("j"))
    store.record_step("j", added=[act("a"), act("b")])
    store.record_step("j", added=[act("a", {"new": True})])
    assert store.pending("j") == [act("a", {"new": True}), act("b")]


def test_record_step_updates_the_job_in_the_same_step(store: CheckpointStore) -> None:
    store.save_job(make_job("j"))
    store.record_step("j", added=[act("a")])
    store.record_step("j", finished=["a"], job=make_job("j", status="completed"))
    loaded = store.load("j")
    assert loaded["status"] == "completed"
    assert loaded["pending_activations"] == []
    assert store.list_jobs(status="completed")[0]["job_id"] == "j"


def test_record_step_may_create_the_job(store: CheckpointStore) -> None:
    store.record_step("j", added=[act("a")], job=make_job("j"))
    assert ids(store.load("j")["pending_activations"]) == ["a"]


def test_record_step_of_an_unknown_job_writes_nothing(store: CheckpointStore) -> None:
    with pytest.raises(CheckpointError, match="unknown job 'ghost'"):
        store.record_step("ghost", added=[act("a")])
    assert store.pending("ghost") == []
    assert store.list_jobs() == []


_UNWRITABLE = r"activation 'a3' of job 'j': payload.bad: object is not a value"


@pytest.mark.parametrize(
    ("added", "job", "match"),
    [
        ([act("a2"), act("a3", {"bad": object()})], None, _UNWRITABLE),
        ([act("a2"), {"id": "a3", "slot": "in"}], None, "routine_id"),
        ([act("a2"), {**act("a3"), "id": 3}], None, "must be strings"),
        ([act("a2"), act("a3", [1, 2])], None, "payload must be an object"),
        ([act("a2")], make_job("other"), "document of job 'other'"),
        ([act("a2")], make_job("j", updated_at="yesterday"), "ISO-8601"),
        ([act("a2")], make_job("j", status=None), "'status'"),
        ([act("a2")], make_job("j", blob=object()), "not JSON-ready"),
    ],
)
def test_a_failed_step_writes_nothing(
    store: CheckpointStore,
    added: list[dict[str, Any]],
    job: dict[str, Any] | None,
    match: str,
) -> None:
    store.save_job(make_job("j", n=1))
    store.record_step("j", added=[act("a1")])
    before = store.load("j")
    # A value no encoding holds is refused as save() refuses it; the rest is
    # the store's CheckpointError.
    error = SerializationError if match == _UNWRITABLE else CheckpointError
    with pytest.raises(error, match=match):
        store.record_step("j", finished=["a1"], added=added, job=job)
    assert store.load("j") == before
    store.record_step("j", finished=["a1"])  # the store is still usable
    assert store.pending("j") == []


def test_save_job_refuses_a_bad_document(store: CheckpointStore) -> None:
    with pytest.raises(CheckpointError, match="'job_id'"):
        store.save_job({"flow_id": "f", "status": "running", "updated_at": "x"})
    with pytest.raises(CheckpointError, match="must be a dict"):
        store.save_job(["not", "a", "dict"])  # type: ignore[arg-type]
    assert store.list_jobs() == []


# -- list, load, delete, close ------------------------------------------------------


def test_list_jobs_filters_and_orders_oldest_first(store: CheckpointStore) -> None:
    # A whole second is written without a fraction, so strings do not sort by time.
    store.save_job(make_job("late", updated_at="2024-01-01T00:00:01Z"))
    store.save_job(make_job("early", updated_at="2024-01-01T00:00:00.900000Z"))
    store.save_job(
        make_job("other", flow_id="f2", updated_at="2024-01-01T00:00:00+00:00")
    )
    store.save_job(
        make_job("done", status="completed", updated_at="2023-12-31T23:00:00")
    )
    assert [s["job_id"] for s in store.list_jobs()] == [
        "done",
        "other",
        "early",
        "late",
    ]
    assert [s["job_id"] for s in store.list_jobs(flow_id="flow")] == [
        "done",
        "early",
        "late",
    ]
    assert [s["job_id"] for s in store.list_jobs(status=JobStatus.COMPLETED)] == [
        "done"
    ]
    assert [s["job_id"] for s in store.list_jobs("flow", "running")] == [
        "early",
        "late",
    ]
    assert store.list_jobs(flow_id="nope") == []
    assert store.list_jobs()[0] == {
        "job_id": "done",
        "flow_id": "flow",
        "status": "completed",
        "updated_at": "2023-12-31T23:00:00",
    }


def test_load_of_an_unknown_job_names_it(store: CheckpointStore) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint of job 'missing'"):
        store.load("missing")
    assert store.pending("missing") == []


def test_delete_removes_the_job_and_its_pending(store: CheckpointStore) -> None:
    store.save_job(make_job("j"))
    store.save_job(make_job("k"))
    store.record_step("j", added=[act("a"), act("b")])
    store.delete("j")
    store.delete("j")  # unknown id: no-op
    assert [s["job_id"] for s in store.list_jobs()] == ["k"]
    assert store.pending("j") == []
    with pytest.raises(CheckpointError):
        store.load("j")
    store.save_job(make_job("j"))  # a new job of the same id starts empty
    assert store.pending("j") == []


def test_close_is_idempotent_and_use_after_close_fails(
    opener: Callable[..., AnyStore],
) -> None:
    with opener() as store:
        store.save_job(make_job("j"))
    store.close()
    store.close()
    with pytest.raises(CheckpointError, match="closed"):
        store.load("j")
    with pytest.raises(CheckpointError, match="closed"):
        store.save_job(make_job("j"))


# -- concurrency --------------------------------------------------------------------


@pytest.mark.slow
def test_eight_threads_lose_nothing(store: CheckpointStore) -> None:
    threads, steps = 8, 500
    store.save_job(make_job("shared"))
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(steps):
                # Finish the previous activation unless it is a keeper (i % 100 == 0).
                finished = [f"{t}-{i - 1}"] if i % 100 != 1 else []
                job = make_job("shared", step=i) if i % 50 == 0 else None
                store.record_step("shared", finished=finished, added=[act(f"{t}-{i}")])
                if job is not None:
                    store.save_job(job)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    pending = ids(store.pending("shared"))
    expected = {
        f"{t}-{i}" for t in range(threads) for i in range(steps) if i % 100 == 0
    } | {f"{t}-{steps - 1}" for t in range(threads)}
    assert sorted(pending) == sorted(expected)
    for t in range(threads):  # each thread's activations stay in its order
        mine = [int(a.split("-")[1]) for a in pending if a.startswith(f"{t}-")]
        assert mine == sorted(mine)


@pytest.mark.slow
def test_two_processes_writing_one_database_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"  # created by whichever writer is first
    jobs = 150
    # The writers import the routilux under test, wherever it comes from.
    source = str(Path(routilux.__file__).resolve().parents[1])
    inherited = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([source, inherited] if inherited else [source]),
    }
    writers = [
        subprocess.Popen(
            [sys.executable, str(WRITER), str(path), name, str(jobs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("p", "q")
    ]
    try:
        for writer in writers:  # both imported: start them together
            assert writer.stdout is not None
            line = writer.stdout.readline().strip()
            assert line == "ready", writer.communicate(timeout=30)[1]
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        results = [writer.communicate(timeout=30) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.communicate()
    for writer, (out, err) in zip(writers, results, strict=True):
        assert writer.returncode == 0, err
        assert out.strip() == "done"

    with SQLiteCheckpointStore(path) as store:
        summaries = store.list_jobs(flow_id="two-processes")
        assert len(summaries) == 2 * jobs
        assert {s["status"] for s in summaries} == {"completed"}
        for name in ("p", "q"):
            for n in range(jobs):
                job_id = f"{name}-{n}"
                loaded = store.load(job_id)
                assert loaded["shared_data"] == {"writer": name}
                assert ids(loaded["pending_activations"]) == [f"{job_id}/a2"]


# -- failures: SQLite ----------------------------------------------------------------


def seed_database(path: Path) -> None:
    with SQLiteCheckpointStore(path) as store:
        store.save_job(make_job("kept"))
        store.record_step("kept", added=[act("a1")])


def assert_readable(path: Path, **options: Any) -> None:
    with SQLiteCheckpointStore(path, **options) as store:
        assert ids(store.load("kept")["pending_activations"]) == ["a1"]


def test_a_file_that_is_not_a_database_is_refused_untouched(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.db", tmp_path / "bad.db"
    seed_database(good)
    garbage = bytes(range(256)) * 64
    bad.write_bytes(garbage)
    with pytest.raises(CheckpointError, match=r"bad\.db.*not a database") as caught:
        SQLiteCheckpointStore(bad)
    assert isinstance(caught.value, RoutiluxError)
    assert bad.read_bytes() == garbage
    with pytest.raises(CheckpointError, match=r"bad\.db"):
        SQLiteCheckpointStore(bad, read_only=True)
    assert_readable(good)


def test_a_corrupt_document_names_its_job_and_spares_the_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.db"
    seed_database(path)
    with SQLiteCheckpointStore(path) as store:
        store.save_job(make_job("broken"))
        store.record_step("broken", added=[act("b1")])
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("UPDATE jobs SET document = '{oops' WHERE job_id = 'broken'")
    raw.close()
    with SQLiteCheckpointStore(path) as store:
        with pytest.raises(CheckpointError, match=r"c\.db.*job 'broken' is corrupt"):
            store.load("broken")
        assert ids(store.pending("broken")) == ["b1"]
        assert len(store.list_jobs()) == 2
    assert_readable(path)


def test_a_locked_database_fails_writes_clearly_and_stays_readable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    seed_database(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer that does not let go
    try:
        with SQLiteCheckpointStore(path, busy_timeout=0.05) as store:
            with pytest.raises(CheckpointError, match=r"locked.*busy_timeout=0\.05"):
                store.save_job(make_job("new"))
            with pytest.raises(CheckpointError, match="locked"):
                store.record_step("kept", finished=["a1"], added=[act("a2")])
            with pytest.raises(CheckpointError, match="locked"):
                store.delete("kept")
            assert ids(store.pending("kept")) == ["a1"]
            assert [s["job_id"] for s in store.list_jobs()] == ["kept"]
            holder.execute("ROLLBACK")
            store.record_step("kept", finished=["a1"], added=[act("a2")])
            assert ids(store.pending("kept")) == ["a2"]
    finally:
        holder.close()


def test_a_damaged_page_gives_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    with SQLiteCheckpointStore(path) as store:
        for n in range(100):
            store.save_job(make_job(f"j{n}", blob="x" * 500))
    data = path.read_bytes()
    # Pages 2-4: with auto_vacuum page 2 is a pointer map a read never needs,
    # so the damage reaches the jobs table's pages too.
    path.write_bytes(data[:4096] + b"\xff" * 12288 + data[16384:])
    with (
        pytest.raises(CheckpointError, match=r"damaged\.db.*malformed"),
        SQLiteCheckpointStore(path) as store,
    ):
        store.list_jobs()


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    seed_database(path)
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(CheckpointError, match=r"new\.db.*version 99"):
        SQLiteCheckpointStore(path)


def test_an_older_schema_version_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    seed_database(path)
    monkeypatch.setattr(sqlite_database, "SCHEMA_VERSION", 2)
    with pytest.raises(CheckpointError, match=r"old\.db.*version 1.*reads version 2"):
        SQLiteCheckpointStore(path)
    monkeypatch.undo()
    assert_readable(path)


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foreign.db"
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("CREATE TABLE things (x)")
    raw.close()
    with pytest.raises(CheckpointError, match=r"foreign\.db.*not a checkpoint"):
        SQLiteCheckpointStore(path)
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        names = raw.execute("SELECT name FROM sqlite_master").fetchall()
    raw.close()
    assert names == [("things",)]


def test_read_only_store_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    seed_database(path)
    with SQLiteCheckpointStore(path, read_only=True) as store:
        assert ids(store.pending("kept")) == ["a1"]
        with pytest.raises(CheckpointError, match="read-only"):
            store.record_step("kept", finished=["a1"])
    with pytest.raises(CheckpointError, match="no such checkpoint database"):
        SQLiteCheckpointStore(tmp_path / "absent.db", read_only=True)
    assert_readable(path)


# -- failures: both stores ---------------------------------------------------------


def test_a_file_where_a_directory_is_expected(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    with pytest.raises(CheckpointError, match=r"blocker.*cannot create the directory"):
        SQLiteCheckpointStore(blocker / "checkpoints.db")
    with pytest.raises(CheckpointError, match="blocker"):
        JsonFileCheckpointStore(blocker)
    with pytest.raises(CheckpointError, match="blocker"):
        JsonFileCheckpointStore(blocker / "sub")
    with pytest.raises(CheckpointError, match="is a directory"):
        SQLiteCheckpointStore(tmp_path)
    assert blocker.read_text() == "a file, not a directory"


@pytest.mark.skipif(AS_ROOT, reason="root ignores permission bits")
def test_a_directory_without_write_permission(
    opener: Callable[..., AnyStore], tmp_path: Path
) -> None:
    with opener() as store:
        store.save_job(make_job("kept"))
        store.record_step("kept", added=[act("a1")])
    directories = [tmp_path, tmp_path / "checkpoints"]
    for directory in directories:
        if directory.is_dir():
            directory.chmod(0o555)
    try:
        with pytest.raises(CheckpointError, match=r"not writable.*read_only=True"):
            opener()
        with opener(read_only=True) as store:
            assert ids(store.load("kept")["pending_activations"]) == ["a1"]
            with pytest.raises(CheckpointError, match="read-only"):
                store.save_job(make_job("new"))
    finally:
        for directory in directories:
            if directory.is_dir():
                directory.chmod(0o755)


# -- failures: JSON files ------------------------------------------------------------


def test_a_corrupt_file_names_itself_and_spares_the_others(tmp_path: Path) -> None:
    with open_json(tmp_path) as store:
        store.save_job(make_job("kept"))
        store.record_step("kept", added=[act("a1")])
        broken = store.directory / "broken.json"
        broken.write_bytes(b'{"schema_version": 1, "job": {')
        with pytest.raises(CheckpointError, match=r"broken\.json.*corrupt"):
            store.load("broken")
        with pytest.raises(CheckpointError, match=r"broken\.json.*move it away"):
            store.list_jobs()
        assert ids(store.load("kept")["pending_activations"]) == ["a1"]
        store.delete("broken")
        assert [s["job_id"] for s in store.list_jobs()] == ["kept"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"schema_version": 2, "job": {}, "pending_activations": []}, "version 2"),
        ({"job": "x"}, "not a checkpoint file"),
        ([1, 2], "not a checkpoint file"),
    ],
)
def test_a_foreign_json_file_is_refused(
    tmp_path: Path, content: Any, match: str
) -> None:
    with open_json(tmp_path) as store:
        (store.directory / "odd.json").write_bytes(orjson.dumps(content))
        with pytest.raises(CheckpointError, match=match):
            store.load("odd")


def test_a_failed_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_json(tmp_path) as store:
        store.save_job(make_job("kept"))
        store.record_step("kept", added=[act("a1")])
        before = sorted(store.directory.iterdir())

        def refuse(*args: Any) -> None:
            raise PermissionError(13, "Permission denied", str(args[1]))

        monkeypatch.setattr(os, "replace", refuse)
        with pytest.raises(CheckpointError, match="Permission denied"):
            # A step with the document rewrites the file (others append).
            store.record_step(
                "kept", finished=["a1"], added=[act("a2")], job=make_job("kept")
            )
        monkeypatch.undo()
        assert sorted(store.directory.iterdir()) == before  # no temporary left
        assert ids(store.load("kept")["pending_activations"]) == ["a1"]


def test_leftover_temporary_files_are_ignored(tmp_path: Path) -> None:
    with open_json(tmp_path) as store:
        store.save_job(make_job("kept"))
        (store.directory / ".kept.abc123.tmp").write_bytes(b"{half")
        (store.directory / "notes.txt").write_text("not a checkpoint")
        assert [s["job_id"] for s in store.list_jobs()] == ["kept"]


@pytest.mark.parametrize("job_id", ["../escape", "a/b", ".hidden", "", "x" * 201])
def test_a_job_id_that_cannot_name_a_file_is_refused(
    tmp_path: Path, job_id: str
) -> None:
    with open_json(tmp_path) as store:
        with pytest.raises(CheckpointError, match="cannot name a file"):
            store.save_job(make_job(job_id))
        with pytest.raises(CheckpointError, match="cannot name a file"):
            store.load(job_id)
        assert list(tmp_path.iterdir()) == [store.directory]


def test_json_store_with_fsync(tmp_path: Path) -> None:
    with open_json(tmp_path, fsync=True) as store:
        store.save_job(make_job("j"))
        store.record_step("j", added=[act("a")])
        assert ids(store.pending("j")) == ["a"]
