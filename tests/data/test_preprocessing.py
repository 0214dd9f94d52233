import numpy as np
import pytest

from deltaprop import datasets
from deltaprop.data.preprocessing import Preprocessor
from deltaprop.data.tables import Table, read_table


@pytest.fixture
def pets(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_text(
        "weight,colour,age,kind\n4,black,1,cat\n30,brown,5,dog\n5,white,3,cat\n25,black,7,dog\n"
    )
    return path


def test_fit_one_hot_encodes_text_and_standardizes_numbers(pets):
    data = datasets.from_file(pets, "kind")
    prep = Preprocessor.fit(data, standardize=True, target="kind")
    assert prep.categories == {"colour": ("black", "brown", "white")}
    assert prep.feature_names() == ["weight", "age", "colour=black", "colour=brown", "colour=white"]
    X = prep.transform(data.features)
    assert X.shape == (4, 5) and prep.n_features == 5
    np.testing.assert_allclose(X[:, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X[:, :2].std(axis=0), 1)
    np.testing.assert_array_equal(X[:, 2:], [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_allclose(prep.mean, [16.0, 4.0])


def test_columns_are_matched_by_name_in_any_order_and_extras_ignored(pets, tmp_path):
    prep = Preprocessor.fit(datasets.from_file(pets, "kind"))
    new = tmp_path / "new.csv"
    new.write_text("id,colour,age,weight\n7,white,2,4.5\n")
    np.testing.assert_array_equal(prep.transform(read_table(new)), [[4.5, 2, 0, 0, 1]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("weight,colour\n4,black\n", r"lacks 1 of them: \['age'\]"),
        ("weight,colour,age\n4,purple,1\n", "holds 'purple' \\(row 1\\), a category not seen"),
        (
            "weight,colour,age\n4,black,\n5,black,NaN\n",
            "2 missing, NaN or inf values; the first in row 1, column 'age'",
        ),
        (
            "weight,colour,age\n4,black,old\n",
            "column 'age' was numbers in training, but holds text here \\('old' in row 1\\)",
        ),
        ("weight,colour,age\n4,,1\n", "column 'colour' has 1 missing values"),
    ],
)
def test_data_that_does_not_fit_the_model_is_named(pets, tmp_path, text, message):
    prep = Preprocessor.fit(datasets.from_file(pets, "kind"))
    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        prep.transform(read_table(path))


def test_a_headerless_table_of_the_right_width_is_read_by_position(pets):
    prep = Preprocessor.fit(datasets.from_file(pets, "kind").take(np.arange(4)))
    table = Table(
        ("0", "1", "2"),
        (np.array([4.0]), np.array(["black"], dtype=object), np.array([1.0])),
        header=False,
    )
    np.testing.assert_array_equal(prep.transform(table), [[4, 1, 1, 0, 0]])


def test_targets_encode_and_decode_as_labels(pets):
    prep = Preprocessor.fit(datasets.from_file(pets, "kind"))
    assert prep.encode_target(np.array(["dog", "cat"], dtype=object)).tolist() == [1, 0]
    assert prep.decode(np.array([1, 1, 0])).tolist() == ["dog", "dog", "cat"]
    with pytest.raises(ValueError, match="label 'cow' \\(row 2\\), which is not one of"):
        prep.encode_target(np.array(["cat", "cow"], dtype=object))


def test_numeric_labels_match_whether_read_as_numbers_or_text():
    prep = Preprocessor(columns=("x",), class_names=(0, 1, 2))
    assert prep.encode_target(np.array([2.0, 0.0])).tolist() == [2, 0]
    assert prep.encode_target(np.array(["1", "2"], dtype=object)).tolist() == [1, 2]


def test_a_regression_target_is_scaled_and_mapped_back():
    data = datasets.load("diabetes")
    prep = Preprocessor.fit(data, standardize=True)
    z = prep.encode_target(data.y)
    np.testing.assert_allclose([z.mean(), z.std()], [0, 1], atol=1e-12)
    np.testing.assert_allclose(prep.decode(z), data.y)


def test_identifiers_and_free_text_are_refused_not_encoded(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("name,x,y\n" + "".join(f"person{i},{i},{i % 2}\n" for i in range(20)))
    with pytest.raises(
        ValueError,
        match="column 'name' holds text with 20 distinct values in 20 rows .* --drop 'name'",
    ):
        Preprocessor.fit(datasets.from_file(path, "y"))
    data = datasets.from_file(path, "y", drop=("name",))
    assert Preprocessor.fit(data).columns == ("x",)


def test_the_json_round_trip_is_exact_and_checked(pets):
    prep = Preprocessor.fit(datasets.from_file(pets, "kind"), standardize=True, target="kind")
    again = Preprocessor.from_dict(prep.to_dict())
    assert again == prep
    for broken, message in [
        ({"columns": []}, "columns must be a non-empty list"),
        ({"mean": [1.0]}, "mean must hold 2 finite numbers"),
        ({"scale": [1.0, -1.0]}, "scale must match mean and be > 0"),
        ({"task": "ranking"}, "task must be classification or regression"),
        ({"class_names": ["one"]}, "class_names must list two classes"),
        ({"categories": {"nope": ["a"]}}, "categories must map input columns"),
    ]:
        with pytest.raises(ValueError, match=message):
            Preprocessor.from_dict({**prep.to_dict(), **broken})


def test_a_model_file_keeps_its_preprocessing(pets, tmp_path):
    import deltaprop as dp

    prep = Preprocessor.fit(datasets.from_file(pets, "kind"), standardize=True, target="kind")
    net = dp.mlp([prep.n_features, 4, 1], rng=np.random.default_rng(0))
    path = tmp_path / "m.safetensors"
    dp.save(net, path, loss=dp.SigmoidBinaryCrossEntropy(), preprocessor=prep)
    assert dp.load_preprocessor(path) == prep
    assert dp.inspect_file(path).preprocessing == prep
    assert "one-hot columns: colour" in str(dp.inspect_file(path))
    plain = tmp_path / "plain.safetensors"
    dp.save(net, plain)
    assert dp.load_preprocessor(plain) is None
    wrong = dp.mlp([3, 4, 1], rng=np.random.default_rng(0))
    with pytest.raises(
        ValueError, match="the preprocessor makes 5 features, but the model takes 3"
    ):
        dp.save(wrong, tmp_path / "w.safetensors", preprocessor=prep)
    assert not (tmp_path / "w.safetensors").exists()
