"""Replay a finished ``reproduce table6`` run: its table, errors and curves, in seconds.

Paper-scale training (164 epochs per network) does not fit a notebook session;
``python -m resnet_tf reproduce table6 --out DIR`` does it once, resumably, and
leaves ``figures.json`` (every number of its table and figure) and ``run.json``
(settings, device, precision) in ``DIR``. A chapter then draws the paper-scale
figures from that directory instead of training::

    run = replay.load_run()          # RESNET_TF_RUNS=DIR, or load_run("DIR")
    if run is not None:
        run.plot(); run.table_frame(); run.errors()

Everything drawn or printed from a replay says so (:attr:`Replay.label`), and a
run made with rehearsal settings (digits or synthetic data, fewer epochs, the
``--fast`` schedule) is labelled as such. No TensorFlow is imported here.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

RUNS_ENV = "RESNET_TF_RUNS"
"""Environment variable naming a finished run directory (or a folder holding ``table6/``)."""


class RunNotFinishedError(FileNotFoundError):
    """The directory holds a run that has not written its results yet."""


def network_label(name: str) -> str:
    """``"resnet20"`` -> ``"ResNet-20"``, ``"plain56"`` -> ``"plain-56"``."""
    for prefix, label in (("resnet", "ResNet-"), ("plain", "plain-")):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return label + name[len(prefix):]
    raise ValueError(f"not a network name of a table6 run: {name!r} (resnetN or plainN)")


@dataclasses.dataclass
class Replay:
    """The stored results of one ``reproduce table6`` run."""

    run_dir: Path
    table: list[dict]
    curves: dict[str, dict]
    paper: dict
    note: str
    config: dict
    device: str | None = None
    precision: str | None = None

    @property
    def rehearsal(self) -> bool:
        """True when the run is not the paper's recipe on CIFAR-10 (tiny or fast settings)."""
        c = self.config
        return bool(c.get("dataset", "cifar10") != "cifar10" or c.get("epochs")
                    or c.get("steps_per_epoch") or c.get("fast"))

    @property
    def label(self) -> str:
        """What every figure and table of the replay is captioned with."""
        kind = "rehearsal settings, not comparable with the paper" if self.rehearsal else (
            "the paper's recipe on CIFAR-10")
        where = ", ".join(str(v) for v in (self.device, self.precision) if v)
        return (f"replayed from {self.run_dir} (reproduce table6; {kind}"
                + (f"; trained on {where}" if where else "") + ")")

    def errors(self) -> dict[str, float]:
        """Final test error (%) by network label, e.g. ``{"ResNet-20": 8.6, ...}``."""
        return {row["network"]: float(row["test_error"]) for row in self.table}

    def final_training_errors(self) -> dict[str, float]:
        """Training error (%) of each network's last logged epoch, by network label."""
        return {network_label(name): float(c["train_error"][-1])
                for name, c in self.curves.items() if c.get("train_error")}

    def results(self) -> list[dict]:
        """The curves as the result dictionaries :func:`.report.draw` expects."""
        out = []
        for name, curve in self.curves.items():
            label = network_label(name)
            out.append({"name": name, "depth": int(label.split("-")[1]),
                        "plain": label.startswith("plain"), "curve": curve})
        return out

    def table_frame(self):
        """The table (ours next to the paper's) as a pandas ``DataFrame``, captioned."""
        import pandas as pd

        frame = pd.DataFrame(self.table).set_index("network")
        frame.attrs["caption"] = self.label
        return frame

    def plot(self):
        """Training (dashed) and test (solid) error against iterations; returns the figure."""
        from . import report

        fig = report.draw(self.results(), suffix="\n(replayed)")
        fig.suptitle(self.label, fontsize="small", y=1.02)
        return fig


def find_run(path: str | os.PathLike | None = None) -> Path | None:
    """The run directory to replay: ``path``, else ``$RESNET_TF_RUNS``, else ``None``.

    The directory may be the run itself (holding ``figures.json``) or a folder
    holding it as ``table6/``. A directory that holds neither raises
    ``FileNotFoundError`` (or :class:`RunNotFinishedError` for a run that has
    not written its results yet).
    """
    if path is None:
        path = os.environ.get(RUNS_ENV, "").strip() or None
        if path is None:
            return None
    base = Path(path).expanduser()
    for candidate in (base, base / "table6"):
        if (candidate / "figures.json").is_file():
            return candidate
    for candidate in (base, base / "table6"):
        if (candidate / "run.json").is_file():
            raise RunNotFinishedError(
                f"{candidate} holds a reproduce table6 run that has not finished (no "
                "figures.json yet); finish it with the same command plus --resume"
            )
    raise FileNotFoundError(
        f"{base} holds no finished reproduce table6 run: expected {base / 'figures.json'} or "
        f"{base / 'table6' / 'figures.json'} (made by python -m resnet_tf reproduce table6 "
        "--out DIR)"
    )


def load_run(path: str | os.PathLike | None = None) -> Replay | None:
    """Load the run that :func:`find_run` names; ``None`` when none is named."""
    run_dir = find_run(path)
    if run_dir is None:
        return None
    figures = json.loads((run_dir / "figures.json").read_text())
    missing = {"table", "curves"} - set(figures)
    if missing:
        raise ValueError(f"{run_dir / 'figures.json'} lacks {sorted(missing)}; not a table6 run")
    manifest = run_dir / "run.json"
    run = json.loads(manifest.read_text()) if manifest.is_file() else {}
    return Replay(
        run_dir=run_dir, table=figures["table"], curves=figures["curves"],
        paper=figures.get("paper", {}), note=figures.get("note", ""),
        config=run.get("config", {}), device=run.get("device"), precision=run.get("precision"),
    )
