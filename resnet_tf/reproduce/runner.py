"""Train the networks of Table 6 one after the other, resumably, into a run directory.

Layout of a run directory::

    run.json                 settings, plan, environment (written first)
    models/<name>/log.csv    per-epoch training and test metrics (appended)
    models/<name>/backup/    BackupAndRestore checkpoint: weights, optimizer, epoch
    models/<name>/model.weights.h5, result.json   written when the model is done
    table6.md, table6.csv, figures.json, curves.png (or degradation.png)

A run directory is never overwritten: starting into one that already holds a
run is refused unless ``resume=True``, and resuming checks that the settings
match. When resuming, finished models are skipped and an interrupted one
continues from its last completed epoch, with its optimizer state (momentum,
step count, hence learning rate) restored.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from .. import distribute
from . import paper, pipeline, recipe


def steps_taken(optimizer) -> int:
    """Optimizer steps taken so far, also under mixed precision.

    A ``LossScaleOptimizer`` counts in its inner optimizer; on older Keras releases (3.3
    among them) the wrapper's own counter stays at 0.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return int(inner.iterations.numpy())


def backup_callback(folder: Path):
    """Keras' ``BackupAndRestore`` saving every epoch and keeping its files at the end.

    ``double_checkpoint`` (keep the previous backup too, so a crash while writing one
    loses nothing) exists only from Keras 3.7 on; it is asked for where it exists.
    """
    import inspect

    import keras

    options = {"save_freq": "epoch", "delete_checkpoint": False}
    if "double_checkpoint" in inspect.signature(keras.callbacks.BackupAndRestore).parameters:
        options["double_checkpoint"] = True
    return keras.callbacks.BackupAndRestore(str(folder), **options)


class RunExistsError(FileExistsError):
    """The output directory already holds a run and ``resume`` was not asked for."""


@dataclasses.dataclass
class Table6Config:
    """Settings of one reproduction of Table 6 (defaults: the paper's)."""

    depths: tuple = paper.DEFAULT_DEPTHS
    plain: bool = False
    fast: bool = False
    dataset: str = "cifar10"
    epochs: int | None = None
    steps_per_epoch: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    width: int = paper.WIDTH
    strategy: str = "auto"
    precision: str = "auto"
    xla: str = "auto"
    steps_per_execution: int | None = None
    seed: int = 0
    out: str = "runs/table6"
    verbose: str | int = "auto"

    def comparable(self) -> dict:
        """The settings that define the results (what a resume must agree on)."""
        d = dataclasses.asdict(self)
        for key in ("out", "verbose"):
            d.pop(key)
        d["depths"] = list(d["depths"])
        return d


def model_names(config: Table6Config) -> list[tuple[str, int, bool]]:
    """``(name, depth, plain)`` for every network of the run, ResNets first."""
    nets = [(f"resnet{d}", d, False) for d in config.depths]
    if config.plain:
        nets += [(f"plain{d}", d, True) for d in config.depths]
    return nets


def prepare_run_dir(config: Table6Config, resume: bool) -> Path:
    """Check the run directory may be started (or resumed); never clobber a run.

    The directory itself is created later, once the data have loaded, so a
    failed start leaves nothing behind that would block the next attempt.

    Raises :class:`RunExistsError` when ``config.out`` already holds files and
    ``resume`` is false, or when resuming with different settings.
    """
    out = Path(config.out)
    manifest = out / "run.json"
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise RunExistsError(
                f"{out} already holds a run; its results are kept. Pass --resume to continue "
                f"it, or choose a new --out directory."
            )
        if not manifest.exists():
            raise RunExistsError(f"{out} is not empty and holds no run.json; nothing to resume")
        stored = json.loads(manifest.read_text())["config"]
        wanted = config.comparable()
        diff = {k: (stored.get(k), v) for k, v in wanted.items() if stored.get(k) != v}
        if diff:
            details = ", ".join(f"{k}: run has {a!r}, asked {b!r}" for k, (a, b) in diff.items())
            raise RunExistsError(
                f"cannot resume {out} with different settings ({details}); repeat the original "
                "command with --resume, or choose a new --out directory"
            )
    return out


def read_log(path: Path) -> list[dict]:
    """Rows of a ``CSVLogger`` file as floats, one per epoch (the last row of an epoch wins)."""
    if not path.exists():
        return []
    rows: dict[int, dict] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            if not row.get("epoch"):
                continue
            values = {}
            for k, v in row.items():
                try:
                    values[k] = float(v)
                except (TypeError, ValueError):
                    values[k] = float("nan")
            rows[int(values["epoch"])] = values
    return [rows[k] for k in sorted(rows)]


def completed_epochs(backup: Path) -> int:
    """Epochs finished according to a ``BackupAndRestore`` directory (0 if none)."""
    metadata = Path(backup) / "training_metadata.json"
    if not metadata.exists():
        return 0
    try:
        return int(json.loads(metadata.read_text()).get("epoch", 0))
    except (ValueError, OSError):
        return 0


def steps_per_call(requested: int, steps_per_epoch: int) -> int:
    """The largest divisor of ``steps_per_epoch`` not above ``requested``.

    Keras rounds an epoch up to whole calls of ``steps_per_execution`` steps;
    a divisor keeps every epoch at exactly ``steps_per_epoch`` steps, which the
    schedule and the resumed input stream count on.
    """
    for k in range(max(1, min(requested, steps_per_epoch)), 0, -1):
        if steps_per_epoch % k == 0:
            return k
    return 1


def _warn_if_deterministic(echo: Callable[[str], None]) -> None:
    """Say so when op determinism is already on for a GPU/TPU run.

    Deterministic kernels are slower on a GPU, and Keras compiles without XLA
    while determinism is on. In the full profile on a GPU ``seed_everything``
    leaves it off (:func:`resnet_tf.runtime.execution`); if something switched
    it on earlier in this process, TensorFlow offers no public way back, so the
    run proceeds without XLA and reports ``xla: false``.
    """
    from ..runtime import determinism_enabled

    if determinism_enabled():
        echo("op determinism is on in this process: Keras compiles without XLA (restart the "
             "runtime, or unset RESNET_TF_DETERMINISTIC, to get XLA)")


def train_one(
    name: str, depth: int, plain: bool, config: Table6Config, run_dir: Path, strategy,
    splits, flip: bool, jit: bool, steps_per_execution: int,
    callbacks: list | None = None, echo: Callable[[str], None] = print,
) -> dict:
    """Train (or resume, or skip if done) one network; return its result dictionary."""
    import keras

    from ..models import build
    from ..runtime import seed_everything
    from ..training import fit

    model_dir = run_dir / "models" / name
    result_path = model_dir / "result.json"
    if result_path.exists():
        echo(f"{name}: already done ({result_path}), skipped")
        return json.loads(result_path.read_text())
    model_dir.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = splits
    replicas = strategy.num_replicas_in_sync
    p = recipe.plan(
        len(x_train), depth, replicas, config.batch_size, config.lr, config.epochs,
        config.steps_per_epoch, config.fast,
    )
    accelerated = distribute.device_kind(strategy) != "cpu"
    if accelerated:
        _warn_if_deterministic(echo)
    seed_everything(config.seed, deterministic=not accelerated)
    with strategy.scope():
        model = build(
            name, width=config.width, input_shape=x_train.shape[1:],
            classes=int(y_train.max()) + 1, classifier_activation=None,
        )
        recipe.compile_for(model, p, jit_compile=jit,
                           steps_per_execution=steps_per_call(steps_per_execution,
                                                              p.steps_per_epoch))
    backup = model_dir / "backup"
    done_epochs = completed_epochs(backup)
    if done_epochs:
        echo(f"{name}: resuming after epoch {done_epochs} from {backup}")
    train_ds = pipeline.train_dataset(x_train, y_train, p.global_batch, config.seed, flip,
                                      start_step=done_epochs * p.steps_per_epoch)
    test_ds = pipeline.eval_dataset(x_test, y_test, replicas)
    # The policy the layers were built under (a functional model's own dtype_policy stays
    # float32 under a mixed policy on older Keras releases, 3.3 among them).
    precision = keras.mixed_precision.global_policy().name
    echo(
        f"{name}: {model.count_params():,} parameters; {p.epochs} epochs x {p.steps_per_epoch} "
        f"steps, global batch {p.global_batch} ({p.per_replica_batch} x {replicas}), "
        f"peak lr {p.peak_lr:g}, {p.recipe} recipe, {precision}, "
        f"XLA {'on' if model.jit_compile else 'off'}"
    )
    history = [
        keras.callbacks.CSVLogger(str(model_dir / "log.csv"), append=True),
        backup_callback(backup),
        *(callbacks or []),
    ]
    fit(model, train_ds, validation=test_ds, epochs=p.epochs, seed=None,
        verbose=config.verbose, callbacks=history, steps_per_epoch=p.steps_per_epoch,
        compile=False)
    test_loss, test_accuracy = model.evaluate(test_ds, verbose=0)
    model.save_weights(str(model_dir / "model.weights.h5"))
    log = read_log(model_dir / "log.csv")
    result = {
        "name": name, "depth": depth, "plain": plain,
        "params": int(model.count_params()),
        "test_error": 100.0 * (1.0 - float(test_accuracy)),
        "test_loss": float(test_loss),
        "paper_error": (paper.PLAIN_ERROR if plain else paper.TABLE6_ERROR).get(depth),
        "steps": steps_taken(model.optimizer),
        "precision": precision,
        "xla": bool(model.jit_compile),
        "plan": p.as_dict(),
        "curve": {
            "step": [(r["epoch"] + 1) * p.steps_per_epoch for r in log],
            "train_error": [100.0 * (1.0 - r.get("accuracy", float("nan"))) for r in log],
            "test_error": [100.0 * (1.0 - r.get("val_accuracy", float("nan"))) for r in log],
            "train_loss": [r.get("loss", float("nan")) for r in log],
        },
    }
    result_path.write_text(json.dumps(result, indent=2))
    shutil.rmtree(backup, ignore_errors=True)
    echo(f"{name}: test error {result['test_error']:.2f}%")
    return result


def run_table6(
    config: Table6Config, resume: bool = False, callbacks: list | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """Reproduce Table 6 (and, with ``config.plain``, the degradation figure).

    Returns ``{"run_dir", "results", "files"}``. Settings are written to
    ``run.json`` before training, each finished model to its ``result.json``,
    and the table and figures at the end. ``callbacks`` are added to every
    model's ``fit`` (used by the tests to simulate an interruption).
    """
    import keras

    from ..runtime import environment, performance
    from . import report

    run_dir = prepare_run_dir(config, resume)
    splits, flip = pipeline.load(config.dataset, config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    strategy = distribute.resolve_strategy(config.strategy)
    device = distribute.device_kind(strategy)
    replicas = strategy.num_replicas_in_sync
    mode = performance(device, config.precision, config.xla, replicas)
    policy, jit = mode["policy"], mode["xla"]
    steps_per_execution = config.steps_per_execution or (32 if device == "tpu" else 1)
    previous_policy = keras.mixed_precision.global_policy()
    manifest = run_dir / "run.json"
    if not manifest.exists():
        manifest.write_text(json.dumps({
            "config": config.comparable(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "strategy": distribute.strategy_name(strategy), "replicas": replicas,
            "device": device, "precision": policy, "xla": jit,
            "environment": environment(),
        }, indent=2, default=str))
    echo(
        f"run {run_dir}: strategy {distribute.strategy_name(strategy)} with {replicas} "
        f"replica(s) on {device}, precision {policy}, XLA {'on' if jit else 'off'}"
    )
    if device == "cpu" and config.epochs is None and not config.fast:
        echo("no GPU or TPU: the paper's full schedule would take days on a CPU; use --epochs "
             "and --steps-per-epoch for a rehearsal")
    results = []
    try:
        keras.mixed_precision.set_global_policy(policy)
        for name, depth, plain in model_names(config):
            results.append(train_one(
                name, depth, plain, config, run_dir, strategy, splits, flip, jit,
                steps_per_execution, callbacks, echo,
            ))
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    files = report.write_all(run_dir, results, config)
    for f in files:
        echo(f"wrote {f}")
    return {"run_dir": str(run_dir), "results": results, "files": [str(f) for f in files]}
