"""Issue 8: pool threads take the hot locks without convoying on the GIL.

:mod:`routilux._locks` waits for a held lock by yielding the GIL and trying
again, then blocks as ``acquire()`` does. These tests check that it excludes
(exact counts over many threads and repeats), that it falls back to blocking
after ``SPINS`` yields, that it hands the lock over once the holder lets go, and
that the runtime paths built on it lose and duplicate nothing.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from routilux import Flow, Routine, _locks
from routilux._locks import take, take_contended

from .chain_routines import chain

THREADS = 8
REPEATS = 5


def _count_under(lock: threading.Lock, per_thread: int) -> int:
    """THREADS threads each add ``per_thread`` to a counter under ``lock``."""
    counter = [0]
    start = threading.Barrier(THREADS)

    def work() -> None:
        start.wait()
        for _ in range(per_thread):
            if not lock.acquire(False):
                take_contended(lock)
            try:
                value = counter[0]
                # A switch here, between read and write, loses an update
                # unless the lock excludes.
                threading.Event().is_set()
                counter[0] = value + 1
            finally:
                lock.release()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not any(thread.is_alive() for thread in threads)
    return counter[0]


@pytest.mark.parametrize("repeat", range(REPEATS))
def test_issue_8_take_contended_excludes(repeat: int) -> None:
    assert _count_under(threading.Lock(), 3_000) == THREADS * 3_000


def test_issue_8_take_contended_blocks_after_its_spins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock = threading.Lock()
    yields: list[float] = []
    real_yield = _locks._yield

    def counting_yield(seconds: float) -> None:
        yields.append(seconds)
        real_yield(seconds)

    monkeypatch.setattr(_locks, "_yield", counting_yield)
    monkeypatch.setattr(_locks, "SPINS", 5)
    lock.acquire()
    got = threading.Event()

    def waiter() -> None:
        take(lock)
        got.set()
        lock.release()

    thread = threading.Thread(target=waiter)
    thread.start()
    # The waiter spins SPINS times, then blocks in acquire(): no busy wait.
    for _ in range(200):
        if len(yields) >= 5:
            break
        threading.Event().wait(0.01)
    assert not got.wait(0.2)
    assert yields == [0] * 5
    lock.release()
    assert got.wait(5)
    thread.join(5)
    assert not thread.is_alive()
    assert yields == [0] * 5


def test_issue_8_take_returns_at_once_on_a_free_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_locks, "_yield", pytest.fail)  # must not be called
    lock = threading.Lock()
    take(lock)
    assert lock.locked()
    lock.release()


def test_issue_8_take_contended_gets_a_lock_released_while_spinning() -> None:
    lock = threading.Lock()
    lock.acquire()
    holder_done = threading.Event()

    def holder() -> None:
        threading.Event().wait(0.005)
        lock.release()
        holder_done.set()

    thread = threading.Thread(target=holder)
    thread.start()
    take_contended(lock)  # returns once the holder lets go
    assert holder_done.wait(5)
    lock.release()
    thread.join(5)


class _Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.arrive)
        self.seen: list[int] = []
        self._seen_lock = threading.Lock()

    def arrive(self, value: int) -> None:
        with self._seen_lock:
            self.seen.append(value)


def _chain(workers: int, stages: int) -> tuple[Flow, _Sink]:
    sink = _Sink()
    flow = chain(sink, stages, execution_strategy="concurrent", max_workers=workers)
    return flow, sink


@pytest.mark.parametrize("workers", [2, 4, 8])
def test_issue_8_chain_on_many_workers_loses_and_duplicates_nothing(
    workers: int,
) -> None:
    for _ in range(REPEATS):
        flow, sink = _chain(workers, stages=5)
        with flow:
            job = flow.execute("source", {"count": 2_000})
            assert job.wait(30)
            assert str(job.status) == "completed"
        assert sorted(sink.seen) == list(range(2_000))
        stats: Any = flow.get_stats()
        assert stats["routines"]["sink"]["completed"] == 2_000
        assert stats["routines"]["sink"]["total_executions"] == 2_000


def test_issue_8_many_jobs_on_many_workers_all_complete() -> None:
    for _ in range(REPEATS):
        flow, sink = _chain(4, stages=1)
        with flow:
            jobs = [flow.execute("source", {"count": 3}) for _ in range(500)]
            assert flow.wait_for_completion(30)
        assert all(str(job.status) == "completed" for job in jobs)
        assert len(sink.seen) == 1_500
        assert sorted(set(sink.seen)) == [0, 1, 2]
