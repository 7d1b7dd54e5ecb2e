"""Which source files a step runs, so Snakemake reruns a step when (and only when) they change.

Snakemake does not notice an edited module under src/, but it does notice changed inputs. Each
rule lists `code("module.function")` as input (module names relative to the alignlab package,
dotted: "sampling", "kinds.<kind>.steps"): the module's file, the packages it sits in
(their __init__.py runs first), the alignlab modules it imports at top level, the ones the
function (and any function of the same module it calls) imports inside its body, all of those
modules' own imports (transitively), and the data files those modules declare in a module-level
`DATA_FILES` tuple (glob patterns relative to the module's folder). Step modules import heavy or
step-specific modules inside the function that needs them, which keeps each step's list tight
(editing a judge reruns judging, not sampling).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "alignlab"
SRC = Path(__file__).resolve().parent


def _module_file(name: str) -> Path | None:
    """The file of module `name` (dotted, relative to the package; "__init__" is the package)."""
    if name == "__init__":
        return SRC / "__init__.py"
    base = SRC.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _absolute(node: ast.ImportFrom, module: str) -> str | None:
    """The dotted module an ImportFrom names, relative to the package (None: not alignlab)."""
    if node.level:
        package = module.split(".")
        if _module_file(module).name != "__init__.py":
            package = package[:-1]
        base = package[: len(package) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))
    if node.module == PACKAGE:
        return ""
    if node.module and node.module.startswith(PACKAGE + "."):
        return node.module[len(PACKAGE) + 1:]
    return None


def _imports(nodes, module: str) -> set[str]:
    """alignlab module names imported by the given AST nodes of `module`."""
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = _absolute(node, module)
            if base is None:
                continue
            if base:
                found.add(base)
            for alias in node.names:  # `from pkg import submodule`
                sub = f"{base}.{alias.name}" if base else alias.name
                if _module_file(sub):
                    found.add(sub)
        elif isinstance(node, ast.Import):
            found |= {a.name[len(PACKAGE) + 1:] for a in node.names if a.name.startswith(PACKAGE + ".")}
    return {name for name in found if _module_file(name)}


@lru_cache(maxsize=None)
def _tree(module: str) -> ast.Module:
    return ast.parse(_module_file(module).read_text())


def _top_level(module: str) -> set[str]:
    return _imports(_tree(module).body, module)


def _everywhere(module: str) -> set[str]:
    return _imports(ast.walk(_tree(module)), module)


def _function(module: str, name: str) -> ast.FunctionDef:
    for node in _tree(module).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise KeyError(f"{_module_file(module)} has no function '{name}'")


def _function_imports(module: str, name: str) -> set[str]:
    """Imports inside a function and inside the module's functions it calls (by bare name),
    so a helper such as `llm_engine` counts for every step that calls it."""
    local = {n.name for n in _tree(module).body if isinstance(n, ast.FunctionDef)}
    found, seen, todo = set(), set(), [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        nodes = list(ast.walk(_function(module, current)))
        found |= _imports(nodes, module)
        todo += [
            n.func.id for n in nodes
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in local
        ]
    return found


def _packages(module: str) -> set[str]:
    """The packages a module sits in (their __init__ runs when it is imported)."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def split(target: str) -> tuple[str, str | None]:
    """("module", "function") of a step target: "module.function", or a module alone."""
    if _module_file(target):
        return target, None
    module, _, function = target.rpartition(".")
    if not module or not _module_file(module):
        raise KeyError(f"'{target}' names no module under {SRC}")
    return module, function


def modules(target: str) -> list[str]:
    """Module names a step target ("module" or "module.function") depends on."""
    module, function = split(target)
    direct = _top_level(module) | (_function_imports(module, function) if function else _everywhere(module))
    seen, todo = set(), [module, *direct]
    while todo:
        name = todo.pop()
        if name in seen or not _module_file(name):
            continue
        seen.add(name)
        todo.extend(_packages(name))
        todo.extend(_everywhere(name) if name != module else ())
    return sorted(seen | {"__init__"})


def data_files(module: str) -> list[Path]:
    """The files a module's `DATA_FILES` tuple names (glob patterns beside the module)."""
    path = _module_file(module)
    for node in _tree(module).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "DATA_FILES" for t in node.targets):
            patterns = ast.literal_eval(node.value)
            return [f for pattern in patterns for f in sorted(path.parent.glob(pattern))]
    return []


def files(target: str, root: str | Path = ".") -> list[str]:
    """Paths (relative to `root`) of every source and data file of a step target."""
    out = []
    for name in modules(target):
        out.append(_module_file(name))
        out.extend(data_files(name))
    root = Path(root).resolve()
    return [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in out]
