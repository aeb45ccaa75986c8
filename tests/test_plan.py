"""The Plan's tables as the module docstring of optimizer/plan.py specifies them: the columns of
``COLUMNS`` in that order, amounts as float (never -0.0), ``signed`` as bool, text as str, the
index 0..n-1; each plan's tables its own (changing one never changes the frame it came from, or
another plan's)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.plan import COLUMNS, Plan


def test_a_table_in_any_shape_is_normalized():
    # columns out of order, amounts as integers and strings of digits, a site id given as a number
    given = pd.DataFrame({"blocks": [2, "3"], "month": ["2026-03", "2026-07"], "site": [7, "s2"]}, index=[5, 9])
    p = Plan(conversions=given)
    c = p.conversions
    assert list(c.columns) == COLUMNS["conversions"] == ["site", "month", "blocks"]
    assert c["blocks"].dtype == np.float64 and c["blocks"].tolist() == [2.0, 3.0]
    assert c["site"].tolist() == ["7", "s2"] and c["site"].dtype == "str"
    assert list(c.index) == [0, 1]
    assert given["blocks"].tolist() == [2, "3"]  # the caller's frame is not changed


def test_negative_zero_becomes_zero_also_in_a_table_already_in_its_dtypes():
    # float64 amounts, str text, index 0..n-1: the shape a solver's extraction gives; a -0.0 in it
    # (a rounded -1e-13) must still read 0.0, not -0.0 (CSV files would say "-0")
    given = pd.DataFrame({"lease": pd.Series(["L1", "L2"], dtype="str"), "site": pd.Series(["s1", "s1"], dtype="str"),
                          "month": pd.Series(["2026-01", "2026-02"], dtype="str"), "share": [-0.0, 1.0]})
    share = Plan(leases=given).leases["share"].to_numpy()
    assert share.tolist() == [0.0, 1.0]
    assert not np.signbit(share[0])


def test_a_table_already_normalized_is_kept_equal_and_independent():
    given = pd.DataFrame({"instrument": pd.Series(["loan"], dtype="str"), "month": pd.Series(["2027-01"], dtype="str"),
                          "usd": [25e6]})
    p = Plan(debt=given)
    pd.testing.assert_frame_equal(p.debt, given)
    given.loc[0, "usd"] = 1.0  # the caller changes its frame afterwards: the plan keeps 25e6
    assert p.debt["usd"].tolist() == [25e6]
    p.debt.loc[0, "usd"] = 2.0  # and the plan's table changed in place leaves the caller's 1.0
    assert given["usd"].tolist() == [1.0]


def test_rows_kept_from_a_filter_are_renumbered():
    # the right dtypes, but the index of the rows a filter kept (1, 3): renumbered 0, 1
    full = pd.DataFrame({"site": pd.Series(["a", "b", "c", "d"], dtype="str"), "month": pd.Series(["2026-01"] * 4, dtype="str")})
    p = Plan(mining_exits=full[full["site"].isin(["b", "d"])])
    assert list(p.mining_exits.index) == [0, 1] and p.mining_exits["site"].tolist() == ["b", "d"]


def test_empty_tables_have_their_columns_and_dtypes_and_are_each_plans_own():
    a, b = Plan(), Plan()
    for name, cols in COLUMNS.items():
        t = getattr(a, name)
        assert list(t.columns) == cols and len(t) == 0, name
        for c in cols:
            want = np.float64 if c in {"blocks", "units", "share", "delivered_mwh", "used_mwh", "sold_mwh", "btc", "usd", "mw",
                                       "dr_units", "peak_units", "mwh", "ph_s"} else (bool if c == "signed" else "str")
            assert t[c].dtype == want, (name, c)
    a.contracts.loc[0] = ["ppa", True]  # a row added to one plan's empty table...
    assert len(a.contracts) == 1 and len(b.contracts) == 0 and len(Plan().contracts) == 0  # ...is in no other plan
