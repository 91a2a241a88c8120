"""Flow documents: a flow's structure as JSON, and flows built from it.

:class:`FlowDocuments` gives :class:`~routilux.Flow` its ``serialize``,
``deserialize``, ``to_json``, ``from_json``, ``save`` and ``load`` methods; the work
is done by :mod:`routilux.serialization`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ._compat import InstanceOrClassMethod
from .exceptions import SerializationError
from .serialization import (
    flow_from_dict,
    flow_to_dict,
    flow_to_json,
    from_json,
    read_document,
    to_json,
    write_atomic,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from .flow import Flow

__all__ = ["FlowDocuments"]


class FlowDocuments:
    """The document methods of a flow (a base class of :class:`~routilux.Flow`)."""

    def serialize(self) -> dict[str, Any]:
        """The structure as a JSON-ready dict (never job state).

        Safe while jobs run; not while the structure or configs change.

        Raises:
            SerializationError: For a routine whose constructor needs arguments or
                a value that is not plain JSON, naming its path in the document.
        """
        return flow_to_dict(cast("Flow", self))

    @InstanceOrClassMethod
    def deserialize(
        owner: Flow | type[Flow],
        data: dict[str, Any],
        *,
        allowed_modules: Iterable[str] | None = None,
        allowed_classes: Iterable[type] | None = None,
    ) -> Flow:
        """Rebuild from :meth:`serialize` output.

        Called on the class it returns a new flow; called on an instance it fills
        that flow (which must have no routines) and returns it. Not thread-safe on
        an instance (fill it before running it); the class call is.

        Args:
            data: The document.
            allowed_modules: Modules (exact names) that may be imported to find
                routine classes the registry does not know; nothing else is
                imported. This limits imports only: any Routine subclass the
                process has already imported loads from any document.
            allowed_classes: For documents from sources you do not trust: the
                only classes the document may name (routine classes, exception
                types besides builtins and routilux's own, classes of config
                values). Any other is refused with a SerializationError naming
                the class and its path.

        Raises:
            SerializationError: Naming the path of whatever is wrong in ``data``;
                nothing is returned and the instance is left unchanged.
        """
        if not isinstance(owner, type):
            return flow_from_dict(
                data, owner, allowed_modules, allowed_classes=allowed_classes
            )
        return flow_from_dict(
            data, None, allowed_modules, owner, allowed_classes=allowed_classes
        )

    def to_json(self) -> bytes:
        """The structure as JSON bytes, keys sorted (equal flows, equal bytes).

        Safe while jobs run; not while the structure or configs change.

        Raises:
            SerializationError: As :meth:`serialize`.
        """
        # Plain JSON throughout (the common case) needs no copy on the way to
        # bytes; anything else takes serialize()'s document, tags and checks.
        raw = flow_to_json(cast("Flow", self))
        return raw if raw is not None else to_json(self.serialize())

    @classmethod
    def from_json(
        cls,
        raw: bytes | str,
        *,
        allowed_modules: Iterable[str] | None = None,
        allowed_classes: Iterable[type] | None = None,
    ) -> Flow:
        """A new flow from :meth:`to_json` output (see :meth:`deserialize`).

        Thread-safe.
        """
        return flow_from_dict(
            from_json(raw),
            None,
            allowed_modules,
            _flow_class(cls),
            fresh=True,
            allowed_classes=allowed_classes,
        )

    def save(self, path: str | Path) -> None:
        """Write the structure as indented JSON to ``path``.

        Parent directories are created and the file is replaced in one step.
        Safe while jobs run; not while the structure or configs change.
        """
        write_atomic(path, to_json(self.serialize(), indent=True))

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        allowed_modules: Iterable[str] | None = None,
        allowed_classes: Iterable[type] | None = None,
    ) -> Flow:
        """A new flow from a file written by :meth:`save` (see :meth:`deserialize`).

        Thread-safe.

        Raises:
            FileNotFoundError: When ``path`` does not exist.
            SerializationError: When the file is not a flow document (the message
                names the file).
        """
        try:
            return flow_from_dict(
                read_document(path),
                None,
                allowed_modules,
                _flow_class(cls),
                fresh=True,
                allowed_classes=allowed_classes,
            )
        except SerializationError as exc:
            if str(exc).startswith(f"{path}: "):
                raise
            raise SerializationError(f"{path}: {exc}") from exc


def _flow_class(cls: type[FlowDocuments]) -> type[Flow]:
    # FlowDocuments is only ever a base of Flow.
    return cast("type[Flow]", cls)
