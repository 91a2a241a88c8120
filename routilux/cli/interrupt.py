"""Ctrl-C while a command waits for a job: the job is cancelled, not abandoned.

A KeyboardInterrupt can land anywhere in the main thread, inside the runtime
or a hook too, where it may be recorded instead of raised. So while a job runs
the command takes SIGINT itself: the first Ctrl-C cancels every job the hooks
saw start (from a thread of its own, so even a sequential job running in the
main thread stops at its next activation); a second one interrupts at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..flow import Flow
    from .progress import Progress

__all__ = ["cancelling_on_ctrl_c"]


@contextlib.contextmanager
def cancelling_on_ctrl_c(flow: Flow, progress: Progress) -> Iterator[threading.Event]:
    """Within the block, Ctrl-C cancels the jobs started; the event tells it came.

    Nothing changes outside the main thread, or when SIGINT is not Python's
    default (a process started in the background ignores it).
    """
    interrupted = threading.Event()
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield interrupted
        return

    def cancel_started() -> None:
        for job in progress.jobs_started():
            flow.cancel(job, "interrupted")

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Thread(
            target=cancel_started, name="routilux-ctrl-c", daemon=True
        ).start()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
