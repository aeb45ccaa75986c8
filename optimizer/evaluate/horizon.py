"""Decisions that lean on the horizon's end (models/economics.md, "Decisions that lean on the horizon").

Terminal values (``economics.ledger.TERMINAL_ITEMS``) price years the horizon does not hold; a
plan whose NPV, or some of whose investments, exist only because of them deserves a second
look. Two things, computed for every evaluation:

- ``terminal_summary``: the NPV with and without the terminal lines, and each terminal line's
  expected present value (the same plan; nothing re-solved);
- ``terminal_flags``: first-stage decisions that only terminal values pay for, by rule:
  * a conversion whose new HPC racks no lease needs inside the horizon: in every period from
    the one its racks come online, the leases running at the site fit in the site's HPC racks
    without them. Its only value is ``terminal_hpc_usd`` (the market value of empty HPC MW);
  * an ASIC purchase whose units do not repay their price inside the horizon: per unit, the
    expected discounted margin from delivery to the horizon's end, each period
    max(0, P x BTC mined - MWh x the site's energy price) - fixed mining opex (a unit can be
    curtailed, not spared its fixed opex), is below the discounted price. Its payback needs the
    terminal mining value or the salvage at the end. The site's energy price stands in for the
    site's actual supply, so this is a flag, not a proof.

Flags are sentences (one per decision) for people and a ``kind``/``site``/``month`` record for
code. ``optimizer.analysis.horizon.terminal_check`` answers the question exactly by re-solving
with terminal values off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.economics.ledger import ITEMS, TERMINAL_ITEMS
from optimizer.evaluate.firststage import State, fmt

TERMINAL_ORDER = [i for i in ITEMS if i in TERMINAL_ITEMS]


@dataclass(frozen=True)
class TerminalFlag:
    kind: str            # "conversion" | "purchase"
    site: str
    month: str           # the decision's month (conversion start, purchase order)
    what: str            # e.g. "3 blocks", "500 units of option p1"
    sentence: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "site": self.site, "month": self.month, "what": self.what, "sentence": self.sentence}


def terminal_summary(npv_usd: float, breakdown: pd.Series) -> dict:
    """``npv_usd``, ``npv_without_terminal_usd``, ``terminal_usd`` (sum of the terminal lines'
    expected PV), ``terminal_share`` (terminal / |NPV|, None when the NPV is 0) and ``lines_usd``
    (each terminal line's expected PV, in ledger order)."""
    lines = {item: float(breakdown.get(item, 0.0)) for item in TERMINAL_ORDER}
    total = float(sum(lines.values()))
    return {
        "npv_usd": float(npv_usd),
        "npv_without_terminal_usd": float(npv_usd) - total,
        "terminal_usd": total,
        "terminal_share": total / abs(npv_usd) if npv_usd else None,
        "lines_usd": lines,
    }


def terminal_flags(st: State) -> list[TerminalFlag]:
    """First-stage decisions of the plan in ``st`` that only terminal values pay for (module doc)."""
    return _conversion_flags(st) + _purchase_flags(st)


def _conversion_flags(st: State) -> list[TerminalFlag]:
    d, inst = st.data, st.data.inst
    L, T = d.tl.period_months, d.T
    out = []
    for (sid, t), blocks in sorted(st.conv_at.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        site = inst.site_by_id[sid]
        if blocks <= 0 or site.conversion is None:
            continue
        online = t + d.lead_periods(site.conversion.lead_months)
        if online > T - 1:
            continue                                            # a violation the evaluator reports
        new = site.conversion.racks_per_block * blocks
        leased = st.used_racks(sid)[online:]
        without = st.hpc_racks[sid][online:] - new
        if np.any(leased > without + 1e-6):
            continue                                            # some lease needs these racks
        mw = new * site.hpc_mw_per_rack
        months_left = (T - online) * L
        value = float(d.prob @ d.hpc_value_usd_per_mw[sid]) * mw * d.df_end * float(st.own[sid][-1] > 0.5)
        plural = "s" if months_left > 1 else ""
        close = f", {months_left} month{plural} before the horizon's end" if months_left <= 12 else ""
        sentence = (f"conversion at site {sid} started {d.labels[t]} ({fmt(blocks)} blocks, {fmt(mw)} MW online "
                    f"{d.labels[online]}{close}): no lease uses its racks inside the horizon; its only value is the "
                    f"terminal HPC value ({fmt(value)} USD expected PV)")
        out.append(TerminalFlag("conversion", sid, d.labels[t], f"{fmt(blocks)} blocks", sentence))
    return out


def _purchase_flags(st: State) -> list[TerminalFlag]:
    d, inst = st.data, st.data.inst
    options = {o.id: o for o in inst.fleet.purchase_options}
    out = []
    for (oid, sid, t), units in sorted(st.purchase_at.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0])):
        o = options.get(oid)
        if o is None or units <= 0 or sid not in inst.site_by_id:
            continue
        model = inst.model_by_name[o.model]
        lead = d.lead_periods(o.lead_months)
        if t + lead > d.T - 1:
            continue
        price = o.usd_per_th * model.hashrate_th_s                       # USD per unit, paid in t
        run = np.maximum(d.btc_price_usd * d.btc_per_unit[o.model]
                         - d.mwh_per_unit(sid, o.model)[None, :] * d.site_energy_price[sid], 0.0)
        margin = d.prob @ run - d.mining_opex_usd_per_unit(sid, o.model)  # [T] expected, per unit
        inside = float(np.dot(margin[t + lead:], d.df[t + lead:]))
        cost = price * float(d.df[t])
        if inside >= cost:
            continue
        share = max(inside, 0.0) / cost
        sentence = (f"purchase of {fmt(units)} units ({o.model}, option {oid}) for site {sid} ordered {d.labels[t]}: "
                    f"their margin inside the horizon repays {share:.0%} of their price "
                    f"({fmt(max(inside, 0.0) * units)} of {fmt(cost * units)} USD, discounted); the rest relies on "
                    f"the terminal mining value or the salvage at the end")
        out.append(TerminalFlag("purchase", sid, d.labels[t], f"{fmt(units)} units of option {oid}", sentence))
    return out


__all__ = ["TERMINAL_ORDER", "TerminalFlag", "terminal_flags", "terminal_summary"]
