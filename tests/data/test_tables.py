import math

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.data.tables import Table, read_table


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_a_header_quoted_fields_and_text(tmp_path):
    path = write(
        tmp_path,
        "a.csv",
        'size,"name, full",label\n1.5,"Smith, J.",yes\n2,"say ""hi""",no\n',
    )
    table = read_table(path)
    assert table.header and table.names == ("size", "name, full", "label")
    np.testing.assert_array_equal(table.column("size"), [1.5, 2.0])
    assert table.column("name, full").tolist() == ["Smith, J.", 'say "hi"']
    assert table.is_text("label") and not table.is_text("size")


def test_missing_values_are_nan_in_numbers_and_none_in_text(tmp_path):
    path = write(tmp_path, "m.csv", "a,b\n1,x\n,y\nNA,\n4,?\n")
    table = read_table(path)
    a = table.column("a")
    assert a[0] == 1 and math.isnan(a[1]) and math.isnan(a[2]) and a[3] == 4
    assert table.column("b").tolist() == ["x", "y", None, None]


def test_a_file_without_a_header_is_recognised_and_named_by_position(tmp_path):
    path = write(tmp_path, "h.csv", "1,2,cat\n3,4,dog\n5,6,cat\n")
    table = read_table(path)
    assert not table.header and table.names == ("0", "1", "2")
    np.testing.assert_array_equal(table.column("1"), [2, 4, 6])
    assert read_table(path, header=True).names == ("1", "2", "cat")


def test_a_single_column_file(tmp_path):
    table = read_table(write(tmp_path, "s.csv", "value\n1\n2\n3\n"))
    assert table.names == ("value",) and table.n_rows == 3
    headless = read_table(write(tmp_path, "t.csv", "1\n2\n3\n"))
    assert headless.names == ("0",) and headless.n_rows == 3


def test_tsv_and_blank_lines(tmp_path):
    table = read_table(write(tmp_path, "x.tsv", "a\tb\n1\t2\n\n3\t4\n"))
    np.testing.assert_array_equal(table.numeric(["a", "b"]), [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no rows"),
        ("a,b\n", "holds a header row and no data"),
        ("a,b\n1,2\n3\n", "line 3: 1 fields where the first row has 2"),
        ("a,a\n1,2\n", "column names must be unique; repeated: ['a']"),
    ],
)
def test_malformed_csv_is_refused_with_the_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_table(write(tmp_path, "bad.csv", text))


def test_bytes_that_are_not_utf8_and_missing_files(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"a\n\xe9\n")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        read_table(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="is a directory"):
        read_table(tmp_path)


def test_npz_columns_and_matrices(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.arange(6.0).reshape(3, 2), y=np.array(["a", "b", "a"]))
    table = read_table(path)
    assert table.names == ("X[0]", "X[1]", "y")
    np.testing.assert_array_equal(table.column("X[1]"), [1, 3, 5])
    assert table.column("y").tolist() == ["a", "b", "a"]
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"array 'X' has shape \(2, 2, 2\)"):
        read_table(bad)
    uneven = tmp_path / "uneven.npz"
    np.savez(uneven, a=np.zeros(2), b=np.zeros(3))
    with pytest.raises(ValueError, match="different lengths"):
        read_table(uneven)
    pickled = tmp_path / "p.npz"
    np.savez(pickled, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="not an NPZ file of plain arrays"):
        read_table(pickled)


def test_parquet_numbers_text_and_nulls(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1.0, None, 3.0], "n": [1, 2, 3], "c": ["a", None, "b"]}), path)
    table = read_table(path)
    assert table.names == ("x", "n", "c")
    assert math.isnan(table.column("x")[1]) and table.column("n").dtype == np.float64
    assert table.column("c").tolist() == ["a", None, "b"]
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="is not a readable Parquet file"):
        read_table(tmp_path / "junk.parquet")


def test_table_operations_keep_a_matrix_without_copies():
    X = np.arange(12.0).reshape(4, 3)
    table = Table.from_matrix(X, ("a", "b", "c"))
    assert table.numeric(["a", "b", "c"]) is X
    np.testing.assert_array_equal(table.numeric(["c", "a"]), X[:, [2, 0]])
    assert table.without("b").names == ("a", "c")
    assert table.take(np.array([3, 0])).n_rows == 2
    with pytest.raises(KeyError, match="no column 'z'"):
        table.column("z")


def test_npz_column_names_given_twice_are_refused(tmp_path):
    """A 2-D X gives the columns X[0], X[1]: a 1-D member named "X[0]" would lose one."""
    from deltaprop.data.columnar import read_npz

    path = tmp_path / "two.npz"
    np.savez(path, X=np.ones((5, 2)), **{"X[0]": np.zeros(5)})
    with pytest.raises(ValueError, match=r"the column name 'X\[0\]' is given twice"):
        read_npz(path)


def test_an_npz_member_claiming_more_than_it_holds_is_refused_before_allocating(tmp_path):
    import io
    import tracemalloc
    import zipfile

    from deltaprop.data.columnar import read_npz

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (2**45,)}
    )
    path = tmp_path / "claims.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", header.getvalue() + b"\x00" * 16)
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"array 'X' claims shape \(35184372088832,\) of float64"):
        read_npz(path)
    assert tracemalloc.get_traced_memory()[1] < 1 << 20
    tracemalloc.stop()


def test_a_header_of_pandas_integer_labels_is_a_header(tmp_path):
    """pandas writes 0,1,2,... for unnamed columns: not a row of data (it was read as one)."""
    from deltaprop.data.tables import read_table

    path = tmp_path / "pandas.csv"
    path.write_text("0,1,2\n0.5,1.5,1\n2.5,3.5,0\n")
    table = read_table(path)
    assert table.names == ("0", "1", "2") and table.n_rows == 2
    assert read_table(path, header=False).n_rows == 3
    dataset = dp.datasets.from_file(path, target="2")
    assert dataset.n_rows == 2
    assert dataset.source.endswith(
        "its first row names the columns, as guessed: --header or --no-header to say"
    )
    assert "as guessed" not in dp.datasets.from_file(path, target="2", header=True).source


def test_numbers_with_thousands_separators_are_numbers(tmp_path):
    from deltaprop.data.tables import read_table

    path = tmp_path / "prices.csv"
    path.write_text('price,y\n"35,000",1\n"1,234.5",0\n17,1\n')
    np.testing.assert_array_equal(read_table(path).column("price"), [35000.0, 1234.5, 17.0])


def test_a_column_of_numbers_with_a_few_bad_cells_is_refused_not_encoded(tmp_path):
    from deltaprop.data.tables import read_table

    path = tmp_path / "typo.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)) + "1O,0\n")
    with pytest.raises(
        ValueError,
        match=r"column 'x' holds numbers, but 1 of its 21 cells are not "
        r"\(row 21: '1O'\)",
    ):
        read_table(path)
    text = tmp_path / "text.csv"  # mostly text: a column of categories
    text.write_text("c,y\nred,1\nblue,0\n3,1\ngreen,0\n")
    assert read_table(text).column("c").tolist() == ["red", "blue", "3", "green"]


def test_parquet_times_and_decimals_are_numbers_and_bad_columns_are_named(tmp_path):
    import datetime
    import decimal

    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from deltaprop.data.tables import read_table

    path = tmp_path / "kinds.parquet"
    table = pa.table(
        {
            "price": pa.array([decimal.Decimal("1.50"), decimal.Decimal("2.25")]),
            "at": pa.array(
                [datetime.datetime(1970, 1, 1, 0, 0, 10), datetime.datetime(1970, 1, 2)]
            ),
            "day": pa.array([datetime.date(1970, 1, 2), datetime.date(1970, 1, 3)]),
        }
    )
    pq.write_table(table, path)
    read = read_table(path)
    assert read.column("price").tolist() == [1.5, 2.25]
    assert read.column("at").tolist() == [10.0, 86400.0]
    assert read.column("day").tolist() == [86400.0, 172800.0]
    lists = tmp_path / "lists.parquet"
    pq.write_table(pa.table({"tags": pa.array([[1, 2], [3]])}), lists)
    with pytest.raises(ValueError, match=r"column 'tags' holds list<element: int64> values"):
        read_table(lists)
    twice = tmp_path / "twice.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]), twice)
    with pytest.raises(ValueError, match=r"column names must be unique; repeated: \['a'\]$"):
        read_table(twice)


def test_excel_csv_with_semicolons_decimal_commas_a_bom_and_quoted_names(tmp_path):
    """As Excel writes CSV where the decimal separator is a comma."""
    path = tmp_path / "wine.csv"
    path.write_bytes(
        '\ufeff"alcohol level";"color";class\n13,2;red;1\n12,5;white;0\n-1,5e2;red;1\n'.encode()
    )
    table = read_table(path)
    assert table.names == ("alcohol level", "color", "class")
    assert table.column("alcohol level").tolist() == [13.2, 12.5, -150.0]
    assert table.column("color").tolist() == ["red", "white", "red"]
    dataset = dp.datasets.from_file(path, target="class")
    assert dataset.n_rows == 3 and dataset.class_names == (0, 1)
