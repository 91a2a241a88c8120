"""Issue 13: the performance page is built from a results file bench/run.py writes.

``bench/run.py --write-results FILE`` writes the run's table and machine as JSON;
docs/_ext/bench_table.py renders such a file into the page. These tests run the
bench's ``main`` with one stand-in case (no timing is measured or asserted),
render what it wrote, and check the file the documentation ships.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "docs" / "_static" / "bench.json"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/run.py, imported as the script imports its siblings."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("run")


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "docs" / "_ext"))
    return importlib.import_module("bench_table")


def stand_in(bench: ModuleType, monkeypatch: pytest.MonkeyPatch, fail: bool) -> None:
    common = sys.modules["common"]

    def case(opts: object) -> list[object]:
        if fail:
            raise common.BenchFailure("2 of 3 arrived (work lost)")
        return [common.Row("stand-in | case", "1.0 ms", "0.5 ms", "2.0x", "-", "info")]

    monkeypatch.setattr(bench, "CASES", {"standin": case})


def test_write_results_writes_what_the_table_shows(
    bench: ModuleType,
    table: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stand_in(bench, monkeypatch, fail=False)
    target = tmp_path / "out" / "bench.json"

    assert bench.main(["--quick", "--write-results", str(target)]) == 0

    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["format"] == table.FORMAT
    assert document["quick"] is True and document["repeats"] == 3
    assert document["failed"] == []
    assert list(document["seconds"]) == ["standin"]
    assert document["rows"] == [
        {
            "case": "stand-in | case",
            "routilux": "1.0 ms",
            "baseline": "0.5 ms",
            "ratio": "2.0x",
            "target": "-",
            "verdict": "info",
        }
    ]
    for key in ("date", "python", "cpu", "cpus", "platform", "git", "load_start"):
        assert document[key] not in (None, ""), key
    printed = capsys.readouterr().out
    assert "| stand-in | case |" in printed  # the markdown table is still printed
    assert f"results written to {target}" in printed

    lines = table.render(document, "out/bench.json")
    assert "   * - stand-in / case" in lines  # a bar would split the cell
    assert "     - 2.0x" in lines
    assert any("``--quick``, each figure the median of up to 3" in n for n in lines)
    assert any(document["cpu"] in line for line in lines)


def test_a_failed_case_is_written_and_shown(
    bench: ModuleType,
    table: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    stand_in(bench, monkeypatch, fail=True)
    target = tmp_path / "bench.json"

    assert bench.main(["--quick", "--write-results", str(target)]) == 1

    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["failed"] == ["standin"]
    assert document["rows"][0]["verdict"] == "FAILED"
    assert "* FAILED cases: standin" in table.render(document)


def test_render_refuses_a_file_it_cannot_show(table: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"old\.json: format 0, expected 1"):
        table.render({"format": 0}, "old.json")
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    del shipped["rows"][0]["ratio"]
    with pytest.raises(ValueError, match=r"bench\.json: rows\[0\] has no ratio"):
        table.render(shipped, "bench.json")


def test_the_shipped_results_render_and_lost_no_work(table: ModuleType) -> None:
    document = json.loads(SHIPPED.read_text(encoding="utf-8"))
    lines = table.render(document, "docs/_static/bench.json")
    assert len(document["rows"]) >= 9  # one row per case at least
    assert document["failed"] == []
    assert (
        sum(line.startswith("   * - ") for line in lines) == len(document["rows"]) + 1
    )
    page = (ROOT / "docs" / "performance.rst").read_text(encoding="utf-8")
    assert ".. bench-results:: _static/bench.json" in page
