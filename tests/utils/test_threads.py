"""Folds on threads (``n_jobs``): warnings reach the fold that raised them, the caller's
context reaches the workers, and the tuning's result does not depend on the threads."""

import contextvars
import threading
import time
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning

from skimplicit.utils._threads import capture_warnings, map_threads

_VAR = contextvars.ContextVar("_VAR", default=None)


def _fold(i):
    with capture_warnings() as caught:
        time.sleep(0.01 * (i % 3))  # (interleaved with the other threads' warnings)
        if i % 2:
            warnings.warn(f"fold {i}", ConvergenceWarning)
        time.sleep(0.01)
        warnings.warn(f"note {i}", UserWarning)
    return [str(w.message) for w in caught], threading.current_thread().name, _VAR.get()


def test_each_thread_captures_its_own_warnings_and_sees_the_callers_context():
    token = _VAR.set("deadline")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing escapes the captures
            out = map_threads(_fold, range(8), n_jobs=4)
    finally:
        _VAR.reset(token)
    for i, (messages, thread, var) in enumerate(out):
        assert messages == ([f"fold {i}"] if i % 2 else []) + [f"note {i}"]
        assert thread.startswith("skimplicit-fold") and var == "deadline"
    # One thread: in order, in this thread, the same captures.
    seq = map_threads(_fold, range(4), n_jobs=None)
    assert [m for m, _, _ in seq] == [m for m, _, _ in out[:4]]
    assert seq[0][1] == threading.current_thread().name


def test_warnings_outside_a_capture_are_shown_and_errors_raised():
    def warn(i):
        warnings.warn(f"shown {i}", UserWarning)
        if i == 2:
            raise ValueError("fold 2")
        return i

    with pytest.warns(UserWarning, match="shown 0"):
        assert map_threads(warn, [0, 1], n_jobs=2) == [0, 1]
    with pytest.raises(ValueError, match="fold 2"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        map_threads(warn, range(4), n_jobs=2)


@pytest.mark.parametrize("max_iter", [1000, 3])
def test_lasso_on_fold_threads_equals_the_sequential_tuning(max_iter):
    """Bitwise the same tuning with n_jobs=2 (folds on threads): each fold's work is its
    own; with max_iter=3 every fold's descent stops unconverged and says so in each."""
    from skimplicit.linear_model import ImplicitLassoCV

    X, y = make_regression(120, 300, n_informative=10, noise=5, random_state=0)
    fits = []
    for n_jobs in (None, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(ImplicitLassoCV(n_jobs=n_jobs, max_iter=max_iter).fit(X, y))
    a, b = fits
    assert a.alpha_ == b.alpha_ and a.cv_loss_ == b.cv_loss_
    np.testing.assert_array_equal(a.coef_, b.coef_)
    for key in ("alpha", "loss", "converged"):
        assert list(a.history_[key]) == list(b.history_[key])
    if max_iter == 3:
        assert not all(a.history_["converged"])
