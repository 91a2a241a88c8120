"""The allow-list of pydantic models a :class:`DataValidator` may name.

A configuration, and so a flow document, names a model as
``"module:QualifiedName"``; the name is looked up here and nowhere else. Nothing
is ever imported to find a model, so a document can only name the models the
program registered (:func:`register_model`, or passing the class to
``DataValidator.set_config``, which registers it).
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel

from ..exceptions import ConfigurationError, DuplicateNameError

__all__ = ["find_model", "model_name", "register_model"]

_models: dict[str, type[BaseModel]] = {}
_lock = threading.Lock()  # guards _models


def model_name(model: type[BaseModel]) -> str:
    """The name a document uses for ``model``: ``module:QualifiedName``."""
    return f"{model.__module__}:{model.__qualname__}"


def register_model(model: type[BaseModel], *, name: str | None = None) -> str:
    """Allow DataValidator configurations to name ``model``; return the name.

    Thread-safe. Registering the same class again does nothing; a class defined
    again under the same name (a reloaded module) replaces the old one.

    Args:
        model: A pydantic model class.
        name: The name to use (default ``module:QualifiedName``).

    Raises:
        ConfigurationError: When ``model`` is not a pydantic model class.
        DuplicateNameError: When ``name`` is given and taken by another class.
    """
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigurationError(
            f"register_model() takes a pydantic model class, got {model!r}"
        )
    key = name if name is not None else model_name(model)
    with _lock:
        known = _models.get(key)
        if name is not None and known is not None and known is not model:
            raise DuplicateNameError(f"model name {key!r} is taken by {known!r}")
        _models[key] = model
    return key


def find_model(name: Any, where: str) -> type[BaseModel]:
    """The model registered as ``name``.

    Raises:
        ConfigurationError: Naming ``where`` when no model is registered so.
    """
    with _lock:
        found = _models.get(name) if isinstance(name, str) else None
    if found is None:
        raise ConfigurationError(
            f"{where}: no pydantic model is registered as {name!r}; call "
            "routilux.builtin.register_model(YourModel) (or pass the class to "
            "set_config) before running or loading the flow"
        )
    return found
