"""The enet CV problem's inner machinery: certified polish, Gram cache, working sets,
and the hypergradient kernel compiled ahead of time."""

import jax
import numpy as np
import pytest
from sklearn.linear_model import ElasticNet

from skimplicit.linear_model import _cv_problems as cp
from skimplicit.solvers import _host_cd as host_cd
from skimplicit.solvers import enet_cd, uses_working_sets
from skimplicit.tuning import split_folds
from skimplicit.linear_model._coordinate_descent import fit_enet
from skimplicit.tuning._kernel import Kernel


@pytest.fixture(scope="module")
def fold_data():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 90)
    y = X[:, :6] @ np.array([3.0, -2.0, 1.5, 1.0, -1.0, 0.5]) + rng.randn(60) + 4.0
    sw = rng.uniform(0.5, 2.0, 60)
    tr, te = np.arange(45), np.arange(45, 60)
    return split_folds(X, y, sw, [(tr, te)])[0]


def _reference(d, alpha, l1_ratio, positive=False):
    """scikit-learn's (weighted) ElasticNet with intercept, to 1e-14."""
    coef, *_ = fit_enet(d.X_train, d.y_train, d.sw_train, alpha, l1_ratio, fit_intercept=True,
                        positive=positive, tol=1e-14, max_iter=10 ** 6)
    return coef


@pytest.mark.parametrize("l1_ratio,positive,per_feature", [
    (1.0, False, False), (0.5, False, False), (1.0, True, False), (1.0, False, True)])
def test_polish_turns_a_rough_solution_into_the_exact_one(fold_data, l1_ratio, positive,
                                                          per_feature):
    fold = cp.make_folds([fold_data], fit_intercept=True)[0]
    rng = np.random.RandomState(1)
    alpha = 0.15 * (rng.uniform(0.5, 2.0, 90) if per_feature else np.ones(90))
    ref = _reference(fold_data, alpha if per_feature else alpha[0], l1_ratio, positive)
    # A rough start: scikit-learn at tol 1e-2, then perturbed on its support.
    rough, *_ = fit_enet(fold_data.X_train, fold_data.y_train, fold_data.sw_train,
                         alpha if per_feature else alpha[0], l1_ratio, fit_intercept=True,
                         positive=positive, tol=1e-2, max_iter=3)
    rough = rough * (1 + 0.1 * rng.randn(90))
    assert np.max(np.abs(rough - ref)) > 1e-3
    out, cache = fold.polish(rough, alpha, l1_ratio, positive, fold.empty_gram_cache())
    assert out is not None
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-10 * np.max(np.abs(ref)))
    assert cache[1].size >= np.count_nonzero(ref)  # the Gram columns it used are cached


def test_polish_of_a_support_wider_than_the_training_rows():
    """An elastic net at small l1_ratio on p >> n: the support (here > n_train) is solved
    through Woodbury's identity (an n x n system, no k x k Gram matrix) to the same
    certified optimum, without touching the Gram cache."""
    rng = np.random.RandomState(2)
    X = rng.randn(40, 300)
    y = X[:, :10] @ rng.randn(10) + 0.3 * rng.randn(40)
    d = split_folds(X, y, rng.uniform(0.5, 2.0, 40), [(np.arange(30), np.arange(30, 40))])[0]
    fold = cp.make_folds([d], fit_intercept=True)[0]
    alpha, l1_ratio = 0.02, 0.1
    ref = _reference(d, alpha, l1_ratio)
    assert np.count_nonzero(ref) > fold.n_train
    # Near the optimum (as from the previous outer step): perturbed, 5 active features out.
    rough = ref * (1 + 0.1 * rng.randn(300))
    rough[np.flatnonzero(ref)[:5]] = 0.0
    assert np.max(np.abs(rough - ref)) > 1e-4
    out, cache = fold.polish(rough, np.full(300, alpha), l1_ratio, False,
                             fold.empty_gram_cache())
    assert out is not None
    np.testing.assert_allclose(out, ref, rtol=1e-8, atol=1e-9 * np.max(np.abs(ref)))
    assert cache[1].size == 0


def test_polish_refuses_what_it_cannot_certify(fold_data):
    fold = cp.make_folds([fold_data], fit_intercept=True)[0]
    alpha = np.full(90, 0.15)
    ref = _reference(fold_data, 0.15, 1.0)
    missing = ref.copy()
    missing[np.flatnonzero(ref)[:3]] = 0.0  # three active features left out
    out, _ = fold.polish(missing, alpha, 1.0, False, fold.empty_gram_cache(), max_rounds=1)
    assert out is None  # one round cannot add them and re-solve: no certificate
    out, _ = fold.polish(missing, alpha, 1.0, False, fold.empty_gram_cache())
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)  # more rounds: it can


def test_gram_cache_grows_and_restarts(fold_data, monkeypatch):
    fold = cp.make_folds([fold_data], fit_intercept=True)[0]
    Xf, yf, n = fold.X_fit, fold.y_fit, fold.n_train
    cache = fold.empty_gram_cache()
    for S in (np.array([3, 7, 1]), np.array([1, 2, 3, 40]), np.arange(50, 90)):
        G, c, cache = fold.gram(S, cache)
        np.testing.assert_allclose(G, Xf[:, S].T @ Xf[:, S] / n, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c, Xf[:, S].T @ yf / n, rtol=1e-12, atol=1e-14)
    assert cache[1].size == 45  # 3 + 2 + 40 columns, each computed once
    before = cache
    G, c, cache = fold.gram(np.array([1, 2]), cache)
    assert cache is before  # nothing new: the same snapshot


def test_working_sets_stop_when_descent_meets_tol_at_once(monkeypatch):
    """From an exact solution at a loose tol, coordinate descent does nothing: the
    working-set loop must stop (it used to spin 50 rounds per fold)."""
    rng = np.random.RandomState(0)
    X = rng.randn(80, 600)
    y = X[:, :5] @ np.ones(5) + 0.5 * rng.randn(80)
    folds = split_folds(X, y, np.ones(80), [(np.arange(60), np.arange(60, 80))])
    fold = cp.make_folds(folds, fit_intercept=True)[0]
    assert uses_working_sets(fold.n_train, 600)
    exact = _reference(folds[0], 0.05, 1.0)
    calls = []
    orig = host_cd._sklearn_cd
    monkeypatch.setattr(host_cd, "_sklearn_cd",
                        lambda *a, **k: calls.append(1) or orig(*a, **k))
    enet_cd(fold, 0.05, 1.0, tol=1e-2, init=exact)
    assert len(calls) <= 2


def test_kernel_compiled_ahead_gives_the_same_result():
    def f(x, y, *, power):
        return jax.numpy.sum(x ** power) * y

    k = Kernel(f, static_argnames=("power",))
    x, y = np.arange(6.0).reshape(2, 3), np.float64(2.0)
    with jax.enable_x64(True):
        n0 = k._cache_size()
        k.prefetch(jax.ShapeDtypeStruct((2, 3), np.float64),
                   jax.ShapeDtypeStruct((), np.float64), power=3)
        assert k._cache_size() == n0 + 1
        out = k(x, y, power=3)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, 2.0 * np.sum(x ** 3))
        np.testing.assert_allclose(k(x, y, power=2), 2.0 * np.sum(x ** 2))  # not prefetched
        # Pytree arguments (the sparse folds' (data, indices) pairs).
        g = Kernel(lambda pair, y: jax.numpy.sum(pair[0]) * pair[1] * y)
        g.prefetch((x, np.float64(3.0)), y)
        np.testing.assert_allclose(g((x, np.float64(3.0)), y), 6.0 * np.sum(x))


def test_kernel_prefetch_all_traces_in_the_background_with_the_callers_x64():
    """``prefetch_all`` traces and compiles in the background thread, in the caller's x64
    mode: a later call with those shapes runs that executable (no compilation of its own;
    a float32 trace of float64 shapes had made every call compile again)."""
    k = Kernel(lambda x, y: jax.numpy.sum(x) * y)
    x, y = np.arange(6.0).reshape(2, 3), np.float64(2.0)
    with jax.enable_x64(True):
        k.prefetch_all([(jax.ShapeDtypeStruct((2, 3), np.float64),
                         jax.ShapeDtypeStruct((), np.float64)),
                        (jax.ShapeDtypeStruct((4, 3), np.float64),
                         jax.ShapeDtypeStruct((), np.float64))])
        futures = list(k._ahead.values())
        assert len(futures) == 2  # (neither cancelled the other)
        assert all(f.exception() is None for f in futures)
        out = k(x, y)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, 30.0)
        np.testing.assert_allclose(k(np.ones((4, 3)), y), 24.0)
        assert k._fast._cache_size() + k._plain._cache_size() == 0  # both ran ahead-compiled


def test_kernel_prefetch_all_supersede_cancels_the_other_queued_shapes():
    """``supersede=True`` (the coarse path's guesses of the support size) drops the requests
    still queued for other shapes; a queued request for the guessed shape keeps its place
    (5000 x 1000: the 1000-coordinate kernel queued when the problem was built compiled
    during the descent, unused, on one of the two cores)."""
    import threading

    from skimplicit.tuning._kernel import _executor

    k = Kernel(lambda x: jax.numpy.sum(x))
    st = [(jax.ShapeDtypeStruct((j, 2), np.float64),) for j in (1, 2, 3)]
    gate = threading.Event()
    _executor().submit(gate.wait)  # the compile thread busy: requests stay queued
    try:
        with jax.enable_x64(True):
            k.prefetch_all(st[:2])
            k.prefetch_all(st[1:2], supersede=True)  # already requested: only it stays
            assert [key[1][0][0] for key in k._ahead] == [(2, 2)]
            k.prefetch_all(st[2:], supersede=True)  # a new guess: the queued one goes
            assert [key[1][0][0] for key in k._ahead] == [(3, 2)]
    finally:
        gate.set()
    with jax.enable_x64(True):
        np.testing.assert_allclose(k(np.ones((3, 2))), 6.0)


def test_cover_values_are_the_loss_at_their_own_alpha():
    """Cover points (no gradient, loose tolerance) warm-start from the previous point: a
    warm start that passes the loose duality-gap test unchanged and uncertified must not
    be reported as the solution (it gave a false plateau, 5 % below the true CV MSE)."""
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Lasso
    from sklearn.model_selection import KFold

    X, y = make_regression(n_samples=150, n_features=1500, n_informative=15, noise=20,
                           random_state=0)
    splits = list(KFold(5, shuffle=True, random_state=0).split(X))
    prob = cp.EnetCVProblem(split_folds(X, y, np.ones(150), splits))
    amax = max(f.alpha_max() for f in prob.folds)
    for a in amax * np.logspace(0, -3, 7):
        ev = prob.evaluate({"alpha": a}, with_grad=False)
        ref = np.mean([np.mean((Lasso(alpha=a, tol=1e-12, max_iter=10 ** 5).fit(
            X[tr], y[tr]).predict(X[te]) - y[te]) ** 2) for tr, te in splits])
        np.testing.assert_allclose(ev.loss, ref, rtol=1e-3)


def _far_cover_run(far, alphas, monkeypatch):
    """Cover evaluations at ``alphas`` (relative to alpha_max), in order, on a fresh host
    problem whose ``COVER_FAR`` is ``far``: their losses, and for each point the
    ``first_try`` flag of every fold solve."""
    X, y, splits = _far_cover_data()
    prob = cp.EnetCVProblem(split_folds(X, y, np.ones(200), splits))
    monkeypatch.setattr(prob, "COVER_FAR", far)
    calls, orig = [], cp.solve_enet_host

    def recording(*args, **kwargs):
        calls.append(kwargs.get("first_try", False))
        return orig(*args, **kwargs)

    monkeypatch.setattr(cp, "solve_enet_host", recording)
    losses, tries = [], []
    for a in np.asarray(alphas) * prob.alpha_max_l1:
        calls.clear()
        losses.append(prob.evaluate({"alpha": a}, with_grad=False).loss)
        tries.append(list(calls))
    monkeypatch.setattr(cp, "solve_enet_host", orig)
    _far_cover_run.alpha_max = prob.alpha_max_l1
    return np.array(losses), tries


def _far_cover_data():
    from sklearn.datasets import make_regression
    from sklearn.model_selection import KFold

    X, y = make_regression(n_samples=200, n_features=400, n_informative=20, noise=10,
                           random_state=0)
    return X, y, list(KFold(5, shuffle=True, random_state=0).split(X))


def _exact_cv_mse(alpha):
    from sklearn.linear_model import Lasso

    X, y, splits = _far_cover_data()
    return np.mean([np.mean((Lasso(alpha=alpha, tol=1e-13, max_iter=10 ** 6).fit(
        X[tr], y[tr]).predict(X[te]) - y[te]) ** 2) for tr, te in splits])


def test_far_cover_points_are_solved_loosely_and_rank_below_the_best(monkeypatch):
    """A cover point after one more than COVER_FAR above the cover's best is first solved
    at COVER_FAR_TOL times the tolerance, kept so only when it is far too; every point
    within COVER_FAR of the best has the loss of the usual solve, to the last bit."""
    grid = np.logspace(0, -3, 13)
    loss, tries = _far_cover_run(cp.EnetCVProblem.COVER_FAR, grid, monkeypatch)
    ref, ref_tries = _far_cover_run(np.inf, grid, monkeypatch)
    assert not any(any(t) for t in ref_tries)
    far = 1.0 + cp.EnetCVProblem.COVER_FAR
    best = np.minimum.accumulate(ref)
    # The path's small-alpha end rises beyond COVER_FAR (so that this test means something).
    assert ref[-1] > 1.2 * ref.min()
    expected = [i > 0 and ref[i - 1] > far * best[i - 1] for i in range(len(grid))]
    assert sum(expected) >= 2
    assert [any(t) for t in tries] == expected
    loose = np.array([all(t) for t in tries])  # (a kept first try: no second solve)
    assert loose.any()
    np.testing.assert_array_equal(loss[~loose], ref[~loose])
    np.testing.assert_allclose(loss[loose], ref[loose], rtol=1e-2)
    assert np.all(loss[loose] > far * loss.min())
    # A first try that leaves the warm start as it was (at a tolerance so loose that the
    # previous point's solution passes) is not kept: no false plateau.
    with monkeypatch.context() as m:
        m.setattr(cp.EnetCVProblem, "COVER_FAR_TOL", 1e8)
        stuck, tries = _far_cover_run(cp.EnetCVProblem.COVER_FAR, grid, monkeypatch)
    assert [any(t) for t in tries] == expected
    np.testing.assert_array_equal(stuck, ref)
    # A first try that comes back within COVER_FAR of the best is solved again as usual:
    # the same loss as without first tries.
    # (the best point, the far end, then the best's smaller neighbour, within COVER_FAR)
    b = int(np.argmin(ref))
    assert ref[b + 1] < far * ref[b]
    seq = grid[[b, -1, b + 1]]
    loss, tries = _far_cover_run(cp.EnetCVProblem.COVER_FAR, seq, monkeypatch)
    ref, _ = _far_cover_run(np.inf, seq, monkeypatch)
    assert all(tries[2][:5]) and not any(tries[2][5:]) and len(tries[2]) == 10
    np.testing.assert_array_equal(loss[:2], ref[:2])
    # As accurate as the usual solve (6e-5 from the exact loss here; the first try kept
    # as it was, 6e-4).
    exact = _exact_cv_mse(seq[2] * _far_cover_run.alpha_max)
    assert abs(loss[2] / exact - 1) <= 2 * abs(ref[2] / exact - 1)


def _drive_cover(prob, loss_at):
    """The host cover's points, with ``loss_at(alpha, l1_ratio)`` as each point's loss
    (set where the problem's own evaluation sets it)."""
    points = []
    for p in prob.initial_points():
        points.append((float(p["alpha"]), p["l1_ratio"]))
        prob._last_loss = loss_at(*points[-1])
    return points


@pytest.mark.parametrize("case", ["accelerating", "flattening", "promising", "turned_up"])
def test_further_cover_lines_stop_where_they_cannot_pay(case):
    """With l1_ratio tuned, the lines at 0.5 and 0.1 span at most the first line's decades
    below their own alpha_max / l1_ratio (scikit-learn's grid at each l1_ratio), then go
    on to the interval's lower bound only while an optimistic extrapolation of their loss
    (twice its last drop at each step left) reaches the best loss so far; inside that span
    they stop early only once their fall slows down (past its steepest step) and the
    extrapolation cannot reach the best."""
    from sklearn.model_selection import KFold

    rng = np.random.RandomState(0)
    X = rng.randn(60, 90)
    y = X[:, :6] @ np.array([3.0, -2.0, 1.5, 1.0, -1.0, 0.5]) + rng.randn(60)
    folds = split_folds(X, y, np.ones(60), list(KFold(3).split(X)))
    prob = cp.EnetCVProblem(folds, tune_l1_ratio=True)
    lo = float(prob.hyperparameters[0].lower)
    amax = prob.alpha_max_l1

    def loss_at(alpha, rho):
        if rho == 1.0:
            return 1.0 + (np.log10(alpha / lo) - 1.5) ** 2  # best 1.0, mid-interval
        fall = np.log10(alpha / lo)  # 0 at the lower bound, ~4 at the top of rho = 0.1
        if case == "accelerating":  # falling ever faster, but 100 times above the best
            return 100.0 + fall - 0.01 * fall ** 2
        if case == "flattening":  # falling ever slower, far above the best
            return 100.0 + fall ** 2
        if case == "promising":  # falling towards 0.5 at the lower bound
            return 0.5 + 0.1 * fall
        return 2.0 + (fall - 1.2) ** 2  # its minimum inside the span, then up again

    points = _drive_cover(prob, loss_at)
    first = [a for a, r in points if r == 1.0]
    assert first[0] == pytest.approx(amax) and first[-1] == pytest.approx(lo)
    for rho in (0.5, 0.1):
        line = [a for a, r in points if r == rho]
        assert line == sorted(line, reverse=True) and len(set(line)) == len(line)
        assert line[0] == pytest.approx(amax / rho)
        span_end = lo / rho  # the first line's 3 decades below its own top
        span = [a for a in line if a >= span_end * (1 - 1e-9)]
        below = line[len(span):]
        assert all(a < span_end for a in below)
        if case == "promising":
            assert span[-1] == pytest.approx(span_end)
            assert below and below[-1] == pytest.approx(lo)
        elif case == "flattening":  # its fall slows from the second step: 3 points
            assert len(line) == 3 and not below
        else:
            assert not below
            if case == "accelerating":
                assert span[-1] == pytest.approx(span_end)
