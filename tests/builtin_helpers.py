"""Running one built-in routine in a flow, on either strategy, and saving it."""

from __future__ import annotations

from typing import Any

from routilux import Flow, JobState, Routine

WAIT = 30.0
# History entries that are not emits.
_NOT_EMITS = {"start", "completed", "error", "error_continued"}


class Feed(Routine):
    """The entry: passes its entry parameters on as one ``output`` event."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("output")

    def go(self, **payload: Any) -> None:
        self.emit("output", **payload)


def run(
    routine: Routine, strategy: str, slot: str = "input", **payload: Any
) -> JobState:
    """Run ``feed -> routine`` once with ``payload``; return the finished job."""
    with Flow(execution_strategy=strategy) as flow:
        flow.add_routine(Feed(), "feed")
        flow.add_routine(routine, "r")
        flow.connect("feed", "output", "r", slot)
        job = flow.execute("feed", payload)
        assert job.wait(WAIT)
    return job


def emits(job: JobState, routine_id: str = "r") -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` of every emit of ``routine_id`` in the job, in order."""
    return [
        (record.event_name, dict(record.data))
        for record in job.get_execution_history(routine_id)
        if record.event_name not in _NOT_EMITS
    ]


def output(routine: Routine, strategy: str, slot: str = "input", **payload: Any) -> Any:
    """What the routine emitted for ``payload``: its one emit's data."""
    job = run(routine, strategy, slot, **payload)
    assert job.status.value == "completed", [e.message for e in job.errors]
    (emitted,) = emits(job)
    return emitted[1]


def failure(
    routine: Routine, strategy: str, slot: str = "input", **payload: Any
) -> str:
    """The message of the one error the job recorded (the job failed)."""
    job = run(routine, strategy, slot, **payload)
    assert job.status.value == "failed"
    (error,) = job.errors
    return error.message


def round_trip(routine: Routine) -> Routine:
    """Save a flow holding ``routine`` as JSON, load it back, and check equality."""
    with Flow() as flow:
        flow.add_routine(routine, "r")
        raw = flow.to_json()
    with Flow.from_json(raw) as loaded:
        assert loaded.to_json() == raw
        rebuilt = loaded.routines["r"]
    assert type(rebuilt) is type(routine)
    assert rebuilt is not routine
    return rebuilt
