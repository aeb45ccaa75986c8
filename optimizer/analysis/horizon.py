"""The terminal check: which first-stage decisions exist only because of terminal values?

``terminal_check(instance, result=None, **solve_options)`` solves the instance as given (or takes
``result``), solves it again with every terminal value off
(``optimizer.instance.variants.without_terminal_values``: the terminal rule off and the plants'
residual values 0) and compares the two plans' first-stage decisions, table by table
(``first_stage_changes``). A decision in the first plan and not in the second is one the
horizon's end pays for; the second plan is what the instance recommends when nothing after
the horizon counts. It also reports both plans' NPVs with and without terminal values, so the
user sees what the first plan gives up inside the horizon for its terminal value
(models/economics.md, "Decisions that lean on the horizon").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from optimizer.errors import InputError
from optimizer.evaluate import evaluate
from optimizer.instance.variants import without_terminal_values
from optimizer.plan import Plan
from optimizer.solve import Result, solve
from optimizer.solve.result import TERMINAL_CHANGE_COLUMNS

CHANGE_COLUMNS = TERMINAL_CHANGE_COLUMNS


@dataclass
class TerminalCheck:
    status: str                          # status of the solve without terminal values
    npv_usd: float                       # the plan (with terminal values): its NPV
    npv_without_terminal_usd: float      # the same plan, its terminal lines left out
    alternative_npv_without_terminal_usd: float | None  # the plan solved without terminal values, its NPV then
    alternative_npv_usd: float | None    # that plan's NPV with terminal values (what the first plan beats it by)
    changes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHANGE_COLUMNS))

    @property
    def decisions_changed(self) -> int:
        return len(self.changes)

    def sentences(self) -> list[str]:
        """One line per changed decision: what the plan does with terminal values, and without."""
        return [f"{r.decision} {r.key}: {r.with_terminal} with terminal values, {r.without_terminal} without"
                for r in self.changes.itertuples(index=False)]

    def summary(self) -> dict:
        return {
            "status": self.status,
            "npv_usd": self.npv_usd,
            "npv_without_terminal_usd": self.npv_without_terminal_usd,
            "alternative_npv_without_terminal_usd": self.alternative_npv_without_terminal_usd,
            "alternative_npv_usd": self.alternative_npv_usd,
            "decisions_changed": self.decisions_changed,
            "changes": self.changes.to_dict(orient="records"),
        }


def terminal_check(instance, result: Result | None = None, **solve_options) -> TerminalCheck:
    """Re-solve ``instance`` with terminal values off and list the first-stage decisions that change.
    ``result``: a solve of ``instance`` already made (else it is solved here with ``solve_options``).
    Value-of-information solves are skipped unless asked for."""
    opts = {"value_of_information": False, **solve_options}
    if result is None:
        result = solve(instance, **opts)
    if not result.solved:
        raise InputError(f"terminal check: the instance has no solution to check (status {result.status})")
    plain = without_terminal_values(instance)
    alt = solve(plain, **opts)
    summ = result.evaluation.terminal()
    if not alt.solved:
        return TerminalCheck(str(alt.status), summ["npv_usd"], summ["npv_without_terminal_usd"], None, None)
    alt_with = evaluate(instance, alt.plan)
    return TerminalCheck(
        status=str(alt.status), npv_usd=summ["npv_usd"], npv_without_terminal_usd=summ["npv_without_terminal_usd"],
        alternative_npv_without_terminal_usd=alt.npv_usd, alternative_npv_usd=alt_with.npv_usd,
        changes=first_stage_changes(result.plan, alt.plan),
    )


def _fmt(x: float) -> str:
    return f"{float(x):.6g}"


def _decisions(plan: Plan) -> dict[tuple[str, str], str]:
    """(decision kind, key) -> what the plan decides, one entry per first-stage decision."""
    out: dict[tuple[str, str], str] = {}
    if len(plan.conversions):
        for (site, month), blocks in plan.conversions.groupby(["site", "month"])["blocks"].sum().items():
            if blocks > 0:
                out[("conversion", f"site {site} {month}")] = f"{_fmt(blocks)} blocks"
    for r in plan.grid_expansions.itertuples(index=False):
        out[("grid expansion", f"{r.option} at site {r.site}")] = f"started {r.month}"
    for r in plan.purchases.itertuples(index=False):
        if r.units > 0:
            out[("purchase", f"option {r.option} for site {r.site} {r.month}")] = f"{_fmt(r.units)} units"
    for r in plan.retirements.itertuples(index=False):
        if r.units > 0:
            out[("retirement", f"{r.model} at site {r.site} {r.month}")] = f"{_fmt(r.units)} units"
    rows: dict[str, list[str]] = {}
    for r in plan.leases.itertuples(index=False):
        if r.share > 0:
            rows.setdefault(r.lease, []).append(f"site {r.site} from {r.month}" + ("" if r.share >= 1 - 1e-9 else f" ({r.share:.0%})"))
    for lease, where in rows.items():
        out[("lease", lease)] = "signed, " + ", ".join(sorted(where))
    for r in plan.contracts.itertuples(index=False):
        out[("contract", r.contract)] = "signed" if r.signed else "not signed"
    for r in plan.site_events.itertuples(index=False):
        out[(f"site {r.event}", f"site {r.site}")] = r.month
    return out


def first_stage_changes(with_terminal: Plan, without_terminal: Plan) -> pd.DataFrame:
    """decision, key, with_terminal, without_terminal: every first-stage decision the two plans
    do not share ("-": the plan does not make it; an unsigned optional contract shows as "not signed")."""
    a, b = _decisions(with_terminal), _decisions(without_terminal)
    rows = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "-"), b.get(key, "-")
        if key[0] == "contract":
            va, vb = (v if v != "-" else "not signed" for v in (va, vb))
        if va != vb:
            rows.append((key[0], key[1], va, vb))
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


__all__ = ["CHANGE_COLUMNS", "TerminalCheck", "first_stage_changes", "terminal_check"]
