"""The house rules of docs/architecture.md, checked on the source: small modules, no private names
across modules, no import cycles, and a core that never imports its drivers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "src" / "artistyle"
MAX_LINES = 420  # "about 400"
# The batch and video packages are driver-side too: they may import the core, the core never imports them.
DRIVERS = ("artistyle.__main__", "artistyle.batch", "artistyle.cli", "artistyle.video", "artistyle.web")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute name an ``from X import ...`` refers to, inside ``module``."""
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: str, *, runtime_only: bool) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) for every import of ``artistyle`` modules in ``module``.

    ``runtime_only`` leaves out imports under ``if TYPE_CHECKING:``, which never run.
    """
    tree = ast.parse(MODULES[module].read_text())
    skip: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(n) for child in node.body for n in ast.walk(child))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            target = resolve(module, node)
            names = [a.name for a in node.names]
            # "from . import x" may import a submodule x.
            for name in names:
                if f"{target}.{name}" in MODULES:
                    found.append((f"{target}.{name}", [], node.lineno))
            if target.startswith("artistyle"):
                found.append((target, names, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("artistyle")]
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_small(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it (docs/architecture.md)"


def test_no_private_name_is_imported_across_modules() -> None:
    offences = [
        f"{module}:{line} imports {name} from {target}"
        for module in MODULES
        for target, names, line in imports(module, runtime_only=False)
        for name in names
        if name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert not offences, "\n".join(offences)


def test_the_core_never_imports_a_driver() -> None:
    core = [m for m in MODULES if not m.startswith(DRIVERS)]
    offences = [
        f"{module}:{line} imports {target}"
        for module in core
        for target, _, line in imports(module, runtime_only=False)
        if target.startswith(DRIVERS)
    ]
    assert not offences, "\n".join(offences)


def test_import_graph_has_no_cycles() -> None:
    graph = {
        module: {t for t, _, _ in imports(module, runtime_only=False) if t in MODULES and t != module}
        for module in MODULES
    }
    # A package's __init__ re-exports its modules; importing a submodule runs the package first,
    # which is Python's doing, not a dependency of the submodule on its siblings.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_checker_sees_a_cycle_and_a_private_import(tmp_path: Path) -> None:
    # The checks above must be able to fail: run the helpers on a made-up module.
    MODULES["artistyle._probe"] = tmp_path / "probe.py"
    (tmp_path / "probe.py").write_text("from .vgg import _hidden\nfrom .cli import main\n")
    try:
        found = imports("artistyle._probe", runtime_only=True)
        assert ("artistyle.vgg", ["_hidden"], 1) in found
        assert ("artistyle.cli", ["main"], 2) in found
    finally:
        del MODULES["artistyle._probe"]


def test_the_version_lives_in_version_py() -> None:
    # One place (pyproject.toml reads it there); modules import it from .version, not the package's face.
    offences = [
        f"{module}:{line} imports __version__ from {target}"
        for module in MODULES
        if module not in ("artistyle", "artistyle.version")
        for target, names, line in imports(module, runtime_only=False)
        if "__version__" in names and target != "artistyle.version"
    ]
    assert not offences, "\n".join(offences)
    assert 'version = { attr = "artistyle.version.__version__" }' in (REPO / "pyproject.toml").read_text()


def test_nothing_below_the_facade_imports_it() -> None:
    # The facade (nst.py) sits on the engine: Painting, the tutorial route and the run records take an Engine.
    # Only the package face and the drivers may import it (TYPE_CHECKING imports count: they are arrows too).
    allowed = {"artistyle", "artistyle.nst"}
    offences = [
        f"{module}:{line} imports artistyle.nst"
        for module in MODULES
        if module not in allowed and not module.startswith(DRIVERS)
        for target, _, line in imports(module, runtime_only=False)
        if target == "artistyle.nst"
    ]
    assert not offences, "\n".join(offences)


def test_the_schema_stays_under_400_lines() -> None:
    # Issue 23: config.py holds the fields and their checks; the numbers and their measurements live in defaults.py.
    lines = len(MODULES["artistyle.config"].read_text().splitlines())
    assert lines < 400, f"config.py has {lines} lines; move numbers to defaults.py or checks to their own module"
