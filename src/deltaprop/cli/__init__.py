"""The ``deltaprop`` command: ``train``, ``evaluate``, ``predict``, ``datasets``, ``info``,
``gradcheck``, ``explain`` and ``playground``; each lives in the module named after its job."""

from __future__ import annotations

import sys

from . import explain as cli_explain
from . import model as cli_model
from . import playground as cli_playground
from . import train as cli_train
from .shared import app

__all__ = ["app", "cli_explain", "cli_model", "cli_playground", "cli_train", "main"]


QUICK_START = (
    "Quick start: deltaprop train  (or python -m deltaprop) trains on the built-in breast-cancer "
    "set; deltaprop train --data your.csv --target COLUMN trains on your file."
)


def main(*, train_by_default: bool = False) -> None:
    """Entry point: ``deltaprop`` with no arguments shows the help and the quick start (as
    git and pip do); ``python -m deltaprop`` with none trains on the default data set (the
    README's first command, ``train_by_default``). ``--debug`` may stand anywhere on the line."""
    args = sys.argv[1:]
    if "--debug" in args:
        args.remove("--debug")
        args.insert(0, "--debug")
    if not [a for a in args if a != "--debug"]:
        if not train_by_default:
            sys.argv[1:] = ["--help"]
            try:
                app()
            except SystemExit:
                print(QUICK_START)
                raise
        args.append("train")
    sys.argv[1:] = args
    app()
