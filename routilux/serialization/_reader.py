"""Reading a flow document: check all of it and build every routine, then the flow."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exceptions import RoutiluxError, SerializationError
from ._routines import read_handler, read_routine
from ._values import (
    MAX_DEPTH,
    field,
    is_dict,
    is_int,
    is_list,
    is_mapping,
    is_name,
    is_optional_dict,
    is_positive_int,
    is_seconds,
    json_copy,
    nests_within,
    no_unknown_keys,
)
from ._writer import KIND, MAX_WORKERS, SCHEMA_VERSION

if TYPE_CHECKING:
    from ..flow import Flow
    from ..resilience import ErrorHandler
    from ..routine import Routine
    from ._resolver import Resolver

__all__ = ["FlowPlan", "read_flow"]

_READS = (1, SCHEMA_VERSION)
_FLOW_KEYS = frozenset(
    {
        "schema_version", "kind", "flow_id", "execution_strategy", "max_workers",
        "default_timeout", "history_limit", "error_handler", "routines",
        "connections",
    }
)  # fmt: skip
_V1_FLOW = {"default_timeout": None, "history_limit": None}
_LINK_KEYS = ("source", "event", "target", "slot")
_LINK_FIELDS = frozenset({*_LINK_KEYS, "param_mapping"})

#: ``(source, event, target, slot, param_mapping, lane_key)``.
Link = tuple[str, str, str, str, dict[str, str] | None, str | None]


@dataclass
class FlowPlan:
    """A checked document: settings, rebuilt routines and the connections to make."""

    flow_id: str
    strategy: str
    max_workers: int
    default_timeout: float | None
    history_limit: int | None
    error_handler: ErrorHandler | None
    routines: dict[str, Routine]
    links: list[Link]

    def build(self, flow_class: type[Flow] | None) -> Flow:
        """A new flow of ``flow_class`` (default Flow) holding the plan."""
        from ..flow import Flow

        try:
            flow = (flow_class or Flow)(
                self.flow_id,
                self.strategy,
                self.max_workers,
                error_handler=self.error_handler,
                history_limit=self.history_limit,
                default_timeout=self.default_timeout,
            )
        except Exception as exc:  # a Flow subclass's constructor, say
            raise SerializationError(f"cannot create the flow: {exc}") from exc
        try:
            self._wire(flow)
        except SerializationError:
            flow.shutdown(wait=False)  # nothing half-built is returned
            raise
        except Exception as exc:  # a bug: nothing is returned
            flow.shutdown(wait=False)
            raise SerializationError(f"cannot wire the flow: {exc}") from exc
        return flow

    def fill(self, flow: Flow) -> Flow:
        """Put the plan into ``flow`` (which has no routines); undo it on failure."""
        before = (flow.flow_id, flow.error_handler, flow.history_limit)
        strategy, workers = flow.execution_strategy, flow.max_workers
        timeout = flow.default_timeout
        try:
            flow.set_execution_strategy(self.strategy, self.max_workers)
            flow.flow_id, flow.error_handler, flow.history_limit = (
                self.flow_id,
                self.error_handler,
                self.history_limit,
            )
            flow.default_timeout = self.default_timeout
            self._wire(flow)
        except Exception as exc:  # a connection refused, or a bug: put it all back
            for rid in list(flow.routines):
                flow.remove_routine(rid)
            flow.flow_id, flow.error_handler, flow.history_limit = before
            flow.default_timeout = timeout
            with contextlib.suppress(RoutiluxError):
                flow.set_execution_strategy(strategy, workers)
            if isinstance(exc, SerializationError):
                raise
            raise SerializationError(
                f"cannot fill flow {before[0]!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return flow

    def _wire(self, flow: Flow | Any) -> None:
        """Add the routines and connect them; a refused link names its index."""
        for rid, routine in self.routines.items():
            flow.add_routine(routine, rid)
        index = 0
        try:
            for index, link in enumerate(self.links):  # noqa: B007 (in the error)
                flow.connect(*link[:5], lane_key=link[5])
        except RoutiluxError as exc:
            raise SerializationError(f"connections[{index}]: {exc}") from exc


def read_flow(data: Any, resolver: Resolver, *, fresh: bool = False) -> FlowPlan:
    """Check a whole flow document and rebuild its routines.

    Args:
        data: The document.
        resolver: Finds the classes it names.
        fresh: ``data`` was just decoded by orjson and nothing else holds it: it is
            plain JSON already, so it is read as it is instead of copied first, and
            each routine entry is dropped from it once read.

    Raises:
        SerializationError: Naming the path of the first problem.
    """
    if not isinstance(data, dict):
        raise SerializationError(
            f"a flow document must be an object, got {type(data).__name__}"
        )
    version = _version(data)
    if not fresh:  # plain values, or the path of the first that is not
        return _read(json_copy(data, ""), resolver, version, fresh=False)
    try:
        return _read(data, resolver, version, fresh=True)
    except Exception:
        # Fresh data is checked for depth only where routines keep values (their
        # configs and stats: deeper values anywhere else fail their own checks).
        # Whatever went wrong, a value nested too deep is named first, as when
        # the whole document is copied before it is read.
        json_copy(data, "")
        raise


def _read(
    doc: dict[str, Any], resolver: Resolver, version: int, *, fresh: bool
) -> FlowPlan:
    if version == 1:
        doc = {**_V1_FLOW, **doc}
    no_unknown_keys(doc, _FLOW_KEYS, "")
    field(doc, "kind", "", lambda v: v == KIND, repr(KIND))
    flow_id = field(doc, "flow_id", "", is_name, "a non-empty string")
    strategy, workers = _strategy(doc)
    handler, _ = read_handler(
        field(doc, "error_handler", "", is_optional_dict, "null or an object"),
        "error_handler",
        resolver,
    )
    entries = field(doc, "routines", "", is_dict, "an object")
    if "" in entries:
        raise SerializationError("routines: a routine id must not be empty")
    routines = {}
    for rid, entry in entries.items():
        if fresh:
            _check_kept_depth(rid, entry)
        routines[rid] = read_routine(rid, entry, resolver, version)
        if fresh:  # nothing else holds the entry: let it go (20,000 objects for 2,000)
            entries[rid] = None
    links = _read_links(doc)
    return FlowPlan(
        flow_id,
        strategy,
        workers,
        field(doc, "default_timeout", "", is_seconds, "null or seconds > 0"),
        field(doc, "history_limit", "", _is_limit, "null or an int >= 1"),
        handler,
        routines,
        links,
    )


#: How deep a routine's config and stats are: document, routines, entry, them.
_KEPT_AT = 3


def _check_kept_depth(rid: str, entry: Any) -> None:
    """Refuse a config or stats in ``entry`` nested deeper than a document may."""
    if type(entry) is not dict:
        return  # read_routine says what is wrong
    for key in ("config", "stats"):
        kept = entry.get(key)
        if type(kept) is not dict or _CONTAINERS.isdisjoint(map(type, kept.values())):
            continue  # not a dict (read_routine says so), or flat: one level
        if not nests_within(kept, MAX_DEPTH - _KEPT_AT):
            json_copy(kept, f"routines.{rid}.{key}", _KEPT_AT)  # raises, naming it


_CONTAINERS = frozenset({dict, list})


def _version(data: dict[str, Any]) -> int:
    version: int = field(data, "schema_version", "", is_int, "an integer")
    if version in _READS:
        return version
    if version > SCHEMA_VERSION:
        raise SerializationError(
            f"schema_version: {version} is newer than this routilux reads (1 to "
            f"{SCHEMA_VERSION}); upgrade routilux to load it"
        )
    raise SerializationError(
        f"schema_version: {version} is not a version this routilux reads (1 to "
        f"{SCHEMA_VERSION})"
    )


def _is_limit(value: Any) -> bool:
    return value is None or is_positive_int(value)


def _strategy(doc: dict[str, Any]) -> tuple[str, int]:
    from ..strategies.base import registered_strategies

    name = field(doc, "execution_strategy", "", is_name, "a strategy name")
    known = registered_strategies()
    if name not in known:
        raise SerializationError(
            f"execution_strategy: unknown strategy {name!r}; registered: {known}"
        )
    workers = field(
        doc,
        "max_workers",
        "",
        lambda v: is_positive_int(v) and v <= MAX_WORKERS,
        f"an int from 1 to {MAX_WORKERS}",
    )
    if name == "sequential" and workers != 1:
        raise SerializationError(
            f"max_workers: the sequential strategy runs on 1 worker, not {workers}"
        )
    return name, workers


def _read_links(doc: dict[str, Any]) -> list[Link]:
    links: list[Link] = []
    for index, item in enumerate(field(doc, "connections", "", is_list, "a list")):
        link = _plain_link(item)
        links.append(link if link is not None else _read_link(item, index))
    return links


def _plain_link(item: Any) -> Link | None:
    """The link, when ``item`` is a connection the field checks would pass as is."""
    if type(item) is not dict or item.keys() != _LINK_FIELDS:
        return None
    source, event, target = item["source"], item["event"], item["target"]
    slot, mapping = item["slot"], item["param_mapping"]
    names = (source, event, target, slot)
    if (
        not all(type(name) is str and name for name in names)
        or type(mapping) is not dict
    ):
        return None
    if mapping and not all(type(value) is str for value in mapping.values()):
        return None
    return source, event, target, slot, mapping or None, None


def _read_link(item: Any, index: int) -> Link:
    """Check a connection field by field: the first problem names its path."""
    path = f"connections[{index}]"
    if not isinstance(item, dict):
        raise SerializationError(f"{path}: expected an object")
    no_unknown_keys(item, (*_LINK_FIELDS, "lane_key"), path)
    source, event, target, slot = (
        field(item, key, path, is_name, "a non-empty string") for key in _LINK_KEYS
    )
    mapping = field(item, "param_mapping", path, is_mapping, "an object of strings")
    lane_key = (
        field(item, "lane_key", path, is_name, "a non-empty string")
        if "lane_key" in item
        else None
    )
    return source, event, target, slot, mapping or None, lane_key
