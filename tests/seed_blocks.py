"""Read the code and expected-output blocks of a seed tutorial and run them.

The seed documents in ``../shared/seeds`` are reStructuredText tutorials. Each
"Step N:" section holds a ``.. code-block:: python`` and, after an
``**Expected Output**:`` label, a ``.. code-block:: text`` with what the code
prints. This module extracts those pairs, runs a block in a subprocess (as a file,
so ``if __name__ == "__main__"`` fires) and masks what differs between runs
(timestamps like ``[1234567890.12]``, timings like ``0.60s``).

It also writes the *rendezvous* wrapper: it runs a block with ``time.sleep``
replaced, for calls made from the block's own code only, by a wait on a
``threading.Barrier(parties, timeout=10)``. If the library ran the sleeping
handlers one after another the barrier would time out; the wrapper then exits the
process at once with :data:`BARRIER_BROKEN_EXIT`, so the failure cannot be
swallowed by the library's error handling.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = REPO_ROOT.parent / "shared" / "seeds"

BARRIER_BROKEN_EXIT = 97

_DIRECTIVE = re.compile(
    r"^(?P<indent>[ \t]*)\.\. code-block::[ \t]*(?P<lang>\S+)[ \t]*$"
)
_OPTION = re.compile(r"^[ \t]+:[\w-]+:")
_LABEL = re.compile(r"^\*\*(?P<label>[^*]+)\*\*:?[ \t]*$")
_STEP = re.compile(r"^Step (?P<number>\d+):[ \t]*(?P<title>.*)$")

_TIMESTAMP = re.compile(r"\[\d+\.\d+\]")
_SECONDS = re.compile(r"\b\d+(?:\.\d+)?s\b")


@dataclass(frozen=True)
class Block:
    """One ``code-block`` directive of a seed document."""

    lang: str
    code: str  # dedented, options dropped, trailing blank lines dropped
    line: int  # 1-based line number of the directive
    label: str  # the ``**Label**:`` paragraph just before it, or ""
    step: int | None  # number of the enclosing "Step N:" section, if any


@dataclass(frozen=True)
class Step:
    """A tutorial step: the code to run and the lines it should print."""

    number: int
    code: str
    expected: list[str]
    line: int  # where the code block starts in the seed, for messages


def find_seed(prefix: str) -> Path | None:
    """Return the seed file whose name starts with *prefix*, or None."""
    if not SEEDS_DIR.is_dir():
        return None
    matches = sorted(SEEDS_DIR.glob(f"{prefix}*.txt"))
    return matches[0] if matches else None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _preceding_label(lines: list[str], index: int) -> str:
    """The ``**Label**:`` paragraph right before line *index*, or ""."""
    j = index - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0:
        return ""
    match = _LABEL.match(lines[j].strip())
    return match["label"].strip() if match else ""


def _block_body(lines: list[str], start: int, indent: int) -> tuple[str, int]:
    """Return (dedented body, index after the block) for a directive at *start*."""
    i = start + 1
    while i < len(lines) and _OPTION.match(lines[i]) and _indent(lines[i]) > indent:
        i += 1  # directive options such as ``:linenos:``
    body: list[str] = []
    while i < len(lines):
        line = lines[i]
        if line.strip() and _indent(line) <= indent:
            break
        body.append(line)
        i += 1
    while body and not body[-1].strip():
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    return textwrap.dedent("\n".join(body)), i


def _is_heading(lines: list[str], i: int) -> bool:
    """Whether line *i* is a section title (unindented, underlined)."""
    line = lines[i]
    if not line.strip() or line[0].isspace() or i + 1 >= len(lines):
        return False
    underline = lines[i + 1].rstrip()
    return len(underline) >= 3 and len(set(underline)) == 1 and underline[0] in "=-~^"


def parse_blocks(text: str) -> list[Block]:
    """All ``code-block`` directives of an RST document, in document order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    step: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if _is_heading(lines, i):
            heading = _STEP.match(line)
            step = int(heading["number"]) if heading else None
        directive = _DIRECTIVE.match(line)
        if directive is None:
            i += 1
            continue
        code, after = _block_body(lines, i, len(directive["indent"]))
        blocks.append(
            Block(
                lang=directive["lang"],
                code=code,
                line=i + 1,
                label=_preceding_label(lines, i),
                step=step,
            )
        )
        i = after
    return blocks


def parse_steps(text: str) -> list[Step]:
    """The numbered steps: each step's first python block and its expected output."""
    by_step: dict[int, list[Block]] = {}
    for block in parse_blocks(text):
        if block.step is not None:
            by_step.setdefault(block.step, []).append(block)
    steps = []
    for number in sorted(by_step):
        blocks = by_step[number]
        code = next((b for b in blocks if b.lang == "python"), None)
        expected = next(
            (b for b in blocks if b.lang == "text" and b.label == "Expected Output"),
            None,
        )
        if code is None or expected is None:
            raise ValueError(
                f"step {number} lacks a python block or an Expected Output block"
            )
        steps.append(
            Step(
                number=number,
                code=code.code + "\n",
                expected=expected.code.splitlines(),
                line=code.line,
            )
        )
    return steps


def mask(line: str) -> str:
    """Mask what changes from run to run: timestamps and durations."""
    line = _TIMESTAMP.sub("[<timestamp>]", line.rstrip())
    return _SECONDS.sub("<seconds>s", line)


def masked_lines(output: str) -> list[str]:
    """Printed lines, masked, with trailing blank lines dropped."""
    lines = [mask(line) for line in output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


_RENDEZVOUS = '''\
"""Run a seed block with its time.sleep calls turned into a barrier rendezvous."""

import os
import runpy
import sys
import threading
import time

BLOCK = os.path.abspath(sys.argv[1])
PARTIES = int(sys.argv[2])
EXIT_CODE = int(sys.argv[3])
_real_sleep = time.sleep
_barrier = threading.Barrier(PARTIES, timeout=10)


def _rendezvous(seconds):
    # Only the block's own sleeps meet at the barrier; anybody else sleeps.
    if sys._getframe(1).f_code.co_filename != BLOCK:
        _real_sleep(seconds)
        return
    try:
        _barrier.wait()
    except threading.BrokenBarrierError:
        sys.stderr.write(
            f"BARRIER BROKEN: {PARTIES} sleeping handlers did not run at the same "
            "time within 10 s (run one after another?)\\n"
        )
        sys.stderr.flush()
        os._exit(EXIT_CODE)


time.sleep = _rendezvous
sys.argv = [BLOCK]
runpy.run_path(BLOCK, run_name="__main__")
'''


@dataclass
class Run:
    """A block running (or finished) in a subprocess."""

    name: str
    proc: subprocess.Popen[str]
    timeout: float
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""

    def __repr__(self) -> str:
        return f"<Run {self.name} exit={self.returncode}>"

    def wait(self) -> Run:
        """Wait for the process (killing it after the timeout) and keep its output."""
        if self.returncode is None:
            try:
                self.stdout, self.stderr = self.proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.stdout, self.stderr = self.proc.communicate()
                self.stderr += f"\n[killed after {self.timeout:.0f} s]"
            self.returncode = self.proc.returncode
        return self

    def describe(self) -> str:
        """Exit code and both streams, for assertion messages."""
        return (
            f"{self.name}: exit code {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def start_block(
    code: str,
    workdir: Path,
    name: str,
    *,
    rendezvous: int | None = None,
    timeout: float = 60.0,
) -> Run:
    """Start *code* as ``workdir/name.py`` with this interpreter; don't wait.

    With *rendezvous* = n, run it through the barrier wrapper with n parties.
    The working tree's ``routilux`` comes first on the path.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / f"{name}.py"
    script.write_text(code, encoding="utf-8")
    argv = [sys.executable, str(script)]
    if rendezvous is not None:
        wrapper = workdir / "_rendezvous.py"
        wrapper.write_text(_RENDEZVOUS, encoding="utf-8")
        argv = [sys.executable, str(wrapper), str(script), str(rendezvous)]
        argv.append(str(BARRIER_BROKEN_EXIT))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env.pop("PYTHONUNBUFFERED", None)  # unbuffered prints of threads interleave
    env["PYTHONIOENCODING"] = "utf-8"
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    return Run(name=name, proc=proc, timeout=timeout)
