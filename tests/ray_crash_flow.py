"""The crash test's flow (tests/crash_flow.py) on Ray, run as a killable driver.

``python tests/ray_crash_flow.py STORE SINK ADDRESS`` joins the Ray instance at
ADDRESS, starts the job, prints its id and waits: the test kills this process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from routilux.strategies import RayStrategy
from tests.crash_flow import build

#: Seconds each sink call works (the crash test's 2 ms would end too soon).
SINK_PAUSE = 0.05

if __name__ == "__main__":
    import ray

    root = str(Path(__file__).resolve().parents[1])
    ray.init(
        address=sys.argv[3],
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": root}},
    )
    flow = build(Path(sys.argv[1]), Path(sys.argv[2]))
    # Calls started together run side by side on the hosts: slow each one down
    # so that the test sees the job part-way.
    flow.routines["sink"].set_config(pause=SINK_PAUSE)
    flow.set_execution_strategy(RayStrategy(max_workers=4))
    job = flow.execute("source")
    print(job.job_id, flush=True)
    flow.wait_for_completion()
    os._exit(0)  # the test kills us long before this
