"""The package's shape: lazy sub-packages, no import cycle, the library apart from the course."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "resnet_tf"
CORE = ("layers", "blocks", "models", "data", "training", "paper", "analysis", "dynamics",
        "maths", "applications", "plots")
COURSE = ("exercises", "grading", "reproduce", "colab")
# Cycles the package still has, each to be removed by splitting the modules involved.
KNOWN_CYCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, at any depth (lazy imports count)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.add(sub if sub in modules else source)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the components with more than one module are the cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_graph_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [{"a", "b", "c"}]


def test_no_import_cycle():
    cycles = [c for c in strongly_connected(import_graph()) if frozenset(c) not in KNOWN_CYCLES]
    assert not cycles, f"import cycles: {cycles}"


def test_core_does_not_import_the_course():
    offending = []
    for module, targets in import_graph().items():
        parts = module.split(".")
        if len(parts) > 1 and parts[1] in CORE:
            offending += [(module, t) for t in targets
                          if len(t.split(".")) > 1 and t.split(".")[1] in COURSE]
    assert not offending, f"core modules importing course machinery: {offending}"


@pytest.mark.parametrize("needle", ["_keras_history", "_inbound_nodes", "tensorflow.python"])
def test_no_private_keras_or_tensorflow_api(needle):
    users = [str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
             if needle in p.read_text(encoding="utf-8")]
    assert not users, f"{needle} used in {users}"


def test_import_is_light_and_subpackages_are_lazy():
    code = (
        "import sys, resnet_tf\n"
        "assert 'tensorflow' not in sys.modules, 'import resnet_tf imported TensorFlow'\n"
        "assert 'keras' not in sys.modules\n"
        "m = resnet_tf.models\n"
        "assert m is sys.modules['resnet_tf.models']\n"
        "assert callable(m.build) and 'models' in dir(resnet_tf)\n"
        "try:\n    resnet_tf.no_such_thing\nexcept AttributeError as e:\n"
        "    assert 'no_such_thing' in str(e)\nelse:\n    raise SystemExit('no error')\n"
    )
    env_path = str(PACKAGE.parent)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]


REMOVED = [
    ("resnet_tf.data", "CIFAR10_CLASSES"),
    ("resnet_tf.exercises.core", "STATUSES"),
    ("resnet_tf.exercises.bank.block_jacobians", "J_F_3169686"),
    ("resnet_tf.grading.scoring", "CHECK_STATUSES"),
    ("resnet_tf.grading.identity", "GROUPS"),
    ("resnet_tf.colab", "install_command"),
    ("resnet_tf.exercises.bank.residual_functions", "cosine_rows"),
]


@pytest.mark.parametrize("module, name", REMOVED)
def test_removed_names_still_import_for_one_release_and_warn(module, name):
    import importlib

    mod = importlib.import_module(module)
    assert name not in vars(mod), f"{module}.{name} should be served only by __getattr__"
    with pytest.warns(DeprecationWarning, match=rf"{module}\.{name} is deprecated.*; use "):
        value = getattr(mod, name)
    assert value is not None
    with pytest.raises(AttributeError, match="no_such_name"):
        mod.no_such_name  # noqa: B018 - the attribute access is the test


def test_the_removed_install_command_still_names_the_documented_spec():
    from resnet_tf import colab

    with pytest.warns(DeprecationWarning):
        command = colab.install_command("python3")
    assert command[0] == "python3" and command[-1] == colab.INSTALL_SPEC
