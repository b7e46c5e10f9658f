"""The package layout that docs/architecture.md describes: a short top level, and imports
that only point down its layer table."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cstylegan"
LAYERS = {"runtime": 1, "config": 2, "generation": 2, "networks": 2, "data": 3, "snapshots": 4, "metrics": 5,
          "projection": 6, "training": 6, "app": 7}


def imported_modules(path: Path):
    """Absolute dotted names of the cstylegan modules that `path` imports, relative ones resolved."""
    own = ["cstylegan", *path.relative_to(PACKAGE).with_suffix("").parts]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = own[:len(own) - node.level] if node.level else []
            names = (node.module or "").split(".") if node.module else []
            full = base + names
            if full[:1] == ["cstylegan"]:
                yield [*full, node.names[0].name] if len(full) == 1 else full
        elif isinstance(node, ast.Import):
            yield from (alias.name.split(".") for alias in node.names if alias.name.startswith("cstylegan"))


def test_top_level_is_at_most_ten_subsystems():
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name not in ("__init__.py", "__pycache__"))
    assert len(entries) <= 10, entries
    assert {Path(name).stem for name in entries} == set(LAYERS)


def test_imports_point_down_the_layer_table():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        source = Path(path.relative_to(PACKAGE).parts[0]).stem  # 'data', or 'config' for config.py
        for parts in imported_modules(path):
            target = parts[1]  # cstylegan.<subsystem>...
            if target != source and LAYERS[target] >= LAYERS[source]:
                upward.append(f"{path.relative_to(PACKAGE)} imports {'.'.join(parts)}")
    assert not upward, upward
