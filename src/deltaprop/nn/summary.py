"""A model's summary as Keras prints it: each layer, its output shape and its parameter count,
then the totals — read from the layers themselves, without running the model."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Sequential's own summary() calls this module
    from .sequential import Sequential


def summary(model: Sequential, input_features: int | None = None) -> str:
    """The table of ``model``'s layers: index and type, output shape ``(N, width)``,
    parameters (and buffers such as BatchNorm's running statistics, not trained); then the
    totals and their size in memory. A nested Sequential is one row, as Keras shows a nested
    model.

    Args:
        input_features: the input width, for a model whose first layer does not fix it.

    Raises:
        ValueError: when the input width is unknown (no first layer of fixed width, and no
            ``input_features``).
    """
    width = model.input_features() if input_features is None else input_features
    if width is None:
        raise ValueError(
            "summary: the model's first layer does not fix the input width; pass input_features=..."
        )
    rows = [("layer (type)", "output shape", "parameters")]
    trained = buffered = nbytes = 0
    for index, layer in enumerate(model.layers):
        width = layer.output_features(width)
        count = sum(p.value.size for p in layer.parameters())
        extra = sum(b.size for b in layer.buffers().values())
        trained, buffered = trained + count, buffered + extra
        nbytes += sum(t.nbytes for t in layer.state_dict().values())
        shown = f"{count:,}" + (f" (+{extra:,} buffers)" if extra else "")
        rows.append((f"({index}) {type(layer).__name__}", f"(N, {width})", shown))
    columns = [max(len(row[j]) for row in rows) for j in range(3)]
    rule = "─" * (sum(columns) + 4)
    lines = [f"{type(model).__name__}: {model.input_features() or input_features} inputs", rule]
    for k, row in enumerate(rows):
        lines.append(
            f"{row[0]:<{columns[0]}}  {row[1]:<{columns[1]}}  {row[2]:>{columns[2]}}".rstrip()
        )
        if k == 0:
            lines.append(rule)
    lines += [
        rule,
        f"parameters: {trained:,} trained, {buffered:,} not trained (buffers)",
        f"size: {nbytes / 1024:,.1f} KiB ({model.dtype})",
    ]
    return "\n".join(lines)
