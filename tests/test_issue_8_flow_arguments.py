"""Issue 8: a Flow refused for a bad setting leaves nothing behind."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from routilux import CheckpointError, Flow, RoutiluxError, UnknownStrategyError

if TYPE_CHECKING:
    from pathlib import Path


def test_unknown_strategy_with_a_store_path_makes_no_file(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    with pytest.raises(UnknownStrategyError, match="bogus"):
        Flow(checkpoint_store=path, execution_strategy="bogus")
    assert not path.exists()


def test_bad_workers_with_a_store_path_makes_no_file(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    with pytest.raises(RoutiluxError, match="max_workers"):
        Flow(checkpoint_store=path, execution_strategy="concurrent", max_workers=0)
    assert not path.exists()


def test_a_store_that_cannot_open_leaves_no_workers(tmp_path: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    bad = tmp_path / "not-a-dir" / "x"
    (tmp_path / "not-a-dir").write_text("a file, not a directory")
    with pytest.raises((RoutiluxError, OSError)):
        Flow(checkpoint_store=bad, execution_strategy="concurrent", max_workers=3)
    for thread in threading.enumerate():
        if thread.ident not in before and thread.name.startswith("routilux"):
            thread.join(5)
            assert not thread.is_alive(), thread.name


def test_a_good_store_path_still_opens_and_is_closed_by_shutdown(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.sqlite"
    flow = Flow(checkpoint_store=path, execution_strategy="concurrent")
    assert flow.checkpoint_store is not None
    assert path.exists()
    flow.shutdown()
    with pytest.raises(CheckpointError):
        flow.checkpoint_store.list_jobs()
