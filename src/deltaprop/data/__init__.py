"""Data in: tables read from files, the IDX format, the Dataset, the built-in sets, and the
preprocessing that turns columns into features (and outputs back into labels).

``dp.datasets`` is :mod:`.catalog`: ``load(name)`` for a built-in set or a file.
"""

from .dataset import Dataset
from .preprocessing import Preprocessor
from .tables import Table, read_table

__all__ = ["Dataset", "Preprocessor", "Table", "read_table"]
