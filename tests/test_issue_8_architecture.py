"""Issue 8: the layering the runtime core promises, checked over the source."""

from __future__ import annotations

import ast
from pathlib import Path

from routilux import JobState, Routine

PACKAGE = Path(__file__).resolve().parent.parent / "routilux"
LEDGER = PACKAGE / "runtime" / "ledger"

#: A routine's private state: only routine.py may touch it.
ROUTINE_PRIVATE = {"_rx", "_config", "_stats", "_forget_spec", "_build_spec"}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def test_issue_8_only_routine_py_reads_a_routines_private_state() -> None:
    # routine.py and its settings base (routine_settings.py) only.
    # ``_rx`` anywhere, the other names on anything but ``self`` (other classes
    # may have a ``_stats`` of their own).
    offenders = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}"
        for path in modules()
        if path.name not in ("routine.py", "routine_settings.py")
        for node in ast.walk(tree(path))
        if isinstance(node, ast.Attribute)
        and node.attr in ROUTINE_PRIVATE
        and (node.attr == "_rx" or not is_self(node.value))
    ]
    assert offenders == []
    assert all(hasattr(Routine(), name) for name in ("_rx", "_config", "_stats"))


FIELDS = set(JobState.model_fields) | {"_history", "_done", "_owner_lock"}
CONTAINERS = {"errors", "routine_states", "pending_tasks", "pause_points", "_history"}
MUTATORS = {"append", "extend", "update", "clear", "pop", "insert", "setdefault"}
MUTATORS |= {"__setitem__", "__delitem__"}


def job_state_writes(path: Path, root: Path = PACKAGE) -> list[str]:
    """Assignments to JobState fields, and calls that change its containers,
    on anything but ``self`` (a class writing its own ``flow_id`` is fine)."""
    found = []
    for node in ast.walk(tree(path)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
        ):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in {"list", "dict"}:
                # list.append(state.errors, ...): how the owner writes the views
                owner = node.args[0] if node.args else owner
            if isinstance(owner, ast.Attribute) and owner.attr in CONTAINERS:
                targets = [owner]
        for target in targets:
            while isinstance(target, ast.Subscript):
                target = target.value  # state.routine_states[rid] = ...
            if (
                isinstance(target, ast.Attribute)
                and target.attr in FIELDS
                and not is_self(target.value)
            ):
                found.append(f"{path.relative_to(root)}:{target.lineno}")
    return found


def test_issue_8_job_state_is_written_only_by_the_ledger() -> None:
    offenders = [
        where
        for path in modules()
        # job_state_documents.py is JobState's own (a base class of it).
        if path.parent != LEDGER
        and path.name not in ("job_state.py", "job_state_documents.py")
        for where in job_state_writes(path)
    ]
    assert offenders == []


def test_issue_8_strategies_import_nothing_from_the_runtime() -> None:
    offenders = []
    for path in sorted((PACKAGE / "strategies").rglob("*.py")):
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                if "runtime" in node.module.split("."):
                    offenders.append(f"{path.name}:{node.lineno} {node.module}")
            elif isinstance(node, ast.Import):
                offenders += [
                    f"{path.name}:{node.lineno} {alias.name}"
                    for alias in node.names
                    if "runtime" in alias.name.split(".")
                ]
    assert offenders == []


def test_issue_8_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    # The scans above would pass on an empty tree: make sure they read code.
    # (The ledger writes through helpers the scan need not see: _set,
    # writable_list.)
    writer = tmp_path / "writer.py"
    writer.write_text(
        "def f(job):\n"
        "    job.status = 'failed'\n"
        "    list.append(job.pause_points, {})\n"
        "    job.routine_states['a'] = 1\n",
        encoding="utf-8",
    )
    assert sorted(job_state_writes(writer, tmp_path)) == [
        "writer.py:2",
        "writer.py:3",
        "writer.py:4",
    ]
    assert any(
        isinstance(node, ast.Attribute) and node.attr == "_rx"
        for node in ast.walk(tree(PACKAGE / "routine.py"))
    )
