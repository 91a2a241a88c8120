"""Payload values of every supported type, and a comparison that sees their types.

Shared by the issue 10 tests: hypothesis strategies over the types the tagged
encoding keeps, nested in payloads, and :func:`same`, which says two values are
equal *and* of equal types all the way down (NaN equal to NaN).
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel


class Colour(enum.Enum):
    """A plain enum."""

    RED = "red"
    PAIR = (1, 2)


class Level(enum.IntEnum):
    """An int enum: orjson alone writes it as its int."""

    LOW = 1
    HIGH = 2


class Money(BaseModel):
    """A pydantic model holding values JSON cannot hold as themselves."""

    amount: Decimal
    currency: str = "EUR"
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Point:
    """A dataclass."""

    x: int
    y: float
    label: Any = None


_OFFSETS = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)),
)
_ZONES = st.none() | st.just(timezone.utc) | _OFFSETS | st.timezones()

#: Values a set may hold or a dict be keyed by.
hashables = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=5),
    st.dates(),
    st.uuids(),
    st.sampled_from(Level),
    st.tuples(st.integers(), st.text(max_size=3)),
)

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**130), max_value=2**130),
    st.floats(),  # NaN and infinities among them
    st.text(max_size=8),
    st.decimals(allow_nan=False),
    st.dates(),
    st.datetimes(timezones=_ZONES, allow_imaginary=False),
    st.times(timezones=st.none() | _OFFSETS),
    st.timedeltas(),
    st.uuids(),
    st.binary(max_size=8),
    st.sampled_from(Colour),
    st.sampled_from(Level),
    st.builds(
        Money,
        amount=st.decimals(allow_nan=False, allow_infinity=False),
        tags=st.lists(st.text(max_size=3), max_size=2).map(tuple),
    ),
    st.builds(Point, st.integers(), st.floats(), st.none() | st.uuids()),
)

values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
        st.dictionaries(hashables, inner, max_size=3),  # keys that are not text
        st.dictionaries(st.text(max_size=4).map("$".__add__), inner, max_size=1),
        st.sets(hashables, max_size=3),
        st.frozensets(hashables, max_size=3),
    ),
    max_leaves=12,
)

#: What a handler is called with: a dict of named values.
payloads = st.dictionaries(st.text(max_size=6), values, max_size=4)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, all the way down; NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)  # NaN, and the sign of zero
    if isinstance(a, Decimal):
        return str(a) == str(b)  # 1.10 is not written as 1.1
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):  # in any order, as dicts compare (flow documents sort)
        keys_b = {key: key for key in b}
        return len(a) == len(b) and all(
            key in keys_b and same(key, keys_b[key]) and same(a[key], b[key])
            for key in a
        )
    if isinstance(a, (set, frozenset)):
        return sorted(map(repr, a)) == sorted(map(repr, b))
    if isinstance(a, BaseModel):
        return same(dict(a), dict(b))
    if dataclasses.is_dataclass(a):
        fields = [f.name for f in dataclasses.fields(a)]
        return same([getattr(a, f) for f in fields], [getattr(b, f) for f in fields])
    if isinstance(a, (datetime, time)):
        return a == b and repr(a.replace(fold=0)) == repr(b.replace(fold=0))
    return bool(a == b)
