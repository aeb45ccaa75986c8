"""The persistent route (parameters updated in place, warm start) must give exactly the cold
optimum, for every kind of parameter it updates in place, and rebuild for anything else."""

from pathlib import Path

import pytest

from optimizer.instance import Instance
from optimizer.solve import PersistentSolver, solve

OPTS = dict(mip_gap=1e-7, baselines=False, shadow_prices=False)


@pytest.fixture(scope="module")
def persistent():
    base = Instance.from_yaml(Path(__file__).resolve().parents[1] / "instances" / "demo.yaml")
    ps = PersistentSolver(base, **OPTS)
    ps.solve()
    return base, ps


@pytest.mark.parametrize("override,in_place", [
    ({"scenarios[*].btc_price_usd": {"mul": 0.7}}, True),
    ({"scenarios[*].power_price_usd_per_mwh.ercot": {"mul": 1.3}}, True),
    ({"leases[*].rate_usd_per_kw_month": {"mul": 1.2}}, True),
    ({"sites[*].conversion.capex_usd_per_mw": {"mul": 0.8}}, True),
    ({"horizon.discount_rate": 0.08}, True),
    ({"sites[tx-1].pue_mining": 1.2}, False),          # a constant in the model: must rebuild
    ({"leases[*].escalator_per_year": 0.0}, False),
])
@pytest.mark.slow
def test_persistent_equals_cold(persistent, override, in_place):
    base, ps = persistent
    inst = base.with_overrides(override)
    assert ps._solver.same_structure(inst) == in_place
    warm = ps.solve_with(inst)
    cold = solve(inst, **OPTS)
    assert warm.status == cold.status == "optimal"
    assert warm.objective_usd == pytest.approx(cold.objective_usd, rel=1e-6)
    warm.verify()
