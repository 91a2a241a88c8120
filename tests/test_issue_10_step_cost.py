"""Issue 10, item 3: the cheaper checkpoint paths write exactly what the old ones did.

Each fast path is checked against the path it shortcuts: history timestamps
against ``datetime``; a history batch written as it is against its tagged copy,
for every supported type nested in it (and the types that must not take the
shortcut); a job's end, which folds the logged history into the document in
SQLite, against the whole document ``serialize()`` writes; a step whose finished
row becomes its child in one statement against a delete and an insert; a log of
batches against entries overlapping, and against rows of one entry each.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from routilux import CheckpointError, Flow, JobState, JobStatus
from routilux.job_documents import FRAME, history_json, utc_stamp
from routilux.merge import AppendView
from routilux.persistence import SQLiteCheckpointStore
from routilux.runtime import checkpoint
from routilux.runtime.checkpoint_documents import encoded_history
from routilux.serialization import encode_value, encodes_as_itself

from .issue_8_routines import GUARD, Fn, Sink
from .payload_values import Colour, Level, Money, Point, payloads, same

if TYPE_CHECKING:
    from pathlib import Path

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- timestamps ---------------------------------------------------------------------


def _reference_stamp(ts: float) -> str:
    stamp = datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()
    return stamp.replace("+00:00", "Z")


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=-5e10, max_value=2.5e11),
        # Fractions next to a rounding boundary of the microseconds.
        st.builds(
            lambda second, fraction, ulps: _nudged(second + fraction, ulps),
            st.integers(min_value=0, max_value=2**33),
            st.sampled_from([0.0, 5e-7, 1.5e-6, 0.9999995, 0.999999, 0.5]),
            st.integers(min_value=-3, max_value=3),
        ),
    )
)
@example(0.0)
@example(-0.5)
@example(1_764_558_000.9999996)
@example(253_402_300_799.9999995)
def test_a_history_timestamp_reads_as_datetime_writes_it(ts: float) -> None:
    try:
        expected = _reference_stamp(ts)
    except (OverflowError, OSError, ValueError) as exc:
        with pytest.raises(type(exc)):
            utc_stamp(ts)
        return
    assert utc_stamp(ts) == expected
    assert utc_stamp(ts) == expected  # the second's text comes from the cache now


def _nudged(value: float, ulps: int) -> float:
    step = math.inf if ulps > 0 else -math.inf
    for _ in range(abs(ulps)):
        value = math.nextafter(value, step)
    return value


def test_timestamps_of_one_second_and_the_next_alternate_correctly() -> None:
    base = 1_700_000_000.0
    stamps = [base + 0.25, base + 1.5, base + 0.75, base + 1.0, base - 0.5]
    assert [utc_stamp(ts) for ts in stamps] == [_reference_stamp(ts) for ts in stamps]


# -- a history batch written as itself ----------------------------------------------


def _entries(data: list[Any], ts: float = 1_700_000_000.123456) -> list[Any]:
    return [("r", "out", value, ts + i) for i, value in enumerate(data)]


def _old_encoded(entries: list[Any]) -> Any:
    """What the log was given before the fast path: always the tagged copy."""
    rows = [history_json(entry) for entry in entries]
    return encode_value(rows, "execution_history", frame=FRAME - 1)


@EXAMPLES
@given(st.lists(payloads, min_size=1, max_size=4))
def test_a_history_batch_is_logged_as_its_tagged_encoding(data: list[Any]) -> None:
    entries = _entries(data)
    logged = encoded_history("job", entries, 0)
    assert orjson.dumps(logged) == orjson.dumps(_old_encoded(entries))


@pytest.mark.parametrize(
    "value",
    [
        Decimal("10.05"),
        datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        datetime(2025, 1, 2).date(),
        datetime(2025, 1, 2, 3, 4).time(),
        b"\x00bytes",
        {1, 2},
        (1, "a"),
        Colour.RED,
        Level.HIGH,
        Money(amount=Decimal("1.5"), tags=("a",)),
        Point(1, 2.0),
        2**70,
        -(2**64),
        math.nan,
        math.inf,
        {"$like_a_tag": 1},
        {3: "int key"},
        AppendView([1, 2], 2),
        "lone \ud800 surrogate",
    ],
    ids=repr,
)
def test_a_value_that_is_not_its_own_encoding_takes_the_tagged_path(
    value: Any,
) -> None:
    rows = [history_json(entry) for entry in _entries([{"x": [value]}])]
    assert not encodes_as_itself(rows, frame=FRAME - 1)
    if isinstance(value, str):  # no encoding holds a lone surrogate
        return
    entries = _entries([{"x": [value]}])
    logged = encoded_history("job", entries, 0)
    assert orjson.dumps(logged) == orjson.dumps(_old_encoded(entries))


def test_plain_data_is_its_own_encoding() -> None:
    plain = {"a": [1, 2.5, "x", None, True, {"b": []}], "c": {"keys": 2, "$two": 1}}
    rows = [history_json(entry) for entry in _entries([plain])]
    assert encodes_as_itself(rows, frame=FRAME - 1)
    assert encoded_history("job", _entries([plain]), 0) == rows


def _bare(job_id: str) -> dict[str, Any]:
    job = JobState("flow", job_id=job_id)
    return job.serialize()


@EXAMPLES
@given(st.lists(payloads, min_size=1, max_size=3), st.lists(payloads, max_size=3))
def test_every_type_round_trips_through_the_log_and_its_compaction(
    logged: list[Any], last: list[Any]
) -> None:
    with SQLiteCheckpointStore(":memory:") as store:
        store.save_job(_bare("j"))
        entries = _entries(logged + last)
        store.log_step("j", history=encoded_history("j", entries[: len(logged)], 0))
        # Before compaction the log is read back; after, the document.
        for compact in (False, True):
            if compact:
                store.log_step(
                    "j",
                    history=encoded_history("j", entries[len(logged) :], 0),
                    first=len(logged),
                    job=_bare("j"),
                    compact=True,
                )
            stored = store.load("j")
            rebuilt = JobState.deserialize(
                {k: v for k, v in stored.items() if k != "pending_activations"}
            )
            expected = logged if not compact else logged + last
            assert len(rebuilt.execution_history) == len(expected)
            for record, value in zip(rebuilt.execution_history, expected, strict=True):
                assert same(value, record.data)


# -- a job's end: the log folded into the document -------------------------------------


def _emit_each(routine: Fn, params: dict[str, Any]) -> None:
    for value in params["values"]:
        routine.emit("out", value=value)


def _flow(store: Any, strategy: str = "sequential") -> Flow:
    flow = Flow("folded", execution_strategy=strategy, checkpoint_store=store)
    flow.add_routine(Fn(_emit_each), "src")
    flow.add_routine(Sink(), "sink")
    flow.connect("src", "out", "sink", "input")
    return flow


_VALUES = [
    1,
    "two",
    Decimal("3.30"),
    (4, "four"),
    {5, 6},
    Colour.RED,
    Money(amount=Decimal("7"), currency="EUR"),
    Point(8, 9.0, label=Colour.PAIR),
    2**80,
    {"$esc": "ten"},
    math.inf,
]


def _stored(path: Path, job_id: str) -> tuple[dict[str, Any], int]:
    with SQLiteCheckpointStore(path) as store:
        loaded = store.load(job_id)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM history_log WHERE job_id = ?", (job_id,)
        ).fetchone()[0]
        (raw,) = conn.execute(
            "SELECT document FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
    assert json.loads(raw) == {
        k: v for k, v in loaded.items() if k != "pending_activations"
    }
    return loaded, int(rows)


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
@pytest.mark.parametrize("interval", [0.0, 3600.0])
def test_the_compacted_document_is_the_one_serialize_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str, interval: float
) -> None:
    # interval 0: every step logs, the end folds a long log; 3600: nothing is
    # logged while the job runs, the end adds everything.
    monkeypatch.setattr(checkpoint, "SAVE_INTERVAL", interval)
    path = tmp_path / "c.sqlite"
    with SQLiteCheckpointStore(path) as store:
        flow = _flow(store, strategy)
        job = flow.execute("src", entry_params={"values": _VALUES * 5})
        assert job.wait(GUARD)
        flow.shutdown()
    assert job.status is JobStatus.COMPLETED
    loaded, log_rows = _stored(path, job.job_id)
    assert log_rows == 0
    assert loaded.pop("pending_activations") == []
    assert loaded == job.serialize()
    rebuilt = JobState.deserialize(loaded)
    data = [record.data for record in rebuilt.execution_history]
    mine = [record.data for record in job.execution_history]
    assert len(data) == len(mine) > len(_VALUES) * 5
    assert all(same(a, b) for a, b in zip(mine, data, strict=True))


class OldLoggingStore(SQLiteCheckpointStore):
    """A logging store written before ``log_step`` had ``compact``."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.whole_documents = 0

    def log_step(  # type: ignore[override]
        self,
        job_id: str,
        *,
        finished: Any = (),
        added: Any = (),
        history: Any = (),
        first: int = 0,
        job: dict[str, Any] | None = None,
        restart: bool = False,
    ) -> None:
        super().log_step(
            job_id,
            finished=finished,
            added=added,
            history=history,
            first=first,
            job=job,
            restart=restart,
        )

    def record_step(self, job_id: str, **kwargs: Any) -> None:
        if kwargs.get("job") is not None:
            self.whole_documents += 1
        super().record_step(job_id, **kwargs)


def test_a_logging_store_without_compact_is_given_the_whole_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "SAVE_INTERVAL", 0.0)
    path = tmp_path / "c.sqlite"
    store = OldLoggingStore(path)
    try:
        flow = _flow(store)
        job = flow.execute("src", entry_params={"values": _VALUES})
        assert job.wait(GUARD)
        flow.shutdown()
    finally:
        store.close()
    assert job.status is JobStatus.COMPLETED
    assert store.whole_documents == 1  # the end, as before compact existed
    loaded, log_rows = _stored(path, job.job_id)
    assert log_rows == 0
    loaded.pop("pending_activations")
    assert loaded == job.serialize()


def test_compacting_needs_the_document_and_writes_nothing_without_it() -> None:
    with SQLiteCheckpointStore(":memory:") as store:
        store.save_job(_bare("j"))
        store.log_step("j", history=[history_json(("r", "e", {}, 1.0))])
        with pytest.raises(CheckpointError, match="compacting the log of job 'j'"):
            store.log_step("j", compact=True)
        assert len(store.load("j")["execution_history"]) == 1


# -- the history log: batches, overlaps and rows of one entry ------------------------


def _entry(n: int) -> dict[str, Any]:
    return history_json(("r", "e", {"n": n}, 1_700_000_000.0 + n))


def _numbers(store: SQLiteCheckpointStore, job_id: str = "j") -> list[int]:
    return [e["data"]["n"] for e in store.load(job_id)["execution_history"]]


def test_entries_logged_again_replace_those_of_the_same_number() -> None:
    with SQLiteCheckpointStore(":memory:") as store:
        store.save_job(_bare("j"))
        store.log_step("j", history=[_entry(0), _entry(1), _entry(2)])
        store.log_step("j", history=[_entry(3)], first=3)
        store.log_step("j", history=[_entry(11), _entry(22)], first=1)
        assert _numbers(store) == [0, 11, 22, 3]
        store.log_step("j", history=[_entry(4)], first=4)
        assert _numbers(store) == [0, 11, 22, 3, 4]
        store.log_step("j", job=_bare("j"), compact=True, first=5)
        assert _numbers(store) == [0, 11, 22, 3, 4]


def test_a_log_of_one_entry_per_row_reads_and_compacts(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with SQLiteCheckpointStore(path) as store:
        store.save_job(_bare("j"))
    with contextlib.closing(sqlite3.connect(path)) as conn:  # as routilux wrote it
        conn.executemany(
            "INSERT INTO history_log (job_id, ordinal, entry) VALUES (?, ?, ?)",
            [("j", n, json.dumps(_entry(n))) for n in range(3)],
        )
        conn.commit()
    with SQLiteCheckpointStore(path) as store:
        assert _numbers(store) == [0, 1, 2]
        store.log_step("j", history=[_entry(3), _entry(4)], first=3)
        assert _numbers(store) == [0, 1, 2, 3, 4]
        store.log_step("j", history=[_entry(5)], first=5, job=_bare("j"), compact=True)
        assert _numbers(store) == [0, 1, 2, 3, 4, 5]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM history_log").fetchone()[0] == 0


# -- a finished row passed on to its child ------------------------------------


def _row(key: str, value: Any = 0) -> dict[str, Any]:
    return {"id": key, "routine_id": "r", "slot": "input", "payload": {"v": value}}


def _pending(store: SQLiteCheckpointStore, job_id: str = "j") -> list[tuple[str, Any]]:
    return [(row["id"], row["payload"]["v"]) for row in store.pending(job_id)]


def test_a_one_row_step_leaves_the_table_as_a_transaction_would() -> None:
    with SQLiteCheckpointStore(":memory:") as store:
        store.record_step("j", added=[_row(f"a{i}") for i in range(4)], job=_bare("j"))
        store.record_step("j", finished=["a0"], added=[_row("a4", 4)])  # passed on
        assert _pending(store) == [("a1", 0), ("a2", 0), ("a3", 0), ("a4", 4)]
        store.record_step("j", finished=["a3"], added=[_row("a1", 1)])  # id pending
        assert _pending(store) == [("a1", 1), ("a2", 0), ("a4", 4)]
        store.record_step("j", finished=["a2"])  # a delete alone
        assert _pending(store) == [("a1", 1), ("a4", 4)]
        store.record_step("j", finished=["gone"], added=[_row("a5", 5)])
        store.record_step("j", finished=["gone"])
        assert _pending(store) == [("a1", 1), ("a4", 4), ("a5", 5)]
        store.record_step("j", finished=["a4"], added=[_row("a6", (6, Decimal(6)))])
        assert store.pending("j")[-1]["payload"] == {"v": (6, Decimal(6))}


def test_a_one_row_step_of_an_unknown_job_fails_and_writes_nothing() -> None:
    with SQLiteCheckpointStore(":memory:") as store:
        store.record_step("j", added=[_row("a0")], job=_bare("j"))
        for step in (
            {"finished": ["a0"]},
            {"finished": ["a0"], "added": [_row("a1")]},
        ):
            with pytest.raises(CheckpointError, match="unknown job 'nope'"):
                store.record_step("nope", **step)
        assert store.pending("nope") == []
        assert _pending(store) == [("a0", 0)]


def test_a_one_row_step_on_a_closed_or_read_only_store_fails(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    store = SQLiteCheckpointStore(path)
    store.record_step("j", added=[_row("a0")], job=_bare("j"))
    store.close()
    with pytest.raises(CheckpointError, match="store is closed"):
        store.record_step("j", finished=["a0"])
    with SQLiteCheckpointStore(path, read_only=True) as reader:
        with pytest.raises(CheckpointError, match="read-only"):
            reader.record_step("j", finished=["a0"], added=[_row("a1")])
        assert _pending(reader) == [("a0", 0)]


def test_one_row_steps_from_many_threads_lose_nothing(tmp_path: Path) -> None:
    workers, each = 8, 150
    with SQLiteCheckpointStore(tmp_path / "c.sqlite") as store:
        first = [_row(f"w{w}-0") for w in range(workers)]
        store.record_step("j", added=first, job=_bare("j"))
        errors: list[BaseException] = []

        def chain(w: int) -> None:
            try:
                for n in range(1, each):
                    store.record_step(
                        "j", finished=[f"w{w}-{n - 1}"], added=[_row(f"w{w}-{n}", n)]
                    )
            except BaseException as exc:  # asserted below
                errors.append(exc)

        threads = [threading.Thread(target=chain, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(GUARD)
        assert errors == []
        assert sorted(_pending(store)) == sorted(
            (f"w{w}-{each - 1}", each - 1) for w in range(workers)
        )
