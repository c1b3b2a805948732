"""Merge repeated rows into weights, in a canonical order."""

import numpy as np
import scipy.sparse as sp


def row_range(rows):
    """``(start, stop)`` when ``rows`` are an increasing run of consecutive nonnegative
    integer indices (``X[rows]`` is then the view ``X[start:stop]``), else ``None``.

    Examples
    --------
    >>> row_range([2, 3, 4]), row_range([0, 2]), row_range([])
    ((2, 5), None, None)
    """
    idx = np.asarray(rows)
    if (idx.ndim == 1 and idx.size and np.issubdtype(idx.dtype, np.integer) and idx[0] >= 0
            and idx[-1] - idx[0] == idx.size - 1 and np.all(np.diff(idx) == 1)):
        return int(idx[0]), int(idx[-1]) + 1
    return None


def _hash_rows(X, y):
    """A 64-bit hash of each row of dense ``X`` and of ``y``'s, from the float64 bits
    (``-0.0`` read as ``0.0``) by wrapping integer arithmetic: a row's hash does not depend
    on where the row sits. In blocks of rows, so that temporaries stay small."""
    n, p = X.shape
    Y = (np.asarray(y, np.float64).reshape(n, -1) + 0.0).view(np.uint64)
    # Odd multipliers from a fixed seed (the same hash in every call): the first p for the
    # columns of X, the next for the row's hash, the first ones again for the columns of y.
    mult = np.random.default_rng(0x5EED).integers(
        1, 2 ** 63, size=max(p + 1, Y.shape[1], 64), dtype=np.uint64) | np.uint64(1)
    h = np.empty(n, np.uint64)
    block = max(1, 2 ** 17 // max(p, 1))
    for s in range(0, n, block):
        U = (np.asarray(X[s:s + block], np.float64) + 0.0).view(np.uint64)
        U ^= U >> np.uint64(29)
        U *= mult[:p]
        h[s:s + block] = U.sum(axis=1, dtype=np.uint64)
    return h * mult[p] + ((Y ^ (Y >> np.uint64(29))) * mult[:Y.shape[1]]).sum(
        axis=1, dtype=np.uint64)


def _equal_rows(X, y, i, j):
    a, b = X[i] + 0.0, X[j] + 0.0
    return bool(np.array_equal(a, b) and np.array_equal(np.asarray(y[i]), np.asarray(y[j])))


def _sparse_keys(X, y):
    """One bytes key per row of sparse ``X`` with ``y``: equal keys for equal rows."""
    y = np.ascontiguousarray(np.asarray(y).reshape(len(y), -1), dtype=np.float64)
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    ind, dat, ptr = X.indices.astype(np.int64), X.data + 0.0, X.indptr
    return [ind[ptr[i]:ptr[i + 1]].tobytes() + b"|" + dat[ptr[i]:ptr[i + 1]].tobytes()
            + b"|" + y[i].tobytes() for i in range(X.shape[0])]


def merge_duplicate_rows(X, y, sample_weight):
    """``(X, y, sample_weight)`` with repeated rows merged and zero weights dropped.

    Rows equal in ``X`` and ``y`` become one row whose weight is their weights' sum; rows
    of weight 0 go; the rest are sorted by a hash of their bits. Fitting a weighted loss on the
    result gives, in floating point, exactly what it gives on any data set with the same
    weighted rows: integer weights and repeated rows, shuffled rows, added zero-weight
    rows all reach the same arrays. That matters where the problem is ill-conditioned
    (an l1 penalty at large ``C`` on separable data: solutions whose optimality
    conditions hold to 1e-14 differ by 1e-5 when the loss is summed in another order).

    ``X`` dense or sparse ``(n, p)``, ``y`` ``(n,)`` or ``(n, k)``, ``sample_weight``
    ``(n,)``. Returns ``(X, y, sample_weight, index)``: ``index`` the first original row
    of each merged row.
    """
    keep, order, starts = _groups(X, y, sample_weight)
    index = keep[order[starts]]  # (the merged rows, taken from X in one copy)
    sw = np.asarray(sample_weight, np.float64)[keep]
    w = np.add.reduceat(sw[order], starts) if len(order) else np.zeros(0)
    return X[index], np.asarray(y)[index], w, index


def unique_rows(X, y, sample_weight):
    """The rows :func:`merge_duplicate_rows` keeps, as indices: ``(first, inverse)``,
    ``first`` the first original row of each merged row (in the same canonical order) and
    ``inverse (n,)`` the merged row of each original row (-1 for a zero weight).

    Merging subsets of the rows (folds) and then mapping each of their merged rows through
    ``inverse[subset[index]]`` gives distinct rows of ``X[first]``: the folds' rows as
    weights on one shared array.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0], [2.0], [1.0], [3.0]]); y = np.array([0, 1, 0, 1])
    >>> first, inverse = unique_rows(X, y, np.array([1.0, 1.0, 1.0, 0.0]))
    >>> len(first), X[first][inverse[:3]].ravel().tolist(), int(inverse[3])
    (2, [1.0, 2.0, 1.0], -1)
    """
    keep, order, starts = _groups(X, y, sample_weight)
    inverse = np.full(len(sample_weight), -1, dtype=np.intp)
    new = np.zeros(len(order), bool)
    new[starts] = True
    inverse[keep[order]] = np.cumsum(new) - 1
    return keep[order[starts]], inverse


def merge_rows_of(X, y, sample_weight, rows, first, inverse):
    """:func:`merge_duplicate_rows` of ``(X[rows], y[rows], sample_weight[rows])`` from the
    groups of the whole data set (:func:`unique_rows`: ``(first, inverse)``), with no hash
    of the subset and one copy of its rows. The same arrays, in the same order (the
    canonical one), but for rows whose 64-bit hashes collide. Returns ``(X, y,
    sample_weight, index, ids)``: ``index`` the first row of ``rows`` of each merged row,
    ``ids`` its row of ``X[first]``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0], [2.0], [1.0], [3.0]]); y = np.array([0, 1, 0, 1])
    >>> first, inverse = unique_rows(X, y, np.ones(4))
    >>> Xm, ym, wm, index, ids = merge_rows_of(X, y, np.ones(4), [0, 2, 3], first, inverse)
    >>> sorted(zip(Xm.ravel().tolist(), wm.tolist()))
    [(1.0, 2.0), (3.0, 1.0)]
    """
    src, sums, index, ids = _merged_groups_of(sample_weight, rows, inverse)
    return X[src], np.asarray(y)[src], sums, index, ids


def _merged_groups_of(sample_weight, rows, inverse):
    """:func:`merge_rows_of`'s bookkeeping, no row copied: ``(src, sums, index, ids)``,
    ``src`` the row of ``X`` each merged row is read from (its group's first in
    ``rows``), ``sums`` the merged weights, ``index`` and ``ids`` as there."""
    rows = np.asarray(rows, dtype=np.intp)
    w = np.asarray(sample_weight, np.float64)[rows]
    ids = inverse[rows]
    keep = np.flatnonzero(w > 0)
    if np.any(ids[keep] < 0):
        raise ValueError("rows of positive weight must be rows of the groups (inverse >= 0).")
    ids_k = ids[keep]
    # Sorted by group, stably (the rows' order within a group), and summed by reduceat:
    # the same sums as merge_duplicate_rows's, bit for bit.
    order = np.argsort(ids_k, kind="stable")
    sorted_ids = ids_k[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]) if order.size \
        else np.zeros(0, np.intp)
    u, pos = sorted_ids[starts], order[starts]
    sums = np.add.reduceat(w[keep][order], starts) if order.size else np.zeros(0)
    return rows[keep[pos]], sums, keep[pos], u


def _groups(X, y, sample_weight):
    """``(keep, order, starts)``: the rows of positive weight, their canonical order
    (hash, then bits) and where each group of equal rows starts in it."""
    sw = np.asarray(sample_weight, np.float64)
    keep = np.flatnonzero(sw > 0)
    Xk, yk = (X, np.asarray(y)) if keep.size == sw.size else (X[keep], np.asarray(y)[keep])
    # labels of any kind (strings): hashed through their codes
    codes = yk if yk.dtype.kind in "biuf" else np.unique(yk, return_inverse=True)[1]
    if sp.issparse(Xk):
        keys = _sparse_keys(Xk, codes)
        order = np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.intp)
        new = np.ones(len(order), bool)
        new[1:] = [keys[a] != keys[b] for a, b in zip(order[1:], order[:-1])]
    else:
        # Sorted by a hash of the row's bits (canonical: equal rows, equal hashes);
        # neighbours with equal hashes are merged when their bits are equal.
        h = _hash_rows(Xk, codes)
        order = np.argsort(h, kind="stable")
        hs = h[order]
        new = np.ones(len(order), bool)
        new[1:] = hs[1:] != hs[:-1]
        for i in np.flatnonzero(~new):
            new[i] = not _equal_rows(Xk, codes, order[i], order[i - 1])
    return keep, order, np.flatnonzero(new)


def _cyclic(ids, i):
    """Fold ``i``'s training rows in :func:`fold_views`' order: the test blocks ``ids``
    after its own, then those before it."""
    return np.concatenate(list(ids[i + 1:]) + list(ids[:i]))


def fold_views(X, y, sw_train, sw_test, splits, first, inverse):
    """Every fold's merged rows (:func:`merge_rows_of`) as views of one array, or ``None``.

    When the test sets' merged rows (rows of ``X[first]``, ``(first, inverse)`` from
    :func:`unique_rows`) are disjoint and each training set's are exactly the other test
    sets' (K-fold: the test sets partition the rows), the test sets' rows are laid out
    one block after another, each in the canonical order, then the blocks again but the
    last two. Fold ``i``'s test rows are its block; its training rows, the blocks after
    its own then those before it, are one contiguous run: ``(2 - 2 / K)`` copies of the
    rows for all ``K`` folds instead of ``K`` (read-only views; the merged weights are
    :func:`merge_rows_of`'s, the rows' order within a training fold is not).

    Returns ``(folds, train_ids, test_ids)``: ``folds[i] = (X_train, y_train, w_train,
    X_test, y_test, w_test)``, ``train_ids[i]`` and ``test_ids[i]`` the rows of
    ``X[first]`` of fold ``i``'s training and test rows, in their order.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(8.0).reshape(4, 2); y = np.array([0, 1, 0, 1]); w = np.ones(4)
    >>> first, inverse = unique_rows(X, y, w)
    >>> splits = [([2, 3], [0, 1]), ([0, 1], [2, 3])]
    >>> folds, train_ids, test_ids = fold_views(X, y, w, w, splits, first, inverse)
    >>> Xa = folds[0][0]
    >>> sorted(Xa[:, 0].tolist()), bool(np.shares_memory(Xa, folds[1][3]))
    ([4.0, 6.0], True)
    """
    K = len(splits)
    if K < 2 or sp.issparse(X):
        return None
    y = np.asarray(y)
    tests = [_merged_groups_of(sw_test, te, inverse) for _, te in splits]
    ids = [t[3] for t in tests]
    blocks = np.concatenate(ids)
    if np.unique(blocks).size != blocks.size:  # (a row in two test sets)
        return None
    trains = []
    for i, (tr, _) in enumerate(splits):
        t = _merged_groups_of(sw_train, tr, inverse)
        if not np.array_equal(t[3], np.sort(np.concatenate(ids[:i] + ids[i + 1:]))):
            return None
        trains.append(t)
    sizes = np.array([v.size for v in ids])
    ends = np.cumsum(sizes)
    starts = ends - sizes
    N = int(ends[-1])
    span = N + int(starts[K - 2])
    out = np.empty((span, X.shape[1]), dtype=X.dtype)
    rows = first[blocks]
    step = max(1, 2 ** 16 // max(X.shape[1], 1))  # (by blocks: no whole temporary copy)
    for s in range(0, N, step):
        e = min(s + step, N)
        out[s:e] = X[rows[s:e]]
    out[N:] = out[:span - N]
    out.flags.writeable = False
    folds, train_ids = [], []
    for i in range(K):
        a, b = int(starts[i]), int(ends[i])
        lo = 0 if i == K - 1 else b
        cyc = _cyclic(ids, i)
        pos = np.searchsorted(trains[i][3], cyc)
        folds.append((out[lo:lo + N - (b - a)], y[first[cyc]], trains[i][1][pos],
                      out[a:b], y[first[ids[i]]], tests[i][1]))
        train_ids.append(cyc)
    return folds, train_ids, ids


def fold_view_grams(train_ids, test_ids, test_rows):
    """Every training fold's Gram matrix ``X_i X_i^T`` as an operator on one ``N x N``
    matrix, or ``None``: for the folds of :func:`fold_views` (each training fold's rows
    the test blocks after its own, then those before it), from their test rows
    ``test_rows[j]`` (``fold_views``' test views, in the order of ``test_ids[j]``).

    ``G``, the Gram matrix of the test blocks one after another, is formed block by block
    (``N^2 p``: one product's cost); fold ``i``'s is ``G`` without block ``i``'s rows and
    columns, in the order of its rows, which :class:`BlockGram` applies to a vector from
    four blocks of ``G`` (its exact ``n_i^2`` operations) instead of a copy each: ``N^2``
    entries in all instead of ``N^2 + sum_i n_i^2`` (``~4.2 N^2`` at ``K = 5``, 134 MB for
    2000 rows). ``None`` when ``train_ids`` are not in that order (folds copied by
    :func:`merge_rows_of`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> blocks = [rng.randn(2, 5), rng.randn(3, 5), rng.randn(2, 5)]
    >>> ids = [np.arange(0, 2), np.arange(2, 5), np.arange(5, 7)]
    >>> train_ids = [np.r_[ids[1], ids[2]], np.r_[ids[2], ids[0]], np.r_[ids[0], ids[1]]]
    >>> grams = fold_view_grams(train_ids, ids, blocks)
    >>> X1 = np.vstack([blocks[2], blocks[0]])  # fold 1's training rows, in its order
    >>> v = rng.randn(4)
    >>> bool(np.allclose(grams[1] @ v, X1 @ X1.T @ v))
    True
    """
    K = len(test_ids)
    if K < 2 or not all(np.array_equal(train_ids[i], _cyclic(test_ids, i)) for i in range(K)):
        return None
    sizes = np.array([t.shape[0] for t in test_rows])
    ends = np.cumsum(sizes)
    starts = ends - sizes
    N = int(ends[-1])
    G = np.empty((N, N))
    for i in range(K):
        for j in range(i, K):
            B = test_rows[i] @ test_rows[j].T
            G[starts[i]:ends[i], starts[j]:ends[j]] = B
            if j > i:
                G[starts[j]:ends[j], starts[i]:ends[i]] = B.T
    return [BlockGram(G, int(s), int(e)) for s, e in zip(starts, ends)]


class BlockGram:
    """``G`` without the rows and columns ``[s, e)``, its rows in the order ``[e, N)``
    then ``[0, s)`` (a training fold of :func:`fold_views`), as an operator: ``A @ v``
    from four blocks of ``G`` (views, no copy)."""

    def __init__(self, G, s, e):
        self.G, self.s, self.e = G, s, e
        n = G.shape[0] - (e - s)
        self.shape = (n, n)

    def __matmul__(self, v):
        G, s, e = self.G, self.s, self.e
        v = np.asarray(v, float)
        head = G.shape[0] - e  # (the rows after the block come first)
        v1, v2 = v[:head], v[head:]
        out = np.empty(self.shape[0])
        out[:head] = G[e:, e:] @ v1 + G[e:, :s] @ v2
        out[head:] = G[:s, e:] @ v1 + G[:s, :s] @ v2
        return out

    def toarray(self):
        """The matrix itself (a copy)."""
        idx = np.r_[self.e:self.G.shape[0], 0:self.s]
        return self.G[np.ix_(idx, idx)]
