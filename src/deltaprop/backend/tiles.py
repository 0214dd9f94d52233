"""The compiled kernels' layer table and the tiles they split each product into.

Plain Python, no compiler: the table is built (and the tiles sized) before any compiled code is
loaded, by :mod:`deltaprop.nn.dense_chain`; :mod:`.cpu_kernels` reads it.
"""

from __future__ import annotations

import os

COLUMNS = ("w_at", "b_at", "fan_in", "fan_out", "gate", "acts_at", "out_tile", "in_tile")
"""The layer table's columns, one row per Dense layer: W's and b's offsets in the flat
parameters (b: −1 without bias), fan-in, fan-out, the gate (1 where a ReLU follows), the
layer's offset in the activation and delta workspaces, and the widths of the tiles its products
are split into (:func:`tile_width` of fan-out and of fan-in). Kernels unpack a row in this
order."""
W_AT, B_AT, FAN_IN, FAN_OUT, GATE, ACTS_AT, OUT_TILE, IN_TILE = range(len(COLUMNS))


MIN_TILE = 64
"""The fewest output units of a tile (the last tile of a product may be shorter)."""

ROW_TILE = 4096
"""Elements per slice of the optimizer's update (the update is elementwise: the slices are for
the threads, at fixed places, so that they do not move with the thread count either)."""


def tile_width(units: int, cores: int | None = None) -> int:
    """The width of the tiles a product with ``units`` output units is split into: each
    product is cut by output units at fixed places, one tile per core of the machine
    (``os.cpu_count()``), rounded up to 16 units (BLAS's widest register block) and at least
    :data:`MIN_TILE`; the threads take whole tiles. BLAS gives a unit's number by the shape of
    the product it is in, so tiles that do not move with the thread count give the same numbers
    on any number of threads, and one tile per core keeps the products as large as a split by
    thread would."""
    cores = max(1, (os.cpu_count() or 1) if cores is None else cores)
    width = -(-units // cores)
    return max(MIN_TILE, -(-width // 16) * 16)
