"""ResultExtractor: structured results out of text (model output, logs, tools)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..checks import flag
from ..exceptions import ConfigurationError
from ._base import MISSING, BuiltinRoutine, Check, NamedRegistry, input_value
from ._extractors import BUILTIN, Extraction

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ResultExtractor", "register_extractor"]

_STRATEGIES = ("auto", "first_match", "all", "priority")
_STRUCTURED = "structured"
_RESERVED = (*BUILTIN, _STRUCTURED)
_custom = NamedRegistry("extractor", {}, reserved=_RESERVED)


def register_extractor(
    name: str, fn: Callable[[Any, dict[str, Any]], Any], *, replace: bool = False
) -> None:
    """Register ``fn`` as the extractor ``name`` for the whole process.

    ``fn(data, config)`` returns None when it finds nothing, else
    ``(result, format, metadata)`` or ``(result, format, metadata, confidence)``.
    Thread-safe.

    Raises:
        DuplicateNameError: When ``name`` is built in, or registered to another
            function and ``replace`` is false.
        ConfigurationError: For an empty name or a ``fn`` that is not callable.
    """
    _custom.register(name, fn, replace=replace)


def _check_strategy(value: Any, what: str) -> str:
    if not isinstance(value, str) or value not in _STRATEGIES:
        raise ConfigurationError(
            f"{what} must be one of {', '.join(_STRATEGIES)}, got {value!r}"
        )
    return value


def _check_names(value: Any, what: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise ConfigurationError(
            f"{what} must be a list of extractor names, got {value!r}"
        )
    return list(value)


def _check_custom(value: Any, what: str) -> list[str]:
    names = _check_names(value, what)
    builtin = [name for name in names if name in _RESERVED]
    if builtin:
        raise ConfigurationError(
            f"{what} lists registered extractors; {builtin} are built in (they "
            "always take part)"
        )
    return names


class ResultExtractor(BuiltinRoutine):
    """Pulls a structured result out of text.

    Slot ``input`` (the text as ``data`` or the payload's only value; a dict or
    a list is passed on as it is); event ``output`` with ``extracted_result``,
    ``format``, ``metadata`` (what the extractor found, plus ``extractor`` and
    ``strategy``), ``confidence`` (0 to 1) and ``extraction_path`` (the names of
    the extractors whose results are given).

    Built-in extractors, in their default order, with their confidence:

    * ``json_block`` (0.95): the last fenced ``json`` block that parses;
    * ``yaml_block`` (0.9): the last fenced ``yaml``/``yml`` block that parses;
    * ``json`` (0.9): the whole text as a JSON object or array (0.75 for the
      first one found inside the text);
    * ``python_literal`` (0.85): a dict, list, tuple or set literal
      (``ast.literal_eval``, never eval);
    * ``code_block`` (0.7): the last fenced block of any language, as text;
    * ``key_value`` (0.6): ``key: value`` or ``key = value`` on every non-blank
      line.

    Extractors registered with :meth:`register_extractor` are tried first (in the
    order registered); a result they give counts as certain (1.0) unless they
    return a confidence.

    Configuration (``set_config``):

    * ``strategy`` (``"auto"``): ``"auto"`` runs every extractor and keeps the
      most confident result (the earlier one on a tie); ``"first_match"`` keeps
      the first result in order; ``"priority"`` does the same with the names in
      ``extractor_priority`` tried first, in that order; ``"all"`` keeps every
      result: ``extracted_result`` is their list, ``format`` is ``"multi"``,
      ``metadata["extractions"]`` describes each and ``confidence`` is the
      highest.
    * ``extractor_priority`` ([]): names, for ``"priority"``.
    * ``extractors`` ([]): the registered extractors this routine uses
      (:meth:`register_extractor` adds to it).
    * ``return_original_on_failure`` (True): when nothing matches, pass the input
      on with ``format`` ``"text"``, confidence 0 and an empty
      ``extraction_path``; when False, raise ``ValueError``.

    Input that is not text, a dict or a list raises ``ValueError`` naming
    ``data``; so does a registered extractor that raises or returns something
    else than documented. YAML blocks are read with PyYAML when it is installed,
    else with a small subset reader (:mod:`routilux.builtin._yaml`).
    """

    defaults: ClassVar[dict[str, Any]] = {
        "strategy": "auto",
        "extractor_priority": [],
        "extractors": [],
        "return_original_on_failure": True,
    }
    checks: ClassVar[dict[str, Check]] = {
        "strategy": _check_strategy,
        "extractor_priority": _check_names,
        "extractors": _check_custom,
        "return_original_on_failure": flag,
    }

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self._extract)
        self.define_event(
            "output",
            ["extracted_result", "format", "metadata", "confidence", "extraction_path"],
        )

    def register_extractor(
        self,
        name: str,
        fn: Callable[[Any, dict[str, Any]], Any],
        *,
        replace: bool = False,
    ) -> None:
        """Register ``fn`` as ``name`` for the process and use it in this routine.

        The configuration keeps the name only (``extractors``), so a flow loaded
        where ``name`` is registered finds the function again.
        """
        register_extractor(name, fn, replace=replace)
        names = list(self._setting("extractors"))
        if name not in names:
            self.set_config(extractors=[*names, name])

    def _extract(self, data: Any = MISSING, **kwargs: Any) -> None:
        value = input_value(data, kwargs, "data")
        if not isinstance(value, (str, dict, list)):
            raise ValueError(
                f"{type(self).__name__}: 'data' must be text, a dict or a list, got "
                f"{type(value).__name__}"
            )
        strategy = self._setting("strategy")
        found: list[tuple[str, Extraction]] = []
        for name, extractor in self._order(strategy):
            extraction = extractor(value)
            if extraction is not None:
                found.append((name, extraction))
                if strategy in ("first_match", "priority"):
                    break
        self.emit("output", **self._outcome(value, strategy, found))

    def _order(
        self, strategy: str
    ) -> list[tuple[str, Callable[[Any], Extraction | None]]]:
        order = [(name, self._custom(name)) for name in self._setting("extractors")]
        order += [(name, _text_only(fn)) for name, fn in BUILTIN.items()]
        order.append((_STRUCTURED, _structured))
        if strategy != "priority":
            return order
        by_name = dict(order)
        listed = self._setting("extractor_priority")
        unknown = [name for name in listed if name not in by_name]
        if unknown:
            raise ConfigurationError(
                f"{type(self).__name__}: config 'extractor_priority' names unknown "
                f"extractors {unknown}; known: {', '.join(by_name)}"
            )
        return [(n, by_name[n]) for n in listed] + [
            p for p in order if p[0] not in listed
        ]

    def _custom(self, name: str) -> Callable[[Any], Extraction | None]:
        fn = _custom.get(name)
        if fn is None:
            raise _custom.unknown(name, f"{type(self).__name__}: config 'extractors'")
        config = self.config()

        def run(value: Any) -> Extraction | None:
            try:
                answer = fn(value, config)
            except Exception as exc:  # user code: fail the call, naming the extractor
                raise ValueError(
                    f"{type(self).__name__}: extractor {name!r} raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            return _custom_result(name, answer)

        return run

    def _outcome(
        self, value: Any, strategy: str, found: list[tuple[str, Extraction]]
    ) -> dict[str, Any]:
        if not found:
            if not self._setting("return_original_on_failure"):
                raise ValueError(f"{type(self).__name__}: no extractor found a result")
            return {
                "extracted_result": value,
                "format": "text" if isinstance(value, str) else type(value).__name__,
                "metadata": {"extractor": None, "strategy": strategy},
                "confidence": 0.0,
                "extraction_path": [],
            }
        if strategy == "all":
            return {
                "extracted_result": [e.result for _, e in found],
                "format": "multi",
                "metadata": {
                    "strategy": strategy,
                    "extractions": [
                        {
                            "extractor": n,
                            "format": e.format,
                            "confidence": e.confidence,
                            "metadata": e.metadata,
                        }
                        for n, e in found
                    ],
                },
                "confidence": max(e.confidence for _, e in found),
                "extraction_path": [n for n, _ in found],
            }
        name, best = max(found, key=lambda pair: pair[1].confidence)
        return {
            "extracted_result": best.result,
            "format": best.format,
            "metadata": {**best.metadata, "extractor": name, "strategy": strategy},
            "confidence": best.confidence,
            "extraction_path": [name],
        }


def _text_only(
    fn: Callable[[str], Extraction | None],
) -> Callable[[Any], Extraction | None]:
    def run(value: Any) -> Extraction | None:
        return fn(value) if isinstance(value, str) else None

    return run


def _structured(value: Any) -> Extraction | None:
    if isinstance(value, (dict, list)):
        return Extraction(value, type(value).__name__, {}, 1.0)
    return None


def _custom_result(name: str, answer: Any) -> Extraction | None:
    if answer is None:
        return None
    if isinstance(answer, tuple) and len(answer) in (3, 4):
        result, kind, metadata, *rest = answer
        confidence = rest[0] if rest else 1.0
        if (
            isinstance(kind, str)
            and isinstance(metadata, dict)
            and isinstance(confidence, (int, float))
            and 0 <= confidence <= 1
        ):
            return Extraction(result, kind, dict(metadata), float(confidence))
    raise ValueError(
        f"ResultExtractor: extractor {name!r} returned {answer!r}; expected None or "
        "(result, format: str, metadata: dict[, confidence from 0 to 1])"
    )
