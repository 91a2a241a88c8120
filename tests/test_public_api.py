"""The public surface is exactly routilux.__all__; every exception is in the tree."""

from __future__ import annotations

import inspect
import re

import routilux
from routilux import exceptions


def test_all_is_sorted() -> None:
    assert routilux.__all__ == sorted(routilux.__all__)


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(routilux).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and name != "annotations"
    }
    assert set(routilux.__all__) - {"__version__"} == public


def test_every_public_name_has_a_docstring() -> None:
    for name in routilux.__all__:
        value = getattr(routilux, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__doc__, name


def _tree() -> set[str]:
    found: set[str] = set()
    pending = [routilux.RoutiluxError]
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return found


def test_exception_tree_matches_the_drawing() -> None:
    drawn = set(re.findall(r"([A-Z][A-Za-z]+Error)", exceptions.__doc__ or ""))
    drawn -= {"ValueError", "RuntimeError", "TimeoutError"}
    assert _tree() == drawn


def test_every_exception_class_derives_from_routilux_error() -> None:
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), routilux.RoutiluxError), name


def test_compatibility_module_paths() -> None:
    from routilux.connection import Connection
    from routilux.error_handler import ErrorHandler, ErrorStrategy
    from routilux.event import Event
    from routilux.execution_tracker import ExecutionTracker
    from routilux.flow import Flow
    from routilux.job_state import ExecutionRecord, JobState
    from routilux.routine import Routine
    from routilux.slot import Slot

    assert (
        Flow is routilux.Flow and Routine is routilux.Routine and Slot is routilux.Slot
    )
    assert Event is routilux.Event and Connection is routilux.Connection
    assert (
        ErrorHandler is routilux.ErrorHandler
        and ErrorStrategy is routilux.ErrorStrategy
    )
    assert JobState is routilux.JobState and ExecutionRecord is routilux.ExecutionRecord
    assert ExecutionTracker is routilux.ExecutionTracker


def test_issue_10_job_owned_error_is_public_and_pickles() -> None:
    import pickle

    assert "JobOwnedError" in routilux.__all__
    assert issubclass(routilux.JobOwnedError, routilux.JobStateError)
    error = routilux.JobOwnedError("owned", job_id="j", pid=3, host="h")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.job_id, copy.pid, copy.host) == ("owned", "j", 3, "h")
