"""No notebook ties layers through one shared initializer instance.

In Keras 3 an initializer instance fixes its seed when it is built (an unseeded
one draws its seed then), so the *same instance* handed to several layers gives
them the same kernel, and a new instance with the *same fixed seed* in every
iteration of a loop does too. This test reads every notebook source
(``chapters/*.py``, ``solutions/*.py``, ``exercises/*.py``) as Python syntax
(nothing is executed) and fails on:

* an instance bound to a name that is used more than once, used inside a loop or
  comprehension that does not also create it, used inside a nested function, or
  passed to something that is not a single Keras layer (``mlp``, ``dense_block``,
  ...: helpers that build several layers with it);
* an instance created inline as the argument of such a multi-layer helper;
* an instance created inside a loop or comprehension with a fixed seed, i.e. one
  that does not depend on the loop variables.

Instances seeded with a ``keras.random.SeedGenerator`` draw anew each time and
are never flagged. A deliberate tie is allowed when its statement carries the
comment ``# tied on purpose``. The runtime counterpart is
:func:`resnet_tf.analysis.weights.tied_kernels`.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    p for d in ("chapters", "solutions", "exercises") for p in (ROOT / d).glob("*.py")
)
MARKER = "# tied on purpose"

# Random initializers and where ``seed`` sits among their positional arguments.
SEED_POSITION = {
    "RandomNormal": 2, "RandomUniform": 2, "TruncatedNormal": 2,
    "GlorotNormal": 0, "GlorotUniform": 0, "HeNormal": 0, "HeUniform": 0,
    "LecunNormal": 0, "LecunUniform": 0, "Orthogonal": 1, "OrthogonalInitializer": 1,
    "VarianceScaling": 3,
}
SEED_POSITION.update({  # the snake_case aliases keras.initializers also exports
    "random_normal": 2, "random_uniform": 2, "truncated_normal": 2, "glorot_normal": 0,
    "glorot_uniform": 0, "he_normal": 0, "he_uniform": 0, "lecun_normal": 0,
    "lecun_uniform": 0, "orthogonal": 1, "variance_scaling": 3,
})
LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp,
         ast.GeneratorExp)
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.Module)


def _layer_classes() -> set[str]:
    """Names of single-layer constructors: Keras' layers and the package's own."""
    import keras

    import resnet_tf.layers

    names = set()
    for module in (keras.layers, resnet_tf.layers):
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer):
                names.add(name)
    return names


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.what}. Keras 3 gives every layer initialised by "
            "one instance (or by instances with the same fixed seed) the same kernel. Draw per "
            "layer: create the initializer inside the layer call with a distinct seed (e.g. "
            "seed=i in the loop), or seed one instance with keras.random.SeedGenerator(n). If "
            f"the tie is intended, end the statement with '{MARKER}'."
        )


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


class _Scan:
    def __init__(self, source: str, path: str, layer_classes: set[str]):
        self.tree = ast.parse(source)
        self.lines = source.splitlines()
        self.path = path
        self.layers = layer_classes
        self.parent: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parent[child] = node
        self.generators = {  # names bound to keras.random.SeedGenerator(...)
            t.id for node in ast.walk(self.tree) if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call) and _name(node.value.func) == "SeedGenerator"
            for t in node.targets if isinstance(t, ast.Name)
        }

    # -- helpers ---------------------------------------------------------
    def ancestors(self, node: ast.AST):
        while node in self.parent:
            node = self.parent[node]
            yield node

    def scope(self, node: ast.AST) -> ast.AST:
        return next(a for a in self.ancestors(node) if isinstance(a, SCOPES))

    def loops(self, node: ast.AST) -> list[ast.AST]:
        """Enclosing loops and comprehensions up to the enclosing function."""
        found = []
        for a in self.ancestors(node):
            if isinstance(a, SCOPES):
                break
            if isinstance(a, LOOPS):
                found.append(a)
        return found

    def marked(self, node: ast.AST) -> bool:
        statement = next(a for a in [node, *self.ancestors(node)] if isinstance(a, ast.stmt))
        return any(MARKER in line
                   for line in self.lines[statement.lineno - 1:statement.end_lineno])

    def seed(self, call: ast.Call) -> ast.expr | None:
        for kw in call.keywords:
            if kw.arg == "seed":
                return kw.value
        position = SEED_POSITION[_name(call.func)]
        return call.args[position] if len(call.args) > position else None

    def stateful(self, seed: ast.expr | None) -> bool:
        if isinstance(seed, ast.Call) and _name(seed.func) == "SeedGenerator":
            return True
        return isinstance(seed, ast.Name) and seed.id in self.generators

    @staticmethod
    def loop_names(loop: ast.AST) -> set[str]:
        """Names bound by a loop: its targets and whatever its body assigns."""
        names = set()
        for node in ast.walk(loop):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
        return names

    def varies_with(self, seed: ast.expr | None, loops: list[ast.AST]) -> bool:
        """Whether a seed takes a new value in each iteration of ``loops``."""
        if seed is None or (isinstance(seed, ast.Constant) and seed.value is None):
            return True  # unseeded: a fresh seed for every new instance
        if any(isinstance(n, ast.Call) for n in ast.walk(seed)):
            return True  # computed by a call (rng.integers(...), ...)
        used = {n.id for n in ast.walk(seed) if isinstance(n, ast.Name)}
        return any(used & self.loop_names(loop) for loop in loops)

    def multi_layer_call(self, node: ast.AST) -> ast.Call | None:
        """The call that receives ``node`` as an argument, if it is not one Keras layer."""
        parent = self.parent.get(node)
        if isinstance(parent, ast.keyword):
            parent = self.parent.get(parent)
        if isinstance(parent, ast.Starred):
            parent = self.parent.get(parent)
        if isinstance(parent, ast.Call) and node is not parent.func:
            if _name(parent.func) not in self.layers:
                return parent
        return None

    # -- the rules -------------------------------------------------------
    def findings(self) -> list[Finding]:
        out = []
        for call in ast.walk(self.tree):
            if not (isinstance(call, ast.Call) and _name(call.func) in SEED_POSITION):
                continue
            if self.marked(call):
                continue
            seed = self.seed(call)
            if self.stateful(seed):
                continue
            cls = _name(call.func)
            label = f"{cls}(seed={ast.unparse(seed)})" if seed is not None else f"{cls}()"
            loops = self.loops(call)
            if loops and not self.varies_with(seed, loops):
                out.append(Finding(self.path, call.lineno,
                                   f"{label} is created with the same fixed seed in every "
                                   f"iteration of the loop at line {loops[-1].lineno}"))
                continue
            receiver = self.multi_layer_call(call)
            if receiver is not None:
                out.append(Finding(self.path, call.lineno,
                                   f"{label} is passed to {ast.unparse(receiver.func)}(...), "
                                   "which may build several layers with the one instance"))
                continue
            parent = self.parent.get(call)
            if isinstance(parent, ast.Assign) and len(parent.targets) == 1 \
                    and isinstance(parent.targets[0], ast.Name):
                problem = self.shared_name(parent, parent.targets[0].id)
                if problem:
                    out.append(Finding(self.path, call.lineno,
                                       f"{label}, bound to `{parent.targets[0].id}`, {problem}"))
        return out

    def shared_name(self, assign: ast.Assign, name: str) -> str | None:
        scope = self.scope(assign)
        assign_loops = set(self.loops(assign))
        uses = [n for n in ast.walk(scope) if isinstance(n, ast.Name) and n.id == name
                and isinstance(n.ctx, ast.Load) and n.lineno >= assign.lineno]
        if len(uses) > 1:
            lines = ", ".join(str(u.lineno) for u in uses)
            return f"is used {len(uses)} times (lines {lines})"
        for use in uses:
            if self.scope(use) is not scope:
                return f"is used inside a nested function (line {use.lineno})"
            outer = [loop for loop in self.loops(use) if loop not in assign_loops]
            if outer:
                return f"is created outside the loop at line {outer[-1].lineno} and used inside it"
            receiver = self.multi_layer_call(use)
            if receiver is not None:
                return (f"is passed to {ast.unparse(receiver.func)}(...) at line {use.lineno}, "
                        "which may build several layers with it")
        return None


def scan(source: str, path: str = "<string>") -> list[Finding]:
    """Every shared-initializer finding in one Python source text."""
    return _Scan(source, path, _layer_classes()).findings()


# -- the scanner on small cases ----------------------------------------------

FLAGGED = {
    "bound, used in a loop": """
init = keras.initializers.RandomNormal(stddev=0.1, seed=3)
for i in range(4):
    x = keras.layers.Dense(8, kernel_initializer=init)(x)
""",
    "bound, used twice": """
init = keras.initializers.HeNormal(7)
a = keras.layers.Dense(8, kernel_initializer=init)
b = keras.layers.Dense(8, kernel_initializer=init)
""",
    "bound, given to a builder in a comprehension": """
small_init = keras.initializers.RandomNormal(stddev=0.1, seed=3)
twins = {k: mlp(6, kernel_initializer=small_init) for k in ("plain", "residual")}
""",
    "bound, given to a builder once": """
init = keras.initializers.RandomNormal(seed=1)
net = mlp(6, kernel_initializer=init)
""",
    "inline, given to a builder": """
net = mlp(30, kernel_initializer=keras.initializers.RandomNormal(0.1, 0.15, seed=3))
""",
    "inline, fixed seed in a loop": """
for i in range(3):
    x = keras.layers.Dense(8, kernel_initializer=keras.initializers.RandomNormal(seed=3))(x)
""",
    "inside a function, used in its loop": """
def stack(depth, seed=0):
    init = keras.initializers.RandomNormal(stddev=0.1, seed=seed)
    for i in range(depth):
        x = keras.layers.Dense(8, kernel_initializer=init)(x)
""",
    "unseeded, used twice": """
init = keras.initializers.GlorotUniform()
a = keras.layers.Dense(8, kernel_initializer=init)
b = keras.layers.Dense(8, kernel_initializer=init)
""",
    "used by a nested function": """
init = keras.initializers.RandomNormal(seed=0)
def block(x):
    return keras.layers.Dense(8, kernel_initializer=init)(x)
""",
}

CLEAN = {
    "per layer, seed from the loop": """
for i in range(4):
    x = keras.layers.Dense(8, kernel_initializer=keras.initializers.RandomNormal(seed=i))(x)
""",
    "per layer, seed computed in the loop": """
for i in range(4):
    s = 10 * i + 1
    x = keras.layers.Dense(8, kernel_initializer=keras.initializers.HeNormal(seed=s))(x)
""",
    "per layer, unseeded in a loop": """
for i in range(4):
    x = keras.layers.Dense(8, kernel_initializer=keras.initializers.RandomNormal(0.0, 0.1))(x)
""",
    "per layer, in a comprehension": """
layers = [keras.layers.Dense(8, kernel_initializer=keras.initializers.HeNormal(seed=k))
          for k in range(3)]
""",
    "one layer, inline": """
dead = keras.layers.Dense(6, kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=2))
""",
    "one layer, bound": """
init = keras.initializers.RandomNormal(seed=5)
layer = keras.layers.Conv2D(8, 3, kernel_initializer=init)
""",
    "a SeedGenerator draws anew": """
twins = {k: mlp(6, kernel_initializer=keras.initializers.RandomNormal(
    stddev=0.1, seed=keras.random.SeedGenerator(3))) for k in ("plain", "residual")}
gen = keras.random.SeedGenerator(1)
init = keras.initializers.RandomNormal(seed=gen)
for i in range(3):
    x = keras.layers.Dense(8, kernel_initializer=init)(x)
""",
    "marked on purpose": """
init = keras.initializers.RandomNormal(seed=3)  # tied on purpose
for i in range(3):
    x = keras.layers.Dense(8, kernel_initializer=init)(x)
""",
    "non-random initializers": """
init = keras.initializers.Constant(-10.0)
for i in range(3):
    x = keras.layers.Dense(8, bias_initializer=init)(x)
""",
}


@pytest.mark.parametrize("case", sorted(FLAGGED))
def test_scanner_flags(case):
    findings = scan(FLAGGED[case])
    assert len(findings) == 1, findings
    assert "tied on purpose" in str(findings[0]) and "<string>:" in str(findings[0])


@pytest.mark.parametrize("case", sorted(CLEAN))
def test_scanner_passes(case):
    assert scan(CLEAN[case]) == []


def test_scanner_agrees_with_keras():
    """The two basic flagged patterns really tie kernels, the clean ones do not."""
    import keras

    from resnet_tf.analysis.weights import tied_kernels

    def build(code):
        namespace = {"keras": keras, "x": keras.Input((8,))}
        namespace["inputs"] = namespace["x"]
        exec(code, namespace)  # noqa: S102 - the fixed snippets above
        return keras.Model(namespace["inputs"], namespace["x"])

    assert tied_kernels(build(FLAGGED["bound, used in a loop"]))
    assert tied_kernels(build(FLAGGED["inline, fixed seed in a loop"]))
    assert not tied_kernels(build(CLEAN["per layer, seed from the loop"]))
    assert not tied_kernels(build(CLEAN["per layer, unseeded in a loop"]))


# -- the notebooks -------------------------------------------------------------

@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_notebook_draws_initializers_per_layer(path):
    findings = scan(path.read_text(), str(path.relative_to(ROOT)))
    assert not findings, "\n".join(map(str, findings))
