"""Small routines and a failing store for the issue 8 regression tests."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from routilux import CheckpointError, Routine
from routilux.persistence import SQLiteCheckpointStore

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: The longest any wait in these tests takes: a regression fails, never hangs.
GUARD = 10.0


class Fn(Routine):
    """Calls ``action(self, params)`` on ``trigger``; may emit ``out(value)``."""

    def __init__(self, action: Callable[[Fn, dict[str, Any]], Any]) -> None:
        super().__init__()
        self.action = action
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["value"])

    def go(self, **params: Any) -> Any:
        return self.action(self, params)


class Sink(Routine):
    """Records every ``value`` it receives on ``input`` (thread-safe).

    ``arrived`` is set once the first value is recorded.
    """

    def __init__(self, merge_strategy: Any = "override") -> None:
        super().__init__()
        self.values: list[Any] = []
        self.arrived = threading.Event()
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.take, merge_strategy=merge_strategy)

    def take(self, value: Any = None) -> None:
        with self._guard:
            self.values.append(value)
        self.arrived.set()


def noop(routine: Fn, params: dict[str, Any]) -> None:
    """An action that does nothing."""


def never(call: str, job: dict[str, Any] | None) -> bool:
    """A store that never fails."""
    return False


class FlakyStore(SQLiteCheckpointStore):
    """An in-memory SQLite store whose writes raise while ``fails(call, job)`` holds.

    ``call`` is ``"save_job"``, ``"record_step"`` or ``"log_step"`` (a step
    appending history to the log); ``job`` the document written
    (None for a step without one). A failing write raises CheckpointError, as a
    locked or full disk does, and changes nothing.
    """

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.fails: Callable[[str, dict[str, Any] | None], bool] = never
        self.calls = 0  # writes so far, failed ones included

    def _check(self, call: str, job: dict[str, Any] | None) -> None:
        self.calls += 1
        if self.fails(call, job):
            raise CheckpointError(f"injected failure of {call}: disk I/O error")

    def save_job(self, job: dict[str, Any]) -> None:
        self._check("save_job", job)
        super().save_job(job)

    def begin_job(
        self, job: dict[str, Any], added: Sequence[dict[str, Any]], owner: Any
    ) -> bool:
        # A job's start (document, entry activation and lease): the first save.
        self._check("save_job", job)
        return super().begin_job(job, added, owner)

    def record_step(
        self,
        job_id: str,
        *,
        finished: Sequence[str] = (),
        added: Sequence[dict[str, Any]] = (),
        job: dict[str, Any] | None = None,
    ) -> None:
        self._check("record_step", job)
        super().record_step(job_id, finished=finished, added=added, job=job)

    def log_step(
        self,
        job_id: str,
        *,
        finished: Sequence[str] = (),
        added: Sequence[dict[str, Any]] = (),
        history: Sequence[dict[str, Any]] = (),
        first: int = 0,
        job: dict[str, Any] | None = None,
        restart: bool = False,
    ) -> None:
        self._check("log_step", job)
        super().log_step(
            job_id,
            finished=finished,
            added=added,
            history=history,
            first=first,
            job=job,
            restart=restart,
        )
