"""Issue 8: a job start checks the flow's topology without a pass over its routines.

Every job records the topology it started on. Checking that the cached one is
still current used to call every routine's ``get_spec`` per job (a flow of 500
routines paid 500 calls to start a one-routine job). Now only a dropped spec
somewhere (a setting, slot or event changed) makes it look at the routines.
"""

from __future__ import annotations

import threading

import pytest

from routilux import Flow, Routine
from routilux.spec import RoutineSpec  # noqa: TC001 - a return annotation


class _Counted(Routine):
    calls = 0

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)

    def go(self) -> None:
        pass

    def get_spec(self) -> RoutineSpec:
        type(self).calls += 1
        return super().get_spec()


class _Idle(_Counted):
    calls = 0


def _events_of(job: object, routine_id: str) -> tuple[str, ...]:
    topology = job.topology  # type: ignore[attr-defined]
    [shape] = [r for r in topology.routines if r.id == routine_id]
    return tuple(shape.events)


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_issue_8_a_job_start_reads_no_idle_routine(strategy: str) -> None:
    with Flow(execution_strategy=strategy, max_workers=2) as flow:
        flow.add_routine(_Counted(), "entry")
        idle = [_Idle() for _ in range(50)]
        for number, routine in enumerate(idle):
            flow.add_routine(routine, f"idle{number}")
        assert flow.execute("entry").wait(10)
        _Idle.calls = 0
        for _ in range(20):
            assert flow.execute("entry").wait(10)
        assert _Idle.calls == 0


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_issue_8_a_changed_routine_still_changes_the_topology(strategy: str) -> None:
    with Flow(execution_strategy=strategy, max_workers=2) as flow:
        flow.add_routine(_Counted(), "entry")
        idle = _Idle()
        flow.add_routine(idle, "idle")
        before = flow.execute("entry")
        assert before.wait(10)
        idle.define_event("extra", ["value"])
        after = flow.execute("entry")
        assert after.wait(10)
        assert _events_of(before, "idle") == ()
        assert _events_of(after, "idle") == ("extra",)
        idle.set_timeout(5.0)  # a setting: a new spec, the same shape
        again = flow.execute("entry")
        assert again.wait(10)
        assert again.topology == after.topology


def test_issue_8_changes_racing_job_starts_are_all_seen() -> None:
    # One thread declares events while another starts jobs: the topology of a
    # job started after the last declaration has them all.
    with Flow(execution_strategy="concurrent", max_workers=2) as flow:
        flow.add_routine(_Counted(), "entry")
        idle = _Idle()
        flow.add_routine(idle, "idle")
        names = [f"e{number}" for number in range(200)]
        done = threading.Event()

        def declare() -> None:
            for name in names:
                idle.define_event(name)
            done.set()

        thread = threading.Thread(target=declare)
        thread.start()
        while not done.is_set():
            flow.execute("entry")
        thread.join(10)
        last = flow.execute("entry")
        assert last.wait(10)
        assert sorted(_events_of(last, "idle")) == sorted(names)
        assert flow.wait_for_completion(10)
