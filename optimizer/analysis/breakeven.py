"""Breakevens: the value of one parameter at which the NPV crosses a level or a decision flips.

Targets (strings, also used by the CLI):

- ``npv`` or ``npv=VALUE``: the NPV (USD) crosses VALUE (default 0). Solved by the Illinois
  variant of regula falsi, each step kept at least tol/2 inside the bracket so the bracket
  always shrinks (the NPV of a MILP is piecewise linear in most parameters, where this is
  much faster than bisection).
- ``converts:SITE`` (or ``convert:SITE``): the plan converts any blocks at SITE (yes/no) flips. Bisection.
- ``signed:LEASE`` (or ``lease:LEASE``): the plan signs LEASE flips. Bisection.

The search stops when the bracket is at most ``tol = max(abs_tol, rel_tol * max(|lo|, |hi|))``
wide, so the true crossing lies within ``tol`` of the returned value. The MILP's own gap
limits how meaningful that precision is: a decision near its breakeven may flip back and forth
within the gap. Every solve re-uses one persistent model when the solver has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from optimizer.analysis.digest import param_label
from optimizer.analysis.sweep import Param, make_job, point_id, run_point
from optimizer.constants import Reporter, reporter
from optimizer.errors import InputError
from optimizer.instance.overrides import apply_overrides


class BracketError(InputError):
    """The target does not change over [lo, hi]."""


@dataclass
class Breakeven:
    path: str
    target: str
    value: float                      # parameter value at the crossing / flip
    bracket: tuple[float, float]      # final interval known to hold it
    n_solves: int
    tolerance: float                  # |value - crossing| <= tolerance when converged
    converged: bool
    kind: str = "value"               # how the parameter applies: value | mul | add
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(self) -> str:
        a, b = self.bracket
        return (f"{self.path}{'' if self.kind == 'value' else f' ({self.kind})'} = {self.value:.10g} for {self.target} "
                f"(bracket [{a:.10g}, {b:.10g}], tolerance {self.tolerance:.3g}, {self.n_solves} solves"
                f"{'' if self.converged else ', NOT converged: max_solves reached'})")

    def sentence(self) -> str:
        """The breakeven in words: '<label> = <value> is where <target>' (the CLI's first line)."""
        label = param_label(self.path + ("" if self.kind == "value" else f":{self.kind}"))
        kind, name, level = _target_words(self.target)
        what = {"npv": f"the NPV crosses {level / 1e6:,.2f} M$", "converts": f"the plan starts converting at site {name}",
                "signed": f"the plan signs lease {name}"}[kind]
        return f"{label} = {self.value:.6g}: {what}" + ("" if self.converged else " (not converged: max_solves reached)")


_ALIASES = {"convert": "converts", "lease": "signed", "sign": "signed"}


def _target_words(target: str) -> tuple[str, str, float]:
    """(kind, name, level) of a target string, without an instance (for words only)."""
    t = str(target).strip()
    if t.startswith("npv"):
        _, _, v = t.partition("=")
        try:
            return "npv", "", float(v) if v else 0.0
        except ValueError:
            return "npv", "", 0.0
    k, _, name = t.partition(":")
    return _ALIASES.get(k, k) if _ALIASES.get(k, k) in ("converts", "signed") else "npv", name, 0.0


def parse_target(target: str, instance) -> tuple[str, str, float]:
    """``npv[=VALUE]`` | ``converts:SITE`` | ``signed:LEASE`` -> (kind, name, level)."""
    t = str(target).strip()
    if t == "npv" or t.startswith("npv="):
        try:
            level = float(t[4:]) if "=" in t else 0.0
        except ValueError:
            raise InputError(f"breakeven target {t!r}: expected npv=NUMBER (USD)") from None
        return "npv", "", level
    kind, _, name = t.partition(":")
    kind = _ALIASES.get(kind, kind)
    if kind == "converts":
        ids = [s.id for s in instance.sites]
        if name not in ids:
            raise InputError(f"breakeven target {t!r}: unknown site {name!r} (sites: {', '.join(ids)})")
        if instance.site_by_id[name].conversion is None:
            raise InputError(f"breakeven target {t!r}: site {name!r} has no conversion option")
        return kind, name, 0.0
    if kind == "signed":
        ids = [l.id for l in instance.leases]
        if name not in ids:
            raise InputError(f"breakeven target {t!r}: unknown lease {name!r} (leases: {', '.join(ids) or 'none'})")
        return kind, name, 0.0
    raise InputError(f"breakeven target {t!r}: expected npv, npv=VALUE, converts:SITE or signed:LEASE")


def breakeven(instance, path: str, lo: float, hi: float, *, target: str = "npv", kind: str = "value",
              abs_tol: float | None = None, rel_tol: float = 1e-4, max_solves: int = 40, solver: Any = None,
              persistent: bool = True, progress: Reporter | None = None, **solve_options) -> Breakeven:
    """Find the value of ``path`` in [lo, hi] where ``target`` crosses / flips.

    ``kind``: ``value`` (lo, hi are values of the field), ``mul`` (multipliers of it) or
    ``add`` (amounts added to it). ``solver`` as in :func:`optimizer.sweep.sweep`.
    Raises :class:`BracketError` (one line) if the target does not change between lo and hi.
    ``progress`` hears of each solve (at most ``max_solves``) with the value tried.
    """
    if kind not in ("value", "mul", "add"):
        raise InputError(f"breakeven: kind must be value, mul or add, got {kind!r}")
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InputError(f"breakeven: need finite lo < hi, got lo={lo:g}, hi={hi:g}")
    tol = max(abs_tol or 0.0, rel_tol * max(abs(lo), abs(hi)))
    if tol <= 0:
        raise InputError("breakeven: the tolerance is zero; give abs_tol > 0 or rel_tol > 0")
    if max_solves < 2:
        raise InputError(f"breakeven: max_solves must be >= 2 (the two ends), got {max_solves}")
    tkind, name, level = parse_target(target, instance)
    param = Param(path, (lo, hi), kind)
    for x in (lo, hi):
        apply_overrides(instance, {path: param.override(x)})  # a bad path or value fails before any solve

    job = make_job(instance, solver, persistent, solve_options)
    state: dict = {}
    rows: list[dict] = []
    rep = reporter(progress)
    rep.start(f"breakeven of {path}", total=max_solves)

    def evaluate(x: float) -> float:
        rep.advance(0, label=f"breakeven of {path}: solve {len(rows) + 1} at {x:.6g}")
        row = run_point(job, state, point_id({param.column: x}), {path: param.override(x)})
        rep.advance(1)
        npv = row.get("npv_usd")
        if row.get("error") or npv is None or (isinstance(npv, float) and math.isnan(npv)):
            raise RuntimeError(f"breakeven: the solve at {param.column}={x:.10g} failed: "
                               f"{row.get('error') or 'status ' + str(row.get('status'))}")
        if tkind == "npv":
            g = float(npv) - level
        elif tkind == "converts":
            g = 1.0 if (row.get(f"converted_mw_{name}") or 0.0) > 0 else 0.0
        else:
            g = 1.0 if name in str(row.get("leases_signed") or "").split(";") else 0.0
        rows.append({"step": len(rows), param.column: x, "g": g, **{k: v for k, v in row.items() if k != "point_id"}})
        return g

    try:
        what = {"npv": f"NPV - {level:,.0f} USD", "converts": f"site {name} converts", "signed": f"lease {name} signed"}[tkind]
        mark = {"value": "", "mul": "x", "add": "add:"}[kind]
        g_lo, g_hi = evaluate(lo), evaluate(hi)
        if tkind == "npv":
            if g_lo * g_hi > 0:
                raise BracketError(f"breakeven: {what} has the same sign at both ends of [{mark}{lo:g}, {mark}{hi:g}] "
                                   f"({g_lo:+,.0f} and {g_hi:+,.0f} USD); widen the range of {path}")
            value, a, b, converged = _illinois(evaluate, lo, hi, g_lo, g_hi, tol, max_solves)
        else:
            if g_lo == g_hi:
                raise BracketError(f"breakeven: {what} is {'yes' if g_lo else 'no'} at both ends of [{mark}{lo:g}, {mark}{hi:g}]; "
                                   f"no flip to find, widen the range of {path}")
            value, a, b, converged = _bisect(evaluate, lo, hi, g_lo, tol, max_solves)
    finally:
        rep.finish()
    hist = pd.DataFrame(rows).rename(columns={"g": "target_value"})
    return Breakeven(path, str(target), value, (a, b), len(rows), tol, converged, kind, hist)


def _bisect(f, a: float, b: float, fa: float, tol: float, max_solves: int):
    n = 2
    while b - a > tol and n < max_solves:
        m = 0.5 * (a + b)
        if f(m) == fa:
            a = m
        else:
            b = m
        n += 1
    return 0.5 * (a + b), a, b, b - a <= tol


def _illinois(f, a: float, b: float, fa: float, fb: float, tol: float, max_solves: int):
    """Regula falsi with the Illinois halving; ``sa``/``sb`` are the (possibly halved) weights."""
    if fa == 0:
        return a, a, a, True
    if fb == 0:
        return b, b, b, True
    sa, sb, side, n = fa, fb, 0, 2
    while b - a > tol and n < max_solves:
        c = (a * sb - b * sa) / (sb - sa)
        c = min(max(c, a + tol / 2), b - tol / 2)   # move at least tol/2 so the bracket shrinks
        fc = f(c)
        n += 1
        if fc == 0:
            return c, c, c, True
        if (fc > 0) == (fa > 0):
            a, fa, sa = c, fc, fc
            if side == -1:
                sb /= 2
            side = -1
        else:
            b, fb, sb = c, fc, fc
            if side == 1:
                sa /= 2
            side = 1
    value = (a * fb - b * fa) / (fb - fa)   # the linear interpolation inside the final bracket
    return value, a, b, b - a <= tol


def _parse_bound(text: Any) -> tuple[str, float]:
    """CLI bound: ``120`` (value), ``x0.8`` (multiplier) or ``add:-20`` (amount added)."""
    t = str(text).strip()
    for prefix, kind in (("x", "mul"), ("mul:", "mul"), ("add:", "add")):
        if t.startswith(prefix):
            t, k = t[len(prefix):], kind
            break
    else:
        k = "value"
    try:
        return k, float(t)
    except ValueError:
        raise InputError(f"breakeven bound {text!r}: expected a number, xNUMBER (multiplier) or add:NUMBER") from None
