"""Issue 12: handlers really run on Ray actors, with the concurrent strategy's results.

One RayStrategy (two host actors) serves the module; the Ray instance is the
session's (tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    ConfigurationError,
    ErrorHandler,
    ErrorStrategy,
    Flow,
    FlowHooks,
    JobStatus,
    RemoteHandlerError,
    Routine,
    StrategyShutdownError,
)
from routilux.runtime.remote import HostWorker
from routilux.strategies import RayStrategy
from tests.ray_routines import (
    AsyncDouble,
    Boom,
    Collect,
    Counted,
    Overlap,
    Pid,
    Sleeper,
    Source,
    Square,
    Unsendable,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

WAIT = 120.0


@pytest.fixture(scope="module")
def ray_strategy(ray_instance: Any) -> Iterator[RayStrategy]:
    strategy = RayStrategy(max_workers=4, num_cpus=2)
    try:
        yield strategy
    finally:
        strategy.shutdown(wait=True, timeout=WAIT)


def _fan_flow(strategy: Any, flow_id: str) -> Flow:
    flow = Flow(flow_id=flow_id, execution_strategy=strategy, max_workers=4)
    flow.add_routine(Source(count=30), "src")
    flow.add_routine(Collect(), "sink")
    for index in range(3):
        flow.add_routine(Square(), f"sq{index}")
        flow.connect("src", "out", f"sq{index}", "input")
        flow.connect(f"sq{index}", "out", "sink", "input")
    return flow


def _outcome(
    flow: Flow,
) -> tuple[JobStatus, dict[str, str], Counter[Any], dict[str, Any]]:
    job = flow.execute("src")
    assert job.wait(WAIT), "the job did not finish"
    sink = flow.routines["sink"]
    seen = Counter(item["value"] for item in sink.get_stat("seen_history", []))
    states = {rid: str(state.status) for rid, state in job.routine_states.items()}
    calls = {rid: flow.routines[rid].get_stat("calls") for rid in ("sq0", "sq1", "sq2")}
    return job.status, states, seen, calls


def test_issue_12_results_equal_the_concurrent_strategys(
    ray_strategy: RayStrategy,
) -> None:
    with _fan_flow("concurrent", "fan-threads") as threads:
        expected = _outcome(threads)
    flow = _fan_flow(ray_strategy, "fan-ray")
    got = _outcome(flow)
    assert got == expected
    status, _, seen, calls = got
    assert status is JobStatus.COMPLETED
    assert sum(seen.values()) == 90 and calls == {"sq0": 30, "sq1": 30, "sq2": 30}
    # Stats live with the actors and come back at each job's end: they grow.
    again = _outcome(flow)
    assert again[3] == {"sq0": 60, "sq1": 60, "sq2": 60}


def test_issue_12_handlers_run_in_actor_processes(ray_strategy: RayStrategy) -> None:
    flow = Flow(flow_id="pids", execution_strategy=ray_strategy)
    flow.add_routine(Pid(), "pid")
    job = flow.execute("pid")
    assert job.wait(WAIT) and job.status is JobStatus.COMPLETED, job.errors
    pid = job.result()["pid"]
    assert isinstance(pid, int) and pid != os.getpid()
    actor = ray_strategy.actor_of("pids", "pid")
    assert pid == ray_instance_get(actor.ping.remote())


def ray_instance_get(ref: Any) -> Any:
    import ray

    return ray.get(ref, timeout=WAIT)


def test_issue_12_a_changed_config_rebuilds_the_routine(
    ray_strategy: RayStrategy,
) -> None:
    flow = Flow(flow_id="rebuild", execution_strategy=ray_strategy)
    flow.add_routine(Source(count=2), "src")
    flow.add_routine(Collect(), "sink")
    flow.connect("src", "out", "sink", "input")
    first = flow.execute("src")
    assert first.wait(WAIT) and first.status is JobStatus.COMPLETED
    flow.routines["src"].set_config(count=5)
    second = flow.execute("src")
    assert second.wait(WAIT) and second.status is JobStatus.COMPLETED
    values = [item["value"] for item in flow.routines["sink"].get_stat("seen_history")]
    assert sorted(values) == sorted([0, 1, 0, 1, 2, 3, 4])


def test_issue_12_a_remote_error_keeps_its_type_and_traceback(
    ray_strategy: RayStrategy,
) -> None:
    flow = Flow(flow_id="errors", execution_strategy=ray_strategy)
    flow.add_routine(Boom(kind="plain"), "boom")
    job = flow.execute("boom")
    assert job.wait(WAIT) and job.status is JobStatus.FAILED
    (error,) = job.errors
    assert error.routine_id == "boom" and error.error_type == "ValueError"
    assert error.message == "boom on the worker"
    assert "raised on a Ray worker" in error.traceback
    assert "ray_routines.py" in error.traceback  # the worker's frames


def test_issue_12_an_unpicklable_error_comes_back_wrapped(
    ray_strategy: RayStrategy,
) -> None:
    flow = Flow(flow_id="unpicklable", execution_strategy=ray_strategy)
    flow.add_routine(Boom(kind="unpicklable"), "boom")
    job = flow.execute("boom")
    assert job.wait(WAIT) and job.status is JobStatus.FAILED
    (error,) = job.errors
    assert error.error_type == RemoteHandlerError.__name__
    assert "tests.ray_routines.Unpicklable: cannot travel" in error.message
    assert "Unpicklable" in error.traceback


def test_issue_12_retries_stay_on_the_driver(ray_strategy: RayStrategy) -> None:
    flow = Flow(flow_id="retries", execution_strategy=ray_strategy)
    boom = Boom(kind="plain")
    boom.set_error_handler(
        ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=2, retry_delay=0)
    )
    flow.add_routine(boom, "boom")
    job = flow.execute("boom")
    assert job.wait(WAIT) and job.status is JobStatus.FAILED
    assert [e.attempt for e in job.errors] == [1, 2, 3]


class _Local(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=lambda **_: None)


def test_issue_12_a_class_workers_cannot_import_is_refused(
    ray_strategy: RayStrategy,
) -> None:
    class Nested(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.fire)

        def fire(self, **_: Any) -> None:
            return None

    flow = Flow(flow_id="nested", execution_strategy=ray_strategy)
    flow.add_routine(Nested(), "nested")
    with pytest.raises(ConfigurationError, match=r"routine 'nested'.*Nested.*import"):
        flow.execute("nested")
    assert flow.wait_for_completion(1.0)  # no job was left behind


def test_issue_12_a_module_only_the_driver_sees_is_refused(
    ray_strategy: RayStrategy, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "driver_only_routines.py").write_text(
        "from routilux import Routine\n\n\n"
        "class DriverOnly(Routine):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.define_slot('trigger', handler=self.fire)\n\n"
        "    def fire(self, **_):\n"
        "        return 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__("driver_only_routines")
    flow = Flow(flow_id="driver-only", execution_strategy=ray_strategy)
    flow.add_routine(module.DriverOnly(), "only")
    with pytest.raises(
        ConfigurationError,
        match=r"routine 'only' \(class 'driver_only_routines:DriverOnly'\).*importable",
    ):
        flow.execute("only")


def test_issue_12_a_lambda_merge_strategy_is_refused(ray_strategy: RayStrategy) -> None:
    flow = Flow(flow_id="lambda-merge", execution_strategy=ray_strategy)
    sink = Collect()
    slot = sink.get_slot("input")
    assert slot is not None
    slot.merge_strategy = lambda old, new: {**old, **new}
    flow.add_routine(Source(count=1), "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "sink", "input")
    with pytest.raises(ConfigurationError, match=r"routine 'sink' slot 'input'.*merge"):
        flow.execute("src")


def test_issue_12_routines_spread_over_the_hosts(ray_instance: Any) -> None:
    # A strategy of its own: placement depends on what its hosts already hold.
    with Flow(flow_id="spread", execution_strategy=RayStrategy(num_cpus=2)) as flow:
        for index in range(4):
            flow.add_routine(Pid(), f"pid{index}")
        pids = []
        for index in range(4):
            job = flow.execute(f"pid{index}")
            assert job.wait(WAIT) and job.status is JobStatus.COMPLETED, job.errors
            pids.append(job.result()[f"pid{index}"])
    assert Counter(Counter(pids).values()) == Counter({2: 2})  # 2 hosts, 2 each


def test_issue_12_max_concurrency_holds_on_the_host(ray_strategy: RayStrategy) -> None:
    flow = Flow(flow_id="limit", execution_strategy=ray_strategy, max_workers=8)
    flow.add_routine(Source(count=40), "src")
    overlap = Overlap()
    overlap.set_max_concurrency(1)
    flow.add_routine(overlap, "one")
    flow.connect("src", "out", "one", "input")
    job = flow.execute("src")
    assert job.wait(WAIT) and job.status is JobStatus.COMPLETED, job.errors
    assert overlap.get_stat("calls") == 40 and overlap.get_stat("most") == 1


def test_issue_12_a_session_keeps_its_state_on_its_host(
    ray_strategy: RayStrategy,
) -> None:
    flow = Flow(flow_id="sessions", execution_strategy=ray_strategy)
    flow.add_routine(Counted(), "count")
    results = {}
    for session in ("a", "b", "a", "a", "b"):
        job = flow.execute("count", session=session)
        assert job.wait(WAIT) and job.status is JobStatus.COMPLETED, job.errors
        results.setdefault(session, []).append(job.result()["count"])
    assert results == {"a": [1, 2, 3], "b": [1, 2]}


def test_issue_12_dedicated_placement_and_shutdown(ray_instance: Any) -> None:
    strategy = RayStrategy(max_workers=2, placement="dedicated")
    flow = Flow(flow_id="dedicated", execution_strategy=strategy)
    flow.add_routine(Pid(), "one")
    flow.add_routine(Pid(), "two")
    pids = {}
    for rid in ("one", "two"):
        job = flow.execute(rid)
        assert job.wait(WAIT) and job.status is JobStatus.COMPLETED, job.errors
        pids[rid] = job.result()[rid]
    assert len(set(pids.values())) == 2
    assert strategy.stats()["actors"] == 2
    actor = strategy.actor_of("dedicated", "one")
    flow.shutdown(wait=True, timeout=WAIT)
    # The instance was the session's: it is left running; the actors are gone.
    assert ray_instance.is_initialized()
    assert _dies(ray_instance, actor), "the strategy's actor outlived shutdown"


def _dies(ray: Any, actor: Any) -> bool:
    """True once a call to ``actor`` fails as dead (ray.kill is asynchronous)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            ray.get(actor.ping.remote(), timeout=WAIT)
        except ray.exceptions.RayActorError:
            return True
        time.sleep(0.05)  # not killed yet: ask again
    return False


def _sleepy_flow(strategy: RayStrategy, flow_id: str, seconds: float) -> Flow:
    flow = Flow(flow_id=flow_id, execution_strategy=strategy)
    flow.add_routine(Source(count=1), "src")
    flow.add_routine(Sleeper(seconds=seconds), "sleep")
    flow.connect("src", "out", "sleep", "input")
    return flow


def test_issue_12_a_timeout_stops_waiting_for_a_remote_handler(
    ray_strategy: RayStrategy,
) -> None:
    flow = _sleepy_flow(ray_strategy, "timeouts", 3.0)
    flow.routines["sleep"].set_timeout(0.2)
    job = flow.execute("src")
    assert job.wait(WAIT) and job.status is JobStatus.FAILED
    assert [e.error_type for e in job.errors] == ["RoutineTimeoutError"]


def test_issue_12_cancel_does_not_wait_for_a_remote_handler(
    ray_strategy: RayStrategy,
) -> None:
    flow = _sleepy_flow(ray_strategy, "cancels", 3.0)
    job = flow.execute("src")
    deadline = time.monotonic() + WAIT
    while "sleep" not in job.routine_states and not job.execution_history:
        # until the sleeper's activation has been handed to its actor
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert flow.cancel(job, "enough")
    assert job.wait(WAIT) and job.status is JobStatus.CANCELLED


def test_issue_12_async_handlers_run_on_the_workers(ray_strategy: RayStrategy) -> None:
    flow = Flow(flow_id="async", execution_strategy=ray_strategy)
    flow.add_routine(Source(count=5), "src")
    flow.add_routine(AsyncDouble(), "double")
    flow.add_routine(Collect(), "sink")
    flow.connect("src", "out", "double", "input")
    flow.connect("double", "out", "sink", "input")
    job = flow.execute("src")
    assert job.wait(WAIT) and job.status is JobStatus.COMPLETED, job.errors
    values = [item["value"] for item in flow.routines["sink"].get_stat("seen_history")]
    assert sorted(values) == [0, 2, 4, 6, 8]


def test_issue_12_a_value_ray_cannot_send_fails_the_activation(
    ray_strategy: RayStrategy,
) -> None:
    flow = Flow(flow_id="unsendable", execution_strategy=ray_strategy)
    flow.add_routine(Unsendable(), "lock")
    job = flow.execute("lock")
    assert job.wait(WAIT) and job.status is JobStatus.FAILED
    (error,) = job.errors
    assert error.routine_id == "lock" and error.error_type == "RemoteHandlerError"
    assert "the Ray call failed" in error.message


def test_issue_12_session_state_without_a_session_fails_on_the_worker(
    ray_strategy: RayStrategy,
) -> None:
    flow = Flow(flow_id="no-session", execution_strategy=ray_strategy)
    flow.add_routine(Counted(), "count")
    job = flow.execute("count")
    assert job.wait(WAIT) and job.status is JobStatus.FAILED
    assert [e.error_type for e in job.errors] == ["SessionError"]


def test_issue_12_no_flow_is_bound_after_shutdown(ray_instance: Any) -> None:
    strategy = RayStrategy(max_workers=1)
    strategy.shutdown()
    flow = Flow(flow_id="closed")
    flow.add_routine(Pid(), "pid")
    with pytest.raises(StrategyShutdownError):
        strategy.bind_flow(flow, HostWorker)
    with pytest.raises(StrategyShutdownError):
        strategy.open_lane()


class _Count(FlowHooks):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ends: Counter[str] = Counter()
        self.emitted = 0

    def on_activation_end(self, job: Any, activation: Any, outcome: Any) -> None:
        with self.lock:
            self.ends[activation.routine_id] += 1
            self.emitted += len(outcome.emitted or ())


def test_issue_12_hooks_run_on_the_driver_and_see_remote_emits(
    ray_strategy: RayStrategy,
) -> None:
    flow = Flow(flow_id="hooks", execution_strategy=ray_strategy)
    flow.add_routine(Source(count=4), "src")
    flow.add_routine(Square(), "sq")
    flow.connect("src", "out", "sq", "input")
    hooks = _Count()
    flow.add_hooks(hooks)
    job = flow.execute("src")
    assert job.wait(WAIT) and job.status is JobStatus.COMPLETED, job.errors
    assert hooks.ends == Counter({"src": 1, "sq": 4})
    assert hooks.emitted == 4 + 4  # the source's 4, and each square's one


def test_issue_12_pause_holds_work_and_resume_finishes_it(
    ray_strategy: RayStrategy,
) -> None:
    flow = Flow(flow_id="pauses", execution_strategy=ray_strategy)
    flow.add_routine(Source(count=3), "src")
    sleeper = Sleeper(seconds=1.0)  # three in a row: the job runs 3 s at least
    sleeper.set_max_concurrency(1)
    flow.add_routine(sleeper, "sleep")
    flow.connect("src", "out", "sleep", "input")
    job = flow.execute("src")
    assert flow.pause(job, "hold on")
    assert job.wait(WAIT), "the pause did not settle"
    assert job.status is JobStatus.PAUSED
    # What ran finished on its worker (its stats came back); the rest waits.
    done = sleeper.get_stat("calls", 0)
    pending = [task["routine_id"] for task in job.pending_tasks]
    if "src" in pending:  # paused before the source ran
        assert done == 0 and pending == ["src"]
    else:
        assert done + pending.count("sleep") == 3, (done, pending)
    resumed = flow.resume(job)
    assert resumed.wait(WAIT)
    assert job.status is JobStatus.COMPLETED, job.errors
    assert sleeper.get_stat("calls") == 3


SCRIPT = """
import ray
from routilux import Flow
from routilux.strategies import RayStrategy
from tests.ray_routines import Pid

strategy = RayStrategy(max_workers=1, num_cpus=1)
flow = Flow(flow_id="owner", execution_strategy=strategy)
flow.add_routine(Pid(), "pid")
job = flow.execute("pid")
job.wait(120)
print(job.status, ray.is_initialized())
strategy.shutdown()
print(ray.is_initialized())
"""


def test_issue_12_a_strategy_that_connected_ray_disconnects_it(
    ray_instance: Any,
) -> None:
    # RAY_ADDRESS: the strategy's ray.init() joins the session's instance.
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={
            **os.environ,
            "RAY_ADDRESS": ray_instance.get_runtime_context().gcs_address,
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": str(root),
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["completed", "True", "False"], result.stderr
    # The instance it joined runs on.
    assert ray_instance.get(ray_instance.put(7), timeout=WAIT) == 7


def test_issue_12_ray_that_cannot_start_is_a_configuration_error(
    ray_instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**_: Any) -> None:
        raise ValueError("no cluster at that address")

    monkeypatch.setattr(ray_instance, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_instance, "init", refuse)
    strategy = RayStrategy(max_workers=1, address="ray://nowhere:10001")
    flow = Flow(flow_id="no-cluster", execution_strategy=strategy)
    flow.add_routine(Pid(), "pid")
    with pytest.raises(
        ConfigurationError, match=r"ray://nowhere:10001.*no cluster at that address"
    ):
        flow.execute("pid")
    monkeypatch.undo()
    flow.shutdown(wait=True, timeout=WAIT)
