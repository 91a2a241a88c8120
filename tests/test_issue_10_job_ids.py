"""Issue 10: job ids chosen by the caller make ``execute`` idempotent."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from routilux import ConfigurationError, Flow, ForeignJobError, JobOwnedError, Routine
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore
from routilux.persistence.lease import Owner

ROOT = Path(__file__).resolve().parents[1]


class Charge(Routine):
    """Counts its calls; ``gate`` holds each call until set."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []
        self.lock = threading.Lock()
        self.gate: threading.Event | None = None
        self.seen_id: str | None = None
        self.define_slot("trigger", handler=self.charge)

    def charge(self, order: int) -> None:
        if self.gate is not None:
            assert self.gate.wait(30)
        self.seen_id = self.get_execution_context().job_state.job_id
        with self.lock:
            self.calls.append(order)


def build(
    store: Any = None, strategy: str = "sequential", flow_id: str = "pay"
) -> Flow:
    flow = Flow(
        flow_id, execution_strategy=strategy, max_workers=4, checkpoint_store=store
    )
    flow.add_routine(Charge(), "charge")
    return flow


def charge(flow: Flow) -> Charge:
    routine = flow.routines["charge"]
    assert isinstance(routine, Charge)
    return routine


@pytest.fixture(params=["none", "sqlite", "jsonfile"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "none":
        yield None
        return
    opened: Any = (
        SQLiteCheckpointStore(tmp_path / "c.sqlite")
        if request.param == "sqlite"
        else JsonFileCheckpointStore(tmp_path / "c")
    )
    yield opened
    opened.close()


def test_issue_10_execute_twice_with_one_job_id_runs_once(
    store: Any, strategy: str
) -> None:
    flow = build(store, strategy)
    first = flow.execute("charge", {"order": 42}, job_id="order-42")
    assert first.job_id == "order-42"
    assert first.wait(30) and first.status == "completed"
    second = flow.execute("charge", {"order": 42}, job_id="order-42")
    assert (second.job_id, second.status) == ("order-42", "completed")
    if store is None:
        assert second is first  # the flow's own record
    assert charge(flow).calls == [42]
    other = flow.execute("charge", {"order": 43}, job_id="order-43")
    assert other.wait(30) and charge(flow).calls == [42, 43]
    flow.shutdown()


def test_issue_10_the_sequential_job_id_is_known_while_it_runs() -> None:
    flow = build()
    job = flow.execute("charge", {"order": 1}, job_id="known-before")
    assert charge(flow).seen_id == "known-before" == job.job_id


def test_issue_10_many_threads_executing_one_job_id_run_it_once(
    store: Any, strategy: str
) -> None:
    for repeat in range(5):
        flow = build(store, strategy)
        jobs = execute_at_once(flow, 8, repeat)
        assert flow.wait_for_completion(30)
        assert len(jobs) == 8 and {job.job_id for job in jobs} == {f"same-{repeat}"}
        assert charge(flow).calls == [repeat]
        flow.shutdown()


def execute_at_once(flow: Flow, threads: int, order: int) -> list[Any]:
    """``threads`` threads execute the job id ``same-<order>`` at one moment."""
    barrier = threading.Barrier(threads)
    jobs: list[Any] = []
    lock = threading.Lock()

    def go() -> None:
        barrier.wait()
        job = flow.execute("charge", {"order": order}, job_id=f"same-{order}")
        with lock:
            jobs.append(job)

    started = [threading.Thread(target=go) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(30)
    return jobs


def test_issue_10_a_running_job_id_returns_the_running_job(tmp_path: Path) -> None:
    flow = build(tmp_path / "c.sqlite", "concurrent")
    gate = threading.Event()
    charge(flow).gate = gate
    running = flow.execute("charge", {"order": 1}, job_id="busy")
    again = flow.execute("charge", {"order": 1}, job_id="busy")
    assert again is running and running.status == "running"
    # Another flow on the same store sees the job as the store keeps it.
    other = build(tmp_path / "c.sqlite", "concurrent")
    stored = other.execute("charge", {"order": 1}, job_id="busy")
    assert stored is not running and (stored.job_id, stored.status) == (
        "busy",
        "running",
    )
    # Live elsewhere is not interrupted: returned as stored, not resumed.
    live = other.execute("charge", {"order": 1}, job_id="busy", resume_interrupted=True)
    assert live.status == "running" and other.get_stats()["active_jobs"] == 0
    with pytest.raises(JobOwnedError):
        other.resume("busy")
    gate.set()
    assert running.wait(30) and running.status == "completed"
    flow.shutdown()
    other.shutdown()
    assert charge(flow).calls == [1] and charge(other).calls == []


class StaleClock:
    def __call__(self) -> float:
        import time

        return time.time() - 3600.0  # an hour ago: any lease it writes is stale


def test_issue_10_an_interrupted_job_id_is_returned_or_resumed_on_request(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.sqlite"
    # A crashed process: the job and its entry stored, its lease an hour old.
    with SQLiteCheckpointStore(path, clock=StaleClock()) as crashed:
        document = {
            "job_id": "order-7",
            "flow_id": "pay",
            "status": "running",
            "updated_at": "2024-01-01T00:00:00Z",
            "kind": "routilux.job",
        }
        entry = {
            "id": "a0",
            "routine_id": "charge",
            "slot": "trigger",
            "payload": {"order": 7},
        }
        assert crashed.begin_job(document, [entry], Owner(1, "gone.example", "t"))
    flow = build(path)
    kept = flow.execute("charge", {"order": 7}, job_id="order-7")
    assert kept.status == "running" and charge(flow).calls == []
    resumed = flow.execute(
        "charge", {"order": 7}, job_id="order-7", resume_interrupted=True
    )
    assert resumed.status == "completed" and charge(flow).calls == [7]
    again = flow.execute(
        "charge", {"order": 7}, job_id="order-7", resume_interrupted=True
    )
    assert again.status == "completed" and charge(flow).calls == [7]
    flow.shutdown()


def test_issue_10_a_job_id_of_another_flow_in_the_store_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.sqlite"
    first = build(path, flow_id="pay")
    other = build(path, flow_id="refunds")
    try:
        first.execute("charge", {"order": 1}, job_id="shared")
        with pytest.raises(ForeignJobError, match=r"'shared'.*'pay'"):
            other.execute("charge", {"order": 1}, job_id="shared")
        assert charge(other).calls == []
        assert other.get_stats()["active_jobs"] == 0
    finally:  # each closes the store it opened from the path
        first.shutdown()
        other.shutdown()


@pytest.mark.parametrize(
    "bad", ["", ".hidden", "a/b", "with space", "x" * 201, 42, b"id", ["id"]]
)
def test_issue_10_bad_job_ids_are_refused_before_anything_runs(bad: Any) -> None:
    flow = build()
    with pytest.raises(ConfigurationError, match="job_id"):
        flow.execute("charge", {"order": 1}, job_id=bad)
    assert charge(flow).calls == []


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_issue_10_resume_interrupted_must_be_a_bool(bad: Any) -> None:
    flow = build()
    with pytest.raises(ConfigurationError, match="resume_interrupted"):
        flow.execute("charge", {"order": 1}, job_id="x", resume_interrupted=bad)
    assert charge(flow).calls == []


def test_issue_10_a_failed_start_frees_the_job_id(tmp_path: Path) -> None:
    class Refusing(SQLiteCheckpointStore):
        refuse = True

        def begin_job(self, *args: Any, **kwargs: Any) -> bool:
            if self.refuse:
                from routilux import CheckpointError

                raise CheckpointError("disk full")
            return super().begin_job(*args, **kwargs)

    store = Refusing(tmp_path / "c.sqlite")
    flow = build(store)
    with pytest.raises(Exception, match="disk full"):
        flow.execute("charge", {"order": 1}, job_id="retry-me")
    store.refuse = False
    job = flow.execute("charge", {"order": 1}, job_id="retry-me")
    assert job.status == "completed" and charge(flow).calls == [1]
    flow.shutdown()
    store.close()


def test_issue_10_async_execute_with_a_job_id_runs_once(tmp_path: Path) -> None:
    import asyncio

    flow = build(tmp_path / "c.sqlite", "concurrent")

    async def twice() -> tuple[Any, Any]:
        first = await flow.execute_async("charge", {"order": 5}, job_id="async-5")
        second = await flow.execute_async("charge", {"order": 5}, job_id="async-5")
        return first, second

    first, second = asyncio.run(twice())
    assert first.status == second.status == "completed"
    assert charge(flow).calls == [5]
    flow.shutdown()


SCRIPT = """
import sys
from tests.test_issue_10_job_ids import build, charge
flow = build(sys.argv[1], "concurrent")
job = flow.execute("charge", {"order": 9}, job_id="order-9")
job.wait(30)
print(len(charge(flow).calls), job.status, flush=True)
flow.shutdown()
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["sqlite", "jsonfile"])
def test_issue_10_two_processes_executing_one_job_id_run_it_once(
    tmp_path: Path, kind: str
) -> None:
    target = tmp_path / ("c.sqlite" if kind == "sqlite" else "c")
    if kind == "jsonfile":
        JsonFileCheckpointStore(target).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", SCRIPT, str(target)]
    if kind == "jsonfile":
        command = [
            sys.executable,
            "-c",
            SCRIPT.replace(
                "build(sys.argv[1]",
                "build(__import__('routilux.persistence', fromlist=['x'])"
                ".JsonFileCheckpointStore(sys.argv[1])",
            ),
            str(target),
        ]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60)[0].split() for p in processes]
    assert all(p.returncode == 0 for p in processes)
    runs = sorted(int(out[0]) for out in outputs)
    assert runs == [0, 1]  # one process ran the job, the other returned it
    # Whichever lost saw the job as the store keeps it: running or completed.
    assert {out[1] for out in outputs} <= {"completed", "running"}
    flow = build(target if kind == "sqlite" else JsonFileCheckpointStore(target))
    again = flow.execute("charge", {"order": 9}, job_id="order-9")
    assert again.status == "completed" and charge(flow).calls == []
    flow.shutdown()


@pytest.mark.timeout(60)
def test_issue_10_async_execute_of_a_job_run_elsewhere_returns_at_once(
    tmp_path: Path,
) -> None:
    import asyncio

    flow = build(tmp_path / "c.sqlite", "concurrent")
    gate = threading.Event()
    charge(flow).gate = gate
    running = flow.execute("charge", {"order": 3}, job_id="elsewhere")
    other = build(tmp_path / "c.sqlite", "concurrent")
    try:
        seen = asyncio.run(
            other.execute_async("charge", {"order": 3}, job_id="elsewhere")
        )
        assert (seen.job_id, seen.status) == ("elsewhere", "running")
    finally:
        gate.set()
    assert running.wait(30) and charge(other).calls == []
    flow.shutdown()
    other.shutdown()


def test_issue_10_new_execute_keywords_are_keyword_only() -> None:
    import inspect

    for method in (Flow.execute, Flow.execute_async):
        parameters = inspect.signature(method).parameters
        for name, default in (("job_id", None), ("resume_interrupted", False)):
            assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
            assert parameters[name].default is default


class Pauser(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.define_slot("trigger", handler=self.go)
        self.define_event("next", ["step"])

    def go(self, step: int) -> None:
        self.calls.append(step)
        if step == 1:
            context = self.get_execution_context()
            context.flow.pause(context.job_state, reason="hold")
        if step < 3:
            self.emit("next", step=step + 1)


def pausing(store: Any) -> Flow:
    flow = Flow("pausing", checkpoint_store=store)
    flow.add_routine(Pauser(), "p")
    flow.connect("p", "next", "p", "trigger")
    return flow


def test_issue_10_a_paused_job_id_returns_the_paused_job_here(tmp_path: Path) -> None:
    flow = pausing(tmp_path / "c.sqlite")
    job = flow.execute("p", {"step": 0}, job_id="held")
    assert job.status == "paused"
    assert flow.execute("p", {"step": 0}, job_id="held") is job
    assert flow.resume(job).status == "completed"
    routine = flow.routines["p"]
    assert isinstance(routine, Pauser) and routine.calls == [0, 1, 2, 3]
    flow.shutdown()


def test_issue_10_a_moved_job_stored_meanwhile_is_refused(tmp_path: Path) -> None:
    from routilux import JobState, JobStateError

    class Blind(SQLiteCheckpointStore):
        """Does not list its jobs: as if one was stored after the flow looked."""

        def list_jobs(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
            return []

    here = pausing(None)
    job = here.execute("p", {"step": 0})
    assert job.status == "paused"
    moved = JobState.deserialize(job.serialize())
    with Blind(tmp_path / "c.sqlite") as store:
        store.save_job(moved.serialize())
        there = pausing(store)
        with pytest.raises(JobStateError, match="resume it by id"):
            there.resume(moved)
        assert moved.status == "paused"
        assert there.get_stats()["active_jobs"] == 0
        there.shutdown()


def test_issue_10_resume_interrupted_needs_a_job_id() -> None:
    flow = build()
    with pytest.raises(ConfigurationError, match="needs a job_id"):
        flow.execute("charge", {"order": 1}, resume_interrupted=True)
    assert charge(flow).calls == []
