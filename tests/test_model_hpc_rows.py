"""GPU cloud lines and cap, a prepaid NOI-margin lease's opex, and a bought site's projects, in the
model at a plan's values (no solve; see test_model_financing_rows for the method): the objective
equals the NPV worked by hand, or the model's lines equal the independent evaluator's, and a plan
over a cap breaks that row alone by the excess.

Instances are test_hpc_levers' ``_base`` (12 months from 2026-01, rate 0, index power at 40 USD/MWh,
no terminal values but GPU book value).
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_hpc_levers import _base, _index, _site
from test_model_financing_rows import at_plan, broken, line, same_lines

from optimizer.plan import Plan


def gpu_case() -> dict:
    # site h: 20 HPC racks of 100 kW (2 MW), PUE 1.2. GPUs gb: 1.2 M$ per MW, 100,000 USD per MW-month
    # merchant, 10,000 USD per MW-month opex, 6 months of life, then 25 % salvage; orders 2026-01..02,
    # at most 1.5 MW in all
    d = _base()
    d["sites"] = [_site("h", halls=[{"id": "hpc", "use": "hpc", "racks": 20}])]
    d["contracts"] = [_index("h")]
    d["gpu_cloud"] = {"options": [{"id": "gb", "kw_per_gpu": 2.0, "usd_per_mw": 1_200_000, "price_usd_per_mw_month": 100_000,
                                   "opex_usd_per_mw_month": 10_000, "useful_life_months": 6, "salvage_share": 0.25,
                                   "first_month": "2026-01", "last_month": "2026-02", "max_mw": 1.5}]}
    return d


def gpus(*rows) -> Plan:
    return Plan(gpu_purchases=pd.DataFrame(list(rows), columns=["option", "site", "month", "mw"]))


def test_gpu_purchase_salvage_opex_and_merchant_revenue_by_hand():
    # 1 MW bought in 2026-01: in service 2026-01..06 (6 months), retired in 2026-07 for 25 % of
    # 1,200,000 = 300,000; revenue 6 x 100,000, opex 6 x 10,000; power 1 MW x 1.2 x 4,344 h
    # (181 days Jan..Jun) x 40 USD/MWh = 208,512; rate 0
    m, inst, full = at_plan(gpu_case(), gpus(("gb", "h", "2026-01", 1.0)))
    assert broken(m) == {}
    cf = same_lines(m, inst, full)
    assert line(cf, "gpu_salvage_usd") == pytest.approx({6: 300_000})
    assert line(cf, "opex_usd") == pytest.approx({t: -10_000 for t in range(6)})
    assert cf["usd"].sum() == pytest.approx(-1_200_000 + 300_000 + 6 * (100_000 - 10_000) - 208_512, rel=1e-12)


def test_gpus_bought_past_the_cap_break_the_cap_row_by_the_excess():
    m, _, _ = at_plan(gpu_case(), gpus(("gb", "h", "2026-01", 1.0), ("gb", "h", "2026-02", 1.0)))
    assert broken(m) == {"gpu_cap[gb]": pytest.approx(0.5)}      # MW: 2 bought, 1.5 allowed


def test_a_prepaid_noi_margin_lease_has_the_evaluators_lines():
    # lease P: 1 MW at 150 USD/kW-month for 12 months, 20 % of the rent paid up front, NOI margin 0.8
    # (its opex follows the undiscounted rent, not the reduced monthly one)
    d = _base()
    d["sites"] = [_site("h", halls=[{"id": "hpc", "use": "hpc", "racks": 10}])]
    d["contracts"] = [_index("h")]
    d["leases"] = [{"id": "P", "it_mw": 1.0, "rate_usd_per_kw_month": 150, "term_months": 12, "window_start": "2026-01",
                    "window_end": "2026-01", "noi_margin": 0.8, "prepayment_share": 0.2}]
    m, inst, full = at_plan(d, Plan(leases=pd.DataFrame({"lease": ["P"], "site": ["h"], "month": ["2026-01"], "share": [1.0]})))
    assert broken(m) == {}
    cf = same_lines(m, inst, full)
    # by hand: 20 % of the 12 months' rent up front, 0.2 x 12 x 150,000 = 360,000 in 2026-01; the
    # monthly rent falls by that share, 0.8 x 150,000 = 120,000; opex (1 - 0.8) x 150,000 = 30,000 a
    # month, on the full rent (the prepayment does not lower the tenant's opex)
    assert line(cf, "lease_prepayment_usd") == pytest.approx({0: 360_000})
    assert line(cf, "lease_revenue_usd") == pytest.approx({t: 120_000 for t in range(12)})
    assert line(cf, "opex_usd") == pytest.approx({t: -30_000 for t in range(12)})


def test_a_bought_sites_grid_expansion_can_start_only_once_it_is_owned():
    # site b is bought from 2026-04 (period 3); its grid expansion could otherwise start from 2026-01
    d = _base()
    d["sites"] = [_site("b", halls=[{"id": "hpc", "use": "hpc", "racks": 10}],
                        grid_expansions=[{"id": "g", "mw": 5, "capex_usd": 1_000_000, "lead_months": 0}],
                        acquisition={"price_usd": 1_000_000, "available_from": "2026-04"})]
    d["contracts"] = [_index("b")]
    m, _, _ = at_plan(d, Plan())
    assert sorted(k[-1] for k in m.gx_index) == list(range(3, 12))
    assert sorted(k[-1] for k in m.acq.index_set()) == list(range(3, 12))


def hpc_build_site(**site) -> dict:
    # site n: an HPC new build "hall" of 10 racks (1 MW), 1 M$/MW, lead 1 month, at most 2 blocks, which
    # needs the optional contract "ppa" signed; contract ppa and the index contract at n
    d = _base()
    d["sites"] = [_site("n", new_builds=[{"id": "hall", "use": "hpc", "racks_per_block": 10, "capex_usd_per_mw": 1_000_000,
                                          "lead_months": 1, "max_blocks": 2, "requires_contract": "ppa"}], **site)]
    d["contracts"] = [_index("n"), {"id": "ppa", "site": "n", "kind": "index", "adder_usd_per_mwh": 1, "optional": True}]
    return d


def built(month: str, blocks: float = 1.0, signed: bool | None = None, **extra) -> Plan:
    contracts = pd.DataFrame({"contract": ["ppa"], "signed": [signed]}) if signed is not None else None
    return Plan(new_builds=pd.DataFrame({"site": ["n"], "option": ["hall"], "month": [month], "blocks": [blocks]}),
                **({"contracts": contracts} if contracts is not None else {}), **extra)


def test_a_new_build_that_needs_a_contract_breaks_its_row_by_the_blocks_built_without_it():
    m, inst, full = at_plan(hpc_build_site(), built("2026-02", signed=True))
    assert broken(m) == {}
    # capex 1 block x 10 racks x 100 kW = 1 MW x 1 M$ in 2026-02 (lead 1: one period)
    assert line(same_lines(m, inst, full), "new_build_capex_usd") == pytest.approx({1: -1_000_000})
    m, _, _ = at_plan(hpc_build_site(), built("2026-02", signed=False))
    # blocks built by the last period (1) <= 2 x sign (0): broken by 1 block
    assert broken(m) == {"new_build_requirements[n,hall,11,contract]": pytest.approx(1.0)}


def test_a_new_build_on_a_site_not_yet_bought_breaks_the_ownership_row():
    site = {"acquisition": {"price_usd": 500_000, "available_from": "2026-03"}}
    buy = pd.DataFrame({"site": ["n"], "event": ["acquisition"], "month": ["2026-03"]})
    m, _, _ = at_plan(hpc_build_site(**site), built("2026-04", signed=True, site_events=buy))
    assert broken(m) == {}
    m, _, _ = at_plan(hpc_build_site(**site), built("2026-03", signed=True, site_events=buy))
    assert broken(m) == {}                                   # bought in the month it starts: allowed
    m, _, _ = at_plan(hpc_build_site(**site), built("2026-04", signed=True))   # never bought
    assert broken(m) == {"new_build_needs_ownership[n,hall,3]": pytest.approx(1.0)}


def test_hand_over_variables_exist_only_where_the_racks_or_gpus_can_be():
    # lease S (splittable, 1 MW) may go to h (10 HPC racks) or m (mining only, no conversion option):
    # only h can ever hold HPC racks. GPU contract K (2 MW of GPUs of option gb) fits neither h
    # (1 MW of racks) nor g (3 MW, but gb may not be bought there); sites big (3 MW) and fit (exactly 2 MW)
    # hold it
    d = _base()
    d["sites"] = [_site("h", halls=[{"id": "hpc", "use": "hpc", "racks": 10}]),
                  _site("m", halls=[{"id": "min", "use": "mining", "racks": 10}]),
                  _site("g", halls=[{"id": "hpc", "use": "hpc", "racks": 30}]),
                  _site("big", halls=[{"id": "hpc", "use": "hpc", "racks": 30}]),
                  _site("fit", halls=[{"id": "hpc", "use": "hpc", "racks": 20}])]
    d["contracts"] = [_index(s) for s in ("h", "m", "g", "big", "fit")]
    d["gpu_cloud"] = {"options": [{"id": "gb", "kw_per_gpu": 2.0, "usd_per_mw": 1_000_000, "price_usd_per_mw_month": 0,
                                   "useful_life_months": 12, "first_month": "2026-01", "sites": ["h", "big", "fit"]}]}
    d["leases"] = [{"id": "S", "it_mw": 1.0, "rate_usd_per_kw_month": 100, "term_months": 6, "window_start": "2026-01",
                    "window_end": "2026-01", "noi_margin": 1.0, "splittable": True},
                   {"id": "K", "it_mw": 2.0, "rate_usd_per_kw_month": 500, "term_months": 6, "window_start": "2026-01",
                    "window_end": "2026-01", "noi_margin": 1.0, "gpu_option": "gb"}]
    m, _, _ = at_plan(d, Plan())
    assert sorted({(k[0], k[1]) for k in m.x_index}) == [("K", "big"), ("K", "fit"), ("S", "big"), ("S", "fit"), ("S", "g"), ("S", "h")]
