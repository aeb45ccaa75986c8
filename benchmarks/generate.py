"""Realistic benchmark instances at three sizes, deterministic per seed.

    generate("small" | "medium" | "large", seed=0) -> Instance
    python benchmarks/generate.py large --seed 0 --out large.yaml   (writes the instance YAML)

| size   | sites | months | leases | scenarios |
|--------|-------|--------|--------|-----------|
| small  | 3     | 36     | 4      | 1         |
| medium | 10    | 60     | 15     | 5         |
| large  | 30    | 120    | 40     | 10        |

Figures are drawn from ranges in shared/reference/FACTS.md (section in brackets; "estimate"
where FACTS gives none): ASIC models from the shipped catalog [3a] at $10-20/TH [3b]; mining
PUE 1.05-1.30, HPC PUE 1.10-1.30 [4c]; HPC racks 120-190 kW [4c]; conversion capex $8-11M per
MW of critical IT, lead 9-24 months [4c]; lease rates $120-160/kW-month, escalators 2-3 %, terms
10-15 years, NOI margins 80-97 % [4b, 4a]; fixed PPAs $30-45/MWh with 80-95 % take-or-pay [5];
index contracts at the market price plus a $3-6/MWh adder (estimate); wholesale markets at
$28-45/MWh with seasonal peaks [3c, 5]; powered sites at $400-550k/MW [4c]; discount rate
12 % [6]; hashprice from BTC price, network hashrate and fees sampled by the instance's
``scenario_generator`` (BTC from 87,000 USD in 2026-01 [2e], hashrate 1,050 EH/s [2c], fees
0.036 BTC/block [2d]), reduced to the size's scenario count by k-medoids.

Every entity kind appears at a realistic share: each site has an index contract; about half
hold a fixed PPA with take-or-pay (with sell-back in ERCOT and at some other sites); some
optional PPAs; owned generation options (1 small, 2 medium/large); ASIC purchase options;
grid expansions at about a quarter of the sites; one site with a sale option and one that may
be acquired; splittable, pass-through and late-penalty leases; treasury BTC and cash (two
variants, see ``_treasury``: "funded", the default, and "tight", a stress case); a
yearly capex budget; mining and conversion shares.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from optimizer.instance import Instance  # noqa: E402
from optimizer.kernel.timeline import month_label, month_ordinal  # noqa: E402

SIZES = {  # sites, months, leases, scenarios
    "small": (3, 36, 4, 1),
    "medium": (10, 60, 15, 5),
    "large": (30, 120, 40, 10),
}
START = "2026-01"

# market -> (base USD/MWh, seasonal amplitude, peak month) [3c: ERCOT 27-55 with summer spikes; others estimate]
MARKETS = {
    "ercot": (37.0, 0.25, 8),
    "miso": (30.0, 0.10, 1),
    "pjm": (45.0, 0.12, 7),
    "spp": (28.0, 0.15, 8),
    "nyiso": (40.0, 0.10, 1),
}
MARKET_WEIGHTS = {"ercot": 0.4, "miso": 0.15, "pjm": 0.15, "spp": 0.15, "nyiso": 0.15}

# installed fleets: older and current air-cooled models [3a]; (catalog name, salvage USD per TH [3b, estimate])
INSTALLED_MODELS = [
    ("Antminer S19j Pro", 2.0),
    ("Antminer S19 XP", 3.0),
    ("Whatsminer M50S++", 2.5),
    ("Antminer S21", 4.0),
    ("Antminer S21 Pro", 5.0),
    ("Whatsminer M60S", 4.5),
    ("Antminer S21 XP", 6.0),
]
# purchase options: (catalog name, USD per TH [3b: $10-30/TH, S21 Pro $18.9, S21 $11.9], first month offset)
PURCHASE_MODELS = [
    ("Antminer S21 XP", 15.0, 0),
    ("Antminer S23", 18.0, 6),
    ("Whatsminer M60S", 12.0, 0),
    ("Antminer S21 Pro", 14.0, 0),
]


def _month(offset: int) -> str:
    return month_label(month_ordinal(START) + int(offset))


def _r(x: float, nd: int = 3) -> float:
    return float(round(float(x), nd))


def generate_dict(size: str, seed: int = 0, cash: str = "funded") -> dict:
    """The instance as a plain dict (what the YAML holds). ``cash``: "funded" or "tight" (see _treasury)."""
    if cash not in ("funded", "tight"):
        raise ValueError(f"cash: must be 'funded' or 'tight', got {cash!r}")
    if size not in SIZES:
        raise ValueError(f"size: must be one of {', '.join(SIZES)}, got {size!r}")
    n_sites, n_months, n_leases, n_scen = SIZES[size]
    rng = np.random.default_rng([int(seed), list(SIZES).index(size)])
    markets = list(MARKETS)[: 3 if n_sites <= 3 else (4 if n_sites <= 10 else 5)]
    p = np.array([MARKET_WEIGHTS[k] for k in markets])
    p = p / p.sum()

    sites, installed, contracts = [], [], []
    # one site may be sold (an older site), one may be acquired (the last one)
    sale_idx = 0 if n_sites > 1 else None
    acq_idx = n_sites - 1 if n_sites > 2 else None
    expand = set(rng.choice(n_sites, size=max(1, round(0.25 * n_sites)), replace=False).tolist())
    fixed_sites = set(rng.choice(n_sites, size=max(1, round(0.5 * n_sites)), replace=False).tolist())
    optional_sites = set(rng.choice(n_sites, size=max(1, round(0.15 * n_sites)), replace=False).tolist())
    n_gen = 1 if n_sites <= 3 else 2
    gen_sites = set(rng.choice(n_sites, size=n_gen, replace=False).tolist())
    max_lead = 18 if n_months <= 36 else 24

    for i in range(n_sites):
        sid = f"site{i + 1:02d}"
        market = str(markets[0] if i == 0 else rng.choice(markets, p=p))
        apr = 30  # air-cooled units per rack position (estimate, as instances/demo.yaml)
        n_halls = int(rng.integers(2, 6))
        hall_racks = int(rng.choice([100, 150, 200, 250]))
        halls = [{"id": f"{sid}-h{j + 1}", "use": "mining", "racks": hall_racks} for j in range(n_halls)]
        if rng.random() < 0.2:  # some sites already built an HPC hall, not yet leased
            halls.append({"id": f"{sid}-hpc", "use": "hpc", "racks": int(rng.choice([30, 40, 60]))})
        kw = float(rng.choice([120.0, 130.0, 132.0, 190.0]))  # [4c] GB200 ~120-132 kW; GB300 190 kW
        pue_m = _r(rng.uniform(1.05, 1.30), 2)  # [4c]
        pue_h = _r(rng.uniform(1.10, 1.30), 2)  # [4c]
        rpb = hall_racks if rng.random() < 0.4 else hall_racks // 2
        lead = int(rng.choice([9, 12, 12, 15, 18, 18, 24]))
        lead = min(lead, max_lead)
        conv = {"racks_per_block": rpb, "capex_usd_per_mw": _r(rng.uniform(8e6, 11e6), -4), "lead_months": lead}
        if rng.random() < 0.3:
            conv["earliest_month"] = _month(int(rng.choice([3, 6])))  # permitting (estimate)
        # installed fleet: 1-2 models filling 70-100 % of the rack positions
        owned0 = i != acq_idx
        mods = rng.choice(len(INSTALLED_MODELS), size=int(rng.integers(1, 3)), replace=False)
        fill = rng.uniform(0.7, 1.0)
        units_total = int(apr * n_halls * hall_racks * fill) // 100 * 100
        watts = []
        if owned0:
            shares = rng.dirichlet(np.ones(len(mods)))
            for k, mi in enumerate(mods):
                name = INSTALLED_MODELS[mi][0]
                u = int(units_total * shares[k]) // 100 * 100
                if u > 0:
                    installed.append({"site": sid, "model": name, "units": u})
                    watts.append(_catalog_w(name))
        w_typ = max(watts) if watts else 3500.0
        # interconnect: about the full-rack mining load of its fleet (binding after conversions, estimate)
        grid = math.ceil(apr * n_halls * hall_racks * w_typ * pue_m / 1e6 * rng.uniform(0.9, 1.1) / 5) * 5
        site = {
            "id": sid, "market": market, "grid_interconnect_mw": float(grid),
            "pue_mining": pue_m, "pue_hpc": pue_h,
            "fixed_opex_mining_usd_per_mw_month": _r(rng.uniform(8000, 12000), -2),  # estimate
            "fixed_opex_hpc_usd_per_mw_month": 0.0,  # in the leases' NOI margins
            "asics_per_rack": apr, "hpc_kw_per_rack": kw, "halls": halls, "conversion": conv,
        }
        if i in expand:
            site["grid_expansions"] = [{
                "id": f"{sid}-gx", "mw": float(rng.choice([30, 50, 75, 100])),
                "capex_usd": 0.0, "lead_months": int(rng.choice([12, 18, 24])),
            }]
            # substation / transmission upgrade at ~$0.2-0.3M/MW (FACTS 4c mining site cost, estimate)
            site["grid_expansions"][0]["capex_usd"] = _r(site["grid_expansions"][0]["mw"] * rng.uniform(2e5, 3e5), -4)
        if i == sale_idx:
            # powered site at $400-550k/MW [4c]
            site["sale"] = {"price_usd": _r(grid * rng.uniform(4e5, 5.5e5), -5), "earliest_month": _month(12)}
        if i == acq_idx:
            site["acquisition"] = {"price_usd": _r(grid * rng.uniform(4e5, 5.5e5), -5), "available_from": _month(6)}
        sites.append(site)

        # power contracts: every site an index top-up; about half a fixed PPA; some optional
        contracts.append({"id": f"{sid}-index", "site": sid, "kind": "index",
                          "adder_usd_per_mwh": _r(rng.uniform(3, 6), 1)})
        if i in fixed_sites:
            contracts.append({
                "id": f"{sid}-ppa", "site": sid, "kind": "fixed",
                "price_usd_per_mwh": _r(rng.uniform(30, 45), 1), "escalator_per_year": 0.02,
                "mw_cap": float(max(5, round(grid * rng.uniform(0.5, 0.8)))),
                "take_or_pay_min_share": _r(rng.uniform(0.8, 0.95), 2),
                "sell_back_allowed": bool(market == "ercot" or rng.random() < 0.4),
                "term_months": int(min(n_months, rng.choice([36, 48, 60, 84, 120]))),
            })
        if i in optional_sites:
            contracts.append({
                "id": f"{sid}-ppa-opt", "site": sid, "kind": "fixed", "optional": True,
                "signing_fee_usd": _r(rng.uniform(0.5e6, 1.5e6), -4), "start_month": _month(6),
                "term_months": int(min(n_months - 6, 48)),
                "price_usd_per_mwh": _r(rng.uniform(30, 42), 1), "escalator_per_year": 0.02,
                "mw_cap": float(max(5, round(grid * rng.uniform(0.3, 0.5)))),
                "take_or_pay_min_share": _r(rng.uniform(0.8, 0.9), 2), "sell_back_allowed": bool(rng.random() < 0.5),
            })
        if i in gen_sites:
            mw = float(rng.choice([50, 75, 100]))
            contracts.append({
                # a gas plant behind the meter (MARA/Long Ridge-like, smaller) [5]; costs estimate
                "id": f"{sid}-gen", "site": sid, "kind": "owned_generation", "optional": True,
                "mw": mw, "variable_cost_usd_per_mwh": _r(rng.uniform(24, 32), 1),
                "fixed_cost_usd_per_month": _r(mw * 1500, -3),
                "acquisition_price_usd": _r(mw * rng.uniform(0.6e6, 1.0e6), -5),
                "start_month": _month(int(rng.choice([0, 6, 12]))), "can_export": True,
            })

    # ASIC purchase options
    n_opt = 2 if n_sites <= 3 else (3 if n_sites <= 10 else 4)
    options = []
    for k in range(n_opt):
        name, usd_th, first = PURCHASE_MODELS[k]
        cand = [s["id"] for s in sites]
        n_el = max(1, min(len(cand), round(len(cand) * 0.4)))
        el = sorted(rng.choice(cand, size=n_el, replace=False).tolist())
        if acq_idx is not None and k == 0 and sites[acq_idx]["id"] not in el:
            el.append(sites[acq_idx]["id"])  # the site to buy comes empty: it can be equipped
        options.append({
            "id": f"buy-{k + 1}", "model": name, "usd_per_th": usd_th, "first_month": _month(first),
            "last_month": _month(min(n_months - 4, first + 24)), "lead_months": 3,
            "max_units": float(rng.choice([5000, 10000, 20000]) * max(1, n_sites // 10)), "sites": el,
        })
    models = sorted({u["model"] for u in installed} | {o["model"] for o in options})
    salvage = dict(INSTALLED_MODELS)
    asic_models = [{"catalog": mname, "salvage_usd_per_unit": _r(salvage.get(mname, 6.0) * _catalog_th(mname), 0)}
                   for mname in models]

    leases = _leases(rng, sites, n_leases, n_months)

    used = {s["market"] for s in sites}  # the schema refuses a generator path for a market no site is in
    gen = _scenario_generator(rng, n_scen, [k for k in markets if k in used], seed)
    inst = {
        "name": f"bench-{size}-s{seed}" + ("-tight" if cash == "tight" else ""),
        "description": f"benchmarks/generate.py {size} seed {seed}: {n_sites} sites, {n_months} months, "
                       f"{n_leases} leases, {n_scen} scenarios",
        "sources": ["shared/reference/FACTS.md (ranges; see benchmarks/generate.py)"],
        "horizon": {
            "start_month": START, "periods": n_months, "period_months": 1, "discount_rate": 0.12,  # [6]
            "terminal": {"lease_remaining_noi": True, "hpc_unleased_noi_usd_per_mw_year": 800000.0,
                         "hpc_cap_rate": 0.08, "mining_margin_multiple": 2.0},  # as instances/demo.yaml
        },
        "bitcoin": {"start_height": 930101, "pool_fee": 0.015},  # height at 2026-01 (demo.yaml derivation)
        "scenario_generator": gen,
        "sites": sites,
        "fleet": {"asic_models": asic_models, "installed": installed, "purchase_options": options,
                  "allow_retirement": True},
        "contracts": contracts,
        "leases": leases,
        "treasury": _treasury(cash, n_sites),
        "policy": {"capex_budget_usd_per_year": float(150e6 * n_sites), "min_mining_share": 0.1,
                   "max_converted_share": 0.8},
    }
    return inst


def _treasury(cash: str, n_sites: int) -> dict:
    """funded: cash at start counts undrawn project financing too (FACTS 6: HPC builds are 80-85 %
    loan-to-cost), so the minimum cash is a liquidity floor that binds only in bad scenarios;
    BTC held ~1,000 per site (estimate, between Riot ~19k and MARA ~50k BTC for 1-2 GW fleets [4a]).
    tight: equity-funded capex from a small treasury; cash then rations the lease offers, a hard
    knapsack for the MILP (a stress case, not the default)."""
    if cash == "tight":
        btc, cash_usd = 300.0 * n_sites, 40e6 * n_sites
    else:
        btc, cash_usd = 1000.0 * n_sites, 150e6 * n_sites
    return {"btc_held_start": btc, "mined_btc": "sell_monthly", "allow_treasury_sales": True,
            "cash_start_usd": cash_usd, "min_cash_usd": float(10e6 * max(1, n_sites // 3))}


def _leases(rng, sites: list[dict], n_leases: int, n_months: int) -> list[dict]:
    """Lease offers sized to fit their eligible sites when fully converted."""
    out = []
    n = len(sites)
    for j in range(n_leases):
        k = int(rng.integers(1, min(4, n) + 1))
        first = int(rng.integers(0, n))
        el = [sites[(first + d) % n] for d in range(k)]
        cap_mw = max(_hpc_max_mw(s) for s in el)
        lead = min(s["conversion"]["lead_months"] for s in el)
        sizes = [mw for mw in (10, 16, 20, 25, 30, 40, 50, 75, 100) if mw <= 0.8 * cap_mw] or [max(1.0, 0.5 * cap_mw)]
        mw = float(rng.choice(sizes))
        ws = int(rng.integers(lead + 1, max(lead + 2, min(n_months - 6, lead + 36))))
        we = min(n_months - 1, ws + int(rng.choice([6, 9, 12])))
        passthrough = bool(rng.random() < 0.3)
        lease = {
            "id": f"L{j + 1:02d}", "it_mw": mw,
            "rate_usd_per_kw_month": _r(rng.uniform(120, 160), 0),  # [4b]
            "escalator_per_year": _r(rng.choice([0.02, 0.025, 0.03]), 3),  # [4b]
            "term_months": int(rng.choice([120, 144, 180])),  # [4a] 10-15 yr
            "window_start": _month(ws), "window_end": _month(we),
            "eligible_sites": [s["id"] for s in el],
            "power_passthrough": passthrough,
            "noi_margin": 0.97 if passthrough else _r(rng.uniform(0.8, 0.9), 2),  # [4a, 4b]
        }
        if k > 1 and rng.random() < 0.2:
            lease["splittable"] = True
        if rng.random() < 0.25:
            lease["late_penalty_usd_per_mw_month"] = _r(rng.uniform(5000, 20000), -3)  # estimate
        out.append(lease)
    return out


def _hpc_max_mw(site: dict) -> float:
    mining = sum(h["racks"] for h in site["halls"] if h["use"] == "mining")
    hpc = sum(h["racks"] for h in site["halls"] if h["use"] == "hpc")
    rpb = site["conversion"]["racks_per_block"]
    return (hpc + rpb * (mining // rpb)) * site["hpc_kw_per_rack"] / 1000.0


def _scenario_generator(rng, n_scen: int, markets: list[str], seed: int) -> dict:
    power = {}
    for k in markets:
        base, amp, peak = MARKETS[k]
        power[k] = {"base_usd_per_mwh": base, "annual_drift": 0.02, "annual_volatility": 0.0 if n_scen == 1 else 0.15,
                    "seasonal_amplitude": amp, "peak_month": peak}
    hashrate = {"start_eh_s": 1050.0, "base_annual_growth": 0.25, "elasticity_per_year": 1.0,  # [2c]
                "breakeven_hashprice_usd_per_ph_day": 40.0, "lag_months": 3}  # [2a] ~$40 shut-down threshold
    if n_scen == 1:  # one expected-looking path: drift without noise
        return {"n_scenarios": 1, "seed": int(seed),
                "btc_price": {"model": "gbm", "start_usd": 87000.0, "annual_drift": 0.15, "annual_volatility": 0.0},
                "network_hashrate": hashrate, "fees_btc_per_block": 0.036, "power_price_usd_per_mwh": power}
    return {
        "n_scenarios": 10 * n_scen, "seed": int(seed), "reduce_to": n_scen, "reduction_method": "kmedoids",
        "btc_price": {"model": "regime_switching", "start_usd": 87000.0, "start_regime": "bear",  # [2e] Jan 2026
                      "bull": {"annual_drift": 0.5, "annual_volatility": 0.5},
                      "bear": {"annual_drift": -0.3, "annual_volatility": 0.6},
                      "p_bull_to_bear": 0.04, "p_bear_to_bull": 0.06},  # estimate
        "network_hashrate": {**hashrate, "shock_annual_volatility": 0.15, "shock_correlation_with_btc": 0.5},
        "fees_btc_per_block": {"mean_btc_per_block": 0.036, "monthly_log_sd": 0.5},  # [2d]
        "power_price_usd_per_mwh": power,
        "hpc_lease_rate_index": {"start_index": 1.0, "annual_drift": 0.0, "annual_volatility": 0.1},
    }


_CAT: dict | None = None


def _catalog() -> dict:
    global _CAT
    if _CAT is None:
        from optimizer.instance.catalog import load_catalog

        _CAT = load_catalog()
    return _CAT


def _catalog_w(name: str) -> float:
    return float(_catalog()[name]["power_w"])


def _catalog_th(name: str) -> float:
    return float(_catalog()[name]["hashrate_th_s"])


def generate(size: str, seed: int = 0, cash: str = "funded") -> Instance:
    """A validated benchmark Instance of the given size; the same (size, seed, cash) gives the same instance."""
    return Instance.from_dict(generate_dict(size, seed, cash))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("size", choices=list(SIZES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cash", choices=("funded", "tight"), default="funded", help="treasury variant (see _treasury)")
    ap.add_argument("--out", help="YAML file to write (default: stdout)")
    a = ap.parse_args(argv)
    d = generate_dict(a.size, a.seed, a.cash)
    Instance.from_dict(d)  # validate before writing
    text = f"# generated by benchmarks/generate.py {a.size} --seed {a.seed}\n" + yaml.safe_dump(d, sort_keys=False, width=120)
    if a.out:
        Path(a.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
