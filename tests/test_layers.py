"""The package's one direction: resources → benchmark → audio → models → eval/train → study → CLI, on a ground
floor that imports nothing above it, with no import circle; and tests that mirror it, module for module. Read from
the source (every import, function-local ones too), so a new upward import fails here before it tangles the tree.
`python -m pytest tests/test_layers.py`."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "shardkit"
GROUND = {"shardkit", "shardkit.errors", "shardkit.paths", "shardkit.config", "shardkit.files", "shardkit.stats",
          "shardkit.suggest", "shardkit.names"}
FLOORS = ["resources", "benchmark", "audio", "models", "eval|train", "study", "doctor|commands|cli|__main__"]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """The package modules a file imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("shardkit"):
                out.add(name)
    return out


def floor(module: str) -> int:
    if module in GROUND:
        return 0
    top = module.split(".")[1]
    return next(k + 1 for k, names in enumerate(FLOORS) if top in names.split("|"))


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(p, set(mods)) - {m} for m, p in mods.items()}


def test_every_module_has_a_floor():
    assert all(isinstance(floor(m), int) for m in graph())


def test_no_import_runs_back_up():
    g = graph()
    upward = sorted(f"{m} (floor {floor(m)}) imports {d} (floor {floor(d)})" for m, deps in g.items() for d in deps
                    if floor(d) > floor(m) and d != "shardkit")
    assert not upward, "\n".join(upward)


def test_ground_floor_imports_only_the_ground():
    g = graph()
    assert all(d in GROUND for m in GROUND for d in g[m]), {m: g[m] for m in GROUND if g[m] - GROUND}


def test_eval_and_train_do_not_import_each_other():
    g = graph()
    crossing = [(m, d) for m, deps in g.items() for d in deps
                if {m.split(".")[1:2][0] if "." in m else "", d.split(".")[1:2][0] if "." in d else ""}
                == {"eval", "train"}]
    assert not crossing, crossing


def test_no_import_circle():
    g, state, path = graph(), {}, []

    def visit(m: str) -> None:
        state[m] = "open"
        path.append(m)
        for d in sorted(g[m]):
            if d == "shardkit":
                continue
            assert state.get(d) != "open", " → ".join(path[path.index(d):] + [d])
            if d not in state:
                visit(d)
        path.pop()
        state[m] = "done"

    for m in sorted(g):
        if m not in state:
            visit(m)


def test_tests_mirror_the_package_and_no_module_outgrows_a_read():
    """Each module has its own test file (tests/<path>/test_<name>.py) and stays under 400 lines."""
    tests = PACKAGE.parent / "tests"
    missing, long = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.name in ("__init__.py", "__main__.py"):
            continue
        if not (tests / rel.parent / f"test_{rel.name}").is_file():
            missing.append(str(rel))
        if len(path.read_text().splitlines()) > 400:
            long.append(str(rel))
    assert not missing, f"modules without a test file: {missing}"
    assert not long, f"modules over 400 lines: {long}"
