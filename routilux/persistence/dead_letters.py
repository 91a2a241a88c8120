"""The seam for stores that keep dead letters, beside jobs and pending work.

A :class:`DeadLetterStore` keeps the dead letters of the flows that use it (see
:class:`routilux.DeadLetter`) so they outlive the process: a flow built again on
the same store lists them with :meth:`routilux.Flow.dead_letters` and replays
them with :meth:`routilux.Flow.replay`. Both built-in stores implement it; a
:class:`~routilux.persistence.CheckpointStore` of one's own that does not keeps
its flow's dead letters in memory only.

A letter is the dict :meth:`routilux.DeadLetter.to_dict` makes::

    {"letter_id": str, "flow_id": str, "job_id": str, "routine_id": str,
     "slot": str, "payload": {...}, "error_type": str, "error": str,
     "causes": [str, ...], "attempts": int, "failed_at": float,
     "replayed_by": str | None}

Every failure raises :class:`routilux.CheckpointError`, as for the other methods
of a store.

.. versionadded:: 1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from ..exceptions import CheckpointError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "MISSING",
    "DeadLetterStore",
    "LetterRow",
    "check_ids",
    "letter_row",
    "not_markable",
]

#: ``not_markable``'s ``replayed_by`` for a letter the store does not hold.
MISSING: Any = object()


@runtime_checkable
class DeadLetterStore(Protocol):
    """A store that keeps dead letters. Implementations are thread-safe.

    .. versionadded:: 1.0
    """

    def add_dead_letter(self, letter: dict[str, Any]) -> None:
        """Keep a dead letter; one with the same ``letter_id`` is replaced.

        Replacing keeps the letter's place in the list and its ``replayed_by``
        (a job resumed after a crash may fail the same activation again).

        Raises:
            CheckpointError: For a letter without string ``letter_id``,
                ``flow_id`` and ``job_id``, or one that is not JSON-ready, or
                when the store cannot write; nothing is written then.
        """

    def dead_letters(
        self,
        flow_id: str | None = None,
        job_id: str | None = None,
        include_replayed: bool = False,
    ) -> list[dict[str, Any]]:
        """Return the kept letters, oldest first.

        Args:
            flow_id: Only letters of this flow.
            job_id: Only letters of this job.
            include_replayed: Include letters already replayed.
        """

    def mark_dead_letters_replayed(
        self, letter_ids: Sequence[str], job_id: str
    ) -> None:
        """Record that job ``job_id`` replays these letters, all or none.

        Raises:
            CheckpointError: When a letter is unknown or already replayed
                (nothing is changed then), or the store cannot write.
        """


class LetterRow(NamedTuple):
    """The indexed fields of a letter, checked (internal)."""

    letter_id: str
    flow_id: str
    job_id: str
    replayed_by: str | None


def letter_row(letter: Any, where: str) -> LetterRow:
    """Check a letter's indexed fields and return them.

    Args:
        letter: The letter dict.
        where: The store's file or directory, for error messages.

    Raises:
        CheckpointError: When the letter is not a dict, or a field is missing or
            of the wrong type.
    """
    if not isinstance(letter, Mapping):
        raise CheckpointError(
            f"{where}: a dead letter must be a dict, got {type(letter).__name__}"
        )
    texts = []
    for key in ("letter_id", "flow_id", "job_id"):
        value = letter.get(key)
        if not isinstance(value, str):
            raise CheckpointError(
                f"{where}: dead letter {letter.get('letter_id')!r} needs a string "
                f"{key!r}, got {value!r:.80}"
            )
        texts.append(value)
    replayed_by = letter.get("replayed_by")
    if replayed_by is not None and not isinstance(replayed_by, str):
        raise CheckpointError(
            f"{where}: dead letter {texts[0]!r}: replayed_by must be None or a "
            f"string, got {replayed_by!r:.80}"
        )
    return LetterRow(texts[0], texts[1], texts[2], replayed_by)


def check_ids(letter_ids: Sequence[str], job_id: str, where: str) -> list[str]:
    """Check ``mark_dead_letters_replayed`` arguments; the ids as a list.

    Raises:
        CheckpointError: For ids or a job id that are not strings, or an id
            given twice.
    """
    ids = list(letter_ids) if not isinstance(letter_ids, str) else [letter_ids]
    if not isinstance(job_id, str) or not all(isinstance(i, str) for i in ids):
        raise CheckpointError(
            f"{where}: mark_dead_letters_replayed needs letter ids and a job id "
            f"as strings, got {letter_ids!r:.80} and {job_id!r:.80}"
        )
    if len(set(ids)) != len(ids):
        raise CheckpointError(f"{where}: a dead letter id is given twice: {ids!r:.80}")
    return ids


def not_markable(letter_id: str, replayed_by: Any, where: str) -> CheckpointError:
    """The error for a letter that cannot be marked replayed.

    Args:
        letter_id: The letter.
        replayed_by: The job that replayed it, or :data:`MISSING` when the store
            does not hold it.
        where: The store's file or directory, for error messages.
    """
    if replayed_by is MISSING:
        return CheckpointError(f"{where}: no dead letter {letter_id!r}")
    return CheckpointError(
        f"{where}: dead letter {letter_id!r} was already replayed by job "
        f"{replayed_by!r}"
    )
