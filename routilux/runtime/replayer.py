"""Replaying dead letters: running them again, in their job or in a new one.

:class:`Replayer` gives :class:`~routilux.runtime.runner.FlowRunner` its
``replay`` (``flow.replay_dead_letters``): letters all of one job that is still
open (running on a non-blocking strategy, or paused) join that job; the others
run as a new job. Either way each letter is marked replayed, by the job that
runs it, once the job has taken it (see :mod:`.dead_letters`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import CheckpointError, RoutiluxError
from ..job_state import JobState
from .activation import Activation
from .dead_letters import replay_plan
from .resumer import Resumer

if TYPE_CHECKING:
    from .dead_letters import DeadLetterBox

__all__ = ["Replayer"]


class Replayer(Resumer):
    """The replay part of a flow's runner (a base class of ``FlowRunner``)."""

    # Set by FlowRunner.
    dead_letters: DeadLetterBox

    def replay(self, letters: Any, name: str, workers: int) -> JobState:
        """Run dead letters again, and mark them replayed by the job that runs them.

        Letters all of one job that is still open (running on a non-blocking
        strategy, or paused) join that job; others run as a new job.
        """
        self._wait_for_room()
        flow, box = self._flow, self.dead_letters
        store = flow.checkpoint_store
        checked, routes, stored = replay_plan(
            letters, flow.flow_id, self.routes(), flow.routines, box, store
        )
        ids = [letter.letter_id for letter in checked]
        origins = {letter.job_id for letter in checked}
        if len(origins) == 1:
            (origin,) = origins
            open_run = self._jobs.get(origin) or self._paused.get(origin)
            if open_run is not None:
                joined = [
                    Activation(open_run, route, dict(letter.payload))
                    for route, letter in zip(routes, checked, strict=True)
                ]

                def mark_joined() -> None:
                    box.mark_replayed(checked, origin, stored, store)

                try:
                    rejoined = open_run.rejoin(joined, ids, mark_joined)
                except Exception as exc:
                    if isinstance(exc, RoutiluxError):
                        raise
                    raise CheckpointError(
                        f"dead letters could not join job {origin!r}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                if rejoined:
                    return open_run.job_state
        strategy = self.strategy(name, workers)
        run = self._new_run(JobState._for_run(flow.flow_id), strategy.open_lane())
        run.lane_blocks = strategy.blocking
        activations = [
            Activation(run, route, dict(letter.payload))
            for route, letter in zip(routes, checked, strict=True)
        ]
        job_id = run.job_state.job_id

        def mark() -> None:
            box.mark_replayed(checked, job_id, stored, store)

        self._jobs.add(run)
        self._begin(run, run.replay, activations, ids, mark)
        return run.job_state
