"""What the built-in routines share: checked configuration and saving by name.

Every built-in routine is configured with :meth:`~routilux.Routine.set_config`
only. Each class lists the keys it knows with a check per key; ``set_config``
checks every given key before it changes anything and raises
:class:`~routilux.ConfigurationError` naming the key. Keys a class does not know
are kept as given (a router's expressions may read them as ``config``).

Saving (``serialize()``, hence ``Flow.serialize``) keeps configuration only, so a
configuration must be plain JSON. Functions a user supplies are kept by *name*:
``register_extractor``, ``register_transformation``, ``register_validator`` and
:func:`register_model` put them in a process-wide registry and the configuration
holds the name. A function placed in the configuration itself (a 0.9-style
``rules={"age": lambda v: v > 0}``) works while the program runs, but saving the
routine raises :class:`~routilux.SerializationError` naming the routine and the
key, and saying what to use instead.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from .. import membership
from ..exceptions import ConfigurationError, DuplicateNameError, SerializationError
from ..routine import Routine

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = ["MISSING", "BuiltinRoutine", "Check", "NamedRegistry", "input_value"]

#: The default of a handler's main parameter: tells "not sent" from None.
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()

#: A check of one configuration value: ``check(value, what)`` returns the value to
#: keep, or raises ConfigurationError naming ``what``.
Check = Callable[[Any, str], Any]


class NamedRegistry:
    """Functions users register under a name, shared by the whole process.

    Thread-safe.

    Args:
        kind: What the functions are, for messages (``"transformation"``).
        builtin: Built-in functions by name (never replaced).
        reserved: Further names nobody may register.
    """

    def __init__(
        self,
        kind: str,
        builtin: Mapping[str, Callable[..., Any]],
        reserved: Iterable[str] = (),
    ) -> None:
        self.kind = kind
        self._builtin = dict(builtin)
        self._reserved = frozenset(reserved) | set(builtin)
        self._registered: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()  # guards _registered

    def register(
        self, name: str, fn: Callable[..., Any], *, replace: bool = False
    ) -> None:
        """Register ``fn`` as ``name``.

        Registering the same function again does nothing.

        Raises:
            ConfigurationError: When ``name`` is not a non-empty string or ``fn``
                is not callable.
            DuplicateNameError: When ``name`` is built in, or registered to another
                function and ``replace`` is false.
        """
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"a {self.kind} name must be a non-empty string, got {name!r}"
            )
        if not callable(fn):
            raise ConfigurationError(
                f"{self.kind} {name!r} must be callable, got {type(fn).__name__}"
            )
        if name in self._reserved:
            raise DuplicateNameError(f"{self.kind} {name!r} is built in")
        with self._lock:
            known = self._registered.get(name)
            if known is not None and known is not fn and not replace:
                raise DuplicateNameError(
                    f"{self.kind} {name!r} is already registered to another "
                    "function (pass replace=True to replace it)"
                )
            self._registered[name] = fn

    def get(self, name: str) -> Callable[..., Any] | None:
        """The function called ``name`` (built in or registered), or None."""
        found = self._builtin.get(name)
        if found is not None:
            return found
        with self._lock:
            return self._registered.get(name)

    def names(self) -> list[str]:
        """Every known name, sorted."""
        with self._lock:
            return sorted({*self._builtin, *self._registered})

    def unknown(self, name: object, where: str) -> ConfigurationError:
        """The error for a name nobody registered, listing the known ones."""
        return ConfigurationError(
            f"{where}: unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
        )


class BuiltinRoutine(Routine):
    """Base of the built-in routines: checked configuration, saved by name.

    Subclasses set ``defaults`` (every key they know, with its default value) and
    ``checks`` (key -> ``check(value, what)`` returning the value to keep).
    """

    defaults: ClassVar[dict[str, Any]] = {}
    checks: ClassVar[dict[str, Check]] = {}
    #: What to say when a configuration key holds a function, by key.
    callable_hints: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        super().__init__()
        Routine.set_config(self, **copy.deepcopy(self.defaults))

    # -- configuration -------------------------------------------------------------

    def set_config(self, **config: Any) -> None:
        """Set configuration values; the keys this routine knows are checked first.

        Raises:
            ConfigurationError: Naming the first key whose value is refused;
                nothing is changed.
        """
        checked = self._checked(config)
        super().set_config(**checked)
        self._configured(checked)

    def deserialize(self, data: dict[str, Any]) -> None:
        """Restore from :meth:`serialize` output, checking the configuration first.

        Raises:
            ConfigurationError: Naming the key whose value is refused; nothing
                is changed.
        """
        config = data.get("config") or {}
        checked = self._checked(config) if isinstance(config, dict) else {}
        super().deserialize(data)
        self._config.update(checked)
        self._configured(self.config())

    def serialize(self) -> dict[str, Any]:
        """Describe the routine by class and configuration.

        Raises:
            SerializationError: When the configuration holds a function; the
                message names the routine and the key and says what to use instead.
        """
        for path, value in _callables(self._config, ""):
            key = path.split(".")[0].split("[")[0]
            hint = self.callable_hints.get(key, "keep functions out of the config")
            raise SerializationError(
                f"{self._label()}: config {path!r} holds the function "
                f"{_function_name(value)}, which a flow document cannot keep: {hint}"
            )
        return super().serialize()

    def _checked(self, config: Mapping[str, Any]) -> dict[str, Any]:
        name = type(self).__name__
        return {
            key: self.checks[key](value, f"{name}: config {key!r}")
            if key in self.checks
            else value
            for key, value in config.items()
        }

    def _configured(self, changed: Mapping[str, Any]) -> None:
        """Called after configuration changed (``changed`` holds the new values)."""

    def _setting(self, key: str) -> Any:
        """The configured value of a known key (its default when not set)."""
        return self._config.get(key, self.defaults.get(key))

    def _label(self) -> str:
        """The class and the routine's ids in its flows (else its default id)."""
        ids = [wiring.id_of(self) for wiring in membership.wirings_of(self)]
        named = sorted({repr(i) for i in ids if i is not None})
        if named:
            return f"{type(self).__name__} {' or '.join(named)}"
        return f"{type(self).__name__} ({self.get_spec().default_id})"


def _callables(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """``(path, value)`` of every function inside a configuration value."""
    pending: list[tuple[str, Any]] = [(path, value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, dict):
            pending.extend(
                (f"{where}.{key}" if where else str(key), v)
                for key, v in reversed(list(item.items()))
            )
        elif isinstance(item, (list, tuple)):
            pending.extend(
                (f"{where}[{i}]", v) for i, v in reversed(list(enumerate(item)))
            )
        elif callable(item):
            yield where, item


def _function_name(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return f"{name}()" if not isinstance(fn, type) else name


def input_value(data: Any, kwargs: dict[str, Any], key: str) -> Any:
    """What a handler got: ``data`` if sent, else ``kwargs[key]``, else the rest.

    Follows :meth:`Routine._extract_input_data`: with no ``data`` the single value
    of a one-key payload, the whole payload dict otherwise. ``data`` is
    :data:`MISSING` when the payload did not carry it (None when it carried None).
    """
    if data is not MISSING:
        return data
    if key in kwargs:
        return kwargs[key]
    return Routine._extract_input_data(**kwargs)
