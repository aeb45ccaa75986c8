"""Second hand instance (tests/instances/hand2.yaml): every cash-flow line of models/economics.md is
non-zero for a fixed plan, and the evaluator must price it line by line (item x period x site x
scenario) exactly as tests/reference_economics.py does, a reference written from
models/economics.md alone (it imports nothing from optimizer). The MILP with the plan's first
stage fixed must reach the same objective: the plan's operations are optimal for its first stage
(argued below), so the LP over operations cannot do better, and it cannot do worse.

Why the plan's operations are optimal (both scenarios, every quarter):
- Mining: the worst unit (m1 at alpha, bear, last quarter, after the halving) earns ~80 USD per
  MWh it draws, above the dearest supply (north price + 10 <= 62 USD/MWh), and no site reaches its
  grid: every installed unit runs (``test_mining_beats_the_dearest_energy`` checks the margins).
- alpha: the fixed contract (45, 47.7 USD/MWh from May 2027) is cheaper than the index
  (north price + 10 >= 52), and its first 90 % of the cap is paid anyway: it covers the load up to
  its cap (20 MW x its hours), the index the rest. In 2026-07 the load (16.875 MW) is below the
  take-or-pay minimum (18 MW): the shortfall is paid. No sell-back: delivered = used.
- beta: the plant (30 USD/MWh) is cheaper than the south price (40..48) in every quarter: it runs
  at full power (3 MW x its hours) from May 2026, covers LB's and LC's load (at most 2.875 MW)
  and exports the rest.
- gamma: the fixed contract (40 USD/MWh, cap 3 MW) is cheaper than the north price (>= 42) at
  which the plant's energy sells: the contract covers the load (2.1 MW, above its 1.5 MW minimum),
  the plant (5 USD/MWh) exports everything, until the sale.
- Treasury (mined BTC held): P x DF rises every quarter up to 2027-01 and falls in 2027-04, so
  every coin held by 2027-01 is best sold then. Coins mined in 2027-04 are worth P x DF_5 sold in
  that quarter and P x DF_end held to the end (terminal value, same price): a quarter's flows are
  discounted month by month (DF_5 = mean of 1.12^(-16/12), 1.12^(-17/12), 1.12^(-18/12)), so
  DF_5 > DF_end = 1.12^(-18/12) and selling them is optimal. A sale is one schedule for both
  scenarios (models/trees.md): each quarter sells the most both scenarios hold. The evaluated plan holds them
  (allowed, one quarter's discounting worse) so that terminal_treasury_usd is priced too; the
  solver test fixes the first stage of the plan that sells them (OPTIMAL_ROWS).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml
from reference_economics import ITEMS, Reference

from optimizer.evaluate import evaluate
from optimizer.instance import Instance
from optimizer.plan import COLUMNS, Plan

HERE = Path(__file__).parent / "instances"
RAW = yaml.safe_load((HERE / "hand2.yaml").read_text())
REL = 1e-9

# ---------------------------------------------------------------- the fixed plan

LABELS = ["2026-01", "2026-04", "2026-07", "2026-10", "2027-01", "2027-04"]
FIRST_STAGE = {
    "conversions": [{"site": "alpha", "month": "2026-04", "blocks": 3}],
    "grid_expansions": [{"site": "alpha", "option": "g1", "month": "2026-01"}],
    "purchases": [{"option": "p2", "site": "alpha", "month": "2026-01", "units": 500}],
    # 3 blocks x 10 racks leave mining in 2026-04: 70 racks x 100 = 7,000 positions for the
    # 8,000 - 1,500 = 6,500 m1 and, from 2026-07, the 500 m2 delivered (lead 4 months = 2 quarters)
    "retirements": [{"site": "alpha", "model": "m1", "month": "2026-04", "units": 1500},
                    {"site": "gamma", "model": "m1", "month": "2026-10", "units": 1000}],
    "leases": [{"lease": "LA", "site": "alpha", "month": "2026-10", "share": 1.0},
               {"lease": "LB", "site": "alpha", "month": "2026-04", "share": 0.25},
               {"lease": "LB", "site": "beta", "month": "2026-04", "share": 0.75},
               {"lease": "LC", "site": "beta", "month": "2026-07", "share": 1.0}],
    "contracts": [{"contract": "ix", "signed": True}, {"contract": "gen", "signed": True}],
    "site_events": [{"site": "beta", "event": "acquisition", "month": "2026-01"},
                    {"site": "gamma", "event": "sale", "month": "2026-10"}],
}
# every installed unit runs: alpha 8,000 m1, then 6,500 from 2026-04; 500 m2 from 2026-07;
# gamma 1,000 m1 until its sale in 2026-10
UNITS = {("alpha", "m1"): [8000, 6500, 6500, 6500, 6500, 6500],
         ("alpha", "m2"): [0, 0, 500, 500, 500, 500],
         ("gamma", "m1"): [1000, 1000, 1000, 0, 0, 0]}


def _plan_rows() -> tuple[dict[str, list[dict]], Reference]:
    """The plan's tables as rows; energy and BTC sales follow the loads and the BTC mined, which the
    reference computes from the first stage and the operations (not from the energy rows)."""
    rows = copy.deepcopy(FIRST_STAGE)
    rows["operations"] = [{"scenario": w, "site": s, "model": m, "month": LABELS[t], "units": float(n)}
                          for w in ("bull", "bear") for (s, m), units in UNITS.items() for t, n in enumerate(units) if n]
    pre = Reference(RAW, rows)
    fx = next(c for c in RAW["contracts"] if c["id"] == "fx")
    fx_hours = pre.contract_hours(fx)
    gen_hours = pre.contract_hours(next(c for c in RAW["contracts"] if c["id"] == "gen"))
    solar_hours = pre.contract_hours(next(c for c in RAW["contracts"] if c["id"] == "solar"))
    energy, sales, last_sales = [], [], []
    for w in ("bull", "bear"):
        alpha, beta, gamma = pre.site_load_mwh(w, "alpha"), pre.site_load_mwh(w, "beta"), pre.site_load_mwh(w, "gamma")
        for t, lab in enumerate(LABELS):
            from_fx = min(alpha[t], 20 * fx_hours[t])          # cap 20 MW x hours in the term
            if from_fx > 0:
                energy.append({"scenario": w, "contract": "fx", "month": lab, "delivered_mwh": from_fx, "used_mwh": from_fx, "sold_mwh": 0.0})
            if alpha[t] - from_fx > 0:
                energy.append({"scenario": w, "contract": "ix", "month": lab, "delivered_mwh": alpha[t] - from_fx,
                               "used_mwh": alpha[t] - from_fx, "sold_mwh": 0.0})
            generated = 3 * gen_hours[t] * pre.own["beta"][t]   # 3 MW flat out while owned
            if generated > 0:
                energy.append({"scenario": w, "contract": "gen", "month": lab, "delivered_mwh": generated,
                               "used_mwh": beta[t], "sold_mwh": generated - beta[t]})
            if gamma[t] > 0:
                energy.append({"scenario": w, "contract": "fxc", "month": lab, "delivered_mwh": gamma[t], "used_mwh": gamma[t], "sold_mwh": 0.0})
            exported = 1 * solar_hours[t] * pre.own["gamma"][t]   # 1 MW flat out while owned, all sold
            if exported > 0:
                energy.append({"scenario": w, "contract": "solar", "month": lab, "delivered_mwh": exported, "used_mwh": 0.0, "sold_mwh": exported})
        # the 40 BTC held at the start and what is mined up to 2027-01 can be sold in 2027-01
        mined = [sum(x) for x in zip(*(pre.btc_mined(w, s) for s in ("alpha", "beta", "gamma")))]
        sales.append({"scenario": w, "month": "2027-01", "btc": 40 + sum(mined[:5])})
        last_sales.append({"scenario": w, "month": "2027-04", "btc": mined[5]})
    # a treasury sale is a commitment, taken before the scenario is known (models/trees.md): both
    # scenarios sell the same amount, what the scenario with fewer coins holds (bull keeps the rest).
    # P x DF peaks in 2027-01 in each scenario, hence in expectation: the most both hold then is sold
    # then; in 2027-04 selling beats holding (DF_5 > DF_end) by E[P5] x (DF_5 - DF_end) a coin, so
    # the most both still hold is sold then
    least = min(r["btc"] for r in sales)
    held = [r["btc"] - least + last["btc"] for r, last in zip(sales, last_sales)]
    sales = [{**r, "btc": least} for r in sales]
    last_sales = [{**r, "btc": min(held)} for r in last_sales]
    rows["energy"], rows["btc_sales"] = energy, sales
    optimal = {**rows, "btc_sales": sales + last_sales}
    return rows, optimal, pre


PLAN_ROWS, OPTIMAL_ROWS, PRE = _plan_rows()
# a(15) = sum_{k=1..15} 1.12^(-k/12); reversion factor rho(15) = max(1.12^(-15/12), 1 - 0.08/12 x a(15)):
# the cap rate 8 % is below 12 x (1.12^(1/12) - 1) = 11.39 %, so the second term is the larger
A15 = sum(1.12 ** (-k / 12) for k in range(1, 16))
RHO15 = 1 - 0.08 / 12 * A15
assert RHO15 > 1.12 ** (-15 / 12)


def as_plan(rows: dict[str, list[dict]]) -> Plan:
    return Plan(**{k: pd.DataFrame(v, columns=COLUMNS[k]) for k, v in rows.items()}, name="hand2")


@pytest.fixture(scope="module")
def inst() -> Instance:
    return Instance.from_dict(RAW, base_dir=HERE)


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference(RAW, PLAN_ROWS)


@pytest.fixture(scope="module")
def ev(inst):
    return evaluate(inst, as_plan(PLAN_ROWS))


def _table(lines: dict, item: str) -> dict[tuple[str, int, str], float]:
    return {(w, t, s): v for (w, t, s, i), v in lines.items() if i == item and abs(v) > 1e-9}


def _evaluator_lines(ev) -> dict[tuple[str, int, str, str], float]:
    g = ev.cashflows.groupby(["scenario", "period", "site", "item"])["usd"].sum()
    return {(w, int(t), s, i): float(v) for (w, t, s, i), v in g.items()}


# ---------------------------------------------------------------- the instance does what it says


def test_plan_is_feasible(ev):
    assert ev.violations == []


def test_every_line_is_nonzero(ref, ev):
    got = set(ev.cashflows["item"])
    for item in ITEMS:
        assert _table(ref.lines, item), f"reference: {item} is zero everywhere"
        assert item in got, f"evaluator: {item} is zero everywhere"


def test_reference_against_hand_arithmetic(ref):
    """Lines of the reference written out by hand (so a slip in the reference shows too)."""
    for w in ("bull", "bear"):
        line = lambda t, s, i: ref.lines.get((w, t, s, i), 0.0)
        # conversion: 3 blocks x 10 racks x 130 kW = 3.9 MW x 2.5 M$ = 9.75 M$ over 2 quarters (2026-04, 2026-07);
        # grid expansion 600,000 over 2 quarters (lead 4 months) from 2026-01
        assert line(0, "alpha", "capex_usd") == pytest.approx(-300_000)
        assert line(1, "alpha", "capex_usd") == pytest.approx(-300_000 - 4_875_000)
        assert line(2, "alpha", "capex_usd") == pytest.approx(-4_875_000)
        # 500 m2 x 200 TH x 15 USD/TH in 2026-01
        assert line(0, "alpha", "asic_purchases_usd") == pytest.approx(-1_500_000)
        # 1,500 m1 x 120 at alpha (2026-04), 1,000 m1 x 120 at gamma (2026-10)
        assert line(1, "alpha", "salvage_usd") == pytest.approx(180_000)
        assert line(3, "gamma", "salvage_usd") == pytest.approx(120_000)
        # LA handed over in 2026-10, 6 months after its window end 2026-04: 2,000 x 3.4 MW x 6
        assert line(3, "alpha", "lease_penalty_usd") == pytest.approx(-40_800)
        assert line(0, "beta", "acquisitions_usd") == pytest.approx(-3_000_000)
        assert line(1, "beta", "acquisitions_usd") == pytest.approx(-2_500_000)      # the plant, start 2026-05
        assert line(3, "gamma", "site_sales_usd") == pytest.approx(1_500_000)
        assert line(0, "alpha", "contract_fees_usd") == pytest.approx(-15_000)     # ix, from the horizon start
        assert line(1, "alpha", "contract_fees_usd") == pytest.approx(-25_000)     # fx, mandatory, starts 2026-05
        assert line(1, "beta", "contract_fees_usd") == pytest.approx(-5_000)
        # LB: 2 MW x 1000 x 110 = 220,000 a month; x 1.05 from Apr 2027 (lease year 1)
        assert line(1, "alpha", "lease_revenue_usd") == pytest.approx(0.25 * 3 * 220_000)
        assert line(5, "beta", "lease_revenue_usd") == pytest.approx(0.75 * 3 * 231_000)
        # LC (Jul .. Dec 2026): 0.8 MW x 1000 x 95 x 3 = 228,000 a quarter, beside LB's 0.75 x 660,000
        assert line(2, "beta", "lease_revenue_usd") == pytest.approx(495_000 + 228_000)
        assert line(4, "beta", "lease_revenue_usd") == pytest.approx(495_000)
        # alpha, 2026-10: rent LA 3.4 x 1000 x 130 x 3 = 1,326,000 + LB 0.25 x 660,000 = 165,000
        assert line(3, "alpha", "lease_revenue_usd") == pytest.approx(1_326_000 + 165_000)
        # alpha opex 2026-10: mining (6,500 x 2 kW + 500 x 3.5 kW = 14.75 MW) x 800 x 3
        # + HPC (10 + 30 racks) x 0.13 MW = 5.2 MW x 4,000 x 3 + LA 15 % x 1,326,000 + LB 9,000 x 0.5 MW x 3
        assert line(3, "alpha", "opex_usd") == pytest.approx(-(14.75 * 800 * 3 + 5.2 * 4000 * 3 + 0.15 * 1_326_000 + 9000 * 0.5 * 3))
        # gamma 2026-01: mining 1,000 x 2 kW = 2 MW x 900 x 3 + HPC 5 racks x 0.1 MW x 2,500 x 3; after
        # the sale (2026-10) nothing
        assert line(0, "gamma", "opex_usd") == pytest.approx(-(2 * 900 * 3 + 0.5 * 2500 * 3))
        assert line(3, "gamma", "opex_usd") == 0.0
        # gamma power 2026-01: load 1,000 x 2 kW x 1.05 x 2,160 h = 4,536 MWh at 40 (above the minimum
        # 0.5 x 3 MW x 2,160 h = 3,240 MWh); plant 1 MW x 2,160 h x 5 + 3 months x 8,000; none after the sale
        assert line(0, "gamma", "power_cost_usd") == pytest.approx(-(40 * 4536 + 5 * 2160 + 3 * 8000))
        assert line(3, "gamma", "power_cost_usd") == 0.0
        # beta plant fixed cost: May + Jun 2026 = 2 months x 20,000 in 2026-04 (+ 30 USD/MWh generated)
        gen = 3 * 24 * (31 + 30)
        assert line(1, "beta", "power_cost_usd") == pytest.approx(-(30 * gen + 2 * 20_000))
        # terminal salvage: 6,500 m1 x 120 + 500 m2 x 900; gamma holds nothing at the end
        assert line(5, "alpha", "terminal_asic_salvage_usd") == pytest.approx(6500 * 120 + 500 * 900)
        # the plant at beta is owned at the end; gamma's is not (site sold)
        assert line(5, "beta", "terminal_generation_usd") == pytest.approx(1_800_000)
        assert line(5, "gamma", "terminal_generation_usd") == 0.0
        # LB at beta after the horizon (Jul 2027 .. Sep 2028, k = 1..15): rent 231,000 to Mar 2028
        # (k 1..9), 242,550 from Apr 2028 (k 10..15), minus opex 9,000 x 2 MW, x 0.75; minus beta's
        # fixed HPC opex on LB's racks after the horizon: 3,000 x 7.5 racks x 0.2 MW = 4,500 a month;
        # pass-through at the site's energy price: the landlord bears no power (net 0)
        noi = sum((231_000 - 18_000) * 1.12 ** (-k / 12) for k in range(1, 10)) \
            + sum((242_550 - 18_000) * 1.12 ** (-k / 12) for k in range(10, 16))
        assert line(5, "beta", "terminal_lease_noi_usd") == pytest.approx(0.75 * noi - 4_500 * A15)
        # alpha after the horizon, k = 1..15 (Jul 2027 .. Sep 2028), each month x 1.12^(-k/12):
        #   LA (handed over 2026-10): rent 3.4 MW x 130,000 = 442,000 in lease year 0 (k 1..3), x 1.04
        #   = 459,680 from Oct 2027 (k 4..15); NOI 85 %; fixed HPC opex 4,000 x 27 racks x 0.13 MW =
        #   14,040; power borne by the landlord 3.4 MW x PUE 1.3 x hours at what alpha pays after the
        #   horizon: fx ended in 2027-06 and ix is optional, so the last quarter's north price
        #   LB (0.25): 0.25 x (rent - 18,000), fixed opex 4,000 x 500/130 racks x 0.13 MW = 2,000, no power
        north_end = {"bull": 42 + 16 * 16 / 17, "bear": 48 + 4 * 16 / 17}[w]
        days = [31, 31, 30, 31, 30, 31, 31, 29, 31, 30, 31, 30, 31, 31, 30]
        la = [442_000] * 3 + [459_680] * 12
        lb = [231_000] * 9 + [242_550] * 6
        alpha = sum(1.12 ** (-k / 12) * (0.85 * la[k - 1] - 14_040 - 2_000 + 0.25 * (lb[k - 1] - 18_000)
                                         - 3.4 * 1.3 * 24 * days[k - 1] * north_end) for k in range(1, 16))
        assert line(5, "alpha", "terminal_lease_noi_usd") == pytest.approx(alpha)
        # pass-through of LB's quarter at alpha: reimbursed at what alpha pays: fx (45 USD/MWh) from
        # May 2026; April at the quarter's north price (months 3, 4, 5: 42 + 16 x 4 / 17 bull, 48 + 4 x 4 / 17 bear)
        april = {"bull": 42 + 16 * 4 / 17, "bear": 48 + 4 * 4 / 17}[w]
        assert line(2, "alpha", "power_passthrough_usd") == pytest.approx(0.25 * 2 * 1.3 * 2208 * 45)
        assert line(1, "alpha", "power_passthrough_usd") == pytest.approx(0.25 * 2 * 1.3 * (720 * april + 1464 * 45))
        # terminal mining at alpha: keep (k = 0.5 x 12 / 3 = 2 quarters of margin) or retire for the
        # salvage S = 6,500 x 120 + 500 x 900 = 1,230,000; margin = revenue of the last quarter
        # - (6,500 x 2 kW + 500 x 3.5 kW) x 1.1 x 2,184 h at the north price after the horizon
        # (6 months, all at north_end) - opex 14.75 MW x 800 x 3
        margin = line(5, "alpha", "mining_revenue_usd") - 14.75 * 1.1 * 2184 * north_end - 14.75 * 800 * 3
        assert line(5, "alpha", "terminal_mining_usd") == pytest.approx(max(0.0, 2 * margin - 1_230_000))
        assert line(5, "gamma", "terminal_mining_usd") == 0.0     # sold: nothing installed, nothing mined
    # discounting: quarters as three monthly shares, each at its month's end; terminal lines at the end
    assert ref.df[0] == pytest.approx((1.12 ** (-1 / 12) + 1.12 ** (-2 / 12) + 1.12 ** (-3 / 12)) / 3)
    assert ref.df[5] == pytest.approx((1.12 ** (-16 / 12) + 1.12 ** (-17 / 12) + 1.12 ** (-18 / 12)) / 3)
    assert ref.df_end == pytest.approx(1.12 ** -1.5)
    # HPC capacity at the end, worth V = (150,000 x idx - 12 x fixed HPC opex) / 0.08 a MW (index of the
    # last quarter: bull 1 + 0.12 x 16 / 17, bear 0.95):
    #   beta: 12 racks - LB's 7.5 (LC ended in 2026-12) -> 4.5 x 0.2 MW = 0.9 MW free, and LB's 1.5 MW
    #   revert to V when LB ends 15 months after the horizon: x rho(15)
    #   alpha: 40 racks - LA 27 - LB 500/130 free, x 0.13 MW; LA's and LB's racks revert (15 months);
    #   gamma: sold -> nothing
    for w, idx in (("bull", 1 + 0.12 * 16 / 17), ("bear", 0.95)):
        v_beta, v_alpha = (150_000 * idx - 36_000) / 0.08, (150_000 * idx - 48_000) / 0.08
        assert ref.lines[(w, 5, "beta", "terminal_hpc_usd")] == pytest.approx((0.9 + 1.5 * RHO15) * v_beta)
        racks = 27 + 500 / 130
        assert ref.lines[(w, 5, "alpha", "terminal_hpc_usd")] == pytest.approx(((40 - racks) + racks * RHO15) * 0.13 * v_alpha)
        assert (w, 5, "gamma", "terminal_hpc_usd") not in ref.lines
    # take-or-pay shortfall in 2026-07 at alpha: load 6,500 x 2.2 kW + 500 x 3.85 kW + LB 0.25 x 2 x 1.3
    # = 14.3 + 1.925 + 0.65 = 16.875 MW < 0.9 x 20 = 18 MW: pays 45 x 18 MW x 2,208 h
    # (the contract price is 45 until May 2027; the index is not used)
    assert ref.lines[("bull", 2, "alpha", "power_cost_usd")] == pytest.approx(-45 * 18 * 2208)


def test_mining_beats_the_dearest_energy(ref):
    """The premise of the operating argument: every unit earns more per MWh than the dearest
    supply at its site (north price + 10 at alpha, + 6 at gamma) in every quarter and scenario;
    and (hold) P x DF rises up to 2027-01 then falls."""
    for w in ("bull", "bear"):
        north = ref.pi[w]["north"]
        for m, watts, pue in (("m1", 2000, 1.1), ("m2", 3500, 1.1)):
            for t in range(6):
                usd_per_mwh = ref.P[w][t] * ref.btc_unit[(m, w)][t] / (watts * pue * ref.hours[t] / 1e6)
                assert usd_per_mwh > 1.2 * (north[t] + 10), (w, m, t, usd_per_mwh)
        pdf = [ref.P[w][t] * ref.df[t] for t in range(6)]
        assert all(a < b for a, b in zip(pdf[:5], pdf[1:5])) and pdf[5] < pdf[4], pdf
        assert all(ref.pi[w]["south"][t] > 30 for t in range(6))


# ---------------------------------------------------------------- evaluator == reference, line by line


@pytest.mark.parametrize("item", ITEMS)
def test_line_by_line(item, ref, ev):
    want = _table(ref.lines, item)
    got = _table(_evaluator_lines(ev), item)
    assert set(got) == set(want), (item, sorted(set(got) ^ set(want)))
    for key, usd in want.items():
        assert got[key] == pytest.approx(usd, rel=REL), (item, key)


def test_npv(ref, ev):
    assert ev.npv_usd_by_scenario == {w: pytest.approx(v, rel=REL) for w, v in ref.npv_by_scenario.items()}
    # E[NPV] = 0.55 NPV_bull + 0.45 NPV_bear
    assert ev.npv_usd == pytest.approx(0.55 * ref.npv_by_scenario["bull"] + 0.45 * ref.npv_by_scenario["bear"], rel=REL)


def test_solver_with_the_first_stage_fixed_reaches_the_reference_npv(inst):
    from optimizer.solve import solve

    best = Reference(RAW, OPTIMAL_ROWS)
    # selling the last quarter's coins beats holding them by P5 x (DF_5 - DF_end) a coin
    assert best.npv > Reference(RAW, PLAN_ROWS).npv
    res = solve(inst, first_stage=as_plan(OPTIMAL_ROWS), mip_gap=0.0, baselines=False, shadow_prices=False,
                value_of_information=False)
    assert res.status == "optimal", res.message
    assert res.objective_usd == pytest.approx(best.npv, rel=REL)
    # the model's own cash-flow lines, one row per (scenario, month, period, site, item) in that
    # order, equal the reference's line by line
    mc = res.model_cashflows
    key = ["scenario", "month", "period", "site", "item"]
    assert list(mc.columns) == key + ["usd"] and not mc.duplicated(key).any()
    assert mc.equals(mc.sort_values(key).reset_index(drop=True))
    model = {(r.scenario, int(r.period), r.site, r.item): float(r.usd) for r in mc.itertuples() if abs(r.usd) > 1e-6}
    want = {k: v for k, v in best.lines.items() if abs(v) > 1e-6}
    assert set(model) == set(want)
    assert all(model[k] == pytest.approx(want[k], rel=1e-7, abs=1e-3) for k in want)


# ---------------------------------------------------------------- terminal_generation_usd: "term reaches the horizon end"


def _plant_instance(term_months: int) -> Instance:
    """Two quarters 2026-01 .. 2026-06, one owned plant from 2026-01 with a residual value of 1 M$
    (never worth running: 1,000 USD/MWh, no export, no load)."""
    return Instance.from_dict({
        "horizon": {"start_month": "2026-01", "periods": 2, "period_months": 3, "discount_rate": 0.1},
        "bitcoin": {"start_height": 940_000},
        "scenarios": [{"name": "s", "probability": 1.0, "btc_price_usd": 100_000, "network_hashrate_eh_s": 900,
                       "power_price_usd_per_mwh": {"m": 40}}],
        "sites": [{"id": "a", "market": "m", "grid_interconnect_mw": 5, "pue_mining": 1.0, "pue_hpc": 1.0,
                   "asics_per_rack": 100, "hpc_kw_per_rack": 100, "halls": [{"id": "h", "use": "mining", "racks": 1}]}],
        "fleet": {"asic_models": [{"name": "x", "hashrate_th_s": 100, "power_w": 3000}]},
        "contracts": [{"id": "plant", "site": "a", "kind": "owned_generation", "term_months": term_months, "mw": 1,
                       "variable_cost_usd_per_mwh": 1000, "can_export": False, "residual_value_usd": 1_000_000}],
    })


def test_generation_residual_when_the_term_reaches_the_horizon_end():
    # term 6 months from 2026-01: Jan .. Jun 2026 = the horizon end -> residual 1,000,000 in the last period
    ev = evaluate(_plant_instance(6), Plan())
    rows = ev.cashflows[ev.cashflows["item"] == "terminal_generation_usd"]
    assert list(zip(rows["period"], rows["usd"])) == [(1, 1_000_000.0)]


def test_generation_residual_needs_the_term_to_reach_the_horizon_end():
    # term 4 months: Jan .. Apr 2026; the last quarter (Apr .. Jun) holds April only: the term stops
    # two months before the horizon end (Jun 2026), so economics.md gives no residual value
    ev = evaluate(_plant_instance(4), Plan())
    assert ev.violations == []
    assert (ev.cashflows["item"] == "terminal_generation_usd").sum() == 0
    # the MILP agrees: no residual term, and its objective equals the evaluator's NPV
    from optimizer.solve import solve

    res = solve(_plant_instance(4), mip_gap=0.0, baselines=False, shadow_prices=False, value_of_information=False)
    res.verify(rtol=1e-9)
    assert (res.model_cashflows["item"] == "terminal_generation_usd").sum() == 0
