"""Issue 10: which classes a document may name (``allowed_classes``).

By default a tag may name any Enum, pydantic model or dataclass the process has
already imported (or, for flow documents, one of ``allowed_modules``), and never
any other class; ``allowed_classes=`` narrows that to exactly the listed classes,
routine classes included, for documents from sources one does not trust.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from routilux import CheckpointError, Flow, JobState, SerializationError
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore

from .payload_values import Colour, Money, Point
from .routines import Relay

if TYPE_CHECKING:
    from pathlib import Path

_COLOUR = f"{Colour.__module__}:Colour"


def _flow_document(value: Any) -> dict[str, Any]:
    relay = Relay()
    relay.set_config(value=value)
    flow = Flow("allowed")
    flow.add_routine(relay, "relay")
    try:
        return flow.serialize()
    finally:
        flow.shutdown(wait=False)


def test_a_flow_document_names_only_the_allowed_classes() -> None:
    document = _flow_document(Colour.RED)
    loaded = Flow.deserialize(document, allowed_classes=[Relay, Colour])
    assert loaded.routines["relay"].get_config("value") is Colour.RED
    loaded.shutdown(wait=False)
    with pytest.raises(
        SerializationError,
        match=rf"^routines\.relay\.config\.value: class '{_COLOUR}' is not in "
        "allowed_classes",
    ):
        Flow.deserialize(document, allowed_classes=[Relay])
    with pytest.raises(
        SerializationError, match=r"^routines\.relay\.class: class '.*:Relay' is not in"
    ):
        Flow.from_json(orjson.dumps(document), allowed_classes=[Colour])


def test_an_exception_type_outside_builtins_must_be_listed_too() -> None:
    from routilux import ErrorHandler

    flow = Flow("x", error_handler=ErrorHandler("retry"))
    document = flow.serialize()
    flow.shutdown(wait=False)
    document["error_handler"]["retryable_exceptions"] = [
        "json.JSONDecodeError",
        "builtins.KeyError",
        "routilux.exceptions.CheckpointError",
    ]
    import json

    with pytest.raises(SerializationError, match=r"JSONDecodeError' is not in allowed"):
        Flow.deserialize(document, allowed_modules=["json"], allowed_classes=[])
    loaded = Flow.deserialize(
        document, allowed_modules=["json"], allowed_classes=[json.JSONDecodeError]
    )
    loaded.shutdown(wait=False)


def test_a_saved_job_names_only_the_allowed_classes(tmp_path: Path) -> None:
    job = JobState("flow")
    payload = {"money": Money(amount=1), "point": Point(1, 2.0)}
    job.pending_tasks = [{"routine_id": "r", "slot": "s", "payload": payload}]
    job.save(tmp_path / "job.json")
    loaded = JobState.load(tmp_path / "job.json", allowed_classes=[Money, Point])
    assert loaded.pending_tasks[0]["payload"] == payload
    with pytest.raises(
        SerializationError,
        match=r"job\.json: pending_tasks\[0\]\.payload\.point: class '.*:Point' is "
        "not in allowed_classes",
    ):
        JobState.load(tmp_path / "job.json", allowed_classes=[Money])
    with pytest.raises(SerializationError, match=r"payload\.money: class"):
        JobState.deserialize(job.serialize(), allowed_classes=())


@pytest.mark.parametrize("kind", ["sqlite", "jsonfile"])
def test_a_store_rebuilds_only_the_allowed_classes(kind: str, tmp_path: Path) -> None:
    def opener(**options: Any) -> Any:
        if kind == "sqlite":
            return SQLiteCheckpointStore(tmp_path / "c.sqlite", **options)
        return JsonFileCheckpointStore(tmp_path / "json", **options)

    with opener() as store:
        store.save_job(JobState("flow", job_id="job").serialize())
        payload = {"colour": Colour.PAIR}
        store.record_step(
            "job",
            added=[{"id": "a1", "routine_id": "r", "slot": "s", "payload": payload}],
        )
    with opener(allowed_classes=[Colour]) as store:
        assert store.pending("job")[0]["payload"] == payload
    with (
        opener(allowed_classes=[]) as store,
        pytest.raises(CheckpointError, match=rf"colour: class '{_COLOUR}' is not"),
    ):
        store.pending("job")
    with pytest.raises(CheckpointError, match=r"allowed_classes must be a collection"):
        opener(allowed_classes=Colour)


@pytest.mark.parametrize(
    ("tag", "words"),
    [
        ({"$enum": ["os:system", 1]}, r"'os:system' is not an Enum class"),
        ({"$dataclass": ["subprocess:Popen", {"args": "ls"}]}, r"is not a dataclass"),
        ({"$model": ["collections:OrderedDict", {}]}, r"is not a pydantic model"),
        ({"$enum": ["no_such_module_x:E", 1]}, r"its module is not imported"),
        ({"$enum": ["not a name", 1]}, r"is not a class name"),
        ({"$enum": [_COLOUR, 3]}, r"3 is not a valid Colour"),
        ({"$what": 1}, r"unknown tag '\$what'"),
        ({"$decimal": 5}, r"a bad \$decimal tag"),
        ({"$tuple": "ab"}, r"a bad \$tuple tag"),
        ({"$dict": [[[1], 2]]}, r"a bad \$dict tag .*unhashable"),
        ({"$int": "12x"}, r"a bad \$int tag"),
        ({"$datetime": ["2024-01-01T00:00:00+00:00", "No/Such_Zone"]}, r"\$datetime"),
    ],
)
def test_a_bad_tag_is_refused_naming_its_path(tag: dict[str, Any], words: str) -> None:
    job = JobState("flow").serialize()
    job["pending_tasks"] = [{"routine_id": "r", "slot": "s", "payload": {"v": tag}}]
    with pytest.raises(SerializationError, match=r"^pending_tasks\[0\]\.payload\.v"):
        JobState.deserialize(job)
    with pytest.raises(SerializationError, match=words):
        JobState.deserialize(job)


def test_nothing_is_imported_to_rebuild_a_value() -> None:
    import sys

    assert "antigravity" not in sys.modules
    job = JobState("flow").serialize()
    tag = {"$enum": ["antigravity:Thing", 1]}
    job["pending_tasks"] = [{"routine_id": "r", "slot": "s", "payload": {"v": tag}}]
    with pytest.raises(SerializationError, match=r"module is not imported"):
        JobState.deserialize(job)
    assert "antigravity" not in sys.modules


def test_a_class_defined_in_a_function_is_refused_at_write_time() -> None:
    import enum

    class Local(enum.Enum):
        A = 1

    job = JobState("flow")
    job.pending_tasks = [{"routine_id": "r", "slot": "s", "payload": {"v": Local.A}}]
    with pytest.raises(
        SerializationError, match=r"payload\.v: class .*Local.* cannot be"
    ):
        job.serialize()


def test_a_flow_document_may_import_a_value_class_from_allowed_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "issue10_shades.py").write_text(
        "import enum\n\nclass Shade(enum.Enum):\n    DARK = 'dark'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "issue10_shades", raising=False)
    document = _flow_document(1)
    document["routines"]["relay"]["config"]["value"] = {
        "$enum": ["issue10_shades:Shade", "dark"]
    }
    with pytest.raises(SerializationError, match=r"config\.value: class .* not imp"):
        Flow.deserialize(document)
    assert "issue10_shades" not in sys.modules
    loaded = Flow.deserialize(document, allowed_modules=["issue10_shades"])
    try:
        shade = loaded.routines["relay"].get_config("value")
        assert type(shade).__name__ == "Shade" and shade.value == "dark"
    finally:
        loaded.shutdown(wait=False)
        sys.modules.pop("issue10_shades", None)
