"""Plots of a fitted tuner: its search trajectory and its validation curve (matplotlib).

Both read any skimplicit tuner: the ``history_`` of the ``Implicit*CV`` estimators and of
:class:`~skimplicit.decomposition.TaskDrivenDictionaryLearning` (with ``tune_alpha`` or
``tune_C``), or the ``cv_results_`` of
:class:`~skimplicit.model_selection.HypergradSearchCV`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import is_classifier

__all__ = ["plot_search_trajectory", "plot_validation_curve"]


@dataclass
class _Trajectory:
    """The evaluated points of a fitted tuner, in the user's names."""

    names: list  # scalar and vector hyperparameters, in order
    scale: dict  # name -> "log" / "linear"
    bounds: dict  # name -> (lower, upper) (scalars) or None
    vector: dict  # name -> bool
    values: dict  # name -> float array (scalars) or object array (vectors)
    grads: dict  # name -> array like values (nan on path rows)
    loss: np.ndarray
    phase: np.ndarray
    best: int
    label: str


def _loss_label(search):
    name = getattr(getattr(search, "scorer_", None), "_score_func", None)
    name = getattr(name, "__name__", None)
    return {"mean_squared_error": "CV mean squared error",
            "log_loss": "CV log-loss"}.get(name, "CV loss (-mean_test_score)")


def _column(col):
    data = np.ma.getdata(col)
    try:
        return np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        return np.asarray(data, dtype=object)


def _trajectory(est):
    """Read ``cv_results_`` (HypergradSearchCV) or ``history_`` (the other tuners)."""
    if hasattr(est, "cv_results_") and hasattr(est, "search_space_"):
        res, space = est.cv_results_, est.search_space_
        names = list(space)
        values = {k: _column(res[f"param_{k}"]) for k in names}
        grads = {k: _column(res[f"hypergradient_{k}"]) for k in names}
        return _Trajectory(
            names=names, scale={k: space[k][2] for k in names},
            bounds={k: None if space[k][3] else (float(space[k][0]), float(space[k][1]))
                    for k in names},
            vector={k: bool(space[k][3]) for k in names}, values=values, grads=grads,
            loss=-np.asarray(res["mean_test_score"], float), phase=np.asarray(res["phase"]),
            best=int(est.best_index_), label=_loss_label(est))
    hist = getattr(est, "history_", None)
    if hist is None:
        raise ValueError(
            f"{type(est).__name__} has no tuning history: fit it first (a "
            "TaskDrivenDictionaryLearning tunes only with tune_alpha or tune_C)."
        )
    hps = getattr(getattr(est, "tuning_result_", None), "hyperparameters", None) or []
    by_name = {hp.name: hp for hp in hps}
    names = [k for k in hist if k not in _HISTORY_KEYS and not k.startswith("grad_")]
    scale, bounds, vector = {}, {}, {}
    for k in names:
        hp = by_name.get(k)
        vector[k] = np.ndim(hist[k]) > 1
        scale[k] = hp.scale if hp is not None else ("linear" if "ratio" in k else "log")
        bounds[k] = None if (hp is None or vector[k]) else (float(np.min(hp.lower)),
                                                            float(np.max(hp.upper)))
    loss = np.asarray(hist["loss"], float)
    finite = np.where(np.isfinite(loss), loss, np.inf)
    label = "CV log-loss" if is_classifier(est) else "CV mean squared error"
    return _Trajectory(
        names=names, scale=scale, bounds=bounds, vector=vector,
        values={k: np.asarray(hist[k], float) for k in names},
        grads={k: np.asarray(hist["grad_" + k], float) for k in names},
        loss=loss, phase=np.asarray(hist["phase"]), best=int(np.argmin(finite)), label=label)


_HISTORY_KEYS = {"loss", "loss_std", "grad_norm", "time", "precision", "converged", "phase"}


def _scalar_keys(traj, params, at_most):
    if params is None:
        keys = [k for k in traj.names if not traj.vector[k]][:at_most]
        if not keys:
            raise ValueError(
                f"Every tuned hyperparameter ({traj.names}) is a vector (one value per "
                "feature or class): there is no scalar one to draw."
            )
    else:
        keys = [params] if isinstance(params, str) else list(params)
    if not 1 <= len(keys) <= at_most:
        raise ValueError(f"Draw one{' or two' if at_most == 2 else ''} hyperparameter"
                         f"{'s' if at_most == 2 else ''}; got {keys}.")
    for k in keys:
        if k not in traj.names or traj.vector[k]:
            raise ValueError(
                f"{k!r} is not a tuned scalar hyperparameter of this estimator; tuned: "
                f"{traj.names}."
            )
    return keys


# -- layout helpers: nothing clipped, nothing over the data --------------------------------
def _to_axis(v, scale):
    v = np.asarray(v, float)
    return np.log10(v) if scale == "log" else v


def _from_axis(t, scale):
    return 10.0 ** t if scale == "log" else t


def _pad_limits(values, scale, frac=0.06):
    """Axis limits around ``values`` with a margin of ``frac`` of their span (in the axis's
    own scale), so that markers on the extreme points (a bound) are drawn whole."""
    t = _to_axis(np.asarray(values, float)[np.isfinite(values)], scale)
    if scale == "log":
        t = t[np.isfinite(t)]
    if t.size == 0:
        return None
    lo, hi = float(t.min()), float(t.max())
    span = hi - lo if hi > lo else max(abs(lo) * 0.1, 0.1 if scale == "log" else 1e-3)
    return _from_axis(lo - frac * span, scale), _from_axis(hi + frac * span, scale)


def _annotate_steps(ax, xs, ys, steps, xscale, yscale):
    """Number the steps, each label on the side of its point facing the axes' centre."""
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    tx = (_to_axis(xs, xscale) - _to_axis(xlim[0], xscale)) / np.ptp(_to_axis(xlim, xscale))
    ty = (_to_axis(ys, yscale) - _to_axis(ylim[0], yscale)) / np.ptp(_to_axis(ylim, yscale))
    for j, i in enumerate(steps, 1):
        right = tx[i] > 0.8
        top = ty[i] > 0.8
        ax.annotate(str(j), (xs[i], ys[i]), textcoords="offset points",
                    xytext=(-4 if right else 4, -4 if top else 4),
                    ha="right" if right else "left", va="top" if top else "bottom",
                    fontsize=7, color="tab:orange", annotation_clip=True)


def _legend_outside(ax):
    """The legend to the right of the axes, never over the data."""
    return ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0.0, frameon=False)


def _new_axes(ax, width=7.0):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    # No layout engine (a later ``tight_layout`` must stay possible with a colour bar);
    # room on the right for the legend, which sits outside the axes.
    fig, ax = plt.subplots(figsize=(width, 4))
    fig.subplots_adjust(left=0.12, right=0.72, bottom=0.14, top=0.95)
    return ax


def _grid_curve(grid, key, scale):
    """``(values, losses)`` of a twin's grid: a fitted LassoCV/ElasticNetCV-like object
    (``alphas_``, ``mse_path_``), a fitted search with ``cv_results_``, a
    LogisticRegressionCV fitted with ``scoring="neg_log_loss"`` (``Cs_``, ``scores_``), or a
    pair of arrays."""
    if isinstance(grid, tuple) and len(grid) == 2:
        return np.asarray(grid[0], float), np.asarray(grid[1], float)
    if hasattr(grid, "cv_results_") or isinstance(grid, dict):
        res = grid.cv_results_ if hasattr(grid, "cv_results_") else grid
        base = key.split("__")[-1]
        cols = [c for c in res if c.startswith("param_")
                and (c == f"param_{key}" or c.split("__")[-1] in (base, f"param_{base}"))]
        if not cols:
            raise ValueError(f"The grid's cv_results_ has no column for {key!r}.")
        return _column(res[cols[0]]).astype(float), -np.asarray(res["mean_test_score"], float)
    if hasattr(grid, "alphas_") and hasattr(grid, "mse_path_"):
        alphas, path = np.asarray(grid.alphas_, float), np.asarray(grid.mse_path_, float)
        if path.ndim == 3:  # ElasticNetCV with several l1_ratios: the chosen one's row
            ratios = np.atleast_1d(grid.l1_ratio)
            i = int(np.argmin(np.abs(ratios - grid.l1_ratio_)))
            alphas, path = alphas[i], path[i]
        return alphas, path.mean(axis=-1)
    if hasattr(grid, "Cs_") and hasattr(grid, "scores_"):
        if isinstance(grid.scores_, dict):  # legacy: (n_folds, n_cs[, n_l1_ratios])
            scores = np.asarray(next(iter(grid.scores_.values())), float)
            scores = np.moveaxis(scores.reshape(scores.shape[0], len(grid.Cs_), -1), 1, 2)
        else:  # use_legacy_attributes=False: (n_folds, n_l1_ratios, n_cs)
            scores = np.asarray(grid.scores_, float)
        return np.asarray(grid.Cs_, float), -scores.mean(axis=(0, 1))
    raise TypeError(
        "grid must be a fitted LassoCV/ElasticNetCV (alphas_, mse_path_), a fitted search "
        "with cv_results_, a LogisticRegressionCV (Cs_, scores_) or a pair (values, losses); "
        f"got {type(grid).__name__}."
    )


def plot_search_trajectory(estimator, *, reference=None, params=None, ax=None, annotate=True):
    """Draw the tuning trajectory of a fitted tuner, over a reference CV curve if given.

    With one hyperparameter drawn: the CV loss against it, the reference curve as a line,
    the coarse path as open circles, the hypergradient steps as numbered dots joined in
    evaluation order, and the best point as a star. With two: the reference's CV loss as
    filled contours (a product grid) or coloured dots (colour bar below the axes), and the
    trajectory on top. Readable when the optimum sits on a bound: the axes extend a
    margin beyond the extreme points (markers are not clipped), step numbers are placed
    on the side of their point facing the centre (inside the axes) and the legend sits to
    the right of the axes, off the data.

    Parameters
    ----------
    estimator : fitted tuner
        :class:`~skimplicit.model_selection.HypergradSearchCV` (``cv_results_``), an
        ``Implicit*CV`` estimator or a
        :class:`~skimplicit.decomposition.TaskDrivenDictionaryLearning` that tuned
        (``history_``).
    reference : fitted search (e.g. GridSearchCV) or dict, default=None
        Anything with a ``cv_results_`` in the same scoring and parameter names (or that
        dict itself): the CV curve to draw under the trajectory.
    params : str or list of str, default=None
        Which hyperparameters to draw (the names of ``cv_results_`` or ``history_``);
        default: the tuned scalar ones (at most two).
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
    >>> from skimplicit.linear_model import ImplicitLassoCV
    >>> from skimplicit.inspection import plot_search_trajectory
    >>> X, y = load_diabetes(return_X_y=True)
    >>> ax = plot_search_trajectory(ImplicitLassoCV(cv=3).fit(X, y))
    >>> ax.get_xscale(), ax.get_xlabel()
    ('log', 'alpha')
    """
    traj = _trajectory(estimator)
    keys = _scalar_keys(traj, params, 2)
    ax = _new_axes(ax, 7.0)
    loss, on_path, best = traj.loss, traj.phase == "path", traj.best
    steps = np.flatnonzero(~on_path)
    ref = None
    if reference is not None:
        ref = reference.cv_results_ if hasattr(reference, "cv_results_") else reference

    if len(keys) == 1:
        (k,) = keys
        x, y = traj.values[k], loss
        xs, ys = [x], [y]
        if ref is not None:
            rx, ry = _grid_curve(ref, k, traj.scale[k])
            order = np.argsort(rx)
            ax.plot(rx[order], ry[order], "-", color="0.6", lw=1.5, label="reference CV curve")
            xs.append(rx)
            ys.append(ry)
        xscale, yscale = traj.scale[k], "linear"
        ax.set_xscale(xscale)
        ax.set_xlabel(k)
        ax.set_ylabel(traj.label)
    else:
        kx, ky = keys
        x, y = traj.values[kx], traj.values[ky]
        xs, ys = [x], [y]
        if ref is not None:
            rx, _ = _grid_curve(ref, kx, traj.scale[kx])
            ry, rl = _grid_curve(ref, ky, traj.scale[ky])
            ux, uy = np.unique(rx), np.unique(ry)
            if ux.size * uy.size == rx.size:  # a product grid: filled contours
                Z = np.full((uy.size, ux.size), np.nan)
                Z[np.searchsorted(uy, ry), np.searchsorted(ux, rx)] = rl
                # Levels at quantiles: the colours resolve the basin, not the far slopes.
                levels = np.unique(np.quantile(rl[np.isfinite(rl)], np.linspace(0, 1, 21)))
                cs = ax.contourf(ux, uy, Z, levels=levels, cmap="viridis")
            else:
                cs = ax.scatter(rx, ry, c=rl, s=12, cmap="viridis")
            ax.figure.colorbar(cs, ax=ax, label=traj.label + " (reference)",
                               location="bottom", shrink=0.8, aspect=40, pad=0.15)
            xs.append(rx)
            ys.append(ry)
        xscale, yscale = traj.scale[kx], traj.scale[ky]
        ax.set_xscale(xscale)
        ax.set_yscale(yscale)
        ax.set_xlabel(kx)
        ax.set_ylabel(ky)
    path_style = dict(mfc="none", color="tab:blue") if len(keys) == 1 else \
        dict(mfc="w", mec="k", color="k")
    ax.plot(x[on_path], y[on_path], "o", label="coarse path", clip_on=False, zorder=3,
            **path_style)
    ax.plot(x[steps], y[steps], ".-", color="tab:orange", lw=1, label="hypergradient steps",
            clip_on=False, zorder=4)
    ax.plot(x[best], y[best], "*", ms=14, color="tab:red", label="best", clip_on=False,
            zorder=5)
    xlim = _pad_limits(np.concatenate(xs), xscale)
    ylim = _pad_limits(np.concatenate(ys), yscale, frac=0.08)
    if xlim is not None:
        ax.set_xlim(*xlim)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if annotate:
        _annotate_steps(ax, x, y, steps, xscale, yscale)
    _legend_outside(ax)
    return ax


def plot_validation_curve(estimator, ax=None, grid=None, *, param=None, tangent_length=0.06):
    """The CV loss along one hyperparameter at the evaluated points, with their slopes.

    Every point the tuner evaluated is drawn at its CV loss (coarse path: open circles;
    hypergradient steps: dots; best: a star); through each point with a hypergradient, a
    short tangent segment of the slope it implies (in the axis's own scale: ``d loss / d
    log(alpha)`` for a log-scale hyperparameter). Tangents that follow the curve show
    hypergradients that agree with the losses. When ``grid`` is given, the twin's CV curve
    on a grid (e.g. ``LassoCV``'s ``mse_path_``) is drawn under them. With several tuned
    hyperparameters the others vary between the points (the points are then a projection,
    not a slice).

    Parameters
    ----------
    estimator : fitted tuner
        As for :func:`plot_search_trajectory`.
    ax : matplotlib Axes, default=None
        Axes to draw on (default: a new figure).
    grid : fitted estimator, fitted search, dict or (values, losses), default=None
        The twin's grid curve, in the same loss: a fitted ``LassoCV`` / ``ElasticNetCV``
        (``alphas_``, ``mse_path_``: the mean over folds), a fitted ``GridSearchCV``
        (``cv_results_``, ``-mean_test_score``), a ``LogisticRegressionCV`` fitted with
        ``scoring="neg_log_loss"`` (``Cs_``, ``scores_``), or two arrays.
    param : str, default=None
        The hyperparameter (default: the first tuned scalar one).
    tangent_length : float, default=0.06
        Length of each tangent as a fraction of the drawn range of the hyperparameter.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import LassoCV
    >>> from skimplicit.linear_model import ImplicitLassoCV
    >>> from skimplicit.inspection import plot_validation_curve
    >>> X, y = load_diabetes(return_X_y=True)
    >>> ax = plot_validation_curve(ImplicitLassoCV(cv=3).fit(X, y), grid=LassoCV(cv=3).fit(X, y))
    >>> [line.get_label() for line in ax.get_lines()][:1]
    ['grid (twin)']
    """
    from matplotlib.collections import LineCollection

    traj = _trajectory(estimator)
    (k,) = _scalar_keys(traj, param, 1)
    ax = _new_axes(ax, 7.0)
    scale = traj.scale[k]
    x, y, g = traj.values[k], traj.loss, traj.grads[k]
    xs, ys = [x], [y]
    if grid is not None:
        gx, gy = _grid_curve(grid, k, scale)
        order = np.argsort(gx)
        ax.plot(gx[order], gy[order], "-", color="0.6", lw=1.5, label="grid (twin)")
        xs.append(gx)
        ys.append(gy)
    on_path = traj.phase == "path"
    ax.plot(x[on_path], y[on_path], "o", mfc="none", color="tab:blue", label="coarse path",
            clip_on=False, zorder=3)
    ax.plot(x[~on_path], y[~on_path], ".", color="tab:orange", label="hypergradient steps",
            clip_on=False, zorder=4)
    ax.plot(x[traj.best], y[traj.best], "*", ms=14, color="tab:red", label="best",
            clip_on=False, zorder=5)
    # Tangents in the axis's coordinate t (log10 for a log scale): d loss / d t.
    t = _to_axis(np.concatenate(xs), scale)
    span = np.ptp(t[np.isfinite(t)]) if np.isfinite(t).any() else 1.0
    half = 0.5 * tangent_length * (span if span > 0 else 1.0)
    with_grad = np.flatnonzero(np.isfinite(g) & np.isfinite(y))
    segments = []
    for i in with_grad:
        ti = _to_axis(x[i], scale)
        slope = g[i] * x[i] * np.log(10.0) if scale == "log" else g[i]
        segments.append([(_from_axis(ti - half, scale), y[i] - slope * half),
                         (_from_axis(ti + half, scale), y[i] + slope * half)])
        ys.append(np.array([y[i] - slope * half, y[i] + slope * half]))
    if segments:
        ax.add_collection(LineCollection(segments, colors="tab:green", linewidths=1.5,
                                         label="hypergradient (tangent)", zorder=2))
    ax.set_xscale(scale)
    xlim = _pad_limits(np.concatenate(xs), scale)
    # The tangents may be steep far from the optimum: the y range follows the losses, with
    # a margin, not the tangents' ends.
    ylim = _pad_limits(np.concatenate(ys[: 2 if grid is not None else 1]), "linear", frac=0.1)
    if xlim is not None:
        ax.set_xlim(*xlim)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(k)
    ax.set_ylabel(traj.label)
    _legend_outside(ax)
    return ax
