"""Pydantic validation errors as one line naming the field path and the reason.

``sites[2].conversion.lead_months: must be >= 0, got -3``. Paths use list indices
(``sites[2]``), the same style the instance's cross-field checks use (``optimizer.instance.checks``).
This module knows no instance class: callers pass the root model (``root=Instance``) so that
paths through unions and misspelled fields can be resolved.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from optimizer.errors import one_line

# ---------------------------------------------------------------- pydantic errors


def _num(x: Any) -> str:
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:g}"
    if isinstance(x, int):
        if abs(x) < 10**15:
            return str(x)
        return f"{'-' if x < 0 else ''}about 1e+{int((abs(x).bit_length() - 1) * math.log10(2))}"  # str() of a huge int is slow or refused
    return _short(x)


def _short(x: Any, limit: int = 60) -> str:
    if isinstance(x, dict):
        s = "a mapping"
    elif isinstance(x, list):
        s = "a list"
    elif isinstance(x, float) and math.isnan(x):
        s = "nan"
    elif isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**15:
        s = _num(x)
    else:
        s = repr(x)
    return s if len(s) <= limit else s[: limit - 3] + "..."


_BOUNDS = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"), "less_than": ("<", "lt"), "less_than_equal": ("<=", "le")}
_TYPE_WORDS = {
    "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "a string", "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def _reason(err: dict) -> str:
    typ, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if typ in _BOUNDS:
        op, key = _BOUNDS[typ]
        return f"must be {op} {_num(ctx.get(key))}, got {_num(value)}"
    if typ == "missing":
        return "required field missing"
    if typ == "finite_number":
        return f"must be a finite number, got {_num(value)}"
    if typ in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[typ]}, got {_short(value)}"
    if typ == "literal_error":
        return f"must be {ctx.get('expected')}, got {_short(value)}"
    if typ == "union_tag_invalid":
        return f"{ctx.get('discriminator', 'kind')} must be one of {ctx.get('expected_tags')}, got {_short(ctx.get('tag'))}"
    if typ == "union_tag_not_found":
        return f"field {ctx.get('discriminator', 'kind')} is required to tell which kind this is"
    if typ == "too_short":
        return f"must hold at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if typ == "too_long":
        return f"must hold at most {ctx.get('max_length')} item(s)"
    if typ == "string_too_short":
        return f"must be at least {ctx.get('min_length')} character(s) long"
    if typ == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if typ == "string_pattern_mismatch":
        return f"may contain only letters, digits, '_', '.' and '-', got {_short(value)}"
    if typ in ("value_error", "assertion_error"):
        msg = str(err.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix):]
        return msg
    return f"{err.get('msg', typ)}, got {_short(value)}"


def _unwrap(tp: Any) -> list[Any]:
    """The alternatives of a (possibly Annotated / Optional / Union) type."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        out: list[Any] = []
        for a in typing.get_args(tp):
            if a is not type(None):
                out.extend(_unwrap(a))
        return out
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _kind_tags(model: type[BaseModel]) -> tuple:
    f = model.model_fields.get("kind")
    return typing.get_args(f.annotation) if f is not None else ()


def _walk(root: type[BaseModel] | None, data: Any, loc: tuple) -> tuple[str, type[BaseModel] | None]:
    """Dotted path for ``loc`` (union tags dropped) and the model class holding its last field."""
    parts: list[str] = []
    tp: Any = root
    owner: type[BaseModel] | None = root if _is_model(root) else None
    for i, elem in enumerate(loc):
        last = i == len(loc) - 1
        alts = _unwrap(tp) if tp is not None else []
        if isinstance(elem, int):
            parts.append(f"[{elem}]")
            data = data[elem] if isinstance(data, list) and 0 <= elem < len(data) else None
            tp = next((typing.get_args(a)[0] for a in alts if typing.get_origin(a) is list and typing.get_args(a)), None)
            continue
        models = [a for a in alts if _is_model(a)]
        # a discriminated-union tag ('index'), or a pydantic internal step ('function-after[...]')
        tagged = [m for m in models if elem in _kind_tags(m)]
        known = (isinstance(data, dict) and elem in data) or any(elem in m.model_fields for m in models)
        internal = not known and (not last or any(c in str(elem) for c in "-[("))
        if tagged or internal:
            if tagged:
                tp = tagged[0]
            continue
        parts.append(("." if parts else "") + str(elem))
        model = next((m for m in models if elem in m.model_fields), models[0] if len(models) == 1 else None)
        owner = model
        if model is not None and elem in model.model_fields:
            tp = model.model_fields[elem].annotation
        else:
            dicts = [a for a in alts if typing.get_origin(a) is dict]
            tp = typing.get_args(dicts[0])[1] if dicts and typing.get_args(dicts[0]) else None
        data = data.get(elem) if isinstance(data, dict) else None
    return "".join(parts), owner


def _describe(err: dict, data: Any, root: type[BaseModel] | None) -> str:
    loc = tuple(err.get("loc", ()))
    path, owner = _walk(root, data, loc)
    reason = _reason(err)
    if err["type"] == "extra_forbidden":
        close = _suggest(err, data, root)
        reason = "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if not path:
        return reason
    # cross-reference checks already start with the path they concern
    return reason if reason.startswith(path + ":") or reason.startswith(path + ".") else f"{path}: {reason}"


def _suggest(err: dict, data: Any, root: type[BaseModel] | None) -> list[str]:
    """The model field closest to an unknown field's name, if any is close."""
    loc = tuple(err.get("loc", ()))
    _, owner = _walk(root, data, loc)
    if owner is None or not loc:
        return []
    return difflib.get_close_matches(str(loc[-1]), list(owner.model_fields), n=1, cutoff=0.6)


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def format_validation_error(e: ValidationError, data: dict | None = None, root: type[BaseModel] | None = None) -> str:
    """One line: the first error with its field path, and how many more there are."""
    described = [(_walk(root, data, tuple(err.get("loc", ())))[0], err) for err in e.errors()]
    # a plain union reports one error per alternative: keep the deepest, drop bare type mismatches
    kept = [(p, err) for p, err in described
            if not (err["type"] in _TYPE_WORDS and any(q != p and q.startswith(p) for q, _ in described))]
    kept = kept or described
    # a misspelled field shows up twice: unknown 'pue_hcp' and missing 'pue_hpc'; report it once, as the misspelling
    suggested = {".".join(filter(None, (_parent(p), s))) for p, err in kept if err["type"] == "extra_forbidden"
                 for s in _suggest(err, data, root)}
    kept = [(p, err) for p, err in kept if not (err["type"] == "missing" and p in suggested)]
    kept.sort(key=lambda pe: pe[1]["type"] != "extra_forbidden")
    messages: list[str] = []
    seen: set[str] = set()
    for path, err in kept:
        text = _describe(err, data, root)
        if not path:  # the instance's cross-reference validator joins several problems with '; '
            messages.extend(text.split("; "))
        elif path not in seen:
            seen.add(path)
            messages.append(text)
    if not messages:
        return one_line(str(e))
    first = messages[0]
    more = len(messages) - 1
    return one_line(first + (f" (+{more} more error{'s' if more > 1 else ''})" if more else ""))
