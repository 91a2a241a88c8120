"""Issue 8: a job's only ready task waits in the concurrent pool without a FIFO.

Most jobs in a backlog of small jobs have one ready task; it waits as itself,
and the job gets a FIFO only when a second task arrives. The turns across jobs
must stay exactly what they were: one task of each job with work, in order.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from routilux.strategies import ThreadedStrategy
from routilux.testing import ProbeTask

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.timeout(60)

WAIT = 30.0


def _run_held(queue_tasks: Callable[[ThreadedStrategy, list[str]], None]) -> list[str]:
    """Queue tasks behind a plug on one worker, then let the worker take them."""
    order: list[str] = []
    release, holding = threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        assert release.wait(WAIT)

    strategy = ThreadedStrategy(max_workers=1, name_prefix="single-test")
    try:
        strategy.submit(ProbeTask(action=hold, fair_key="plug"))
        assert holding.wait(WAIT)
        queue_tasks(strategy, order)
        release.set()
        assert strategy.wait_idle(WAIT)
        assert strategy.stats()["queued"] == 0
    finally:
        strategy.shutdown(wait=True, timeout=WAIT)
    return order


def _note(order: list[str], name: str) -> ProbeTask:
    return ProbeTask(action=lambda: order.append(name), fair_key=name[0])


def test_issue_8_single_tasks_take_their_turns_in_order() -> None:
    def queue_tasks(strategy: ThreadedStrategy, order: list[str]) -> None:
        for job in "abcdefgh":
            strategy.submit(_note(order, f"{job}0"))

    assert _run_held(queue_tasks) == [f"{job}0" for job in "abcdefgh"]


def test_issue_8_a_second_task_gives_the_job_a_fifo_in_its_turn() -> None:
    # b gets a second and a third task while its first waits: b keeps its turn
    # (second), and its later tasks take the later rounds.
    def queue_tasks(strategy: ThreadedStrategy, order: list[str]) -> None:
        strategy.submit(_note(order, "a0"))
        strategy.submit(_note(order, "b0"))
        strategy.submit(_note(order, "c0"))
        strategy.submit(_note(order, "b1"))
        strategy.submit(_note(order, "a1"))
        strategy.submit(_note(order, "b2"))

    assert _run_held(queue_tasks) == ["a0", "b0", "c0", "a1", "b1", "b2"]


def test_issue_8_a_job_with_one_task_at_a_time_rejoins_at_the_back() -> None:
    # Job a submits its next task as each runs (a chain): each goes behind the
    # jobs waiting, whether a held a FIFO (the spare) or none at that moment.
    def queue_tasks(strategy: ThreadedStrategy, order: list[str]) -> None:
        def hop(number: int) -> Callable[[], None]:
            def run() -> None:
                order.append(f"a{number}")
                if number < 3:
                    strategy.submit(ProbeTask(action=hop(number + 1), fair_key="a"))

            return run

        strategy.submit(ProbeTask(action=hop(0), fair_key="a"))
        for index in range(3):
            strategy.submit(_note(order, f"b{index}"))
        strategy.submit(_note(order, "c0"))

    assert _run_held(queue_tasks) == [
        "a0", "b0", "c0", "a1", "b1", "a2", "b2", "a3",
    ]  # fmt: skip


def test_issue_8_many_jobs_of_one_or_more_tasks_lose_nothing() -> None:
    # 8 threads submit to 4 workers at once: jobs of 1, 2 or 3 tasks, the tasks
    # of odd jobs submitting one more as they run. Every task runs exactly once.
    for _ in range(5):
        strategy = ThreadedStrategy(max_workers=4, name_prefix="single-many")
        ran: list[str] = []
        try:
            threads = [
                threading.Thread(target=_submit_jobs, args=(strategy, ran, t))
                for t in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(WAIT)
            assert strategy.wait_idle(WAIT)
        finally:
            strategy.shutdown(wait=True, timeout=WAIT)
        expected = [
            f"{t}{job:03d}:{number}{suffix}"
            for t in range(8)
            for job in range(200)
            for number in range(job % 3 + 1)
            for suffix in (["", "+"] if job % 2 else [""])
        ]
        assert sorted(ran) == sorted(expected)


def _submit_jobs(strategy: ThreadedStrategy, ran: list[str], thread: int) -> None:
    def task(name: str, key: str, more: bool) -> ProbeTask:
        def run() -> None:
            ran.append(name)  # list.append: atomic
            if more:
                strategy.submit(task(f"{name}+", key, False))

        return ProbeTask(action=run, fair_key=key)

    for job in range(200):
        key = f"{thread}{job:03d}"
        for number in range(job % 3 + 1):
            strategy.submit(task(f"{key}:{number}", key, bool(job % 2)))
