"""Host least-squares solvers (skimplicit.solvers._host_cd): scikit-learn's coordinate
descent with working sets, the Gram path, per-feature alphas, the certified polish."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import ElasticNet

from skimplicit.solvers import (
    L1,
    L2,
    Direct,
    HostCD,
    LeastSquaresFold,
    Logistic,
    Quadratic,
    enet_cd,
    ridge_dual_solve,
    select_solver,
    solve_enet_host,
    uses_full_gram,
    uses_working_sets,
)


def _data(n, p, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p)
    y = X[:, :5] @ np.array([3.0, -2.0, 1.5, 1.0, -1.0]) + 0.5 * rng.randn(n) + 2.0
    sw = rng.uniform(0.5, 2.0, n)
    return X, y, sw


def _sklearn(X, y, sw, alpha, l1_ratio, positive=False):
    """scikit-learn's weighted ElasticNet with intercept, to 1e-14."""
    return ElasticNet(alpha=alpha, l1_ratio=l1_ratio, positive=positive, tol=1e-14,
                      max_iter=10 ** 6).fit(X, y, sample_weight=sw).coef_


@pytest.mark.parametrize("shape", [(60, 90), (80, 600), (300, 20)])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("fmt", ["dense", "csc"])
def test_enet_cd_matches_sklearn(shape, l1_ratio, fmt):
    """Plain columns, working sets (80 x 600) and the full Gram matrix (300 x 20), dense
    or sparse, against scikit-learn's ElasticNet at a tight tolerance."""
    X, y, sw = _data(*shape)
    fold = LeastSquaresFold(sp.csc_matrix(X) if fmt == "csc" else X, y, sw)
    coef, info = enet_cd(fold, 0.1, l1_ratio, HostCD(max_iter=10 ** 5), tol=1e-13)
    assert info.converged and info.n_iter > 0 and not info.exact
    ref = _sklearn(X, y, sw, 0.1, l1_ratio)
    np.testing.assert_allclose(coef, ref, atol=1e-8 * np.max(np.abs(ref)))


def test_working_sets_equal_plain_descent():
    X, y, sw = _data(80, 600)
    assert uses_working_sets(80, 600)
    fold = LeastSquaresFold(X, y, sw)
    ws, _ = enet_cd(fold, 0.05, 1.0, HostCD(max_iter=10 ** 5), tol=1e-13)
    # The same problem without working sets: scikit-learn on every column.
    plain = _sklearn(X, y, sw, 0.05, 1.0)
    np.testing.assert_allclose(ws, plain, atol=1e-9 * np.max(np.abs(plain)))
    assert np.count_nonzero(ws) == np.count_nonzero(plain)


@pytest.mark.parametrize("alpha,l1_ratio,start", [
    (0.1, 1.0, "cold"),     # a small support: working sets from a cold start
    (0.01, 0.1, "cold"),    # the support grows past a quarter: on all columns from there
    (0.1, 1.0, "dense"),    # a warm start with a large support: on all columns
])
def test_sparse_start_on_square_folds(monkeypatch, alpha, l1_ratio, start):
    """Folds with about as many rows as columns (neither wide nor tall) run the
    working-set descent from a sparse start and the plain one otherwise; either way the
    solution is scikit-learn's."""
    import skimplicit.solvers._host_cd as host_cd

    n, p = 700, 1200
    assert not uses_working_sets(n, p) and not uses_full_gram(n, p)
    X, y, sw = _data(n, p)
    fold = LeastSquaresFold(X, y, sw)
    widths, cd = [], host_cd._sklearn_cd

    def spy(solver, Xw, *args, **kwargs):
        widths.append(Xw.shape[1])
        return cd(solver, Xw, *args, **kwargs)

    monkeypatch.setattr(host_cd, "_sklearn_cd", spy)
    init = None
    if start == "dense":
        init = np.zeros(p)
        init[: p // 4] = 1e-3
    coef, info = enet_cd(fold, alpha, l1_ratio, HostCD(max_iter=10 ** 5), tol=1e-13,
                         init=init)
    assert info.converged
    ref = _sklearn(X, y, sw, alpha, l1_ratio)
    np.testing.assert_allclose(coef, ref, atol=1e-8 * np.max(np.abs(ref)))
    support = np.count_nonzero(ref)
    if start == "dense":
        assert widths == [p]
    elif 8 * support <= 2 * p:
        assert widths and max(widths) < p / 4
    else:
        assert support > p / 4 and widths[0] < p and widths[-1] == p


@pytest.mark.parametrize("l1_ratio,positive", [(1.0, False), (0.3, False), (0.7, True)])
def test_enet_gap_is_scikit_learns(l1_ratio, positive):
    """The working-set descent's stopping test reads scikit-learn's duality gap."""
    from sklearn.linear_model import enet_path

    from skimplicit.solvers._host_cd import _enet_gap

    X, y, _ = _data(80, 600)
    X = np.asfortranarray(X - X.mean(0))
    y = y - y.mean()
    alpha = 0.05
    # one epoch from zero: a solution far from optimal, whose gap scikit-learn reports
    _, coefs, gaps, _ = enet_path(X, y, l1_ratio=l1_ratio, alphas=[alpha], max_iter=1,
                                  tol=1e-300, positive=positive, return_n_iter=True)
    w = coefs[:, 0]
    r = y - X @ w
    gap = _enet_gap(r, y, X.T @ r, w, alpha, l1_ratio, 80, positive)
    assert gap > 1e-3 * float(y @ y)
    np.testing.assert_allclose(gap, gaps[0] * 80, rtol=1e-10)
    # Above alpha_max (zero is the solution, its residual a feasible dual point): 0.
    big = 2 * np.max(np.abs(X.T @ y)) / (80 * l1_ratio)
    _, coefs, gaps, _ = enet_path(X, y, l1_ratio=l1_ratio, alphas=[big], max_iter=1,
                                  tol=1e-300, positive=positive, return_n_iter=True)
    w = coefs[:, 0]
    r = y - X @ w
    np.testing.assert_allclose(_enet_gap(r, y, X.T @ r, w, big, l1_ratio, 80, positive),
                               gaps[0] * 80, rtol=0, atol=1e-12 * float(y @ y))


def test_working_sets_stop_at_scikit_learns_gap(monkeypatch):
    """A working-set round that finds the whole problem within ``tol`` (scikit-learn's
    gap test on all columns) stops there: no last round that does not move."""
    import skimplicit.solvers._host_cd as host_cd

    X, y, sw = _data(80, 600)
    fold = LeastSquaresFold(X, y, sw)
    epochs, cd = [], host_cd._sklearn_cd

    def spy(*args, **kwargs):
        out = cd(*args, **kwargs)
        epochs.append(out[1])
        return out

    monkeypatch.setattr(host_cd, "_sklearn_cd", spy)
    tol = 1e-3  # (at 0.03, the last round before this test found violators that it kept)
    warm, _ = enet_cd(fold, 0.2, 1.0, tol=tol)
    for alpha in (0.15, 0.1, 0.07, 0.05, 0.03):
        epochs.clear()
        coef, info = enet_cd(fold, alpha, 1.0, tol=tol, init=warm)
        assert info.converged and all(e > 0 for e in epochs[1:])
        r = fold.y_fit - fold.X_fit @ coef
        gap = host_cd._enet_gap(r, fold.y_fit, fold.X_fit.T @ r, coef, alpha, 1.0, 80)
        assert gap < tol * float(fold.y_fit @ fold.y_fit)
        warm = coef


def test_working_set_takes_all_violators_after_a_saturated_round(monkeypatch):
    """A round whose working set all (90 %) became active is followed by one with every
    violator (near-ridge lines: most violators become active), not a doubling."""
    import skimplicit.solvers._host_cd as host_cd

    X, y, sw = _data(80, 600)
    fold = LeastSquaresFold(X, y, sw)
    rounds, cd = [], host_cd._sklearn_cd

    def spy(solver, Xw, *args, **kwargs):
        out = cd(solver, Xw, *args, **kwargs)
        rounds.append((Xw.shape[1], np.count_nonzero(out[0])))
        return out

    monkeypatch.setattr(host_cd, "_sklearn_cd", spy)
    coef, info = enet_cd(fold, 0.5, 0.1, HostCD(max_iter=10 ** 5), tol=1e-13)
    (w0, nnz0), (w1, _) = rounds[:2]
    assert w0 == 100 and nnz0 >= 90 and w1 > 2 * w0
    ref = _sklearn(X, y, sw, 0.5, 0.1)
    np.testing.assert_allclose(coef, ref, atol=1e-8 * np.max(np.abs(ref)))


def test_residual_is_kept_and_the_same_as_made_again(monkeypatch):
    """A fold keeps its last residual (a solve's tolerance and its descent's start ask for
    the same one): equal to ``y - X coef``, and a solve gives the same bits with it as
    with every residual made again (folds shared by threads stay deterministic)."""
    X, y, sw = _data(80, 600)
    fold = LeastSquaresFold(X, y, sw)
    coef, _ = enet_cd(fold, 0.1, 1.0, tol=1e-8)
    r = fold.residual(coef)
    np.testing.assert_allclose(r, fold.y_fit - fold.X_fit @ coef, rtol=0, atol=1e-12)
    assert fold.residual(coef.copy()) is r and fold.residual(0.5 * coef) is not r
    made = LeastSquaresFold(X, y, sw)

    def made_again(c):
        made._residual = None
        return LeastSquaresFold.residual(made, c)

    monkeypatch.setattr(made, "residual", made_again)
    for cheap in (False, True):  # (cheap: the descent's solution, not polished)
        kept = solve_enet_host(fold, 0.05, 1.0, tol=1e-6, init=coef, cheap=cheap)[0]
        again = solve_enet_host(made, 0.05, 1.0, tol=1e-6, init=coef, cheap=cheap)[0]
        assert np.array_equal(kept, again)


@pytest.mark.parametrize("shape", [(80, 600), (50, 2000)])  # (X_fit column-, row-major)
@pytest.mark.parametrize("l1_ratio", [0.1, 1.0])
def test_wide_folds_go_on_all_columns_past_half_of_them(monkeypatch, shape, l1_ratio):
    """A wide fold's working-set descent from a warm start goes on all columns once the
    support and the violators pass half of them (a near-ridge line), and stays on working
    sets otherwise; either way the solution is scikit-learn's."""
    import skimplicit.solvers._host_cd as host_cd

    X, y, sw = _data(*shape)
    p = shape[1]
    assert uses_working_sets(*shape)
    fold = LeastSquaresFold(X, y, sw)
    widths, cd = [], host_cd._sklearn_cd

    def spy(solver, Xw, *args, **kwargs):
        widths.append(Xw.shape[1])
        return cd(solver, Xw, *args, **kwargs)

    # (a path's step; the Lasso's violators from 0.5 pass half of the columns too)
    warm, _ = enet_cd(fold, 0.5 if l1_ratio < 1 else 0.15, l1_ratio, tol=1e-8)
    monkeypatch.setattr(host_cd, "_sklearn_cd", spy)
    coef, info = enet_cd(fold, 0.1, l1_ratio, HostCD(max_iter=10 ** 5), tol=1e-13,
                         init=warm)
    assert info.converged
    ref = _sklearn(X, y, sw, 0.1, l1_ratio)
    np.testing.assert_allclose(coef, ref, atol=1e-8 * np.max(np.abs(ref)))
    if l1_ratio < 1:
        assert np.count_nonzero(ref) > shape[0] and widths[-1] == p
    else:
        assert max(widths) < p / 2


@pytest.mark.parametrize("support", [10, 400])  # (a block of G, or all of it)
def test_objective_ratio_from_the_gram_matrix_equals_the_columns(support):
    X, y, sw = _data(4500, 500)
    gram = LeastSquaresFold(X, y, sw, gram_only=True)
    cols = LeastSquaresFold(X, y, sw)
    assert gram.gram_only and not cols.gram_only
    w = np.zeros(500)  # (least squares on the first columns: an objective below 0's)
    w[:support] = 0.9 * np.linalg.lstsq(cols.X_fit[:, :support], cols.y_fit, rcond=None)[0]
    alpha = np.full(500, 0.01)
    ratio = gram.objective_ratio(w, alpha, 0.7)
    assert 0.0 < ratio < 1.0
    np.testing.assert_allclose(ratio, cols.objective_ratio(w, alpha, 0.7), rtol=1e-10)


def test_gram_equals_columns():
    X, y, sw = _data(400, 30)
    assert uses_full_gram(400, 30)
    fold = LeastSquaresFold(X, y, sw)
    g, info_g = enet_cd(fold, 0.05, 0.7, tol=1e-10, gram=True)
    c, info_c = enet_cd(fold, 0.05, 0.7, tol=1e-10, gram=False)
    assert info_g.converged and info_c.converged
    np.testing.assert_allclose(g, c, atol=1e-7 * np.max(np.abs(c)))


@pytest.mark.parametrize("per_feature,positive", [(False, False), (True, False),
                                                   (False, True)])
def test_polish_makes_the_solution_exact(per_feature, positive):
    X, y, sw = _data(60, 90, seed=3)
    fold = LeastSquaresFold(X, y, sw)
    rng = np.random.RandomState(1)
    alpha = 0.15 * rng.uniform(0.5, 2.0, 90) if per_feature else 0.15
    coef, info, cache = solve_enet_host(fold, alpha, 1.0, HostCD(positive=positive),
                                        tol=1e-2)
    assert info.exact and info.converged
    if per_feature:  # a = min alpha; w_j = (a / alpha_j) v_j: a Lasso on rescaled columns
        a = float(np.min(alpha))
        v = _sklearn(X * (a / alpha), y, sw, a, 1.0, positive)
        ref = v * (a / alpha)
    else:
        ref = _sklearn(X, y, sw, alpha, 1.0, positive)
    np.testing.assert_allclose(coef, ref, rtol=1e-9, atol=1e-10 * np.max(np.abs(ref)))
    assert cache[1].size >= np.count_nonzero(ref)
    # From the exact solution at a nearby point, the polish alone (no descent).
    near, info2, _ = solve_enet_host(fold, 1.1 * np.asarray(alpha), 1.0,
                                     HostCD(positive=positive), init=coef, near=True,
                                     gram_cache=cache)
    assert info2.exact and info2.n_iter == 0


def test_descent_from_a_far_warm_start_does_its_work_once(monkeypatch):
    """At a small alpha, a warm start from a larger one passes scikit-learn's gap test
    (relative to ||y||^2) with no epoch; relative to the objective at the warm start
    (``objective_ratio``), the first descent converges and its polish certifies it: one
    descent, one polish, the exact solution (it took a no-op descent, a failed polish, a
    second descent, which stopped unconverged at max_iter, and a second failed polish)."""
    from sklearn.datasets import make_regression
    from sklearn.preprocessing import StandardScaler

    from skimplicit.solvers import _host_cd

    X, y = make_regression(240, 2000, n_informative=50, noise=20, random_state=0)
    X = StandardScaler().fit_transform(X)
    sw = np.ones(240)
    fold = LeastSquaresFold(X, y, sw)
    amax = fold.alpha_max()
    far, info, _ = solve_enet_host(fold, 0.0057 * amax, tol=1e-10)
    alpha = 0.0032 * amax
    assert enet_cd(fold, alpha, tol=1e-4, init=far)[1].n_iter == 0  # the trap
    assert fold.objective_ratio(np.zeros(2000), np.full(2000, alpha), 1.0) == 1.0
    r = fold.objective_ratio(far, np.full(2000, alpha), 1.0)
    yc = y - y.mean()
    obj = 0.5 * np.sum((yc - (X - X.mean(0)) @ far) ** 2) / 240 + alpha * np.abs(far).sum()
    np.testing.assert_allclose(r, obj / (0.5 * yc @ yc / 240), rtol=1e-9)
    assert r < 0.05
    calls = {"cd": 0, "polish": 0}
    orig_cd, orig_polish = _host_cd.enet_cd, LeastSquaresFold.polish
    monkeypatch.setattr(_host_cd, "enet_cd", lambda *a, **k: calls.__setitem__(
        "cd", calls["cd"] + 1) or orig_cd(*a, **k))
    monkeypatch.setattr(LeastSquaresFold, "polish", lambda *a, **k: calls.__setitem__(
        "polish", calls["polish"] + 1) or orig_polish(*a, **k))
    coef, info, _ = solve_enet_host(fold, alpha, tol=1e-4, init=far)
    assert info.exact and info.n_iter > 0
    # (one descent at one tolerance, in max_iter-epoch parts, each polished)
    assert calls["polish"] == calls["cd"] <= _host_cd.FAR_START_BUDGET
    ref = _sklearn(X, y, sw, alpha, 1.0)
    np.testing.assert_allclose(coef, ref, rtol=1e-7, atol=1e-8 * np.max(np.abs(ref)))
    # A cover point (cheap): that descent alone, its converged last part not polished
    # (the unconverged parts are), converged at ``tol`` relative to the objective at its
    # warm start (scikit-learn's gap test, ``gap <= tol ||y||^2``, on the n-scaled
    # objective, times ``objective_ratio``): suboptimal by at most 2 tol times that.
    calls.update(cd=0, polish=0)
    cheap, info, _ = solve_enet_host(fold, alpha, tol=1e-4, init=far, cheap=True)
    assert info.converged and not info.exact and info.n_iter > 0
    assert calls["polish"] == calls["cd"] - 1 < _host_cd.FAR_START_BUDGET
    Xt = X - X.mean(0)
    objective = [0.5 * np.mean((yc - Xt @ w) ** 2) + alpha * np.abs(w).sum()
                 for w in (cheap, coef)]
    assert 0 < objective[0] - objective[1] <= 2e-4 * obj


def test_not_converged_when_max_iter_is_too_small():
    X, y, sw = _data(60, 90)
    # (two nearly equal columns: a few epochs cannot find the support, nor the polish
    # certify one; without them the polish of 5 x 1 epochs' support is already exact)
    X[:, 1] = X[:, 0] + 0.01 * X[:, 2]
    fold = LeastSquaresFold(X, y, sw)
    coef, info = enet_cd(fold, 0.01, 0.5, HostCD(max_iter=1), tol=1e-14)
    assert not info.converged and not info.exact
    coef, info, _ = solve_enet_host(fold, 0.01, 0.5, HostCD(max_iter=1), tol=1e-14)
    assert not info.converged and not info.exact


def test_ridge_dual_solve():
    rng = np.random.RandomState(0)
    X, d, rhs = rng.randn(7, 30), rng.uniform(0.1, 1.0, 30), rng.randn(30)
    x = ridge_dual_solve(X, d, rhs, 7)
    np.testing.assert_allclose(x, np.linalg.solve(X.T @ X / 7 + np.diag(d), rhs),
                               rtol=1e-10)


def test_select_solver_host():
    assert select_solver(Quadratic(), L1(1.0), 10, 10, host=True) == HostCD()
    assert isinstance(select_solver(Quadratic(), L2(1.0), 10, 10, host=True), Direct)
    with pytest.raises(ValueError, match="least-squares"):
        select_solver(Logistic(), L1(1.0), 10, 10, host=True)
