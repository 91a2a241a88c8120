"""Slot: a named input of a routine, with a handler, a merge strategy and a policy.

The handler is called by the signature rules of :mod:`routilux.binding`; the merge
strategy (:mod:`routilux.merge`) folds arrivals into what the slot keeps within a
job; the policy (:mod:`routilux.policies`) says when the handler is called.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import membership
from .binding import (
    BindingRule,
    HandlerBinding,
    Invoker,
    describe_handler,
    is_coroutine_function,
    make_invoker,
    no_handler,
)
from .exceptions import ConfigurationError
from .merge import AppendView, Merger, UserMerge, resolve_merge_strategy
from .policies import EACH, SlotPolicy, resolve_policy
from .runtime.context import current_frame
from .spec import SlotSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from .event import Event
    from .routine import Routine

__all__ = [
    "BindingRule",
    "HandlerBinding",
    "Invoker",
    "Slot",
    "describe_handler",
    "make_invoker",
]

_log = logging.getLogger(__name__)


def _checked_policy(
    name: str, policy: str | SlotPolicy | None, merge_strategy: str | UserMerge
) -> SlotPolicy:
    resolved = resolve_policy(policy)
    if resolved is not EACH and merge_strategy != "override":
        raise ConfigurationError(
            f"slot {name!r}: a slot with the {resolved.name!r} policy takes no merge "
            f"strategy (got {merge_strategy!r}); its handler gets what the policy "
            "gathered"
        )
    return resolved


class Slot:
    """A named input of a routine.

    Args:
        name: The slot's name, unique within its routine.
        routine: The routine the slot belongs to.
        handler: Called with the merged data when data arrives.
        merge_strategy: ``"override"``, ``"append"``, a registered name, or a callable
            ``(old, new) -> merged``.
        policy: When the handler is called: ``"each"`` (every arrival, the
            default), ``"all_sources"`` or a policy object (``AllSources``,
            ``Batch(n)``, ``Window(seconds)``, or one's own): see
            :mod:`routilux.policies`. A policy other than ``each`` takes no merge
            strategy.

    Raises:
        ConfigurationError: For an unknown policy, or a merge strategy given with
            a policy other than ``each``.

    Attributes:
        name: The slot's name.
        routine: The owning routine, or None.
    """

    def __init__(
        self,
        name: str = "",
        routine: Routine | None = None,
        handler: Callable[..., Any] | None = None,
        merge_strategy: str | UserMerge = "override",
        policy: str | SlotPolicy | None = None,
    ) -> None:
        self.name = name
        self.routine = routine
        self._policy = _checked_policy(name, policy, merge_strategy)
        # id(event) -> event, for events linked by hand (0.9's flow-less links).
        self._linked: dict[int, Event] = {}
        self._merger: Merger = resolve_merge_strategy(merge_strategy)
        self._merge_strategy: str | UserMerge = merge_strategy
        self._handler: Callable[..., Any] | None = None
        self._invoke: Invoker = no_handler
        self._is_async = False
        #: Told when the handler or merge strategy changes (set by the routine).
        self._on_change: Callable[[], None] | None = None
        self.handler = handler
        self._outside: dict[str, Any] = {}  # kept by direct delivery, outside jobs

    @property
    def connected_events(self) -> list[Event]:
        """The events that reach this slot, in order (a new list).

        Events linked by hand come first, then the events each flow holding the
        routine connects to the slot (read from the flow's graph).
        """
        return membership.gather(
            self.routine,
            list(self._linked.values()),
            lambda wiring, routine_id: wiring.sources_of(routine_id, self.name),
        )

    @property
    def handler(self) -> Callable[..., Any] | None:
        """The callable run when data arrives; setting it re-reads its signature."""
        return self._handler

    @handler.setter
    def handler(self, handler: Callable[..., Any] | None) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(
                f"handler of slot {self.name!r} must be callable, got {handler!r}"
            )
        self._handler = handler
        self._invoke = make_invoker(handler)
        self._is_async = is_coroutine_function(handler)
        self._changed()

    def _changed(self) -> None:
        on_change = getattr(self, "_on_change", None)
        if on_change is not None:
            on_change()  # the owning routine's spec is out of date

    @property
    def binding(self) -> HandlerBinding:
        """How the handler is called: see :func:`describe_handler`.

        .. versionadded:: 1.0
        """
        return describe_handler(self._handler)

    @property
    def policy(self) -> SlotPolicy:
        """When the handler is called (see :mod:`routilux.policies`).

        .. versionadded:: 1.0
        """
        return self._policy

    @policy.setter
    def policy(self, policy: str | SlotPolicy | None) -> None:
        self._policy = _checked_policy(self.name, policy, self._merge_strategy)
        self._changed()

    @property
    def merge_strategy(self) -> str | UserMerge:
        """The merge strategy as given: a name or a callable."""
        return self._merge_strategy

    @merge_strategy.setter
    def merge_strategy(self, strategy: str | UserMerge) -> None:
        _checked_policy(self.name, self._policy, strategy)
        self._merger = resolve_merge_strategy(strategy)
        self._merge_strategy = strategy
        self._changed()

    def describe(self) -> SlotSpec:
        """The slot's :class:`~routilux.spec.SlotSpec`.

        .. versionadded:: 1.0
        """
        return SlotSpec(
            name=self.name,
            binding=self.binding,
            handler_name=getattr(self._handler, "__name__", None),
            handler_label=str(
                getattr(self._handler, "__qualname__", None) or repr(self._handler)
            ),
            merge_strategy=self._merger.name,
            is_async=self._is_async,
            policy=self._policy.name,
        )

    @property
    def merger(self) -> Merger:
        """The resolved merge strategy the runtime applies."""
        return self._merger

    @property
    def is_async(self) -> bool:
        """True when the handler is ``async def`` (it runs on the event loop)."""
        return self._is_async

    @property
    def invoke(self) -> Invoker:
        """Call the handler with a payload dict by the signature rules."""
        return self._invoke

    @property
    def data(self) -> dict[str, Any]:
        """What the slot keeps, as a copy of one's own.

        In a handler, the current job's data for this slot: what its merge
        strategy gathered so far (``append``: key -> list of values), or for an
        ``override`` slot the payload of the running call when it came through
        this slot. Outside any job, what direct ``receive`` calls kept.
        """
        frame = current_frame()
        if frame is None:
            return _copied(self._outside)
        if self._merger.replaces:
            activation = frame.activation
            same = activation.route.slot is self
            return dict(activation.payload) if same else {}
        return _copied(frame.job.slot_data(self))

    @property
    def _data(self) -> dict[str, Any]:
        """0.9's name for :attr:`data`; assigning ``{}`` resets it, as 0.9 code did."""
        return self.data

    @_data.setter
    def _data(self, value: dict[str, Any]) -> None:
        frame = current_frame()
        if frame is None:
            self._outside = dict(value)
        else:
            frame.job.set_slot_data(self, dict(value))

    def connect(
        self, event: Event, param_mapping: dict[str, str] | None = None
    ) -> None:
        """Link ``event`` to this slot on both sides (idempotent)."""
        event.connect(self, param_mapping)

    def disconnect(self, event: Event) -> None:
        """Unlink ``event`` from this slot on both sides (idempotent)."""
        event.disconnect(self)

    def take(self) -> dict[str, Any]:
        """:attr:`data` and :meth:`reset` in one step: no arrival slips between them.

        In a handler of a job run by the concurrent strategy other arrivals may
        land at any moment, so reading ``data`` and then calling ``reset()`` can
        lose those that land in between; ``take()`` cannot.

        .. versionadded:: 1.0
        """
        frame = current_frame()
        if frame is None or self._merger.replaces:
            taken = self.data
            self.reset()
            return taken
        return _copied(frame.job.take_slot_data(self))

    def reset(self) -> None:
        """Forget what the slot keeps.

        In a handler, the current job's data for the slot (later arrivals start
        afresh); outside any job, what direct delivery kept.
        """
        self._data = {}

    def merge(self, data: dict[str, Any]) -> dict[str, Any]:
        """Merge ``data`` into what the slot keeps outside jobs; return the payload.

        Direct delivery is 0.9's way, and hands ``append`` values as fresh lists
        (copies the handler may change), as 0.9 did; inside a job the handler gets
        read-only :class:`~routilux.AppendView` objects instead, which cost O(1).
        Not thread-safe: direct delivery outside a flow runs in the caller's thread.
        """
        kept, payload = self._merger.merge(self._outside, dict(data))
        self._outside = kept
        return {
            key: list(value) if type(value) is AppendView else value
            for key, value in payload.items()
        }

    def receive(self, data: dict[str, Any]) -> None:
        """Deliver ``data`` directly, outside any flow: merge, then call the handler.

        Exceptions from the handler propagate to the caller.
        """
        self.call_handler(self.merge(data), propagate_exceptions=True)

    def call_handler(
        self, data: dict[str, Any], propagate_exceptions: bool = False
    ) -> Any:
        """Call the handler with ``data`` by the signature rules.

        Args:
            data: The payload.
            propagate_exceptions: When False, an exception is logged with its
                traceback and returned instead of raised, so the caller still sees it.

        Returns:
            The handler's result, or the exception when it raised and
            ``propagate_exceptions`` is False.
        """
        try:
            return self._invoke(data)
        except Exception as exc:
            if propagate_exceptions:
                raise
            _log.exception("handler of slot %r raised", self.name)
            return exc

    def serialize(self) -> dict[str, Any]:
        """Describe the slot: name, merge strategy name and handler method name."""
        strategy = self._merger.name
        handler_name = getattr(self._handler, "__name__", None)
        return {"name": self.name, "merge_strategy": strategy, "handler": handler_name}

    def deserialize(self, data: dict[str, Any]) -> None:
        """Restore the name and a named merge strategy from :meth:`serialize` output."""
        self.name = str(data.get("name", self.name))
        strategy = data.get("merge_strategy")
        if isinstance(strategy, str):
            self.merge_strategy = strategy

    def __repr__(self) -> str:
        owner = type(self.routine).__name__ if self.routine is not None else None
        return f"Slot({self.name!r}, routine={owner})"


def _copied(kept: dict[str, Any]) -> dict[str, Any]:
    # The lists an ``append`` slot keeps are the slot's: hand out copies.
    return {k: list(v) if isinstance(v, list) else v for k, v in kept.items()}
