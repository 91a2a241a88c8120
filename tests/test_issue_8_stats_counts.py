"""Issue 8: flow statistics count every ended job exactly once, from any thread.

Workers append a job's status without a lock, and the counts are folded in when
read or when the backlog of statuses grows long; nothing may be lost or counted
twice, whichever way the two interleave.
"""

from __future__ import annotations

import threading

from routilux import JobStatus
from routilux.runtime import stats as stats_module
from routilux.runtime.stats import FlowStats


def test_issue_8_job_counts_are_exact_across_threads_and_folds() -> None:
    threads, per_thread = 8, 3_000  # over _FOLD_AT in all: folds happen mid-way
    assert threads * per_thread > stats_module._FOLD_AT
    for _ in range(3):
        stats, reads = _end_jobs_in_threads(threads, per_thread)
        jobs = stats.snapshot()["jobs"]
        failed = threads * len(range(0, per_thread, 3))
        assert jobs == {
            "failed": failed,
            "completed": threads * per_thread - failed,
        }
        # Counts only grow, and every read is a plain dict of status names.
        totals = [sum(read.values()) for read in reads]
        assert totals == sorted(totals)
        assert all(isinstance(name, str) for read in reads for name in read)


def _end_jobs_in_threads(
    threads: int, per_thread: int
) -> tuple[FlowStats, list[dict[str, int]]]:
    """End jobs from ``threads`` threads at once; one of them reads as it goes."""
    stats = FlowStats()
    start = threading.Barrier(threads + 1)
    reads: list[dict[str, int]] = []

    def end_jobs(number: int) -> None:
        start.wait(10)
        for index in range(per_thread):
            status = JobStatus.FAILED if index % 3 == 0 else JobStatus.COMPLETED
            stats.job_ended(status)
            if number == 0 and index % 500 == 0:
                reads.append(stats.snapshot()["jobs"])  # folds while others end

    workers = [
        threading.Thread(target=end_jobs, args=(number,)) for number in range(threads)
    ]
    for worker in workers:
        worker.start()
    start.wait(10)
    for worker in workers:
        worker.join(30)
    return stats, reads
