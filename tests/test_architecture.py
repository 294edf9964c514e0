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
    assert graph.has_edge("steering.interface.cli.common", "steering.pipeline.runner")  # imported inside open_pipeline
    assert graph.has_edge("steering.pipeline.stages.sweep", "steering.pipeline.evaluation")  # a relative import two levels up


def test_no_import_cycle_in_the_library():
    cycles = [sorted(c) for c in nx.strongly_connected_components(imports()) if len(c) > 1]
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_one_list_of_stages():
    from steering.pipeline import stages
    from steering.pipeline.stages import PIPELINE, STAGES, stage, sweep

    assert STAGES == ("bias", "extract", "cluster", "probe", "act", "sweep", "refine", "eval", "project")
    assert stage("sweep").fn is sweep.sweep and sweep.layer_grid  # the module by its name, its helpers in reach
    assert all(s.label and s.help and callable(s.fn) for s in PIPELINE)
    assert not hasattr(stages, "STAGE_FUNCTIONS")


def declared_rules() -> dict[str, tuple[str, ...]]:
    """Each sub-package's ``MAY_IMPORT``, read from its ``__init__`` without importing it."""
    rules = {}
    for init in PACKAGE.glob("*/__init__.py"):
        for node in ast.parse(init.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["MAY_IMPORT"]:
                rules[init.parent.name] = ast.literal_eval(node.value)
    return rules


def test_every_sub_package_declares_what_it_may_import():
    rules = declared_rules()
    assert set(rules) == {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert not [m for r in rules.values() for m in r if m not in rules], "a rule names no sub-package"
    assert all(ast.get_docstring(ast.parse((PACKAGE / p / "__init__.py").read_text())) for p in rules)


def test_imports_keep_to_each_sub_package_rules():
    rules = declared_rules()
    broken = []
    for a, b in imports().edges:
        own, other = (name.split(".")[1] if name.count(".") else None for name in (a, b))
        if own in rules and other != own and other not in rules[own]:
            broken.append(f"{a} imports {b}, but {own} may import only {', '.join(rules[own]) or 'nothing'}")
    assert broken == []


def test_the_rules_read_an_import_against_them():
    """The check above sees a forbidden import: the engine reaching up into the methods."""
    rules = declared_rules()
    assert "methods" not in rules["engine"] and "engine" in rules["methods"]
    assert imports().has_edge("steering.methods.steer", "steering.engine.models")


def test_pages_draw_in_small_functions():
    """A page's parts are functions a reader takes in at once (the Steer page was one 393-line script)."""
    views = PACKAGE.parent / "views"
    long = [f"{p.name}:{n.name} ({n.end_lineno - n.lineno + 1} lines)" for p in views.glob("*.py")
            for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
            if isinstance(n, ast.FunctionDef) and n.end_lineno - n.lineno + 1 >= 60]
    assert long == []
    steer = ast.parse((views / "steer.py").read_text(encoding="utf-8")).body
    assert [ast.unparse(n) for n in steer if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)] == ["main()"]
