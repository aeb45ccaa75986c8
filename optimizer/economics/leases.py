"""Lease schedules: rent, prepayments, expected default losses, opex, delay damages and hours, per
hand-over period and per scenario variant (models/economics.md, "Leases" and "Lease tranches,
delays, credit and options").

A lease hands over in tranches (one tranche of ``it_mw`` at offset 0 without ``tranches``). Tranche
k of a lease handed over in the month ``h0`` of period ``tau`` is planned for ``h0 + offset_k`` and
starts, in a scenario with a construction delay of ``d`` months (``handover_delay_months``, when the
lease is ``delay_exposed``), at ``s_k = h0 + offset_k + d``. It runs ``term_months`` from ``s_k``,
then through its renewals (``renewals``): renewal j covers ``term + (j-1) R .. term + j R`` months
after ``s_k`` and counts with weight ``w_j`` (``probability^j``, or 1 while the tenant exercises in
``holder`` mode and 0 from its first refusal on). Month m of tranche k:

- contractual rent ``c_k(m) = mw_k x 1000 x rate x (1 + esc)^floor((m - s_k) / 12) x (1 + step)^j x w_j``;
- prepayment ``P = prepayment_share x sum over the base terms of c_k`` (undelayed, undiscounted),
  received in the month ``max(h0 - prepayment_months_before_handover, horizon start)``;
- rent received monthly ``(1 - prepayment_share) c_k(m)`` in the base term, ``c_k(m)`` in renewals;
- expected default loss ``received x (1 - S(m)) x (1 - cover)``, ``S(m) = (1 - pd)^((m - start + 1)/12)``
  the probability the tenant has not defaulted by the end of month m (counted from the horizon start,
  when the plan signs), ``cover = backstop + (1 - backstop) x recovery``: the expected rent is the
  survival-weighted rent plus the covered share of the rest (a linear form, exact for a constant
  monthly hazard);
- opex ``(1 - noi_margin) c_k(m)`` or ``opex_usd_per_mw_month x mw_k x w_j``;
- delay damages ``delay_damages_usd_per_mw_month x mw_k`` in each month of ``[h0 + offset_k, s_k)``;
- IT energy ``mw_k x hours(m) x w_j`` (expected hours in probability-weighted renewals).

Periods sum their months. After the horizon the same months are discounted monthly to the horizon
end (``(1 + r)^(-k/12)``, k months after it): the terminal lease NOI is received - loss - opex there.
For a GPU cloud contract (``gpu_option``) the terminal NOI is instead minus the prepaid rent of the
months after the horizon (deferred revenue): the GPUs' book value at the horizon end stands for what
they earn after it (economics.md, "GPU cloud").

Rack positions (and a GPU contract's GPUs) are reserved, first stage, from the planned hand-over of
each tranche to the end of its last renewal under the largest delay of any scenario: the landlord
holds the capacity for the tenant whatever happens. A tranche planned to start after the horizon end
is reserved in the last period too: its racks (or GPUs) must be in place at the end, so the capacity
whose rent the terminal lease NOI counts is built, and paid for, inside the horizon, and it is held
from the end until the tranche's reservation ends (``tranche_months_after``), not free at the end.

Scenarios whose delay and renewal exercise agree share a variant; a lease with one variant has
first-stage cash flows (as before these levers existed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optimizer.kernel import finance
from optimizer.kernel.timeline import Timeline, days_in_month, month_ordinal


@dataclass
class LeaseSchedule:
    """One lease, one hand-over period, one variant, for the whole lease (share 1); arrays [T]."""

    rent_usd: np.ndarray            # rent received monthly (after the prepaid share; renewals weighted)
    prepayment_usd: np.ndarray      # prepayment received
    credit_loss_usd: np.ndarray     # expected rent lost to tenant default (>= 0)
    opex_usd: np.ndarray            # lease opex, all of it
    opex_rate_usd: np.ndarray       # the NOI-margin part of opex (scales with the rate)
    damages_usd: np.ndarray         # delay damages paid (>= 0)
    hours: np.ndarray               # [K, T] hours tranche k runs in the period (x renewal weight)
    active: np.ndarray              # [T] bool: some tranche runs at some time in the period
    terminal_noi_usd: float         # after the horizon, discounted to its end
    terminal_hours_disc: np.ndarray  # [K] hours after the horizon x discount factor (x renewal weight)
    after_weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 0)))  # [K, A] weight tranche k runs in month j+1 after the horizon

    @property
    def rate_usd(self) -> np.ndarray:
        """[T] the rent-proportional money of the period: rent + prepayment - loss (what lease_rate scales)."""
        return self.rent_usd + self.prepayment_usd - self.credit_loss_usd


@dataclass
class LeaseData:
    lease: object
    handover_periods: list[int]            # allowed hand-over periods tau
    months_late: dict[int, int]            # tau -> months past window_end (0 inside the window)
    tranche_mw: np.ndarray                 # [K] critical-IT MW of each tranche
    variant_of: dict[int, np.ndarray] = field(default_factory=dict)           # tau -> [W] scenario -> variant index
    sched: dict[tuple[int, int], LeaseSchedule] = field(default_factory=dict)  # (tau, variant) -> schedule
    reserved: dict[int, np.ndarray] = field(default_factory=dict)             # tau -> [K, T] bool, first stage
    runs_past_horizon: dict[int, bool] = field(default_factory=dict)          # tau -> reserved after the horizon end
    tranche_months_after: dict[int, np.ndarray] = field(default_factory=dict)  # tau -> [K] months each tranche is reserved after the horizon end
    months_after_max: int = 0                  # bound on the months after the horizon end any schedule runs

    @property
    def months_after(self) -> dict[int, int]:
        """tau -> months the lease holds capacity after the horizon end (its longest tranche)."""
        return {tau: int(v.max()) if len(v) else 0 for tau, v in self.tranche_months_after.items()}

    def n_variants(self, tau: int) -> int:
        return int(self.variant_of[tau].max()) + 1

    def varies(self, tau: int) -> bool:
        """True when scenarios see different cash flows for hand-over ``tau`` (delays, holder renewals)."""
        return self.n_variants(tau) > 1

    def schedule(self, tau: int, w: int) -> LeaseSchedule:
        return self.sched[(tau, int(self.variant_of[tau][w]))]

    def _first(self, tau: int) -> LeaseSchedule:
        return self.sched[(tau, int(self.variant_of[tau][0]))]

    def mw_reserved(self, tau: int) -> np.ndarray:
        """[T] critical-IT MW held for the lease (first stage)."""
        return self.tranche_mw @ self.reserved[tau]

    def reserved_any(self, tau: int) -> np.ndarray:
        return self.reserved[tau].any(axis=0)

    def expected(self, tau: int, prob: np.ndarray) -> LeaseSchedule:
        """The probability-weighted schedule (baselines' valuation)."""
        vs = [self.schedule(tau, w) for w in range(len(prob))]

        def mean(attr):
            return sum(p * getattr(s, attr) for p, s in zip(prob, vs))
        return LeaseSchedule(mean("rent_usd"), mean("prepayment_usd"), mean("credit_loss_usd"), mean("opex_usd"),
                             mean("opex_rate_usd"), mean("damages_usd"), mean("hours"),
                             np.any([s.active for s in vs], axis=0), float(mean("terminal_noi_usd")), mean("terminal_hours_disc"))

    # the single-variant view (every scenario's when the lease has one variant; else scenario 0's)
    @property
    def rent_usd(self) -> dict[int, np.ndarray]:
        return {tau: self._first(tau).rent_usd for tau in self.handover_periods}

    @property
    def opex_usd(self) -> dict[int, np.ndarray]:
        return {tau: self._first(tau).opex_usd for tau in self.handover_periods}

    @property
    def active_hours(self) -> dict[int, np.ndarray]:
        """tau -> [T] MW-weighted hours the lease runs (the hours of its one tranche without tranches)."""
        out = {}
        for tau in self.handover_periods:
            h = self._first(tau).hours
            out[tau] = h[0] if len(self.tranche_mw) == 1 else self.tranche_mw @ h / self.tranche_mw.sum()
        return out

    @property
    def active(self) -> dict[int, np.ndarray]:
        """tau -> [T] bool: capacity reserved for the lease in the period."""
        return {tau: self.reserved_any(tau) for tau in self.handover_periods}

    @property
    def terminal_noi_usd(self) -> dict[int, float]:
        return {tau: self._first(tau).terminal_noi_usd for tau in self.handover_periods}

    @property
    def terminal_hours_disc(self) -> dict[int, float]:
        """tau -> discounted hours after the horizon of the single-tranche lease (MW-weighted with tranches)."""
        out = {}
        for tau in self.handover_periods:
            h = self._first(tau).terminal_hours_disc
            out[tau] = float(h[0]) if len(self.tranche_mw) == 1 else float(self.tranche_mw @ h / self.tranche_mw.sum())
        return out


def _period_sum(monthly: np.ndarray, tl: Timeline) -> np.ndarray:
    return monthly.reshape(tl.n_periods, tl.period_months).sum(axis=1)


def lease_delays(lease, delays: np.ndarray) -> np.ndarray:
    """[W] months the lease's hand-over slips in each scenario (0 unless ``delay_exposed``)."""
    return np.asarray(delays, dtype=int) if lease.delay_exposed else np.zeros(len(delays), dtype=int)


def holder_exercise(lease, start_month: int, idx_month, tl: Timeline) -> int:
    """Renewals the tenant takes in ``holder`` mode for a tranche starting in ``start_month``: it
    renews while its renewal rent per kW (escalated rent x (1 + step)^j, relative to the lease's
    rate) is at or below the market rent (the scenario's hpc_lease_rate_index in the month the
    renewal starts; its last horizon month after the horizon), and stops at its first refusal."""
    r = lease.renewals
    n = 0
    for j in range(1, r.count + 1):
        m0 = start_month + lease.term_months + (j - 1) * r.term_months
        own = (1.0 + lease.escalator_per_year) ** np.floor((m0 - start_month) / 12.0) * (1.0 + r.rent_step_share) ** j
        k = min(max(m0 - tl.start, 0), tl.n_months - 1)
        if own <= float(idx_month[k]) + 1e-12:
            n = j
        else:
            break
    return n


def compile_lease(l, tl: Timeline, month_hours: np.ndarray, discount_rate: float, delays: np.ndarray,
                  hpc_idx_monthly: np.ndarray, taus: list[int] | None = None) -> LeaseData:
    """The LeaseData of lease ``l`` (schema ``Lease``): ``delays`` [W] scenario delays in months,
    ``hpc_idx_monthly`` [W, months] the scenarios' HPC lease-rate index by month (holder renewals);
    ``taus``: hand-over periods to compute (default: the lease's allowed ones)."""
    ws, we = month_ordinal(l.window_start), month_ordinal(l.window_end)
    if taus is None:
        last_allowed = tl.end if l.late_penalty_usd_per_mw_month is not None else we
        taus = [t for t in range(tl.n_periods) if ws <= tl.period_start_months[t] <= last_allowed]
        if not taus:  # quarterly periods whose starts skip the window: the period holding window_start
            taus = [max(tl.period_of_month(ws), 0)]
    tranches = l.tranche_list
    mw = np.array([x for x, _ in tranches], dtype=float)
    offs = [o for _, o in tranches]
    W = len(delays)
    d_w = lease_delays(l, delays)
    ren = l.renewals
    out = LeaseData(l, list(taus), {}, mw)
    for tau in taus:
        h0 = int(tl.period_start_months[tau])
        out.months_late[tau] = max(0, h0 - we)
        # variant key per scenario: (delay, renewals exercised per tranche in holder mode)
        keys = []
        for w in range(W):
            d = int(d_w[w])
            ex = ()
            if ren is not None and ren.mode == "holder":
                ex = tuple(holder_exercise(l, h0 + o + d, hpc_idx_monthly[w], tl) for o in offs)
            keys.append((d, ex))
        uniq = list(dict.fromkeys(keys))
        out.variant_of[tau] = np.array([uniq.index(k) for k in keys], dtype=int)
        for v, (d, ex) in enumerate(uniq):
            out.sched[(tau, v)] = _schedule(l, tl, month_hours, discount_rate, h0, d, ex, mw, offs)
        dmax = int(d_w.max()) if W else 0
        out.reserved[tau], out.runs_past_horizon[tau], out.tranche_months_after[tau] = _reserved(l, tl, h0, dmax, offs)
    extra = 0 if ren is None else ren.count * ren.term_months
    out.months_after_max = max(offs) + (int(d_w.max()) if W else 0) + l.term_months + extra
    return out


def _months_needed(l, tl: Timeline, h0: int, d: int, offs: list[int]) -> int:
    ren = l.renewals
    extra = 0 if ren is None else ren.count * ren.term_months
    return max(h0 + o + d + l.term_months + extra for o in offs)


def _reserved(l, tl: Timeline, h0: int, dmax: int, offs: list[int]):
    """[K, T] bool reservation, whether it runs past the horizon end, and [K] months each tranche is
    reserved after the horizon end (counted from the end to its last month, so a tranche planned
    after the end counts its months before its start too; it is reserved in the last period)."""
    months = tl.month_ordinals
    ren = l.renewals
    extra = 0 if ren is None else ren.count * ren.term_months
    out = np.zeros((len(offs), tl.n_periods), dtype=bool)
    after = np.zeros(len(offs), dtype=int)
    for k, o in enumerate(offs):
        a, b = h0 + o, h0 + o + dmax + l.term_months + extra  # [a, b)
        inside = (months >= a) & (months < b)
        out[k] = _period_sum(inside.astype(float), tl) > 0
        after[k] = max(0, b - 1 - tl.end)
        if a > tl.end:   # planned after the horizon end: held from the end (in place in the last period)
            out[k, -1] = True
    return out, bool(after.max() > 0), after


def _schedule(l, tl: Timeline, month_hours: np.ndarray, r: float, h0: int, d: int, exercised: tuple,
              mw: np.ndarray, offs: list[int]) -> LeaseSchedule:
    T, n = tl.n_periods, tl.n_months
    end = _months_needed(l, tl, h0, d, offs)  # first month after every tranche's last renewal
    n_ext = max(n, end - tl.start)           # months from the horizon start to cover the whole lease
    months = tl.start + np.arange(n_ext)
    hours_m = np.concatenate([month_hours, [24.0 * days_in_month(tl.end + int(j)) for j in range(1, n_ext - n + 1)]])
    after = np.arange(n_ext) >= n
    k_after = np.arange(n_ext) - n + 1          # months after the horizon end (>= 1 after it)
    df_after = np.where(after, finance.discount_factors(r, np.maximum(k_after, 0)), 0.0)
    ren, credit = l.renewals, l.credit
    p = l.prepayment_share
    K = len(offs)
    rent_m = np.zeros(n_ext)
    loss_m = np.zeros(n_ext)
    opex_rate_m = np.zeros(n_ext)
    opex_fix_m = np.zeros(n_ext)
    dmg_m = np.zeros(n_ext)
    deferred_m = np.zeros(n_ext)
    hours_k = np.zeros((K, T))
    term_hours = np.zeros(K)
    after_w = np.zeros((K, n_ext - n))
    active = np.zeros(T, dtype=bool)
    prepay_total = 0.0
    survival = None
    if credit is not None:
        pd_ = credit.default_probability
        survival = (1.0 - pd_) ** ((np.arange(n_ext) + 1.0) / 12.0)
    for k, o in enumerate(offs):
        s_k = h0 + o + d
        since = months - s_k
        base = (since >= 0) & (since < l.term_months)
        weight = base.astype(float)
        step = np.ones(n_ext)
        if ren is not None:
            for j in range(1, ren.count + 1):
                in_j = (since >= l.term_months + (j - 1) * ren.term_months) & (since < l.term_months + j * ren.term_months)
                wj = ren.probability ** j if ren.mode == "probability" else (1.0 if j <= exercised[k] else 0.0)
                weight = np.where(in_j, wj, weight)
                step = np.where(in_j, (1.0 + ren.rent_step_share) ** j, step)
        running = weight > 0
        c = finance.lease_rent_usd_month(float(mw[k]), l.rate_usd_per_kw_month, l.escalator_per_year, since) * running
        if ren is not None:
            c = c * step * weight
        prepay_total += float(np.sum(c * base))
        received = c * (1.0 - p) if p > 0 else c
        if p > 0:
            received = np.where(base, received, c)
            deferred_m += np.where(base, p * c, 0.0)
        rent_m += received
        if survival is not None:
            loss_m += received * (1.0 - survival) * (1.0 - credit.covered_share)
        if l.noi_margin is not None:
            opex_rate_m += (1.0 - l.noi_margin) * c
        elif l.opex_usd_per_mw_month is not None:
            opex_fix_m += l.opex_usd_per_mw_month * float(mw[k]) * (weight if ren is not None else running)
        if d > 0 and l.delay_damages_usd_per_mw_month is not None:
            late = (months >= h0 + o) & (months < s_k)
            dmg_m += l.delay_damages_usd_per_mw_month * float(mw[k]) * late
        after_w[k] = (weight if ren is not None else running.astype(float))[n:]
        hw = hours_m * weight if ren is not None else hours_m * running
        hours_k[k] = _period_sum(hw[:n], tl)
        term_hours[k] = float(np.sum((hw * df_after)[n:]))
        active |= _period_sum(running[:n].astype(float), tl) > 0
    prepay = np.zeros(T)
    if p > 0:
        pm = max(h0 - l.prepayment_months_before_handover, tl.start)
        prepay[tl.period_of_month(pm)] = p * prepay_total
    opex_m = opex_rate_m + opex_fix_m
    if l.gpu_option is None:
        noi_after = rent_m - loss_m - opex_m
        terminal = float(np.sum((noi_after * df_after)[n:])) if end - 1 > tl.end else 0.0
    else:
        terminal = -float(np.sum((deferred_m * df_after)[n:]))
        term_hours = np.zeros(K)
    return LeaseSchedule(
        rent_usd=_period_sum(rent_m[:n], tl), prepayment_usd=prepay, credit_loss_usd=_period_sum(loss_m[:n], tl),
        opex_usd=_period_sum(opex_m[:n], tl), opex_rate_usd=_period_sum(opex_rate_m[:n], tl),
        damages_usd=_period_sum(dmg_m[:n], tl), hours=hours_k, active=active,
        terminal_noi_usd=terminal, terminal_hours_disc=term_hours, after_weight=after_w,
    )
