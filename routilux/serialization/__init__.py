"""Flow documents: JSON-ready dicts with a schema version, read back safely.

A flow document (``schema_version`` 2) holds the structure of a flow, never job
state::

    {"schema_version": 2, "kind": "routilux.flow", "flow_id": ...,
     "execution_strategy": ..., "max_workers": ..., "default_timeout": ...,
     "history_limit": ..., "error_handler": null | {...},
     "routines": {"<id>": {"class": "module:QualifiedName", "config": {...},
                           "max_concurrency": ..., "error_handler": ...,
                           "timeout": ..., "circuit_breaker": null | {...},
                           "stats": {...},
                           "slots": [{"name", "merge_strategy", "handler",
                                      "instance" (defined on the instance)}],
                           "events": [{"name", "output_params"}]}},
     "connections": [{"source", "event", "target", "slot", "param_mapping",
                      "lane_key" (only when the connection has one)}]}

Version 1 (the first cut) had no stats, slots, events, timeouts, circuit breakers,
``default_timeout`` or ``history_limit``; it still loads, with those empty. Other
versions are refused with a message saying so.

Reading is safe: no pickle, eval or exec. A routine class is found in the routine
registry (every Routine subclass joins when defined) or, only when the caller lists
its module in ``allowed_modules``, by importing that module. The name must be in the
list exactly: a listed package does not admit its submodules (Python imports a
listed module's parent packages as part of importing it). Exception types named by
error handlers resolve the same way, besides builtins and ``routilux.exceptions``.
``allowed_modules`` only limits what is imported: any Routine subclass the process
has already imported loads from any document. For documents from sources you do not
trust, pass ``allowed_classes``: then only the listed classes are named, routines
and the classes of config values alike.

Routine configs (and whatever a routine's ``serialize()`` returns) are written in
the tagged encoding of :mod:`._tags`, so a ``Decimal``, ``datetime``, tuple or enum
member reads back as itself.

Reading is strict: every value must be plain JSON, unknown keys are refused, the
slots and events a class declares are not built from the document but checked
against it (merge strategies are restored by registered name), and the rebuilt
routine must describe itself exactly as the document does. Slots defined on the
instance after construction (all of a bare ``Routine()``'s) are described in full
and rebuilt, their handlers named as methods of the routine's class or module-level
functions of an allowed module (see :mod:`routilux.serialization._instance`);
events a document lists that the rebuilt routine lacks are defined on it. So a
document that loads writes back byte for byte. Every problem raises
:class:`~routilux.SerializationError` naming its path
(``routines.fetcher1.config``), and nothing is returned or changed half-built. A
circuit breaker's clock, a ``Window`` policy's clock and an error handler's
``sleep`` are not kept, nor are session settings (a flow's ``session_ttl`` and
``session_clock``, a routine's ``set_session_ttl``): set them again after loading.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..exceptions import SerializationError
from ._reader import FlowPlan, read_flow
from ._resolver import ClassPolicy, Resolver
from ._tags import dumps as dumps_value
from ._tags import encode as encode_value
from ._tags import encodes_as_itself
from ._untag import decode as decode_value
from ._untag import loads as loads_value
from ._untag import tagged
from ._values import MAX_DEPTH, json_copy
from ._writer import MAX_WORKERS, SCHEMA_VERSION, flow_to_dict, flow_to_json

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..flow import Flow

__all__ = [
    "MAX_DEPTH",
    "MAX_WORKERS",
    "SCHEMA_VERSION",
    "ClassPolicy",
    "decode_value",
    "dumps_value",
    "encode_value",
    "encodes_as_itself",
    "flow_from_dict",
    "flow_to_dict",
    "flow_to_json",
    "from_json",
    "json_copy",
    "loads_value",
    "read_document",
    "read_file",
    "tagged",
    "to_json",
    "write_atomic",
]


def flow_from_dict(
    data: Any,
    into: Flow | None = None,
    allowed_modules: Iterable[str] | None = None,
    flow_class: type[Flow] | None = None,
    *,
    fresh: bool = False,
    allowed_classes: Iterable[type] | None = None,
) -> Flow:
    """Build a Flow from a document, or fill ``into`` (a flow with no routines).

    Args:
        data: The document.
        into: The flow to fill, or None for a new one.
        allowed_modules: Modules that may be imported (exact names) to find routine
            classes and exception types the registry does not know.
        flow_class: The class of a new flow (default :class:`~routilux.Flow`).
        fresh: ``data`` comes straight from :func:`from_json` and nothing else
            holds it: it is read without a copy, and used up (each routine entry
            is dropped once read). Its depth is still checked.
        allowed_classes: When given, the only classes the document may name:
            routine classes, exception types (besides builtins and routilux's
            own) and the classes of config values (enums, pydantic models,
            dataclasses). By default any class already imported, or defined in
            ``allowed_modules``, may be named.

    Raises:
        SerializationError: Naming the path of the first problem; on failure
            nothing is returned and ``into`` is unchanged.
    """
    resolver = Resolver(allowed_modules, allowed_classes)
    if into is not None and into.routines:
        raise SerializationError(
            f"cannot deserialize into flow {into.flow_id!r}: it already has routines "
            "(use Flow.deserialize(data) for a new flow)"
        )
    try:
        plan: FlowPlan = read_flow(data, resolver, fresh=fresh)
    except SerializationError:
        raise
    except Exception as exc:  # a last resort for whatever slipped past the checks
        raise SerializationError(
            f"cannot read the flow document: {type(exc).__name__}: {exc}"
        ) from exc
    return plan.fill(into) if into is not None else plan.build(flow_class)


def to_json(document: dict[str, Any], *, indent: bool = False) -> bytes:
    """Encode a document, keys sorted: equal documents give equal bytes.

    Raises:
        SerializationError: When a value is not JSON-ready.
    """
    option = orjson.OPT_SORT_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        return orjson.dumps(document, option=option)
    except TypeError as exc:
        raise SerializationError(f"document is not JSON-ready: {exc}") from exc


def from_json(raw: bytes | str) -> dict[str, Any]:
    """Decode a document.

    Raises:
        SerializationError: For anything but the text of a JSON object.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SerializationError(
            f"a document must be a JSON object, got {type(data).__name__}"
        )
    return data


def read_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the document file ``path``.

    Raises:
        FileNotFoundError: When there is no such file.
        SerializationError: When ``path`` is a directory; the message names it.
    """
    target = Path(path)
    if target.is_dir():
        raise SerializationError(
            f"{os.fspath(path)}: is a directory, not a document file"
        )
    return target.read_bytes()


def read_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the JSON object in the file ``path``.

    Raises:
        FileNotFoundError: When there is no such file.
        SerializationError: When it is a directory or holds no JSON object; the
            message names the file.
    """
    raw = read_file(path)
    try:
        return from_json(raw)
    except SerializationError as exc:
        raise SerializationError(f"{os.fspath(path)}: {exc}") from exc


def write_atomic(path: str | os.PathLike[str], raw: bytes) -> None:
    """Write ``raw`` to ``path`` through a temporary file renamed into place.

    Parent directories are created; readers never see a half-written file.
    Thread-safe (each thread writes its own temporary file).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(
        f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    )
    try:
        with temporary.open("wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
