"""DeadLetter: an activation that failed for good, kept to look at and run again.

A job keeps a dead letter for every activation whose handler's error ended it:

* the error after retrying was over (the retries ran out, or the error was not
  retryable), or with no retries at all, whatever the policy then did with it:
  STOP (the job fails), CONTINUE or SKIP (the job goes on);
* a routine timeout (:class:`~routilux.RoutineTimeoutError`);
* a call refused by an open circuit breaker (:class:`~routilux.CircuitOpenError`);
* a failed call whose retries a halt of the job cut short (its last error).

Not dead letters: activations a halted job dropped before they ran, errors
raised *around* a handler (a checkpoint store, a strategy), errors of slot
policies, and a handler's late error after its timeout already made one.

The flow keeps its dead letters in memory and, when it has a checkpoint store
that keeps them, in the store; :meth:`routilux.Flow.dead_letters` lists them and
:meth:`routilux.Flow.replay` runs them again as a new job.

.. versionadded:: 1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .exceptions import SerializationError

__all__ = ["DeadLetter"]

_TEXT = ("letter_id", "flow_id", "job_id", "routine_id", "slot", "error_type", "error")


@dataclass(frozen=True)
class DeadLetter:
    """An activation that failed for good: what ran, how it failed, and when.

    Made by the runtime (never by hand) and listed by
    :meth:`routilux.Flow.dead_letters`; :meth:`routilux.Flow.replay` runs
    letters again. Frozen: a letter marked replayed is a new object, the one
    listed before is unchanged. Equal letters have equal fields.

    Attributes:
        letter_id: Unique within the store (or the process, without one).
        flow_id: The flow whose job failed.
        job_id: The job the activation belonged to.
        routine_id: The routine whose handler failed.
        slot: The slot it was called through.
        payload: What the handler was called with, as a dict (append views
            as lists); run again as it is by :meth:`routilux.Flow.replay`.
            Treat it as read-only.
        error_type: The last error's class name.
        error: The last error's message.
        causes: The error's chain, nearest first: ``"Type: message"`` of its
            ``__cause__`` (or ``__context__``), of that one's, and so on, at
            most eight.
        attempts: Calls made (1 without retries; ``max_retries + 1`` when the
            retries ran out).
        failed_at: When the letter was made (Unix time).
        replayed_by: The id of the job that ran the letter again, or None.
    """

    letter_id: str
    flow_id: str
    job_id: str
    routine_id: str
    slot: str
    payload: dict[str, Any] = field(hash=False)
    error_type: str
    error: str
    causes: tuple[str, ...]
    attempts: int
    failed_at: float
    replayed_by: str | None = None

    @property
    def replayed(self) -> bool:
        """True once :meth:`routilux.Flow.replay` ran the letter again."""
        return self.replayed_by is not None

    def to_dict(self) -> dict[str, Any]:
        """The letter as a JSON-ready dict (as checkpoint stores keep it).

        ``causes`` is a list; the payload is the letter's own (not a copy).
        """
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["causes"] = list(self.causes)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> DeadLetter:
        """A letter from :meth:`to_dict` output.

        Raises:
            SerializationError: When ``data`` is not such a dict, naming the
                first field that is missing or of the wrong type.
        """
        if not isinstance(data, dict):
            raise SerializationError(
                f"a dead letter must be an object, got {type(data).__name__}"
            )
        name = data.get("letter_id")
        for key in _TEXT:
            _check(data, key, isinstance(data.get(key), str), "a string", name)
        _check(
            data, "payload", isinstance(data.get("payload"), dict), "an object", name
        )
        causes = data.get("causes")
        _check(
            data,
            "causes",
            isinstance(causes, list) and all(isinstance(c, str) for c in causes),
            "a list of strings",
            name,
        )
        attempts, failed_at = data.get("attempts"), data.get("failed_at")
        _check(data, "attempts", _is_count(attempts), "an int >= 1", name)
        _check(
            data,
            "failed_at",
            isinstance(failed_at, (int, float)) and not isinstance(failed_at, bool),
            "a number",
            name,
        )
        replayed_by = data.get("replayed_by")
        _check(
            data,
            "replayed_by",
            replayed_by is None or isinstance(replayed_by, str),
            "null or a string",
            name,
        )
        assert isinstance(causes, list)
        return cls(
            **{key: data[key] for key in _TEXT},
            payload=data["payload"],
            causes=tuple(causes),
            attempts=int(data["attempts"]),
            failed_at=float(data["failed_at"]),
            replayed_by=replayed_by,
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check(data: dict[str, Any], key: str, valid: bool, want: str, name: Any) -> None:
    if not valid:
        got = repr(data[key])[:80] if key in data else "nothing"
        raise SerializationError(
            f"dead letter {name!r}: {key} must be {want}, got {got}"
        )
