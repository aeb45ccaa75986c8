"""Breakevens: the value of one parameter at which the NPV crosses a level or a decision flips.

Targets (the same names in the CLI's ``--target``, its errors and the README):

- ``npv`` or ``npv=VALUE``: the NPV (USD) crosses VALUE (default 0);
- ``converts:SITE``: the plan starts any conversion block at SITE;
- ``signed:LEASE`` / ``signed:CONTRACT``: the plan signs the lease offer, or the optional power
  contract (an id that names both needs ``lease:ID`` or ``contract:ID``);
- ``sold:SITE`` / ``acquired:SITE``: the plan sells / buys the site (its sale or acquisition option);
- ``bought:OPTION``: the plan buys any units under the ASIC purchase option;
- ``expands:SITE`` / ``expands:SITE/OPTION``: the plan starts a grid expansion at SITE (that option);
- ``retires:SITE``: the plan retires any ASIC units at SITE.
(``convert:``, ``lease:``, ``sign:`` and ``contract:`` are accepted as aliases.)

Root finding: ITP (Interpolate, Truncate, Project; Oliveira and Takahashi, ACM TOMS 47(1), 2020)
for the NPV, bisection for a yes/no decision. ITP steps from the regula-falsi point towards the
midpoint (truncation) and never further from it than a shrinking radius (projection), so it needs
at most ``ceil(log2((hi - lo) / tol)) + 1`` solves after the two ends, whatever the shape of the
NPV: piecewise-linear, kinked, or flat on one side (the usual buy-or-not case, where the NPV is
constant until buying starts and regula falsi, even Illinois, crawls along the flat side),
and superlinearly fewer on smooth stretches. Bisection needs ``ceil(log2((hi - lo) / tol))``.

The search stops when the bracket (two solved values on either side of the crossing, reported
with the target's value at each) is at most ``tol = max(abs_tol, rel_tol * max(|lo|, |hi|))``
wide, so the true crossing lies within ``tol`` of the returned value. The MILP's own gap limits
how meaningful that precision is: a decision near its breakeven may flip back and forth within
the gap. Every solve re-uses one persistent model when the solver has one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from optimizer.analysis.digest import param_label
from optimizer.analysis.sweep import Param, make_job, solve_point, summarize
from optimizer.constants import BREAKEVEN_TARGET_HELP, BREAKEVEN_TARGETS, Reporter, reporter
from optimizer.errors import InputError, one_line
from optimizer.instance.overrides import apply_overrides

TARGETS, TARGET_HELP = BREAKEVEN_TARGETS, BREAKEVEN_TARGET_HELP


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
    bracket_values: tuple[float, float] = (math.nan, math.nan)  # target value at each end (NPV - level, or 0/1)
    method: str = ""                  # "itp" | "bisection"

    def summary(self) -> str:
        a, b = self.bracket
        fa, fb = self.bracket_values
        ends = (f"NPV - level {fa:+,.0f} and {fb:+,.0f} USD" if self.method == "itp"
                else f"{'yes' if fa else 'no'} / {'yes' if fb else 'no'}")
        return (f"{self.path}{'' if self.kind == 'value' else f' ({self.kind})'} = {self.value:.10g} for {self.target} "
                f"(bracket [{a:.10g}, {b:.10g}]: {ends}; tolerance {self.tolerance:.3g}, {self.n_solves} solves"
                f"{'' if self.converged else ', NOT converged: max_solves reached'})")

    def as_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "target": self.target, "value": self.value,
                "bracket": list(self.bracket), "bracket_values": list(self.bracket_values), "method": self.method,
                "n_solves": self.n_solves, "tolerance": self.tolerance, "converged": self.converged}

    def sentence(self) -> str:
        """The breakeven in words: '<label> = <value>: <target in words>' (the CLI's first line)."""
        label = param_label(self.path + ("" if self.kind == "value" else f":{self.kind}"))
        return f"{label} = {self.value:.6g}: {_target_words(self.target)}" + (
            "" if self.converged else " (not converged: max_solves reached)")



_ALIASES = {"convert": "converts", "lease": "signed", "sign": "signed", "contract": "signed"}


def _target_words(target: str) -> str:
    """A target in words, without an instance: 'the NPV crosses 1.00 M$', 'the plan signs X', ..."""
    t = str(target).strip()
    if t.startswith("npv"):
        _, _, v = t.partition("=")
        try:
            level = float(v) if v else 0.0
        except ValueError:
            level = 0.0
        return f"the NPV crosses {level / 1e6:,.2f} M$"
    k, _, name = t.partition(":")
    kind = _ALIASES.get(k, k)
    words = {"converts": f"the plan starts converting at site {name}", "signed": f"the plan signs {name}",
             "sold": f"the plan sells site {name}", "acquired": f"the plan buys site {name}",
             "bought": f"the plan buys ASICs under option {name}", "expands": f"the plan expands the grid at {name}",
             "retires": f"the plan retires ASICs at site {name}"}
    return words.get(kind, t)


def parse_target(target: str, instance) -> tuple[str, str, float]:
    """A target string -> (kind, canonical decision string or "", level). Kinds: ``npv`` or
    ``decision``; the decision string is what ``plan_decisions`` lists when the plan makes it."""
    t = str(target).strip()
    if t == "npv" or t.startswith("npv="):
        try:
            level = float(t[4:]) if "=" in t else 0.0
        except ValueError:
            raise InputError(f"breakeven target {t!r}: expected npv=NUMBER (USD)") from None
        if not math.isfinite(level):
            raise InputError(f"breakeven target {t!r}: expected npv=NUMBER (USD)")
        return "npv", "", level
    raw_kind, sep, name = t.partition(":")
    kind = _ALIASES.get(raw_kind, raw_kind)
    sites = [s.id for s in instance.sites]

    def need(ids: list[str], what: str) -> None:
        if name not in ids:
            raise InputError(f"breakeven target {t!r}: unknown {what} {name!r} ({what}s: {', '.join(ids) or 'none'})")

    if not sep or not name:
        kind = "?"
    if kind == "converts":
        need(sites, "site")
        if instance.site_by_id[name].conversion is None:
            raise InputError(f"breakeven target {t!r}: site {name!r} has no conversion option")
    elif kind == "signed":
        leases = [l.id for l in instance.leases]
        optional = [c.id for c in instance.contracts if c.optional]
        if raw_kind == "lease":
            need(leases, "lease")
        elif raw_kind == "contract":
            need(optional, "optional contract")
        elif name in leases and name in optional:
            raise InputError(f"breakeven target {t!r}: {name!r} is both a lease and a contract; write lease:{name} or contract:{name}")
        elif name not in leases and name not in optional:
            mandatory = " (it is not optional: always signed)" if name in [c.id for c in instance.contracts] else ""
            raise InputError(f"breakeven target {t!r}: no lease or optional contract {name!r}{mandatory} "
                             f"(leases: {', '.join(leases) or 'none'}; optional contracts: {', '.join(optional) or 'none'})")
        kind = "signed"
        name = ("lease:" if name in leases and raw_kind != "contract" else "contract:") + name
    elif kind in ("sold", "acquired"):
        option = "sale" if kind == "sold" else "acquisition"
        with_option = [s.id for s in instance.sites if getattr(s, option) is not None]
        need(sites, "site")
        if name not in with_option:
            raise InputError(f"breakeven target {t!r}: site {name!r} has no {option} option "
                             f"(sites with one: {', '.join(with_option) or 'none'})")
    elif kind == "bought":
        need([o.id for o in instance.fleet.purchase_options], "purchase option")
    elif kind == "expands":
        site, _, option = name.partition("/")
        if site not in sites:
            raise InputError(f"breakeven target {t!r}: unknown site {site!r} (sites: {', '.join(sites)})")
        options = [g.id for g in instance.site_by_id[site].grid_expansions]
        if not options or (option and option not in options):
            raise InputError(f"breakeven target {t!r}: site {site!r} has no grid expansion option"
                             f"{' ' + repr(option) if option else ''} (options: {', '.join(options) or 'none'})")
    elif kind == "retires":
        need(sites, "site")
    else:
        raise InputError(f"breakeven target {t!r}: expected {TARGET_HELP}")
    return "decision", f"{kind}:{name}", 0.0


def plan_decisions(plan) -> set[str]:
    """The canonical decision strings (``parse_target``) a Plan makes: converts:SITE,
    signed:lease:ID, signed:contract:ID (optional contracts signed), sold:SITE, acquired:SITE,
    bought:OPTION, expands:SITE and expands:SITE/OPTION, retires:SITE."""
    out: set[str] = set()
    out |= {f"converts:{s}" for s, b in zip(plan.conversions["site"], plan.conversions["blocks"]) if b > 0}
    out |= {f"signed:lease:{l}" for l, sh in zip(plan.leases["lease"], plan.leases["share"]) if sh > 0}
    out |= {f"signed:contract:{c}" for c, z in zip(plan.contracts["contract"], plan.contracts["signed"]) if bool(z)}
    for s, ev in zip(plan.site_events["site"], plan.site_events["event"]):
        out.add(f"{'sold' if ev == 'sale' else 'acquired'}:{s}")
    out |= {f"bought:{o}" for o, u in zip(plan.purchases["option"], plan.purchases["units"]) if u > 0}
    for s, g in zip(plan.grid_expansions["site"], plan.grid_expansions["option"]):
        out |= {f"expands:{s}", f"expands:{s}/{g}"}
    out |= {f"retires:{s}" for s, u in zip(plan.retirements["site"], plan.retirements["units"]) if u > 0}
    return out


def _decisions_of(out: Any, instance) -> set[str]:
    """Decision strings of a solver's answer: a Result's plan, or a stand-in's dict (its
    ``decisions`` list, else ``converted_mw`` and ``leases_signed``)."""
    if isinstance(out, Mapping):
        if "decisions" in out:
            return set(out["decisions"])
        got = {f"converts:{s}" for s, mw in (out.get("converted_mw") or {}).items() if mw and mw > 0}
        signed = out.get("leases_signed") or []
        signed = signed.split(";") if isinstance(signed, str) else signed
        return got | {f"signed:lease:{l}" for l in signed if l}
    plan = getattr(out, "plan", None)
    return set() if plan is None else plan_decisions(plan)


def breakeven(instance, path: str, lo: float, hi: float, *, target: str = "npv", kind: str = "value",
              abs_tol: float | None = None, rel_tol: float = 1e-4, max_solves: int = 40, solver: Any = None,
              persistent: bool = True, progress: Reporter | None = None, **solve_options) -> Breakeven:
    """Find the value of ``path`` in [lo, hi] where ``target`` crosses / flips (module doc).

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
    tkind, decision, level = parse_target(target, instance)
    param = Param(path, (lo, hi), kind)
    for x in (lo, hi):
        apply_overrides(instance, {path: param.override(x)})  # a bad path or value fails before any solve

    job = make_job(instance, solver, persistent, solve_options)
    state: dict = {}
    rows: list[dict] = []
    rep = reporter(progress)
    rep.start(f"breakeven of {path}", total=max_solves)

    def evaluate(x: float) -> float:
        t0 = time.perf_counter()
        rep.advance(0, label=f"breakeven of {path}: solve {len(rows) + 1} at {x:.6g}")
        variant = apply_overrides(instance, {path: param.override(x)})
        try:
            out = solve_point(variant, job, state)
            row = summarize(out, variant, job.sites)
        except Exception as e:  # noqa: BLE001 - one line, as the sweeps store it
            raise RuntimeError(f"breakeven: the solve at {param.column}={x:.10g} failed: "
                               f"{one_line(f'{type(e).__name__}: {e}')}") from None
        rep.advance(1)
        npv = row.get("npv_usd")
        if row.get("error") or npv is None or (isinstance(npv, float) and math.isnan(npv)):
            raise RuntimeError(f"breakeven: the solve at {param.column}={x:.10g} failed: "
                               f"{row.get('error') or 'status ' + str(row.get('status'))}")
        g = float(npv) - level if tkind == "npv" else float(decision in _decisions_of(out, variant))
        rows.append({"step": len(rows), param.column: x, "g": g, **row, "wall_s": time.perf_counter() - t0})
        return g

    try:
        what = f"NPV - {level:,.0f} USD" if tkind == "npv" else decision.replace("signed:lease:", "signed:").replace(
            "signed:contract:", "signed:")
        mark = {"value": "", "mul": "x", "add": "add:"}[kind]
        g_lo, g_hi = evaluate(lo), evaluate(hi)
        if tkind == "npv":
            if g_lo * g_hi > 0:
                raise BracketError(f"breakeven: {what} has the same sign at both ends of [{mark}{lo:g}, {mark}{hi:g}] "
                                   f"({g_lo:+,.0f} and {g_hi:+,.0f} USD); widen the range of {path}")
            value, a, b, fa, fb, converged = itp(evaluate, lo, hi, g_lo, g_hi, tol, max_solves)
            method = "itp"
        else:
            if g_lo == g_hi:
                raise BracketError(f"breakeven: {what} is {'yes' if g_lo else 'no'} at both ends of [{mark}{lo:g}, {mark}{hi:g}]; "
                                   f"no flip to find, widen the range of {path}")
            value, a, b, fa, fb, converged = bisect(evaluate, lo, hi, g_lo, g_hi, tol, max_solves)
            method = "bisection"
    finally:
        rep.finish()
    hist = pd.DataFrame(rows).rename(columns={"g": "target_value"})
    return Breakeven(path, str(target), value, (a, b), len(rows), tol, converged, kind, hist, (fa, fb), method)


def bisect(f, a: float, b: float, fa: float, fb: float, tol: float, max_solves: int):
    """Bisection of a yes/no target (fa != fb); returns (value, a, b, f(a), f(b), converged)."""
    n = 2
    while b - a > tol and n < max_solves:
        m = 0.5 * (a + b)
        fm = f(m)
        n += 1
        if fm == fa:
            a = m
        else:
            b, fb = m, fm
    return 0.5 * (a + b), a, b, fa, fb, b - a <= tol


def itp(f, a: float, b: float, fa: float, fb: float, tol: float, max_solves: int,
        k1: float | None = None, k2: float = 2.0, n0: int = 1):
    """ITP root finding on [a, b] with f(a) f(b) <= 0 (Oliveira and Takahashi 2020, Algorithm 1,
    sign-agnostic): stops when b - a <= tol; at most ceil(log2((b - a) / tol)) + n0 evaluations.
    Returns (value, a, b, f(a), f(b), converged); value is the regula-falsi point of the final
    bracket (exact on a linear stretch), always inside it."""
    if fa == 0:
        return a, a, a, fa, fa, True
    if fb == 0:
        return b, b, b, fb, fb, True
    eps = tol / 2.0
    width0 = b - a
    k1 = 0.2 / width0 if k1 is None else k1
    n_max = max(0, math.ceil(math.log2(width0 / (2 * eps)))) + n0
    s = 1.0 if fa < 0 else -1.0            # s f(a) < 0 < s f(b)
    n, j = 2, 0
    slack = 2 * eps * (1 + 1e-9)          # a bracket halved down to 2 eps exactly, up to rounding
    while b - a > slack and n < max_solves:
        mid = 0.5 * (a + b)
        r = eps * 2.0 ** (n_max - j) - 0.5 * (b - a)
        delta = k1 * (b - a) ** k2
        xf = (fb * a - fa * b) / (fb - fa)                 # regula falsi
        sigma = 1.0 if mid >= xf else -1.0
        xt = xf + sigma * delta if delta <= abs(mid - xf) else mid   # truncate towards the midpoint
        x = xt if abs(xt - mid) <= r else mid - sigma * r  # project into the minmax radius
        x = min(max(x, a), b)
        fx = f(x)
        n += 1
        j += 1
        if s * fx > 0:
            b, fb = x, fx
        elif s * fx < 0:
            a, fa = x, fx
        else:
            return x, x, x, fx, fx, True
    value = (fb * a - fa * b) / (fb - fa) if fb != fa else 0.5 * (a + b)
    return min(max(value, a), b), a, b, fa, fb, b - a <= slack


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
