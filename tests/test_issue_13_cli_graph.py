"""``routilux graph`` and ``validate``: the text each format writes (issue 13).

The mermaid output is checked against the grammar subset the exporter writes
(see :mod:`routilux.cli.drawing`). With ``ROUTILUX_MERMAID_DIR`` naming a folder
where ``npm install mermaid jsdom`` was run, and node on the PATH, one more test
parses it with mermaid itself; otherwise that test is skipped (CI downloads
nothing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from routilux import AllSources, ErrorHandler, ErrorStrategy, Flow, Routine
from routilux.cli.drawing import draw
from routilux.persistence import SQLiteCheckpointStore

from .cli_helpers import TESTS, cli, target

NODE_ID = r"n\d+"
# Label text: no raw quote, bracket, brace, pipe, angle, ampersand or backtick;
# '#' only as the start of an entity code; <br/> is the one tag used.
LABEL_CHAR = r"(?:[^\"\[\]{}|<>&`#]|#\d+;|<br/>)"
LABEL = rf'"{LABEL_CHAR}*"'
GRAMMAR = [
    re.compile(r"flowchart LR"),
    re.compile(rf"    {NODE_ID}\[{LABEL}\]"),
    re.compile(rf"    {NODE_ID} -->\|{LABEL}\| {NODE_ID}"),
    re.compile(r"    classDef [a-z]+ fill:#[0-9a-f]{6},stroke:#[0-9a-f]{6}"),
    re.compile(rf"    class {NODE_ID}(?:,{NODE_ID})* [a-z]+"),
]


def check_mermaid(text: str) -> None:
    """Every line is one of the grammar's forms; the header comes first; ids fit."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert text.endswith("\n")
    declared: set[str] = set()
    classes: set[str] = set()
    for line in lines[1:]:
        forms = [n for n, form in enumerate(GRAMMAR) if form.fullmatch(line)]
        assert len(forms) == 1, f"not in the grammar: {line!r}"
        ids = re.findall(rf"\b{NODE_ID}\b", line.split('"')[0] + line.split('"')[-1])
        if forms[0] == 1:
            declared.add(ids[0])
        elif forms[0] == 3:
            classes.add(line.split()[1])
        elif forms[0] in (2, 4):
            assert set(ids) <= declared, f"undeclared node in {line!r}"
        if forms[0] == 4:
            assert line.split()[-1] in classes, f"class before classDef: {line!r}"


class Odd(Routine):
    """Names with every character mermaid could misread."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot('in "quoted" [x] {y} |z| <b> & #1;', handler=self.take)
        self.define_event('out "q" [a]|b', ["value"])

    def take(self, **data: object) -> None:
        pass


class Joiner(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("both", handler=self.join, policy=AllSources())
        self.define_slot("many", handler=self.join, merge_strategy="append")

    def join(self, **data: object) -> None:
        pass


def odd_flow() -> Flow:
    flow = Flow('flow "odd"')
    first = Odd()
    first.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=2))
    flow.add_routine(first, 'a "b" [c]')
    flow.add_routine(Odd(), "plain")
    flow.add_routine(Joiner(), "join")
    flow.connect(
        'a "b" [c]',
        'out "q" [a]|b',
        "plain",
        'in "quoted" [x] {y} |z| <b> & #1;',
        {"value": "v|x"},
    )
    flow.connect('a "b" [c]', 'out "q" [a]|b', "join", "both")
    flow.connect("plain", 'out "q" [a]|b', "join", "both")
    flow.connect("plain", 'out "q" [a]|b', "join", "many")
    return flow


def test_mermaid_of_odd_names_keeps_to_the_grammar() -> None:
    with odd_flow() as flow:
        text = draw(flow, "mermaid", {'a "b" [c]': "completed", "join": "failed"})
    check_mermaid(text)
    assert 'n0["a #34;b#34; #91;c#93;<br/>Odd<br/>on error: retry x2"]' in text
    assert "#124;" in text and "#60;b#62;" in text and "#38;" in text
    assert "#35;1;" in text  # a '#' in a name is written as a code, too
    assert "    classDef completed fill:#c8e6c9,stroke:#2e7d32\n" in text
    assert "    class n0 completed\n" in text
    assert "    class n2 failed\n" in text


def test_mermaid_marks_policies_and_mappings() -> None:
    with odd_flow() as flow:
        text = draw(flow, "mermaid")
    assert (
        'n2["join<br/>Joiner<br/>both: all_sources(keep=latest, on_missing=call)'
        '<br/>many: merge append"]'
    ) in text
    assert "(value→v#124;x)" in text
    assert "classDef" not in text


def test_graph_command_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "graph", target("make_retrying"), "--format", "mermaid")
    assert got.code == 0 and got.err == ""
    check_mermaid(got.out)
    assert got.out == (
        "flowchart LR\n"
        '    n0["numbers<br/>Numbers"]\n'
        '    n1["flaky<br/>FirstCallFails<br/>on error: retry x2"]\n'
        '    n2["total<br/>Total"]\n'
        '    n0 -->|"value → input"| n1\n'
        '    n1 -->|"value → input"| n2\n'
    )


def test_graph_command_dot_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "graph", target("make_continuing"), "--format", "dot")
    assert got.code == 0
    assert got.out.startswith('digraph "cli-continuing" {\n')
    assert '"broken" [label="broken\\nBroken\\non error: continue"];' in got.out
    assert '"numbers" -> "broken" [label="value -> input"];' not in got.out
    assert '"numbers" -> "broken" [label="value → input"];' in got.out
    got = cli(capsys, "graph", target("make_continuing"))
    assert got.out == (
        "flow cli-continuing\n"
        "  numbers (Numbers)\n"
        "  broken (Broken)\n"
        "      on error: continue\n"
        "connections\n"
        "  numbers --value → input--> broken\n"
    )


def test_dot_quotes_odd_names() -> None:
    with odd_flow() as flow:
        text = draw(flow, "dot", {"plain": "skipped"})
    assert text.startswith('digraph "flow \\"odd\\"" {')
    assert '"a \\"b\\" [c]" [label="a \\"b\\" [c]\\nOdd\\non error: retry x2"];' in text
    assert 'style=filled, fillcolor="#eeeeee", color="#757575"' in text


def test_graph_with_a_job_colours_routines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "jobs.sqlite"
    got = cli(capsys, "run", target("make_failing"), "--store", str(store), "--json")
    assert got.code == 1
    job_id = json.loads(got.out)["job_id"]
    got = cli(
        capsys,
        "graph",
        target("make_failing"),
        "--format",
        "mermaid",
        "--job",
        job_id,
        "--store",
        str(store),
    )
    assert got.code == 0, got.err
    check_mermaid(got.out)
    assert "    class n0 completed\n" in got.out
    assert "    class n1 failed\n" in got.out
    got = cli(
        capsys, "graph", target("make_failing"), "--job", job_id, "--store", str(store)
    )
    assert "  numbers (Numbers) [completed]\n" in got.out
    assert "  broken (Broken) [failed]\n" in got.out


def test_graph_job_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    got = cli(capsys, "graph", target("make_failing"), "--job", "x")
    assert (got.code, got.err) == (
        2,
        "routilux: error: --job and --store go together\n",
    )
    missing = tmp_path / "none.sqlite"
    got = cli(
        capsys, "graph", target("make_failing"), "--job", "x", "--store", str(missing)
    )
    assert got.err == f"routilux: error: {missing}: no such checkpoint store\n"
    assert not missing.exists()  # reading never makes a store
    store = tmp_path / "jobs.sqlite"
    SQLiteCheckpointStore(store).close()
    got = cli(
        capsys, "graph", target("make_failing"), "--job", "nope", "--store", str(store)
    )
    assert got.code == 2
    assert got.err == f"routilux: error: {store}: no checkpoint of job 'nope'\n"


def test_validate_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli(capsys, "validate", target("make_counting"))
    assert (got.code, got.out, got.err) == (0, "0 errors, 0 warnings\n", "")
    got = cli(capsys, "validate", target("make_no_entry"))
    assert got.code == 1
    assert got.out == (
        "error: no routine has a 'trigger' slot, so no job can start [no-entry]\n"
        "warning: slot double.input has no incoming connection [unconnected-slot]\n"
        "1 error, 1 warning\n"
    )
    assert got.err == "routilux: error: flow 'cli-no-entry': 1 error\n"


def _mermaid_dir() -> str | None:
    folder = os.environ.get("ROUTILUX_MERMAID_DIR")
    if not folder or shutil.which("node") is None:
        return None
    modules = Path(folder) / "node_modules"
    if not (modules / "mermaid").is_dir() or not (modules / "jsdom").is_dir():
        return None
    return folder


@pytest.mark.slow
@pytest.mark.skipif(
    _mermaid_dir() is None,
    reason="set ROUTILUX_MERMAID_DIR to a folder with mermaid and jsdom installed",
)
def test_mermaid_itself_parses_the_output() -> None:
    with odd_flow() as flow:
        ours = [draw(flow, "mermaid", {"join": "completed"}), draw(flow, "mermaid")]
    for text in ours:
        assert _parse(text) == "parsed\n"
    # The parser does refuse what breaks the grammar (a raw quote in a label).
    assert _parse('flowchart LR\n    n0["a"b"]\n').startswith("error: Parse error")


def _parse(text: str) -> str:
    done = subprocess.run(
        ["node", str(TESTS / "mermaid_parse.mjs")],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout
