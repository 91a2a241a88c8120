"""Calls to one routine that start together travel to its actor in one Ray call.

Ray's own cost per actor call (a task submitted, its reply delivered) is most of
what an activation costs the driver. The :class:`Batcher` therefore gathers the
calls of each routine made in one turn of the runtime's event loop and sends
them as one ``call_many``, whose reply lists each call's reply in order; the
actor runs a batch's calls side by side on its threads. Calls of one routine
tend to take alike, so one slow call seldom holds up a fast one; a batch is
never larger than what was started at once, so a lone call goes alone, at once.

Everything here runs on the runtime's event loop thread: no lock is needed.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._binding import Spot

__all__ = ["Batcher"]

_Call = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class Batcher:
    """Gathers calls per routine key for one turn of the event loop."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[Spot, list[_Call]]] = {}
        self._loop_thread: int | None = None  # the event loop's thread, once seen

    def on_loop(self) -> bool:
        """True in the thread of the event loop this batcher sends from."""
        return self._loop_thread == threading.get_ident()

    def send(self, spot: Spot, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """The reply of ``call(*args)`` on ``spot``'s actor, sent with its batch.

        The future fails with Ray's error when the batch's Ray call fails.
        """
        loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        reply: asyncio.Future[Any] = loop.create_future()
        held = self._pending.get(spot.key)
        if held is None:
            self._pending[spot.key] = (spot, [(args, reply)])
            loop.call_soon(self._flush, spot.key)
        else:
            held[1].append((args, reply))
        return reply

    def _flush(self, key: str) -> None:
        spot, calls = self._pending.pop(key)
        try:
            if len(calls) == 1:
                ref = spot.actor.call.remote(*calls[0][0])
            else:
                ref = spot.actor.call_many.remote([args for args, _ in calls])
            sent = asyncio.wrap_future(ref.future())
        except BaseException as exc:  # noqa: BLE001 - each caller gets the error
            _fail(calls, exc)
            return
        sent.add_done_callback(lambda done: _deliver(done, calls))


def _deliver(done: asyncio.Future[Any], calls: list[_Call]) -> None:
    if done.cancelled():
        _fail(calls, asyncio.CancelledError())
        return
    error = done.exception()
    if error is not None:
        _fail(calls, error)
        return
    replies = done.result()
    if len(calls) == 1:
        replies = [replies]
    for (_, reply), value in zip(calls, replies, strict=True):
        if not reply.done():  # a caller that timed out has cancelled its own
            reply.set_result(value)


def _fail(calls: list[_Call], error: BaseException) -> None:
    for _, reply in calls:
        if not reply.done():
            reply.set_exception(error)
