"""The event loop that runs ``async def`` handlers.

One daemon thread per process runs one asyncio loop, started when the first async
handler is called. A pool worker that meets an async handler only schedules the
coroutine here and is free again at once, so a thousand handlers awaiting together
hold a handful of threads, not a thousand.

The loop's lock (``_lock``) guards only the start of the thread; it is never taken
together with a ledger's lock.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["AsyncGates", "call_soon", "loop_thread_id"]

_lock = threading.Lock()  # guards _loop and _thread while the loop starts
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _run(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(started.set)
    loop.run_forever()


def _the_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    loop = _loop
    if loop is not None:
        return loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            started = threading.Event()
            thread = threading.Thread(
                target=_run, args=(loop, started), name="routilux-asyncio", daemon=True
            )
            thread.start()
            started.wait()
            _thread, _loop = thread, loop
        return _loop


def call_soon(callback: Callable[..., Any], *args: Any) -> None:
    """Run ``callback(*args)`` on the event-loop thread. Thread-safe."""
    _the_loop().call_soon_threadsafe(callback, *args)


def loop_thread_id() -> int | None:
    """The event-loop thread's id, or None before it started."""
    thread = _thread
    return thread.ident if thread is not None else None


class AsyncGates:
    """Per-routine semaphores that hold ``async def`` handlers to max_concurrency.

    A thread strategy enforces a routine's ``max_concurrency`` on its workers, but
    an async handler leaves its worker at once: the limit then has to hold on the
    event loop, where the handlers actually wait. One semaphore per routine id,
    shared by every job of the flow; a changed limit gets a new semaphore (calls
    holding the old one finish under the old limit). Thread-safe.
    """

    def __init__(self) -> None:
        self._gates: dict[str, tuple[int, asyncio.Semaphore]] = {}
        self._lock = threading.Lock()  # guards _gates

    def gate(self, routine_id: str, limit: int) -> asyncio.Semaphore:
        """The semaphore admitting at most ``limit`` calls of ``routine_id``."""
        with self._lock:
            held = self._gates.get(routine_id)
            if held is None or held[0] != limit:
                held = (limit, asyncio.Semaphore(limit))
                self._gates[routine_id] = held
            return held[1]
