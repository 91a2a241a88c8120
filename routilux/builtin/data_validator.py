"""DataValidator: check records against rules and pydantic models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ValidationError

from ..checks import flag
from ..exceptions import ConfigurationError
from ._base import MISSING, BuiltinRoutine, Check, NamedRegistry, input_value
from ._models import find_model, register_model

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DataValidator", "register_validator"]

Error = dict[str, Any]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_validators = NamedRegistry(
    "validator",
    {
        "not_empty": lambda v: v is not None and v not in ("", [], {}),
        "is_string": lambda v: isinstance(v, str),
        "is_int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "is_float": lambda v: isinstance(v, float),
        "is_number": _number,
        "is_bool": lambda v: isinstance(v, bool),
        "is_dict": lambda v: isinstance(v, dict),
        "is_list": lambda v: isinstance(v, list),
        "is_positive": lambda v: _number(v) and v > 0,
        "is_non_negative": lambda v: _number(v) and v >= 0,
    },
)


def register_validator(
    name: str, fn: Callable[[Any], Any], *, replace: bool = False
) -> None:
    """Register ``fn`` as the validator ``name`` for the whole process.

    ``fn(value)`` returns a bool, or ``(ok, message)``. Thread-safe.

    Raises:
        DuplicateNameError: When ``name`` is built in, or registered to another
            function and ``replace`` is false.
        ConfigurationError: For an empty name or a ``fn`` that is not callable.
    """
    _validators.register(name, fn, replace=replace)


def _rule(value: Any, what: str) -> Any:
    """A rule as configuration keeps it: names, model references, callables."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, type) and issubclass(value, BaseModel):
        return {"model": register_model(value)}
    if isinstance(value, dict) and set(value) == {"model"}:
        if not isinstance(value["model"], str):
            raise ConfigurationError(f"{what}: a model is named by a string")
        return dict(value)
    if isinstance(value, (list, tuple)):
        return [_rule(item, f"{what}[{i}]") for i, item in enumerate(value)]
    if callable(value):
        return value
    raise ConfigurationError(
        f"{what} must be a validator name, a pydantic model, {{'model': name}}, a "
        f"callable or a list of those, got {value!r}"
    )


def _check_rules(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"{what} must be a dict of field -> rule")
    return {
        str(field): _rule(rule, f"{what}[{field!r}]") for field, rule in value.items()
    }


def _check_model(value: Any, what: str) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    if isinstance(value, type) and issubclass(value, BaseModel):
        return register_model(value)
    raise ConfigurationError(
        f"{what} must be None, a pydantic model class or its registered name, "
        f"got {value!r}"
    )


def _check_fields(value: Any, what: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(f, str) for f in value
    ):
        raise ConfigurationError(f"{what} must be a list of field names, got {value!r}")
    return list(value)


class DataValidator(BuiltinRoutine):
    """Validates records; valid ones go out on ``valid``, the others on ``invalid``.

    Slot ``input`` (the record as ``data`` or the payload's only value, else the
    whole payload); events ``valid`` (``validated_data``) and ``invalid``
    (``errors``, ``data``: the input as it came).

    Configuration (``set_config``):

    * ``rules`` ({}): field -> rule. A rule is a validator name (built in:
      ``not_empty``, ``is_string``, ``is_int``, ``is_float``, ``is_number``,
      ``is_bool``, ``is_dict``, ``is_list``, ``is_positive``,
      ``is_non_negative``; or one from :meth:`register_validator`), a pydantic
      model class (validates the field's value and puts the model's JSON dump in
      its place), a callable returning a bool or ``(ok, message)``, or a list of
      rules that must all pass. Rules run on fields present in the record (and
      not already reported by ``model`` or ``allow_extra_fields``).
    * ``model`` (None): a pydantic model class the whole record must satisfy;
      ``validated_data`` is then its JSON-mode dump (and the rules see that).
    * ``required_fields`` ([]): fields that must be present.
    * ``allow_extra_fields`` (True): when False, fields outside ``rules``,
      ``required_fields`` and the model's fields are errors.
    * ``strict_mode`` (False): stop at the first error.

    Models are kept by name (``module:QualifiedName``) through the allow-list of
    :func:`register_model`; passing a class to ``set_config`` registers it. A
    loaded flow can name only registered models: nothing is imported.

    ``errors`` are dicts as pydantic reports them: ``loc`` (a list: field, then
    the path inside it), ``msg`` and ``type`` (``missing``,
    ``extra_forbidden``, ``dict_type``, the validator's name, or pydantic's own
    types). A validator that raises counts as a failure (type
    ``validator_error``). An unknown validator or model name raises
    :class:`~routilux.ConfigurationError` naming the rule's key.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "rules": {},
        "model": None,
        "required_fields": [],
        "allow_extra_fields": True,
        "strict_mode": False,
    }
    checks: ClassVar[dict[str, Check]] = {
        "rules": _check_rules,
        "model": _check_model,
        "required_fields": _check_fields,
        "allow_extra_fields": flag,
        "strict_mode": flag,
    }
    callable_hints: ClassVar[dict[str, str]] = {
        "rules": "register it with register_validator(name, fn) and use the name"
    }

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self._validate)
        self.define_event("valid", ["validated_data"])
        self.define_event("invalid", ["errors", "data"])

    def register_validator(
        self, name: str, fn: Callable[[Any], Any], *, replace: bool = False
    ) -> None:
        """Register ``fn`` as ``name`` (for the whole process; see the module's)."""
        register_validator(name, fn, replace=replace)

    def _validate(self, data: Any = MISSING, **kwargs: Any) -> None:
        record = input_value(data, kwargs, "data")
        errors, validated = _Check(self).run(record)
        if errors:
            self.emit("invalid", errors=errors, data=record)
        else:
            self.emit("valid", validated_data=validated)


class _Check:
    """One validation of one record."""

    def __init__(self, owner: DataValidator) -> None:
        self.name = type(owner).__name__
        self.rules: dict[str, Any] = owner._setting("rules")
        self.model: str | None = owner._setting("model")
        self.required: list[str] = owner._setting("required_fields")
        self.extra: bool = owner._setting("allow_extra_fields")
        self.strict: bool = owner._setting("strict_mode")
        self.errors: list[Error] = []

    def run(self, record: Any) -> tuple[list[Error], Any]:
        value = record
        if self.model is not None:
            model = find_model(self.model, f"{self.name}: config 'model'")
            value = self._model(model, value, [])
        checks_fields = self.rules or self.required or not self.extra
        if checks_fields and not (self.strict and self.errors):
            value = self._fields(value)
        return (self.errors[:1] if self.strict else self.errors), value

    def _fields(self, value: Any) -> Any:
        if not isinstance(value, dict):
            self._fail([], "Input should be a valid dictionary", "dict_type")
            return value
        value = dict(value)
        for field in self.required:
            if field not in value:
                self._fail([field], "Field required", "missing")
        if not self.extra:
            known = {*self.rules, *self.required, *self._model_fields()}
            for field in value:
                if field not in known:
                    self._fail(
                        [field], "Extra inputs are not permitted", "extra_forbidden"
                    )
        reported = {error["loc"][0] for error in self.errors if error["loc"]}
        for field, rule in self.rules.items():
            if self.strict and self.errors:
                break
            if field in value and field not in reported:
                value[field] = self._rule(field, rule, value[field])
        return value

    def _model_fields(self) -> list[str]:
        if self.model is None:
            return []
        return list(find_model(self.model, f"{self.name}: config 'model'").model_fields)

    def _rule(self, field: str, rule: Any, value: Any) -> Any:
        where = f"{self.name}: config 'rules.{field}'"
        if isinstance(rule, list):
            for item in rule:
                before = len(self.errors)
                value = self._rule(field, item, value)
                if len(self.errors) > before:
                    break
            return value
        if isinstance(rule, dict):
            return self._model(find_model(rule["model"], where), value, [field])
        if isinstance(rule, str):
            fn = _validators.get(rule)
            if fn is None:
                raise _validators.unknown(rule, where)
            self._call(field, rule, fn, value)
            return value
        self._call(field, getattr(rule, "__name__", "custom"), rule, value)
        return value

    def _call(
        self, field: str, name: str, fn: Callable[[Any], Any], value: Any
    ) -> None:
        try:
            result = fn(value)
        except Exception as exc:  # noqa: BLE001 - a failing validator fails the check
            self._fail([field], f"{type(exc).__name__}: {exc}", "validator_error")
            return
        message = None
        if isinstance(result, tuple) and len(result) == 2:
            result, message = result
        if not result:
            self._fail([field], str(message or f"failed the {name!r} check"), name)

    def _model(self, model: type[BaseModel], value: Any, loc: list[Any]) -> Any:
        try:
            return model.model_validate(value).model_dump(mode="json")
        except ValidationError as exc:
            for error in exc.errors():
                self._fail([*loc, *error["loc"]], error["msg"], error["type"])
            return value

    def _fail(self, loc: list[Any], msg: str, kind: str) -> None:
        self.errors.append({"loc": loc, "msg": msg, "type": kind})
