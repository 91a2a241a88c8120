"""Issue 9, part 2: session lanes and session state.

Activations of one routine with the same lane (a job's ``session``, or the value
of a connection's ``lane_key`` in the payload) run one at a time, in arrival
order, across jobs; different lanes run in parallel; ``max_concurrency`` still
holds. ``routine.session_state`` is kept per session and dropped after the
session TTL of idle time.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
from collections import defaultdict
from typing import Any

import pytest

from routilux import (
    ConfigurationError,
    Flow,
    JobState,
    JobStatus,
    ReentrantCallError,
    Routine,
    SessionError,
)

pytestmark = pytest.mark.timeout(120)

WAIT = 30.0
KEYS = [f"u{n}" for n in range(4)]
PER_KEY = 250


class FakeClock:
    """Monotonic seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source(Routine):
    """Emits ``count`` items round-robin over ``keys``: ``user_id`` and ``seq``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["user_id", "seq"])

    def fire(self, keys: list[str], count: int) -> None:
        for seq in range(count):
            self.emit("output", user_id=keys[seq % len(keys)], seq=seq)


class Watcher(Routine):
    """Counts callers per lane; the first calls of two lanes meet at a barrier.

    ``seen[lane]`` lists the ``seq`` values in the order the handler saw them;
    ``most[lane]`` is the most calls of that lane that ever ran at once; ``peak``
    the most calls of the routine at once.
    """

    def __init__(self, meet: tuple[str, ...] = ("u0", "u1")) -> None:
        super().__init__()
        self.lock = threading.Lock()
        # Python 3.13 refuses a barrier of no parties: no meeting, no barrier
        self.barrier = threading.Barrier(len(meet)) if meet else None
        self.meet = set(meet)
        self.running: dict[Any, int] = defaultdict(int)
        self.most: dict[Any, int] = defaultdict(int)
        self.seen: dict[Any, list[int]] = defaultdict(list)
        self.total = 0
        self.peak = 0
        self.define_slot("input", handler=self.take)

    def enter(self, lane: Any, seq: int) -> bool:
        with self.lock:
            self.running[lane] += 1
            self.most[lane] = max(self.most[lane], self.running[lane])
            self.total += 1
            self.peak = max(self.peak, self.total)
            self.seen[lane].append(seq)
            first = lane in self.meet
            self.meet.discard(lane)
        return first

    def leave(self, lane: Any) -> None:
        with self.lock:
            self.running[lane] -= 1
            self.total -= 1

    def take(self, seq: int, user_id: str | None = None) -> None:
        lane = self.get_session()
        if self.enter(lane, seq) and self.barrier is not None:
            # Returns only if another lane's first call runs at the same time.
            self.barrier.wait(timeout=WAIT)
        self.leave(lane)


def lane_flow(
    strategy: str, workers: int = 8, lane_key: str | None = "user_id"
) -> tuple[Flow, Watcher]:
    flow = Flow(execution_strategy=strategy, max_workers=workers)
    watcher = Watcher()
    flow.add_routine(Source(), "source")
    flow.add_routine(watcher, "watcher")
    flow.connect("source", "output", "watcher", "input", lane_key=lane_key)
    return flow, watcher


def assert_lanes_held(watcher: Watcher, expected: dict[Any, list[int]]) -> None:
    assert dict(watcher.seen) == expected
    assert all(most == 1 for most in watcher.most.values()), dict(watcher.most)
    assert watcher.barrier.n_waiting == 0
    assert not watcher.barrier.broken, "two lanes never ran at the same time"


# -- the acceptance tests --------------------------------------------------------


def test_issue_9_lane_key_orders_each_key_and_runs_keys_in_parallel() -> None:
    flow, watcher = lane_flow("concurrent")
    with flow:
        job = flow.execute("source", {"keys": KEYS, "count": len(KEYS) * PER_KEY})
        assert job.wait(WAIT)
    # Once the pool is idle (a task leaves its lane just after its job ends).
    stats = flow.get_stats()
    assert job.status is JobStatus.COMPLETED, job.errors
    expected = {key: list(range(n, 1000, 4)) for n, key in enumerate(KEYS)}
    assert_lanes_held(watcher, expected)
    assert watcher.peak >= 2
    assert stats["sessions"]["lanes"] == 0
    assert stats["sessions"]["lane_queued"] == 0


def test_issue_9_sessions_of_jobs_are_lanes_across_jobs() -> None:
    # Four jobs, one per session, each emitting 250 items into a connection with
    # no lane key: every activation carries its job's session.
    flow, watcher = lane_flow("concurrent", lane_key=None)
    with flow:
        jobs = [
            flow.execute("source", {"keys": [key], "count": PER_KEY}, session=key)
            for key in KEYS
        ]
        assert flow.wait_for_completion(WAIT)
    assert all(job.status is JobStatus.COMPLETED for job in jobs), [
        job.errors for job in jobs
    ]
    assert_lanes_held(watcher, {key: list(range(PER_KEY)) for key in KEYS})


def test_issue_9_one_session_spread_over_jobs_runs_one_at_a_time() -> None:
    # Eight jobs, two per session, started together: per session never two
    # calls at once, and each job's own items stay in order.
    flow, watcher = lane_flow("concurrent", lane_key=None)
    with flow:
        jobs = [
            flow.execute("source", {"keys": [key], "count": 100}, session=key)
            for key in KEYS * 2
        ]
        assert flow.wait_for_completion(WAIT)
    assert all(job.status is JobStatus.COMPLETED for job in jobs)
    for key in KEYS:
        assert sorted(watcher.seen[key]) == sorted(list(range(100)) * 2)
    assert all(most == 1 for most in watcher.most.values())
    assert not watcher.barrier.broken


def test_issue_9_sequential_jobs_in_threads_keep_lanes_across_threads() -> None:
    # The sequential strategy runs each job in its caller's thread: eight threads,
    # two per session. Per session never two calls at once; sessions overlap.
    flow, watcher = lane_flow("sequential", lane_key=None)
    jobs: list[JobState] = []
    guard = threading.Lock()

    def run(key: str) -> None:
        job = flow.execute("source", {"keys": [key], "count": 100}, session=key)
        with guard:
            jobs.append(job)

    with flow:
        threads = [threading.Thread(target=run, args=(key,)) for key in KEYS * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
    assert len(jobs) == 8
    assert all(job.status is JobStatus.COMPLETED for job in jobs), [
        job.errors for job in jobs
    ]
    for key in KEYS:
        assert sorted(watcher.seen[key]) == sorted(list(range(100)) * 2)
    assert all(most == 1 for most in watcher.most.values()), dict(watcher.most)
    assert not watcher.barrier.broken


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_issue_9_max_concurrency_still_holds_with_lanes(strategy: str) -> None:
    flow, watcher = lane_flow(strategy)
    watcher.meet = set()  # at most 2 at once: no barrier here
    watcher.set_max_concurrency(2)
    with flow:
        job = flow.execute("source", {"keys": KEYS, "count": 400})
        assert job.wait(WAIT)
    assert job.status is JobStatus.COMPLETED, job.errors
    assert watcher.peak <= 2
    assert all(most == 1 for most in watcher.most.values())
    expected = {key: list(range(n, 400, 4)) for n, key in enumerate(KEYS)}
    assert dict(watcher.seen) == expected


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_issue_9_async_handlers_hold_their_lane_while_they_await(
    strategy: str,
) -> None:
    class AsyncWatcher(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.running: dict[str, int] = defaultdict(int)
            self.most: dict[str, int] = defaultdict(int)
            self.seen: dict[str, list[int]] = defaultdict(list)
            self.define_slot("input", handler=self.take)

        async def take(self, user_id: str, seq: int) -> None:
            self.running[user_id] += 1  # all on the one event loop thread
            self.most[user_id] = max(self.most[user_id], self.running[user_id])
            self.seen[user_id].append(seq)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            self.running[user_id] -= 1

    flow = Flow(execution_strategy=strategy, max_workers=4)
    watcher = AsyncWatcher()
    flow.add_routine(Source(), "source")
    flow.add_routine(watcher, "watcher")
    flow.connect("source", "output", "watcher", "input", lane_key="user_id")
    with flow:
        job = flow.execute("source", {"keys": KEYS[:2], "count": 200})
        assert job.wait(WAIT)
    assert job.status is JobStatus.COMPLETED, job.errors
    assert dict(watcher.seen) == {
        "u0": list(range(0, 200, 2)),
        "u1": list(range(1, 200, 2)),
    }
    assert dict(watcher.most) == {"u0": 1, "u1": 1}


def test_issue_9_a_nested_sequential_job_through_its_own_lane_is_refused() -> None:
    class Nester(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.inner: list[JobState] = []
            self.define_slot("trigger", handler=self.go)

        def go(self, depth: int = 0) -> None:
            if depth == 0:
                context = self.get_execution_context()
                assert context is not None
                self.inner.append(
                    context.flow.execute("nester", {"depth": 1}, session="s")
                )

    flow = Flow()
    nester = Nester()
    flow.add_routine(nester, "nester")
    job = flow.execute("nester", {"depth": 0}, session="s")
    assert job.status is JobStatus.COMPLETED
    (inner,) = nester.inner
    assert inner.status is JobStatus.FAILED
    assert inner.errors[0].error_type == ReentrantCallError.__name__
    assert "session lane ('nester', 's')" in inner.errors[0].message


def test_issue_9_the_manual_strategy_keeps_lanes_in_every_interleaving() -> None:
    from routilux.testing import CHECKS, ManualStrategy, explore, yield_point

    class Yielding(Watcher):
        def take(self, seq: int, user_id: str | None = None) -> None:
            lane = self.get_session()
            self.enter(lane, seq)
            yield_point()  # another activation may run here, but not of this lane
            self.leave(lane)

    def scenario(seed: int) -> None:
        flow = Flow(execution_strategy=ManualStrategy(seed))
        watcher = Yielding(meet=())
        flow.add_routine(Source(), "source")
        flow.add_routine(watcher, "watcher")
        flow.connect("source", "output", "watcher", "input", lane_key="user_id")
        job = flow.execute("source", {"keys": KEYS[:3], "count": 12})
        assert job.status is JobStatus.COMPLETED, job.errors
        assert dict(watcher.seen) == {
            key: list(range(n, 12, 3)) for n, key in enumerate(KEYS[:3])
        }
        assert set(watcher.most.values()) == {1}

    assert explore(scenario, range(20)) is None
    CHECKS["serial_keys"](lambda: ManualStrategy(seed=3))


# -- session state ---------------------------------------------------------------


class Notebook(Routine):
    """Keeps a note per session: how many calls and what they wrote."""

    def __init__(self, clock: FakeClock | None = None, advance: float = 0.0) -> None:
        super().__init__()
        self.clock = clock
        self.advance = advance
        self.define_slot("trigger", handler=self.write)

    def write(self, text: str) -> dict[str, Any]:
        state = self.session_state
        state["calls"] = state.get("calls", 0) + 1
        state.setdefault("notes", []).append(text)
        if self.clock is not None:
            self.clock.now += self.advance  # a handler that runs this long
        return {"calls": state["calls"], "notes": list(state["notes"])}


def note(flow: Flow, text: str, session: str | int) -> dict[str, Any]:
    job = flow.execute("book", {"text": text}, session=session)
    assert job.status is JobStatus.COMPLETED, job.errors
    result: dict[str, Any] = job.result()["book"]
    return result


def test_issue_9_session_state_persists_per_session_and_expires_after_ttl() -> None:
    clock = FakeClock()
    flow = Flow(session_ttl=10, session_clock=clock)
    flow.add_routine(Notebook(), "book")
    with flow:
        assert note(flow, "a1", "alice") == {"calls": 1, "notes": ["a1"]}
        assert note(flow, "b1", "bob") == {"calls": 1, "notes": ["b1"]}
        clock.now += 9.5  # idle less than the TTL: kept
        assert note(flow, "a2", "alice") == {"calls": 2, "notes": ["a1", "a2"]}
        stats = flow.get_stats()["sessions"]
        assert stats == {
            "states": 2,
            "sessions": 2,
            "in_use": 0,
            "ttl": 10.0,
            "lanes": 0,
            "lane_queued": 0,
        }
        clock.now += 10  # bob idled 19.5 s, alice 10 s: both gone
        assert flow.get_stats()["sessions"]["states"] == 0
        assert note(flow, "a3", "alice") == {"calls": 1, "notes": ["a3"]}
        assert note(flow, "b2", "bob") == {"calls": 1, "notes": ["b2"]}


def test_issue_9_session_state_is_in_use_while_its_handler_runs() -> None:
    # The TTL counts idle time: a handler that runs longer than the TTL keeps its
    # state, which idles only from the moment the handler ends.
    clock = FakeClock()
    flow = Flow(session_ttl=10, session_clock=clock)
    flow.add_routine(Notebook(clock, advance=100.0), "book")
    with flow:
        assert note(flow, "1", 7)["calls"] == 1  # the clock moved 100 s meanwhile
        assert note(flow, "2", 7)["calls"] == 2
        clock.now += 10
        assert note(flow, "3", 7)["calls"] == 1


def test_issue_9_a_routine_ttl_wins_over_the_flows() -> None:
    clock = FakeClock()
    flow = Flow(session_ttl=None, session_clock=clock)  # kept as long as the flow
    book, keep = Notebook(), Notebook()
    book.set_session_ttl(0)  # dropped as soon as it idles
    assert book.get_session_ttl() == 0.0
    assert keep.get_session_ttl() is None
    flow.add_routine(book, "book")
    flow.add_routine(keep, "keep")
    with flow:
        assert note(flow, "1", "s")["calls"] == 1
        assert note(flow, "2", "s")["calls"] == 1
        for text in ("1", "2"):
            job = flow.execute("keep", {"text": text}, session="s")
        clock.now += 1e9
        job = flow.execute("keep", {"text": "3"}, session="s")
        assert job.result()["keep"]["calls"] == 3


def test_issue_9_lane_key_and_session_share_the_state_of_a_lane() -> None:
    class Tally(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.count)

        def count(self, user_id: str, seq: int) -> None:
            self.session_state[seq] = self.get_session()

    flow = Flow(execution_strategy="concurrent", max_workers=4)
    tally = Tally()
    flow.add_routine(Source(), "source")
    flow.add_routine(tally, "tally")
    flow.add_routine(Notebook(), "book")
    flow.connect("source", "output", "tally", "input", lane_key="user_id")
    with flow:
        job = flow.execute("source", {"keys": ["x", "y"], "count": 6}, session="x")
        assert job.wait(WAIT)
        assert job.status is JobStatus.COMPLETED, job.errors
        assert flow.get_stats()["sessions"]["states"] == 2
        job = flow.execute("book", {"text": "t"}, session="x")
        assert job.wait(WAIT)
        stats = flow.get_stats()["sessions"]
    assert stats["states"] == 3  # (tally, x), (tally, y), (book, x)
    assert stats["sessions"] == 2


@pytest.mark.parametrize("cancel_first", [False, True])
def test_issue_9_a_returned_awaitable_keeps_the_session_until_it_ends(
    cancel_first: bool,
) -> None:
    # A sync handler that returns an awaitable holds its session state until the
    # awaitable is done, and lets go of it even when it never begins (the job
    # was cancelled meanwhile).
    seen: list[int] = []

    class Later(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.go)

        def go(self) -> Any:
            state = self.session_state
            state["n"] = state.get("n", 0) + 1
            if cancel_first:
                context = self.get_execution_context()
                assert context is not None
                context.flow.cancel(context.job_state)

            # An awaitable, not a coroutine: one that never begins is not
            # reported as never awaited.
            class Finish:
                def __await__(self) -> Any:
                    seen.append(state["n"])
                    return
                    yield

            return Finish()

    for strategy in ("sequential", "concurrent"):
        flow = Flow(execution_strategy=strategy, max_workers=2)
        flow.add_routine(Later(), "later")
        with flow:
            for _ in range(2):
                job = flow.execute("later", session="s")
                assert job.wait(WAIT)
        # Read once the strategy counts the tasks done: a cancelled awaitable's
        # session is let go just after its job ends, before its task is done.
        stats = flow.get_stats()["sessions"]
        assert stats["states"] == 1
        assert stats["in_use"] == 0
        expected = JobStatus.CANCELLED if cancel_first else JobStatus.COMPLETED
        assert job.status is expected, job.errors
    assert seen == ([] if cancel_first else [1, 2, 1, 2])


def test_issue_9_session_state_outside_a_session_raises() -> None:
    book = Notebook()
    with pytest.raises(SessionError, match="only there while"):
        _ = book.session_state
    assert book.get_session() is None
    flow = Flow()
    flow.add_routine(book, "book")
    job = flow.execute("book", {"text": "no session"})
    assert job.status is JobStatus.FAILED
    assert job.errors[0].error_type == "SessionError"
    assert "execute(..., session=...)" in job.errors[0].message


def test_issue_9_a_subclass_may_own_an_attribute_named_session_state() -> None:
    class Old(Routine):  # written for 0.9, where the name was free
        def __init__(self) -> None:
            super().__init__()
            self.session_state = {"mine": True}

    assert Old().session_state == {"mine": True}


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize("session", [[1], True, 1.5, {"a": 1}])
def test_issue_9_execute_refuses_a_session_that_is_not_str_or_int(
    session: Any,
) -> None:
    flow = Flow()
    flow.add_routine(Notebook(), "book")
    with pytest.raises(ConfigurationError, match="execute\\(\\): session must be"):
        flow.execute("book", {"text": "x"}, session=session)
    assert flow.get_stats()["jobs"] == {}


@pytest.mark.parametrize(
    ("payload_key", "value", "shown"),
    [
        ("user_id", [1], "payload\\['user_id'\\] must be a str or an int, got list"),
        ("user_id", None, "got NoneType None"),
        ("user_id", True, "got bool True"),
        ("other", "u1", "the payload has no 'user_id'"),
    ],
)
def test_issue_9_a_bad_lane_value_fails_the_emit_naming_it(
    payload_key: str, value: Any, shown: str
) -> None:
    class Emitter(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.go)
            self.define_event("out")

        def go(self) -> None:
            self.emit("out", **{payload_key: value})

    class Keeper(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0
            self.define_slot("input", handler=self.keep, merge_strategy="append")

        def keep(self, **_: Any) -> None:
            self.calls += 1

    flow = Flow()
    keeper = Keeper()
    flow.add_routine(Emitter(), "emitter")
    flow.add_routine(keeper, "plain")
    flow.add_routine(Keeper(), "laned")
    flow.connect("emitter", "out", "plain", "input")
    flow.connect("emitter", "out", "laned", "input", lane_key="user_id")
    job = flow.execute("emitter")
    assert job.status is JobStatus.FAILED
    (error,) = job.errors
    assert error.error_type == "ConfigurationError"
    assert "lane_key 'user_id' of the connection into laned.input" in error.message
    assert re.search(shown, error.message), error.message
    assert keeper.calls == 0  # checked before anything was queued


def test_issue_9_connect_refuses_a_bad_lane_key_and_changes_nothing() -> None:
    flow, _ = lane_flow("sequential", lane_key=None)
    flow.add_routine(Watcher(), "other")
    before = [c.serialize() for c in flow.connections]
    version = flow._wiring.version
    for bad in (3, "", ["user_id"], b"user_id"):
        with pytest.raises(ConfigurationError, match=r"lane_key into other\.input"):
            flow.connect("source", "output", "other", "input", lane_key=bad)
    assert [c.serialize() for c in flow.connections] == before
    assert flow._wiring.version == version


def test_issue_9_connect_refuses_a_lane_key_into_a_gathering_slot() -> None:
    class Join(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.join, policy="all_sources")

        def join(self, sources: dict[str, Any]) -> None:
            return None

    flow = Flow()
    flow.add_routine(Source(), "source")
    flow.add_routine(Join(), "join")
    with pytest.raises(ConfigurationError, match="policy is 'all_sources'"):
        flow.connect("source", "output", "join", "input", lane_key="user_id")
    assert flow.connections == []


@pytest.mark.parametrize("ttl", [-1, -0.5, True, "10", float("nan"), float("inf")])
def test_issue_9_session_ttl_must_be_seconds_at_least_zero(ttl: Any) -> None:
    with pytest.raises(ConfigurationError, match="session_ttl must be"):
        Flow(session_ttl=ttl)
    routine = Notebook()
    with pytest.raises(ConfigurationError, match="session_ttl must be"):
        routine.set_session_ttl(ttl)
    assert routine.get_session_ttl() is None


def test_issue_9_session_clock_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="session_clock must be a callable"):
        Flow(session_clock=3)  # type: ignore[arg-type]


def test_issue_9_new_keywords_keep_0_9_signatures() -> None:
    for method, name in (
        (Flow.execute, "session"),
        (Flow.execute_async, "session"),
        (Flow.connect, "lane_key"),
    ):
        parameter = inspect.signature(method).parameters[name]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.default is None
    flow, watcher = lane_flow("sequential", lane_key=None)
    watcher.meet = set()
    job = flow.execute("source", {"keys": ["k"], "count": 3}, "sequential")
    assert job.status is JobStatus.COMPLETED
    assert watcher.seen == {None: [0, 1, 2]}


# -- lanes beyond one run --------------------------------------------------------


def test_issue_9_a_paused_job_keeps_its_lanes() -> None:
    release = threading.Event()

    class Slow(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[Any, int]] = []
            self.define_slot("input", handler=self.take)

        def take(self, user_id: str, seq: int) -> None:
            started.set()
            release.wait(WAIT)
            self.seen.append((self.get_session(), seq))

    started = threading.Event()
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    slow = Slow()
    flow.add_routine(Source(), "source")
    flow.add_routine(slow, "slow")
    flow.connect("source", "output", "slow", "input", lane_key="user_id")
    with flow:
        job = flow.execute("source", {"keys": ["a", "b"], "count": 6})
        assert started.wait(WAIT)  # items of both lanes are on their way
        flow.pause(job, "hold on")
        release.set()
        assert job.wait(WAIT)
        assert job.status is JobStatus.PAUSED
        lanes = [task.get("lane") for task in job.pending_tasks]
        assert lanes and set(lanes) <= {"a", "b"}
        document = job.serialize()
        flow.resume(job)
        assert job.wait(WAIT)
    assert job.status is JobStatus.COMPLETED, job.errors
    assert sorted(seq for _, seq in slow.seen) == list(range(6))
    for lane in ("a", "b"):
        mine = [seq for who, seq in slow.seen if who == lane]
        assert mine == sorted(mine)
    # A paused job's document keeps the lanes too: resumed from it (as another
    # host would), its held activations run in their lanes.
    assert all("lane" in task for task in document["pending_tasks"])
    other = Slow()
    again = Flow(flow.flow_id, execution_strategy="concurrent", max_workers=2)
    again.add_routine(Source(), "source")
    again.add_routine(other, "slow")
    again.connect("source", "output", "slow", "input", lane_key="user_id")
    with again:
        resumed = again.resume(JobState.deserialize(document))
        assert resumed.wait(WAIT)
    assert resumed.status is JobStatus.COMPLETED, resumed.errors
    held = [
        (task["lane"], task["payload"]["seq"]) for task in document["pending_tasks"]
    ]
    assert sorted(other.seen) == sorted(held)
    for lane in ("a", "b"):  # each lane in the order it was held
        assert [x for x in other.seen if x[0] == lane] == [
            x for x in held if x[0] == lane
        ]


# -- the flow document -----------------------------------------------------------


def test_issue_9_flow_documents_keep_lane_keys() -> None:
    flow, _ = lane_flow("concurrent", workers=2)
    flow.shutdown()  # only its document is wanted
    flow.add_routine(Watcher(), "plain")
    flow.connect("source", "output", "plain", "input")
    document = flow.serialize()
    links = document["connections"]
    assert links[0]["lane_key"] == "user_id"
    assert "lane_key" not in links[1]  # documents without lanes are unchanged

    again = Flow.from_json(flow.to_json())
    assert [c.lane_key for c in again.connections] == ["user_id", None]
    assert again.to_json() == flow.to_json()
    with again:
        job = again.execute("source", {"keys": KEYS, "count": 8})
        assert job.wait(WAIT)
    assert job.status is JobStatus.COMPLETED, job.errors
    watcher = again.routines["watcher"]
    assert isinstance(watcher, Watcher)
    assert dict(watcher.most) == dict.fromkeys(KEYS, 1)


@pytest.mark.parametrize("bad", ["", 3, None, ["user_id"]])
def test_issue_9_a_bad_lane_key_in_a_document_names_its_path(bad: Any) -> None:
    from routilux import SerializationError

    flow, _ = lane_flow("sequential")
    document = flow.serialize()
    document["connections"][0]["lane_key"] = bad
    with pytest.raises(SerializationError, match=r"connections\[0\]\.lane_key"):
        Flow.deserialize(document)
