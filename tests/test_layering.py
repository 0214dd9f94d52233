"""The package's rooms and the one direction of imports between them.

A room is a subpackage (``nn/``) or one of the few modules at the top (``errors``). A module
imports only from its own room and from rooms on lower levels; rooms on one level never import
each other. Inside a room, the siblings listed in :data:`SIBLINGS` never import each other
(each layer, each loss family, each optimizer stands alone on the room's base).

README.md's "Rooms, bottom up" table shows the same levels and names every module of each room;
:func:`test_the_readme_table_is_this_table` keeps the two from drifting apart.
"""

import ast
import re
from pathlib import Path

import deltaprop

ROOMS = {
    "errors": 0,
    "backend": 1,
    "validation": 2,
    "nn": 3,
    "data": 3,
    "optim": 4,
    "registry": 5,
    "files": 6,
    "distributed": 6,
    "training": 7,
    "explanation": 8,
    "sklearn": 8,
    "playground": 9,
    "cli": 10,
    "__init__": 11,
    "__main__": 11,
}
"""Each room's level, bottom up."""

SIBLINGS = {
    "backend": {"cpu_kernels", "cuda_kernels"},
    "nn": {"dense", "activations", "normalization", "dropout", "losses"},
    "optim": {"sgd", "adam", "rmsprop", "adagrad", "schedules"},
    "training": {"callbacks", "progress", "rollback"},
}
"""Modules of one room that never import each other."""

PACKAGE = Path(deltaprop.__file__).parent
README = PACKAGE.parents[1] / "README.md"


def module_name(path: Path) -> str:
    """``nn/dense.py`` is ``nn.dense``, ``errors.py`` ``errors``, ``nn/__init__.py`` ``nn``."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def internal_imports(path: Path, package: Path = PACKAGE) -> set[str]:
    """The deltaprop modules (dotted, without ``deltaprop.``) that the file at ``path`` imports.

    ``from .x import y`` counts as importing ``x`` (and ``x.y``, which may be a module too);
    ``from . import y`` as importing ``y``.
    """
    here = list(path.relative_to(package).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
            elif (node.module or "").split(".")[0] == "deltaprop":
                base = []
            else:
                continue
            module = (node.module or "").split(".")
            if not node.level:
                module = module[1:]
            stem = [*base, *[m for m in module if m]]
            if stem:
                found.add(".".join(stem))
            found.update(".".join([*stem, alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(
                a.name.split(".", 1)[1] for a in node.names if a.name.startswith("deltaprop.")
            )
    return {name for name in found if _exists(name, package)}


def _exists(name: str, package: Path) -> bool:
    path = package.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def room_of(module: str) -> str:
    return module.split(".")[0]


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_room():
    homeless = {module_name(p) for p in sources()} - {
        m for m in (module_name(p) for p in sources()) if room_of(m) in ROOMS
    }
    assert not homeless, f"modules outside every room: {homeless}"
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert rooms <= set(ROOMS), f"subpackages without a level: {rooms - set(ROOMS)}"


def test_every_room_says_what_it_is_for():
    for room in ROOMS:
        path = PACKAGE / room / "__init__.py"
        if not path.exists():
            path = PACKAGE / f"{room}.py"
        assert ast.get_docstring(ast.parse(path.read_text())), f"{room} has no docstring"


def test_imports_point_down_between_rooms():
    violations = []
    for path in sources():
        module = module_name(path)
        room = room_of(module)
        for target in internal_imports(path):
            other = room_of(target)
            if other != room and ROOMS[other] >= ROOMS[room]:
                violations.append(
                    f"{module} (room {room}, level {ROOMS[room]}) imports {target} "
                    f"(room {other}, level {ROOMS[other]})"
                )
    assert not violations, "\n".join(violations)


def test_siblings_never_import_each_other():
    violations = []
    for room, siblings in SIBLINGS.items():
        for name in siblings:
            path = PACKAGE / room / f"{name}.py"
            assert path.is_file(), f"{room}/{name}.py is listed as a sibling but does not exist"
            for target in internal_imports(path):
                if room_of(target) == room and target.split(".")[-1] in siblings - {name}:
                    violations.append(f"{room}.{name} imports its sibling {target}")
    assert not violations, "\n".join(violations)


def readme_rooms() -> dict[str, tuple[int, set[str]]]:
    """README's table: room -> (level, the modules it names)."""
    text = README.read_text()
    section = text.split("### Rooms, bottom up", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].isdigit():
            continue
        room = cells[1].strip("`/")
        rows[room] = (int(cells[0]), set(re.findall(r"`([\w./]+)`", cells[2])))
    return rows


def test_the_readme_table_is_this_table():
    rows = readme_rooms()
    assert {room: level for room, (level, _) in rows.items()} == {
        room: level for room, level in ROOMS.items() if room != "__main__"
    }
    for room, (_, named) in rows.items():
        folder = PACKAGE / room
        if not folder.is_dir():
            continue
        present = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
        present |= {
            f"{p.name}/" for p in folder.iterdir() if p.is_dir() and p.name != "__pycache__"
        }
        assert named == present, f"README's row for {room}/ names {named}, the folder has {present}"


def test_the_checker_sees_violations(tmp_path):
    (tmp_path / "nn").mkdir()
    (tmp_path / "nn" / "__init__.py").write_text("")
    (tmp_path / "nn" / "dense.py").write_text("")
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "__init__.py").write_text("")
    (tmp_path / "training" / "loop.py").write_text("")
    bad = tmp_path / "nn" / "layer.py"
    bad.write_text("from ..training.loop import fit\nfrom . import dense\nimport numpy\n")
    assert internal_imports(bad, tmp_path) == {"training.loop", "nn", "nn.dense"}
