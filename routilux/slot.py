"""Slot: a named input of a routine, with a handler and a merge strategy.

The handler is called according to its signature, decided once when the handler is
set (never per call):

1. it takes ``**kwargs``: ``handler(**merged)``;
2. exactly one parameter, named ``data``: ``handler(merged)``;
3. exactly one parameter with another name: that key's value if present, else the
   whole dict;
4. several parameters: those present, as keywords; none present: the whole dict
   positionally.

A handler with no parameters is called with none. ``self`` of a bound method does
not count. :func:`describe_handler` (and :attr:`Slot.binding`) tells which rule
applies to a handler; :meth:`Flow.validate` uses it to report parameters that no
connected event carries.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from . import membership
from .exceptions import ConfigurationError
from .merge import AppendView, Merger, UserMerge, resolve_merge_strategy
from .policies import EACH, SlotPolicy, resolve_policy
from .spec import SlotSpec

if TYPE_CHECKING:
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

#: Calls a handler with a payload dict according to the handler's signature.
Invoker = Callable[[dict[str, Any]], Any]

_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)


def _no_handler(data: dict[str, Any]) -> None:
    return None


def _parameters(handler: Callable[..., Any]) -> list[inspect.Parameter]:
    """The handler's parameters, without ``self`` of a bound method.

    Read once per function, not per routine: building many routines of one class
    (or loading a large flow) does not read the same signature again.
    """
    function = getattr(handler, "__func__", None)
    if function is not None and getattr(handler, "__self__", None) is not None:
        return list(_function_parameters(function))[1:]
    return list(inspect.signature(handler).parameters.values())


@functools.lru_cache(maxsize=1024)
def _function_parameters(function: Callable[..., Any]) -> tuple[inspect.Parameter, ...]:
    return tuple(inspect.signature(function).parameters.values())


#: Which signature rule binds a handler: ``"kwargs"`` (rule 1), ``"data"`` (rule 2, or
#: only ``*args``: the whole payload as one argument), ``"single"`` (rule 3),
#: ``"several"`` (rule 4), ``"none"`` (no parameters, or no handler) or ``"opaque"``
#: (no signature to read: called with the whole payload).
BindingRule = Literal["kwargs", "data", "single", "several", "none", "opaque"]


@dataclass(frozen=True)
class HandlerBinding:
    """How a slot calls a handler, read from the handler's signature.

    .. versionadded:: 1.0

    Attributes:
        rule: Which of the module's signature rules applies (:data:`BindingRule`).
        parameters: The named parameters in order, ``self`` of a bound method,
            ``*args`` and ``**kwargs`` left out.
        required: The parameters without a default.
        defaults: The parameters with a default.
    """

    rule: BindingRule
    parameters: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    defaults: tuple[str, ...] = ()


def describe_handler(handler: Callable[..., Any] | None) -> HandlerBinding:
    """Tell how a slot would call ``handler``: the rule and its parameters.

    .. versionadded:: 1.0

    Args:
        handler: A slot handler, or None.

    Returns:
        The binding; ``rule`` is ``"opaque"`` for a callable whose signature cannot
        be read (it is called with the whole payload).
    """
    if handler is None:
        return HandlerBinding("none")
    function = getattr(handler, "__func__", None)
    if function is not None and getattr(handler, "__self__", None) is not None:
        return _function_binding(function, skip_self=True)
    if inspect.isfunction(handler):
        return _function_binding(handler, skip_self=False)
    try:
        params = _parameters(handler)
    except (TypeError, ValueError):
        return HandlerBinding("opaque")
    return _binding(params)


@functools.lru_cache(maxsize=1024)
def _function_binding(
    function: Callable[..., Any], *, skip_self: bool
) -> HandlerBinding:
    # Once per function: every routine of a class shares its handlers' bindings.
    try:
        params = list(_function_parameters(function))
    except (TypeError, ValueError):
        return HandlerBinding("opaque")
    return _binding(params[1:] if skip_self else params)


def _binding(params: list[inspect.Parameter]) -> HandlerBinding:
    named = [
        p for p in params if p.kind in (*_POSITIONAL, inspect.Parameter.KEYWORD_ONLY)
    ]
    names = tuple(p.name for p in named)
    required = tuple(p.name for p in named if p.default is inspect.Parameter.empty)
    defaults = tuple(p.name for p in named if p.default is not inspect.Parameter.empty)
    rule: BindingRule
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        rule = "kwargs"
    elif not named:
        varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
        rule = "data" if varargs else "none"
    elif len(named) == 1:
        rule = "data" if names[0] == "data" else "single"
    else:
        rule = "several"
    return HandlerBinding(rule, names, required, defaults)


def _is_coroutine_function(handler: Callable[..., Any] | None) -> bool:
    if handler is None:
        return False
    target = getattr(handler, "__func__", handler)
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - an async __call__ counts too
    )


def make_invoker(handler: Callable[..., Any] | None) -> Invoker:
    """Build the function that calls ``handler`` by the four signature rules."""
    if handler is None:
        return _no_handler
    try:
        params = _parameters(handler)
    except (TypeError, ValueError):  # builtins without a signature: pass the dict
        return handler
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return lambda data: handler(**data)
    named = [
        p for p in params if p.kind in (*_POSITIONAL, inspect.Parameter.KEYWORD_ONLY)
    ]
    if not named:
        if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
            return handler
        return lambda data: handler()
    if len(named) == 1:
        only = named[0]
        if only.name == "data":
            if only.kind is inspect.Parameter.KEYWORD_ONLY:
                return lambda data: handler(data=data)
            return handler
        return _single_parameter_invoker(handler, only)
    return _many_parameter_invoker(handler, named)


def _single_parameter_invoker(
    handler: Callable[..., Any], param: inspect.Parameter
) -> Invoker:
    name = param.name
    if param.kind is inspect.Parameter.KEYWORD_ONLY:
        return lambda data: handler(**{name: data.get(name, data)})
    return lambda data: handler(data.get(name, data))


def _many_parameter_invoker(
    handler: Callable[..., Any], named: list[inspect.Parameter]
) -> Invoker:
    names = tuple(p.name for p in named)
    first_keyword_only = named[0].kind is inspect.Parameter.KEYWORD_ONLY

    def invoke(data: dict[str, Any]) -> Any:
        present = {name: data[name] for name in names if name in data}
        if present:
            return handler(**present)
        if first_keyword_only:
            return handler(**{names[0]: data})
        return handler(data)

    return invoke


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
        self._invoke: Invoker = _no_handler
        self._is_async = False
        #: Told when the handler or merge strategy changes (set by the routine).
        self._on_change: Callable[[], None] | None = None
        self.handler = handler
        self._data: dict[str, Any] = {}

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
        self._is_async = _is_coroutine_function(handler)
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
        """A copy of what the slot keeps outside any job (direct ``receive`` calls)."""
        return dict(self._data)

    def connect(
        self, event: Event, param_mapping: dict[str, str] | None = None
    ) -> None:
        """Link ``event`` to this slot on both sides (idempotent)."""
        event.connect(self, param_mapping)

    def disconnect(self, event: Event) -> None:
        """Unlink ``event`` from this slot on both sides (idempotent)."""
        event.disconnect(self)

    def reset(self) -> None:
        """Forget what the slot keeps outside any job."""
        self._data = {}

    def merge(self, data: dict[str, Any]) -> dict[str, Any]:
        """Merge ``data`` into what the slot keeps outside jobs; return the payload.

        Direct delivery is 0.9's way, and hands ``append`` values as fresh lists
        (copies the handler may change), as 0.9 did; inside a job the handler gets
        read-only :class:`~routilux.AppendView` objects instead, which cost O(1).
        Not thread-safe: direct delivery outside a flow runs in the caller's thread.
        """
        kept, payload = self._merger.merge(self._data, dict(data))
        self._data = kept
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
