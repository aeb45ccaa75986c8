"""HPC growth levers (DESIGN section 12, issue 13): new-build capacity, GPU cloud, lease tranches
and delivery delays, tenant credit, prepayments, tenant-funded capex and renewal options.

Every expected number is hand arithmetic written next to it, never a number read from the
product's output; solved cases also check the MILP's lines against the evaluator's
(``result.verify()``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer import Instance
from optimizer.evaluate import evaluate
from optimizer.plan import Plan
from optimizer.solve import solve

MONTH_DAYS_2026 = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def _base(periods: int = 12, discount_rate: float = 0.0) -> dict:
    """A one-site instance with no mining (ASIC model present but nothing installed) and an index
    contract at 40 USD/MWh and no adder; no terminal values unless a test adds them."""
    return {
        "name": "levers", "horizon": {"start_month": "2026-01", "periods": periods, "discount_rate": discount_rate,
                                      "terminal": {"asic_salvage": False, "treasury_btc": False}},
        "bitcoin": {"start_height": 930000, "pool_fee": 0.0},
        "scenarios": [{"name": "base", "probability": 1.0, "btc_price_usd": 100000, "network_hashrate_eh_s": 1000,
                       "power_price_usd_per_mwh": {"ercot": 40}}],
        "sites": [],
        "fleet": {"asic_models": [{"name": "m200", "hashrate_th_s": 200, "power_w": 3500, "salvage_usd_per_unit": 500}]},
        "contracts": [],
        "leases": [],
    }


def _site(sid: str, halls: list | None = None, **kw) -> dict:
    return {"id": sid, "market": "ercot", "grid_interconnect_mw": 5, "pue_mining": 1.0, "pue_hpc": 1.2,
            "asics_per_rack": 100, "hpc_kw_per_rack": 100, "halls": halls or [], **kw}


def _index(sid: str) -> dict:
    return {"id": f"idx_{sid}", "site": sid, "kind": "index", "adder_usd_per_mwh": 0}


def _line(ev, item: str, scenario: str | None = None) -> np.ndarray:
    """USD of one item per period (all sites), one scenario (the first by default)."""
    cf = ev.cashflows
    scenario = scenario or cf["scenario"].iloc[0]
    s = cf[(cf["item"] == item) & (cf["scenario"] == scenario)].groupby("period")["usd"].sum()
    out = np.zeros(1 + int(s.index.max()) if len(s) else 0)
    out[s.index.to_numpy()] = s.to_numpy()
    return out


def _padded(a: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([a, np.zeros(n - len(a))]) if len(a) < n else a


# ---------------------------------------------------------------- new-build capacity


def _greenfield(capex_usd_per_mw: float = 1_000_000) -> dict:
    """Site g has no racks at all: its only HPC racks come from the new-build option ``hall``
    (10 racks x 100 kW = 1 MW per block, lead 3 months). The 1 MW lease L can only go there."""
    d = _base()
    d["sites"] = [_site("g", new_builds=[{"id": "hall", "use": "hpc", "racks_per_block": 10, "capex_usd_per_mw": capex_usd_per_mw,
                                          "lead_months": 3, "max_blocks": 2}])]
    d["contracts"] = [_index("g")]
    d["leases"] = [{"id": "L", "it_mw": 1.0, "rate_usd_per_kw_month": 150, "term_months": 12, "window_start": "2026-04",
                    "window_end": "2026-06", "noi_margin": 0.9, "power_passthrough": True}]
    return d


def test_new_build_capex_and_lead_time_by_hand():
    inst = Instance.from_dict(_greenfield())
    plan = Plan(new_builds=pd.DataFrame({"site": ["g"], "option": ["hall"], "month": ["2026-01"], "blocks": [1.0]}),
                leases=pd.DataFrame({"lease": ["L"], "site": ["g"], "month": ["2026-04"], "share": [1.0]}))
    ev = evaluate(inst, plan)
    assert ev.violations == []
    # capex: 1 block x 10 racks x 100 kW = 1 MW x 1,000,000 USD/MW = 1,000,000 USD, spread evenly over
    # the 3-month lead: 333,333.33 in 2026-01, 02, 03
    capex = _padded(_line(ev, "new_build_capex_usd"), 12)
    assert capex[:3] == pytest.approx([-1e6 / 3] * 3, abs=1e-6)
    assert capex[3:] == pytest.approx([0.0] * 9, abs=1e-9)
    # rent from the hand-over in 2026-04 (period 3): 1 MW x 1000 kW x 150 USD/kW-month = 150,000 per month
    rent = _padded(_line(ev, "lease_revenue_usd"), 12)
    assert rent == pytest.approx([0.0] * 3 + [150_000.0] * 9, abs=1e-6)
    # racks: 10 HPC racks in service from 2026-04 (lead 3 after 2026-01), none before
    alloc = ev.allocation.set_index("month")
    assert alloc.loc["2026-03", "hpc_racks"] == 0 and alloc.loc["2026-04", "hpc_racks"] == 10


def test_new_build_lead_time_is_enforced():
    inst = Instance.from_dict(_greenfield())
    # started in 2026-02, the racks are in service in 2026-05 only: an April hand-over has no racks
    plan = Plan(new_builds=pd.DataFrame({"site": ["g"], "option": ["hall"], "month": ["2026-02"], "blocks": [1.0]}),
                leases=pd.DataFrame({"lease": ["L"], "site": ["g"], "month": ["2026-04"], "share": [1.0]}))
    v = evaluate(inst, plan).violations
    assert any("need 10 HPC racks but only 0 are online" in s for s in v), v


def test_optimizer_serves_a_greenfield_lease_through_new_build():
    res = solve(Instance.from_dict(_greenfield()), mip_gap=1e-9, value_of_information=False)
    res.verify()
    # with zero discounting the lease earns, per month from hand-over h (month index 3..5) to the
    # horizon end: rent 150,000 - opex 15,000 (margin 0.9) = 135,000 (pass-through power: net 0 at adder 0);
    # after the horizon its remaining NOI is terminal value (undiscounted): so every hand-over month
    # has the same lease value 12 x 135,000 = 1,620,000 > capex 1,000,000, and the plan builds 1 block
    # (one is enough: 10 racks = 1 MW) 3 months before the hand-over
    nb = res.plan.new_builds
    assert list(nb["blocks"]) == [1.0]
    lease = res.plan.leases
    assert len(lease) == 1
    start = pd.Period(nb["month"].iloc[0], "M")
    assert (pd.Period(lease["month"].iloc[0], "M") - start).n >= 3
    # NPV = 12 x 135,000 - 1,000,000 = 620,000
    assert res.npv_usd == pytest.approx(620_000.0, abs=1e-3)


def test_new_build_unprofitable_is_not_built():
    # capex 1,700,000 USD/MW > the lease's 1,620,000 of NOI: nothing is built, nothing signed (NPV 0)
    res = solve(Instance.from_dict(_greenfield(capex_usd_per_mw=1_700_000)), mip_gap=1e-9, value_of_information=False)
    res.verify()
    assert res.plan.new_builds.empty and res.plan.leases.empty
    assert res.npv_usd == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------- GPU cloud vs colocation


def _gpu_vs_colo(price_usd_per_mw_month: float) -> dict:
    """Site h has 10 HPC racks (1 MW). Colocation: lease C, 1 MW at 150 USD/kW-month for the whole
    year, NOI margin 1, power passed through (net 0 at a 0 adder). GPU cloud: 1 MW of GPUs for
    1,200,000 USD, in service the 12 months of the horizon (retired at its end: no salvage, no book
    value), merchant revenue ``price`` per MW-month, no opex; their power (1 MW x PUE 1.2) is paid
    at 40 USD/MWh."""
    d = _base()
    d["sites"] = [_site("h", halls=[{"id": "hpc", "use": "hpc", "racks": 10}])]
    d["contracts"] = [_index("h")]
    d["leases"] = [{"id": "C", "it_mw": 1.0, "rate_usd_per_kw_month": 150, "term_months": 12, "window_start": "2026-01",
                    "window_end": "2026-01", "noi_margin": 1.0, "power_passthrough": True}]
    d["gpu_cloud"] = {"options": [{"id": "gb", "kw_per_gpu": 2.0, "usd_per_mw": 1_200_000, "price_usd_per_mw_month": price_usd_per_mw_month,
                                   "useful_life_months": 12, "first_month": "2026-01", "last_month": "2026-01"}]}
    return d


# colocation: 12 x 150,000 = 1,800,000 USD.
# GPUs: 12 P - 1,200,000 - power 1.2 MW x 8,760 h x 40 USD/MWh (= 420,480) = 12 P - 1,620,480.
# Breakeven 12 P = 3,420,480: P* = 285,040 USD per MW-month.
GPU_BREAKEVEN = (1_800_000 + 1_200_000 + 1.2 * 8760 * 40) / 12


def test_gpu_breakeven_by_hand():
    assert GPU_BREAKEVEN == pytest.approx(285_040.0)


@pytest.mark.parametrize("price, use", [(GPU_BREAKEVEN * 1.02, "gpu"), (GPU_BREAKEVEN * 0.98, "colocation")])
def test_optimizer_picks_the_higher_npv_use(price, use):
    res = solve(Instance.from_dict(_gpu_vs_colo(price)), mip_gap=1e-9, value_of_information=False)
    res.verify()
    if use == "gpu":
        assert res.plan.leases.empty
        assert list(res.plan.gpu_purchases["mw"]) == pytest.approx([1.0])
        assert res.npv_usd == pytest.approx(12 * price - 1_620_480, rel=1e-9)
    else:
        assert list(res.plan.leases["lease"]) == ["C"]
        assert res.plan.gpu_purchases.empty
        assert res.npv_usd == pytest.approx(1_800_000, rel=1e-9)


def test_gpu_lines_by_hand():
    inst = Instance.from_dict(_gpu_vs_colo(300_000))
    # half a MW of GPUs: capex 600,000 in 2026-01, revenue 0.5 x 300,000 = 150,000 per month, power
    # 0.5 x 1.2 x 24 x days x 40 USD; they take 5 of the 10 racks, the other 5 stay free
    plan = Plan(gpu_purchases=pd.DataFrame({"option": ["gb"], "site": ["h"], "month": ["2026-01"], "mw": [0.5]}))
    ev = evaluate(inst, plan)
    assert ev.violations == []
    assert _padded(_line(ev, "gpu_purchases_usd"), 12) == pytest.approx([-600_000.0] + [0.0] * 11)
    assert _line(ev, "gpu_cloud_revenue_usd") == pytest.approx([150_000.0] * 12)
    assert _line(ev, "power_cost_usd") == pytest.approx([-0.5 * 1.2 * 24 * n * 40 for n in MONTH_DAYS_2026])
    # 1 MW of GPUs and the 1 MW lease together need 20 racks: the site has 10
    both = Plan(gpu_purchases=pd.DataFrame({"option": ["gb"], "site": ["h"], "month": ["2026-01"], "mw": [1.0]}),
                leases=pd.DataFrame({"lease": ["C"], "site": ["h"], "month": ["2026-01"], "share": [1.0]}))
    v = evaluate(inst, both).violations
    assert any("need 20 HPC racks but only 10 are online" in s for s in v), v


def test_gpu_hour_pricing_by_hand():
    d = _gpu_vs_colo(0.0)
    o = d["gpu_cloud"]["options"][0]
    del o["usd_per_mw"], o["price_usd_per_mw_month"]
    # 2 kW per GPU = 500 GPUs per MW; 30,000 USD per GPU = 15,000,000 USD per MW
    o.update(usd_per_gpu=30_000, price_usd_per_gpu_hour=3.0, utilization=0.8)
    d["scenarios"][0]["gpu_price_index"] = {"points": {"2026-01": 1.0, "2026-12": 0.45}}
    ev = evaluate(Instance.from_dict(d), Plan(gpu_purchases=pd.DataFrame({"option": ["gb"], "site": ["h"], "month": ["2026-01"], "mw": [0.2]})))
    assert ev.violations == []
    assert _padded(_line(ev, "gpu_purchases_usd"), 12)[0] == pytest.approx(-0.2 * 15_000_000)
    # January: 0.2 MW x 500 GPUs x 0.8 x 3 USD x 744 h x index 1.0 = 178,560; December also has
    # 744 h, at the last point's index 0.45: 178,560 x 0.45 = 80,352
    rev = _line(ev, "gpu_cloud_revenue_usd")
    assert rev[0] == pytest.approx(178_560.0)
    assert rev[11] == pytest.approx(178_560.0 * 0.45)

def test_gpu_salvage_and_book_value_by_hand():
    d = _gpu_vs_colo(300_000)
    # life 6 months, salvage 25 %: GPUs bought in 2026-01 serve 2026-01..06, retire at the end of June and
    # return 25 % x 1,200,000 = 300,000 in period 6 (2026-07). GPUs bought in 2026-09 (life 6) serve
    # 2026-09..2027-02: 4 of their 6 periods inside the horizon, 2 left: book value at the end =
    # 1,200,000 x (0.25 + 0.75 x 2/6) = 600,000
    d["gpu_cloud"]["options"][0].update(useful_life_months=6, salvage_share=0.25, last_month="2026-12")
    inst = Instance.from_dict(d)
    plan = Plan(gpu_purchases=pd.DataFrame({"option": ["gb", "gb"], "site": ["h", "h"], "month": ["2026-01", "2026-09"], "mw": [1.0, 1.0]}))
    ev = evaluate(inst, plan)
    assert ev.violations == []
    assert _padded(_line(ev, "gpu_salvage_usd"), 12) == pytest.approx([0.0] * 6 + [300_000.0] + [0.0] * 5)
    assert _padded(_line(ev, "terminal_gpu_usd"), 12)[11] == pytest.approx(600_000.0)
    # revenue: 2026-01..06 and 2026-09..12 at 300,000; nothing in July and August
    assert _padded(_line(ev, "gpu_cloud_revenue_usd"), 12) == pytest.approx([300_000.0] * 6 + [0.0, 0.0] + [300_000.0] * 4)


# ---------------------------------------------------------------- tranches and delays


def _tranche_instance(**lease) -> dict:
    """Site h: 10 HPC racks. Lease T: 1 MW at 100 USD/kW-month, term 12, handed over in two tranches
    (0.6 MW at once, 0.4 MW two months later); scenario ``late`` delays construction by 1 month."""
    d = _base()
    d["sites"] = [_site("h", halls=[{"id": "hpc", "use": "hpc", "racks": 10}])]
    d["contracts"] = [_index("h")]
    d["scenarios"] = [{**d["scenarios"][0], "name": "on_time", "probability": 0.5},
                      {**d["scenarios"][0], "name": "late", "probability": 0.5, "handover_delay_months": 1}]
    d["leases"] = [{"id": "T", "it_mw": 1.0, "rate_usd_per_kw_month": 100, "term_months": 12, "window_start": "2026-03",
                    "window_end": "2026-03", "noi_margin": 1.0, "power_passthrough": True,
                    "tranches": [{"it_mw": 0.6, "offset_months": 0}, {"it_mw": 0.4, "offset_months": 2}],
                    "delay_damages_usd_per_mw_month": 10_000, **lease}]
    return d


TRANCHE_PLAN = Plan(leases=pd.DataFrame({"lease": ["T"], "site": ["h"], "month": ["2026-03"], "share": [1.0]}))


def test_two_tranche_rent_by_month_and_a_delay_shifts_it():
    ev = evaluate(Instance.from_dict(_tranche_instance()), TRANCHE_PLAN)
    assert ev.violations == []
    # on time: 0.6 MW x 1000 x 100 = 60,000 in 2026-03 and 04; 0.6 + 0.4 MW = 100,000 from 2026-05
    on_time = [0, 0, 60_000, 60_000] + [100_000] * 8
    assert _padded(_line(ev, "lease_revenue_usd", "on_time"), 12) == pytest.approx(on_time)
    # late by 1 month: tranche 1 from 2026-04, tranche 2 from 2026-06
    late = [0, 0, 0, 60_000, 60_000] + [100_000] * 7
    assert _padded(_line(ev, "lease_revenue_usd", "late"), 12) == pytest.approx(late)
    # damages in the late scenario: tranche 1 due 2026-03 (0.6 MW x 10,000), tranche 2 due 2026-05 (0.4 x 10,000)
    dmg = [0, 0, -6_000, 0, -4_000] + [0] * 7
    assert _padded(_line(ev, "lease_delay_damages_usd", "late"), 12) == pytest.approx(dmg)
    assert _padded(_line(ev, "lease_delay_damages_usd", "on_time"), 12) == pytest.approx([0] * 12)
    # terminal (undiscounted): each tranche runs 12 months from its own start; on time tranche 1 has
    # 2027-01, 02 left (2 x 60,000), tranche 2 2027-01..04 (4 x 40,000): 280,000; late: 3 x 60,000 + 5 x 40,000 = 380,000
    assert _line(ev, "terminal_lease_noi_usd", "on_time")[-1] == pytest.approx(280_000)
    assert _line(ev, "terminal_lease_noi_usd", "late")[-1] == pytest.approx(380_000)
    # the racks are held from the planned hand-over through the latest delayed end: 6 racks from 2026-03, 10 from 2026-05
    alloc = ev.allocation.set_index("month")
    assert list(alloc.loc[["2026-02", "2026-03", "2026-04", "2026-05"], "racks_T"]) == [0, 6, 6, 10]


def test_tranche_lease_solved_matches_the_evaluator():
    res = solve(Instance.from_dict(_tranche_instance()), mip_gap=1e-9, value_of_information=False)
    res.verify()
    assert list(res.plan.leases["lease"]) == ["T"]
    # E[NPV] = 0.5 x (on time: 60,000 x 2 + 100,000 x 8 + 280,000) + 0.5 x (late: 60,000 x 2 + 100,000 x 7 + 380,000 - 10,000)
    #        = 0.5 x 1,200,000 + 0.5 x 1,190,000 = 1,195,000
    assert res.npv_usd == pytest.approx(1_195_000, rel=1e-9)


def test_tranches_must_sum_to_the_lease():
    with pytest.raises(Exception, match="tranches"):
        Instance.from_dict(_tranche_instance(tranches=[{"it_mw": 0.6, "offset_months": 0}, {"it_mw": 0.5, "offset_months": 2}]))


# ---------------------------------------------------------------- tenant credit


def _credit_instance(credit: dict | None) -> dict:
    d = _tranche_instance(tranches=None, delay_exposed=False, credit=credit, window_start="2026-01", window_end="2026-01")
    return d


def test_survival_weighted_rent_equals_the_hand_formula():
    inst = Instance.from_dict(_credit_instance({"annual_default_probability": 0.12, "recovery_share": 0.25}))
    ev = evaluate(inst, Plan(leases=pd.DataFrame({"lease": ["T"], "site": ["h"], "month": ["2026-01"], "share": [1.0]})))
    assert ev.violations == []
    # rent 100,000 per month; the tenant survives to the end of month j (j = 1..12 from the signing at
    # the horizon start) with probability 0.88^(j/12); a default loses (1 - 0.25) of the rent:
    # expected loss in month j = 100,000 x (1 - 0.88^(j/12)) x 0.75
    hand = [-100_000 * (1 - 0.88 ** (j / 12)) * 0.75 for j in range(1, 13)]
    assert _line(ev, "tenant_credit_loss_usd") == pytest.approx(hand, rel=1e-12)
    # month 12: 0.88^(12/12) = 0.88: loss 100,000 x 0.12 x 0.75 = 9,000
    assert hand[-1] == pytest.approx(-9_000)


def test_full_backstop_makes_default_harmless():
    inst = Instance.from_dict(_credit_instance({"rating": "CCC", "backstop_share": 1.0}))
    plan = Plan(leases=pd.DataFrame({"lease": ["T"], "site": ["h"], "month": ["2026-01"], "share": [1.0]}))
    ev = evaluate(inst, plan)
    assert "tenant_credit_loss_usd" not in set(ev.cashflows["item"])
    plain = evaluate(Instance.from_dict(_credit_instance(None)), plan)
    assert ev.npv_usd == pytest.approx(plain.npv_usd, rel=1e-12)


def test_credit_solved_matches_the_evaluator():
    res = solve(Instance.from_dict(_credit_instance({"rating": "B", "backstop_share": 0.47})), mip_gap=1e-9, value_of_information=False)
    res.verify()
    assert list(res.plan.leases["lease"]) == ["T"]


# ---------------------------------------------------------------- lease options


def _option_instance(**lease) -> dict:
    """Site c: 30 mining racks (no ASICs), conversion 10 racks = 1 MW per block at 1,000,000 USD/MW
    with a 2-month lead; lease O: 1 MW at 100 USD/kW-month from 2026-04, term 6 months."""
    d = _base()
    d["sites"] = [_site("c", halls=[{"id": "m", "use": "mining", "racks": 30}],
                        conversion={"racks_per_block": 10, "capex_usd_per_mw": 1_000_000, "lead_months": 2})]
    d["contracts"] = [_index("c")]
    d["leases"] = [{"id": "O", "it_mw": 1.0, "rate_usd_per_kw_month": 100, "term_months": 6, "window_start": "2026-04",
                    "window_end": "2026-04", "noi_margin": 1.0, "power_passthrough": True, **lease}]
    return d


OPTION_PLAN = Plan(conversions=pd.DataFrame({"site": ["c"], "month": ["2026-02"], "blocks": [1.0]}),
                   leases=pd.DataFrame({"lease": ["O"], "site": ["c"], "month": ["2026-04"], "share": [1.0]}))


def test_prepayment_and_tenant_funded_capex_by_hand():
    inst = Instance.from_dict(_option_instance(prepayment_share=0.2, prepayment_months_before_handover=1, tenant_capex_share=0.8))
    ev = evaluate(inst, OPTION_PLAN)
    assert ev.violations == []
    # base-term rent 6 x 100,000 = 600,000; 20 % prepaid one month before the hand-over (2026-03):
    # 120,000; the monthly rent falls to 80,000 (2026-04..09)
    assert _padded(_line(ev, "lease_prepayment_usd"), 12) == pytest.approx([0, 0, 120_000] + [0] * 9)
    assert _padded(_line(ev, "lease_revenue_usd"), 12) == pytest.approx([0, 0, 0] + [80_000] * 6 + [0] * 3)
    # the tenant funds 80 % of 1 MW x 1,000,000 USD/MW = 800,000, over the 2 lead months before the
    # hand-over (2026-02, 03): 400,000 each; the landlord's capex 500,000 in 2026-02 and 03 stays a line
    assert _padded(_line(ev, "tenant_capex_funding_usd"), 12) == pytest.approx([0, 400_000, 400_000] + [0] * 9)
    assert _padded(_line(ev, "capex_usd"), 12) == pytest.approx([0, -500_000, -500_000] + [0] * 9)
    # NPV (undiscounted): 120,000 + 6 x 80,000 + 800,000 - 1,000,000 = 400,000
    assert ev.npv_usd == pytest.approx(400_000)


def test_tenant_funding_relaxes_the_capex_budget():
    # a 300,000 USD budget in 2026: the landlord's net capex 1,000,000 - 800,000 = 200,000 fits;
    # without the tenant's share it does not
    d = _option_instance(tenant_capex_share=0.8)
    d["policy"] = {"capex_budget_usd_per_year": 300_000}
    assert not [v for v in evaluate(Instance.from_dict(d), OPTION_PLAN).violations if "capex budget" in v]
    d["leases"][0]["tenant_capex_share"] = 0.0
    assert [v for v in evaluate(Instance.from_dict(d), OPTION_PLAN).violations if "capex budget" in v]


def test_probability_weighted_renewals_by_hand():
    inst = Instance.from_dict(_option_instance(renewals={"count": 2, "term_months": 3, "probability": 0.5, "rent_step_share": 0.1}))
    ev = evaluate(inst, OPTION_PLAN)
    assert ev.violations == []
    # base term 2026-04..09 at 100,000; renewal 1 (2026-10..12): 100,000 x 1.1 x 0.5 = 55,000;
    # renewal 2 (2027-01..03, after the horizon): 100,000 x 1.1^2 x 0.5^2 = 30,250 per month, terminal 3 x 30,250
    assert _padded(_line(ev, "lease_revenue_usd"), 12) == pytest.approx([0, 0, 0] + [100_000] * 6 + [55_000] * 3)
    assert _line(ev, "terminal_lease_noi_usd")[-1] == pytest.approx(3 * 30_250)


@pytest.mark.parametrize("passthrough, power_usd", [(True, 0.0), (False, 1.2 * 1.0 * 0.25 * 24 * (31 + 28 + 31) * 40)])
def test_terminal_value_of_a_probable_renewal_by_hand(passthrough, power_usd):
    d = _option_instance(renewals={"count": 2, "term_months": 3, "probability": 0.5, "rent_step_share": 0.1},
                         power_passthrough=passthrough)
    d["sites"][0]["fixed_opex_hpc_usd_per_mw_month"] = 10_000
    ev = evaluate(Instance.from_dict(d), OPTION_PLAN)
    assert ev.violations == []
    # renewal 2 runs 2027-01..03, after the horizon, with weight 0.5^2 = 0.25 (zero discounting):
    # NOI 3 x 100,000 x 1.1^2 x 0.25 = 90,750; the racks stay reserved for it whatever the tenant
    # decides, so the site's fixed HPC opex on the lease's 10 racks (1 MW) is paid all 3 months:
    # 10,000 x 1 x 3 = 30,000 (economics.md: f_s x racks MW_k x a(n_k)); without pass-through the
    # landlord also pays 1.2 PUE x 1 MW x 0.25 x 2,160 h x 40 USD/MWh = 25,920
    assert _line(ev, "terminal_lease_noi_usd")[-1] == pytest.approx(90_750 - 30_000 - power_usd)
    res = solve(Instance.from_dict(d), mip_gap=1e-9, value_of_information=False)
    res.verify()

def test_holder_renewal_follows_the_market_rent():
    d = _option_instance(renewals={"count": 1, "term_months": 3, "mode": "holder", "rent_step_share": 0.1})
    d["scenarios"] = [{**d["scenarios"][0], "name": "hot", "probability": 0.5, "hpc_lease_rate_index": 1.2},
                      {**d["scenarios"][0], "name": "cold", "probability": 0.5, "hpc_lease_rate_index": 1.0}]
    ev = evaluate(Instance.from_dict(d), OPTION_PLAN)
    assert ev.violations == []
    # the renewal (2026-10..12) costs the tenant 1.1 x the base rent: it renews where the market is at
    # 1.2 x (rent 110,000 a month) and not where it is at 1.0
    base = [0, 0, 0] + [100_000] * 6
    assert _padded(_line(ev, "lease_revenue_usd", "hot"), 12) == pytest.approx(base + [110_000] * 3)
    assert _padded(_line(ev, "lease_revenue_usd", "cold"), 12) == pytest.approx(base + [0] * 3)
    res = solve(Instance.from_dict(d), mip_gap=1e-9, value_of_information=False)
    res.verify()


def test_lease_options_solved_match_the_evaluator():
    d = _option_instance(prepayment_share=0.2, tenant_capex_share=0.5,
                         renewals={"count": 1, "term_months": 6, "mode": "holder", "rent_step_share": 0.0},
                         credit={"rating": "BB", "backstop_share": 0.5})
    res = solve(Instance.from_dict(d), mip_gap=1e-9, value_of_information=False)
    res.verify()
    assert list(res.plan.leases["lease"]) == ["O"]


# ---------------------------------------------------------------- a GPU cloud contract


def test_gpu_cloud_contract_needs_gpus_and_values_prepaid_rent():
    d = _gpu_vs_colo(0.0)   # no merchant market: the GPUs only serve the contract
    d["gpu_cloud"]["options"][0].update(useful_life_months=24, last_month="2026-12")
    # Microsoft-style contract: 1 MW of GPUs at 700 USD/kW-month for 12 months from 2026-01
    d["leases"] = [{"id": "K", "it_mw": 1.0, "rate_usd_per_kw_month": 700, "term_months": 12, "window_start": "2026-01",
                    "window_end": "2026-01", "noi_margin": 1.0, "gpu_option": "gb"}]
    inst = Instance.from_dict(d)
    lease = pd.DataFrame({"lease": ["K"], "site": ["h"], "month": ["2026-01"], "share": [1.0]})
    v = evaluate(inst, Plan(leases=lease)).violations
    assert any("GPU cloud contracts hold 1 MW of GPUs of option gb but only 0 MW are in service" in s for s in v), v
    gpus = pd.DataFrame({"option": ["gb"], "site": ["h"], "month": ["2026-01"], "mw": [1.0]})
    ev = evaluate(inst, Plan(leases=lease, gpu_purchases=gpus))
    assert ev.violations == []
    # rent 700,000 per month; the GPUs cost 1,200,000 and have half their 24-month life left at the end:
    # book value 600,000; power 1.2 MW x 8,760 h x 40 = 420,480 paid by the landlord
    assert ev.npv_usd == pytest.approx(12 * 700_000 - 1_200_000 + 600_000 - 420_480)
    res = solve(inst, mip_gap=1e-9, value_of_information=False)
    res.verify()
    assert res.npv_usd == pytest.approx(12 * 700_000 - 1_200_000 + 600_000 - 420_480, rel=1e-9)


# ---------------------------------------------------------------- tenant limits


def test_tenant_mw_limit():
    d = _tranche_instance(tranches=None, tenant="fluidstack")
    d["policy"] = {"tenant_limits": [{"tenant": "fluidstack", "max_it_mw": 0.5}]}
    v = evaluate(Instance.from_dict(d), TRANCHE_PLAN).violations
    assert any("tenant fluidstack: signed leases total 1 MW, more than its limit max_it_mw 0.5" in s for s in v), v
    res = solve(Instance.from_dict(d), mip_gap=1e-9, value_of_information=False)
    res.verify()
    assert res.plan.leases.empty



def test_tenant_rent_share_limit_by_hand():
    d = _tranche_instance(tranches=None, tenant="a", delay_exposed=False, window_start="2026-01", window_end="2026-01")
    d["sites"][0]["halls"][0]["racks"] = 20
    d["leases"].append({**d["leases"][0], "id": "U", "it_mw": 0.5, "tenant": "b"})
    # both leases run 2026-01..12 at 100 USD/kW-month: rent 1,200,000 (T, tenant a) and 600,000 (U):
    # tenant a's share = 1.2 / 1.8 = 2/3
    both = Plan(leases=pd.DataFrame({"lease": ["T", "U"], "site": ["h", "h"], "month": ["2026-01"] * 2, "share": [1.0, 1.0]}))
    d["policy"] = {"tenant_limits": [{"tenant": "a", "max_rent_share": 0.7}]}
    assert evaluate(Instance.from_dict(d), both).violations == []
    d["policy"] = {"tenant_limits": [{"tenant": "a", "max_rent_share": 0.6}]}
    v = evaluate(Instance.from_dict(d), both).violations
    assert any("tenant a: rent 1,200,000 USD is more than max_rent_share 0.6" in s for s in v), v
    # the optimizer can sign U alone (tenant a's share 0) but not T, alone (share 1) or with U (2/3)
    res = solve(Instance.from_dict(d), mip_gap=1e-9, value_of_information=False)
    res.verify()
    assert list(res.plan.leases["lease"]) == ["U"]

# ---------------------------------------------------------------- new-build links and mining racks


def test_new_build_requires_its_grid_expansion():
    d = _greenfield()
    d["sites"][0]["grid_expansions"] = [{"id": "sub", "mw": 5, "capex_usd": 100_000, "lead_months": 1}]
    d["sites"][0]["new_builds"][0]["requires_grid_expansion"] = "sub"
    inst = Instance.from_dict(d)
    plan = Plan(new_builds=pd.DataFrame({"site": ["g"], "option": ["hall"], "month": ["2026-01"], "blocks": [1.0]}))
    v = evaluate(inst, plan).violations
    assert any("requires grid expansion sub started by then" in s for s in v), v
    res = solve(inst, mip_gap=1e-9, value_of_information=False)
    res.verify()
    # the optimizer starts the expansion no later than the block: 620,000 - 100,000 = 520,000
    gx, nb = res.plan.grid_expansions, res.plan.new_builds
    assert list(gx["option"]) == ["sub"] and gx["month"].iloc[0] <= nb["month"].iloc[0]
    assert res.npv_usd == pytest.approx(520_000.0, abs=1e-3)


def mining_shed() -> tuple[Instance, Plan]:
    """One mining block: 10 racks x 100 ASICs = 1,000 positions, 10 racks x 350 kW design = 3.5 MW,
    200,000 USD/MW: capex 700,000 spread over the 2-month lead (350,000 in 2026-01 and 02); the plan
    builds it in 2026-01 and buys 1,000 m200 units then (lead 2 months)."""
    d = _base()
    d["sites"] = [_site("m", new_builds=[{"id": "shed", "use": "mining", "racks_per_block": 10, "capex_usd_per_mw": 200_000,
                                          "mining_kw_per_rack": 350, "lead_months": 2, "max_blocks": 1}])]
    d["contracts"] = [_index("m")]
    d["fleet"]["purchase_options"] = [{"id": "p", "model": "m200", "usd_per_th": 10.0, "first_month": "2026-01", "lead_months": 2}]
    plan = Plan(new_builds=pd.DataFrame({"site": ["m"], "option": ["shed"], "month": ["2026-01"], "blocks": [1.0]}),
                purchases=pd.DataFrame({"option": ["p"], "site": ["m"], "month": ["2026-01"], "units": [1000.0]}))
    return Instance.from_dict(d), plan


def test_mining_new_build_adds_asic_positions():
    inst, plan = mining_shed()
    ev = evaluate(inst, plan)
    assert ev.violations == []
    assert _padded(_line(ev, "new_build_capex_usd"), 12)[:3] == pytest.approx([-350_000, -350_000, 0])
    # 1,001 units do not fit the 1,000 positions
    over = Plan(new_builds=plan.new_builds, purchases=plan.purchases.assign(units=1001.0))
    assert any("installed units exceed 1,000 ASIC positions" in s or "exceed 1000 ASIC positions" in s
               for s in evaluate(inst, over).violations)
    res = solve(inst, mip_gap=1e-9, value_of_information=False)
    res.verify()


@pytest.mark.parametrize("patch, message", [
    (lambda d: d["sites"][0]["new_builds"][0].update(requires_grid_expansion="nope"), "requires_grid_expansion: 'nope' is not a grid expansion"),
    (lambda d: d["sites"][0]["new_builds"][0].update(requires_contract="nope"), "requires_contract: 'nope' is not a contract at site"),
    (lambda d: d["leases"][0].update(gpu_option="nope"), "leases[0].gpu_option: 'nope' is not an option of gpu_cloud"),
    (lambda d: d.update(policy={"tenant_limits": [{"tenant": "nope", "max_it_mw": 1}]}), "is not the tenant of any lease"),
    (lambda d: d["sites"][0]["new_builds"][0].update(use="mining"), "mining_kw_per_rack: required when use is mining"),
])
def test_bad_lever_input_is_one_clear_error(patch, message):
    d = _greenfield()
    patch(d)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Instance.from_dict(d)


def test_no_false_warning_for_a_greenfield_lease():
    from optimizer.instance.checks import plain_impossibilities
    assert plain_impossibilities(Instance.from_dict(_greenfield())) == []


# ---------------------------------------------------------------- the campus case


CAMPUS = Path(__file__).parents[1] / "instances" / "case_campus_growth.yaml"


@pytest.fixture(scope="module")
def campus():
    inst = Instance.from_yaml(CAMPUS)
    return inst, solve(inst, mip_gap=1e-4, value_of_information=False)


def test_campus_case_solves_and_verifies(campus, tmp_path):
    inst, res = campus
    text = CAMPUS.read_text()
    assert "FACTS §8" in text and "FACTS §9" in text and "FACTS §10" in text and "estimate" in text
    assert any("FACTS" in s for s in inst.sources)
    res.verify()
    # the 150 MW lease needs 150 MW / (400 racks x 125 kW = 50 MW per hall) = 3 halls; its first
    # tranche (75 MW = 600 racks) needs 2 halls in service at the hand-over, the second 3 halls three
    # months later; each hall takes 15 months (5 quarters) from the start of works
    lease = res.plan.leases.set_index("lease")
    assert "neocloud-colo" in lease.index
    h = pd.Period(lease.loc["neocloud-colo", "month"], "M")
    nb = res.plan.new_builds
    assert nb["blocks"].sum() >= 3
    started = sorted((pd.Period(m, "M"), b) for m, b in zip(nb["month"], nb["blocks"]))
    assert sum(b for m, b in started if (h - m).n >= 15) >= 2
    assert sum(b for m, b in started if (h + 3 - m).n >= 15) >= 3
    # the evaluator reports the new lines of the levers the case uses
    items = set(res.evaluation.cashflows["item"])
    assert {"new_build_capex_usd", "tenant_credit_loss_usd", "lease_delay_damages_usd"} <= items
    out = res.write(tmp_path / "campus")
    assert (out / "plan" / "new_builds.csv").exists() and (out / "plan" / "gpu_purchases.csv").exists()


def test_campus_gpu_contract_at_the_microsoft_rate_is_rejected_for_a_reason(campus):
    """The optimizer leaves the 808 $/kW-month GPU contract unsigned; the alternative plan that signs it
    (two more halls, 100 MW of GPUs) is feasible and evaluates lower: the GPUs cost 2.9 B$ against
    5 years of rent on a greenfield hall at a 9 % rate."""
    inst, res = campus
    assert "ms-gpu-cloud" not in set(res.plan.leases["lease"])
    p = res.plan
    nb = pd.concat([p.new_builds, pd.DataFrame({"site": ["oh-campus"], "option": ["ai-hall"], "month": ["2026-07"], "blocks": [2.0]})])
    alt = Plan(new_builds=nb, retirements=p.retirements, purchases=p.purchases, contracts=p.contracts,
               leases=pd.concat([p.leases, pd.DataFrame({"lease": ["ms-gpu-cloud"], "site": ["oh-campus"], "month": ["2027-10"], "share": [1.0]})]),
               gpu_purchases=pd.DataFrame({"option": ["gb300"], "site": ["oh-campus"], "month": ["2027-07"], "mw": [100.0]}))
    ev = evaluate(inst, alt)
    assert ev.violations == []
    assert {"gpu_purchases_usd", "terminal_gpu_usd", "lease_prepayment_usd"} <= set(ev.cashflows["item"])
    # against the optimizer's first stage under the same operating rule (neither plan carries operations)
    same = evaluate(inst, Plan(new_builds=p.new_builds, retirements=p.retirements, purchases=p.purchases,
                               contracts=p.contracts, leases=p.leases))
    assert same.violations == []
    assert ev.npv_usd < same.npv_usd


# ---------------------------------------------------------------- with financing and taxes


def test_new_build_and_gpus_financed_and_taxed_solve_equal_the_evaluator():
    """A project facility drawn against new-build and GPU capex (80 % loan-to-cost) and a 21 % tax
    with the new asset classes' depreciation: the MILP's lines equal the evaluator's."""
    d = _greenfield()
    d["horizon"]["discount_rate"] = 0.2   # above the loan's 10 %: borrowing pays
    d["gpu_cloud"] = {"options": [{"id": "gb", "kw_per_gpu": 2.0, "usd_per_mw": 1_200_000, "price_usd_per_mw_month": 400_000,
                                   "useful_life_months": 12, "first_month": "2026-01", "sites": ["g"]}]}
    d["sites"][0]["new_builds"][0]["max_blocks"] = 3
    d["financing"] = {"project_facilities": [{"id": "pf", "site": "g", "finances": ["new_build", "gpus"], "commitment_usd": 2_000_000,
                                              "loan_to_cost": 0.8, "interest_rate_per_year": 0.1, "draw_first_month": "2026-01",
                                              "draw_last_month": "2026-06", "amortization_start_month": "2026-07", "tenor_months": 24}],
                      "taxes": {"rate": 0.21}}
    res = solve(Instance.from_dict(d), mip_gap=1e-9, value_of_information=False)
    res.verify()
    assert not res.plan.new_builds.empty and not res.plan.gpu_purchases.empty
    # borrowing at 10 % when money is worth 20 %: the facility is drawn to its 2,000,000 commitment in
    # total (loan-to-cost alone would allow 80 % of the capex financed, more than that here)
    assert res.plan.debt["usd"].sum() == pytest.approx(2_000_000, rel=1e-9)
    items = set(res.evaluation.cashflows["item"])
    assert {"new_build_capex_usd", "tax_usd"} <= items


def test_sweep_digest_names_new_builds_and_gpu_purchases():
    from optimizer.analysis.digest import first_stage_summary
    inst = Instance.from_dict(_gpu_vs_colo(300_000))
    plan = Plan(gpu_purchases=pd.DataFrame({"option": ["gb"], "site": ["h"], "month": ["2026-01"], "mw": [0.5]}))
    assert first_stage_summary(inst, plan)["gpu_purchases"] == "gb@h:2026-01x0.5"
    g = Instance.from_dict(_greenfield())
    nb = Plan(new_builds=pd.DataFrame({"site": ["g"], "option": ["hall"], "month": ["2026-01"], "blocks": [2.0]}))
    assert first_stage_summary(g, nb)["new_builds"] == "g:hall:2026-01x2"


def test_levers_are_refused_on_a_multistage_tree_and_accepted_two_stage():
    """The levers are built two-stage only: with two branch months (a staged tree) every lever field
    in use is one error naming it; with one branch month (the two-stage form) the instance loads."""
    d = _tranche_instance()
    d["tree"] = {"branch_months": ["2026-01", "2026-03"], "paths": {"on_time": ["a", "a2"], "late": ["b", "b2"]}}
    with pytest.raises(ValueError) as err:
        Instance.from_dict(d)
    msg = str(err.value)
    for field in ("leases[0].tranches", "leases[0].delay_damages_usd_per_mw_month", "scenarios[1].handover_delay_months"):
        assert f"{field}: not supported on multistage trees yet" in msg
    assert "scenarios[0].handover_delay_months" not in msg  # on_time has no delay: not in use
    d["tree"] = {"branch_months": ["2026-01"], "paths": {"on_time": ["a"], "late": ["b"]}}
    assert Instance.from_dict(d).tree is not None
    g = _greenfield()
    g["scenarios"] = [{**g["scenarios"][0], "name": "base"}]
    g["tree"] = {"branch_months": ["2026-01", "2026-03"], "paths": {"base": ["a", "b"]}}
    with pytest.raises(ValueError, match=r"sites\[0\]\.new_builds: not supported on multistage trees yet"):
        Instance.from_dict(g)
