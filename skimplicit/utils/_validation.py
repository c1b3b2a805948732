"""Input checks shared by every estimator and by HypergradSearchCV.

One place for the checks whose answer must not depend on the entry point: sample weights
(negative, NaN/inf, all zero, a CV fold whose training or test weights sum to zero) and
the regression target (constant ``y``). Nothing here imports ``linear_model`` or
``model_selection``: both import this module.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["check_sample_weight", "check_fold_weights", "check_fold_classes",
           "is_constant_target", "nothing_to_tune"]


def check_sample_weight(sample_weight, n_samples, *, name="sample_weight"):
    """Validate sample weights: a float64 array of shape ``(n_samples,)``.

    ``None`` gives ones; a scalar is broadcast. Raises a ``ValueError`` naming ``name``
    for a wrong shape, a non-numeric dtype, NaN or infinite values, negative values, or
    weights that are all zero.

    Parameters
    ----------
    sample_weight : None, float or array-like of shape (n_samples,)
    n_samples : int
    name : str, default="sample_weight"
        How the weights are named in error messages.

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,), float64

    Examples
    --------
    >>> from skimplicit.utils import check_sample_weight
    >>> check_sample_weight(None, 3)
    array([1., 1., 1.])
    >>> check_sample_weight([1.0, -2.0, 1.0], 3)
    Traceback (most recent call last):
    ...
    ValueError: sample_weight must be non-negative; got 1 negative value(s) (the first at index 1: -2.0).
    """
    if sample_weight is None:
        return np.ones(n_samples)
    arr = np.asarray(sample_weight)
    if arr.ndim == 0 and arr.dtype.kind in "biuf":
        arr = np.full(n_samples, arr, dtype=np.float64)
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must be an array of real numbers; got dtype {arr.dtype}."
        )
    arr = arr.astype(np.float64)
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} must have shape ({n_samples},) (one weight per sample); got shape "
            f"{arr.shape}."
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must be finite; got {int(bad.sum())} NaN or infinite value(s) (the "
            f"first at index {i}: {arr[i]})."
        )
    neg = arr < 0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise ValueError(
            f"{name} must be non-negative; got {int(neg.sum())} negative value(s) (the "
            f"first at index {i}: {arr[i]})."
        )
    if not arr.sum() > 0:
        raise ValueError(f"{name} is zero for every sample: there is nothing to fit.")
    return arr


def check_fold_weights(splits, sample_weight, test_weight=None, *,
                       name="sample_weight"):
    """Check that every CV fold has training and test weights of positive sum.

    A training fold of zero total weight has no model; a test fold of zero total weight
    has no validation loss. Raises a ``ValueError`` naming the weights and the fold.

    Parameters
    ----------
    splits : list of (train, test) index arrays
    sample_weight : ndarray of shape (n_samples,)
        The (validated) training weights.
    test_weight : ndarray of shape (n_samples,) or None
        The weights of the validation loss; ``None``: ``sample_weight``.
    name : str, default="sample_weight"
    """
    test_weight = sample_weight if test_weight is None else test_weight
    for i, (train, test) in enumerate(splits):
        for part, idx, w in (("training", train, sample_weight), ("test", test, test_weight)):
            if not np.sum(w[idx]) > 0:
                raise ValueError(
                    f"The {name} of the {part} part of CV fold {i} sums to zero "
                    f"({len(idx)} samples, all of zero weight): this fold has no "
                    f"{'model' if part == 'training' else 'validation loss'}. Give these "
                    "samples positive weights or use another splitter (e.g. shuffle=True)."
                )


def is_constant_target(y, sample_weight=None):
    """Whether ``y`` (each column) takes one value on the samples of positive weight.

    Then every penalty gives the same fitted model, a constant (the weighted mean of
    ``y``): there is nothing to tune.

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.utils import is_constant_target
    >>> is_constant_target(np.array([2.0, 2.0, 5.0]), np.array([1.0, 1.0, 0.0]))
    True
    """
    y = np.asarray(y)
    if sample_weight is not None:
        y = y[np.asarray(sample_weight) > 0]
    return bool(np.all(y == y[:1]))  # (also for labels: no arithmetic on y)


def check_fold_classes(y_train, sw_train, classes, where, *, labels=None):
    """Check that every class has samples of positive weight in a training set.

    A class without any is fitted a probability of 0 (an infinite intercept): its
    held-out log-loss is infinite. ``LogisticRegressionCV`` scores such folds with the
    classes present, ``GridSearchCV`` gives them ``error_score``; skimplicit's logistic
    tuners (the estimator and ``HypergradSearchCV`` alike) raise this error, naming the
    fold and the classes.

    Parameters
    ----------
    y_train : ndarray of shape (n_train,)
        Labels (as given or encoded, like ``classes``).
    sw_train : ndarray of shape (n_train,)
    classes : ndarray of shape (n_classes,)
    where : str
        E.g. ``"training fold 2"``, ``"the data"``.
    labels : ndarray of shape (n_classes,), default=None
        The class names shown in the message (``classes`` if None), for encoded labels.
    """
    y_train = np.asarray(y_train)
    present = np.isin(classes, y_train[np.asarray(sw_train) > 0])
    if np.count_nonzero(present) < 2:
        raise ValueError(
            f"{where[:1].upper() + where[1:]} has samples of a single class only among "
            "those of positive sample_weight: at least 2 classes are needed."
        )
    if not present.all():
        names = np.asarray(classes if labels is None else labels)
        missing = names[~present].tolist()
        raise ValueError(
            f"Class(es) {missing} have no sample of positive sample_weight in {where}: their "
            "probability would be fitted as 0 (an infinite intercept). Use fewer folds, "
            "a stratified splitter (StratifiedKFold), or drop these classes."
        )


def nothing_to_tune(X, y, sample_weight=None, *, fit_intercept=True, rows=None):
    """Whether every penalty fits the same model on ``(X, y)``: a constant one.

    With an intercept: ``y`` is constant, or no column of ``X`` varies (on the samples of
    positive weight); without: ``y`` is zero, or ``X`` is. The fitted model is then the
    (weighted) mean of ``y`` (or zero) whatever the penalty: the validation loss is flat.
    ``rows`` (indices): the question for ``X[rows]`` (``y`` and ``sample_weight`` already
    those rows'), without copying ``X`` in the usual case (two rows that differ).

    Examples
    --------
    >>> import numpy as np
    >>> from skimplicit.utils import nothing_to_tune
    >>> X = np.ones((4, 2))
    >>> nothing_to_tune(X, np.arange(4.0)), nothing_to_tune(X, np.arange(4.0), fit_intercept=False)
    (True, False)
    """
    if rows is not None:
        rows = np.asarray(rows)
        if sample_weight is not None:
            keep = np.asarray(sample_weight) > 0
            rows, y, sample_weight = rows[keep], np.asarray(y)[keep], None
        if fit_intercept and not sp.issparse(X) and rows.size > 1 \
                and not is_constant_target(np.asarray(y)) and np.any(X[rows[1]] != X[rows[0]]):
            return False
        X = X[rows]
    if sample_weight is not None:
        keep = np.asarray(sample_weight) > 0
        if not keep.all():  # (no copy of X when every weight counts)
            X, y = X[keep], np.asarray(y)[keep]
    y = np.asarray(y)
    if fit_intercept:
        if is_constant_target(y):
            return True
        if X.shape[0] == 0:
            return True
        if sp.issparse(X):
            spread = (X.max(axis=0) - X.min(axis=0)).toarray()
            return bool(np.all(spread == 0))
        X = np.asarray(X)
        if X.shape[0] > 1 and np.any(X[1] != X[0]):  # (the usual case: no n x p pass)
            return False
        return bool(np.all(X == X[:1]))
    if y.dtype.kind in "biuf" and not np.any(y):
        return True
    return bool(X.count_nonzero() == 0) if sp.issparse(X) else not np.any(X)
