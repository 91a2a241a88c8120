"""``routilux prune``: a store forgets old finished jobs (``store.prune``)."""

from __future__ import annotations

import re

import click

from ..persistence import PruningStore
from .common import Failure, counted, open_store, store_option

__all__ = ["parse_age", "prune"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


def parse_age(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``12h``, ``7d`` or ``2w``.

    Raises:
        Failure: (exit 2) for anything else.
    """
    found = _AGE.fullmatch(text.strip())
    if found is None:
        raise Failure(
            f"--older-than {text!r}: expected a number of seconds, or one with a "
            "unit s, m, h, d or w (such as 7d)"
        )
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


@click.command()
@store_option(required=True)
@click.option(
    "--older-than",
    metavar="AGE",
    help="Only jobs last updated longer ago: seconds, or 30m, 12h, 7d, 2w.",
)
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    metavar="N",
    help="Keep the N newest matching jobs of each flow.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["completed", "failed", "cancelled", "paused"]),
    help="Only jobs with this status (repeatable; default: completed, failed "
    "and cancelled; running jobs never).",
)
@click.option("--flow", "flow_id", help="Only jobs of this flow id.")
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Prune every matching job, with neither --older-than nor --keep-last.",
)
def prune(
    store_path: str,
    older_than: str | None,
    keep_last: int | None,
    statuses: tuple[str, ...],
    flow_id: str | None,
    every: bool,
) -> None:
    """Delete the finished jobs the store keeps that match; say how many."""
    if older_than is None and keep_last is None and not every:
        # Without a limit every finished job would go: ask for it by name.
        raise Failure("name --older-than or --keep-last (or --all for every job)")
    age = None if older_than is None else parse_age(older_than)
    store = open_store(store_path, writable=True)
    try:
        if not isinstance(store, PruningStore):  # pragma: no cover - both built-in
            raise Failure(f"{store_path}: this store cannot prune")
        count = store.prune(
            older_than=age,
            status=list(statuses) or None,
            keep_last=keep_last,
            flow_id=flow_id,
        )
    finally:
        store.close()
    click.echo(f"pruned {counted(count, 'job')}")
