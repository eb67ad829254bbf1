"""The one import rule of the package layout: a module imports only from its own layer or lower ones, no module
imports itself back through others (a cycle), and an import inside a function says why it is there.

Layers, lowest first (README "Package layout"): the small helpers in ``bnas_tf`` itself; ``space`` and ``data``;
``deploy``; ``tuners`` and ``convert``; ``face``; ``recipes``; ``pipeline``. The modules are read as source
(AST), including the folders that setuptools maps under ``bnas_tf`` (``tuners/``, ``convert/``, ``recipes/``).
"""

from __future__ import annotations

import ast
import configparser
import pathlib
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAYERS = (
    ("bnas_tf",),
    ("bnas_tf.space", "bnas_tf.data"),
    ("bnas_tf.deploy",),
    ("bnas_tf.tuners", "bnas_tf.convert"),
    ("bnas_tf.face",),
    ("bnas_tf.recipes",),
    ("bnas_tf.pipeline",),
)
LAZY_MARK = "# lazy:"


def package_dirs(root: pathlib.Path) -> dict:
    """``package name -> folder``, from setup.cfg's ``package_dir`` (the mapped folders) and ``bnas_tf`` itself."""
    config = configparser.ConfigParser()
    config.read(root / "setup.cfg")
    mapping = {"bnas_tf": "bnas_tf"}
    for line in config["options"]["package_dir"].strip().splitlines():
        name, _, folder = (part.strip() for part in line.partition("="))
        mapping[name] = folder
    return mapping


def modules(root: pathlib.Path, dirs: dict) -> dict:
    """``dotted module name -> (path, is_package)`` for every .py file under the package folders."""
    found = {}
    for package, folder in sorted(dirs.items(), key=lambda item: len(item[0])):
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            name = ".".join([package] + parts[:-1] if is_package else [package] + parts)
            found[name] = (path, is_package)
    return found


def layer_of(module: str) -> int:
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return best[0]


def imports(name: str, path: pathlib.Path, is_package: bool, known: dict):
    """Yield ``(target module, line, function-local?, source line)`` for every import of a project module."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    local_nodes = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module for alias in node.names
            ]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target, node.lineno, id(node) in local_nodes, lines[node.lineno - 1]


def violations(root: pathlib.Path) -> list:
    """Every upward import, cycle and unexplained function-local import of the tree at ``root``."""
    dirs = package_dirs(root)
    known = modules(root, dirs)
    problems, graph = [], {name: set() for name in known}
    for name, (path, is_package) in known.items():
        for target, line, local, text in imports(name, path, is_package, known):
            where = f"{path.relative_to(root)}:{line}"
            if layer_of(target) > layer_of(name):
                problems.append(f"{where}: {name} imports {target} from a higher layer")
            if local and LAZY_MARK not in text:
                problems.append(f"{where}: function-local import of {target} without a '{LAZY_MARK} reason' comment")
            is_ancestor = name.startswith(target + ".")  # a submodule reading its own package's names
            if not is_ancestor:
                graph[name].add(target)
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def cycles(graph: dict) -> list:
    """One cycle through each strongly connected group of modules that import each other (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group) + [sorted(group)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_follows_the_import_rule():
    assert violations(ROOT) == []


def write_tree(root: pathlib.Path, files: dict) -> None:
    (root / "setup.cfg").write_text("[options]\npackage_dir =\n    bnas_tf = bnas_tf\n    bnas_tf.tuners = tuners\n")
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.mark.parametrize(
    "files, expected",
    [
        (
            {"bnas_tf/space/ops.py": "from bnas_tf.pipeline import run\n", "bnas_tf/pipeline/run.py": ""},
            "bnas_tf.space.ops imports bnas_tf.pipeline.run from a higher layer",
        ),
        (
            {
                "bnas_tf/space/ops.py": "",
                "tuners/scores.py": "",
                "bnas_tf/space/losses.py": "from bnas_tf.tuners import scores\n",
            },
            "bnas_tf.space.losses imports bnas_tf.tuners.scores from a higher layer",
        ),
        (
            {
                "bnas_tf/deploy/costs.py": "from bnas_tf.deploy import rules\n",
                "bnas_tf/deploy/rules.py": "from bnas_tf.deploy.costs import flops\n",
            },
            "import cycle: bnas_tf.deploy.costs -> bnas_tf.deploy.rules -> bnas_tf.deploy.costs",
        ),
        (
            {"bnas_tf/pipeline/run.py": "def run():\n    from bnas_tf.space import ops\n", "bnas_tf/space/ops.py": ""},
            "function-local import of bnas_tf.space.ops without a '# lazy: reason' comment",
        ),
    ],
)
def test_the_rule_finds_what_breaks_it(tmp_path, files, expected):
    write_tree(tmp_path, files)
    assert any(expected in problem for problem in violations(tmp_path)), violations(tmp_path)


def test_a_downward_import_and_an_explained_lazy_import_pass(tmp_path):
    write_tree(
        tmp_path,
        {
            "bnas_tf/space/ops.py": "",
            "bnas_tf/pipeline/run.py": "from bnas_tf.space import ops\n\n\ndef run():\n"
            "    from bnas_tf.space import ops  # lazy: only the run command needs it\n",
        },
    )
    assert violations(tmp_path) == []
