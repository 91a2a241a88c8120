"""A store double of the plain protocol that stops writing when told to.

It stands for a process killed right after a given step: the inner store keeps
what was committed until then, whatever the job does in memory afterwards.
Subclasses decide when it dies (:meth:`FrozenStore.wrote` sees every step).
"""

from __future__ import annotations

from typing import Any


class FrozenStore:
    """Passes writes to ``inner`` until :attr:`dead`; reads always pass."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dead = False

    def save_job(self, job: dict[str, Any]) -> None:
        if not self.dead:
            self.inner.save_job(job)

    def record_step(self, job_id: str, **step: Any) -> None:
        if not self.dead:
            self.inner.record_step(job_id, **step)
            self.wrote(step)

    def wrote(self, step: dict[str, Any]) -> None:
        """A step reached the inner store (a subclass may die here)."""

    def pending(self, job_id: str) -> list[dict[str, Any]]:
        return list(self.inner.pending(job_id))

    def load(self, job_id: str) -> dict[str, Any]:
        return dict(self.inner.load(job_id))

    def list_jobs(self, flow_id: Any = None, status: Any = None) -> Any:
        return self.inner.list_jobs(flow_id, status)

    def delete(self, job_id: str) -> None:
        self.inner.delete(job_id)

    def close(self) -> None:
        """The test closes the inner store."""
