"""Handler binding: how a slot calls its handler with a payload dict.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "BindingRule",
    "HandlerBinding",
    "Invoker",
    "describe_handler",
    "is_coroutine_function",
    "make_invoker",
    "no_handler",
]

#: Calls a handler with a payload dict according to the handler's signature.
Invoker = Callable[[dict[str, Any]], Any]

_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)


def no_handler(data: dict[str, Any]) -> None:
    """The invoker of a slot without a handler: does nothing."""
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


def is_coroutine_function(handler: Callable[..., Any] | None) -> bool:
    """True when ``handler`` is ``async def`` (or has an async ``__call__``)."""
    if handler is None:
        return False
    target = getattr(handler, "__func__", handler)
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - an async __call__ counts too
    )


def make_invoker(handler: Callable[..., Any] | None) -> Invoker:
    """Build the function that calls ``handler`` by the four signature rules."""
    if handler is None:
        return no_handler
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
