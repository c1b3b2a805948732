"""Plot helper: the points a HypergradSearchCV evaluated, drawn over a CV curve (matplotlib)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_search_trajectory"]


def _results(obj):
    return obj.cv_results_ if hasattr(obj, "cv_results_") else obj


def _values(results, key):
    col = results[f"param_{key}"]
    return np.asarray(np.ma.getdata(col), dtype=float)


def _loss_label(search):
    name = getattr(getattr(search, "scorer_", None), "_score_func", None)
    name = getattr(name, "__name__", None)
    return {"mean_squared_error": "CV mean squared error",
            "log_loss": "CV log-loss"}.get(name, "CV loss (-mean_test_score)")


def plot_search_trajectory(search, *, reference=None, params=None, ax=None, annotate=True):
    """Draw the tuning trajectory of a fitted HypergradSearchCV over a CV curve.

    With one tuned hyperparameter: the CV loss (``-mean_test_score``) against the
    hyperparameter, the reference curve as a line, the coarse path as open circles, the
    hypergradient steps as numbered dots joined in evaluation order, and the best point
    as a star. With two: the reference's CV loss as filled contours (a product grid) or
    coloured dots, and the trajectory on top.

    Parameters
    ----------
    search : HypergradSearchCV
        Fitted.
    reference : fitted search (e.g. GridSearchCV) or dict, default=None
        Anything with a ``cv_results_`` in the same scoring and parameter names (or that
        dict itself): the CV curve to draw under the trajectory.
    params : str or list of str, default=None
        Which hyperparameters to draw (GridSearchCV-style names); default: the tuned
        ones (at most two).
    ax : matplotlib Axes, default=None
        Axes to draw on (default: a new figure).
    annotate : bool, default=True
        Number the hypergradient steps.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import Lasso
    >>> from skimplicit.model_selection import HypergradSearchCV, plot_search_trajectory
    >>> X, y = load_diabetes(return_X_y=True)
    >>> search = HypergradSearchCV(Lasso(), {"alpha": (1e-3, 1.0)}, cv=3).fit(X, y)
    >>> ax = plot_search_trajectory(search)
    >>> ax.get_xscale()
    'log'
    """
    import matplotlib.pyplot as plt

    res = search.cv_results_
    space = search.search_space_
    keys = list(space) if params is None else ([params] if isinstance(params, str) else list(params))
    if not 1 <= len(keys) <= 2:
        raise ValueError(f"Draw one or two hyperparameters; got {keys}.")
    for k in keys:
        if k not in space or space[k][3]:
            raise ValueError(f"{k!r} is not a tuned scalar hyperparameter of this search.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    loss = -np.asarray(res["mean_test_score"], float)
    phase = np.asarray(res["phase"])
    on_path = phase == "path"
    best = search.best_index_
    ref = _results(reference) if reference is not None else None
    label = _loss_label(search)

    if len(keys) == 1:
        (k,) = keys
        x = _values(res, k)
        if ref is not None:
            rx, ry = _values(ref, k), -np.asarray(ref["mean_test_score"], float)
            order = np.argsort(rx)
            ax.plot(rx[order], ry[order], "-", color="0.6", lw=1.5, label="reference CV curve")
        ax.plot(x[on_path], loss[on_path], "o", mfc="none", color="tab:blue",
                label="coarse path")
        steps = np.flatnonzero(~on_path)
        ax.plot(x[steps], loss[steps], ".-", color="tab:orange", lw=1,
                label="hypergradient steps")
        if annotate:
            for j, i in enumerate(steps, 1):
                ax.annotate(str(j), (x[i], loss[i]), textcoords="offset points",
                            xytext=(3, 3), fontsize=7, color="tab:orange")
        ax.plot(x[best], loss[best], "*", ms=14, color="tab:red", label="best")
        ax.set_xscale("log" if space[k][2] == "log" else "linear")
        ax.set_xlabel(k)
        ax.set_ylabel(label)
    else:
        kx, ky = keys
        x, y = _values(res, kx), _values(res, ky)
        if ref is not None:
            rx, ry = _values(ref, kx), _values(ref, ky)
            rl = -np.asarray(ref["mean_test_score"], float)
            ux, uy = np.unique(rx), np.unique(ry)
            if ux.size * uy.size == rx.size:  # a product grid: filled contours
                Z = np.full((uy.size, ux.size), np.nan)
                Z[np.searchsorted(uy, ry), np.searchsorted(ux, rx)] = rl
                # Levels at quantiles: the colours resolve the basin, not the far slopes.
                levels = np.unique(np.quantile(rl[np.isfinite(rl)], np.linspace(0, 1, 21)))
                cs = ax.contourf(ux, uy, Z, levels=levels, cmap="viridis")
            else:
                cs = ax.scatter(rx, ry, c=rl, s=12, cmap="viridis")
            ax.figure.colorbar(cs, ax=ax, label=label + " (reference)")
        ax.plot(x[on_path], y[on_path], "o", mfc="none", color="w", mec="k",
                label="coarse path")
        steps = np.flatnonzero(~on_path)
        ax.plot(x[steps], y[steps], ".-", color="tab:orange", lw=1,
                label="hypergradient steps")
        if annotate:
            for j, i in enumerate(steps, 1):
                ax.annotate(str(j), (x[i], y[i]), textcoords="offset points",
                            xytext=(3, 3), fontsize=7, color="tab:orange")
        ax.plot(x[best], y[best], "*", ms=14, color="tab:red", label="best")
        ax.set_xscale("log" if space[kx][2] == "log" else "linear")
        ax.set_yscale("log" if space[ky][2] == "log" else "linear")
        ax.set_xlabel(kx)
        ax.set_ylabel(ky)
    ax.legend(fontsize=8)
    return ax
