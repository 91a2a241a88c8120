"""Flow dead letters: listing the activations that failed for good, and replaying them.

:class:`FlowDeadLetters` gives :class:`~routilux.Flow` its ``dead_letters`` and
``replay`` methods; the work is done by the runtime
(:mod:`routilux.runtime.dead_letters`). What a dead letter is, and which
activations leave one, is described in :mod:`routilux.dead_letter`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .checks import instance_of
from .exceptions import StrategyShutdownError

if TYPE_CHECKING:
    from .dead_letter import DeadLetter
    from .flow import Flow
    from .job_state import JobState

__all__ = ["FlowDeadLetters"]


class FlowDeadLetters:
    """The dead-letter methods of a flow (a base class of :class:`~routilux.Flow`)."""

    def dead_letters(
        self, job_id: str | None = None, include_replayed: bool = False
    ) -> list[DeadLetter]:
        """The flow's dead letters, oldest first. Thread-safe.

        With a checkpoint store that keeps dead letters (both built-in stores
        do) they come from the store: every letter the flow's jobs left, in this
        process or an earlier one, for a flow with the same ``flow_id``.
        Otherwise they come from memory, which holds the newest 10,000.

        Args:
            job_id: Only the letters of this job.
            include_replayed: Include letters :meth:`replay` already ran again.

        Raises:
            ConfigurationError: For a ``job_id`` that is not None or a str, or an
                ``include_replayed`` that is not a bool.
            CheckpointError: When the store cannot be read.

        .. versionadded:: 1.0
        """
        instance_of(job_id, (str, type(None)), "dead_letters: job_id", "None or a str")
        instance_of(include_replayed, bool, "dead_letters: include_replayed", "a bool")
        flow = _flow(self)
        return flow._runner.dead_letters.listed(
            flow.flow_id, flow.checkpoint_store, job_id, include_replayed
        )

    def replay(self, letters: Any) -> JobState:
        """Run dead letters again: in their own job while it is open, else anew.

        Each letter becomes one activation: the letter's routine and slot called
        with its payload, in the order given. When every letter comes from one
        job that is still open in this process — running on a strategy that does
        not block a caller's thread (``concurrent``), or paused — they join that
        job: it is returned, and runs them (a paused job holds them with the
        rest of its work until resumed). Otherwise they start one new job on the
        flow's strategy (a sequential flow returns when the job is done, a
        concurrent one at once); a sequential job still running in another
        thread counts as not open, since its lane may be draining there. The
        letters are marked replayed by the job that runs them (in memory and in
        the store), so :meth:`dead_letters` lists them no more; if they fail
        again, that job leaves new letters. A ``(routine, "replay",
        {"dead_letters": [letter ids]})`` record marks where they entered the
        job's history (the first record of a new job). Thread-safe.

        Args:
            letters: DeadLetters from :meth:`dead_letters` (a list or another
                iterable; not a single letter).

        Returns:
            The JobState of the job that runs them (the original, or a new one).

        Raises:
            ConfigurationError: When ``letters`` is empty, is not an iterable of
                DeadLetters, or holds one letter twice.
            ForeignJobError: For a letter of another flow.
            UnknownRoutineError, UnknownSlotError: For a letter whose routine or
                slot the flow does not have.
            JobStateError: For a letter already replayed.
            CheckpointError: When the store cannot record the new job or mark the
                letters (another process replayed one first); a new job then
                ends ``failed``, an open job goes on without them, and the
                letters are left as they were.
            StrategyShutdownError: After :meth:`shutdown`.

        .. versionadded:: 1.0
        """
        flow = _flow(self)
        if flow._runner.closed:
            raise StrategyShutdownError(
                f"flow {flow.flow_id!r} is shut down: cannot replay dead letters"
            )
        return flow._runner.replay(letters, flow._strategy_name, flow._max_workers)


def _flow(owner: FlowDeadLetters) -> Flow:
    # FlowDeadLetters is only ever a base of Flow.
    return cast("Flow", owner)
