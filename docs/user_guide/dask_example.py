"""Restarts and outer CV folds on a dask cluster through joblib (user guide example).

Shown on the user guide page "Folds and restarts on a dask cluster"; run by
``tests/test_docs.py`` when ``SKIMPLICIT_DOCS=1`` (a cluster takes seconds to start).
"""

import os
import tempfile

# 1. Before any worker starts (and before JAX is imported here): a compilation cache that
#    every process shares, and one XLA thread per process.
cache = os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "skimplicit-jax-cache"))
worker_env = {
    "JAX_COMPILATION_CACHE_DIR": cache,
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def main():
    import joblib
    from dask.distributed import Client, LocalCluster
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import KFold, cross_validate

    from skimplicit.linear_model import ImplicitLassoCV

    X, y = load_diabetes(return_X_y=True)

    # 2. A cluster of spawned worker processes (dask never forks), with that environment.
    #    On a real cluster: export the same variables where `dask worker` starts, with
    #    JAX_COMPILATION_CACHE_DIR on a file system that all machines share.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", env=worker_env) as cluster, \
            Client(cluster) as client, \
            joblib.parallel_config(backend="dask"):
        # 3a. Restarts of one fit, in parallel (results do not depend on n_jobs).
        reg = ImplicitLassoCV(cv=5, n_restarts=2, n_jobs=2).fit(X, y)
        # 3b. Outer cross-validation folds, each a whole fit, in parallel.
        scores = cross_validate(ImplicitLassoCV(cv=3), X, y,
                                cv=KFold(4, shuffle=True, random_state=0), n_jobs=-1)
        n_workers = len(client.scheduler_info()["workers"])
    return reg, scores, n_workers


if __name__ == "__main__":
    reg, scores, n_workers = main()
    print(f"{n_workers} workers; alpha_ = {reg.alpha_:.4g}, cv_loss_ = {reg.cv_loss_:.1f}; "
          f"outer R^2 = {scores['test_score'].round(3)}")
