"""Bootstrap intervals over seeds and ranks not distinguishable from their neighbours."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unlearnbench.ranking import bootstrap_ci, distinguishable, rank_methods


def test_bootstrap_ci_brackets_the_mean_and_is_degenerate_for_constants():
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    mean, lo, hi = bootstrap_ci(v)
    assert mean == 3.0 and 1.0 <= lo < 3.0 < hi <= 5.0
    # the bootstrap distribution of the mean of 5 values has sd ~ sd(v, ddof=0) / sqrt(5) = 0.63: the 95 % interval
    # is about +-1.96 of it
    assert hi - lo == pytest.approx(2 * 1.96 * np.std(v) / np.sqrt(5), rel=0.15)
    assert bootstrap_ci([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7, 0.7))
    assert np.isnan(bootstrap_ci([0.5])[1]) and bootstrap_ci([0.5, np.nan])[0] == 0.5


def test_distinguishable():
    assert distinguishable([1.0, 1.1, 0.9, 1.05], [0.0, 0.1, -0.1, 0.05])
    assert not distinguishable([1.0, 0.0, 2.0], [1.1, 0.1, 1.9])
    assert not distinguishable([1.0], [0.0, 0.1])  # one seed: cannot tell


def test_rank_methods_orders_and_marks_ties():
    rows = [("a", s, v) for s, v in enumerate([0.90, 0.91, 0.89, 0.90])]
    rows += [("b", s, v) for s, v in enumerate([0.89, 0.92, 0.88, 0.90])]  # overlaps a
    rows += [("c", s, v) for s, v in enumerate([0.50, 0.51, 0.49, 0.50])]
    df = pd.DataFrame(rows, columns=["method", "seed", "value"])
    t = rank_methods(df)
    assert t["method"].tolist() == ["a", "b", "c"] and t["rank"].tolist() == [1, 2, 3]
    assert t["tied_above"].tolist() == [False, True, False] and t["tied_below"].tolist() == [True, False, False]
    assert t["n"].tolist() == [4, 4, 4]
    low = rank_methods(df, direction="lower")
    assert low["method"].tolist() == ["c", "b", "a"]
    # shuffling the rows changes nothing
    pd.testing.assert_frame_equal(rank_methods(df.sample(frac=1, random_state=0)), t)
