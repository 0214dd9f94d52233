"""``python -m deltaprop``: the command line, as ``deltaprop``."""

from .cli import main

main()
