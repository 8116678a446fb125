"""The direction of imports, checked: each layer imports only the layers below it.

    triage (settings, CLI, wiring, eval, bench)
      -> api -> services -> paging -> store -> correlation | ingest -> models -> domain

``correlation`` and ``ingest`` are siblings: neither imports the other. Every import of a
``triage`` module counts, at module level or inside a function, so a lazy import cannot
hide a cycle. README.md's layout table names the same folders.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Folder -> package, as pyproject.toml's package-dir installs them.
FOLDERS = {"domain": "triage.domain", "models": "triage.models", "ingest": "triage.ingest",
           "correlation": "triage.correlation", "store": "triage.store", "paging": "triage.paging",
           "services": "triage.services", "api": "triage.api", "triage": "triage"}

# Lowest first; packages in one tuple are siblings that may not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("triage.domain",),
    ("triage.models",),
    ("triage.correlation", "triage.ingest"),
    ("triage.store",),
    ("triage.paging",),
    ("triage.services",),
    ("triage.api",),
    ("triage",),   # the core: settings, CLI, process wiring, evaluation and bench
]


def layer_of(module: str) -> tuple[int, str]:
    """(rank, package) of a triage module: the longest package prefix that is a layer."""
    best: tuple[int, str] | None = None
    for rank, packages in enumerate(LAYERS):
        for package in packages:
            if (module == package or module.startswith(package + ".")) and \
                    (best is None or len(package) > len(best[1])):
                best = (rank, package)
    assert best is not None, module
    return best


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            if "migrations" in path.parts and "versions" in path.parts:
                continue   # migrations import their schema module, by design
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def imports_of(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names)   # `from pkg import module`
    return {m for m in out if m == "triage" or m.startswith("triage.")}


def edges() -> list[tuple[str, str]]:
    known = modules()
    found = []
    for module, path in known.items():
        for target in imports_of(module, path):
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]   # `from triage.x import Name` -> triage.x
            # The root package (its __init__: the version, nothing else) is imported by
            # Python before any of its subpackages anyway: not a dependency to rank.
            if target in known and target not in (module, "triage"):
                found.append((module, target))
    return found


def test_every_import_goes_down_or_stays_in_its_layer() -> None:
    wrong = []
    for source, target in edges():
        (rank_s, pkg_s), (rank_t, pkg_t) = layer_of(source), layer_of(target)
        if rank_t > rank_s or (rank_t == rank_s and pkg_s != pkg_t):
            wrong.append(f"{source} imports {target} ({pkg_s} may not import {pkg_t})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for source, target in edges():
        graph.setdefault(source, set()).add(target)
    # A package's __init__ re-exporting its own modules is not a cycle worth reporting.
    graph = {s: {t for t in ts if not (t.startswith(s + ".") or s.startswith(t + "."))}
             for s, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("source,target,allowed", [
    ("triage.api.app", "triage.store", True),
    ("triage.store.sql", "triage.services.corrections", False),
    ("triage.ingest.sink", "triage.correlation.identity", False),
    ("triage.domain.event", "triage.models.parameters", False),
    ("triage.service", "triage.api", True),
])
def test_the_rule_itself(source: str, target: str, allowed: bool) -> None:
    (rank_s, pkg_s), (rank_t, pkg_t) = layer_of(source), layer_of(target)
    assert (rank_t < rank_s or pkg_s == pkg_t) is allowed
