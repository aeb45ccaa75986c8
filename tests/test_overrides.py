"""Dotted-path overrides: addressing by id, index and '*'; mul/add/shift_months; one-line errors.

Expected values are computed by hand from instances/demo.yaml (figures quoted in comments).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from optimizer.economics.data import compile_instance
from optimizer.errors import InputError
from optimizer.instance import Instance
from optimizer.instance.overrides import parse_path

DEMO = Path(__file__).parent.parent / "instances" / "demo.yaml"


@pytest.fixture(scope="module")
def demo() -> Instance:
    return Instance.from_yaml(DEMO)


def test_parse_path():
    assert parse_path("sites[tx-1].conversion.capex_usd_per_mw") == [
        ("field", "sites"), ("item", "tx-1"), ("field", "conversion"), ("field", "capex_usd_per_mw")]
    assert parse_path("fleet.asic_models[Antminer S21 XP].power_w")[2] == ("item", "Antminer S21 XP")


def test_by_id_changes_only_that_item(demo):
    new = demo.with_overrides({"sites[tx-1].conversion.capex_usd_per_mw": 8_500_000})
    assert new.site_by_id["tx-1"].conversion.capex_usd_per_mw == 8_500_000
    # the other sites keep their capex: nd-1 10 M$/MW, pa-1 11 M$/MW
    assert new.site_by_id["nd-1"].conversion.capex_usd_per_mw == 10_000_000
    assert new.site_by_id["pa-1"].conversion.capex_usd_per_mw == 11_000_000


def test_by_index(demo):
    new = demo.with_overrides({"sites[1].pue_hpc": 1.3})
    assert new.sites[1].id == "nd-1" and new.sites[1].pue_hpc == 1.3
    assert new.sites[0].pue_hpc == 1.20


def test_star_selects_every_item(demo):
    new = demo.with_overrides({"scenarios[*].btc_price_usd.scale": 0.8})
    assert [s.btc_price_usd.scale for s in new.scenarios] == [0.8, 0.8, 0.8]
    # every scenario starts at 87,000 USD in 2026-01: 87,000 x 0.8 = 69,600
    tl = new.timeline
    for s in new.scenarios:
        assert s.btc_price_usd.monthly(tl.start, 1)[0] == pytest.approx(69_600)


def test_mul_add_shift(demo):
    new = demo.with_overrides({
        "leases[L1-neocloud].rate_usd_per_kw_month": {"mul": 1.1},    # 154 x 1.1 = 169.4
        "horizon.discount_rate": {"add": 0.02},                        # 0.12 + 0.02 = 0.14
        "leases[L2-hyperscaler].window_start": {"shift_months": -3},   # 2027-07 - 3 months = 2027-04
        "sites[pa-1].halls[pa-a].racks": {"add": 20},                  # 200 + 20 = 220 (int field)
    })
    assert new.leases[0].rate_usd_per_kw_month == pytest.approx(169.4)
    assert new.horizon.discount_rate == pytest.approx(0.14)
    assert new.leases[1].window_start == "2027-04"
    racks = new.site_by_id["pa-1"].halls[0].racks
    assert racks == 220 and isinstance(racks, int)


def test_shift_across_year_boundary(demo):
    # L4 window_end 2029-06 + 7 months = 2030-01
    new = demo.with_overrides({"leases[L4-colo].window_end": {"shift_months": 7}})
    assert new.leases[3].window_end == "2030-01"


def test_series_mul_and_add(demo):
    new = demo.with_overrides({
        "scenarios[base].btc_price_usd": {"mul": 1.2},          # scale 1.2: 87,000 x 1.2 = 104,400 in 2026-01
        "scenarios[base].fees_btc_per_block": {"add": 0.01},   # constant 0.036 + 0.01 = 0.046
        "scenarios[bear].btc_price_usd": {"add": 1000},        # every point + 1,000: 2026-01 88,000
    })
    base = new.scenarios[1]
    tl = new.timeline
    assert base.btc_price_usd.monthly(tl.start, 1)[0] == pytest.approx(104_400)
    assert base.fees_btc_per_block.value == pytest.approx(0.046)
    assert new.scenarios[0].btc_price_usd.points["2026-01"] == pytest.approx(88_000)
    assert new.scenarios[0].btc_price_usd.points["2030-12"] == pytest.approx(76_000)  # 75,000 + 1,000


def test_csv_series_survive_and_scale(demo):
    # demo_power_prices.csv, 2026-01 ERCOT = level 37 x January factor 1.00 x 1.02^0 = 37.00 USD/MWh
    new = demo.with_overrides({"scenarios[*].power_price_usd_per_mwh.ercot": {"mul": 1.1}})
    data = compile_instance(new)
    assert data.power_price["ercot"][:, 0] == pytest.approx([37.0 * 1.1] * 3)
    # MISO untouched: 30 x 1.20 (January) = 36.00
    assert data.power_price["miso"][:, 0] == pytest.approx([36.0] * 3)


def test_asic_derived_fields_recomputed(demo):
    # S21 XP: 270 TH/s, 3,645 W. x 1.1 -> 4,009.5 W, 4,009.5 / 270 = 14.85 J/TH
    new = demo.with_overrides({"fleet.asic_models[Antminer S21 XP].power_w": {"mul": 1.1}})
    m = new.model_by_name["Antminer S21 XP"]
    assert m.power_w == pytest.approx(4009.5)
    assert m.efficiency_j_per_th == pytest.approx(14.85)


def test_two_overrides_of_one_field_compose(demo):
    new = demo.with_overrides({"horizon.discount_rate": 0.08, "horizon.discount_rate ": {"add": 0.01}})
    assert new.horizon.discount_rate == pytest.approx(0.09)


def test_defaulted_section_can_be_overridden(demo):
    # treasury.min_cash_usd is not in the file (default 0)
    new = demo.with_overrides({"treasury.min_cash_usd": 5_000_000})
    assert new.treasury.min_cash_usd == 5_000_000
    assert new.treasury.btc_held_start == 2000


def test_original_unchanged_and_frozen(demo):
    demo.with_overrides({"horizon.discount_rate": 0.2, "sites[tx-1].grid_interconnect_mw": 10})
    assert demo.horizon.discount_rate == 0.12
    assert demo.sites[0].grid_interconnect_mw == 120
    with pytest.raises(ValidationError):
        demo.horizon.discount_rate = 0.2


@pytest.mark.parametrize("overrides, fragments", [
    ({"sites[tx-1].pue_hpx": 1.2}, ["sites[tx-1].pue_hpx", "unknown field 'pue_hpx' under 'sites[tx-1]'", "did you mean 'pue_hpc'"]),
    ({"sites[tx-9].pue_hpc": 1.2}, ["sites[tx-9]", "no item with id 'tx-9' in 'sites'"]),
    ({"sites[7].pue_hpc": 1.2}, ["no item with id '7' in 'sites'"]),
    ({"sites[tx-1].market": {"mul": 2}}, ["sites[tx-1].market", "not", "numeric"]),
    ({"horizon.discount_rate": {"shift_months": 1}}, ["horizon.discount_rate", "shift_months", "YYYY-MM"]),
    ({"horizon.discount_rate.x": 1}, ["horizon.discount_rate", "has no fields"]),
    ({"sites[tx-1": 1}, ["'[' without ']'"]),
    ({"sites[tx-1].sale.price_usd": 1}, ["sites[tx-1].sale", "not set"]),
    ({"scenarios[base].power_price_usd_per_mwh.caiso": {"mul": 2}}, ["no key 'caiso'"]),
    # re-validation names the field by index and the reason
    ({"sites[tx-1].conversion.lead_months": -3}, ["sites[0].conversion.lead_months", "must be >= 0, got -3"]),
    ({"leases[L4-colo].window_end": {"shift_months": 30}}, ["leases[3].window_end", "2031-12", "outside the horizon"]),
])
def test_invalid_override_one_line(demo, overrides, fragments):
    with pytest.raises(InputError) as e:
        demo.with_overrides(overrides)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(("override", "after overrides"))
    for frag in fragments:
        assert frag in msg, (frag, msg)
