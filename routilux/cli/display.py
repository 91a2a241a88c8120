"""Showing progress: plain lines, or a live rich display on a terminal.

:func:`make_view` chooses: a live display (rich ``Live``, redrawn a few times a
second from the counts the hooks keep) when the stream is a terminal and
progress is wanted; plain lines otherwise (a line per job start, failure and
end, and the final figures). Both end with the same final figures.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from ..job_state import JobState
    from .progress import Progress, Snapshot

__all__ = ["LiveView", "PlainView", "QuietView", "final_lines", "make_view"]


def make_view(stream: TextIO, *, wanted: bool) -> PlainView | LiveView | QuietView:
    """The view for ``stream``: live on a terminal, else plain; quiet if not wanted.

    ``wanted`` False (``--no-progress``) prints nothing while jobs run and
    nothing at the end.
    """
    if not wanted:
        return QuietView()
    if stream.isatty():
        return LiveView(Console(file=stream))
    return PlainView(stream)


def totals_line(snap: Snapshot) -> str:
    """Activations done, queued, running, failed, retries and the time."""
    t = snap.total
    return (
        f"activations: {t.done} done, {snap.queued} queued, {t.running} running, "
        f"{t.failed} failed, {t.retries} retries; {snap.elapsed:.2f}s"
    )


def jobs_text(snap: Snapshot) -> str:
    """Jobs running and ended, by status."""
    ended = ", ".join(f"{n} {status}" for status, n in sorted(snap.jobs_ended.items()))
    return f"jobs: {snap.jobs_running} running" + (f", {ended}" if ended else "")


def final_lines(snap: Snapshot) -> list[str]:
    """The final figures as lines: jobs, totals, then one line per routine."""
    lines = [f"finished: {jobs_text(snap)}", totals_line(snap)]
    lines.extend(
        f"  {rid}: {c.done} done, {c.failed} failed, {c.retries} retries"
        for rid, c in snap.routines.items()
    )
    return lines


def _where(job: JobState) -> str:
    return f"job {job.job_id}"


class QuietView:
    """Shows nothing (``--no-progress``)."""

    def start(self, progress: Progress) -> None:
        """Nothing to start."""

    def job_started(self, job: JobState) -> None:
        """Not shown."""

    def failed(self, job: JobState, where: str, error: BaseException) -> None:
        """Not shown."""

    def job_ended(self, job: JobState) -> None:
        """Not shown."""

    def stop(self, final: Snapshot) -> None:
        """Nothing to show."""


class PlainView:
    """Plain lines, one per event worth a line; safe from many threads.

    Args:
        stream: Where the lines go.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def _say(self, line: str) -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def start(self, progress: Progress) -> None:
        """Plain lines need no set-up."""

    def job_started(self, job: JobState) -> None:
        """``job ID started (flow F)``."""
        self._say(f"{_where(job)} started (flow {job.flow_id})")

    def failed(self, job: JobState, where: str, error: BaseException) -> None:
        """``job ID: routine.slot failed: Type: message``."""
        self._say(f"{_where(job)}: {where} failed: {type(error).__name__}: {error}")

    def job_ended(self, job: JobState) -> None:
        """``job ID completed`` (or failed, cancelled, paused)."""
        self._say(f"{_where(job)} {job.status.value}")

    def stop(self, final: Snapshot) -> None:
        """The final figures."""
        for line in final_lines(final):
            self._say(line)


class LiveView:
    """A rich ``Live`` display of the figures, redrawn from the hooks' counts.

    The last frame stays on the terminal with the final figures.

    Args:
        console: The rich console (on a terminal).
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live: Live | None = None
        self._progress: Progress | None = None

    def start(self, progress: Progress) -> None:
        """Begin redrawing (4 times a second) from ``progress``."""
        self._progress = progress
        self._live = Live(_Frame(progress), console=self._console, refresh_per_second=4)
        self._live.start()

    def job_started(self, job: JobState) -> None:
        """Shown by the next frame."""

    def failed(self, job: JobState, where: str, error: BaseException) -> None:
        """Printed above the display (it stays in the scrollback)."""
        line = f"{_where(job)}: {where} failed: {type(error).__name__}: {error}"
        self._console.print(Text(line, style="red"))

    def job_ended(self, job: JobState) -> None:
        """Shown by the next frame."""

    def stop(self, final: Snapshot) -> None:
        """Draw the final figures and stop redrawing."""
        if self._live is None:
            return
        self._live.update(render(final, done=True))
        self._live.stop()
        self._live = None


class _Frame:
    """Redrawn by rich from the counts at each refresh."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def __rich__(self) -> Group:
        return render(self._progress.snapshot())


def render(snap: Snapshot, *, done: bool = False) -> Group:
    """The display: jobs and totals, then a table of the routines."""
    table = Table(box=None, pad_edge=False)
    table.add_column("routine")
    for name in ("running", "done", "failed", "retries"):
        table.add_column(name, justify="right")
    for rid, c in snap.routines.items():
        failed = Text(str(c.failed), style="red" if c.failed else "")
        table.add_row(rid, str(c.running), str(c.done), failed, str(c.retries))
    head = f"finished: {jobs_text(snap)}" if done else jobs_text(snap)
    return Group(Text(head, style="bold"), Text(totals_line(snap)), table)
