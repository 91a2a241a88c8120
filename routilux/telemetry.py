"""OpenTelemetry spans for flows: one per job, one per activation beneath it.

Install the ``[otel]`` extra, then add the hooks to a flow::

    from routilux.telemetry import OpenTelemetryHooks

    flow.add_hooks(OpenTelemetryHooks())

Each job gets a span ``routilux.job`` (attributes ``routilux.job_id``,
``routilux.flow_id``, ``routilux.status``); each activation a span
``routilux.activation <routine>.<slot>`` whose parent is the job's span, with
``routilux.routine_id``, ``routilux.slot``, ``routilux.attempt`` and
``routilux.outcome`` (``ok`` or ``error``); a failed activation records its
exception and an error status. A job that pauses ends its span; resuming starts a
new one.

The spans are made with the tracer of the global tracer provider unless one is
given; routilux never configures a provider or an exporter.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError
from .hooks import FlowHooks

if TYPE_CHECKING:
    from .hooks import ActivationInfo, Outcome
    from .job_state import JobState

__all__ = ["OpenTelemetryHooks"]


def _otel() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "OpenTelemetryHooks needs the opentelemetry API: "
            "pip install 'routilux[otel]'"
        ) from exc
    return trace


class OpenTelemetryHooks(FlowHooks):
    """Flow hooks that export OpenTelemetry spans.

    Args:
        tracer_provider: Where spans go; the global provider when None.

    Raises:
        ConfigurationError: When the opentelemetry package is not installed.

    Thread-safe: activations of many jobs may report at once.
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        self._trace = _otel()
        self._tracer = self._trace.get_tracer(
            "routilux", tracer_provider=tracer_provider
        )
        # Guards _jobs and _activations (spans still open).
        self._lock = threading.Lock()
        self._jobs: dict[str, Any] = {}
        self._activations: dict[tuple[str, int], Any] = {}

    def on_job_start(self, job: JobState) -> None:
        """Open the job's span."""
        span = self._tracer.start_span(
            "routilux.job",
            attributes={"routilux.job_id": job.job_id, "routilux.flow_id": job.flow_id},
        )
        with self._lock:
            self._jobs[job.job_id] = span

    def on_activation_start(self, job: JobState, activation: ActivationInfo) -> None:
        """Open the activation's span under the job's."""
        with self._lock:
            parent = self._jobs.get(job.job_id)
        context = (
            self._trace.set_span_in_context(parent) if parent is not None else None
        )
        span = self._tracer.start_span(
            f"routilux.activation {activation.routine_id}.{activation.slot}",
            context=context,
            attributes={
                "routilux.job_id": job.job_id,
                "routilux.routine_id": activation.routine_id,
                "routilux.slot": activation.slot,
                "routilux.attempt": activation.attempt,
            },
        )
        with self._lock:
            self._activations[(job.job_id, activation.activation_id)] = span

    def _end_activation(
        self,
        job: JobState,
        activation: ActivationInfo | None,
        error: BaseException | None,
        attempts: int,
    ) -> None:
        if activation is None:
            return
        with self._lock:
            span = self._activations.pop((job.job_id, activation.activation_id), None)
        if span is None:
            return
        span.set_attribute("routilux.attempt", attempts)
        span.set_attribute("routilux.outcome", "ok" if error is None else "error")
        if error is not None:
            span.record_exception(error)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        span.end()

    def on_activation_end(
        self, job: JobState, activation: ActivationInfo, outcome: Outcome
    ) -> None:
        """Close the activation's span as ``ok``."""
        self._end_activation(job, activation, None, outcome.attempts)

    def on_error(
        self, job: JobState, activation: ActivationInfo | None, error: BaseException
    ) -> None:
        """Close the activation's span as ``error`` (job failures: on the job)."""
        if activation is not None:
            self._end_activation(job, activation, error, activation.attempt)
            return
        with self._lock:
            span = self._jobs.get(job.job_id)
        if span is not None:
            span.record_exception(error)

    def on_job_end(self, job: JobState) -> None:
        """Close the job's span with its status."""
        with self._lock:
            span = self._jobs.pop(job.job_id, None)
        if span is None:
            return
        status = job.status.value
        span.set_attribute("routilux.status", status)
        if status in ("failed", "cancelled"):
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, status))
        span.end()
