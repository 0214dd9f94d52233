"""``python -m deltaprop``: the command line, as ``deltaprop``; with no arguments it trains on
the default data set (README's first command)."""

from .cli import main

main(train_by_default=True)
