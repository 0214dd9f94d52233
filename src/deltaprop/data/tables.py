"""Tables of named columns, and the readers of the user's CSV, TSV, Parquet and NPZ files.

A :class:`Table` is what a data file holds before any preprocessing: named columns, each either
numeric (float64, NaN where a value is missing) or text (an object array of ``str``, ``None``
where a value is missing). Which columns are features and which is the target, and how text is
encoded, is decided later (:mod:`deltaprop.data.preprocessing`), so the same reader serves
``train``, ``evaluate`` and ``predict``.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backend.arrays import Array

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})
"""Field texts read as a missing value (compared lower-cased, without surrounding blanks)."""

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".npz": "npz"}
"""File suffixes the readers know, and the format each names."""


@dataclass(frozen=True)
class Table:
    """Named columns of equal length; numeric columns are float64, text columns object arrays.

    ``matrix`` holds the columns as one (N, C) float array when every column is numeric and the
    table was built from a matrix (an image data set): no per-column copies are made then.

    Attributes:
        names: column names, in file order (``"0"``, ``"1"``, ... for a file without a header).
        header: whether the names came from the file (a header row, Parquet, NPZ keys).
    """

    names: tuple[str, ...]
    columns: tuple[Array, ...] = ()
    matrix: Array | None = None
    header: bool = True
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            seen = [n for i, n in enumerate(self.names) if n in self.names[:i]]
            raise ValueError(f"column names must be unique; repeated: {sorted(set(seen))}")
        self._index.update({name: i for i, name in enumerate(self.names)})
        if self.matrix is None and len(self.columns) != len(self.names):
            raise ValueError(f"{len(self.names)} names for {len(self.columns)} columns")

    @classmethod
    def from_matrix(cls, X: Array, names: tuple[str, ...] | None = None) -> Table:
        """A table over the columns of a numeric matrix ``X`` (N, C), kept as it is."""
        if names is None:
            names = tuple(str(j) for j in range(X.shape[1]))
        if len(names) != X.shape[1]:
            raise ValueError(f"{len(names)} names for a matrix of {X.shape[1]} columns")
        return cls(names=tuple(names), matrix=X)

    @property
    def n_rows(self) -> int:
        if self.matrix is not None:
            return int(self.matrix.shape[0])
        return len(self.columns[0]) if self.columns else 0

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def column(self, name: str) -> Array:
        """The column called ``name``: float64, or an object array of text."""
        if name not in self._index:
            raise KeyError(f"no column {name!r}; the columns are {list(self.names)}")
        j = self._index[name]
        return self.matrix[:, j] if self.matrix is not None else self.columns[j]

    def is_text(self, name: str) -> bool:
        return self.matrix is None and self.column(name).dtype == object

    def numeric(self, names: tuple[str, ...] | list[str]) -> Array:
        """The named numeric columns side by side, shape (N, len(names)); no copy when they are
        all the matrix's columns in order."""
        if self.matrix is not None:
            if tuple(names) == self.names:
                return self.matrix
            return self.matrix[:, [self._index[n] for n in names]]
        if not names:
            return np.empty((self.n_rows, 0))
        return np.column_stack([self.column(n) for n in names])

    def without(self, name: str) -> Table:
        """This table less one column."""
        self.column(name)  # KeyError naming the columns
        keep = tuple(n for n in self.names if n != name)
        if self.matrix is not None:
            return Table(keep, matrix=self.numeric(keep), header=self.header)
        return Table(keep, tuple(self.column(n) for n in keep), header=self.header)

    def take(self, rows: Array | slice) -> Table:
        """The rows ``rows`` (an index array, or a slice) of every column."""
        if self.matrix is not None:
            return Table(self.names, matrix=self.matrix[rows], header=self.header)
        return Table(self.names, tuple(c[rows] for c in self.columns), header=self.header)


# --- text fields to columns -------------------------------------------------------------------


def is_missing(text: str) -> bool:
    return text.strip().lower() in MISSING


_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")
"""A number written with thousands separators, such as ``35,000`` or ``1,234.5``."""

_DECIMAL_COMMA = re.compile(r"^(\s*[+-]?\d*),(\d+(?:[eE][+-]?\d+)?\s*)$")
"""A number written with a decimal comma, in a file separated by semicolons."""

MOSTLY_NUMBERS = 0.8
"""A column with at least this share of numbers among its present cells is a column of numbers
whose other cells are mistakes, not a column of text."""


def _as_number(text: str) -> float | None:
    """The number a field holds (thousands separators allowed), NaN if it is missing, None if
    it is text."""
    if is_missing(text):
        return math.nan
    try:
        return float(text)
    except ValueError:
        stripped = text.strip()
        return float(stripped.replace(",", "")) if _THOUSANDS.fullmatch(stripped) else None


def _column_from_text(values: list[str], name: str) -> Array:
    """Numeric (float64, NaN for missing) if every present field is a number, else text.

    Raises:
        ValueError: for a column of numbers with a few cells that are not (named, with the
            first of them): a typo is not a category.
    """
    try:
        return np.array(values, dtype=np.float64)  # the common case, parsed in one call
    except ValueError:
        pass
    numbers = [_as_number(v) for v in values]
    if all(n is not None for n in numbers):
        return np.array(numbers, dtype=np.float64)
    bad = [i for i, n in enumerate(numbers) if n is None]
    present = sum(not is_missing(v) for v in values)
    if present - len(bad) >= MOSTLY_NUMBERS * present:
        shown = ", ".join(f"row {i + 1}: {values[i]!r}" for i in bad[:3])
        raise ValueError(
            f"column {name!r} holds numbers, but {len(bad)} of its {present} cells are not "
            f"({shown}{', ...' if len(bad) > 3 else ''}); correct them, or leave the column "
            f"out with --drop {name!r}"
        )
    column = np.empty(len(values), dtype=object)
    column[:] = [None if is_missing(v) else v.strip() for v in values]
    return column


def _guess_header(first: list[str], rest: list[list[str]]) -> bool:
    """A first row is a header when it holds text above a column of numbers, when no column
    holds numbers at all (then its fields can only be names), or when it is 0, 1, 2, ... — the
    labels pandas writes for columns it was given none (a data row of exactly those is unlikely;
    ``header=False`` says otherwise)."""
    if [v.strip() for v in first] == [str(j) for j in range(len(first))] and rest:
        return True
    if not rest:
        return any(_as_number(v) is None for v in first)
    sample = rest[:1000]
    numeric_body = False
    for j, name in enumerate(first):
        body = [row[j] for row in sample if j < len(row)]
        if body and all(_as_number(v) is not None for v in body):
            numeric_body = True
            if _as_number(name) is None:
                return True
    return not numeric_body


def read_delimited(
    path: str | os.PathLike[str], *, delimiter: str | None = ",", header: bool | None = None
) -> Table:
    """Read a CSV or TSV file: quoted fields, missing values, with or without a header row.

    Args:
        delimiter: the field separator (``","`` for CSV, ``"\\t"`` for TSV); None: ``;`` when
            the first line holds more semicolons than commas, else ``,``.
        header: whether the first row names the columns; None guesses (see ``_guess_header``).

    Raises:
        ValueError: for an empty file, a row of another length than the first (its line is
            named), or text that is not UTF-8.
    """
    text = _text_of(Path(path))
    if delimiter is None:
        delimiter = _sniff(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if row and any(field.strip() for field in row):  # blank lines are skipped
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as error:
        raise ValueError(f"{str(path)!r}, line {reader.line_num}: {error}") from None
    if not rows:
        raise ValueError(f"{str(path)!r} holds no rows")
    width = len(rows[0])
    for row, line in zip(rows, lines, strict=True):
        if len(row) != width:
            other = next((c for c in ",;\t|" if c != delimiter and c in "".join(rows[0])), None)
            hint = f"; are its fields separated by {other!r}? Say so with --sep" if other else ""
            raise ValueError(
                f"{str(path)!r}, line {line}: {len(row)} fields where the first row has "
                f"{width} (fields separated by {delimiter!r}){hint}"
            )
    if header is None:
        header = _guess_header(rows[0], rows[1:])
    if header:
        names = tuple(n.strip() or str(j) for j, n in enumerate(rows[0]))
        rows = rows[1:]
        if not rows:
            raise ValueError(f"{str(path)!r} holds a header row and no data")
    else:
        names = tuple(str(j) for j in range(width))
    if delimiter == ";":  # decimal commas: 3,14 is 3.14
        rows = [[_DECIMAL_COMMA.sub(r"\1.\2", field) for field in row] for row in rows]
    fields = list(zip(*rows, strict=True))
    columns = tuple(_column_from_text(list(f), n) for f, n in zip(fields, names, strict=True))
    return Table(names, columns, header=header)


def read_table(
    path: str | os.PathLike[str], *, header: bool | None = None, delimiter: str | None = None
) -> Table:
    """Read a CSV, TSV, Parquet or NPZ file, chosen by its suffix (CSV for any other).

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: for a file that does not read as a table (the reason is named).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    if p.is_dir():
        raise ValueError(f"{str(path)!r} is a directory, not a data file")
    kind = format_of(p)
    if kind in ("parquet", "npz"):
        from .columnar import read_npz, read_parquet  # here: their imports cost start-up time

        return read_parquet(p) if kind == "parquet" else read_npz(p)
    sep = delimiter if delimiter is not None else ("\t" if kind == "tsv" else None)
    return read_delimited(p, delimiter=sep, header=header)


def format_of(path: Path) -> str:
    """The format a file's suffix names (``data.csv.gz`` is a gzipped ``csv``); CSV for others."""
    suffix = Path(path.stem).suffix if path.suffix.lower() == ".gz" else path.suffix
    return FORMATS.get(suffix.lower(), "csv")


def _text_of(path: Path) -> str:
    """A text file's contents, gunzipped if its name ends in ``.gz``.

    Raises:
        ValueError: for text that is not UTF-8, or a ``.gz`` file that is not gzip.
    """
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rt", encoding="utf-8-sig") as file:
                return file.read()
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{str(path)!r} is not UTF-8 text ({error.reason})") from None
    except (gzip.BadGzipFile, EOFError) as error:
        raise ValueError(f"{str(path)!r} is not a readable gzip file ({error})") from None


def _sniff(text: str) -> str:
    """``;`` for a CSV whose first line has more semicolons than commas (Excel's), else ``,``."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return ";" if first.count(";") > first.count(",") else ","
