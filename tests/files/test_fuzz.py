"""Mutated model, checkpoint and estimator files, their checksums recomputed so every semantic
check is reached: each one loads and predicts finite numbers, or raises ModelFileError."""

import copy
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

import deltaprop as dp
from deltaprop.files import format as fileformat


def _base_files(directory):
    rng = np.random.default_rng(0)
    net = dp.Sequential(
        dp.Dense(4, 5, rng=rng),
        dp.BatchNorm(5),
        dp.ReLU(),
        dp.Dropout(0.2),
        dp.Dense(5, 3, rng=rng),
    )
    model = directory / "model.safetensors"
    dp.save(net, model, loss=dp.SoftmaxCrossEntropy())
    X = rng.standard_normal((40, 4))
    y = rng.integers(0, 3, 40)
    checkpoint = directory / "checkpoint.safetensors"
    trained = dp.mlp([4, 5, 3], rng=np.random.default_rng(0))
    dp.fit(
        trained,
        dp.SoftmaxCrossEntropy(),
        dp.Adam(trained.parameters(), lr=dp.CosineDecay(1e-2, total_steps=50)),
        X,
        y,
        epochs=1,
        rng=np.random.default_rng(0),
        verbose=0,
        callbacks=[
            dp.EarlyStopping("loss", restore_best_weights=True),
            dp.ModelCheckpoint(checkpoint),
        ],
    )
    estimator = directory / "estimator.safetensors"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = dp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    dp.save(fitted, estimator)
    return {
        kind: fileformat.read_file(path)
        for kind, path in (("model", model), ("checkpoint", checkpoint), ("estimator", estimator))
    }, (X, y)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    return _base_files(tmp_path_factory.mktemp("bases"))


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63)])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
    | st.sampled_from(["Dense", "ReLU", "Sequential", "SoftmaxCrossEntropy", "Adam", "float64"])
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value, prefix=()):
    """Every (path, value) inside a JSON document."""
    yield prefix, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _mutate_document(data, info):
    paths = [p for p, _ in _paths(info) if p and p[0] != "tensor_sha256"]
    for _ in range(data.draw(st.integers(1, 3), label="document mutations")):
        path = data.draw(st.sampled_from(paths), label="path")
        parent = info
        try:
            for step in path[:-1]:
                parent = parent[step]
            if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(json_values, label="value")
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation changed the way there


def _mutate_tensors(data, tensors):
    names = sorted(tensors)
    for _ in range(data.draw(st.integers(0, 2), label="tensor mutations")):
        name = data.draw(st.sampled_from(names), label="tensor")
        kind = data.draw(st.sampled_from(["values", "shape", "drop", "dtype"]), label="how")
        if kind == "drop":
            tensors.pop(name, None)
        elif name not in tensors:
            continue
        elif kind == "values":
            array = np.array(tensors[name], copy=True)
            fills = [np.nan, np.inf, -1.0, 0.0, 1e30, -1e30]
            if array.dtype.kind in "iu":
                bounds = np.iinfo(array.dtype)
                fills = [int(bounds.min), 0, int(bounds.max)]
            fill = data.draw(st.sampled_from(fills), label="fill")
            if array.size:
                array.reshape(-1)[data.draw(st.integers(0, array.size - 1))] = fill
            tensors[name] = array
        elif kind == "shape":
            shape = data.draw(st.lists(st.integers(0, 6), min_size=0, max_size=3), label="shape")
            tensors[name] = np.ones(shape, dtype=np.asarray(tensors[name]).dtype)
        else:
            dtype = data.draw(st.sampled_from([np.float16, np.int64, np.float64, np.uint8]))
            with np.errstate(invalid="ignore", over="ignore"):  # NaN or 1e30 as an integer
                tensors[name] = np.asarray(tensors[name]).astype(dtype)


def _use(loaded):
    """Predict with whatever loaded: the numbers must be finite."""
    if isinstance(loaded, tuple):
        model, loss = loaded
        width = model.input_features()
        if width is None or loss is None:
            return
        outputs = dp.predict(model, loss, np.random.default_rng(2).standard_normal((6, width)))
        assert np.all(np.isfinite(outputs)), outputs
    else:
        X = np.random.default_rng(2).standard_normal((6, loaded.n_features_in_))
        assert np.all(np.isfinite(loaded.predict_proba(X)))
        assert set(loaded.predict(X)) <= set(loaded.classes_)


def _check_mutated(bases, data, tmp_path_factory):
    files, (X, y) = bases
    kind = data.draw(st.sampled_from(sorted(files)), label="file")
    contents = files[kind]
    info = copy.deepcopy(contents.info)
    tensors = {name: np.array(array) for name, array in contents.tensors.items()}
    _mutate_document(data, info)
    _mutate_tensors(data, tensors)
    info.pop("tensor_sha256", None)
    try:
        encoded = fileformat.encode(tensors, info)
    except (TypeError, ValueError):
        return  # not even writable (a document JSON cannot hold): nothing to load
    path = tmp_path_factory.mktemp("fuzz") / f"{kind}.safetensors"
    path.write_bytes(encoded)
    tracemalloc.start()
    try:
        try:
            loaded = dp.load(path)
        except dp.ModelFileError:
            loaded = None
        if loaded is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                _use(loaded)
        if kind == "checkpoint":
            _resume_from(path, X, y)
        assert tracemalloc.get_traced_memory()[1] < 200 << 20  # bounded memory
    finally:
        tracemalloc.stop()


def _resume_from(path, X, y):
    """A mutated checkpoint resumes to finite weights, or is refused with ModelFileError."""
    net = dp.mlp([4, 5, 3], rng=np.random.default_rng(0))
    opt = dp.Adam(net.parameters(), lr=dp.CosineDecay(1e-2, total_steps=50))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a mutated state may blow up
        try:
            dp.fit(
                net,
                dp.SoftmaxCrossEntropy(),
                opt,
                X,
                y,
                epochs=2,
                rng=np.random.default_rng(0),
                verbose=0,
                callbacks=[dp.EarlyStopping("loss", restore_best_weights=True)],
                resume_from=path,
            )
        except dp.ModelFileError:
            return
    assert np.all(np.isfinite(net.flat_values))


_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=150, deadline=None, suppress_health_check=_HEALTH)
@given(data=st.data())
def test_mutated_files_load_and_predict_finite_numbers_or_give_model_file_error(
    bases, data, tmp_path_factory
):
    _check_mutated(bases, data, tmp_path_factory)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=_HEALTH)
@given(data=st.data())
def test_many_more_mutated_files(bases, data, tmp_path_factory):
    _check_mutated(bases, data, tmp_path_factory)
