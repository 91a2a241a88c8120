"""The ``ray`` execution strategy (needs the ``ray`` extra).

Importing this package does not import Ray; making a :class:`RayStrategy` does,
and raises :class:`~routilux.ExtraNotInstalledError` when Ray is missing.
"""

from __future__ import annotations

from .strategy import RayStrategy

__all__ = ["RayStrategy"]
