"""Ray, imported only when a flow asks for the ``ray`` strategy."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ...exceptions import ExtraNotInstalledError

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["import_ray"]

#: What to install for the ``ray`` strategy.
INSTALL = "pip install 'routilux[ray]'"


def import_ray() -> ModuleType:
    """The ``ray`` module.

    Raises:
        ExtraNotInstalledError: When Ray is not installed (the message names the
            extra to install).
    """
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ExtraNotInstalledError(
            f"the 'ray' execution strategy needs Ray, which is not installed "
            f"({exc}): {INSTALL}"
        ) from exc
