"""Session lanes and the per-session state routines keep.

An activation's *lane* is the session it belongs to: the value of its
connection's ``lane_key`` in the payload when the connection names one, else the
session its job was started with (``flow.execute(..., session=...)``), else none.
The strategies run activations of one routine and one lane one at a time, in
arrival order (the task's ``serial_key`` is ``(routine_id, lane)``).

:class:`SessionStates` keeps, per flow, one dict per ``(routine_id, lane)``: what
``routine.session_state`` returns inside a handler. A state is *in use* while a
handler that read it runs; once idle for its routine's ``session_ttl`` seconds
(or the flow's) it is dropped, and the next activation of that lane starts from an
empty dict. Expiry is checked whenever a state is read and when statistics are
taken, on the store's clock (injectable: tests use a fake one).

``SessionStates._lock`` guards the states and the idle lists. It is never held
while user code runs, nor together with a ledger's or a strategy's lock.
"""

from __future__ import annotations

import reprlib
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..checks import MAX_SECONDS, non_negative_seconds
from ..exceptions import ConfigurationError, SessionError
from .context import current_frame

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_SESSION_TTL",
    "Lane",
    "SessionState",
    "SessionStateAttribute",
    "SessionStates",
    "check_connection",
    "check_lane",
    "check_lane_key",
    "lane_of",
    "optional_lane",
    "optional_ttl",
]

#: A lane: a session id or a key's value (a str or an int, never a bool).
Lane = str | int

#: Seconds an idle session state is kept when neither routine nor flow says.
DEFAULT_SESSION_TTL = 300.0

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60


def check_lane(value: object, what: str) -> Lane:
    """``value`` when it can name a lane (a str or an int, not a bool).

    Raises:
        ConfigurationError: Naming ``what`` and the value.
    """
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return value
    raise ConfigurationError(
        f"{what} must be a str or an int, got {type(value).__name__} "
        f"{_repr.repr(value)}"
    )


def lane_of(key: str, route: Any, payload: dict[str, Any]) -> Lane:
    """The lane ``payload`` names through a connection's lane ``key``.

    ``route`` (its ``routine_id`` and ``slot``) names the connection in errors.

    Raises:
        ConfigurationError: When the payload lacks the key, or its value is not
            a str or an int.
    """
    value = payload.get(key)
    if type(value) is str or type(value) is int:
        return value  # the common case, checked without building a message
    what = f"lane_key {key!r} of the connection into {route.routine_id}."
    what += route.slot.name
    if key not in payload:
        what += f": the payload has no {key!r} (keys: {sorted(payload)}); it"
    else:
        what += f": payload[{key!r}]"
    return check_lane(value, what)


def optional_lane(value: object, what: str) -> Lane | None:
    """``value`` when it is None or can name a lane (see :func:`check_lane`)."""
    return None if value is None else check_lane(value, what)


def check_lane_key(value: object, what: str) -> str | None:
    """``value`` when it is None or a non-empty str (a payload key).

    Raises:
        ConfigurationError: Naming ``what`` and the value.
    """
    if value is None or (isinstance(value, str) and value):
        return value
    raise ConfigurationError(
        f"{what} must be None or a non-empty str (a payload key), got "
        f"{_repr.repr(value)}"
    )


def check_connection(lane_key: object, slot: Any, target: str) -> None:
    """Refuse a bad ``lane_key``, or one into a slot whose policy gathers arrivals.

    A lane key is None or a non-empty str; a slot with a policy other than
    ``each`` gets calls that hold many payloads, not one lane.

    Raises:
        ConfigurationError: Naming the connection's target and the value.
    """
    check_lane_key(lane_key, f"connect(): lane_key into {target}")
    policy = slot.policy
    if lane_key is not None and policy.name != "each":
        raise ConfigurationError(
            f"connect(): lane_key {lane_key!r} into {target}: the slot's policy is "
            f"{policy.name!r}, whose calls gather many arrivals; a lane key applies "
            "to 'each' slots (a gathering slot's calls run in the job's session)"
        )


def optional_ttl(value: object, what: str) -> float | None:
    """``value`` as seconds when it is None or a number >= 0 (0: drop when idle).

    Raises:
        ConfigurationError: For a negative number, NaN, infinity, a bool, a
            string, or more than :data:`~routilux.checks.MAX_SECONDS`.
    """
    if value is None:
        return None
    return non_negative_seconds(value, what, maximum=MAX_SECONDS)


class SessionState:
    """One routine's state for one session, and how long it may idle.

    Attributes:
        data: The dict handlers read and change.
        users: Handlers that read it and still run.
        idle_since: The clock's time the last of them ended.
        ttl: Seconds it is kept once idle (None: for good).
    """

    __slots__ = ("data", "idle_since", "key", "ttl", "users")

    def __init__(self, key: tuple[str, Lane], ttl: float | None, now: float) -> None:
        self.key = key
        self.data: dict[str, Any] = {}
        self.users = 0
        self.idle_since = now
        self.ttl = ttl


class SessionStates:
    """The session states of one flow's routines. Thread-safe.

    Args:
        ttl: Seconds an idle state is kept when its routine sets no TTL of its
            own (None: kept until the flow is dropped).
        clock: Monotonic seconds; ``time.monotonic`` by default.
    """

    def __init__(
        self,
        ttl: float | None = DEFAULT_SESSION_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        # Guards _states and _idle.
        self._lock = threading.Lock()
        self._states: dict[tuple[str, Lane], SessionState] = {}
        # ttl -> idle states with that ttl, oldest first (so expiry looks only at
        # the front of each list).
        self._idle: dict[float, OrderedDict[tuple[str, Lane], SessionState]] = {}

    @classmethod
    def checked(cls, ttl: object, clock: object) -> SessionStates:
        """A store for a flow's ``session_ttl`` and ``session_clock`` settings.

        Raises:
            ConfigurationError: For a TTL :func:`optional_ttl` refuses, or a
                clock that is neither None nor callable.
        """
        seconds = optional_ttl(ttl, "session_ttl")
        if clock is None:
            return cls(seconds)
        if not callable(clock):
            raise ConfigurationError(
                f"session_clock must be a callable, got {type(clock).__name__}"
            )
        return cls(seconds, clock)

    def acquire(self, routine_id: str, lane: Lane, ttl: float | None) -> SessionState:
        """The state of ``routine_id`` in ``lane``, in use until :meth:`release`.

        ``ttl`` is the routine's own (None: the store's). An expired state is
        dropped first, so the caller then gets a new, empty one.
        """
        now = self.clock()
        key = (routine_id, lane)
        with self._lock:
            self._expire_locked(now)
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = SessionState(key, None, now)
            elif state.users == 0 and state.ttl is not None:
                del self._idle[state.ttl][key]
            state.users += 1
            state.ttl = self.ttl if ttl is None else ttl
            return state

    def release(self, state: SessionState) -> None:
        """A handler that read ``state`` has ended: it idles from now."""
        now = self.clock()
        with self._lock:
            state.users -= 1
            if state.users:
                return
            state.idle_since = now
            if state.ttl is not None:
                self._idle.setdefault(state.ttl, OrderedDict())[state.key] = state

    def _expire_locked(self, now: float) -> None:
        for ttl, idle in self._idle.items():
            while idle:
                key, state = next(iter(idle.items()))
                if now - state.idle_since < ttl:
                    break
                del idle[key]
                del self._states[key]

    def stats(self) -> dict[str, Any]:
        """``states`` kept, distinct ``sessions`` among them, ``in_use``, ``ttl``."""
        now = self.clock()
        with self._lock:
            self._expire_locked(now)
            states = list(self._states.values())
        return {
            "states": len(states),
            "sessions": len({state.key[1] for state in states}),
            "in_use": sum(1 for state in states if state.users),
            "ttl": self.ttl,
        }


class SessionStateAttribute:
    """``routine.session_state``: the routine's dict for the running session.

    Read inside one of the routine's handlers, it is the state the routine keeps
    for the activation's session (its lane): the same dict for every activation
    of that session until it idles longer than the session TTL. Activations of
    one routine in one session run one at a time, so a handler may change it
    without a lock.

    A non-data descriptor: a subclass that assigns ``self.session_state`` itself
    (as 0.9 code may) keeps an attribute of its own.

    Raises:
        SessionError: Outside the routine's handlers, or in an activation that
            has no session.
    """

    def __get__(self, routine: object, owner: type | None = None) -> Any:
        if routine is None:
            return self
        frame = current_frame()
        if frame is None or frame.routine is not routine:
            raise SessionError(
                f"{routine!r}: session_state is only there while one of the "
                "routine's own handlers runs"
            )
        return frame.activation.session_state()
