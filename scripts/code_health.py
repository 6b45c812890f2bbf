"""Structure figures of the mirkit package: longest functions and signatures, large modules, import
cycles, modules importing the probing orchestrator, task-kind names spelled outside the kinds, README
length.

Prints a human summary and, last, one JSON line. Import edges are read with ``ast`` (no import
happens): ``top`` counts module-level imports only, ``all`` also those inside functions. Task-kind
spellings are string literals equal to a kind's name (``"beat"``, ``"chords"``...) in modules other
than the registries (``mirkit/kinds/``, and ``mirkit/data/tasks.py`` where tasks name their kind);
task names that equal a kind's name (the ``tempo`` task folder) count too, so the figure is an upper
bound on dispatch by name.

    python scripts/code_health.py [--top 10]
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(name: str, modules: set[str]) -> str | None:
    """The mirkit module an imported dotted name refers to (longest known prefix)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_edges(tree: ast.Module, here: str, modules: set[str], *, top_only: bool) -> set[str]:
    nodes = tree.body if top_only else list(ast.walk(tree))
    found: set[str] = set()
    package = here if (SRC / Path(*here.split("."))).is_dir() else here.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        elif isinstance(node, ast.If) and top_only:  # `if TYPE_CHECKING:` blocks do not import at run time
            continue
        else:
            continue
        for name in names:
            target = resolve(name, modules)
            if target and target != here and not here.startswith(target + "."):
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


#: the task kinds' names (read as text so that this script runs on trees from before mirkit.kinds existed)
KIND_NAMES = ("multiclass", "key", "multilabel", "regression", "tempo", "beat", "chords", "transcription", "onsets",
              "separation")


def kind_spellings(trees: dict[str, ast.Module]) -> dict[str, int]:
    """Per kind name, the string literals equal to it outside the registries (see the module docstring)."""
    counts = dict.fromkeys(KIND_NAMES, 0)
    for module, tree in trees.items():
        if module.startswith("mirkit.kinds") or module == "mirkit.data.tasks":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in counts:
                counts[node.value] += 1
    return counts


def signatures(trees: dict[str, ast.Module], files: list[Path]) -> list[tuple[int, str]]:
    """``(parameters, "path:function")`` of every function (``self``/``cls`` not counted), longest first."""
    out = []
    for path in files:
        for node in ast.walk(trees[module_name(path)]):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs] + \
                    [x.arg for x in (a.vararg, a.kwarg) if x is not None]
                out.append((len([n for n in names if n not in ("self", "cls")]), f"{path.relative_to(ROOT)}:{node.name}"))
    return sorted(out, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    files = sorted((SRC / "mirkit").rglob("*.py"))
    modules = {module_name(p) for p in files}
    trees = {module_name(p): ast.parse(p.read_text(), str(p)) for p in files}
    functions = []
    for path in files:
        for node in ast.walk(trees[module_name(path)]):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(ROOT)}:{node.name}"))
    functions.sort(reverse=True)
    big = sorted(((len(p.read_text().splitlines()), str(p.relative_to(ROOT))) for p in files), reverse=True)
    graphs = {kind: {m: import_edges(t, m, modules, top_only=kind == "top") for m, t in trees.items()}
              for kind in ("top", "all")}
    found = {kind: cycles(g) for kind, g in graphs.items()}
    readme = len((ROOT / "README.md").read_text().splitlines())
    widest = signatures(trees, files)
    orchestrator = sorted(m for m, edges in graphs["all"].items() if "mirkit.adapt.run" in edges)
    spellings = kind_spellings(trees)
    print("longest functions:")
    for lines, name in functions[: args.top]:
        print(f"  {lines:4d}  {name}")
    print("modules over 400 lines:", [f"{n} ({lines})" for lines, n in big if lines > 400] or "none")
    for kind in ("top", "all"):
        print(f"import cycles ({kind}-level imports): {len(found[kind])}", *found[kind], sep="\n  ")
    print("longest signatures (parameters):")
    for count, name in widest[: args.top]:
        print(f"  {count:4d}  {name}")
    print(f"modules importing mirkit.adapt.run: {len(orchestrator)}", *orchestrator, sep="\n  ")
    print(f"task-kind names spelled outside the registries: {sum(spellings.values())}", spellings)
    print(f"README.md: {readme} lines")
    print(json.dumps({"benchmark": "code_health", "longest_functions": [[n, l] for l, n in functions[: args.top]],
                      "longest_signatures": [[n, c] for c, n in widest[: args.top]],
                      "modules_importing_adapt_run": orchestrator, "kind_spellings": spellings,
                      "functions_over_60_lines": sum(1 for l, _ in functions if l > 60),
                      "modules_over_400_lines": [[n, l] for l, n in big if l > 400],
                      "import_cycles_top": found["top"], "import_cycles_all": found["all"], "readme_lines": readme}))


if __name__ == "__main__":
    main()
