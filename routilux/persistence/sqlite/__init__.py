"""The default checkpoint store: one SQLite file (stdlib ``sqlite3``, WAL mode).

Layout (``PRAGMA user_version`` holds :data:`SCHEMA_VERSION`)::

    jobs(job_id PRIMARY KEY, flow_id, status, updated_at, updated_ts, document)
    pending(seq INTEGER PRIMARY KEY, job_id, activation_id, routine_id, slot,
            payload, UNIQUE(job_id, activation_id))
    dead_letters(seq INTEGER PRIMARY KEY, letter_id UNIQUE, flow_id, job_id,
                 replayed_by, document)
    leases(job_id PRIMARY KEY, pid, host, token, beat)

Documents and payloads are stored as JSON text written by orjson. ``seq`` keeps the
pending activations of a job in insertion order. The ``dead_letters`` table came
after version 1 without a new version: older routilux versions ignore it, and a
file they wrote gets it when opened for writing (read-only, it has no letters).
The ``leases`` table (who runs a job, :mod:`.leases`) came the same way.

Concurrency: the store holds one connection guarded by a lock. Measured with 8
threads making small ``record_step`` calls (2 cores), one locked connection and one
connection per thread were within noise of each other; the locked connection never
waits in SQLite's busy handler (which sleeps in millisecond steps) for a thread of
its own process, and ``close()`` releases it from any thread. Several processes may
share one file: WAL lets readers run beside the writer, writes wait up to
``busy_timeout`` for one another, and every write is one ``BEGIN IMMEDIATE``
transaction.

Durability: with ``synchronous="NORMAL"`` (the default) a committed step survives the
process being killed; a power cut may lose the last steps but never corrupts the
file. ``synchronous="FULL"`` survives power cuts too, at the cost of an fsync per
step.

Modules: :mod:`.database` opens the file and runs transactions; :mod:`.store` is
the :class:`SQLiteCheckpointStore` itself; :mod:`.letters` keeps dead letters;
:mod:`.leases` keeps job leases.
"""

from __future__ import annotations

from .database import SCHEMA_VERSION
from .store import SQLiteCheckpointStore

__all__ = ["SCHEMA_VERSION", "SQLiteCheckpointStore"]
