"""Issue 8: the strategy conformance suite runs over every registered strategy."""

from __future__ import annotations

from typing import Any

import pytest

from routilux.strategies import create_strategy, registered_strategies
from routilux.testing import CHECKS, check_strategy


# The Ray strategy runs the suite on its shared instance (test_issue_12_ray_*).
@pytest.mark.parametrize("name", sorted(set(registered_strategies()) - {"ray"}))
@pytest.mark.parametrize("check", sorted(CHECKS))
def test_issue_8_strategy_conformance(name: str, check: str) -> None:
    CHECKS[check](lambda: create_strategy(name, 4, f"conformance-{name}"))


def test_issue_8_check_strategy_names_the_failing_check() -> None:
    class Forgetful:
        """A strategy that loses every task."""

        name = "forgetful"
        max_workers = 1
        blocking = False

        def __init__(self) -> None:
            from routilux.strategies import StrategyState

            self.state = StrategyState.OPEN

        def open_lane(self) -> Forgetful:
            return self

        def start(self, tasks: list[object]) -> None:
            return None

        def submit(self, task: object) -> None:
            return None

        def wait_idle(self, timeout: float | None = None) -> bool:
            return True

        def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
            return None

        def stats(self) -> dict[str, object]:
            return {}

    with pytest.raises(AssertionError, match="conformance check 'fan_out_fan_in'"):
        check_strategy(Forgetful)  # type: ignore[arg-type]


def test_issue_8_tasks_carry_a_json_ready_activation_spec() -> None:
    import orjson

    from routilux import Flow, Routine
    from routilux.strategies import SequentialStrategy, Task

    seen: list[dict[str, object]] = []

    class SpyingLane:
        def __init__(self, lane: Any) -> None:
            self.lane = lane

        def submit(self, task: Task) -> None:
            seen.append(task.spec())
            self.lane.submit(task)

        def start(self, tasks: list[Task]) -> None:
            seen.extend(task.spec() for task in tasks)
            self.lane.start(tasks)

    class Spying(SequentialStrategy):
        def open_lane(self) -> Any:
            return SpyingLane(super().open_lane())

    class Entry(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=lambda **kw: None)

    flow = Flow(execution_strategy=Spying())
    flow.add_routine(Entry(), "entry")
    job = flow.execute("entry", {"n": 1})
    assert seen == [
        {
            "job_id": job.job_id,
            "routine_id": "entry",
            "slot": "trigger",
            "payload": {"n": 1},
            "attempt": 1,
        }
    ]
    assert orjson.loads(orjson.dumps(seen)) == seen
