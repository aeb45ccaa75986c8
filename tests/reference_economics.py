"""An independent reference for the cash-flow lines of models/economics.md.

Written from models/economics.md alone (and the instance schema's documented series rules:
a number is a constant, ``points`` are interpolated linearly between months and held flat
outside them). It does NOT import optimizer.data, optimizer.economics, optimizer.evaluate,
optimizer.firststage or the model: the instance is read as the raw YAML mapping
(``yaml.safe_load``) and the plan as plain lists of rows, and every formula is re-derived here,
month by month in plain Python, then summed into periods.

Scope: the features tests/instances/hand2.yaml uses (constant and ``points`` series, fixed /
index / owned-generation contracts, conversions, grid expansions, purchases, retirements,
sales, acquisitions, leases with shares, treasury under ``hold`` or ``sell_monthly``, every
terminal line). It does not check feasibility: it prices the plan it is given.

Usage::

    ref = Reference(yaml.safe_load(text), plan_rows)
    ref.lines        # {(scenario, period, site, item): usd}, zero entries dropped
    ref.npv_by_scenario, ref.npv
    ref.site_load_mwh(scenario, site)    # [T] mining + HPC MWh (to write a plan's energy rows)
"""

from __future__ import annotations

import calendar
import math

ITEMS = [
    "mining_revenue_usd", "lease_revenue_usd", "power_passthrough_usd", "power_sold_usd",
    "power_cost_usd", "opex_usd", "lease_penalty_usd", "capex_usd", "asic_purchases_usd",
    "salvage_usd", "site_sales_usd", "acquisitions_usd", "contract_fees_usd",
    "treasury_sales_usd", "btc_retained_usd", "terminal_lease_noi_usd", "terminal_hpc_usd",
    "terminal_mining_usd", "terminal_asic_salvage_usd", "terminal_generation_usd", "terminal_treasury_usd",
]
PORTFOLIO = "portfolio"


def month_number(label: str) -> int:
    """'2026-03' -> 12 x 2026 + 2 (consecutive months are consecutive integers)."""
    y, m = label.split("-")
    return 12 * int(y) + int(m) - 1


def days_in(month: int) -> int:
    return calendar.monthrange(month // 12, month % 12 + 1)[1]


def series_by_month(spec, months: list[int]) -> list[float]:
    """A scenario series, one value per calendar month: a number, {value}, or {points} (linear
    between the listed months, flat before the first and after the last); optional scale."""
    scale = 1.0
    if isinstance(spec, dict):
        scale = float(spec.get("scale", 1.0))
        if "value" in spec:
            return [float(spec["value"]) * scale] * len(months)
        if "points" not in spec:
            raise NotImplementedError(f"series {spec!r}: only numbers, value and points are supported here")
        pts = sorted((month_number(k), float(v)) for k, v in spec["points"].items())
        out = []
        for mo in months:
            if mo <= pts[0][0]:
                out.append(pts[0][1])
            elif mo >= pts[-1][0]:
                out.append(pts[-1][1])
            else:
                for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
                    if x0 <= mo <= x1:
                        out.append(y0 + (y1 - y0) * (mo - x0) / (x1 - x0))
                        break
        return [v * scale for v in out]
    return [float(spec)] * len(months)


class Reference:
    def __init__(self, raw: dict, plan: dict[str, list[dict]]) -> None:
        self.raw, self.plan = raw, {k: list(v) for k, v in plan.items()}
        h = raw["horizon"]
        self.L = int(h.get("period_months", 1))
        self.T = int(h["periods"])
        self.r = float(h["discount_rate"])
        self.term = {"lease_remaining_noi": True, "hpc_unleased_noi_usd_per_mw_year": 0.0, "hpc_cap_rate": 0.07,
                     "mining_margin_multiple": 0.0, "asic_salvage": True, "treasury_btc": True, **h.get("terminal", {})}
        self.start = month_number(h["start_month"])
        self.end = self.start + self.T * self.L - 1              # last month of the horizon
        self.months = list(range(self.start, self.end + 1))
        # period t holds months start + tL .. start + (t+1)L - 1
        self.period_months = [self.months[t * self.L:(t + 1) * self.L] for t in range(self.T)]
        self.days = [sum(days_in(mo) for mo in ms) for ms in self.period_months]
        self.hours = [24.0 * d for d in self.days]
        # monthly discounting: a period's flows in L equal monthly shares, each at its month's end;
        # terminal lines at the horizon's end
        self.df = [sum((1 + self.r) ** (-(self.L * t + j) / 12) for j in range(1, self.L + 1)) / self.L
                   for t in range(self.T)]
        self.df_end = (1 + self.r) ** (-self.L * self.T / 12)
        self.sites = {s["id"]: s for s in raw["sites"]}
        self.models = {m["name"]: m for m in raw["fleet"]["asic_models"]}
        self.contracts = {c["id"]: c for c in raw.get("contracts", [])}
        self.leases = {l["id"]: l for l in raw.get("leases", [])}
        self.scen = [s["name"] for s in raw["scenarios"]]
        self.prob = {s["name"]: float(s["probability"]) for s in raw["scenarios"]}
        self.lines: dict[tuple[str, int, str, str], float] = {}
        self._scenario_paths()
        self._bitcoin()
        self._first_stage()
        self._operations()
        self._price_everything()
        self.npv_by_scenario = {w: sum(self.disc(t, i) * v for (ww, t, _s, i), v in self.lines.items() if ww == w)
                                for w in self.scen}
        self.npv = sum(self.prob[w] * self.npv_by_scenario[w] for w in self.scen)

    # ------------------------------------------------------------ helpers

    def disc(self, t: int, item: str) -> float:
        """DF_end for terminal lines, DF_t otherwise."""
        return self.df_end if item.startswith("terminal_") else self.df[t]

    def period_of(self, label: str) -> int:
        return (month_number(label) - self.start) // self.L

    def lead(self, months: int) -> int:
        return -(-int(months) // self.L)        # ceil(lead / L)

    def mean(self, by_month: list[float]) -> list[float]:
        return [sum(by_month[t * self.L:(t + 1) * self.L]) / self.L for t in range(self.T)]

    def add(self, w: str, t: int, site: str, item: str, usd: float) -> None:
        if usd != 0.0:
            key = (w, t, site, item)
            self.lines[key] = self.lines.get(key, 0.0) + usd

    def add_all(self, t: int, site: str, item: str, usd: float) -> None:
        """A scenario-independent amount (first stage)."""
        for w in self.scen:
            self.add(w, t, site, item, usd)

    # ------------------------------------------------------------ scenarios and bitcoin

    def _scenario_paths(self) -> None:
        self.P, self.H, self.f, self.pi, self.idx = {}, {}, {}, {}, {}
        for s in self.raw["scenarios"]:
            w = s["name"]
            self.P[w] = self.mean(series_by_month(s["btc_price_usd"], self.months))
            self.H[w] = self.mean(series_by_month(s["network_hashrate_eh_s"], self.months))
            self.f[w] = self.mean(series_by_month(s.get("fees_btc_per_block", 0.0), self.months))
            self.idx[w] = self.mean(series_by_month(s.get("hpc_lease_rate_index", 1.0), self.months))
            self.pi[w] = {k: self.mean(series_by_month(v, self.months)) for k, v in s["power_price_usd_per_mwh"].items()}

    def _bitcoin(self) -> None:
        b = self.raw["bitcoin"]
        interval = float(b.get("block_interval_minutes", 10.0))
        per_day = 1440.0 / interval
        initial = float(b.get("initial_subsidy_btc", 50.0))
        step = int(b.get("halving_interval_blocks", 210_000))
        h0 = float(b["start_height"])
        blocks = [d * per_day for d in self.days]
        top = h0 + sum(blocks)
        # heights at or below the start height follow the interval schedule; halving_heights lists
        # the halvings after it (default: the schedule's)
        past = [step * k for k in range(1, int(h0 // step) + 1)]
        later = b.get("halving_heights") or [step * k for k in range(len(past) + 1, int(top // step) + 2)]
        cuts = past + [c for c in later if c > h0]

        def subsidy(height: float) -> float:      # n(h) = number of halving heights <= h
            return initial * 0.5 ** sum(1 for c in cuts if c <= height)

        self.subsidy = []
        lo = h0
        for n in blocks:
            hi = lo + n
            edges = [lo] + [c for c in cuts if lo < c < hi] + [hi]
            total = sum((e1 - e0) * subsidy(e0) for e0, e1 in zip(edges, edges[1:]))
            self.subsidy.append(total / n)         # block-weighted mean subsidy of the period
            lo = hi
        fee = float(b.get("pool_fee", 0.0))
        self.btc_unit = {}
        for w in self.scen:
            hp = [(self.subsidy[t] + self.f[w][t]) * per_day / (self.H[w][t] * 1000.0) for t in range(self.T)]
            for name, mdl in self.models.items():
                self.btc_unit[(name, w)] = [mdl["hashrate_th_s"] / 1000.0 * hp[t] * self.days[t] * (1.0 - fee)
                                            for t in range(self.T)]

    def power_w(self, name: str) -> float:
        mdl = self.models[name]
        return float(mdl["power_w"]) if "power_w" in mdl else float(mdl["efficiency_j_per_th"]) * float(mdl["hashrate_th_s"])

    # ------------------------------------------------------------ first stage

    def _first_stage(self) -> None:
        T, p = self.T, self.plan
        # ownership
        self.own = {sid: [0.0 if "acquisition" in s else 1.0] * T for sid, s in self.sites.items()}
        for e in p.get("site_events", []):
            t, s = self.period_of(e["month"]), self.sites[e["site"]]
            if e["event"] == "sale":
                for u in range(t, T):
                    self.own[e["site"]][u] = 0.0
                self.add_all(t, e["site"], "site_sales_usd", float(s["sale"]["price_usd"]))
            else:
                for u in range(t, T):
                    self.own[e["site"]][u] = 1.0
                self.add_all(t, e["site"], "acquisitions_usd", -float(s["acquisition"]["price_usd"]))

        def spread(site: str, start: int, lead: int, total: float) -> None:
            n = max(lead, 1)
            for u in range(start, start + n):
                self.add_all(u, site, "capex_usd", -total / n)

        # racks: conversions leave mining at the start, arrive in HPC after the lead
        self.mining_racks, self.hpc_racks = {}, {}
        for sid, s in self.sites.items():
            self.mining_racks[sid] = [float(sum(h["racks"] for h in s["halls"] if h["use"] == "mining"))] * T
            self.hpc_racks[sid] = [float(sum(h["racks"] for h in s["halls"] if h["use"] == "hpc"))] * T
        for c in p.get("conversions", []):
            s, t, n = self.sites[c["site"]], self.period_of(c["month"]), float(c["blocks"])
            conv = s["conversion"]
            lead = self.lead(conv["lead_months"])
            rpb = conv["racks_per_block"]
            for u in range(T):
                if u >= t:
                    self.mining_racks[c["site"]][u] -= rpb * n
                if u >= t + lead:
                    self.hpc_racks[c["site"]][u] += rpb * n
            mw = n * rpb * s["hpc_kw_per_rack"] / 1000.0
            spread(c["site"], t, lead, mw * conv["capex_usd_per_mw"])
        for g in p.get("grid_expansions", []):
            opt = next(x for x in self.sites[g["site"]]["grid_expansions"] if x["id"] == g["option"])
            spread(g["site"], self.period_of(g["month"]), self.lead(opt.get("lead_months", 0)), float(opt["capex_usd"]))
        # fleet
        self.units = {(sid, m): [0.0] * T for sid in self.sites for m in self.models}
        for row in self.raw["fleet"].get("installed", []):
            for u in range(T):
                self.units[(row["site"], row["model"])][u] += float(row["units"])
        options = {o["id"]: o for o in self.raw["fleet"].get("purchase_options", [])}
        for row in p.get("purchases", []):
            o, t, n = options[row["option"]], self.period_of(row["month"]), float(row["units"])
            for u in range(t + self.lead(o.get("lead_months", 0)), T):
                self.units[(row["site"], o["model"])][u] += n
            self.add_all(t, row["site"], "asic_purchases_usd", -n * o["usd_per_th"] * self.models[o["model"]]["hashrate_th_s"])
        for row in p.get("retirements", []):
            t, n = self.period_of(row["month"]), float(row["units"])
            for u in range(t, T):
                self.units[(row["site"], row["model"])][u] -= n
            self.add_all(t, row["site"], "salvage_usd", n * self.models[row["model"]].get("salvage_usd_per_unit", 0.0))
        # contracts: signed (mandatory ones always), fees and optional plants paid in the start period
        chosen = {r["contract"]: bool(r["signed"]) for r in p.get("contracts", [])}
        self.signed = {cid: (not c.get("optional", False)) or chosen.get(cid, False) for cid, c in self.contracts.items()}
        for cid, c in self.contracts.items():
            if not self.signed[cid]:
                continue
            t0 = max(self.period_of(c["start_month"]), 0) if c.get("start_month") else 0
            self.add_all(t0, c["site"], "contract_fees_usd", -float(c.get("signing_fee_usd", 0.0)))
            if c["kind"] == "owned_generation" and c.get("optional", False):
                self.add_all(t0, c["site"], "acquisitions_usd", -float(c.get("acquisition_price_usd", 0.0)))
        # leases: one row per (lease, site) share
        self.runs = []
        for row in p.get("leases", []):
            l, share = self.leases[row["lease"]], float(row["share"])
            tau = self.period_of(row["month"])
            first = self.period_months[tau][0]                 # the term starts with tau's first month
            term = int(l["term_months"])
            rent_m, opex_m = {}, {}
            for k in range(term):
                rent = l["it_mw"] * 1000.0 * l["rate_usd_per_kw_month"] * (1 + l.get("escalator_per_year", 0.0)) ** (k // 12)
                if l.get("noi_margin") is not None:
                    opex = (1 - l["noi_margin"]) * rent
                elif l.get("opex_usd_per_mw_month") is not None:
                    opex = l["opex_usd_per_mw_month"] * l["it_mw"]
                else:
                    opex = 0.0
                rent_m[first + k], opex_m[first + k] = rent * share, opex * share
            run = {"lease": l, "site": row["site"], "share": share, "first": first, "last": first + term - 1,
                   "rent": [sum(rent_m.get(mo, 0.0) for mo in ms) for ms in self.period_months],
                   "opex": [sum(opex_m.get(mo, 0.0) for mo in ms) for ms in self.period_months],
                   "hours": [sum(24.0 * days_in(mo) for mo in ms if mo in rent_m) for ms in self.period_months],
                   "rent_m": rent_m, "opex_m": opex_m}
            kw = self.sites[row["site"]]["hpc_kw_per_rack"]
            run["racks"] = (share * l["it_mw"] * 1000.0 / kw if l.get("splittable", False)
                            else float(math.ceil(l["it_mw"] * 1000.0 / kw - 1e-9)))
            self.runs.append(run)
            late = max(0, first - month_number(l["window_end"]))
            pen = l.get("late_penalty_usd_per_mw_month") or 0.0
            self.add_all(tau, row["site"], "lease_penalty_usd", -pen * l["it_mw"] * late * share)

    # ------------------------------------------------------------ operations

    def _operations(self) -> None:
        T = self.T
        self.op = {}
        for r in self.plan.get("operations", []):
            key = (r["scenario"], r["site"], r["model"])
            self.op.setdefault(key, [0.0] * T)[self.period_of(r["month"])] += float(r["units"])
        self.energy = {}
        for r in self.plan.get("energy", []):
            key = (r["scenario"], r["contract"])
            arr = self.energy.setdefault(key, [[0.0] * T, [0.0] * T, [0.0] * T])
            t = self.period_of(r["month"])
            arr[0][t] += float(r["delivered_mwh"])
            arr[1][t] += float(r["used_mwh"])
            arr[2][t] += float(r["sold_mwh"])
        self.sold_btc = {w: [0.0] * T for w in self.scen}
        for r in self.plan.get("btc_sales", []):
            self.sold_btc[r["scenario"]][self.period_of(r["month"])] += float(r["btc"])

    def mining_mwh(self, w: str, sid: str) -> list[float]:
        pue = self.sites[sid]["pue_mining"]
        return [sum(self.op.get((w, sid, m), [0.0] * self.T)[t] * self.power_w(m) * pue * self.hours[t] / 1e6
                    for m in self.models) for t in range(self.T)]

    def hpc_mwh(self, sid: str) -> list[float]:
        pue = self.sites[sid]["pue_hpc"]
        return [sum(r["lease"]["it_mw"] * r["share"] * pue * r["hours"][t] for r in self.runs if r["site"] == sid)
                for t in range(self.T)]

    def site_load_mwh(self, w: str, sid: str) -> list[float]:
        return [a + b for a, b in zip(self.mining_mwh(w, sid), self.hpc_mwh(sid))]

    def btc_mined(self, w: str, sid: str) -> list[float]:
        return [sum(self.op.get((w, sid, m), [0.0] * self.T)[t] * self.btc_unit[(m, w)][t] for m in self.models)
                for t in range(self.T)]

    def contract_hours(self, c: dict) -> list[float]:
        """Hours of each period inside the contract's delivery term (not yet x signed x owned)."""
        first = month_number(c["start_month"]) if c.get("start_month") else self.start
        last = first + int(c["term_months"]) - 1 if c.get("term_months") else self.end
        return [sum(24.0 * days_in(mo) for mo in ms if first <= mo <= last) for ms in self.period_months]

    def contract_months(self, c: dict) -> list[int]:
        first = month_number(c["start_month"]) if c.get("start_month") else self.start
        last = first + int(c["term_months"]) - 1 if c.get("term_months") else self.end
        return [sum(1 for mo in ms if first <= mo <= last) for ms in self.period_months]

    def fixed_price(self, c: dict) -> list[float]:
        """Escalated once per contract year from the contract's own start, hours-weighted per period."""
        first = month_number(c["start_month"]) if c.get("start_month") else self.start
        last = first + int(c["term_months"]) - 1 if c.get("term_months") else self.end
        out = []
        for ms in self.period_months:
            inside = [mo for mo in ms if first <= mo <= last]
            hrs = sum(24.0 * days_in(mo) for mo in inside)
            usd = sum(24.0 * days_in(mo) * c["price_usd_per_mwh"] * (1 + c.get("escalator_per_year", 0.0)) ** ((mo - first) // 12)
                      for mo in inside)
            out.append(usd / hrs if hrs else 0.0)
        return out

    # ------------------------------------------------------------ site energy price

    def site_price_month(self, w: str, sid: str, mo: int) -> float:
        """What the site pays for a MWh in month mo: the mw-weighted mean price of its mandatory
        fixed contracts (escalated) and owned generation (variable cost) delivering in mo; else the
        market price plus the lowest adder of its mandatory index contracts delivering in mo; else the
        market price. Market price: the period's; after the horizon, the last period's."""
        t = min((mo - self.start) // self.L, self.T - 1)
        pi = self.pi[w][self.sites[sid]["market"]][t]
        num = den = 0.0
        adders = []
        for c in self.contracts.values():
            if c["site"] != sid or c.get("optional", False):
                continue
            first = month_number(c["start_month"]) if c.get("start_month") else self.start
            last = first + int(c["term_months"]) - 1 if c.get("term_months") else self.end
            if not first <= mo <= last:
                continue
            if c["kind"] == "fixed":
                num += c["mw_cap"] * c["price_usd_per_mwh"] * (1 + c.get("escalator_per_year", 0.0)) ** ((mo - first) // 12)
                den += c["mw_cap"]
            elif c["kind"] == "owned_generation":
                num += c["mw"] * c["variable_cost_usd_per_mwh"]
                den += c["mw"]
            else:
                adders.append(c.get("adder_usd_per_mwh", 0.0))
        if den > 0:
            return num / den
        return pi + (min(adders) if adders else 0.0)

    def site_price(self, w: str, sid: str, t: int) -> float:
        """Hours-weighted mean of the period's months."""
        ms = self.period_months[t]
        return sum(24.0 * days_in(mo) * self.site_price_month(w, sid, mo) for mo in ms) / sum(24.0 * days_in(mo) for mo in ms)

    # ------------------------------------------------------------ the lines

    def _price_everything(self) -> None:
        T, L = self.T, self.L
        last = T - 1
        months_after = lambda run: [mo for mo in range(self.end + 1, run["last"] + 1)]   # k = mo - end
        for w in self.scen:
            P = self.P[w]
            mined_total = [0.0] * T
            for sid, s in self.sites.items():
                pi = self.pi[w][s["market"]]
                btc = self.btc_mined(w, sid)
                mined_total = [a + b for a, b in zip(mined_total, btc)]
                mwh = self.mining_mwh(w, sid)
                runs = [r for r in self.runs if r["site"] == sid]
                mining_opex = [s.get("fixed_opex_mining_usd_per_mw_month", 0.0) * L
                               * sum(max(self.units[(sid, m)][t], 0.0) * self.power_w(m) / 1e6 for m in self.models)
                               for t in range(T)]
                hpc_mw = [self.hpc_racks[sid][t] * s["hpc_kw_per_rack"] / 1000.0 for t in range(T)]
                for t in range(T):
                    self.add(w, t, sid, "mining_revenue_usd", P[t] * btc[t])
                    self.add(w, t, sid, "lease_revenue_usd", sum(r["rent"][t] for r in runs))
                    # pass-through: reimbursed at what the site pays (or the market price when the lease says so)
                    pt = sum(r["lease"]["it_mw"] * r["share"] * s["pue_hpc"] * r["hours"][t]
                             * (pi[t] if r["lease"].get("passthrough_price", "site") == "market" else self.site_price(w, sid, t))
                             for r in runs if r["lease"].get("power_passthrough", False))
                    self.add(w, t, sid, "power_passthrough_usd", pt)
                    # an after-power NOI margin holds the lease's energy: credited back at the site's price
                    credit = sum(r["lease"]["it_mw"] * r["share"] * s["pue_hpc"] * r["hours"][t] * self.site_price(w, sid, t)
                                 for r in runs if r["lease"].get("noi_margin_basis", "before_power") == "after_power")
                    hpc_opex = s.get("fixed_opex_hpc_usd_per_mw_month", 0.0) * hpc_mw[t] * self.own[sid][t] * L
                    self.add(w, t, sid, "opex_usd", credit - (mining_opex[t] + hpc_opex + sum(r["opex"][t] for r in runs)))
                # terminal lines of the site, in the last period (discounted with DF_end)
                f = s.get("fixed_opex_hpc_usd_per_mw_month", 0.0)
                mw_rack = s["hpc_kw_per_rack"] / 1000.0
                past = [r for r in runs if r["last"] > self.end]
                n_after = lambda run: run["last"] - self.end                              # noqa: E731
                dfk = lambda k: (1 + self.r) ** (-k / 12)                                  # noqa: E731
                if self.term["lease_remaining_noi"]:
                    value = 0.0
                    for r in past:
                        lease = r["lease"]
                        for mo in months_after(r):
                            k = mo - self.end
                            # contracted NOI, minus the site's fixed HPC opex on the lease's racks
                            value += (r["rent_m"][mo] - r["opex_m"][mo] - f * r["racks"] * mw_rack) * dfk(k)
                            # power the landlord bears after the horizon, net of what credits it
                            p = self.site_price_month(w, sid, mo)
                            if lease.get("power_passthrough", False):
                                credit = pi[last] if lease.get("passthrough_price", "site") == "market" else p
                            elif lease.get("noi_margin_basis", "before_power") == "after_power":
                                credit = p
                            else:
                                credit = 0.0
                            value -= lease["it_mw"] * r["share"] * s["pue_hpc"] * 24.0 * days_in(mo) * dfk(k) * (p - credit)
                    self.add(w, last, sid, "terminal_lease_noi_usd", value)
                noi = float(self.term["hpc_unleased_noi_usd_per_mw_year"])
                if noi > 0:
                    cap = float(self.term["hpc_cap_rate"])
                    V = max(0.0, noi * self.idx[w][last] - 12 * f) / cap       # market value of one MW
                    taken = sum(r["racks"] for r in past)
                    free_mw = (self.hpc_racks[sid][last] * self.own[sid][last] - taken) * mw_rack

                    def rho(n: int) -> float:                                 # reversion factor
                        return max(dfk(n), 1 - cap / 12 * sum(dfk(k) for k in range(1, n + 1)))

                    back_mw = sum(r["racks"] * mw_rack * rho(n_after(r)) for r in past)
                    self.add(w, last, sid, "terminal_hpc_usd", (free_mw + back_mw) * V)
                mult = float(self.term["mining_margin_multiple"])
                if mult > 0:
                    # power of the margin: hours-weighted mean of the site's price over the 12 x multiple
                    # months after the end (the last by its fraction)
                    num = den = 0.0
                    k = 1
                    while k - 1 < 12 * mult:
                        weight = min(1.0, 12 * mult - (k - 1)) * 24.0 * days_in(self.end + k)
                        num += weight * self.site_price_month(w, sid, self.end + k)
                        den += weight
                        k += 1
                    margin = P[last] * btc[last] - mwh[last] * (num / den) - mining_opex[last]
                    salvage = (sum(max(self.units[(sid, m)][last], 0.0) * self.models[m].get("salvage_usd_per_unit", 0.0)
                                   for m in self.models) if self.term["asic_salvage"] else 0.0)
                    # keep mining (mult x 12 / L x margin) or retire (salvage, in terminal_asic_salvage_usd)
                    self.add(w, last, sid, "terminal_mining_usd", max(0.0, mult * 12 / L * margin - salvage))
                if self.term["asic_salvage"]:
                    self.add(w, last, sid, "terminal_asic_salvage_usd",
                             sum(max(self.units[(sid, m)][last], 0.0) * self.models[m].get("salvage_usd_per_unit", 0.0)
                                 for m in self.models))
            # power contracts
            for cid, c in self.contracts.items():
                sid = c["site"]
                pi = self.pi[w][self.sites[sid]["market"]]
                d, u, so = self.energy.get((w, cid), [[0.0] * T] * 3)
                avail = [h * self.own[sid][t] * float(self.signed[cid]) for t, h in enumerate(self.contract_hours(c))]
                for t in range(T):
                    self.add(w, t, sid, "power_sold_usd", so[t] * pi[t])
                    if c["kind"] == "fixed":
                        p = self.fixed_price(c)[t]
                        shortfall = max(0.0, c.get("take_or_pay_min_share", 0.0) * c["mw_cap"] * avail[t] - d[t])
                        self.add(w, t, sid, "power_cost_usd", -p * (d[t] + shortfall))
                    elif c["kind"] == "index":
                        self.add(w, t, sid, "power_cost_usd", -(pi[t] + c.get("adder_usd_per_mwh", 0.0)) * u[t])
                    else:
                        fixed = (c.get("fixed_cost_usd_per_month", 0.0) * self.contract_months(c)[t]
                                 * self.own[sid][t] * float(self.signed[cid]))
                        self.add(w, t, sid, "power_cost_usd", -(c["variable_cost_usd_per_mwh"] * d[t] + fixed))
                if c["kind"] == "owned_generation" and c.get("residual_value_usd", 0.0) > 0:
                    first = month_number(c["start_month"]) if c.get("start_month") else self.start
                    reaches_end = not c.get("term_months") or first + int(c["term_months"]) - 1 >= self.end
                    if reaches_end and self.signed[cid] and self.own[sid][last] > 0:
                        self.add(w, last, sid, "terminal_generation_usd", float(c["residual_value_usd"]))
            # treasury (portfolio rows)
            tr = self.raw.get("treasury", {})
            hold = tr.get("mined_btc", "sell_monthly") == "hold"
            balance = float(tr.get("btc_held_start", 0.0))
            for t in range(T):
                if hold:
                    self.add(w, t, PORTFOLIO, "btc_retained_usd", -P[t] * mined_total[t])
                    balance += mined_total[t]
                self.add(w, t, PORTFOLIO, "treasury_sales_usd", P[t] * self.sold_btc[w][t])
                balance -= self.sold_btc[w][t]
            self.treasury_end = getattr(self, "treasury_end", {})
            self.treasury_end[w] = balance
            if self.term["treasury_btc"]:
                self.add(w, last, PORTFOLIO, "terminal_treasury_usd", P[last] * balance)
