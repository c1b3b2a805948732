"""HypergradSearchCV on a dask.distributed cluster through joblib: the same result as n_jobs=1.

The test starts and closes its own LocalCluster (127.0.0.1, 2 worker processes); the
workers inherit JAX_COMPILATION_CACHE_DIR from the environment (set by .ci/run), so that
they reuse compiled kernels.
"""

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skimplicit.model_selection import HypergradSearchCV

distributed = pytest.importorskip("dask.distributed")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_dask_backend_equals_sequential():
    X, y = load_diabetes(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), ElasticNet(tol=1e-10, max_iter=100_000))
    bounds = {"elasticnet__alpha": (1e-3, 10.0), "elasticnet__l1_ratio": (0.1, 1.0)}
    kw = dict(cv=KFold(5, shuffle=True, random_state=0), n_restarts=2, max_outer_iter=5,
              random_state=0)
    seq = HypergradSearchCV(pipe, bounds, n_jobs=1, **kw).fit(X, y)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with parallel_config(backend="dask"), distributed.get_task_stream(client) as tasks:
            par = HypergradSearchCV(pipe, bounds, n_jobs=2, **kw).fit(X, y)
    # The per-fold preprocessing and the restarts really ran on the cluster's workers.
    assert len({t["worker"] for t in tasks.data}) == 2

    assert {"path", "start 0", "start 1"} <= set(seq.cv_results_["phase"])
    assert list(par.cv_results_["phase"]) == list(seq.cv_results_["phase"])
    for key in ("mean_test_score", "param_elasticnet__alpha", "param_elasticnet__l1_ratio",
                "hypergradient_elasticnet__alpha"):
        np.testing.assert_allclose(np.ma.getdata(par.cv_results_[key]),
                                   np.ma.getdata(seq.cv_results_[key]), rtol=1e-12)
    assert par.best_params_ == pytest.approx(seq.best_params_, rel=1e-12)
    np.testing.assert_allclose(par.predict(X[:5]), seq.predict(X[:5]), rtol=1e-12)
