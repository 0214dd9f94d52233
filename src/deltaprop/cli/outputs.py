"""Where a ``deltaprop train`` run writes: the model file and the plots, claimed before any
work is done, and the directories made for them removed again if the run ends before writing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ..data import catalog as datasets
from . import plots
from .shared import claim_output, fail, fresh_run_directory, user_input


@contextmanager
def removed_unless_written(created: list[Path]) -> Iterator[None]:
    """Remove the directories made for the outputs if the run ends before writing into them:
    a failed command leaves no stray directories."""
    try:
        yield
    except BaseException:
        for directory in reversed(created):
            with suppress(OSError):
                directory.rmdir()  # only ever an empty one
        raise


def make_directory(path: Path, created: list[Path]) -> None:
    missing = [p for p in (path, *path.parents) if not p.exists()]
    with user_input("--plots"):
        path.mkdir(parents=True, exist_ok=True)
    created.extend(reversed(missing))


def outputs(
    data: str,
    out: Path | None,
    plots_dir: Path | None,
    no_plots: bool,
    force: bool,
    created: list[Path],
) -> tuple[Path | None, Path | None]:
    """Where the model and the plots go, checked before any work is done; the directories it
    makes are added to ``created``."""
    if out is None and plots_dir is None:
        run_dir = fresh_run_directory(Path(data).stem if datasets.is_file_name(data) else data)
        out, plots_dir = run_dir / "model.safetensors", None if no_plots else run_dir
        make_directory(run_dir, created)
    if no_plots:
        plots_dir = None
    if out is not None:
        claim_output(out, force, "--out")
    if plots_dir is not None:
        if plots_dir.exists() and not plots_dir.is_dir():
            fail(f"--plots: {str(plots_dir)!r} is a file, not a directory")
        make_directory(plots_dir, created)
        for name in plots.FILES.values():
            claim_output(plots_dir / name, force, "--plots")
    return out, plots_dir
