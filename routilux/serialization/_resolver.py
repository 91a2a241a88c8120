"""Finding classes named in a document: the registry, then ``allowed_modules`` only.

Nothing outside the caller's list is ever imported, and attributes are looked up
statically, so no module ``__getattr__`` can import anything lazily either.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import sys
from typing import TYPE_CHECKING, Any

from ..exceptions import SerializationError
from ..registry import find_routine_class

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import ModuleType

    from ..routine import Routine

__all__ = ["ClassPolicy", "Resolver", "static_attribute"]

# Exception types error handlers may name without an allow-list entry.
_EXCEPTION_MODULES = frozenset({"routilux.exceptions"})
# Exception types no allow-list needs to name.
_TRUSTED_EXCEPTIONS = frozenset({"builtins", "routilux.exceptions"})
_MISSING: Any = object()


class Resolver:
    """Resolves routine classes and exception types named in one document.

    Args:
        allowed_modules: Exact module names that may be imported; a listed package
            does not admit its submodules.

    Raises:
        SerializationError: When ``allowed_modules`` is not a list of module names.
    """

    def __init__(
        self,
        allowed_modules: Iterable[str] | None,
        allowed_classes: Iterable[type] | None = None,
    ) -> None:
        if isinstance(allowed_modules, (str, bytes)):
            raise SerializationError(
                "allowed_modules must be a list of module names, not one string"
            )
        try:
            allowed = frozenset(allowed_modules or ())
        except TypeError as exc:
            raise SerializationError(
                f"allowed_modules must be a list of module names: {exc}"
            ) from exc
        bad = sorted(repr(m) for m in allowed if not _is_module_name(m))
        if bad:
            raise SerializationError(f"allowed_modules: not module names: {bad}")
        self.allowed: frozenset[str] = allowed
        #: Which classes values in the document may name (and routines, errors).
        self.classes = ClassPolicy(allowed_classes, allowed)

    def routine_class(self, key: str, path: str) -> type[Routine]:
        """The Routine subclass registered as ``key`` (``module:QualifiedName``).

        Raises:
            SerializationError: When it is neither registered nor defined in an
                allowed module.
        """
        cls = find_routine_class(key)
        if cls is not None:
            self.classes.admit(cls, key, path)
            return cls
        module, _, qualname = key.partition(":")
        if module not in self.allowed:
            raise SerializationError(
                f"{path}: unknown routine class {key!r}: it is not registered (define "
                "or import it before loading) and its module is not in allowed_modules"
            )
        found = static_attribute(self._import(module, path), qualname)
        cls = find_routine_class(key)  # defining the class registered it
        if cls is None:
            what = "no" if found is _MISSING else "no Routine subclass"
            raise SerializationError(
                f"{path}: module {module!r} has {what} {qualname!r}"
            )
        self.classes.admit(cls, key, path)
        return cls

    def handler_function(self, key: str, path: str) -> Callable[..., Any]:
        """The module-level function ``key`` (``module:qualname``) names.

        Only a module listed in ``allowed_modules`` is looked in: a document
        naming any function of any imported module could call ``os.system``.

        Raises:
            SerializationError: When the module is not allowed, or it has no
                function by that name defined in it.
        """
        module, _, qualname = key.partition(":")
        if not module or not qualname or "<" in qualname:
            raise SerializationError(
                f"{path}: expected 'module:qualname' of a module-level function, "
                f"got {key!r}"
            )
        if module not in self.allowed:
            raise SerializationError(
                f"{path}: handler function {key!r}: its module is not in "
                "allowed_modules (list it to load handlers from it)"
            )
        found = static_attribute(self._import(module, path), qualname)
        if not (
            inspect.isfunction(found)
            and found.__module__ == module
            and found.__qualname__ == qualname
        ):
            raise SerializationError(
                f"{path}: module {module!r} defines no function {qualname!r}"
            )
        return found

    def exception_type(self, name: str, path: str) -> type[BaseException]:
        """The exception type written as ``module.QualifiedName``.

        Raises:
            SerializationError: For a name that is not a builtin, a routilux
                exception or defined in an allowed module.
        """
        module, _, attr = name.rpartition(".")
        if module == "builtins":
            found = vars(builtins).get(attr)
        else:
            owners = [
                m for m in self.allowed | _EXCEPTION_MODULES if name.startswith(f"{m}.")
            ]
            if not owners:
                raise SerializationError(
                    f"{path}: exception type {name!r} is not a builtin; list its "
                    "module in allowed_modules to load it"
                )
            owner = max(owners, key=len)
            found = static_attribute(self._import(owner, path), name[len(owner) + 1 :])
        if not (isinstance(found, type) and issubclass(found, BaseException)):
            raise SerializationError(f"{path}: {name!r} is not an exception type")
        if module not in _TRUSTED_EXCEPTIONS:
            self.classes.admit(found, name, path)
        return found

    def _import(self, module: str, path: str) -> ModuleType:
        return import_allowed(module, path)


class ClassPolicy:
    """Which classes a document may name, for the values it rebuilds.

    By default (``allowed_classes`` None) a class already imported by the
    process, or defined in a module of ``allowed_modules`` (imported then), is
    rebuilt when it is the kind the tag says (an Enum, a pydantic model, a
    dataclass); no other class is ever called. With ``allowed_classes`` only
    those exact classes are: routines, exception types outside builtins and
    ``routilux.exceptions``, and values alike.

    Raises:
        SerializationError: When ``allowed_classes`` is not a collection of
            classes.
    """

    def __init__(
        self,
        allowed_classes: Iterable[type] | None = None,
        allowed_modules: Iterable[str] = (),
    ) -> None:
        self.modules = frozenset(allowed_modules)
        self.classes: frozenset[type] | None = None
        if allowed_classes is None:
            return
        if isinstance(allowed_classes, (type, str, bytes)):
            raise SerializationError(
                "allowed_classes must be a collection of classes, not one"
            )
        try:
            classes = frozenset(allowed_classes)
        except TypeError as exc:
            raise SerializationError(
                f"allowed_classes must be a collection of classes: {exc}"
            ) from exc
        bad = sorted(repr(c) for c in classes if not isinstance(c, type))
        if bad:
            raise SerializationError(f"allowed_classes: not classes: {bad}")
        self.classes = classes

    def admit(self, cls: type, name: str, path: str) -> None:
        """Refuse ``cls`` (written ``name`` at ``path``) unless it is allowed.

        Raises:
            SerializationError: When an allow-list is set and lacks ``cls``.
        """
        if self.classes is not None and cls not in self.classes:
            raise SerializationError(
                f"{path}: class {name!r} is not in allowed_classes"
            )

    def find(
        self, name: str, path: str, kind: str, fits: Callable[[type], bool]
    ) -> type:
        """The class written ``module:QualifiedName``, checked to be ``kind``.

        Raises:
            SerializationError: Naming the class and the path when its module is
                neither imported nor allowed, it is not there, not ``kind``
                (``fits`` says), or not in ``allowed_classes``.
        """
        module, colon, qualname = (
            name.partition(":") if isinstance(name, str) else ("", "", "")
        )
        if not (colon and qualname and _is_module_name(module)):
            raise SerializationError(
                f"{path}: {short_name(name)} is not a class name ('module:Name')"
            )
        loaded = sys.modules.get(module)
        if loaded is None:
            if module not in self.modules:
                raise SerializationError(
                    f"{path}: class {name!r}: its module is not imported and not in "
                    "allowed_modules"
                )
            loaded = import_allowed(module, path)
        found = static_attribute(loaded, qualname)
        if not (isinstance(found, type) and fits(found)):
            raise SerializationError(f"{path}: {name!r} is not {kind}")
        self.admit(found, name, path)
        return found


def import_allowed(module: str, path: str) -> ModuleType:
    """Import an allowed module; its own failure becomes a SerializationError."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # the module's own code failed: report it
        raise SerializationError(
            f"{path}: importing allowed module {module!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def short_name(name: object) -> str:
    """``repr(name)``, cut to 60 characters."""
    text = repr(name)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _is_module_name(name: object) -> bool:
    return isinstance(name, str) and all(p.isidentifier() for p in name.split("."))


def static_attribute(module: ModuleType | None, qualname: str) -> Any:
    """Look ``qualname`` up without calling ``__getattr__`` (no lazy imports).

    A missing name (or module) gives a private sentinel, never None.
    """
    if module is None:
        return _MISSING
    found: Any = module
    for part in qualname.split("."):
        found = inspect.getattr_static(found, part, _MISSING)
        if found is _MISSING:
            break
    return found
