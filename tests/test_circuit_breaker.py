"""CircuitBreaker: the state machine, counters, validation, documents and threads."""

from __future__ import annotations

import json
import math
import threading
from typing import Any

import pytest

from routilux.exceptions import (
    CircuitOpenError,
    ConfigurationError,
    RoutiluxError,
    SerializationError,
)
from routilux.resilience import CircuitBreaker, CircuitState


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, threshold: int = 3, timeout: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker(threshold, timeout, clock=clock, name="fetch")


def opened(clock: FakeClock, threshold: int = 3) -> CircuitBreaker:
    breaker = make(clock, threshold)
    for _ in range(threshold):
        breaker.before_call()
        breaker.record_failure()
    assert state_of(breaker) is CircuitState.OPEN
    return breaker


def state_of(breaker: CircuitBreaker) -> CircuitState:
    """Read the state through a call, so mypy does not narrow it between reads."""
    return breaker.state


def run_threads(count: int, target: Any) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_state_values_are_strings() -> None:
    assert [s.value for s in CircuitState] == ["closed", "open", "half_open"]
    assert str(CircuitState.HALF_OPEN) == "half_open"
    assert CircuitState("open") is CircuitState.OPEN


def test_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker = make(clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert state_of(breaker) is CircuitState.CLOSED
    breaker.before_call()
    breaker.record_failure()
    assert state_of(breaker) is CircuitState.OPEN
    assert breaker.stats()["opened_count"] == 1


def test_success_resets_consecutive_failures(clock: FakeClock) -> None:
    breaker = make(clock)
    for record in ("f", "f", "s", "f", "f"):
        breaker.before_call()
        breaker.record_failure() if record == "f" else breaker.record_success()
    assert state_of(breaker) is CircuitState.CLOSED
    stats = breaker.stats()
    assert (stats["consecutive_failures"], stats["failures"]) == (2, 4)


def test_fails_fast_while_open_and_counts_rejections(clock: FakeClock) -> None:
    breaker = opened(clock)
    clock.advance(2.5)
    with pytest.raises(CircuitOpenError, match=r"'fetch' is open: retry in 7\.500s"):
        breaker.before_call()
    called: list[int] = []
    with pytest.raises(CircuitOpenError):
        breaker.call(called.append, 1)
    assert called == []
    stats = breaker.stats()
    assert (stats["rejected"], stats["failures"], stats["state"]) == (2, 3, "open")


def test_circuit_open_error_is_in_the_tree() -> None:
    assert issubclass(CircuitOpenError, RoutiluxError)
    assert issubclass(CircuitOpenError, RuntimeError)


def test_message_without_a_name(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1, 5.0, clock=clock)
    breaker.record_failure()
    with pytest.raises(CircuitOpenError, match=r"^circuit breaker is open: retry in"):
        breaker.before_call()


def test_half_opens_when_clock_passes_reset_timeout(clock: FakeClock) -> None:
    breaker = opened(clock)
    clock.advance(9.999)
    assert state_of(breaker) is CircuitState.OPEN
    assert breaker.stats()["retry_in"] == pytest.approx(0.001)
    clock.advance(0.001)
    before = breaker.stats()
    assert state_of(breaker) is CircuitState.HALF_OPEN
    after = breaker.stats()
    assert before == after
    assert after["state"] == "half_open"
    assert after["retry_in"] == 0.0


def test_half_open_admits_one_trial_and_rejects_the_rest(clock: FakeClock) -> None:
    breaker = opened(clock)
    clock.advance(10.0)
    breaker.before_call()
    with pytest.raises(CircuitOpenError, match=r"'fetch' is half_open: .*trial"):
        breaker.before_call()
    assert breaker.stats()["rejected"] == 1


@pytest.mark.parametrize("round_", range(10))
def test_exactly_one_trial_among_racing_threads(clock: FakeClock, round_: int) -> None:
    breaker = opened(clock)
    clock.advance(10.0)
    barrier = threading.Barrier(8)
    admitted: list[int] = []
    rejected: list[CircuitOpenError] = []
    others: list[BaseException] = []

    def attempt() -> None:
        barrier.wait()
        try:
            breaker.before_call()
        except CircuitOpenError as exc:
            rejected.append(exc)
        except BaseException as exc:
            others.append(exc)
        else:
            admitted.append(1)

    run_threads(8, attempt)
    assert (len(admitted), len(rejected), others) == (1, 7, [])
    assert all("half_open" in str(exc) for exc in rejected)
    assert breaker.stats()["rejected"] == 7


def test_trial_success_closes(clock: FakeClock) -> None:
    breaker = opened(clock)
    clock.advance(10.0)
    breaker.before_call()
    breaker.record_success()
    assert state_of(breaker) is CircuitState.CLOSED
    stats = breaker.stats()
    assert (stats["consecutive_failures"], stats["retry_in"]) == (0, 0.0)
    for _ in range(5):
        breaker.before_call()


def test_trial_failure_reopens_with_a_fresh_timeout(clock: FakeClock) -> None:
    breaker = opened(clock)
    clock.advance(12.0)
    breaker.before_call()
    breaker.record_failure()
    stats = breaker.stats()
    assert (stats["state"], stats["opened_count"], stats["retry_in"]) == ("open", 2, 10)
    clock.advance(9.5)
    with pytest.raises(CircuitOpenError, match=r"retry in 0\.500s"):
        breaker.before_call()
    clock.advance(0.5)
    breaker.before_call()
    assert state_of(breaker) is CircuitState.HALF_OPEN


def test_zero_reset_timeout_half_opens_at_once(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1, 0, clock=clock)
    breaker.record_failure()
    assert state_of(breaker) is CircuitState.HALF_OPEN
    breaker.before_call()
    with pytest.raises(CircuitOpenError):
        breaker.before_call()


def test_late_results_while_open_change_only_counts(clock: FakeClock) -> None:
    breaker = opened(clock)
    clock.advance(4.0)
    breaker.record_success()
    breaker.record_failure()
    stats = breaker.stats()
    assert stats["state"] == "open"
    assert (stats["successes"], stats["failures"], stats["opened_count"]) == (1, 4, 1)
    assert stats["retry_in"] == 6.0


def test_release_frees_the_trial(clock: FakeClock) -> None:
    breaker = opened(clock)
    clock.advance(10.0)
    breaker.before_call()
    breaker.release()
    breaker.before_call()
    assert state_of(breaker) is CircuitState.HALF_OPEN
    stats = breaker.stats()
    assert (stats["rejected"], stats["failures"], stats["successes"]) == (0, 3, 0)


def test_call_records_success_and_failure(clock: FakeClock) -> None:
    breaker = make(clock, threshold=1)
    assert breaker.call(lambda a, *, b: a + b, 1, b=2) == 3

    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        breaker.call(boom)
    assert state_of(breaker) is CircuitState.OPEN
    stats = breaker.stats()
    assert (stats["successes"], stats["failures"]) == (1, 1)


def test_call_releases_on_base_exception(clock: FakeClock) -> None:
    breaker = opened(clock)
    clock.advance(10.0)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    assert breaker.stats()["failures"] == 3
    assert breaker.call(lambda: "ok") == "ok"
    assert state_of(breaker) is CircuitState.CLOSED


def test_stats_values(clock: FakeClock) -> None:
    breaker = make(clock, threshold=2, timeout=30)
    assert breaker.stats() == {
        "state": "closed",
        "consecutive_failures": 0,
        "failures": 0,
        "successes": 0,
        "rejected": 0,
        "opened_count": 0,
        "failure_threshold": 2,
        "reset_timeout": 30.0,
        "retry_in": 0.0,
    }
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(12.0)
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    assert breaker.stats() == {
        "state": "open",
        "consecutive_failures": 2,
        "failures": 2,
        "successes": 1,
        "rejected": 1,
        "opened_count": 1,
        "failure_threshold": 2,
        "reset_timeout": 30.0,
        "retry_in": 18.0,
    }
    assert json.loads(json.dumps(breaker.stats())) == breaker.stats()


def test_reset_closes_and_zeroes_counts(clock: FakeClock) -> None:
    breaker = opened(clock)
    breaker.reset()
    assert breaker.stats() == make(clock).stats()
    breaker.before_call()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None])
def test_failure_threshold_is_validated(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=bad)


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, True, "1", None])
def test_reset_timeout_is_validated(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="reset_timeout") as info:
        CircuitBreaker(reset_timeout=bad)
    assert isinstance(info.value, ValueError)


def test_defaults_use_the_monotonic_clock() -> None:
    breaker = CircuitBreaker()
    assert (breaker.failure_threshold, breaker.reset_timeout) == (5, 30.0)
    for _ in range(5):
        breaker.record_failure()
    assert state_of(breaker) is CircuitState.OPEN
    assert 29.0 < breaker.stats()["retry_in"] <= 30.0
    assert "state=open" in repr(breaker)


def test_serialize_round_trip(clock: FakeClock) -> None:
    breaker = opened(clock)
    data = breaker.serialize()
    assert data == {"failure_threshold": 3, "reset_timeout": 10.0}
    copy = CircuitBreaker.deserialize(json.loads(json.dumps(data)))
    assert copy.serialize() == data
    assert state_of(copy) is CircuitState.CLOSED
    assert CircuitBreaker.deserialize({}).serialize() == CircuitBreaker().serialize()


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"failure_threshold": 0},
        {"reset_timeout": "soon"},
        {"failure_threshold": 2, "extra": 1},
        {1: 2},
    ],
)
def test_deserialize_rejects_bad_documents(bad: Any) -> None:
    with pytest.raises(SerializationError, match="circuit breaker"):
        CircuitBreaker.deserialize(bad)


def test_counts_are_exact_under_threads(clock: FakeClock) -> None:
    breaker = make(clock, threshold=1_000_000)
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        for _ in range(1000):
            breaker.record_failure()
            breaker.record_success()

    run_threads(8, hammer)
    stats = breaker.stats()
    assert (stats["failures"], stats["successes"]) == (8000, 8000)
    assert (stats["state"], stats["consecutive_failures"]) == ("closed", 0)


def test_rejections_are_exact_under_threads(clock: FakeClock) -> None:
    breaker = opened(clock)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def hammer() -> None:
        barrier.wait()
        for _ in range(1000):
            try:
                breaker.before_call()
            except CircuitOpenError:
                pass
            except BaseException as exc:
                errors.append(exc)

    run_threads(8, hammer)
    assert errors == []
    assert breaker.stats()["rejected"] == 8000
