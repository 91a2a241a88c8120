"""What the commands share: one-line failures, loading targets, stores, JSON out."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..persistence import JsonFileCheckpointStore, SQLiteCheckpointStore
from .targets import load_target, search_here

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from ..flow import Flow
    from ..persistence import CheckpointStore

__all__ = [
    "Failure",
    "console",
    "counted",
    "dump_json",
    "load_flow",
    "open_store",
    "store_option",
    "target_arguments",
]

F = TypeVar("F", bound="Callable[..., Any]")


class Failure(Exception):
    """A command ends with one line on stderr and an exit code.

    Args:
        message: The line (without the ``routilux: error:`` prefix).
        code: 1 for a failed job or findings, 2 for a usage or load error.
    """

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def target_arguments(function: F) -> F:
    """The TARGET argument and ``--allow-module`` (for flow documents)."""
    function = click.option(
        "--allow-module",
        "allowed_modules",
        multiple=True,
        metavar="MODULE",
        help="A module a flow document may import routine classes from "
        "(repeatable; the current directory is searched).",
    )(function)
    return click.argument("target")(function)


def store_option(required: bool) -> Callable[[F], F]:
    """``--store PATH``: a SQLite file, or a directory of JSON job files."""

    def decorate(function: F) -> F:
        return click.option(
            "--store",
            "store_path",
            required=required,
            metavar="PATH",
            help="Checkpoint store: a SQLite file, or a directory of JSON job "
            "files (JsonFileCheckpointStore).",
        )(function)

    return decorate


def load_flow(target: str, allowed_modules: tuple[str, ...]) -> Flow:
    """The flow TARGET names (see :mod:`routilux.cli.targets`)."""
    if allowed_modules:
        search_here()  # where a document's routine modules are found
    return load_target(target, allowed_modules)


def open_store(
    path: str, *, writable: bool = False, create: bool = False
) -> CheckpointStore:
    """The store at ``path``, read-only unless ``writable`` (or ``create``).

    Args:
        path: A SQLite file, or a directory of JSON job files.
        writable: Open it for writing (run, resume, replay).
        create: Make a SQLite store when nothing is at ``path``.

    Raises:
        Failure: (exit 2) when there is no store at ``path`` and not ``create``.
    """
    read_only = not (writable or create)
    if os.path.isdir(path):
        return JsonFileCheckpointStore(path, read_only=read_only)
    if not os.path.exists(path) and not create:
        raise Failure(f"{path}: no such checkpoint store")
    return SQLiteCheckpointStore(path, read_only=read_only)


def counted(number: int, noun: str) -> str:
    """``1 job``, ``2 jobs``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def dump_json(value: Any) -> str:
    """``value`` as indented JSON; what JSON cannot hold is shown by ``repr``."""
    return json.dumps(value, indent=2, sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return repr(value)


def console() -> Console:
    """A rich console on stdout: the terminal's width, or wide when piped."""
    import sys

    from rich.console import Console

    wide = None if sys.stdout.isatty() else 200
    return Console(file=sys.stdout, width=wide, highlight=False)
