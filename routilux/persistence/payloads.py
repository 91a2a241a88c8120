"""Payloads and dead letters in a store: routilux's tagged JSON encoding, checked.

Stores keep the values handlers are called with; these helpers write them in the
encoding of :mod:`routilux.serialization` (so a ``Decimal`` or a tuple reads back
as itself) and read them back, saying which record is at fault when they cannot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import CheckpointError, SerializationError
from ..serialization import (
    ClassPolicy,
    decode_value,
    dumps_value,
    encode_value,
    tagged,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "decode_values",
    "encode_values",
    "encoded_values",
    "read_payload",
    "read_pending",
    "value_classes",
]


def encode_values(value: Any, where: str, what: str) -> bytes:
    """``value`` (a payload, a dead letter) in routilux's tagged JSON encoding.

    Raises:
        SerializationError: For a value no encoding holds, naming the store,
            ``what`` and the path of the value (``payload.items[3].price``).
    """
    try:
        return dumps_value(value, _PATHS.get(what.split(" ", 1)[0], "value"))
    except SerializationError as exc:
        raise SerializationError(f"{where}: {what}: {exc}") from exc


def encoded_values(value: Any, where: str, what: str) -> Any:
    """Like :func:`encode_values`, as a plain JSON value rather than text."""
    try:
        return encode_value(value, _PATHS.get(what.split(" ", 1)[0], "value"))
    except SerializationError as exc:
        raise SerializationError(f"{where}: {what}: {exc}") from exc


# What the paths in messages start with, by the first word of ``what``.
_PATHS = {"activation": "payload", "dead": "letter"}


def decode_values(
    data: Any, raw: str | bytes | None, where: str, what: str, classes: ClassPolicy
) -> Any:
    """Decode tagged values read back (``raw``: their text, when at hand).

    Raises:
        CheckpointError: Naming the store, ``what`` and the path of a tag that
            does not decode or names a class that is not allowed.
    """
    if raw is not None and not tagged(raw):
        return data  # no tag in the text: nothing to decode
    try:
        return decode_value(data, "", classes)
    except SerializationError as exc:
        raise CheckpointError(f"{where}: {what}: {exc}") from exc


def read_payload(
    data: Any, raw: str | bytes | None, where: str, what: str, classes: ClassPolicy
) -> dict[str, Any]:
    """A stored payload decoded; it must be an object (a dict).

    Raises:
        CheckpointError: Naming the store, ``what`` and the path when a tag does
            not decode or the payload is not an object.
    """
    payload = decode_values(data, raw, where, what, classes)
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"{where}: {what}: payload: expected an object, got "
            f"{type(payload).__name__}; delete or repair the record"
        )
    return payload


def value_classes(allowed_classes: Iterable[type] | None) -> ClassPolicy:
    """The classes a store's stored values may name (see ``allowed_classes``).

    Raises:
        CheckpointError: When ``allowed_classes`` is not a collection of classes.
    """
    try:
        return ClassPolicy(allowed_classes)
    except SerializationError as exc:
        raise CheckpointError(str(exc)) from exc


def read_pending(
    items: list[Any], where: str, job_id: str, classes: ClassPolicy
) -> list[dict[str, Any]]:
    """Stored pending activations (JSON objects), their payloads decoded.

    Raises:
        CheckpointError: Naming the activation's index when it is not an object,
            its payload is not one, or a tag in it does not decode.
    """
    activations = []
    for index, item in enumerate(items):
        what = f"job {job_id!r}: pending_activations[{index}]"
        if not isinstance(item, dict):
            raise CheckpointError(f"{where}: {what}: expected an object")
        payload = read_payload(item.get("payload"), None, where, what, classes)
        activations.append({**item, "payload": payload})
    return activations
