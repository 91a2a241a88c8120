"""ConditionalRouter: send data on the event of the route whose condition holds."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import ConfigurationError, DuplicateNameError
from ._base import MISSING, BuiltinRoutine, Check, input_value
from ._expressions import compile_condition, evaluate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

__all__ = ["ConditionalRouter"]

_PRIORITIES = {"first_match": "first_match", "all": "all", "all_matches": "all"}
_PARAMS = ["data", "route"]


def _check_routes(value: Any, what: str) -> list[tuple[str, Any]]:
    if not isinstance(value, (list, tuple)):
        raise ConfigurationError(
            f"{what} must be a list of (name, condition) pairs, got "
            f"{type(value).__name__}"
        )
    routes: list[tuple[str, Any]] = []
    for index, pair in enumerate(value):
        where = f"{what}[{index}]"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ConfigurationError(f"{where} must be a (name, condition) pair")
        name, condition = pair
        _check_route_name(name, where)
        if any(name == known for known, _ in routes):
            raise DuplicateNameError(f"{where}: route {name!r} is listed twice")
        routes.append((name, _check_condition(condition, f"{where} (route {name!r})")))
    return routes


def _check_route_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{where}: a route name must be a non-empty string")
    if name == "output":
        raise ConfigurationError(
            f"{where}: 'output' is reserved for data no route takes"
        )


def _check_condition(condition: Any, where: str) -> Any:
    if isinstance(condition, str):
        try:
            compile_condition(condition)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
        return condition
    if isinstance(condition, dict):
        bad = [key for key in condition if not isinstance(key, str)]
        if bad:
            raise ConfigurationError(f"{where}: field names must be strings: {bad}")
        return condition
    if callable(condition):
        return condition
    raise ConfigurationError(
        f"{where}: a condition is an expression string, a dict of field values or "
        f"a callable, got {type(condition).__name__}"
    )


def _check_default(value: Any, what: str) -> str | None:
    if value is not None:
        _check_route_name(value, what)
    return value  # type: ignore[no-any-return]


def _check_priority(value: Any, what: str) -> str:
    if not isinstance(value, str) or value not in _PRIORITIES:
        raise ConfigurationError(
            f"{what} must be 'first_match' or 'all', got {value!r}"
        )
    return _PRIORITIES[value]


class ConditionalRouter(BuiltinRoutine):
    """Routes each input to the event of the route (or routes) whose condition holds.

    Slot ``input``; events ``output`` (``data``, ``route``) for data no route
    takes, and one event per route, named after it, carrying ``data`` and
    ``route``.

    Configuration (``set_config``):

    * ``routes``: a list of ``(name, condition)`` pairs, tried in order. A
      condition is

      - an expression string, evaluated safely over ``data``, ``config``,
        ``stats`` and the keys of ``data`` when it is a dict (see
        :mod:`routilux.builtin._expressions`: no calls but ``.get`` lookups, no
        ``_`` names, no lambdas or comprehensions; bad expressions are refused
        when configured);
      - a dict of field -> expected value or predicate: every field must be in
        ``data`` (a dict) and equal the value, or satisfy the predicate;
      - a callable ``condition(data)`` (it may also take ``config`` and
        ``stats`` by those names).

      Callables cannot be saved: serializing a router holding one raises
      :class:`~routilux.SerializationError` naming the route.
    * ``default_route`` (None): a route name to use when no condition holds;
      without it such data goes out on ``output`` with ``route=None``.
    * ``route_priority``: ``"first_match"`` (default: the first route whose
      condition holds) or ``"all"`` (every such route, in order;
      ``"all_matches"`` is accepted too).

    A route's event is declared as soon as the route is configured, so flows can
    connect to it before anything runs; the name ``output`` is reserved. A
    condition that cannot be evaluated for some data (a missing key, comparing a
    string with a number) raises ``ValueError`` naming the route: the job records
    the error. Counts per route are kept in the stats (``routes_to_<name>``,
    ``unmatched_routes``).
    """

    defaults: ClassVar[dict[str, Any]] = {
        "routes": [],
        "default_route": None,
        "route_priority": "first_match",
    }
    checks: ClassVar[dict[str, Check]] = {
        "routes": _check_routes,
        "default_route": _check_default,
        "route_priority": _check_priority,
    }
    callable_hints: ClassVar[dict[str, str]] = {
        "routes": "use an expression string or a dict of field values instead"
    }

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self._route)
        self.define_event("output", _PARAMS)

    def add_route(self, name: str, condition: Any) -> None:
        """Add a route after those configured, and declare its event.

        Raises:
            DuplicateNameError: When a route called ``name`` exists.
            ConfigurationError: For a bad name or condition (a malformed
                expression, say); nothing is changed.
        """
        routes = list(self._setting("routes"))
        if any(existing == name for existing, _ in routes):
            raise DuplicateNameError(
                f"{type(self).__name__}: a route named {name!r} already exists"
            )
        self.set_config(routes=[*routes, (name, condition)])

    def deserialize(self, data: dict[str, Any]) -> None:
        """Restore configuration, then the events listed in a flow document.

        Events of routes configured earlier and dropped later are declared again,
        so the rebuilt router has exactly the events it was saved with.
        """
        config = data.get("config")
        if isinstance(config, dict):
            self._checked(config)  # refuse a bad document before changing anything
        for event in data.get("events") or ():
            name = event.get("name") if isinstance(event, dict) else None
            if isinstance(name, str) and name and self.get_event(name) is None:
                self.define_event(name, list(event.get("output_params") or []))
        super().deserialize(data)

    def _configured(self, changed: Mapping[str, Any]) -> None:
        names = [name for name, _ in self._setting("routes")]
        default = self._setting("default_route")
        for name in [*names, *([default] if default else [])]:
            if self.get_event(name) is None:
                self.define_event(name, _PARAMS)

    # -- routing -------------------------------------------------------------------

    def _route(self, data: Any = MISSING, **kwargs: Any) -> None:
        value = input_value(data, kwargs, "data")
        matched = list(self._matches(value))
        if not matched:
            default = self._setting("default_route")
            if default:
                matched = [default]
        for name in matched:
            self.increment_stat(f"routes_to_{name}")
            self.emit(name, data=value, route=name)
        if not matched:
            self.increment_stat("unmatched_routes")
            self.emit("output", data=value, route=None)

    def _matches(self, value: Any) -> Iterator[str]:
        first_only = self._setting("route_priority") == "first_match"
        names = _Names(value, self.config(), self.stats())
        for name, condition in self._setting("routes"):
            try:
                holds = self._holds(condition, value, names)
            except Exception as exc:  # a condition failing on this data: say which
                raise ValueError(
                    f"{type(self).__name__}: route {name!r}: the condition cannot "
                    f"be evaluated for this data: {exc}"
                ) from exc
            if holds:
                yield name
                if first_only:
                    return

    def _holds(self, condition: Any, value: Any, names: _Names) -> bool:
        if isinstance(condition, str):
            return bool(evaluate(compile_condition(condition), names))
        if isinstance(condition, dict):
            return _fields_match(condition, value)
        return bool(_call_condition(condition, value, self))


class _Names(dict[str, Any]):
    """The names an expression sees: data, config, stats, then data's keys."""

    def __init__(self, data: Any, config: dict[str, Any], stats: dict[str, Any]):
        super().__init__(data=data, config=config, stats=stats)
        self._data = data if isinstance(data, dict) else {}

    def __missing__(self, key: str) -> Any:
        if key in self._data:
            return self._data[key]
        raise KeyError(key)


def _fields_match(condition: dict[str, Any], value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for field, expected in condition.items():
        if field not in value:
            return False
        actual = value[field]
        ok = expected(actual) if callable(expected) else actual == expected
        if not ok:
            return False
    return True


def _call_condition(
    condition: Callable[..., Any], value: Any, router: ConditionalRouter
) -> Any:
    try:
        params = inspect.signature(condition).parameters
    except (TypeError, ValueError):  # no signature to read: pass the data only
        return condition(value)
    extra = {
        name: source()
        for name, source in (("config", router.config), ("stats", router.stats))
        if name in params
    }
    return condition(value, **extra) if extra else condition(value)
