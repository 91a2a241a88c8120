"""Testing one routine alone, and recording what a routine receives.

* :func:`run_routine` calls one slot of a routine with a payload, outside any
  flow, and returns what the handler returned, raised and emitted.
* :class:`RecordingRoutine` is a sink that keeps every payload it receives, per
  job, for assertions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .. import membership
from ..exceptions import ConfigurationError, UnknownSlotError
from ..routine import Routine
from ..slot import Slot

__all__ = ["RecordingRoutine", "RoutineRun", "run_routine"]


@dataclass
class RoutineRun:
    """What one call of a routine's handler did.

    Attributes:
        returned: What the handler returned (None when it raised).
        error: What it raised, or None.
        emitted: ``(event, payload)`` for every emit, in order.
    """

    returned: Any = None
    error: BaseException | None = None
    emitted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def payloads(self, event: str) -> list[dict[str, Any]]:
        """The payloads emitted on ``event``, in order."""
        return [payload for name, payload in self.emitted if name == event]


def run_routine(routine: Routine, slot: str = "input", **data: Any) -> RoutineRun:
    """Call ``routine``'s ``slot`` with ``data``, alone, in this thread.

    The handler runs as it would in a flow (by its signature rules, after the
    slot's merge strategy), but outside any flow and job: what it emits is
    recorded, not delivered, and an exception it raises is returned in
    :attr:`RoutineRun.error`, not raised. The routine must not belong to a flow
    (build a fresh one for the test).

    Raises:
        UnknownSlotError: When the routine has no such slot (the message lists
            its slots).
        ConfigurationError: When the routine belongs to a flow.
    """
    target = routine.get_slot(slot)
    if target is None:
        raise UnknownSlotError(
            f"{type(routine).__name__} has no slot {slot!r}; it has "
            f"{sorted(routine.get_spec().slots)}"
        )
    if membership.wirings_of(routine):
        raise ConfigurationError(
            f"run_routine: the {type(routine).__name__} belongs to a flow; run a "
            "fresh instance alone"
        )
    run = RoutineRun()
    recorders = []
    for name in routine.get_spec().events:
        event = routine.get_event(name)
        assert event is not None
        recorder = Slot(f"record-{name}", None, _recorder(run, name))
        event.connect(recorder)
        recorders.append((event, recorder))
    try:
        run.returned = target.call_handler(target.merge(dict(data)), True)
    except Exception as exc:  # noqa: BLE001 - returned, for the test to look at
        run.error = exc
    finally:
        for event, recorder in recorders:
            event.disconnect(recorder)
    return run


def _recorder(run: RoutineRun, event: str) -> Any:
    def record(**payload: Any) -> None:
        run.emitted.append((event, payload))

    return record


class RecordingRoutine(Routine):
    """A sink that records every payload it receives, per job. Thread-safe.

    Its slot is ``input`` (every arrival, as it came). Connect any event to it.

    Attributes:
        received: Every payload, in arrival order, over all jobs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self._by_job: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()  # guards received and _by_job
        self.define_slot("input", handler=self._record)

    def _record(self, **payload: Any) -> None:
        context = self.get_execution_context()
        job_id = context.job_state.job_id if context is not None else ""
        with self._lock:
            self.received.append(payload)
            self._by_job.setdefault(job_id, []).append(payload)

    def received_in(self, job_id: str) -> list[dict[str, Any]]:
        """The payloads received in the job ``job_id``, in arrival order."""
        with self._lock:
            return list(self._by_job.get(job_id, []))

    def clear(self) -> None:
        """Forget everything received."""
        with self._lock:
            self.received.clear()
            self._by_job.clear()
