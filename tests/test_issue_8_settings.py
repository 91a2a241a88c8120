"""Issue 8: bad settings are refused at once, naming the setting and the value.

Every refused call leaves the object as it was. Before the fix these values were
accepted (and failed much later, in another thread) or raised a bare
AttributeError/TypeError/IsADirectoryError.
"""

from __future__ import annotations

import math
import re
import threading
from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    CheckpointError,
    CircuitBreaker,
    ConfigurationError,
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobState,
    RoutiluxError,
    Routine,
    SerializationError,
)
from routilux.checks import MAX_SECONDS
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore

from .routines import Source

if TYPE_CHECKING:
    from pathlib import Path

NAN, INF = math.nan, math.inf
TOO_LONG = 1e10  # past threading.TIMEOUT_MAX on Linux: killed the watchdog thread


_ANY: Any = object()


def refused(setting: str, value: object = _ANY) -> Any:
    """``pytest.raises`` for a ConfigurationError naming ``setting`` and ``value``."""
    shown = "" if value is _ANY else re.escape(repr(value)[:40])
    return pytest.raises(ConfigurationError, match=rf"{setting}.*{shown}")


def handler_settings(handler: ErrorHandler) -> dict[str, Any]:
    return {**handler.serialize(), "sleep": handler.sleep}


# -- seconds ---------------------------------------------------------------------


def test_issue_8_max_seconds_is_within_what_threads_can_wait() -> None:
    assert 0 < MAX_SECONDS <= threading.TIMEOUT_MAX
    assert MAX_SECONDS <= 365 * 24 * 3600


@pytest.mark.parametrize("bad", [TOO_LONG, MAX_SECONDS * 2, NAN, INF, -INF])
def test_issue_8_routine_timeout_past_the_cap(bad: float) -> None:
    routine = Source()
    routine.set_timeout(2.0)
    with refused("timeout", bad):
        routine.set_timeout(bad)
    assert routine.get_timeout() == 2.0
    routine.set_timeout(MAX_SECONDS)
    assert routine.get_timeout() == MAX_SECONDS


@pytest.mark.parametrize("bad", [TOO_LONG, NAN, INF, True])
def test_issue_8_flow_default_timeout_past_the_cap(bad: object) -> None:
    with refused("default_timeout", bad):
        Flow(default_timeout=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [TOO_LONG, NAN, INF, 0, "1"])
def test_issue_8_execute_timeout_past_the_cap_starts_nothing(bad: object) -> None:
    with Flow("f") as flow:
        source = Source()
        flow.add_routine(source, "source")
        with refused("timeout", bad):
            flow.execute("source", timeout=bad)  # type: ignore[arg-type]
        assert source.stats() == {}
        assert flow.wait_for_completion(timeout=0)
        job = flow.execute("source", timeout=5.0)
        assert job.status == "completed"


# -- ErrorHandler ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "bad"),
    [
        ("max_retries", 2.5),
        ("max_retries", "3"),
        ("max_retries", True),
        ("max_retries", -1),
        ("max_retries", None),
        ("retry_delay", INF),
        ("retry_delay", NAN),
        ("retry_delay", -1.0),
        ("retry_delay", "1"),
        ("retry_delay", TOO_LONG),
        ("retry_delay", False),
        ("retry_backoff", INF),
        ("retry_backoff", NAN),
        ("retry_backoff", 0),
        ("retry_backoff", -2.0),
        ("retry_backoff", "2"),
        ("is_critical", "yes"),
        ("is_critical", 1),
    ],
)
def test_issue_8_error_handler_settings(setting: str, bad: object) -> None:
    settings: dict[str, Any] = {setting: bad}
    with refused(setting, bad) as info:
        ErrorHandler(ErrorStrategy.RETRY, **settings)
    assert isinstance(info.value, RoutiluxError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [ValueError, (ValueError, "KeyError"), [42]])
def test_issue_8_error_handler_retryable_exceptions(bad: object) -> None:
    with refused("retryable_exceptions"):
        ErrorHandler(retryable_exceptions=bad)  # type: ignore[arg-type]


def test_issue_8_error_handler_sleep_must_be_callable() -> None:
    with refused("sleep"):
        ErrorHandler(sleep=1.0)  # type: ignore[arg-type]


def test_issue_8_error_handler_good_settings_still_work() -> None:
    handler = ErrorHandler(
        "retry",
        max_retries=0,
        retry_delay=0,
        retry_backoff=0.5,
        retryable_exceptions=(KeyError,),
        is_critical=True,
    )
    assert (handler.max_retries, handler.retry_delay) == (0, 0.0)
    assert handler.retry_backoff == 0.5
    assert handler.retryable_exceptions == (KeyError,)


def test_issue_8_retry_delay_never_grows_past_what_threads_can_wait() -> None:
    handler = ErrorHandler("retry", max_retries=10_000, retry_backoff=10.0)
    assert handler.delay_before(1) == 1.0
    assert handler.delay_before(3) == 100.0
    assert handler.delay_before(10_000) == MAX_SECONDS  # 10.0**9999 overflows
    assert ErrorHandler("retry", retry_delay=0).delay_before(10_000) == 0.0


@pytest.mark.parametrize(
    ("setting", "bad"),
    [
        ("max_retries", 2.5),
        ("max_retries", "3"),
        ("max_retries", True),
        ("retry_delay", -1),
        ("retry_delay", "1"),
        ("retry_backoff", 0),
        ("is_critical", "no"),
        ("is_optional", 1),
        ("strategy", "explode"),
        ("retryable_exceptions", "ValueError"),
        ("retryable_exceptions", [1]),
    ],
)
def test_issue_8_error_handler_deserialize_refuses_and_changes_nothing(
    setting: str, bad: object
) -> None:
    handler = ErrorHandler("retry", max_retries=4, retry_delay=0.5)
    before = handler_settings(handler)
    data = {**handler.serialize(), setting: bad}
    with pytest.raises(SerializationError, match=setting) as info:
        handler.deserialize(data)
    assert isinstance(info.value, RoutiluxError)
    assert handler_settings(handler) == before


def test_issue_8_error_handler_deserialize_refuses_a_non_dict() -> None:
    handler = ErrorHandler()
    with pytest.raises(SerializationError, match="list"):
        handler.deserialize([])  # type: ignore[arg-type]


def test_issue_8_error_handler_deserialize_round_trip() -> None:
    handler = ErrorHandler("retry", 5, 0.25, 3.0, (KeyError,), is_critical=True)
    handler.is_optional = True
    copy = ErrorHandler()
    copy.deserialize(handler.serialize())
    assert copy.serialize() == handler.serialize()


def test_issue_8_routine_error_handler_settings_leave_the_routine_unchanged() -> None:
    routine = Source()
    routine.set_as_critical(max_retries=2)
    handler = routine.get_error_handler()
    bads: list[dict[str, Any]] = [
        {"max_retries": 2.5},
        {"retry_delay": INF},
        {"retry_backoff": NAN},
    ]
    for bad in bads:
        with pytest.raises(ConfigurationError, match=next(iter(bad))):
            routine.set_as_critical(**bad)
        assert routine.get_error_handler() is handler
    with refused("error_handler"):
        routine.set_error_handler("retry")  # type: ignore[arg-type]
    assert routine.get_error_handler() is handler


# -- Flow ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [True, False, 0, 2.0, "10"])
def test_issue_8_flow_history_limit(bad: object) -> None:
    with refused("history_limit", bad):
        Flow(history_limit=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [42, 1.5, object(), b"path"])
def test_issue_8_flow_checkpoint_store(bad: object) -> None:
    with pytest.raises(
        ConfigurationError, match=rf"checkpoint_store.*{type(bad).__name__}"
    ):
        Flow(checkpoint_store=bad)  # type: ignore[arg-type]


def test_issue_8_flow_checkpoint_store_accepts_paths_and_stores(
    tmp_path: Path,
) -> None:
    class Where:
        def __fspath__(self) -> str:
            return str(tmp_path / "pathlike.db")

    for target in (str(tmp_path / "a.db"), tmp_path / "b.db", Where()):
        with Flow(checkpoint_store=target) as flow:  # type: ignore[arg-type]
            assert isinstance(flow.checkpoint_store, SQLiteCheckpointStore)
    store = JsonFileCheckpointStore(tmp_path / "json")
    with store, Flow(checkpoint_store=store) as flow:
        assert flow.checkpoint_store is store


def test_issue_8_flow_refuses_before_opening_a_store(tmp_path: Path) -> None:
    target = tmp_path / "never.db"
    bads: list[dict[str, Any]] = [
        {"history_limit": True},
        {"default_timeout": TOO_LONG},
        {"error_handler": "stop"},
        {"flow_id": 7},
    ]
    for bad in bads:
        with pytest.raises(ConfigurationError, match=next(iter(bad))):
            Flow(checkpoint_store=target, **bad)
    assert list(tmp_path.iterdir()) == []


def test_issue_8_flow_refuses_a_bad_error_handler() -> None:
    with refused("error_handler"):
        Flow(error_handler=ErrorStrategy.STOP)  # type: ignore[arg-type]


def test_issue_8_flow_settings_unchanged_after_a_refused_setting() -> None:
    with Flow("f", "concurrent", 2) as flow:
        before = (flow.execution_strategy, flow.max_workers)
        with refused("max_workers", True):
            flow.set_execution_strategy("concurrent", True)
        assert (flow.execution_strategy, flow.max_workers) == before


# -- cancel, pause, resume -------------------------------------------------------


@pytest.mark.parametrize("method", ["cancel", "pause"])
@pytest.mark.parametrize("bad", ["job-id-string", 42, None])
def test_issue_8_cancel_and_pause_take_a_job_state(method: str, bad: object) -> None:
    with (
        Flow("f") as flow,
        pytest.raises(
            ConfigurationError,
            match=rf"Flow\.{method}: job_state must be a JobState, got "
            rf"{type(bad).__name__}",
        ),
    ):
        getattr(flow, method)(bad)


@pytest.mark.parametrize("bad", [42, None, b"id"])
def test_issue_8_resume_takes_a_job_state_or_an_id(bad: object) -> None:
    with (
        Flow("f") as flow,
        pytest.raises(
            ConfigurationError,
            match=rf"Flow\.resume: job_state must be a JobState or a job id, got "
            rf"{type(bad).__name__}",
        ),
    ):
        flow.resume(bad)  # type: ignore[arg-type]


def test_issue_8_resume_by_id_still_reaches_the_store() -> None:
    with (
        SQLiteCheckpointStore(":memory:") as store,
        Flow("f", checkpoint_store=store) as flow,
        pytest.raises(CheckpointError, match="no-such-job"),
    ):
        flow.resume("no-such-job")


# -- stores and files ------------------------------------------------------------


@pytest.mark.parametrize("bad", [NAN, INF, -1.0, True, "5", 3e6])
def test_issue_8_sqlite_busy_timeout(bad: object, tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with pytest.raises(CheckpointError, match="busy_timeout") as info:
        SQLiteCheckpointStore(path, busy_timeout=bad)  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, ConfigurationError)
    assert not path.exists()


def test_issue_8_sqlite_busy_timeout_bounds_accepted() -> None:
    for good in (0, 0.5, 2_147_483):
        with SQLiteCheckpointStore(":memory:", busy_timeout=good) as store:
            assert store.list_jobs() == []


def test_issue_8_job_state_load_of_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match=rf"{tmp_path.name}.*directory"):
        JobState.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        JobState.load(tmp_path / "missing.json")


def test_issue_8_flow_load_of_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match=rf"{tmp_path.name}.*directory"):
        Flow.load(tmp_path)


# -- circuit breaker and concurrency ---------------------------------------------


@pytest.mark.parametrize("bad", [0, 2.5, True, "3"])
def test_issue_8_circuit_breaker_threshold(bad: object) -> None:
    with refused("failure_threshold", bad):
        CircuitBreaker(failure_threshold=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [NAN, INF, -1.0, TOO_LONG, False])
def test_issue_8_circuit_breaker_reset_timeout(bad: object) -> None:
    with refused("reset_timeout", bad):
        CircuitBreaker(reset_timeout=bad)  # type: ignore[arg-type]


def test_issue_8_routine_circuit_breaker_unchanged_after_refusal() -> None:
    routine = Source()
    breaker = routine.set_circuit_breaker(3, 10.0)
    bads: list[dict[str, Any]] = [{"failure_threshold": True}, {"reset_timeout": NAN}]
    for bad in bads:
        with pytest.raises(ConfigurationError, match=next(iter(bad))):
            routine.set_circuit_breaker(**bad)
        assert routine.get_circuit_breaker() is breaker


@pytest.mark.parametrize("bad", [True, False, 0, 1.0, "2"])
def test_issue_8_routine_max_concurrency(bad: object) -> None:
    routine = Source()
    routine.set_max_concurrency(2)
    with refused("max_concurrency", bad):
        routine.set_max_concurrency(bad)  # type: ignore[arg-type]
    assert routine.get_max_concurrency() == 2


def test_issue_8_routine_class_max_concurrency_bool() -> None:
    with refused("max_concurrency", True):

        class Bad(Routine):
            max_concurrency = True


# -- documents -------------------------------------------------------------------


def _document() -> dict[str, Any]:
    with Flow("doc") as flow:
        source = Source()
        source.set_as_critical(max_retries=1, retry_delay=0.5)
        source.set_circuit_breaker(2, 5.0)
        flow.add_routine(source, "source")
        return flow.serialize()


@pytest.mark.parametrize(
    ("where", "path"),
    [
        (("default_timeout",), r"^default_timeout: "),
        (("routines", "source", "timeout"), r"^routines\.source\.timeout: "),
        (
            ("routines", "source", "error_handler", "retry_delay"),
            r"^routines\.source\.error_handler\.retry_delay: ",
        ),
        (
            ("routines", "source", "circuit_breaker", "reset_timeout"),
            r"^routines\.source\.circuit_breaker\.reset_timeout: ",
        ),
    ],
)
def test_issue_8_documents_with_seconds_past_the_cap(
    where: tuple[str, ...], path: str
) -> None:
    document = _document()
    parent = document
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = TOO_LONG
    with pytest.raises(SerializationError, match=path):
        Flow.deserialize(document)
    with Flow("target") as target:
        with pytest.raises(SerializationError, match=path):
            target.deserialize(document)
        assert (target.flow_id, target.default_timeout) == ("target", None)
