"""scikit-learn's search over the estimators on a Dask cluster (``distributed.LocalCluster`` on
127.0.0.1, through joblib's ``dask`` backend): the same ``cv_results_`` as one process, and
each worker's deltaprop within the worker's thread budget."""

import numpy as np
import pytest

import deltaprop as dp

distributed = pytest.importorskip("distributed", reason="pip install 'deltaprop[dask]'")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    )
    with distributed.Client(cluster) as connected:
        yield connected
    cluster.close()


def _thread_budget():
    from threadpoolctl import threadpool_info

    from deltaprop.nn.dense_chain import threads_in_use

    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return threads_in_use(), blas


def test_workers_keep_to_their_thread_budget(client):
    for compiled, blas in client.run(_thread_budget).values():
        assert compiled == 1 and set(blas) <= {1}


def test_grid_search_on_the_cluster_equals_one_process(client):
    from joblib import parallel_backend
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV

    X, y = load_iris(return_X_y=True)
    grid = {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(4,), (12,)]}
    estimator = dp.MLPClassifier(max_iter=30, random_state=0)
    local = GridSearchCV(estimator, grid, cv=3, n_jobs=1).fit(X, y)
    with parallel_backend("dask"):
        remote = GridSearchCV(estimator, grid, cv=3).fit(X, y)
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(remote.best_estimator_.coefs_[0], local.best_estimator_.coefs_[0])
