"""Issue 12: without Ray installed, choosing the "ray" strategy names the extra.

Runs everywhere: Ray's absence is simulated (``sys.modules["ray"] = None`` makes
``import ray`` fail as it does when the package is missing).
"""

from __future__ import annotations

import sys

import pytest

from routilux import ConfigurationError, ExtraNotInstalledError, Flow, RoutiluxError
from routilux.strategies import RayStrategy, create_strategy, registered_strategies
from tests.routines import Source


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)


def test_issue_12_ray_is_registered_without_importing_ray() -> None:
    assert "ray" in registered_strategies()


@pytest.mark.usefixtures("no_ray")
def test_issue_12_making_the_strategy_names_the_extra() -> None:
    with pytest.raises(ExtraNotInstalledError, match=r"pip install 'routilux\[ray\]'"):
        RayStrategy()
    with pytest.raises(ExtraNotInstalledError, match=r"routilux\[ray\]"):
        create_strategy("ray", 2, "missing")
    assert issubclass(ExtraNotInstalledError, ConfigurationError)
    assert issubclass(ExtraNotInstalledError, RoutiluxError)


@pytest.mark.usefixtures("no_ray")
def test_issue_12_a_flow_refuses_ray_and_keeps_its_strategy() -> None:
    with pytest.raises(ExtraNotInstalledError, match=r"routilux\[ray\]"):
        Flow(flow_id="no-ray", execution_strategy="ray")
    with Flow(flow_id="no-ray", execution_strategy="concurrent") as flow:
        flow.add_routine(Source(), "src")
        with pytest.raises(ExtraNotInstalledError, match=r"routilux\[ray\]"):
            flow.set_execution_strategy("ray")
        assert flow.execution_strategy == "concurrent"
        job = flow.execute("src")
        assert job.wait(10.0) and job.status.value == "completed"


def test_issue_12_bad_arguments_are_refused_before_ray_is_touched() -> None:
    with pytest.raises(ConfigurationError, match="placement"):
        RayStrategy(placement="everywhere")
    with pytest.raises(ConfigurationError, match="max_restarts"):
        RayStrategy(max_restarts=1.5)  # type: ignore[arg-type]
