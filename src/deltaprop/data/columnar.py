"""The readers of columnar files: NumPy's NPZ archives (never pickles) and Parquet (through
pyarrow, an optional extra), each into a :class:`~deltaprop.data.tables.Table`."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..backend.arrays import Array
from .tables import Table, is_missing


def read_npz(path: str | os.PathLike[str]) -> Table:
    """Read an NPZ file: each 1-D array is a column named by its key; a 2-D array ``X`` gives
    the columns ``X[0]``, ``X[1]``, ...; string arrays are text columns. Pickled objects are
    refused."""
    columns: dict[str, Array] = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                _check_npz_member(archive, key, path)
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as error:
        raise ValueError(f"{str(path)!r} is not an NPZ file of plain arrays ({error})") from None
    except (OSError, EOFError) as error:
        raise ValueError(f"{str(path)!r} is not a readable NPZ file ({error})") from None
    for key, array in arrays.items():
        if array.ndim == 1:
            named = {key: array}
        elif array.ndim == 2:
            named = {f"{key}[{j}]": array[:, j] for j in range(array.shape[1])}
        else:
            raise ValueError(
                f"{str(path)!r}: array {key!r} has shape {array.shape}; columns are 1-D arrays, "
                "or 2-D arrays of one column per feature"
            )
        clash = sorted(set(named) & set(columns))
        if clash:
            raise ValueError(
                f"{str(path)!r}: the column name {clash[0]!r} is given twice (array {key!r} and "
                "a column of a 2-D array, or another array): rename one"
            )
        columns.update(named)
    lengths = {key: len(c) for key, c in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{str(path)!r}: its arrays have different lengths: {lengths}")
    return Table(tuple(columns), tuple(_plain_column(c) for c in columns.values()))


def _check_npz_member(archive: Any, key: str, path: str | os.PathLike[str]) -> None:
    """Refuse a member whose header claims more data than the member holds, before NumPy
    allocates that much (a few hundred bytes can claim terabytes)."""
    name = key if key in archive.zip.namelist() else f"{key}.npy"
    held = archive.zip.getinfo(name).file_size
    with archive.zip.open(name) as member:
        major, _ = np.lib.format.read_magic(member)
        read_header = (
            np.lib.format.read_array_header_1_0
            if major == 1
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(member)
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > held:
        raise ValueError(
            f"{str(path)!r}: array {key!r} claims shape {shape} of {dtype} ({claimed:,} bytes), "
            f"but holds {held:,} bytes: the file is damaged or crafted"
        )


def _plain_column(values: Any) -> Array:
    """float64 for numbers and booleans (NaN for missing), an object array of str for text."""
    array = np.asarray(values)
    if array.dtype.kind in "biuf":
        return array.astype(np.float64)
    if array.dtype.kind in "US" or array.dtype == object:
        column = np.empty(len(array), dtype=object)
        column[:] = [
            None if v is None or (isinstance(v, str) and is_missing(v)) else str(v)
            for v in array.tolist()
        ]
        return column
    raise ValueError(f"a column of dtype {array.dtype} is neither numbers nor text")


def read_parquet(path: str | os.PathLike[str]) -> Table:
    """Read a Parquet file with pyarrow (``pip install 'deltaprop[parquet]'``)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(
            f"reading {str(path)!r} needs pyarrow: pip install 'deltaprop[parquet]'"
        ) from None
    try:
        schema = pq.read_schema(path).names
        repeated = sorted({n for n in schema if schema.count(n) > 1})
        data = None if repeated else pq.read_table(path)  # pyarrow's own message is 7 lines
    except Exception as error:  # pyarrow raises its own ArrowInvalid and OSError kinds
        raise ValueError(f"{str(path)!r} is not a readable Parquet file ({error})") from None
    if data is None:
        raise ValueError(f"{str(path)!r}: column names must be unique; repeated: {repeated}")
    import pyarrow as pa

    names = tuple(str(n) for n in data.column_names)
    columns = []
    for index, name in enumerate(names):
        chunked = data.column(index)
        kind = chunked.type
        if pa.types.is_nested(kind):
            raise ValueError(
                f"{str(path)!r}: column {name!r} holds {kind} values (lists or records); a "
                "column holds numbers or text"
            )
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_duration(kind):
            chunked = _seconds(chunked, pa)  # times as numbers: seconds (since 1970)
        elif pa.types.is_decimal(kind):
            chunked = chunked.cast(pa.float64())
        if (
            pa.types.is_integer(chunked.type)
            or pa.types.is_floating(chunked.type)
            or (pa.types.is_boolean(chunked.type))
        ):
            values = [math.nan if v is None else float(v) for v in chunked.to_pylist()]
            columns.append(np.array(values, dtype=np.float64))
        else:
            columns.append(_plain_column(chunked.to_pylist()))
    return Table(names, tuple(columns))


def _seconds(chunked: Any, pa: Any) -> Any:
    """A Parquet time column as float seconds (since 1970 for dates and timestamps)."""
    import pyarrow.compute as pc

    kind = chunked.type
    if pa.types.is_date32(kind):
        return pc.multiply(chunked.cast(pa.int32()).cast(pa.float64()), 86400.0)
    if pa.types.is_date64(kind):
        return pc.divide(chunked.cast(pa.int64()).cast(pa.float64()), 1000.0)
    per_second = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[kind.unit]
    if pa.types.is_timestamp(kind) and kind.tz is not None:
        chunked = chunked.cast(pa.timestamp(kind.unit))
    return pc.divide(chunked.cast(pa.int64()).cast(pa.float64()), per_second)
