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


def main() -> None:
    """Entry point: ``deltaprop`` with no arguments trains on the default data set;
    ``--debug`` may stand anywhere on the line."""
    args = sys.argv[1:]
    if "--debug" in args:
        args.remove("--debug")
        args.insert(0, "--debug")
    if not [a for a in args if a != "--debug"]:
        args.append("train")
    sys.argv[1:] = args
    app()
