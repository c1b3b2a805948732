"""ImplicitLogisticRegressionCV and its tunable problem (LogisticCVProblem)."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skimplicit.linear_model import ImplicitLogisticRegressionCV
from skimplicit.linear_model import _logistic_problem as lp
from skimplicit.solvers import _host_logistic as hl
from skimplicit.tuning import FoldData
from skimplicit.utils._rows import BlockGram
from skimplicit.linear_model._logistic_problem import LogisticCVProblem

# -- scikit-learn's contract (cheap settings, as test_common.py) -------------------------

# Cheap settings, as test_common.py; tol=1e-10 because the sample-weight equivalence
# checks compare predictions at rtol 1e-7 (solutions at the default tol=1e-6 differ by
# ~1e-6 between the weighted and the repeated data; Newton gets to 1e-10 in a step or two).
FAST = dict(cv=3, max_outer_iter=4, tol=1e-10)


@parametrize_with_checks([
    ImplicitLogisticRegressionCV(**FAST),
    ImplicitLogisticRegressionCV(l1_ratio=1.0, **FAST),
    ImplicitLogisticRegressionCV(l1_ratio="tune", **FAST),
])
def test_sklearn_contract(estimator, check):
    check(estimator)


# -- data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def wide():
    """More columns than twice the training rows: the l2 solves in row coordinates."""
    X, y = make_classification(90, 300, n_informative=10, random_state=0)
    return StandardScaler().fit_transform(X), y


def _folds(X, y, sw=None, sw_train=None, k=3):
    sw = np.ones(len(y)) if sw is None else sw
    sw_train = sw if sw_train is None else sw_train
    splits = StratifiedKFold(k, shuffle=True, random_state=0).split(X, y)
    return [FoldData(X[tr], y[tr], sw_train[tr], X[te], y[te], sw[te]) for tr, te in splits]


def _rows_folds(X, y, sw=None, sw_train=None, k=3):
    """The folds and ``rows`` as the estimator builds them (repeated rows merged, every
    fold's rows as rows of the data set's distinct rows)."""
    sw = np.ones(len(y)) if sw is None else sw
    sw_train = sw if sw_train is None else sw_train
    splits = list(StratifiedKFold(k, shuffle=True, random_state=0).split(X, y))
    return ImplicitLogisticRegressionCV._merged_folds(X, y, sw_train, sw, splits)


def _fd(f, x, h):
    """4th-order central differences."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


# -- hypergradients against central finite differences -----------------------------------

CASES = {
    # name: (dataset, l1_ratio, tune l1_ratio, C per class, C, fit_intercept, weights)
    "binary-l2-weights": ("cancer", 0.0, False, False, 0.3, True, True),
    "binary-l2-no-intercept": ("cancer", 0.0, False, False, 0.3, False, False),
    "binary-l1": ("cancer", 1.0, False, False, 0.5, True, False),
    "binary-enet-tuned": ("cancer", 0.5, True, False, 0.5, True, True),
    "multinomial-l2": ("digits", 0.0, False, False, 0.3, True, False),
    "multinomial-l2-per-class": ("digits", 0.0, False, True, 0.3, True, False),
    "multinomial-enet-tuned": ("digits", 0.6, True, False, 0.3, True, False),
    # (with rows: newton_cg_gram's solves, see LogisticCVProblem._solves_in_rows)
    "wide-l2-weights": ("wide", 0.0, False, False, 0.05, True, True),
    "wide-l2-no-intercept": ("wide", 0.0, False, False, 0.05, False, False),
}


# The kernel that reads every fold's rows from one array (``rows``, the estimator's).
ROWS_CASES = ["binary-l2-weights", "binary-l2-no-intercept", "binary-enet-tuned",
              "multinomial-l2-per-class", "wide-l2-weights", "wide-l2-no-intercept"]


@pytest.mark.parametrize("case,rows", [(c, False) for c in CASES]
                         + [(c, True) for c in ROWS_CASES])
def test_hypergradient_matches_finite_differences(case, rows, request):
    name, rho, tune_rho, per_class, C, fit_intercept, weights = CASES[case]
    X, y = request.getfixturevalue(name)
    n_classes = len(np.unique(y))
    sw = swc = None
    if weights:
        sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
        swc = sw * np.where(y == 1, 2.0, 1.0)  # class weights act on the training loss
    folds, shared = _rows_folds(X, y, sw, swc) if rows else (_folds(X, y, sw, swc), None)
    prob = LogisticCVProblem(folds, n_classes=n_classes, l1_ratio=rho,
                             tune_l1_ratio=tune_rho, C_per_class=per_class,
                             fit_intercept=fit_intercept, tol=1e-13, max_iter=2000,
                             rows=shared)
    assert (prob._stacked(None)[-1] == "rows") == rows
    assert prob._solves_in_rows(rho) == (rows and name == "wide")
    K = prob.K
    C = np.linspace(0.5, 1.5, K) * C if per_class else C
    params = {"C": C, "l1_ratio": rho} if tune_rho else {"C": C}
    ev = prob.evaluate(params)
    assert ev.converged
    # (multinomial-enet-tuned: a coefficient leaves the support within 2e-3 in log C)
    h = 1e-5 if case == "multinomial-enet-tuned" else 1e-3
    if per_class:
        d = np.random.RandomState(1).randn(K)
        f = lambda t: prob.evaluate({"C": C * np.exp(t * d)}, with_grad=False).loss  # noqa: E731
        analytic = np.dot(ev.grad["C"] * C, d)
    else:
        def f(t):
            return prob.evaluate({**params, "C": C * np.exp(t)}, with_grad=False).loss
        analytic = ev.grad["C"] * C
    np.testing.assert_allclose(analytic, _fd(f, 0.0, h), rtol=1e-8)
    if tune_rho:
        g = lambda r: prob.evaluate({"C": C, "l1_ratio": r}, with_grad=False).loss  # noqa: E731
        np.testing.assert_allclose(ev.grad["l1_ratio"], _fd(g, rho, h), rtol=1e-8)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_hypergradient_with_moments_preconditioner(cancer, monkeypatch, fit_intercept):
    """The fold solves preconditioned by the folds' moments (hl.uses_cov_precond, here
    forced on small folds): hypergradients against converged central differences."""
    monkeypatch.setattr(hl, "COV_PRECOND_MIN_ENTRIES", 0)
    X, y = cancer
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    prob = LogisticCVProblem(_folds(X, y, sw), n_classes=2, fit_intercept=fit_intercept,
                             tol=1e-13, max_iter=2000)
    C = 0.3
    ev = prob.evaluate({"C": C})
    assert ev.converged and all(c is not None for c in prob._covs)

    def f(t):
        return prob.evaluate({"C": C * np.exp(t)}, with_grad=False).loss

    for h in (1e-3, 3e-4):
        np.testing.assert_allclose(ev.grad["C"] * C, _fd(f, 0.0, h), rtol=1e-8)


@pytest.mark.parametrize("rho", [0.0, 0.5])
@pytest.mark.parametrize("dataset", ["cancer", "digits"])
def test_rows_kernel_is_the_stacked_kernel(dataset, rho, request):
    """Every fold's rows read from one array (``rows``) give the stacked folds' losses
    and hypergradients; a data set with repeated rows, rows of weight 0 and shuffled rows
    gives its weighted twin's kernel arrays and outputs bit for bit."""
    X, y = request.getfixturevalue(dataset)
    sw = np.random.RandomState(0).randint(1, 4, len(y)).astype(float)
    swc = sw * np.where(y == 1, 2.0, 1.0)
    folds, shared = _rows_folds(X, y, sw, swc)
    kw = dict(n_classes=len(np.unique(y)), l1_ratio=rho, tol=1e-10)
    evs = [LogisticCVProblem(folds, rows=r, **kw).evaluate({"C": 0.3}) for r in (None, shared)]
    np.testing.assert_allclose(evs[1].fold_losses, evs[0].fold_losses, rtol=1e-12)
    np.testing.assert_allclose(evs[1].grad["C"], evs[0].grad["C"], rtol=1e-9)
    assert evs[1].info["linear_residual"] < 1e-9

    # The repeated-rows twin: each row repeated sw times (class weights as weights), plus
    # rows of weight 0, shuffled; the splits are the twin's of the same rows.
    rng = np.random.RandomState(1)
    rep = np.repeat(np.arange(len(y)), sw.astype(int))
    extra = rng.choice(len(y), 20)
    idx = np.concatenate([rep, extra])
    w = np.concatenate([np.ones(rep.size), np.zeros(extra.size)])
    perm = rng.permutation(idx.size)
    idx, w = idx[perm], w[perm]
    splits = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    fold_of = np.empty(len(y), int)
    for f, (_, te) in enumerate(splits):
        fold_of[te] = f
    twin_splits = [(np.flatnonzero(fold_of[idx] != f), np.flatnonzero(fold_of[idx] == f))
                   for f in range(3)]
    cw = np.where(y[idx] == 1, 2.0, 1.0)
    folds2, shared2 = ImplicitLogisticRegressionCV._merged_folds(X[idx], y[idx], w * cw, w,
                                                                 twin_splits)
    p1, p2 = (LogisticCVProblem(f, rows=r, **kw) for f, r in
              ((folds, shared), (folds2, shared2)))
    for a, b in zip(p1._stacked(None)[:6], p2._stacked(None)[:6]):
        if a is not None:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    e1, e2 = p1.evaluate({"C": 0.3}), p2.evaluate({"C": 0.3})
    np.testing.assert_array_equal(e1.fold_losses, e2.fold_losses)
    np.testing.assert_array_equal(e1.grad["C"], e2.grad["C"])


@pytest.mark.parametrize("dataset", ["cancer", "digits"])
def test_cv_loss_is_scikit_learns(dataset, request):
    """The problem's loss is LogisticRegression's held-out log-loss at the same C."""
    X, y = request.getfixturevalue(dataset)
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    C = 0.2
    prob = LogisticCVProblem(_folds(X, y, sw), n_classes=len(np.unique(y)), tol=1e-10)
    ev = prob.evaluate({"C": C}, with_grad=False)
    ref = []
    for tr, te in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        est = LogisticRegression(C=C, solver="newton-cg", tol=1e-12, max_iter=1000)
        est.fit(X[tr], y[tr], sw[tr])
        ref.append(log_loss(y[te], est.predict_proba(X[te]), sample_weight=sw[te]))
        if len(ref) == 1:
            W, b = prob._W[0], prob._b[0]
            np.testing.assert_allclose(W.T, est.coef_, rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(b, est.intercept_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ev.fold_losses, ref, rtol=1e-7)


def test_l1_solution_is_scikit_learns(cancer):
    """The l1 inner solver (L-BFGS-B + active-set polish) matches saga and is exact."""
    X, y = cancer
    Y = hl.one_hot(y, 2)
    sw = np.ones(len(y))
    C = 0.1
    W, b, _, ok = hl.fit_logistic(X, Y, sw, 1 / C, 1.0, tol=1e-12)
    assert ok
    assert hl.kkt_violation(W, b, X, Y, sw, 1 / C, 0.0, True) < 1e-12
    ref = LogisticRegression(C=C, l1_ratio=1.0, solver="saga", tol=1e-8, max_iter=20000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref.fit(X, y)
    np.testing.assert_array_equal(W[:, 0] != 0, ref.coef_[0] != 0)
    np.testing.assert_allclose(W[:, 0], ref.coef_[0], atol=2e-4)


# -- the estimator -------------------------------------------------------------------------


def test_matches_logistic_regression_cv(cancer):
    """CV log-loss (re-evaluated by scikit-learn) at least as good as the 20-value grid."""
    X, y = cancer
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    est = ImplicitLogisticRegressionCV(cv=cv, tol=1e-10).fit(X, y)
    grid = LogisticRegressionCV(Cs=20, cv=cv, scoring="neg_log_loss", l1_ratios=[0.0],
                                use_legacy_attributes=False).fit(X, y)

    def cv_loss(C):
        return -cross_val_score(LogisticRegression(C=C, tol=1e-8, max_iter=1000), X, y, cv=cv,
                                scoring="neg_log_loss").mean()

    assert cv_loss(est.C_) <= 1.001 * cv_loss(grid.C_)
    np.testing.assert_allclose(est.cv_loss_, cv_loss(est.C_), rtol=1e-5)
    assert isinstance(est.C_, float) and est.l1_ratio_ == 0.0
    assert est.coef_.shape == (1, X.shape[1]) and est.intercept_.shape == (1,)
    # The refit is scikit-learn's LogisticRegression at C_.
    ref = LogisticRegression(C=est.C_, tol=1e-10, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-5, atol=1e-6)
    for key in ("C", "grad_C", "loss", "time", "phase"):
        assert len(est.history_[key]) == len(est.history_["loss"])


def test_multiclass_string_labels_per_class_and_probabilities(digits):
    X, y = digits
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                       "eight", "nine"])[y]
    est = ImplicitLogisticRegressionCV(cv=3, C_per_class=True, max_outer_iter=5).fit(X, labels)
    assert est.C_.shape == (10,)
    assert est.coef_.shape == (10, X.shape[1]) and est.intercept_.shape == (10,)
    np.testing.assert_allclose(est.intercept_.mean(), 0.0, atol=1e-8)  # symmetric
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba), atol=1e-10)
    assert set(est.predict(X)) <= set(labels)
    assert np.mean(est.predict(X) == labels) > 0.9  # (score: scoring's neg_log_loss)
    with pytest.raises(ValueError, match="at least 3 classes"):
        ImplicitLogisticRegressionCV(C_per_class=True).fit(X, y % 2)


def test_tuned_l1_ratio_sparse_float32_and_weights(cancer):
    X, y = cancer
    X = X[:, :12]
    est = ImplicitLogisticRegressionCV(cv=3, l1_ratio="tune", max_outer_iter=8).fit(X, y)
    assert 0.05 <= est.l1_ratio_ <= 1.0
    assert "grad_l1_ratio" in est.history_
    # Sparse and float32 input give the same model.
    Xs = sp.csr_matrix(np.where(np.abs(X) > 1, X, 0.0))
    Xd = Xs.toarray()
    a = ImplicitLogisticRegressionCV(cv=3, l1_ratio=1.0, C_init=0.5, max_outer_iter=3)
    b = clone(a)
    a.fit(Xs, y)
    b.fit(Xd.astype(np.float32), y)
    assert a.C_ == pytest.approx(b.C_, rel=1e-4)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-3, atol=1e-5)
    # Zero sample weights remove samples.
    sw = np.ones(len(y))
    sw[::7] = 0
    cv = [(tr, te) for tr, te in StratifiedKFold(3).split(X, y)]
    keep = sw > 0
    new_index = np.cumsum(keep) - 1
    cv_kept = [(new_index[tr[keep[tr]]], new_index[te[keep[te]]]) for tr, te in cv]
    c = ImplicitLogisticRegressionCV(cv=cv, C_init=0.3, max_outer_iter=3).fit(X, y, sw)
    d = ImplicitLogisticRegressionCV(cv=cv_kept, C_init=0.3, max_outer_iter=3).fit(X[keep], y[keep])
    np.testing.assert_allclose(c.C_, d.C_, rtol=1e-6)
    np.testing.assert_allclose(c.coef_, d.coef_, rtol=1e-6, atol=1e-9)


def test_pipeline_pickle_and_parallel_cross_val_score(cancer):
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), ImplicitLogisticRegressionCV(cv=3, max_outer_iter=4))
    pipe.fit(X, y)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(again.predict_proba(X), pipe.predict_proba(X))
    scores = cross_val_score(clone(pipe), X, y, cv=2, n_jobs=2, scoring="accuracy")
    assert np.all(scores > 0.9)


def test_few_compilations_per_fit():
    """Bucketed shapes: one kernel compilation per fit, none when refitting the same shape."""
    X, y = make_classification(n_samples=301, n_features=23, random_state=1)
    kernel = lp.logistic_hypergrad
    n0 = kernel._cache_size()
    ImplicitLogisticRegressionCV(cv=5).fit(X, y)
    n1 = kernel._cache_size()
    assert n1 - n0 <= 2
    ImplicitLogisticRegressionCV(cv=5).fit(X[:298], y[:298])  # same buckets
    assert kernel._cache_size() == n1


# -- bad input -----------------------------------------------------------------------------


def test_bad_input(cancer):
    X, y = cancer
    X, y = X[:60], y[:60]
    est = ImplicitLogisticRegressionCV(cv=3)
    with pytest.raises(ValueError, match="class"):
        est.fit(X, np.zeros(len(y)))
    # A class absent from a training fold: scored as LogisticRegressionCV scores it (a
    # grid of Cs; the fold with every class gives scikit-learn's scores where its lbfgs
    # at tol 1e-4 is accurate: C <= 1, the larger Cs fit 30 separable rows).
    y3 = y.copy()
    y3[:2] = 2
    cv = [(np.arange(2, 60), np.arange(0, 30)), (np.arange(0, 30), np.arange(30, 60))]
    Xs = (X - X.mean(0)) / X.std(0)
    ours = ImplicitLogisticRegressionCV(cv=cv, Cs=5).fit(Xs, y3)
    theirs = LogisticRegressionCV(cv=cv, Cs=5, scoring="neg_log_loss",
                                  use_legacy_attributes=False).fit(Xs, y3)
    np.testing.assert_allclose(ours.scores_[1, :, :3], theirs.scores_[1, :, :3], rtol=2e-3)
    assert np.all(np.isfinite(ours.scores_)) and np.all(ours.scores_[0] <= theirs.scores_[0])
    assert ours.C_ == theirs.C_
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(Xn, y)
    Xi = X.copy()
    Xi[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        est.fit(Xi, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est.fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        est.fit(X, np.linspace(0, 1, len(y)))
    with pytest.raises(ValueError, match="l1_ratio_bounds"):
        ImplicitLogisticRegressionCV(l1_ratio="tune", l1_ratio_bounds=(0.5, 0.1)).fit(X, y)
    fitted = ImplicitLogisticRegressionCV(cv=3, max_outer_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :5])


def test_convergence_warning(cancer):
    X, y = cancer
    with pytest.warns(ConvergenceWarning):
        ImplicitLogisticRegressionCV(cv=3, max_iter=1, max_outer_iter=2).fit(X, y)


@pytest.mark.parametrize("l1_ratio", [0.0, 1.0])
def test_large_sparse_folds(l1_ratio):
    """TF-IDF-like input: sparse folds stay sparse (BCOO kernel for l2; the l1 support
    is gathered), with the same loss and hypergradient as dense folds."""
    rng = np.random.RandomState(0)
    X = sp.random(360, 3000, density=0.01, format="csr", random_state=rng)
    X.data = np.abs(X.data)
    w = np.zeros(3000)
    w[:40] = 30 * rng.randn(40)
    y = (X @ w + 0.3 * rng.randn(360) > 0).astype(int)
    C = 3.0 if l1_ratio == 0 else 5.0
    # l1: the active-set polish makes the solutions exact beyond a tolerance of 1e-9.
    tol = 1e-12 if l1_ratio == 0 else 1e-9
    probs = [LogisticCVProblem(_folds(Xf, y), n_classes=2, l1_ratio=l1_ratio, tol=tol)
             for Xf in (X, X.toarray())]
    assert sp.issparse(probs[0].X[0]) and not sp.issparse(probs[1].X[0])
    evs = [p.evaluate({"C": C}) for p in probs]
    assert evs[0].converged and 0 < evs[0].info["support_size"][0] < 3000
    np.testing.assert_allclose(evs[0].loss, evs[1].loss, rtol=1e-10)
    np.testing.assert_allclose(evs[0].grad["C"], evs[1].grad["C"], rtol=1e-7)
    f = lambda t: probs[0].evaluate({"C": C * np.exp(t)}, with_grad=False).loss  # noqa: E731
    fd2 = (f(1e-5) - f(-1e-5)) / 2e-5  # (2nd order, as this test always used)
    np.testing.assert_allclose(evs[0].grad["C"] * C, fd2, rtol=1e-6)


def test_metadata_routing(cancer):
    """sample_weight routed to fit and score, groups to a group splitter."""
    from sklearn import config_context
    from sklearn.model_selection import GroupKFold, cross_validate

    X, y = cancer
    X, y = X[:200], y[:200]
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    groups = np.arange(len(y)) % 4
    with config_context(enable_metadata_routing=True):
        est = ImplicitLogisticRegressionCV(cv=GroupKFold(4), max_outer_iter=3)
        est.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        out = cross_validate(est, X, y, cv=2, params={"sample_weight": sw, "groups": groups})
        # score() is scoring's held-out neg_log_loss (LogisticRegressionCV's meaning).
        assert np.all(out["test_score"] > -0.3)
        # groups reach the inner splitter: GroupKFold without them fails.
        with pytest.raises(ValueError, match="groups"):
            ImplicitLogisticRegressionCV(cv=GroupKFold(4)).fit(X, y)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("K", [1, 4])
def test_stationarity_is_the_objectives_gradient(K):
    """The written-out residual of the kernel is optimality.stationary of the training
    objective on the support (and the identity off it)."""
    import jax
    import jax.numpy as jnp

    from skimplicit.implicit import optimality

    rng = np.random.RandomState(0)
    X, W, b = rng.randn(30, 6), rng.randn(6, K), rng.randn(K)
    W[2] = 0.0
    Y = hl.one_hot(rng.randint(0, max(K, 2), 30), max(K, 2))
    sw, alpha, rho = rng.uniform(0.5, 2, 30), rng.uniform(0.5, 2, K), 0.3

    def objective(theta):
        Wt, bt = theta
        Z = X @ Wt + bt
        li = (jnp.logaddexp(0.0, Z[:, 0]) - Y[:, 0] * Z[:, 0] if K == 1
              else jax.nn.logsumexp(Z, axis=1) - jnp.sum(Y * Z, axis=1))
        pen = alpha * (rho * jnp.abs(Wt) + 0.5 * (1 - rho) * Wt ** 2)
        return jnp.sum(sw * li) + jnp.sum(pen)

    gW, gb = optimality.stationary(objective)((W, b))
    FW, Fb = lp._stationarity((W, b), (alpha, rho), X, Y, sw, jnp.mean(b), binary=K == 1,
                              fit_intercept=True)
    on = W != 0
    np.testing.assert_allclose(np.asarray(FW)[on], np.asarray(gW)[on], rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(FW)[~on], W[~on])
    np.testing.assert_allclose(Fb, gb, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("K", [3, 4])
@pytest.mark.parametrize("l1, l2", [(0.0, 1.0), (1.0, 0.0), (0.7, 0.3), (0.05, 2.0)])
def test_center_classes_is_the_penalty_minimum_along_the_free_direction(K, l1, l2):
    """Each feature's shift is the minimizer of the elastic-net penalty of W_j - s (closed
    forms: the mean for l2, the median for l1; otherwise a fine 1-D scan); the
    multinomial loss does not change and the objective does not increase."""
    rng = np.random.RandomState(K)
    X, W, b = rng.randn(40, 5), 3 * rng.randn(5, K), rng.randn(K)
    W[1, :2] = 0.0
    Y = hl.one_hot(rng.randint(0, K, 40), K)
    sw = rng.uniform(0.5, 2, 40)
    Wc, bc = hl._center_classes(W, b, l1, l2)
    shift = (W - Wc)[:, 0]
    np.testing.assert_allclose(W - Wc, np.repeat(shift[:, None], K, axis=1), atol=1e-12)
    np.testing.assert_allclose(bc.mean(), 0.0, atol=1e-12)

    def pen(V):
        return l1 * np.abs(V).sum(axis=-1) + 0.5 * l2 * (V ** 2).sum(axis=-1)

    if l1 == 0.0:
        np.testing.assert_allclose(shift, W.mean(axis=1), rtol=1e-12)
    elif l2 == 0.0:
        np.testing.assert_allclose(shift, np.median(W, axis=1), rtol=1e-12)
    for j in range(W.shape[0]):
        grid = shift[j] + np.linspace(-1, 1, 20001)
        values = pen(W[j][None, :] - grid[:, None])
        assert pen(Wc[j]) <= values.min() + 1e-12
    loss = hl._loss_grad(W, b, X, Y, sw, True)[0]
    loss_c = hl._loss_grad(Wc, bc, X, Y, sw, True)[0]
    np.testing.assert_allclose(loss_c, loss, rtol=1e-12)
    assert pen(Wc).sum() <= pen(W).sum() + 1e-12



def test_row_coordinate_solves_give_the_column_solves_fit(wide, monkeypatch):
    """Wide binary l2 data (p >= 2 n): the fit whose fold solves work in row coordinates
    (LogisticCVProblem._solves_in_rows) is the fit of the column solver: the same C,
    CV losses and model; columns of mixed scales keep the column solver."""
    X, y = wide
    calls = []
    orig = lp.newton_cg_gram
    monkeypatch.setattr(lp, "newton_cg_gram", lambda *a, **k: calls.append(1) or orig(*a, **k))
    rows = ImplicitLogisticRegressionCV(cv=3).fit(X, y)
    assert calls
    calls.clear()
    monkeypatch.setattr(LogisticCVProblem, "ROW_SOLVE_MAX_SCALE_RATIO", 0.0)
    cols = ImplicitLogisticRegressionCV(cv=3).fit(X, y)
    assert not calls
    np.testing.assert_allclose(rows.C_, cols.C_, rtol=1e-6)
    # (the best point here is a cover point: both solved at the inner tolerance 1e-6 by
    # different iterations, their losses agree to its order, 1.2e-7 measured)
    np.testing.assert_allclose(rows.tuning_result_.best_loss, cols.tuning_result_.best_loss,
                               rtol=1e-6)
    np.testing.assert_allclose(rows.coef_, cols.coef_, rtol=1e-5, atol=1e-8)
    monkeypatch.setattr(LogisticCVProblem, "ROW_SOLVE_MAX_SCALE_RATIO", 4.0)
    ImplicitLogisticRegressionCV(cv=3).fit(X * np.logspace(-1, 1, X.shape[1]), y)
    assert not calls


def _far_path_run(monkeypatch, far_tol, far=None):
    """The host path of a binary l2 problem whose large-C end overfits, every point
    evaluated in order: its losses and each point's fold-solve tolerances."""
    X, y = make_classification(300, 120, n_informative=5, random_state=0)
    prob = LogisticCVProblem(_folds(StandardScaler().fit_transform(X), y), n_classes=2)
    if far is not None:
        monkeypatch.setattr(prob, "COVER_FAR", far)
    monkeypatch.setattr(prob, "FAR_TOL", far_tol)
    monkeypatch.setattr(prob, "FAR_TOL_FACTOR", np.inf)
    tols, solve = [], prob._solve

    def recording(i, alpha, rho, tol, polish=True):
        tols.append(tol)
        return solve(i, alpha, rho, tol, polish)

    monkeypatch.setattr(prob, "_solve", recording)
    losses, per_point = [], []
    for p in prob.initial_points():
        tols.clear()
        losses.append(prob.evaluate(p, with_grad=False).loss)
        per_point.append(list(tols))
    return np.array(losses), per_point


def test_far_path_points_are_solved_loosely_and_rank_below_the_best(monkeypatch):
    """A path point after one more than COVER_FAR above the path's best is first solved
    at a looser tolerance, kept so only when it is far too and every fold's solve moved
    and converged; every other point has the loss of the usual solve, to the last bit."""
    assert LogisticCVProblem.FAR_TOL_FACTOR * 1e-6 == pytest.approx(LogisticCVProblem.FAR_TOL)
    far_tol = LogisticCVProblem.FAR_TOL  # (the first try's at the default tol)
    ref, ref_tols = _far_path_run(monkeypatch, far_tol, far=np.inf)
    assert far_tol not in {t for ts in ref_tols for t in ts}
    far = 1.0 + LogisticCVProblem.COVER_FAR
    best = np.minimum.accumulate(ref)
    expected = [i > 0 and ref[i - 1] > far * best[i - 1] for i in range(len(ref))]
    assert sum(expected) >= 2  # (the data's large-C end rises beyond COVER_FAR)
    loss, tols = _far_path_run(monkeypatch, far_tol)
    assert [far_tol in ts for ts in tols] == expected
    kept = np.array([bool(ts) and set(ts) == {far_tol} for ts in tols])
    assert kept.any()
    np.testing.assert_array_equal(loss[~kept], ref[~kept])
    np.testing.assert_allclose(loss[kept], ref[kept], rtol=1e-2)
    assert np.all(loss[kept] > far * loss.min())
    # A first try that does not move (at a tolerance its warm start passes) is not kept.
    stuck, tols = _far_path_run(monkeypatch, 1e8)
    assert [1e8 in ts for ts in tols] == expected
    np.testing.assert_array_equal(stuck, ref)


@pytest.mark.parametrize("dataset", ["cancer", "wide"])
def test_folds_as_views_are_the_copied_folds(dataset, request, monkeypatch):
    """K-fold folds read as views of one array (``fold_views``: the training rows in
    another order) give the copied folds' losses and hypergradients."""
    import skimplicit.linear_model._logistic as lg

    X, y = request.getfixturevalue(dataset)
    sw = np.random.RandomState(0).randint(1, 4, len(y)).astype(float)
    views, rows_v = _rows_folds(X, y, sw)
    assert all(np.shares_memory(views[0].X_train, f.X_test) for f in views[1:])
    monkeypatch.setattr(lg, "fold_views", lambda *a: None)
    copies, rows_c = _rows_folds(X, y, sw)
    assert not np.shares_memory(copies[0].X_train, copies[1].X_test)
    kw = dict(n_classes=2, tol=1e-10)
    probs = [LogisticCVProblem(f, rows=r, **kw) for f, r in
             ((views, rows_v), (copies, rows_c))]
    evs = [prob.evaluate({"C": 0.05}) for prob in probs]
    np.testing.assert_allclose(evs[0].fold_losses, evs[1].fold_losses, rtol=1e-10)
    np.testing.assert_allclose(evs[0].grad["C"], evs[1].grad["C"], rtol=1e-8)
    # The wide folds' row solves: the views' Gram matrices are operators on one matrix
    # (fold_view_grams), equal to the copied folds' own.
    if dataset == "wide":
        assert all(isinstance(g, BlockGram) for g in probs[0]._fold_grams)
        for i, (g, c) in enumerate(zip(probs[0]._fold_grams, probs[1]._fold_grams)):
            assert isinstance(c, np.ndarray)
            ids_v, ids_c = rows_v[3][i], rows_c[3][i]  # (the copies' in sorted order)
            order = np.searchsorted(ids_c, ids_v)
            np.testing.assert_array_equal(ids_c[order], ids_v)
            np.testing.assert_allclose(g.toarray(), c[np.ix_(order, order)], rtol=1e-12,
                                       atol=1e-12 * np.abs(c).max())


def test_rows_kernel_reads_its_data_in_place(monkeypatch):
    """The rows kernel's X (every distinct row once, padded) is handed to JAX without a
    copy on the CPU (a 64-byte aligned buffer, aligned_zeros), with the values of an
    ordinary copy."""
    import jax

    from skimplicit.tuning._kernel import aligned_zeros

    made = []

    def recorded(shape):
        made.append(aligned_zeros(shape))
        return made[-1]

    monkeypatch.setattr(lp, "aligned_zeros", recorded)
    X, y = make_classification(60, 200, n_informative=5, random_state=0)
    folds, rows = _rows_folds(X, y)
    prob = LogisticCVProblem(folds, n_classes=2, rows=rows)
    Xs = prob._stacked(None)[0]
    assert len(made) == 1
    assert np.shares_memory(np.asarray(Xs), made[0]) == (jax.default_backend() == "cpu")
    np.testing.assert_array_equal(np.asarray(Xs)[:len(rows[2]), :200],
                                  X[rows[2]] / prob.x_unit)
