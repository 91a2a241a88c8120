"""Issue 10: a time zone offset with seconds keeps them through a document.

Python before 3.12 reads ``+00:00:00.000001`` back as ``+00:00``: a
``datetime`` or ``time`` whose fixed offset had seconds or microseconds came
back in another zone (found by the hypothesis round trip of
``test_issue_10_payloads``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from routilux import JobState
from routilux.serialization import decode_value, encode_value

if TYPE_CHECKING:
    from pathlib import Path

OFFSETS = [
    dt.timedelta(microseconds=1),
    -dt.timedelta(hours=5, seconds=7, microseconds=3),
    dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999),
    dt.timedelta(hours=5, minutes=30),
    -dt.timedelta(minutes=1),
    dt.timedelta(0),
]


def values(offset: dt.timedelta) -> list[object]:
    zone = dt.timezone(offset)
    return [
        dt.time(1, 2, 3, 4, tzinfo=zone),
        dt.time(0, 0, tzinfo=zone),
        dt.datetime(2020, 2, 29, 23, 59, 59, 999_999, tzinfo=zone),
        dt.datetime(1, 1, 2, tzinfo=zone),
    ]


@pytest.mark.parametrize("offset", OFFSETS, ids=str)
def test_an_offset_keeps_its_seconds_through_the_encoding(offset: dt.timedelta) -> None:
    for value in values(offset):
        back = decode_value(encode_value(value))
        assert type(back) is type(value)
        assert back == value
        assert back.utcoffset() == value.utcoffset()  # type: ignore[attr-defined]


def test_naive_values_stay_naive() -> None:
    for value in (dt.time(1, 2, 3, 4), dt.datetime(2020, 1, 1, 1, 2, 3, 5)):
        back = decode_value(encode_value(value))
        assert back == value and back.tzinfo is None


def test_an_offset_keeps_its_seconds_through_a_job_document(tmp_path: Path) -> None:
    job = JobState("flow")
    moments = [value for offset in OFFSETS for value in values(offset)]
    job.update_routine_state("r", {"moments": moments})
    job.save(tmp_path / "job.json")
    loaded = JobState.load(tmp_path / "job.json")
    back = loaded.get_routine_state("r")["moments"]
    assert [(v, v.utcoffset()) for v in back] == [(v, v.utcoffset()) for v in moments]
