"""Issue 9: slot policies (fan-in): each, all_sources, Batch, Window, one's own."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from routilux import (
    AllSources,
    Batch,
    ConfigurationError,
    Flow,
    FlowHooks,
    JobFailedError,
    JobState,
    JobStatus,
    JoinIncompleteError,
    Routine,
    SlotPolicy,
    Window,
)
from routilux.policies import resolve_policy

WAIT = 30.0
STRATEGIES = ["sequential", "concurrent"]


class Start(Routine):
    """The entry: fans out one ``go`` event."""

    def __init__(self, rounds: int = 1) -> None:
        super().__init__()
        self.set_config(rounds=rounds)
        self.define_slot("trigger", handler=self.fire)
        self.define_event("go", ["n"])

    def fire(self) -> None:
        for n in range(self.get_config("rounds")):
            self.emit("go", n=n)


class Feeder(Routine):
    """Emits ``value`` (config) ``times`` times (config) when it hears ``go``."""

    def __init__(self, value: Any = 0, times: int = 1) -> None:
        super().__init__()
        self.set_config(value=value, times=times)
        self.define_slot("input", handler=self.feed)
        self.define_event("output", ["value"])

    def feed(self, n: int = 0) -> None:
        times = self.get_config("times")
        for i in range(times):
            self.emit("output", value=self.get_config("value") if times == 1 else i)


class Joiner(Routine):
    """Records every ``sources`` call (thread-safe)."""

    def __init__(self, policy: Any = "all_sources") -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.define_slot("input", handler=self.join, policy=policy)

    def join(self, sources: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append(sources)
        return sources


class Collector(Routine):
    """Records every ``items`` call (thread-safe)."""

    def __init__(self, policy: Any) -> None:
        super().__init__()
        self.calls: list[list[Any]] = []
        self.lock = threading.Lock()
        self.define_slot("input", handler=self.take, policy=policy)

    def take(self, items: list[dict[str, Any]]) -> int:
        with self.lock:
            self.calls.append([item["value"] for item in items])
        return len(items)


def _fan_in(
    strategy: str,
    feeders: dict[str, Feeder],
    target: Routine,
    workers: int = 4,
    rounds: int = 1,
) -> Flow:
    flow = Flow(
        flow_id=f"fan-in-{strategy}", execution_strategy=strategy, max_workers=workers
    )
    flow.add_routine(Start(rounds), "start")
    flow.add_routine(target, "target")
    for name, feeder in feeders.items():
        flow.add_routine(feeder, name)
        flow.connect("start", "go", name, "input")
        flow.connect(name, "output", "target", "input")
    return flow


# ---------------------------------------------------------------- all_sources


def test_all_sources_calls_once_per_job_with_every_payload_under_load() -> None:
    sources = {f"s{i:02d}": Feeder(value=i) for i in range(20)}
    joiner = Joiner()
    flow = _fan_in("concurrent", sources, joiner, workers=8)
    expected = {name: {"value": i} for i, name in enumerate(sources)}
    try:
        for _ in range(20):
            jobs = [flow.execute("start") for _ in range(500)]
            assert flow.wait_for_completion(WAIT)
            assert all(job.status is JobStatus.COMPLETED for job in jobs)
            assert len(joiner.calls) == 500  # exactly once per job
            assert all(call == expected for call in joiner.calls)
            assert [job.result()["target"] for job in jobs[:3]] == [expected] * 3
            joiner.calls.clear()
    finally:
        flow.shutdown(wait=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_all_sources_keep_all_gathers_every_payload_per_source(strategy: str) -> None:
    joiner = Joiner(AllSources(keep="all"))
    flow = _fan_in(strategy, {"a": Feeder(times=3), "b": Feeder(value=9)}, joiner)
    try:
        job = flow.execute("start")
        assert job.wait(WAIT) and job.status is JobStatus.COMPLETED
        # b's single payload completes the round; a's later payloads wait for a
        # next round that b never completes, so a flush calls with them.
        delivered = [
            {k: [p["value"] for p in v] for k, v in call.items()}
            for call in joiner.calls
        ]
        assert sum(len(call.get("a", [])) for call in delivered) == 3
        assert sum(len(call.get("b", [])) for call in delivered) == 1
    finally:
        flow.shutdown(wait=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_all_sources_rounds_repeat_within_a_job(strategy: str) -> None:
    joiner = Joiner()
    feeders = {"a": Feeder(value=1), "b": Feeder(value=2)}
    flow = _fan_in(strategy, feeders, joiner, rounds=3)
    try:
        job = flow.execute("start")
        assert job.wait(WAIT) and job.status is JobStatus.COMPLETED
        # each source delivers three times: three complete rounds (a source that
        # delivers twice before a round completes keeps only its latest)
        assert 1 <= len(joiner.calls) <= 3
        assert sum(len(call) for call in joiner.calls) >= 2 + len(joiner.calls) - 1
        if strategy == "sequential":  # FIFO: a, b, a, b, a, b
            assert joiner.calls == [{"a": {"value": 1}, "b": {"value": 2}}] * 3
    finally:
        flow.shutdown(wait=True)


class Silent(Feeder):
    """Connected, but never emits."""

    def feed(self, n: int = 0) -> None:
        return None


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_source_that_never_delivers_calls_with_what_arrived(strategy: str) -> None:
    joiner = Joiner()
    flow = _fan_in(strategy, {"a": Feeder(value=1), "quiet": Silent()}, joiner)
    try:
        job = flow.execute("start")
        assert job.wait(WAIT)
        assert job.status is JobStatus.COMPLETED
        assert joiner.calls == [{"a": {"value": 1}}]
    finally:
        flow.shutdown(wait=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_on_missing_skip_records_the_incomplete_join(strategy: str) -> None:
    joiner = Joiner(AllSources(on_missing="skip"))
    flow = _fan_in(strategy, {"a": Feeder(value=1), "quiet": Silent()}, joiner)
    try:
        job = flow.execute("start")
        assert job.wait(WAIT)
        assert job.status is JobStatus.COMPLETED
        assert joiner.calls == []
        notes = [r for r in job.execution_history if r.event_name == "join_incomplete"]
        assert [(r.routine_id, r.data) for r in notes] == [
            ("target", {"slot": "input", "missing": ["quiet"]})
        ]
    finally:
        flow.shutdown(wait=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_on_missing_fail_fails_the_job_naming_the_join(strategy: str) -> None:
    joiner = Joiner(AllSources(on_missing="fail"))
    flow = _fan_in(strategy, {"a": Feeder(value=1), "quiet": Silent()}, joiner)
    try:
        job = flow.execute("start")
        assert job.wait(WAIT)
        assert job.status is JobStatus.FAILED
        assert joiner.calls == []
        [error] = job.errors
        assert error.routine_id == "target"
        assert error.error_type == "JoinIncompleteError"
        assert "'target'" in error.message and "quiet" in error.message
        with pytest.raises(JobFailedError) as raised:
            job.result()
        assert isinstance(raised.value.__cause__, JoinIncompleteError)
        assert raised.value.__cause__.missing == ["quiet"]
        assert raised.value.__cause__.arrived == ["a"]
    finally:
        flow.shutdown(wait=True)


# ---------------------------------------------------------------- Batch, Window


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batch_of_seven_over_a_hundred_arrivals(strategy: str) -> None:
    collector = Collector(Batch(7))
    flow = _fan_in(strategy, {"a": Feeder(times=100)}, collector)
    try:
        job = flow.execute("start")
        assert job.wait(WAIT) and job.status is JobStatus.COMPLETED
        assert [len(call) for call in collector.calls] == [7] * 14 + [2]
        assert [v for call in collector.calls for v in call] == list(range(100))
        assert job.result() == {"target": 2}  # the last call: the remainder
    finally:
        flow.shutdown(wait=True)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedFeeder(Feeder):
    """Emits 0..times-1, moving a fake clock to ``times_at[i]`` before each."""

    def __init__(self, clock: FakeClock, times_at: list[float]) -> None:
        super().__init__(times=len(times_at))
        self.clock = clock
        self.times_at = times_at

    def feed(self, n: int = 0) -> None:
        for i, at in enumerate(self.times_at):
            self.clock.now = at
            self.emit("output", value=i)


def test_window_groups_arrivals_by_time_on_its_clock() -> None:
    clock = FakeClock()
    # windows of 1 s: [0, 0.5, 0.99] | [1.2, 2.1] (2.1 < 1.2 + 1) | [2.3] ... flush
    times_at = [0.0, 0.5, 0.99, 1.2, 2.1, 2.3, 5.0, 5.5]
    collector = Collector(Window(1.0, clock=clock))
    flow = _fan_in("sequential", {"a": TimedFeeder(clock, times_at)}, collector)
    try:
        job = flow.execute("start")
        assert job.status is JobStatus.COMPLETED
        assert collector.calls == [[0, 1, 2], [3, 4], [5], [6, 7]]
    finally:
        flow.shutdown(wait=True)


# ---------------------------------------------------------------- one's own


class Pairs:
    """A policy of one's own: a call per two arrivals; a flush drops an odd one."""

    name = "pairs"

    def open(self, sources: tuple[str, ...]) -> PairInbox:
        return PairInbox()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class PairInbox:
    def __init__(self) -> None:
        self.held: list[dict[str, Any]] = []

    def offer(self, source: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        self.held.append(payload)
        if len(self.held) < 2:
            return []
        pair, self.held = self.held, []
        return [{"items": pair}]

    def flush(self) -> list[dict[str, Any]]:
        self.held = []
        return []

    def waiting(self) -> bool:
        return bool(self.held)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_policy_of_ones_own(strategy: str) -> None:
    assert isinstance(Pairs(), SlotPolicy)
    collector = Collector(Pairs())
    flow = _fan_in(strategy, {"a": Feeder(times=5)}, collector)
    try:
        job = flow.execute("start")
        assert job.wait(WAIT) and job.status is JobStatus.COMPLETED
        assert collector.calls == [[0, 1], [2, 3]]
        assert flow.routines["target"].get_spec().slots["input"].policy == "pairs"
    finally:
        flow.shutdown(wait=True)


class Broken(Pairs):
    def open(self, sources: tuple[str, ...]) -> PairInbox:
        inbox = PairInbox()

        def offer(source: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
            raise KeyError("bug in the policy")

        inbox.offer = offer  # type: ignore[method-assign]
        return inbox


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_policy_that_raises_fails_the_job_and_every_wait_returns(
    strategy: str,
) -> None:
    collector = Collector(Broken())
    flow = _fan_in(strategy, {"a": Feeder(times=3)}, collector)
    try:
        job = flow.execute("start")
        assert job.wait(WAIT)
        assert job.status is JobStatus.FAILED
        assert collector.calls == []
        [error] = job.errors
        assert (error.routine_id, error.error_type) == ("target", "KeyError")
        assert "pairs" in (job.cancel_reason or "")
        assert flow.wait_for_completion(WAIT)
    finally:
        flow.shutdown(wait=True)


# ---------------------------------------------------------------- bad input


def test_bad_policies_are_refused_naming_what_was_wrong() -> None:
    routine = Routine()
    with pytest.raises(ConfigurationError, match="unknown slot policy 'every'"):
        routine.define_slot("a", policy="every")
    with pytest.raises(ConfigurationError, match="takes no merge strategy"):
        routine.define_slot("b", merge_strategy="append", policy=Batch(2))
    with pytest.raises(ConfigurationError, match="Batch size"):
        Batch(0)
    with pytest.raises(ConfigurationError, match="Window seconds"):
        Window(float("inf"))
    with pytest.raises(ConfigurationError, match="keep"):
        AllSources(keep="first")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="a slot policy must be"):
        resolve_policy(object())  # type: ignore[arg-type]
    assert routine.get_slot("a") is None and routine.get_slot("b") is None
    slot = routine.define_slot("c", policy="all_sources")
    with pytest.raises(ConfigurationError, match="takes no merge strategy"):
        slot.merge_strategy = "append"
    assert slot.merge_strategy == "override"
    assert slot.policy == AllSources()


class Watch(FlowHooks):
    """Hands over the job, and says when routine ``a`` has delivered."""

    def __init__(self) -> None:
        self.jobs: list[JobState] = []
        self.a_done = threading.Event()

    def on_job_start(self, job: JobState) -> None:
        self.jobs.append(job)

    def on_activation_end(self, job: JobState, activation: Any, outcome: Any) -> None:
        if activation.routine_id == "a":
            self.a_done.set()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_cancel_drops_what_waits_in_an_inbox(strategy: str) -> None:
    release = threading.Event()

    class Holding(Feeder):
        def feed(self, n: int = 0) -> None:
            release.wait(WAIT)

    joiner = Joiner()
    watch = Watch()
    flow = _fan_in(strategy, {"a": Feeder(value=1), "held": Holding()}, joiner)
    flow.add_hooks(watch)
    runner = threading.Thread(target=flow.execute, args=("start",))
    try:
        runner.start()  # blocks on the sequential strategy: run it aside
        assert watch.a_done.wait(WAIT)  # a's payload waits in the inbox
        [job] = watch.jobs
        assert flow.cancel(job)
        release.set()
        assert job.wait(WAIT)
        runner.join(WAIT)
        assert job.status is JobStatus.CANCELLED
        assert joiner.calls == []
    finally:
        release.set()
        flow.shutdown(wait=True)
