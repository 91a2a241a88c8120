"""The ``routilux`` command group, and how errors become one line and an exit code.

Exit codes: 0 completed, 1 a failed job (or validation errors), 2 a usage or
load error (a missing file, a bad ``module:attr``, malformed JSON, not a Flow).
An error prints one line on stderr; ``--debug`` prints its traceback as well.
"""

from __future__ import annotations

import sys
import traceback

import click

from .. import __version__
from ..exceptions import RoutiluxError
from .bench import bench
from .common import Failure
from .demo import demo
from .graph import graph, validate
from .prune import prune
from .run import resume, run_command
from .store import dead_letters, jobs, show

__all__ = ["cli", "run"]


class _Settings:
    """Set by the group's options, read when an error ends the command."""

    debug = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Print the traceback of an error.")
@click.version_option(__version__, prog_name="routilux")
def cli(debug: bool) -> None:
    """Run, draw, check and inspect routilux flows.

    TARGET is a flow document (a JSON file written by Flow.save), or
    module:attribute or path/to/file.py:attribute naming a Flow or a function
    that takes no argument and returns one.
    """
    _Settings.debug = debug


for _command in (
    run_command,
    resume,
    graph,
    validate,
    jobs,
    show,
    dead_letters,
    prune,
    demo,
    bench,
):
    cli.add_command(_command)


def run(argv: list[str] | None = None) -> int:
    """Run the command; return its exit code (errors are printed, not raised)."""
    _Settings.debug = False
    try:
        cli.main(args=argv, prog_name="routilux", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        _error("interrupted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except Failure as exc:
        return _fail(exc, str(exc), exc.code)
    except RoutiluxError as exc:
        # Raised while setting up (a bad entry, strategy or store): a usage error.
        return _fail(exc, str(exc), 2)
    except Exception as exc:  # noqa: BLE001 - any error ends in one line
        return _fail(exc, f"{type(exc).__name__}: {exc}", 1)
    return 0


def _fail(exc: BaseException, message: str, code: int) -> int:
    if _Settings.debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    _error(message)
    return code


def _error(message: str) -> None:
    # One line, whatever the message holds.
    line = " ".join(message.split())
    print(f"routilux: error: {line}", file=sys.stderr, flush=True)
