"""Issue 8: adversarial review of the day's runtime changes (branch wip-review).

Each test is a reproducer of something the review tried: a bug found (and fixed
on this branch), or a scenario that held. Every wait is bounded: a regression
fails, never hangs.
"""

from __future__ import annotations

import inspect
import sys
import threading
from typing import Any

from routilux.latch import Latch

GUARD = 10.0


def _pause_after(
    func: Any, line_text: str
) -> tuple[Any, threading.Event, threading.Event]:
    """A tracer stopping the next call of ``func`` right after a line ran.

    Returns ``(tracer, reached, go)``: install ``tracer`` with ``sys.settrace``
    in the thread to stop; ``reached`` is set when it stopped there (after the
    line holding ``line_text``, before the next one), and it goes on once
    ``go`` is set.
    """
    lines, first = inspect.getsourcelines(func)
    (offset,) = [i for i, text in enumerate(lines) if line_text in text]
    code, after = func.__code__, first + offset
    reached, go = threading.Event(), threading.Event()
    previous: list[int] = []

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            if previous and previous[-1] == after and not reached.is_set():
                reached.set()
                go.wait(GUARD)
            previous.append(frame.f_lineno)
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        return local if frame.f_code is code else None

    return tracer, reached, go


def test_latch_set_racing_a_resume_wakes_every_waiter() -> None:
    # A job pauses (its latch is set) while a resume (clear) and a new waiter
    # land between set() writing the flag and reading the gate. The waiter
    # from before the pause must be woken (the latch was set), and the new
    # waiter must not be (the latch is closed again).
    latch = Latch()
    before: list[bool] = []
    first = threading.Thread(target=lambda: before.append(latch.wait(GUARD)))
    first.start()
    while latch._gate is None or not latch._gate.locked():
        threading.Event().wait(0.001)
    tracer, reached, go = _pause_after(Latch.set, "self._flag = True")

    def setter() -> None:
        sys.settrace(tracer)
        try:
            latch.set()
        finally:
            sys.settrace(None)

    setting = threading.Thread(target=setter)
    setting.start()
    assert reached.wait(GUARD)
    latch.clear()  # the resume
    after: list[bool] = []
    second = threading.Thread(target=lambda: after.append(latch.wait(GUARD)))
    second.start()
    while latch._gate is None:
        threading.Event().wait(0.001)
    go.set()
    setting.join(GUARD)
    first.join(5)
    assert before == [True]  # woken by the set, not by its timeout
    second.join(0.3)
    assert after == []  # still waiting: the latch is closed
    latch.set()  # the job ends
    second.join(GUARD)
    assert after == [True]
