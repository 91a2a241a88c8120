"""Issue 9, item 5: ``ErrorHandler(on_exhausted=...)`` and ``set_as_optional``."""

from __future__ import annotations

from typing import Any

import pytest

from routilux import (
    ConfigurationError,
    ErrorHandler,
    ErrorStrategy,
    Flow,
    RoutiluxError,
    Routine,
    SerializationError,
)

WAIT = 30.0


class Failing(Routine):
    """The entry: raises ``kind`` on every call (or only on the first ``failures``)."""

    def __init__(
        self, failures: int = 1000, kind: type[Exception] = ValueError
    ) -> None:
        super().__init__()
        self.failures = failures
        self.kind = kind
        self.calls = 0
        self.define_slot("trigger", handler=self.work)

    def work(self, **data: Any) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.kind(f"call {self.calls} failed")


def run(routine: Routine, strategy: str) -> Any:
    with Flow(execution_strategy=strategy) as flow:
        flow.add_routine(routine, "entry")
        job = flow.execute("entry")
        assert job.wait(WAIT)
    return job


def retry(**settings: Any) -> ErrorHandler:
    return ErrorHandler("retry", max_retries=2, retry_delay=0.0, **settings)


@pytest.mark.parametrize(
    ("on_exhausted", "job_status", "routine_status"),
    [
        (None, "failed", "failed"),
        ("stop", "failed", "failed"),
        ("continue", "completed", "error_continued"),
        ("skip", "completed", "skipped"),
        (ErrorStrategy.SKIP, "completed", "skipped"),
    ],
)
def test_issue_9_on_exhausted_decides_what_exhausted_retries_do(
    strategy: str, on_exhausted: Any, job_status: str, routine_status: str
) -> None:
    routine = Failing()
    routine.set_error_handler(retry(on_exhausted=on_exhausted))
    job = run(routine, strategy)
    assert routine.calls == 3
    assert job.status == job_status
    state = job.routine_states["entry"]
    assert state["status"] == routine_status
    assert state["retry_count"] == 2
    assert [e["attempt"] for e in job.errors] == [1, 2, 3]


def test_issue_9_on_exhausted_applies_to_errors_that_are_not_retried(
    strategy: str,
) -> None:
    routine = Failing(kind=KeyError)
    routine.set_error_handler(
        retry(retryable_exceptions=(ValueError,), on_exhausted="skip")
    )
    job = run(routine, strategy)
    assert routine.calls == 1
    assert job.status == "completed"
    assert job.routine_states["entry"]["status"] == "skipped"


def test_issue_9_a_retry_that_succeeds_ignores_on_exhausted(strategy: str) -> None:
    routine = Failing(failures=2)
    routine.set_error_handler(retry(on_exhausted="skip"))
    job = run(routine, strategy)
    assert job.status == "completed"
    assert job.routine_states["entry"]["status"] == "completed"


def test_issue_9_default_keeps_optional_routines_tolerant() -> None:
    handler = retry()
    assert handler.on_exhausted is None
    assert handler.final_strategy() is ErrorStrategy.STOP
    handler.is_optional = True
    assert handler.final_strategy() is ErrorStrategy.CONTINUE
    handler.is_critical = True
    assert handler.final_strategy() is ErrorStrategy.STOP
    assert ErrorHandler("skip").final_strategy() is ErrorStrategy.SKIP
    assert ErrorHandler("continue").final_strategy() is ErrorStrategy.CONTINUE
    assert retry(on_exhausted="skip").final_strategy() is ErrorStrategy.SKIP
    assert not retry(on_exhausted="stop").handle_error(ValueError())
    assert retry(on_exhausted="continue").handle_error(ValueError())


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"strategy": "retry", "on_exhausted": "retry"}, "on_exhausted must be"),
        ({"strategy": "retry", "on_exhausted": "later"}, "on_exhausted must be"),
        ({"strategy": "retry", "on_exhausted": 3}, "on_exhausted must be"),
        ({"strategy": "stop", "on_exhausted": "skip"}, "'retry' strategy only"),
        ({"strategy": "skip", "on_exhausted": "stop"}, "'retry' strategy only"),
        (
            {"strategy": "retry", "is_critical": True, "on_exhausted": "skip"},
            "contradicts is_critical",
        ),
    ],
)
def test_issue_9_on_exhausted_is_checked(settings: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigurationError, match="on_exhausted") as info:
        ErrorHandler(**settings)
    assert words in str(info.value)
    assert isinstance(info.value, RoutiluxError)


def test_issue_9_critical_with_on_exhausted_stop_is_allowed() -> None:
    handler = ErrorHandler("retry", is_critical=True, on_exhausted="stop")
    assert handler.on_exhausted is ErrorStrategy.STOP


def test_issue_9_on_exhausted_round_trips_and_is_left_out_when_unset() -> None:
    handler = retry(on_exhausted="skip")
    data = handler.serialize()
    assert data["on_exhausted"] == "skip"
    copy = ErrorHandler()
    copy.deserialize(data)
    assert copy.on_exhausted is ErrorStrategy.SKIP
    assert copy.serialize() == data
    assert "on_exhausted" not in retry().serialize()
    # A document without it (written before it existed) names a strategy: None.
    copy.deserialize(retry().serialize())
    assert "on_exhausted" not in copy.serialize()
    # A partial document without a strategy keeps the current setting.
    kept = retry(on_exhausted="continue")
    kept.deserialize({"max_retries": 5})
    assert (kept.on_exhausted, kept.max_retries) == (ErrorStrategy.CONTINUE, 5)
    assert "on_exhausted='skip'" in repr(handler)


@pytest.mark.parametrize(
    "data",
    [
        {"strategy": "retry", "on_exhausted": "retry"},
        {"strategy": "stop", "on_exhausted": "skip"},
    ],
)
def test_issue_9_deserialize_refuses_a_bad_on_exhausted(data: dict[str, Any]) -> None:
    handler = retry(on_exhausted="continue")
    before = handler.serialize()
    with pytest.raises(SerializationError, match="on_exhausted"):
        handler.deserialize(data)
    assert handler.serialize() == before


def test_issue_9_on_exhausted_survives_a_flow_document() -> None:
    routine = Failing()
    routine.set_error_handler(retry(on_exhausted="skip"))
    flow = Flow(flow_id="doc")
    flow.add_routine(routine, "entry")
    document = flow.serialize()
    assert document["routines"]["entry"]["error_handler"]["on_exhausted"] == "skip"
    rebuilt = Flow.deserialize(document).routines["entry"].get_error_handler()
    assert rebuilt is not None and rebuilt.on_exhausted is ErrorStrategy.SKIP
    document["routines"]["entry"]["error_handler"]["on_exhausted"] = "later"
    with pytest.raises(SerializationError, match=r"error_handler\.on_exhausted"):
        Flow.deserialize(document)


def test_issue_9_set_as_optional_keeps_the_retry_settings(strategy: str) -> None:
    waits: list[float] = []
    routine = Failing()
    own = ErrorHandler(
        "retry",
        max_retries=4,
        retry_delay=0.25,
        retry_backoff=3.0,
        retryable_exceptions=(ValueError,),
        sleep=waits.append,
    )
    routine.set_error_handler(own)
    routine.set_as_optional(ErrorStrategy.RETRY)
    handler = routine.get_error_handler()
    assert handler is not None
    assert handler.is_optional and not handler.is_critical
    assert (handler.strategy, handler.max_retries) == (ErrorStrategy.RETRY, 4)
    assert (handler.retry_delay, handler.retry_backoff) == (0.25, 3.0)
    assert handler.retryable_exceptions == (ValueError,)
    assert handler.sleep is own.sleep
    assert not own.is_optional  # a handler shared with other routines is left alone
    job = run(routine, strategy)
    assert routine.calls == 5
    assert waits == [0.25, 0.75, 2.25, 6.75]
    assert job.status == "completed"
    assert job.routine_states["entry"]["status"] == "error_continued"


def test_issue_9_set_as_optional_without_a_strategy_keeps_the_handlers() -> None:
    routine = Failing()
    routine.set_error_handler(retry(on_exhausted="skip"))
    routine.set_as_optional()
    handler = routine.get_error_handler()
    assert handler is not None and handler.is_optional
    assert handler.strategy is ErrorStrategy.RETRY
    assert handler.on_exhausted is ErrorStrategy.SKIP
    assert handler.final_strategy() is ErrorStrategy.SKIP


def test_issue_9_set_as_optional_drops_what_contradicts_it() -> None:
    routine = Failing()
    routine.set_as_critical(max_retries=2, retry_delay=0.0)
    routine.set_as_optional()
    handler = routine.get_error_handler()
    assert handler is not None
    assert not handler.is_critical and handler.max_retries == 2
    assert handler.final_strategy() is ErrorStrategy.CONTINUE
    routine.set_error_handler(retry(on_exhausted="stop"))
    routine.set_as_optional()
    handler = routine.get_error_handler()
    assert handler is not None and handler.on_exhausted is None
    assert handler.final_strategy() is ErrorStrategy.CONTINUE
    routine.set_error_handler(retry(on_exhausted="skip"))
    routine.set_as_optional(ErrorStrategy.CONTINUE)  # not RETRY: no on_exhausted
    handler = routine.get_error_handler()
    assert handler is not None and handler.on_exhausted is None
    assert handler.strategy is ErrorStrategy.CONTINUE


def test_issue_9_set_as_optional_without_a_handler_continues() -> None:
    routine = Failing()
    routine.set_as_optional()
    handler = routine.get_error_handler()
    assert handler is not None and handler.is_optional
    assert handler.strategy is ErrorStrategy.CONTINUE
    routine.set_as_optional(ErrorStrategy.SKIP)
    handler = routine.get_error_handler()
    assert handler is not None and handler.strategy is ErrorStrategy.SKIP


def test_issue_9_set_as_optional_refuses_an_unknown_strategy() -> None:
    routine = Failing()
    own = retry()
    routine.set_error_handler(own)
    with pytest.raises(ConfigurationError, match="explode"):
        routine.set_as_optional("explode")
    assert routine.get_error_handler() is own
