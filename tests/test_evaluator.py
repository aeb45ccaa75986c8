"""The plan evaluator against hand calculations (arithmetic written out) and closed forms,
and one plan per constraint kind, checked for the right violation sentence."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from optimizer.economics.ledger import ITEMS
from optimizer.evaluate import evaluate
from optimizer.instance import Instance
from optimizer.kernel import finance
from optimizer.plan import Plan

HERE = Path(__file__).parent / "instances"


def load(name: str, edit=None) -> Instance:
    raw = yaml.safe_load((HERE / f"{name}.yaml").read_text())
    if edit is not None:
        raw = copy.deepcopy(raw)
        edit(raw)
    return Instance.from_dict(raw, base_dir=HERE)


def df(rows, cols) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=cols)


def line(ev, item: str, month: str | None = None) -> float:
    cf = ev.cashflows
    sel = cf["item"] == item
    if month is not None:
        sel &= cf["month"] == month
    return float(cf.loc[sel, "usd"].sum())


# ---------------------------------------------------------------- line by line

# tests/instances/hand.yaml: Apr 720 h, May 744 h, Jun 720 h; 1 unit = 0.000045 BTC per day.
HAND_PLAN = Plan(
    conversions=df([("s1", "2026-04", 1)], ["site", "month", "blocks"]),
    retirements=df([("s1", "a100", "2026-04", 600)], ["site", "model", "month", "units"]),
    purchases=df([("p1", "s1", "2026-04", 100)], ["option", "site", "month", "units"]),
    leases=df([("L1", "s1", "2026-04", 1.0)], ["lease", "site", "month", "share"]),
    contracts=df([("ix", True)], ["contract", "signed"]),
    operations=df([("base", "s1", "a100", "2026-04", 900), ("base", "s1", "a100", "2026-05", 800),
                   ("base", "s1", "a100", "2026-06", 1000)], ["scenario", "site", "model", "month", "units"]),
    energy=df([("base", "fx", "2026-04", 2880, 2376, 504),
               ("base", "fx", "2026-05", 1200, 1200, 0), ("base", "ix", "2026-05", 1106.4, 1106.4, 0),
               ("base", "fx", "2026-06", 2520, 2520, 0)],
              ["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"]),
    btc_sales=df([("base", "2026-05", 2.0)], ["scenario", "month", "btc"]),
)


# a(21) = sum_{k=1..21} 1.12^(-k/12); rho(21) = max(1.12^(-21/12), 1 - 0.1/12 x a(21)): cap 10 % is
# below 12 x (1.12^(1/12) - 1) = 11.39 %, so the second term (economics.md, "Terminal values")
A21 = sum(1.12 ** (-k / 12) for k in range(1, 22))
RHO21 = 1 - 0.1 / 12 * A21


def test_hand_instance_line_by_line():
    inst = load("hand")
    ev = evaluate(inst, HAND_PLAN)
    assert ev.violations == []
    expected = {
        # units operating x 0.1 PH x 0.00045 BTC/PH/day x days x 100,000 USD
        ("mining_revenue_usd", "2026-04"): 900 * 0.000045 * 30 * 100_000,    # 1.215 BTC = 121,500
        ("mining_revenue_usd", "2026-05"): 800 * 0.000045 * 31 * 100_000,    # 1.116 BTC = 111,600
        ("mining_revenue_usd", "2026-06"): 1000 * 0.000045 * 30 * 100_000,   # 1.35 BTC = 135,000
        # 1 MW x 1000 kW x 100 USD/kW-month; the 5 % escalator starts in lease month 13
        ("lease_revenue_usd", "2026-04"): 100_000,
        ("lease_revenue_usd", "2026-05"): 100_000,
        ("lease_revenue_usd", "2026-06"): 100_000,
        # April: load = mining 900 x 2 kW x 720 h = 1296 MWh + HPC 1 MW x PUE 1.5 x 720 h = 1080 MWh
        # = 2376 MWh; fx takes its 4 MW cap (2880 MWh) and sells 2880 - 2376 = 504 MWh at 40
        ("power_sold_usd", "2026-04"): 504 * 40,                               # 20,160
        ("power_cost_usd", "2026-04"): -50 * 2880,                             # 144,000
        # May: take-or-pay minimum 0.5 x 4 MW x 744 h = 1488 MWh > 1200 delivered: pays 1488 x 50;
        # ix: 1106.4 MWh x (40 + 5)  (load 800 x 2 x 744 / 1000 = 1190.4 + 1.5 x 744 = 1116)
        ("power_cost_usd", "2026-05"): -(50 * 1488 + 45 * 1106.4),             # 74,400 + 49,788
        # June: 1000 x 2 x 720 / 1000 = 1440 + 1080 = 2520 MWh, above the minimum 1440
        ("power_cost_usd", "2026-06"): -50 * 2520,
        # opex = mining nameplate MW x 1000 + HPC MW x 5000 + lease opex 20 % of rent
        ("opex_usd", "2026-04"): -(0.9 * 2 * 1000 + 1 * 5000 + 20_000),        # 900 units = 1.8 MW
        ("opex_usd", "2026-05"): -(1.0 * 2 * 1000 + 1 * 5000 + 20_000),        # 1000 units = 2 MW
        ("opex_usd", "2026-06"): -(1.0 * 2 * 1000 + 2 * 5000 + 20_000),        # converted block online
        # 10 racks x 100 kW = 1 MW x 1,000,000 USD/MW over lead 2 months
        ("capex_usd", "2026-04"): -500_000,
        ("capex_usd", "2026-05"): -500_000,
        ("asic_purchases_usd", "2026-04"): -100 * 100 * 20,                    # units x TH x USD/TH
        ("salvage_usd", "2026-04"): 600 * 50,
        ("contract_fees_usd", "2026-04"): -10_000,
        ("treasury_sales_usd", "2026-05"): 2 * 100_000,
        # after the horizon: lease months 4..12 (k = 1..9 months after June) at 100,000 and
        # months 13..24 (k = 10..21) at 105,000; NOI 80 %, discounted (1.12)^(-k/12)
        ("terminal_lease_noi_usd", "2026-06"): sum(80_000 * 1.12 ** (-k / 12) for k in range(1, 10))
        + sum(84_000 * 1.12 ** (-k / 12) for k in range(10, 22))
        # minus the lease's own power after the horizon (no pass-through): 1 MW x PUE 1.5 x hours of
        # Jul 2026 .. Mar 2028 x 40 USD/MWh (June's market price), discounted the same way
        - sum(1 * 1.5 * 24 * days * 40 * 1.12 ** (-k / 12) for k, days in enumerate(
            [31, 31, 30, 31, 30, 31, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31, 29, 31], start=1))
        # (fx has no term: it runs to the horizon end only, and ix is optional: after the horizon the
        # site pays the market price, 40) minus the site's fixed HPC opex on L1's 10 racks x 0.1 MW
        # after the horizon: 5,000 USD a month for 21 months
        - 5_000 * A21,
        # HPC MW at the end are worth V = (120,000 - 12 x 5,000 fixed HPC opex) / 0.1 = 600,000 each:
        # 20 racks, 10 taken by L1 running past the horizon: 1 MW free, and L1's 1 MW reverts to V
        # when L1 ends 21 months after the horizon: x rho(21)
        ("terminal_hpc_usd", "2026-06"): (1 + RHO21) * 600_000,
        # keep mining: 1 x 12 x (June revenue 135,000 - 1440 MWh x 40 - mining fixed opex 2,000)
        # = 904,800, or retire: salvage 1000 x 50 = 50,000 (in terminal_asic_salvage_usd); the line
        # is what keeping adds
        ("terminal_mining_usd", "2026-06"): 12 * (135_000 - 1440 * 40 - 2_000) - 1000 * 50,
        ("terminal_asic_salvage_usd", "2026-06"): 1000 * 50,
        ("terminal_treasury_usd", "2026-06"): (10 - 2) * 100_000,
    }
    for (item, month), usd in expected.items():
        assert line(ev, item, month) == pytest.approx(usd, rel=1e-12, abs=1e-6), (item, month)
    # nothing else: every other (item, month) is zero
    got = ev.cashflows.groupby(["item", "month"])["usd"].sum()
    assert set(got.index) == set(expected)
    dfs = {"2026-04": 1.12 ** (-1 / 12), "2026-05": 1.12 ** (-2 / 12), "2026-06": 1.12 ** (-3 / 12)}
    npv = sum(usd * dfs[m] for (_, m), usd in expected.items())
    assert ev.npv_usd == pytest.approx(npv, rel=1e-12)
    assert ev.npv_usd_by_scenario == {"base": pytest.approx(npv, rel=1e-12)}
    bd = ev.npv_breakdown()
    assert list(bd.index) == ITEMS
    assert bd["pv_usd"].sum() == pytest.approx(npv, rel=1e-12)
    assert bd.loc["capex_usd", "pv_usd"] == pytest.approx(-500_000 * (dfs["2026-04"] + dfs["2026-05"]), rel=1e-12)
    # the headline of summary.json and the tables of an evaluation directory carry the same numbers
    assert ev.ok
    summ = ev.summary("hand", "p")
    assert (summ["instance"], summ["plan"], summ["violations"]) == ("hand", "p", [])
    assert summ["npv_usd"] == pytest.approx(npv, rel=1e-12)
    assert summ["npv_usd_by_scenario"] == {"base": pytest.approx(npv, rel=1e-12)}
    assert list(summ["npv_breakdown_usd"]) == ITEMS
    assert summ["npv_breakdown_usd"]["capex_usd"] == pytest.approx(-500_000 * (dfs["2026-04"] + dfs["2026-05"]), rel=1e-12)
    tables = ev.tables()
    assert list(tables) == ["cashflows", "plan", "allocation", "kpis", "npv_breakdown"]
    assert tables["cashflows"] is ev.cashflows and tables["plan"] is ev.allocation and tables["kpis"] is ev.kpis
    assert tables["allocation"] is ev.allocation_long
    assert tables["npv_breakdown"]["item"].tolist() == ITEMS
    assert tables["npv_breakdown"]["pv_usd"].sum() == pytest.approx(npv, rel=1e-12)


def test_hand_instance_tables():
    ev = evaluate(load("hand"), HAND_PLAN)
    a = ev.allocation.set_index("month")
    # racks: 20 mining - 10 converted from April; HPC 10, +10 in June (lead 2)
    assert list(a["mining_racks"]) == [10, 10, 10]
    assert list(a["hpc_racks"]) == [10, 10, 20]
    assert list(a["converting_racks"]) == [10, 10, 0]
    assert list(a["racks_L1"]) == [10, 10, 10]
    assert list(a["units_a100"]) == [900, 1000, 1000]
    # idle: April 10 mining racks hold 900 units (9 racks) -> 1 idle; June 10 HPC racks unleased
    assert list(a["idle_racks"]) == [1, 0, 10]
    k = ev.kpis.set_index("month")
    assert list(k["btc_mined"]) == pytest.approx([1.215, 1.116, 1.35], rel=1e-12)
    # operating hashrate: 900 x 100 TH = 0.09 EH/s
    assert list(k["hashrate_eh_s"]) == pytest.approx([0.09, 0.08, 0.1], rel=1e-12)
    assert list(k["hashprice_usd_per_ph_day"]) == pytest.approx([45.0] * 3, rel=1e-12)
    assert list(k["hpc_mw_online"]) == [1, 1, 2]
    # June: mining takes 1440 of 2520 MWh of a 126,000 USD power bill -> 72,000, + fixed 2,000;
    # 74,000 / 1.35 BTC
    assert k.loc["2026-06", "cost_to_mine_usd_per_btc"] == pytest.approx(74_000 / 1.35, rel=1e-12)


# ---------------------------------------------------------------- closed forms


def test_constant_monthly_cash_flow_is_an_annuity():
    # rules-like site with only an HPC hall of 1 MW and fixed HPC opex 10,000 USD per MW-month:
    # a constant -10,000 USD a month for 24 months at 10 % a year.
    def edit(raw):
        raw["horizon"] = {"start_month": "2026-01", "periods": 24, "discount_rate": 0.10}
        raw["fleet"]["installed"] = []
        raw["fleet"]["purchase_options"] = []
        s = raw["sites"][0]
        s["fixed_opex_hpc_usd_per_mw_month"] = 10_000
        s.pop("conversion")
        raw["contracts"] = []
        raw["leases"] = []
        raw["sites"] = [s]
        raw["sites"][0]["halls"] = [{"id": "a", "use": "mining", "racks": 20}, {"id": "b", "use": "hpc", "racks": 10}]
        s.pop("sale"), s.pop("grid_expansions")

    ev = evaluate(load("rules", edit), Plan())
    assert ev.violations == []
    i = 1.10 ** (1 / 12) - 1                       # monthly rate equivalent to 10 % a year
    closed = -10_000 * (1 - (1 + i) ** -24) / i     # annuity-immediate, 24 payments
    assert ev.npv_usd == pytest.approx(closed, rel=1e-12)
    assert ev.npv_usd == pytest.approx(finance.annuity_pv(-10_000, 0.10, 24), rel=1e-12)


def test_lease_escalator_equals_hand_sum():
    # 15 monthly periods; lease 2 MW x 100 USD/kW-month, +10 %/yr, 15-month term from 2026-01,
    # power passed through (index contract at the market price, adder 0: energy nets to zero).
    def edit(raw):
        raw["horizon"] = {"start_month": "2026-01", "periods": 15, "discount_rate": 0.0}
        raw["fleet"]["installed"] = []
        raw["fleet"]["purchase_options"] = []
        s = raw["sites"][0]
        s.pop("conversion"), s.pop("sale"), s.pop("grid_expansions")
        s["halls"] = [{"id": "b", "use": "hpc", "racks": 20}]
        raw["sites"] = [s]
        raw["contracts"] = [{"id": "ix", "site": "s1", "kind": "index", "adder_usd_per_mwh": 0}]
        raw["leases"] = [{"id": "E", "it_mw": 2.0, "rate_usd_per_kw_month": 100, "escalator_per_year": 0.10,
                          "term_months": 15, "window_start": "2026-01", "window_end": "2026-01",
                          "power_passthrough": True, "noi_margin": 0.9}]

    ev = evaluate(load("rules", edit), Plan(leases=df([("E", "s1", "2026-01", 1.0)], ["lease", "site", "month", "share"])))
    assert ev.violations == []
    rent = ev.cashflows[ev.cashflows["item"] == "lease_revenue_usd"].set_index("month")["usd"]
    # months 1-12: 2 x 1000 x 100 = 200,000; months 13-15: x 1.10 = 220,000
    assert list(rent) == pytest.approx([200_000] * 12 + [220_000] * 3, rel=1e-12)
    # 12 x 200,000 + 3 x 220,000 = 3,060,000 rent, 10 % opex; pass-through = energy cost
    assert rent.sum() == pytest.approx(3_060_000, rel=1e-12)
    assert line(ev, "opex_usd") == pytest.approx(-306_000, rel=1e-12)
    assert line(ev, "power_passthrough_usd") == pytest.approx(-line(ev, "power_cost_usd"), rel=1e-12)
    assert ev.npv_usd == pytest.approx(3_060_000 * 0.9, rel=1e-12)


def test_take_or_pay_charges_the_minimum_below_it():
    # dispatch.yaml with a fixed contract 3 MW, min 0.5, 60 USD/MWh, no sell-back; 400 units run:
    # 400 x 1.44 = 576 MWh < minimum 0.5 x 3 x 720 = 1080 MWh -> pays 1080 x 60 = 64,800.
    def edit(raw):
        raw["contracts"] = [{"id": "fx", "site": "s1", "kind": "fixed", "price_usd_per_mwh": 60, "mw_cap": 3,
                             "take_or_pay_min_share": 0.5}]

    plan = Plan(operations=df([("base", "s1", "a100", "2026-04", 400)], ["scenario", "site", "model", "month", "units"]),
                energy=df([("base", "fx", "2026-04", 576, 576, 0)],
                          ["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"]))
    ev = evaluate(load("dispatch", edit), plan)
    assert ev.violations == []
    assert line(ev, "power_cost_usd") == pytest.approx(-64_800, rel=1e-12)
    # above the minimum it pays what it takes: 1000 units = 1440 MWh -> 86,400
    plan2 = plan.replace(operations=plan.operations.assign(units=1000.0),
                         energy=plan.energy.assign(delivered_mwh=1440.0, used_mwh=1440.0))
    assert line(evaluate(load("dispatch", edit), plan2), "power_cost_usd") == pytest.approx(-86_400, rel=1e-12)


def test_quarterly_periods_discount_each_month():
    # the annuity site with quarterly periods: -30,000 USD a quarter, spread as -10,000 in each of its
    # months and discounted at each month's end: sum over the 12 months of -10,000 x 1.1^(-k/12)
    # (not a whole quarter at its end, 30,000 x sum_t 1.1^(-3(t+1)/12): the two differ by the factor
    # (1 + 1.1^(1/12) + 1.1^(2/12)) / 3 = 1.0080 for equal quarters)
    def edit(raw):
        raw["horizon"] = {"start_month": "2026-01", "periods": 4, "period_months": 3, "discount_rate": 0.10}
        raw["fleet"]["installed"] = []
        raw["fleet"]["purchase_options"] = []
        s = raw["sites"][0]
        s["fixed_opex_hpc_usd_per_mw_month"] = 10_000
        s.pop("conversion"), s.pop("sale"), s.pop("grid_expansions")
        raw["sites"], raw["contracts"], raw["leases"] = [s], [], []

    ev = evaluate(load("rules", edit), Plan())
    assert ev.npv_usd == pytest.approx(sum(-10_000 * 1.1 ** (-k / 12) for k in range(1, 13)), rel=1e-12)
    at_quarter_end = sum(-30_000 * 1.1 ** (-3 * (t + 1) / 12) for t in range(4))
    assert ev.npv_usd / at_quarter_end == pytest.approx((1 + 1.1 ** (1 / 12) + 1.1 ** (2 / 12)) / 3, rel=1e-12)


# ---------------------------------------------------------------- violations, one per kind

OPS = ["scenario", "site", "model", "month", "units"]
EN = ["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"]
CONV = ["site", "month", "blocks"]
LEASE = ["lease", "site", "month", "share"]
PUR = ["option", "site", "month", "units"]
RET = ["site", "model", "month", "units"]
GX = ["site", "option", "month"]
EV = ["site", "event", "month"]
CON = ["contract", "signed"]


def _set(path: str, value):
    def edit(raw):
        node = raw
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[keys[-1]] = value
    return edit


def _ops(units, month="2026-01"):
    return dict(operations=df([("base", "s1", "a100", month, units)], OPS))


def _en(*rows):
    return dict(energy=df([("base",) + r for r in rows], EN))


# Each case: (id, instance edit or None, plan tables, expected fragments of one sentence).
# rules.yaml: s1 grid 5 MW, 1500 a100 units (2 kW each), 20 mining + 10 HPC racks; Jan = 744 h.
CASES = [
    # 1500 units x 2 kW = 3 MW over 744 h = 2232 MWh against a 2 MW grid (1488 MWh)
    ("grid", _set("sites.0.grid_interconnect_mw", 2), {**_ops(1500), **_en(("ix", "2026-01", 2232, 2232, 0))},
     ["site s1 2026-01", "load 3 MW exceeds grid 2 MW", "2232 MWh > 1488 MWh"]),
    # 1000 units x 2 kW x 744 h = 1488 MWh of load, 1000 MWh used
    ("energy balance", None, {**_ops(1000), **_en(("fx", "2026-01", 1000, 1000, 0))},
     ["site s1 2026-01", "energy used from contracts 1000 MWh differs from the load 1488 MWh"]),
    # fx cap 2 MW x 744 h = 1488 MWh
    ("contract cap", None, _en(("fx", "2026-01", 2000, 2000, 0)),
     ["contract fx 2026-01", "delivered 2000 MWh exceeds the cap 1488 MWh (2 MW x 744 h)"]),
    ("index cap", None, _en(("ix", "2026-02", 1500, 1500, 0)),
     ["contract ix 2026-02", "used 1500 MWh exceeds the cap 1344 MWh (2 MW x 672 h)"]),
    ("outside term", None, _en(("fx", "2026-05", 100, 100, 0)), ["contract fx 2026-05", "100 MWh outside its term (2026-01..2026-04)"]),
    ("unsigned", None, _en(("opt", "2026-01", 100, 100, 0)),
     ["contract opt 2026-01", "100 MWh used but the optional contract is not signed"]),
    ("sold not allowed", None, _en(("fx", "2026-01", 200, 100, 100)),
     ["contract fx 2026-01", "sells 100 MWh but selling energy back is not allowed"]),
    ("sold beyond surplus", _set("contracts.0.sell_back_allowed", True), _en(("fx", "2026-01", 200, 150, 100)),
     ["contract fx 2026-01", "sold 100 MWh exceeds delivered - used = 50 MWh"]),
    ("used beyond delivered", None, _en(("fx", "2026-01", 100, 150, 0)),
     ["contract fx 2026-01", "used 150 MWh exceeds delivered 100 MWh"]),
    # one block leaves 10 mining racks x 100 = 1000 positions for 1500 units
    ("rack positions", None, {"conversions": df([("s1", "2026-02", 1)], CONV)},
     ["site s1 2026-02", "1500 installed units exceed 1000 ASIC positions (10 mining racks x 100)"]),
    ("operating > installed", None, _ops(1600), ["site s1 2026-01", "1600 operating units of model a100 exceed 1500 installed"]),
    ("retire > installed", None, {"retirements": df([("s1", "a100", "2026-01", 2000)], RET)},
     ["site s1 2026-01", "retirements of model a100 exceed installed units", "2000 retired"]),
    ("retire not allowed", _set("fleet.allow_retirement", False), {"retirements": df([("s1", "a100", "2026-01", 100)], RET)},
     ["site s1 2026-01", "100 units of model a100 retired but fleet.allow_retirement is false"]),
    ("conversion early", None, {"conversions": df([("s1", "2026-01", 1)], CONV)},
     ["site s1 2026-01", "conversion started before its earliest month 2026-02"]),
    ("conversion max_blocks", None, {"conversions": df([("s1", "2026-02", 2)], CONV)},
     ["site s1", "2 conversion blocks started, more than max_blocks 1"]),
    ("conversion racks", _set("sites.0.conversion.max_blocks", None), {"conversions": df([("s1", "2026-02", 3)], CONV)},
     ["site s1 2026-02", "take 30 racks but the site has only 20 mining racks"]),
    # lead 2 months from 2026-05: ready 2026-07, after the last period 2026-06
    ("conversion unfinished", None, {"conversions": df([("s1", "2026-05", 1)], CONV)},
     ["site s1 2026-05", "would finish in 2026-07, after the horizon's last period 2026-06"]),
    ("conversion whole", None, {"conversions": df([("s1", "2026-02", 0.5)], CONV)},
     ["site s1 2026-02", "conversion blocks must be whole, got 0.5"]),
    ("no conversion option", None, {"conversions": df([("s2", "2026-04", 1)], CONV), "site_events": df([("s2", "acquisition", "2026-03")], EV)},
     ["site s2 2026-04", "the site has no conversion option"]),
    # L1 0.5 MW = 5 racks, L2 1 MW = 10 racks: 15 > 10 HPC racks
    ("hpc racks", None, {"leases": df([("L1", "s1", "2026-02", 1.0), ("L2", "s1", "2026-02", 1.0)], LEASE)},
     ["site s1 2026-02", "running leases (L1, L2) need 15 HPC racks but only 10 are online"]),
    ("lease window", None, {"leases": df([("L1", "s1", "2026-05", 1.0)], LEASE)},
     ["lease L1 2026-05", "hand-over outside its window 2026-02..2026-03"]),
    ("lease ineligible", None, {"leases": df([("L1", "s2", "2026-03", 1.0)], LEASE), "site_events": df([("s2", "acquisition", "2026-03")], EV)},
     ["lease L1 2026-03", "site s2 is not eligible (eligible: s1)"]),
    ("lease twice", None, {"leases": df([("L1", "s1", "2026-02", 0.5), ("L1", "s1", "2026-02", 0.5)], LEASE)},
     ["lease L1", "listed more than once at site(s) s1"]),
    ("lease shares", None, {"leases": df([("L2", "s1", "2026-03", 0.5), ("L2", "s2", "2026-03", 0.3)], LEASE),
                            "site_events": df([("s2", "acquisition", "2026-03")], EV)},
     ["lease L2", "shares sum to 0.8, not 1"]),
    ("lease split", _set("leases.0.eligible_sites", None),
     {"leases": df([("L1", "s1", "2026-03", 0.5), ("L1", "s2", "2026-03", 0.5)], LEASE), "site_events": df([("s2", "acquisition", "2026-03")], EV)},
     ["lease L1", "split across sites s1, s2 but it is not splittable"]),
    ("lease months differ", None, {"leases": df([("L2", "s1", "2026-03", 0.5), ("L2", "s2", "2026-04", 0.5)], LEASE),
                                   "site_events": df([("s2", "acquisition", "2026-03")], EV)},
     ["lease L2", "hand-over months differ between sites (2026-03, 2026-04)"]),
    ("purchase months", None, {"purchases": df([("p1", "s1", "2026-05", 10)], PUR)},
     ["purchase option p1 2026-05", "ordered outside the option's months 2026-02..2026-04"]),
    ("purchase site", None, {"purchases": df([("p1", "s2", "2026-03", 10)], PUR), "site_events": df([("s2", "acquisition", "2026-03")], EV)},
     ["purchase option p1 2026-03", "site s2 may not receive its units (allowed: s1)"]),
    ("purchase max", None, {"purchases": df([("p1", "s1", "2026-02", 300), ("p1", "s1", "2026-03", 200)], PUR)},
     ["purchase option p1", "500 units bought, more than max_units 400"]),
    ("purchase delivery", _set("fleet.purchase_options.0.last_month", None), {"purchases": df([("p1", "s1", "2026-06", 10)], PUR)},
     ["purchase option p1 2026-06", "10 units would be delivered after the horizon's last period 2026-06"]),
    ("expansion early", None, {"grid_expansions": df([("s1", "g1", "2026-01")], GX)},
     ["grid expansion g1 at site s1 2026-01", "started before its earliest month 2026-02"]),
    ("expansion twice", None, {"grid_expansions": df([("s1", "g1", "2026-02"), ("s1", "g1", "2026-03")], GX)},
     ["grid expansion g1 at site s1", "started 2 times (2026-02, 2026-03)"]),
    ("expansion late", None, {"grid_expansions": df([("s1", "g1", "2026-06")], GX)},
     ["grid expansion g1 at site s1 2026-06", "would be online after the horizon's last period 2026-06"]),
    ("sale early", None, {"site_events": df([("s1", "sale", "2026-02")], EV), "retirements": df([("s1", "a100", "2026-02", 1500)], RET)},
     ["site s1 2026-02", "sold before the sale option's earliest month 2026-03"]),
    ("sale twice", None, {"site_events": df([("s1", "sale", "2026-03"), ("s1", "sale", "2026-04")], EV),
                          "retirements": df([("s1", "a100", "2026-03", 1500)], RET)},
     ["site s1", "sale listed 2 times (2026-03, 2026-04)"]),
    ("acquisition early", None, {"site_events": df([("s2", "acquisition", "2026-02")], EV)},
     ["site s2 2026-02", "acquired before it is available (2026-03)"]),
    ("sale without option", None, {"site_events": df([("s2", "sale", "2026-04")], EV)},
     ["site s2 2026-04", "sold but the site has no sale option"]),
    # s1 sold in 2026-03 with its 1500 units still installed
    ("units unowned", None, {"site_events": df([("s1", "sale", "2026-03")], EV)},
     ["site s1 2026-03", "holds 1500 ASIC units while the site is not owned", "(and 3 more periods)"]),
    ("lease unowned", None, {"leases": df([("L2", "s2", "2026-02", 1.0)], LEASE)},
     ["lease L2 2026-02", "runs at site s2 while the site is not owned"]),
    ("energy unowned", None, _en(("ix2", "2026-01", 100, 100, 0)),
     ["contract ix2 2026-01", "100 MWh while site s2 is not owned"]),
    ("project unowned", None, {"grid_expansions": df([("s1", "g1", "2026-04")], GX), "site_events": df([("s1", "sale", "2026-03")], EV),
                               "retirements": df([("s1", "a100", "2026-03", 1500)], RET)},
     ["grid expansion g1 at site s1 2026-04", "started while the site is not owned"]),
    ("treasury negative", None, {"btc_sales": df([("base", "2026-02", 5.0)], ["scenario", "month", "btc"])},
     ["treasury 2026-02", "BTC balance -5 BTC is negative"]),
    ("treasury sales not allowed", lambda r: r.update(treasury={"btc_held_start": 10, "allow_treasury_sales": False}),
     {"btc_sales": df([("base", "2026-02", 1.0)], ["scenario", "month", "btc"])},
     ["treasury 2026-02", "sells 1 BTC but treasury.allow_treasury_sales is false"]),
    ("capex budget", lambda r: r.update(policy={"capex_budget_usd_per_year": 400_000}),
     {"conversions": df([("s1", "2026-02", 1)], CONV), "retirements": df([("s1", "a100", "2026-02", 500)], RET)},
     ["capex budget 2026", "spending 1,000,000 USD", "exceeds the budget 400,000 USD"]),
    # the same conversion at a 50 % joint venture: the company spends half, 500,000 USD
    ("capex budget JV", lambda r: (r.update(policy={"capex_budget_usd_per_year": 400_000}), r["sites"][0].update(ownership_share=0.5)),
     {"conversions": df([("s1", "2026-02", 1)], CONV), "retirements": df([("s1", "a100", "2026-02", 500)], RET)},
     ["capex budget 2026", "spending 500,000 USD", "exceeds the budget 400,000 USD"]),
    # initially owned racks: s1 20 + 10 = 30; 0.6 x 30 = 18 > 10 mining racks left
    ("min mining share", lambda r: r.update(policy={"min_mining_share": 0.6}),
     {"conversions": df([("s1", "2026-02", 1)], CONV), "retirements": df([("s1", "a100", "2026-02", 500)], RET)},
     ["policy 2026-02", "10 mining racks are below min_mining_share 0.6 x 30 racks = 18"]),
    # mining racks at the start: s1 20 + s2 10 = 30; 0.2 x 30 = 6 < 10 converted
    ("max converted share", lambda r: r.update(policy={"max_converted_share": 0.2}),
     {"conversions": df([("s1", "2026-02", 1)], CONV), "retirements": df([("s1", "a100", "2026-02", 500)], RET)},
     ["policy 2026-02", "10 racks converted exceed max_converted_share 0.2 x 30 mining racks = 6"]),
    ("fixed conversion", lambda r: r.update(policy={"fixed_decisions": [{"kind": "conversion", "site": "s1", "month": "2026-03", "blocks": 1}]}),
     {}, ["fixed decision 0 (conversion)", "site s1 must start 1 conversion blocks in 2026-03, the plan starts 0"]),
    ("fixed lease", lambda r: r.update(policy={"fixed_decisions": [{"kind": "lease", "lease": "L1", "signed": True}]}),
     {}, ["fixed decision 0 (lease)", "lease L1 must be signed, the plan does not sign it"]),
    ("fixed lease month", lambda r: r.update(policy={"fixed_decisions": [{"kind": "lease", "lease": "L1", "signed": True, "month": "2026-03"}]}),
     {"leases": df([("L1", "s1", "2026-02", 1.0)], LEASE)}, ["lease L1 must be handed over in 2026-03, the plan hands it over in 2026-02"]),
    ("fixed contract", lambda r: r.update(policy={"fixed_decisions": [{"kind": "contract", "contract": "opt", "signed": True}]}),
     {}, ["fixed decision 0 (contract)", "contract opt must be signed"]),
    ("fixed purchase", lambda r: r.update(policy={"fixed_decisions": [{"kind": "purchase", "option": "p1", "site": "s1", "month": "2026-02", "units": 100}]}),
     {}, ["purchase option p1 must buy 100 units for site s1 in 2026-02, the plan buys 0"]),
    ("fixed sale", lambda r: r.update(policy={"fixed_decisions": [{"kind": "sale", "site": "s1", "happens": False}]}),
     {"site_events": df([("s1", "sale", "2026-04")], EV), "retirements": df([("s1", "a100", "2026-04", 1500)], RET)},
     ["site s1 sale must not happen, the plan has it in 2026-04"]),
    ("fixed expansion", lambda r: r.update(policy={"fixed_decisions": [{"kind": "grid_expansion", "site": "s1", "option": "g1", "month": "2026-02"}]}),
     {}, ["grid expansion g1 at site s1 must start in 2026-02, the plan has none"]),
    ("mandatory unsigned", None, {"contracts": df([("fx", False)], ["contract", "signed"])},
     ["contract fx", "is not optional and cannot be left unsigned"]),
    ("unknown site", None, {"conversions": df([("zz", "2026-02", 1)], CONV)}, ["plan.conversions row 0", "unknown site 'zz'"]),
    ("unknown lease", None, {"leases": df([("LX", "s1", "2026-02", 1.0)], LEASE)}, ["plan.leases row 0", "unknown lease 'LX'"]),
    ("unknown contract", None, {"contracts": df([("cx", True)], ["contract", "signed"])}, ["plan.contracts row 0", "unknown contract 'cx'"]),
    ("unknown contract in energy", None, _en(("cx", "2026-01", 1, 1, 0)), ["plan.energy", "unknown contract 'cx' (1 row)"]),
    ("unknown model", None, {"retirements": df([("s1", "m9", "2026-02", 1)], RET)}, ["plan.retirements row 0", "unknown ASIC model 'm9'"]),
    ("unknown option", None, {"purchases": df([("p9", "s1", "2026-02", 1)], PUR)}, ["plan.purchases row 0", "unknown purchase option 'p9'"]),
    ("unknown grid option", None, {"grid_expansions": df([("s1", "g9", "2026-02")], GX)},
     ["plan.grid_expansions row 0", "unknown grid expansion option of site s1 'g9'"]),
    ("unknown scenario", None, {"operations": df([("bull", "s1", "a100", "2026-01", 10)], OPS)},
     ["plan.operations", "unknown scenario 'bull' (1 row)"]),
    ("month outside", None, {"conversions": df([("s1", "2030-01", 1)], CONV)},
     ["plan.conversions row 0", "month 2030-01 is outside the horizon 2026-01..2026-06"]),
    ("month malformed", None, {"leases": df([("L1", "s1", "Jan", 1.0)], LEASE)},
     ["plan.leases row 0", "month 'Jan' is not a month written YYYY-MM"]),
    ("negative units", None, _ops(-5), ["plan.operations row 0", "units -5 is negative"]),
    ("unknown event", None, {"site_events": df([("s1", "merger", "2026-02")], EV)}, ["unknown event 'merger'"]),
    ("blocks not a number", None, {"conversions": df([("s1", "2026-02", float("nan"))], CONV)},
     ["plan.conversions row 0", "blocks is not a number"]),
    ("blocks negative", None, {"conversions": df([("s1", "2026-02", -1)], CONV)}, ["plan.conversions row 0", "blocks -1 is negative"]),
    ("acquired without option", None, {"site_events": df([("s1", "acquisition", "2026-02")], EV)},
     ["site s1 2026-02", "acquired but the site has no acquisition option"]),
    ("sold without option", None, {"site_events": df([("s2", "acquisition", "2026-03"), ("s2", "sale", "2026-04")], EV)},
     ["site s2 2026-04", "sold but the site has no sale option"]),
    # s1 sold in 2026-03 (its sale option's earliest month), a conversion started there in 2026-04
    ("conversion not owned", None, {"site_events": df([("s1", "sale", "2026-03")], EV), "conversions": df([("s1", "2026-04", 1)], CONV)},
     ["site s1 2026-04", "conversion started while the site is not owned"]),
    ("event unknown site", None, {"site_events": df([("zz", "sale", "2026-03")], EV)}, ["plan.site_events row 0", "unknown site 'zz'"]),
    ("event month outside", None, {"site_events": df([("s1", "sale", "2031-01")], EV)},
     ["plan.site_events row 0", "month 2031-01 is outside the horizon 2026-01..2026-06"]),
    ("conversion unknown site", None, {"conversions": df([("zz", "2026-02", 1)], CONV)}, ["plan.conversions row 0", "unknown site 'zz'"]),
    ("expansion unknown site", None, {"grid_expansions": df([("zz", "g1", "2026-02")], GX)},
     ["plan.grid_expansions row 0", "unknown site 'zz'"]),
    ("expansion month malformed", None, {"grid_expansions": df([("s1", "g1", "2026-13")], GX)},
     ["plan.grid_expansions row 0", "month '2026-13' is not a month written YYYY-MM"]),
    ("purchase unknown option", None, {"purchases": df([("p9", "s1", "2026-03", 10)], PUR)},
     ["plan.purchases row 0", "unknown purchase option 'p9'"]),
    ("purchase units negative", None, {"purchases": df([("p1", "s1", "2026-03", -10)], PUR)},
     ["plan.purchases row 0", "units -10 is negative"]),
    ("retirement unknown model", None, {"retirements": df([("s1", "z9", "2026-03", 10)], RET)},
     ["plan.retirements row 0", "unknown ASIC model 'z9'"]),
    ("retirement unknown site", None, {"retirements": df([("zz", "a100", "2026-03", 10)], RET)},
     ["plan.retirements row 0", "unknown site 'zz'"]),
    ("gpu unknown option", None, {"gpu_purchases": df([("g9", "s1", "2026-03", 1.0)], ["option", "site", "month", "mw"])},
     ["plan.gpu_purchases row 0", "unknown GPU option 'g9'"]),
    ("hedge unknown forward", None, {"hedges": df([("f9", "2026-03", 1.0)], ["forward", "month", "ph_s"])},
     ["plan.hedges row 0", "unknown hashprice forward (hedges.forwards) 'f9'"]),
    ("contract signed twice differently", None, {"contracts": df([("opt", True), ("opt", False)], CON)},
     ["contract opt", "listed 2 times with different signed values"]),
    ("fixed lease unsigned but signed", _set("policy", {"fixed_decisions": [{"kind": "lease", "lease": "L1", "signed": False}]}),
     {"leases": df([("L1", "s1", "2026-02", 1.0)], LEASE)}, ["fixed decision 0 (lease)", "lease L1 must not be signed, the plan signs it"]),
    ("fixed lease at another site", _set("policy", {"fixed_decisions": [{"kind": "lease", "lease": "L2", "signed": True, "site": "s2"}]}),
     {"leases": df([("L2", "s1", "2026-02", 1.0)], LEASE)},
     ["fixed decision 0 (lease)", "lease L2 must be hosted at site s2, the plan uses s1"]),
    ("fixed sale in another month", _set("policy", {"fixed_decisions": [{"kind": "sale", "site": "s1", "month": "2026-04"}]}),
     {"site_events": df([("s1", "sale", "2026-03")], EV)},
     ["fixed decision 0 (sale)", "site s1 sale must happen in 2026-04, the plan has it in 2026-03"]),
    ("fixed expansion not built", _set("policy", {"fixed_decisions": [{"kind": "grid_expansion", "site": "s1", "option": "g1", "happens": False}]}),
     {"grid_expansions": df([("s1", "g1", "2026-02")], GX)},
     ["fixed decision 0 (grid_expansion)", "grid expansion g1 at site s1 must not be built, the plan starts it in 2026-02"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_violation_sentence(case):
    _, edit, tables, fragments = case
    inst = load("rules", edit)
    ev = evaluate(inst, Plan(**tables))
    hits = [v for v in ev.violations if all(f in v for f in fragments)]
    assert hits, f"no violation contains {fragments}; got {ev.violations}"


def test_cash_below_minimum():
    # no ASICs and no take-or-pay: the only cash flow is the acquisition of s2 (500,000 USD) in
    # 2026-03, from 100,000 USD cash: -400,000 USD at the end of March.
    def edit(raw):
        raw["fleet"]["installed"] = []
        raw["contracts"] = [c for c in raw["contracts"] if c["id"] != "fx"]
        raw["treasury"] = {"cash_start_usd": 100_000, "min_cash_usd": 0, "allow_treasury_sales": False}

    ev = evaluate(load("rules", edit), Plan(site_events=df([("s2", "acquisition", "2026-03")], EV)))
    assert any("cash 2026-03: balance -400,000 USD is below the minimum 0 USD" in v for v in ev.violations), ev.violations


def test_breakdown_and_summary_weigh_scenarios_by_probability():
    # rules.yaml without ASICs and without the take-or-pay contract fx, two scenarios of probability
    # 0.25 and 0.75: the only cash flow is the acquisition of s2 (500,000 USD) in 2026-03, in both.
    # Expected PV = (0.25 + 0.75) x -500,000 x 1.1^(-3/12). An unknown site in a second event row
    # adds one violation sentence.
    def edit(raw):
        raw["fleet"]["installed"] = []
        raw["contracts"] = [c for c in raw["contracts"] if c["id"] != "fx"]
        sc = raw["scenarios"][0]
        raw["scenarios"] = [dict(sc, name="lo", probability=0.25), dict(sc, name="hi", probability=0.75)]

    ev = evaluate(load("rules", edit), Plan(site_events=df([("s2", "acquisition", "2026-03"), ("zz", "sale", "2026-04")], EV)))
    pv = -500_000 * 1.1 ** (-3 / 12)
    assert ev.npv_breakdown().loc["acquisitions_usd", "pv_usd"] == pytest.approx(pv, rel=1e-12)
    summ = ev.summary("rules", "p")
    assert summ["npv_usd"] == pytest.approx(pv, rel=1e-12)
    assert summ["npv_usd_by_scenario"] == {"lo": pytest.approx(pv, rel=1e-12), "hi": pytest.approx(pv, rel=1e-12)}
    assert summ["npv_breakdown_usd"]["acquisitions_usd"] == pytest.approx(pv, rel=1e-12)
    assert summ["violations"] == ["plan.site_events row 1: unknown site 'zz'"]
    assert not ev.ok
    # no financing section: no valuation keys; no terminal value, so no decision leans on one
    assert set(summ) == {"instance", "plan", "npv_usd", "npv_usd_by_scenario", "npv_breakdown_usd", "terminal", "violations"}
    assert summ["terminal"]["flags"] == []


def test_feasible_plans_have_no_violations_and_milp_noise_is_tolerated():
    inst = load("hand")
    noisy = HAND_PLAN.replace(energy=HAND_PLAN.energy.assign(used_mwh=HAND_PLAN.energy["used_mwh"] * (1 + 1e-7)),
                              operations=HAND_PLAN.operations.assign(units=HAND_PLAN.operations["units"] * (1 - 1e-7)))
    assert evaluate(inst, noisy).violations == []


def test_violations_in_several_scenarios_name_the_scenario():
    def edit(raw):
        sc = raw["scenarios"][0]
        raw["scenarios"] = [dict(sc, name="lo", probability=0.5), dict(sc, name="hi", probability=0.5)]

    ops = df([("lo", "s1", "a100", "2026-01", 1600), ("hi", "s1", "a100", "2026-01", 1600)], OPS)
    ev = evaluate(load("rules", edit), Plan(operations=ops))
    assert any("site s1 2026-01 (scenario lo): 1600 operating units" in v and "(and 1 more period/scenario case)" in v
               for v in ev.violations), ev.violations


def test_late_hand_over_pays_its_penalty():
    # L1 (0.5 MW, window 2026-02..03) with a late penalty of 1000 USD per MW-month, handed over
    # in 2026-05: 2 months late -> 1000 x 0.5 x 2 = 1000 USD paid in 2026-05, no violation
    inst = load("rules", _set("leases.0.late_penalty_usd_per_mw_month", 1000))
    ev = evaluate(inst, Plan(leases=df([("L1", "s1", "2026-05", 1.0)], LEASE)))
    assert ev.violations == []
    assert line(ev, "lease_penalty_usd") == pytest.approx(-1000)
    assert line(ev, "lease_penalty_usd", "2026-05") == pytest.approx(-1000)
    # rent starts at hand-over: 0.5 MW x 1000 x 100 = 50,000 in May and June only
    assert line(ev, "lease_revenue_usd") == pytest.approx(2 * 50_000)


# ---------------------------------------------------------------- numbers in sentences (benchmarks/MUTATION.md)


def test_numbers_in_violation_sentences():
    from types import SimpleNamespace

    from optimizer.evaluate.firststage import _number, fmt

    # thousands separators from 100,000 up (100,000 itself included); 6 significant digits below
    assert fmt(100_000) == "100,000" and fmt(99_999.5) == "99999.5" and fmt(1234567.4) == "1,234,567"
    # a negative zero reads as 0
    assert fmt(-0.0) == "0" and fmt(-1e-12) == "-1e-12"
    # a plan value: negative only beyond the tolerance 1e-6 (relative above 1); at -1e-6 it is 0
    st = SimpleNamespace(violations=[])
    assert _number(st, 0.0, "plan.x row 0", "units") == 0.0
    assert _number(st, 5e-7, "plan.x row 0", "units") == 5e-7
    assert _number(st, -1e-6, "plan.x row 0", "units") == 0.0
    assert st.violations == []
    assert _number(st, -2.0, "plan.x row 1", "units") is None
    assert _number(st, float("nan"), "plan.x row 2", "units") is None
    assert st.violations == ["plan.x row 1: units -2 is negative", "plan.x row 2: units is not a number"]


def test_operations_values_are_checked_row_by_row():
    from types import SimpleNamespace

    import numpy as np

    from optimizer.evaluate.evaluator import _Ops

    ops = object.__new__(_Ops)  # only the violation list of the state is used
    ops.st = SimpleNamespace(violations=[])
    # rows 1 (-2), 2 (NaN) and 4 (-1.5e-6, beyond the 1e-6 tolerance) are bad; row 3 (-1e-6) is 0
    df = pd.DataFrame({"units": [5.0, -2.0, float("nan"), -1e-6, -1.5e-6]})
    out = ops._values(df, "operations", "units", np.ones(5, dtype=bool))
    assert out.tolist() == [5.0, 0.0, 0.0, 0.0, 0.0]
    assert ops.st.violations == ["plan.operations row 1: units -2 is negative (and 2 more rows)"]
    # the first bad row not a number; rows outside ``ok`` are not read
    df = pd.DataFrame({"mw": [-7.0, float("nan"), -1.0]})
    out = ops._values(df, "hpc_operations", "mw", np.array([False, True, True]))
    assert out.tolist() == [0.0, 0.0]
    assert ops.st.violations[-1] == "plan.hpc_operations row 1: mw is not a number (and 1 more rows)"
    # one bad row: no count
    ops._values(pd.DataFrame({"mw": [-3.0]}), "t", "mw", np.ones(1, dtype=bool))
    assert ops.st.violations[-1] == "plan.t row 0: mw -3 is negative"


def test_capex_spread_past_the_horizon_is_dropped():
    # rules.yaml: s1's conversion block (10 racks x 100 kW = 1 MW at 1,000,000 USD per MW) takes
    # 2 months; started in the last month (2026-06), half of it falls in June and half after the
    # horizon, which is dropped (the block would not be ready inside the horizon: a violation)
    ev = evaluate(load("rules"), Plan(conversions=df([("s1", "2026-06", 1)], CONV), retirements=df([("s1", "a100", "2026-06", 500)], RET)))
    cf = ev.cashflows
    conv = cf[cf["item"] == "capex_usd"]
    assert conv["usd"].sum() == pytest.approx(-500_000, rel=1e-12) and set(conv["month"]) == {"2026-06"}
    assert ev.violations == ["site s1 2026-06: conversion of 1 blocks would finish in 2026-08, after the horizon's last period 2026-06 (lead 2 months)"]


def test_late_hand_over_penalty_at_a_joint_venture():
    # rules.yaml's L1 (0.5 MW, window 2026-02..03) with a late penalty of 1,000 USD per MW-month,
    # handed over in 2026-05 (2 months late) at s1, a 50 % joint venture:
    # 1,000 x 0.5 MW x 2 months x 0.5 = 500 USD, booked at the hand-over
    def edit(r):
        r["leases"][0]["late_penalty_usd_per_mw_month"] = 1000
        r["sites"][0]["ownership_share"] = 0.5

    ev = evaluate(load("rules", edit), Plan(leases=df([("L1", "s1", "2026-05", 1.0)], LEASE)))
    cf = ev.cashflows
    pen = cf[(cf["item"] == "lease_penalty_usd") & (cf["usd"] != 0)]
    assert pen["usd"].sum() == pytest.approx(-500.0, rel=1e-12) and set(pen["month"]) == {"2026-05"}
    assert ev.violations == []


def test_late_penalty_of_a_split_lease_is_paid_share_by_share():
    # rules.yaml's L2 (1 MW, window 2026-02..04, splittable) with a late penalty of 1,000 USD per
    # MW-month, delivered half from s1 and half from s2 (acquired in 2026-03), both handed over in
    # 2026-06 (2 months late); each half draws 0.5 MW x 720 h = 360 MWh from its site's index contract.
    # Each half pays 1,000 x 1 MW x 2 months x 0.5 = 1,000 USD, booked at the hand-over
    def edit(r):
        r["leases"][1]["late_penalty_usd_per_mw_month"] = 1000

    energy = df([("base", c, "2026-06", 360.0, 360.0, 0.0) for c in ("ix", "ix2")],
                ["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"])
    ev = evaluate(load("rules", edit), Plan(leases=df([("L2", "s1", "2026-06", 0.5), ("L2", "s2", "2026-06", 0.5)], LEASE),
                                            site_events=df([("s2", "acquisition", "2026-03")], EV), energy=energy))
    assert ev.violations == []
    cf = ev.cashflows
    pen = cf[(cf["item"] == "lease_penalty_usd") & (cf["usd"] != 0)]
    assert pen.groupby("site")["usd"].sum().to_dict() == pytest.approx({"s1": -1000.0, "s2": -1000.0}, rel=1e-12)
    assert set(pen["month"]) == {"2026-06"}


def test_a_hand_over_before_the_window_is_not_late():
    # L1 (window 2026-02..03, late penalty 1,000 USD per MW-month) handed over in 2026-01: one month
    # EARLY, a violation of the window, and 0 months late: no penalty line
    ev = evaluate(load("rules", _set("leases.0.late_penalty_usd_per_mw_month", 1000)),
                  Plan(leases=df([("L1", "s1", "2026-01", 1.0)], LEASE)))
    assert any("L1" in v and "2026-01" in v for v in ev.violations), ev.violations
    assert line(ev, "lease_penalty_usd") == 0.0
