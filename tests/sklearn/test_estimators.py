"""The scikit-learn estimators: scikit-learn's own checks, the same answers, and what they add."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    make_multilabel_classification,
)
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import deltaprop as dp

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.slow
@parametrize_with_checks(
    [
        dp.MLPClassifier(),
        dp.MLPRegressor(),
        dp.MLPClassifier(solver="lbfgs"),
        dp.MLPRegressor(solver="sgd"),
    ]
)
def test_scikit_learns_estimator_checks(estimator, check):
    check(estimator)


# --- the same answers as scikit-learn ------------------------------------------------------


def _split(name):
    X, y = (load_digits if name == "digits" else load_breast_cancer)(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


@pytest.mark.slow
@pytest.mark.parametrize("data", ["digits", "breast-cancer"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_test_accuracy_is_within_one_point_of_scikit_learns(data, solver):
    from sklearn.neural_network import MLPClassifier

    X_train, X_test, y_train, y_test = _split(data)
    params = dict(hidden_layer_sizes=(64,), solver=solver, max_iter=200, learning_rate_init=0.01)
    seeds = range(4)
    ours = [dp.MLPClassifier(**params, random_state=s).fit(X_train, y_train) for s in seeds]
    theirs = [MLPClassifier(**params, random_state=s).fit(X_train, y_train) for s in seeds]
    ours_mean = np.mean([m.score(X_test, y_test) for m in ours])
    theirs_mean = np.mean([m.score(X_test, y_test) for m in theirs])
    assert abs(ours_mean - theirs_mean) <= 0.01, (ours_mean, theirs_mean)


def test_the_same_seed_draws_scikit_learns_initial_weights():
    from sklearn.neural_network import MLPClassifier

    X, _, y, _ = _split("breast-cancer")
    params = dict(hidden_layer_sizes=(5, 4), max_iter=1, solver="sgd", learning_rate_init=1e-12)
    ours = dp.MLPClassifier(**params, random_state=3).fit(X, y)
    theirs = MLPClassifier(**params, random_state=3).fit(X, y)
    for a, b in zip(
        ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-9)  # one step at lr 1e-12 moves nothing


# --- scikit-learn's tools ------------------------------------------------------------------


@pytest.mark.slow
def test_pipelines_searches_with_two_processes_and_cross_validation():
    X, y = load_breast_cancer(return_X_y=True)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), dp.MLPClassifier(max_iter=30, random_state=0)),
        {"mlpclassifier__alpha": [1e-4, 1e-1]},
        n_jobs=2,
        cv=3,
    ).fit(X, y)
    assert search.best_score_ > 0.95
    scores = cross_val_score(
        dp.MLPClassifier(max_iter=30, random_state=0), StandardScaler().fit_transform(X), y, cv=3
    )
    assert scores.min() > 0.93
    copy = clone(search.best_estimator_)
    assert copy.get_params()["mlpclassifier__alpha"] == search.best_params_["mlpclassifier__alpha"]


def test_data_frames_give_feature_names_and_a_warning_for_other_columns():
    pd = pytest.importorskip("pandas")
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    clf = dp.MLPClassifier(max_iter=5, random_state=0).fit(X, y)
    assert list(clf.feature_names_in_) == list(X.columns)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but MLPClassif"):
        clf.predict(X.to_numpy())
    renamed = X.rename(columns={X.columns[0]: "something else"})
    with pytest.raises(ValueError, match="The feature names should match those that were passed"):
        clf.predict(renamed)
    assert isinstance(X, pd.DataFrame)


# --- what they add -------------------------------------------------------------------------


def test_warm_start_continues_the_optimizer_where_scikit_learn_resets_it():
    X, _, y, _ = _split("breast-cancer")
    clf = dp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, warm_start=True, random_state=0)
    clf.fit(X, y)
    steps = clf.optimizer_.step_count
    moments = clf.optimizer_.state["exp_avg"].copy()
    clf.fit(X, y)
    assert clf.optimizer_.step_count == 2 * steps  # Adam's step and moments carried on
    assert not np.array_equal(clf.optimizer_.state["exp_avg"], moments)
    assert len(clf.loss_curve_) == 6 and clf.t_ == 6 * len(X)
    fresh = dp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    fresh.fit(X, y)  # without warm_start: a new model and optimizer each time
    assert fresh.optimizer_.step_count == steps and len(fresh.loss_curve_) == 3


def test_partial_fit_needs_classes_first_and_continues():
    X, _, y, _ = _split("digits")
    clf = dp.MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X[:100], y[:100])
    clf.partial_fit(X[:500], y[:500], classes=np.arange(10))
    first = clf.optimizer_.step_count
    for _ in range(19):
        clf.partial_fit(X[:500], y[:500])
    assert clf.optimizer_.step_count == 20 * first and clf.n_iter_ == 1
    assert clf.score(X[:500], y[:500]) > 0.9
    assert not hasattr(dp.MLPClassifier(solver="lbfgs"), "partial_fit")


def test_early_stopping_keeps_validation_scores_and_the_loss_curve_beside_them():
    X, _, y, _ = _split("digits")
    clf = dp.MLPClassifier(early_stopping=True, random_state=0, max_iter=300, n_iter_no_change=5)
    clf.fit(X, y)
    assert clf.n_iter_ < 300
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert min(clf.validation_loss_curve_) < clf.validation_loss_curve_[0]


@pytest.mark.parametrize("classes", [2, 10])
def test_early_stopping_holds_out_the_rows_scikit_learn_holds_out(classes):
    """scikit-learn stratifies its validation split for two classes only (its labels are
    binarized first; many classes are one column each): the same rows, so the same scores."""
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(n_class=classes, return_X_y=True)
    X = X / 16
    kwargs = dict(early_stopping=True, random_state=0, max_iter=3, hidden_layer_sizes=(20,))
    ours = dp.MLPClassifier(**kwargs).fit(X, y)
    theirs = MLPClassifier(**kwargs).fit(X, y)
    assert ours.validation_scores_[0] == pytest.approx(theirs.validation_scores_[0], abs=1e-12)


def test_class_weight_balanced_weighs_the_rare_class():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rare = np.concatenate([np.flatnonzero(y == 0)[:20], np.flatnonzero(y == 1)])
    X, y = X[rare], y[rare]
    plain = dp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=30, random_state=0).fit(X, y)
    balanced = dp.MLPClassifier(
        hidden_layer_sizes=(4,), max_iter=30, random_state=0, class_weight="balanced"
    ).fit(X, y)
    recall = [np.mean(m.predict(X[y == 0]) == 0) for m in (plain, balanced)]
    assert recall[1] > recall[0]


def test_dropout_and_callbacks(tmp_path):
    X, X_test, y, y_test = _split("digits")
    log = tmp_path / "log.csv"
    clf = dp.MLPClassifier(dropout=0.2, random_state=0, max_iter=20, callbacks=[dp.CSVLogger(log)])
    clf.fit(X, y)
    assert any(type(layer).__name__ == "Dropout" for layer in clf.model_)
    assert len(log.read_text().splitlines()) == 21  # a header and a row per epoch
    assert clf.score(X_test, y_test) > 0.9
    with pytest.raises(ValueError, match="dropout must be a rate .* one per hidden layer"):
        dp.MLPClassifier(hidden_layer_sizes=(8, 8), dropout=[0.1]).fit(X, y)


@pytest.mark.parametrize("solver", ["adamw", "rmsprop"])
def test_more_solvers(solver):
    X, X_test, y, y_test = _split("breast-cancer")
    clf = dp.MLPClassifier(solver=solver, random_state=0, max_iter=50).fit(X, y)
    assert clf.score(X_test, y_test) > 0.94


def test_multi_label_and_multi_output():
    X, Y = make_multilabel_classification(n_samples=200, n_classes=4, random_state=0)
    clf = dp.MLPClassifier(max_iter=100, random_state=0).fit(X, Y)
    assert clf.predict(X).shape == (200, 4) and clf.out_activation_ == "logistic"
    assert clf.score(X, Y) > 0.5
    rng = np.random.default_rng(0)
    targets = np.stack([X @ rng.standard_normal(20), X @ rng.standard_normal(20)], axis=1)
    reg = dp.MLPRegressor(max_iter=300, random_state=0).fit(
        StandardScaler().fit_transform(X), targets
    )
    assert reg.predict(StandardScaler().fit_transform(X)).shape == (200, 2)
    assert reg.n_outputs_ == 2 and reg.out_activation_ == "identity"


def test_poisson_regression_predicts_positive_rates():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1]))
    reg = dp.MLPRegressor(loss="poisson", max_iter=200, random_state=0).fit(X, y)
    assert reg.out_activation_ == "exp" and (reg.predict(X) > 0).all()
    with pytest.raises(ValueError, match="negative which is not allowed for Poisson"):
        reg.fit(X, -y)


def test_float32_stays_float32_unless_asked():
    X, _, y, _ = _split("breast-cancer")
    assert dp.MLPClassifier(max_iter=2).fit(X.astype(np.float32), y).model_.dtype == np.float32
    assert dp.MLPClassifier(max_iter=2).fit(X, y).model_.dtype == np.float64
    assert dp.MLPClassifier(max_iter=2, dtype="float32").fit(X, y).model_.dtype == np.float32


def test_pickle_and_safe_model_files_give_back_a_fitted_estimator(tmp_path):
    X, X_test, y, y_test = _split("digits")
    clf = dp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
    unpickled = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(unpickled.predict_proba(X_test), clf.predict_proba(X_test))
    path = tmp_path / "clf.safetensors"
    dp.save(clf, path)
    loaded = dp.load(path)
    assert isinstance(loaded, dp.MLPClassifier) and loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
    assert loaded.loss_curve_ == clf.loss_curve_ and loaded.n_iter_ == 5
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    # warm_start after loading continues exactly where the original continues
    clf.set_params(warm_start=True).fit(X, y)
    loaded.set_params(warm_start=True).fit(X, y)
    np.testing.assert_array_equal(loaded.model_.flat_values, clf.model_.flat_values)
    assert dp.inspect_file(path).kind == "estimator"
    reg = dp.MLPRegressor(max_iter=3, random_state=0).fit(X, y.astype(float))
    dp.save(reg, path)
    np.testing.assert_array_equal(dp.load(path).predict(X_test), reg.predict(X_test))


def test_coefs_are_views_of_the_model_and_can_be_set():
    X, _, y, _ = _split("breast-cancer")
    clf = dp.MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(30, 3), (3, 1)]
    assert [b.shape for b in clf.intercepts_] == [(3,), (1,)]
    clf.coefs_ = [np.zeros((30, 3)), np.zeros((3, 1))]
    clf.intercepts_ = [np.zeros(3), np.array([5.0])]
    np.testing.assert_allclose(clf.predict_proba(X[:2])[:, 1], 1 / (1 + np.exp(-5.0)))


# --- bad input: the errors scikit-learn users know, at fit -----------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"solver": "newton"}, r"The 'solver' parameter of MLPClassifier must be a str among"),
        ({"alpha": -1}, r"The 'alpha' parameter of MLPClassifier must be a float in the range"),
        ({"hidden_layer_sizes": (10, 0)}, r"hidden_layer_sizes must be > 0"),
        ({"batch_size": 0}, r"The 'batch_size' parameter"),
    ],
)
def test_invalid_parameters_are_named_at_fit_not_init(params, message):
    X, _, y, _ = _split("breast-cancer")
    clf = dp.MLPClassifier(**params)  # nothing raised yet
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y)


def test_bad_data_gets_scikit_learns_errors():
    X, _, y, _ = _split("breast-cancer")
    clf = dp.MLPClassifier(max_iter=2)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.fit(bad, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, y + 0.5)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="X has 29 features, but MLPClassifier is expecting 30"):
        clf.predict(X[:, :29])


def test_training_that_diverges_raises_a_clear_error():
    X, _, y, _ = _split("breast-cancer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="training diverged: non-finite"):
            dp.MLPRegressor(solver="sgd", learning_rate_init=1e3, momentum=0.0, max_iter=20).fit(
                X * 1e3, y * 1e6
            )


def test_max_iter_without_convergence_warns():
    X, _, y, _ = _split("breast-cancer")
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
        dp.MLPClassifier(max_iter=2).fit(X, y)


@pytest.mark.parametrize("solver", ["lbfgs", "adam", "sgd"])
def test_every_solver_refuses_negative_or_all_zero_sample_weights(solver):
    """L-BFGS too (it took negative weights: loss_ nan); all-zero ones as scikit-learn says."""
    X, y = load_iris(return_X_y=True)
    negative = np.ones(len(y))
    negative[3] = -2.0
    with pytest.raises(ValueError, match=r"sample_weight must be >= 0, got -2.0 at row 3"):
        dp.MLPClassifier(solver=solver, max_iter=5).fit(X, y, sample_weight=negative)
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero"):
        dp.MLPClassifier(solver=solver, max_iter=5).fit(X, y, sample_weight=np.zeros(len(y)))


def _estimator_file(tmp_path, change):
    """A fitted classifier's file, its state changed by ``change(state)``, checksums redone."""
    from deltaprop.files import format as fileformat

    X, y = load_iris(return_X_y=True)
    path = tmp_path / "clf.safetensors"
    dp.save(dp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y), path)
    contents = fileformat.read_file(path)
    info = dict(contents.info)
    change(info["estimator"]["state"])
    info.pop("tensor_sha256", None)
    crafted = tmp_path / "crafted.safetensors"
    crafted.write_bytes(fileformat.encode(dict(contents.tensors), info))
    return crafted


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["classes"]["values"].append(3), r"4 classes \(multiclass\) need 4 outputs"),
        (lambda s: s.update(n_features_in_=7), "n_features_in_ is 7, the network takes 4"),
        (lambda s: s["classes"].update(values=[0, 0, 1]), "must be 2 or more distinct labels"),
        (lambda s: s["classes"].update(values=[10**30, 1, 2]), "does not make a MLPClassifier"),
    ],
)
def test_an_estimator_file_whose_state_does_not_fit_its_network_is_refused(
    tmp_path, change, message
):
    path = _estimator_file(tmp_path, change)
    with pytest.raises(dp.ModelFileError, match=message):
        dp.load(path)


def test_a_diverging_run_with_early_stopping_ends_as_scikit_learns():
    """scikit-learn's test_mlp_diverging_loss (its issue 29504): no error, the last validation
    score NaN, the best weights kept."""
    X, y = load_iris(return_X_y=True)
    mlp = dp.MLPRegressor(
        hidden_layer_sizes=100,
        activation="identity",
        solver="sgd",
        alpha=0.0001,
        learning_rate="constant",
        learning_rate_init=1,
        shuffle=True,
        max_iter=20,
        early_stopping=True,
        n_iter_no_change=10,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
    assert str(mlp.validation_scores_[-1]) == str(np.nan)
    assert isinstance(mlp.validation_scores_[-1], float)
    assert len(mlp.validation_scores_) == len(mlp.loss_curve_) == mlp.n_iter_
    assert np.isfinite(mlp.predict(X)).all()
    assert mlp.best_validation_score_ == max(s for s in mlp.validation_scores_ if s == s)


def test_non_finite_weights_raise_scikit_learns_message():
    """scikit-learn's test_nonfinite_params: its exact sentence, after deltaprop's account."""
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    message = (
        "Solver produced non-finite parameter weights. The input data may contain large"
        " values and need to be preprocessed."
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=message) as raised:
            dp.MLPRegressor().fit(X, y)
    assert str(raised.value).startswith("training diverged: non-finite loss")
