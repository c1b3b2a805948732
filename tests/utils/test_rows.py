import numpy as np
import pytest
import scipy.sparse as sp

from skimplicit.linear_model import ImplicitLogisticRegressionCV
from skimplicit.utils import merge_duplicate_rows
from skimplicit.utils._rows import fold_view_grams, fold_views, merge_rows_of, unique_rows


def _data(seed=0, n=12, p=4):
    r = np.random.RandomState(seed)
    X = r.rand(n, p)
    X[:, 0] = r.randint(0, 2, n)  # some equal entries, rows still distinct
    y = r.randint(0, 3, n)
    sw = r.randint(0, 4, n).astype(float)
    return X, y, sw


@pytest.mark.parametrize("sparse", [False, True])
def test_weights_and_repeated_rows_give_the_same_arrays(sparse):
    X, y, sw = _data()
    reps = sw.astype(int)
    Xr, yr = X.repeat(reps, axis=0), y.repeat(reps)
    perm = np.random.RandomState(1).permutation(len(y))
    conv = sp.csr_matrix if sparse else np.asarray
    a = merge_duplicate_rows(conv(X[perm]), y[perm], sw[perm])
    b = merge_duplicate_rows(conv(Xr), yr, np.ones(len(yr)))
    A, B = (a[0].toarray(), b[0].toarray()) if sparse else (a[0], b[0])
    assert np.array_equal(A, B) and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert a[2].sum() == sw.sum() and np.all(a[2] > 0)
    assert len(a[2]) == np.count_nonzero(sw)  # distinct rows: only the zero weights go
    # index: the first original row of each merged row
    np.testing.assert_array_equal((X[perm])[a[3]], A)


def test_equal_rows_merge_and_labels_keep_them_apart():
    X = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [-0.0, 1.0], [0.0, 1.0]])
    y = np.array([0, 0, 1, 2, 2])
    Xm, ym, w, idx = merge_duplicate_rows(X, y, np.array([1.0, 2.0, 0.5, 1.0, 3.0]))
    got = sorted(zip(map(tuple, Xm), ym.tolist(), w.tolist()))
    assert got == [((0.0, 1.0), 2, 4.0), ((1.0, 2.0), 0, 3.0), ((1.0, 2.0), 1, 0.5)]


def test_l1_logistic_weights_equal_repeated_rows_at_a_grown_bound():
    # Separable data, l1: the best C is on the grown bound (~1e7 c_scale), where a
    # solution is determined only to ~1e-5; merged rows make the two fits agree exactly.
    r = np.random.RandomState(0)
    X = r.randn(40, 3)
    y = (X[:, 0] > 0).astype(int)
    X[:, 0] += np.where(y == 1, 0.5, -0.5)
    sw = r.randint(0, 3, 40)
    folds_w = [(np.arange(0, 40, 2), np.arange(1, 40, 2)), (np.arange(1, 40, 2), np.arange(0, 40, 2))]
    Xr, yr = X.repeat(sw, axis=0), y.repeat(sw)
    src = np.repeat(np.arange(40), sw)
    folds_r = [(np.flatnonzero(np.isin(src, tr)), np.flatnonzero(np.isin(src, te)))
               for tr, te in folds_w]
    with pytest.warns(UserWarning, match="upper bound"):
        a = ImplicitLogisticRegressionCV(l1_ratio=1.0, cv=folds_w).fit(X, y, sample_weight=sw)
    with pytest.warns(UserWarning, match="upper bound"):
        b = ImplicitLogisticRegressionCV(l1_ratio=1.0, cv=folds_r).fit(Xr, yr)
    assert a.C_ == b.C_
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))


def test_string_labels():
    X = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [3.0, 4.0]])
    Xm, ym, w, idx = merge_duplicate_rows(X, np.array(["a", "a", "b", "b"]), np.ones(4))
    got = sorted(zip(map(tuple, Xm), ym.tolist(), w.tolist()))
    assert got == [((1.0, 2.0), "a", 2.0), ((1.0, 2.0), "b", 1.0), ((3.0, 4.0), "b", 1.0)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_rows_of_is_merge_duplicate_rows_of_the_subset(seed):
    """Merging a subset of the rows from the whole data set's groups gives the arrays
    merge_duplicate_rows gives on the subset, bit for bit (order, weights summed in the
    same order, -0.0 rows), and ``ids`` rows of ``X[first]`` equal to them."""
    rng = np.random.RandomState(seed)
    base = rng.randint(0, 3, (40, 3)).astype(float)
    base[rng.rand(40) < 0.2, 0] = -0.0
    pick = rng.randint(0, 40, 200)
    X, y = base[pick], rng.randint(0, 2, 40)[pick]
    sw = rng.uniform(0.1, 3.0, 200)
    sw[rng.rand(200) < 0.1] = 0.0
    cw = np.where(y == 1, 0.7, 1.3)
    first, inverse = unique_rows(X, y, sw)
    for rows in (rng.choice(200, 150, replace=False), np.arange(0, 200, 3)):
        for w in (sw, sw * cw):
            ref = merge_duplicate_rows(X[rows], y[rows], w[rows])
            got = merge_rows_of(X, y, w, rows, first, inverse)
            for a, b in zip(got[:4], ref):
                np.testing.assert_array_equal(a, b)
                assert a.dtype == b.dtype
            np.testing.assert_array_equal(X[first][got[4]] + 0.0, got[0] + 0.0)
    with pytest.raises(ValueError, match="groups"):
        merge_rows_of(X, y, np.ones(200), np.arange(200), first, inverse)


def _kfold_data(seed=0):
    """Rows with repeats (each row's copies in one test fold), weights (some 0), and
    K-fold splits of them."""
    rng = np.random.RandomState(seed)
    base = rng.randn(60, 4)
    base[rng.rand(60) < 0.2, 1] = -0.0
    fold = rng.randint(0, 4, 60)
    pick = rng.randint(0, 60, 150)
    X, y = base[pick], rng.randint(0, 3, 60)[pick]
    sw = rng.uniform(0.5, 2.0, 150)
    sw[rng.rand(150) < 0.1] = 0.0
    splits = [(np.flatnonzero(fold[pick] != f), np.flatnonzero(fold[pick] == f))
              for f in range(4)]
    return X, y, sw, splits


def test_fold_views_are_the_merged_folds_as_views_of_one_array():
    """Each fold's views hold merge_rows_of's rows and merged weights (its test part
    bit for bit, its training part up to the rows' order), in (2 - 2 / K) copies of the
    rows, read-only; ``train_ids``/``test_ids`` name their rows of ``X[first]``."""
    X, y, sw, splits = _kfold_data()
    cw = np.where(y == 1, 0.5, 1.5)
    first, inverse = unique_rows(X, y, sw)
    folds, train_ids, test_ids = fold_views(X, y, sw * cw, sw, splits, first, inverse)
    base = folds[0][0].base
    N = first.size
    assert base.shape[0] == 2 * N - test_ids[-1].size - test_ids[-2].size
    assert not base.flags.writeable
    for (Xa, ya, wa, Xb, yb, wb), tr_ids, te_ids, (tr, te) in zip(folds, train_ids, test_ids,
                                                                   splits):
        assert Xa.base is base and Xb.base is base
        ref = merge_rows_of(X, y, sw, te, first, inverse)
        for a, b in zip((Xb + 0.0, yb, wb, te_ids), (ref[0] + 0.0, ref[1], ref[2], ref[4])):
            np.testing.assert_array_equal(a, b)
        ref = merge_rows_of(X, y, sw * cw, tr, first, inverse)
        order = np.argsort(tr_ids)
        np.testing.assert_array_equal(tr_ids[order], ref[4])
        np.testing.assert_array_equal(Xa[order] + 0.0, ref[0] + 0.0)
        np.testing.assert_array_equal(ya[order], ref[1])
        np.testing.assert_array_equal(wa[order], ref[2])
        np.testing.assert_array_equal(X[first][tr_ids], Xa)


def test_fold_views_need_test_sets_that_partition_the_training_rows():
    X, y, sw, splits = _kfold_data()
    first, inverse = unique_rows(X, y, sw)
    assert fold_views(X, y, sw, sw, splits, first, inverse) is not None
    # a row's copies in two test sets
    a, b = splits[0][1][0], splits[1][1][0]
    X2 = X.copy()
    X2[b] = X2[a]
    y2 = y.copy()
    y2[b] = y2[a]
    f2, i2 = unique_rows(X2, y2, np.ones(len(y)))
    assert fold_views(X2, y2, np.ones(len(y)), np.ones(len(y)), splits, f2, i2) is None
    # a training set that is not the other test sets (a row left out of one)
    w = np.ones(len(y))
    f3, i3 = unique_rows(X, y, w)
    tr0 = splits[0][0]
    bad = [(tr0[i3[tr0] != i3[tr0[0]]], splits[0][1])] + splits[1:]
    assert fold_views(X, y, w, w, bad, f3, i3) is None
    # a class weighted 0 in training but tested (training sets short of it)
    cw = np.where(y == 1, 0.0, 1.0)
    assert fold_views(X, y, w * cw, w, splits, f3, i3) is None
    # a single split
    assert fold_views(X, y, w, w, splits[:1], f3, i3) is None


def test_fold_view_grams_are_the_training_folds_gram_matrices():
    """fold_view_grams: fold i's operator is X_i X_i^T of its training view (the rows in
    the view's order), from one N x N matrix; None for folds not in fold_views' order."""
    X, y, sw, splits = _kfold_data()
    first, inverse = unique_rows(X, y, sw)
    folds, train_ids, test_ids = fold_views(X, y, sw, sw, splits, first, inverse)
    grams = fold_view_grams(train_ids, test_ids, [f[3] for f in folds])
    assert len({id(g.G) for g in grams}) == 1 and grams[0].G.shape == (first.size,) * 2
    rng = np.random.RandomState(0)
    for g, f in zip(grams, folds):
        Xa = f[0]
        assert g.shape == (Xa.shape[0],) * 2
        v = rng.randn(Xa.shape[0])
        np.testing.assert_allclose(g @ v, Xa @ (Xa.T @ v), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g.toarray(), Xa @ Xa.T, rtol=1e-12, atol=1e-12)
    # Training ids in another order (sorted, as merge_rows_of gives them): not these folds.
    assert fold_view_grams([np.sort(t) for t in train_ids], test_ids,
                           [f[3] for f in folds]) is None
