"""Condition expressions: a small, safe part of Python, parsed with :mod:`ast`.

A condition string is parsed once with ``ast.parse(text, mode="eval")``; every node
is checked against a whitelist, and evaluation walks the tree itself. Nothing is
compiled and ``eval`` is never called, so an expression can only compute a value
from the names it is given.

Allowed:

* literals: strings, numbers, ``True``, ``False``, ``None``, lists and tuples;
* names given by the caller (a router gives ``data``, ``config``, ``stats`` and the
  keys of ``data`` when it is a dict);
* ``x[key]`` on dicts, lists, tuples and strings; ``x.name`` (a key of a dict, else
  an attribute whose name does not start with ``_``);
* ``x.get(key)`` and ``x.get(key, default)`` on a dict: the only call-shaped form,
  read as a lookup with :meth:`dict.get` itself (never a method of the data);
* ``and``, ``or``, ``not``, ``a if c else b``, comparisons (``==``, ``!=``, ``<``,
  ``<=``, ``>``, ``>=``, ``in``, ``not in``, ``is``, ``is not``), unary ``-`` and
  ``+``, and ``+ - * / // %`` on numbers (``+`` also joins two strings, lists or
  tuples).

Refused, with a :class:`~routilux.ConfigurationError` saying why: every other call
(``__import__('os')``), names and attributes starting with ``_`` (``().__class__``),
lambdas, comprehensions and generator expressions, f-strings, ``:=``, starred
expressions, slices, dict and set literals, ``**`` and bitwise operators, and
anything that is not a single expression (``import os`` is a statement).
Expressions longer than :data:`MAX_LENGTH` characters or nested deeper than
:data:`MAX_DEPTH` levels are refused too: 10,000 nested operators give a clear
error, never a ``RecursionError``.

Evaluation errors (an unknown name, a missing key, comparing a string with a
number) raise ``ValueError`` with a message naming the problem.
"""

from __future__ import annotations

import ast
import functools
import operator
import reprlib
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "compile_condition", "evaluate"]

#: The longest expression accepted, in characters.
MAX_LENGTH = 100_000
#: The deepest nesting of an expression's syntax tree.
MAX_DEPTH = 50

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_ALLOWED = frozenset(
    {
        ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.BinOp, ast.Compare,
        ast.Name, ast.Load, ast.Constant, ast.Subscript, ast.Attribute, ast.List,
        ast.Tuple, ast.IfExp, ast.Call,
        *_BINARY, *_COMPARE, *_UNARY,
    }
)  # fmt: skip
_WHY_REFUSED: dict[type, str] = {
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.Starred: "starred expressions are not allowed",
    ast.Slice: "slices are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed",
    ast.Pow: "the ** operator is not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}
_CONSTANTS = (str, int, float, bool, type(None))
_NUMBERS = (int, float)
_JOINABLE = (str, list, tuple)
_INDEXABLE = (dict, list, tuple, str)


@functools.lru_cache(maxsize=512)
def compile_condition(text: str) -> ast.expr:
    """Parse and check a condition; the tree :func:`evaluate` runs.

    Raises:
        ConfigurationError: For text that is not an expression this module allows;
            the message says what was refused.
    """
    if not isinstance(text, str):
        raise ConfigurationError(
            f"a condition expression must be a string, got {type(text).__name__}"
        )
    where = f"condition {_short.repr(text)}"
    if len(text) > MAX_LENGTH:
        raise ConfigurationError(
            f"{where}: longer than {MAX_LENGTH} characters ({len(text)})"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (RecursionError, MemoryError):
        raise ConfigurationError(
            f"{where}: nested too deeply to parse (at most {MAX_DEPTH} levels)"
        ) from None
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL character
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise ConfigurationError(
            f"{where}: not a valid expression ({message}); a condition is one "
            "expression, never a statement"
        ) from None
    _check(tree.body, where)
    return tree.body


def _check(root: ast.expr, where: str) -> None:
    """Refuse nodes off the whitelist and trees deeper than MAX_DEPTH (no recursion)."""
    pending: list[tuple[ast.AST, int]] = [(root, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise ConfigurationError(
                f"{where}: nested more than {MAX_DEPTH} levels deep"
            )
        problem = _problem(node)
        if problem is not None:
            raise ConfigurationError(f"{where}: {problem}")
        pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _problem(node: ast.AST) -> str | None:
    """Why ``node`` is refused, or None when it is allowed."""
    kind = type(node)
    if kind not in _ALLOWED:
        return _WHY_REFUSED.get(kind, f"{kind.__name__} is not allowed")
    if isinstance(node, ast.Call):
        return _call_problem(node)
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        return f"names starting with '_' are not allowed ({node.id})"
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        return f"attributes starting with '_' are not allowed (.{node.attr})"
    if isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANTS):
        return f"{type(node.value).__name__} literals are not allowed"
    return None


def _call_problem(node: ast.Call) -> str | None:
    func = node.func
    is_get = isinstance(func, ast.Attribute) and func.attr == "get"
    if is_get and not node.keywords and 1 <= len(node.args) <= 2:
        return None
    if isinstance(func, ast.Lambda):
        return "lambdas are not allowed (nor calls)"
    if isinstance(func, ast.Name):
        called = f"{func.id}(...)"
    elif isinstance(func, ast.Attribute):
        called = f".{func.attr}(...)"
    else:
        called = f"a {type(func).__name__.lower()}"
    return (
        f"calls are not allowed ({called}); the one call-shaped form is the "
        "lookup mapping.get(key) or mapping.get(key, default)"
    )


def evaluate(tree: ast.expr, names: Mapping[str, Any]) -> Any:
    """The value of a tree from :func:`compile_condition`, given ``names``.

    Raises:
        ValueError: When the expression cannot be computed for these names (an
            unknown name, a missing key, unsupported operand types...).
    """
    return _eval(tree, names)


def _eval(node: ast.AST, names: Mapping[str, Any]) -> Any:
    return _EVALUATORS[type(node)](node, names)


def _constant(node: Any, names: Mapping[str, Any]) -> Any:
    return node.value


def _name(node: Any, names: Mapping[str, Any]) -> Any:
    try:
        return names[node.id]
    except KeyError:
        raise ValueError(f"name {node.id!r} is not defined") from None


def _bool_op(node: Any, names: Mapping[str, Any]) -> Any:
    is_and = isinstance(node.op, ast.And)
    value: Any = None
    for operand in node.values:
        value = _eval(operand, names)
        if bool(value) is not is_and:
            return value
    return value


def _unary(node: Any, names: Mapping[str, Any]) -> Any:
    value = _eval(node.operand, names)
    if not isinstance(node.op, ast.Not) and not isinstance(value, _NUMBERS):
        raise ValueError(f"unary minus or plus needs a number, got {_kind(value)}")
    return _UNARY[type(node.op)](value)


def _binary(node: Any, names: Mapping[str, Any]) -> Any:
    left, right = _eval(node.left, names), _eval(node.right, names)
    numbers = isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS)
    joins = (
        isinstance(node.op, ast.Add)
        and isinstance(left, _JOINABLE)
        and type(left) is type(right)
    )
    if not (numbers or joins):
        raise ValueError(
            f"cannot apply {type(node.op).__name__} to {_kind(left)} and {_kind(right)}"
        )
    try:
        return _BINARY[type(node.op)](left, right)
    except ArithmeticError as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None


def _compare(node: Any, names: Mapping[str, Any]) -> bool:
    left = _eval(node.left, names)
    for op, operand in zip(node.ops, node.comparators, strict=True):
        right = _eval(operand, names)
        try:
            holds = _COMPARE[type(op)](left, right)
        except TypeError:
            raise ValueError(
                f"cannot compare {_kind(left)} and {_kind(right)} with "
                f"{type(op).__name__}"
            ) from None
        if not holds:
            return False
        left = right
    return True


def _subscript(node: Any, names: Mapping[str, Any]) -> Any:
    container, key = _eval(node.value, names), _eval(node.slice, names)
    base = next((kind for kind in _INDEXABLE if isinstance(container, kind)), None)
    if base is None:
        raise ValueError(f"cannot index {_kind(container)}")
    try:  # the base type's own method: an override in a subclass is not called
        return base.__getitem__(container, key)
    except (KeyError, IndexError):
        raise ValueError(f"no item {_short.repr(key)} in {_kind(container)}") from None
    except TypeError:
        raise ValueError(f"cannot index {_kind(container)} with {_kind(key)}") from None


def _attribute(node: Any, names: Mapping[str, Any]) -> Any:
    target = _eval(node.value, names)
    if isinstance(target, dict):
        if not dict.__contains__(target, node.attr):
            raise ValueError(f"no key {node.attr!r} in dict")
        return dict.__getitem__(target, node.attr)
    try:
        return getattr(target, node.attr)
    except AttributeError:
        raise ValueError(f"{_kind(target)} has no attribute {node.attr!r}") from None


def _lookup(node: Any, names: Mapping[str, Any]) -> Any:
    target = _eval(node.func.value, names)
    if not isinstance(target, dict):
        raise ValueError(f".get() lookups need a dict, got {_kind(target)}")
    key = _eval(node.args[0], names)
    default = _eval(node.args[1], names) if len(node.args) > 1 else None
    try:
        return dict.get(target, key, default)  # dict's own get, never an override
    except TypeError:
        raise ValueError(f"cannot look up {_kind(key)} in a dict") from None


def _sequence(node: Any, names: Mapping[str, Any]) -> Any:
    items = [_eval(item, names) for item in node.elts]
    return items if isinstance(node, ast.List) else tuple(items)


def _if_else(node: Any, names: Mapping[str, Any]) -> Any:
    chosen = node.body if _eval(node.test, names) else node.orelse
    return _eval(chosen, names)


def _kind(value: Any) -> str:
    return type(value).__name__


_EVALUATORS: dict[type, Callable[[Any, Mapping[str, Any]], Any]] = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.BoolOp: _bool_op,
    ast.UnaryOp: _unary,
    ast.BinOp: _binary,
    ast.Compare: _compare,
    ast.Subscript: _subscript,
    ast.Attribute: _attribute,
    ast.Call: _lookup,
    ast.List: _sequence,
    ast.Tuple: _sequence,
    ast.IfExp: _if_else,
}
