"""The evaluator on the paths the hand instances of test_evaluator do not take, without a MILP:
a tree plan with commitments taken at different nodes (one first stage per group of scenarios,
joined), the debt schedule by year of a loan and the evaluation's tables and summary keys, the
tenant limits and the GPU cover of a GPU cloud contract. Plans are written by hand; every expected
number is worked out in a comment (never read back from the evaluator)."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_levers import make as lever_instance  # levers.yaml with an edit
from test_levers import plant_feeding_s2

from optimizer.evaluate import evaluate
from optimizer.instance import Instance
from optimizer.plan import Plan


def df(rows, cols) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------- a tree plan, one first stage per group

def tree_instance() -> Instance:
    """One conversion block (10 racks x 100 kW = 1 MW IT for 10 M$, no lead time) whose only payoff
    is the terminal value of unleased HPC capacity, 1 M$/MW-yr NOI / 10 % cap rate x the HPC index
    of the last month. No ASICs, no discounting. Three scenarios: up (p 0.3, index 1.6 from March),
    flat (p 0.2, index 1.0) and down (p 0.5, index 0.6 from March). up and down share the node
    "a" of January-February (the same history), flat has its own node "b"; from March the
    commitments are taken at those nodes."""
    def series(first, later):
        return {"points": {"2026-01": first, "2026-02": first, "2026-03": later, "2026-04": later}}

    def scen(name, p, btc, index):
        return {"name": name, "probability": p, "btc_price_usd": series(100_000, btc), "network_hashrate_eh_s": 900,
                "hpc_lease_rate_index": series(1.0, index), "power_price_usd_per_mwh": {"m": 40}}
    return Instance.from_dict({
        "name": "tree-join",
        "horizon": {"start_month": "2026-01", "periods": 4, "discount_rate": 0.0,
                    "terminal": {"hpc_unleased_noi_usd_per_mw_year": 1_000_000, "hpc_cap_rate": 0.1, "asic_salvage": False,
                                 "treasury_btc": False}},
        "bitcoin": {"start_height": 940_000},
        "scenarios": [scen("up", 0.3, 150_000, 1.6), scen("flat", 0.2, 100_000, 1.0), scen("down", 0.5, 60_000, 0.6)],
        "tree": {"branch_months": ["2026-01", "2026-03"], "paths": {"up": ["a", "u"], "flat": ["b", "f"], "down": ["a", "d"]}},
        "sites": [{"id": "s", "market": "m", "grid_interconnect_mw": 5, "pue_mining": 1.0, "pue_hpc": 1.0,
                   "asics_per_rack": 100, "hpc_kw_per_rack": 100, "halls": [{"id": "h", "use": "mining", "racks": 10}],
                   "conversion": {"racks_per_block": 10, "capex_usd_per_mw": 10_000_000, "lead_months": 0}}],
        "fleet": {"asic_models": [{"name": "x", "hashrate_th_s": 100, "power_w": 3000}]},
    })


CONVERT_AT_A = Plan(conversions=df([("s", "2026-03", 1.0, "a")], ["site", "month", "blocks", "node"]))


def test_commitment_at_one_node_joins_the_groups_by_hand():
    ev = evaluate(tree_instance(), CONVERT_AT_A)
    assert ev.violations == []
    # groups: {up, down} (node a converts 1 block in March), {flat} (nothing). Per scenario:
    # up: -10 M$ capex + 1 MW x 1 M$ / 0.1 x 1.6 = +16 M$ terminal -> +6 M$; down: -10 + 6 = -4 M$;
    # flat: 0. Expected: 0.3 x 6 + 0.2 x 0 + 0.5 x (-4) = 1.8 - 2.0 = -0.2 M$
    assert ev.npv_usd == pytest.approx(-200_000.0, abs=1e-6)
    assert list(ev.npv_usd_by_scenario) == ["up", "flat", "down"]  # the instance's order, not the groups'
    assert ev.npv_usd_by_scenario == {"up": pytest.approx(6e6), "flat": 0.0, "down": pytest.approx(-4e6)}
    assert ev.probabilities == {"up": pytest.approx(0.3), "flat": pytest.approx(0.2), "down": pytest.approx(0.5)}
    # cash flows sorted by scenario (name), period, site, item: down's two lines, then up's
    got = [tuple(r) for r in ev.cashflows[["scenario", "month", "site", "item", "usd"]].itertuples(index=False)]
    assert got == [("down", "2026-03", "s", "capex_usd", pytest.approx(-10e6)),
                   ("down", "2026-04", "s", "terminal_hpc_usd", pytest.approx(6e6)),
                   ("up", "2026-03", "s", "capex_usd", pytest.approx(-10e6)),
                   ("up", "2026-04", "s", "terminal_hpc_usd", pytest.approx(16e6))]
    # the site x month allocation is the probability-weighted mean of the scenarios': from March the
    # 10 racks are HPC in up and down (p 0.3 + 0.5 = 0.8) and mining racks (empty) in flat (p 0.2):
    # 0.8 x 10 = 8 HPC racks, 0.8 x 1 MW = 0.8 MW, 0.2 x 10 = 2 mining racks; owned with probability 1
    a = ev.allocation
    assert list(a.columns[:2]) == ["site", "month"] and "scenario" not in a.columns
    assert a["month"].tolist() == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert a["hpc_racks"].tolist() == pytest.approx([0, 0, 8, 8])
    assert a["hpc_mw"].tolist() == pytest.approx([0, 0, 0.8, 0.8])
    assert a["mining_racks"].tolist() == pytest.approx([10, 10, 2, 2])
    assert a["owned"].tolist() == pytest.approx([1, 1, 1, 1])
    # per scenario: a scenario column first, the scenarios in the instance's order
    by = ev.allocation_by_scenario
    assert by.columns[0] == "scenario" and by["scenario"].tolist() == ["up"] * 4 + ["flat"] * 4 + ["down"] * 4
    assert by["hpc_mw"].tolist() == pytest.approx([0, 0, 1, 1] + [0, 0, 0, 0] + [0, 0, 1, 1])
    long = ev.allocation_long
    assert long.columns[0] == "scenario" and long["scenario"].tolist() == ["up"] * 4 + ["flat"] * 4 + ["down"] * 4
    assert long["use"].tolist() == (["mining_empty"] * 2 + ["hpc_unleased"] * 2 + ["mining_empty"] * 4
                                    + ["mining_empty"] * 2 + ["hpc_unleased"] * 2)
    k = ev.kpis
    assert k["scenario"].tolist() == ["up"] * 4 + ["flat"] * 4 + ["down"] * 4
    assert k["hpc_mw_online"].tolist() == pytest.approx([0, 0, 1, 1] + [0, 0, 0, 0] + [0, 0, 1, 1])
    # BTC 100,000 for all in January; March: up 150,000, flat 100,000, down 60,000
    assert k["btc_price_usd"].tolist() == pytest.approx([100_000, 100_000, 150_000, 150_000] + [100_000] * 4
                                                        + [100_000, 100_000, 60_000, 60_000])
    assert ev.energy_use["scenario"].drop_duplicates().tolist() == ["up", "flat", "down"]
    # no financing section: no valuation, no debt or tax schedule
    assert ev.valuation == {} and ev.debt_schedule.empty and ev.tax_schedule.empty
    # the conversion is paid only by the terminal HPC value: flagged once, with its expected PV in
    # the group that takes it, (0.3 x 1.6 + 0.5 x 0.6) x 10 M$ = 7.8 M$
    flags = ev.terminal()["flags"]
    assert [(f["kind"], f["site"], f["month"], f["what"]) for f in flags] == [("conversion", "s", "2026-03", "1 blocks")]
    assert "(7,800,000 USD expected PV)" in flags[0]["sentence"]


def test_the_same_commitment_at_every_node_equals_the_plan_without_nodes():
    # converting at node a and at node b is converting in every scenario: the two-stage plan. up +6,
    # flat -10 + 10 = 0, down -4 M$: 1.8 + 0 - 2.0 = -0.2 M$ either way, one group or three
    both = Plan(conversions=df([("s", "2026-03", 1.0, "a"), ("s", "2026-03", 1.0, "b")], ["site", "month", "blocks", "node"]))
    plain = Plan(conversions=df([("s", "2026-03", 1.0)], ["site", "month", "blocks"]))
    inst = tree_instance()
    a, b = evaluate(inst, both), evaluate(inst, plain)
    assert a.violations == [] and b.violations == []
    assert a.npv_usd == pytest.approx(-200_000.0, abs=1e-6) and b.npv_usd == pytest.approx(-200_000.0, abs=1e-6)
    assert a.npv_usd_by_scenario == {"up": pytest.approx(6e6), "flat": pytest.approx(0.0, abs=1e-6), "down": pytest.approx(-4e6)}
    assert a.allocation["hpc_mw"].tolist() == pytest.approx([0, 0, 1, 1])


def test_node_errors_of_a_tree_plan_are_reported_once():
    inst = tree_instance()
    # a conversion of January decided at node a, before a is known (the commitments of January are
    # the root's), and one at a node that does not exist
    early = Plan(conversions=df([("s", "2026-01", 1.0, "a")], ["site", "month", "blocks", "node"]))
    v = evaluate(inst, early).violations
    assert sum("plan.conversions row 0: decided at tree node 'a' for 2026-01" in s and "(non-anticipativity)" in s
               for s in v) == 1, v
    v = evaluate(inst, Plan(conversions=df([("s", "2026-03", 1.0, "nowhere")], ["site", "month", "blocks", "node"]))).violations
    assert v.count("plan.conversions row 0: unknown tree node 'nowhere'") == 1, v
    # a root row every group evaluates (two blocks where the site holds one: 10 racks / 10 per
    # block) is one sentence, not one per group
    bad = Plan(conversions=df([("s", "2026-03", 1.0, "a"), ("s", "2026-01", 2.0, "")], ["site", "month", "blocks", "node"]))
    v = evaluate(inst, bad).violations
    assert len(v) == len(set(v)) and v, v


# ---------------------------------------------------------------- a loan: debt schedule by year, tables, summary keys

ROOT = Path(__file__).parents[1]


def loan_instance(**financing) -> Instance:
    """tiny (one site, 24 months from 2026-01) without discounting, and a project facility drawn
    1,000,000 USD in 2026-02: 1 % upfront fee, 12 %/yr (1 % a month) interest-only through 2026-04,
    then 12 level payments from 2026-05 (test_financing's loan)."""
    d = yaml.safe_load((ROOT / "instances" / "tiny.yaml").read_text())
    d["horizon"]["periods"] = 24
    d["horizon"]["discount_rate"] = 0.0
    d["financing"] = {"project_facilities": [{
        "id": "pf", "site": "s1", "commitment_usd": 2_000_000, "loan_to_cost": 1.0, "interest_rate_per_year": 0.12,
        "upfront_fee_share": 0.01, "draw_first_month": "2026-01", "draw_last_month": "2026-03",
        "amortization_start_month": "2026-05", "tenor_months": 12}], **financing}
    return Instance.from_dict(d)


# one conversion block (1 MW at 1,000,000 USD/MW, lead 2: 500,000 in 2026-01 and 2026-02), its
# 1,000 ASICs retired, 1,000,000 drawn in 2026-02 (loan-to-cost 1.0)
LOAN_PLAN = Plan(conversions=df([("s1", "2026-01", 1.0)], ["site", "month", "blocks"]),
                 retirements=df([("s1", "m200", "2026-01", 1000.0)], ["site", "model", "month", "units"]),
                 debt=df([("pf", "2026-02", 1_000_000.0)], ["instrument", "month", "usd"]))

B, I, N = 1_000_000.0, 0.01, 12
G = 1 + I
A = B * I / (1 - G ** -N)                      # level payment: 88,848.7887 USD a month
OWED_8 = B * (G ** N - G ** 8) / (G ** N - 1)  # balance after the 8 payments of 2026 (May-December)


def test_debt_schedule_by_year_by_hand():
    ev = evaluate(loan_instance(), LOAN_PLAN)
    assert ev.violations == []
    assert A == pytest.approx(88_848.7887, abs=1e-3)
    by_year = ev.debt_schedule_by_year()
    assert list(by_year.columns) == ["instrument", "kind", "year", "drawn_usd", "fees_usd", "interest_usd", "principal_usd",
                                     "debt_service_usd", "balance_usd"]
    assert by_year[["instrument", "kind", "year"]].values.tolist() == [["pf", "project_facility", 2026], ["pf", "project_facility", 2027]]
    y26, y27 = by_year.iloc[0], by_year.iloc[1]
    # 2026: drawn 1,000,000 with a 1 % fee (10,000); interest 10,000 in March and April, then the
    # interest part of 8 level payments (8 A - the principal repaid, B - OWED_8); debt service
    # 20,000 + 8 A; owed at the end of December: OWED_8
    assert y26["drawn_usd"] == pytest.approx(B) and y26["fees_usd"] == pytest.approx(10_000.0)
    assert y26["principal_usd"] == pytest.approx(B - OWED_8, rel=1e-12)
    assert y26["interest_usd"] == pytest.approx(20_000.0 + 8 * A - (B - OWED_8), rel=1e-12)
    assert y26["debt_service_usd"] == pytest.approx(20_000.0 + 8 * A, rel=1e-12)
    assert y26["balance_usd"] == pytest.approx(OWED_8, rel=1e-12)
    # 2027: the last 4 payments repay OWED_8; nothing owed at the end
    assert y27["drawn_usd"] == 0.0 and y27["fees_usd"] == 0.0
    assert y27["principal_usd"] == pytest.approx(OWED_8, rel=1e-12)
    assert y27["interest_usd"] == pytest.approx(4 * A - OWED_8, rel=1e-12)
    assert y27["debt_service_usd"] == pytest.approx(4 * A, rel=1e-12)
    assert y27["balance_usd"] == pytest.approx(0.0, abs=1e-6)


def test_valuation_keys_tables_and_objective_by_hand():
    ev = evaluate(loan_instance(), LOAN_PLAN)
    # without discounting, equity - project = the debt's flows: + 1,000,000 drawn - 10,000 fee
    # - 20,000 interest-only - 12 A (12 x 88,848.7887 = 1,066,185.46) = -96,185.46 USD
    v = ev.valuation_summary()
    assert list(v) == ["project_npv_usd", "equity_npv_usd", "equity_irr", "project_irr", "objective",
                       "project_npv_usd_by_scenario", "equity_npv_usd_by_scenario"]
    assert v["equity_npv_usd"] - v["project_npv_usd"] == pytest.approx(B - 10_000.0 - 20_000.0 - 12 * A, rel=1e-9)
    assert v["equity_npv_usd"] == pytest.approx(ev.npv_usd, rel=1e-12)
    assert v["objective"] == "equity" and ev.objective_npv_usd == pytest.approx(ev.npv_usd, rel=1e-12)
    assert v["project_npv_usd_by_scenario"] == {"base": pytest.approx(v["project_npv_usd"])}
    assert ev.summary("tiny", "loan")["project_npv_usd"] == v["project_npv_usd"]
    t = ev.tables()
    assert list(t) == ["cashflows", "plan", "allocation", "kpis", "npv_breakdown", "debt_schedule", "tax_schedule"]
    assert t["debt_schedule"]["year"].tolist() == [2026, 2027]
    assert t["npv_breakdown"]["pv_usd"].sum() == pytest.approx(ev.npv_usd, rel=1e-9)
    # the project objective values the plan at its project NPV
    proj = evaluate(loan_instance(objective="project"), LOAN_PLAN)
    assert proj.objective_npv_usd == pytest.approx(proj.valuation["project_npv_usd"], rel=1e-12)
    assert proj.objective_npv_usd - proj.npv_usd == pytest.approx(-(B - 10_000.0 - 20_000.0 - 12 * A), rel=1e-9)
    # no financing section: no valuation keys, no debt or tax tables, an empty schedule by year
    d = yaml.safe_load((ROOT / "instances" / "tiny.yaml").read_text())
    plain = evaluate(Instance.from_dict(d), Plan(conversions=LOAN_PLAN.conversions, retirements=LOAN_PLAN.retirements))
    assert plain.valuation_summary() == {} and "project_npv_usd" not in plain.summary("tiny", "plain")
    assert list(plain.tables()) == ["cashflows", "plan", "allocation", "kpis", "npv_breakdown"]
    empty = plain.debt_schedule_by_year()
    assert empty.empty and list(empty.columns) == list(ev.debt_schedule_by_year().columns)


# ---------------------------------------------------------------- tenant limits and the GPU cover

def hpc_instance(racks: int = 20, leases: list | None = None, **top) -> dict:
    """Site h: ``racks`` HPC racks of 100 kW (no mining), an index contract at 40 USD/MWh, no
    discounting, 12 months from 2026-01, no terminal values."""
    return {
        "name": "hpc", "horizon": {"start_month": "2026-01", "periods": 12, "discount_rate": 0.0,
                                   "terminal": {"asic_salvage": False, "treasury_btc": False}},
        "bitcoin": {"start_height": 930000, "pool_fee": 0.0},
        "scenarios": [{"name": "base", "probability": 1.0, "btc_price_usd": 100000, "network_hashrate_eh_s": 1000,
                       "power_price_usd_per_mwh": {"ercot": 40}}],
        "sites": [{"id": "h", "market": "ercot", "grid_interconnect_mw": 5, "pue_mining": 1.0, "pue_hpc": 1.2,
                   "asics_per_rack": 100, "hpc_kw_per_rack": 100, "halls": [{"id": "hpc", "use": "hpc", "racks": racks}]}],
        "fleet": {"asic_models": [{"name": "m200", "hashrate_th_s": 200, "power_w": 3500}]},
        "contracts": [{"id": "idx_h", "site": "h", "kind": "index", "adder_usd_per_mwh": 0}],
        "leases": leases or [], **top,
    }


def lease(lid: str, mw: float, tenant: str | None = None, **kw) -> dict:
    """``mw`` MW at 100 USD/kW-month for the 12 months, signed 2026-01: 1,200,000 USD per MW."""
    return {"id": lid, "it_mw": mw, "rate_usd_per_kw_month": 100, "term_months": 12, "window_start": "2026-01",
            "window_end": "2026-01", "noi_margin": 1.0, "power_passthrough": True, "delay_exposed": False,
            **({"tenant": tenant} if tenant else {}), **kw}


def signed(*rows) -> Plan:
    return Plan(leases=df([(lid, "h", "2026-01", share) for lid, share in rows], ["lease", "site", "month", "share"]))


def test_tenant_limits_by_hand():
    leases = [lease("T", 1.0, "a"), lease("U", 0.5, "b")]

    def v(limits, plan=signed(("T", 1.0), ("U", 1.0))):
        return evaluate(Instance.from_dict(hpc_instance(leases=leases, policy={"tenant_limits": limits})), plan).violations
    # rent: T 1 MW x 1,000 kW x 100 x 12 = 1,200,000 (tenant a), U 600,000 (b): 1,800,000 in all;
    # a's share 1.2 / 1.8 = 2/3, b's 1/3
    assert v([{"tenant": "a", "max_rent_share": 0.6}]) == [
        "tenant a: rent 1,200,000 USD is more than max_rent_share 0.6 x the rent of every signed lease 1,800,000 USD"]
    assert v([{"tenant": "a", "max_rent_share": 0.7}]) == []
    assert v([{"tenant": "b", "max_rent_share": 1 / 3}]) == []       # exactly at the limit
    assert v([{"tenant": "b", "max_rent_share": 0.33}]) == [
        "tenant b: rent 600,000 USD is more than max_rent_share 0.33 x the rent of every signed lease 1,800,000 USD"]
    # MW: a signs 1 MW, b 0.5 MW
    assert v([{"tenant": "b", "max_it_mw": 0.4}]) == ["tenant b: signed leases total 0.5 MW, more than its limit max_it_mw 0.4"]
    assert v([{"tenant": "a", "max_it_mw": 1.0}, {"tenant": "b", "max_it_mw": 0.5}]) == []   # both at their limit
    # both limits of one tenant, and two tenants, each reported
    assert v([{"tenant": "a", "max_it_mw": 0.9, "max_rent_share": 0.5}, {"tenant": "b", "max_it_mw": 0.1}]) == [
        "tenant a: signed leases total 1 MW, more than its limit max_it_mw 0.9",
        "tenant a: rent 1,200,000 USD is more than max_rent_share 0.5 x the rent of every signed lease 1,800,000 USD",
        "tenant b: signed leases total 0.5 MW, more than its limit max_it_mw 0.1"]
    # a tenant with nothing signed has no rent, whatever its limit
    assert v([{"tenant": "a", "max_rent_share": 0.0}], signed(("U", 1.0))) == []


GPU_OPTION = {"id": "gb", "kw_per_gpu": 2.0, "usd_per_mw": 1_200_000, "price_usd_per_mw_month": 0.0,
              "useful_life_months": 24, "first_month": "2026-01", "last_month": "2026-12"}


def test_gpu_cover_by_hand():
    # two GPU cloud contracts of option gb at site h, 0.6 and 0.4 MW from 2026-01: 1 MW of GPUs held
    leases = [lease("K1", 0.6, gpu_option="gb"), lease("K2", 0.4, gpu_option="gb")]
    inst = Instance.from_dict(hpc_instance(leases=leases, gpu_cloud={"options": [GPU_OPTION]}))
    both = signed(("K1", 1.0), ("K2", 1.0)).leases

    def v(gpus):
        return evaluate(inst, Plan(leases=both, gpu_purchases=df(gpus, ["option", "site", "month", "mw"]))).violations
    assert v([("gb", "h", "2026-01", 1.0)]) == []
    assert v([("gb", "h", "2026-01", 0.5)]) == [
        "site h 2026-01: GPU cloud contracts hold 1 MW of GPUs of option gb but only 0.5 MW are in service (and 11 more periods)"]
    # bought a month late: January uncovered only
    assert v([("gb", "h", "2026-02", 1.0)]) == [
        "site h 2026-01: GPU cloud contracts hold 1 MW of GPUs of option gb but only 0 MW are in service"]
    # no GPU at all
    assert evaluate(inst, Plan(leases=both)).violations == [
        "site h 2026-01: GPU cloud contracts hold 1 MW of GPUs of option gb but only 0 MW are in service (and 11 more periods)"]


# ---------------------------------------------------------------- the first stage's rule checks, sentence by sentence

def build_instance(**option) -> Instance:
    """Site h with no racks of its own and the new-build option ``hall`` (10 racks x 100 kW = 1 MW a
    block at 1,000,000 USD/MW, lead 3 months, at most 2 blocks), a grid expansion ``sub`` (lead 1)
    and an optional fixed contract ``ppa``; 12 months from 2026-01."""
    d = hpc_instance(racks=0)
    d["sites"][0]["halls"] = []
    d["sites"][0]["new_builds"] = [{"id": "hall", "use": "hpc", "racks_per_block": 10, "capex_usd_per_mw": 1_000_000,
                                    "lead_months": 3, "max_blocks": 2, **option}]
    d["sites"][0]["grid_expansions"] = [{"id": "sub", "mw": 5, "capex_usd": 100_000, "lead_months": 1}]
    d["contracts"].append({"id": "ppa", "site": "h", "kind": "fixed", "mw_cap": 1, "price_usd_per_mwh": 40, "optional": True})
    return Instance.from_dict(d)


def builds(*rows, **tables) -> Plan:
    return Plan(new_builds=df([("h", "hall", m, b) for m, b in rows], ["site", "option", "month", "blocks"]), **tables)


def test_new_build_rules_sentence_by_sentence():
    v = evaluate(build_instance(), builds(("2026-03", 1.5))).violations
    assert v == ["new build hall at site h 2026-03: blocks must be whole, got 1.5"]
    v = evaluate(build_instance(earliest_month="2026-03"), builds(("2026-02", 1.0))).violations
    assert v == ["new build hall at site h 2026-02: started before its earliest month 2026-03"]
    assert evaluate(build_instance(earliest_month="2026-03"), builds(("2026-03", 1.0))).violations == []
    # started 2026-10 (period 9), in service 3 periods later: period 12, past the last one (11)
    v = evaluate(build_instance(), builds(("2026-10", 1.0))).violations
    assert v == ["new build hall at site h 2026-10: racks would be in service after the horizon's last period 2026-12 (lead 3 months)"]
    assert evaluate(build_instance(), builds(("2026-09", 1.0))).violations == []   # in service in 2026-12
    v = evaluate(build_instance(), builds(("2026-03", 2.0), ("2026-04", 1.0))).violations
    assert v == ["new build hall at site h: 3 blocks started, more than max_blocks 2"]
    # the expansion it requires must be started no later than the block
    inst = build_instance(requires_grid_expansion="sub")
    gx = df([("h", "sub", "2026-04")], ["site", "option", "month"])
    v = evaluate(inst, builds(("2026-03", 1.0), grid_expansions=gx)).violations
    assert v == ["new build hall at site h 2026-03: requires grid expansion sub started by then"]
    assert evaluate(inst, builds(("2026-03", 1.0), grid_expansions=gx.assign(month="2026-03"))).violations == []
    # and the contract it requires must be signed
    inst = build_instance(requires_contract="ppa")
    v = evaluate(inst, builds(("2026-03", 1.0))).violations
    assert v == ["new build hall at site h 2026-03: requires contract ppa, which is not signed"]
    signed_ppa = df([("ppa", True)], ["contract", "signed"])
    assert evaluate(inst, builds(("2026-03", 1.0), contracts=signed_ppa)).violations == []


def gpu_instance(**option) -> Instance:
    d = hpc_instance(racks=10)
    d["sites"].append({**d["sites"][0], "id": "x"})
    d["contracts"].append({"id": "idx_x", "site": "x", "kind": "index", "adder_usd_per_mwh": 0})
    d["gpu_cloud"] = {"options": [{**GPU_OPTION, **option}]}
    return Instance.from_dict(d)


def gpus(*rows) -> Plan:
    return Plan(gpu_purchases=df([("gb", s, m, mw) for s, m, mw in rows], ["option", "site", "month", "mw"]))


def test_gpu_purchase_rules_sentence_by_sentence():
    v = evaluate(gpu_instance(sites=["x"]), gpus(("h", "2026-01", 0.5))).violations
    assert v == ["GPU option gb 2026-01: site h may not host its GPUs (allowed: x)"]
    assert evaluate(gpu_instance(sites=["x"]), gpus(("x", "2026-01", 0.5))).violations == []
    v = evaluate(gpu_instance(first_month="2026-03", last_month="2026-06"), gpus(("h", "2026-02", 0.5))).violations
    assert v == ["GPU option gb 2026-02: ordered outside the option's months 2026-03..2026-06 (GPUs must be in service "
                 "inside the horizon; lead 0 months)"]
    v = evaluate(gpu_instance(max_mw=1.0), gpus(("h", "2026-01", 0.7), ("x", "2026-02", 0.5))).violations
    assert v == ["GPU option gb: 1.2 MW bought, more than max_mw 1"]
    assert evaluate(gpu_instance(max_mw=1.2), gpus(("h", "2026-01", 0.7), ("x", "2026-02", 0.5))).violations == []


def test_mining_exit_overhead_cut_and_forward_rules_sentence_by_sentence():
    # levers.yaml: site s1, 3 months from 2026-04
    def exits(*months):
        return Plan(mining_exits=df([("s1", m) for m in months], ["site", "month"]))
    v = evaluate(lever_instance(lambda raw: None), exits("2026-05")).violations
    assert "site s1 2026-05: exits mining but the site has no mining_overhead to stop" in v, v

    def overhead(raw):
        raw["sites"][0]["mining_overhead"] = {"usd_per_month": 50_000, "exit_cost_usd": 10_000}
    v = evaluate(lever_instance(overhead), exits("2026-05", "2026-06")).violations
    assert "site s1: mining exit listed twice (2026-05, 2026-06); a site exits once" in v, v

    def cuts(raw):
        raw["overhead"] = {"g_and_a_usd_per_month": 100_000, "reductions": [
            {"id": "cut15", "staff_cost_usd_per_year": 600_000, "cut_share": 0.15, "earliest_month": "2026-05",
             "latest_month": "2026-05"},
            {"id": "open", "staff_cost_usd_per_year": 600_000, "cut_share": 0.10, "earliest_month": "2026-06"}]}
    inst = lever_instance(cuts)
    v = evaluate(inst, Plan(overhead_cuts=df([("cut15", "2026-04")], ["reduction", "month"]))).violations
    assert v == ["G&A reduction cut15 2026-04: outside its months 2026-05..2026-05"]
    assert evaluate(inst, Plan(overhead_cuts=df([("cut15", "2026-05")], ["reduction", "month"]))).violations == []
    # no latest month: up to the horizon's last month (2026-06)
    v = evaluate(inst, Plan(overhead_cuts=df([("open", "2026-05")], ["reduction", "month"]))).violations
    assert v == ["G&A reduction open 2026-05: outside its months 2026-06..2026-06"]

    def forward(raw):
        raw["hedges"] = {"forwards": [{"id": "f1", "price_usd_per_ph_day": 33, "first_month": "2026-05", "last_month": "2026-06",
                                       "max_share_of_expected_hashrate": 0.5, "collateral_share": 0.1}]}
    v = evaluate(lever_instance(forward), Plan(hedges=df([("f1", "2026-04", 10.0)], ["forward", "month", "ph_s"]))).violations
    assert v == ["hashprice forward f1 2026-04: outside its delivery months 2026-05..2026-06"]


def test_debt_rows_without_a_financing_section():
    d = yaml.safe_load((ROOT / "instances" / "tiny.yaml").read_text())
    v = evaluate(Instance.from_dict(d), Plan(debt=df([("pf", "2026-02", 1_000.0)], ["instrument", "month", "usd"]))).violations
    assert "plan.debt: 1 row(s) but the instance has no financing section" in v, v


def test_tree_plan_with_corporate_debt_joins_the_valuations_by_hand():
    d = tree_instance().model_dump(mode="json", exclude_none=True)
    # notes of 1,000,000 at 12 %/yr: 10,000 of coupon a month January-April, repaid at maturity in April
    d["financing"] = {"corporate_debt": [{"id": "n", "principal_usd": 1_000_000, "coupon_per_year": 0.12,
                                          "maturity_month": "2026-04"}]}
    ev = evaluate(Instance.from_dict(d), CONVERT_AT_A)
    assert ev.violations == []
    v = ev.valuation_summary()
    # project (unlevered) NPV as without the notes: up +6, flat 0, down -4 M$ -> -0.2 M$; equity
    # pays 4 x 10,000 + 1,000,000 = 1,040,000 more in every scenario
    assert v["project_npv_usd_by_scenario"] == {"up": pytest.approx(6e6), "flat": pytest.approx(0.0, abs=1e-6),
                                                "down": pytest.approx(-4e6)}
    assert v["equity_npv_usd_by_scenario"] == {"up": pytest.approx(6e6 - 1_040_000), "flat": pytest.approx(-1_040_000),
                                               "down": pytest.approx(-4e6 - 1_040_000)}
    assert v["project_npv_usd"] == pytest.approx(-200_000.0, abs=1e-6)
    assert v["equity_npv_usd"] == pytest.approx(-1_240_000.0, abs=1e-6) == ev.npv_usd
    # the IRRs of the joined flows are not recomputed
    assert v["objective"] == "equity" and v["equity_irr"] is None and v["project_irr"] is None
    t = ev.tables()
    assert list(t) == ["cashflows", "plan", "allocation", "kpis", "npv_breakdown", "plan_by_scenario", "debt_schedule",
                       "tax_schedule"]
    # the notes' schedule per scenario, the scenarios in the instance's order
    ds = ev.debt_schedule
    assert ds.columns[0] == "scenario" and ds["scenario"].drop_duplicates().tolist() == ["up", "flat", "down"]


def test_plant_feeding_a_site_it_may_not_feed_is_reported():
    # levers.yaml with a second site s2; the plant at s1 may feed s2 only
    def edit(raw):
        s2 = {**raw["sites"][0], "id": "s2"}
        raw["sites"].append(s2)
        raw["contracts"] = [{"id": "ix2", "site": "s2", "kind": "index", "adder_usd_per_mwh": 0},
                            {"id": "plant", "site": "s1", "kind": "owned_generation", "mw": 5, "variable_cost_usd_per_mwh": 20,
                             "can_export": False, "feeds": ["s2"]}]
    inst = lever_instance(edit)
    cols = ["scenario", "contract", "site", "month", "mwh"]
    v = evaluate(inst, Plan(plant_feeds=df([("base", "plant", "s1", "2026-05", 10.0)], cols)), complete=False).violations
    assert ("contract plant 2026-05: feeds 10 MWh to site s1, which it may not feed (an owned plant feeds the sites listed "
            "in its feeds)") in v, v
    # feeding s2, which it may feed: no such sentence
    v = evaluate(inst, Plan(plant_feeds=df([("base", "plant", "s2", "2026-05", 10.0)], cols)), complete=False).violations
    assert not any("which it may not feed" in s for s in v), v


def test_operating_tables_with_unknown_keys_and_bad_values_sentence_by_sentence():
    # levers.yaml (site s1: 1,000 a100 installed, index contract ix; 2026-04..06) with a second site
    # s2 with no ASICs and a plant at s1 that may feed s2; operations as given (not completed)
    def edit(raw):
        raw["sites"].append({**raw["sites"][0], "id": "s2"})
        raw["contracts"] += [{"id": "ix2", "site": "s2", "kind": "index", "adder_usd_per_mwh": 0},
                             {"id": "plant", "site": "s1", "kind": "owned_generation", "mw": 5, "variable_cost_usd_per_mwh": 20,
                              "can_export": False, "feeds": ["s2"]}]
    inst = lever_instance(edit)
    nan = float("nan")
    plan = Plan(
        operations=df([("nope", "s1", "a100", "2026-04", 1.0), ("nope", "s1", "a100", "2026-05", 1.0),
                       ("base", "zz", "a100", "2026-04", 1.0), ("base", "s1", "m9", "2026-04", 1.0),
                       ("base", "s1", "a100", "2026-07", 1.0), ("base", "s1", "a100", "April", 1.0)],
                      ["scenario", "site", "model", "month", "units"]),
        energy=df([("nope", "ix", "2026-04", 1.0, 0.0, 0.0), ("base", "ix9", "2026-04", 1.0, 0.0, 0.0),
                   ("base", "ix", "2026-04", -5.0, 0.0, 0.0), ("base", "ix", "2026-05", -5.0, 0.0, 0.0)],
                  ["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"]),
        btc_sales=df([("nope", "2026-04", 1.0), ("base", "2026-05", nan)], ["scenario", "month", "btc"]),
        curtailment=df([("nope", "s1", "a100", "2026-04", 1.0, 0.0), ("base", "zz", "a100", "2026-04", 1.0, 0.0),
                        ("base", "zz", "a100", "2026-05", 1.0, 0.0), ("base", "s1", "m9", "2026-04", 1.0, 0.0),
                        ("base", "s1", "a100", "2026-04", 0.0, -2.0), ("base", "s1", "a100", "2026-05", -3.0, 0.0)],
                       ["scenario", "site", "model", "month", "dr_units", "peak_units"]),
        plant_feeds=df([("nope", "plant", "s2", "2026-04", 1.0), ("base", "plant9", "s2", "2026-04", 1.0),
                        ("base", "plant", "zz", "2026-04", 1.0), ("base", "plant", "s2", "2026-05", -3.0)],
                       ["scenario", "contract", "site", "month", "mwh"]),
    )
    v = evaluate(inst, plan, complete=False).violations
    for s in ["plan.operations: unknown scenario 'nope' (2 rows)", "plan.operations: unknown site 'zz' (1 row)",
              "plan.operations: unknown ASIC model 'm9' (1 row)",
              "plan.operations: month 2026-07 is outside the horizon 2026-04..2026-06",
              "plan.operations: month 'April' is not a month written YYYY-MM",
              "plan.energy: unknown scenario 'nope' (1 row)", "plan.energy: unknown contract 'ix9' (1 row)",
              "plan.energy row 2: delivered_mwh -5 is negative (and 1 more rows)",
              "plan.btc_sales: unknown scenario 'nope' (1 row)", "plan.btc_sales row 1: btc is not a number",
              "plan.curtailment: unknown scenario 'nope' (1 row)", "plan.curtailment: unknown site 'zz' (2 rows)",
              "plan.curtailment: unknown ASIC model 'm9' (1 row)", "plan.curtailment row 4: peak_units -2 is negative",
              "plan.curtailment row 5: dr_units -3 is negative",
              "plan.plant_feeds: unknown scenario 'nope' (1 row)", "plan.plant_feeds: unknown contract 'plant9' (1 row)",
              "plan.plant_feeds: unknown site 'zz' (1 row)", "plan.plant_feeds row 3: mwh -3 is negative"]:
        assert s in v, (s, v)


def test_operating_more_units_than_installed_sentence_and_tolerance():
    def edit(raw):
        raw["sites"].append({**raw["sites"][0], "id": "s2"})
        raw["contracts"].append({"id": "ix2", "site": "s2", "kind": "index", "adder_usd_per_mwh": 0})
    inst = lever_instance(edit)
    cols = ["scenario", "site", "model", "month", "units"]

    def v(rows):
        return [s for s in evaluate(inst, Plan(operations=df(rows, cols)), complete=False).violations if "operating units" in s]
    # 1,000 a100 installed at s1 (2,000 operating in two months: one sentence, one more case), none at s2
    assert v([("base", "s1", "a100", m, 2000.0) for m in ("2026-04", "2026-05")]) == [
        "site s1 2026-04: 2000 operating units of model a100 exceed 1000 installed (and 1 more period/scenario case)"]
    assert v([("base", "s1", "a100", m, 2000.0) for m in ("2026-04", "2026-05", "2026-06")]) == [
        "site s1 2026-04: 2000 operating units of model a100 exceed 1000 installed (and 2 more period/scenario cases)"]
    assert v([("base", "s2", "a100", "2026-05", 0.5)]) == ["site s2 2026-05: 0.5 operating units of model a100 exceed 0 installed"]
    # the tolerance is relative, 1e-6 x the installed units with a floor of 1e-6: 1,000.0005 of 1,000
    # pass, 1,000.002 do not; at s2 (none installed) 2e-6 units do not
    assert v([("base", "s1", "a100", "2026-04", 1000.0005)]) == []
    assert v([("base", "s1", "a100", "2026-04", 1000.002)]) == ["site s1 2026-04: 1000 operating units of model a100 exceed 1000 installed"]
    assert v([("base", "s2", "a100", "2026-04", 1.5e-6)]) == ["site s2 2026-04: 1.5e-06 operating units of model a100 exceed 0 installed"]
    assert v([("base", "s2", "a100", "2026-04", 1e-6)]) == []   # exactly at the floor of the tolerance


def test_contract_and_grid_rules_name_the_scenario():
    # levers.yaml (2026-04..06, site s1 with 1,000 a100 = 2 MW) with two scenarios and a 1 MW grid;
    # fx: fixed 1 MW from 2026-05, no sale back; fs: fixed 1 MW that may sell back; opt: an optional
    # index contract (not signed). Every wrong row is in scenario b: each sentence names it.
    def edit(raw):
        sc = raw["scenarios"][0]
        raw["scenarios"] = [dict(sc, name="a", probability=0.5), dict(sc, name="b", probability=0.5)]
        raw["sites"][0]["grid_interconnect_mw"] = 1
        raw["contracts"] += [
            {"id": "fx", "site": "s1", "kind": "fixed", "price_usd_per_mwh": 40, "mw_cap": 1, "start_month": "2026-05"},
            {"id": "fs", "site": "s1", "kind": "fixed", "price_usd_per_mwh": 40, "mw_cap": 1, "sell_back_allowed": True},
            {"id": "opt", "site": "s1", "kind": "index", "optional": True}]
    inst = lever_instance(edit)
    energy = df([("b", "fx", "2026-04", 5.0, 0.0, 0.0),      # before its term
                 ("b", "fx", "2026-05", 1000.0, 0.0, 0.0),   # over 1 MW x 744 h
                 ("b", "fx", "2026-06", 5.0, 10.0, 0.0),     # uses more than delivered
                 ("b", "fx", "2026-06", 0.0, 0.0, 2.0),      # sells, which fx may not
                 ("b", "fs", "2026-05", 10.0, 4.0, 7.0),     # sells 7 of the 6 left
                 ("b", "opt", "2026-04", 0.0, 3.0, 0.0)],    # uses an unsigned contract
                ["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"])
    v = evaluate(inst, Plan(energy=energy), complete=False).violations
    for s in ["contract fx 2026-04 (scenario b): 5 MWh outside its term (2026-05..2026-06)",
              "contract fx 2026-05 (scenario b): delivered 1000 MWh exceeds the cap 744 MWh (1 MW x 744 h)",
              "contract fx 2026-06 (scenario b): used 10 MWh exceeds delivered 5 MWh",
              "contract fx 2026-06 (scenario b): sells 2 MWh but selling energy back is not allowed",
              "contract fs 2026-05 (scenario b): sold 7 MWh exceeds delivered - used = 6 MWh",
              "contract opt 2026-04 (scenario b): 3 MWh used but the optional contract is not signed"]:
        assert s in v, (s, v)
    # the 1,000 ASICs (2 MW) on a 1 MW grid, in scenario b only: April has 720 h, 1,440 MWh = 2 MW
    ops = df([("b", "s1", "a100", "2026-04", 1000.0)], ["scenario", "site", "model", "month", "units"])
    v = evaluate(inst, Plan(operations=ops), complete=False).violations
    assert any(s.startswith("site s1 2026-04 (scenario b): load 2 MW exceeds grid 1 MW") for s in v), v


def site_lines(ev, site: str, item: str) -> list[float]:
    """USD of one item at one site, per month of the horizon (first scenario), zeros filled."""
    cf = ev.cashflows
    cf = cf[(cf["site"] == site) & (cf["item"] == item) & (cf["scenario"] == next(iter(ev.probabilities)))]
    by = cf.groupby("month")["usd"].sum()
    return [float(by.get(m, 0.0)) for m in ev.kpis["month"].drop_duplicates()]


def test_evaluate_as_given_keeps_the_plan_it_was_given():
    from optimizer.evaluate import evaluate_as_given
    inst = lever_instance(lambda raw: None)
    plan = Plan(operations=df([("base", "s1", "a100", "2026-04", 1000.0)], ["scenario", "site", "model", "month", "units"]))
    assert evaluate_as_given(inst, plan).plan is plan


def test_joint_venture_share_of_the_site_lines_and_the_mined_btc():
    # levers.yaml: 1,000 a100 of 100 TH/s = 100 PH/s at s1; hashprice 45 USD/PH/day at 100,000 USD/BTC
    # (test_levers): April (30 days) 100 x 45 x 30 = 135,000 USD, 1.35 BTC. Mined BTC held in treasury
    # and valued at the end (without that terminal value holding makes mining worthless: nothing runs).
    def jv(share):
        def edit(raw):
            raw["sites"][0]["ownership_share"] = share
            raw["treasury"] = {"mined_btc": "hold"}
            raw["horizon"]["terminal"]["treasury_btc"] = True
        return evaluate(lever_instance(edit), Plan())
    whole, half = jv(1.0), jv(0.5)
    assert whole.violations == [] and half.violations == []
    assert site_lines(whole, "s1", "mining_revenue_usd")[0] == pytest.approx(135_000.0)
    assert site_lines(half, "s1", "mining_revenue_usd")[0] == pytest.approx(67_500.0)
    # the company holds its share of the BTC mined: 0.675 BTC in April, retained at 100,000 USD
    assert site_lines(half, "portfolio", "btc_retained_usd")[0] == pytest.approx(-67_500.0)
    assert half.kpis["treasury_btc"].iloc[0] == pytest.approx(0.675)
    # 0.045 BTC a day x (30 + 31 + 30) days = 4.095 BTC mined, half held at the end at 100,000 USD
    assert site_lines(half, "portfolio", "terminal_treasury_usd")[-1] == pytest.approx(0.5 * 4.095 * 100_000)
    # every site line of the joint venture is half the whole site's
    for item in ("mining_revenue_usd", "power_cost_usd"):
        assert site_lines(half, "s1", item) == pytest.approx([0.5 * x for x in site_lines(whole, "s1", item)])


def test_plant_feeds_another_site_through_the_operating_rule_by_hand():
    # test_levers' behind-the-meter case, without the solve: the plant (5 MW, 20 USD/MWh, no export)
    # at s1 (no ASICs) feeds s2's 1,000 a100 (2 MW): 2 MW x 720 h = 1,440 MWh in April at 20 USD =
    # 28,800 USD booked at s1; May 1,488 MWh; s2 buys nothing at 60 and the energy balances
    ev = evaluate(lever_instance(plant_feeding_s2), Plan())
    assert ev.violations == []
    fed = ev.plan.plant_feeds.set_index("month")["mwh"]
    assert fed["2026-04"] == pytest.approx(1440) and fed["2026-05"] == pytest.approx(1488)
    assert site_lines(ev, "s1", "power_cost_usd")[:2] == pytest.approx([-28_800, -29_760])
    assert site_lines(ev, "s2", "power_cost_usd") == [0.0, 0.0, 0.0]
    # fed 100 MWh less than s2's load in April: the balance is short, and the sentence says by how much
    short = ev.plan.replace(plant_feeds=ev.plan.plant_feeds.assign(mwh=lambda x: x["mwh"] - (x["month"] == "2026-04") * 100.0))
    v = evaluate(lever_instance(plant_feeding_s2), short, complete=False).violations
    assert ("site s2 2026-04: energy used from contracts 1340 MWh differs from the load 1440 MWh (mining 1440 + HPC 0)"
            in v), v


def test_an_optional_plant_costs_its_fixed_cost_only_when_signed():
    def edit(raw):
        raw["contracts"].append({"id": "plant", "site": "s1", "kind": "owned_generation", "mw": 5, "variable_cost_usd_per_mwh": 20,
                                 "fixed_cost_usd_per_month": 1_000, "optional": True})
    inst = lever_instance(edit)
    signed_plant = evaluate(inst, Plan(contracts=df([("plant", True)], ["contract", "signed"])), complete=False)
    assert site_lines(signed_plant, "s1", "power_cost_usd") == pytest.approx([-1_000.0] * 3)  # 1,000 a month, no energy
    unsigned = evaluate(inst, Plan(contracts=df([("plant", False)], ["contract", "signed"])), complete=False)
    assert site_lines(unsigned, "s1", "power_cost_usd") == [0.0, 0.0, 0.0] and unsigned.npv_usd == 0.0


def test_a_plant_keeps_its_residual_value_only_when_signed_and_owned_at_the_end():
    # levers.yaml with an optional plant at s1 of residual value 1 USD at the end (no fixed cost, no
    # energy: nothing else moves). Signed and owned at the end: +1 USD in June (a value of 1 USD still
    # counts); not signed: nothing; signed but s1 sold in June: not owned at the end, nothing.
    def edit(raw):
        raw["contracts"].append({"id": "plant", "site": "s1", "kind": "owned_generation", "mw": 5, "variable_cost_usd_per_mwh": 20,
                                 "optional": True, "residual_value_usd": 1})
        raw["sites"][0]["sale"] = {"price_usd": 0}
    inst = lever_instance(edit)

    def residual(signed_plant, *events):
        plan = Plan(contracts=df([("plant", signed_plant)], ["contract", "signed"]),
                    site_events=df(list(events), ["site", "event", "month"]))
        return site_lines(evaluate(inst, plan, complete=False), "s1", "terminal_generation_usd")
    assert residual(True) == [0.0, 0.0, 1.0]
    assert residual(False) == [0.0, 0.0, 0.0]
    assert residual(True, ("s1", "sale", "2026-06")) == [0.0, 0.0, 0.0]


def test_gpu_opex_is_paid_per_mw_in_service():
    # 0.5 MW of GPUs of option gb bought 2026-03 (no lead: in service March-December) with 10,000
    # USD/MW-month of opex: 0.5 x 10,000 = 5,000 a month from March in the site's opex line, nothing
    # before; nothing else there (no HPC fixed opex)
    inst = Instance.from_dict(hpc_instance(racks=10, gpu_cloud={"options": [{**GPU_OPTION, "opex_usd_per_mw_month": 10_000}]}))
    ev = evaluate(inst, Plan(gpu_purchases=df([("gb", "h", "2026-03", 0.5)], ["option", "site", "month", "mw"])))
    assert site_lines(ev, "h", "opex_usd") == pytest.approx([0.0, 0.0] + [-5_000.0] * 10)


def test_gpu_merchant_revenue_is_what_contracts_do_not_hold_at_each_site():
    # option gb sells merchant GPU capacity at 100,000 USD/MW-month (utilization 1, index 1) and costs
    # 10,000 USD/MW-month of opex. Site h: 1 MW of GPUs from 2026-01, of which the GPU cloud contract
    # K holds 0.6 MW: merchant (1 - 0.6) x 100,000 = 40,000 a month, opex 10,000. Site x: 0.5 MW, no
    # contract: 50,000 a month, opex 5,000. K's rent (0.6 MW x 1,000 x 100 = 60,000) is lease revenue.
    d = hpc_instance(racks=10, leases=[lease("K", 0.6, gpu_option="gb")])
    d["sites"].append({**d["sites"][0], "id": "x"})
    d["contracts"].append({"id": "idx_x", "site": "x", "kind": "index", "adder_usd_per_mwh": 0})
    d["gpu_cloud"] = {"options": [{**GPU_OPTION, "price_usd_per_mw_month": 100_000, "opex_usd_per_mw_month": 10_000}]}
    plan = Plan(leases=signed(("K", 1.0)).leases,
                gpu_purchases=df([("gb", "h", "2026-01", 1.0), ("gb", "x", "2026-01", 0.5)], ["option", "site", "month", "mw"]))
    ev = evaluate(Instance.from_dict(d), plan)
    assert ev.violations == []
    assert site_lines(ev, "h", "gpu_cloud_revenue_usd") == pytest.approx([40_000.0] * 12)
    assert site_lines(ev, "x", "gpu_cloud_revenue_usd") == pytest.approx([50_000.0] * 12)
    assert site_lines(ev, "h", "opex_usd") == pytest.approx([-10_000.0] * 12)
    assert site_lines(ev, "x", "opex_usd") == pytest.approx([-5_000.0] * 12)
    assert site_lines(ev, "h", "lease_revenue_usd") == pytest.approx([60_000.0] * 12)


def test_the_compiled_data_given_is_the_one_evaluated():
    # evaluate(instance, plan, data=...) values the plan on the Data it is given (a caller may have
    # changed parameters in place, as the persistent solver does), not on a fresh compile of the
    # instance. levers.yaml at 50,000 USD/BTC instead of 100,000: the 1,000 a100 earn half, 67,500
    # USD in April (30 d), 69,750 in May (31 d), 67,500 in June, for 57,600 / 59,520 / 57,600 of power
    # at 40 USD/MWh (2 MW): margins 9,900 / 10,230 / 9,900, discounted at 12 %/yr month by month
    from optimizer.economics.data import compile_instance

    def cheap(raw):
        raw["scenarios"][0]["btc_price_usd"] = 50_000
    inst, data = lever_instance(lambda raw: None), compile_instance(lever_instance(cheap))
    hand = sum(1.12 ** (-(k + 1) / 12) * m for k, m in enumerate([9_900.0, 10_230.0, 9_900.0]))
    assert evaluate(inst, Plan(), data=data).npv_usd == pytest.approx(hand, rel=1e-9)


def test_a_line_of_one_dollar_a_month_is_booked():
    # a 1 MW lease at 0.001 USD/kW-month: 1,000 kW x 0.001 = 1 USD of rent every month of its
    # 12-month term (NOI margin 1, power passed through at cost): a line of exactly 1 USD per cell
    inst = Instance.from_dict(hpc_instance(racks=10, leases=[lease("L", 1.0, rate_usd_per_kw_month=0.001)]))
    ev = evaluate(inst, signed(("L", 1.0)))
    assert ev.violations == []
    assert site_lines(ev, "h", "lease_revenue_usd") == [1.0] * 12


def test_curtailment_rules_sentence_by_sentence():
    # levers.yaml with two scenarios; market m runs demand response in May and June only and the
    # transmission peak in June only; site s2 (market m2) has no program. Rows of scenario b only.
    def edit(raw):
        sc = raw["scenarios"][0]
        power = {"m": 40, "m2": 40}
        raw["scenarios"] = [dict(sc, name="a", probability=0.5, power_price_usd_per_mwh=power),
                            dict(sc, name="b", probability=0.5, power_price_usd_per_mwh=power)]
        raw["markets"] = [{"id": "m", "demand_response": {"payment_usd_per_mw_month": 5000, "curtailment_hours_per_month": 10,
                                                          "months": [5, 6]},
                           "transmission_peak": {"charge_usd_per_mw": 20000, "months": [6], "curtail_hours_per_month": 4}}]
        raw["sites"].append({**copy.deepcopy(raw["sites"][0]), "id": "s2", "market": "m2"})
        raw["fleet"]["installed"].append({"site": "s2", "model": "a100", "units": 1000})
        raw["contracts"].append({"id": "ix2", "site": "s2", "kind": "index", "adder_usd_per_mwh": 0})
    inst = lever_instance(edit)
    ops = df([("b", s, "a100", m, 1000.0) for s in ("s1", "s2") for m in ("2026-04", "2026-05", "2026-06")],
             ["scenario", "site", "model", "month", "units"])
    cols = ["scenario", "site", "model", "month", "dr_units", "peak_units"]

    def v(rows):
        out = evaluate(inst, Plan(operations=ops, curtailment=df(rows, cols)), complete=False).violations
        return [s for s in out if "units of model a100" in s]
    no_program = "but the site's market has no such program that month"
    assert v([("b", "s1", "a100", "2026-04", 1.0, 0.0)]) == [
        f"site s1 2026-04 (scenario b): 1 units of model a100 enrolled in demand response {no_program}"]
    assert v([("b", "s1", "a100", "2026-05", 0.0, 50.0)]) == [
        f"site s1 2026-05 (scenario b): 50 units of model a100 off around the transmission peak {no_program}"]
    assert v([("b", "s2", "a100", "2026-05", 10.0, 20.0)]) == [
        f"site s2 2026-05 (scenario b): 10 units of model a100 enrolled in demand response {no_program}",
        f"site s2 2026-05 (scenario b): 20 units of model a100 off around the transmission peak {no_program}"]
    assert v([("b", "s1", "a100", "2026-05", 1200.0, 0.0), ("b", "s1", "a100", "2026-06", 0.0, 1001.0)]) == [
        "site s1 2026-05 (scenario b): 1200 units of model a100 enrolled in demand response exceed the 1000 operating",
        "site s1 2026-06 (scenario b): 1001 units of model a100 off around the transmission peak exceed the 1000 operating"]
    # inside the programs, up to the operating units (within 1e-6 x them): no sentence; 1e-6 units
    # in a month without a program are below the threshold
    assert v([("b", "s1", "a100", "2026-05", 1000.0, 0.0), ("b", "s1", "a100", "2026-06", 1000.0005, 1000.001),
              ("b", "s1", "a100", "2026-04", 1e-6, 1e-6)]) == []


def test_curtailment_tolerance_has_a_floor_of_one_unit():
    # 1 unit operating at s1 in June (scenario base): 1 + 1.5e-6 units enrolled exceed it (the
    # tolerance is 1e-6 x max(1, operating) = 1e-6)
    def edit(raw):
        raw["markets"] = [{"id": "m", "demand_response": {"payment_usd_per_mw_month": 5000, "curtailment_hours_per_month": 10}}]
    plan = Plan(operations=df([("base", "s1", "a100", "2026-06", 1.0)], ["scenario", "site", "model", "month", "units"]),
                curtailment=df([("base", "s1", "a100", "2026-06", 1.0 + 1.5e-6, 0.0)],
                               ["scenario", "site", "model", "month", "dr_units", "peak_units"]))
    v = evaluate(lever_instance(edit), plan, complete=False).violations
    assert "site s1 2026-06: 1 units of model a100 enrolled in demand response exceed the 1 operating" in v, v


def test_debt_schedule_by_year_keeps_the_instruments_order_and_integer_years():
    # the loan (facility pf) and corporate notes n (500,000 at 6 %/yr, maturity 2027-06): by year,
    # pf's rows first (facilities, then corporate debt, as the schedule lists them), years as integers;
    # the notes pay 0.5 % a month: 2,500 a month, 30,000 in each full year
    inst = loan_instance(corporate_debt=[{"id": "n", "principal_usd": 500_000, "coupon_per_year": 0.06,
                                          "maturity_month": "2027-06"}])
    by_year = evaluate(inst, LOAN_PLAN).debt_schedule_by_year()
    assert by_year[["instrument", "year"]].values.tolist() == [["pf", 2026], ["pf", 2027], ["n", 2026], ["n", 2027]]
    assert [type(y) for y in by_year["year"].tolist()] == [int] * 4
    assert by_year["interest_usd"].tolist()[2] == pytest.approx(30_000.0)
    # 2027: January-June, 6 x 2,500 = 15,000 of coupon and the 500,000 repaid in June
    assert by_year.iloc[3][["interest_usd", "principal_usd", "balance_usd"]].tolist() == pytest.approx([15_000.0, 500_000.0, 0.0])


def test_tables_hold_the_evaluations_own_frames():
    ev = evaluate(loan_instance(), LOAN_PLAN)
    t = ev.tables()
    assert t["cashflows"] is ev.cashflows and t["plan"] is ev.allocation and t["tax_schedule"] is ev.tax_schedule
    # a financing section without any instrument: a valuation, an empty debt schedule, still listed
    d = yaml.safe_load((ROOT / "instances" / "tiny.yaml").read_text())
    d["financing"] = {"objective": "equity"}
    plain = evaluate(Instance.from_dict(d), Plan())
    t = plain.tables()
    assert plain.valuation != {} and plain.debt_schedule.empty
    assert "debt_schedule" in t and t["debt_schedule"].empty and "tax_schedule" in t
    tree = evaluate(tree_instance(), CONVERT_AT_A)
    assert tree.tables()["plan_by_scenario"] is tree.allocation_by_scenario


def test_tree_allocation_keeps_the_sites_order():
    # a second site "b" after "s" (no conversion, 10 empty mining racks): the expected allocation
    # lists s's months, then b's, as the instance declares them (not alphabetically)
    d = tree_instance().model_dump(mode="json", exclude_none=True)
    b = copy.deepcopy(d["sites"][0])
    b["id"] = "b"
    d["sites"].append(b)
    ev = evaluate(Instance.from_dict(d), CONVERT_AT_A)
    a = ev.allocation
    assert a["site"].tolist() == ["s"] * 4 + ["b"] * 4
    assert a["hpc_mw"].tolist() == pytest.approx([0, 0, 0.8, 0.8] + [0] * 4)


def test_a_lease_split_between_two_sites_by_hand():
    # lease T (1 MW, tenant a) hosted half at h, half at g: 0.5 MW at each site, 1 MW for the tenant
    d = hpc_instance(racks=10, leases=[lease("T", 1.0, "a", splittable=True)], policy={"tenant_limits": [{"tenant": "a", "max_it_mw": 1.0}]})
    d["sites"].append({**copy.deepcopy(d["sites"][0]), "id": "g"})
    d["contracts"].append({"id": "idx_g", "site": "g", "kind": "index", "adder_usd_per_mwh": 0})
    plan = Plan(leases=df([("T", "h", "2026-01", 0.5), ("T", "g", "2026-01", 0.5)], ["lease", "site", "month", "share"]))
    ev = evaluate(Instance.from_dict(d), plan)
    assert ev.violations == []                      # 0.5 + 0.5 = 1 MW: at the tenant's limit
    a = ev.allocation.set_index(["site", "month"])
    assert a.loc[("h", "2026-06"), "hpc_mw_leased"] == pytest.approx(0.5)
    assert a.loc[("g", "2026-06"), "hpc_mw_leased"] == pytest.approx(0.5)
    # rent: 0.5 MW x 1,000 kW x 100 USD = 50,000 a month at each site
    assert site_lines(ev, "g", "lease_revenue_usd") == pytest.approx([50_000.0] * 12)


def test_racks_handed_back_one_month_after_the_end_revert_at_the_reversion_factor():
    # 1 MW lease (10 racks, all of h's) for 13 months from 2026-01: it holds the racks one month past
    # the 12-month horizon. Unleased HPC is worth V = 1,000,000 / 0.1 = 10 M$ per MW at the end; the
    # racks come back after 1 month: factor max(1.12^(-1/12), 1 - 0.1/12 x 1.12^(-1/12))
    # = max(0.990600, 0.991745) = 0.991745 (12 %/yr discounting)
    d = hpc_instance(racks=10, leases=[lease("T", 1.0, term_months=13)])
    d["horizon"]["discount_rate"] = 0.12
    d["horizon"]["terminal"] = {"asic_salvage": False, "treasury_btc": False, "lease_remaining_noi": False,
                                "hpc_unleased_noi_usd_per_mw_year": 1_000_000, "hpc_cap_rate": 0.1}
    ev = evaluate(Instance.from_dict(d), signed(("T", 1.0)))
    assert ev.violations == []
    m = 1.12 ** (-1 / 12)
    factor = max(m, 1 - 0.1 / 12 * m)
    assert factor == pytest.approx(0.991745, abs=1e-6)
    assert site_lines(ev, "h", "terminal_hpc_usd")[-1] == pytest.approx(10e6 * factor, rel=1e-9)


def contracts_instance() -> Instance:
    """test_contract_and_grid_rules_name_the_scenario's instance, with site s3 that is not owned (an
    acquisition option not taken) and its index contract ix3, and a fixed contract tiny of 0.001 MW."""
    def edit(raw):
        sc = raw["scenarios"][0]
        raw["scenarios"] = [dict(sc, name="a", probability=0.5), dict(sc, name="b", probability=0.5)]
        raw["sites"].append({**copy.deepcopy(raw["sites"][0]), "id": "s3",
                             "acquisition": {"price_usd": 1, "available_from": "2026-04"}})
        raw["contracts"] += [
            {"id": "fx", "site": "s1", "kind": "fixed", "price_usd_per_mwh": 40, "mw_cap": 1, "start_month": "2026-05"},
            {"id": "tiny", "site": "s1", "kind": "fixed", "price_usd_per_mwh": 40, "mw_cap": 0.001},
            {"id": "ix3", "site": "s3", "kind": "index"}]
    return lever_instance(edit)


def contract_sentences(rows, contract: str) -> list[str]:
    energy = df(rows, ["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"])
    return [s for s in evaluate(contracts_instance(), Plan(energy=energy), complete=False).violations
            if s.startswith(f"contract {contract} ")]


def test_contract_tolerances_and_an_unowned_site():
    assert contract_sentences([("b", "ix3", "2026-05", 0.0, 3.0, 0.0)], "ix3") == [
        "contract ix3 2026-05 (scenario b): 3 MWh while site s3 is not owned"]
    # outside its term, energy counts from 1e-6 MWh (excluded): 1e-6 is nothing, 1.5e-6 is a flow
    assert contract_sentences([("b", "fx", "2026-04", 1e-6, 0.0, 0.0)], "fx") == []
    assert contract_sentences([("b", "fx", "2026-04", 1.5e-6, 0.0, 0.0)], "fx") == [
        "contract fx 2026-04 (scenario b): 1.5e-06 MWh outside its term (2026-05..2026-06)"]
    # the cap, 1 MW x 744 h in May, has a relative tolerance of 1e-6 x 744 = 0.000744 MWh (excluded)
    lim = 1.0 * 744.0
    assert contract_sentences([("b", "fx", "2026-05", lim + 1e-6 * lim, 0.0, 0.0)], "fx") == []
    assert contract_sentences([("b", "fx", "2026-05", 744.0005, 0.0, 0.0)], "fx") == []
    assert contract_sentences([("b", "fx", "2026-05", 744.001, 0.0, 0.0)], "fx") == [
        "contract fx 2026-05 (scenario b): delivered 744.001 MWh exceeds the cap 744 MWh (1 MW x 744 h)"]
    # a cap below 1 MWh (0.001 MW x 744 h = 0.744 MWh) keeps the floor of 1e-6 MWh (0.7440015 is
    # 0.74400149... in binary: 6 significant digits give 0.744001)
    assert contract_sentences([("b", "tiny", "2026-05", 0.744 + 1.5e-6, 0.0, 0.0)], "tiny") == [
        "contract tiny 2026-05 (scenario b): delivered 0.744001 MWh exceeds the cap 0.744 MWh (0.001 MW x 744 h)"]


def plant_instance() -> Instance:
    """levers.yaml with two scenarios and a second site s2 (index contract ix2); the plant at s1
    (5 MW, 20 USD/MWh) may export and feed s2; ix (index, at s1) can neither sell nor feed."""
    def edit(raw):
        sc = raw["scenarios"][0]
        raw["scenarios"] = [dict(sc, name="a", probability=0.5), dict(sc, name="b", probability=0.5)]
        raw["sites"].append({**copy.deepcopy(raw["sites"][0]), "id": "s2"})
        raw["contracts"] += [{"id": "ix2", "site": "s2", "kind": "index", "adder_usd_per_mwh": 0},
                             {"id": "plant", "site": "s1", "kind": "owned_generation", "mw": 5, "variable_cost_usd_per_mwh": 20,
                              "can_export": True, "feeds": ["s2"]}]
    return lever_instance(edit)


def contract_rule_sentences(energy_rows, feed_rows=(), contract: str = "") -> list[str]:
    energy = df(list(energy_rows), ["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"])
    feeds = df(list(feed_rows), ["scenario", "contract", "site", "month", "mwh"])
    v = evaluate(plant_instance(), Plan(energy=energy, plant_feeds=feeds), complete=False).violations
    return [s for s in v if s.startswith(f"contract {contract} ")]


def test_plant_energy_rules_with_feeds_name_the_scenario():
    # delivered 5, fed to s2 10: used + fed exceed delivered
    assert contract_rule_sentences([("b", "plant", "2026-04", 5.0, 0.0, 0.0)], [("b", "plant", "s2", "2026-04", 10.0)],
                                   "plant") == [
        "contract plant 2026-04 (scenario b): used 0 MWh + fed to other sites 10 MWh exceeds delivered 5 MWh",
        # and nothing is left to sell: 5 - 0 - 10 = -5 MWh
        "contract plant 2026-04 (scenario b): sold 0 MWh exceeds delivered - used - fed = -5 MWh"]
    # delivered 10, fed 4, sold 7: 10 - 0 - 4 = 6 left to sell
    assert contract_rule_sentences([("b", "plant", "2026-05", 10.0, 0.0, 7.0)], [("b", "plant", "s2", "2026-05", 4.0)],
                                   "plant") == [
        "contract plant 2026-05 (scenario b): sold 7 MWh exceeds delivered - used - fed = 6 MWh"]
    # an index contract feeds nothing: 1 MWh to s2 is reported, 1e-6 MWh is below the threshold
    assert contract_rule_sentences([], [("b", "ix", "s2", "2026-06", 1.0)], "ix") == [
        "contract ix 2026-06 (scenario b): feeds 1 MWh to site s2, which it may not feed (an owned plant feeds the sites "
        "listed in its feeds)"]
    assert contract_rule_sentences([], [("b", "ix", "s2", "2026-06", 1e-6)], "ix") == []


def test_energy_tolerances_below_one_mwh():
    # the tolerances are 1e-6 x max(1, delivered or sold): at 1 MWh, 1.5e-6 MWh too much is reported,
    # exactly 1e-6 is not
    e = 1e-6
    assert contract_rule_sentences([("b", "plant", "2026-04", 1.0, 1.0 + 1.5 * e, 0.0)], [], "plant") == [
        "contract plant 2026-04 (scenario b): used 1 MWh exceeds delivered 1 MWh",
        "contract plant 2026-04 (scenario b): sold 0 MWh exceeds delivered - used = -1.5e-06 MWh"]
    assert contract_rule_sentences([("b", "plant", "2026-04", 1.0, 1.0 + e, 0.0)], [], "plant") == []
    assert contract_rule_sentences([("b", "plant", "2026-04", 1.0, 0.0, 1.0 + 1.5 * e)], [], "plant") == [
        "contract plant 2026-04 (scenario b): sold 1 MWh exceeds delivered - used = 1 MWh"]
    assert contract_rule_sentences([("b", "plant", "2026-04", 1.0, 0.0, 1.0 + e)], [], "plant") == []
    # ix may not sell: 1.5e-6 MWh sold is reported, 1e-6 is not
    assert contract_rule_sentences([("b", "ix", "2026-04", 0.0, 0.0, 1.5 * e)], [], "ix") == [
        "contract ix 2026-04 (scenario b): sells 1.5e-06 MWh but selling energy back is not allowed"]
    assert contract_rule_sentences([("b", "ix", "2026-04", 0.0, 0.0, e)], [], "ix") == []


def test_programs_paying_under_one_usd_still_run():
    # demand response paying 0.5 USD/MW-month and a transmission peak charging 0.5 USD/MW: both run
    # (any payment or charge above 0), so enrolling in May or curtailing around the June peak is allowed
    def edit(raw):
        raw["markets"] = [{"id": "m", "demand_response": {"payment_usd_per_mw_month": 0.5, "curtailment_hours_per_month": 10},
                           "transmission_peak": {"charge_usd_per_mw": 0.5, "months": [6], "curtail_hours_per_month": 4}}]
    plan = Plan(operations=df([("base", "s1", "a100", m, 1000.0) for m in ("2026-05", "2026-06")],
                              ["scenario", "site", "model", "month", "units"]),
                curtailment=df([("base", "s1", "a100", "2026-05", 100.0, 0.0), ("base", "s1", "a100", "2026-06", 0.0, 100.0)],
                               ["scenario", "site", "model", "month", "dr_units", "peak_units"]))
    v = evaluate(lever_instance(edit), plan, complete=False).violations
    assert not [s for s in v if "units of model a100" in s], v


def test_joined_frames_keep_the_columns_and_a_fresh_index():
    # the joined tables have the columns of an evaluation of one group and a 0..n-1 index; the
    # cash-flow rows of one scenario, period and site follow the ledger's order (opex before capex):
    # with 1,000 USD/MW-month of fixed HPC opex, up and down pay 1 MW x 1,000 = 1,000 from March
    d = tree_instance().model_dump(mode="json", exclude_none=True)
    d["sites"][0]["fixed_opex_hpc_usd_per_mw_month"] = 1_000
    inst = Instance.from_dict(d)
    ev = evaluate(inst, CONVERT_AT_A)
    one = evaluate(inst, Plan(conversions=CONVERT_AT_A.conversions.drop(columns=["node"])))   # one group
    for name in ("cashflows", "kpis", "energy_use", "allocation_long"):
        got, ref = getattr(ev, name), getattr(one, name)
        extra = ["scenario"] if name == "allocation_long" else []   # the joined allocation_long gains it
        assert list(got.columns) == extra + list(ref.columns), name
        assert list(got.index) == list(range(len(got))), name
    rows = ev.cashflows[(ev.cashflows["scenario"] == "up") & (ev.cashflows["month"] == "2026-03")]
    assert rows[["item", "usd"]].values.tolist() == [["opex_usd", pytest.approx(-1_000.0)], ["capex_usd", pytest.approx(-10e6)]]
    assert ev.plan.conversions["node"].tolist() == ["a"]


def test_joined_tax_schedule_holds_every_scenario():
    # with a 21 % income tax, each group's tax schedule (per scenario and year) is kept: rows for
    # up, flat and down, in the instance's order
    d = tree_instance().model_dump(mode="json", exclude_none=True)
    d["financing"] = {"taxes": {"rate": 0.21}}
    ev = evaluate(Instance.from_dict(d), CONVERT_AT_A)
    assert ev.tax_schedule["scenario"].drop_duplicates().tolist() == ["up", "flat", "down"]


def test_a_first_stage_line_of_one_dollar_is_booked():
    # one a100 retired in May for its salvage of 1 USD: a salvage line of exactly +1 USD then
    def edit(raw):
        raw["fleet"]["asic_models"][0]["salvage_usd_per_unit"] = 1
    ev = evaluate(lever_instance(edit), Plan(retirements=df([("s1", "a100", "2026-05", 1.0)], ["site", "model", "month", "units"])))
    assert site_lines(ev, "s1", "salvage_usd") == [0.0, 1.0, 0.0]


# ---------------------------------------------------------------- curtailment lines by hand (the evaluator alone)

CURTAIL_COLS = ["scenario", "site", "model", "month", "dr_units", "peak_units"]
OPS_COLS = ["scenario", "site", "model", "month", "units"]
ENERGY_COLS = ["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"]


def test_curtailment_of_two_models_by_hand():
    # levers.yaml (market m, 40 USD/MWh, 100,000 USD/BTC, hashprice 0.00045 BTC per PH/s-day) with a
    # second model b50 (50 TH/s, 1,000 W) of which 400 are installed next to the 1,000 a100 (14 racks
    # of 100); demand response every month (5,000 USD/MW-month, 10 h) and a June peak (20,000 USD/MW,
    # 4 h). June only (720 h, 30 days): a100 1,000 operating, 600 enrolled, 800 off at the peak; b50
    # 400 operating, 400 enrolled, 200 off at the peak. Energy as given (no operating rule).
    def edit(raw):
        raw["sites"][0]["halls"][0]["racks"] = 14
        raw["fleet"]["asic_models"].append({"name": "b50", "hashrate_th_s": 50, "power_w": 1000, "salvage_usd_per_unit": 0})
        raw["fleet"]["installed"].append({"site": "s1", "model": "b50", "units": 400})
        raw["markets"] = [{"id": "m", "demand_response": {"payment_usd_per_mw_month": 5000, "curtailment_hours_per_month": 10},
                           "transmission_peak": {"charge_usd_per_mw": 20000, "months": [6], "curtail_hours_per_month": 4}}]
    # per unit in June: a100 0.1 PH/s x 0.00045 x 30 d = 0.00135 BTC, 2 kW x 720 h = 1.44 MWh;
    # b50 0.000675 BTC, 0.72 MWh. Uncurtailed: 1.35 + 0.27 = 1.62 BTC, 1,440 + 288 = 1,728 MWh.
    # Unit-hours off (phi_dr = 10/720, phi_peak = 4/720 of the period): a100 600 x 10 + 800 x 4 =
    # 9,200, b50 400 x 10 + 200 x 4 = 4,800. Energy not drawn: 9,200 x 2 kW = 18.4 MWh, 4,800 x 1 kW
    # = 4.8 MWh; BTC lost: 9,200 / 720 x 0.00135 = 0.01725, 4,800 / 720 x 0.000675 = 0.0045.
    # Drawn: 1,728 - 23.2 = 1,704.8 MWh; mined: 1.62 - 0.02175 = 1.59825 BTC = 159,825 USD.
    drawn = 1_704.8
    plan = Plan(operations=df([("base", "s1", "a100", "2026-06", 1000.0), ("base", "s1", "b50", "2026-06", 400.0)], OPS_COLS),
                curtailment=df([("base", "s1", "a100", "2026-06", 600.0, 800.0), ("base", "s1", "b50", "2026-06", 400.0, 200.0)],
                               CURTAIL_COLS),
                energy=df([("base", "ix", "2026-06", drawn, drawn, 0.0)], ENERGY_COLS))
    ev = evaluate(lever_instance(edit), plan, complete=False)
    assert ev.violations == []   # the energy used equals the load drawn after curtailment
    assert site_lines(ev, "s1", "mining_revenue_usd") == pytest.approx([0.0, 0.0, 159_825.0], abs=1e-6)
    # enrolled: 600 x 2 kW + 400 x 1 kW = 1.6 MW x 5,000 = 8,000 USD
    assert site_lines(ev, "s1", "demand_response_usd") == pytest.approx([0.0, 0.0, 8_000.0], abs=1e-6)
    # running at the peak: (1,000 - 800) x 2 kW + (400 - 200) x 1 kW = 0.6 MW x 20,000 = 12,000 USD
    assert site_lines(ev, "s1", "peak_charge_usd") == pytest.approx([0.0, 0.0, -12_000.0], abs=1e-6)
    assert site_lines(ev, "s1", "power_cost_usd") == pytest.approx([0.0, 0.0, -drawn * 40], abs=1e-6)   # 68,192
    use = ev.energy_use[(ev.energy_use["use"] == "mining") & (ev.energy_use["month"] == "2026-06")]
    assert use["mwh"].tolist() == pytest.approx([drawn])
    assert ev.kpis["btc_mined"].tolist() == pytest.approx([0.0, 0.0, 1.59825])


def test_curtailment_rows_at_a_site_without_a_program_change_no_line():
    # levers.yaml has no markets section: phi_dr = phi_peak = 0 (no program month), so rows enrolling
    # or curtailing units are violations and take nothing off. June: 1,000 a100 mine 1.35 BTC =
    # 135,000 USD and draw 1,440 MWh (the energy given, which balances).
    plan = Plan(operations=df([("base", "s1", "a100", "2026-06", 1000.0)], OPS_COLS),
                curtailment=df([("base", "s1", "a100", "2026-06", 600.0, 500.0)], CURTAIL_COLS),
                energy=df([("base", "ix", "2026-06", 1_440.0, 1_440.0, 0.0)], ENERGY_COLS))
    ev = evaluate(lever_instance(lambda raw: None), plan, complete=False)
    no_program = "but the site's market has no such program that month"
    assert ev.violations == [f"site s1 2026-06: 600 units of model a100 enrolled in demand response {no_program}",
                             f"site s1 2026-06: 500 units of model a100 off around the transmission peak {no_program}"]
    assert site_lines(ev, "s1", "mining_revenue_usd") == pytest.approx([0.0, 0.0, 135_000.0], abs=1e-6)
    assert site_lines(ev, "s1", "power_cost_usd") == pytest.approx([0.0, 0.0, -1_440.0 * 40], abs=1e-6)


def test_mining_after_the_exit_sentence_by_sentence():
    # levers.yaml over Apr-Jul (720, 744, 720, 744 h) with a mining overhead at s1 and two scenarios;
    # s1 exits mining in June. Scenario a mines 1,000 a100 in April and May (before the exit: no
    # sentence); scenario b runs 0.5 a100 in June (0.5 x 1.44 MWh = 0.72 MWh: reported) and in July
    # 1e-6 / 1.488 units, 1e-6 MWh (2 kW x 744 h = 1.488 MWh a unit): at the 1e-6 MWh tolerance, not
    # reported.
    def edit(raw):
        raw["horizon"]["periods"] = 4
        sc = raw["scenarios"][0]
        raw["scenarios"] = [dict(sc, name="a", probability=0.5), dict(sc, name="b", probability=0.5)]
        raw["sites"][0]["mining_overhead"] = {"usd_per_month": 50_000, "exit_cost_usd": 10_000}
    inst = lever_instance(edit)
    dust = 1e-6 / 1.488
    assert dust * 1.488 == 1e-6   # exactly the tolerance in floating point
    ops = df([("a", "s1", "a100", "2026-04", 1000.0), ("a", "s1", "a100", "2026-05", 1000.0),
              ("b", "s1", "a100", "2026-06", 0.5), ("b", "s1", "a100", "2026-07", dust)], OPS_COLS)

    def v(plan):
        return [s for s in evaluate(inst, plan, complete=False).violations if "after exiting mining" in s]
    exit_june = df([("s1", "2026-06")], ["site", "month"])
    assert v(Plan(operations=ops, mining_exits=exit_june)) == [
        "site s1 2026-06 (scenario b): mines 0.72 MWh after exiting mining in 2026-06"]
    # without the exit the site mines while owned: nothing to report
    assert v(Plan(operations=ops)) == []
    # sold in June (a sale ends mining too; no exit row): "that month"
    def sale(raw):
        edit(raw)
        raw["sites"][0]["sale"] = {"price_usd": 0}
    assert [s for s in evaluate(lever_instance(sale), Plan(operations=ops, site_events=df([("s1", "sale", "2026-06")],
                                                                                        ["site", "event", "month"])),
                                complete=False).violations if "after exiting mining" in s] == [
        "site s1 2026-06 (scenario b): mines 0.72 MWh after exiting mining in that month"]


def test_lease_power_passed_through_at_the_market_price_by_hand():
    # site h: market 40 USD/MWh, its index contract adds 10, so the site pays p_site = 50. Lease S
    # (1 MW) passes its power through at the site's price, lease K (0.5 MW, passthrough_price
    # market) at the market's 40. HPC MWh = it_mw x PUE 1.2 x hours. January (744 h): S 892.8 MWh x
    # 50 = 44,640, K 446.4 MWh x 40 = 17,856: 62,496. February (672 h): 806.4 x 50 = 40,320 and
    # 403.2 x 40 = 16,128: 56,448.
    raw = hpc_instance(leases=[lease("S", 1.0), lease("K", 0.5, passthrough_price="market")])
    raw["contracts"][0]["adder_usd_per_mwh"] = 10
    ev = evaluate(Instance.from_dict(raw), signed(("S", 1.0), ("K", 1.0)))
    assert ev.violations == []
    assert site_lines(ev, "h", "power_passthrough_usd")[:2] == pytest.approx([62_496.0, 56_448.0], abs=1e-6)


def test_grid_carries_mining_and_hpc_load_before_curtailment():
    # site h with a mining hall of 10 racks holding 1,000 m200 (3.5 kW: 3.5 MW) next to a 1 MW lease
    # (PUE 1.2: 1.2 MW firm), on a 4 MW grid. January (744 h): 4.7 MW x 744 = 3,496.8 MWh over
    # 4 x 744 = 2,976 MWh.
    raw = hpc_instance(leases=[lease("S", 1.0)])
    raw["sites"][0]["grid_interconnect_mw"] = 4
    raw["sites"][0]["halls"].append({"id": "m", "use": "mining", "racks": 10})
    raw["fleet"]["installed"] = [{"site": "h", "model": "m200", "units": 1000}]
    plan = Plan(leases=signed(("S", 1.0)).leases, operations=df([("base", "h", "m200", "2026-01", 1000.0)], OPS_COLS))
    v = [s for s in evaluate(Instance.from_dict(raw), plan, complete=False).violations if "exceeds grid" in s]
    assert v == ["site h 2026-01: load 4.7 MW exceeds grid 4 MW (3496.8 MWh > 2976 MWh)"]


def test_grid_tolerance_is_relative_with_a_floor_of_one_mwh():
    # levers.yaml, s1 on a 2 MW grid: 1,440 MWh in April (720 h); an a100 draws 1.44 MWh. The
    # tolerance is 1e-6 x max(1, 1,440) = 0.00144 MWh: 1,000.0005 units (1,440.00072 MWh) pass, a
    # load of exactly 1,440.00144 MWh (1,000.001 units) passes, 1,000.002 units (1,440.00288) do not.
    # Site s2 on a 0.001 MW grid (0.72 MWh in April) has the floor, 1e-6 MWh: 0.72 + 1.5e-6 MWh is reported.
    def edit(raw):
        raw["sites"][0]["grid_interconnect_mw"] = 2
        raw["sites"].append({**raw["sites"][0], "id": "s2", "grid_interconnect_mw": 0.001})
        raw["fleet"]["installed"].append({"site": "s2", "model": "a100", "units": 1})
        raw["contracts"].append({"id": "ix2", "site": "s2", "kind": "index", "adder_usd_per_mwh": 0})
    inst = lever_instance(edit)

    def v(site, units):
        plan = Plan(operations=df([("base", site, "a100", "2026-04", units)], OPS_COLS))
        return [s for s in evaluate(inst, plan, complete=False).violations if "exceeds grid" in s]
    at_limit = (1_440 + 1e-6 * 1_440) / 1.44
    assert at_limit * 1.44 == 1_440 + 1e-6 * 1_440   # exactly the tolerance in floating point
    assert v("s1", 1000.0005) == []
    assert v("s1", at_limit) == []
    assert v("s1", 1000.002) == ["site s1 2026-04: load 2 MW exceeds grid 2 MW (1440 MWh > 1440 MWh)"]
    assert v("s2", (0.72 + 1.5e-6) / 1.44) == ["site s2 2026-04: load 0.001 MW exceeds grid 0.001 MW (0.720002 MWh > 0.72 MWh)"]
    assert v("s2", (0.72 + 0.5e-6) / 1.44) == []


def test_energy_balance_tolerance_has_a_floor_of_one_mwh_millionth():
    # levers.yaml with nothing operating (operations as given: none): the load is 0 MWh, so the
    # tolerance is 1e-6 x max(1, 0) = 1e-6 MWh. 1e-6 MWh used from ix in April passes, 1.5e-6 does not.
    inst = lever_instance(lambda raw: None)

    def v(mwh):
        plan = Plan(energy=df([("base", "ix", "2026-04", mwh, mwh, 0.0)], ENERGY_COLS))
        return [s for s in evaluate(inst, plan, complete=False).violations if "differs from the load" in s]
    assert v(1e-6) == []
    assert v(1.5e-6) == ["site s1 2026-04: energy used from contracts 1.5e-06 MWh differs from the load 0 MWh (mining 0 + HPC 0)"]


def test_treasury_rules_name_the_scenario_and_their_tolerances():
    # levers.yaml with two scenarios a and b and nothing mined (operations as given: none); mined BTC
    # sold monthly (the default), so only the plan's sales move the treasury: balance = start - sales
    # so far. Both scenarios sell the same (one sales schedule for all scenarios in the two-stage
    # form), so each sentence names the first, a, and counts b's case.
    def inst(**treasury):
        def edit(raw):
            sc = raw["scenarios"][0]
            raw["scenarios"] = [dict(sc, name="a", probability=0.5), dict(sc, name="b", probability=0.5)]
            raw["treasury"] = treasury
        return lever_instance(edit)

    def ev(instance, month, btc):
        return evaluate(instance, Plan(btc_sales=df([(w, month, btc) for w in "ab"], ["scenario", "month", "btc"])), complete=False)
    # sales not allowed: 1e-9 BTC (the threshold) passes, 2e-9 BTC in May does not
    closed = inst(btc_held_start=1.0, allow_treasury_sales=False)
    assert ev(closed, "2026-05", 1e-9).violations == []
    assert ev(closed, "2026-05", 2e-9).violations == [
        "treasury 2026-05 (scenario a): sells 2e-09 BTC but treasury.allow_treasury_sales is false (and 1 more period/scenario case)"]
    # 100 BTC at the start: the tolerance is 1e-6 x 100 = 1e-4 BTC. Selling 100.00005 in May (balance
    # -5e-5 from May) passes; selling 100.5 leaves -0.5 BTC in May and June of both scenarios
    held = inst(btc_held_start=100.0)
    ok = ev(held, "2026-05", 100.00005)
    assert ok.violations == []
    assert ev(held, "2026-05", 100.5).violations == [
        "treasury 2026-05 (scenario a): BTC balance -0.5 BTC is negative (and 3 more period/scenario cases)"]
    # the treasury column of the KPIs is a float column: 100 BTC in April, 100 - 100.00005 after
    k = ok.kpis
    assert k["treasury_btc"].dtype == "float64"
    assert k["treasury_btc"].tolist() == pytest.approx([100.0, -5e-5, -5e-5] * 2, abs=1e-9)
    # none at the start: the floor, 1e-6 BTC. Selling 1e-6 passes (balance exactly -1e-6), 1.5e-6 does not
    empty = inst()
    assert ev(empty, "2026-05", 1e-6).violations == []
    assert ev(empty, "2026-06", 1.5e-6).violations == [
        "treasury 2026-06 (scenario a): BTC balance -1.5e-06 BTC is negative (and 1 more period/scenario case)"]


def test_terminal_hpc_value_of_the_free_racks_by_hand():
    # site h: 20 HPC racks of 100 kW (2 MW), no lease; a market NOI of only 0.5 USD/MW-year at a 10 %
    # cap rate values an unleased MW at 0.5 / 0.1 = 5 USD at the end (HPC index 1, no fixed HPC opex,
    # no discounting), booked in the last period, 2026-12.
    raw = hpc_instance(gpu_cloud={"options": [GPU_OPTION]})
    raw["horizon"]["terminal"].update(hpc_unleased_noi_usd_per_mw_year=0.5, hpc_cap_rate=0.1)
    raw["sites"][0]["sale"] = {"price_usd": 1_000_000}
    inst = Instance.from_dict(raw)

    def terminal(plan):
        ev = evaluate(inst, plan)
        assert ev.violations == []
        return site_lines(ev, "h", "terminal_hpc_usd")
    # nothing done: 2 MW x 5 = 10 USD (a value under 1 USD/MW-year of NOI still counts)
    assert terminal(Plan()) == pytest.approx([0.0] * 11 + [10.0])
    # 0.5 MW of GPUs bought in December take 5 racks at the end: 15 racks, 1.5 MW x 5 = 7.5 USD
    assert terminal(Plan(gpu_purchases=df([("gb", "h", "2026-12", 0.5)], ["option", "site", "month", "mw"]))) == pytest.approx(
        [0.0] * 11 + [7.5])
    # the site sold in December is not owned at the end: no terminal HPC value
    assert terminal(Plan(site_events=df([("h", "sale", "2026-12")], ["site", "event", "month"]))) == [0.0] * 12


def test_terminal_mining_value_less_the_salvage_of_the_units_left_by_hand():
    # levers.yaml with a terminal mining value of 1 year of the last period's margin and ASIC salvage
    # on: a100 salvage 100 USD a unit (1,000 installed), and a second model b50 (salvage 50 USD) with
    # none installed, so it adds nothing to what retiring gives. June (720 h), 1,000 a100 operating
    # (the operating rule: 45 USD a day each against 2 kW x 24 h x 40 = 1.92 USD): 1.35 BTC = 135,000
    # USD less 1,440 MWh x 40 USD (the market price after the end; the index adder is 0) = 57,600:
    # margin 77,400 a month, x 12 = 928,800; retiring gives 1,000 x 100 = 100,000. The line is what
    # keeping adds: 928,800 - 100,000 = 828,800; the salvage line holds the 100,000.
    def edit(raw):
        raw["horizon"]["terminal"].update(mining_margin_multiple=1.0, asic_salvage=True)
        raw["fleet"]["asic_models"][0]["salvage_usd_per_unit"] = 100
        raw["fleet"]["asic_models"].append({"name": "b50", "hashrate_th_s": 50, "power_w": 1000, "salvage_usd_per_unit": 50})
    ev = evaluate(lever_instance(edit), Plan())
    assert ev.violations == []
    assert site_lines(ev, "s1", "terminal_mining_usd") == pytest.approx([0.0, 0.0, 828_800.0], abs=1e-6)
    assert site_lines(ev, "s1", "terminal_asic_salvage_usd") == pytest.approx([0.0, 0.0, 100_000.0], abs=1e-6)


def test_forward_cap_counts_the_hashrate_curtailed():
    # levers.yaml with demand response (10 h a month) and the forward f1 of test_levers (May-June, at
    # most 0.5 x the expected PH/s produced). June (720 h): 1,000 a100 operate, 720 enrolled, off
    # 10/720 of the month: 720 x 10/720 = 10 units' worth, so 990 x 0.1 = 99 PH/s are produced and the
    # cap is 0.5 x 99 = 49.5 PH/s. 49.5 PH/s sold pass, 49.6 do not.
    def edit(raw):
        raw["markets"] = [{"id": "m", "demand_response": {"payment_usd_per_mw_month": 5000, "curtailment_hours_per_month": 10}}]
        raw["hedges"] = {"forwards": [{"id": "f1", "price_usd_per_ph_day": 33, "first_month": "2026-05", "last_month": "2026-06",
                                       "max_share_of_expected_hashrate": 0.5, "collateral_share": 0.1}]}
    inst = lever_instance(edit)

    def v(ph_s):
        plan = Plan(operations=df([("base", "s1", "a100", "2026-06", 1000.0)], OPS_COLS),
                    curtailment=df([("base", "s1", "a100", "2026-06", 720.0, 0.0)], CURTAIL_COLS),
                    hedges=df([("f1", "2026-06", ph_s)], ["forward", "month", "ph_s"]))
        return [s for s in evaluate(inst, plan, complete=False).violations if "hashprice forward" in s]
    assert v(49.5) == []
    assert v(49.6) == ["hashprice forward f1 2026-06: 49.6 PH/s sold exceed max_share_of_expected_hashrate 0.5 x the 99 PH/s expected"]


def test_forward_cap_sums_the_sites_at_their_share_after_both_curtailments():
    # as above, with the June peak (4 h) too and a second site s2 (1,000 a100, owned 50 %, no
    # program: market m2). May (744 h, nothing curtailed): 100 PH/s at s1 + 0.5 x 100 at s2 = 150
    # expected, cap 75 PH/s, tolerance 1e-6 x 75: 75 + 7.5e-5 PH/s pass (exactly at it), 75.0001 do not.
    # June: s1 1,000 operating, 720 enrolled (10/720 of the month) and 360 off at the peak (4/720):
    # 10 + 2 = 12 units' worth off, 988 x 0.1 = 98.8 PH/s; s2 0.5 x 100 = 50: 148.8, cap 74.4 PH/s.
    def edit(raw):
        raw["markets"] = [{"id": "m", "demand_response": {"payment_usd_per_mw_month": 5000, "curtailment_hours_per_month": 10},
                           "transmission_peak": {"charge_usd_per_mw": 20000, "months": [6], "curtail_hours_per_month": 4}}]
        raw["hedges"] = {"forwards": [{"id": "f1", "price_usd_per_ph_day": 33, "first_month": "2026-05", "last_month": "2026-06",
                                       "max_share_of_expected_hashrate": 0.5, "collateral_share": 0.1}]}
        raw["scenarios"][0]["power_price_usd_per_mwh"] = {"m": 40, "m2": 40}
        raw["sites"].append({**copy.deepcopy(raw["sites"][0]), "id": "s2", "market": "m2", "ownership_share": 0.5})
        raw["fleet"]["installed"].append({"site": "s2", "model": "a100", "units": 1000})
        raw["contracts"].append({"id": "ix2", "site": "s2", "kind": "index", "adder_usd_per_mwh": 0})
    inst = lever_instance(edit)

    def v(month, ph_s):
        plan = Plan(operations=df([("base", s, "a100", month, 1000.0) for s in ("s1", "s2")], OPS_COLS),
                    curtailment=df([("base", "s1", "a100", month, 720.0, 360.0)] if month == "2026-06" else [], CURTAIL_COLS),
                    hedges=df([("f1", month, ph_s)], ["forward", "month", "ph_s"]))
        return [s for s in evaluate(inst, plan, complete=False).violations if "hashprice forward" in s]
    assert v("2026-05", 75 + 1e-6 * 75) == []
    assert v("2026-05", 75.0001) == [
        "hashprice forward f1 2026-05: 75.0001 PH/s sold exceed max_share_of_expected_hashrate 0.5 x the 150 PH/s expected"]
    assert v("2026-06", 74.4) == []
    assert v("2026-06", 74.5) == [
        "hashprice forward f1 2026-06: 74.5 PH/s sold exceed max_share_of_expected_hashrate 0.5 x the 148.8 PH/s expected"]
    # over the cap in May and June: one sentence for May, counting June
    both = Plan(operations=df([("base", s, "a100", m, 1000.0) for s in ("s1", "s2") for m in ("2026-05", "2026-06")], OPS_COLS),
                hedges=df([("f1", "2026-05", 80.0), ("f1", "2026-06", 80.0)], ["forward", "month", "ph_s"]))
    assert [s for s in evaluate(inst, both, complete=False).violations if "hashprice forward" in s] == [
        "hashprice forward f1 2026-05: 80 PH/s sold exceed max_share_of_expected_hashrate 0.5 x the 150 PH/s expected (and 1 more periods)"]
    # 10 a100 at s1 only in May: 1 PH/s expected, cap 0.5 PH/s, tolerance at its floor 1e-6 PH/s
    small = Plan(operations=df([("base", "s1", "a100", "2026-05", 10.0)], OPS_COLS),
                 hedges=df([("f1", "2026-05", 0.5 + 1.6e-6)], ["forward", "month", "ph_s"]))
    assert [s for s in evaluate(inst, small, complete=False).violations if "hashprice forward" in s] == [
        "hashprice forward f1 2026-05: 0.500002 PH/s sold exceed max_share_of_expected_hashrate 0.5 x the 1 PH/s expected"]


# ---------------------------------------------------------------- survivors of the evening's evaluator sample
# (benchmarks/MUTATION.md): the empty cash-flow table, the project valuation with taxes, the long
# allocation's labels, the cost to mine with an idle site


def test_an_empty_cash_flow_table_keeps_the_numeric_column_types():
    from test_hpc_levers import _greenfield

    # a greenfield site and an empty plan: no cash-flow line at all, NPV 0; the empty table still has
    # float money columns and an integer period, as a non-empty one (sums and joins downstream)
    ev = evaluate(Instance.from_dict(_greenfield()), Plan())
    cf = ev.cashflows
    assert cf.empty and ev.npv_usd == 0.0
    assert list(cf.columns) == ["scenario", "month", "period", "site", "item", "usd", "discount_factor", "pv_usd"]
    assert {c: str(cf[c].dtype) for c in ("period", "usd", "discount_factor", "pv_usd")} == {
        "period": "int64", "usd": "float64", "discount_factor": "float64", "pv_usd": "float64"}
    assert all(cf[c].dtype == object for c in ("scenario", "month", "site", "item"))


def test_project_npv_with_taxes_ignores_the_loan_and_equity_keeps_its_tax_shield():
    # loan_instance with a 25 % income tax (undiscounted). The project valuation is the plan without
    # its financing: taxes computed without the loan, so it equals the NPV of the same plan unfinanced.
    # Equity pays the loan's fee (10,000) and interest (20,000 interest-only + 12 A - B) and deducts
    # both from taxable income (positive in every year here): equity - project = -(fee + interest) x (1 - 0.25)
    inst = loan_instance(taxes={"rate": 0.25})
    financed = evaluate(inst, LOAN_PLAN)
    unfinanced = evaluate(inst, Plan(conversions=LOAN_PLAN.conversions, retirements=LOAN_PLAN.retirements))
    assert financed.violations == [] and unfinanced.violations == []
    v = financed.valuation_summary()
    assert v["project_npv_usd"] == pytest.approx(unfinanced.npv_usd, rel=1e-12)
    assert unfinanced.cashflows.query("item == 'tax_usd'")["usd"].sum() < 0   # the tax is not zero here
    interest = 20_000.0 + 12 * A - B
    assert v["equity_npv_usd"] - v["project_npv_usd"] == pytest.approx(-(10_000.0 + interest) * 0.75, rel=1e-9)
    assert v["equity_npv_usd"] == pytest.approx(financed.npv_usd, rel=1e-12)


def test_allocation_long_labels_gpu_racks_and_empty_mining_racks():
    from test_hpc_levers import _gpu_vs_colo

    # site h: 10 HPC racks of 100 kW and 4 mining racks with no ASIC. 0.5 MW of GPUs option gb bought in
    # 2026-01 take 0.5 x 1000 / 100 = 5 racks (use gpu_cloud, asset gb); the other 5 HPC racks (0.5 MW)
    # are unleased; the 4 mining racks are empty (no asset); every month of 2026
    d = _gpu_vs_colo(300_000)
    d["sites"][0]["halls"].append({"id": "m", "use": "mining", "racks": 4})
    ev = evaluate(Instance.from_dict(d), Plan(gpu_purchases=df([("gb", "h", "2026-01", 0.5)], ["option", "site", "month", "mw"])))
    assert ev.violations == []
    long = ev.allocation_long
    got = long.groupby(["use", "asset"], sort=False).agg(n=("month", "size"), racks=("racks", "first"), mw=("mw", "first"))
    assert got.index.tolist() == [("mining_empty", ""), ("gpu_cloud", "gb"), ("hpc_unleased", "")]
    assert got["n"].tolist() == [12, 12, 12]
    assert got["racks"].tolist() == pytest.approx([4.0, 5.0, 5.0]) and got["mw"].tolist() == pytest.approx([0.0, 0.5, 0.5])


def test_cost_to_mine_leaves_out_the_power_of_a_site_that_draws_none():
    # levers.yaml: s1 mines with 1000 units (2 MW at 40 USD/MWh; 0.000045 BTC per unit-day). Site s2 has
    # empty mining racks and a 1 MW take-or-pay contract at 50 USD/MWh it pays for without drawing any
    # power (36,000 USD in April). Mining's cost is s1's power only: April 2 MW x 720 h x 40 = 57,600 USD
    # for 1000 x 0.000045 x 30 = 1.35 BTC: 42,666.67 USD/BTC (the same every month: 40 x 48 kWh / 0.045)
    def edit(raw):
        raw["sites"].append(dict(raw["sites"][0], id="s2", halls=[{"id": "m2", "use": "mining", "racks": 5}]))
        raw["contracts"].append({"id": "fx2", "site": "s2", "kind": "fixed", "price_usd_per_mwh": 50, "mw_cap": 1,
                                 "take_or_pay_min_share": 1.0, "term_months": 3, "start_month": "2026-04"})

    ev = evaluate(lever_instance(edit), Plan())
    assert ev.violations == []
    assert ev.cashflows.query("site == 's2' and month == '2026-04'")["usd"].sum() == pytest.approx(-36_000.0)
    assert ev.kpis["btc_mined"].tolist() == pytest.approx([1.35, 1.395, 1.35])
    assert ev.kpis["cost_to_mine_usd_per_btc"].tolist() == pytest.approx([57_600 / 1.35] * 3, rel=1e-12)


def test_allocation_counts_racks_as_floats_and_mining_rows_in_mw():
    # tiny with an empty plan: lease L1 is not hosted, its rack column is 0.0 (float like every rack
    # count: means over scenarios and split leases are fractional)
    ev = evaluate(Instance.from_dict(yaml.safe_load((ROOT / "instances" / "tiny.yaml").read_text())), Plan())
    assert str(ev.allocation["racks_L1"].dtype) == "float64" and ev.allocation["racks_L1"].tolist() == [0.0] * 6
    # levers.yaml: 1000 a100 units (2000 W) on 100 units a rack: 10 racks, 1000 x 2000 W = 2 MW, every month
    long = evaluate(lever_instance(lambda raw: None), Plan()).allocation_long
    mining = long[long["use"] == "mining"]
    assert mining["asset"].tolist() == ["a100"] * 3 and mining["racks"].tolist() == pytest.approx([10.0] * 3)
    assert mining["mw"].tolist() == pytest.approx([2.0] * 3) and mining["units"].tolist() == pytest.approx([1000.0] * 3)


def test_cost_to_mine_of_less_than_one_btc_a_period():
    # levers.yaml with 500 of its 1000 units: April 1 MW x 720 h x 40 USD = 28,800 USD for
    # 500 x 0.000045 x 30 = 0.675 BTC: 42,666.67 USD/BTC, as with 1000 units (both scale with the units)
    def half(raw):
        raw["fleet"]["installed"][0]["units"] = 500

    k = evaluate(lever_instance(half), Plan()).kpis
    assert k["btc_mined"].tolist() == pytest.approx([0.675, 0.6975, 0.675])
    assert k["cost_to_mine_usd_per_btc"].tolist() == pytest.approx([28_800 / 0.675] * 3, rel=1e-12)


def test_gpu_capex_counts_for_a_facility_that_finances_gpus():
    from test_hpc_levers import _gpu_vs_colo

    # 0.5 MW of GPUs at 1,200,000 USD/MW bought in 2026-01 (600,000 USD) and a facility financing GPUs at
    # 80 % loan-to-cost: drawing 480,000 USD in 2026-01 is allowed (0.8 x 600,000); 480,001 is not
    d = _gpu_vs_colo(300_000)
    d["financing"] = {"project_facilities": [{
        "id": "pf", "site": "h", "finances": ["gpus"], "commitment_usd": 1_000_000, "loan_to_cost": 0.8,
        "interest_rate_per_year": 0.12, "draw_last_month": "2026-01", "amortization_start_month": "2026-02", "tenor_months": 10}]}
    inst = Instance.from_dict(d)
    gpus = df([("gb", "h", "2026-01", 0.5)], ["option", "site", "month", "mw"])
    ok = evaluate(inst, Plan(gpu_purchases=gpus, debt=df([("pf", "2026-01", 480_000.0)], ["instrument", "month", "usd"])))
    assert ok.violations == []
    assert ok.cashflows.query("item == 'debt_draws_usd'")["usd"].sum() == pytest.approx(480_000.0)
    over = evaluate(inst, Plan(gpu_purchases=gpus, debt=df([("pf", "2026-01", 480_001.0)], ["instrument", "month", "usd"])))
    assert any("more than loan_to_cost 0.8 x financed capex 600,000 USD" in v for v in over.violations), over.violations
