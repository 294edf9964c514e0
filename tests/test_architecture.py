"""The library's imports form no circle: every ``import`` in ``steering/``, at the top of a module
or inside a function (an import moved into a function to dodge a circle is still a circle), read
with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "steering"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> nx.DiGraph:
    """Module -> the library modules it imports, anywhere in its source."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                found = [target, *(f"{target}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            else:
                continue
            graph.add_edges_from((name, other) for other in found if other in modules and other != name)
    return graph


def test_the_reader_sees_imports_inside_functions():
    graph = imports()
    assert graph.has_edge("steering.cli", "steering.pipeline")  # imported inside _open_pipeline
    assert graph.has_edge("steering.stages.sweep", "steering.evaluation")  # a relative import two levels up


def test_no_import_cycle_in_the_library():
    cycles = [sorted(c) for c in nx.strongly_connected_components(imports()) if len(c) > 1]
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_one_list_of_stages():
    from steering import stages
    from steering.stages import PIPELINE, STAGES, stage, sweep

    assert STAGES == ("bias", "extract", "cluster", "probe", "act", "sweep", "refine", "eval", "project")
    assert stage("sweep").fn is sweep.sweep and sweep.layer_grid  # the module by its name, its helpers in reach
    assert all(s.label and s.help and callable(s.fn) for s in PIPELINE)
    assert not hasattr(stages, "STAGE_FUNCTIONS")
