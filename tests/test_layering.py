"""The package's import levels: a module imports only from strictly lower levels.

This refines ARCHITECTURE.md's table in two places: ``backend`` sits below ``functional`` and
``initializers`` (they take its Array type and dtype checks), and model files (``io``) sit below
training, because ``fit`` resumes from checkpoints and ``ModelCheckpoint`` writes them.
"""

import ast
from pathlib import Path

import deltaprop

LEVELS = {
    "backend": 0,
    "functional": 1,
    "initializers": 1,
    "core": 2,
    "layers": 3,
    "activations": 3,
    "losses": 3,
    "optimizers": 3,
    "schedules": 3,
    "model": 4,
    "io": 5,
    "gradcheck": 5,
    "explain": 5,
    "datasets": 5,
    "train": 6,
    "estimators": 7,
    "plots": 7,
    "cli": 7,
    "__main__": 8,
    "__init__": 8,
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
