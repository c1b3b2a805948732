"""Tall folds (n >> p) keep only their Gram matrices, all made in one pass over X: the
same problem as folds that keep their columns (issue 17's memory and speed)."""

import numpy as np
import pytest
from sklearn.datasets import make_regression
from sklearn.model_selection import KFold, ShuffleSplit

from skimplicit.linear_model import ImplicitLassoCV
from skimplicit.linear_model._cv_problems import EnetCVProblem
from skimplicit.solvers import fold_train_sums
from skimplicit.solvers._host_cd import columns_first
from skimplicit.tuning import split_folds


@pytest.fixture(scope="module")
def tall():
    X, y = make_regression(6000, 500, n_informative=30, noise=10, random_state=0)
    X = X * 3 + 5  # not standardized: columns with means (cancellation)
    sw = np.random.RandomState(0).uniform(0.5, 2, 6000)
    return X, y, sw


def test_one_pass_grams_equal_the_folds_own(tall):
    X, y, sw = tall
    splits = list(KFold(5, shuffle=True, random_state=0).split(X))
    lazy = EnetCVProblem(split_folds(X, y, sw, splits, lazy=True))
    eager = EnetCVProblem(split_folds(X, y, sw, splits))
    assert all(f.gram_only and f.X_fit is None for f in lazy.folds)
    for a, b in zip(lazy.folds, eager.folds):
        # (the lazy folds made from the sums alone: their means from column sums)
        np.testing.assert_allclose(a.x_mean, b.x_mean, rtol=1e-13)
        np.testing.assert_allclose(a.y_fit, b.y_fit, rtol=1e-13)
        assert np.array_equal(a.X_test, b.X_test) and a.n_train == b.n_train
        np.testing.assert_allclose(a._full_gram, b._full_gram, rtol=0,
                                   atol=1e-13 * np.abs(b._full_gram).max())
        np.testing.assert_allclose(a._full_xty, b._full_xty, rtol=0,
                                   atol=1e-13 * np.abs(b._full_xty).max())
    for point in lazy.initial_points()[::6]:
        e1, e2 = lazy.evaluate(point, precision=0.01), eager.evaluate(point, precision=0.01)
        np.testing.assert_allclose(e1.fold_losses, e2.fold_losses, rtol=1e-10)
        np.testing.assert_allclose(e1.grad["alpha"], e2.grad["alpha"], rtol=1e-8)


@pytest.mark.parametrize("shuffle", [False, True])  # (test rows: ranges, or gathered)
@pytest.mark.parametrize("weighted", [False, True])  # (unit weights: no scaling pass)
def test_fold_train_sums_are_each_training_folds(tall, shuffle, weighted):
    X, y, sw = tall
    X, y, sw = X[:2500], y[:2500], (sw[:2500] if weighted else np.ones(2500))
    splits = list(KFold(5, shuffle=shuffle, random_state=0 if shuffle else None).split(X))
    for (tr, _), (A, b, m) in zip(splits, fold_train_sums(X, y, sw, splits, block=256)):
        Z = (X[tr] - m) * np.sqrt(sw[tr])[:, None]
        np.testing.assert_allclose(A, Z.T @ Z, rtol=0, atol=1e-12 * np.abs(A).max())
        np.testing.assert_allclose(b, Z.T @ (y[tr] * np.sqrt(sw[tr])), rtol=0,
                                   atol=1e-12 * np.abs(b).max())


def test_sums_need_a_partition_of_the_rows(tall):
    X, y, sw = tall
    splits = list(ShuffleSplit(3, test_size=0.2, random_state=0).split(X))
    assert fold_train_sums(X, y, sw, splits) is None
    # The problem then makes each fold's Gram matrix from its own rows.
    lazy = EnetCVProblem(split_folds(X, y, sw, splits, lazy=True))
    eager = EnetCVProblem(split_folds(X, y, sw, splits))
    point = lazy.initial_points()[5]
    np.testing.assert_allclose(lazy.evaluate(point).loss, eager.evaluate(point).loss,
                               rtol=1e-12)


def test_estimator_on_tall_data_matches_lasso_cv_loss(tall):
    X, y, sw = tall
    est = ImplicitLassoCV(cv=KFold(5)).fit(X, y, sample_weight=sw)
    # The chosen point's CV loss, re-scored by scikit-learn on the same folds.
    from sklearn.linear_model import Lasso
    losses = []
    for tr, te in KFold(5).split(X):
        m = Lasso(alpha=est.alpha_, tol=1e-10, max_iter=100000).fit(X[tr], y[tr],
                                                                    sample_weight=sw[tr])
        r = y[te] - m.predict(X[te])
        losses.append(np.average(r * r, weights=sw[te]))
    np.testing.assert_allclose(est.cv_loss_, np.mean(losses), rtol=1e-8)


def test_gram_kernels_take_few_shapes_all_compiled_ahead(tall):
    """The Gram hypergradient kernel pads supports to 256 2^j, then to the largest support
    it takes (min(n_features, n_train / 2)): every size it asks for is one compiled ahead,
    while the coarse path runs."""
    from skimplicit.linear_model._hypergrad import enet_gram_hypergrad

    X, y, sw = tall
    splits = list(KFold(5, shuffle=True, random_state=0).split(X))
    prob = EnetCVProblem(split_folds(X, y, sw, splits, lazy=True))
    assert prob._k0 == 0 or prob._k0 <= prob.K0_MAX_GRAM
    X2 = np.hstack([X, X[:, ::-1] * 0.5 + np.random.RandomState(1).randn(*X.shape)])[:, :900]
    wide = EnetCVProblem(split_folds(X2, y, sw, splits, lazy=True))
    assert wide._k0 == 0 and wide._gram_sizes() == [256, 512, 900]
    for size in (1, 200, 256, 257, 700, 900):
        supports = [np.arange(size)] * 5
        assert wide._kernel_size(supports) in wide._gram_sizes()
    ahead = {key[1][0][0] for key in enet_gram_hypergrad._ahead}
    assert {(5, 256, 256), (5, 512, 512), (5, 900, 900)} <= ahead
    # Few training rows (p > n): one Gram size, the largest the rows allow (n_train / 2).
    Xw = np.random.RandomState(2).randn(500, 2000)
    short = EnetCVProblem(split_folds(Xw, Xw[:, :5].sum(1), np.ones(500),
                                      list(KFold(5).split(Xw))))
    assert short._gram_sizes() == [200]
    assert {short._kernel_size([np.arange(s)] * 5) for s in (1, 64, 97, 200)} == {200}
    assert short._kernel_size([np.arange(201)] * 5) not in short._gram_sizes()


def test_one_prefetch_request_keeps_all_its_sizes(tall, monkeypatch):
    """The sizes of one request (the path's best support, and the size before it) go to
    each kernel in one call, in order, superseding only the other sizes' requests: asked
    for one at a time, each cancelled the one before (then compiled on demand)."""
    from skimplicit.linear_model._hypergrad import enet_gram_hypergrad, enet_support_hypergrad

    X, y, sw = tall
    splits = list(KFold(5, shuffle=True, random_state=0).split(X))
    X2 = np.hstack([X, X[:, ::-1] * 0.5 + np.random.RandomState(1).randn(*X.shape)])[:, :900]
    prob = EnetCVProblem(split_folds(X2, y, sw, splits, lazy=True))
    calls = []

    def recording(kernel):
        def prefetch_all(arg_sets, supersede=False, **kwargs):
            calls.append((kernel, [a[0].shape for a in arg_sets], supersede))
        return prefetch_all

    for kernel in (enet_gram_hypergrad, enet_support_hypergrad):
        monkeypatch.setattr(kernel, "prefetch_all", recording(kernel))
    prob._prefetch_kernel(512, 256, supersede=True)
    assert calls == [(enet_gram_hypergrad, [(5, 512, 512), (5, 256, 256)], True)]
    calls.clear()
    n_train = prob._rows[0]
    assert not prob._uses_gram(n_train)  # (a size past the Gram kernel's: the other one)
    prob._prefetch_kernel(n_train, 512, supersede=True)
    assert calls == [(enet_support_hypergrad, [(5, prob._rows[0], n_train)], True),
                     (enet_gram_hypergrad, [(5, 512, 512)], True)]


@pytest.mark.parametrize("fit_intercept, p", [(True, 1500), (False, 1500), (True, 2000)])
def test_wide_folds_share_one_copy_of_the_rows(fit_intercept, p):
    """Wide folds (working sets) read their training rows from one centered copy of X in
    the test folds' order (two views a fold), not from a copy each: the same fold data
    (means, columns, X^T r) and evaluations as the folds' own copies, with weights,
    shuffled folds and uncentered columns; the copy column-major where
    :func:`columns_first` says so (96 training rows: 1500 columns, not 2000), its
    gathered columns column-major either way, as the coordinate descent reads them."""
    X, y = make_regression(120, p, n_informative=20, noise=5, random_state=0)
    X = X * np.linspace(0.5, 3, p) + 5.0
    sw = np.random.RandomState(1).uniform(0.5, 2, 120)
    splits = list(KFold(5, shuffle=True, random_state=0).split(X))
    kw = dict(fit_intercept=fit_intercept)
    lazy = EnetCVProblem(split_folds(X, y, sw, splits, lazy=True), **kw)
    eager = EnetCVProblem(split_folds(X, y, sw, splits), **kw)
    assert all(f._shared is not None and f.X_fit is None for f in lazy.folds)
    assert all(f._shared is None for f in eager.folds)
    Xc = lazy.folds[0]._shared[0]
    assert all(f._shared[0] is Xc for f in lazy.folds)  # (one copy)
    assert columns_first(96, p) == (p == 1500)
    assert Xc.flags.f_contiguous == columns_first(96, p)
    assert all(f.X_fit.flags.f_contiguous == columns_first(96, p) for f in eager.folds)
    cols = np.array([3, 700, 10, p - 1])
    for a, b in zip(lazy.folds, eager.folds):
        # (the shared fold's rows are in the test folds' order: compared as sets)
        np.testing.assert_allclose(a.x_mean, b.x_mean, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(np.sort(a.y_fit), np.sort(b.y_fit), rtol=1e-12)
        ca, cb = a.train_columns(cols), b.train_columns(cols)
        assert ca.flags.f_contiguous
        perm = np.lexsort(ca.T[::-1])
        np.testing.assert_allclose(ca[perm], cb[np.lexsort(cb.T[::-1])], rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(a.kkt_gradient(a.y_fit), b.kkt_gradient(b.y_fit),
                                   rtol=1e-10, atol=1e-10 * np.abs(b.kkt_gradient(b.y_fit)).max())
        assert a.alpha_max() == pytest.approx(b.alpha_max(), rel=1e-12)
    # Exact (polished) solves, supports well under the 96 training rows: the same
    # losses and hypergradients up to the rows' order in the sums.
    for point in lazy.initial_points()[1:7:2]:
        e1, e2 = lazy.evaluate(point), eager.evaluate(point)
        assert all(e1.info["exact"]) and all(e2.info["exact"])
        np.testing.assert_allclose(e1.fold_losses, e2.fold_losses, rtol=1e-10)
        np.testing.assert_allclose(e1.grad["alpha"], e2.grad["alpha"], rtol=1e-9)
    # Test sets that do not partition the rows: each fold keeps its own copy.
    splits = list(ShuffleSplit(3, test_size=0.2, random_state=0).split(X))
    other = EnetCVProblem(split_folds(X, y, sw, splits, lazy=True), **kw)
    assert all(f._shared is None for f in other.folds)


@pytest.mark.parametrize("shuffle", [False, True])
def test_folds_never_write_in_the_users_rows(shuffle):
    """Unshuffled K-fold rows and the shared wide folds are views of X: a read-only X
    fits (a write would raise) and comes back unchanged, tall and wide."""
    for n, p in [(60, 400), (3000, 800)]:
        X, y = make_regression(n, p, n_informative=10, random_state=0)
        X0 = X.copy()
        X.flags.writeable = False
        ImplicitLassoCV(cv=KFold(5, shuffle=shuffle, random_state=0 if shuffle else None)
                        ).fit(X, y)
        assert np.array_equal(X, X0)


@pytest.mark.parametrize("case", ["lasso", "weights", "enet", "positive"])
def test_refit_from_the_folds_gram_matches_scikit_learns(tall, case, monkeypatch):
    """On dense n >> p data the refit runs on the whole data's Gram matrix (the folds'
    sums give it): the same coefficients, intercept, iterations and duality gap as
    scikit-learn's Lasso / ElasticNet refit on X."""
    from sklearn.linear_model import ElasticNet, Lasso

    import skimplicit.linear_model._coordinate_descent as cd
    from skimplicit.linear_model import ImplicitElasticNetCV

    X, y, sw = tall

    def no_refit_on_x(*args, **kwargs):
        raise AssertionError("the refit read X")

    monkeypatch.setattr(cd, "fit_enet", no_refit_on_x)
    W = sw if case == "weights" else None
    est = (ImplicitElasticNetCV(l1_ratio=0.5) if case == "enet"
           else ImplicitLassoCV(positive=case == "positive")).fit(X, y, sample_weight=W)
    assert not hasattr(est, "_refit_gram")
    ref = (ElasticNet(alpha=est.alpha_, l1_ratio=0.5) if case == "enet"
           else Lasso(alpha=est.alpha_, positive=case == "positive")).fit(X, y,
                                                                          sample_weight=W)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0,
                               atol=1e-12 * np.abs(ref.coef_).max())
    assert est.intercept_ == pytest.approx(ref.intercept_, rel=1e-12, abs=1e-9)
    assert est.n_iter_ == ref.n_iter_
    assert est.dual_gap_ == pytest.approx(ref.dual_gap_, rel=1e-6)


def test_problems_of_an_l1_ratio_list_share_their_folds(tall):
    """The problems of a list of l1_ratio made from the same lazy folds share the
    prepared folds (the folds' sums computed once, one set of Gram matrices), and each
    evaluates as a problem made alone does."""
    X, y, sw = tall
    splits = list(KFold(5).split(X))
    lazy = split_folds(X, y, sw, splits, lazy=True)
    first = EnetCVProblem(lazy, l1_ratio=1.0)
    second = EnetCVProblem(lazy, l1_ratio=0.5)
    assert all(a is b for a, b in zip(first.folds, second.folds))
    assert second.refit_gram is first.refit_gram
    alone = EnetCVProblem(split_folds(X, y, sw, splits, lazy=True), l1_ratio=0.5)
    assert all(a is not b for a, b in zip(second.folds, alone.folds))
    first.evaluate(first.initial_points()[4])  # (its own warm starts only)
    point = second.initial_points()[4]
    e1, e2 = second.evaluate(point), alone.evaluate(point)
    np.testing.assert_array_equal(e1.fold_losses, e2.fold_losses)
    assert e1.grad["alpha"] == e2.grad["alpha"]


@pytest.mark.parametrize("noise", [10.0, 0.0])
def test_cover_losses_from_sums_equal_the_test_rows(tall, noise):
    """Cover points' validation MSE from the sums (the whole data's Gram matrix minus the
    training fold's, k^2 on the support) equals the product with the test rows, with
    weights, shuffled folds and uncentered columns; a nearly exact fit (no noise), where
    the expansion would cancel digits, is computed from the rows."""
    X, _, sw = tall
    rng = np.random.RandomState(1)
    coef_true = np.zeros(X.shape[1])
    coef_true[:40] = rng.randn(40)
    y = X @ coef_true + 3.0 + noise * rng.randn(X.shape[0])
    splits = list(KFold(5, shuffle=True, random_state=0).split(X))
    problem = EnetCVProblem(split_folds(X, y, sw, splits, lazy=True))
    checked = 0
    for f in problem.folds:
        assert f._test_sums is not None
        for support in (np.arange(40), np.arange(0, 500, 7), np.arange(500)):
            coef = np.zeros(X.shape[1])
            coef[support] = coef_true[support] + 0.01 * rng.randn(support.size)
            coef[np.arange(40)] = coef_true[:40]
            S = np.flatnonzero(coef)
            rows = f.validation_mse(coef, S)
            sums = f.cover_mse(coef, S)
            assert sums == pytest.approx(rows, rel=1e-10)
            if noise == 0.0 and S.size == 40:  # (exact coefficients: from the rows)
                assert sums == rows
                checked += 1
    assert checked == (5 if noise == 0.0 else 0)
