import gzip
import struct

import numpy as np
import pytest

from deltaprop import datasets


def test_read_idx_round_trip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 4) + images.tobytes())
    np.testing.assert_array_equal(datasets.read_idx(path), images)
    scaled = datasets.read_idx_images(path, rows_per_chunk=1)
    assert scaled.dtype == np.float32 and scaled.shape == (2, 12)
    np.testing.assert_allclose(scaled, images.reshape(2, 12) / 255, rtol=1e-6)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match=r"shape \(10,\), but the body is shorter"):
        datasets.read_idx(short)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.fashion_mnist(tmp_path)


def test_builtin_sets_are_standardized():
    X_train, X_test, y_train, y_test = datasets.digits().train_test_split()
    assert X_train.dtype == np.float32 and X_train.shape[1] == 64
    np.testing.assert_allclose(X_train.mean(axis=0), 0, atol=1e-5)
    assert set(np.unique(y_train)) == set(range(10))


# --- IDX files cut short or corrupt -------------------------------------------------------------


def _idx_bytes(images):
    n, h, w = images.shape
    return bytes([0, 0, 0x08, 3]) + struct.pack(">3I", n, h, w) + images.tobytes()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda b: gzip.compress(b)[:-12], "truncated or corrupt"),
        (lambda b: b"\x1f\x8b" + b"\x00" * 30, "not a readable gzip file|truncated or corrupt"),
        (lambda b: gzip.compress(b[:6]), "the IDX header is cut short"),
        (lambda b: gzip.compress(b + b"\x00"), "the body is longer"),
        (lambda b: gzip.compress(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 2**31)), "truncated"),
        (lambda b: gzip.compress(bytes([0, 0, 0x07, 1])), "unknown IDX element type 0x07"),
    ],
)
def test_idx_reader_refuses_truncated_or_corrupt_gzip_files(tmp_path, make, message):
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(make(_idx_bytes(np.zeros((3, 2, 2), dtype=np.uint8))))
    for reader in (datasets.read_idx, datasets.read_idx_images):
        with pytest.raises(ValueError, match=message):
            reader(path)


def test_fashion_mnist_files_written_by_the_test_are_read_and_checked(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 5), ("t10k", 3)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
        labels = bytes([0, 0, 0x08, 1]) + struct.pack(">I", n) + bytes(range(n))
        (tmp_path / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    data = datasets.fashion_mnist(tmp_path)
    assert data.X.shape == (5, 784) and data.test.X.shape == (3, 784)
    assert data.class_names[9] == "Ankle boot" and data.y.tolist() == [0, 1, 2, 3, 4]
    assert data.X.max() <= 1.0 and data.X.dtype == np.float32
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 2) + bytes(2))
    )
    with pytest.raises(ValueError, match=r"holds \(3, 784\) images but .* \(2,\) labels"):
        datasets.fashion_mnist(tmp_path)


@pytest.mark.skipif(
    not datasets.FASHION_MNIST_DIR.exists(), reason="Debian's dataset-fashion-mnist not installed"
)
def test_the_installed_fashion_mnist():
    data = datasets.load("fashion-mnist")
    assert data.X.shape == (60000, 784) and data.test.X.shape == (10000, 784)
    assert np.bincount(data.y).tolist() == [6000] * 10
    train, test = data.split()
    assert test is data.test and train.test is None


# --- built-in sets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rows", "features", "classes"),
    [
        ("xor", 400, 2, 2),
        ("moons", 400, 2, 2),
        ("circles", 400, 2, 2),
        ("spirals", 400, 2, 2),
        ("blobs", 400, 2, 3),
        ("breast-cancer", 569, 30, 2),
        ("digits", 1797, 64, 10),
        ("iris", 150, 4, 3),
        ("wine", 178, 13, 3),
        ("diabetes", 442, 10, 0),
    ],
)
def test_builtin_sets_have_their_sizes(name, rows, features, classes):
    data = datasets.load(name)
    X, y = data
    assert X.shape == (rows, features) and len(y) == rows
    assert data.n_classes == classes
    assert data.task == ("regression" if name == "diabetes" else "classification")
    if classes:
        assert set(np.unique(y)) == set(range(classes))


def test_synthetic_sets_take_size_noise_and_seed():
    a, b = datasets.spirals(n=100, noise=0.0, seed=3), datasets.spirals(n=100, noise=0.0, seed=3)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, datasets.spirals(n=100, seed=4).X)
    assert np.abs(a.X).max() <= 1.0  # radius from 0 to 1 without noise
    xor = datasets.xor(n=200)
    np.testing.assert_array_equal(xor.y, (xor.X[:, 0] * xor.X[:, 1] < 0).astype(int))
    with pytest.raises(ValueError, match="n must be an integer >= 4, got 2"):
        datasets.moons(n=2)
    with pytest.raises(ValueError, match="noise must be a finite number >= 0, got -1"):
        datasets.circles(noise=-1)


def test_split_is_stratified_seeded_and_standardized_on_the_training_rows():
    data = datasets.load("iris")
    train, test = data.split(0.2, seed=1)
    assert (train.n_rows, test.n_rows) == (120, 30)
    assert np.bincount(test.y).tolist() == [10, 10, 10]
    again = data.split(0.2, seed=1)[1]
    np.testing.assert_array_equal(test.X, again.X)
    X_train, X_test, _, _ = data.train_test_split(0.2, seed=1, standardize=True)
    np.testing.assert_allclose(X_train.mean(axis=0), 0, atol=1e-5)
    assert abs(X_test.mean()) > 1e-4  # the test rows use the training rows' statistics
    with pytest.raises(ValueError, match="test_size must be in"):
        data.split(1.5)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="unknown data set 'mnist'; known: xor, moons"):
        datasets.load("mnist")
    assert datasets.load("Two_Moons").name == "moons"


# --- the user's files ---------------------------------------------------------------------------


def test_a_csv_with_string_labels_becomes_classes(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_text("weight,colour,kind\n4,black,cat\n30,brown,dog\n5,white,cat\n25,black,dog\n")
    data = datasets.from_file(path, "kind")
    assert data.task == "classification" and data.class_names == ("cat", "dog")
    assert data.y.tolist() == [0, 1, 0, 1]
    assert data.features.names == ("weight", "colour") and data.features.is_text("colour")


def test_the_task_is_guessed_from_the_target_and_can_be_forced(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,few,many\n" + "".join(f"{i},{i % 3},{i * 1.5}\n" for i in range(30)))
    assert datasets.from_file(path, "few").task == "classification"
    assert datasets.from_file(path, "few").class_names == (0, 1, 2)
    assert datasets.from_file(path, "many").task == "regression"
    assert datasets.from_file(path, "few", task="regression").task == "regression"


@pytest.mark.parametrize(
    ("target", "options", "message"),
    [
        ("price", {}, r"has no column 'price'; the columns are \['a', 'b', 'label'\]"),
        (None, {}, "name the target column with --target"),
        ("label", {"drop": ("zzz",)}, "has no column 'zzz'"),
        ("b", {}, "target 'b' has 1 missing values"),
        ("label", {"task": "regression"}, "holds text, not numbers"),
        ("label", {"task": "clustering"}, "task must be auto, classification or regression"),
    ],
)
def test_bad_targets_are_named(tmp_path, target, options, message):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,x\n3,,y\n5,6,x\n")
    with pytest.raises(ValueError, match=message):
        datasets.from_file(path, target, **options)


def test_a_headerless_file_names_its_target_by_position(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("1.0,2.0,a\n3.0,4.0,b\n5.0,6.0,a\n")
    data = datasets.load(str(path), target="2")
    assert data.features.names == ("0", "1") and data.class_names == ("a", "b")


def test_a_builtin_name_wins_over_a_directory_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "moons").mkdir()
    assert not datasets.is_file_name("moons") and datasets.load("moons").name == "moons"
    (tmp_path / "mydata").write_text("a,y\n1,0\n2,1\n3,0\n4,1\n")
    assert datasets.is_file_name("mydata") and datasets.is_file_name("x.csv")
