"""The ``bench-results`` directive: a ``bench/run.py --write-results`` file as a page.

``.. bench-results:: _static/bench.json`` renders the machine, the date, the load
and the table of one benchmark run, so docs/performance.rst shows the figures of
the file and nothing else. With ``:cases: checkpoint`` (comma-separated
prefixes of the ``case`` column) it shows only the rows of those cases, under
the same machine lines: a guide quotes the run's figures without copying them.
A file of another format, a row without its columns, or ``:cases:`` that
select no row stop the build with an error naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

FORMAT = 1
COLUMNS = ("case", "routilux", "baseline", "ratio", "target", "verdict")


def _cell(value: Any) -> str:
    text = str(value).replace("|", "/").replace("*", r"\*").replace("`", "'")
    return text or "-"


def _load(values: Any) -> str:
    if not values:
        return "unknown"
    return ", ".join(f"{v:.2f}" for v in values) + " (1, 5, 15 min)"


def render(
    document: dict[str, Any], source: str = "results", cases: str | None = None
) -> list[str]:
    """The reStructuredText lines for one results document.

    Args:
        document: The results, as ``bench/run.py --write-results`` wrote them.
        source: The file's name, for errors.
        cases: Comma-separated prefixes of the ``case`` column: only the rows
            whose case starts with one of them (all rows when None).

    Raises:
        ValueError: The document is not of the format this renders, a row
            lacks a column, or ``cases`` select no row; the message names
            *source*.
    """
    if document.get("format") != FORMAT:
        raise ValueError(
            f"{source}: format {document.get('format')!r}, expected {FORMAT} "
            "(write it with bench/run.py --write-results)"
        )
    mode = "``--quick``" if document.get("quick") else "full"
    lines = [
        f"* measured: {document['date']}, routilux {document['routilux']} at "
        f"``{document['git']}``",
        f"* machine: {document['cpus']} CPUs ({document['cpu']}), "
        f"{document['platform']}",
        f"* Python {document['python']}",
        f"* run: {mode}, each figure the median of up to {document['repeats']} "
        "repeats (at least 3)",
        f"* load average at the start: {_load(document.get('load_start'))}; "
        f"at the end: {_load(document.get('load_end'))}",
    ]
    if document.get("failed"):
        lines.append(f"* FAILED cases: {', '.join(document['failed'])}")
    lines += ["", ".. list-table::", "   :header-rows: 1", ""]
    header = {column: column for column in COLUMNS}
    rows = document["rows"]
    for n, row in enumerate(rows):
        missing = [column for column in COLUMNS if column not in row]
        if missing:
            raise ValueError(f"{source}: rows[{n}] has no {', '.join(missing)}")
    if cases is not None:
        prefixes = tuple(p.strip() for p in cases.split(",") if p.strip())
        rows = [row for row in rows if str(row["case"]).startswith(prefixes)]
        if not prefixes or not rows:
            raise ValueError(f"{source}: no row of the cases {cases!r}")
    for row in [header, *rows]:
        lines.append(f"   * - {_cell(row[COLUMNS[0]])}")
        lines += [f"     - {_cell(row[column])}" for column in COLUMNS[1:]]
    return lines


class BenchResults(SphinxDirective):
    """``.. bench-results:: path``: the run in the file, relative to docs/.

    Option ``:cases:``: only the rows of these cases (see :func:`render`).
    """

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"cases": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        """Read the file and parse the lines :func:`render` makes of it."""
        relative = self.arguments[0]
        path = Path(self.env.srcdir) / relative
        self.env.note_dependency(str(path))
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            lines = render(document, relative, self.options.get("cases"))
        except (OSError, ValueError, KeyError) as error:
            raise ExtensionError(f"bench-results: {error}") from error
        container = nodes.container()
        content = StringList(lines, relative)
        self.state.nested_parse(content, self.content_offset, container)
        return container.children


def setup(app: Any) -> dict[str, Any]:
    """Register the directive."""
    app.add_directive("bench-results", BenchResults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
