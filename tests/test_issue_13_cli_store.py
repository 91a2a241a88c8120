"""``routilux jobs``, ``show``, ``resume`` and ``dead-letters`` (issue 13)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore

from . import cli_flows
from .cli_helpers import cli, target

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def run_into(capsys: pytest.CaptureFixture[str], store: Path, name: str) -> str:
    got = cli(capsys, "run", target(name), "--store", str(store), "--json")
    return str(json.loads(got.out)["job_id"])


def paused_job(store: Path) -> str:
    """A job of make_gated paused with 4 activations held, kept in ``store``."""
    flow = cli_flows.make_gated()
    flow.checkpoint_store = SQLiteCheckpointStore(store)
    gate = flow.routines["gate"]
    assert isinstance(gate, cli_flows.Gate)
    gate.closed = True
    try:
        job = flow.execute("numbers", {"count": 4})
        assert gate.reached.wait(10)
        assert flow.pause(job)
        gate.opened.set()
        assert job.wait(10)
        assert job.status.value == "paused"
    finally:
        flow.shutdown(wait=True)
        flow.checkpoint_store.close()
    return job.job_id


def test_jobs_lists_and_filters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "jobs.sqlite"
    done = run_into(capsys, store, "make_counting")
    failed = run_into(capsys, store, "make_failing")
    got = cli(capsys, "jobs", "--store", str(store))
    assert got.code == 0
    assert done in got.out and failed in got.out and got.out.endswith("2 jobs\n")
    got = cli(capsys, "jobs", "--store", str(store), "--status", "failed", "--json")
    listed = json.loads(got.out)
    assert [(j["job_id"], j["flow_id"], j["status"]) for j in listed] == [
        (failed, "cli-failing", "failed")
    ]
    got = cli(capsys, "jobs", "--store", str(store), "--flow", "cli-counting", "--json")
    assert [j["job_id"] for j in json.loads(got.out)] == [done]


def test_jobs_of_a_json_file_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "jobs"
    JsonFileCheckpointStore(folder).close()
    job_id = run_into(capsys, folder, "make_counting")
    got = cli(capsys, "jobs", "--store", str(folder), "--json")
    assert [j["job_id"] for j in json.loads(got.out)] == [job_id]


def test_store_errors_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.sqlite"
    got = cli(capsys, "jobs", "--store", str(missing))
    assert (got.code, got.err) == (
        2,
        f"routilux: error: {missing}: no such checkpoint store\n",
    )
    assert not missing.exists()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    got = cli(capsys, "jobs", "--store", str(junk))
    assert got.code == 2 and got.err.count("\n") == 1 and str(junk) in got.err
    got = cli(capsys, "jobs")
    assert got.code == 2 and "Missing option '--store'" in got.err


def test_show_prints_states_history_and_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "jobs.sqlite"
    job_id = run_into(capsys, store, "make_failing")
    got = cli(capsys, "show", job_id, "--store", str(store))
    assert got.code == 0, got.err
    lines = got.out.splitlines()
    assert lines[0] == f"job {job_id} of flow cli-failing"
    assert lines[1] == "status: failed"
    assert "routine states" in got.out and "history" in got.out
    assert any(
        line.split()[:2] == ["broken.input", "1"]
        and "ValueError: cannot parse 0" in line
        for line in lines
    )
    assert any(line.split()[1:3] == ["numbers", "start"] for line in lines if line)
    got = cli(capsys, "show", job_id, "--store", str(store), "--json")
    document = json.loads(got.out)
    assert document["job_id"] == job_id and document["status"] == "failed"
    got = cli(capsys, "show", "nope", "--store", str(store))
    assert got.err == f"routilux: error: {store}: no checkpoint of job 'nope'\n"


def test_resume_finishes_a_paused_job(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "jobs.sqlite"
    job_id = paused_job(store)
    got = cli(
        capsys, "resume", job_id, "--store", str(store), target("make_gated"), "--json"
    )
    assert got.code == 0, got.err
    summary = json.loads(got.out)
    assert (summary["job_id"], summary["status"]) == (job_id, "completed")
    # The 4 held activations ran: gate for those it had not passed on yet, then
    # total for every value (0 + 1 + 2 + 3).
    assert summary["result"] == {"total": 6}
    assert "finished: jobs: 0 running, 1 completed" in got.err
    with SQLiteCheckpointStore(store) as kept:
        assert kept.load(job_id)["status"] == "completed"
        assert kept.pending(job_id) == []


def test_resume_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = tmp_path / "jobs.sqlite"
    job_id = paused_job(store)
    got = cli(capsys, "resume", job_id, "--store", str(store), target("make_counting"))
    assert got.code == 2
    assert got.err.count("\n") == 1
    assert "belongs to flow 'cli-gated', not 'cli-counting'" in got.err
    got = cli(capsys, "resume", "nope", "--store", str(store), target("make_gated"))
    assert got.code == 2 and "'nope'" in got.err and got.err.count("\n") == 1
    with SQLiteCheckpointStore(store) as kept:
        assert kept.load(job_id)["status"] == "paused"


def test_dead_letters_list_and_replay(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "jobs.sqlite"
    job_id = run_into(capsys, store, "make_continuing")
    got = cli(capsys, "dead-letters", "--store", str(store), "--json")
    letters = json.loads(got.out)
    assert [(x["job_id"], x["routine_id"], x["payload"]) for x in letters] == [
        (job_id, "broken", {"value": n}) for n in range(5)
    ]
    got = cli(capsys, "dead-letters", "--store", str(store))
    assert got.code == 0 and got.out.endswith("5 dead letters\n")
    assert "ValueError: cannot parse 3" in got.out
    got = cli(
        capsys,
        "dead-letters",
        "--store",
        str(store),
        target("make_continuing"),
        "--replay",
        "--json",
    )
    assert got.code == 0, got.err
    replay = json.loads(got.out)
    assert replay["status"] == "completed" and replay["job_id"] != job_id
    assert len(replay["errors"]) == 5  # they fail again, as new letters
    assert "activations: 5 done, 0 queued, 0 running, 5 failed, 0 retries" in got.err
    got = cli(capsys, "dead-letters", "--store", str(store), "--json")
    assert {x["job_id"] for x in json.loads(got.out)} == {replay["job_id"]}
    got = cli(capsys, "dead-letters", "--store", str(store), "--all", "--json")
    assert len(json.loads(got.out)) == 10
    got = cli(capsys, "dead-letters", "--store", str(store), "--job", job_id, "--json")
    assert json.loads(got.out) == []


def test_replay_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = tmp_path / "jobs.sqlite"
    run_into(capsys, store, "make_counting")
    got = cli(capsys, "dead-letters", "--store", str(store), "--replay")
    assert got.err == (
        "routilux: error: --replay needs the TARGET whose flow runs the letters\n"
    )
    got = cli(
        capsys,
        "dead-letters",
        "--store",
        str(store),
        target("make_counting"),
        "--replay",
    )
    assert got.code == 1
    assert got.err == (
        f"routilux: error: {store}: no dead letters of flow 'cli-counting' to replay\n"
    )


def test_prune_forgets_what_matches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "jobs.sqlite"
    counting = [run_into(capsys, store, "make_counting") for _ in range(3)]
    failed = run_into(capsys, store, "make_failing")
    paused = paused_job(store)
    got = cli(capsys, "prune", "--store", str(store), "--keep-last", "1")
    assert (got.code, got.out, got.err) == (0, "pruned 2 jobs\n", "")
    with SQLiteCheckpointStore(store) as kept:
        left = {job["job_id"] for job in kept.list_jobs()}
    assert left == {counting[-1], failed, paused}  # the newest of each flow
    got = cli(capsys, "prune", "--store", str(store), "--all", "--status", "failed")
    assert got.out == "pruned 1 job\n"
    got = cli(capsys, "prune", "--store", str(store), "--older-than", "1h")
    assert got.out == "pruned 0 jobs\n"  # nothing is an hour old
    got = cli(capsys, "prune", "--store", str(store), "--all", "--flow", "nope")
    assert got.out == "pruned 0 jobs\n"
    got = cli(
        capsys,
        "prune",
        "--store",
        str(store),
        "--older-than",
        "0",
        "--status",
        "paused",
    )
    assert got.out == "pruned 1 job\n"
    with SQLiteCheckpointStore(store) as kept:
        assert [job["job_id"] for job in kept.list_jobs()] == [counting[-1]]


def test_prune_of_a_json_file_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "jobs"
    JsonFileCheckpointStore(folder).close()
    for _ in range(2):
        run_into(capsys, folder, "make_counting")
    got = cli(capsys, "prune", "--store", str(folder), "--older-than", "0s")
    assert got.out == "pruned 2 jobs\n"
    got = cli(capsys, "jobs", "--store", str(folder), "--json")
    assert json.loads(got.out) == []


def test_prune_refuses_what_would_delete_by_mistake(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "jobs.sqlite"
    job_id = run_into(capsys, store, "make_counting")
    got = cli(capsys, "prune", "--store", str(store))
    assert (got.code, got.err) == (
        2,
        "routilux: error: name --older-than or --keep-last (or --all for every job)\n",
    )
    for bad in ("7x", "-1", "d", "1.5.2h"):
        got = cli(capsys, "prune", "--store", str(store), "--older-than", bad)
        assert got.code == 2 and got.err.startswith(
            f"routilux: error: --older-than {bad!r}: expected a number of seconds"
        )
    got = cli(capsys, "prune", "--store", str(store), "--all", "--status", "running")
    assert got.code == 2 and "'running' is not one of" in got.err
    got = cli(capsys, "prune", "--store", str(tmp_path / "none.sqlite"), "--all")
    assert got.code == 2 and "no such checkpoint store" in got.err
    with SQLiteCheckpointStore(store) as kept:
        assert [job["job_id"] for job in kept.list_jobs()] == [job_id]


def test_parse_age() -> None:
    from routilux.cli.prune import parse_age

    assert [parse_age(t) for t in ("90", "90s", "1.5m", "2h", "7d", "1w")] == [
        90.0,
        90.0,
        90.0,
        7200.0,
        604800.0,
        604800.0,
    ]


def test_resume_on_a_changed_flow_needs_allow_changes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "jobs.sqlite"
    job_id = paused_job(store)
    changed = target("make_gated_without_total")
    got = cli(capsys, "resume", job_id, "--store", str(store), changed)
    assert got.code == 2 and got.err.count("\n") == 1
    assert "routines removed: total" in got.err
    with SQLiteCheckpointStore(store) as kept:
        assert kept.load(job_id)["status"] == "paused"
    got = cli(
        capsys,
        "resume",
        job_id,
        "--store",
        str(store),
        changed,
        "--allow-changes",
        "--json",
        "--no-progress",
    )
    assert got.code == 0, got.err
    summary = json.loads(got.out)
    assert summary["status"] == "completed"
    assert [e["error_type"] for e in summary["errors"]] == ["TopologyChangedError"]
