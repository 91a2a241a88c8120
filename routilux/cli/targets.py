"""What a TARGET names: a flow document, ``module:attribute`` or ``file.py:attribute``.

* ``flow.json`` (any path that is not a ``.py`` file): a document written by
  :meth:`routilux.Flow.save`, loaded with :meth:`routilux.Flow.load`;
* ``package.module:name``: the module is imported as ``python -m`` would find it
  (the current directory comes first on ``sys.path``);
* ``path/to/file.py:name``: that file is loaded as a module (its own directory
  is put on ``sys.path`` too, so it can import its neighbours).

``name`` is a :class:`~routilux.Flow`, or a function that takes no argument and
returns one. Whatever is wrong raises :class:`~routilux.ConfigurationError`
naming the target (the command exits 2 with its message).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError, SerializationError
from ..flow import Flow

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import ModuleType

__all__ = ["load_target", "search_here"]

_MISSING = object()


def load_target(target: str, allowed_modules: Iterable[str] = ()) -> Flow:
    """The flow ``target`` names (see the module docstring).

    Args:
        target: The TARGET argument.
        allowed_modules: Modules a flow document may import routine classes from.

    Raises:
        ConfigurationError: Naming the target and what is wrong with it.
    """
    module_part, _, attribute = target.rpartition(":")
    # "C:\\flows\\f.json" has a colon too: a drive letter is no module, and
    # an existing document is read whatever its name holds.
    document = os.path.isfile(target) and not target.endswith(".py")
    if module_part and attribute and not _is_drive(module_part) and not document:
        return _from_attribute(target, module_part, attribute)
    if target.endswith(".py"):
        raise ConfigurationError(
            f"{target}: name the flow in the file, as {target}:make_flow"
        )
    return _from_document(target, allowed_modules)


def _is_drive(text: str) -> bool:
    return len(text) == 1 and text.isalpha()


def _from_document(path: str, allowed_modules: Iterable[str]) -> Flow:
    if not os.path.exists(path):
        raise ConfigurationError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ConfigurationError(f"{path}: is a directory, not a flow document")
    try:
        return Flow.load(path, allowed_modules=list(allowed_modules))
    except SerializationError as exc:
        raise ConfigurationError(f"not a flow document: {exc}") from exc
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _from_attribute(target: str, module_name: str, attribute: str) -> Flow:
    module = _import(target, module_name)
    value: Any = module
    for part in attribute.split("."):
        value = getattr(value, part, _MISSING)
        if value is _MISSING:
            raise ConfigurationError(
                f"{target}: module {module.__name__!r} has no attribute {attribute!r}"
            )
    if callable(value) and not isinstance(value, Flow):
        value = _call(target, value)
    if not isinstance(value, Flow):
        raise ConfigurationError(
            f"{target}: is a {type(value).__name__}, not a Flow or a function "
            "returning one"
        )
    return value


def _call(target: str, function: Any) -> Any:
    try:
        return function()
    except Exception as exc:
        raise ConfigurationError(
            f"{target}: calling it raised {type(exc).__name__}: {exc}"
        ) from exc


def _import(target: str, module_name: str) -> ModuleType:
    if module_name.endswith(".py"):
        return _import_file(target, Path(module_name))
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise ConfigurationError(f"{target}: {module_name!r} is not a module name")
    search_here()
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ConfigurationError(
                f"{target}: no module named {module_name!r}"
            ) from exc
        raise _import_failed(target, module_name, exc) from exc
    except Exception as exc:
        raise _import_failed(target, module_name, exc) from exc


def _import_file(target: str, path: Path) -> ModuleType:
    if not path.is_file():
        raise ConfigurationError(f"{target}: no such file {str(path)!r}")
    name = path.stem
    if not name.isidentifier():
        raise ConfigurationError(f"{target}: {path.name!r} is not a module file name")
    loaded = sys.modules.get(name)
    if loaded is not None:
        # Loaded before (by an earlier TARGET, or imported): the same file is
        # used as it is; another module of that name is not replaced.
        if Path(getattr(loaded, "__file__", "") or "").resolve() == path.resolve():
            return loaded
        raise ConfigurationError(
            f"{target}: another module named {name!r} is already loaded "
            f"({getattr(loaded, '__file__', None) or 'built in'})"
        )
    _put_first_on_path(str(path.resolve().parent))
    search_here()
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - .py always loads
        raise ConfigurationError(f"{target}: cannot load {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    # Registered first, as an import would: dataclasses and pickling look it up.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise _import_failed(target, str(path), exc) from exc
    return module


def _import_failed(target: str, what: str, exc: BaseException) -> ConfigurationError:
    return ConfigurationError(
        f"{target}: importing {what!r} raised {type(exc).__name__}: {exc}"
    )


def search_here() -> None:
    """Put the current directory first on ``sys.path``, as ``python -m`` does."""
    _put_first_on_path(os.getcwd())


def _put_first_on_path(directory: str) -> None:
    if directory not in sys.path:
        sys.path.insert(0, directory)
