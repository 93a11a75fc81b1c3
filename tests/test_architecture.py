"""The package's structure, read from its source with `ast`: imports only go down the layers written in
lamina/__init__.py, no module imports itself in a circle, imports inside functions are only for heavy or optional
dependencies, tasks are objects (no comparisons with task names), and registries hold their entries' metadata."""

from __future__ import annotations

import ast
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lamina"

# Imports inside functions, each with its reason: third-party modules anywhere, lamina modules only where listed.
LAZY_THIRD_PARTY = {
    "torch": "PyTorch (seconds): the tasks are read by option catalogues that must not import it",
    "torch.utils.flop_counter": "PyTorch's tracing machinery, only when counting FLOPs",
    "kornia": "a dependency that takes ~0.3 s to import: only affine and colour augmentations need it",
    "soundfile": "only reading audio needs it (it loads libsndfile through cffi)",
    "tokenizers": "optional extra (text): only the bpe tokenizer needs it",
    "captum": "optional extra (explain): only attribution methods need it (it imports matplotlib)",
    "pandas": "optional extra (tables): Parquet files and DataFrames passed from Python",
    "importlib.metadata": "zipfile, email, csv (~20 ms of every start): only to name a missing package's requirement",
    "scipy.signal": "SciPy (about a second): only when audio must be resampled",
    "rich.progress": "only the live progress bar needs it",
    "traceback": "only with --debug",
    "onnxruntime": "optional extras (runtime, export): only running or verifying an exported bundle needs it",
    "PIL": "a bundle's runtime needs Pillow only for images (lamina/bundle/readers.py)",
    "fastapi": "optional extra (serve): only lamina serve needs it",
    "multipart": "optional extra (serve): python-multipart, for lamina serve's file uploads",
    "uvicorn": "optional extra (serve): only lamina serve runs it",
    "pynvml": "optional (nvidia-ml-py): only measuring a GPU run's energy with NVML needs it",
    "onnx": "optional extra (export): only exporting a run and locating a difference needs it",
}
LAZY_LAMINA = {
    "lamina.cli.main": "lamina --help must not import the commands (PyTorch)",
    "lamina.cli.commands": "each command imports what it needs, so schema, models and datasets stay without PyTorch",
    "lamina.cli.bundle_predict": "lamina predict BUNDLE runs where only the bundle runtime is installed",
    "lamina.cli.insight": "explain and doctor import the run (PyTorch) when they run, as the other commands do",
    "lamina.cli.export": "export imports the run (PyTorch) and onnx when it runs, as the other commands do",
    "lamina.cli.serve": "lamina serve imports FastAPI and the service when it runs",
    "lamina.serve.app": "the server answers /health before the run (PyTorch) loads, in a background thread",
    "lamina.tasks": "the decisions import PyTorch; the tasks are read by option catalogues that must not",
}
REFERENCE = re.compile(r"^([A-Za-z_]\w*(?:\.\w+)+):\w+$")  # "module:function", imported by a registry on first use


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported lamina module
    line: int
    lazy: bool  # inside a function
    reference: bool  # a registry's "module:function" string, not an import statement


def layers(package: Path) -> list[list[str]]:
    """The layers, bottom first, from the diagram line in the package docstring: 'core → tasks → … → cli'."""
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    line = next(line for line in docstring.splitlines() if "→" in line)
    return [[name.strip() for name in layer.split(",")] for layer in line.split("→")]


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path) -> dict[str, Path]:
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def layer_of(module: str, order: list[list[str]], root: str) -> int:
    """The index of the layer a module belongs to; the package itself is the top (the public names)."""
    if module == root or module == f"{root}.__main__":
        return len(order)
    first = module.removeprefix(f"{root}.").split(".")[0]
    for index, names in enumerate(order):
        if first in names:
            return index
    raise AssertionError(f"{module} is in no layer of the diagram in {root}/__init__.py")


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The lamina module an import of `name` runs: the module itself, or the package holding it."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def edges(package: Path) -> list[Edge]:
    """Every import of a lamina module (at any depth, inside functions too) and every "module:function" string."""
    known, root, found = modules(package), package.name, []
    for source, path in known.items():
        tree = ast.parse(path.read_text())
        lazy_lines = {
            node.lineno
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
            if isinstance(node, ast.Import | ast.ImportFrom)
        }
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the importing module's package
                    anchor = source.split(".")[: len(source.split(".")) - node.level + (path.name == "__init__.py")]
                    base = ".".join([*anchor, base] if base else anchor)
                names = [f"{base}.{alias.name}" for alias in node.names]  # a submodule, or a name in `base`
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and REFERENCE.match(node.value):
                target = resolve(REFERENCE.match(node.value).group(1), known)
                if target and target.split(".")[0] == root:
                    found.append(Edge(source, target, node.lineno, lazy=True, reference=True))
                continue
            for name in names:
                if name.split(".")[0] != root:
                    continue
                target = resolve(name, known)
                if target and target != source:
                    found.append(Edge(source, target, node.lineno, node.lineno in lazy_lines, reference=False))
    return found


def upward(package: Path) -> list[str]:
    order, root = layers(package), package.name
    return [
        f"{edge.source}:{edge.line} imports {edge.target}, a higher layer"
        for edge in edges(package)
        if layer_of(edge.target, order, root) > layer_of(edge.source, order, root)
    ]


def cycles(package: Path) -> list[list[str]]:
    """Strongly connected groups of modules importing each other (registry references are not imports)."""
    graph: dict[str, set[str]] = {name: set() for name in modules(package)}
    for edge in edges(package):
        if not edge.reference:
            graph[edge.source].add(edge.target)
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def lazy_imports(package: Path) -> list[str]:
    """Imports inside functions that are not for a listed heavy or optional dependency."""
    problems = []
    for source, path in modules(package).items():
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
                    for name in names:
                        if name.split(".")[0] == package.name:
                            allowed = source in LAZY_LAMINA
                        else:
                            allowed = any(name == lazy or name.startswith(f"{lazy}.") for lazy in LAZY_THIRD_PARTY)
                        if not allowed:
                            problems.append(f"{source}:{node.lineno} imports {name} inside {function.name}()")
    return problems


# ---- the rules on the package ----------------------------------------------------------------------------------


def test_imports_only_go_down_the_layers():
    assert upward(PACKAGE) == []


def test_no_module_imports_itself_in_a_circle():
    assert cycles(PACKAGE) == []


def test_imports_inside_functions_are_only_for_heavy_or_optional_dependencies():
    assert lazy_imports(PACKAGE) == []


def test_the_layer_diagram_names_every_package_once_and_matches_the_architecture_guide():
    order = layers(PACKAGE)
    named = [name for layer in order for name in layer]
    present = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").is_file()) and not path.name.startswith("__")
    }
    assert sorted(named) == sorted(present) and len(named) == len(set(named))
    assert " → ".join(", ".join(layer) for layer in order) in (ROOT / "docs" / "architecture.md").read_text()


def test_no_comparison_with_a_task_name_outside_the_tasks():
    from lamina.tasks import tasks

    names, found = set(tasks.names()), []
    for source, path in modules(PACKAGE).items():
        if source.startswith("lamina.tasks"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                for operand in [node.left, *node.comparators]:
                    values = operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [operand]
                    if any(isinstance(value, ast.Constant) and value.value in names for value in values):
                        found.append(f"{source}:{node.lineno}")
    assert found == []


def test_no_metadata_is_tagged_onto_functions_and_no_import_follows_code():
    found = []
    for source, path in modules(PACKAGE).items():
        body = ast.parse(path.read_text()).body
        functions = {node.name for node in body if isinstance(node, ast.FunctionDef)}
        for node in ast.walk(ast.Module(body=body, type_ignores=[])):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AugAssign | ast.AnnAssign)
                else []
            )
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in functions
                ):
                    found.append(f"{source}:{node.lineno} sets {target.value.id}.{target.attr}")
        code_seen = False
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
                code_seen = True
            elif isinstance(node, ast.Import | ast.ImportFrom) and code_seen:
                found.append(f"{source}:{node.lineno} imports after code")
    assert found == []


def test_every_registry_reference_resolves_to_its_function():
    from lamina.config.schema import SECTIONS
    from lamina.generate import generators
    from lamina.training.options import metrics

    for registry in {*SECTIONS.values(), metrics, generators}:
        for entry in registry.values():
            assert callable(entry.function), f"{registry.kind} {entry.name}"


# ---- the rules catch what they are for --------------------------------------------------------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "demo" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "demo"


def test_the_checks_find_an_upward_import_a_lazy_one_and_a_cycle(tmp_path):
    package = _package(
        tmp_path,
        {
            "__init__.py": '"""Layers:\n\n    low → high\n"""\n',
            "low/__init__.py": "",
            "low/a.py": "from demo.low import b\n\n\ndef f():\n    from demo.high import c\n",
            "low/b.py": "import demo.low.a\n",
            "high/__init__.py": "",
            "high/c.py": "TABLE = {'x': 'demo.low.b:g', 'y': 'demo.high.c:h'}\n",
        },
    )
    assert upward(package) == ["demo.low.a:5 imports demo.high.c, a higher layer"]
    assert cycles(package) == [["demo.low.a", "demo.low.b"]]
    assert lazy_imports(package) == ["demo.low.a:5 imports demo.high inside f()"]
    references = [edge for edge in edges(package) if edge.reference]
    assert [(edge.target, edge.lazy) for edge in references] == [("demo.low.b", True), ("demo.high.c", True)]


def test_an_upward_import_added_to_lamina_fails_the_layer_check(tmp_path):
    copy = tmp_path / "lamina"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    spec = copy / "data" / "spec.py"
    spec.write_text(spec.read_text() + "\n\ndef _late():\n    from lamina.pipeline import train  # noqa\n")
    problems = upward(copy)
    assert len(problems) == 1 and problems[0].startswith("lamina.data.spec:") and "lamina.pipeline" in problems[0]
    assert lazy_imports(copy) == [
        f"lamina.data.spec:{problems[0].split(':')[1].split()[0]} imports lamina.pipeline inside _late()"
    ]


@pytest.mark.parametrize("rule", ["task name", "function metadata", "late import"])
def test_the_other_rules_catch_their_mistakes(rule, tmp_path, monkeypatch):
    copy = tmp_path / "lamina"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    added = {
        "task name": "\n\ndef _is_classification(spec):\n    return spec.task == 'classification'\n",
        "function metadata": "\n\ndef _family():\n    pass\n\n\n_family.reads_tokens = True\n",
        "late import": "\n\ndef _late():\n    pass\n\n\nimport json  # noqa\n",
    }[rule]
    spec = copy / "data" / "spec.py"
    spec.write_text(spec.read_text() + added)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", copy)
    check = {
        "task name": test_no_comparison_with_a_task_name_outside_the_tasks,
        "function metadata": test_no_metadata_is_tagged_onto_functions_and_no_import_follows_code,
        "late import": test_no_metadata_is_tagged_onto_functions_and_no_import_follows_code,
    }[rule]
    with pytest.raises(AssertionError, match="lamina.data.spec:"):
        check()
