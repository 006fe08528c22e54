"""The outputs of a reproduction: Table 6 next to the paper's, curves, and their data.

- ``table6.md`` / ``table6.csv``: one row per network with our test error, the
  paper's, their difference and the parameter counts;
- ``figures.json``: every number drawn in the figure and printed in the table;
- ``curves.png``: training (dashed) and test (solid) error against iterations,
  as in the paper's Figure 6; with plain nets it is ``degradation.png``, plain
  nets on the left and ResNets on the right.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from . import paper

COLUMNS = ("network", "depth", "params", "paper_params", "test_error", "paper_error",
           "difference", "steps")


def table_rows(results: list[dict]) -> list[dict]:
    """One row per result: our error, the paper's (or ``None``), and their difference."""
    rows = []
    for r in results:
        ours, theirs = r["test_error"], r.get("paper_error")
        rows.append({
            "network": ("plain-" if r["plain"] else "ResNet-") + str(r["depth"]),
            "depth": r["depth"],
            "params": r["params"],
            "paper_params": None if r["plain"] else paper.TABLE6_PARAMS.get(r["depth"]),
            "test_error": round(ours, 2),
            "paper_error": theirs,
            "difference": None if theirs is None else round(ours - theirs, 2),
            "steps": r["steps"],
        })
    return rows


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _count(n) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def markdown(rows: list[dict], note: str = "") -> str:
    """The table in GitHub markdown."""
    lines = [
        "| network | params | paper params | test error (%) | paper (%) | difference |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['network']} | {_count(r['params'])} | {_count(r['paper_params'])} | "
            f"{r['test_error']:.2f} | {_fmt(r['paper_error'], '.2f')} | "
            f"{_fmt(r['difference'], '+.2f')} |"
        )
    footer = (
        "\nPaper: He et al. (2015), Table 6, best of 5 runs (ResNet-110: "
        f"{paper.RESNET110_MEAN_STD[0]:.2f} +- {paper.RESNET110_MEAN_STD[1]:.2f} mean +- "
        "std). Plain nets are shown only as curves in the paper's Figure 6, without numbers."
    )
    return "\n".join(lines) + "\n" + footer + ("\n\n" + note if note else "") + "\n"


def draw(results: list[dict], suffix: str = ""):
    """Training (dashed) and test (solid) error against iterations, as a matplotlib figure.

    One panel for plain nets (if any) and one for ResNets; each result needs
    ``depth``, ``plain`` and ``curve`` (``step``, ``train_error``, ``test_error``).
    ``suffix`` is appended to each panel's title (e.g. to say the data are replayed).
    """
    import matplotlib.pyplot as plt

    groups = [("plain", [r for r in results if r["plain"]]),
              ("ResNet", [r for r in results if not r["plain"]])]
    groups = [g for g in groups if g[1]]
    if not groups:
        raise ValueError("nothing to draw: no results")
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.2), squeeze=False,
                             sharey=True)
    for ax, (title, group) in zip(axes[0], groups, strict=True):
        for i, r in enumerate(sorted(group, key=lambda r: r["depth"])):
            c = r["curve"]
            color = f"C{i}"
            label = f"{title}-{r['depth']}"
            ax.plot(c["step"], c["train_error"], "--", color=color, lw=1)
            ax.plot(c["step"], c["test_error"], "-", color=color, lw=2, label=label)
        ax.set_xlabel("iterations")
        ax.set_title(f"{title} networks (dashed: training, solid: test){suffix}")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0][0].set_ylabel("error (%)")
    fig.tight_layout()
    return fig


def figure(results: list[dict], path: Path) -> Path:
    """:func:`draw` saved as a PNG at ``path`` (off-screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw(results)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_all(run_dir: Path, results: list[dict], config) -> list[Path]:
    """Write the table (markdown, CSV), the figure (PNG) and its data (JSON) into ``run_dir``."""
    run_dir = Path(run_dir)
    rows = table_rows(results)
    note = ""
    if config.fast:
        note = "Trained with the --fast schedule (one-cycle, label smoothing), not the paper's."
    if config.dataset != "cifar10" or config.epochs or config.steps_per_epoch:
        note += (" " if note else "") + (
            f"Rehearsal settings (dataset {config.dataset}, epochs {config.epochs}, steps per "
            f"epoch {config.steps_per_epoch}): not comparable with the paper."
        )
    md = run_dir / "table6.md"
    md.write_text(markdown(rows, note))
    table_csv = run_dir / "table6.csv"
    with table_csv.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    name = "degradation.png" if any(r["plain"] for r in results) else "curves.png"
    png = figure(results, run_dir / name)
    data = {
        "table": rows,
        "curves": {r["name"]: r["curve"] for r in results},
        "figure": name,
        "paper": {"table6_error": paper.TABLE6_ERROR, "table6_params": paper.TABLE6_PARAMS},
        "note": note,
    }
    js = run_dir / "figures.json"
    js.write_text(json.dumps(_clean(data), indent=2))
    return [md, table_csv, png, js]
