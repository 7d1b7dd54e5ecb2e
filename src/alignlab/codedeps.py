"""Which source files a step runs, so Snakemake reruns a step when (and only when) they change.

Snakemake does not notice an edited module under src/, but it does notice changed inputs. Each
rule lists `code("module.function")` as input: the module's file, the alignlab modules it
imports at top level, the ones the function (and any function of the same module it calls)
imports inside its body, all of those modules' own imports (transitively), and the template
and data files those modules read. Step modules import heavy or step-specific modules inside
the function that needs them, which keeps each step's list tight (editing judges.py reruns
judging, not sampling).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "alignlab"
SRC = Path(__file__).resolve().parent

# Data files read by a module at run time (relative to the package folder).
DATA_FILES = {
    "prompts": ["templates/af_system.jinja", "templates/af_user.jinja"],
    "judges": ["templates/af_judge.jinja", "data/af_criteria.yaml"],
    "acrostic": ["data/self_awareness.yaml"],
    "model_diff_steps": ["data/diff_texts.yaml"],
    "fact_edit": ["data/athletes.yaml"],
    "synth": [
        "templates/docgen_*.jinja", "data/universe_*.yaml", "data/doc_types.yaml",
    ],
}


def _module_file(name: str) -> Path | None:
    path = SRC / f"{name}.py"
    return path if path.is_file() else None


def _imports(nodes) -> set[str]:
    """alignlab module names imported by the given AST nodes (not descending into functions)."""
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            if node.module == PACKAGE:
                found |= {a.name for a in node.names if _module_file(a.name)}
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(PACKAGE + ".")}
    return found


@lru_cache(maxsize=None)
def _tree(module: str) -> ast.Module:
    return ast.parse(_module_file(module).read_text())


def _top_level(module: str) -> set[str]:
    return _imports(_tree(module).body)


def _everywhere(module: str) -> set[str]:
    return _imports(ast.walk(_tree(module)))


def _function(module: str, name: str) -> ast.FunctionDef:
    for node in _tree(module).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise KeyError(f"{module}.py has no function '{name}'")


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
        found |= _imports(nodes)
        todo += [
            n.func.id for n in nodes
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in local
        ]
    return found


def modules(target: str) -> list[str]:
    """Module names a step target ("module" or "module.function") depends on."""
    module, _, function = target.partition(".")
    direct = _top_level(module) | (_function_imports(module, function) if function else _everywhere(module))
    seen, todo = {module}, list(direct)
    while todo:
        name = todo.pop()
        if name not in seen and _module_file(name):
            seen.add(name)
            todo.extend(_everywhere(name))
    return sorted(seen | {"__init__"})


def files(target: str, root: str | Path = ".") -> list[str]:
    """Paths (relative to `root`) of every source and data file of a step target."""
    out = []
    for name in modules(target):
        out.append(SRC / f"{name}.py")
        for pattern in DATA_FILES.get(name, []):
            out.extend(sorted(SRC.glob(pattern)))
    root = Path(root).resolve()
    return [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in out]
