"""The architecture's rules, enforced (docs/architecture.md).

Imports are read with ``ast`` (module-level and function-level imports alike, so an import
hidden inside a function still counts; ``if TYPE_CHECKING:`` blocks do not). The rules:

- the trusted linkage unit (``linkage.tlu``) never reaches ``linkage.secret`` or
  ``linkage.partner``, not even through another module;
- ``partner`` and ``tlu`` never import the lab or the report package;
- the attack code of the audit never reaches the secret or the partner encoder;
- ``kernels/`` imports nothing from ``linkage`` except ``linkage.kernels``;
- ``linkage.dask_session`` loads no kernels;
- no import cycle among ``linkage`` modules;
- no module over ~600 lines;
- no package exports a name equal to one of its submodules (the bug where
  ``linkage.match`` turned into a module once ``linkage.match`` the module was imported).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "linkage"
MAX_LINES = 650  # "about 600": the largest numba kernel files sit just above 600


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "kernels":
        parts = ["linkage", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [p for p in PKG.rglob("*.py") if "kernels" not in p.relative_to(PKG).parts[:1]]
    files += list((ROOT / "kernels").glob("*.py"))
    return {_module_name(p): p for p in sorted(files)}


MODULES = _sources()


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _resolve(name: str) -> str | None:
    """The longest known module that ``name`` (a module or module.attribute) refers to."""
    while name:
        if name in MODULES:
            return name
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return None


def imports_of(module: str) -> set[str]:
    """``linkage`` modules imported by ``module`` (any depth in the file, not TYPE_CHECKING)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    is_pkg = MODULES[module].name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if (m := _resolve(alias.name)) is not None:
                        found.add(m)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    pkg = module if is_pkg else module.rsplit(".", 1)[0]
                    for _ in range(child.level - 1):
                        pkg = pkg.rsplit(".", 1)[0]
                    base = f"{pkg}.{base}" if base else pkg
                for alias in child.names:
                    if (m := _resolve(f"{base}.{alias.name}")) is not None:
                        found.add(m)
            visit(child)

    visit(tree)
    found.discard(module)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        m = stack.pop()
        for n in GRAPH[m]:
            if n not in seen:
                seen.add(n)
                stack.append(n)
    return seen


def _under(prefix: str) -> list[str]:
    return [m for m in MODULES if m == prefix or m.startswith(prefix + ".")]


def test_the_graph_sees_function_level_imports() -> None:
    # dask_match imports the lsh kernel inside a function: the reader must see it
    assert "linkage.kernels.lsh" in GRAPH["linkage.tlu.dask_match"]
    assert "linkage.tlu.linker" in GRAPH["linkage.tlu"]


@pytest.mark.parametrize("module", _under("linkage.tlu"))
def test_tlu_never_reaches_the_secret_or_the_partner(module: str) -> None:
    bad = {m for m in reachable(module) if m == "linkage.secret" or m.startswith("linkage.partner")}
    assert not bad, f"{module} reaches {sorted(bad)}"


@pytest.mark.parametrize("module", _under("linkage.tlu") + _under("linkage.partner"))
def test_pipeline_never_imports_lab_or_report(module: str) -> None:
    bad = {m for m in GRAPH[module] if m.startswith(("linkage.lab", "linkage.report"))}
    assert not bad, f"{module} imports {sorted(bad)}"


def test_attacks_never_reach_the_secret() -> None:
    attack = [
        m
        for m in _under("linkage.lab.audit")
        if not m.endswith(("setup", "target", "runner", "audit", "cli"))
        and m != "linkage.lab.audit"
    ]
    for module in attack:
        bad = {
            m
            for m in reachable(module)
            if m == "linkage.secret"
            or m.startswith(("linkage.partner.encoder", "linkage.partner.pipeline"))
        }
        assert not bad, f"attack module {module} reaches {sorted(bad)}"


@pytest.mark.parametrize("module", _under("linkage.kernels"))
def test_kernels_import_only_kernels(module: str) -> None:
    bad = {m for m in GRAPH[module] if not m.startswith("linkage.kernels")}
    assert not bad, f"{module} imports {sorted(bad)}"


def test_dask_session_loads_no_kernels() -> None:
    assert not {m for m in reachable("linkage.dask_session") if m.startswith("linkage.kernels")}


def test_no_import_cycle() -> None:
    cycles = sorted(" -> ".join(_cycle_path(m)) for m in MODULES if m in reachable(m))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def _packages() -> set[str]:
    return {m for m, p in MODULES.items() if p.name == "__init__.py"}


def _cycle_path(start: str) -> list[str]:
    prev: dict[str, str] = {}
    stack = [start]
    seen = {start}
    while stack:
        m = stack.pop()
        for n in GRAPH[m]:
            if n == start:
                path = [m]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if n not in seen:
                seen.add(n)
                prev[n] = m
                stack.append(n)
    return [start]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module: str) -> None:
    n = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines (split it by concept)"


def test_no_export_shadows_a_submodule() -> None:
    import linkage

    for pkg in sorted(_packages()):
        mod = __import__(pkg, fromlist=["__all__"])
        subs = {m.rsplit(".", 1)[1] for m in MODULES if m.rsplit(".", 1)[0] == pkg and m != pkg}
        clash = set(getattr(mod, "__all__", [])) & subs
        assert not clash, f"{pkg} exports {sorted(clash)}, also the name of a submodule"
    assert linkage.__all__


def test_importing_the_tlu_never_loads_the_secret() -> None:
    """At run time too: every TLU module imported, and the secret is not in sys.modules."""
    code = (
        "import importlib, sys\n"
        f"for m in {sorted(_under('linkage.tlu'))!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = [m for m in sys.modules\n"
        "       if m == 'linkage.secret' or m.startswith('linkage.partner')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
