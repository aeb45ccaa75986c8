"""Relations the optimum must obey whatever its value (PyPSA-style), on instances/tiny.yaml and
instances/demo.yaml.

Tolerance: every solve stops at a relative gap of GAP = 1e-7, so a reported NPV lies within
GAP x |bound| below its true optimum (and never above it: it is the NPV of a feasible plan).
"opt(A) >= opt(B)" can therefore only be contradicted by more than GAP x |NPV| (plus HiGHS's
primal feasibility tolerance, 1e-7 in $M model units: well under 10 USD), which is what ``ge``
allows. Multi-scenario solves skip the EVPI/VSS extra solves (value_of_information=False);
they do not change the plan or the NPV.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from optimizer.evaluate import evaluate
from optimizer.instance import Instance
from optimizer.solve import solve

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny.yaml"
DEMO = ROOT / "instances" / "demo.yaml"
GAP = 1e-7


def variant(path: Path, edit=None) -> Instance:
    """The instance at ``path`` with ``edit(dict)`` applied to its YAML data (CSV paths still
    resolve next to the original file)."""
    d = yaml.safe_load(path.read_text())
    if edit is not None:
        edit(d)
    return Instance.from_dict(d, base_dir=path.parent)


def run(inst: Instance, **kw):
    opts = dict(mip_gap=GAP, time_limit_s=120, shadow_prices=False, baselines=False, value_of_information=False)
    opts.update(kw)
    res = solve(inst, **opts)
    assert res.status == "optimal", f"{inst.name}: {res.status} {res.message}"
    res.verify()
    return res


def ge(a: float, b: float) -> bool:
    """a >= b up to the solve tolerance (module docstring)."""
    return a >= b - (2 * GAP * max(abs(a), abs(b)) + 10.0)


@pytest.fixture(scope="module")
def demo():
    return run(variant(DEMO))


# ---------------------------------------------------------------- lease rates


def test_raising_tiny_lease_rate_never_lowers_npv():
    rates = [50, 150, 300, 600, 1200, 2400]
    res = [run(variant(TINY, lambda d, r=r: d["leases"][0].update(rate_usd_per_kw_month=r))) for r in rates]
    npvs = [r.npv_usd for r in res]
    for lo, hi in zip(npvs, npvs[1:]):
        assert ge(hi, lo), npvs
    # not vacuous: at 150 USD/kW-month tiny keeps mining (L1 unsigned); at 2,400 it signs L1
    # (NOI 0.9 x 2.4 M$ a month against ~1 M$ of conversion capex)
    assert len(res[1].plan.leases) == 0 and res[-1].plan.leases["lease"].tolist() == ["L1"]
    assert npvs[-1] > npvs[1]


@pytest.mark.parametrize("lease", ["L1-neocloud", "L3-ailab"])
def test_raising_a_demo_lease_rate_never_lowers_npv(demo, lease):
    def edit(d):
        for l in d["leases"]:
            if l["id"] == lease:
                l["rate_usd_per_kw_month"] *= 1.25
    inst = variant(DEMO, edit)
    res = run(inst)
    assert ge(res.npv_usd, demo.npv_usd)
    # stronger: the new optimum is at least the old optimal plan re-evaluated at the new rate
    old_plan = evaluate(inst, demo.plan.first_stage())
    assert old_plan.violations == []
    assert ge(res.npv_usd, old_plan.npv_usd)


# ---------------------------------------------------------------- removing offers


@pytest.mark.parametrize("lease", ["L1-neocloud", "L2-hyperscaler", "L3-ailab", "L4-colo"])
@pytest.mark.slow
def test_removing_a_lease_offer_never_raises_npv(demo, lease):
    res = run(variant(DEMO, lambda d: d.__setitem__("leases", [l for l in d["leases"] if l["id"] != lease])))
    assert ge(demo.npv_usd, res.npv_usd)
    if lease in demo.plan.leases["lease"].tolist():
        # the lease the optimum signs is worth something: removing it must cost more than the tolerance
        assert res.npv_usd < demo.npv_usd - 1e3


def test_removing_every_lease_offer_never_raises_tiny_npv():
    full = run(variant(TINY, lambda d: d["leases"][0].update(rate_usd_per_kw_month=2400)))
    none = run(variant(TINY, lambda d: d.__setitem__("leases", [])))
    assert ge(full.npv_usd, none.npv_usd) and full.npv_usd > none.npv_usd


# ---------------------------------------------------------------- scenarios


def _only(name: str, copies: int):
    """Keep scenario ``name`` only, as ``copies`` identical scenarios of equal probability."""
    def edit(d):
        sc = next(s for s in d["scenarios"] if s["name"] == name)
        d["scenarios"] = [dict(copy.deepcopy(sc), name=f"{name}{k}", probability=1.0 / copies) for k in range(copies)]
    return edit


def test_one_scenario_equals_the_same_scenario_duplicated(demo):
    one = run(variant(DEMO, _only("base", 1)))
    two = run(variant(DEMO, _only("base", 2)))
    # identical scenarios: same expected NPV, and each copy's NPV equals it
    assert two.npv_usd == pytest.approx(one.npv_usd, rel=2 * GAP)
    for v in two.npv_usd_by_scenario.values():
        assert v == pytest.approx(one.npv_usd, rel=2 * GAP)


def test_splitting_a_scenario_into_two_identical_halves_changes_nothing(demo):
    def edit(d):
        bull = next(s for s in d["scenarios"] if s["name"] == "bull")
        d["scenarios"] = [s for s in d["scenarios"] if s["name"] != "bull"] + [
            dict(copy.deepcopy(bull), name="bull_a", probability=0.1), dict(copy.deepcopy(bull), name="bull_b", probability=0.1)]
    res = run(variant(DEMO, edit))
    assert res.npv_usd == pytest.approx(demo.npv_usd, rel=2 * GAP)
    assert res.npv_usd_by_scenario["bull_a"] == pytest.approx(demo.npv_usd_by_scenario["bull"], rel=1e-6)


def test_deterministic_optimum_of_each_scenario_bounds_the_stochastic_one(demo):
    """Wait-and-see: each scenario solved alone with perfect foresight is at least what the shared
    first stage earns in that scenario, so sum_w p_w opt_w >= the stochastic optimum."""
    probs = {s.name: s.probability for s in variant(DEMO).scenarios}
    ws = 0.0
    for name, p in probs.items():
        alone = run(variant(DEMO, _only(name, 1)))
        ws += p * alone.npv_usd
    assert ge(ws, demo.npv_usd)


# ---------------------------------------------------------------- baselines


@pytest.mark.parametrize("path", [TINY, DEMO], ids=["tiny", "demo"])
def test_optimum_never_below_a_feasible_baseline(path):
    res = run(variant(path), baselines=True)
    assert set(res.baselines) == {"keep-mining", "convert-asap", "greedy"}
    feasible = {k: v for k, v in res.baselines.items() if res.baseline_violations[k] == 0}
    assert feasible, "no feasible baseline to compare with"
    for name, v in feasible.items():
        assert ge(res.npv_usd, v), (name, v, res.npv_usd)


# ---------------------------------------------------------------- capex budget


@pytest.mark.slow
def test_tightening_the_capex_budget_never_raises_npv(demo):
    budgets = [600e6, 200e6, 100e6, 50e6, 0.0]  # 600 M$ is the demo's own budget

    def with_budget(b):
        return variant(DEMO, lambda d: d["policy"].update(capex_budget_usd_per_year=b))

    npvs = [demo.npv_usd] + [run(with_budget(b)).npv_usd for b in budgets[1:]]
    for hi, lo in zip(npvs, npvs[1:]):
        assert ge(hi, lo), npvs
    # no budget at all is the loosest; a zero budget forbids every conversion and purchase
    loose = run(variant(DEMO, lambda d: d["policy"].pop("capex_budget_usd_per_year"))).npv_usd
    assert ge(loose, npvs[0])
    assert npvs[-1] < npvs[0] - 1e3  # the demo's optimum converts, so the zero budget binds


# ---------------------------------------------------------------- fixing decisions


def test_fixing_a_decision_never_raises_npv(demo):
    """Forcing the optimum's signed lease out, or an unsigned one in, can only cost."""
    signed = demo.plan.leases["lease"].tolist()
    assert signed, "the demo optimum signs a lease"

    def edit(d):
        d["policy"]["fixed_decisions"] = [{"kind": "lease", "lease": signed[0], "signed": False}]
    res = run(variant(DEMO, edit))
    assert signed[0] not in res.plan.leases["lease"].tolist()
    assert ge(demo.npv_usd, res.npv_usd)


# ---------------------------------------------------------------- operations given the first stage


@pytest.mark.parametrize("btc_held", [2000, 0], ids=["treasury", "no-treasury"])
def test_operating_rule_never_beats_the_milp_on_its_own_first_stage(demo, btc_held):
    """Re-running the optimum's first stage through the evaluator's operating rule can only lose
    (the rule never times treasury sales); without treasury BTC both run operations optimally
    per period and scenario, so the NPVs are equal."""
    if btc_held == 2000:
        res, inst = demo, variant(DEMO)
    else:
        inst = variant(DEMO, lambda d: d["treasury"].update(btc_held_start=0))
        res = run(inst)
    rule = evaluate(inst, res.plan.first_stage())
    assert rule.violations == []
    assert ge(res.npv_usd, rule.npv_usd)
    if btc_held == 0:
        assert rule.npv_usd == pytest.approx(res.npv_usd, rel=2 * GAP)


def test_pinning_the_optimums_own_decisions_keeps_its_npv(demo):
    """policy.fixed_decisions set to the optimum's conversions, leases (site and month, and every
    other lease unsigned) and optional contracts: the optimum stays feasible and optimal."""
    p = demo.plan
    fixed = [{"kind": "conversion", "site": r.site, "month": r.month, "blocks": int(r.blocks)} for r in p.conversions.itertuples()]
    signed = set(p.leases["lease"])
    fixed += [{"kind": "lease", "lease": r.lease, "signed": True, "site": r.site, "month": r.month} for r in p.leases.itertuples()]
    fixed += [{"kind": "lease", "lease": l["id"], "signed": False} for l in yaml.safe_load(DEMO.read_text())["leases"] if l["id"] not in signed]
    fixed += [{"kind": "contract", "contract": r.contract, "signed": bool(r.signed)} for r in p.contracts.itertuples()]
    assert fixed
    res = run(variant(DEMO, lambda d: d["policy"].update(fixed_decisions=fixed)))
    assert res.npv_usd == pytest.approx(demo.npv_usd, rel=2 * GAP)
    # and a lease pinned by month only (any eligible site) leaves the same optimum too
    if len(p.leases):
        r0 = p.leases.iloc[0]
        res = run(variant(DEMO, lambda d: d["policy"].update(fixed_decisions=[{"kind": "lease", "lease": r0.lease, "signed": True, "month": r0.month}])))
        assert res.npv_usd == pytest.approx(demo.npv_usd, rel=2 * GAP)
