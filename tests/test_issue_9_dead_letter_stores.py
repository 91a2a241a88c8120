"""Issue 9, item 5: both checkpoint stores keep dead letters (DeadLetterStore)."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import TYPE_CHECKING, Any

import pytest

from routilux import CheckpointError, DeadLetter, RoutiluxError, SerializationError
from routilux.persistence import (
    CheckpointStore,
    DeadLetterStore,
    JsonFileCheckpointStore,
    SQLiteCheckpointStore,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

KINDS = ["sqlite", "jsonfile"]


def open_store(kind: str, tmp_path: Path, **options: Any) -> Any:
    if kind == "sqlite":
        return SQLiteCheckpointStore(tmp_path / "store.db", **options)
    return JsonFileCheckpointStore(tmp_path / "store", **options)


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    opened = open_store(str(request.param), tmp_path)
    with opened:
        yield opened


def letter(
    letter_id: str,
    job_id: str = "job-1",
    flow_id: str = "flow",
    failed_at: float = 1.0,
    **changes: Any,
) -> dict[str, Any]:
    data = {
        "letter_id": letter_id,
        "flow_id": flow_id,
        "job_id": job_id,
        "routine_id": "worker",
        "slot": "input",
        "payload": {"n": letter_id},
        "error_type": "ValueError",
        "error": f"{letter_id} is bad",
        "causes": ["KeyError: 'x'"],
        "attempts": 3,
        "failed_at": failed_at,
        "replayed_by": None,
    }
    data.update(changes)
    return data


def ids(letters: list[dict[str, Any]]) -> list[str]:
    return [item["letter_id"] for item in letters]


def test_issue_9_both_stores_are_dead_letter_stores(store: Any) -> None:
    assert isinstance(store, DeadLetterStore)
    assert isinstance(store, CheckpointStore)
    assert store.dead_letters() == []


def test_issue_9_a_store_keeps_and_filters_letters(store: Any) -> None:
    store.add_dead_letter(letter("a", failed_at=1.0))
    store.add_dead_letter(letter("b", job_id="job-2", failed_at=2.0))
    store.add_dead_letter(letter("c", flow_id="other", failed_at=3.0))
    store.add_dead_letter(letter("d", failed_at=4.0))
    assert ids(store.dead_letters()) == ["a", "b", "c", "d"]
    assert ids(store.dead_letters(flow_id="flow")) == ["a", "b", "d"]
    assert ids(store.dead_letters(job_id="job-1")) == ["a", "c", "d"]
    assert ids(store.dead_letters("flow", "job-1")) == ["a", "d"]
    assert ids(store.dead_letters("flow", "job-2")) == ["b"]
    kept = store.dead_letters(job_id="job-2")[0]
    assert kept == letter("b", job_id="job-2", failed_at=2.0)
    assert DeadLetter.from_dict(kept).payload == {"n": "b"}


def test_issue_9_marking_replayed_hides_letters_unless_asked(store: Any) -> None:
    for name in "abc":
        store.add_dead_letter(letter(name))
    store.mark_dead_letters_replayed(["a", "c"], "replay-job")
    assert ids(store.dead_letters()) == ["b"]
    everything = store.dead_letters(include_replayed=True)
    assert [(x["letter_id"], x["replayed_by"]) for x in everything] == [
        ("a", "replay-job"),
        ("b", None),
        ("c", "replay-job"),
    ]


def test_issue_9_marking_is_all_or_nothing(store: Any) -> None:
    for name in "ab":
        store.add_dead_letter(letter(name))
    store.mark_dead_letters_replayed(["a"], "first")
    with pytest.raises(
        CheckpointError, match="'a' was already replayed by job 'first'"
    ):
        store.mark_dead_letters_replayed(["b", "a"], "second")
    with pytest.raises(CheckpointError, match="no dead letter 'zzz'"):
        store.mark_dead_letters_replayed(["b", "zzz"], "second")
    with pytest.raises(CheckpointError, match="given twice"):
        store.mark_dead_letters_replayed(["b", "b"], "second")
    assert ids(store.dead_letters()) == ["b"]


def test_issue_9_a_letter_kept_again_keeps_its_place_and_mark(store: Any) -> None:
    store.add_dead_letter(letter("a", failed_at=1.0))
    store.add_dead_letter(letter("b", failed_at=2.0))
    store.mark_dead_letters_replayed(["a"], "replay-job")
    store.add_dead_letter(letter("a", failed_at=1.0, attempts=5))
    everything = store.dead_letters(include_replayed=True)
    assert ids(everything) == ["a", "b"]
    assert everything[0]["attempts"] == 5
    assert everything[0]["replayed_by"] == "replay-job"


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ([], "must be a dict"),
        ({"flow_id": "f", "job_id": "j"}, "'letter_id'"),
        ({**letter("x"), "job_id": 3}, "'job_id'"),
        ({**letter("x"), "replayed_by": 3}, "replayed_by"),
        ({**letter("x"), "payload": {"f": object()}}, "payload.f: object is not"),
    ],
)
def test_issue_9_a_bad_letter_is_refused_and_nothing_written(
    store: Any, bad: Any, words: str
) -> None:
    # A value no encoding holds: SerializationError, as JobState.save says it.
    error = SerializationError if "object is not" in words else CheckpointError
    with pytest.raises(error, match=words) as info:
        store.add_dead_letter(bad)
    assert isinstance(info.value, RoutiluxError)
    assert store.dead_letters(include_replayed=True) == []


@pytest.mark.parametrize("kind", KINDS)
def test_issue_9_letters_survive_reopening_the_store(kind: str, tmp_path: Path) -> None:
    with open_store(kind, tmp_path) as store:
        store.add_dead_letter(letter("a"))
        store.add_dead_letter(letter("b"))
        store.mark_dead_letters_replayed(["b"], "replay-job")
    with open_store(kind, tmp_path, read_only=True) as store:
        assert ids(store.dead_letters()) == ["a"]
        assert ids(store.dead_letters(include_replayed=True)) == ["a", "b"]
        with pytest.raises(CheckpointError, match="read-only"):
            store.add_dead_letter(letter("c"))
        with pytest.raises(CheckpointError, match="read-only"):
            store.mark_dead_letters_replayed(["a"], "again")


@pytest.mark.parametrize("kind", KINDS)
def test_issue_9_a_closed_store_refuses_letters(kind: str, tmp_path: Path) -> None:
    store = open_store(kind, tmp_path)
    store.close()
    with pytest.raises(CheckpointError, match="closed"):
        store.add_dead_letter(letter("a"))
    with pytest.raises(CheckpointError, match="closed"):
        store.dead_letters()


def test_issue_9_letters_and_jobs_do_not_mix_in_the_json_store(tmp_path: Path) -> None:
    with JsonFileCheckpointStore(tmp_path) as store:
        store.add_dead_letter(letter("a", job_id="dead_letters"))
        assert store.list_jobs() == []
        assert (tmp_path / "dead_letters" / "dead_letters.json").is_file()
        with pytest.raises(CheckpointError, match="cannot name a file"):
            store.add_dead_letter(letter("b", job_id="../escape"))


def test_issue_9_a_corrupt_letter_file_is_named(tmp_path: Path) -> None:
    with JsonFileCheckpointStore(tmp_path) as store:
        store.add_dead_letter(letter("a"))
        damaged = tmp_path / "dead_letters" / "job-1.json"
        damaged.write_text('{"schema_version": 1, "dead_letters": "no"}')
        with pytest.raises(CheckpointError, match=r"job-1\.json.*delete it"):
            store.dead_letters()
        damaged.write_text("{not json")
        with pytest.raises(CheckpointError, match=r"job-1\.json.*corrupt"):
            store.dead_letters()


def test_issue_9_an_older_sqlite_file_gets_the_letters_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    # The version-1 layout, before dead letters.
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute(
            "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, "
            "status TEXT NOT NULL, updated_at TEXT NOT NULL, updated_ts REAL NOT "
            "NULL, document TEXT NOT NULL)"
        )
        raw.execute(
            "CREATE TABLE pending (seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL, "
            "activation_id TEXT NOT NULL, routine_id TEXT NOT NULL, slot TEXT NOT "
            "NULL, payload TEXT NOT NULL, UNIQUE (job_id, activation_id))"
        )
        raw.execute("PRAGMA user_version = 1")
    raw.close()
    with SQLiteCheckpointStore(path, read_only=True) as store:
        assert store.dead_letters() == []  # no table, no letters
    with SQLiteCheckpointStore(path) as store:
        store.add_dead_letter(letter("a"))
        assert ids(store.dead_letters()) == ["a"]


def test_issue_9_dead_letter_documents_round_trip() -> None:
    data = letter("a", replayed_by="again")
    made = DeadLetter.from_dict(data)
    assert made.replayed and made.replayed_by == "again"
    assert made.causes == ("KeyError: 'x'",)
    assert made.to_dict() == data
    assert hash(made) == hash(DeadLetter.from_dict(data))


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("x", "must be an object"),
        ({**letter("a"), "slot": None}, "slot must be a string"),
        ({**letter("a"), "payload": []}, "payload must be an object"),
        ({**letter("a"), "causes": [1]}, "causes must be a list of strings"),
        ({**letter("a"), "attempts": 0}, "attempts must be an int >= 1"),
        ({**letter("a"), "attempts": True}, "attempts must be an int >= 1"),
        ({**letter("a"), "failed_at": "now"}, "failed_at must be a number"),
        ({**letter("a"), "replayed_by": 1}, "replayed_by must be null or a string"),
        ({k: v for k, v in letter("a").items() if k != "error"}, "got nothing"),
    ],
)
def test_issue_9_a_bad_dead_letter_document_is_refused(bad: Any, words: str) -> None:
    with pytest.raises(SerializationError, match=words):
        DeadLetter.from_dict(bad)
