"""Issue 8: adversarial review of the day's runtime changes (branch wip-review).

Each test is a reproducer of something the review tried: a bug found (and fixed
on this branch), or a scenario that held. Every wait is bounded: a regression
fails, never hangs.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import pytest

from routilux import ErrorHandler, Flow, FlowHooks, JobStatus, Routine
from routilux._views import _EMPTY, EMPTY_STATES
from routilux.latch import Latch
from routilux.persistence import SQLiteCheckpointStore

GUARD = 10.0


def _pause_after(
    func: Any, line_text: str
) -> tuple[Any, threading.Event, threading.Event]:
    """A tracer stopping the next call of ``func`` right after a line ran.

    Returns ``(tracer, reached, go)``: install ``tracer`` with ``sys.settrace``
    in the thread to stop; ``reached`` is set when it stopped there (after the
    line holding ``line_text``, before the next one), and it goes on once
    ``go`` is set.
    """
    lines, first = inspect.getsourcelines(func)
    (offset,) = [i for i, text in enumerate(lines) if line_text in text]
    code, after = func.__code__, first + offset
    reached, go = threading.Event(), threading.Event()
    previous: list[int] = []

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            if previous and previous[-1] == after and not reached.is_set():
                reached.set()
                go.wait(GUARD)
            previous.append(frame.f_lineno)
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        return local if frame.f_code is code else None

    return tracer, reached, go


def test_latch_set_racing_a_resume_wakes_every_waiter() -> None:
    # A job pauses (its latch is set) while a resume (clear) and a new waiter
    # land between set() writing the flag and reading the gate. The waiter
    # from before the pause must be woken (the latch was set), and the new
    # waiter must not be (the latch is closed again).
    latch = Latch()
    before: list[bool] = []
    first = threading.Thread(target=lambda: before.append(latch.wait(GUARD)))
    first.start()
    while latch._gate is None or not latch._gate.locked():
        threading.Event().wait(0.001)
    tracer, reached, go = _pause_after(Latch.set, "self._flag = True")

    def setter() -> None:
        sys.settrace(tracer)
        try:
            latch.set()
        finally:
            sys.settrace(None)

    setting = threading.Thread(target=setter)
    setting.start()
    assert reached.wait(GUARD)
    latch.clear()  # the resume
    after: list[bool] = []
    second = threading.Thread(target=lambda: after.append(latch.wait(GUARD)))
    second.start()
    while latch._gate is None:
        threading.Event().wait(0.001)
    go.set()
    setting.join(GUARD)
    first.join(5)
    assert before == [True]  # woken by the set, not by its timeout
    second.join(0.3)
    assert after == []  # still waiting: the latch is closed
    latch.set()  # the job ends
    second.join(GUARD)
    assert after == [True]


# -- scenarios that held (the spec path, shared empties, pause/resume waits) ------


class Src(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value", "key"])

    def fire(self, count: int, keys: int = 1):
        for v in range(count):
            self.emit("output", value=v, key=v % keys)


class Rec(Routine):
    def __init__(self, name, log, emit=True, action=None):
        super().__init__()
        self.name, self.log, self.action = name, log, action
        self.define_slot("input", handler=self.go)
        self.define_event("output", ["value", "key"])
        self.emit_on = emit

    def go(self, value, key=0):
        self.log.append((self.name, value))
        if self.action:
            self.action(self, value)
        if self.emit_on:
            self.emit("output", value=value, key=key)


def test_bfs_order_fanout():
    log = []
    f = Flow()
    f.add_routine(Src(), "s")
    for n in "abcde":
        f.add_routine(Rec(n, log), n)
    f.connect("s", "output", "a", "input")
    f.connect("s", "output", "b", "input")
    f.connect("a", "output", "c", "input")
    f.connect("b", "output", "d", "input")
    f.connect("a", "output", "e", "input")
    job = f.execute("s", {"count": 2})
    assert job.status is JobStatus.COMPLETED
    assert log == [
        ("a", 0),
        ("b", 0),
        ("a", 1),
        ("b", 1),
        ("c", 0),
        ("e", 0),
        ("d", 0),
        ("c", 1),
        ("e", 1),
        ("d", 1),
    ]


def test_update_routine_state_running_and_copies():
    seen = {}

    def act(r, v):
        job = r.get_execution_context().job_state
        job.update_routine_state("x", {"status": "completed"})
        seen["copy"] = copy.deepcopy(job)
        seen["mc"] = job.model_copy()
        seen["mc"].routine_states["y"] = 1
        seen["copy"].routine_states["z"] = 2
        seen["mc"].errors.append("e")
        seen["mc"].pending_tasks.append("p")
        seen["mc"].pause_points.append(1)

    log = []
    f = Flow()
    f.add_routine(Src(), "s")
    f.add_routine(Rec("a", log, action=act), "a")
    f.connect("s", "output", "a", "input")
    job = f.execute("s", {"count": 1})
    assert set(job.routine_states) == {"x", "a", "s"} or set(job.routine_states) >= {
        "x",
        "a",
    }
    assert len(EMPTY_STATES) == 0 and all(len(v) == 0 for v in _EMPTY.values())
    job2 = f.execute("s", {"count": 0})
    assert "x" not in job2.routine_states


def test_update_routine_state_on_queued_jobs_concurrent():
    f = Flow(execution_strategy="concurrent", max_workers=1)
    gate = threading.Event()

    def act(r, v):
        gate.wait(GUARD)

    log = []
    f.add_routine(Src(), "s")
    f.add_routine(Rec("a", log, action=act, emit=False), "a")
    f.connect("s", "output", "a", "input")
    with f:
        jobs = [f.execute("s", {"count": 1}) for _ in range(20)]
        for i, j in enumerate(jobs):
            j.update_routine_state(f"u{i}", {"status": "completed"})
            c = copy.copy(j)
            c.routine_states["zz"] = 1
        gate.set()
        for j in jobs:
            assert j.wait(GUARD)
    for i, j in enumerate(jobs):
        assert j.status is JobStatus.COMPLETED
        assert {k for k in j.routine_states if k.startswith("u")} == {f"u{i}"}
        assert "a" in j.routine_states
    assert len(EMPTY_STATES) == 0


@pytest.mark.parametrize("rep", range(3))
def test_lanes_sequential_many_threads(rep):
    seen = defaultdict(list)
    lock = threading.Lock()
    running = defaultdict(int)
    most = defaultdict(int)

    def act(r, v):
        pass

    class W(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("input", handler=self.go)

        def go(self, value, key):
            with lock:
                running[key] += 1
                most[key] = max(most[key], running[key])
            time.sleep(0)
            with lock:
                running[key] -= 1
                seen[key].append(value)

    f = Flow()
    f.add_routine(Src(), "s")
    f.add_routine(W(), "w")
    f.connect("s", "output", "w", "input", lane_key="key")
    errs = []

    def run():
        try:
            for _ in range(3):
                j = f.execute("s", {"count": 200, "keys": 4})
                assert j.status is JobStatus.COMPLETED, j.errors
        except BaseException as e:
            errs.append(e)

    ts = [threading.Thread(target=run) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errs
    for k in range(4):
        assert sorted(seen[k]) == sorted([v for v in range(200) if v % 4 == k] * 12)
    assert max(most.values()) == 1


def test_max_concurrency_sequential_threads():
    cur = [0]
    most = [0]
    lock = threading.Lock()
    count = [0]

    def act(r, v):
        with lock:
            cur[0] += 1
            most[0] = max(most[0], cur[0])
            count[0] += 1
        time.sleep(0)
        with lock:
            cur[0] -= 1

    log = []
    f = Flow()
    f.add_routine(Src(), "s")
    a = Rec("a", log, action=act)
    a.set_max_concurrency(1)
    f.add_routine(a, "a")
    f.connect("s", "output", "a", "input")
    ts = [
        threading.Thread(
            target=lambda: [f.execute("s", {"count": 100}) for _ in range(3)]
        )
        for _ in range(4)
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert count[0] == 1200 and most[0] == 1


def test_retry_on_spec_path():
    tries = defaultdict(int)

    def act(r, v):
        tries[v] += 1
        if tries[v] < 3:
            raise ValueError(v)

    log = []
    f = Flow()
    f.add_routine(Src(), "s")
    a = Rec("a", log, action=act)
    f.add_routine(a, "a")
    f.add_routine(Rec("b", log, emit=False), "b")
    a.set_error_handler(ErrorHandler("retry", max_retries=3, retry_delay=0.0))
    f.connect("s", "output", "a", "input")
    f.connect("a", "output", "b", "input")
    job = f.execute("s", {"count": 50})
    assert job.status is JobStatus.COMPLETED, job.errors
    assert sorted(v for n, v in log if n == "b") == list(range(50))
    assert all(t == 3 for t in tries.values())


def test_timeout_on_spec_path():
    log = []

    def act(r, v):
        if v == 3:
            time.sleep(0.3)

    f = Flow()
    f.add_routine(Src(), "s")
    a = Rec("a", log, action=act)
    f.add_routine(a, "a")
    f.add_routine(Rec("b", log, emit=False), "b")
    a.set_timeout(0.1)
    a.set_error_handler(ErrorHandler("continue"))
    f.connect("s", "output", "a", "input")
    f.connect("a", "output", "b", "input")
    job = f.execute("s", {"count": 10})
    assert job.wait(GUARD)
    assert job.status is JobStatus.COMPLETED, job.errors
    assert sorted(v for n, v in log if n == "b") == [v for v in range(10) if v != 3]


def test_dead_letters_replay_sequential():
    fail = [True]

    def act(r, v):
        if fail[0] and v % 2:
            raise ValueError(v)

    log = []
    f = Flow()
    f.add_routine(Src(), "s")
    a = Rec("a", log, action=act)
    f.add_routine(a, "a")
    f.add_routine(Rec("b", log, emit=False), "b")
    a.set_error_handler(ErrorHandler("skip"))
    f.connect("s", "output", "a", "input")
    f.connect("a", "output", "b", "input")
    job = f.execute("s", {"count": 20})
    letters = f.dead_letters(job.job_id)
    assert len(letters) == 10
    fail[0] = False
    j2 = f.replay(letters)
    assert j2.status is JobStatus.COMPLETED
    assert sorted(v for n, v in log if n == "b") == list(range(20))


class AsyncRelay(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("input", handler=self.go)
        self.define_event("output", ["value", "key"])

    async def go(self, value, key=0):
        await asyncio.sleep(0)
        self.emit("output", value=value, key=key)


@pytest.mark.parametrize("repeat", range(5))
def test_async_relay_paused_mid_spec_queue_resumes_exactly(repeat):
    log = []
    jobs = []

    class H(FlowHooks):
        def on_job_start(self, job):
            jobs.append(job)

    def act(r, v):
        if v == 40 and len(jobs) == 1 and not getattr(act, "done", False):
            act.done = True
            assert f.pause(jobs[0])

    f = Flow()
    f.add_hooks(H())
    f.add_routine(Src(), "s")
    f.add_routine(AsyncRelay(), "a")
    f.add_routine(Rec("b", log, action=act), "b")
    f.add_routine(Rec("c", log, emit=False), "c")
    f.connect("s", "output", "a", "input")
    f.connect("a", "output", "b", "input")
    f.connect("b", "output", "c", "input")
    job = f.execute("s", {"count": 100})
    assert job.status is JobStatus.PAUSED
    f.resume(job)
    assert job.wait(GUARD)
    assert job.status is JobStatus.COMPLETED
    assert sorted(v for n, v in log if n == "c") == list(range(100))
    assert sorted(v for n, v in log if n == "b") == list(range(100))


@pytest.mark.parametrize("mode", ["pause", "cancel", "fail"])
def test_store_sequential_modes(tmp_path, mode):
    store = SQLiteCheckpointStore(tmp_path / "j.db")
    jobs = []

    class H(FlowHooks):
        def on_job_start(self, job):
            jobs.append(job)

    def act(r, v):
        if v == 30 and r.name == "b":
            if mode == "pause" and len(jobs) == 1 and not getattr(act, "d", 0):
                act.d = 1
                assert f.pause(jobs[0])
            elif mode == "cancel":
                f.cancel(jobs[0])
            elif mode == "fail":
                raise ValueError("x")

    log = []
    f = Flow()
    f.checkpoint_store = store
    f.add_hooks(H())
    f.add_routine(Src(), "s")
    f.add_routine(Rec("a", log), "a")
    f.add_routine(Rec("b", log, action=act), "b")
    f.add_routine(Rec("c", log, emit=False), "c")
    f.connect("s", "output", "a", "input")
    f.connect("a", "output", "b", "input")
    f.connect("b", "output", "c", "input")
    job = f.execute("s", {"count": 100})
    if mode == "pause":
        assert job.status is JobStatus.PAUSED
        assert store.load(job.job_id)["status"] == "paused"
        f.resume(job)
        assert job.wait(GUARD)
        assert job.status is JobStatus.COMPLETED
        assert sorted(v for n, v in log if n == "c") == list(range(100))
        assert store.pending(job.job_id) == []
    elif mode == "cancel":
        assert job.status is JobStatus.CANCELLED
        assert store.load(job.job_id)["status"] == "cancelled"
    else:
        assert job.status is JobStatus.FAILED
        assert store.load(job.job_id)["status"] == "failed"
    store.close()


def _wait_into(job, results):
    results.append(job.wait(GUARD))


def test_pause_resume_cycles_with_waiters_concurrent():
    gate = threading.Semaphore(0)
    log = []

    def act(r, v):
        gate.acquire(timeout=GUARD)

    f = Flow(execution_strategy="concurrent", max_workers=2)
    f.add_routine(Src(), "s")
    f.add_routine(Rec("a", log, action=act, emit=False), "a")
    f.connect("s", "output", "a", "input")
    with f:
        job = f.execute("s", {"count": 60})
        for cycle in range(20):
            results: list[bool] = []
            ws = [
                threading.Thread(target=_wait_into, args=(job, results))
                for _ in range(4)
            ]
            for w in ws:
                w.start()
            f.pause(job)
            gate.release()
            gate.release()
            for w in ws:
                w.join(GUARD)
            assert results == [True] * 4, cycle
            assert job.status is JobStatus.PAUSED
            f.resume(job)
        for _ in range(200):
            gate.release()
        assert job.wait(GUARD)
    assert job.status is JobStatus.COMPLETED
    assert len(log) == 60
