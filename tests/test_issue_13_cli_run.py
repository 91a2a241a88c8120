"""``routilux run``: targets, parameters, summaries and exit codes (issue 13)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from routilux import Flow
from routilux.persistence import SQLiteCheckpointStore

from .cli_helpers import FLOWS, ROOT, TESTS, cli, cli_process, target

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.filterwarnings("error")


def test_run_prints_the_result_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "run", target("make_counting"), "--no-progress")
    assert got.code == 0, got.err
    assert got.err == ""
    assert got.out.startswith("job ")
    assert " completed in " in got.out
    assert '"total": 20' in got.out


def test_run_json_is_one_document_with_the_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got = cli(capsys, "run", target("make_counting"), "--json", "--param", "count=3")
    assert got.code == 0
    summary = json.loads(got.out)
    assert summary["status"] == "completed"
    assert summary["flow_id"] == "cli-counting"
    assert summary["result"] == {"total": 6}
    assert summary["errors"] == []
    # Progress went to stderr, in plain lines, ending with the counts.
    assert "activations: 7 done, 0 queued, 0 running, 0 failed, 0 retries" in got.err


def test_params_json_and_param_which_wins(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    params = tmp_path / "params.json"
    params.write_text('{"count": 10}')
    got = cli(capsys, "run", target("make_counting"), "--params-json", str(params))
    assert got.code == 0 and '"total": 90' in got.out
    got = cli(
        capsys,
        "run",
        target("make_counting"),
        "--params-json",
        str(params),
        "--param",
        "count=2",
        "--json",
    )
    assert json.loads(got.out)["result"] == {"total": 2}


def test_strategy_workers_and_entry(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(
        capsys,
        "run",
        target("make_counting"),
        "--strategy",
        "concurrent",
        "--workers",
        "3",
        "--entry",
        "numbers",
        "--param",
        "count=50",
        "--json",
    )
    assert got.code == 0, got.err
    summary = json.loads(got.out)
    assert (summary["strategy"], summary["workers"]) == ("concurrent", 3)
    assert summary["status"] == "completed"
    # On a pool the totals return in any order: the result is one of them.
    assert summary["result"]["total"] in {n * (n - 1) for n in range(1, 51)}
    assert "activations: 101 done, 0 queued, 0 running, 0 failed" in got.err


def test_two_entries_need_entry(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "run", target("make_two_entries"), "--no-progress")
    assert got.code == 2
    assert got.err == (
        "routilux: error: flow 'cli-two-entries' has 2 entry routines "
        "['first', 'second']: choose one with --entry\n"
    )
    got = cli(capsys, "run", target("make_two_entries"), "--entry", "nope")
    assert got.code == 2
    assert got.err.count("\n") == 1 and "'nope'" in got.err


def test_a_failing_flow_exits_1_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got = cli(capsys, "run", target("make_failing"), "--no-progress")
    assert got.code == 1
    assert got.out == ""
    assert got.err.count("\n") == 1
    assert got.err.startswith("routilux: error: job ")
    assert got.err.endswith(" failed: broken.input raised ValueError: cannot parse 0\n")


def test_a_failing_flow_json_still_prints_the_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got = cli(capsys, "run", target("make_failing"), "--json", "--no-progress")
    assert got.code == 1
    summary = json.loads(got.out)
    assert summary["status"] == "failed"
    assert summary["result"] is None
    assert [e["error_type"] for e in summary["errors"]] == ["ValueError"]
    assert got.err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/flow.json"], "routilux: error: /no/such/flow.json: no such file"),
        (
            ["no_such_module_xyz:make_flow"],
            "routilux: error: no_such_module_xyz:make_flow: no module named "
            "'no_such_module_xyz'",
        ),
        (
            [f"{FLOWS}:missing"],
            f"routilux: error: {FLOWS}:missing: module 'cli_flows' has no "
            "attribute 'missing'",
        ),
        (
            [f"{FLOWS}:not_a_flow"],
            f"routilux: error: {FLOWS}:not_a_flow: is a int, not a Flow or a "
            "function returning one",
        ),
        (
            [f"{FLOWS}:make_nothing"],
            f"routilux: error: {FLOWS}:make_nothing: is a NoneType, not a Flow or "
            "a function returning one",
        ),
        (
            [f"{FLOWS}:make_raising"],
            f"routilux: error: {FLOWS}:make_raising: calling it raised "
            "RuntimeError: cannot build the flow",
        ),
        (
            ["/no/such/file.py:make_flow"],
            "routilux: error: /no/such/file.py:make_flow: no such file "
            "'/no/such/file.py'",
        ),
        (
            ["bad-name:make_flow"],
            "routilux: error: bad-name:make_flow: 'bad-name' is not a module name",
        ),
        (
            [str(FLOWS)],
            f"routilux: error: {FLOWS}: name the flow in the file, as "
            f"{FLOWS}:make_flow",
        ),
    ],
)
def test_load_errors_exit_2_with_one_clear_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    got = cli(capsys, "run", *args)
    assert (got.code, got.out, got.err) == (2, "", message + "\n")


def test_malformed_json_document_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "flow.json"
    bad.write_text('{"routines": [')
    got = cli(capsys, "run", str(bad))
    assert got.code == 2 and got.out == ""
    assert got.err.startswith(f"routilux: error: not a flow document: {bad}: ")
    assert got.err.count("\n") == 1
    not_a_flow = tmp_path / "list.json"
    not_a_flow.write_text("[1, 2]")
    got = cli(capsys, "run", str(not_a_flow))
    assert got.code == 2 and str(not_a_flow) in got.err
    assert got.err.count("\n") == 1


def test_malformed_params_json_and_bad_param_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "params.json"
    bad.write_text("{nope")
    got = cli(capsys, "run", target("make_counting"), "--params-json", str(bad))
    assert got.code == 2
    assert got.err.startswith(f"routilux: error: --params-json {bad}: malformed JSON")
    bad.write_text("[1]")
    got = cli(capsys, "run", target("make_counting"), "--params-json", str(bad))
    assert got.err == (
        f"routilux: error: --params-json {bad}: expected a JSON object, got list\n"
    )
    got = cli(capsys, "run", target("make_counting"), "--params-json", "/no/such")
    assert got.code == 2 and "/no/such" in got.err
    got = cli(capsys, "run", target("make_counting"), "--param", "count")
    assert got.err == "routilux: error: --param 'count': expected KEY=VALUE\n"


@pytest.mark.slow
@pytest.mark.timeout(120)  # a process of its own: slow on a loaded machine
def test_a_flow_document_runs(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    script = f"import cli_flows; cli_flows.make_counting().save({str(path)!r})"
    subprocess.run([sys.executable, "-c", script], cwd=TESTS, check=True)
    got = cli_process(
        "run", str(path), "--allow-module", "cli_flows", "--json", cwd=TESTS
    )
    assert got.code == 0, got.err
    assert json.loads(got.out)["result"] == {"total": 20}
    # Without --allow-module the document's routine classes are not imported.
    got = cli_process("run", str(path), cwd=TESTS)
    assert got.code == 2
    assert "unknown routine class 'cli_flows:" in got.err
    assert got.err.count("\n") == 1


def test_a_document_naming_an_unknown_module_needs_allow_module(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = Flow("doc").serialize()
    document["routines"] = {
        "r": {"class": "cli_flows_unknown_mod:Thing", "config": {}},
    }
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(document))
    got = cli(capsys, "run", str(path))
    assert got.code == 2
    assert got.err.startswith(f"routilux: error: not a flow document: {path}: ")
    assert got.err.count("\n") == 1


def test_run_with_a_store_keeps_the_job(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "jobs.sqlite"
    got = cli(capsys, "run", target("make_counting"), "--store", str(store), "--json")
    assert got.code == 0
    job_id = json.loads(got.out)["job_id"]
    with SQLiteCheckpointStore(store) as kept:
        assert kept.load(job_id)["status"] == "completed"


def test_debug_prints_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "--debug", "run", target("make_raising"))
    assert got.code == 2
    assert "Traceback (most recent call last)" in got.err
    assert "RuntimeError: cannot build the flow" in got.err
    assert got.err.endswith("RuntimeError: cannot build the flow\n")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "run")
    assert got.code == 2 and "Missing argument 'TARGET'" in got.err
    got = cli(capsys, "run", target("make_counting"), "--workers", "0")
    assert got.code == 2 and "--workers" in got.err
    got = cli(capsys, "nope")
    assert got.code == 2 and "No such command 'nope'" in got.err
    got = cli(capsys, "run", target("make_counting"), "--strategy", "warp")
    assert got.code == 2 and got.err.count("\n") == 1 and "warp" in got.err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "--help")
    assert got.code == 0
    for command in ("run", "graph", "validate", "jobs", "show", "resume"):
        assert f"  {command} " in got.out
    got = cli(capsys, "--version")
    assert got.code == 0 and got.out.startswith("routilux, version ")


@pytest.mark.slow
@pytest.mark.timeout(120)  # a process of its own: slow on a loaded machine
def test_example_make_flow_as_a_new_user_runs_it() -> None:
    got = cli_process(
        "run", "examples/concurrent_flow_demo.py:make_flow", "--json", cwd=ROOT
    )
    assert got.code == 0, got.err
    summary = json.loads(got.out)
    assert summary["status"] == "completed"
    assert summary["result"] == {
        "aggregator": ["customers", "inventory", "orders", "prices"]
    }


@pytest.mark.slow
@pytest.mark.timeout(120)  # a process of its own: slow on a loaded machine
def test_example_failing_flow_as_a_process_exits_1_with_one_line() -> None:
    got = cli_process(
        "run", "examples/error_handling_example.py:make_failing_flow", "--no-progress"
    )
    assert got.code == 1
    assert got.out == ""
    assert got.err.count("\n") == 1
    assert "fragile.input raised ValueError: cannot parse record 42" in got.err


@pytest.mark.slow
@pytest.mark.timeout(120)  # a process of its own: slow on a loaded machine
def test_module_attribute_from_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "myflows.py").write_text(
        "from routilux import Flow\nflow = Flow('empty')\n"
    )
    got = cli_process("validate", "myflows:flow", cwd=tmp_path)
    assert got.code == 0, got.err
    assert got.out == "0 errors, 0 warnings\n"


@pytest.mark.slow
@pytest.mark.timeout(120)  # a process of its own: slow on a loaded machine
def test_import_routilux_imports_no_cli_library() -> None:
    code = (
        "import sys, routilux; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('click', 'rich') or m.startswith('routilux.cli')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout == "[]\n"


def test_nothing_below_the_command_imports_it() -> None:
    """The command is the top layer: no other module of routilux imports it."""
    import ast

    package = ROOT / "routilux"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.parent.name == "cli" or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [
                f"{path.relative_to(ROOT)}: {name}"
                for name in names
                if name.split(".")[0] in ("click", "rich") or "cli" in name.split(".")
            ]
    assert offenders == []


@pytest.mark.slow
@pytest.mark.timeout(120)  # a process of its own: slow on a loaded machine
def test_without_the_cli_extra_the_command_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['click'] = None; "
        "import runpy; runpy.run_module('routilux', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("routilux: error: the command needs the cli extra")
    assert done.stderr.endswith("pip install 'routilux[cli]'\n")


@pytest.mark.slow
@pytest.mark.timeout(120)  # a process of its own: slow on a loaded machine
@pytest.mark.parametrize("strategy", ["concurrent", "sequential"])
def test_ctrl_c_cancels_the_job_and_exits_1(strategy: str) -> None:
    # A process started in the background ignores SIGINT, and so would its
    # children: this one takes Python's default handler back, as a terminal's
    # foreground process has it.
    script = (
        "import runpy, signal, sys; "
        "signal.signal(signal.SIGINT, signal.default_int_handler); "
        f"sys.argv = ['routilux', 'run', {target('make_slow')!r}, "
        f"'--param', 'count=2000', '--strategy', {strategy!r}]; "
        "runpy.run_module('routilux', run_name='__main__')"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    # "job ... started" is printed by the hooks once the job has started: from
    # then on the interrupt finds it, even before execute() returned it.
    first = process.stdout.readline()
    assert first.startswith("job ") and first.endswith(" started (flow cli-slow)\n")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=100)
    assert process.returncode == 1, err
    assert "finished: jobs: 0 running, 1 cancelled" in out
    assert err.count("\n") == 1
    assert err.endswith(" cancelled: cancelled by user: interrupted\n")


def test_a_file_named_like_a_loaded_module_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clash = tmp_path / "json.py"
    clash.write_text("from routilux import Flow\nflow = Flow('clash')\n")
    got = cli(capsys, "validate", f"{clash}:flow")
    assert got.code == 2
    assert got.err.startswith(
        f"routilux: error: {clash}:flow: another module named 'json' is already "
        "loaded ("
    )
    assert sys.modules["json"].__file__ != str(clash)  # json was left alone


def test_the_same_file_twice_is_loaded_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    module = tmp_path / "count_loads_cli.py"
    module.write_text(
        "from routilux import Flow\nLOADS = []\nLOADS.append(1)\n"
        "def make_flow():\n    return Flow(f'loads-{len(LOADS)}')\n"
    )
    for _ in range(2):
        got = cli(capsys, "graph", f"{module}:make_flow")
        assert got.out.splitlines()[0] == "flow loads-1"


def test_a_document_whose_name_has_a_colon(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "flow:v2.json"
    with Flow("colon") as flow:
        flow.save(path)
    got = cli(capsys, "validate", str(path))
    assert (got.code, got.out) == (0, "0 errors, 0 warnings\n")


def test_timeout_cancels_the_job(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(
        capsys,
        "run",
        target("make_slow"),
        "--param",
        "count=2000",
        "--timeout",
        "0.2",
        "--json",
        "--no-progress",
    )
    assert got.code == 1
    assert json.loads(got.out)["status"] == "cancelled"
    assert got.err.endswith(
        " cancelled: cancelled by timeout: the job ran longer than its timeout of "
        "0.2s\n"
    )


def test_run_with_a_job_id_runs_the_job_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "jobs.sqlite"
    args = ["run", target("make_counting"), "--store", str(store), "--json"]
    first = cli(capsys, *args, "--job-id", "order-42")
    assert first.code == 0, first.err
    assert json.loads(first.out)["job_id"] == "order-42"
    assert "activations: 11 done" in first.err
    again = cli(capsys, *args, "--job-id", "order-42")
    assert again.code == 0, again.err
    summary = json.loads(again.out)
    assert (summary["job_id"], summary["status"]) == ("order-42", "completed")
    assert "activations: 0 done" in again.err  # reported, not run again
    with SQLiteCheckpointStore(store) as kept:
        assert [row["job_id"] for row in kept.list_jobs()] == ["order-42"]


def test_run_with_the_id_of_a_job_running_elsewhere_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import threading

    from routilux import Routine

    release = threading.Event()
    started = threading.Event()

    class Held(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.hold)

        def hold(self, **_: object) -> None:
            started.set()
            assert release.wait(30)

    store = SQLiteCheckpointStore(tmp_path / "jobs.sqlite")
    owner = Flow("cli-counting", "concurrent", 1, checkpoint_store=store)
    owner.add_routine(Held(), "numbers")
    try:
        job = owner.execute("numbers", job_id="busy-1")
        assert started.wait(30)
        got = cli(
            capsys,
            "run",
            target("make_counting"),
            "--store",
            str(tmp_path / "jobs.sqlite"),
            "--job-id",
            "busy-1",
            "--no-progress",
        )
        assert got.code == 1
        assert got.err == "routilux: error: job busy-1 is running in another process\n"
    finally:
        release.set()
        owner.shutdown(wait=True)
        store.close()
    assert job.status == "completed"


def test_job_id_arguments_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "run", target("make_counting"), "--resume-interrupted")
    assert (got.code, got.err) == (
        2,
        "routilux: error: --resume-interrupted needs --job-id\n",
    )
    got = cli(capsys, "run", target("make_counting"), "--job-id", "bad id!")
    assert got.code == 2
    assert got.err.startswith("routilux: error: execute(): job_id must be")
    assert got.err.count("\n") == 1
