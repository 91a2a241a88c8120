"""Issue 10: the JSON-file store appends steps to a journal instead of rewriting.

Each step rewrote the job's whole file, pending list included, so a job's cost
grew with its pending work: one activation emitting 4,000 items took 32 s on
the JSON store (0.23 s on SQLite). Steps are now lines of
``<job_id>.steps.jsonl``; the file is rewritten when the document changes and
every ``COMPACT_AFTER`` steps (see ``routilux.persistence.json_journal``).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import pytest

from routilux import CheckpointError, Flow, JobStatus, Routine
from routilux.persistence import JsonFileCheckpointStore, Retention, json_journal
from routilux.persistence import jsonfile as jsonfile_module

if TYPE_CHECKING:
    from pathlib import Path


def job(job_id: str, status: str = "running", when: str = "01") -> dict[str, Any]:
    return {
        "job_id": job_id,
        "flow_id": "flow",
        "status": status,
        "updated_at": f"2024-01-{when}T00:00:00Z",
    }


def act(activation_id: str, value: Any = None) -> dict[str, Any]:
    return {
        "id": activation_id,
        "routine_id": "r",
        "slot": "in",
        "payload": {"value": activation_id if value is None else value},
    }


def pending_ids(store: JsonFileCheckpointStore, job_id: str) -> list[str]:
    return [item["id"] for item in store.pending(job_id)]


@pytest.fixture
def rewrites(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The job files the store rewrote, in order."""
    written: list[str] = []
    real = jsonfile_module.replace_file

    def counted(directory: Path, path: Path, data: bytes, fsync: bool) -> None:
        written.append(path.name)
        real(directory, path, data, fsync)

    monkeypatch.setattr(jsonfile_module, "replace_file", counted)
    return written


def test_steps_append_and_rewrite_the_file_once_per_compaction(
    tmp_path: Path, rewrites: list[str]
) -> None:
    with JsonFileCheckpointStore(tmp_path) as store:
        store.record_step("j", added=[act("a0")], job=job("j"))
        for n in range(1, 2500):
            store.record_step("j", finished=[f"a{n - 1}"], added=[act(f"a{n}")])
        assert pending_ids(store, "j") == ["a2499"]
    # The start, then one compaction per COMPACT_AFTER steps: not one per step.
    assert len(rewrites) == 1 + 2499 // json_journal.COMPACT_AFTER


def test_a_job_with_many_pending_items_costs_one_append_per_step(
    tmp_path: Path, rewrites: list[str]
) -> None:
    class Source(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.go)
            self.define_event("out", ["n"])

        def go(self) -> None:
            for n in range(3000):
                self.emit("out", n=n)

    class Sink(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[int] = []
            self.define_slot("input", handler=self.take)

        def take(self, n: int) -> None:
            self.seen.append(n)

    store = JsonFileCheckpointStore(tmp_path)
    flow = Flow(flow_id="many", execution_strategy="sequential", checkpoint_store=store)
    sink = Sink()
    flow.add_routine(Source(), "source")
    flow.add_routine(sink, "sink")
    flow.connect("source", "out", "sink", "input")
    try:
        result = flow.execute("source", {})
        assert result.status == JobStatus.COMPLETED
        assert sorted(sink.seen) == list(range(3000))
        assert store.pending(result.job_id) == []
        stored = store.load(result.job_id)
        assert stored["status"] == "completed"
    finally:
        flow.shutdown()
        store.close()
    # 3,001 steps, and a few documents a second: far fewer rewrites than steps.
    assert len(rewrites) < 3001 // json_journal.COMPACT_AFTER + 20
    assert not list(tmp_path.glob("*" + json_journal.JOURNAL_SUFFIX))


def test_a_torn_last_line_is_no_step_and_the_next_append_cuts_it(
    tmp_path: Path,
) -> None:
    with JsonFileCheckpointStore(tmp_path) as store:
        store.record_step("j", added=[act("a1")], job=job("j"))
        store.record_step("j", added=[act("a2")])
    journal = tmp_path / ("j" + json_journal.JOURNAL_SUFFIX)
    whole = journal.read_bytes()
    with open(journal, "ab") as file:  # a process killed in the middle of a step
        file.write(b'{"finished": ["a1"], "added": [{"id": "a')
    with JsonFileCheckpointStore(tmp_path) as store:
        assert pending_ids(store, "j") == ["a1", "a2"]
        store.record_step("j", finished=["a2"], added=[act("a3")])
        assert pending_ids(store, "j") == ["a1", "a3"]
    assert journal.read_bytes().startswith(whole)
    assert journal.read_bytes().endswith(b"\n")


def test_killed_between_a_compaction_and_the_journal_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(json_journal, "COMPACT_AFTER", 4)
    kept = []

    def killed(path: Path) -> None:
        kept.append(path)  # the process died before the journal went

    with JsonFileCheckpointStore(tmp_path) as store:
        store.record_step("j", added=[act("a0")], job=job("j"))
        for n in range(1, 4):  # three steps in the journal
            store.record_step("j", finished=[f"a{n - 1}"], added=[act(f"a{n}")])
        monkeypatch.setattr(jsonfile_module.json_journal, "remove_journal", killed)
        store.record_step("j", finished=["a3"], added=[act("a4")])  # compacts
        assert kept
    monkeypatch.undo()
    monkeypatch.setattr(json_journal, "COMPACT_AFTER", 4)
    with JsonFileCheckpointStore(tmp_path) as store:
        # The file holds the journal's steps: replayed again, a3 would be back.
        assert pending_ids(store, "j") == ["a4"]
        store.record_step("j", finished=["a4"], added=[act("a5")])
        assert pending_ids(store, "j") == ["a5"]
        store.record_step("j", added=[act("a6")])
        store.record_step("j", finished=["a5"])
        assert pending_ids(store, "j") == ["a6"]


def test_a_bad_line_in_the_middle_is_named(tmp_path: Path) -> None:
    with JsonFileCheckpointStore(tmp_path) as store:
        store.record_step("j", added=[act("a1")], job=job("j"))
        store.record_step("j", added=[act("a2")])
        store.record_step("j", added=[act("a3")])
    journal = tmp_path / ("j" + json_journal.JOURNAL_SUFFIX)
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[1] = b'{"finished": 3}\n'
    journal.write_bytes(b"".join(lines))
    with JsonFileCheckpointStore(tmp_path) as store:
        with pytest.raises(CheckpointError, match=r"j\.steps\.jsonl: line 2"):
            store.pending("j")
        lines[1] = b"not json\n"
        journal.write_bytes(b"".join(lines))
        with pytest.raises(CheckpointError, match="line 2 is not JSON"):
            store.load("j")


def test_delete_and_prune_take_the_journal_and_a_new_job_starts_clean(
    tmp_path: Path,
) -> None:
    suffix = json_journal.JOURNAL_SUFFIX
    with JsonFileCheckpointStore(tmp_path) as store:
        store.record_step("gone", added=[act("a1")], job=job("gone"))
        store.record_step("gone", added=[act("a2")])
        store.delete("gone")
        assert not list(tmp_path.glob("*" + suffix))
        store.record_step("gone", added=[act("b1")], job=job("gone"))
        assert pending_ids(store, "gone") == ["b1"]  # nothing of the old one
        store.record_step("gone", added=[act("b2")])
        # A finished job whose journal survived a kill is pruned with it.
        (tmp_path / ("gone" + suffix)).write_bytes(
            b'{"journal": "x"}\n{"finished": [], "added": []}\n'
        )
        store.save_job(job("gone", status="completed"))
        (tmp_path / ("gone" + suffix)).write_bytes(b'{"journal": "y"}\n')
        assert store.prune(status="completed") == 1
        assert not list(tmp_path.glob("*" + suffix))
        store.record_step("gone", added=[act("c1")], job=job("gone"))
        assert pending_ids(store, "gone") == ["c1"]


def test_retention_prunes_the_journal_of_the_job_it_takes(tmp_path: Path) -> None:
    suffix = json_journal.JOURNAL_SUFFIX
    with JsonFileCheckpointStore(
        tmp_path, retention=Retention(keep_last=0, every=1)
    ) as store:
        store.record_step("r", added=[act("a1")], job=job("r"))
        store.record_step("r", added=[act("a2")])
        assert list(tmp_path.glob("*" + suffix))
        store.record_step("r", finished=["a1", "a2"], job=job("r", "completed"))
        assert store.list_jobs() == []
        assert not list(tmp_path.glob("*" + suffix))


@pytest.mark.parametrize("seed", range(6))
def test_random_steps_read_back_as_a_dict_applies_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    chance = random.Random(seed)
    monkeypatch.setattr(json_journal, "COMPACT_AFTER", chance.randint(2, 9))
    model: dict[str, dict[str, Any]] = {}
    made = 0
    with JsonFileCheckpointStore(tmp_path) as store:
        store.record_step("j", job=job("j"))
        for step in range(300):
            finished = chance.sample(
                sorted(model), k=min(len(model), chance.randint(0, 2))
            )
            added = []
            for _ in range(chance.randint(0, 3)):
                if model and chance.random() < 0.2:  # replaces one in place
                    added.append(act(chance.choice(sorted(model)), value=step))
                else:
                    made += 1
                    added.append(act(f"a{made}"))
            document = job("j") if chance.random() < 0.05 else None
            store.record_step("j", finished=finished, added=added, job=document)
            for activation_id in finished:
                model.pop(activation_id, None)
            for item in added:
                model[item["id"]] = item
            if chance.random() < 0.1:
                store.close()
                store = JsonFileCheckpointStore(tmp_path)  # a restart
            assert store.pending("j") == list(model.values())
        store.close()
