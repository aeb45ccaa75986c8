"""Dotted-path overrides of an instance, for sensitivities and sweeps.

Paths: ``horizon.discount_rate``, ``sites[tx-1].conversion.capex_usd_per_mw`` (list items by
``id``/``name`` or by integer index), ``scenarios[*].btc_price_usd.scale`` (``*`` = every item
or every mapping key), ``scenarios[base].power_price_usd_per_mwh.ercot``.

Values: an absolute value, or ``{"mul": x}``, ``{"add": x}`` (numbers), ``{"shift_months": n}``
(``YYYY-MM`` fields). On a time series, ``mul`` multiplies its ``scale``, ``add`` shifts a
constant or points series, and a bare number replaces it by a constant.

The instance is dumped with only the fields the user set (derived fields such as an ASIC's
efficiency are recomputed), edited, and validated again with the same data folder (``series.DataFolder``), so
the result obeys every rule of the schema. The original instance is never changed.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from pydantic import BaseModel, ValidationError

from optimizer.errors import InputError
from optimizer.instance.messages import format_validation_error
from optimizer.instance.series import Series
from optimizer.kernel.timeline import month_label, month_ordinal

_MODES = ("mul", "add", "shift_months")


def parse_path(path: str) -> list[tuple[str, str]]:
    """``'sites[tx-1].conversion.x'`` -> [('field','sites'), ('item','tx-1'), ('field','conversion'), ('field','x')]."""
    tokens: list[tuple[str, str]] = []
    i, n, buf = 0, len(path), ""
    while i < n:
        c = path[i]
        if c == ".":
            if buf:
                tokens.append(("field", buf))
            elif not tokens or tokens[-1][0] != "item":
                raise InputError(f"override path {path!r}: empty name at position {i}")
            buf = ""
        elif c == "[":
            if buf:
                tokens.append(("field", buf))
                buf = ""
            j = path.find("]", i)
            if j < 0:
                raise InputError(f"override path {path!r}: '[' without ']'")
            key = path[i + 1:j].strip()
            if not key:
                raise InputError(f"override path {path!r}: empty [] (give an id, an index or *)")
            tokens.append(("item", key))
            i = j
        elif c == "]":
            raise InputError(f"override path {path!r}: ']' without '['")
        else:
            buf += c
        i += 1
    if buf:
        tokens.append(("field", buf.strip()))
    if not tokens:
        raise InputError("override path is empty")
    return tokens


def _fmt(tokens: list[tuple[str, str]]) -> str:
    out = ""
    for kind, name in tokens:
        out += f"[{name}]" if kind == "item" else (("." if out else "") + name)
    return out


def _dump(v: Any) -> Any:
    """What the user would have written for ``v`` (only fields that were set)."""
    if isinstance(v, BaseModel):
        return v.model_dump(mode="python", exclude_unset=True)
    if isinstance(v, list):
        return [_dump(x) for x in v]
    if isinstance(v, dict):
        return {k: _dump(x) for k, x in v.items()}
    return v


def _targets(live: Any, raw: Any, tokens: list[tuple[str, str]], done: list[tuple[str, str]], wild: bool = False):
    """Yield (live parent, raw parent dict/list, key, path text) for every item the path selects.
    Under a ``*``, items whose sub-object is not set (e.g. a site without a conversion) are skipped."""
    kind, name = tokens[0]
    where = _fmt(done) or "the instance"
    rest = tokens[1:]
    if kind == "field" and isinstance(live, BaseModel):
        fields = type(live).model_fields
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(f"override {_fmt(done + tokens)}: unknown field {name!r} under {where!r}{hint}")
        if not isinstance(raw, dict):
            raise InputError(f"override {_fmt(done + tokens)}: {where!r} is not a mapping")
        keys = [(name, getattr(live, name))]
    elif isinstance(live, dict) and not isinstance(live, BaseModel):
        if name == "*":
            keys = list(live.items())
        elif name in live:
            keys = [(name, live[name])]
        else:
            key = _dict_key(live, name)
            if key is None:
                raise InputError(f"override {_fmt(done + tokens)}: no key {name!r} in {where!r} (keys: {', '.join(map(str, live)) or 'none'})")
            keys = [(key, live[key])]
    elif kind == "item" and isinstance(live, list):
        if name == "*":
            keys = list(enumerate(live))
        else:
            idx = _list_index(live, name)
            if idx is None:
                raise InputError(f"override {_fmt(done + tokens)}: no item with id {name!r} in {where!r}")
            keys = [(idx, live[idx])]
    elif kind == "item":
        raise InputError(f"override {_fmt(done + tokens)}: {where!r} is not a list or mapping, cannot select [{name}]")
    else:
        raise InputError(f"override {_fmt(done + tokens)}: {where!r} has no fields (it is {_kind(live)})")
    for key, child in keys:
        step = done + [(kind, name if name != "*" else _label(key, child))]
        if not rest:
            yield live, raw, key, _fmt(step)
            continue
        if child is None and (wild or name == "*"):
            continue
        if child is None:
            raise InputError(f"override {_fmt(done + tokens)}: {_fmt(step)!r} is not set, so it has no {rest[0][1]!r}")
        if isinstance(raw, dict) and key not in raw:
            raw[key] = _dump(child)  # a default the user did not write: materialise it
        yield from _targets(child, raw[key], rest, step, wild or name == "*")


def _label(key: Any, child: Any) -> str:
    ident = getattr(child, "id", None) or getattr(child, "name", None)
    return str(ident) if isinstance(key, int) and ident else str(key)


def _kind(v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return "a number"
    return {str: "the text", bool: "the boolean", list: "a list", dict: "a mapping"}.get(type(v), type(v).__name__)


def _list_index(items: list, name: str) -> int | None:
    for i, it in enumerate(items):
        ident = getattr(it, "id", None)
        ident = ident if ident is not None else getattr(it, "name", None)
        if ident is not None and str(ident) == name:
            return i
    try:
        idx = int(name)
    except ValueError:
        return None
    if -len(items) <= idx < len(items):
        return idx % len(items)
    return None


def _dict_key(d: dict, name: str) -> Any:
    for k in d:
        if str(k) == name:
            return k
    return None


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _new_value(current: Any, spec: Any, where: str) -> Any:
    mode = next(iter(spec)) if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in _MODES else None
    if mode is None:
        if isinstance(current, Series) and _is_num(spec):
            return {"value": spec}
        return spec
    arg = spec[mode]
    if mode == "shift_months":
        if not isinstance(arg, int) or isinstance(arg, bool):
            raise InputError(f"override {where}: shift_months needs a whole number of months, got {arg!r}")
        if not isinstance(current, str):
            raise InputError(f"override {where}: shift_months applies to YYYY-MM fields, but the value is {_kind(current)} {current!r}")
        return month_label(month_ordinal(current) + arg)
    if not _is_num(arg) or not math.isfinite(arg):
        raise InputError(f"override {where}: {mode} needs a finite number, got {arg!r}")
    if isinstance(current, Series):
        return _series_value(current, mode, arg, where)
    if not _is_num(current):
        raise InputError(f"override {where}: {mode} needs a number, but the field is not numeric (it holds {_kind(current)} {current!r})")
    out = current * arg if mode == "mul" else current + arg
    if isinstance(current, int) and abs(out - round(out)) < 1e-9:
        out = int(round(out))
    return out


def _series_value(s: Series, mode: str, arg: float, where: str) -> dict:
    raw = s.model_dump(mode="python", exclude_unset=True)
    if mode == "mul":
        raw["scale"] = s.scale * arg
        return raw
    if s.scale != 1.0:
        raise InputError(f"override {where}: add on a scaled series is ambiguous; set its scale or value instead")
    if s.value is not None:
        raw["value"] = s.value + arg
    elif s.points is not None:
        raw["points"] = {k: v + arg for k, v in s.points.items()}
    else:
        raise InputError(f"override {where}: add applies to constant or points series only (use mul for csv/generator series)")
    return raw


def _looks_like_series(parent: Any, key: Any) -> bool:
    v = getattr(parent, key) if isinstance(parent, BaseModel) else parent[key]
    return isinstance(v, Series)


def apply_overrides(instance, overrides: dict[str, Any]):
    """A validated copy of ``instance`` with each ``{dotted_path: value}`` applied in order."""
    cls = type(instance)
    folder = instance.data_folder
    raw = instance.model_dump(mode="python", exclude_unset=True)
    edited: set[tuple[int, Any]] = set()
    for path, spec in overrides.items():
        tokens = parse_path(str(path))
        hits = list(_targets(instance, raw, tokens, []))
        if not hits:
            raise InputError(f"override {path}: matches nothing")
        for live_parent, raw_parent, key, where in hits:
            current = getattr(live_parent, key) if isinstance(live_parent, BaseModel) else live_parent[key]
            if (id(raw_parent), key) in edited:  # a second override of the same field builds on the first
                current = raw_parent[key]
                if isinstance(current, dict) and _looks_like_series(live_parent, key):
                    current = Series.model_validate(current, context={"data_folder": folder})
            raw_parent[key] = _new_value(current, spec, where)
            edited.add((id(raw_parent), key))
    try:
        return cls.validate_in_folder(raw, folder)
    except ValidationError as e:
        raise InputError(f"after overrides {', '.join(map(str, overrides))}: {format_validation_error(e, raw, cls)}") from None
