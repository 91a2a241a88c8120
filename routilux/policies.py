"""Slot policies: when a slot's handler is called, and with what (fan-in joins).

Within one job, every payload that reaches a slot is *offered* to the slot's
policy, which answers with the calls to make now: none (the payload waits in the
slot's inbox), one, or several. When the job has nothing else to do, every inbox
still holding payloads is *flushed*, so a job never hangs on a join.

* ``"each"`` (the default, :data:`EACH`): every arrival calls the handler at once,
  after the slot's merge strategy (``override``, ``append``...), as in routilux 0.9.
* ``"all_sources"`` (:class:`AllSources`): one call when every routine connected to
  the slot has delivered in this job, as the keyword ``sources``: source routine id
  -> its latest payload (``keep="latest"``) or the list of all its payloads
  (``keep="all"``). Arrivals after that start the next round. What a flush does
  with a round some source never completed is ``on_missing``: ``"call"`` (call with
  the sources that delivered), ``"skip"`` (drop them; the job's history records a
  ``join_incomplete`` entry naming the missing sources) or ``"fail"`` (the job fails
  with a :class:`~routilux.JoinIncompleteError`).
* :class:`Batch` ``(n)``: a call per ``n`` arrivals, as the keyword ``items`` (the
  payloads in arrival order); a flush calls with the remainder.
* :class:`Window` ``(seconds)``: a window opens at an arrival and takes every
  arrival until ``seconds`` have passed on its clock; the first arrival after that
  closes it (one call, keyword ``items``) and opens the next. A flush closes the
  open window.

Policies of one's own implement :class:`SlotPolicy` (a name and ``open``) and
:class:`Inbox` (``offer``, ``flush``, ``waiting``). The runtime calls an inbox
under its job's lock, one call at a time: an inbox needs no lock of its own, must
return quickly and must not call into the flow.

With a checkpoint store, what waits in an inbox survives a crash: a resume
offers the payloads still held, in arrival order, to a new inbox (see
:mod:`routilux.runtime.held`). To know what a call consumed, the runtime reads
``waiting()`` after each offer: an inbox that no longer waits consumed every
payload; one that answered with calls and still waits keeps only the payload
just offered (as a window does); one that answered with none kept it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .exceptions import ConfigurationError, JoinIncompleteError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "EACH",
    "AllSources",
    "Batch",
    "Inbox",
    "SlotPolicy",
    "Window",
    "resolve_policy",
]

#: The keyword under which an ``all_sources`` call gets its payloads.
SOURCES = "sources"
#: The keyword under which a ``Batch`` or ``Window`` call gets its payloads.
ITEMS = "items"


@runtime_checkable
class Inbox(Protocol):
    """One slot's waiting payloads within one job (see the module docstring)."""

    def offer(self, source: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Take ``payload`` from routine ``source``; return the calls to make now.

        Each call is the payload dict the handler is called with (by the slot's
        signature rules, so ``{"items": [...]}`` reaches ``handler(items)``).
        """
        ...

    def flush(self) -> list[dict[str, Any]]:
        """The job has nothing else to do: the calls to make with what waits."""
        ...

    def waiting(self) -> bool:
        """True while payloads wait here."""
        ...


@runtime_checkable
class SlotPolicy(Protocol):
    """Decides when a slot's handler is called: makes one inbox per job and slot.

    Attributes:
        name: A short name for graphs, stats and documents.
    """

    name: str

    def open(self, sources: tuple[str, ...]) -> Inbox:
        """A new, empty inbox for a slot fed by the routines ``sources``."""
        ...

    def describe(self) -> dict[str, Any]:
        """The policy as JSON-ready data (``name`` and its settings)."""
        ...


class _Each:
    """Every arrival calls the handler at once (the runtime's own path)."""

    name = "each"

    def open(self, sources: tuple[str, ...]) -> Inbox:
        raise AssertionError("the each policy keeps no inbox")  # pragma: no cover

    def describe(self) -> dict[str, Any]:
        return {"name": "each"}

    def __repr__(self) -> str:
        return "EACH"


#: The default policy: every arrival calls the handler.
EACH: SlotPolicy = _Each()

Keep = Literal["latest", "all"]
OnMissing = Literal["call", "skip", "fail"]


class AllSources:
    """Call once every connected source has delivered (keyword ``sources``).

    Args:
        keep: ``"latest"`` keeps each source's latest payload; ``"all"`` a list of
            all its payloads in arrival order.
        on_missing: What a flush does with a round some source never completed:
            ``"call"``, ``"skip"`` or ``"fail"`` (see the module docstring).

    Raises:
        ConfigurationError: For another ``keep`` or ``on_missing``.
    """

    name = "all_sources"

    def __init__(self, keep: Keep = "latest", on_missing: OnMissing = "call") -> None:
        if keep not in ("latest", "all"):
            raise ConfigurationError(
                f"AllSources keep must be 'latest' or 'all', got {keep!r}"
            )
        if on_missing not in ("call", "skip", "fail"):
            raise ConfigurationError(
                "AllSources on_missing must be 'call', 'skip' or 'fail', "
                f"got {on_missing!r}"
            )
        self.keep: Keep = keep
        self.on_missing: OnMissing = on_missing

    def open(self, sources: tuple[str, ...]) -> Inbox:
        """A join over ``sources`` (the slot's connected routines)."""
        return _JoinInbox(self, sources)

    def describe(self) -> dict[str, Any]:
        """``{"name": "all_sources", "keep": ..., "on_missing": ...}``."""
        return {"name": self.name, "keep": self.keep, "on_missing": self.on_missing}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AllSources) and self.describe() == other.describe()

    def __hash__(self) -> int:
        return hash((self.name, self.keep, self.on_missing))

    def __repr__(self) -> str:
        return f"AllSources(keep={self.keep!r}, on_missing={self.on_missing!r})"


class _JoinInbox:
    __slots__ = ("_arrived", "_policy", "_sources", "skipped")

    def __init__(self, policy: AllSources, sources: tuple[str, ...]) -> None:
        self._policy = policy
        self._sources = frozenset(sources)
        self._arrived: dict[str, Any] = {}
        #: Rounds a flush dropped (``on_missing="skip"``): missing source ids each.
        self.skipped: list[list[str]] = []

    def offer(self, source: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        if self._policy.keep == "all":
            self._arrived.setdefault(source, []).append(payload)
        else:
            self._arrived[source] = payload
        if self._sources and self._sources.issubset(self._arrived):
            return [self._take()]
        return []

    def flush(self) -> list[dict[str, Any]]:
        if not self._arrived:
            return []
        missing = sorted(self._sources.difference(self._arrived))
        on_missing = self._policy.on_missing
        if on_missing == "call" or not missing:
            return [self._take()]
        arrived = sorted(self._arrived)
        self._arrived = {}
        if on_missing == "skip":
            self.skipped.append(missing)
            return []
        raise JoinIncompleteError(
            f"an all_sources join ended without {missing} (arrived: {arrived})",
            missing,
            arrived,
        )

    def waiting(self) -> bool:
        return bool(self._arrived)

    def __len__(self) -> int:
        if self._policy.keep == "all":
            return sum(len(payloads) for payloads in self._arrived.values())
        return len(self._arrived)

    def _take(self) -> dict[str, Any]:
        arrived, self._arrived = self._arrived, {}
        return {SOURCES: arrived}


class Batch:
    """Call with every ``size`` arrivals (keyword ``items``); a flush sends the rest.

    Raises:
        ConfigurationError: When ``size`` is not an int >= 1.
    """

    name = "batch"

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"Batch size must be an int >= 1, got {size!r}")
        self.size = size

    def open(self, sources: tuple[str, ...]) -> Inbox:
        """A new batch of this size."""
        return _BatchInbox(self.size)

    def describe(self) -> dict[str, Any]:
        """``{"name": "batch", "size": n}``."""
        return {"name": self.name, "size": self.size}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Batch) and other.size == self.size

    def __hash__(self) -> int:
        return hash((self.name, self.size))

    def __repr__(self) -> str:
        return f"Batch({self.size})"


class _ItemsInbox:
    """What Batch and Window share: arrivals kept in order, flushed as one call."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[dict[str, Any]] = []

    def flush(self) -> list[dict[str, Any]]:
        if not self._items:
            return []
        items, self._items = self._items, []
        return [{ITEMS: items}]

    def waiting(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)


class _BatchInbox(_ItemsInbox):
    __slots__ = ("_size",)

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size

    def offer(self, source: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        self._items.append(payload)
        if len(self._items) < self._size:
            return []
        items, self._items = self._items, []
        return [{ITEMS: items}]


class Window:
    """Call with what arrived within each window of ``seconds`` (keyword ``items``).

    Args:
        seconds: The window's length (> 0, finite).
        clock: Seconds as a float, for the window's edges; ``time.monotonic`` by
            default (give a fake clock in tests).

    Raises:
        ConfigurationError: When ``seconds`` is not a finite number > 0.
    """

    name = "window"

    def __init__(
        self, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not 0 < seconds < float("inf")
        ):
            raise ConfigurationError(
                f"Window seconds must be a finite number > 0, got {seconds!r}"
            )
        self.seconds = float(seconds)
        self.clock = clock

    def open(self, sources: tuple[str, ...]) -> Inbox:
        """A new window inbox on this policy's clock."""
        return _WindowInbox(self.seconds, self.clock)

    def describe(self) -> dict[str, Any]:
        """``{"name": "window", "seconds": s}`` (the clock is not part of it)."""
        return {"name": self.name, "seconds": self.seconds}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Window) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash((self.name, self.seconds))

    def __repr__(self) -> str:
        return f"Window({self.seconds:g})"


class _WindowInbox(_ItemsInbox):
    __slots__ = ("_clock", "_ends", "_seconds")

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        super().__init__()
        self._seconds = seconds
        self._clock = clock
        self._ends = 0.0

    def offer(self, source: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        now = self._clock()
        calls: list[dict[str, Any]] = []
        if self._items and now >= self._ends:
            calls.append({ITEMS: self._items})
            self._items = []
        if not self._items:
            self._ends = now + self._seconds
        self._items.append(payload)
        return calls


_NAMED: dict[str, Callable[[], SlotPolicy]] = {
    "each": lambda: EACH,
    "all_sources": AllSources,
}


def resolve_policy(policy: str | SlotPolicy | None) -> SlotPolicy:
    """The policy object for a slot's ``policy`` argument.

    Raises:
        ConfigurationError: For an unknown name or an object that is no
            :class:`SlotPolicy` (the message lists the names).
    """
    if policy is None:
        return EACH
    if isinstance(policy, str):
        make = _NAMED.get(policy)
        if make is None:
            raise ConfigurationError(
                f"unknown slot policy {policy!r}; known: {sorted(_NAMED)}, or a "
                "policy object (Batch(n), Window(seconds), AllSources(...))"
            )
        return make()
    if not isinstance(policy, SlotPolicy):
        raise ConfigurationError(
            "a slot policy must be a name or an object with a name, open() and "
            f"describe(), got {type(policy).__name__}"
        )
    return policy
