"""Resilience: error policies, retries and circuit breakers.

* :mod:`routilux.resilience.handler`: :class:`ErrorHandler` and
  :class:`ErrorStrategy` (STOP, CONTINUE, SKIP, RETRY) - which routine errors stop a
  job, and how retries wait.
* :mod:`routilux.resilience.circuit_breaker`: :class:`CircuitBreaker`, which makes a
  failing routine fail fast.

The runtime applies them (``routilux/runtime/failures.py``) and enforces timeouts
and cancellation (``routilux/runtime/watchdog.py``, ``scheduler.py``). Every error
class lives in :mod:`routilux.exceptions`.
"""

from __future__ import annotations

from .circuit_breaker import CircuitBreaker, CircuitState
from .handler import ErrorHandler, ErrorStrategy

__all__ = ["CircuitBreaker", "CircuitState", "ErrorHandler", "ErrorStrategy"]
