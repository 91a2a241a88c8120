"""RecordLog: fixed-width records kept flat, out of the garbage collector's way.

A job appends a record per emit and per activation (history, tracker runs and
events). Kept as tuples, each record would stay on CPython's cycle collector's
lists for as long as the job lives: a tuple is only untracked when none of its items
is a container, and every record holds a payload dict. The collector then walks all
of them again and again, so the cost per hop grew with the number of hops already
made in the job. A RecordLog stores the cells of its records one after another in
one list (or a bounded deque), which is a single object to the collector, and
rebuilds the tuples only when someone reads them.

Appends are atomic without a lock: an append is the underlying container's own
``extend``, which copies a whole record tuple in one step under the GIL, so a
reader's snapshot never sees half a record.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["RecordLog", "new_cells", "records_of"]

R = TypeVar("R", bound=tuple[Any, ...])


def new_cells(width: int, limit: int | None) -> list[Any] | deque[Any]:
    """The flat container of a log of ``width``-tuples, bounded to ``limit``.

    What :class:`RecordLog` keeps; a writer that needs no more than appends and
    snapshots may keep it alone (one object fewer for the collector per log).
    """
    return [] if limit is None else deque(maxlen=width * limit)


def records_of(cells: list[Any] | deque[Any], width: int) -> list[Any]:
    """The records in ``cells``, oldest first (a copy taken in one step)."""
    flat = iter(list(cells))
    # zip over one iterator repeated: consecutive cells, ``width`` at a time
    return list(zip(*(flat,) * width, strict=True))


class RecordLog(Generic[R]):
    """An append-only log of ``width``-tuples, the oldest dropped past ``limit``.

    Args:
        width: The number of cells in each record.
        limit: Keep at most this many records (None: all).
        records: Records to start with (each must have ``width`` cells).

    Raises:
        ValueError: A starting record does not have ``width`` cells.
    """

    __slots__ = ("_cells", "limit", "width")

    def __init__(
        self, width: int, limit: int | None = None, records: Iterable[R] = ()
    ) -> None:
        self.width = width
        self.limit = limit
        cells = new_cells(width, limit)
        for record in records:
            if len(record) != width:
                raise ValueError(f"a record of {len(record)} cells in a log of {width}")
            cells.extend(record)
        self._cells = cells

    def append(self, record: R) -> None:
        """Append one record (a ``width``-tuple). Thread-safe, lock-free."""
        self._cells.extend(record)

    @property
    def cells(self) -> list[Any] | deque[Any]:
        """The flat container itself, for a writer's hot path.

        The writer keeps it (not a bound method, one more object for the
        collector) and appends a record with ``cells.extend(record)``, atomic.
        """
        return self._cells

    def snapshot(self) -> list[R]:
        """The records, oldest first (a copy taken in one step)."""
        return records_of(self._cells, self.width)

    def since(self, index: int) -> list[R]:
        """The records from number ``index`` on, oldest first (a copy).

        Costs only the records returned in an unbounded log; a bounded one drops
        its oldest records, so its numbers shift and it is copied whole.
        """
        cells = self._cells
        if isinstance(cells, list):
            tail = iter(cells[index * self.width :])
        else:
            tail = iter(list(cells)[index * self.width :])
        return list(zip(*(tail,) * self.width, strict=True))  # type: ignore[arg-type]

    def with_limit(self, limit: int | None) -> RecordLog[R]:
        """A new log holding this one's newest ``limit`` records, bounded to it."""
        records = self.snapshot()
        if limit is not None:
            records = records[len(records) - limit :] if limit else []
        return RecordLog(self.width, limit, records)

    def __iter__(self) -> Iterator[R]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        return len(self._cells) // self.width

    def __bool__(self) -> bool:
        return bool(self._cells)

    def __repr__(self) -> str:
        return f"RecordLog(width={self.width}, limit={self.limit}, records={len(self)})"
