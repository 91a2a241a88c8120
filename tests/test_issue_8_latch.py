"""Issue 8: a job's done signal (Latch) behaves as threading.Event under threads."""

from __future__ import annotations

import threading

import pytest

from routilux.latch import Latch


def test_starts_closed_and_waits_time_out() -> None:
    latch = Latch()
    assert not latch.is_set()
    assert latch.wait(0) is False
    assert latch.wait(0.01) is False
    assert "closed" in repr(latch)


def test_set_is_idempotent_and_lets_every_wait_through() -> None:
    latch = Latch()
    latch.set()
    latch.set()
    assert latch.is_set()
    assert all(latch.wait(0) for _ in range(3))
    assert latch.wait(None) is True
    assert "open" in repr(latch)


def test_clear_closes_it_again() -> None:
    latch = Latch()
    latch.clear()  # clearing a closed latch does nothing
    latch.set()
    latch.clear()
    assert not latch.is_set()
    assert latch.wait(0.01) is False
    latch.set()
    assert latch.wait(0.01) is True


@pytest.mark.parametrize("repeat", range(20))
def test_every_waiter_wakes_once_set(repeat: int) -> None:
    latch = Latch()
    waiters, woken = 16, []
    ready = threading.Barrier(waiters + 1)
    lock = threading.Lock()

    def wait() -> None:
        ready.wait()
        if latch.wait(10):
            with lock:
                woken.append(1)

    threads = [threading.Thread(target=wait) for _ in range(waiters)]
    for thread in threads:
        thread.start()
    ready.wait()
    latch.set()
    for thread in threads:
        thread.join(10)
    assert len(woken) == waiters
    assert latch.is_set()


@pytest.mark.parametrize("repeat", range(10))
def test_racing_sets_and_waits_leave_it_open(repeat: int) -> None:
    latch = Latch()
    start = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def setter() -> None:
        start.wait()
        latch.set()

    def waiter() -> None:
        start.wait()
        outcome = latch.wait(10)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=setter) for _ in range(4)]
    threads += [threading.Thread(target=waiter) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [True] * 4
    assert latch.is_set() and latch.wait(0)


def test_is_set_never_flickers_while_waiters_pass() -> None:
    latch = Latch()
    latch.set()
    stop = threading.Event()
    closed_seen: list[int] = []

    def pass_through() -> None:
        while not stop.is_set():
            latch.wait(1)

    threads = [threading.Thread(target=pass_through) for _ in range(4)]
    for thread in threads:
        thread.start()
    closed_seen.extend(1 for _ in range(20_000) if not latch.is_set())
    stop.set()
    for thread in threads:
        thread.join(10)
    assert closed_seen == []


def test_a_latch_nobody_waits_on_makes_no_lock() -> None:
    latch = Latch()
    assert latch._gate is None
    latch.set()
    latch.clear()
    latch.set()
    assert latch._gate is None
    assert latch.wait(0)


@pytest.mark.parametrize("repeat", range(20))
def test_a_first_wait_racing_set_never_hangs(repeat: int) -> None:
    # The first waiter makes the gate as set() runs: it must find the latch
    # open or a released gate, never a gate nobody releases.
    for _ in range(200):
        latch = Latch()
        start = threading.Barrier(3)
        results: list[bool] = []

        def waiter(
            latch: Latch = latch,
            start: threading.Barrier = start,
            results: list[bool] = results,
        ) -> None:
            start.wait()
            results.append(latch.wait(5))

        threads = [threading.Thread(target=waiter) for _ in range(2)]
        for thread in threads:
            thread.start()
        start.wait()
        latch.set()
        for thread in threads:
            thread.join(10)
        assert results == [True, True]


def test_a_cleared_latch_blocks_new_waiters_until_set_again() -> None:
    latch = Latch()
    assert not latch.wait(0.01)  # makes a gate
    latch.set()
    latch.clear()
    assert not latch.wait(0.05)
    woke = threading.Event()

    def waiter() -> None:
        if latch.wait(5):
            woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not woke.wait(0.05)
    latch.set()
    assert woke.wait(5)
    thread.join(5)
