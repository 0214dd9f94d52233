"""The package's import levels: a module imports only from strictly lower levels.

The table is the authority; README.md's "Architecture" section draws the same picture in words.
Tiers, bottom up: base (arrays, errors, pure math, argument checks, data in), memory, core
contracts, blocks (layers, losses, optimizers, schedules — siblings that never import each other),
the model, the registry of names, the work done with a model (gradient checks, traces, files,
checkpoints, callbacks, the loop), and the faces a user meets (command line).
"""

import ast
from pathlib import Path

import deltaprop

LEVELS = {
    # base
    "errors": 0,
    "backend": 0,
    "deprecation": 0,
    "atomic": 0,
    "validation": 1,
    "functional": 1,
    "updates": 1,
    "gpu_kernels": 1,
    "devices": 2,
    "fused": 2,
    "adaptive_updates": 2,
    "initializers": 1,
    "tables": 1,
    "idx": 1,
    "dataset": 2,
    "builtin_sets": 3,
    "datasets": 4,
    "preprocessing": 3,
    "fileformat": 1,
    "formulas": 1,
    # core
    "memory": 2,
    "core": 3,
    # blocks
    "layers": 4,
    "activations": 4,
    "losses": 4,
    "optimizers": 4,
    "adaptive_optimizers": 5,
    "schedules": 4,
    "regularization": 4,
    "normalization": 4,
    # model
    "compiled_inference": 4,
    "model": 5,
    "builders": 6,
    # registry
    "registry": 6,
    # work
    "gradcheck": 7,
    "explain": 7,
    "explanation": 7,
    "replay": 11,
    "notation": 8,
    "backward_steps": 12,
    "derivation": 13,
    "neuron": 13,
    "metrics": 7,
    "files": 7,
    "checkpoints": 8,
    "hooks": 9,
    "callbacks": 10,
    "display": 10,
    "inputs": 10,
    "rollback": 10,
    "compiled_step": 10,
    "train": 11,
    "sklearn_training": 11,
    "estimator_files": 6,
    # faces
    "mlp_base": 12,
    "estimators": 13,
    "plots": 12,
    "scoring": 12,
    "commandline": 13,
    "run_report": 14,
    "cli_train": 15,
    "cli_model": 14,
    "cli_explain": 14,
    "playground_settings": 13,
    "playground_session": 14,
    "playground": 15,
    "cli_playground": 16,
    "cli": 17,
    "__main__": 18,
    "__init__": 18,
}
PACKAGE = Path(deltaprop.__file__).parent


def internal_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deltaprop."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(
                a.name.split(".")[1] for a in node.names if a.name.startswith("deltaprop.")
            )
    return found


def test_every_module_has_a_level():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules <= set(LEVELS), f"modules without a level: {modules - set(LEVELS)}"


def test_imports_point_strictly_downward():
    violations = []
    for path in PACKAGE.glob("*.py"):
        level = LEVELS[path.stem]
        for target in internal_imports(path):
            if LEVELS[target] >= level:
                violations.append(
                    f"{path.stem} (level {level}) imports {target} (level {LEVELS[target]})"
                )
    assert not violations, "\n".join(violations)


def test_the_checker_sees_violations(tmp_path):
    bad = tmp_path / "core.py"
    bad.write_text("from .model import Sequential\nfrom . import layers\n")
    assert internal_imports(bad) == {"model", "layers"}
