"""A flow's dead letters: made by the ledger, kept in memory and in the store.

The ledger makes a :class:`~routilux.DeadLetter` when it applies a handler's
error that ends an activation (:mod:`.ledger.failures`), and keeps it through
:meth:`DeadLetterBox.keep` after releasing its lock, before the activation counts
as settled: when a job's waiters wake, its letters are kept. The flow's
:class:`DeadLetterBox` holds the newest :data:`LIMIT` letters in memory and
writes each to the flow's checkpoint store when that store is a
:class:`~routilux.persistence.DeadLetterStore`; listing reads the store then, so
letters outlive the process. A store that fails raises here, and the ledger
fails the job with a :class:`~routilux.CheckpointError`.

Replaying (:func:`replay_plan`, then :meth:`DeadLetterBox.mark_replayed` once the
replay job is recorded) checks the letters, finds their routes, refuses letters
already replayed, and marks them replayed by the new job.

Locks: ``DeadLetterBox._lock`` guards the letters in memory. It is never held
together with a ledger's lock, nor while a store is called.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..dead_letter import DeadLetter
from ..exceptions import (
    CheckpointError,
    ConfigurationError,
    ForeignJobError,
    JobStateError,
    RoutiluxError,
    UnknownRoutineError,
    UnknownSlotError,
)
from ..merge import AppendView
from ..persistence.dead_letters import DeadLetterStore
from .invoker import safe_text
from .observers import log

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..routine import Routine
    from .activation import Activation, Route, RouteTable

__all__ = ["LIMIT", "DeadLetterBox", "make_letter", "replay_plan"]

#: Dead letters a flow keeps in memory: the newest ones (a store keeps them all).
LIMIT = 10_000
#: Links of an error's chain a letter keeps.
MAX_CAUSES = 8


def make_letter(activation: Activation, error: BaseException, text: str) -> DeadLetter:
    """The dead letter of an activation ``error`` ended.

    Called with no lock held: it reads the error's chain, which is user code.
    ``text`` is the error's message, already read.
    """
    job = activation.job.job_state
    route = activation.route
    return DeadLetter(
        letter_id=uuid.uuid4().hex,
        flow_id=job.flow_id,
        job_id=job.job_id,
        routine_id=route.routine_id,
        slot=route.slot.name,
        payload={
            key: list(value) if isinstance(value, AppendView) else value
            for key, value in activation.payload.items()
        },
        error_type=type(error).__name__,
        error=text,
        causes=causes_of(error),
        attempts=activation.attempts,
        failed_at=time.time(),
    )


def causes_of(error: BaseException) -> tuple[str, ...]:
    """``"Type: message"`` of each link of ``error``'s chain, nearest first."""
    causes: list[str] = []
    seen = {id(error)}
    link = _next(error)
    while link is not None and id(link) not in seen and len(causes) < MAX_CAUSES:
        seen.add(id(link))
        causes.append(f"{type(link).__name__}: {safe_text(link)}")
        link = _next(link)
    return tuple(causes)


def _next(error: BaseException) -> BaseException | None:
    if error.__cause__ is not None:
        return error.__cause__
    return None if error.__suppress_context__ else error.__context__


class DeadLetterBox:
    """The dead letters of one flow in memory (the newest ``limit``). Thread-safe.

    Args:
        limit: Letters kept in memory; the oldest go first.
    """

    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        # Guards _letters and evicted.
        self._lock = threading.Lock()
        self._letters: OrderedDict[str, DeadLetter] = OrderedDict()
        #: Letters pushed out of memory by newer ones.
        self.evicted = 0

    def keep(self, letter: DeadLetter, store: object) -> None:
        """Keep a letter in memory, then in ``store`` if it keeps dead letters.

        Raises:
            Exception: Whatever the store raised (the letter is in memory).
        """
        with self._lock:
            self._letters[letter.letter_id] = letter
            first = self.evicted == 0 and len(self._letters) > self._limit
            while len(self._letters) > self._limit:
                self._letters.popitem(last=False)
                self.evicted += 1
        if first:
            log.warning(
                "flow %s holds more than %d dead letters: the oldest leave memory "
                "(a checkpoint store keeps them all)",
                letter.flow_id,
                self._limit,
            )
        if isinstance(store, DeadLetterStore):
            store.add_dead_letter(letter.to_dict())

    def waiting(self) -> int:
        """Letters in memory that have not been replayed."""
        with self._lock:
            return sum(1 for letter in self._letters.values() if not letter.replayed)

    def listed(
        self,
        flow_id: str,
        store: object,
        job_id: str | None,
        include_replayed: bool,
    ) -> list[DeadLetter]:
        """The flow's letters, oldest first: from the store when it keeps them.

        Raises:
            CheckpointError: When the store cannot be read or holds a damaged
                letter.
        """
        if not isinstance(store, DeadLetterStore):
            with self._lock:
                letters = list(self._letters.values())
            return [
                letter
                for letter in letters
                if (job_id is None or letter.job_id == job_id)
                and (include_replayed or not letter.replayed)
            ]
        found = store.dead_letters(flow_id, job_id, include_replayed)
        try:
            return [DeadLetter.from_dict(item) for item in found]
        except RoutiluxError as exc:
            raise CheckpointError(
                f"{store!r} holds a damaged dead letter: {exc}"
            ) from exc

    def mark_replayed(
        self,
        letters: list[DeadLetter],
        job_id: str,
        stored: list[str],
        store: object,
    ) -> None:
        """Mark letters replayed by ``job_id``: the ``stored`` ones in the store.

        Raises:
            CheckpointError: When the store refuses (another process replayed
                one first) or cannot write; memory is left unchanged then.
        """
        if stored and isinstance(store, DeadLetterStore):
            store.mark_dead_letters_replayed(stored, job_id)
        with self._lock:
            for letter in letters:
                if letter.letter_id in self._letters:
                    self._letters[letter.letter_id] = dataclasses.replace(
                        letter, replayed_by=job_id
                    )

    def replayed_by(
        self, letters: list[DeadLetter], flow_id: str, store: object
    ) -> tuple[dict[str, str | None], list[str]]:
        """What is known of ``letters``: id -> replayed_by, and the stored ids."""
        known: dict[str, str | None] = {}
        with self._lock:
            for letter in letters:
                kept = self._letters.get(letter.letter_id)
                if kept is not None:
                    known[letter.letter_id] = kept.replayed_by
        stored: list[str] = []
        if isinstance(store, DeadLetterStore):
            wanted = {letter.letter_id for letter in letters}
            for job_id in sorted({letter.job_id for letter in letters}):
                for item in store.dead_letters(flow_id, job_id, True):
                    if item["letter_id"] in wanted:
                        known[item["letter_id"]] = item.get("replayed_by")
                        stored.append(item["letter_id"])
        return known, stored


def replay_plan(
    letters: Any,
    flow_id: str,
    routes: RouteTable,
    routines: Mapping[str, Routine],
    box: DeadLetterBox,
    store: object,
) -> tuple[list[DeadLetter], list[Route], list[str]]:
    """Check letters to replay: the letters, their routes and the stored ids.

    Raises:
        ConfigurationError: When ``letters`` is not a non-empty iterable of
            DeadLetters, or holds one letter twice.
        ForeignJobError: For a letter of another flow.
        UnknownRoutineError, UnknownSlotError: For a letter whose routine or
            slot the flow does not have (any more).
        JobStateError: For a letter already replayed.
    """
    checked = _checked(letters, flow_id)
    found = []
    for index, letter in enumerate(checked):
        route = routes.route_to(letter.routine_id, letter.slot)
        if route is None:
            where = f"replay: letters[{index}] ({letter.letter_id})"
            if letter.routine_id not in routines:
                raise UnknownRoutineError(
                    f"{where} targets routine {letter.routine_id!r}, which flow "
                    f"{flow_id!r} does not have"
                )
            raise UnknownSlotError(
                f"{where} targets slot {letter.slot!r} of routine "
                f"{letter.routine_id!r}, which has no such slot"
            )
        found.append(route)
    known, stored = box.replayed_by(checked, flow_id, store)
    for letter in checked:
        replayed = known.get(letter.letter_id, letter.replayed_by)
        if replayed is not None:
            raise JobStateError(
                f"replay: dead letter {letter.letter_id!r} was already replayed by "
                f"job {replayed!r}; list the flow's dead letters for those left"
            )
    return checked, found, stored


def _checked(letters: Any, flow_id: str) -> list[DeadLetter]:
    if isinstance(letters, (DeadLetter, str, bytes, dict)) or not hasattr(
        letters, "__iter__"
    ):
        raise ConfigurationError(
            "replay expects a list of DeadLetters (from flow.dead_letters()), got "
            f"{type(letters).__name__}"
        )
    checked = list(letters)
    if not checked:
        raise ConfigurationError("replay: no dead letters given: nothing to replay")
    seen: set[str] = set()
    for index, letter in enumerate(checked):
        if not isinstance(letter, DeadLetter):
            raise ConfigurationError(
                f"replay: letters[{index}] is a {type(letter).__name__}, not a "
                "DeadLetter (from flow.dead_letters())"
            )
        if letter.flow_id != flow_id:
            raise ForeignJobError(
                f"replay: dead letter {letter.letter_id!r} belongs to flow "
                f"{letter.flow_id!r}, not {flow_id!r}"
            )
        if letter.letter_id in seen:
            raise ConfigurationError(
                f"replay: dead letter {letter.letter_id!r} is given twice"
            )
        seen.add(letter.letter_id)
    return checked
