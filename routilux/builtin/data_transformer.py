"""DataTransformer: apply a configured list of named transformations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import ConfigurationError
from ._base import MISSING, BuiltinRoutine, Check, NamedRegistry, input_value

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DataTransformer", "register_transformation"]


def _text(fn: Callable[[str], str]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        return fn(value) if isinstance(value, str) else value

    return apply


def _to_int(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    return int(value)


def _to_float(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return float(value.strip())
    return float(value)


def _to_string(value: Any) -> Any:
    return value if value is None else str(value)


#: Transformations applied to each value inside dicts and lists.
_PER_VALUE: dict[str, Callable[[Any], Any]] = {
    "lowercase": _text(str.lower),
    "uppercase": _text(str.upper),
    "strip_whitespace": _text(str.strip),
    "to_string": _to_string,
    "to_int": _to_int,
    "to_float": _to_float,
}


def _remove_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _remove_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_remove_none(v) for v in value if v is not None]
    return value


_transformations = NamedRegistry(
    "transformation", {**_PER_VALUE, "remove_none": _remove_none}
)


def register_transformation(
    name: str, fn: Callable[[Any], Any], *, replace: bool = False
) -> None:
    """Register ``fn`` as the transformation ``name`` for the whole process.

    ``fn`` takes the whole input and returns the transformed value. A flow
    document keeps the name, so a flow loaded where ``name`` is registered finds
    it. Thread-safe.

    Raises:
        DuplicateNameError: When ``name`` is built in, or registered to another
            function and ``replace`` is false.
        ConfigurationError: For an empty name or a ``fn`` that is not callable.
    """
    _transformations.register(name, fn, replace=replace)


def _check_transformations(value: Any, what: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ConfigurationError(
            f"{what} must be a list of transformation names, got {type(value).__name__}"
        )
    for index, item in enumerate(value):
        if not (isinstance(item, str) and item) and not callable(item):
            raise ConfigurationError(
                f"{what}[{index}] must be a transformation name, got {item!r}"
            )
    return list(value)


def _check_fields(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(item, str) for item in value
    ):
        raise ConfigurationError(
            f"{what} must be None or a list of keys, got {value!r}"
        )
    return list(value)


class DataTransformer(BuiltinRoutine):
    """Applies transformations, in order, to its input.

    Slot ``input`` (the value as ``data`` or the payload's only value, else the
    whole payload); event ``output`` with ``transformed_data``,
    ``transformation_applied`` (the names applied, in order) and ``errors``.

    Configuration (``set_config``):

    * ``transformations`` ([]): names, applied in order. Built in:
      ``lowercase``, ``uppercase``, ``strip_whitespace`` (strings only; other
      values pass unchanged), ``to_string``, ``to_int``, ``to_float`` (None
      passes unchanged) and ``remove_none``. On a dict or a list the built-in
      ones apply to every value inside it, however deep; ``remove_none`` drops
      None values from dicts and lists. Names registered with
      :meth:`register_transformation` take the whole input.
    * ``fields`` (None): when the input is a dict, transform only these keys.

    A value a transformation cannot convert (``to_int`` of ``"abc"``) is left as
    it was and reported in ``errors``, a list of ``{"transformation", "path",
    "error"}`` dicts (empty when all went well). An unknown name raises
    :class:`~routilux.ConfigurationError` naming ``transformations``.
    A function placed in ``transformations`` itself works but cannot be saved.
    """

    defaults: ClassVar[dict[str, Any]] = {"transformations": [], "fields": None}
    checks: ClassVar[dict[str, Check]] = {
        "transformations": _check_transformations,
        "fields": _check_fields,
    }
    callable_hints: ClassVar[dict[str, str]] = {
        "transformations": "register it with register_transformation(name, fn) "
        "and list the name"
    }

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self._transform)
        self.define_event(
            "output", ["transformed_data", "transformation_applied", "errors"]
        )

    def register_transformation(
        self, name: str, fn: Callable[[Any], Any], *, replace: bool = False
    ) -> None:
        """Register ``fn`` as ``name`` (for the whole process; see the module's).

        List ``name`` in ``transformations`` to apply it.
        """
        register_transformation(name, fn, replace=replace)

    def _transform(self, data: Any = MISSING, **kwargs: Any) -> None:
        value = input_value(data, kwargs, "data")
        errors: list[dict[str, Any]] = []
        applied: list[str] = []
        fields = self._setting("fields")
        for step in self._setting("transformations"):
            name, fn = self._resolve(step)
            if fields is not None and isinstance(value, dict):
                value = {
                    key: _apply(name, fn, item, key, errors) if key in fields else item
                    for key, item in value.items()
                }
            else:
                value = _apply(name, fn, value, "", errors)
            applied.append(name)
        self.emit(
            "output",
            transformed_data=value,
            transformation_applied=applied,
            errors=errors,
        )

    def _resolve(self, step: Any) -> tuple[str, Callable[[Any], Any]]:
        """The name and function of a step."""
        if callable(step):
            return getattr(step, "__name__", type(step).__name__), step
        fn = _transformations.get(step)
        if fn is None:
            raise _transformations.unknown(
                step, f"{type(self).__name__}: config 'transformations'"
            )
        return step, fn


def _apply(
    name: str,
    fn: Callable[[Any], Any],
    value: Any,
    path: str,
    errors: list[dict[str, Any]],
) -> Any:
    if fn is _PER_VALUE.get(name):
        return _each(name, fn, value, path, errors)
    return _call(name, fn, value, path, errors)


def _each(
    name: str,
    fn: Callable[[Any], Any],
    value: Any,
    path: str,
    errors: list[dict[str, Any]],
) -> Any:
    if isinstance(value, dict):
        return {
            k: _each(name, fn, v, f"{path}.{k}" if path else str(k), errors)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_each(name, fn, v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    return _call(name, fn, value, path, errors)


def _call(
    name: str,
    fn: Callable[[Any], Any],
    value: Any,
    path: str,
    errors: list[dict[str, Any]],
) -> Any:
    try:
        return fn(value)
    except (ValueError, TypeError, ArithmeticError) as exc:
        errors.append(
            {
                "transformation": name,
                "path": path,
                "error": f"{type(exc).__name__}: {exc}",
            }
        )
        return value
