"""Issue 10: job leases in both stores (claim, takeover, heartbeat, listing)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest

import routilux
from routilux import CheckpointError, JobOwnedError, JobStateError
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore
from routilux.persistence.lease import Heartbeat, LeasingStore, Owner

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

AnyStore = SQLiteCheckpointStore | JsonFileCheckpointStore


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def job(job_id: str, status: str = "running") -> dict[str, Any]:
    return {
        "job_id": job_id,
        "flow_id": "flow",
        "status": status,
        "updated_at": "2024-01-01T00:00:00Z",
    }


def act(activation_id: str) -> dict[str, Any]:
    return {"id": activation_id, "routine_id": "r", "slot": "in", "payload": {}}


OPENERS: dict[str, Callable[..., AnyStore]] = {
    "sqlite": lambda path, **kw: SQLiteCheckpointStore(path / "c.sqlite", **kw),
    "jsonfile": lambda path, **kw: JsonFileCheckpointStore(path / "c", **kw),
}


@pytest.fixture(params=sorted(OPENERS))
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., AnyStore]:
    return lambda **kw: OPENERS[request.param](tmp_path, **kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(opener: Callable[..., AnyStore], clock: Clock) -> Iterator[AnyStore]:
    opened = opener(lease_ttl=30.0, clock=clock)
    yield opened
    opened.close()


def other_host(token: str = "x") -> Owner:
    # Another host's process: judged by its beat alone.
    return Owner(4242, "elsewhere.example", token)


def test_issue_10_job_owned_error_is_exported_and_a_job_state_error() -> None:
    assert routilux.JobOwnedError is JobOwnedError
    assert issubclass(JobOwnedError, JobStateError)
    error = JobOwnedError("taken", job_id="j", pid=7, host="h")
    assert (error.job_id, error.pid, error.host, str(error)) == ("j", 7, "h", "taken")


def test_issue_10_both_stores_keep_leases(store: AnyStore) -> None:
    assert isinstance(store, LeasingStore)
    assert store.lease_ttl == 30.0


def test_issue_10_begin_job_is_one_write_of_job_entry_and_lease(
    store: AnyStore,
) -> None:
    owner = other_host()
    assert store.begin_job(job("j"), [act("a0")], owner) is True
    assert [a["id"] for a in store.pending("j")] == ["a0"]
    assert store.load("j")["status"] == "running"
    lease = store.lease_of("j")
    assert lease is not None
    assert (lease["pid"], lease["host"], lease["live"]) == (
        4242,
        "elsewhere.example",
        True,
    )
    # The id is taken now: nothing is written, whoever asks.
    assert store.begin_job(job("j", "completed"), [act("zz")], Owner.new()) is False
    assert [a["id"] for a in store.pending("j")] == ["a0"]
    assert store.load("j")["status"] == "running"
    store.release("j", owner)


def test_issue_10_a_live_lease_refuses_another_owner_naming_it(
    store: AnyStore, clock: Clock
) -> None:
    first, second = other_host("one"), Owner.new()
    store.begin_job(job("j"), [], first)
    with pytest.raises(JobOwnedError) as caught:
        store.claim("j", second)
    error = caught.value
    assert (error.job_id, error.pid, error.host) == ("j", 4242, "elsewhere.example")
    assert "process 4242 on host 'elsewhere.example'" in str(error)
    clock.now += 29.9  # not yet stale
    with pytest.raises(JobOwnedError):
        store.claim("j", second)
    store.claim("j", first)  # the owner itself may claim again (a beat)
    clock.now += 29.9
    with pytest.raises(JobOwnedError):
        store.claim("j", second)


def test_issue_10_a_lease_that_stopped_beating_is_taken_over(
    store: AnyStore, clock: Clock
) -> None:
    first, second = other_host("one"), Owner.new()
    store.begin_job(job("j"), [], first)
    clock.now += 30.0
    assert store.list_jobs(status="interrupted")[0]["job_id"] == "j"
    store.claim("j", second)
    lease = store.lease_of("j")
    assert lease is not None and (lease["pid"], lease["live"]) == (os.getpid(), True)
    with pytest.raises(JobOwnedError):  # the old owner lost it
        store.claim("j", first)
    store.release("j", first)  # not its lease any more: nothing happens
    assert store.lease_of("j") is not None
    store.release("j", second)
    assert store.lease_of("j") is None


def test_issue_10_a_lease_of_a_process_that_ended_on_this_host_is_not_live(
    store: AnyStore,
) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = Owner(int(ended.stdout), Owner.new().host, "dead")
    store.begin_job(job("j"), [], dead)
    lease = store.lease_of("j")
    assert lease is not None and lease["live"] is False
    store.claim("j", Owner.new())  # at once: no lease_ttl to wait for


def test_issue_10_list_jobs_tells_live_from_interrupted(
    store: AnyStore, clock: Clock
) -> None:
    live, gone = other_host("live"), other_host("gone")
    store.begin_job(job("gone"), [], gone)
    clock.now += 20
    store.begin_job(job("live"), [], live)
    store.save_job(job("done", "completed"))
    store.save_job(job("never-leased"))
    clock.now += 15  # "gone" last beat 35 s ago, "live" 15 s ago
    plain = store.list_jobs()
    assert all(
        set(row) == {"job_id", "flow_id", "status", "updated_at"} for row in plain
    )
    rows = {row["job_id"]: row for row in store.list_jobs(owners=True)}
    assert rows["live"]["live"] is True
    assert rows["live"]["owner"] == {"pid": 4242, "host": "elsewhere.example"}
    assert rows["gone"]["live"] is False
    assert rows["gone"]["owner"] == {"pid": 4242, "host": "elsewhere.example"}
    assert (rows["done"]["owner"], rows["done"]["live"]) == (None, False)
    interrupted = {row["job_id"] for row in store.list_jobs(status="interrupted")}
    assert interrupted == {"gone", "never-leased"}
    assert {r["job_id"] for r in store.list_jobs(status="running")} == {
        "gone",
        "live",
        "never-leased",
    }


def test_issue_10_delete_forgets_the_lease(store: AnyStore) -> None:
    store.begin_job(job("j"), [], other_host())
    store.delete("j")
    assert store.lease_of("j") is None
    assert store.begin_job(job("j"), [], Owner.new()) is True
    store.release("j", Owner.new())


def test_issue_10_racing_claims_in_threads_have_one_winner(
    opener: Callable[..., AnyStore],
) -> None:
    for _ in range(20):
        store = opener()
        try:
            store.save_job(job("race"))
            won, refused = claim_at_once(store, 8)
            assert (len(won), len(refused)) == (1, 7)
            store.release("race", won[0])
            store.delete("race")
        finally:
            store.close()


def claim_at_once(
    store: AnyStore, threads: int
) -> tuple[list[Owner], list[JobOwnedError]]:
    """``threads`` owners claim job ``race`` at one moment: who won, who not."""
    barrier = threading.Barrier(threads)
    won: list[Owner] = []
    refused: list[JobOwnedError] = []

    def claim(owner: Owner) -> None:
        barrier.wait()
        try:
            store.claim("race", owner)
            won.append(owner)
        except JobOwnedError as exc:
            refused.append(exc)

    started = [
        threading.Thread(target=claim, args=(Owner.new(),)) for _ in range(threads)
    ]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(30)
    return won, refused


def test_issue_10_a_store_beats_its_leases_and_stops_with_them(
    opener: Callable[..., AnyStore],
) -> None:
    clock = Clock()
    store = opener(lease_ttl=0.03, clock=clock)  # a beat every 10 ms
    try:
        owner = Owner.new()
        store.begin_job(job("j"), [], owner)
        clock.now += 100.0  # only a beat makes the lease live again
        beaten = threading.Event()
        for _ in range(3000):
            lease = store.lease_of("j")
            if lease is not None and lease["live"]:
                beaten.set()
                break
            beaten.wait(0.01)
        assert beaten.is_set()
        names = {t.name for t in threading.enumerate()}
        assert any(name.startswith("routilux-leases-") for name in names)
        store.release("j", owner)
    finally:
        store.close()
    assert not any(
        t.name.startswith("routilux-leases-") and t.is_alive()
        for t in threading.enumerate()
    )


def test_issue_10_heartbeat_thread_ends_with_the_last_lease() -> None:
    beats: list[int] = []
    done = threading.Event()

    def beat(held: list[tuple[str, Owner]]) -> None:
        beats.append(len(held))
        done.set()

    heartbeat = Heartbeat("routilux-leases-test", 0.001, beat)
    owner = Owner.new()
    heartbeat.hold("j", owner)
    assert done.wait(30)
    heartbeat.drop("j", owner)
    heartbeat.stop()
    assert heartbeat.held() == 0 and beats[0] == 1
    heartbeat.hold("k", owner)  # after stop: nothing starts
    assert heartbeat.held() == 0


def test_issue_10_a_failing_beat_is_kept_not_raised() -> None:
    done = threading.Event()

    def beat(held: list[tuple[str, Owner]]) -> None:
        done.set()
        raise CheckpointError("disk full")

    heartbeat = Heartbeat("routilux-leases-test", 0.001, beat)
    heartbeat.hold("j", Owner.new())
    assert done.wait(30)
    heartbeat.stop()
    assert isinstance(heartbeat.last_error, CheckpointError)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), True, "30", None])
def test_issue_10_bad_lease_ttl_is_refused_naming_it(
    opener: Callable[..., AnyStore], ttl: Any
) -> None:
    with pytest.raises(CheckpointError, match="lease_ttl"):
        opener(lease_ttl=ttl)


def test_issue_10_a_clock_must_be_callable(opener: Callable[..., AnyStore]) -> None:
    with pytest.raises(CheckpointError, match="clock"):
        opener(clock=12.0)


def test_issue_10_an_old_sqlite_file_gets_the_leases_table(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    with SQLiteCheckpointStore(path) as store:
        store.save_job(job("j"))
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE leases")
    conn.commit()
    conn.close()
    with SQLiteCheckpointStore(path, read_only=True) as reader:
        assert reader.lease_of("j") is None
        assert reader.list_jobs(owners=True)[0]["live"] is False
    with SQLiteCheckpointStore(path) as store:
        store.claim("j", other_host())
        assert store.lease_of("j") is not None


def test_issue_10_a_corrupt_lease_file_names_itself(tmp_path: Path) -> None:
    with JsonFileCheckpointStore(tmp_path / "c") as store:
        store.begin_job(job("j"), [], other_host())
        (tmp_path / "c" / ".leases" / "j.json").write_text("{not json")
        with pytest.raises(CheckpointError, match=r"j\.json.*corrupt"):
            store.claim("j", Owner.new())
        assert [row["job_id"] for row in store.list_jobs()] == ["j"]
