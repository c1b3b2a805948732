"""Merge repeated rows into weights, in a canonical order."""

import numpy as np
import scipy.sparse as sp


def _row_keys(X, y):
    """One bytes key per row of ``(X, y)``: equal keys for equal rows."""
    y = np.ascontiguousarray(np.asarray(y).reshape(len(y), -1), dtype=np.float64)
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64, copy=True)
        X.sum_duplicates()
        X.eliminate_zeros()
        X.sort_indices()
        ind, dat, ptr = X.indices.astype(np.int64), X.data, X.indptr
        return [ind[ptr[i]:ptr[i + 1]].tobytes() + b"|" + dat[ptr[i]:ptr[i + 1]].tobytes()
                + b"|" + y[i].tobytes() for i in range(X.shape[0])]
    Z = np.ascontiguousarray(np.column_stack([np.asarray(X, np.float64), y]))
    Z += 0.0  # -0.0 -> 0.0: equal values, equal bytes
    return Z.view(np.dtype((np.void, Z.dtype.itemsize * Z.shape[1]))).ravel()


def merge_duplicate_rows(X, y, sample_weight):
    """``(X, y, sample_weight)`` with repeated rows merged and zero weights dropped.

    Rows equal in ``X`` and ``y`` become one row whose weight is their weights' sum; rows
    of weight 0 go; the rest are sorted by their bytes. Fitting a weighted loss on the
    result gives, in floating point, exactly what it gives on any data set with the same
    weighted rows: integer weights and repeated rows, shuffled rows, added zero-weight
    rows all reach the same arrays. That matters where the problem is ill-conditioned
    (an l1 penalty at large ``C`` on separable data: solutions whose optimality
    conditions hold to 1e-14 differ by 1e-5 when the loss is summed in another order).

    ``X`` dense or sparse ``(n, p)``, ``y`` ``(n,)`` or ``(n, k)``, ``sample_weight``
    ``(n,)``. Returns ``(X, y, sample_weight, index)``: ``index`` the first original row
    of each merged row.
    """
    sw = np.asarray(sample_weight, np.float64)
    keep = np.flatnonzero(sw > 0)
    Xk = X[keep]
    yk = np.asarray(y)[keep]
    keys = _row_keys(Xk, yk)
    if isinstance(keys, list):
        order = np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.intp)
        sorted_keys = [keys[i] for i in order]
        new = np.ones(len(order), bool)
        new[1:] = [a != b for a, b in zip(sorted_keys[1:], sorted_keys[:-1])]
    else:
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        new = np.ones(len(order), bool)
        new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    starts = np.flatnonzero(new)
    first = order[starts]
    w = np.add.reduceat(sw[keep][order], starts) if len(order) else np.zeros(0)
    return Xk[first], yk[first], w, keep[first]
