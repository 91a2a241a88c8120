"""JobState documents: a job written as JSON, and read back.

:class:`JobStateDocuments` gives :class:`~routilux.JobState` its ``serialize``,
``deserialize``, ``save`` and ``load``; the document's layout and checks are in
:mod:`routilux.job_documents`, value encoding in :mod:`routilux.serialization`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import orjson
from pydantic import ValidationError

from ._compat import InstanceOrClassMethod
from .exceptions import JobStateError, SerializationError
from .job_documents import (
    adopt_record,
    check_pending,
    invalid,
    job_document,
    job_fields,
    read_history,
    snapshot,
)
from .job_status import JobStatus
from .record_log import RecordLog
from .records import ErrorRecord, RoutineState
from .serialization import ClassPolicy, from_json, read_file, write_atomic

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterable
    from pathlib import Path

    from .job_state import HistoryEntry, JobState

__all__ = ["JobStateDocuments"]


class JobStateDocuments:
    """The document methods of a job (a base class of :class:`~routilux.JobState`)."""

    if TYPE_CHECKING:  # JobState's own fields and private attributes
        job_id: str
        status: JobStatus
        routine_states: dict[str, RoutineState]
        errors: list[ErrorRecord]
        pending_tasks: list[dict[str, Any]]
        _owner_lock: threading.Lock | None
        _history: RecordLog[HistoryEntry]

        @property
        def is_owned(self) -> bool:  # noqa: D102 - JobState documents it
            ...

        def _mark_done(self) -> None: ...

    def serialize(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO datetimes) including the execution history.

        The document carries ``schema_version`` and ``kind``. Payloads, pause
        points, routine states, errors and history data are written in the tagged
        encoding (see the durability guide), so :meth:`deserialize` gives back
        the same types and values.

        Raises:
            SerializationError: For a value no encoding holds (an ``object()``,
                a lambda, a socket...), naming the job and the path of the value
                (``pending_tasks[0].payload.items[3].price``).
        """
        lock = self._owner_lock
        if lock is None:
            self._adopt_plain_records()
            fields, history = snapshot(_job(self)), self._history.snapshot()
        else:
            with lock:  # a consistent snapshot while workers run
                fields, history = snapshot(_job(self)), self._history.snapshot()
        return job_document(self.job_id, fields, history)

    def _adopt_plain_records(self) -> None:
        # 0.9-style code may store plain dicts in routine_states and errors.
        states: dict[str, Any] = self.routine_states  # may hold plain dicts
        errors: list[Any] = self.errors
        for routine_id, state in list(states.items()):
            if not isinstance(state, RoutineState):
                self.routine_states[routine_id] = adopt_record(
                    RoutineState, state, routine_id
                )
        for index, error in enumerate(list(errors)):
            if not isinstance(error, ErrorRecord):
                self.errors[index] = adopt_record(
                    ErrorRecord, error, f"errors[{index}]"
                )

    @InstanceOrClassMethod
    def deserialize(
        owner: Any,
        data: dict[str, Any],
        *,
        allowed_classes: Iterable[type] | None = None,
    ) -> JobState:
        """Rebuild a JobState from :meth:`serialize` output.

        Called on the class it returns a new JobState. Called on an instance, as
        routilux 0.9 code does (``job = JobState(); job.deserialize(data)``), it
        fills that instance and returns it. Documents without ``schema_version``
        (written before it was added) load.

        Args:
            data: The document.
            allowed_classes: When given, the only classes whose values (enum
                members, pydantic models, dataclasses) the document may
                rebuild. By default any such class the process has imported
                may be (nothing is ever imported).

        Raises:
            SerializationError: For anything but a JobState document, naming the
                path of the problem (``execution_history[3].timestamp``); an
                instance is then left as it was.
            JobStateError: Called on a job a flow runs (it is read-only).
        """
        classes = ClassPolicy(allowed_classes)
        if isinstance(owner, type):
            return owner._from_document(data, classes)  # type: ignore[attr-defined,no-any-return]
        if owner.is_owned:
            raise JobStateError(
                f"job {owner.job_id!r} is run by a flow: it cannot be replaced by a "
                "document (JobState.deserialize(data) makes a new one)"
            )
        loaded = type(owner)._from_document(data, classes)
        object.__setattr__(owner, "__dict__", loaded.__dict__)
        object.__setattr__(
            owner, "__pydantic_fields_set__", loaded.__pydantic_fields_set__
        )
        object.__setattr__(owner, "__pydantic_private__", loaded.__pydantic_private__)
        return owner  # type: ignore[no-any-return]

    @classmethod
    def _from_document(cls, data: dict[str, Any], classes: ClassPolicy) -> JobState:
        try:
            job_class = cast("type[JobState]", cls)
            fields, history = job_fields(job_class, data, classes)
            state = job_class.model_validate(fields)
            check_pending(state.pending_tasks)
            entries = read_history(history)
        except SerializationError:
            raise
        except ValidationError as exc:
            raise SerializationError(invalid(exc, "")) from exc
        except Exception as exc:  # a last resort for whatever slipped past the checks
            raise SerializationError(
                f"not a valid JobState document: {type(exc).__name__}: {exc}"
            ) from exc
        state._history = RecordLog(4, None, entries)
        if state.status.is_final or state.status is JobStatus.PAUSED:
            state._mark_done()
        return state

    def save(self, path: str | Path) -> None:
        """Write the JobState as JSON to ``path``, creating parent directories.

        The file is replaced in one step: a reader never sees half of it.

        Raises:
            SerializationError: As :meth:`serialize`; the file is then left as
                it was.
        """
        write_atomic(path, orjson.dumps(self.serialize(), option=orjson.OPT_INDENT_2))

    @classmethod
    def load(
        cls, path: str | Path, *, allowed_classes: Iterable[type] | None = None
    ) -> JobState:
        """Read a JobState written by :meth:`save`.

        Args:
            path: The file.
            allowed_classes: See :meth:`deserialize`.

        Raises:
            FileNotFoundError: When ``path`` does not exist.
            SerializationError: When ``path`` is a directory or the file is not a
                JobState document (the message names the file).
        """
        raw = read_file(path)
        try:
            return cls.deserialize(from_json(raw), allowed_classes=allowed_classes)
        except SerializationError as exc:
            raise SerializationError(f"{path}: {exc}") from exc


def _job(owner: JobStateDocuments) -> JobState:
    # JobStateDocuments is only ever a base of JobState.
    return cast("JobState", owner)
