"""State in routilux: what a job records, and how jobs and flows are saved and loaded.

1. The JobState of a finished job: status, routine states, history, errors.
2. Saving a JobState to a file and loading it back (``job.save`` / ``JobState.load``).
3. Saving a flow's structure and loading it back (``flow.save`` / ``Flow.load``).
4. Pausing a running concurrent job and resuming it in the same process.
5. The cross-host recipe: pause a job, write the flow and the job to two files, and
   let *another process* rebuild both from the files and resume the job there.

Everything it writes goes to a temporary directory that is removed at the end, and
every flow is shut down. Run it with ``python examples/state_management_example.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, Routine

# --------------------------------------------------------------------------
# Routines
# --------------------------------------------------------------------------


class Orders(Routine):
    """Emits ``count`` orders; order 0 has no amount (the pricer rejects it)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("order", ["order_id", "amount"])

    def start(self, count: int = 3) -> None:
        for order_id in range(count):
            self.emit("order", order_id=order_id, amount=10 * order_id)


class Pricer(Routine):
    """Adds tax to each order. Raises on an empty order; CONTINUE records it."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(tax_rate=0.2)
        self.define_slot("input", handler=self.price)
        self.define_event("priced", ["order_id", "total"])
        self.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))

    def price(self, order_id: int, amount: int) -> None:
        if amount == 0:
            raise ValueError(f"order {order_id} has no amount")
        total = round(amount * (1 + self.get_config("tax_rate")), 2)
        self.emit("priced", order_id=order_id, total=total)


class Ledger(Routine):
    """Books every priced order (thread-safe, so it also serves concurrent jobs)."""

    def __init__(self) -> None:
        super().__init__()
        self.booked: list[tuple[int, float]] = []
        self.guard = threading.Lock()
        self.define_slot("input", handler=self.book)

    def book(self, order_id: int, total: float) -> None:
        with self.guard:
            self.booked.append((order_id, total))


class SlowPricer(Pricer):
    """A Pricer that waits for a gate first, so a job can be paused mid-way.

    The gate is a class attribute: a flow document carries classes and configs,
    never such objects, so each process opens its own gate.
    """

    gate = threading.Event()
    busy = threading.Semaphore(0)  # released once per handler that starts

    def price(self, order_id: int, amount: int) -> None:
        self.busy.release()
        self.gate.wait(5)
        super().price(order_id, amount)


def shop_flow(flow_id: str, pricer: Pricer, **settings: Any) -> Flow:
    """orders -> pricer -> ledger."""
    flow = Flow(flow_id=flow_id, **settings)
    flow.add_routine(Orders(), "orders")
    flow.add_routine(pricer, "pricer")
    flow.add_routine(Ledger(), "ledger")
    flow.connect("orders", "order", "pricer", "input")
    flow.connect("pricer", "priced", "ledger", "input")
    return flow


def ledger_of(flow: Flow) -> Ledger:
    ledger = flow.routines["ledger"]
    assert isinstance(ledger, Ledger)
    return ledger


def header(title: str) -> None:
    print()
    print(f"=== {title} ===")


# --------------------------------------------------------------------------
# 1 and 2. A JobState, saved and loaded
# --------------------------------------------------------------------------


def describe(job: JobState) -> None:
    print(f"job {job.job_id[:8]}... of flow {job.flow_id!r}: status {job.status}")
    for routine_id, state in job.routine_states.items():
        print(f"  routine {routine_id:<6} {state['status']}")
    print(f"  history ({len(job.execution_history)} records):")
    for record in job.execution_history:
        print(f"    {record.routine_id:<6} {record.event_name:<15} {record.data}")
    for error in job.errors:
        print(
            f"  error: {error['routine_id']}.{error['slot']} raised "
            f"{error['error_type']}: {error['message']} (attempt {error['attempt']})"
        )


def job_state_after_a_run(workdir: Path) -> None:
    header("1. The JobState of a finished job")
    with shop_flow("shop", Pricer()) as flow:
        job = flow.execute("orders", entry_params={"count": 3})
        describe(job)
        print(f"ledger booked: {ledger_of(flow).booked}")

    header("2. Save a JobState and load it back")
    path = workdir / "jobs" / f"{job.job_id}.json"
    job.save(path)  # creates the parent directories
    print(f"saved {path.name[:8]}....json: {path.stat().st_size} bytes of JSON")
    loaded = JobState.load(path)
    print(
        f"loaded: same job_id {loaded.job_id == job.job_id}, status {loaded.status}, "
        f"{len(loaded.execution_history)} history records, "
        f"{len(loaded.errors)} error(s)"
    )
    same = loaded.serialize() == job.serialize()
    print(f"loaded document equals the original: {same}")


# --------------------------------------------------------------------------
# 3. A flow, saved and loaded
# --------------------------------------------------------------------------


def flow_documents(workdir: Path) -> None:
    header("3. Save a flow's structure and load it back")
    pricer = Pricer()
    pricer.set_config(tax_rate=0.5)
    with shop_flow(
        "shop-v2", pricer, execution_strategy="concurrent", max_workers=3
    ) as flow:
        path = workdir / "flows" / "shop.json"
        flow.save(path)
        document = flow.serialize()
    print(
        f"document: schema_version {document['schema_version']}, "
        f"{len(document['routines'])} routines, "
        f"{len(document['connections'])} connections"
    )
    print(f"pricer is stored as class {document['routines']['pricer']['class']!r}")
    print(f"with config {document['routines']['pricer']['config']}")

    with Flow.load(path) as restored:
        print(
            f"restored flow {restored.flow_id!r}: strategy="
            f"{restored.execution_strategy}, max_workers={restored.max_workers}, "
            f"routines {sorted(restored.routines)}"
        )
        job = restored.execute("orders", entry_params={"count": 3})
        restored.wait_for_completion(timeout=10)
        booked = sorted(ledger_of(restored).booked)
    print(f"restored flow ran: status={job.status}, ledger booked {booked}")


# --------------------------------------------------------------------------
# 4. Pause and resume in the same process
# --------------------------------------------------------------------------

ORDERS = 8
WORKERS = 2


def paused_job(flow: Flow) -> JobState:
    """Start ORDERS orders, pause once both workers hold one, let them finish."""
    SlowPricer.gate.clear()
    job = flow.execute("orders", entry_params={"count": ORDERS})
    for _ in range(WORKERS):
        SlowPricer.busy.acquire(timeout=5)  # both workers are inside a handler
    flow.pause(job, reason="deploy", checkpoint={"note": "half way"})
    SlowPricer.gate.set()  # running handlers finish; nothing new starts
    job.wait(timeout=5)  # returns once the job is paused
    return job


def pause_and_resume() -> None:
    header("4. Pause and resume a concurrent job in the same process")
    flow = shop_flow(
        "shop-pause", SlowPricer(), execution_strategy="concurrent", max_workers=WORKERS
    )
    try:
        job = paused_job(flow)
        print(f"job status: {job.status}")
        print(
            f"booked {len(ledger_of(flow).booked)} order(s); "
            f"{len(job.pending_tasks)} activation(s) held in pending_tasks"
        )
        point = job.pause_points[-1]
        print(
            f"pause point: reason {point['reason']!r}, checkpoint {point['checkpoint']}"
        )
        same = flow.resume(job) is job
        flow.wait_for_completion(timeout=10)
        print(f"resumed the same job: {same}; job status: {job.status}")
        print(f"booked {len(ledger_of(flow).booked)} order(s) in all")
    finally:
        flow.shutdown()
    while SlowPricer.busy.acquire(blocking=False):  # forget the handlers' tokens
        pass


# --------------------------------------------------------------------------
# 5. The cross-host recipe
# --------------------------------------------------------------------------


def cross_host(workdir: Path) -> None:
    header("5. Cross-host: pause here, resume in another process")
    flow = shop_flow(
        "shop-xhost", SlowPricer(), execution_strategy="concurrent", max_workers=WORKERS
    )
    try:
        job = paused_job(flow)
        booked_here = len(ledger_of(flow).booked)
        # Two documents, written separately: the structure and the job.
        flow.save(workdir / "xhost" / "flow.json")
        job.save(workdir / "xhost" / "job.json")
    finally:
        flow.shutdown()
    print(
        f"host A: job {job.job_id[:8]}... {job.status}, booked {booked_here} "
        f"order(s), {len(job.pending_tasks)} pending; wrote flow.json and job.json"
    )
    sys.stdout.flush()
    # "Host B" is a fresh Python process that gets only the two files. It runs
    # this same script, so it knows the same routine classes (a flow document
    # names classes; it never carries code).
    other = subprocess.run(
        [sys.executable, __file__, "--other-host", str(workdir / "xhost")],
        check=False,
        timeout=60,
    )
    print(f"host B exited with code {other.returncode}")
    if other.returncode != 0:
        raise SystemExit("the other host could not resume the job")


def other_host(directory: Path) -> None:
    """Host B: rebuild the flow and the job from the files and finish the job."""
    flow = Flow.load(directory / "flow.json")
    job = JobState.load(directory / "job.json")
    print(
        f"host B: loaded flow {flow.flow_id!r} ({len(flow.routines)} routines) and "
        f"job {job.job_id[:8]}... ({job.status}, {len(job.pending_tasks)} pending)"
    )
    SlowPricer.gate.set()  # nothing holds the pricers back on this host
    with flow:
        resumed = flow.resume(job)
        flow.wait_for_completion(timeout=10)
    print(f"host B: resumed job {resumed.job_id[:8]}...: status {resumed.status}")
    print(f"host B: booked {len(ledger_of(flow).booked)} order(s) here", flush=True)
    sys.exit(0 if resumed.status == "completed" else 1)


def main() -> None:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="routilux-state-"))
    try:
        job_state_after_a_run(workdir)
        flow_documents(workdir)
        pause_and_resume()
        cross_host(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"Example finished in {time.monotonic() - started:.1f}s.")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--other-host":
        other_host(Path(sys.argv[2]))
    else:
        main()
