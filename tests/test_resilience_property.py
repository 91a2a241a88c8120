"""Property: random errors in random flows never hang a job or vanish from it.

Hypothesis builds a flow of up to 20 routines (a DAG, sometimes with back edges and
self-loops; every routine emits a bounded number of times, so cycles end), gives
each routine an exception type, how many attempts of each activation raise, an
error handler (or none) and a flow-wide handler, and runs one job sequentially or on
1-4 threads. Then:

* ``wait_for_completion`` returns True (nothing hangs) and the job is final;
* the multiset of ``(routine_id, error type)`` raised equals the one recorded in
  ``job.errors`` (no error vanishes, none is invented);
* the status is the one the error policy predicts: ``failed`` exactly when a routine
  whose error policy stops the job is reachable, else ``completed`` with the
  predicted routine states.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, Routine


class CustomError(Exception):
    """An exception type routilux knows nothing about."""


ERROR_TYPES: tuple[type[Exception], ...] = (
    ValueError,
    KeyError,
    RuntimeError,
    CustomError,
    ZeroDivisionError,
)
ALWAYS = 99  # "every attempt raises"
HANDLERS = (
    "none",  # the flow's handler applies (or STOP)
    "stop",
    "continue",
    "skip",
    "retry",
    "optional",  # set_as_optional(strategy): never fails the job
    "critical",  # set_as_critical(max_retries): RETRY, fails the job when exhausted
)
TOLERANT = (ErrorStrategy.CONTINUE, ErrorStrategy.SKIP, ErrorStrategy.RETRY)
WAIT = 10.0  # seconds; a job of at most a few hundred no-op activations needs ms


@dataclass(frozen=True)
class Policy:
    """An error handler to build: a kind from HANDLERS and its settings."""

    kind: str
    max_retries: int = 0
    retryable: tuple[type[Exception], ...] | None = None
    optional_strategy: ErrorStrategy = ErrorStrategy.CONTINUE

    def build(self) -> ErrorHandler | None:
        if self.kind == "none":
            return None
        return ErrorHandler(
            self.kind,
            max_retries=self.max_retries,
            retry_delay=0.0,
            retryable_exceptions=self.retryable,
            sleep=lambda seconds: None,
        )

    def apply_to(self, routine: Routine) -> None:
        if self.kind == "optional":
            routine.set_as_optional(self.optional_strategy)
        elif self.kind == "critical":
            routine.set_as_critical(max_retries=self.max_retries, retry_delay=0.0)
        else:
            routine.set_error_handler(self.build())
            return
        handler = routine.get_error_handler()
        assert handler is not None
        handler.max_retries = self.max_retries
        handler.retry_delay = 0.0
        handler.retryable_exceptions = self.retryable or (Exception,)
        handler.sleep = lambda seconds: None

    @property
    def strategy(self) -> ErrorStrategy:
        if self.kind == "optional":
            return self.optional_strategy
        if self.kind == "critical":
            return ErrorStrategy.RETRY
        if self.kind == "none":  # no handler anywhere: STOP
            return ErrorStrategy.STOP
        return ErrorStrategy(self.kind)

    def recovers(self, error: type[Exception], failures: int) -> bool:
        """True when an activation raising ``failures`` times ends up succeeding."""
        if failures == 0:
            return True
        retried = self.retryable is None or issubclass(error, self.retryable)
        return (
            self.strategy is ErrorStrategy.RETRY
            and retried
            and failures <= self.max_retries
        )

    def outcome(self, error: type[Exception], failures: int) -> str:
        """The routine status an activation ends with."""
        if self.recovers(error, failures):
            return "completed"
        if self.strategy is ErrorStrategy.SKIP:
            return "skipped"
        if self.strategy is ErrorStrategy.CONTINUE:
            return "error_continued"
        if self.kind == "optional" and self.strategy is ErrorStrategy.RETRY:
            return "error_continued"
        return "failed"


@dataclass(frozen=True)
class Spec:
    """How one routine behaves."""

    error: type[Exception]
    failures: int  # attempts of each activation that raise (0: never)
    emit_first: bool  # emit before raising
    budget: int  # emits per job at most: bounds cycles
    policy: Policy


@dataclass(frozen=True)
class Case:
    specs: tuple[Spec, ...]
    edges: tuple[tuple[int, int], ...]
    flow_policy: Policy
    strategy: str
    workers: int

    def effective(self, index: int) -> Policy:
        own = self.specs[index].policy
        return own if own.kind != "none" else self.flow_policy

    def predict(self) -> tuple[str, dict[str, str]]:
        """Job status and routine states of a run where nothing is dropped."""
        out = collections.defaultdict(list)
        for src, dst in self.edges:
            out[src].append(dst)
        reached, todo = {0}, [0]
        while todo:
            index = todo.pop()
            spec = self.specs[index]
            policy = self.effective(index)
            if spec.emit_first or policy.recovers(spec.error, spec.failures):
                for dst in out[index]:
                    if dst not in reached:
                        reached.add(dst)
                        todo.append(dst)
        states = {}
        for index in reached:
            spec = self.specs[index]
            states[name(index)] = self.effective(index).outcome(
                spec.error, spec.failures
            )
        status = "failed" if "failed" in states.values() else "completed"
        return status, states


def name(index: int) -> str:
    return f"r{index:02d}"


class Raised:
    """What the routines raised: ``(routine_id, type name)``, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[str, str]] = []

    def add(self, routine_id: str, error: BaseException) -> None:
        with self._lock:
            self.items.append((routine_id, type(error).__name__))


class Erratic(Routine):
    """Raises on the first ``spec.failures`` attempts of each activation.

    Each emit carries a fresh token; the token tells this routine's activations
    apart, so retries of one activation are counted as attempts of it.
    """

    def __init__(self, routine_id: str, spec: Spec, raised: Raised) -> None:
        super().__init__()
        self.routine_id = routine_id
        self.spec = spec
        self.raised = raised
        self.guard = threading.Lock()
        self.attempts: dict[str, int] = {}
        self.emitted = 0
        self.define_slot("trigger", handler=self.work)
        self.define_slot("input", handler=self.work)
        self.define_event("output", ["token"])

    def work(self, **data: Any) -> None:
        token = str(data.get("token", "entry"))
        with self.guard:
            attempt = self.attempts[token] = self.attempts.get(token, 0) + 1
        failing = attempt <= self.spec.failures
        if self.spec.emit_first or not failing:
            self.emit_once()
        if failing:
            error = self.spec.error(f"{self.routine_id} attempt {attempt} of {token}")
            self.raised.add(self.routine_id, error)
            raise error

    def emit_once(self) -> None:
        with self.guard:
            if self.emitted >= self.spec.budget:
                return
            self.emitted += 1
            token = f"{self.routine_id}#{self.emitted}"
        self.emit("output", token=token)


retryables = st.one_of(
    st.none(),
    st.sets(st.sampled_from(ERROR_TYPES), min_size=1).map(
        lambda types: tuple(sorted(types, key=lambda t: t.__name__))
    ),
)


def policies(kinds: tuple[str, ...] = HANDLERS) -> st.SearchStrategy[Policy]:
    return st.builds(
        Policy,
        kind=st.sampled_from(kinds),
        max_retries=st.integers(0, 2),
        retryable=retryables,
        optional_strategy=st.sampled_from(TOLERANT),
    )


def specs(kinds: tuple[str, ...]) -> st.SearchStrategy[Spec]:
    return st.builds(
        Spec,
        error=st.sampled_from(ERROR_TYPES),
        failures=st.sampled_from((0, 0, 1, 2, 3, ALWAYS)),
        emit_first=st.booleans(),
        budget=st.integers(1, 3),
        policy=policies(kinds),
    )


@st.composite
def cases(draw: st.DrawFn, strategy: str) -> Case:
    count = draw(st.integers(1, 20))
    # Each flow uses a few of the handler kinds, so that some flows tolerate every
    # error and run to the end while others stop at the first.
    kinds = draw(st.lists(st.sampled_from(HANDLERS), min_size=1, unique=True))
    routines = draw(st.lists(specs(tuple(kinds)), min_size=count, max_size=count))
    # A parent for every routine but the entry keeps most of the flow reachable.
    edges = {(draw(st.integers(0, i - 1)), i) for i in range(1, count)}
    extra = st.tuples(st.integers(0, count - 1), st.integers(0, count - 1))
    more = draw(st.lists(extra, max_size=2 * count))
    if draw(st.booleans()):  # cycles and self-loops (bounded by the emit budgets)
        edges.update(more)
    else:
        edges.update((a, b) for a, b in more if a < b)
    workers = 1 if strategy == "sequential" else draw(st.integers(1, 4))
    flow_policy = draw(policies(HANDLERS[:5]))  # a flow has no optional/critical
    return Case(tuple(routines), tuple(sorted(edges)), flow_policy, strategy, workers)


def run_case(case: Case) -> tuple[JobState, list[tuple[str, str]], bool]:
    raised = Raised()
    flow = Flow(
        execution_strategy=case.strategy,
        max_workers=case.workers,
        error_handler=case.flow_policy.build(),
    )
    for index, spec in enumerate(case.specs):
        routine = Erratic(name(index), spec, raised)
        spec.policy.apply_to(routine)
        flow.add_routine(routine, name(index))
    for src, dst in case.edges:
        flow.connect(name(src), "output", name(dst), "input")
    done = False
    try:
        job = flow.execute(name(0))
        done = flow.wait_for_completion(timeout=WAIT)
    finally:
        # A hang must fail the test, not block it: then drop what is left.
        flow.shutdown(wait=done, timeout=WAIT)
    return job, raised.items, done


def check(case: Case) -> None:
    job, raised, done = run_case(case)
    assert done, f"wait_for_completion timed out; job {job.status}"
    assert job.is_done and job.status.is_final, job.status
    recorded = collections.Counter(
        (error["routine_id"], error["error_type"]) for error in job.errors
    )
    assert recorded == collections.Counter(raised)
    assert job.pending_tasks == []
    status, states = case.predict()
    event(f"job {status}")
    event(f"routines: {(len(case.specs) + 4) // 5 * 5} at most")
    event(f"errors recorded: {'none' if not raised else 'some'}")
    assert job.status == status, (status, job.routine_states)
    if status == "completed":
        got = {rid: state["status"] for rid, state in job.routine_states.items()}
        assert got == states
    else:
        failed = [s for s in job.routine_states.values() if s["status"] == "failed"]
        assert failed, job.routine_states
        assert job.cancel_source == "stop-on-error"


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.timeout(60)
@PROPERTY
@given(case=cases("sequential"))
def test_random_errors_sequential(case: Case) -> None:
    check(case)


@pytest.mark.timeout(60)
@PROPERTY
@given(case=cases("concurrent"))
def test_random_errors_concurrent(case: Case) -> None:
    check(case)


# -- Bugs found while writing the tests above ----------------------------------------


class Once(Routine):
    """Raises ConnectionError on every call; keeps its execution context."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.context: Any = None
        self.define_slot("trigger", handler=self.go)

    def go(self) -> None:
        self.calls += 1
        self.context = self.get_execution_context()
        raise ConnectionError(f"call {self.calls}")


def test_no_retry_attempt_starts_after_cancel() -> None:
    routine = Once()

    def cancel_while_waiting(seconds: float) -> None:
        # The wait before retry 1: the job is cancelled while it waits.
        routine.context.flow.cancel(routine.context.job_state, reason="enough")

    routine.set_error_handler(
        ErrorHandler("retry", max_retries=3, sleep=cancel_while_waiting)
    )
    with Flow() as flow:
        flow.add_routine(routine, "once")
        job = flow.execute("once")
    assert job.status == "cancelled"
    assert routine.calls == 1  # today: 2, the retry runs in a cancelled job


class LateRaiser(Routine):
    """Blocks until released, then raises: after its timeout has passed."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.finished = threading.Event()
        self.define_slot("trigger", handler=self.go)

    def go(self) -> None:
        self.release.wait(5)
        try:
            raise ValueError("raised after the deadline")
        finally:
            self.finished.set()


def test_error_raised_after_a_timeout_is_recorded() -> None:
    routine = LateRaiser()
    routine.set_timeout(0.05)
    routine.set_error_handler(ErrorHandler("continue"))
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(routine, "late")
    try:
        job = flow.execute("late")
        assert job.wait(timeout=5)
        routine.release.set()
        assert routine.finished.wait(5)
    finally:
        flow.shutdown()
    # Found by this work; fixed in 6212908 (the JobState had only the timeout).
    assert [e["error_type"] for e in job.errors] == [
        "RoutineTimeoutError",
        "ValueError",
    ]
