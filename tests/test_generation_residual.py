"""An optional power plant's residual value at the horizon end (terminal_generation_usd)."""

from pathlib import Path

import pytest
import yaml

from optimizer.instance import Instance
from optimizer.solve import solve

TINY = Path(__file__).resolve().parents[1] / "instances" / "tiny.yaml"


def _with_plant(residual_usd: float) -> Instance:
    raw = yaml.safe_load(TINY.read_text())
    # 1 MW plant at 1,000 USD/MWh: never worth running (market 40, ASICs earn far less), so the
    # only effect of buying it is the price paid in 2026-01 and the residual value at the end.
    raw["contracts"].append({"id": "gas", "site": "s1", "kind": "owned_generation", "optional": True,
                             "mw": 1, "variable_cost_usd_per_mwh": 1000, "acquisition_price_usd": 1_000_000,
                             "residual_value_usd": residual_usd})
    return Instance.from_dict(raw, base_dir=TINY.parent)


def test_residual_value_decides_the_purchase():
    base = solve(Instance.from_yaml(TINY), mip_gap=1e-9, value_of_information=False)
    # 6 monthly periods at 12 %/yr: the end of the horizon is discounted by 1.12^(-6/12) = 0.944911.
    # Residual 1.2M: 1,200,000 x 0.944911 = 1,133,893 > 1,000,000 paid at the end of 2026-01
    # (discounted 1.12^(-1/12) = 0.990600 -> 990,600): buy, NPV + 143,293.
    buy = solve(_with_plant(1_200_000), mip_gap=1e-9, value_of_information=False)
    buy.verify()
    assert buy.plan.contracts.set_index("contract").loc["gas", "signed"]
    gain = 1_200_000 * 1.12 ** -0.5 - 1_000_000 * 1.12 ** (-1 / 12)
    assert buy.npv_usd - base.npv_usd == pytest.approx(gain, abs=1.0)
    # Residual 1.0M: 944,911 < 990,600: do not buy, NPV unchanged.
    skip = solve(_with_plant(1_000_000), mip_gap=1e-9, value_of_information=False)
    skip.verify()
    signed = skip.plan.contracts.set_index("contract")["signed"].get("gas", False)
    assert not signed
    assert skip.npv_usd == pytest.approx(base.npv_usd, abs=1.0)
