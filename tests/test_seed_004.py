"""Seed 004 ("Concurrent Execution" tutorial): every step runs and prints what it says.

Each step's code block runs unchanged in its own interpreter and its printed lines
are compared with the step's "Expected Output", timestamps and timings masked.
Step 1 (sequential) and step 4 (its prints happen under the routine's lock, with
the count they print) must match line for line in order; the other steps print
from concurrent handlers, so their lines are compared as a multiset plus the
orderings that causality guarantees.

Parallelism (steps 2, 3, 5) is proven without timing: the block runs a second
time with its ``time.sleep`` calls replaced by a ``threading.Barrier`` of as many
parties as the routines that sleep at once. Run one after another they would never
meet, the barrier would time out and the process would exit with an error.

All runs start together in one module fixture so the file takes a couple of
seconds, not the sum of its subprocesses.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

# tests/ is not a package: pytest puts it on sys.path (rootdir-relative helper)
from .seed_blocks import (
    BARRIER_BROKEN_EXIT,
    Run,
    Step,
    find_seed,
    mask,
    masked_lines,
    parse_steps,
    start_block,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SEED = find_seed("004_26e1ca25916e735c")
if SEED is None:
    pytest.skip(
        "seed 004 not found: ../shared/seeds/004_26e1ca25916e735c.txt is missing "
        "next to the repository (the shared folder is not checked out here)",
        allow_module_level=True,
    )

STEPS: dict[int, Step] = {s.number: s for s in parse_steps(SEED.read_text("utf-8"))}

pytestmark = pytest.mark.timeout(120)  # worst case: one 60 s subprocess timeout


@dataclass(frozen=True)
class Ordering:
    """What order of printed lines a step guarantees."""

    exact: bool = False  # the whole output, in order
    head: int = 0  # the first `head` expected lines come first, in order
    tail: int = 0  # the last `tail` expected lines come last, in order
    # maps a printed line to a line that must have been printed before it
    cause: Callable[[str], str | None] | None = None


def _fetched_before_aggregated(line: str) -> str | None:
    m = re.fullmatch(r"Aggregated: (Data from (\w+)) from \2", line)
    return f"[<timestamp>] Fetched: {m[1]}" if m else None


def _processed_before_collected(line: str) -> str | None:
    m = re.fullmatch(r"Collected: Processed: Data from source (\w+) from \1", line)
    return f"Processed data from source {m[1]}" if m else None


ORDERINGS = {
    1: Ordering(exact=True),
    2: Ordering(head=1, tail=1),
    3: Ordering(tail=1, cause=_fetched_before_aggregated),
    4: Ordering(exact=True),
    5: Ordering(head=1, tail=3, cause=_processed_before_collected),
}
# number of routines that sleep at the same time in each concurrent step
RENDEZVOUS = {2: 3, 3: 3, 5: 5}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Start every run at once; tests wait for the one they check."""
    started: dict[str, Run] = {}
    try:
        for number, step in STEPS.items():
            workdir = tmp_path_factory.mktemp(f"seed004_step{number}")
            started[f"step{number}"] = start_block(step.code, workdir, f"step{number}")
        for number, parties in RENDEZVOUS.items():
            workdir = tmp_path_factory.mktemp(f"seed004_step{number}_barrier")
            started[f"step{number}-barrier"] = start_block(
                STEPS[number].code, workdir, f"step{number}", rendezvous=parties
            )
        yield started
    finally:
        for run in started.values():
            run.wait()


def test_seed_has_steps_1_to_5() -> None:
    assert sorted(STEPS) == [1, 2, 3, 4, 5]
    for step in STEPS.values():
        assert "from routilux import" in step.code
        assert step.expected, f"step {step.number} has an empty Expected Output"


def _check_order(number: int, got: list[str], expected: list[str]) -> None:
    order = ORDERINGS[number]
    if order.exact:
        assert got == expected
        return
    if order.head:
        assert got[: order.head] == expected[: order.head], "wrong first lines"
    if order.tail:
        assert got[-order.tail :] == expected[-order.tail :], "wrong last lines"
    if order.cause is not None:
        for index, line in enumerate(got):
            before = order.cause(line)
            if before is not None:
                assert before in got[:index], f"{line!r} printed before {before!r}"


def _check_output(number: int, run: Run) -> None:
    run.wait()
    assert run.returncode == 0, run.describe()
    assert "Traceback" not in run.stderr, run.describe()
    got = masked_lines(run.stdout)
    expected = [mask(line) for line in STEPS[number].expected]
    assert Counter(got) == Counter(expected), (
        f"step {number} printed other lines than the seed says\n"
        f"expected: {expected}\ngot:      {got}\n{run.describe()}"
    )
    _check_order(number, got, expected)


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_step_prints_expected_output(runs: dict[str, Run], number: int) -> None:
    _check_output(number, runs[f"step{number}"])


@pytest.mark.parametrize("number", sorted(RENDEZVOUS))
def test_step_handlers_run_in_parallel(runs: dict[str, Run], number: int) -> None:
    run = runs[f"step{number}-barrier"].wait()
    assert run.returncode != BARRIER_BROKEN_EXIT, (
        f"step {number}: the {RENDEZVOUS[number]} sleeping handlers never ran at "
        f"the same time\n{run.describe()}"
    )
    _check_output(number, run)


def test_masking() -> None:
    assert mask("[1234567890.12] Operation1 completed") == (
        "[<timestamp>] Operation1 completed"
    )
    assert mask("Sequential time: 0.60s  ") == "Sequential time: <seconds>s"
    assert mask("Data from source F0 from F0") == "Data from source F0 from F0"
